//! Several sources in one map: two real slapd forests (different suffixes, an overlapping
//! accepted domain) and an LDIF export, read completely or not at all.

use std::fmt::Write as _;

use crate::hostile::files;
use crate::pki::{Ca, Validity};
use crate::slapd::{Slapd, READER_PASSWORD};
use crate::util::{proxy, AtLimit, Case, Run};

const FOREST_A: &str = "DC=example,DC=com";
const FOREST_B: &str = "DC=subsidiary,DC=example";
const PW_ENV: &str = "DIRSYNC_TEST_BIND_PASSWORD";

/// `n` users under `OU=AADDC Users,<suffix>`: `<prefix>N@example.com` with an alias in the
/// shared domain example.de; plus the overlaps: forest A's first user has the alias
/// `sales@example.com`, forest B's first user has it as its primary (primary wins); both
/// first users hold `info@example.de` as an alias (one DIR line, no MAP line).
fn forest(suffix: &str, prefix: &str, n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let dn = format!("CN={prefix} {i},OU=AADDC Users,{suffix}");
        let primary = if prefix == "b" && i == 0 {
            "sales@example.com".to_string()
        } else {
            format!("{prefix}{i}@example.com")
        };
        writeln!(out, "dn: {dn}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user").unwrap();
        writeln!(out, "cn: {prefix} {i}\nsn: {i}\ndisplayName: {prefix} {i}\nuserAccountControl: 512\nmail: {primary}").unwrap();
        writeln!(
            out,
            "proxyAddresses: SMTP:{primary}\nproxyAddresses: smtp:{prefix}{i}@example.de"
        )
        .unwrap();
        if i == 0 {
            if prefix == "a" {
                writeln!(out, "proxyAddresses: smtp:sales@example.com").unwrap();
            }
            writeln!(out, "proxyAddresses: smtp:info@example.de").unwrap();
        }
        writeln!(
            out,
            "department: {}\n",
            if i % 2 == 0 { "Sales" } else { "Support" }
        )
        .unwrap();
    }
    out
}

/// `n` service addresses kept by hand, as contacts in an LDIF export.
fn legacy(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        writeln!(out, "dn: CN=service {i},OU=Legacy,DC=legacy,DC=example\nobjectClass: contact\ncn: service {i}\nmail: service{i}@example.de\ndepartment: Legacy\n").unwrap();
    }
    out
}

const RULES: &str = "[profiles]\ndefault = \"Standard\"\n[[profiles.rule]]\nfrom_attribute = \"department\"\nmap = { Sales = \"Sales\", Support = \"Support\" }\n";

struct Forests {
    case: Case,
    a: Slapd,
    b: Slapd,
    ca: std::path::PathBuf,
    _pki: tempfile::TempDir,
}

impl Forests {
    fn start(a_users: usize, b_users: usize, legacy_entries: usize) -> Forests {
        let pki = tempfile::tempdir().unwrap();
        let ca = Ca::new("dirsync test CA");
        let ca_pem = ca.write_pem(&pki.path().join("ca.pem"));
        let cert = ca.server(
            pki.path(),
            "server",
            &["localhost", "127.0.0.1"],
            Validity::Current,
        );
        let a = Slapd::start_forest(FOREST_A, &forest(FOREST_A, "a", a_users), &cert, None);
        let b = Slapd::start_forest(FOREST_B, &forest(FOREST_B, "b", b_users), &cert, None);
        let case = Case::new();
        case.write("legacy.ldif", legacy(legacy_entries));
        let f = Forests {
            case,
            a,
            b,
            ca: ca_pem,
            _pki: pki,
        };
        f.config(f.b.ldaps_port, "", "");
        f
    }

    /// The config: both forests over LDAPS (forest B at `b_port`) and the LDIF; `first_rules`
    /// go before the profile mapping.
    fn config(&self, b_port: u16, first_rules: &str, guard: &str) {
        let ldap = |name: &str, port: u16, suffix: &str| {
            format!(
                "[[sources]]\nname = \"{name}\"\ntype = \"ldap\"\nurl = \"ldaps://127.0.0.1:{port}\"\n\
                 bind_dn = \"CN=dirsync-reader,{suffix}\"\npassword_env = \"{PW_ENV}\"\nca_file = {:?}\n\
                 base_dn = \"OU=AADDC Users,{suffix}\"\npage_size = 50\n",
                self.ca.display().to_string()
            )
        };
        self.case.write(
            "dirsync.toml",
            format!(
                "customer_id = \"12345\"\ndomains = [\"example.com\", \"example.de\"]\nstate_dir = \"state\"\n\
                 {}{}[[sources]]\nname = \"legacy\"\ntype = \"ldif\"\npath = \"legacy.ldif\"\n\
                 [output]\npath = \"out/retarus.map\"\n[guard]\n{guard}\n{}",
                ldap("forest-a", self.a.ldaps_port, FOREST_A),
                ldap("forest-b", b_port, FOREST_B),
                RULES.replacen("[[profiles.rule]]", &format!("{first_rules}[[profiles.rule]]"), 1),
            ),
        );
    }

    fn run(&self, args: &[&str]) -> Run {
        self.case.run_env(args, &[(PW_ENV, READER_PASSWORD)])
    }

    fn sync(&self) -> Run {
        self.run(&["sync", "--config", "dirsync.toml"])
    }

    fn map(&self) -> String {
        String::from_utf8(self.case.read("out/retarus.map").unwrap()).unwrap()
    }
}

/// The MAP of all three directories as one LDIF export (one source), same rules.
fn one_ldif_map(a: usize, b: usize, l: usize) -> String {
    let case = Case::new();
    let all = forest(FOREST_A, "a", a) + &forest(FOREST_B, "b", b) + &legacy(l);
    case.write("all.ldif", all);
    let config = case.ldif_config(std::path::Path::new("all.ldif"), "");
    let text = std::fs::read_to_string(&config).unwrap() + RULES;
    std::fs::write(&config, text).unwrap();
    let run = case.run(&["sync", "--config", "dirsync.toml", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    String::from_utf8(case.read("out/retarus.map").unwrap()).unwrap()
}

#[test]
fn two_forests_and_an_export_give_the_map_of_their_union_merged_by_the_rules() {
    let f = Forests::start(120, 80, 30);
    let run = f.sync();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        f.map(),
        one_ldif_map(120, 80, 30),
        "the merged MAP differs from the same entries as one export"
    );
    let map = f.map();
    // Primary wins across sources; an alias on objects of two sources: one DIR line, no MAP.
    assert!(
        map.contains("\tDIR:\tsales@example.com") && !map.contains("MAP:\tsales@example.com"),
        "{map}"
    );
    assert!(
        map.contains("\tDIR:\tinfo@example.de") && !map.contains("MAP:\tinfo@example.de"),
        "{map}"
    );
    // (slapd writes DNs in its own case.)
    assert!(
        run.stderr.to_lowercase().contains("cn=a 0,ou=aaddc users,dc=example,dc=com (source forest-a) and cn=b 0,ou=aaddc users,dc=subsidiary,dc=example (source forest-b)"),
        "the shared alias warning names source and DN of each holder: {run:?}"
    );
    for line in [
        "source forest-a: 120 entries from ldaps://127.0.0.1:",
        "source forest-b: 80 entries from ldaps://127.0.0.1:",
        "legacy.ldif, 30 addresses written",
        "source forest-a: 120 entries",
        "read 230 objects from 3 sources (forest-a, forest-b, legacy)",
    ] {
        assert!(run.stderr.contains(line), "{line:?} missing: {run:?}");
    }
    let explain = f.run(&["explain", "--config", "dirsync.toml", "sales@example.com"]);
    assert_eq!(explain.code, 0, "{explain:?}");
    assert!(
        explain.stdout.contains("(source forest-b)")
            && explain.stdout.contains("(source forest-a)"),
        "{explain:?}"
    );
    let check = f.run(&["check", "--config", "dirsync.toml"]);
    assert_eq!(check.code, 0, "{check:?}");
    for name in ["forest-a", "forest-b", "legacy"] {
        assert!(
            check.stdout.contains(&format!("source {name}: ")),
            "{check:?}"
        );
    }
    assert!(
        check
            .stdout
            .contains("bind succeeded; 80 entries in OU=AADDC Users,DC=subsidiary,DC=example"),
        "{check:?}"
    );
    // A rule that selects by source.
    // (before the department mapping: the first matching profile rule wins)
    f.config(f.b.ldaps_port, "[[profiles.rule]]\nname = \"subsidiary\"\nwhen = { source = \"forest-b\" }\nprofile = \"Subsidiary\"\n", "");
    let run = f.run(&["sync", "--config", "dirsync.toml", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let map = f.map();
    assert!(
        map.contains("PROFILE:\tb7@example.com\tSubsidiary"),
        "{map}"
    );
    assert!(map.contains("PROFILE:\ta7@example.com\tSupport"), "{map}");
}

#[test]
fn one_source_failing_mid_read_ships_nothing() {
    let mut f = Forests::start(60, 300, 10);
    let run = f.sync();
    assert_eq!(run.code, 0, "{run:?}");
    let before = files(&f.case);
    // Forest B's connection is cut after a few of its six pages have been asked for.
    for cut in [1000, 1400] {
        let (port, reached) = proxy(f.b.ldaps_port, cut, AtLimit::Cut);
        f.config(port, "", "");
        let run = f.sync();
        assert_eq!(run.code, 4, "cut after {cut} bytes: {run:?}");
        assert!(reached.load(std::sync::atomic::Ordering::SeqCst));
        assert!(
            run.error_line()
                .contains("1 of 3 sources failed, so none is used: source forest-b:"),
            "{run:?}"
        );
        assert_eq!(files(&f.case), before, "the MAP or the state changed");
    }
    // Forest B's server stopped.
    f.config(f.b.ldaps_port, "", "");
    f.b.stop();
    let run = f.sync();
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.error_line()
            .contains("source forest-b: cannot connect to"),
        "{run:?}"
    );
    assert_eq!(files(&f.case), before, "the MAP or the state changed");
}

#[test]
fn a_source_shrinking_by_half_is_refused_though_the_total_passes() {
    let f = Forests::start(400, 200, 100);
    let run = f.sync();
    assert_eq!(run.code, 0, "{run:?}");
    let counts = String::from_utf8(f.case.read("state/last-sources.json").unwrap()).unwrap();
    assert!(counts.contains("\"legacy\": 100"), "{counts}");
    let before = files(&f.case);
    // The export lost half its entries: 50 of ~1300 addresses in total (4 %), 50 % of legacy.
    f.case.write("legacy.ldif", legacy(50));
    let run = f.sync();
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        !run.stderr.contains("previous addresses would be removed")
            && !run.stdout.contains("previous addresses would be removed"),
        "the total alone must pass: {run:?}"
    );
    assert!(
        run.stdout
            .contains("source legacy: 100 -> 50 addresses (-50, 50.0%)")
            || run
                .stderr
                .contains("source legacy: 100 -> 50 addresses (-50, 50.0%)"),
        "{run:?}"
    );
    assert_eq!(files(&f.case)[0], before[0], "the MAP file changed");
    assert!(f.case.read("state/refused.map").is_some());
    // --force ships it, and the new counts are recorded.
    let run = f.run(&["sync", "--config", "dirsync.toml", "--force"]);
    assert_eq!(run.code, 0, "{run:?}");
    let counts = String::from_utf8(f.case.read("state/last-sources.json").unwrap()).unwrap();
    assert!(counts.contains("\"legacy\": 50"), "{counts}");
}

/// Exchange data for one source: shared mailboxes by primary address, collected now.
fn exchange_data(shared: &[&str]) -> String {
    let fixture =
        std::fs::read_to_string(crate::util::repo().join("tests/data/exchange/full.json")).unwrap();
    let mut data: serde_json::Value = serde_json::from_str(&fixture).unwrap();
    data["collectedAt"] = serde_json::json!(humantime::format_rfc3339_seconds(
        std::time::SystemTime::now()
    )
    .to_string());
    data["recipients"] = shared
        .iter()
        .map(|a| serde_json::json!({"recipientTypeDetails": "SharedMailbox", "primarySmtpAddress": a,
            "emailAddresses": [format!("SMTP:{a}")], "externalDirectoryObjectId": null, "displayName": a}))
        .collect();
    for k in ["dynamicDistributionGroups", "publicFolders", "groupOwners"] {
        data[k] = serde_json::json!([]);
    }
    data.to_string()
}

#[test]
fn each_tenant_s_exchange_data_merges_into_its_own_source_only() {
    let f = Forests::start(10, 10, 2);
    f.case
        .write("exo-a.json", exchange_data(&["a3@example.com"]));
    // Tenant B's data names an address of forest A: it must not touch forest A's object.
    f.case.write(
        "exo-b.json",
        exchange_data(&["b4@example.com", "a5@example.com"]),
    );
    f.config(
        f.b.ldaps_port,
        "[[profiles.rule]]\nwhen = { kind = \"shared_mailbox\" }\nprofile = \"Shared\"\n",
        "",
    );
    let toml = String::from_utf8(f.case.read("dirsync.toml").unwrap()).unwrap();
    let blocks = "[[exchange]]\nsource = \"forest-a\"\ninput = 'exo-a.json'\nadd_exchange_only = false\n\
                  [[exchange]]\nsource = \"forest-b\"\ninput = 'exo-b.json'\nadd_exchange_only = false\n";
    f.case.write(
        "dirsync.toml",
        toml.replace("[output]", &format!("{blocks}[output]")),
    );
    let run = f.sync();
    assert_eq!(run.code, 0, "{run:?}");
    let map = f.map();
    assert!(map.contains("PROFILE:\ta3@example.com\tShared"), "{map}");
    assert!(map.contains("PROFILE:\tb4@example.com\tShared"), "{map}");
    assert!(
        map.contains("PROFILE:\ta5@example.com\tSupport"),
        "tenant B's data reached forest A: {map}"
    );
    assert!(
        run.stderr.contains("source forest-a: Exchange data of")
            && run.stderr.contains("source forest-b: Exchange data of"),
        "{run:?}"
    );
    // Several sources and an [exchange] block without its source: a configuration error.
    f.case.write(
        "dirsync.toml",
        toml.replace("[output]", "[exchange]\ninput = 'exo-a.json'\n[output]"),
    );
    let run = f.sync();
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("exchange.source: missing; with several sources, name the one whose tenant this Exchange data belongs to (forest-a, forest-b, legacy)"), "{run:?}");
}
