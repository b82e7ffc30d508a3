//! The LDAP source: Entra Domain Services, Active Directory or any LDAP server, over LDAPS
//! (or StartTLS), read with paged searches — and fail-closed.
//!
//! Every result code is checked: a size, time or admin limit, a busy server or a dropped
//! connection at any page ends the read with an error, because a partial directory must never
//! look like a complete one. Paging follows RFC 2696 strictly: a server that stops sending the
//! paged-results control, repeats a cookie or sends empty pages without end is a fault, not
//! the end of the directory. A rejected bind is never retried (Entra DS locks the account
//! after five failures); only connection failures before the bind are retried. Attributes
//! returned in ranges (`member;range=0-1499`) are read to the end. This module does not
//! interpret the entries (that is `model`).
//!
//! Messages are encoded and decoded by ldap3_proto (`wire`); reaching the server and trust
//! are `connect` and `source::tls`; what result codes mean is `diagnose`.

mod connect;
mod diagnose;
pub mod scripted;
pub mod wire;

use std::collections::HashSet;
use std::hash::BuildHasher as _;
use std::io::IsTerminal as _;
use std::time::Instant;

use anyhow::{anyhow, bail};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapResult, LdapResultCode, LdapSearchRequest,
    LdapSearchResultEntry, LdapSearchScope,
};

use super::tls::{self, CertInfo};
use super::{Entry, SourceStats};
use crate::secret::Secret;
use crate::source::config::{LdapConfig, SearchBase};
use connect::{describe_connect_error, is_ldaps, Stream};
pub use diagnose::result_code_name;
use diagnose::{bind_failure_causes, describe_result};
use wire::{Limits, Transport, Wire};

/// Connection attempts before the bind (the bind itself is never retried).
const CONNECT_ATTEMPTS: u32 = 3;
/// Certificates expiring sooner than this are warned about on every run.
pub const EXPIRY_WARNING_DAYS: i64 = 30;
/// Pages in a row without a single entry, but with a cookie, before the server is taken to
/// be looping (a server may legitimately send a few while it skips invisible objects).
const MAX_EMPTY_PAGES: u32 = 10;

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
    let limits = limits(config, Instant::now());
    let (mut wire, cert) = open(config, limits)?;
    let result = read_over(&mut wire, cert, config, &password, attributes, sink);
    close(&mut wire);
    wire.transport_mut().close();
    result
}

/// The bounds of one read, starting `now`.
fn limits(config: &LdapConfig, now: Instant) -> Limits {
    Limits {
        max_message: config.max_message,
        per_message: config.timeout,
        read_deadline: now + config.read_timeout,
        read_timeout: config.read_timeout,
    }
}

/// Connects (retrying only what happens before the bind), and warns of a certificate near
/// its end.
fn open(config: &LdapConfig, limits: Limits) -> anyhow::Result<(Wire<Stream>, Option<CertInfo>)> {
    let encrypted = is_ldaps(&config.url) || config.starttls;
    let (tls_config, presented) = if encrypted {
        let (c, p) = tls::client_config(
            config.ca_file.as_deref(),
            config.tls_fingerprint_sha256.as_deref(),
        )?;
        (Some(c), p)
    } else {
        tracing::warn!(
            "source.allow_plaintext: the bind password and the directory cross the network \
             unencrypted; use ldaps:// outside a lab"
        );
        (None, tls::Presented::default())
    };
    let mut attempt = 0;
    let wire = loop {
        attempt += 1;
        match connect::connect(config, tls_config.as_ref(), limits) {
            Ok(wire) => break wire,
            Err(e) => {
                let failure = describe_connect_error(config, &e, &presented);
                if failure.retry && attempt < CONNECT_ATTEMPTS {
                    let wait = crate::net::backoff(attempt);
                    tracing::warn!(
                        "{} (attempt {attempt} of {CONNECT_ATTEMPTS}; retrying in {})",
                        failure.message,
                        crate::net::describe_wait(wait)
                    );
                    std::thread::sleep(wait);
                    continue;
                }
                bail!(failure.message);
            }
        }
    };
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
    Ok((wire, cert))
}

/// Binds and reads every base over a connected `wire`: the session's rules, whatever the
/// stream (the fuzz target drives it over a scripted one).
pub fn read_over<T: Transport>(
    wire: &mut Wire<T>,
    cert: Option<CertInfo>,
    config: &LdapConfig,
    password: &Secret,
    attributes: &[String],
    sink: &mut dyn FnMut(Entry),
) -> anyhow::Result<SourceStats> {
    let mut session = Session {
        wire,
        seen: HashSet::new(),
        hasher: foldhash::fast::RandomState::default(),
    };
    session.bind(config, password)?;
    let mut stats = SourceStats {
        origin: config.url.clone(),
        server_certificate: cert.map(|c| c.describe()),
        ..SourceStats::default()
    };
    let progress = std::io::stderr().is_terminal();
    let mut deliver = |entry: Entry, stats: &mut SourceStats| {
        stats.entries += 1;
        if progress && stats.entries.is_multiple_of(1000) {
            eprint!("\rreading {}: {} entries", config.url, stats.entries);
        }
        sink(entry);
    };
    for base in &config.bases {
        let in_base = session
            .search(config, base, attributes, &mut stats, &mut deliver)
            .map_err(|what| search_failed(base, what))?;
        stats.per_base.push((base.base_dn.clone(), in_base));
        tracing::info!("{}: {in_base} entries from {}", config.url, base.base_dn);
    }
    if progress && stats.entries >= 1000 {
        eprintln!();
    }
    if stats.referrals_skipped > 0 {
        tracing::warn!(
            "{}: skipped {} continuation references (referrals to other naming contexts, such \
             as DomainDnsZones; dirsync reads only the directory it is connected to)",
            config.url,
            stats.referrals_skipped
        );
    }
    if stats.duplicate_entries > 0 {
        tracing::warn!(
            "{}: the server sent {} entries more than once (each kept once); a server that \
             replays pages may also be skipping others",
            config.url,
            stats.duplicate_entries
        );
    }
    Ok(stats)
}

/// Unbind; errors do not matter any more.
fn close<T: Transport>(wire: &mut Wire<T>) {
    let _ = wire.send(LdapOp::UnbindRequest, vec![]);
}

struct Session<'w, T> {
    wire: &'w mut Wire<T>,
    /// Hashes of the DNs read so far, to notice a server that sends an entry twice.
    seen: HashSet<u64>,
    hasher: foldhash::fast::RandomState,
}

/// An error of a search, in words, with how many entries were read before it.
type SearchError = String;

impl<T: Transport> Session<'_, T> {
    /// One simple bind. Never retried: Entra DS locks the account after 5 failures in 2 minutes.
    fn bind(&mut self, config: &LdapConfig, password: &Secret) -> anyhow::Result<()> {
        let failed = |what: String| anyhow!("bind as {} failed: {what}", config.bind_dn);
        let id = self
            .wire
            .send_bind(&config.bind_dn, password.expose().as_bytes())
            .map_err(|e| failed(e.to_string()))?;
        let message = self.receive(id).map_err(failed)?;
        let LdapOp::BindResponse(response) = message.op else {
            return Err(failed(format!(
                "the server answered the bind with {}",
                op_name(&message.op)
            )));
        };
        let result = response.res;
        match result.code {
            LdapResultCode::Success => Ok(()),
            LdapResultCode::InvalidCredentials => bail!(
                "the server rejected the bind as {} (invalidCredentials{}). Not retried: Entra \
                 Domain Services locks the account after 5 failures in 2 minutes. Usual causes: \
                 {} Fix the password in {} and run `dirsync check`",
                config.bind_dn,
                if result.message.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", result.message.trim())
                },
                bind_failure_causes(&result.message),
                config.password.describe()
            ),
            LdapResultCode::StrongerAuthRequired | LdapResultCode::ConfidentialityRequired => {
                bail!(
                    "the server refuses a simple bind as {} on this connection ({}): use ldaps:// \
                 or starttls = true",
                    config.bind_dn,
                    describe_result(&result)
                )
            }
            _ => Err(failed(describe_result(&result))),
        }
    }

    /// The next message for request `id`. The server's notice of disconnection (id 0) and a
    /// message for any other request end the read.
    fn receive(&mut self, id: i32) -> Result<LdapMsg, SearchError> {
        let message = self.wire.receive().map_err(|e| e.to_string())?;
        if message.msgid == id {
            return Ok(message);
        }
        match message.op {
            LdapOp::ExtendedResponse(notice) if message.msgid == 0 => Err(format!(
                "the server ended the connection: {}",
                describe_result(&notice.res)
            )),
            op => Err(format!(
                "the server sent {} for message {} while dirsync waited for message {id}",
                op_name(&op),
                message.msgid
            )),
        }
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
    ) -> Result<u64, SearchError> {
        let filter = parse_filter(&base.filter)
            .map_err(|_| "the filter is not a valid LDAP filter (RFC 4515)".to_string())?;
        let request = search_request(&base.base_dn, LdapSearchScope::Subtree, &filter, attributes);
        let mut paging = Paging::default();
        let mut in_base = 0u64;
        let after = |e: String, n: u64| format!("{e} after {n} entries");
        let mut id = self
            .request_page(&request, config.page_size, Vec::new())
            .map_err(|e| after(e, 0))?;
        loop {
            let page = self
                .page(id, stats)
                .map_err(|(e, on_page)| after(e, in_base + on_page))?;
            in_base += page.entries;
            if page.result.code != LdapResultCode::Success {
                return Err(after(describe_result(&page.result), in_base));
            }
            let next = paging
                .next(page.controls, page.entries, page.fresh, config.page_size)
                .map_err(|e| after(e, in_base))?;
            // The next page is asked for before this one is handed on, so the server works
            // while dirsync does — unless ranged attributes need this connection first.
            let mut asked = None;
            if let Some(cookie) = next.clone().filter(|_| page.incomplete.is_empty()) {
                asked = Some(
                    self.request_page(&request, config.page_size, cookie)
                        .map_err(|e| after(e, in_base))?,
                );
            }
            for entry in page.ready {
                deliver(entry, stats);
            }
            for (mut entry, pending) in page.incomplete {
                for (name, start) in pending {
                    self.read_range(&mut entry, &name, start).map_err(|e| {
                        format!("reading all values of {name} of {}: {e}", entry.dn)
                    })?;
                }
                deliver(entry, stats);
            }
            id = match (asked, next) {
                (Some(id), _) => id,
                (None, Some(cookie)) => self
                    .request_page(&request, config.page_size, cookie)
                    .map_err(|e| after(e, in_base))?,
                (None, None) => return Ok(in_base),
            };
        }
    }

    /// Sends the search for the page after `cookie` (empty: the first page).
    fn request_page(
        &mut self,
        request: &LdapOp,
        page_size: i32,
        cookie: Vec<u8>,
    ) -> Result<i32, SearchError> {
        let control = LdapControl::SimplePagedResults {
            size: page_size.into(),
            cookie,
        };
        self.wire
            .send(request.clone(), vec![control])
            .map_err(|e| e.to_string())
    }

    /// Receives one page of search `id`, its entries converted: complete ones ready to hand
    /// on, those with a ranged attribute kept apart (their other values need more searches).
    /// An error comes with the number of entries of the page before it.
    fn page(&mut self, id: i32, stats: &mut SourceStats) -> Result<Page, (SearchError, u64)> {
        let mut ready = Vec::new();
        let mut incomplete = Vec::new();
        let (mut entries, mut fresh) = (0u64, 0u64);
        loop {
            let message = self.receive(id).map_err(|e| (e, entries))?;
            match message.op {
                LdapOp::SearchResultEntry(raw) => {
                    entries += 1;
                    if !self.seen.insert(self.hasher.hash_one(raw.dn.as_bytes())) {
                        stats.duplicate_entries += 1;
                        if stats.duplicate_entries == 1 {
                            tracing::warn!(
                                "the server sent {} a second time (kept once; counted in the \
                                 summary)",
                                raw.dn
                            );
                        }
                        continue;
                    }
                    fresh += 1;
                    let (entry, pending) = to_entry(raw);
                    if pending.is_empty() {
                        ready.push(entry);
                    } else {
                        incomplete.push((entry, pending));
                    }
                }
                LdapOp::SearchResultReference(_) => stats.referrals_skipped += 1,
                LdapOp::SearchResultDone(result) => {
                    return Ok(Page {
                        result,
                        controls: message.ctrl,
                        entries,
                        fresh,
                        ready,
                        incomplete,
                    })
                }
                op => {
                    let what = format!("the server sent {} inside a search", op_name(&op));
                    return Err((what, entries));
                }
            }
        }
    }

    /// Reads the rest of a ranged attribute with base-scope searches until the range ends in `*`.
    fn read_range(
        &mut self,
        entry: &mut Entry,
        name: &str,
        mut start: u64,
    ) -> Result<(), SearchError> {
        let everything = LdapFilter::Present("objectClass".into());
        loop {
            let attr = format!("{name};range={start}-*");
            let request = search_request(
                &entry.dn,
                LdapSearchScope::Base,
                &everything,
                std::slice::from_ref(&attr),
            );
            let id = self.wire.send(request, vec![]).map_err(|e| e.to_string())?;
            let mut next = None;
            let mut found = false;
            loop {
                let message = self.receive(id)?;
                match message.op {
                    LdapOp::SearchResultEntry(raw) => {
                        for a in raw.attributes {
                            let Some((n, _, end)) = parse_range(&a.atype) else {
                                continue;
                            };
                            if n.eq_ignore_ascii_case(name) {
                                found = true;
                                next = end.map(|e| e + 1);
                                entry.push_all(name, a.vals);
                            }
                        }
                    }
                    LdapOp::SearchResultReference(_) => {}
                    LdapOp::SearchResultDone(result) => {
                        if result.code != LdapResultCode::Success {
                            return Err(describe_result(&result));
                        }
                        break;
                    }
                    op => return Err(format!("the server sent {} inside a search", op_name(&op))),
                }
            }
            match (found, next) {
                (false, _) => return Err(format!("the server returned no {attr}")),
                (true, None) => return Ok(()),
                (true, Some(n)) if n > start => start = n,
                (true, Some(_)) => {
                    return Err("the server returned a range that does not advance".into())
                }
            }
        }
    }
}

/// One page of a search, received.
struct Page {
    result: LdapResult,
    controls: Vec<LdapControl>,
    /// Entries on the page, and those among them not seen before.
    entries: u64,
    fresh: u64,
    /// Entries complete as received.
    ready: Vec<Entry>,
    /// Entries with a ranged attribute, and where each range goes on.
    incomplete: Vec<(Entry, Vec<(String, u64)>)>,
}

/// RFC 2696 as a client must hold a server to it.
#[derive(Default)]
struct Paging {
    pages: u64,
    /// Every cookie the server has sent: one sent again would make the read loop forever.
    cookies: HashSet<Vec<u8>>,
    empty_in_row: u32,
}

impl Paging {
    /// The cookie for the next page, or `None` when the search is complete. `fresh`: the
    /// entries of this page not seen before (a page of replayed entries counts as empty);
    /// `on_page`: all entries of this page; `page_size`: what was asked for.
    fn next(
        &mut self,
        controls: Vec<LdapControl>,
        on_page: u64,
        fresh: u64,
        page_size: i32,
    ) -> Result<Option<Vec<u8>>, SearchError> {
        self.pages += 1;
        let cookie = controls.into_iter().find_map(|c| match c {
            LdapControl::SimplePagedResults { cookie, .. } => Some(cookie),
            _ => None,
        });
        match cookie {
            // A server that does not support paging ignores the (non-critical) control from
            // the first request on and sends everything at once: then a size limit is a
            // result code, which was checked. A page of exactly the size asked for is
            // ambiguous: a paging server whose control was lost would send just that.
            None if self.pages == 1 && on_page != page_size as u64 => Ok(None),
            None if self.pages == 1 => Err(format!(
                "the server answered the first page with exactly {page_size} entries \
                 (source.page_size) but without the paged-results control: more may follow, \
                 so the read cannot be taken as complete"
            )),
            None => Err(format!(
                "the server stopped paging: its answer to page {} carried no paged-results \
                 control (RFC 2696 requires one on every page once it has paged), so the read \
                 is incomplete",
                self.pages
            )),
            Some(c) if c.is_empty() => Ok(None),
            Some(c) => {
                if fresh == 0 {
                    self.empty_in_row += 1;
                    if self.empty_in_row > MAX_EMPTY_PAGES {
                        return Err(format!(
                            "the server sent {} pages in a row without a new entry and still \
                             offered more: it is looping",
                            self.empty_in_row
                        ));
                    }
                } else {
                    self.empty_in_row = 0;
                }
                if !self.cookies.insert(c.clone()) {
                    return Err(format!(
                        "the server sent the paging cookie of an earlier page again (page {}): \
                         it would page forever",
                        self.pages
                    ));
                }
                Ok(Some(c))
            }
        }
    }
}

/// `SearchRequest` (RFC 4511 §4.5.1): never dereference aliases, no client limits.
fn search_request(
    base: &str,
    scope: LdapSearchScope,
    filter: &LdapFilter,
    attributes: &[String],
) -> LdapOp {
    LdapOp::SearchRequest(LdapSearchRequest {
        base: base.to_owned(),
        scope,
        aliases: LdapDerefAliases::Never,
        sizelimit: 0,
        timelimit: 0,
        typesonly: false,
        filter: filter.clone(),
        attrs: attributes.to_vec(),
    })
}

/// An RFC 4515 filter string, parsed (ldap3_proto's parser).
pub fn parse_filter(filter: &str) -> Result<LdapFilter, String> {
    ldap3_proto::parse_ldap_filter_str(filter.trim()).map_err(|e| e.to_string())
}

/// Converts a `SearchResultEntry` (its values are moved, not copied). Returns the attributes
/// that came back as a range and where the next range starts.
fn to_entry(raw: LdapSearchResultEntry) -> (Entry, Vec<(String, u64)>) {
    let mut entry = Entry::new(raw.dn);
    let mut pending = Vec::new();
    for a in raw.attributes {
        match parse_range(&a.atype) {
            Some((name, _, end)) => {
                if let Some(end) = end {
                    pending.push((name.to_owned(), end + 1));
                }
                entry.push_all(name, a.vals);
            }
            None => entry.push_all(&a.atype, a.vals),
        }
    }
    (entry, pending)
}

/// What a protocol operation is, for messages.
fn op_name(op: &LdapOp) -> &'static str {
    match op {
        LdapOp::BindResponse(_) => "a bind response",
        LdapOp::SearchResultEntry(_) => "a search entry",
        LdapOp::SearchResultDone(_) => "a search result",
        LdapOp::SearchResultReference(_) => "a continuation reference",
        LdapOp::ExtendedResponse(_) => "an extended response",
        LdapOp::IntermediateResponse(_) => "an intermediate response (not asked for)",
        _ => "an unexpected operation",
    }
}

fn search_failed(base: &SearchBase, what: String) -> anyhow::Error {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn entry_conversion_keeps_bytes_and_notes_ranges() {
        use ldap3_proto::proto::LdapPartialAttribute;
        let attr = |atype: &str, vals: Vec<Vec<u8>>| LdapPartialAttribute {
            atype: atype.into(),
            vals,
        };
        let (entry, pending) = to_entry(LdapSearchResultEntry {
            dn: "CN=G".into(),
            attributes: vec![
                attr("proxyAddresses", vec![b"SMTP:g@example.com".to_vec()]),
                attr("member;range=0-1", vec![b"CN=a".to_vec(), b"CN=b".to_vec()]),
                attr("objectGUID", vec![vec![0xff; 16]]),
            ],
        });
        assert_eq!(entry.dn, "CN=G");
        assert_eq!(
            entry.first_text("proxyaddresses"),
            Some("SMTP:g@example.com")
        );
        assert_eq!(entry.values("member").len(), 2);
        assert_eq!(entry.values("objectguid"), [vec![0xff; 16]]);
        assert_eq!(pending, [("member".to_string(), 2)]);
    }

    fn paged(cookie: &[u8]) -> Vec<LdapControl> {
        vec![LdapControl::SimplePagedResults {
            size: 0,
            cookie: cookie.to_vec(),
        }]
    }

    #[test]
    fn paging_ends_only_as_rfc_2696_says() {
        let mut p = Paging::default();
        assert_eq!(
            p.next(vec![], 5, 5, 10),
            Ok(None),
            "no control from the start: not paged"
        );

        let mut p = Paging::default();
        assert_eq!(p.next(paged(b"a"), 5, 5, 10), Ok(Some(b"a".to_vec())));
        assert!(p
            .next(vec![], 5, 5, 10)
            .unwrap_err()
            .contains("stopped paging"));

        let mut p = Paging::default();
        assert_eq!(p.next(paged(b"a"), 5, 5, 10), Ok(Some(b"a".to_vec())));
        assert_eq!(p.next(paged(b"b"), 5, 5, 10), Ok(Some(b"b".to_vec())));
        assert!(p.next(paged(b"a"), 5, 5, 10).unwrap_err().contains("again"));

        let mut p = Paging::default();
        for i in 0..MAX_EMPTY_PAGES {
            assert!(p.next(paged(&i.to_be_bytes()), 3, 0, 10).unwrap().is_some());
        }
        assert!(p
            .next(paged(b"x"), 3, 0, 10)
            .unwrap_err()
            .contains("looping"));

        let mut p = Paging::default();
        assert_eq!(p.next(paged(b"a"), 5, 5, 10), Ok(Some(b"a".to_vec())));
        assert_eq!(p.next(paged(b""), 5, 5, 10), Ok(None));
    }

    #[test]
    fn filters_parse_as_rfc_4515_says() {
        assert_eq!(
            parse_filter("(objectClass=*)"),
            Ok(LdapFilter::Present("objectClass".into()))
        );
        assert!(parse_filter("(userAccountControl:1.2.840.113556.1.4.803:=2)").is_ok());
        assert!(parse_filter("(|(objectClass=user)(objectClass=group))").is_ok());
        assert!(parse_filter("(mail=*@example.com)").is_ok());
        assert!(parse_filter("(objectClass=user").is_err());
    }
}
