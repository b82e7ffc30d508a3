#!/usr/bin/env python3
"""PowerShell syntax check without PowerShell: parses each .ps1 with tree-sitter-pwsh and
fails on ERROR or MISSING nodes, printing file:line:col. Usage: check-powershell.py FILE...

It also fails on a call of an Exchange Online cmdlet without `-ErrorAction Stop`: most of
them are functions of a generated module, which do not take the script's
$ErrorActionPreference (PowerShell/PowerShell#4568), so their errors would not stop the script.

Known false alarms of the grammar (valid PowerShell it rejects): a `switch` whose `default`
block is written on one line, and `break <label>` / `continue <label>`. Write those over
several lines / without labels."""
import sys

import tree_sitter
import tree_sitter_pwsh

parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_pwsh.language()))


# The ExchangeOnlineManagement cmdlets the scripts may call (and any Get-EXO* cmdlet).
EXCHANGE = {
    "connect-exchangeonline", "get-accepteddomain", "get-organizationconfig",
    "get-recipient", "get-mailbox", "get-dynamicdistributiongroup", "get-mailpublicfolder",
    "get-unifiedgroup", "get-unifiedgrouplinks", "get-distributiongroup",
}


def problems(node):
    if node.type == "ERROR" or node.is_missing:
        yield node
        return
    for child in node.children:
        yield from problems(child)


def commands(node):
    if node.type == "command":
        yield node
    for child in node.children:
        yield from commands(child)


def without_error_action_stop(source, root):
    """Exchange cmdlet calls that lack `-ErrorAction Stop`."""
    text = lambda n: source[n.start_byte:n.end_byte].decode("utf-8", "replace")
    for cmd in commands(root):
        name = next((c for c in cmd.children if c.type == "command_name"), None)
        if name is None:
            continue
        lowered = text(name).lower()
        if lowered not in EXCHANGE and not lowered.startswith("get-exo"):
            continue
        elements = [c for c in cmd.children if c.type == "command_elements"]
        tokens = [c for e in elements for c in e.children if c.type != "command_argument_sep"]
        ok = any(
            t.type == "command_parameter" and text(t).lower() == "-erroraction"
            and i + 1 < len(tokens) and text(tokens[i + 1]).lower() == "stop"
            for i, t in enumerate(tokens)
        ) or any(text(t).lower() == "-erroraction:stop" for t in tokens)
        if not ok:
            yield cmd, text(name)


failed = False
for path in sys.argv[1:]:
    source = open(path, "rb").read()
    if source.startswith(b"\xef\xbb\xbf"):
        source = source[3:]
    root = parser.parse(source).root_node
    found = list(problems(root))
    unstopped = list(without_error_action_stop(source, root))
    for cmd, name in unstopped:
        line, col = cmd.start_point
        print(f"{path}:{line + 1}:{col + 1}: {name} without -ErrorAction Stop (module functions ignore $ErrorActionPreference)")
    for node in found[:20]:
        line, col = node.start_point
        what = f"missing {node.type}" if node.is_missing else "syntax error"
        text = source[node.start_byte:node.end_byte].decode("utf-8", "replace").splitlines()
        print(f"{path}:{line + 1}:{col + 1}: {what}: {text[0][:60] if text else ''}")
    if found or unstopped:
        failed = True
    else:
        print(f"{path}: ok")
sys.exit(1 if failed else 0)
