//! The `[upload]` section: where and how the MAP file is shipped (SFTP, host key pin, login),
//! as the admin writes it and as the upload stage uses it, validated here.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::problems::Problems;
use crate::secret::SecretSource;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpload {
    #[serde(rename = "type")]
    kind: Option<String>,
    host: Option<String>,
    port: Option<i64>,
    user: Option<String>,
    key_file: Option<PathBuf>,
    key_passphrase_env: Option<String>,
    key_passphrase_file: Option<PathBuf>,
    key_passphrase_credential: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    password_credential: Option<String>,
    known_hosts: Option<PathBuf>,
    host_key_sha256: Option<String>,
    remote_dir: Option<String>,
    file_name: Option<String>,
    replace_existing: Option<bool>,
    timeout_seconds: Option<i64>,
    retries: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct UploadConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: SftpAuth,
    pub host_key: HostKeyCheck,
    pub remote_dir: String,
    pub file_name: String,
    pub replace_existing: bool,
    pub timeout: Duration,
    pub retries: u32,
}

#[derive(Debug, Clone)]
pub enum SftpAuth {
    Key {
        key_file: PathBuf,
        passphrase: Option<SecretSource>,
    },
    Password(SecretSource),
}

#[derive(Debug, Clone)]
pub enum HostKeyCheck {
    KnownHosts(PathBuf),
    /// `SHA256:<base64>` as OpenSSH prints it.
    Sha256(String),
}

pub fn validate(u: RawUpload, pr: &mut Problems) -> Option<UploadConfig> {
    match u.kind.as_deref() {
        Some("sftp") => {}
        Some(other) => pr.problem("upload.type", format!("{other:?}; expected \"sftp\"")),
        None => pr.problem("upload.type", "missing; expected \"sftp\""),
    }
    let host = pr.required(
        "upload.host",
        u.host,
        "the SFTP host from Retarus onboarding",
    );
    let port = match u.port {
        None => 22,
        Some(p) if (1..=65535).contains(&p) => p as u16,
        Some(p) => {
            pr.problem("upload.port", format!("{p} is not a TCP port"));
            22
        }
    };
    let user = pr.required(
        "upload.user",
        u.user,
        "the SFTP user name from Retarus onboarding",
    );
    let auth = auth(
        u.key_file,
        pr.secret(
            "upload",
            "password",
            u.password_env,
            u.password_file,
            u.password_credential,
        ),
        pr.secret(
            "upload",
            "key_passphrase",
            u.key_passphrase_env,
            u.key_passphrase_file,
            u.key_passphrase_credential,
        ),
        pr,
    );
    let host_key = host_key(u.known_hosts, u.host_key_sha256, pr);
    let remote_dir = u.remote_dir.unwrap_or_else(|| "/".to_owned());
    let file_name = u
        .file_name
        .unwrap_or_else(|| "{customer_id}.map".to_owned());
    if file_name.is_empty() || file_name.contains('/') || file_name.contains('\\') {
        pr.problem("upload.file_name", format!("{file_name:?}; expected a file name without folders (use remote_dir for the folder)"));
    }
    if let Err(e) = super::check_template(&file_name) {
        pr.problem("upload.file_name", e);
    }
    let timeout = pr.seconds("upload.timeout_seconds", u.timeout_seconds, 60);
    let retries = match u.retries {
        None => 3,
        Some(r) if (0..=10).contains(&r) => r as u32,
        Some(r) => {
            pr.problem("upload.retries", format!("{r}; expected 0 to 10"));
            3
        }
    };
    Some(UploadConfig {
        host: host?,
        port,
        user: user?,
        auth: auth?,
        host_key: host_key?,
        remote_dir,
        file_name,
        replace_existing: u.replace_existing.unwrap_or(true),
        timeout,
        retries,
    })
}

/// A private key (with an optional passphrase) or a password, never both.
fn auth(
    key_file: Option<PathBuf>,
    password: Option<SecretSource>,
    passphrase: Option<SecretSource>,
    pr: &mut Problems,
) -> Option<SftpAuth> {
    match (key_file, password) {
        (Some(_), Some(_)) => {
            pr.problem(
                "upload.key_file",
                "set either key_file or password_env/password_file, not both",
            );
            None
        }
        (Some(k), None) => Some(SftpAuth::Key {
            key_file: pr.path("upload.key_file", k),
            passphrase,
        }),
        (None, Some(p)) => {
            if passphrase.is_some() {
                pr.problem(
                    "upload.key_passphrase_env",
                    "a key passphrase needs key_file",
                );
            }
            Some(SftpAuth::Password(p))
        }
        (None, None) => {
            pr.problem(
                "upload.key_file",
                "missing; set key_file (a private key) or password_env / password_file / password_credential",
            );
            None
        }
    }
}

/// The server's host key pinned by known_hosts or by its SHA-256 fingerprint.
fn host_key(
    known_hosts: Option<PathBuf>,
    sha256: Option<String>,
    pr: &mut Problems,
) -> Option<HostKeyCheck> {
    match (known_hosts, sha256) {
        (Some(_), Some(_)) => {
            pr.problem(
                "upload.host_key_sha256",
                "set either known_hosts or host_key_sha256, not both",
            );
            None
        }
        (Some(k), None) => Some(HostKeyCheck::KnownHosts(pr.path("upload.known_hosts", k))),
        (None, Some(f)) => {
            let f = f.trim().to_owned();
            let b64 = f.strip_prefix("SHA256:").unwrap_or("");
            if b64.len() != 43
                || !b64
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
            {
                pr.problem("upload.host_key_sha256", format!("{f:?}; expected \"SHA256:\" and 43 base64 characters, as `ssh-keygen -lf` or `dirsync check` prints it"));
            }
            Some(HostKeyCheck::Sha256(f))
        }
        (None, None) => {
            pr.problem("upload.known_hosts", "missing; the server's host key must be pinned: set known_hosts or host_key_sha256 (dirsync never trusts on first use)");
            None
        }
    }
}
