#!/usr/bin/env python3
"""Writes the Exchange data fixtures as Windows PowerShell 5.1 and PowerShell 7 write them with
the bundled script's own method (ConvertTo-Json -InputObject $doc -Depth 10, then
[IO.File]::WriteAllText with UTF-8 without BOM, on Windows: CRLF line ends, no final line end).

  python3 tests/data/exchange/powershell/make.py      (rewrites the ps51-*.json / ps7-*.json)

PowerShell cannot run on the build machines, so the two layouts are reproduced from how each
version formats JSON:
- 5.1 (JavaScriptSerializer + its own indenter): `"key":  value` (two spaces), the members of
  an object or array indented 4 columns past its opening bracket, the closing bracket under the
  opening one, an empty array as `[` blank line `]`; `'`, `<`, `>`, `&` escaped as \\u0027 …
- 7 (Newtonsoft.Json, indented): `"key": value`, 2-space indentation, `[]` for empty arrays.
Non-ASCII text is written as UTF-8 by both.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTED = "2026-11-27T06:00:00.0000000Z"  # [DateTime]::UtcNow.ToString('o', InvariantCulture)


def esc51(s):
    out = []
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == '\\':
            out.append('\\\\')
        elif ch in "<>'&" or o < 0x20:
            table = {'\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f'}
            out.append(table.get(ch, '\\u%04x' % o))
        else:
            out.append(ch)
    return '"' + ''.join(out) + '"'


def ps51(v, col):
    """v rendered by Windows PowerShell 5.1, its first character at column `col`."""
    if isinstance(v, dict):
        lines = ["{"]
        items = list(v.items())
        for i, (k, val) in enumerate(items):
            key = esc51(k) + ":  "
            lines.append(" " * (col + 4) + key + ps51(val, col + 4 + len(key)) + ("," if i < len(items) - 1 else ""))
        lines.append(" " * col + "}")
        return "\r\n".join(lines)
    if isinstance(v, list):
        if not v:
            return "[\r\n\r\n" + " " * col + "]"
        lines = ["["]
        for i, item in enumerate(v):
            lines.append(" " * (col + 4) + ps51(item, col + 4) + ("," if i < len(v) - 1 else ""))
        lines.append(" " * col + "]")
        return "\r\n".join(lines)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    return esc51(v)


def ps7(v):
    text = json.dumps(v, indent=2, ensure_ascii=False)
    # json.dumps writes "[]" for empty lists like Newtonsoft; line ends are Windows'.
    return text.replace("\n", "\r\n")


def doc(recipients=(), ddgs=(), folders=(), owners=(), collected=COLLECTED):
    return {
        "schema": "dirsync-exchange",
        "schemaVersion": 1,
        "collectedAt": collected,
        "tenant": "contoso.onmicrosoft.com",
        "collections": ["AcceptedDomains", "Recipients", "DynamicDistributionGroups", "PublicFolders", "GroupOwners"],
        "acceptedDomains": [
            {"domainName": "example.com", "domainType": "Authoritative", "default": True},
            {"domainName": "example.de", "domainType": "Authoritative", "default": False},
        ],
        "recipients": list(recipients),
        "dynamicDistributionGroups": list(ddgs),
        "publicFolders": list(folders),
        "groupOwners": list(owners),
    }


def rec(kind, primary, others=(), oid=None, name=""):
    return {
        "recipientTypeDetails": kind,
        "primarySmtpAddress": primary,
        "emailAddresses": ["SMTP:" + primary] + ["smtp:" + a for a in others],
        "externalDirectoryObjectId": oid,
        "displayName": name,
    }


ANNA = rec("UserMailbox", "anna@example.com", ["anna.alias@example.de"], "11111111-1111-1111-1111-111111111111", "Anna Helper")
CASES = {
    "normal": doc(
        [ANNA, rec("SharedMailbox", "info@example.com", ["kontakt@example.de"], "22222222-2222-2222-2222-222222222222", "Info"),
         rec("RoomMailbox", "room@example.de", [], "33333333-3333-3333-3333-333333333333", "Room 1 & 2 <Berlin>"),
         rec("GroupMailbox", "team@example.com", [], "44444444-4444-4444-4444-444444444444", "Team")],
        [rec("DynamicDistributionGroup", "all@example.com", [], None, "All staff")],
        [rec("PublicFolder", "pf@example.com", [], None, "Support's archive")],
        [{"group": "team@example.com", "externalDirectoryObjectId": "44444444-4444-4444-4444-444444444444", "owners": ["anna@example.com"]}],
    ),
    "zero": doc([ANNA]),
    "hybrid": doc([ANNA, rec("LinkedRoomMailbox", "linked-room@example.de", [], None, "Linked room"),
                   rec("RemoteTeamMailbox", "remote-team@example.com", [], None, "Remote team"),
                   rec("FutureMailbox", "future@example.com", [], None, "A type Microsoft adds later")]),
    "non-ascii": doc([ANNA, rec("UserMailbox", "j.muessig@example.de", ["juergen@example.de"], None, "Jürgen Müßig – Ærø")]),
    "finnish-time": doc([ANNA], collected="2026-11-27T07.26.56Z"),
    "flattened": None,
}


def main():
    for name, d in CASES.items():
        for version, render in (("ps51", lambda x: ps51(x, 0)), ("ps7", ps7)):
            if d is None:
                # ConvertTo-Json at its default depth (2): each address list below that depth
                # is written as its items joined by spaces.
                flat = doc([dict(ANNA, emailAddresses=" ".join(ANNA["emailAddresses"]))])
                text = render(flat)
            else:
                text = render(d)
            with open(os.path.join(HERE, f"{version}-{name}.json"), "w", encoding="utf-8", newline="") as f:
                f.write(text)


if __name__ == "__main__":
    main()
