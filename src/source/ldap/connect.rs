//! Reaching the server: TCP (without Nagle's delay), StartTLS or the LDAPS handshake, and what
//! to tell the admin when that fails. Trust itself is `source::tls`; the bind and the search
//! are the session's (`mod.rs`).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use ldap3_proto::proto::{LdapExtendedRequest, LdapOp, LdapResultCode};
use rustls::CertificateError;

use super::wire::{is_timeout, Transport, Wire, WireError};
use crate::source::config::LdapConfig;
use crate::source::tls::{self, CertInfo, Presented};

/// StartTLS (RFC 4511 §4.14).
const STARTTLS_OID: &str = "1.3.6.1.4.1.1466.20037";

/// The socket, plain (only with `allow_plaintext`, or before StartTLS) or inside TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }

    /// Ends the TLS session politely; errors do not matter any more.
    pub fn close(&mut self) {
        if let Stream::Tls(tls) = self {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Transport for Stream {
    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        let socket = self.socket();
        socket.set_read_timeout(Some(timeout))?;
        socket.set_write_timeout(Some(timeout))
    }
}

/// Why no connection was made.
#[derive(Debug)]
pub enum ConnectError {
    /// The URL has no usable host and port.
    Url,
    /// Name resolution or the TCP connect failed.
    Tcp(io::Error),
    /// TCP connected, but the TLS handshake got no answer in time.
    TlsStalled,
    /// The TLS handshake failed (trust, protocol versions, ciphers).
    Tls(io::Error),
    /// StartTLS was refused, or the server misbehaved around it.
    StartTls(String),
}

pub fn is_ldaps(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("ldaps://"))
}

/// TCP, then StartTLS or the LDAPS handshake, all within `connect_timeout` per step.
pub fn connect(
    config: &LdapConfig,
    tls_config: Option<&Arc<rustls::ClientConfig>>,
    limits: super::wire::Limits,
) -> Result<Wire<Stream>, ConnectError> {
    let (host, port) = host_port(&config.url).ok_or(ConnectError::Url)?;
    let socket = crate::net::connect(
        &host,
        port,
        config.connect_timeout,
        "source.connect_timeout_seconds",
    )
    .map_err(ConnectError::Tcp)?;
    // Without Nagle's algorithm: with it, each page request waits for the peer's delayed
    // ACK, about 40 ms a page.
    socket.set_nodelay(true).map_err(ConnectError::Tcp)?;
    let mut wire = Wire::new(Stream::Plain(socket), limits);
    let Some(tls_config) = tls_config else {
        return Ok(wire);
    };
    if !is_ldaps(&config.url) {
        start_tls(&mut wire, config)?;
    }
    wire.upgrade(|stream| {
        let Stream::Plain(socket) = stream else {
            return Err(ConnectError::StartTls("TLS was already started".into()));
        };
        handshake(socket, &host, tls_config, config.connect_timeout)
    })
}

/// RFC 4511 §4.14. Bytes that arrive behind the StartTLS response, before the handshake,
/// were not protected by TLS: they are refused (the class of CVE-2011-0411).
fn start_tls(wire: &mut Wire<Stream>, config: &LdapConfig) -> Result<(), ConnectError> {
    let refused = |what: String| {
        ConnectError::StartTls(format!(
            "the server refused StartTLS: {what}; check that it offers StartTLS on {}, or use \
             ldaps://",
            config.url
        ))
    };
    let request = LdapOp::ExtendedRequest(LdapExtendedRequest {
        name: STARTTLS_OID.into(),
        value: None,
    });
    let id = wire
        .send(request, vec![])
        .map_err(|e| refused(e.to_string()))?;
    let response = wire.receive().map_err(|e| match e {
        WireError::MessageTimeout(_) | WireError::ReadDeadline(_) => {
            refused("no answer to the StartTLS request".into())
        }
        e => refused(e.to_string()),
    })?;
    match response.op {
        LdapOp::ExtendedResponse(r) if response.msgid == id => {
            if r.res.code != LdapResultCode::Success {
                return Err(refused(format!("{:?}: {}", r.res.code, r.res.message)));
            }
        }
        _ => return Err(refused("the server answered something else".into())),
    }
    if wire.pending() > 0 {
        return Err(ConnectError::StartTls(format!(
            "{} sent {} bytes behind its StartTLS response, before TLS was set up: they could \
             have been injected by anyone on the network path (CVE-2011-0411), so the \
             connection is refused. Use ldaps://, or have the server fixed",
            config.url,
            wire.pending()
        )));
    }
    Ok(())
}

fn handshake(
    mut socket: TcpStream,
    host: &str,
    tls_config: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<Stream, ConnectError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| ConnectError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let mut conn = rustls::ClientConnection::new(tls_config.clone(), name)
        .map_err(|e| ConnectError::Tls(io::Error::other(e)))?;
    let deadline = std::time::Instant::now() + timeout;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(ConnectError::TlsStalled);
        }
        let bounded = socket
            .set_read_timeout(Some(left))
            .and_then(|()| socket.set_write_timeout(Some(left)));
        bounded.map_err(ConnectError::Tcp)?;
        match conn.complete_io(&mut socket) {
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Err(ConnectError::TlsStalled),
            Err(e) => return Err(ConnectError::Tls(e)),
        }
    }
    Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(
        conn, socket,
    ))))
}

pub fn host_port(url: &str) -> Option<(String, u16)> {
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

pub struct ConnectFailure {
    pub message: String,
    pub retry: bool,
}

/// What failed, why it probably did, and what to do; whether another attempt may help.
pub fn describe_connect_error(
    config: &LdapConfig,
    e: &ConnectError,
    presented: &Presented,
) -> ConnectFailure {
    let port = host_port(&config.url).map_or(636, |(_, p)| p);
    let (message, retry) = match e {
        ConnectError::Url => (
            format!("cannot read host and port from {}", config.url),
            false,
        ),
        ConnectError::StartTls(text) => (text.clone(), false),
        ConnectError::TlsStalled => (
            format!(
                "TCP to {} connected, but the TLS handshake got no answer within {}s \
                 (source.connect_timeout_seconds): is this port serving LDAPS? Plain LDAP \
                 (usually port 389) needs starttls = true; or a firewall inspecting TLS holds \
                 the connection",
                config.url,
                config.connect_timeout.as_secs()
            ),
            true,
        ),
        ConnectError::Tls(e) => match presented.lock().ok().and_then(|s| s.clone()) {
            // The handshake got as far as the certificate: a trust problem, not worth retrying.
            Some(der) => (trust_failure(config, e, &der), false),
            None => (
                format!(
                    "cannot connect to {}: {e} (the TLS handshake failed before the certificate: \
                     the server may offer only old protocols or ciphers; dirsync needs TLS 1.2 \
                     or newer with modern ciphers)",
                    config.url
                ),
                is_transient(e),
            ),
        },
        ConnectError::Tcp(e) => (
            format!(
                "cannot connect to {}: {e} (check the host name, the port, and that the \
                 firewall / NSG allows TCP {port} from this machine)",
                config.url
            ),
            is_transient(e),
        ),
    };
    ConnectFailure { message, retry }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::TimedOut
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

/// The certificate the server presented, why it is not trusted, and how to trust it.
fn trust_failure(config: &LdapConfig, e: &io::Error, der: &[u8]) -> String {
    let info = CertInfo::from_der(der)
        .map(|c| c.describe())
        .unwrap_or_else(|e| e.to_string());
    let fingerprint = tls::colon_hex(&tls::sha256(der));
    let (reason, fix) = match certificate_error(e) {
        Some(CertificateError::UnknownIssuer) => (
            "the certificate's issuer is not trusted".to_string(),
            format!(
                "To trust it: add the issuing CA (or the certificate itself, if self-signed) as \
                 PEM to source.ca_file or to the machine's trusted root store; or pin it with \
                 tls_fingerprint_sha256 = \"{fingerprint}\" (only after checking it is your \
                 server's certificate)."
            ),
        ),
        Some(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => (
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
        Some(CertificateError::Other(other))
            if other.to_string().contains("tls_fingerprint_sha256") =>
        {
            (
                "the certificate does not match source.tls_fingerprint_sha256".to_string(),
                format!(
                    "If the server's certificate was renewed on purpose, pin the new one: \
                     tls_fingerprint_sha256 = \"{fingerprint}\" (only after checking it); \
                     otherwise something else answers at this address."
                ),
            )
        }
        _ => (e.to_string(), String::new()),
    };
    format!(
        "TLS with {} failed before the bind: {reason}. The server presented: {info}. {fix}",
        config.url
    )
    .trim_end()
    .to_string()
}

/// The rustls error inside an I/O error, if any.
fn certificate_error(e: &io::Error) -> Option<&CertificateError> {
    match e.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(c) => Some(c),
        _ => None,
    }
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
}
