//! Secrets never reach the output, the log file or the run report — on any failure path, and
//! at the most verbose log level.

use std::path::Path;

use crate::pki::{Ca, Validity};
use crate::slapd::{Slapd, READER_DN};
use crate::sshd::{self, Sshd};
use crate::util::{users_ldif, Case, Run};

const LDAP_SECRET: &str = "Ld4p-S3cret-Value-7731";
const SFTP_SECRET: &str = "Sftp-S3cret-Value-9042";

/// Everything a run left behind that a person or a monitor reads.
fn everything(case: &Case, run: &Run) -> String {
    let mut all = format!("{}\n{}\n", run.stdout, run.stderr);
    fn walk(dir: &Path, all: &mut String) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, all);
            } else if p
                .extension()
                .is_some_and(|x| x == "log" || x == "json" || x == "map")
            {
                all.push_str(&String::from_utf8_lossy(
                    &std::fs::read(&p).unwrap_or_default(),
                ));
            }
        }
    }
    walk(case.dir.path(), &mut all);
    all
}

fn assert_clean(name: &str, case: &Case, run: &Run) {
    let all = everything(case, run);
    assert!(
        !all.contains(LDAP_SECRET) && !all.contains(SFTP_SECRET),
        "{name}: a secret leaked: {run:?}"
    );
}

#[test]
fn no_secret_in_any_output_of_any_failure() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("secrets test CA");
    let ca_pem = ca.write_pem(&dir.path().join("ca.pem"));
    let cert = ca.server(dir.path(), "server", &["127.0.0.1"], Validity::Current);
    let ldap = Slapd::start(&crate::gen::directory(20), &cert, None);
    let sftp = Sshd::start();
    let secret_file = dir.path().join("ldap-password");
    std::fs::write(&secret_file, LDAP_SECRET).unwrap();

    let ldap_config = |case: &Case, secret: &str, extra: &str| {
        case.write(
            "dirsync.toml",
            format!(
                "customer_id = \"12345\"\ndomains = [\"example.com\", \"example.de\"]\nlog_dir = \"logs\"\n\
                 [source]\ntype = \"ldap\"\nurl = \"ldaps://127.0.0.1:{}\"\nbind_dn = \"{READER_DN}\"\n{secret}\n\
                 ca_file = {:?}\nbase_dn = \"OU=AADDC Users,DC=example,DC=com\"\n[output]\npath = \"out/retarus.map\"\n{extra}",
                ldap.ldaps_port,
                ca_pem.display().to_string()
            ),
        );
    };
    let verbose = [("DIRSYNC_LOG", "trace")];
    // A rejected bind, with the password from the environment and from a file, at trace level.
    for (name, secret) in [
        (
            "wrong bind password (env)",
            "password_env = \"DIRSYNC_SECRET\"".to_string(),
        ),
        (
            "wrong bind password (file)",
            format!("password_file = {:?}", secret_file.display().to_string()),
        ),
    ] {
        let case = Case::new();
        ldap_config(&case, &secret, "");
        for args in [
            &["sync", "--config", "dirsync.toml"][..],
            &["check", "--config", "dirsync.toml"],
            &["sync", "-vv", "--config", "dirsync.toml"],
        ] {
            let mut env = vec![("DIRSYNC_SECRET", LDAP_SECRET)];
            env.extend(verbose);
            let run = case.run_env(args, &env);
            assert_eq!(run.code, 4, "{name}: {run:?}");
            assert_clean(name, &case, &run);
        }
    }
    // A good bind, then a refused SFTP login with a password, at trace level.
    let case = Case::new();
    let kh = case.write("known_hosts", sftp.known_hosts_line("host_ed25519"));
    let upload = format!(
        "[upload]\ntype = \"sftp\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\npassword_env = \"DIRSYNC_SFTP\"\nknown_hosts = {:?}\nremote_dir = {:?}\nretries = 0\n",
        sftp.port,
        sshd::USER,
        kh.display().to_string(),
        sftp.upload_dir().display().to_string()
    );
    ldap_config(&case, "password_env = \"DIRSYNC_SECRET\"", &upload);
    let run = case.run_env(
        &["sync", "--config", "dirsync.toml"],
        &[
            ("DIRSYNC_SECRET", crate::slapd::READER_PASSWORD),
            ("DIRSYNC_SFTP", SFTP_SECRET),
            ("DIRSYNC_LOG", "trace"),
        ],
    );
    assert_eq!(run.code, 6, "{run:?}");
    assert_clean("wrong SFTP password", &case, &run);
    // A wrong key passphrase.
    let locked_key = case.path("locked_key");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "right-passphrase", "-f"])
        .arg(&locked_key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let upload_key = upload.replace(
        "password_env = \"DIRSYNC_SFTP\"",
        &format!(
            "key_file = {:?}\nkey_passphrase_env = \"DIRSYNC_SFTP\"",
            locked_key.display().to_string()
        ),
    );
    ldap_config(&case, "password_env = \"DIRSYNC_SECRET\"", &upload_key);
    let run = case.run_env(
        &["sync", "--config", "dirsync.toml"],
        &[
            ("DIRSYNC_SECRET", crate::slapd::READER_PASSWORD),
            ("DIRSYNC_SFTP", SFTP_SECRET),
            ("DIRSYNC_LOG", "trace"),
        ],
    );
    assert_eq!(run.code, 6, "{run:?}");
    assert_clean("wrong key passphrase", &case, &run);
    // A secret wrongly put into the config as a script parameter: refused without echoing it.
    let ldif = case.write("export.ldif", users_ldif(2));
    case.ldif_config(&ldif, "");
    let text = std::fs::read_to_string(case.path("dirsync.toml")).unwrap()
        + &format!("[exchange]\nscript = \"x.ps1\"\nparameters = {{ CertificatePassword = \"{SFTP_SECRET}\" }}\n");
    case.write("dirsync.toml", text);
    let run = case.run(&["sync", "--config", "dirsync.toml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        !run.stderr.contains(SFTP_SECRET) && !run.stdout.contains(SFTP_SECRET),
        "{run:?}"
    );
}
