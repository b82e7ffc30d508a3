//! The Windows build doing the real job: `dirsync.exe` under Wine against the project's own
//! slapd and sshd — LDAPS with `ca_file` (CA-issued and a self-signed leaf), a pin, StartTLS,
//! plain LDAP with `allow_plaintext`; SFTP with ed25519 host and client keys and with RSA, and
//! a wrong host key refused. Each MAP file must equal the Linux binary's byte for byte, and the
//! remote file the local one.
//!
//! These tests need the cross-built `.exe` and Wine: `scripts/windows-smoke.sh` (part of the
//! test command) builds it and runs them with `DIRSYNC_WINE_EXE` set; a plain `cargo test`
//! lists them as ignored. What Wine cannot show — the Windows certificate store, the event
//! log, the Credential Manager, Task Scheduler — is listed in the README as not tested.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::pki::{self, Ca, Validity};
use crate::slapd::{Slapd, READER_DN, READER_PASSWORD};
use crate::sshd::{self, Sshd};
use crate::util::{users_ldif, Case, Run};

const WINE: &str = "/usr/lib/wine/wine64";
const PW_ENV: &str = "DIRSYNC_TEST_BIND_PASSWORD";
const SFTP_PW_ENV: &str = "DIRSYNC_TEST_SFTP_PASSWORD";
const BASE: &str = "OU=AADDC Users,DC=example,DC=com";

/// The `.exe` (with the test-only shim beside it) and one Wine prefix for all tests (its
/// wineserver ends by itself a few seconds after the last run).
struct Wine {
    exe: PathBuf,
    prefix: tempfile::TempDir,
}

fn wine() -> &'static Wine {
    static WINE_SETUP: OnceLock<Wine> = OnceLock::new();
    WINE_SETUP.get_or_init(|| {
        let dir = std::env::var_os("DIRSYNC_WINE_EXE").expect(
            "DIRSYNC_WINE_EXE (a folder with dirsync.exe) is not set: scripts/windows-smoke.sh runs these tests",
        );
        let exe = PathBuf::from(dir).join("dirsync.exe");
        assert!(exe.exists(), "{} is missing", exe.display());
        Wine {
            exe,
            prefix: tempfile::tempdir().unwrap(),
        }
    })
}

/// Runs `dirsync.exe` in the case folder (Wine maps it to `Z:\…`).
fn exe(case: &Case, args: &[&str], env: &[(&str, &str)]) -> Run {
    let w = wine();
    let mut cmd = Command::new(WINE);
    cmd.arg(&w.exe)
        .args(args)
        .current_dir(case.dir.path())
        .env("WINEPREFIX", w.prefix.path())
        .env("WINEDEBUG", "-all")
        .env("DIRSYNC_TEST_BACKOFF_MS", crate::util::TEST_BACKOFF_MS)
        .env_remove("DIRSYNC_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = Run::from_output(cmd.output().unwrap());
    Run {
        stdout: run.stdout.replace("\r\n", "\n"),
        stderr: run.stderr.replace("\r\n", "\n"),
        ..run
    }
}

/// A case with `config` (relative paths only) and `files` copied in, run by the Linux binary
/// and by the `.exe` in two folders: both exit 0 and write the same bytes, which are returned.
fn same_map_from_both(config: &str, files: &[(&str, &Path)], env: &[(&str, &str)]) -> Vec<u8> {
    let setup = || {
        let case = Case::new();
        case.write("dirsync.toml", config);
        for (name, from) in files {
            std::fs::copy(from, case.path(name)).unwrap();
        }
        case
    };
    let linux = setup();
    let run = linux.run_env(&["sync", "--config", "dirsync.toml"], env);
    assert_eq!(run.code, 0, "Linux: {run:?}");
    let windows = setup();
    // The .exe gets a Windows path (single-quoted, as `dirsync init` writes them).
    windows.write(
        "dirsync.toml",
        config.replace("'out/retarus.map'", "'out\\retarus.map'"),
    );
    let run = exe(&windows, &["sync", "--config", "dirsync.toml"], env);
    assert_eq!(run.code, 0, "dirsync.exe: {run:?}");
    let a = linux.read("out/retarus.map").unwrap();
    let b = windows.read("out/retarus.map").unwrap();
    assert!(
        a == b,
        "dirsync.exe wrote another MAP file than the Linux binary"
    );
    assert!(String::from_utf8_lossy(&a).matches("\tDIR:\t").count() > 100);
    b
}

fn ldap_config(url: &str, extra: &str) -> String {
    format!(
        "customer_id = \"12345\"\ndomains = [\"example.com\", \"example.de\"]\nstate_dir = 'state'\n\
         [source]\ntype = \"ldap\"\nurl = \"{url}\"\nbind_dn = \"{READER_DN}\"\npassword_env = \"{PW_ENV}\"\n\
         base_dn = \"{BASE}\"\n{extra}\n[output]\npath = 'out/retarus.map'\n"
    )
}

fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode_upper(sha2::Sha256::digest(der))
}

#[test]
#[ignore = "needs dirsync.exe under Wine: scripts/windows-smoke.sh runs it"]
fn the_exe_reads_slapd_over_ldaps_starttls_and_plain_ldap_like_the_linux_binary() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("dirsync test CA");
    let ca_pem = ca.write_pem(&dir.path().join("ca.pem"));
    let issued = ca.server(
        dir.path(),
        "issued",
        &["localhost", "127.0.0.1"],
        Validity::Current,
    );
    let own = pki::self_signed(dir.path(), "selfsigned", &["127.0.0.1"]);
    let data = crate::gen::directory(300);
    let by_ca = Slapd::start(&data, &issued, None);
    let self_signed = Slapd::start(&data, &own, None);
    let env = [(PW_ENV, READER_PASSWORD)];
    let ldaps = |s: &Slapd| format!("ldaps://127.0.0.1:{}", s.ldaps_port);
    let ldap = |s: &Slapd| format!("ldap://127.0.0.1:{}", s.ldap_port);

    let reference = same_map_from_both(
        &ldap_config(&ldaps(&by_ca), "ca_file = 'ca.pem'"),
        &[("ca.pem", &ca_pem)],
        &env,
    );
    let variants = [
        // The admin's self-signed certificate as ca_file.
        (
            ldap_config(&ldaps(&self_signed), "ca_file = 'server.pem'"),
            own.cert.clone(),
        ),
        // A pin, no CA at all.
        (
            ldap_config(
                &ldaps(&self_signed),
                &format!("tls_fingerprint_sha256 = \"{}\"", fingerprint(&own.der)),
            ),
            own.cert.clone(),
        ),
        (
            ldap_config(&ldap(&by_ca), "starttls = true\nca_file = 'server.pem'"),
            ca_pem.clone(),
        ),
        (
            ldap_config(&ldap(&by_ca), "allow_plaintext = true"),
            ca_pem.clone(),
        ),
    ];
    for (config, pem) in variants {
        let map = same_map_from_both(&config, &[("server.pem", &pem)], &env);
        assert!(
            map == reference,
            "{config}: another map than over LDAPS with the CA"
        );
    }

    // A certificate nobody trusts is refused by the .exe before the bind, as on Linux.
    let case = Case::new();
    case.write("dirsync.toml", ldap_config(&ldaps(&self_signed), ""));
    let binds = self_signed.binds();
    let run = exe(&case, &["sync", "--config", "dirsync.toml"], &env);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.error_line().contains("failed before the bind"),
        "{run:?}"
    );
    assert_eq!(self_signed.binds(), binds, "a bind was sent");
}

fn sftp_config(server: &Sshd, key: &str) -> String {
    format!(
        "customer_id = \"12345\"\ndomains = [\"example.com\", \"example.de\"]\nstate_dir = 'state'\n\
         [source]\ntype = \"ldif\"\npath = 'export.ldif'\n[output]\npath = 'out\\retarus.map'\n\
         [upload]\ntype = \"sftp\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = '{key}'\n\
         known_hosts = 'known_hosts'\nremote_dir = {:?}\nretries = 0\ntimeout_seconds = 20\n",
        server.port,
        sshd::USER,
        server.upload_dir().display().to_string()
    )
}

#[test]
#[ignore = "needs dirsync.exe under Wine: scripts/windows-smoke.sh runs it"]
fn the_exe_uploads_with_ed25519_and_rsa_keys_and_refuses_a_wrong_host_key() {
    let server = Sshd::start_with(true);
    let env = [(SFTP_PW_ENV, sshd::password())];
    let remote = || std::fs::read(server.upload_dir().join("12345.map")).ok();
    let mut users = 100;
    for (host_key, client_key) in [("host_ed25519", "client_key"), ("host_rsa", "client_rsa")] {
        users += 10;
        let case = Case::new();
        case.write("export.ldif", users_ldif(users));
        case.write("known_hosts", server.known_hosts_line(host_key));
        std::fs::copy(server.key(client_key), case.path("id_key")).unwrap();
        case.write("dirsync.toml", sftp_config(&server, "id_key"));
        let run = exe(&case, &["sync", "--config", "dirsync.toml"], &env);
        assert_eq!(run.code, 0, "{host_key} / {client_key}: {run:?}");
        assert!(
            run.stderr.contains(&server.fingerprint(host_key)),
            "{run:?}"
        );
        let local = case.read("out/retarus.map").unwrap();
        assert_eq!(
            remote().as_deref(),
            Some(local.as_slice()),
            "{host_key}: remote differs"
        );
        // The same bytes as the Linux binary writes.
        let linux = Case::new();
        linux.write("export.ldif", users_ldif(users));
        linux.ldif_config(&linux.path("export.ldif"), "");
        assert_eq!(linux.run(&["sync", "--config", "dirsync.toml"]).code, 0);
        assert!(linux.read("out/retarus.map").unwrap() == local);
    }

    // A known_hosts entry with another key: refused, nothing sent, the remote file as it was.
    let before = remote();
    let case = Case::new();
    case.write("export.ldif", users_ldif(5));
    let other = std::fs::read_to_string(server.key("other_key.pub")).unwrap();
    let mut parts = other.split_whitespace();
    case.write(
        "known_hosts",
        format!(
            "[127.0.0.1]:{} {} {}\n",
            server.port,
            parts.next().unwrap(),
            parts.next().unwrap()
        ),
    );
    std::fs::copy(server.key("client_key"), case.path("id_key")).unwrap();
    case.write("dirsync.toml", sftp_config(&server, "id_key"));
    let run = exe(&case, &["sync", "--config", "dirsync.toml"], &env);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(run.error_line().contains("HOST KEY MISMATCH"), "{run:?}");
    assert_eq!(remote(), before, "remote file touched");
    assert!(case.read("state/last-uploaded.map").is_none());
}
