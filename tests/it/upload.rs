//! `sync` through the deletion guard to a real OpenSSH SFTP server.

use crate::sshd::{self, Sshd};
use crate::util::{users_ldif, Case, Run};

const PW_ENV: &str = "DIRSYNC_TEST_SFTP_PASSWORD";

/// A case with an LDIF of `users` users and an [upload] section; `auth` and `host_key` are
/// lines of that section.
fn setup(
    case: &Case,
    server: &Sshd,
    port: u16,
    users: usize,
    auth: &str,
    host_key: &str,
    extra: &str,
) {
    let ldif = case.write("export.ldif", users_ldif(users));
    case.ldif_config(
        &ldif,
        &format!(
            "[upload]\ntype = \"sftp\"\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"{}\"\n{auth}\n{host_key}\n\
             remote_dir = {:?}\nretries = 1\ntimeout_seconds = 10\n{extra}\n",
            sshd::USER,
            server.upload_dir().display().to_string()
        ),
    );
}

fn key_auth(server: &Sshd) -> String {
    format!(
        "key_file = {:?}",
        server.key("client_key").display().to_string()
    )
}

fn known_hosts(case: &Case, server: &Sshd, host_key: &str) -> String {
    let path = case.write("known_hosts", server.known_hosts_line(host_key));
    format!("known_hosts = {:?}", path.display().to_string())
}

fn sync(case: &Case, extra: &[&str]) -> Run {
    let mut args = vec!["sync", "--config", "dirsync.toml"];
    args.extend_from_slice(extra);
    case.run_env(&args, &[(PW_ENV, sshd::password())])
}

fn remote(server: &Sshd) -> Option<Vec<u8>> {
    std::fs::read(server.upload_dir().join("12345.map")).ok()
}

fn remote_names(server: &Sshd) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(server.upload_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn full_sync_uploads_the_exact_map_and_records_it() {
    let server = Sshd::start();
    let case = Case::new();
    setup(
        &case,
        &server,
        server.port,
        50,
        &key_auth(&server),
        &known_hosts(&case, &server, "host_ed25519"),
        "",
    );
    let run = sync(&case, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let local = case.read("out/retarus.map").unwrap();
    assert_eq!(remote(&server).unwrap(), local);
    assert_eq!(case.read("state/last-uploaded.map").unwrap(), local);
    assert_eq!(
        remote_names(&server),
        ["12345.map"],
        "no temporary file may stay behind"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&case.read("state/last-run.json").unwrap()).unwrap();
    assert_eq!(report["outcome"], "uploaded");
    assert_eq!(
        report["upload"]["host_key"],
        server.fingerprint("host_ed25519")
    );
    // The next run replaces the file (SFTPv3 cannot rename onto it: dirsync removes it first).
    case.write("export.ldif", users_ldif(52));
    let run = sync(&case, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        remote(&server).unwrap(),
        case.read("out/retarus.map").unwrap()
    );
    assert_eq!(remote_names(&server), ["12345.map"]);
}

#[test]
fn password_login_works_and_a_wrong_password_or_key_exits_6() {
    let server = Sshd::start();
    let case = Case::new();
    let kh = known_hosts(&case, &server, "host_ed25519");
    setup(
        &case,
        &server,
        server.port,
        5,
        &format!("password_env = \"{PW_ENV}\""),
        &kh,
        "",
    );
    let run = sync(&case, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let uploaded = remote(&server);

    let run = case.run_env(
        &["sync", "--config", "dirsync.toml"],
        &[(PW_ENV, "wrong-password")],
    );
    assert_eq!(run.code, 6, "{run:?}");
    assert!(
        run.error_line().contains(&format!(
            "SFTP login as {} with the password from environment variable {PW_ENV} was refused",
            sshd::USER
        )),
        "{run:?}"
    );
    assert!(
        !run.stderr.contains("wrong-password") && !run.stderr.contains(sshd::password()),
        "a password leaked: {run:?}"
    );
    assert!(
        !run.stderr.contains("retrying"),
        "a refused login is not retried: {run:?}"
    );

    setup(
        &case,
        &server,
        server.port,
        5,
        &format!(
            "key_file = {:?}",
            server.key("other_key").display().to_string()
        ),
        &kh,
        "",
    );
    let run = sync(&case, &[]);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(
        run.error_line()
            .contains("is its public key registered with Retarus"),
        "{run:?}"
    );
    assert_eq!(remote(&server), uploaded, "the remote file changed");
}

#[test]
fn unknown_or_changed_host_keys_are_refused_before_authenticating() {
    let server = Sshd::start();
    let other = Sshd::start();
    let case = Case::new();
    let cases = [
        (
            format!(
                "known_hosts = {:?}",
                case.write("empty_known_hosts", "# nothing\n")
                    .display()
                    .to_string()
            ),
            "has no host key for [127.0.0.1]:",
        ),
        // The other server's key recorded under this server's name: a mismatch.
        (
            format!(
                "known_hosts = {:?}",
                case.write(
                    "wrong_known_hosts",
                    other
                        .known_hosts_line("host_ed25519")
                        .replace(&other.port.to_string(), &server.port.to_string())
                )
                .display()
                .to_string()
            ),
            "HOST KEY MISMATCH",
        ),
        (
            format!("host_key_sha256 = {:?}", other.fingerprint("host_ed25519")),
            "HOST KEY MISMATCH",
        ),
    ];
    for (host_key, message) in cases {
        setup(
            &case,
            &server,
            server.port,
            5,
            &key_auth(&server),
            &host_key,
            "",
        );
        let run = sync(&case, &[]);
        assert_eq!(run.code, 6, "{run:?}");
        assert!(
            run.error_line().contains(message),
            "expected {message:?}: {run:?}"
        );
        if message == "HOST KEY MISMATCH" {
            assert!(
                run.error_line()
                    .contains(&server.fingerprint("host_ed25519")),
                "both fingerprints: {run:?}"
            );
            assert!(
                run.error_line()
                    .contains(&other.fingerprint("host_ed25519")),
                "both fingerprints: {run:?}"
            );
        }
    }
    let log = server.log();
    assert!(
        !log.contains("Accepted") && !log.contains("Failed"),
        "credentials were offered: {log}"
    );
    assert!(remote(&server).is_none());
    assert!(case.read("state/last-uploaded.map").is_none());
}

#[test]
fn an_ecdsa_known_hosts_entry_matches_a_server_that_also_has_ed25519() {
    // libssh2 would negotiate ed25519 and report a mismatch unless told which type is recorded.
    let server = Sshd::start();
    let case = Case::new();
    setup(
        &case,
        &server,
        server.port,
        5,
        &key_auth(&server),
        &known_hosts(&case, &server, "host_ecdsa"),
        "",
    );
    let run = sync(&case, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let pin = format!("host_key_sha256 = {:?}", server.fingerprint("host_ed25519"));
    setup(&case, &server, server.port, 5, &key_auth(&server), &pin, "");
    assert_eq!(sync(&case, &[]).code, 0);
}

#[test]
fn sshd_stopped_before_the_upload_retries_exits_6_and_the_next_run_succeeds() {
    let mut server = Sshd::start();
    let case = Case::new();
    setup(
        &case,
        &server,
        server.port,
        20,
        &key_auth(&server),
        &known_hosts(&case, &server, "host_ed25519"),
        "",
    );
    assert_eq!(sync(&case, &[]).code, 0);
    let (uploaded, baseline) = (remote(&server), case.read("state/last-uploaded.map"));
    server.stop();
    case.write("export.ldif", users_ldif(21));
    let run = sync(&case, &[]);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(
        run.stderr.contains("upload attempt 1 of 2 failed") && run.stderr.contains("retrying"),
        "{run:?}"
    );
    assert!(
        run.error_line().contains("(after 2 attempts)")
            && run.error_line().contains("the next run uploads again"),
        "{run:?}"
    );
    assert_eq!(
        case.read("state/last-uploaded.map"),
        baseline,
        "state changed"
    );
    server.restart();
    assert_eq!(remote(&server), uploaded);
    let run = sync(&case, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        remote(&server).unwrap(),
        case.read("out/retarus.map").unwrap()
    );
}

#[test]
fn a_connection_cut_during_the_upload_never_leaves_a_partial_file_under_the_final_name() {
    let server = Sshd::start();
    let case = Case::new();
    let kh_line = server.known_hosts_line("host_ed25519");
    setup(
        &case,
        &server,
        server.port,
        2000,
        &key_auth(&server),
        &known_hosts(&case, &server, "host_ed25519"),
        "",
    );
    assert_eq!(sync(&case, &[]).code, 0);
    let (uploaded, baseline) = (
        remote(&server).unwrap(),
        case.read("state/last-uploaded.map"),
    );
    assert!(
        uploaded.len() > 150_000,
        "the map must be large enough to cut: {}",
        uploaded.len()
    );

    let (proxy, _) = crate::util::proxy(server.port, 60_000, crate::util::AtLimit::Cut);
    let kh = case.write(
        "known_hosts_proxy",
        kh_line.replace(&format!("]:{} ", server.port), &format!("]:{proxy} ")),
    );
    case.write("export.ldif", users_ldif(2001));
    setup(
        &case,
        &server,
        proxy,
        2001,
        &key_auth(&server),
        &format!("known_hosts = {:?}", kh.display().to_string()),
        "",
    );
    let run = sync(&case, &[]);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(
        run.stderr.contains("upload attempt 1 of 2 failed"),
        "{run:?}"
    );
    assert_eq!(
        remote(&server).unwrap(),
        uploaded,
        "the file under the final name changed"
    );
    assert_eq!(
        case.read("state/last-uploaded.map"),
        baseline,
        "state changed"
    );

    setup(
        &case,
        &server,
        server.port,
        2001,
        &key_auth(&server),
        &known_hosts(&case, &server, "host_ed25519"),
        "",
    );
    let run = sync(&case, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        remote(&server).unwrap(),
        case.read("out/retarus.map").unwrap()
    );
    assert_eq!(
        remote_names(&server),
        ["12345.map"],
        "the temporary file of the cut run was replaced"
    );
}

#[test]
fn an_existing_file_is_kept_when_replacing_is_not_allowed() {
    let server = Sshd::start();
    let case = Case::new();
    let kh = known_hosts(&case, &server, "host_ed25519");
    setup(
        &case,
        &server,
        server.port,
        5,
        &key_auth(&server),
        &kh,
        "replace_existing = false",
    );
    std::fs::write(server.upload_dir().join("12345.map"), "not yet picked up").unwrap();
    let run = sync(&case, &[]);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(
        run.error_line()
            .contains("exists on the server and upload.replace_existing = false"),
        "{run:?}"
    );
    assert_eq!(remote(&server).unwrap(), b"not yet picked up");
    assert_eq!(remote_names(&server), ["12345.map"]);
}

#[test]
fn the_guard_keeps_the_remote_file_and_force_uploads() {
    let server = Sshd::start();
    let case = Case::new();
    let kh = known_hosts(&case, &server, "host_ed25519");
    setup(
        &case,
        &server,
        server.port,
        100,
        &key_auth(&server),
        &kh,
        "",
    );
    assert_eq!(sync(&case, &[]).code, 0);
    let uploaded = remote(&server).unwrap();
    let output = case.read("out/retarus.map").unwrap();
    case.write("export.ldif", users_ldif(50));
    for dry in [&["--dry-run"][..], &[]] {
        let run = sync(&case, dry);
        assert_eq!(run.code, 3, "{run:?}");
        assert_eq!(remote(&server).unwrap(), uploaded, "remote file touched");
        assert_eq!(
            case.read("out/retarus.map").unwrap(),
            output,
            "output path touched"
        );
        assert!(case.read("state/refused.map").is_some(), "{run:?}");
    }
    let run = sync(&case, &["--force"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        remote(&server).unwrap(),
        case.read("out/retarus.map").unwrap()
    );
}

#[test]
fn file_name_template_and_check() {
    let server = Sshd::start();
    let case = Case::new();
    let kh = known_hosts(&case, &server, "host_ed25519");
    setup(
        &case,
        &server,
        server.port,
        5,
        &key_auth(&server),
        &kh,
        "file_name = \"{customer_id}-{date}.map\"",
    );
    let run = case.run(&["check", "--config", "dirsync.toml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "ok    upload: {}@127.0.0.1:{}: host key {} matches; login succeeded;",
            sshd::USER,
            server.port,
            server.fingerprint("host_ed25519")
        )),
        "{run:?}"
    );
    assert!(run.stdout.contains("is writable"), "{run:?}");
    assert!(
        remote_names(&server).is_empty(),
        "the probe file was not removed"
    );
    assert_eq!(sync(&case, &[]).code, 0);
    let names = remote_names(&server);
    assert_eq!(names.len(), 1);
    assert!(
        names[0].starts_with("12345-20")
            && names[0].ends_with(".map")
            && names[0].len() == "12345-20261127.map".len(),
        "{names:?}"
    );
}
