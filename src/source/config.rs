//! The `[source]` section: where the directory comes from (an LDIF export, an LDAP server or
//! Microsoft Graph), as the admin writes it and as the source stage uses it, validated here.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::problems::Problems;
use crate::secret::SecretSource;
use crate::source::graph::config::{GraphConfig, RawGraph};

pub const DEFAULT_FILTER: &str = "(|(objectClass=user)(objectClass=group)(objectClass=contact))";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// The source's name in `[[sources]]` (messages, `source = "…"` conditions, the guard).
    pub name: Option<String>,
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
    // graph
    tenant_id: Option<String>,
    client_id: Option<String>,
    certificate_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    pfx_file: Option<PathBuf>,
    pfx_password_env: Option<String>,
    pfx_password_file: Option<PathBuf>,
    pfx_password_credential: Option<String>,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    client_secret_credential: Option<String>,
    cloud: Option<String>,
    login_url: Option<String>,
    graph_url: Option<String>,
    signing: Option<String>,
    max_page_mib: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBase {
    base_dn: Option<String>,
    filter: Option<String>,
}

/// A source with its name.
#[derive(Debug, Clone)]
pub struct NamedSource {
    pub name: String,
    pub config: SourceConfig,
}

/// Validates `[source]` (a list of one, named `name` or "source") or `[[sources]]` (each
/// named, the names unique).
pub fn validate_all(
    one: Option<RawSource>,
    list: Option<Vec<RawSource>>,
    pr: &mut Problems,
) -> Option<Vec<NamedSource>> {
    let raw: Vec<(String, RawSource)> = match (one, list) {
        (Some(_), Some(_)) => {
            pr.problem(
                "sources",
                "set either [source] (one directory) or [[sources]] (several), not both",
            );
            return None;
        }
        (None, None) => {
            pr.problem(
                "source",
                "missing section [source]; expected type = \"ldap\", \"graph\" or \"ldif\" (or a list of [[sources]])",
            );
            return None;
        }
        (Some(s), None) => vec![("source".to_owned(), s)],
        (None, Some(list)) => {
            if list.is_empty() {
                pr.problem("sources", "empty; list at least one [[sources]] table");
            }
            list.into_iter()
                .enumerate()
                .map(|(i, s)| (format!("sources[{i}]"), s))
                .collect()
        }
    };
    let several = raw.len() > 1 || raw.iter().any(|(at, _)| at != "source");
    let mut out = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (at, mut s) in raw {
        let name = match s.name.take() {
            Some(n) if valid_name(&n) => n,
            Some(n) => {
                pr.problem(
                    &format!("{at}.name"),
                    format!("{n:?}: expected letters, digits, '-', '_' or '.'"),
                );
                continue;
            }
            None if !several => "source".to_owned(),
            None => {
                pr.problem(
                    &format!("{at}.name"),
                    "missing; each of [[sources]] needs a name, e.g. name = \"forest-a\"",
                );
                continue;
            }
        };
        if !names.insert(name.to_ascii_lowercase()) {
            pr.problem(
                &format!("{at}.name"),
                format!("{name:?} is the name of another source; names must differ"),
            );
        }
        if let Some(config) = validate(s, &at, pr) {
            out.push(NamedSource { name, config });
        }
    }
    Some(out)
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[derive(Debug, Clone)]
pub enum SourceConfig {
    Ldif { path: PathBuf },
    Ldap(LdapConfig),
    Graph(GraphConfig),
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

const TYPES: &str = "\"ldap\", \"ldif\" or \"graph\"";

/// Validates one source; `at` is its key path (`source`, or `sources[1]`).
pub fn validate(s: RawSource, at: &str, pr: &mut Problems) -> Option<SourceConfig> {
    let kind = pr.required(&format!("{at}.type"), s.kind.clone(), TYPES)?;
    if !["ldap", "ldif", "graph"].contains(&kind.as_str()) {
        pr.problem(
            &format!("{at}.type"),
            format!("{kind:?} is not a source type; expected {TYPES}"),
        );
        return None;
    }
    for (key, types) in s.keys_set() {
        if !types.split(' ').any(|t| t == kind) {
            let only = types.replace(' ', "\" or \"");
            pr.problem(
                &format!("{at}.{key}"),
                format!("applies only to type = \"{only}\"; remove it"),
            );
        }
    }
    match kind.as_str() {
        "ldif" => {
            let path = pr.required(
                &format!("{at}.path"),
                s.path,
                "the LDIF export to read, e.g. \"export.ldif\"",
            )?;
            Some(SourceConfig::Ldif {
                path: pr.path(&format!("{at}.path"), path),
            })
        }
        "ldap" => ldap(s, at, pr).map(SourceConfig::Ldap),
        _ => crate::source::graph::config::validate(s.graph(), at, pr).map(SourceConfig::Graph),
    }
}

impl RawSource {
    /// The keys given, each with the source types it applies to.
    fn keys_set(&self) -> Vec<(&'static str, &'static str)> {
        let keys = [
            ("path", self.path.is_some(), "ldif"),
            ("ca_file", self.ca_file.is_some(), "ldap graph"),
            ("page_size", self.page_size.is_some(), "ldap graph"),
            (
                "connect_timeout_seconds",
                self.connect_timeout_seconds.is_some(),
                "ldap graph",
            ),
            (
                "timeout_seconds",
                self.timeout_seconds.is_some(),
                "ldap graph",
            ),
            (
                "read_timeout_seconds",
                self.read_timeout_seconds.is_some(),
                "ldap graph",
            ),
        ];
        let ldap = self.ldap_keys().map(|(k, set)| (k, set, "ldap"));
        let graph = self.graph_keys().map(|(k, set)| (k, set, "graph"));
        keys.into_iter()
            .chain(ldap)
            .chain(graph)
            .filter(|(_, set, _)| *set)
            .map(|(key, _, types)| (key, types))
            .collect()
    }

    /// The keys only `type = "ldap"` has, and whether each is given.
    fn ldap_keys(&self) -> [(&'static str, bool); 12] {
        [
            ("url", self.url.is_some()),
            ("bind_dn", self.bind_dn.is_some()),
            ("password_env", self.password_env.is_some()),
            ("password_file", self.password_file.is_some()),
            ("password_credential", self.password_credential.is_some()),
            (
                "tls_fingerprint_sha256",
                self.tls_fingerprint_sha256.is_some(),
            ),
            ("base_dn", self.base_dn.is_some()),
            ("filter", self.filter.is_some()),
            ("bases", self.bases.is_some()),
            ("starttls", self.starttls.is_some()),
            ("allow_plaintext", self.allow_plaintext.is_some()),
            ("max_message_mib", self.max_message_mib.is_some()),
        ]
    }

    /// The keys only `type = "graph"` has, and whether each is given.
    fn graph_keys(&self) -> [(&'static str, bool); 16] {
        [
            ("tenant_id", self.tenant_id.is_some()),
            ("client_id", self.client_id.is_some()),
            ("certificate_file", self.certificate_file.is_some()),
            ("key_file", self.key_file.is_some()),
            ("pfx_file", self.pfx_file.is_some()),
            ("pfx_password_env", self.pfx_password_env.is_some()),
            ("pfx_password_file", self.pfx_password_file.is_some()),
            (
                "pfx_password_credential",
                self.pfx_password_credential.is_some(),
            ),
            ("client_secret_env", self.client_secret_env.is_some()),
            ("client_secret_file", self.client_secret_file.is_some()),
            (
                "client_secret_credential",
                self.client_secret_credential.is_some(),
            ),
            ("cloud", self.cloud.is_some()),
            ("login_url", self.login_url.is_some()),
            ("graph_url", self.graph_url.is_some()),
            ("signing", self.signing.is_some()),
            ("max_page_mib", self.max_page_mib.is_some()),
        ]
    }

    fn graph(self) -> RawGraph {
        RawGraph {
            tenant_id: self.tenant_id,
            client_id: self.client_id,
            certificate_file: self.certificate_file,
            key_file: self.key_file,
            pfx_file: self.pfx_file,
            pfx_password_env: self.pfx_password_env,
            pfx_password_file: self.pfx_password_file,
            pfx_password_credential: self.pfx_password_credential,
            client_secret_env: self.client_secret_env,
            client_secret_file: self.client_secret_file,
            client_secret_credential: self.client_secret_credential,
            cloud: self.cloud,
            login_url: self.login_url,
            graph_url: self.graph_url,
            signing: self.signing,
            ca_file: self.ca_file,
            page_size: self.page_size,
            connect_timeout_seconds: self.connect_timeout_seconds,
            timeout_seconds: self.timeout_seconds,
            read_timeout_seconds: self.read_timeout_seconds,
            max_page_mib: self.max_page_mib,
        }
    }
}

fn ldap(s: RawSource, at: &str, pr: &mut Problems) -> Option<LdapConfig> {
    let url = pr.required(
        &format!("{at}.url"),
        s.url,
        "e.g. \"ldaps://ldaps.example.com:636\"",
    );
    let starttls = s.starttls.unwrap_or(false);
    let allow_plaintext = s.allow_plaintext.unwrap_or(false);
    if let Some(u) = &url {
        check_url(u, starttls, allow_plaintext, at, pr);
    }
    let bind_dn = pr.required(
        &format!("{at}.bind_dn"),
        s.bind_dn,
        "the bind account's DN or UPN, e.g. \"svc-dirsync@example.com\"",
    );
    let password = pr.secret(
        at,
        "password",
        s.password_env,
        s.password_file,
        s.password_credential,
    );
    if password.is_none() && !pr.mentions(&format!("{at}.password")) {
        pr.problem(
            &format!("{at}.password_env"),
            "missing; set password_env (an environment variable name), password_file or password_credential (Windows Credential Manager)",
        );
    }
    let fingerprint = s
        .tls_fingerprint_sha256
        .and_then(|f| fingerprint(&f, at, pr));
    let bases = bases(s.base_dn, s.filter, s.bases, at, pr);
    let page_size = match s.page_size {
        None => 1000,
        Some(n) if (1..=1000).contains(&n) => n as i32,
        Some(n) => {
            pr.problem(
                &format!("{at}.page_size"),
                format!("{n} is out of range; expected 1 to 1000 (Active Directory's MaxPageSize)"),
            );
            1000
        }
    };
    let ca_file = s.ca_file.map(|p| pr.path(&format!("{at}.ca_file"), p));
    let connect_timeout = pr.seconds(
        &format!("{at}.connect_timeout_seconds"),
        s.connect_timeout_seconds,
        15,
    );
    let timeout = pr.seconds(&format!("{at}.timeout_seconds"), s.timeout_seconds, 120);
    let read_timeout = pr.seconds(
        &format!("{at}.read_timeout_seconds"),
        s.read_timeout_seconds,
        3600,
    );
    let max_message_mib = pr.count(
        &format!("{at}.max_message_mib"),
        s.max_message_mib,
        64,
        1..=1024,
    );
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

/// ldaps://, or ldap:// with StartTLS (or, in a lab, allow_plaintext).
fn check_url(u: &str, starttls: bool, allow_plaintext: bool, at: &str, pr: &mut Problems) {
    if u.starts_with("ldaps://") {
        if starttls {
            pr.problem(
                &format!("{at}.starttls"),
                "ldaps:// is already encrypted; starttls applies to ldap:// URLs only",
            );
        }
    } else if u.starts_with("ldap://") {
        if !starttls && !allow_plaintext {
            pr.problem(&format!("{at}.url"), format!("{u} is unencrypted: use ldaps://, or set starttls = true (allow_plaintext = true only in a lab)"));
        }
    } else {
        pr.problem(
            &format!("{at}.url"),
            format!("{u:?} is not an LDAP URL; expected ldaps://host[:port] or ldap://host[:port]"),
        );
    }
}

/// `tls_fingerprint_sha256`: 64 hex digits, colons and spaces allowed.
fn fingerprint(f: &str, at: &str, pr: &mut Problems) -> Option<Vec<u8>> {
    let hexed: String = f
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    match hex::decode(&hexed) {
        Ok(bytes) if bytes.len() == 32 => Some(bytes),
        _ => {
            pr.problem(
                &format!("{at}.tls_fingerprint_sha256"),
                "expected 64 hex digits (colons allowed), as `dirsync check` prints it",
            );
            None
        }
    }
}

/// `base_dn` with `filter`, or a list of `bases`; every filter checked (RFC 4515).
fn bases(
    base_dn: Option<String>,
    filter: Option<String>,
    list: Option<Vec<RawBase>>,
    at: &str,
    pr: &mut Problems,
) -> Vec<SearchBase> {
    let mut bases = Vec::new();
    match (base_dn, list) {
        (Some(_), Some(_)) => pr.problem(
            &format!("{at}.bases"),
            "set either base_dn (with filter) or bases, not both",
        ),
        (Some(dn), None) => bases.push(SearchBase {
            base_dn: dn,
            filter: filter.unwrap_or_else(|| DEFAULT_FILTER.to_owned()),
        }),
        (None, Some(list)) => {
            if filter.is_some() {
                pr.problem(
                    &format!("{at}.filter"),
                    "with bases, give each base its own filter",
                );
            }
            if list.is_empty() {
                pr.problem(
                    &format!("{at}.bases"),
                    "empty; list at least one { base_dn = \"…\" }",
                );
            }
            for (i, b) in list.into_iter().enumerate() {
                if let Some(dn) = pr.required(
                    &format!("{at}.bases[{i}].base_dn"),
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
        (None, None) => pr.problem(
            &format!("{at}.base_dn"),
            "missing; expected the search base, e.g. \"OU=AADDC Users,DC=example,DC=com\"",
        ),
    }
    for (i, b) in bases.iter().enumerate() {
        if super::ldap::parse_filter(&b.filter).is_err() {
            pr.problem(
                &format!("{at}.bases[{i}].filter"),
                format!(
                    "{:?} is not an LDAP filter (RFC 4515); expected e.g. \"(objectClass=user)\"",
                    b.filter
                ),
            );
        }
    }
    bases
}
