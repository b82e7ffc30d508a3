//! Requests to Microsoft Graph: the token on every request and nowhere else, bounded
//! answers, throttling honoured, errors in words that name the fix.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use ureq::http::Uri;

use super::config::GraphConfig;
use super::token::{Credential, Token, Tokens};

/// Attempts of one request that Graph throttles (429) or finds too busy (503, 504).
const THROTTLED_ATTEMPTS: u32 = 8;
/// Attempts of one request whose connection fails.
const TRANSPORT_ATTEMPTS: u32 = 3;
/// The longest `Retry-After` honoured; a longer one ends the read (the next run retries).
const LONGEST_WAIT: Duration = Duration::from_secs(300);

/// A signed-in connection to Graph, shared by the threads that read.
pub struct Graph {
    agent: ureq::Agent,
    tokens: Tokens,
    /// `https://host[:port]`, for the next-link check and the request URLs.
    pub base: String,
    authority: String,
    timeout: Duration,
    max_page: u64,
    deadline: Instant,
    read_timeout: Duration,
    /// Set when one reader failed: the others stop at their next request.
    pub stop: AtomicBool,
}

/// An answer: its status, `Retry-After` and text.
type Answer = (u16, Option<Duration>, String);

/// One page of a collection.
#[derive(Deserialize)]
pub struct Page<T> {
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

#[derive(Deserialize, Default)]
struct GraphError {
    error: GraphErrorBody,
}

#[derive(Deserialize, Default)]
struct GraphErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl Graph {
    /// Loads the credential and signs in (the first token).
    pub fn connect(config: &GraphConfig) -> anyhow::Result<Graph> {
        let credential = Credential::load(config)?;
        let tls = match &config.ca_file {
            None => ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| anyhow!("cannot read source.ca_file {}: {e}", path.display()))?;
                let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    bail!("source.ca_file {} holds no PEM certificate", path.display());
                }
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build()
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .https_only(true)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.timeout))
            .user_agent(concat!("dirsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let authority = authority(&config.graph_url)
            .ok_or_else(|| anyhow!("source.graph_url {} has no host", config.graph_url))?;
        let graph = Graph {
            agent,
            tokens: Tokens::new(config, credential),
            base: config.graph_url.clone(),
            authority,
            timeout: config.timeout,
            max_page: config.max_page,
            deadline: Instant::now() + config.read_timeout,
            read_timeout: config.read_timeout,
            stop: AtomicBool::new(false),
        };
        graph.tokens.get(&graph.agent)?;
        Ok(graph)
    }

    pub fn credential(&self) -> &Credential {
        self.tokens.credential()
    }

    /// The current token (for `check`: its lifetime).
    pub fn token(&self) -> anyhow::Result<Token> {
        self.tokens.get(&self.agent)
    }

    /// Whether `link` may receive the token: an https URL on the configured Graph host.
    pub fn own(&self, link: &str) -> bool {
        let Ok(uri) = link.parse::<Uri>() else {
            return false;
        };
        uri.scheme_str() == Some("https")
            && authority(link).is_some_and(|a| a == self.authority)
            && uri.path().starts_with("/v1.0/")
    }

    /// GETs `url` and decodes the JSON answer. `what` names the collection for messages,
    /// `permission` the application permission a 403 lacks.
    pub fn get<T: DeserializeOwned>(
        &self,
        url: &str,
        what: &str,
        permission: &str,
    ) -> anyhow::Result<T> {
        let body = self.get_text(url, what, permission, None)?;
        serde_json::from_str(&body).map_err(|e| {
            anyhow!(
                "Graph's answer for {what} is not the JSON Graph documents ({e}); nothing is \
                 shipped from a page that cannot be read whole"
            )
        })
    }

    /// GETs `url`, with a further header, and returns the answer's text.
    pub fn get_text(
        &self,
        url: &str,
        what: &str,
        permission: &str,
        header: Option<(&str, &str)>,
    ) -> anyhow::Result<String> {
        if !self.own(url) {
            bail!(
                "Graph sent a link to {} for {what}, outside {}; refused (the token is only \
                 sent to the configured Graph host)",
                redact(url),
                self.base
            );
        }
        let mut token = self.tokens.get(&self.agent)?;
        let (mut throttled, mut broken, mut renewed) = (0, 0, false);
        loop {
            if self.stop.load(Ordering::Relaxed) {
                bail!("stopped: another collection failed");
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "the read took longer than source.read_timeout_seconds ({}s)",
                    self.read_timeout.as_secs()
                );
            }
            let (status, retry_after, body) = match self.attempt(url, &token, header, left, what)? {
                Ok(answer) => answer,
                Err(e) if broken + 1 < TRANSPORT_ATTEMPTS => {
                    broken += 1;
                    let wait = crate::net::backoff(broken);
                    tracing::warn!(
                        "Graph request for {what} failed ({e}); retrying in {}",
                        crate::net::describe_wait(wait)
                    );
                    std::thread::sleep(wait);
                    continue;
                }
                Err(e) => bail!("Graph request for {what} failed: {e}"),
            };
            match status {
                200 => return Ok(body),
                401 if !renewed => {
                    renewed = true;
                    tracing::info!("Graph refused the token (401) for {what}; signing in again");
                    token = self.tokens.renew(&self.agent, &token)?;
                }
                429 | 503 | 504 if throttled + 1 < THROTTLED_ATTEMPTS => {
                    throttled += 1;
                    let wait = retry_after.unwrap_or_else(|| crate::net::backoff(throttled));
                    if wait > LONGEST_WAIT || wait >= left {
                        bail!(
                            "Graph asked to wait {} before reading {what} again (HTTP {status}), \
                             longer than this run may; the next run retries",
                            crate::net::describe_wait(wait)
                        );
                    }
                    tracing::warn!(
                        "Graph throttled the read of {what} (HTTP {status}); waiting {} as it asked",
                        crate::net::describe_wait(wait)
                    );
                    std::thread::sleep(wait);
                }
                _ => bail!("{}", describe_status(status, &body, what, permission)),
            }
        }
    }
}

impl Graph {
    /// One request: the answer's status, `Retry-After` and text, or (inner `Err`) a request
    /// that got no answer, which may be retried. An answer that breaks off is not retried.
    fn attempt(
        &self,
        url: &str,
        token: &Token,
        header: Option<(&str, &str)>,
        left: Duration,
        what: &str,
    ) -> anyhow::Result<Result<Answer, ureq::Error>> {
        let mut request = self
            .agent
            .get(url)
            .header("Authorization", &format!("Bearer {}", token.value.expose()))
            .config()
            .timeout_global(Some(self.timeout.min(left)))
            .build();
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let mut response = match request.call() {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .body_mut()
            .with_config()
            .limit(self.max_page)
            .read_to_string()
            .map_err(|e| {
                anyhow!(
                    "Graph's answer for {what} broke off or is too large ({e}; \
                     source.max_page_mib sets the limit)"
                )
            })?;
        Ok(Ok((status, retry_after, body)))
    }
}

/// A Graph error in words that name the fix, with Graph's own code and message.
fn describe_status(status: u16, body: &str, what: &str, permission: &str) -> String {
    let e: GraphError = serde_json::from_str(body).unwrap_or_default();
    let fix = match status {
        401 => "Graph refused the token twice: check that the app registration is in this \
                tenant and source.cloud is right"
            .to_owned(),
        403 => format!(
            "the application may not read {what}: grant admin consent for User.Read.All, \
             Group.Read.All, OrgContact.Read.All (application permissions; this one needs \
             {permission}) under API permissions"
        ),
        429 | 503 | 504 => format!(
            "Graph stayed throttled or busy for {what} (HTTP {status}); the next run retries"
        ),
        300..=399 => format!("Graph answered {what} with a redirect (HTTP {status}); not followed"),
        _ => format!("Graph answered HTTP {status} for {what}"),
    };
    if e.error.code.is_empty() {
        fix
    } else {
        format!("{fix} [{}: {}]", e.error.code, e.error.message)
    }
}

/// `host[:port]` of an https URL, lower case, without the default port.
fn authority(url: &str) -> Option<String> {
    let uri = url.parse::<Uri>().ok()?;
    let host = uri.host()?.to_ascii_lowercase();
    Some(match uri.port_u16() {
        Some(443) | None => host,
        Some(p) => format!("{host}:{p}"),
    })
}

/// A URL for a message: scheme, host and path, without the query (a skip token).
fn redact(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_ignores_case_and_the_default_port() {
        assert_eq!(
            authority("https://Graph.Microsoft.com:443/v1.0/users").as_deref(),
            Some("graph.microsoft.com")
        );
        assert_eq!(
            authority("https://127.0.0.1:8443/v1.0/users").as_deref(),
            Some("127.0.0.1:8443")
        );
        assert_eq!(
            redact("https://h/v1.0/users?$skiptoken=abc"),
            "https://h/v1.0/users"
        );
    }
}
