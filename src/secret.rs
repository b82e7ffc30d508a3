//! Secrets (bind and SFTP passwords, key passphrases): where they come from, and a type that
//! never shows its value.
//!
//! A secret is named in the config by where to find it — an environment variable, a file, or
//! the operating system's credential store (the Windows Credential Manager; on Linux the
//! kernel keyring) — never by value, and never on the command line. [`Secret`] prints as `***` in `Debug` and
//! `Display`, so it cannot leak through a log line or an error message by accident.

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret value. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value, for the one call that sends it to a server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The value is wiped from memory when the secret is dropped.
impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
    /// A generic credential by its target name (`cmdkey /generic:dirsync/ldap …`).
    Credential(String),
}

impl SecretSource {
    /// Reads the secret. Errors name the variable or file, never the value. A secret file
    /// readable by other users is used, with a warning.
    pub fn read(&self) -> Result<Secret, String> {
        self.read_with(&OsCredentials)
    }

    /// As [`read`](Self::read), with credentials from `store`.
    pub fn read_with(&self, store: &dyn CredentialStore) -> Result<Secret, String> {
        match self {
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Secret(v)),
                Ok(_) => Err(format!("environment variable {name} is empty")),
                Err(std::env::VarError::NotPresent) => Err(format!(
                    "environment variable {name} is not set: set it in the environment of \
                     the scheduled task, or use a password_file"
                )),
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(format!("environment variable {name} is not valid UTF-8"))
                }
            },
            SecretSource::File(path) => {
                warn_if_readable_by_others(path);
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
                let value = text.trim_end_matches(['\r', '\n']);
                if value.is_empty() {
                    return Err(format!("secret file {} is empty", path.display()));
                }
                Ok(Secret(value.to_owned()))
            }
            SecretSource::Credential(target) => credential(store, target),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(name) => format!("environment variable {name}"),
            SecretSource::File(path) => format!("file {}", path.display()),
            SecretSource::Credential(target) => format!("credential {target}"),
        }
    }
}

/// Where `*_credential` secrets come from. The real one is [`OsCredentials`]; tests use a
/// stand-in.
pub trait CredentialStore {
    /// The secret stored under `target`, `None` if there is none.
    fn get(&self, target: &str) -> Result<Option<String>, String>;
}

/// The operating system's store, through the `keyring` crate: the Windows Credential Manager
/// of the account the task runs as (generic credentials, by target name), or the Linux kernel
/// keyring (keyutils) of the session.
pub struct OsCredentials;

impl CredentialStore for OsCredentials {
    fn get(&self, target: &str) -> Result<Option<String>, String> {
        let entry = keyring::Entry::new_with_target(target, "dirsync", "dirsync")
            .map_err(|e| e.to_string())?;
        match entry.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn credential(store: &dyn CredentialStore, target: &str) -> Result<Secret, String> {
    let fix = if cfg!(windows) {
        format!("create it as the account the task runs as: cmdkey /generic:{target} /user:dirsync /pass")
    } else {
        format!("add it to the session keyring of the account that runs dirsync: keyctl add user {target} <secret> @s")
    };
    match store.get(target) {
        Ok(Some(v)) if !v.is_empty() => Ok(Secret(v)),
        Ok(Some(_)) => Err(format!("credential {target} is empty")),
        Ok(None) => Err(format!(
            "no credential {target} in the credential store: {fix}"
        )),
        Err(e) => Err(format!("cannot read credential {target}: {e}")),
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o044 != 0 {
            tracing::warn!(
                "secret file {} is readable by other users: chmod 600 it",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    /// A stand-in for the credential store (documented in the README): a map.
    struct StandIn(std::collections::BTreeMap<String, String>);

    impl CredentialStore for StandIn {
        fn get(&self, target: &str) -> Result<Option<String>, String> {
            if target == "broken" {
                return Err("the store is locked".into());
            }
            Ok(self.0.get(target).cloned())
        }
    }

    #[test]
    fn credentials_found_missing_empty_or_unreadable() {
        let store = StandIn(
            [
                ("dirsync/ldap".to_string(), "s3cret".to_string()),
                ("dirsync/empty".into(), String::new()),
            ]
            .into(),
        );
        let read = |t: &str| SecretSource::Credential(t.into()).read_with(&store);
        assert_eq!(read("dirsync/ldap").unwrap().expose(), "s3cret");
        let missing = read("dirsync/sftp").unwrap_err();
        assert!(
            missing.starts_with("no credential dirsync/sftp in the credential store: "),
            "{missing}"
        );
        assert_eq!(
            read("dirsync/empty").unwrap_err(),
            "credential dirsync/empty is empty"
        );
        assert_eq!(
            read("broken").unwrap_err(),
            "cannot read credential broken: the store is locked"
        );
    }

    #[test]
    fn the_os_store_answers_without_panicking() {
        // On Linux the kernel keyring may be unavailable (containers); the answer must still be
        // a clear message, never a crash or a value.
        let target = format!("dirsync-test-missing-{}", std::process::id());
        let err = SecretSource::Credential(target.clone()).read().unwrap_err();
        assert!(err.contains(&target), "{err}");
    }

    #[test]
    fn file_secret_strips_the_line_end_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\r\n").unwrap();
        assert_eq!(
            SecretSource::File(path.clone()).read().unwrap().expose(),
            "s3cret"
        );
        std::fs::write(&path, "\n").unwrap();
        let err = SecretSource::File(path).read().unwrap_err();
        assert!(err.contains("is empty"), "{err}");
        let err = SecretSource::Env("DIRSYNC_TEST_UNSET_VARIABLE".into())
            .read()
            .unwrap_err();
        assert!(
            err.contains("DIRSYNC_TEST_UNSET_VARIABLE is not set"),
            "{err}"
        );
    }
}
