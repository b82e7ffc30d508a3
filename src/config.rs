//! Configuration: the TOML file an admin writes, in two phases.
//!
//! Phase one is serde into `Raw*` structs that refuse unknown keys (a typo is an error, not
//! silence). Phase two, [`validate`], turns them into typed values and reports **all**
//! problems at once, each with its key path and what is expected. Relative paths are resolved
//! against the config file's folder, so a scheduled task works whatever its working directory.
//! Every key is documented once, in `examples/dirsync.toml` (`dirsync init` writes it).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::exchange::{ExchangeConfig, ExchangeSource};
use crate::logging::LogConfig;
use crate::mapfile::LineEnding;
use crate::model::Domain;
use crate::rules::spec::RulesConfig;
use crate::secret::SecretSource;

/// The commented example configuration, written by `dirsync init`.
pub const EXAMPLE: &str = include_str!("../examples/dirsync.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    customer_id: Option<String>,
    domains: Option<RawDomains>,
    state_dir: Option<PathBuf>,
    archive_days: Option<i64>,
    log_dir: Option<PathBuf>,
    log_days: Option<i64>,
    log_level: Option<String>,
    source: Option<RawSource>,
    output: Option<RawOutput>,
    upload: Option<RawUpload>,
    exchange: Option<RawExchange>,
    #[serde(default)]
    guard: RawGuard,
    // The rule sections, validated by `rules::spec` with their key paths.
    filter: Option<toml::Value>,
    addresses: Option<toml::Value>,
    profiles: Option<toml::Value>,
    signature: Option<toml::Value>,
    routing: Option<toml::Value>,
}

/// `domains = ["example.com", …]` or `domains = "exchange"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawDomains {
    List(Vec<String>),
    Word(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExchange {
    script: Option<PathBuf>,
    input: Option<PathBuf>,
    interpreter: Option<PathBuf>,
    parameters: Option<toml::Table>,
    timeout_seconds: Option<i64>,
    max_age_hours: Option<f64>,
    fallback_max_age_hours: Option<f64>,
    add_exchange_only: Option<bool>,
    emit_group_owners: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    #[serde(rename = "type")]
    kind: Option<String>,
    // ldif
    path: Option<PathBuf>,
    // ldap
    url: Option<String>,
    bind_dn: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    password_credential: Option<String>,
    ca_file: Option<PathBuf>,
    tls_fingerprint_sha256: Option<String>,
    base_dn: Option<String>,
    filter: Option<String>,
    bases: Option<Vec<RawBase>>,
    page_size: Option<i64>,
    starttls: Option<bool>,
    allow_plaintext: Option<bool>,
    connect_timeout_seconds: Option<i64>,
    timeout_seconds: Option<i64>,
    read_timeout_seconds: Option<i64>,
    max_message_mib: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBase {
    base_dn: Option<String>,
    filter: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    path: Option<PathBuf>,
    line_ending: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpload {
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuard {
    max_removed: Option<i64>,
    max_removed_percent: Option<f64>,
    allow_empty_domains: Option<Vec<String>>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file itself (for messages).
    pub file: PathBuf,
    pub customer_id: String,
    pub domains: BTreeSet<Domain>,
    /// `domains = "exchange"`: the accepted domains come from the Exchange data at run time
    /// (`domains` is empty until then).
    pub domains_from_exchange: bool,
    pub state_dir: PathBuf,
    /// Days to keep copies of shipped files in `state_dir/archive` (0: none).
    pub archive_days: u32,
    /// The log file, when `log_dir` is set.
    pub log: Option<LogConfig>,
    pub source: SourceConfig,
    pub output: OutputConfig,
    pub upload: Option<UploadConfig>,
    pub exchange: Option<ExchangeConfig>,
    pub guard: GuardConfig,
    pub rules: RulesConfig,
}

#[derive(Debug, Clone)]
pub enum SourceConfig {
    Ldif { path: PathBuf },
    Ldap(LdapConfig),
}

#[derive(Debug, Clone)]
pub struct LdapConfig {
    pub url: String,
    pub bind_dn: String,
    pub password: SecretSource,
    pub ca_file: Option<PathBuf>,
    /// SHA-256 of the server certificate (DER), 32 bytes.
    pub tls_fingerprint_sha256: Option<Vec<u8>>,
    pub bases: Vec<SearchBase>,
    pub page_size: i32,
    pub starttls: bool,
    pub allow_plaintext: bool,
    pub connect_timeout: Duration,
    /// Time for each response message.
    pub timeout: Duration,
    /// Time for the whole read.
    pub read_timeout: Duration,
    /// The largest LDAP message accepted, in bytes.
    pub max_message: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchBase {
    pub base_dn: String,
    pub filter: String,
}

#[derive(Debug, Clone)]
pub struct OutputConfig {
    pub path: PathBuf,
    pub line_ending: LineEnding,
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

#[derive(Debug, Clone)]
pub struct GuardConfig {
    pub max_removed: u64,
    pub max_removed_percent: f64,
    pub allow_empty_domains: BTreeSet<String>,
}

pub const DEFAULT_FILTER: &str = "(|(objectClass=user)(objectClass=group)(objectClass=contact))";
pub const DEFAULT_MAX_REMOVED: u64 = 500;
pub const DEFAULT_MAX_REMOVED_PERCENT: f64 = 10.0;

/// Everything wrong with a configuration file, each problem with its key path.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {n} configuration problem{}",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let fail = |p: String| ConfigError {
            file: path.to_owned(),
            problems: vec![p],
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            fail(format!(
                "cannot read the config file: {e} (create one with `dirsync init {}`)",
                path.display()
            ))
        })?;
        // Absolute, so a script or a scheduled task finds the files whatever its working folder.
        let parent = path.parent().unwrap_or(Path::new(""));
        let base = match std::env::current_dir() {
            Ok(cwd) if parent.is_relative() => cwd.join(parent),
            _ => parent.to_owned(),
        };
        Config::parse(&text, path, &base)
    }

    /// Parses config text; relative paths are resolved against `base`.
    pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            file: file.to_owned(),
            problems: vec![describe_toml_error(text, &e)],
        })?;
        let mut v = Validator {
            base,
            problems: Vec::new(),
        };
        let config = v.config(raw, file);
        match config {
            Some(c) if v.problems.is_empty() => Ok(c),
            _ => Err(ConfigError {
                file: file.to_owned(),
                problems: v.problems,
            }),
        }
    }
}

/// How to write a Windows path in TOML.
const WINDOWS_PATHS: &str = "write Windows paths in single quotes ('C:\\dirsync\\state') or \
                             double the backslashes (\"C:\\\\dirsync\\\\state\")";

/// A TOML syntax or type error as one line: `line N, column M: message`.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let mut message = e.message().trim().replace('\n', " ");
    if message.contains("escape") {
        message.push_str(&format!(" ({WINDOWS_PATHS})"));
    }
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

struct Validator<'a> {
    base: &'a Path,
    problems: Vec<String>,
}

impl Validator<'_> {
    fn problem(&mut self, key: &str, what: impl fmt::Display) {
        self.problems.push(format!("{key}: {what}"));
    }

    fn required<T>(&mut self, key: &str, value: Option<T>, expected: &str) -> Option<T> {
        if value.is_none() {
            self.problem(key, format!("missing; expected {expected}"));
        }
        value
    }

    /// A path, relative to the config file's folder. A control character in it is a problem:
    /// it comes from a Windows path in a double-quoted TOML string (`"C:\temp"` holds a TAB).
    fn path(&mut self, key: &str, p: PathBuf) -> PathBuf {
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

    fn seconds(&mut self, key: &str, value: Option<i64>, default: u64) -> Duration {
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
    fn count(
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
    fn secret(
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

    fn config(&mut self, raw: RawConfig, file: &Path) -> Option<Config> {
        let customer_id = self.required(
            "customer_id",
            raw.customer_id,
            "your Retarus customer number, e.g. \"12345\"",
        );
        if let Some(id) = &customer_id {
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                self.problem("customer_id", format!("{id:?} is not a customer number; expected letters and digits only, e.g. \"12345\""));
            }
        }
        let log_days = match raw.log_days {
            None => 30,
            Some(d) if (1..=3650).contains(&d) => d as u32,
            Some(d) => {
                self.problem("log_days", format!("{d}; expected 1 to 3650"));
                30
            }
        };
        let log_level = match raw.log_level.as_deref().unwrap_or("info") {
            "error" => tracing_subscriber::filter::LevelFilter::ERROR,
            "warn" => tracing_subscriber::filter::LevelFilter::WARN,
            "info" => tracing_subscriber::filter::LevelFilter::INFO,
            "debug" => tracing_subscriber::filter::LevelFilter::DEBUG,
            other => {
                self.problem(
                    "log_level",
                    format!("{other:?}; expected \"error\", \"warn\", \"info\" or \"debug\""),
                );
                tracing_subscriber::filter::LevelFilter::INFO
            }
        };
        let log = raw.log_dir.map(|d| LogConfig {
            dir: self.path("log_dir", d),
            days: log_days,
            level: log_level,
        });
        let domains_from_exchange =
            matches!(&raw.domains, Some(RawDomains::Word(w)) if w == "exchange");
        let domains = match raw.domains {
            Some(RawDomains::Word(w)) if w == "exchange" => {
                if raw.exchange.is_none() {
                    self.problem("domains", "\"exchange\" takes the accepted domains from the Exchange data: configure [exchange]");
                }
                BTreeSet::new()
            }
            Some(RawDomains::Word(w)) => {
                self.problem(
                    "domains",
                    format!(
                        "{w:?}; expected a list such as [\"example.com\"] or the word \"exchange\""
                    ),
                );
                BTreeSet::new()
            }
            Some(RawDomains::List(list)) => self.domains(Some(list)),
            None => self.domains(None),
        };
        let exchange = raw.exchange.and_then(|e| self.exchange(e));
        let state_dir = self.path(
            "state_dir",
            raw.state_dir.unwrap_or_else(|| PathBuf::from("state")),
        );
        let archive_days = match raw.archive_days {
            None => 0,
            Some(d) if (0..=3650).contains(&d) => d as u32,
            Some(d) => {
                self.problem("archive_days", format!("{d}; expected 0 to 3650"));
                0
            }
        };
        let source = match raw.source {
            Some(s) => self.source(s),
            None => {
                self.problem(
                    "source",
                    "missing section [source]; expected type = \"ldap\" or \"ldif\"",
                );
                None
            }
        };
        let output = match raw.output {
            Some(o) => self.output(o),
            None => {
                self.problem(
                    "output",
                    "missing section [output]; expected at least path = \"…\"",
                );
                None
            }
        };
        let upload = raw.upload.and_then(|u| self.upload(u));
        let guard = self.guard(raw.guard, &domains, domains_from_exchange);
        let mut rules = RulesConfig::parse(
            raw.filter.as_ref(),
            raw.addresses.as_ref(),
            raw.profiles.as_ref(),
            raw.signature.as_ref(),
            raw.routing.as_ref(),
            &mut self.problems,
        );
        if exchange
            .as_ref()
            .is_some_and(|e: &(ExchangeConfig, bool)| e.1)
        {
            rules.group_owner_key = Some("owner".into());
        }
        for (i, a) in rules.extra_addresses.iter().enumerate() {
            if !domains_from_exchange && !domains.iter().any(|d| d.as_str() == a.domain()) {
                self.problem(
                    &format!("addresses.extra[{i}]"),
                    format!("{a} is not in an accepted domain (`domains`)"),
                );
            }
        }
        Some(Config {
            file: file.to_owned(),
            customer_id: customer_id?,
            domains,
            state_dir,
            archive_days,
            log,
            source: source?,
            output: output?,
            upload,
            exchange: exchange.map(|(e, _)| e),
            guard,
            rules,
            domains_from_exchange,
        })
    }

    fn domains(&mut self, raw: Option<Vec<String>>) -> BTreeSet<Domain> {
        let Some(list) = self.required(
            "domains",
            raw,
            "the accepted domains, e.g. [\"example.com\"]",
        ) else {
            return BTreeSet::new();
        };
        if list.is_empty() {
            self.problem("domains", "empty; list at least one accepted domain");
        }
        let mut out = BTreeSet::new();
        for (i, d) in list.iter().enumerate() {
            match Domain::parse(d.trim()) {
                Ok(domain) => {
                    if !out.insert(domain) {
                        self.problem(&format!("domains[{i}]"), format!("{d:?} is listed twice"));
                    }
                }
                Err(e) => self.problem(
                    &format!("domains[{i}]"),
                    format!("{d:?}: {e}; expected a domain name such as \"example.com\""),
                ),
            }
        }
        out
    }

    fn source(&mut self, s: RawSource) -> Option<SourceConfig> {
        let kind = self.required("source.type", s.kind.clone(), "\"ldap\" or \"ldif\"")?;
        match kind.as_str() {
            "ldif" => {
                let ldap_keys = [
                    ("url", s.url.is_some()),
                    ("bind_dn", s.bind_dn.is_some()),
                    ("password_env", s.password_env.is_some()),
                    ("password_file", s.password_file.is_some()),
                    ("password_credential", s.password_credential.is_some()),
                    ("ca_file", s.ca_file.is_some()),
                    ("tls_fingerprint_sha256", s.tls_fingerprint_sha256.is_some()),
                    ("base_dn", s.base_dn.is_some()),
                    ("filter", s.filter.is_some()),
                    ("bases", s.bases.is_some()),
                    ("page_size", s.page_size.is_some()),
                    ("starttls", s.starttls.is_some()),
                    ("allow_plaintext", s.allow_plaintext.is_some()),
                    (
                        "connect_timeout_seconds",
                        s.connect_timeout_seconds.is_some(),
                    ),
                    ("timeout_seconds", s.timeout_seconds.is_some()),
                    ("read_timeout_seconds", s.read_timeout_seconds.is_some()),
                    ("max_message_mib", s.max_message_mib.is_some()),
                ];
                for (key, set) in ldap_keys {
                    if set {
                        self.problem(
                            &format!("source.{key}"),
                            "applies only to type = \"ldap\"; remove it",
                        );
                    }
                }
                let path = self.required(
                    "source.path",
                    s.path,
                    "the LDIF export to read, e.g. \"export.ldif\"",
                )?;
                Some(SourceConfig::Ldif {
                    path: self.path("source.path", path),
                })
            }
            "ldap" => {
                if s.path.is_some() {
                    self.problem("source.path", "applies only to type = \"ldif\"; remove it");
                }
                self.ldap(s).map(SourceConfig::Ldap)
            }
            other => {
                self.problem(
                    "source.type",
                    format!("{other:?} is not a source type; expected \"ldap\" or \"ldif\""),
                );
                None
            }
        }
    }

    fn ldap(&mut self, s: RawSource) -> Option<LdapConfig> {
        let url = self.required(
            "source.url",
            s.url,
            "e.g. \"ldaps://ldaps.example.com:636\"",
        );
        let starttls = s.starttls.unwrap_or(false);
        let allow_plaintext = s.allow_plaintext.unwrap_or(false);
        if let Some(u) = &url {
            if u.starts_with("ldaps://") {
                if starttls {
                    self.problem(
                        "source.starttls",
                        "ldaps:// is already encrypted; starttls applies to ldap:// URLs only",
                    );
                }
            } else if u.starts_with("ldap://") {
                if !starttls && !allow_plaintext {
                    self.problem("source.url", format!("{u} is unencrypted: use ldaps://, or set starttls = true (allow_plaintext = true only in a lab)"));
                }
            } else {
                self.problem("source.url", format!("{u:?} is not an LDAP URL; expected ldaps://host[:port] or ldap://host[:port]"));
            }
        }
        let bind_dn = self.required(
            "source.bind_dn",
            s.bind_dn,
            "the bind account's DN or UPN, e.g. \"svc-dirsync@example.com\"",
        );
        let password = self.secret(
            "source",
            "password",
            s.password_env,
            s.password_file,
            s.password_credential,
        );
        if password.is_none()
            && !self
                .problems
                .iter()
                .any(|p| p.starts_with("source.password"))
        {
            self.problem(
                "source.password_env",
                "missing; set password_env (an environment variable name), password_file or password_credential (Windows Credential Manager)",
            );
        }
        let fingerprint = s.tls_fingerprint_sha256.and_then(|f| {
            let hexed: String = f
                .chars()
                .filter(|c| *c != ':' && !c.is_whitespace())
                .collect();
            match hex::decode(&hexed) {
                Ok(bytes) if bytes.len() == 32 => Some(bytes),
                _ => {
                    self.problem(
                        "source.tls_fingerprint_sha256",
                        "expected 64 hex digits (colons allowed), as `dirsync check` prints it",
                    );
                    None
                }
            }
        });
        let mut bases = Vec::new();
        match (s.base_dn, s.bases) {
            (Some(_), Some(_)) => self.problem(
                "source.bases",
                "set either base_dn (with filter) or bases, not both",
            ),
            (Some(dn), None) => bases.push(SearchBase {
                base_dn: dn,
                filter: s.filter.unwrap_or_else(|| DEFAULT_FILTER.to_owned()),
            }),
            (None, Some(list)) => {
                if s.filter.is_some() {
                    self.problem("source.filter", "with bases, give each base its own filter");
                }
                if list.is_empty() {
                    self.problem(
                        "source.bases",
                        "empty; list at least one { base_dn = \"…\" }",
                    );
                }
                for (i, b) in list.into_iter().enumerate() {
                    if let Some(dn) = self.required(
                        &format!("source.bases[{i}].base_dn"),
                        b.base_dn,
                        "a DN such as \"OU=AADDC Users,DC=example,DC=com\"",
                    ) {
                        bases.push(SearchBase {
                            base_dn: dn,
                            filter: b.filter.unwrap_or_else(|| DEFAULT_FILTER.to_owned()),
                        });
                    }
                }
            }
            (None, None) => self.problem(
                "source.base_dn",
                "missing; expected the search base, e.g. \"OU=AADDC Users,DC=example,DC=com\"",
            ),
        }
        for (i, b) in bases.iter().enumerate() {
            if crate::source::ldap::parse_filter(&b.filter).is_err() {
                self.problem(
                    &format!("source.bases[{i}].filter"),
                    format!(
                        "{:?} is not an LDAP filter (RFC 4515); expected e.g. \"(objectClass=user)\"",
                        b.filter
                    ),
                );
            }
        }
        let page_size = match s.page_size {
            None => 1000,
            Some(n) if (1..=1000).contains(&n) => n as i32,
            Some(n) => {
                self.problem(
                    "source.page_size",
                    format!(
                        "{n} is out of range; expected 1 to 1000 (Active Directory's MaxPageSize)"
                    ),
                );
                1000
            }
        };
        let ca_file = s.ca_file.map(|p| self.path("source.ca_file", p));
        let connect_timeout = self.seconds(
            "source.connect_timeout_seconds",
            s.connect_timeout_seconds,
            15,
        );
        let timeout = self.seconds("source.timeout_seconds", s.timeout_seconds, 120);
        let read_timeout =
            self.seconds("source.read_timeout_seconds", s.read_timeout_seconds, 3600);
        let max_message_mib = self.count("source.max_message_mib", s.max_message_mib, 64, 1..=1024);
        Some(LdapConfig {
            url: url?,
            bind_dn: bind_dn?,
            password: password?,
            ca_file,
            tls_fingerprint_sha256: fingerprint,
            bases,
            page_size,
            starttls,
            allow_plaintext,
            connect_timeout,
            timeout,
            read_timeout,
            max_message: (max_message_mib as usize) << 20,
        })
    }

    fn output(&mut self, o: RawOutput) -> Option<OutputConfig> {
        let path = self.required(
            "output.path",
            o.path,
            "where to write the MAP file, e.g. \"out/retarus.map\"",
        );
        let line_ending = match o.line_ending.as_deref() {
            None | Some("crlf") => LineEnding::Crlf,
            Some("lf") => LineEnding::Lf,
            Some(other) => {
                self.problem(
                    "output.line_ending",
                    format!("{other:?}; expected \"crlf\" or \"lf\""),
                );
                LineEnding::Crlf
            }
        };
        Some(OutputConfig {
            path: self.path("output.path", path?),
            line_ending,
        })
    }

    fn upload(&mut self, u: RawUpload) -> Option<UploadConfig> {
        match u.kind.as_deref() {
            Some("sftp") => {}
            Some(other) => self.problem("upload.type", format!("{other:?}; expected \"sftp\"")),
            None => self.problem("upload.type", "missing; expected \"sftp\""),
        }
        let host = self.required(
            "upload.host",
            u.host,
            "the SFTP host from Retarus onboarding",
        );
        let port = match u.port {
            None => 22,
            Some(p) if (1..=65535).contains(&p) => p as u16,
            Some(p) => {
                self.problem("upload.port", format!("{p} is not a TCP port"));
                22
            }
        };
        let user = self.required(
            "upload.user",
            u.user,
            "the SFTP user name from Retarus onboarding",
        );
        let password = self.secret(
            "upload",
            "password",
            u.password_env,
            u.password_file,
            u.password_credential,
        );
        let passphrase = self.secret(
            "upload",
            "key_passphrase",
            u.key_passphrase_env,
            u.key_passphrase_file,
            u.key_passphrase_credential,
        );
        let auth = match (u.key_file, password) {
            (Some(_), Some(_)) => {
                self.problem(
                    "upload.key_file",
                    "set either key_file or password_env/password_file, not both",
                );
                None
            }
            (Some(k), None) => Some(SftpAuth::Key {
                key_file: self.path("upload.key_file", k),
                passphrase,
            }),
            (None, Some(p)) => {
                if passphrase.is_some() {
                    self.problem(
                        "upload.key_passphrase_env",
                        "a key passphrase needs key_file",
                    );
                }
                Some(SftpAuth::Password(p))
            }
            (None, None) => {
                self.problem(
                    "upload.key_file",
                    "missing; set key_file (a private key) or password_env / password_file / password_credential",
                );
                None
            }
        };
        let host_key = match (u.known_hosts, u.host_key_sha256) {
            (Some(_), Some(_)) => {
                self.problem(
                    "upload.host_key_sha256",
                    "set either known_hosts or host_key_sha256, not both",
                );
                None
            }
            (Some(k), None) => Some(HostKeyCheck::KnownHosts(self.path("upload.known_hosts", k))),
            (None, Some(f)) => {
                let f = f.trim().to_owned();
                let b64 = f.strip_prefix("SHA256:").unwrap_or("");
                if b64.len() != 43
                    || !b64
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
                {
                    self.problem("upload.host_key_sha256", format!("{f:?}; expected \"SHA256:\" and 43 base64 characters, as `ssh-keygen -lf` or `dirsync check` prints it"));
                }
                Some(HostKeyCheck::Sha256(f))
            }
            (None, None) => {
                self.problem("upload.known_hosts", "missing; the server's host key must be pinned: set known_hosts or host_key_sha256 (dirsync never trusts on first use)");
                None
            }
        };
        let remote_dir = u.remote_dir.unwrap_or_else(|| "/".to_owned());
        let file_name = u
            .file_name
            .unwrap_or_else(|| "{customer_id}.map".to_owned());
        if file_name.is_empty() || file_name.contains('/') || file_name.contains('\\') {
            self.problem("upload.file_name", format!("{file_name:?}; expected a file name without folders (use remote_dir for the folder)"));
        }
        if let Err(e) = crate::upload::check_template(&file_name) {
            self.problem("upload.file_name", e);
        }
        let timeout = self.seconds("upload.timeout_seconds", u.timeout_seconds, 60);
        let retries = match u.retries {
            None => 3,
            Some(r) if (0..=10).contains(&r) => r as u32,
            Some(r) => {
                self.problem("upload.retries", format!("{r}; expected 0 to 10"));
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

    /// `[exchange]`; the flag is `emit_group_owners`.
    fn exchange(&mut self, e: RawExchange) -> Option<(ExchangeConfig, bool)> {
        let hours = |v: &mut Self, key: &str, value: Option<f64>, default: f64| -> Duration {
            match value {
                None => Duration::from_secs_f64(default * 3600.0),
                Some(h) if h > 0.0 && h <= 24.0 * 365.0 => Duration::from_secs_f64(h * 3600.0),
                Some(h) => {
                    v.problem(key, format!("{h}; expected a number of hours above 0"));
                    Duration::from_secs_f64(default * 3600.0)
                }
            }
        };
        let max_age = hours(self, "exchange.max_age_hours", e.max_age_hours, 4.0);
        let fallback_max_age = e
            .fallback_max_age_hours
            .map(|h| hours(self, "exchange.fallback_max_age_hours", Some(h), 24.0));
        let source = match (e.script, e.input) {
            (Some(_), Some(_)) => {
                self.problem("exchange.input", "set either script (dirsync runs it) or input (a file another task writes), not both");
                None
            }
            (None, None) => {
                self.problem("exchange.script", "missing; set script = \"scripts/Export-DirSyncExchangeData.ps1\" or input = \"exchange.json\"");
                None
            }
            (None, Some(input)) => {
                for (key, set) in [
                    ("interpreter", e.interpreter.is_some()),
                    ("parameters", e.parameters.is_some()),
                    ("timeout_seconds", e.timeout_seconds.is_some()),
                ] {
                    if set {
                        self.problem(
                            &format!("exchange.{key}"),
                            "applies only to script; remove it",
                        );
                    }
                }
                Some(ExchangeSource::Input(self.path("exchange.input", input)))
            }
            (Some(script), None) => {
                let mut parameters = Vec::new();
                for (name, value) in e.parameters.unwrap_or_default() {
                    let key = format!("exchange.parameters.{name}");
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric())
                        || name.eq_ignore_ascii_case("OutputPath")
                    {
                        self.problem(&key, "expected a parameter name of the script (letters and digits; OutputPath is set by dirsync)");
                        continue;
                    }
                    if name.to_ascii_lowercase().contains("password")
                        && !name.to_ascii_lowercase().ends_with("file")
                    {
                        self.problem(&key, "secrets are never passed on the command line: use CertificatePasswordFile (a file only the service account can read)");
                        continue;
                    }
                    match value {
                        toml::Value::String(s) => parameters.push((name, s)),
                        toml::Value::Integer(i) => parameters.push((name, i.to_string())),
                        toml::Value::Boolean(true) => parameters.push((name, "$true".into())),
                        toml::Value::Boolean(false) => parameters.push((name, "$false".into())),
                        toml::Value::Array(items) if items.iter().all(toml::Value::is_str) => {
                            let joined: Vec<&str> =
                                items.iter().filter_map(toml::Value::as_str).collect();
                            parameters.push((name, joined.join(",")));
                        }
                        _ => self.problem(
                            &key,
                            "expected a string, a number, true/false or a list of strings",
                        ),
                    }
                }
                let timeout = self.seconds("exchange.timeout_seconds", e.timeout_seconds, 1800);
                Some(ExchangeSource::Script {
                    script: self.path("exchange.script", script),
                    interpreter: e.interpreter,
                    parameters,
                    timeout,
                })
            }
        };
        Some((
            ExchangeConfig {
                source: source?,
                max_age,
                fallback_max_age,
                add_exchange_only: e.add_exchange_only.unwrap_or(true),
            },
            e.emit_group_owners.unwrap_or(false),
        ))
    }

    fn guard(
        &mut self,
        g: RawGuard,
        domains: &BTreeSet<Domain>,
        domains_from_exchange: bool,
    ) -> GuardConfig {
        let max_removed = match g.max_removed {
            None => DEFAULT_MAX_REMOVED,
            Some(n) if n >= 0 => n as u64,
            Some(n) => {
                self.problem("guard.max_removed", format!("{n}; expected 0 or more"));
                DEFAULT_MAX_REMOVED
            }
        };
        let max_removed_percent = match g.max_removed_percent {
            None => DEFAULT_MAX_REMOVED_PERCENT,
            Some(p) if (0.0..=100.0).contains(&p) => p,
            Some(p) => {
                self.problem(
                    "guard.max_removed_percent",
                    format!("{p}; expected 0 to 100"),
                );
                DEFAULT_MAX_REMOVED_PERCENT
            }
        };
        let mut allow_empty_domains = BTreeSet::new();
        for (i, d) in g.allow_empty_domains.unwrap_or_default().iter().enumerate() {
            match Domain::parse(d.trim()) {
                Ok(domain) if domains_from_exchange || domains.contains(&domain) => {
                    allow_empty_domains.insert(domain.as_str().to_owned());
                }
                Ok(_) => self.problem(
                    &format!("guard.allow_empty_domains[{i}]"),
                    format!("{d:?} is not in domains"),
                ),
                Err(e) => self.problem(
                    &format!("guard.allow_empty_domains[{i}]"),
                    format!("{d:?}: {e}"),
                ),
            }
        }
        GuardConfig {
            max_removed,
            max_removed_percent,
            allow_empty_domains,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"), Path::new("/etc/dirsync"))
    }

    fn problems(text: &str) -> Vec<String> {
        parse(text).unwrap_err().problems
    }

    const MINIMAL: &str = r#"
customer_id = "12345"
domains = ["Example.com", "bücher.de"]
[source]
type = "ldif"
path = "export.ldif"
[output]
path = "out/retarus.map"
"#;

    #[test]
    fn the_example_config_parses() {
        let c = Config::parse(
            EXAMPLE,
            Path::new("examples/dirsync.toml"),
            Path::new("examples"),
        )
        .unwrap();
        assert_eq!(c.customer_id, "12345");
        assert!(matches!(c.source, SourceConfig::Ldap(_)));
        assert!(c.upload.is_some());
        assert_eq!(c.guard.max_removed, DEFAULT_MAX_REMOVED);
    }

    #[test]
    fn the_example_rules_in_the_example_config_parse() {
        let text: String = EXAMPLE
            .lines()
            .map(|l| l.strip_prefix("#> ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::parse(
            &text,
            Path::new("examples/dirsync.toml"),
            Path::new("examples"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.rules.filters.len(), 1);
        assert_eq!(c.rules.profiles.rules.len(), 3);
        assert_eq!(c.rules.signature.fields.len(), 3);
        assert_eq!(c.rules.routing.len(), 2);
        assert_eq!(c.rules.extra_addresses.len(), 2);
        assert!(c.exchange.is_some());
    }

    #[test]
    fn minimal_config_gets_defaults_and_resolved_paths() {
        let c = parse(MINIMAL).unwrap();
        let names: Vec<&str> = c.domains.iter().map(Domain::as_str).collect();
        assert_eq!(names, ["example.com", "xn--bcher-kva.de"]);
        assert_eq!(c.state_dir, Path::new("/etc/dirsync/state"));
        assert_eq!(c.output.path, Path::new("/etc/dirsync/out/retarus.map"));
        assert_eq!(c.output.line_ending, LineEnding::Crlf);
        assert!(c.upload.is_none());
        assert_eq!(c.guard.max_removed_percent, 10.0);
        match c.source {
            SourceConfig::Ldif { path } => assert_eq!(path, Path::new("/etc/dirsync/export.ldif")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_typo_in_a_key_is_an_error_with_its_line() {
        let text = MINIMAL.replace("path = \"export.ldif\"", "pathh = \"export.ldif\"");
        let p = problems(&text);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("line 6, column 1: unknown field `pathh`"),
            "{p:?}"
        );
    }

    #[test]
    fn windows_paths_in_double_quotes_say_how_to_write_them() {
        // "C:\temp\new" is C:, TAB, "emp", LF, "ew": read silently before.
        let text = MINIMAL.replace("path = \"export.ldif\"", r#"path = "C:\temp\new.ldif""#);
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(r#"source.path: "C:\temp\new.ldif" contains a control character"#),
            "{p:?}"
        );
        assert!(
            p[0].contains("write Windows paths in single quotes ('C:\\dirsync\\state')"),
            "{p:?}"
        );
        // "C:\dirsync\state": not a TOML escape at all.
        let text = format!("state_dir = \"C:\\dirsync\\state\"\n{MINIMAL}");
        let p = problems(&text);
        assert!(p[0].contains("escape"), "{p:?}");
        assert!(
            p[0].contains("write Windows paths in single quotes"),
            "{p:?}"
        );
        // Single quotes: a plain Windows path.
        let text = format!("state_dir = 'C:\\dirsync\\state'\n{MINIMAL}");
        assert!(parse(&text)
            .unwrap()
            .state_dir
            .ends_with("C:\\dirsync\\state"));
    }

    #[test]
    fn a_wrong_type_is_an_error_with_its_line() {
        let text = MINIMAL.replace("customer_id = \"12345\"", "customer_id = 12345");
        let p = problems(&text);
        assert!(
            p[0].starts_with("line 2, column 15: invalid type: integer `12345`, expected a string"),
            "{p:?}"
        );
    }

    #[test]
    fn all_problems_are_reported_at_once_with_key_paths() {
        let text = r#"
customer_id = "12 345"
domains = ["example.com", "not a domain", "EXAMPLE.com"]
[source]
type = "ldap"
url = "ldap://dc.example.com"
page_size = 5000
tls_fingerprint_sha256 = "abc"
[output]
line_ending = "cr"
[upload]
type = "ftp"
host = "sftp.example.net"
user = "c12345"
key_file = "k"
password_env = "P"
[guard]
max_removed_percent = 150.0
allow_empty_domains = ["other.org"]
"#;
        let p = problems(text);
        let expect = [
            "customer_id: \"12 345\" is not a customer number",
            "domains[1]: \"not a domain\"",
            "domains[2]: \"EXAMPLE.com\" is listed twice",
            "source.url: ldap://dc.example.com is unencrypted",
            "source.bind_dn: missing",
            "source.password_env: missing",
            "source.tls_fingerprint_sha256: expected 64 hex digits",
            "source.base_dn: missing",
            "source.page_size: 5000 is out of range",
            "output.path: missing",
            "output.line_ending: \"cr\"",
            "upload.type: \"ftp\"",
            "upload.key_file: set either key_file or password",
            "upload.known_hosts: missing",
            "guard.max_removed_percent: 150",
            "guard.allow_empty_domains[0]: \"other.org\" is not in domains",
        ];
        for e in expect {
            assert!(
                p.iter().any(|x| x.starts_with(e)),
                "missing {e:?} in {p:#?}"
            );
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }

    #[test]
    fn keys_of_the_other_source_type_are_refused() {
        let text = MINIMAL.replace(
            "path = \"export.ldif\"",
            "path = \"x\"\nurl = \"ldaps://x\"",
        );
        assert_eq!(
            problems(&text),
            ["source.url: applies only to type = \"ldap\"; remove it"]
        );
    }

    #[test]
    fn ldap_bases_and_defaults() {
        let text = r#"
customer_id = "1"
domains = ["example.com"]
[source]
type = "ldap"
url = "ldaps://ldaps.example.com"
bind_dn = "svc@example.com"
password_file = "secret"
tls_fingerprint_sha256 = "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99"
bases = [{ base_dn = "OU=A,DC=x" }, { base_dn = "OU=B,DC=x", filter = "(objectClass=contact)" }]
[output]
path = "x.map"
"#;
        let c = parse(text).unwrap();
        let SourceConfig::Ldap(l) = c.source else {
            panic!()
        };
        assert_eq!(l.bases.len(), 2);
        assert_eq!(l.bases[0].filter, DEFAULT_FILTER);
        assert_eq!(l.bases[1].filter, "(objectClass=contact)");
        assert_eq!(l.page_size, 1000);
        assert_eq!(l.tls_fingerprint_sha256.unwrap()[0], 0xAA);
        assert_eq!(l.password, SecretSource::File("/etc/dirsync/secret".into()));
        assert_eq!(l.timeout, Duration::from_secs(120));
    }

    #[test]
    fn missing_file_names_the_fix() {
        let e = Config::load(Path::new("/nonexistent/dirsync.toml")).unwrap_err();
        assert!(
            e.to_string()
                .contains("dirsync init /nonexistent/dirsync.toml"),
            "{e}"
        );
    }
}
