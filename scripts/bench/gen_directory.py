#!/usr/bin/env python3
"""Generates a realistic directory of N users as LDIF, below OU=AADDC Users,DC=example,DC=com,
for the benchmark: users with 2-4 SMTP proxy addresses in two accepted domains (plus the tenant
domain, X500 and SIP), 10% disabled, memberOf written (slapadd bypasses the memberof overlay),
binary objectGUIDs; groups with many members (10 groups of N/10, the rest small); contacts
with external addresses. Deterministic: the same N gives the same file.

usage: gen_directory.py N OUT.ldif"""
import base64
import random
import sys

n = int(sys.argv[1])
out = open(sys.argv[2], "w", encoding="utf-8", newline="\n")
rnd = random.Random(n)
base = "OU=AADDC Users,DC=example,DC=com"
first = ["Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hannah", "Igor", "Julia", "Karl", "Lena", "Max", "Nora", "Oskar", "Paula", "Jörg", "Zoë", "Sophie", "Yusuf"]
last = ["Schmidt", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Schulz", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz", "Müller", "Krüger", "Lefèvre", "Đurić"]
departments = ["Sales", "Engineering", "Finance", "Marketing", "IT", "HR", "Legal", "Support", "Logistics"]
big_groups = 10
small_groups = max(10, n // 500)
groups = big_groups + small_groups


def ascii(s):
    table = {"ö": "oe", "ü": "ue", "ä": "ae", "ë": "e", "è": "e", "Đ": "D", "ć": "c", "ß": "ss"}
    return "".join(table.get(c, c) for c in s)


def value(attr, v):
    if any(ord(c) > 127 for c in v) or v.startswith((" ", ":", "<")):
        return f"{attr}:: {base64.b64encode(v.encode()).decode()}\n"
    return f"{attr}: {v}\n"


def guid():
    return base64.b64encode(rnd.randbytes(16)).decode()


members = [[] for _ in range(groups)]
for i in range(n):
    g, s = rnd.choice(first), rnd.choice(last)
    local = f"{ascii(g).lower()}.{ascii(s).lower()}.{i}"
    cn = f"{g} {s} {i:07d}"
    dn = f"CN={cn},{base}"
    mine = [i % big_groups] + [big_groups + rnd.randrange(small_groups) for _ in range(rnd.randint(0, 2))]
    for m in set(mine):
        members[m].append(dn)
    rec = [value("dn", dn), "objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\n",
           value("cn", cn), value("sn", s), value("givenName", g), value("displayName", f"{g} {s}"),
           f"sAMAccountName: u{i}\nuserPrincipalName: {local}@example.com\n",
           f"userAccountControl: {514 if rnd.random() < 0.1 else 512}\n", f"objectGUID:: {guid()}\n",
           value("department", rnd.choice(departments)), f"mail: {local}@example.com\n",
           f"proxyAddresses: SMTP:{local}@example.com\n", f"proxyAddresses: smtp:{ascii(g).lower()[0]}{ascii(s).lower()}{i}@example.com\n"]
    if rnd.random() < 0.5:
        rec.append(f"proxyAddresses: smtp:{local}@example.de\n")
    if rnd.random() < 0.5:
        rec.append(f"proxyAddresses: smtp:{local}@example.onmicrosoft.com\n")
    rec.append(f"proxyAddresses: X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={i:032x}\n")
    rec.append(f"proxyAddresses: SIP:{local}@example.com\n")
    for m in sorted(set(mine)):
        rec.append(f"memberOf: CN=Group {m},{base}\n")
    out.write("".join(rec) + "\n")
for m in range(groups):
    rec = [f"dn: CN=Group {m},{base}\nobjectClass: top\nobjectClass: group\ncn: Group {m}\ngroupType: 8\n",
           f"objectGUID:: {guid()}\nmail: group{m}@example.com\nproxyAddresses: SMTP:group{m}@example.com\nproxyAddresses: smtp:gruppe{m}@example.de\n"]
    rec.extend(f"member: {d}\n" for d in members[m])
    out.write("".join(rec) + "\n")
for c in range(max(1, n // 50)):
    out.write(f"dn: CN=Contact {c},{base}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: contact\n"
              f"cn: Contact {c}\nsn: Contact\nmail: partner{c}@partner{c % 97}.org\nproxyAddresses: SMTP:partner{c}@partner{c % 97}.org\n"
              f"proxyAddresses: smtp:partner{c}@example.de\n\n")
out.close()
