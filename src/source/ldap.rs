//! The LDAP source: Entra Domain Services, Active Directory or any LDAP server, over LDAPS
//! (or StartTLS), read with paged searches — and fail-closed.
//!
//! Every result code is checked: a size, time or admin limit, a busy server or a dropped
//! connection at any page ends the read with an error, because a partial directory must never
//! look like a complete one. A rejected bind is never retried (Entra DS locks the account after
//! five failures); only connection failures before the bind are retried. Attributes returned
//! in ranges (`member;range=0-1499`) are read to the end. This module does not interpret the
//! entries (that is `model`).

use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, StdStream};
use rustls::CertificateError;

use super::tls::{self, CertInfo, Presented};
use super::{Entry, SourceStats};
use crate::config::LdapConfig;
use crate::secret::Secret;

/// Connection attempts before the bind (the bind itself is never retried).
const CONNECT_ATTEMPTS: u32 = 3;
/// Certificates expiring sooner than this are warned about on every run.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Reads every entry of every configured base into `sink`.
pub fn read(
    config: &LdapConfig,
    attributes: &[String],
    sink: &mut dyn FnMut(Entry),
) -> anyhow::Result<SourceStats> {
    let password = config
        .password
        .read()
        .map_err(|e| anyhow!("cannot read the bind password: {e}"))?;
    runtime()?.block_on(async {
        let mut session = Session::open(config, &password).await?;
        let result = session.read_all(config, attributes, sink).await;
        session.close().await;
        result
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

struct Session {
    ldap: Ldap,
    cert: Option<CertInfo>,
    timeout: Duration,
}

impl Session {
    async fn open(config: &LdapConfig, password: &Secret) -> anyhow::Result<Session> {
        let encrypted = config.url.starts_with("ldaps://") || config.starttls;
        if !encrypted {
            tracing::warn!(
                "source.allow_plaintext: the bind password and the directory cross the network \
                 unencrypted; use ldaps:// outside a lab"
            );
        }
        let (tls_config, presented) = tls::client_config(
            config.ca_file.as_deref(),
            config.tls_fingerprint_sha256.as_deref(),
        )?;
        let mut attempt = 0;
        let (conn, ldap) = loop {
            attempt += 1;
            let connected = match tcp_connect(&config.url, config.connect_timeout).await {
                Ok(stream) => {
                    let settings = LdapConnSettings::new()
                        .set_config(tls_config.clone())
                        .set_conn_timeout(config.connect_timeout)
                        .set_starttls(config.starttls)
                        .set_std_stream(StdStream::Tcp(stream));
                    LdapConnAsync::with_settings(settings, &config.url).await
                }
                Err(e) => Err(LdapError::from(e)),
            };
            match connected {
                Ok(pair) => break pair,
                Err(e) => {
                    let failure = describe_connect_error(config, &e, &presented);
                    if failure.retry && attempt < CONNECT_ATTEMPTS {
                        let wait = Duration::from_secs(2u64.pow(attempt));
                        tracing::warn!(
                            "{} (attempt {attempt} of {CONNECT_ATTEMPTS}; retrying in {}s)",
                            failure.message,
                            wait.as_secs()
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    bail!(failure.message);
                }
            }
        };
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!("LDAP connection ended: {e}");
            }
        });
        let cert = presented
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
            .and_then(|der| CertInfo::from_der(&der).ok());
        if let Some(c) = &cert {
            let days = c.expires_in / 86_400;
            if days < EXPIRY_WARNING_DAYS {
                tracing::warn!(
                    "the LDAPS certificate of {} expires in {days} days ({}): renew it and update \
                     source.ca_file / tls_fingerprint_sha256 in time",
                    config.url,
                    c.not_after
                );
            }
        }
        let mut session = Session {
            ldap,
            cert,
            timeout: config.timeout,
        };
        session.bind(config, password).await?;
        Ok(session)
    }

    /// One simple bind. Never retried: Entra DS locks the account after 5 failures in 2 minutes.
    async fn bind(&mut self, config: &LdapConfig, password: &Secret) -> anyhow::Result<()> {
        let result = self
            .ldap
            .with_timeout(self.timeout)
            .simple_bind(&config.bind_dn, password.expose())
            .await
            .map_err(|e| {
                anyhow!(
                    "bind as {} failed: {}",
                    config.bind_dn,
                    operation_error(&e, self.timeout)
                )
            })?;
        match result.rc {
            0 => Ok(()),
            49 => bail!(
                "the server rejected the bind as {} (invalidCredentials{}). Not retried: Entra \
                 Domain Services locks the account after 5 failures in 2 minutes. Usual causes: \
                 {} Fix the password in {} and run `dirsync check`",
                config.bind_dn,
                if result.text.is_empty() {
                    String::new()
                } else {
                    format!(": {}", result.text.trim())
                },
                bind_failure_causes(&result.text),
                config.password.describe()
            ),
            8 | 13 => bail!(
                "the server refuses a simple bind as {} on this connection ({}: {}): use ldaps:// \
                 or starttls = true",
                config.bind_dn,
                result.rc,
                result.text.trim()
            ),
            rc => bail!(
                "bind as {} failed: result code {rc} {}",
                config.bind_dn,
                result.text.trim()
            ),
        }
    }

    async fn read_all(
        &mut self,
        config: &LdapConfig,
        attributes: &[String],
        sink: &mut dyn FnMut(Entry),
    ) -> anyhow::Result<SourceStats> {
        let mut stats = SourceStats {
            origin: config.url.clone(),
            entries: 0,
            ..SourceStats::default()
        };
        if let Some(c) = &self.cert {
            stats.server_certificate = Some(c.describe());
        }
        let progress = std::io::stderr().is_terminal();
        for base in &config.bases {
            let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
                Box::new(EntriesOnly::new()),
                Box::new(PagedResults::new(config.page_size)),
            ];
            let mut ranges = self.ldap.clone();
            let mut stream = self
                .ldap
                .with_timeout(self.timeout)
                .streaming_search_with(
                    adapters,
                    &base.base_dn,
                    Scope::Subtree,
                    &base.filter,
                    attributes.to_vec(),
                )
                .await
                .map_err(|e| search_failed(base, operation_error(&e, self.timeout)))?;
            let mut in_base = 0u64;
            loop {
                let next = stream.next().await.map_err(|e| {
                    search_failed(
                        base,
                        format!(
                            "{} after {in_base} entries",
                            operation_error(&e, self.timeout)
                        ),
                    )
                })?;
                let Some(raw) = next else { break };
                let (mut entry, pending) = to_entry(SearchEntry::construct(raw));
                for (name, start) in pending {
                    read_range(&mut ranges, self.timeout, &mut entry, &name, start)
                        .await
                        .with_context(|| format!("reading all values of {name} of {}", entry.dn))?;
                }
                in_base += 1;
                stats.entries += 1;
                if progress && stats.entries.is_multiple_of(1000) {
                    eprint!("\rreading {}: {} entries", config.url, stats.entries);
                }
                sink(entry);
            }
            let result = stream.finish().await;
            if progress && stats.entries >= 1000 {
                eprintln!();
            }
            if result.rc != 0 {
                return Err(search_failed(
                    base,
                    format!(
                        "{} after {in_base} entries{}",
                        result_code_name(result.rc),
                        if result.text.trim().is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", result.text.trim())
                        }
                    ),
                ));
            }
            stats.referrals_skipped += result.refs.len() as u64;
            stats.per_base.push((base.base_dn.clone(), in_base));
            tracing::info!("{}: {in_base} entries from {}", config.url, base.base_dn);
        }
        Ok(stats)
    }

    async fn close(&mut self) {
        let _ = self.ldap.unbind().await;
    }
}

/// Host and port of an `ldap://` / `ldaps://` URL (default ports 389 / 636).
fn host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let default = if scheme.eq_ignore_ascii_case("ldaps") {
        636
    } else {
        389
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default,
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// Connects the TCP stream ourselves, to switch off Nagle's algorithm: with it, each page
/// request of a paged search waits for the delayed ACK (about 40 ms a page).
async fn tcp_connect(url: &str, timeout: Duration) -> std::io::Result<std::net::TcpStream> {
    let (host, port) = host_port(url).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("cannot read host and port from {url}"),
        )
    })?;
    let stream = tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no connection within {}s (source.connect_timeout_seconds)",
                timeout.as_secs()
            ),
        )
    })??;
    stream.set_nodelay(true)?;
    stream.into_std()
}

fn search_failed(base: &crate::config::SearchBase, what: String) -> anyhow::Error {
    anyhow!(
        "the search of {} with {} failed: {what}; the directory was not read completely, so \
         nothing is shipped",
        base.base_dn,
        base.filter
    )
}

/// Converts an ldap3 entry, whichever map its values landed in. Returns the attributes that
/// came back as a range and where the next range starts.
fn to_entry(se: SearchEntry) -> (Entry, Vec<(String, u64)>) {
    let mut entry = Entry::new(se.dn.clone());
    let mut pending = Vec::new();
    for (key, vs) in raw_values(se) {
        let name = match parse_range(&key) {
            Some((name, _, end)) => {
                if let Some(end) = end {
                    pending.push((name.to_owned(), end + 1));
                }
                name.to_owned()
            }
            None => key,
        };
        for v in vs {
            entry.push(&name, v);
        }
    }
    (entry, pending)
}

/// `member;range=0-1499` → (`member`, 0, Some(1499)); `member;range=1500-*` → (…, None).
pub fn parse_range(key: &str) -> Option<(&str, u64, Option<u64>)> {
    let (name, options) = key.split_once(';')?;
    let range = options.split(';').find_map(|o| {
        o.get(..6)
            .filter(|p| p.eq_ignore_ascii_case("range="))
            .map(|_| &o[6..])
    })?;
    let (start, end) = range.split_once('-')?;
    let start = start.parse().ok()?;
    let end = if end == "*" {
        None
    } else {
        Some(end.parse().ok()?)
    };
    Some((name, start, end))
}

/// Reads the rest of a ranged attribute with base-scope searches until the range ends in `*`.
async fn read_range(
    ldap: &mut Ldap,
    timeout: Duration,
    entry: &mut Entry,
    name: &str,
    mut start: u64,
) -> anyhow::Result<()> {
    loop {
        let attr = format!("{name};range={start}-*");
        let (entries, _) = ldap
            .with_timeout(timeout)
            .search(
                &entry.dn,
                Scope::Base,
                "(objectClass=*)",
                vec![attr.as_str()],
            )
            .await
            .and_then(ldap3::SearchResult::success)
            .map_err(|e| anyhow!(operation_error(&e, timeout)))?;
        let Some(raw) = entries.into_iter().next() else {
            bail!("the entry disappeared during the read");
        };
        let more = raw_values(SearchEntry::construct(raw));
        let mut next = None;
        let mut found = false;
        for (key, vs) in more {
            if let Some((n, _, end)) = parse_range(&key) {
                if n.eq_ignore_ascii_case(name) {
                    found = true;
                    next = end.map(|e| e + 1);
                    for v in vs {
                        entry.push(name, v);
                    }
                }
            }
        }
        match (found, next) {
            (false, _) => bail!("the server returned no {attr}"),
            (true, None) => return Ok(()),
            (true, Some(n)) if n > start => start = n,
            (true, Some(_)) => bail!("the server returned a range that does not advance"),
        }
    }
}

/// Every attribute of an ldap3 entry as bytes, whichever map ldap3 put it in (binary values
/// that happen to be valid UTF-8 land in `attrs`).
fn raw_values(se: SearchEntry) -> impl Iterator<Item = (String, Vec<Vec<u8>>)> {
    se.attrs
        .into_iter()
        .map(|(k, vs)| (k, vs.into_iter().map(String::into_bytes).collect()))
        .chain(se.bin_attrs)
}

struct ConnectFailure {
    message: String,
    retry: bool,
}

fn describe_connect_error(
    config: &LdapConfig,
    e: &LdapError,
    presented: &Presented,
) -> ConnectFailure {
    let text = e.to_string();
    let cert = presented.lock().ok().and_then(|s| s.clone());
    if let Some(der) = cert {
        // The handshake got as far as the certificate: a trust problem, not worth retrying.
        let info = CertInfo::from_der(&der)
            .map(|c| c.describe())
            .unwrap_or_else(|e| e.to_string());
        let fingerprint = tls::colon_hex(&tls::sha256(&der));
        let (reason, fix) = match certificate_error(e) {
            Some(CertificateError::UnknownIssuer) => (
                "the certificate's issuer is not trusted".to_string(),
                format!(
                    "To trust it: add the issuing CA (or the certificate itself, if self-signed) \
                     as PEM to source.ca_file or to the machine's trusted root store; or pin it \
                     with tls_fingerprint_sha256 = \"{fingerprint}\" (only after checking it is \
                     your server's certificate)."
                ),
            ),
            Some(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }) => (
                "the certificate is not valid for the host name in source.url".to_string(),
                "Use one of the certificate's names in source.url (Entra DS: ldaps.<managed domain>), \
                 and make it resolve to the server (DNS or the hosts file)."
                    .to_string(),
            ),
            Some(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => (
                "the certificate has expired".to_string(),
                "Renew the secure LDAP certificate on the server, then update source.ca_file or \
                 tls_fingerprint_sha256."
                    .to_string(),
            ),
            Some(CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }) => (
                "the certificate is not valid yet".to_string(),
                "Check the clocks of this machine and of the server.".to_string(),
            ),
            Some(CertificateError::Other(other)) if other.to_string().contains("tls_fingerprint_sha256") => (
                "the certificate does not match source.tls_fingerprint_sha256".to_string(),
                format!(
                    "If the server's certificate was renewed on purpose, pin the new one: \
                     tls_fingerprint_sha256 = \"{fingerprint}\" (only after checking it); \
                     otherwise something else answers at this address."
                ),
            ),
            _ => (text.clone(), String::new()),
        };
        return ConnectFailure {
            message: format!(
                "TLS with {} failed before the bind: {reason}. The server presented: {info}. {fix}",
                config.url
            )
            .trim_end()
            .to_string(),
            retry: false,
        };
    }
    let retry = matches!(e, LdapError::Timeout { .. })
        || matches!(e, LdapError::Io { source } if matches!(source.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::TimedOut | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable));
    let hint = if rustls_error(e).is_some() {
        " (the TLS handshake failed before the certificate: the server may offer only old \
         protocols or ciphers; dirsync needs TLS 1.2 or newer with modern ciphers)"
    } else {
        " (check the host name, the port, and that the firewall / NSG allows TCP 636 from this machine)"
    };
    ConnectFailure {
        message: format!("cannot connect to {}: {text}{hint}", config.url),
        retry,
    }
}

/// The rustls error inside an ldap3 I/O error, if any.
fn rustls_error(e: &LdapError) -> Option<&rustls::Error> {
    match e {
        LdapError::Io { source } => source.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

fn certificate_error(e: &LdapError) -> Option<&CertificateError> {
    match rustls_error(e)? {
        rustls::Error::InvalidCertificate(c) => Some(c),
        _ => None,
    }
}

fn operation_error(e: &LdapError, timeout: Duration) -> String {
    match e {
        LdapError::Timeout { .. } => format!(
            "the server did not answer within {}s (source.timeout_seconds)",
            timeout.as_secs()
        ),
        LdapError::LdapResult { result } => {
            format!("{} {}", result_code_name(result.rc), result.text.trim())
        }
        other => format!("{other} (the connection was lost)"),
    }
}

/// Names of the result codes an admin may meet, with what they mean here.
pub fn result_code_name(rc: u32) -> String {
    let name = match rc {
        3 => "timeLimitExceeded (the server's time limit per query)",
        4 => "sizeLimitExceeded (the server's size limit: was the search paged?)",
        11 => "adminLimitExceeded (a server limit, e.g. page size above MaxPageSize)",
        32 => "noSuchObject (check source.base_dn)",
        50 => "insufficientAccessRights (the bind account may not read this)",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => "",
    };
    if name.is_empty() {
        format!("result code {rc}")
    } else {
        format!("result code {rc} {name}")
    }
}

/// AD's bind diagnostics carry `data 52e` and the like; say what each probably means.
fn bind_failure_causes(text: &str) -> String {
    let code = text
        .split("data ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_hexdigit()).next())
        .unwrap_or("");
    let specific = match code {
        "52e" => "the password is wrong;",
        "525" => "the account does not exist (check bind_dn);",
        "530" | "531" => "the account may not log on at this time or from this machine;",
        "532" => "the password has expired (Entra DS: after 90 days) — change it, then update the secret;",
        "533" => "the account is disabled;",
        "701" => "the account has expired;",
        "773" => "the password must be changed before first use;",
        "775" => "the account is locked out (Entra DS: 30 minutes after 5 failures) — wait, then fix the password;",
        _ => "",
    };
    format!(
        "{specific} a wrong password; for a cloud-only account in Entra Domain Services, no \
         password hash in the managed domain yet (change the password once, then wait for the \
         sync); the password expired (90 days); the account is locked (30 minutes after 5 \
         failures)."
    )
    .trim_start()
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_from_urls() {
        assert_eq!(
            host_port("ldaps://ldaps.example.com"),
            Some(("ldaps.example.com".into(), 636))
        );
        assert_eq!(host_port("ldap://dc1:3268/"), Some(("dc1".into(), 3268)));
        assert_eq!(host_port("ldaps://[::1]:1636"), Some(("::1".into(), 1636)));
        assert_eq!(host_port("ldaps://"), None);
    }

    #[test]
    fn range_keys() {
        assert_eq!(
            parse_range("member;range=0-1499"),
            Some(("member", 0, Some(1499)))
        );
        assert_eq!(
            parse_range("member;Range=1500-*"),
            Some(("member", 1500, None))
        );
        assert_eq!(parse_range("member"), None);
        assert_eq!(parse_range("objectGUID;binary"), None);
        assert_eq!(parse_range("member;range=x-1"), None);
    }

    #[test]
    fn entry_conversion_reads_both_maps_and_notes_ranges() {
        let mut se = SearchEntry {
            dn: "CN=G".into(),
            attrs: Default::default(),
            bin_attrs: Default::default(),
        };
        se.attrs
            .insert("proxyAddresses".into(), vec!["SMTP:g@example.com".into()]);
        se.attrs.insert(
            "member;range=0-1".into(),
            vec!["CN=a".into(), "CN=b".into()],
        );
        se.bin_attrs
            .insert("objectGUID".into(), vec![vec![0xff; 16]]);
        let (entry, pending) = to_entry(se);
        assert_eq!(
            entry.first_text("proxyaddresses"),
            Some("SMTP:g@example.com")
        );
        assert_eq!(entry.values("member").len(), 2);
        assert_eq!(entry.values("objectguid"), [vec![0xff; 16]]);
        assert_eq!(pending, [("member".to_string(), 2)]);
    }

    #[test]
    fn bind_causes_name_the_ad_data_code() {
        let text = "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563";
        assert!(bind_failure_causes(text).starts_with("the account is locked out"));
        assert!(bind_failure_causes("").starts_with("a wrong password;"));
    }
}
