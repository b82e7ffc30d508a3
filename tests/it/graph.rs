//! The Microsoft Graph source against the local stand-in (tests/it/graph_standin.rs): the
//! same MAP as the same directory from LDIF, and every failure ending in exit 4 with the
//! MAP and the state as they were and no token or secret in any output.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::graph_standin::{app_certificate, AppCredential, Faults, StandIn, Tenant};
use crate::hostile::files;
use crate::util::{Case, Run};

const TENANT_ID: &str = "0b8c5f0e-1111-4222-8333-444455556666";
const CLIENT_ID: &str = "7d0e9a14-aaaa-4bbb-8ccc-dddddddddddd";
const SECRET: &str = "s3cr3t~Value-that-must-never-show";

const DEPARTMENTS: [&str; 4] = ["Sales", "Engineering", "Support", "Executive"];

fn id(kind: u32, i: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{i:012x}")
}

/// A tenant of `users` users, 20 mail-enabled groups, a security group "Executives" with a
/// nested "Exec Assistants", and 200 contacts; and the same directory as an AD LDIF export.
pub fn tenant(users: usize) -> (Tenant, String) {
    let mut t = Tenant::default();
    let mut ldif = String::new();
    let exec_dn = "CN=Executives,OU=Groups,DC=example,DC=com";
    let assist_dn = "CN=Exec Assistants,OU=Groups,DC=example,DC=com";
    let (exec, assist) = (id(2, 9000), id(2, 9001));
    let mut exec_members = vec![(assist.clone(), "#microsoft.graph.group")];
    let mut assist_members = Vec::new();
    for i in 0..users {
        let uid = id(1, i);
        let enabled = i % 50 != 0;
        let department = DEPARTMENTS[i % 4];
        let mut proxies = vec![
            format!("SMTP:user{i}@example.com"),
            format!("smtp:u{i}@example.de"),
            format!("X500:/o=ExchangeLabs/cn=Recipients/cn=user{i}"),
        ];
        if i == 1 || i == 2 {
            proxies.push("smtp:team@example.com".into());
        }
        let mailless = i % 97 == 0;
        let ext1 = (i % 3 == 0).then(|| "eu".to_string());
        let mut ext = serde_json::Map::new();
        for n in 1..=15 {
            ext.insert(
                format!("extensionAttribute{n}"),
                json!(if n == 1 { ext1.clone() } else { None }),
            );
        }
        t.users.push(json!({
            "id": uid,
            "displayName": format!("User {i}"),
            "givenName": format!("Given{i}"),
            "surname": format!("Sur{i}"),
            "userPrincipalName": format!("user{i}@example.onmicrosoft.com"),
            "accountEnabled": enabled,
            "mail": if mailless { Value::Null } else { json!(format!("user{i}@example.com")) },
            "proxyAddresses": if mailless { json!([]) } else { json!(proxies) },
            "department": department,
            "jobTitle": format!("Title {}", i % 7),
            "companyName": "Example AG",
            "officeLocation": "Berlin",
            "businessPhones": [],
            "onPremisesExtensionAttributes": ext,
        }));
        let dn = format!("CN=User {i},OU=Users,DC=example,DC=com");
        writeln!(ldif, "dn: {dn}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user").unwrap();
        writeln!(ldif, "displayName: User {i}\ngivenName: Given{i}\nsn: Sur{i}\nuserPrincipalName: user{i}@example.onmicrosoft.com").unwrap();
        writeln!(
            ldif,
            "userAccountControl: {}",
            if enabled { 512 } else { 514 }
        )
        .unwrap();
        if !mailless {
            writeln!(ldif, "mail: user{i}@example.com").unwrap();
            for p in &proxies {
                writeln!(ldif, "proxyAddresses: {p}").unwrap();
            }
        }
        writeln!(ldif, "department: {department}\ntitle: Title {}\ncompany: Example AG\nphysicalDeliveryOfficeName: Berlin", i % 7).unwrap();
        if let Some(e) = &ext1 {
            writeln!(ldif, "extensionAttribute1: {e}").unwrap();
        }
        if i % 100 == 5 {
            exec_members.push((uid.clone(), "#microsoft.graph.user"));
            writeln!(ldif, "memberOf: {exec_dn}").unwrap();
        }
        if i % 100 == 6 {
            assist_members.push((uid.clone(), "#microsoft.graph.user"));
            writeln!(ldif, "memberOf: {assist_dn}").unwrap();
        }
        ldif.push('\n');
    }
    for g in 0..20 {
        t.groups.push(json!({
            "id": id(2, g), "displayName": format!("Group {g}"), "mail": format!("group{g}@example.com"),
            "proxyAddresses": [format!("SMTP:group{g}@example.com"), format!("smtp:g{g}@example.de")],
            "mailEnabled": true, "securityEnabled": false, "groupTypes": ["Unified"],
        }));
        writeln!(ldif, "dn: CN=Group {g},OU=Groups,DC=example,DC=com\nobjectClass: top\nobjectClass: group\ndisplayName: Group {g}\nmail: group{g}@example.com\nproxyAddresses: SMTP:group{g}@example.com\nproxyAddresses: smtp:g{g}@example.de\n").unwrap();
    }
    for (gid, name, dn) in [
        (&exec, "Executives", exec_dn),
        (&assist, "Exec Assistants", assist_dn),
    ] {
        t.groups.push(json!({"id": gid, "displayName": name, "mail": null, "proxyAddresses": [], "mailEnabled": false, "securityEnabled": true, "groupTypes": []}));
        write!(
            ldif,
            "dn: {dn}\nobjectClass: top\nobjectClass: group\ndisplayName: {name}\n"
        )
        .unwrap();
        if name == "Exec Assistants" {
            writeln!(ldif, "memberOf: {exec_dn}").unwrap();
        }
        ldif.push('\n');
    }
    t.members.insert(exec, exec_members);
    t.members.insert(assist, assist_members);
    for c in 0..200 {
        let mut proxies = vec![format!("SMTP:ext{c}@partner.example")];
        if c % 2 == 0 {
            proxies.push(format!("smtp:contact{c}@example.de"));
        }
        t.contacts.push(json!({
            "id": id(3, c), "displayName": format!("Contact {c}"), "mail": format!("ext{c}@partner.example"),
            "proxyAddresses": proxies, "companyName": "Partner Ltd", "givenName": "C", "surname": format!("{c}"),
        }));
        writeln!(ldif, "dn: CN=Contact {c},OU=Contacts,DC=example,DC=com\nobjectClass: top\nobjectClass: contact\ndisplayName: Contact {c}\nmail: ext{c}@partner.example\ncompany: Partner Ltd\ngivenName: C\nsn: {c}").unwrap();
        for p in &proxies {
            writeln!(ldif, "proxyAddresses: {p}").unwrap();
        }
        ldif.push('\n');
    }
    (t, ldif)
}

/// Rules that read attributes under their AD names and a nested group.
const RULES: &str = r#"
[filter]
default = "include"
[[filter.rule]]
name = "keep disabled (shared mailboxes)"
action = "include"
when = { disabled = true }
[profiles]
default = "Standard"
aliases = true
[[profiles.rule]]
name = "executives, nested groups too"
when = { member_of = "Executives", transitive = true }
profile = "VIP"
[[profiles.rule]]
name = "by department"
from_attribute = "department"
map = { Sales = "Sales", Engineering = "Engineering", Support = "Support" }
[signature]
max_length = 80
fields = { Name = "{givenName} {sn}", Title = "title", Company = "company", Office = "physicalDeliveryOfficeName" }
[[routing.rule]]
name = "EU data boundary"
key = "route"
when = { attribute = "extensionAttribute1", equals = "eu" }
value = "eu-relay"
"#;

const HEAD: &str =
    "customer_id = \"12345\"\ndomains = [\"example.com\", \"example.de\"]\nstate_dir = \"state\"\n";

pub enum Cred {
    Certificate,
    /// OpenSSL 3's default: AES-256-CBC with PBKDF2, HMAC-SHA256.
    Pfx,
    /// What older Windows exports: 3DES with SHA-1 (`TripleDES-SHA1`).
    PfxLegacy,
    Secret,
}

/// A case with a stand-in and a config reading it; the credential files are in the case.
pub struct GraphCase {
    pub case: Case,
    pub standin: StandIn,
}

impl GraphCase {
    pub fn new(tenant: Tenant, cred: Cred, source_extra: &str) -> GraphCase {
        let case = Case::new();
        let (cert, key, app_cert) = app_certificate(case.dir.path(), "dirsync-app");
        let (credential, keys) = match cred {
            Cred::Certificate => (
                app_cert,
                format!(
                    "certificate_file = {:?}\nkey_file = {:?}\n",
                    s(&cert),
                    s(&key)
                ),
            ),
            Cred::Pfx | Cred::PfxLegacy => {
                let pfx = case.path("dirsync-app.pfx");
                let legacy: &[&str] = match cred {
                    Cred::PfxLegacy => &[
                        "-keypbe",
                        "PBE-SHA1-3DES",
                        "-certpbe",
                        "PBE-SHA1-3DES",
                        "-macalg",
                        "sha1",
                    ],
                    _ => &[],
                };
                let out = std::process::Command::new("openssl")
                    .args(["pkcs12", "-export", "-passout", "env:PFX_PASSWORD"])
                    .args(legacy)
                    .arg("-inkey")
                    .arg(&key)
                    .arg("-in")
                    .arg(&cert)
                    .arg("-out")
                    .arg(&pfx)
                    .env("PFX_PASSWORD", SECRET)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                (
                    app_cert,
                    format!(
                        "pfx_file = {:?}\npfx_password_env = \"DIRSYNC_TEST_PFX\"\n",
                        s(&pfx)
                    ),
                )
            }
            Cred::Secret => (
                AppCredential::Secret {
                    value: SECRET.into(),
                    expired: false,
                },
                "client_secret_env = \"DIRSYNC_TEST_SECRET\"\n".to_string(),
            ),
        };
        let standin = StandIn::start(
            case.dir.path(),
            TENANT_ID,
            CLIENT_ID,
            credential,
            tenant,
            Faults::default(),
        );
        let gc = GraphCase { case, standin };
        gc.config(&keys, source_extra);
        gc
    }

    /// Writes dirsync.toml with these credential keys and further source keys.
    pub fn config(&self, keys: &str, source_extra: &str) {
        let url = &self.standin.url;
        self.case.write(
            "dirsync.toml",
            format!(
                "{HEAD}[source]\ntype = \"graph\"\ntenant_id = \"{TENANT_ID}\"\nclient_id = \"{CLIENT_ID}\"\n{keys}\
                 login_url = \"{url}\"\ngraph_url = \"{url}\"\nca_file = {:?}\n{source_extra}\n\
                 [output]\npath = \"out/retarus.map\"\n{RULES}",
                s(&self.standin.ca_file)
            ),
        );
    }

    pub fn sync(&self) -> Run {
        self.run(&["sync", "--config", "dirsync.toml"])
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let run = self.case.run_env(
            args,
            &[
                ("DIRSYNC_TEST_SECRET", SECRET),
                ("DIRSYNC_TEST_PFX", SECRET),
            ],
        );
        self.assert_no_secret(&run);
        run
    }

    /// No token and no secret in the output, the log or the run report.
    fn assert_no_secret(&self, run: &Run) {
        let mut texts = vec![run.stdout.clone(), run.stderr.clone()];
        for dir in ["state", "logs"] {
            if let Ok(rd) = std::fs::read_dir(self.case.path(dir)) {
                for e in rd.flatten() {
                    if let Ok(t) = std::fs::read_to_string(e.path()) {
                        texts.push(t);
                    }
                }
            }
        }
        for t in texts {
            assert!(!t.contains(SECRET), "the secret leaked: {t}");
            assert!(!t.contains("eyJ0-token-"), "a token leaked: {t}");
        }
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The MAP of the same directory from LDIF, with the same rules.
fn ldif_map(ldif: &str) -> Vec<u8> {
    let case = Case::new();
    case.write("export.ldif", ldif);
    case.write(
        "dirsync.toml",
        format!("{HEAD}[source]\ntype = \"ldif\"\npath = \"export.ldif\"\n[output]\npath = \"out/retarus.map\"\n{RULES}"),
    );
    let run = case.run(&["sync", "--config", "dirsync.toml", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    case.read("out/retarus.map").unwrap()
}

#[test]
fn a_10000_user_tenant_gives_the_same_map_as_the_same_directory_from_ldif() {
    let (tenant, ldif) = tenant(10_000);
    let gc = GraphCase::new(tenant, Cred::Certificate, "");
    let started = Instant::now();
    let run = gc.sync();
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    eprintln!("10,000-user tenant read and synced in {took:?}");
    let map = gc.case.read("out/retarus.map").unwrap();
    let expected = ldif_map(&ldif);
    assert!(map == expected, "the Graph MAP differs from the LDIF MAP");
    let text = String::from_utf8(map).unwrap();
    assert!(text.contains("\tVIP"), "the nested group's members get VIP");
    assert!(text.contains("eu-relay"));
    // One token; 11 pages of users ($top=999), the $select exactly what the rules need.
    assert_eq!(gc.standin.seen(|s| s.tokens_issued), 1);
    let users: Vec<String> = gc.standin.seen(|s| {
        s.requests
            .iter()
            .filter(|r| r.starts_with("/v1.0/users?"))
            .cloned()
            .collect()
    });
    assert_eq!(users.len(), 11, "{users:?}");
    let first = &users[0];
    for prop in [
        "id",
        "displayName",
        "proxyAddresses",
        "mail",
        "accountEnabled",
        "department",
        "givenName",
        "surname",
        "jobTitle",
        "companyName",
        "officeLocation",
        "onPremisesExtensionAttributes",
    ] {
        assert!(first.contains(prop), "{prop} not selected: {first}");
    }
    assert!(
        !first.contains("mobilePhone") && first.contains("$top=999"),
        "{first}"
    );
    assert!(
        run.stderr.contains("(user 10000, group 22, contact 200;"),
        "{run:?}"
    );
}

/// A small tenant over several pages ($top = 100: 3 pages of users), after one good sync.
fn baseline(cred: Cred) -> (GraphCase, crate::hostile::Files) {
    let (tenant, _) = tenant(300);
    let gc = GraphCase::new(tenant, cred, "page_size = 100");
    let run = gc.sync();
    assert_eq!(run.code, 0, "{run:?}");
    let before = files(&gc.case);
    assert!(before[0].1.is_some());
    (gc, before)
}

/// Exit 4 within `limit`, the error naming `expect`, the MAP and the state as they were.
fn refused(gc: &GraphCase, before: &crate::hostile::Files, expect: &str, limit: Duration) -> Run {
    let started = Instant::now();
    let run = gc.sync();
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.error_line().contains(expect),
        "expected {expect:?}: {run:?}"
    );
    assert!(
        started.elapsed() < limit,
        "took {:?}: {run:?}",
        started.elapsed()
    );
    assert_eq!(
        &files(&gc.case),
        before,
        "the MAP file or the state changed: {run:?}"
    );
    let report = String::from_utf8(gc.case.read("state/last-run.json").unwrap()).unwrap();
    assert!(report.contains("\"exit_code\": 4"), "{report}");
    run
}

const QUICK: Duration = Duration::from_secs(15);

#[test]
fn failures_mid_listing_end_in_exit_4_with_map_and_state_untouched() {
    let (gc, before) = baseline(Cred::Certificate);
    let cases: Vec<(Faults, &str)> = vec![
        (Faults { status: Some((1, 500)), ..Faults::default() }, "Graph answered HTTP 500 for /users [generalException"),
        (Faults { status: Some((2, 503)), ..Faults::default() }, "Graph stayed throttled or busy for /users (HTTP 503)"),
        (Faults { truncated_json: Some(1), ..Faults::default() }, "is not the JSON Graph documents"),
        (Faults { broken_body: Some(1), ..Faults::default() }, "broke off or is too large"),
        (Faults { forbidden: Some("contacts"), ..Faults::default() }, "grant admin consent for User.Read.All, Group.Read.All, OrgContact.Read.All (application permissions; this one needs OrgContact.Read.All)"),
        (Faults { refuse_tokens: true, ..Faults::default() }, "Graph refused the token twice"),
    ];
    for (faults, expect) in cases {
        gc.standin.set_faults(faults);
        refused(&gc, &before, expect, QUICK);
    }
}

#[test]
fn a_next_link_to_another_host_is_refused_and_the_token_never_goes_there() {
    let (gc, before) = baseline(Cred::Secret);
    gc.standin.set_faults(Faults {
        foreign_next: Some(0),
        ..Faults::default()
    });
    let run = refused(&gc, &before, "outside", QUICK);
    assert!(
        run.error_line().contains(&format!(
            "Graph sent a link to {}/v1.0/users for /users",
            gc.standin.foreign_url
        )),
        "{run:?}"
    );
    assert!(!run.error_line().contains("skiptoken"), "{run:?}");
    assert_eq!(
        gc.standin.seen(|s| s.foreign_requests),
        0,
        "the other host was contacted"
    );
    assert!(!gc.standin.seen(|s| s.foreign_authorization));
}

#[test]
fn throttling_and_an_expired_token_mid_listing_are_survived() {
    let (gc, before) = baseline(Cred::Certificate);
    gc.standin.set_faults(Faults {
        throttle: Some((1, 2)),
        token_requests: Some(3),
        ..Faults::default()
    });
    let issued = gc.standin.seen(|s| s.tokens_issued);
    let started = Instant::now();
    let run = gc.sync();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After: 1 was not honoured twice"
    );
    assert!(
        run.stderr
            .contains("Graph throttled the read of /users (HTTP 429); waiting 1s as it asked"),
        "{run:?}"
    );
    assert!(
        gc.standin.seen(|s| s.tokens_issued) >= issued + 2,
        "the token was not renewed"
    );
    assert_eq!(
        files(&gc.case)[0],
        before[0],
        "the same directory gives the same MAP"
    );
}

#[test]
fn sign_in_errors_are_decoded_into_the_fix() {
    let (gc, before) = baseline(Cred::Certificate);
    let toml = String::from_utf8(gc.case.read("dirsync.toml").unwrap()).unwrap();
    let variants = [
        (
            toml.replace(TENANT_ID, "contoso.example"),
            "tenant contoso.example was not found: set source.tenant_id",
        ),
        (
            toml.replace(
                &format!("client_id = \"{CLIENT_ID}\""),
                "client_id = \"11111111-2222-4333-8444-555555555555\"",
            ),
            "the application 11111111-2222-4333-8444-555555555555 is not known in tenant",
        ),
    ];
    for (text, expect) in variants {
        gc.case.write("dirsync.toml", text);
        let run = refused(&gc, &before, expect, QUICK);
        assert!(
            run.error_line().contains("(trace id 1111-trace)"),
            "{run:?}"
        );
    }
    // A certificate that is not the registered one.
    let (cert, key, _) = app_certificate(gc.case.dir.path(), "not-registered");
    gc.config(
        &format!(
            "certificate_file = {:?}\nkey_file = {:?}\n",
            s(&cert),
            s(&key)
        ),
        "page_size = 100",
    );
    refused(&gc, &before, "the client assertion's signature was not accepted: upload this certificate (certificate CN=not-registered", QUICK);
    // A key that is not the certificate's: refused before anything is sent.
    let (cert0, _, _) = (gc.case.path("dirsync-app.crt"), (), ());
    gc.config(
        &format!(
            "certificate_file = {:?}\nkey_file = {:?}\n",
            s(&cert0),
            s(&key)
        ),
        "page_size = 100",
    );
    let tokens = gc.standin.seen(|s| s.tokens_issued);
    refused(&gc, &before, "does not belong to the certificate", QUICK);
    assert_eq!(gc.standin.seen(|s| s.tokens_issued), tokens);
}

#[test]
fn client_secret_errors_name_the_fix() {
    let (tenant, _) = tenant(10);
    for (registered, expired, expect) in [
        (
            "another-value",
            false,
            "the client secret is wrong: use the secret's Value",
        ),
        (
            SECRET,
            true,
            "the client secret has expired: create a new one",
        ),
    ] {
        let gc = GraphCase::new(tenant.clone(), Cred::Secret, "");
        drop(gc.standin);
        let standin = StandIn::start(
            gc.case.dir.path(),
            TENANT_ID,
            CLIENT_ID,
            AppCredential::Secret {
                value: registered.into(),
                expired,
            },
            tenant.clone(),
            Faults::default(),
        );
        let gc = GraphCase {
            case: gc.case,
            standin,
        };
        gc.config("client_secret_env = \"DIRSYNC_TEST_SECRET\"\n", "");
        let run = gc.sync();
        assert_eq!(run.code, 4, "{run:?}");
        assert!(run.error_line().contains(expect), "{run:?}");
        assert!(gc.case.read("out/retarus.map").is_none());
    }
}

#[test]
fn a_pfx_old_and_new_and_a_client_secret_sign_in_too_and_check_says_how() {
    let (tenant, ldif) = tenant(120);
    let expected = ldif_map(&ldif);
    for cred in [Cred::Pfx, Cred::PfxLegacy, Cred::Secret] {
        let gc = GraphCase::new(tenant.clone(), cred, "");
        let check = gc.run(&["check", "--config", "dirsync.toml"]);
        assert_eq!(check.code, 0, "{check:?}");
        assert!(check.stdout.contains("signed in with"), "{check:?}");
        assert!(
            check
                .stdout
                .contains("120 entries in users; 22 entries in groups; 200 entries in contacts"),
            "{check:?}"
        );
        let run = gc.sync();
        assert_eq!(run.code, 0, "{run:?}");
        assert!(gc.case.read("out/retarus.map").unwrap() == expected);
    }
}

#[test]
fn exchange_data_merges_over_graph_by_object_id() {
    let (tenant, _) = tenant(30);
    let gc = GraphCase::new(tenant, Cred::Certificate, "");
    let fixture =
        std::fs::read_to_string(crate::util::repo().join("tests/data/exchange/full.json")).unwrap();
    let mut data: Value = serde_json::from_str(&fixture).unwrap();
    data["collectedAt"] =
        json!(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string());
    data["recipients"] = json!([{
        "recipientTypeDetails": "SharedMailbox",
        "primarySmtpAddress": "user3@example.com",
        "emailAddresses": ["SMTP:user3@example.com", "smtp:shared3@example.com"],
        "externalDirectoryObjectId": id(1, 3).to_uppercase(),
        "displayName": "User 3"
    }]);
    for k in ["dynamicDistributionGroups", "publicFolders", "groupOwners"] {
        data[k] = json!([]);
    }
    gc.case.write("exchange.json", data.to_string());
    let toml = String::from_utf8(gc.case.read("dirsync.toml").unwrap()).unwrap();
    let toml = toml.replace("[output]", "[exchange]\ninput = 'exchange.json'\n\n[output]").replace(
        "[[profiles.rule]]\nname = \"executives",
        "[[profiles.rule]]\nname = \"shared\"\nwhen = { kind = \"shared_mailbox\" }\nprofile = \"Shared\"\n[[profiles.rule]]\nname = \"executives",
    );
    gc.case.write("dirsync.toml", toml);
    let run = gc.sync();
    assert_eq!(run.code, 0, "{run:?}");
    let map = String::from_utf8(gc.case.read("out/retarus.map").unwrap()).unwrap();
    let line = |needle: &str| {
        map.lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(
        line("shared3@example.com")
            .iter()
            .any(|l| l.contains("MAP:") && l.contains("user3@example.com")),
        "{map}"
    );
    assert!(
        line("user3@example.com")
            .iter()
            .any(|l| l.contains("PROFILE:") && l.contains("Shared")),
        "{map}"
    );
}

#[test]
fn a_tenant_and_an_export_in_one_map_fail_together() {
    let (tenant, _) = tenant(40);
    let gc = GraphCase::new(tenant, Cred::Secret, "");
    gc.case.write(
        "legacy.ldif",
        "dn: CN=scanner,OU=Legacy,DC=legacy\nobjectClass: contact\ncn: scanner\nmail: scanner@example.de\n\n",
    );
    let toml = String::from_utf8(gc.case.read("dirsync.toml").unwrap()).unwrap();
    let toml = toml
        .replace(
            "[source]\ntype = \"graph\"",
            "[[sources]]\nname = \"tenant\"\ntype = \"graph\"",
        )
        .replace(
            "[output]",
            "[[sources]]\nname = \"legacy\"\ntype = \"ldif\"\npath = \"legacy.ldif\"\n\n[output]",
        );
    gc.case.write("dirsync.toml", toml);
    let run = gc.sync();
    assert_eq!(run.code, 0, "{run:?}");
    let map = String::from_utf8(gc.case.read("out/retarus.map").unwrap()).unwrap();
    assert!(
        map.contains("\tDIR:\tscanner@example.de") && map.contains("\tDIR:\tuser39@example.com"),
        "{map}"
    );
    assert!(
        run.stderr.contains("source legacy: 1 entries from"),
        "{run:?}"
    );
    let before = files(&gc.case);
    gc.standin.set_faults(Faults {
        status: Some((0, 500)),
        ..Faults::default()
    });
    let run = gc.sync();
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.error_line().contains("1 of 2 sources failed, so none is used: source tenant: reading /users from Microsoft Graph"), "{run:?}");
    assert_eq!(files(&gc.case), before);
}
