#!/usr/bin/env python3
"""PowerShell syntax check without PowerShell: parses each .ps1 with tree-sitter-pwsh and
fails on ERROR or MISSING nodes, printing file:line:col. Usage: check-powershell.py FILE...

Known false alarms of the grammar (valid PowerShell it rejects): a `switch` whose `default`
block is written on one line, and `break <label>` / `continue <label>`. Write those over
several lines / without labels."""
import sys

import tree_sitter
import tree_sitter_pwsh

parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_pwsh.language()))


def problems(node):
    if node.type == "ERROR" or node.is_missing:
        yield node
        return
    for child in node.children:
        yield from problems(child)


failed = False
for path in sys.argv[1:]:
    source = open(path, "rb").read()
    if source.startswith(b"\xef\xbb\xbf"):
        source = source[3:]
    found = list(problems(parser.parse(source).root_node))
    for node in found[:20]:
        line, col = node.start_point
        what = f"missing {node.type}" if node.is_missing else "syntax error"
        text = source[node.start_byte:node.end_byte].decode("utf-8", "replace").splitlines()
        print(f"{path}:{line + 1}:{col + 1}: {what}: {text[0][:60] if text else ''}")
    if found:
        failed = True
    else:
        print(f"{path}: ok")
sys.exit(1 if failed else 0)
