#!/usr/bin/env python3
"""Reads /usr/bin/time -v outputs of the benchmark runs and prints the table for BENCHMARKS.md:
median wall time, CPU time and peak RSS per tool and size, the ratios, and each target as met
or missed.   usage: report.py RESULTS_DIR"""
import glob
import os
import re
import statistics
import sys

root = sys.argv[1]


def parse(path):
    text = open(path).read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.+)", text).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    user = float(re.search(r"User time \(seconds\): (.+)", text).group(1))
    system = float(re.search(r"System time \(seconds\): (.+)", text).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    status = int(re.search(r"Exit status: (\d+)", text).group(1))
    return seconds, user + system, rss / 1024, status


results = {}
for size_dir in sorted(glob.glob(os.path.join(root, "n*")), key=lambda p: int(p.rsplit("n", 1)[1])):
    n = int(size_dir.rsplit("n", 1)[1])
    for tool in ("dirsync", "rules", "ldapsearch", "python"):
        runs = [parse(p) for p in sorted(glob.glob(os.path.join(size_dir, f"time.{tool}.*")))]
        if not runs:
            continue
        if any(r[3] != 0 for r in runs):
            sys.exit(f"{tool} failed at N={n}: see {size_dir}")
        results[(n, tool)] = tuple(statistics.median(r[i] for r in runs) for i in range(3)) + (len(runs),)

sizes = sorted({n for n, _ in results})
# "rules": dirsync with a transitive member_of profile rule (memberOf read and kept).
print("| N | tool | runs | median wall s | median CPU s | median peak RSS MB |")
print("|---:|---|---:|---:|---:|---:|")
for n in sizes:
    for tool in ("dirsync", "rules", "ldapsearch", "python"):
        if (n, tool) in results:
            w, c, m, k = results[(n, tool)]
            print(f"| {n:,} | {tool} | {k} | {w:.2f} | {c:.2f} | {m:.0f} |")
print()
verdicts = []
for n in sizes:
    d, l, p = results.get((n, "dirsync")), results.get((n, "ldapsearch")), results.get((n, "python"))
    if d and l:
        print(f"- N={n:,}: dirsync / ldapsearch wall = {d[0] / l[0]:.2f}")
    if d and p:
        print(f"- N={n:,}: python-ldap3 / dirsync wall = {p[0] / d[0]:.1f}")
if 100000 in sizes:
    d, l, p = results[(100000, "dirsync")], results[(100000, "ldapsearch")], results[(100000, "python")]
    verdicts.append(("100k: dirsync wall <= 1.10 x ldapsearch", d[0] <= 1.10 * l[0], f"{d[0] / l[0]:.2f} x"))
    verdicts.append(("100k: python-ldap3 >= 5 x dirsync", p[0] >= 5 * d[0], f"{p[0] / d[0]:.1f} x"))
    verdicts.append(("100k: dirsync peak RSS <= 100 MB", d[2] <= 100, f"{d[2]:.0f} MB"))
    r = results.get((100000, "rules"))
    if r:
        verdicts.append(("100k with a membership rule (memberOf kept): peak RSS <= 100 MB", r[2] <= 100, f"{r[2]:.0f} MB, {r[0]:.2f} s"))
if 1000000 in sizes and 100000 in sizes:
    d1, d100 = results[(1000000, "dirsync")], results[(100000, "dirsync")]
    verdicts.append(("1M: dirsync peak RSS <= 1 GB", d1[2] <= 1024, f"{d1[2]:.0f} MB"))
    verdicts.append(("1M: time <= 11 x the 100k time", d1[0] <= 11 * d100[0], f"{d1[0] / d100[0]:.1f} x"))
print()
for name, ok, value in verdicts:
    print(f"- {'MET' if ok else 'MISSED'}: {name} (measured {value})")
