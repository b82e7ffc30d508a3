//! The LDAP source: Entra Domain Services, Active Directory or any LDAP server, over LDAPS
//! (or StartTLS), read with paged searches — and fail-closed.
//!
//! Every result code is checked: a size, time or admin limit, a busy server or a dropped
//! connection at any page ends the read with an error, because a partial directory must never
//! look like a complete one. A rejected bind is never retried (Entra DS locks the account after
//! five failures); only connection failures before the bind are retried. Attributes returned
//! in ranges (`member;range=0-1499`) are read to the end. This module does not interpret the
//! entries (that is `model`).
//!
//! The protocol is spoken here directly (RFC 4511: bind, search with the paged-results
//! control, unbind, StartTLS) over a blocking socket: a search result entry is walked in the
//! receive buffer and only its values are copied, which is most of what makes a 100k-recipient
//! read as fast as `ldapsearch`. Filters are encoded by ldap3's RFC 4515 parser.

use std::io::{IsTerminal as _, Read, Write};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use rustls::CertificateError;

use super::ber::{self, BerError, Reader, ENUMERATED, INTEGER, OCTET_STRING, SEQUENCE, SET};
use super::tls::{self, CertInfo, Presented};
use super::{Entry, SourceStats};
use crate::config::{LdapConfig, SearchBase};
use crate::secret::Secret;

/// Connection attempts before the bind (the bind itself is never retried).
const CONNECT_ATTEMPTS: u32 = 3;
/// Certificates expiring sooner than this are warned about on every run.
pub const EXPIRY_WARNING_DAYS: i64 = 30;
/// The paged-results control (RFC 2696), which AD and Entra DS require above 1000 entries.
const PAGED_RESULTS_OID: &[u8] = b"1.2.840.113556.1.4.319";
/// StartTLS (RFC 4511 §4.14).
const STARTTLS_OID: &[u8] = b"1.3.6.1.4.1.1466.20037";
/// No LDAP message dirsync reads is anywhere near this; a larger length means garbage.
const MAX_MESSAGE: usize = 256 << 20;
/// Received entries of a page kept unconverted up to this many bytes (a page of 1000 users
/// is about 0.5 MB; big groups with all their members can make it much larger).
const PAGE_BUFFER: usize = 16 << 20;

// Protocol operations (RFC 4511 §4.2–4.14): application tags.
const BIND_REQUEST: u8 = 0x60;
const BIND_RESPONSE: u8 = 0x61;
const UNBIND_REQUEST: u8 = 0x42;
const SEARCH_REQUEST: u8 = 0x63;
const SEARCH_RESULT_ENTRY: u8 = 0x64;
const SEARCH_RESULT_DONE: u8 = 0x65;
const SEARCH_RESULT_REFERENCE: u8 = 0x73;
const EXTENDED_REQUEST: u8 = 0x77;
const EXTENDED_RESPONSE: u8 = 0x78;
const CONTROLS: u8 = 0xa0;
const SCOPE_BASE: i64 = 0;
const SCOPE_SUBTREE: i64 = 2;

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
    let mut session = Session::open(config, &password)?;
    let result = session.read_all(config, attributes, sink);
    session.close();
    result
}

/// The socket, plain (only with `allow_plaintext`) or inside TLS.
enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Transport {
    fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
        }
    }
}

/// One received LDAP message: where its parts lie in the receive buffer.
struct Message {
    id: i64,
    op: u8,
    contents: Range<usize>,
    controls: Option<Range<usize>>,
}

/// Why a message could not be read.
enum ReadError {
    Io(std::io::Error),
    Closed,
    Ber(BerError),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl From<BerError> for ReadError {
    fn from(e: BerError) -> Self {
        ReadError::Ber(e)
    }
}

impl ReadError {
    fn describe(&self, timeout: Duration) -> String {
        match self {
            ReadError::Io(e) if is_timeout(e) => format!(
                "the server did not answer within {}s (source.timeout_seconds)",
                timeout.as_secs()
            ),
            ReadError::Io(e) => format!("{e} (the connection was lost)"),
            ReadError::Closed => "the server closed the connection".into(),
            ReadError::Ber(e) => e.to_string(),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// The LDAPResult of a response (RFC 4511 §4.1.9).
struct LdapResult {
    rc: i64,
    text: String,
}

impl LdapResult {
    fn parse(r: &mut Reader<'_>) -> Result<LdapResult, BerError> {
        let rc = ber::integer(r.expect(ENUMERATED, "result without a result code")?)?;
        r.expect(OCTET_STRING, "result without a matched DN")?;
        let text = r.expect(OCTET_STRING, "result without a diagnostic message")?;
        Ok(LdapResult {
            rc,
            text: String::from_utf8_lossy(text).trim().to_owned(),
        })
    }

    /// "result code 4 sizeLimitExceeded (…) (the server's text)".
    fn describe(&self) -> String {
        let mut out = result_code_name(self.rc);
        if !self.text.is_empty() {
            out.push_str(&format!(" ({})", self.text));
        }
        out
    }
}

struct Session {
    io: Transport,
    /// Received bytes not yet consumed: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    last_id: i64,
    /// While set, received messages stay where they are (a page is converted after it has
    /// been received whole): the buffer grows instead of being compacted.
    pinned: bool,
    cert: Option<CertInfo>,
    timeout: Duration,
}

impl Session {
    fn open(config: &LdapConfig, password: &Secret) -> anyhow::Result<Session> {
        let encrypted = is_ldaps(&config.url) || config.starttls;
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
        let mut session = loop {
            attempt += 1;
            match Session::connect(config, &tls_config) {
                Ok(session) => break session,
                Err(e) => {
                    let failure = describe_connect_error(config, &e, &presented);
                    if failure.retry && attempt < CONNECT_ATTEMPTS {
                        let wait = Duration::from_secs(2u64.pow(attempt));
                        tracing::warn!(
                            "{} (attempt {attempt} of {CONNECT_ATTEMPTS}; retrying in {}s)",
                            failure.message,
                            wait.as_secs()
                        );
                        std::thread::sleep(wait);
                        continue;
                    }
                    bail!(failure.message);
                }
            }
        };
        session.cert = presented
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
            .and_then(|der| CertInfo::from_der(&der).ok());
        if let Some(c) = &session.cert {
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
        session.bind(config, password)?;
        Ok(session)
    }

    /// TCP (without Nagle's algorithm: with it, each page request waits for the peer's
    /// delayed ACK, about 40 ms a page), then StartTLS or the LDAPS handshake.
    fn connect(
        config: &LdapConfig,
        tls_config: &Arc<rustls::ClientConfig>,
    ) -> std::io::Result<Session> {
        let (host, port) = host_port(&config.url).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("cannot read host and port from {}", config.url),
            )
        })?;
        let socket = tcp_connect(&host, port, config.connect_timeout)?;
        socket.set_nodelay(true)?;
        socket.set_read_timeout(Some(config.connect_timeout))?;
        socket.set_write_timeout(Some(config.connect_timeout))?;
        let mut session = Session {
            io: Transport::Plain(socket),
            buf: vec![0; 1 << 18],
            start: 0,
            end: 0,
            last_id: 0,
            pinned: false,
            cert: None,
            timeout: config.timeout,
        };
        if config.starttls && !is_ldaps(&config.url) {
            session.start_tls(config)?;
        }
        if is_ldaps(&config.url) || config.starttls {
            let Transport::Plain(socket) = session.io else {
                unreachable!("TLS is started once")
            };
            session.io = handshake(socket, &host, tls_config)?;
        }
        let socket = session.io.socket();
        socket.set_read_timeout(Some(config.timeout))?;
        socket.set_write_timeout(Some(config.timeout))?;
        Ok(session)
    }

    fn start_tls(&mut self, config: &LdapConfig) -> std::io::Result<()> {
        let request = ber::constructed(EXTENDED_REQUEST, &[&ber::tlv(0x80, STARTTLS_OID)]);
        let id = self.send(&request, None)?;
        let refused = |what: String| {
            std::io::Error::other(format!(
                "the server refused StartTLS: {what}; check that it offers StartTLS on {}, or \
                 use ldaps://",
                config.url
            ))
        };
        let result = self
            .response(id, EXTENDED_RESPONSE)
            .map_err(|e| refused(e.describe(config.connect_timeout)))?;
        if result.rc != 0 {
            return Err(refused(result.describe()));
        }
        Ok(())
    }

    /// One simple bind. Never retried: Entra DS locks the account after 5 failures in 2 minutes.
    fn bind(&mut self, config: &LdapConfig, password: &Secret) -> anyhow::Result<()> {
        let mut secret = ber::tlv(0x80, password.expose().as_bytes());
        let mut request = ber::constructed(
            BIND_REQUEST,
            &[
                &ber::int(INTEGER, 3),
                &ber::tlv(OCTET_STRING, config.bind_dn.as_bytes()),
                &secret,
            ],
        );
        let sent = self.send(&request, None);
        secret.fill(0);
        request.fill(0);
        let failed = |what: String| anyhow!("bind as {} failed: {what}", config.bind_dn);
        sent.map_err(|e| failed(ReadError::Io(e).describe(self.timeout)))?;
        let result = self
            .response(self.last_id, BIND_RESPONSE)
            .map_err(|e| failed(e.describe(self.timeout)))?;
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
                    format!(": {}", result.text)
                },
                bind_failure_causes(&result.text),
                config.password.describe()
            ),
            8 | 13 => bail!(
                "the server refuses a simple bind as {} on this connection ({}: {}): use ldaps:// \
                 or starttls = true",
                config.bind_dn,
                result.rc,
                result.text
            ),
            rc => bail!(
                "bind as {} failed: result code {rc} {}",
                config.bind_dn,
                result.text
            ),
        }
    }

    fn read_all(
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
        let mut deliver = |entry: Entry, stats: &mut SourceStats| {
            stats.entries += 1;
            if progress && stats.entries.is_multiple_of(1000) {
                eprint!("\rreading {}: {} entries", config.url, stats.entries);
            }
            sink(entry);
        };
        for base in &config.bases {
            let in_base = self.search(config, base, attributes, &mut stats, &mut deliver)?;
            stats.per_base.push((base.base_dn.clone(), in_base));
            tracing::info!("{}: {in_base} entries from {}", config.url, base.base_dn);
        }
        if progress && stats.entries >= 1000 {
            eprintln!();
        }
        Ok(stats)
    }

    /// One paged subtree search of one base. An entry with a ranged attribute is completed
    /// (more base searches) after its page, then delivered.
    fn search(
        &mut self,
        config: &LdapConfig,
        base: &SearchBase,
        attributes: &[String],
        stats: &mut SourceStats,
        deliver: &mut dyn FnMut(Entry, &mut SourceStats),
    ) -> anyhow::Result<u64> {
        let filter = encode_filter(&base.filter).ok_or_else(|| {
            search_failed(
                base,
                "the filter is not a valid LDAP filter (RFC 4515)".into(),
            )
        })?;
        let timeout = self.timeout;
        let failed = |e: ReadError, in_base: u64| {
            search_failed(
                base,
                format!("{} after {in_base} entries", e.describe(timeout)),
            )
        };
        let mut in_base = 0u64;
        let mut id = self
            .request_page(base, &filter, attributes, config.page_size, &[])
            .map_err(|e| failed(ReadError::Io(e), in_base))?;
        loop {
            // The whole page first, left in the receive buffer: then the next page is asked
            // for before this one is converted, and the server works while dirsync does. A
            // page larger than PAGE_BUFFER (big groups with their members) is converted as it
            // comes instead.
            self.compact();
            self.pinned = true;
            let mut page = Vec::new();
            let mut incomplete = Vec::new();
            let (result, cookie) = loop {
                let message = self
                    .receive(id)
                    .map_err(|e| failed(e, in_base + page.len() as u64))?;
                match message.op {
                    SEARCH_RESULT_ENTRY => page.push(message.contents),
                    SEARCH_RESULT_REFERENCE => stats.referrals_skipped += 1,
                    SEARCH_RESULT_DONE => {
                        let contents = &self.buf[message.contents];
                        let controls = message.controls.map(|c| &self.buf[c]);
                        let done = LdapResult::parse(&mut Reader::new(contents))
                            .and_then(|r| Ok((r, paged_cookie(controls.unwrap_or_default())?)));
                        break done.map_err(|e| failed(e.into(), in_base + page.len() as u64))?;
                    }
                    _ => {
                        return Err(failed(
                            BerError("unexpected response to a search").into(),
                            in_base,
                        ))
                    }
                }
                if self.end > PAGE_BUFFER {
                    let converted = self.convert(&mut page, &mut incomplete, stats, deliver);
                    in_base += converted.map_err(|e| failed(ReadError::Ber(e), in_base))?;
                    self.pinned = false;
                    self.compact();
                    self.pinned = true;
                }
            };
            if result.rc != 0 {
                return Err(search_failed(
                    base,
                    format!(
                        "{} after {} entries",
                        result.describe(),
                        in_base + page.len() as u64
                    ),
                ));
            }
            // A server that ignores the control sends everything at once, without a cookie.
            let cookie = cookie.filter(|c| !c.is_empty());
            // Ranged attributes need more searches on this connection: then the next page
            // waits until they are done.
            let ranged =
                !incomplete.is_empty() || page.iter().any(|r| has_ranges(&self.buf[r.clone()]));
            let asked = match &cookie {
                Some(c) if !ranged => Some(
                    self.request_page(base, &filter, attributes, config.page_size, c)
                        .map_err(|e| failed(ReadError::Io(e), in_base))?,
                ),
                _ => None,
            };
            let converted = self.convert(&mut page, &mut incomplete, stats, deliver);
            in_base += converted.map_err(|e| failed(ReadError::Ber(e), in_base))?;
            for (mut entry, pending) in incomplete {
                for (name, start) in pending {
                    self.read_range(&mut entry, &name, start)
                        .with_context(|| format!("reading all values of {name} of {}", entry.dn))?;
                }
                deliver(entry, stats);
            }
            self.pinned = false;
            id = match (asked, cookie) {
                (Some(id), _) => id,
                (None, Some(c)) => self
                    .request_page(base, &filter, attributes, config.page_size, &c)
                    .map_err(|e| failed(ReadError::Io(e), in_base))?,
                (None, None) => return Ok(in_base),
            };
        }
    }

    /// Converts the received entries of `page` (emptied): complete ones are delivered, those
    /// with a ranged attribute kept in `incomplete` (their other values need more searches,
    /// which wait until the page is done). Returns how many entries were converted.
    fn convert(
        &self,
        page: &mut Vec<Range<usize>>,
        incomplete: &mut Vec<(Entry, Vec<(String, u64)>)>,
        stats: &mut SourceStats,
        deliver: &mut dyn FnMut(Entry, &mut SourceStats),
    ) -> Result<u64, BerError> {
        let count = page.len() as u64;
        for contents in page.drain(..) {
            let (entry, pending) = to_entry(&self.buf[contents])?;
            if pending.is_empty() {
                deliver(entry, stats);
            } else {
                incomplete.push((entry, pending));
            }
        }
        Ok(count)
    }

    /// Asks for one page of a subtree search (the paged-results control with `cookie`).
    fn request_page(
        &mut self,
        base: &SearchBase,
        filter: &[u8],
        attributes: &[String],
        page_size: i32,
        cookie: &[u8],
    ) -> std::io::Result<i64> {
        let request = search_request(&base.base_dn, SCOPE_SUBTREE, filter, attributes);
        let value = ber::constructed(
            SEQUENCE,
            &[
                &ber::int(INTEGER, page_size.into()),
                &ber::tlv(OCTET_STRING, cookie),
            ],
        );
        let control = ber::constructed(
            SEQUENCE,
            &[
                &ber::tlv(OCTET_STRING, PAGED_RESULTS_OID),
                &ber::tlv(OCTET_STRING, &value),
            ],
        );
        self.send(&request, Some(&ber::tlv(CONTROLS, &control)))
    }

    /// Reads the rest of a ranged attribute with base-scope searches until the range ends in `*`.
    fn read_range(&mut self, entry: &mut Entry, name: &str, mut start: u64) -> anyhow::Result<()> {
        let filter = encode_filter("(objectClass=*)").expect("a valid filter");
        loop {
            let attr = format!("{name};range={start}-*");
            let request = search_request(&entry.dn, SCOPE_BASE, &filter, &[attr.as_str()]);
            let id = self
                .send(&request, None)
                .map_err(|e| anyhow!(ReadError::Io(e).describe(self.timeout)))?;
            let mut next = None;
            let mut found = false;
            loop {
                let message = self
                    .receive(id)
                    .map_err(|e| anyhow!(e.describe(self.timeout)))?;
                let contents = &self.buf[message.contents.clone()];
                match message.op {
                    SEARCH_RESULT_ENTRY => {
                        let mut raw = RawEntry::new(contents)?;
                        while let Some((key, mut values)) = raw.next_attribute()? {
                            let Some((n, _, end)) = parse_range(key) else {
                                continue;
                            };
                            if !n.eq_ignore_ascii_case(name) {
                                continue;
                            }
                            found = true;
                            next = end.map(|e| e + 1);
                            while !values.is_empty() {
                                entry
                                    .push(name, values.expect(OCTET_STRING, "bad value")?.to_vec());
                            }
                        }
                    }
                    SEARCH_RESULT_REFERENCE => {}
                    SEARCH_RESULT_DONE => {
                        let result = LdapResult::parse(&mut Reader::new(contents))?;
                        if result.rc != 0 {
                            bail!(result.describe());
                        }
                        break;
                    }
                    _ => bail!(BerError("unexpected response to a search")),
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

    /// Sends one request; returns its message id.
    fn send(&mut self, op: &[u8], controls: Option<&[u8]>) -> std::io::Result<i64> {
        self.last_id += 1;
        let mut message = ber::constructed(
            SEQUENCE,
            &[
                &ber::int(INTEGER, self.last_id),
                op,
                controls.unwrap_or_default(),
            ],
        );
        let sent = self.io.write_all(&message).and_then(|()| self.io.flush());
        message.fill(0);
        sent.map(|()| self.last_id)
    }

    /// The next message for request `id`. The server's notice of disconnection (id 0) and a
    /// message for another request end the read.
    fn receive(&mut self, id: i64) -> Result<Message, ReadError> {
        let message = self.next_message()?;
        if message.id == id {
            return Ok(message);
        }
        if message.id == 0 && message.op == EXTENDED_RESPONSE {
            let contents = &self.buf[message.contents];
            let result = LdapResult::parse(&mut Reader::new(contents))?;
            return Err(ReadError::Io(std::io::Error::other(format!(
                "the server ended the connection: {}",
                result.describe()
            ))));
        }
        Err(ReadError::Ber(BerError(
            "a response to a request never sent",
        )))
    }

    /// The result of the single response `op` to request `id`.
    fn response(&mut self, id: i64, op: u8) -> Result<LdapResult, ReadError> {
        let message = self.receive(id)?;
        if message.op != op {
            return Err(ReadError::Ber(BerError("unexpected response")));
        }
        Ok(LdapResult::parse(&mut Reader::new(
            &self.buf[message.contents],
        ))?)
    }

    /// Reads until one whole message is in the buffer, and locates its parts.
    fn next_message(&mut self) -> Result<Message, ReadError> {
        loop {
            if let Some((tag, head, len)) = ber::header(&self.buf[self.start..self.end])? {
                if tag != SEQUENCE {
                    return Err(BerError("not an LDAP message").into());
                }
                if len > MAX_MESSAGE {
                    return Err(BerError("message larger than 256 MB").into());
                }
                if self.end - self.start >= head + len {
                    let at = self.start + head;
                    self.start = at + len;
                    return parse_message(&self.buf[at..at + len], at);
                }
                if head + len > self.buf.len() {
                    self.buf.resize((head + len).next_power_of_two(), 0);
                }
            }
            if !self.pinned && (self.end == self.buf.len() || self.start > self.buf.len() / 2) {
                self.compact();
            }
            if self.end == self.buf.len() {
                let size = self.buf.len() * 2;
                self.buf.resize(size, 0);
            }
            match self.io.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Moves the unconsumed bytes to the front of the buffer.
    fn compact(&mut self) {
        self.buf.copy_within(self.start..self.end, 0);
        (self.start, self.end) = (0, self.end - self.start);
    }

    /// Unbind and close; errors do not matter any more.
    fn close(&mut self) {
        let _ = self.send(&[UNBIND_REQUEST, 0], None);
        if let Transport::Tls(tls) = &mut self.io {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }
}

fn is_ldaps(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("ldaps://"))
}

/// Each address of the host in turn, within `timeout` each.
fn tcp_connect(host: &str, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let mut last = None;
    for address in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(s) => return Ok(s),
            Err(e) if is_timeout(&e) => {
                last = Some(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no connection within {}s (source.connect_timeout_seconds)",
                        timeout.as_secs()
                    ),
                ))
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no address"),
        )
    }))
}

fn handshake(
    mut socket: TcpStream,
    host: &str,
    tls_config: &Arc<rustls::ClientConfig>,
) -> std::io::Result<Transport> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut conn =
        rustls::ClientConnection::new(tls_config.clone(), name).map_err(std::io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut socket)?;
    }
    Ok(Transport::Tls(Box::new(rustls::StreamOwned::new(
        conn, socket,
    ))))
}

/// `LDAPMessage ::= SEQUENCE { messageID, protocolOp, controls [0] OPTIONAL }`; ranges are
/// offsets into the receive buffer (`at` = where `contents` starts).
fn parse_message(contents: &[u8], at: usize) -> Result<Message, ReadError> {
    let mut r = Reader::new(contents);
    let id = ber::integer(r.expect(INTEGER, "message without an id")?)?;
    let offset = |part: &[u8]| {
        let start = at + (part.as_ptr() as usize - contents.as_ptr() as usize);
        start..start + part.len()
    };
    let (op, body) = r.next_element()?;
    let controls = r.optional(CONTROLS)?.map(offset);
    Ok(Message {
        id,
        op,
        contents: offset(body),
        controls,
    })
}

/// `SearchRequest` (RFC 4511 §4.5.1): never dereference aliases, no client limits.
fn search_request(
    base: &str,
    scope: i64,
    filter: &[u8],
    attributes: &[impl AsRef<str>],
) -> Vec<u8> {
    let mut list = Vec::new();
    for a in attributes {
        list.extend_from_slice(&ber::tlv(OCTET_STRING, a.as_ref().as_bytes()));
    }
    ber::constructed(
        SEARCH_REQUEST,
        &[
            &ber::tlv(OCTET_STRING, base.as_bytes()),
            &ber::int(ENUMERATED, scope),
            &ber::int(ENUMERATED, 0),
            &ber::int(INTEGER, 0),
            &ber::int(INTEGER, 0),
            &[0x01, 0x01, 0x00],
            filter,
            &ber::tlv(SEQUENCE, &list),
        ],
    )
}

/// An RFC 4515 filter string, BER-encoded (None: not a valid filter).
pub fn encode_filter(filter: &str) -> Option<Vec<u8>> {
    use ldap3::asn1::ASNTag as _;
    let tag = ldap3::parse_filter(filter).ok()?;
    let mut out = bytes::BytesMut::new();
    ldap3::asn1::write::encode_into(&mut out, tag.into_structure()).ok()?;
    Some(out.to_vec())
}

/// The cookie of the paged-results response control; `None` when the server sent none.
fn paged_cookie(controls: &[u8]) -> Result<Option<Vec<u8>>, BerError> {
    let mut list = Reader::new(controls);
    while !list.is_empty() {
        let mut control = Reader::new(list.expect(SEQUENCE, "control is not a sequence")?);
        if control.expect(OCTET_STRING, "control without a type")? != PAGED_RESULTS_OID {
            continue;
        }
        control.optional(0x01)?;
        let value = control.expect(OCTET_STRING, "paged-results control without a value")?;
        let mut value =
            Reader::new(Reader::new(value).expect(SEQUENCE, "bad paged-results value")?);
        value.expect(INTEGER, "paged-results value without a size")?;
        return Ok(Some(
            value
                .expect(OCTET_STRING, "paged-results value without a cookie")?
                .to_vec(),
        ));
    }
    Ok(None)
}

/// A `SearchResultEntry` walked in place: its DN, then its attributes one by one.
struct RawEntry<'a> {
    dn: &'a [u8],
    attributes: Reader<'a>,
}

impl<'a> RawEntry<'a> {
    fn new(contents: &'a [u8]) -> Result<Self, BerError> {
        let mut r = Reader::new(contents);
        let dn = r.expect(OCTET_STRING, "entry without a DN")?;
        let attributes = Reader::new(r.expect(SEQUENCE, "entry without an attribute list")?);
        Ok(RawEntry { dn, attributes })
    }

    /// The next attribute's name and a reader over its values.
    fn next_attribute(&mut self) -> Result<Option<(&'a str, Reader<'a>)>, BerError> {
        if self.attributes.is_empty() {
            return Ok(None);
        }
        let mut a = Reader::new(
            self.attributes
                .expect(SEQUENCE, "attribute is not a sequence")?,
        );
        let name = std::str::from_utf8(a.expect(OCTET_STRING, "attribute without a name")?)
            .map_err(|_| BerError("attribute name is not text"))?;
        let values = Reader::new(a.expect(SET, "attribute without a value set")?);
        Ok(Some((name, values)))
    }
}

/// Whether a `SearchResultEntry` has an attribute returned as a range (names only).
fn has_ranges(contents: &[u8]) -> bool {
    let Ok(mut raw) = RawEntry::new(contents) else {
        return false;
    };
    while let Ok(Some((key, _))) = raw.next_attribute() {
        if parse_range(key).is_some() {
            return true;
        }
    }
    false
}

/// Converts a `SearchResultEntry`. Returns the attributes that came back as a range and
/// where the next range starts.
fn to_entry(contents: &[u8]) -> Result<(Entry, Vec<(String, u64)>), BerError> {
    let mut raw = RawEntry::new(contents)?;
    let dn = std::str::from_utf8(raw.dn).map_err(|_| BerError("an entry's DN is not UTF-8"))?;
    let mut entry = Entry::new(dn);
    let mut pending = Vec::new();
    while let Some((key, mut values)) = raw.next_attribute()? {
        let name = match parse_range(key) {
            Some((name, _, end)) => {
                if let Some(end) = end {
                    pending.push((name.to_owned(), end + 1));
                }
                name
            }
            None => key,
        };
        let mut list = Vec::new();
        while !values.is_empty() {
            list.push(
                values
                    .expect(OCTET_STRING, "attribute value is not a string")?
                    .to_vec(),
            );
        }
        entry.push_all(name, list);
    }
    Ok((entry, pending))
}

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

fn search_failed(base: &crate::config::SearchBase, what: String) -> anyhow::Error {
    anyhow!(
        "the search of {} with {} failed: {what}; the directory was not read completely, so \
         nothing is shipped",
        base.base_dn,
        base.filter
    )
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

struct ConnectFailure {
    message: String,
    retry: bool,
}

fn describe_connect_error(
    config: &LdapConfig,
    e: &std::io::Error,
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
    let retry = matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::HostUnreachable
            | std::io::ErrorKind::NetworkUnreachable
    );
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
/// The rustls error inside an I/O error, if any.
fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

fn certificate_error(e: &std::io::Error) -> Option<&CertificateError> {
    match rustls_error(e)? {
        rustls::Error::InvalidCertificate(c) => Some(c),
        _ => None,
    }
}

/// Names of the result codes an admin may meet, with what they mean here.
pub fn result_code_name(rc: i64) -> String {
    let name = match rc {
        3 => "timeLimitExceeded (the server's time limit per query)",
        4 => "sizeLimitExceeded (the server's size limit: was the search paged?)",
        10 => "referral (the base is not held by this server: check source.base_dn)",
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

    /// A `SearchResultEntry` as a server sends it.
    fn entry_bytes(dn: &str, attributes: &[(&str, &[&[u8]])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (name, values) in attributes {
            let set: Vec<u8> = values
                .iter()
                .flat_map(|v| ber::tlv(OCTET_STRING, v))
                .collect();
            list.extend(ber::constructed(
                SEQUENCE,
                &[
                    &ber::tlv(OCTET_STRING, name.as_bytes()),
                    &ber::tlv(SET, &set),
                ],
            ));
        }
        ber::constructed(
            SEQUENCE,
            &[
                &ber::tlv(OCTET_STRING, dn.as_bytes()),
                &ber::tlv(SEQUENCE, &list),
            ],
        )[2..]
            .to_vec()
    }

    #[test]
    fn entry_conversion_keeps_bytes_and_notes_ranges() {
        let bytes = entry_bytes(
            "CN=G",
            &[
                ("proxyAddresses", &[b"SMTP:g@example.com"]),
                ("member;range=0-1", &[b"CN=a", b"CN=b"]),
                ("objectGUID", &[&[0xff; 16]]),
            ],
        );
        let (entry, pending) = to_entry(&bytes).unwrap();
        assert_eq!(entry.dn, "CN=G");
        assert_eq!(
            entry.first_text("proxyaddresses"),
            Some("SMTP:g@example.com")
        );
        assert_eq!(entry.values("member").len(), 2);
        assert_eq!(entry.values("objectguid"), [vec![0xff; 16]]);
        assert_eq!(pending, [("member".to_string(), 2)]);
    }

    #[test]
    fn truncated_entries_are_errors() {
        let bytes = entry_bytes("CN=G", &[("mail", &[b"g@example.com"])]);
        for cut in 0..bytes.len() {
            assert!(to_entry(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(to_entry(&[0x04, 1, 0xff, 0x30, 0]).is_err(), "DN not UTF-8");
    }

    #[test]
    fn paged_cookie_is_found_among_controls() {
        let value = ber::constructed(
            SEQUENCE,
            &[&ber::int(INTEGER, 0), &ber::tlv(OCTET_STRING, b"next")],
        );
        let other = ber::constructed(SEQUENCE, &[&ber::tlv(OCTET_STRING, b"1.2.3")]);
        let paged = ber::constructed(
            SEQUENCE,
            &[
                &ber::tlv(OCTET_STRING, PAGED_RESULTS_OID),
                &ber::tlv(OCTET_STRING, &value),
            ],
        );
        let controls = [other, paged].concat();
        assert_eq!(paged_cookie(&controls), Ok(Some(b"next".to_vec())));
        assert_eq!(paged_cookie(&[]), Ok(None));
    }

    #[test]
    fn filters_encode_as_rfc_4511_says() {
        // (objectClass=*) is a present filter: [7] "objectClass".
        assert_eq!(
            encode_filter("(objectClass=*)").unwrap(),
            [&[0x87, 11][..], b"objectClass"].concat()
        );
        assert!(encode_filter("(userAccountControl:1.2.840.113556.1.4.803:=2)").is_some());
        assert!(encode_filter("(objectClass=user").is_none());
    }

    #[test]
    fn bind_causes_name_the_ad_data_code() {
        let text = "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563";
        assert!(bind_failure_causes(text).starts_with("the account is locked out"));
        assert!(bind_failure_causes("").starts_with("a wrong password;"));
    }
}
