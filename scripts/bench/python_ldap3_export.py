#!/usr/bin/env python3
"""What an admin would write with python-ldap3: a paged LDAPS search of the same attributes,
building the set of addresses in the accepted domains (SMTP/smtp proxy addresses and mail,
lower-cased). Writes them sorted, one per line, to OUT.

usage: python_ldap3_export.py URL CA_FILE BIND_DN PASSWORD_ENV BASE OUT"""
import os
import ssl
import sys

import ldap3

url, ca, bind_dn, password_env, base, out = sys.argv[1:7]
accepted = {"example.com", "example.de"}
tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca)
server = ldap3.Server(url, use_ssl=True, tls=tls)
conn = ldap3.Connection(server, bind_dn, os.environ[password_env], auto_bind=True, read_only=True)
attributes = ["objectClass", "proxyAddresses", "mail", "userAccountControl"]
addresses = set()
entries = conn.extend.standard.paged_search(base, "(|(objectClass=user)(objectClass=group)(objectClass=contact))",
                                            attributes=attributes, paged_size=1000, generator=True)
for entry in entries:
    if entry.get("type") != "searchResEntry":
        continue
    attrs = entry["attributes"]
    values = [p.split(":", 1)[1] for p in attrs.get("proxyAddresses", []) if p.lower().startswith("smtp:")]
    mail = attrs.get("mail")
    if mail:
        values.extend(mail if isinstance(mail, list) else [mail])
    for v in values:
        v = v.strip().lower()
        if v.rsplit("@", 1)[-1] in accepted:
            addresses.add(v)
if conn.result["result"] != 0:
    sys.exit(f"search failed: {conn.result}")
with open(out, "w") as f:
    f.write("".join(a + "\n" for a in sorted(addresses)))
