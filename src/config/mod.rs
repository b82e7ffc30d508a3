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

use serde::Deserialize;

use crate::guard::RawGuard;
use crate::logging::LogConfig;
use crate::mapfile::output::RawOutput;
use crate::model::Domain;
use crate::problems::{Problems, WINDOWS_PATHS};
use crate::rules::spec::RulesConfig;
use crate::source::config::RawSource;
use crate::upload::config::RawUpload;

mod keys;

pub use crate::exchange::{ExchangeConfig, ExchangeSource};
pub use crate::guard::{GuardConfig, DEFAULT_MAX_REMOVED, DEFAULT_MAX_REMOVED_PERCENT};
pub use crate::mapfile::output::OutputConfig;
pub use crate::source::config::NamedSource;
pub use crate::source::config::DEFAULT_FILTER;
pub use crate::source::{LdapConfig, SearchBase, SourceConfig};
pub use crate::upload::{HostKeyCheck, SftpAuth, UploadConfig};

/// The commented example configuration, written by `dirsync init`.
pub const EXAMPLE: &str = include_str!("../../examples/dirsync.toml");

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
    sources: Option<Vec<RawSource>>,
    output: Option<RawOutput>,
    upload: Option<RawUpload>,
    exchange: Option<crate::exchange::config::RawExchanges>,
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
    /// The directories read, each complete, into one map: `[source]` is a list of one.
    pub sources: Vec<NamedSource>,
    pub output: OutputConfig,
    pub upload: Option<UploadConfig>,
    /// One per tenant (several with several sources), each naming its source then.
    pub exchange: Vec<ExchangeConfig>,
    pub guard: GuardConfig,
    pub rules: RulesConfig,
}

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
        let fail = |problems| ConfigError {
            file: file.to_owned(),
            problems,
        };
        // A syntax error stops here (the rest of the file cannot be read reliably).
        let table: toml::Table =
            toml::from_str(text).map_err(|e| fail(vec![describe_toml_error(text, &e)]))?;
        let read = keys::deserialize(table, text);
        let mut v = Validator {
            p: Problems::new(base),
        };
        let config = read.raw.and_then(|raw| v.config(raw, file));
        // A key already reported (unknown or of the wrong type) is not reported again as
        // missing or invalid.
        let mut problems = read.problems;
        problems.extend(
            v.p.into_list()
                .into_iter()
                .filter(|p| !read.covered.contains(&keys::key_of(p))),
        );
        match config {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(fail(problems)),
        }
    }
}

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

/// The whole file's validation: composes the sections, each validated by its stage, and
/// checks what spans sections.
struct Validator<'a> {
    p: Problems<'a>,
}

impl<'a> std::ops::Deref for Validator<'a> {
    type Target = Problems<'a>;
    fn deref(&self) -> &Problems<'a> {
        &self.p
    }
}

impl std::ops::DerefMut for Validator<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.p
    }
}

impl Validator<'_> {
    fn config(&mut self, raw: RawConfig, file: &Path) -> Option<Config> {
        let customer_id = self.customer_id(raw.customer_id);
        let log = crate::logging::validate(raw.log_dir, raw.log_days, raw.log_level, &mut self.p);
        let domains_from_exchange =
            matches!(&raw.domains, Some(RawDomains::Word(w)) if w == "exchange");
        let domains = self.accepted_domains(raw.domains, raw.exchange.is_some());
        let sources = crate::source::config::validate_all(raw.source, raw.sources, &mut self.p);
        let names: Vec<&str> = sources.iter().flatten().map(|s| s.name.as_str()).collect();
        let (exchange, group_owners) = match raw.exchange {
            Some(e) => crate::exchange::config::validate_all(e, &names, &mut self.p),
            None => (Vec::new(), false),
        };
        let state_dir = self.path(
            "state_dir",
            raw.state_dir.unwrap_or_else(|| PathBuf::from("state")),
        );
        let archive_days = self.count("archive_days", raw.archive_days, 0, 0..=3650) as u32;
        let output = match raw.output {
            Some(o) => crate::mapfile::output::validate(o, &mut self.p),
            None => self.missing("output", "expected at least path = '…'"),
        };
        let upload = raw
            .upload
            .and_then(|u| crate::upload::config::validate(u, &mut self.p));
        let guard = crate::guard::validate(raw.guard, &domains, domains_from_exchange, &mut self.p);
        let mut rules = RulesConfig::parse(
            raw.filter.as_ref(),
            raw.addresses.as_ref(),
            raw.profiles.as_ref(),
            raw.signature.as_ref(),
            raw.routing.as_ref(),
            &mut self.p,
        );
        self.rules_fit_sources(&rules, sources.as_deref().unwrap_or_default());
        if group_owners {
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
            sources: sources?,
            output: output?,
            upload,
            exchange,
            guard,
            rules,
            domains_from_exchange,
        })
    }

    /// What the rules ask of the sources: named sources exist, and a Graph source can give
    /// every attribute the rules read.
    fn rules_fit_sources(&mut self, rules: &RulesConfig, sources: &[NamedSource]) {
        let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        for name in rules.sources() {
            if !names.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                self.problem(
                    "rules",
                    format!(
                        "a condition names source {name:?}, which is not configured; the sources are: {}",
                        names.join(", ")
                    ),
                );
            }
        }
        if !sources
            .iter()
            .any(|s| matches!(s.config, SourceConfig::Graph(_)))
        {
            return;
        }
        for a in rules.attributes() {
            if !crate::source::graph::mapping::supports(&a) {
                self.problem(
                    "source.type",
                    format!(
                        "the rules read the attribute {a:?}, which the Graph source cannot give; \
                         it gives {}",
                        crate::source::graph::mapping::supported_list()
                    ),
                );
            }
        }
    }

    /// A required section that is missing.
    fn missing<T>(&mut self, section: &str, expected: &str) -> Option<T> {
        self.problem(section, format!("missing section [{section}]; {expected}"));
        None
    }

    fn customer_id(&mut self, raw: Option<String>) -> Option<String> {
        let id = self.required(
            "customer_id",
            raw,
            "your Retarus customer number, e.g. \"12345\"",
        )?;
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            self.problem("customer_id", format!("{id:?} is not a customer number; expected letters and digits only, e.g. \"12345\""));
        }
        Some(id)
    }

    /// `domains`: a list, or the word "exchange" (then [exchange] is needed).
    fn accepted_domains(
        &mut self,
        raw: Option<RawDomains>,
        has_exchange: bool,
    ) -> BTreeSet<Domain> {
        match raw {
            Some(RawDomains::Word(w)) if w == "exchange" => {
                if !has_exchange {
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
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapfile::LineEnding;
    use crate::secret::SecretSource;
    use std::time::Duration;

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
        assert!(matches!(c.sources[0].config, SourceConfig::Ldap(_)));
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
        assert!(!c.exchange.is_empty());
    }

    #[test]
    fn minimal_config_gets_defaults_and_resolved_paths() {
        let mut c = parse(MINIMAL).unwrap();
        let names: Vec<&str> = c.domains.iter().map(Domain::as_str).collect();
        assert_eq!(names, ["example.com", "xn--bcher-kva.de"]);
        assert_eq!(c.state_dir, Path::new("/etc/dirsync/state"));
        assert_eq!(c.output.path, Path::new("/etc/dirsync/out/retarus.map"));
        assert_eq!(c.output.line_ending, LineEnding::Crlf);
        assert!(c.upload.is_none());
        assert_eq!(c.guard.max_removed_percent, 10.0);
        match c.sources.remove(0).config {
            SourceConfig::Ldif { path } => assert_eq!(path, Path::new("/etc/dirsync/export.ldif")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_typo_in_a_key_is_an_error_with_its_line() {
        let text = MINIMAL.replace("path = \"export.ldif\"", "pathh = \"export.ldif\"");
        let p = problems(&text);
        assert_eq!(
            p,
            ["source.pathh: unknown key; did you mean `path`? (line 6)"]
        );
    }

    #[test]
    fn every_unknown_key_and_wrong_type_is_reported_at_once() {
        let text = MINIMAL
            .replace(
                "path = \"export.ldif\"",
                "pth = \"export.ldif\"\nallow_plaintxt = true",
            )
            .replace(
                "customer_id = \"12345\"",
                "customer_id = 12345\narchive_days = \"7\"",
            );
        let p = problems(&text);
        assert_eq!(
            p,
            [
                "archive_days: expected a whole number (without quotes), found the text \"7\" (line 3)",
                "customer_id: expected text in quotes, found the number `12345` (line 2)",
                "source.allow_plaintxt: unknown key; did you mean `allow_plaintext`? (line 8)",
                "source.pth: unknown key; did you mean `path`? (line 7)",
            ]
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
        assert_eq!(
            p,
            ["customer_id: expected text in quotes, found the number `12345` (line 2)"]
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
    fn several_sources_are_named_uniquely_and_their_keys_have_paths() {
        let sources = |body: &str| {
            MINIMAL.replace("[source]\ntype = \"ldif\"\npath = \"export.ldif\"\n", body)
        };
        let two = "[[sources]]\nname = \"a\"\ntype = \"ldif\"\npath = \"a.ldif\"\n\
                   [[sources]]\nname = \"b\"\ntype = \"ldif\"\npath = \"b.ldif\"\n";
        let c = parse(&sources(two)).unwrap();
        let names: Vec<&str> = c.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            problems(&sources(
                "[[sources]]\nname = \"a\"\ntype = \"ldif\"\npath = \"a.ldif\"\n\
                 [[sources]]\nname = \"A\"\ntype = \"ldap\"\npath = \"b.ldif\"\n\
                 [[sources]]\ntype = \"ldif\"\npath = \"c.ldif\"\n"
            )),
            [
                "sources[1].name: \"A\" is the name of another source; names must differ",
                "sources[1].path: applies only to type = \"ldif\"; remove it",
                "sources[1].url: missing; expected e.g. \"ldaps://ldaps.example.com:636\"",
                "sources[1].bind_dn: missing; expected the bind account's DN or UPN, e.g. \"svc-dirsync@example.com\"",
                "sources[1].password_env: missing; set password_env (an environment variable name), password_file or password_credential (Windows Credential Manager)",
                "sources[1].base_dn: missing; expected the search base, e.g. \"OU=AADDC Users,DC=example,DC=com\"",
                "sources[2].name: missing; each of [[sources]] needs a name, e.g. name = \"forest-a\"",
            ]
        );
        let both =
            MINIMAL.to_owned() + "[[sources]]\nname = \"x\"\ntype = \"ldif\"\npath = \"x\"\n";
        assert_eq!(
            problems(&both),
            ["sources: set either [source] (one directory) or [[sources]] (several), not both"]
        );
        let unknown =
            sources(two) + "[[profiles.rule]]\nwhen = { source = \"c\" }\nprofile = \"X\"\n";
        assert_eq!(
            problems(&unknown),
            ["rules: a condition names source \"c\", which is not configured; the sources are: a, b"]
        );
    }

    #[test]
    fn graph_sources_need_one_credential_and_https_hosts() {
        let graph = |keys: &str| {
            MINIMAL.replace(
                "type = \"ldif\"\npath = \"export.ldif\"",
                &format!("type = \"graph\"\ntenant_id = \"t\"\nclient_id = \"c\"\n{keys}"),
            )
        };
        let config = parse(&graph("client_secret_env = \"S\"")).unwrap();
        let SourceConfig::Graph(g) = &config.sources[0].config else {
            panic!("not graph")
        };
        assert_eq!(
            g.token_url(),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
        assert_eq!(
            (g.page_size, g.graph_url.as_str()),
            (999, "https://graph.microsoft.com")
        );
        let china = parse(&graph("client_secret_env = \"S\"\ncloud = \"china\"")).unwrap();
        let SourceConfig::Graph(g) = &china.sources[0].config else {
            panic!("not graph")
        };
        assert_eq!(g.graph_url, "https://microsoftgraph.chinacloudapi.cn");
        assert_eq!(
            problems(&graph("")),
            ["source.certificate_file: missing credential; set certificate_file + key_file, or pfx_file (with pfx_password_*), or client_secret_env / client_secret_file / client_secret_credential"]
        );
        assert_eq!(
            problems(&graph("certificate_file = \"a.crt\"\nclient_secret_env = \"S\"")),
            [
                "source.key_file: missing; certificate_file needs the private key's PEM file (or use pfx_file)",
                "source.client_secret_env: set a certificate (certificate_file + key_file, or pfx_file) or a client secret, not both"
            ]
        );
        assert_eq!(
            problems(&graph("client_secret_env = \"S\"\ngraph_url = \"http://graph.example\"\nbind_dn = \"x\"")),
            [
                "source.bind_dn: applies only to type = \"ldap\"; remove it",
                "source.graph_url: \"http://graph.example\" is not an https:// host URL, e.g. \"https://graph.microsoft.com\""
            ]
        );
        let rules = graph("client_secret_env = \"S\"")
            + "\n[[profiles.rule]]\nwhen = { attribute = \"msExchHideFromAddressLists\", equals = \"TRUE\" }\nprofile = \"X\"\n";
        let p = problems(&rules);
        assert!(
            p.len() == 1
                && p[0]
                    .contains("\"msexchhidefromaddresslists\", which the Graph source cannot give"),
            "{p:?}"
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
        let mut c = parse(text).unwrap();
        let SourceConfig::Ldap(l) = c.sources.remove(0).config else {
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
