//! The LDAP source against a real OpenLDAP slapd with AD's limits, over LDAPS.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::gen;
use crate::pki::{self, Ca, Validity};
use crate::slapd::{free_port, Slapd, READER_DN, READER_PASSWORD};
use crate::util::{Case, Run};

const BASE: &str = "OU=AADDC Users,DC=example,DC=com";
const PW_ENV: &str = "DIRSYNC_TEST_BIND_PASSWORD";

/// Writes a local-only LDAP config; `source_extra` adds keys to [source].
fn ldap_config(case: &Case, url: &str, source_extra: &str) {
    case.write(
        "dirsync.toml",
        format!(
            "customer_id = \"12345\"\ndomains = [\"example.com\", \"example.de\"]\nstate_dir = \"state\"\n\
             [source]\ntype = \"ldap\"\nurl = \"{url}\"\nbind_dn = \"{READER_DN}\"\npassword_env = \"{PW_ENV}\"\n\
             base_dn = \"{BASE}\"\n{source_extra}\n[output]\npath = \"out/retarus.map\"\n"
        ),
    );
}

fn sync(case: &Case, password: &str, extra: &[&str]) -> Run {
    let mut args = vec!["sync", "--config", "dirsync.toml"];
    args.extend_from_slice(extra);
    case.run_env(&args, &[(PW_ENV, password)])
}

struct Tls {
    _dir: tempfile::TempDir,
    ca_pem: std::path::PathBuf,
    good: pki::ServerCert,
}

fn tls() -> Tls {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("dirsync test CA");
    let ca_pem = ca.write_pem(&dir.path().join("ca.pem"));
    let good = ca.server(
        dir.path(),
        "server",
        &["localhost", "127.0.0.1"],
        Validity::Current,
    );
    Tls {
        _dir: dir,
        ca_pem,
        good,
    }
}

fn ca_line(path: &Path) -> String {
    format!("ca_file = {:?}", path.display().to_string())
}

#[test]
fn ldaps_read_of_10000_recipients_gives_the_same_bytes_as_the_ldif() {
    let tls = tls();
    let data = gen::directory(10_000);
    let server = Slapd::start(&data, &tls.good, None);

    let from_ldif = Case::new();
    let ldif = from_ldif.write("export.ldif", &data);
    from_ldif.ldif_config(&ldif, "");
    let run = from_ldif.run(&["sync", "--config", "dirsync.toml"]);
    assert_eq!(run.code, 0, "{run:?}");

    let from_ldap = Case::new();
    ldap_config(
        &from_ldap,
        &format!("ldaps://127.0.0.1:{}", server.ldaps_port),
        &ca_line(&tls.ca_pem),
    );
    let run = sync(&from_ldap, READER_PASSWORD, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("read 10150 objects from ldaps://127.0.0.1:"),
        "{run:?}"
    );

    let a = from_ldif.read("out/retarus.map").unwrap();
    let b = from_ldap.read("out/retarus.map").unwrap();
    let dirs = String::from_utf8_lossy(&b).matches("\tDIR:\t").count();
    assert!(dirs > 20_000, "only {dirs} DIR lines");
    assert!(a == b, "LDAP and LDIF maps differ");
    // More than one page was needed, as a normal (limited) user.
    assert!(
        server.log().matches("SRCH base=").count() >= 11,
        "paged search expected"
    );
}

#[test]
fn a_server_side_limit_in_the_middle_of_a_paged_read_exits_4_and_keeps_everything() {
    let tls = tls();
    // The server stops paged searches after 3000 entries in total.
    let server = Slapd::start(
        &gen::directory(5_000),
        &tls.good,
        Some("size.soft=1000 size.hard=1000 size.pr=1000 size.prtotal=3000"),
    );
    let case = Case::new();
    let url = format!("ldaps://127.0.0.1:{}", server.ldaps_port);
    ldap_config(
        &case,
        &url,
        &format!(
            "{}\nfilter = \"(|(objectClass=group)(objectClass=contact))\"",
            ca_line(&tls.ca_pem)
        ),
    );
    case.write(
        "dirsync.toml",
        std::fs::read_to_string(case.path("dirsync.toml")).unwrap()
            + "[guard]\nallow_empty_domains = [\"example.de\"]\n",
    );
    let run = sync(&case, READER_PASSWORD, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let (map, base) = (
        case.read("out/retarus.map"),
        case.read("state/last-uploaded.map"),
    );

    ldap_config(&case, &url, &ca_line(&tls.ca_pem));
    let run = sync(&case, READER_PASSWORD, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.error_line().contains("result code 4 sizeLimitExceeded"),
        "{run:?}"
    );
    assert!(run.error_line().contains("nothing is shipped"), "{run:?}");
    assert_eq!(case.read("out/retarus.map"), map);
    assert_eq!(case.read("state/last-uploaded.map"), base);
}

#[test]
fn wrong_password_exits_4_after_exactly_one_bind() {
    let tls = tls();
    let server = Slapd::start(&gen::directory(10), &tls.good, None);
    let case = Case::new();
    ldap_config(
        &case,
        &format!("ldaps://127.0.0.1:{}", server.ldaps_port),
        &ca_line(&tls.ca_pem),
    );
    let run = sync(&case, "wrong-password", &[]);
    assert_eq!(run.code, 4, "{run:?}");
    let e = run.error_line();
    assert!(e.contains("the server rejected the bind as CN=dirsync-reader,DC=example,DC=com (invalidCredentials"), "{run:?}");
    assert!(
        e.contains("Not retried") && e.contains("no password hash in the managed domain"),
        "{run:?}"
    );
    assert!(
        !run.stderr.contains("wrong-password"),
        "the password leaked: {run:?}"
    );
    assert_eq!(server.binds(), 1, "{}", server.log());
    assert!(case.read("out/retarus.map").is_none());
}

#[test]
fn untrusted_certificates_are_refused_before_the_bind() {
    let tls = tls();
    let dir = tempfile::tempdir().unwrap();
    let other_ca = Ca::new("some other CA");
    let other_pem = other_ca.write_pem(&dir.path().join("other.pem"));
    let ca = Ca::new("dirsync test CA 2");
    let ca_pem = ca.write_pem(&dir.path().join("ca2.pem"));
    let expired = ca.server(dir.path(), "expired", &["127.0.0.1"], Validity::Expired);
    let wrong_name = ca.server(
        dir.path(),
        "wrongname",
        &["ldaps.other.test"],
        Validity::Current,
    );

    let good = Slapd::start("", &tls.good, None);
    let cases: Vec<(Slapd, String, &str, &str)> = vec![
        (
            good,
            ca_line(&other_pem),
            "the certificate's issuer is not trusted",
            "tls_fingerprint_sha256 = \"",
        ),
        (
            Slapd::start("", &expired, None),
            ca_line(&ca_pem),
            "the certificate has expired",
            "Renew the secure LDAP certificate",
        ),
        (
            Slapd::start("", &wrong_name, None),
            ca_line(&ca_pem),
            "the certificate is not valid for the host name",
            "names: ldaps.other.test",
        ),
    ];
    for (server, source_extra, reason, fix) in &cases {
        let case = Case::new();
        ldap_config(
            &case,
            &format!("ldaps://127.0.0.1:{}", server.ldaps_port),
            source_extra,
        );
        let run = sync(&case, READER_PASSWORD, &[]);
        assert_eq!(run.code, 4, "{run:?}");
        let e = run.error_line();
        assert!(e.contains(reason), "expected {reason:?}: {run:?}");
        assert!(e.contains("The server presented: subject: CN="), "{run:?}");
        assert!(
            e.contains("SHA-256 fingerprint:") && e.contains(fix),
            "{run:?}"
        );
        assert_eq!(server.binds(), 0, "a bind was sent: {}", server.log());
    }
    // A wrong pin, even with a trusted CA.
    let server = &cases[0].0;
    let case = Case::new();
    let pin = format!(
        "{}\ntls_fingerprint_sha256 = \"{}\"",
        ca_line(&tls.ca_pem),
        "00".repeat(32)
    );
    ldap_config(
        &case,
        &format!("ldaps://127.0.0.1:{}", server.ldaps_port),
        &pin,
    );
    let run = sync(&case, READER_PASSWORD, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.error_line()
            .contains("does not match source.tls_fingerprint_sha256"),
        "{run:?}"
    );
    assert_eq!(server.binds(), 0);
}

#[test]
fn a_self_signed_certificate_is_trusted_by_pin_or_as_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let cert = pki::self_signed(dir.path(), "selfsigned", &["127.0.0.1"]);
    let server = Slapd::start(&gen::directory(20), &cert, None);
    let url = format!("ldaps://127.0.0.1:{}", server.ldaps_port);
    let fingerprint: String = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&cert.der)
            .iter()
            .map(|b| format!("{b:02X}:"))
            .collect::<String>()
            .trim_end_matches(':')
            .to_string()
    };
    let case = Case::new();
    ldap_config(
        &case,
        &url,
        &format!("tls_fingerprint_sha256 = \"{fingerprint}\""),
    );
    let run = sync(&case, READER_PASSWORD, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    // A system store holding another certificate with the same subject (Debian's snakeoil
    // certificate is CN=localhost too) changes nothing: the pin is all that counts.
    let impostor = pki::self_signed(dir.path(), "impostor", &["127.0.0.1"]);
    let store = impostor.cert.display().to_string();
    let with_store = |case: &Case| {
        case.run_env(
            &["sync", "--config", "dirsync.toml"],
            &[
                (PW_ENV, READER_PASSWORD),
                ("SSL_CERT_FILE", &store),
                ("SSL_CERT_DIR", "/nonexistent"),
            ],
        )
    };
    let run = with_store(&case);
    assert_eq!(
        run.code, 0,
        "pinned, with a same-subject certificate in the store: {run:?}"
    );
    ldap_config(&case, &url, &ca_line(&cert.cert));
    let run = sync(&case, READER_PASSWORD, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = with_store(&case);
    assert_eq!(
        run.code, 0,
        "ca_file, with a same-subject certificate in the store: {run:?}"
    );
    // Without either: refused, with the fingerprint to pin in the message.
    ldap_config(&case, &url, "");
    let run = sync(&case, READER_PASSWORD, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.error_line().contains(&fingerprint), "{run:?}");
}

#[test]
fn starttls_on_ldap_and_plaintext_refused_by_config() {
    let tls = tls();
    let server = Slapd::start(&gen::directory(20), &tls.good, None);
    let case = Case::new();
    let url = format!("ldap://127.0.0.1:{}", server.ldap_port);
    ldap_config(
        &case,
        &url,
        &format!("{}\nstarttls = true", ca_line(&tls.ca_pem)),
    );
    let run = sync(&case, READER_PASSWORD, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    ldap_config(&case, &url, "");
    let run = sync(&case, READER_PASSWORD, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("is unencrypted: use ldaps://"),
        "{run:?}"
    );
}

/// Forwards one TCP connection to `target` and kills the server (by PID) once more than
/// `after` bytes came back from it: a server that dies in the middle of a paged read.
fn killing_proxy(target: u16, after: usize, pid: u32) -> u16 {
    let port = free_port();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else {
            return;
        };
        let server = TcpStream::connect(("127.0.0.1", target)).unwrap();
        let sent = Arc::new(AtomicUsize::new(0));
        let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut c_read, &mut s_write);
        });
        let (mut s_read, mut c_write) = (server, client);
        let mut buf = [0u8; 16384];
        loop {
            let n = match s_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if c_write.write_all(&buf[..n]).is_err() {
                break;
            }
            if sent.fetch_add(n, Ordering::SeqCst) + n > after {
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        let _ = c_write.shutdown(std::net::Shutdown::Both);
    });
    port
}

#[test]
fn the_server_killed_in_the_middle_of_a_paged_read_exits_4_and_keeps_everything() {
    let tls = tls();
    let mut server = Slapd::start(&gen::directory(10_000), &tls.good, None);
    let case = Case::new();
    ldap_config(
        &case,
        &format!("ldaps://127.0.0.1:{}", server.ldaps_port),
        &format!("{}\npage_size = 500", ca_line(&tls.ca_pem)),
    );
    assert_eq!(sync(&case, READER_PASSWORD, &[]).code, 0);
    let (map, base) = (
        case.read("out/retarus.map"),
        case.read("state/last-uploaded.map"),
    );

    // About a third of the way through the read, the server dies.
    let proxy = killing_proxy(server.ldaps_port, 1_000_000, server.pid());
    ldap_config(
        &case,
        &format!("ldaps://localhost:{proxy}"),
        &format!("{}\npage_size = 500", ca_line(&tls.ca_pem)),
    );
    let run = sync(&case, READER_PASSWORD, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.error_line()
            .contains("the directory was not read completely, so nothing is shipped"),
        "{run:?}"
    );
    assert_eq!(case.read("out/retarus.map"), map, "MAP file changed");
    assert_eq!(
        case.read("state/last-uploaded.map"),
        base,
        "baseline changed"
    );
    server.stop();
}

#[test]
fn check_shows_the_certificate_counts_and_binds_once() {
    let tls = tls();
    let server = Slapd::start(&gen::directory(300), &tls.good, None);
    let case = Case::new();
    ldap_config(
        &case,
        &format!("ldaps://127.0.0.1:{}", server.ldaps_port),
        &ca_line(&tls.ca_pem),
    );
    let run = case.run_env(
        &["check", "--config", "dirsync.toml"],
        &[(PW_ENV, READER_PASSWORD)],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("ok    source: TLS certificate: subject: CN=localhost; issuer: CN=dirsync test CA; names: localhost, IP:127.0.0.1"), "{run:?}");
    assert!(
        run.stdout
            .contains("304 entries in OU=AADDC Users,DC=example,DC=com"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("(user 300, group 3, contact 1)"),
        "{run:?}"
    );
    assert_eq!(server.binds(), 1);
    let run = case.run_env(&["check", "--config", "dirsync.toml"], &[(PW_ENV, "bad")]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout
            .contains("FAIL  source: the server rejected the bind"),
        "{run:?}"
    );
    assert_eq!(server.binds(), 2, "check must bind once per run");
}

#[test]
fn a_certificate_near_its_end_is_warned_about_and_a_closed_port_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("expiry CA");
    let ca_pem = ca.write_pem(&dir.path().join("ca.pem"));
    let cert = ca.server(dir.path(), "soon", &["127.0.0.1"], Validity::EndsInDays(10));
    let server = Slapd::start(&gen::directory(10), &cert, None);
    let case = Case::new();
    ldap_config(
        &case,
        &format!("ldaps://127.0.0.1:{}", server.ldaps_port),
        &ca_line(&ca_pem),
    );
    let run = case.run_env(
        &["check", "--config", "dirsync.toml"],
        &[(PW_ENV, READER_PASSWORD)],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("expires in 9 days") || run.stderr.contains("expires in 10 days"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("renew it and update source.ca_file / tls_fingerprint_sha256 in time"),
        "{run:?}"
    );

    // Nothing listens: connection failures before the bind are retried (3 attempts), then exit 4.
    let closed = free_port();
    ldap_config(
        &case,
        &format!("ldaps://127.0.0.1:{closed}"),
        &ca_line(&ca_pem),
    );
    let run = sync(&case, READER_PASSWORD, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        // The backoff doubles (2 and 4 units; a unit is a second, 10 ms in the tests).
        run.stderr.contains("attempt 1 of 3; retrying in 20ms")
            && run.stderr.contains("attempt 2 of 3; retrying in 40ms"),
        "{run:?}"
    );
    assert!(
        run.error_line()
            .contains(&format!("cannot connect to ldaps://127.0.0.1:{closed}")),
        "{run:?}"
    );
    assert!(
        run.error_line()
            .contains(&format!("firewall / NSG allows TCP {closed} from")),
        "{run:?}"
    );
}

mod scripted {
    //! What only a scripted server produces: ranges and AD's silent page cap.
    use crate::fake_ad::{self, FakeAd, FakeEntry};
    use crate::util::Case;

    fn user(i: usize) -> FakeEntry {
        FakeEntry {
            dn: format!("CN=m{i},OU=AADDC Users,DC=example,DC=com"),
            attrs: vec![
                ("objectClass".into(), vec!["top".into(), "user".into()]),
                (
                    "proxyAddresses".into(),
                    vec![
                        format!("SMTP:m{i}@example.com"),
                        format!("smtp:m{i}@example.de"),
                    ],
                ),
            ],
        }
    }

    #[test]
    fn a_group_with_5000_members_is_read_completely_and_capped_pages_are_followed() {
        let mut entries: Vec<FakeEntry> = (0..1200).map(user).collect();
        entries.push(FakeEntry {
            dn: "CN=Everyone,OU=AADDC Users,DC=example,DC=com".into(),
            attrs: vec![
                ("objectClass".into(), vec!["top".into(), "group".into()]),
                (
                    "proxyAddresses".into(),
                    vec!["SMTP:everyone@example.com".into()],
                ),
                (
                    "member".into(),
                    (0..5000)
                        .map(|i| format!("CN=m{i},OU=AADDC Users,DC=example,DC=com"))
                        .collect(),
                ),
            ],
        });
        // MaxPageSize 300: dirsync asks for 1000 per page and gets 300, silently.
        let port = fake_ad::start(FakeAd::new(entries, 300));
        let case = Case::new();
        super::ldap_config(
            &case,
            &format!("ldap://127.0.0.1:{port}"),
            "allow_plaintext = true",
        );
        let env = [(super::PW_ENV, "anything")];
        let run = case.run_env(&["sync", "--config", "dirsync.toml"], &env);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stderr.contains("read 1201 objects"), "{run:?}");
        let map = String::from_utf8(case.read("out/retarus.map").unwrap()).unwrap();
        assert_eq!(map.matches("\tDIR:\t").count(), 2401);
        let run = case.run_env(
            &[
                "explain",
                "--config",
                "dirsync.toml",
                "everyone@example.com",
            ],
            &env,
        );
        assert!(run.stdout.contains("  5000 members"), "{run:?}");
        let run = case.run_env(&["check", "--config", "dirsync.toml"], &env);
        assert!(
            run.stdout.contains("1 continuation references skipped"),
            "{run:?}"
        );
    }

    /// A plain-LDAP config for a scripted server, and the run's environment.
    fn scripted_case(ad: FakeAd) -> (Case, [(&'static str, &'static str); 1]) {
        let port = fake_ad::start(ad);
        let case = Case::new();
        super::ldap_config(
            &case,
            &format!("ldap://127.0.0.1:{port}"),
            "allow_plaintext = true",
        );
        (case, [(super::PW_ENV, "anything")])
    }

    #[test]
    fn a_server_that_ignores_paging_is_read_in_one_go() {
        let mut ad = FakeAd::new((0..2500).map(user).collect(), 1000);
        ad.ignore_paging = true;
        let (case, env) = scripted_case(ad);
        let run = case.run_env(&["sync", "--config", "dirsync.toml"], &env);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stderr.contains("read 2500 objects"), "{run:?}");
        let map = String::from_utf8(case.read("out/retarus.map").unwrap()).unwrap();
        assert_eq!(map.matches("\tDIR:\t").count(), 5000);
    }

    #[test]
    fn a_notice_of_disconnection_in_the_middle_of_a_read_exits_4_and_writes_nothing() {
        let mut ad = FakeAd::new((0..2500).map(user).collect(), 1000);
        ad.disconnect_after = Some(1700);
        let (case, env) = scripted_case(ad);
        let run = case.run_env(&["sync", "--config", "dirsync.toml"], &env);
        assert_eq!(run.code, 4, "{run:?}");
        let error = run.error_line();
        assert!(
            error.contains("the server ended the connection: result code 52 unavailable")
                && error.contains("the server is shutting down")
                && error.contains("after 1700 entries")
                && error.contains("nothing is shipped"),
            "{run:?}"
        );
        assert!(case.read("out/retarus.map").is_none(), "{run:?}");
    }

    #[test]
    fn a_page_of_big_groups_larger_than_the_receive_buffer_is_read_completely() {
        // 300 groups of 2000 members: the first page is over 20 MB, more than dirsync keeps
        // unconverted, and every group needs a second (ranged) read of its members.
        let members = |g: usize| -> Vec<String> {
            (0..2000)
                .map(|i| format!("CN=member {i} of group {g},OU=AADDC Users,DC=example,DC=com"))
                .collect()
        };
        let entries = (0..300)
            .map(|g| FakeEntry {
                dn: format!("CN=g{g},OU=AADDC Users,DC=example,DC=com"),
                attrs: vec![
                    ("objectClass".into(), vec!["top".into(), "group".into()]),
                    (
                        "proxyAddresses".into(),
                        vec![format!("SMTP:g{g}@example.com")],
                    ),
                    ("member".into(), members(g)),
                ],
            })
            .chain((0..700).map(user))
            .collect();
        let (case, env) = scripted_case(FakeAd::new(entries, 1000));
        let run = case.run_env(
            &["explain", "--config", "dirsync.toml", "g299@example.com"],
            &env,
        );
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stdout.contains("  2000 members"), "{run:?}");
        let run = case.run_env(&["sync", "--config", "dirsync.toml"], &env);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stderr.contains("read 1000 objects"), "{run:?}");
        let map = String::from_utf8(case.read("out/retarus.map").unwrap()).unwrap();
        assert_eq!(map.matches("\tDIR:\t").count(), 300 + 1400);
    }
}

/// Anna Helper and the Helpdesk Team both carry `smtp:helpdesk@example.com`, neither as its
/// primary address: from the LDIF export and from slapd alike, one DIR line and no MAP line for
/// it (whose mailbox it is cannot be told), a warning naming both, and `explain` saying why.
#[test]
fn an_alias_of_two_objects_gets_one_dir_line_and_no_map_line_from_ldif_and_from_slapd() {
    let data = format!(
        "dn: CN=Anna Helper,{BASE}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\n\
         cn: Anna Helper\nsn: Helper\nsAMAccountName: anna\nuserAccountControl: 512\n\
         proxyAddresses: SMTP:anna.helper@example.com\nproxyAddresses: smtp:helpdesk@example.com\n\n\
         dn: CN=Helpdesk Team,{BASE}\nobjectClass: top\nobjectClass: group\ncn: Helpdesk Team\nsAMAccountName: helpdesk-team\n\
         groupType: 8\nproxyAddresses: SMTP:helpdesk-team@example.com\nproxyAddresses: smtp:helpdesk@example.com\n\n"
    );
    let expected = "12345|example.com\tDOMAIN:\texample.com\r\n\
                    12345|example.com\tDIR:\tanna.helper@example.com\r\n\
                    12345|example.com\tDIR:\thelpdesk-team@example.com\r\n\
                    12345|example.com\tDIR:\thelpdesk@example.com\r\n++++\r\n";
    let check = |case: &Case, run: &Run| {
        assert_eq!(run.code, 0, "{run:?}");
        let map = String::from_utf8(case.read("out/retarus.map").unwrap()).unwrap();
        assert_eq!(map, expected);
        // (slapd writes DNs in its own case.)
        assert!(
            run.stderr.to_lowercase().contains(&format!(
                "address helpdesk@example.com is an alias of cn=anna helper,{BASE} and cn=helpdesk team,{BASE} and the primary address of none: written once, without a map line"
            ).to_lowercase()),
            "{run:?}"
        );
    };
    let from_ldif = Case::new();
    let ldif = from_ldif.write("export.ldif", &data);
    from_ldif.ldif_config(&ldif, "");
    let config = std::fs::read_to_string(from_ldif.path("dirsync.toml")).unwrap();
    from_ldif.write(
        "dirsync.toml",
        config.replace("[\"example.com\", \"example.de\"]", "[\"example.com\"]"),
    );
    let run = from_ldif.run(&["sync", "--config", "dirsync.toml"]);
    check(&from_ldif, &run);
    let explain = from_ldif.run(&[
        "explain",
        "--config",
        "dirsync.toml",
        "helpdesk@example.com",
    ]);
    assert!(
        explain.stdout.contains(&format!("shared alias: an alias of CN=Anna Helper,{BASE} and CN=Helpdesk Team,{BASE} and the primary address of none: one DIR line, and no MAP line")),
        "{explain:?}"
    );
    assert!(
        explain
            .stdout
            .contains("MAP lines:\n  12345|example.com\tDIR:\thelpdesk@example.com\n"),
        "{explain:?}"
    );

    let tls = tls();
    let server = Slapd::start(&data, &tls.good, None);
    let from_ldap = Case::new();
    ldap_config(
        &from_ldap,
        &format!("ldaps://127.0.0.1:{}", server.ldaps_port),
        &ca_line(&tls.ca_pem),
    );
    let config = std::fs::read_to_string(from_ldap.path("dirsync.toml")).unwrap();
    from_ldap.write(
        "dirsync.toml",
        config.replace("[\"example.com\", \"example.de\"]", "[\"example.com\"]"),
    );
    let run = sync(&from_ldap, READER_PASSWORD, &[]);
    check(&from_ldap, &run);
}
