//! Collecting configuration problems: each stage validates its own section into a `Problems`
//! (every problem with its key path, all reported at once), with the helpers every section
//! needs — required keys, durations, counts, paths, secrets.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::SecretSource;

/// How to write a Windows path in TOML.
pub const WINDOWS_PATHS: &str = "write Windows paths in single quotes ('C:\\dirsync\\state') or \
                             double the backslashes (\"C:\\\\dirsync\\\\state\")";

/// The problems found so far, and the folder relative paths are resolved against.
pub struct Problems<'a> {
    base: &'a Path,
    list: Vec<String>,
}

impl<'a> Problems<'a> {
    pub fn new(base: &'a Path) -> Self {
        Problems {
            base,
            list: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn into_list(self) -> Vec<String> {
        self.list
    }

    /// Whether a problem was already reported for a key starting with `key`.
    pub fn mentions(&self, key: &str) -> bool {
        self.list.iter().any(|p| p.starts_with(key))
    }

    pub fn problem(&mut self, key: &str, what: impl fmt::Display) {
        self.list.push(format!("{key}: {what}"));
    }

    pub fn required<T>(&mut self, key: &str, value: Option<T>, expected: &str) -> Option<T> {
        if value.is_none() {
            self.problem(key, format!("missing; expected {expected}"));
        }
        value
    }

    /// A path, relative to the config file's folder. A control character in it is a problem:
    /// it comes from a Windows path in a double-quoted TOML string (`"C:\temp"` holds a TAB).
    pub fn path(&mut self, key: &str, p: PathBuf) -> PathBuf {
        if p.to_string_lossy().chars().any(char::is_control) {
            self.problem(
                key,
                format!(
                    "{:?} contains a control character: {WINDOWS_PATHS}",
                    p.display().to_string()
                ),
            );
        }
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    pub fn seconds(&mut self, key: &str, value: Option<i64>, default: u64) -> Duration {
        match value {
            None => Duration::from_secs(default),
            Some(s) if (1..=86_400).contains(&s) => Duration::from_secs(s as u64),
            Some(s) => {
                self.problem(
                    key,
                    format!("{s} is out of range; expected 1 to 86400 seconds"),
                );
                Duration::from_secs(default)
            }
        }
    }

    /// A whole number in `range` (a count, minutes, MiB).
    pub fn count(
        &mut self,
        key: &str,
        value: Option<i64>,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> u64 {
        match value {
            None => default,
            Some(n) if n >= 0 && range.contains(&(n as u64)) => n as u64,
            Some(n) => {
                self.problem(
                    key,
                    format!(
                        "{n} is out of range; expected {} to {}",
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        }
    }

    /// At most one of `<prefix>_env`, `<prefix>_file`, `<prefix>_credential`.
    pub fn secret(
        &mut self,
        section: &str,
        prefix: &str,
        env: Option<String>,
        file: Option<PathBuf>,
        credential: Option<String>,
    ) -> Option<SecretSource> {
        let given = [env.is_some(), file.is_some(), credential.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if given > 1 {
            self.problem(
                &format!("{section}.{prefix}_env"),
                format!("set one of {prefix}_env, {prefix}_file, {prefix}_credential, not several"),
            );
            return None;
        }
        if let Some(e) = env {
            if e.trim().is_empty() {
                self.problem(
                    &format!("{section}.{prefix}_env"),
                    "expected the name of an environment variable",
                );
                return None;
            }
            return Some(SecretSource::Env(e));
        }
        if let Some(f) = file {
            return Some(SecretSource::File(
                self.path(&format!("{section}.{prefix}_file"), f),
            ));
        }
        if let Some(c) = credential {
            if c.trim().is_empty() {
                self.problem(
                    &format!("{section}.{prefix}_credential"),
                    "expected a credential's target name, e.g. \"dirsync/ldap\"",
                );
                return None;
            }
            return Some(SecretSource::Credential(c));
        }
        None
    }
}
