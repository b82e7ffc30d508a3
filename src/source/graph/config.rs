//! `[source] type = "graph"`: the keys, validated.

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use crate::problems::Problems;
use crate::secret::SecretSource;

/// The Graph keys of `[source]` (see [`crate::source::config::RawSource`]).
#[derive(Debug, Default)]
pub struct RawGraph {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub certificate_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub pfx_file: Option<PathBuf>,
    pub pfx_password_env: Option<String>,
    pub pfx_password_file: Option<PathBuf>,
    pub pfx_password_credential: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub client_secret_credential: Option<String>,
    pub cloud: Option<String>,
    pub login_url: Option<String>,
    pub graph_url: Option<String>,
    pub signing: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub page_size: Option<i64>,
    pub connect_timeout_seconds: Option<i64>,
    pub timeout_seconds: Option<i64>,
    pub read_timeout_seconds: Option<i64>,
    pub max_page_mib: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct GraphConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub credential: CredentialConfig,
    /// The sign-in host, e.g. `https://login.microsoftonline.com` (no trailing slash).
    pub login_url: String,
    /// The Graph host, e.g. `https://graph.microsoft.com` (no trailing slash).
    pub graph_url: String,
    pub algorithm: Algorithm,
    /// Trust only these anchors (a TLS-inspecting proxy's CA; the test stand-in).
    pub ca_file: Option<PathBuf>,
    /// `$top`.
    pub page_size: u32,
    pub connect_timeout: Duration,
    /// Time for each request, answer included.
    pub timeout: Duration,
    /// Time for the whole read.
    pub read_timeout: Duration,
    /// The largest page accepted, in bytes.
    pub max_page: u64,
}

#[derive(Debug, Clone)]
pub enum CredentialConfig {
    Pem {
        certificate_file: PathBuf,
        key_file: PathBuf,
    },
    Pfx {
        pfx_file: PathBuf,
        password: SecretSource,
    },
    Secret(SecretSource),
}

impl GraphConfig {
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.login_url, self.tenant_id)
    }
}

/// The sign-in and Graph hosts of each cloud (Microsoft's "national cloud deployments").
pub const CLOUDS: &[(&str, &str, &str)] = &[
    (
        "global",
        "https://login.microsoftonline.com",
        "https://graph.microsoft.com",
    ),
    (
        "usgov",
        "https://login.microsoftonline.us",
        "https://graph.microsoft.us",
    ),
    (
        "usgov-dod",
        "https://login.microsoftonline.us",
        "https://dod-graph.microsoft.us",
    ),
    (
        "china",
        "https://login.chinacloudapi.cn",
        "https://microsoftgraph.chinacloudapi.cn",
    ),
];

pub fn validate(g: RawGraph, at: &str, pr: &mut Problems) -> Option<GraphConfig> {
    let key = |k: &str| format!("{at}.{k}");
    let credential = credential_config(&g, at, pr);
    let tenant_id = pr.required(
        &key("tenant_id"),
        g.tenant_id,
        "the Directory (tenant) ID, e.g. \"0b8c…\", or a verified domain",
    );
    if let Some(t) = &tenant_id {
        if t.trim().is_empty() || t.contains(['/', '?', '#', ' ']) {
            pr.problem(
                &key("tenant_id"),
                format!("{t:?} is not a tenant ID or domain"),
            );
        }
    }
    let client_id = pr.required(
        &key("client_id"),
        g.client_id,
        "the app registration's Application (client) ID",
    );
    let (login_url, graph_url) = hosts(&g.cloud, g.login_url, g.graph_url, at, pr);
    let algorithm = match g.signing.as_deref() {
        None | Some("RS256") => Algorithm::RS256,
        Some("PS256") => Algorithm::PS256,
        Some(other) => {
            pr.problem(
                &key("signing"),
                format!("{other:?} is not offered; expected \"RS256\" (default) or \"PS256\""),
            );
            Algorithm::RS256
        }
    };
    let page_size = pr.count(&key("page_size"), g.page_size, 999, 1..=999) as u32;
    let max_page_mib = pr.count(&key("max_page_mib"), g.max_page_mib, 64, 1..=1024);
    Some(GraphConfig {
        tenant_id: tenant_id?,
        client_id: client_id?,
        credential: credential?,
        login_url: login_url?,
        graph_url: graph_url?,
        algorithm,
        ca_file: g.ca_file.map(|p| pr.path(&key("ca_file"), p)),
        page_size,
        connect_timeout: pr.seconds(
            &key("connect_timeout_seconds"),
            g.connect_timeout_seconds,
            15,
        ),
        timeout: pr.seconds(&key("timeout_seconds"), g.timeout_seconds, 120),
        read_timeout: pr.seconds(&key("read_timeout_seconds"), g.read_timeout_seconds, 3600),
        max_page: max_page_mib << 20,
    })
}

/// The credential: a PEM pair, a .pfx with its password, or a client secret — exactly one.
fn credential_config(g: &RawGraph, at: &str, pr: &mut Problems) -> Option<CredentialConfig> {
    let key = |k: &str| format!("{at}.{k}");
    let credential = match credential(&g.certificate_file, &g.key_file, &g.pfx_file, at, pr) {
        Some(Kind::Pem) => Some(CredentialConfig::Pem {
            certificate_file: pr.path(&key("certificate_file"), g.certificate_file.clone()?),
            key_file: pr.path(&key("key_file"), g.key_file.clone()?),
        }),
        Some(Kind::Pfx) => {
            let password = pr.secret(
                at,
                "pfx_password",
                g.pfx_password_env.clone(),
                g.pfx_password_file.clone(),
                g.pfx_password_credential.clone(),
            );
            if password.is_none() && !pr.mentions(&key("pfx_password")) {
                pr.problem(
                    &key("pfx_password_env"),
                    "missing; the .pfx needs its password from pfx_password_env, \
                     pfx_password_file or pfx_password_credential",
                );
            }
            password.map(|password| CredentialConfig::Pfx {
                pfx_file: pr.path(&key("pfx_file"), g.pfx_file.clone().unwrap_or_default()),
                password,
            })
        }
        Some(Kind::Secret) => pr
            .secret(
                at,
                "client_secret",
                g.client_secret_env.clone(),
                g.client_secret_file.clone(),
                g.client_secret_credential.clone(),
            )
            .map(CredentialConfig::Secret),
        None => None,
    };
    let has_secret = g.client_secret_env.is_some()
        || g.client_secret_file.is_some()
        || g.client_secret_credential.is_some();
    let has_certificate =
        g.certificate_file.is_some() || g.key_file.is_some() || g.pfx_file.is_some();
    if has_secret && has_certificate {
        pr.problem(
            &key("client_secret_env"),
            "set a certificate (certificate_file + key_file, or pfx_file) or a client secret, not both",
        );
    }
    if !has_secret && !has_certificate {
        pr.problem(
            &key("certificate_file"),
            "missing credential; set certificate_file + key_file, or pfx_file (with \
             pfx_password_*), or client_secret_env / client_secret_file / client_secret_credential",
        );
    }
    credential
}

enum Kind {
    Pem,
    Pfx,
    Secret,
}

fn credential(
    certificate_file: &Option<PathBuf>,
    key_file: &Option<PathBuf>,
    pfx_file: &Option<PathBuf>,
    at: &str,
    pr: &mut Problems,
) -> Option<Kind> {
    match (certificate_file, key_file, pfx_file) {
        (Some(_), Some(_), None) => Some(Kind::Pem),
        (None, None, Some(_)) => Some(Kind::Pfx),
        (None, None, None) => Some(Kind::Secret),
        (Some(_), None, None) => {
            pr.problem(
                &format!("{at}.key_file"),
                "missing; certificate_file needs the private key's PEM file (or use pfx_file)",
            );
            None
        }
        (None, Some(_), None) => {
            pr.problem(
                &format!("{at}.certificate_file"),
                "missing; key_file needs the certificate's PEM file (or use pfx_file)",
            );
            None
        }
        _ => {
            pr.problem(
                &format!("{at}.pfx_file"),
                "set pfx_file or certificate_file + key_file, not both",
            );
            None
        }
    }
}

/// The sign-in and Graph base URLs: from `cloud`, each replaceable (`login_url`, `graph_url`)
/// for a deployment the table lacks. HTTPS only: the token must never travel in the clear.
fn hosts(
    cloud: &Option<String>,
    login_url: Option<String>,
    graph_url: Option<String>,
    at: &str,
    pr: &mut Problems,
) -> (Option<String>, Option<String>) {
    let name = cloud.as_deref().unwrap_or("global");
    let Some((_, login, graph)) = CLOUDS.iter().find(|(n, _, _)| *n == name) else {
        let names: Vec<&str> = CLOUDS.iter().map(|(n, _, _)| *n).collect();
        pr.problem(
            &format!("{at}.cloud"),
            format!(
                "{name:?} is not a cloud; expected one of {}",
                names.join(", ")
            ),
        );
        return (None, None);
    };
    let mut url = |k: &str, given: Option<String>, default: &str| {
        let u = given.unwrap_or_else(|| default.to_owned());
        let u = u.trim_end_matches('/').to_owned();
        let authority = u.strip_prefix("https://").unwrap_or("");
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            pr.problem(
                &format!("{at}.{k}"),
                format!("{u:?} is not an https:// host URL, e.g. \"{default}\""),
            );
            return None;
        }
        Some(u)
    };
    (
        url("login_url", login_url, login),
        url("graph_url", graph_url, graph),
    )
}
