//! The bad-input catalogue: each input an admin's data or hands can produce, with the exit
//! code and the message dirsync must give (table-driven). Nothing here may crash, and nothing
//! may be dropped without a word.

use base64::Engine as _;

use crate::util::{repo, Case, Run};

const HEAD: &str = "customer_id = \"12345\"\ndomains = [\"example.com\", \"example.de\"]\n";
const OK_LDIF: &str = "dn: CN=a\nobjectClass: user\nproxyAddresses: SMTP:a@example.com\nproxyAddresses: smtp:a@example.de\n";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Runs `sync --dry-run` with `ldif` as the directory and `extra` appended to the config.
fn with_ldif(ldif: &str, extra: &str) -> (Case, Run) {
    let case = Case::new();
    case.write("export.ldif", ldif);
    case.write(
        "dirsync.toml",
        format!("{HEAD}[source]\ntype = \"ldif\"\npath = \"export.ldif\"\n[output]\npath = \"out/retarus.map\"\n[guard]\nallow_empty_domains = [\"example.de\"]\n{extra}"),
    );
    let run = case.run(&["sync", "--config", "dirsync.toml", "--dry-run"]);
    (case, run)
}

/// Runs `sync --dry-run` with a whole config text.
fn with_config(config: &str) -> Run {
    let case = Case::new();
    case.write("export.ldif", format!("{OK_LDIF}\n"));
    case.write("dirsync.toml", config);
    case.run(&["sync", "--config", "dirsync.toml", "--dry-run"])
}

/// Runs with `json` as the Exchange data (its collectedAt set to now unless `keep_date`).
fn with_exchange(json: &[u8]) -> Run {
    let case = Case::new();
    case.write("export.ldif", format!("{OK_LDIF}\n"));
    case.write("exchange.json", json);
    case.write(
        "dirsync.toml",
        format!("{HEAD}[source]\ntype = \"ldif\"\npath = \"export.ldif\"\n[output]\npath = \"out/retarus.map\"\n[exchange]\ninput = \"exchange.json\"\n"),
    );
    case.run(&["sync", "--config", "dirsync.toml", "--dry-run"])
}

fn fresh_exchange() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    std::fs::read_to_string(repo().join("tests/data/exchange/full.json"))
        .unwrap()
        .replace("2026-11-27T06:00:00Z", &now)
}

fn check(name: &str, run: &Run, code: i32, message: &str) {
    assert_eq!(run.code, code, "{name}: {run:?}");
    assert!(
        run.stderr.contains(message),
        "{name}: expected {message:?} in {run:?}"
    );
    assert!(!run.stderr.contains("panicked"), "{name}: a panic: {run:?}");
}

#[test]
fn broken_ldif_exports() {
    let cases: &[(&str, String, &str)] = &[
        (
            "no colon",
            "dn: CN=a\nmail a@example.com\n".into(),
            "line 2: expected \"attribute: value\" (no colon found)",
        ),
        (
            "bad base64",
            "dn: CN=a\nmail:: ***\n".into(),
            "line 2: invalid base64 value of mail",
        ),
        (
            "URL value",
            "dn: CN=a\njpegPhoto:< file:///photo.jpg\n".into(),
            "line 2: URL values (\"jpegPhoto:<\") are not supported",
        ),
        (
            "change record",
            "dn: CN=a\nchangetype: modify\nreplace: mail\n".into(),
            "line 2: change records (changetype: modify) are not supported",
        ),
        (
            "control line",
            "dn: CN=a\ncontrol: 1.2.840.113556.1.4.417\n".into(),
            "line 2: change records with controls are not supported",
        ),
        (
            "leading continuation",
            " folded\n".into(),
            "line 1: continuation line (starting with a space) without a line to continue",
        ),
        (
            "record without dn",
            "mail: a@example.com\n".into(),
            "line 1: a record must start with \"dn:\", found \"mail:\"",
        ),
        (
            "DN not UTF-8",
            format!("dn:: {}\nmail: a@example.com\n", b64(b"CN=\xff")),
            "line 1: the DN is not valid UTF-8",
        ),
        (
            "LDIF version 2",
            "version: 2\n\ndn: CN=a\n".into(),
            "line 1: unsupported LDIF version (expected 1)",
        ),
        (
            "ldapsearch size limit",
            format!("{OK_LDIF}\nsearch: 2\nresult: 4 Size limit exceeded\n"),
            "the export is incomplete: ldapsearch reported \"result: 4 Size limit exceeded\"",
        ),
        (
            "ldapsearch admin limit",
            format!("{OK_LDIF}\nsearch: 2\nresult: 11 Administrative limit exceeded\n"),
            "the export is incomplete",
        ),
        (
            "attribute name with a space",
            "dn: CN=a\nproxy Addresses: SMTP:a@example.com\n".into(),
            "line 2: invalid attribute name \"proxy Addresses\" before the colon",
        ),
    ];
    for (name, ldif, message) in cases {
        let (case, run) = with_ldif(ldif, "");
        check(name, &run, 4, message);
        assert!(
            case.read("out/retarus.map").is_none(),
            "{name}: a MAP file was written"
        );
    }
}

#[test]
fn broken_configs() {
    let source =
        "[source]\ntype = \"ldif\"\npath = \"export.ldif\"\n[output]\npath = \"out/retarus.map\"\n";
    let ldap = "[source]\ntype = \"ldap\"\nurl = \"ldaps://dc.example.com\"\nbind_dn = \"svc@example.com\"\npassword_env = \"P\"\nbase_dn = \"DC=example,DC=com\"\n[output]\npath = \"x.map\"\n";
    let upload = "[upload]\ntype = \"sftp\"\nhost = \"h\"\nuser = \"u\"\nkey_file = \"k\"\n";
    let cases: Vec<(&str, String, &str)> = vec![
        ("typo in a key", format!("customerid = \"1\"\n{source}"), "customerid: unknown key; did you mean `customer_id`? (line 1)"),
        ("wrong type", format!("customer_id = 12345\ndomains = [\"example.com\"]\n{source}"), "customer_id: expected text in quotes, found the number `12345` (line 1)"),
        ("TOML syntax", format!("customer_id = \"12345\ndomains = []\n{source}"), "line 1, column"),
        ("missing source", format!("{HEAD}[output]\npath = \"x.map\"\n"), "source: missing section [source]"),
        ("unknown source type", format!("{HEAD}[source]\ntype = \"csv\"\n[output]\npath = \"x\"\n"), "source.type: \"csv\" is not a source type"),
        ("no domains", format!("customer_id = \"1\"\ndomains = []\n{source}"), "domains: empty; list at least one accepted domain"),
        ("bad domain", format!("customer_id = \"1\"\ndomains = [\"exa mple.com\"]\n{source}"), "domains[0]: \"exa mple.com\": not a valid domain name"),
        ("page size 0", format!("{HEAD}{}", ldap.replace("base_dn", "page_size = 0\nbase_dn")), "source.page_size: 0 is out of range; expected 1 to 1000"),
        ("plain LDAP", format!("{HEAD}{}", ldap.replace("ldaps://", "ldap://")), "is unencrypted: use ldaps://"),
        ("no host key pin", format!("{HEAD}{source}{upload}"), "upload.known_hosts: missing; the server's host key must be pinned"),
        ("malformed host key pin", format!("{HEAD}{source}{upload}host_key_sha256 = \"abc\"\n"), "upload.host_key_sha256: \"abc\"; expected \"SHA256:\""),
        ("file name placeholder", format!("{HEAD}{source}{upload}known_hosts = \"kh\"\nfile_name = \"{{customer}}.map\"\n"), "unknown placeholder {customer}"),
        ("bad regex", format!("{HEAD}{source}[[filter.rule]]\naction = \"exclude\"\nwhen = {{ attribute = \"title\", matches = \"([\" }}\n"), "filter.rule[0].when: `matches` is not a valid regular expression"),
        ("percent out of range", format!("{HEAD}{source}[guard]\nmax_removed_percent = 200.0\n"), "guard.max_removed_percent: 200"),
        ("line ending", format!("{HEAD}{}", source.replace("path = \"out/retarus.map\"", "path = \"x\"\nline_ending = \"cr\"")), "output.line_ending: \"cr\"; expected \"crlf\" or \"lf\""),
        ("log level", format!("{HEAD}log_level = \"verbose\"\n{source}"), "log_level: \"verbose\"; expected"),
        ("two secrets", format!("{HEAD}{}", ldap.replace("password_env = \"P\"", "password_env = \"P\"\npassword_file = \"f\"")), "set one of password_env, password_file, password_credential, not several"),
    ];
    for (name, config, message) in &cases {
        check(name, &with_config(config), 2, message);
    }
}

#[test]
fn broken_exchange_documents() {
    let good = fresh_exchange();
    let mut utf16_odd = vec![0xFF, 0xFE];
    utf16_odd.extend(good.encode_utf16().flat_map(u16::to_le_bytes));
    utf16_odd.push(0x41);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "newer schema",
            good.replace("\"schemaVersion\": 1", "\"schemaVersion\": 2")
                .into_bytes(),
            "schemaVersion: 2 is newer than this dirsync understands",
        ),
        ("not JSON", b"{\"schema\": ".to_vec(), "not valid JSON"),
        (
            "address list flattened by ConvertTo-Json's default depth",
            good.replace(
                "[\"SMTP:info@example.com\", \"smtp:kontakt@example.de\", \"smtp:info@example.onmicrosoft.com\"]",
                "\"SMTP:info@example.com smtp:kontakt@example.de smtp:info@example.onmicrosoft.com\"",
            )
            .into_bytes(),
            "recipients[0].emailAddresses[0]: \"SMTP:info@example.com smtp:kontakt@example.de smtp:info@example.onmicrosoft.com\" holds several addresses in one string",
        ),
        (
            "owner that is not an address",
            good.replace("\"lena.wolf@example.com\", \"hannah", "\"Lena Wolf\", \"hannah")
                .into_bytes(),
            "groupOwners[0].owners[0]: \"Lena Wolf\" is not a mail address",
        ),
        (
            "number as address",
            good.replace("\"smtp:kontakt@example.de\"", "42")
                .into_bytes(),
            "recipients[0].emailAddresses[1]: expected a string, found 42",
        ),
        (
            "bad date",
            good.replacen("\"collectedAt\": \"", "\"collectedAt\": \"noon ", 1)
                .into_bytes(),
            "collectedAt: \"noon ",
        ),
        (
            "other schema",
            good.replace("dirsync-exchange", "other").into_bytes(),
            "schema: expected \"dirsync-exchange\", found \"other\"",
        ),
        (
            "odd UTF-16",
            utf16_odd,
            "UTF-16 text with an odd number of bytes",
        ),
        (
            "array at the top",
            b"[]".to_vec(),
            "expected a JSON object at the top",
        ),
        (
            "unknown collection",
            good.replace(
                "\"PublicFolders\", \"GroupOwners\"]",
                "\"PublicFolders\", \"Mailboxes\"]",
            )
            .into_bytes(),
            "unknown collection \"Mailboxes\"",
        ),
        (
            "owners not a list of strings",
            good.replace(
                "\"owners\": [\"lena.wolf@example.com\", \"hannah.schulz@example.com\"]",
                "\"owners\": [{\"a\": 1}]",
            )
            .into_bytes(),
            "groupOwners[0].owners[0]: expected a string",
        ),
    ];
    for (name, json, message) in &cases {
        check(name, &with_exchange(json), 5, message);
    }
}

#[test]
fn awkward_directory_values() {
    let signature = "[signature]\nmax_length = 40\nfields = { Title = \"title\" }\n";
    let cut = format!("\tTitle\t{}\r\n", "x".repeat(40));
    // Each: a directory entry, the config to add, what the MAP must contain, what the admin reads.
    let cases: Vec<(&str, String, &str, &str, &str)> = vec![
        ("TAB, CR, LF in a signature value", format!("{OK_LDIF}title:: {}\n", b64(b"Head of\tSales\r\nEMEA")), signature, "P13N:\ta@example.com\tTitle\tHead of Sales EMEA\r\n", "signature field Title: control characters replaced"),
        ("NUL in a signature value", format!("{OK_LDIF}title:: {}\n", b64(b"Chief\0Officer")), signature, "\tTitle\tChief Officer\r\n", "control characters replaced"),
        ("a huge value", format!("{OK_LDIF}title: {}\n", "x".repeat(100_000)), signature, &cut, "cut to 40 characters"),
        ("invalid UTF-8 in proxyAddresses", format!("{OK_LDIF}proxyAddresses:: {}\n", b64(b"smtp:b\xff@example.com")), "", "DIR:\ta@example.com\r\n", "not valid UTF-8"),
        ("invalid UTF-8 in mail", format!("{OK_LDIF}\ndn: CN=m\nobjectClass: user\nmail:: {}\n", b64(b"m\xfe@example.com")), "", "DOMAIN:\texample.com\r\n", "not valid UTF-8"),
        ("smtp: without an address", format!("{OK_LDIF}proxyAddresses: smtp:\n"), "", "DIR:\ta@example.com\r\n", "\"\" is not a valid address (no @ in the address"),
        ("an address with a space", format!("{OK_LDIF}proxyAddresses: smtp:john doe@example.com\n"), "", "DIR:\ta@example.com\r\n", "\"john doe@example.com\" is not a valid address"),
        ("two @", format!("{OK_LDIF}proxyAddresses: smtp:a@b@example.com\n"), "", "DIR:\ta@example.com\r\n", "\"a@b@example.com\" is not a valid address"),
        ("the same address in another case on two objects", format!("{OK_LDIF}\ndn: CN=b\nobjectClass: user\nproxyAddresses: SMTP:b@example.com\nproxyAddresses: smtp:A@EXAMPLE.COM\n"), "", "DIR:\ta@example.com\r\n", "address a@example.com is on two objects: kept for CN=a, not for CN=b"),
        ("an internationalised domain", "dn: CN=i\nobjectClass: user\nproxyAddresses:: U01UUDppbmZvQGLDvGNoZXIuZGU=\n".into(), "", "12345|xn--bcher-kva.de\tDIR:\tinfo@xn--bcher-kva.de\r\n", "addresses: "),
        ("a domain label too long", format!("{OK_LDIF}proxyAddresses: smtp:x@{}.com\n", "a".repeat(64)), "", "DIR:\ta@example.com\r\n", "not a valid domain name"),
    ];
    for (name, ldif, extra, in_map, message) in &cases {
        let domains = if name.contains("internationalised") {
            "domains = [\"bücher.de\", \"example.de\"]"
        } else {
            ""
        };
        let case = Case::new();
        // Every entry of an export ends with an empty line.
        case.write("export.ldif", format!("{ldif}\n"));
        let head = if domains.is_empty() {
            HEAD.to_string()
        } else {
            format!("customer_id = \"12345\"\n{domains}\n")
        };
        case.write(
            "dirsync.toml",
            format!("{head}[source]\ntype = \"ldif\"\npath = \"export.ldif\"\n[output]\npath = \"out/retarus.map\"\n[guard]\nallow_empty_domains = [\"example.de\"]\n{extra}"),
        );
        let run = case.run(&["sync", "--config", "dirsync.toml", "--dry-run"]);
        check(name, &run, 0, message);
        let map = String::from_utf8(case.read("out/retarus.map").unwrap()).unwrap();
        assert!(
            map.contains(in_map),
            "{name}: expected {in_map:?} in\n{map}"
        );
    }
}
