//! A hostile LDAP server: every way a server (or what sits between it and dirsync) can
//! misbehave that neither slapd nor Samba shows — truncation at every byte, lying lengths,
//! wrong message ids, unexpected operations, every non-success result code, paging that stops
//! or loops, notices of disconnection, intermediate responses, stalls and drip-feeds, bytes
//! injected behind a StartTLS response.
//!
//! Each case: a first run against the same server behaving well writes a MAP file and the
//! state; the hostile run must end with exit 4, within a bounded time and without aborting,
//! and leave the MAP file and the state byte for byte as they were.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindResponse, LdapExtendedResponse, LdapIntermediateResponse, LdapMsg, LdapOp,
    LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchResultEntry,
};
use ldap3_proto::LdapCodec;
use tokio_util::codec::{Decoder as _, Encoder as _};

use crate::util::{Case, Run};

/// Users the server holds, and the page size dirsync asks for (3 pages).
const USERS: usize = 25;
const PAGE: usize = 10;
const PW_ENV: &str = "DIRSYNC_TEST_BIND_PASSWORD";

/// One accepted connection, from the server's side.
pub struct Conn {
    stream: TcpStream,
    received: BytesMut,
    codec: LdapCodec,
}

impl Conn {
    /// The next request; `None` when the client is gone.
    pub fn request(&mut self) -> Option<LdapMsg> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Ok(Some(m)) = self.codec.decode(&mut self.received) {
                return Some(m);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.received.extend_from_slice(&chunk[..n]),
            }
        }
    }

    pub fn bytes(msg: LdapMsg) -> Vec<u8> {
        let mut out = BytesMut::new();
        LdapCodec::default().encode(msg, &mut out).unwrap();
        out.to_vec()
    }

    pub fn send(&mut self, msg: LdapMsg) {
        let _ = self.stream.write_all(&Self::bytes(msg));
    }

    /// Sends bytes as they are; false when the client is gone.
    pub fn raw(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Reads the bind and accepts it; returns its message id.
    pub fn bind(&mut self) -> Option<i32> {
        let m = self.request()?;
        assert!(matches!(m.op, LdapOp::BindRequest(_)), "{m:?}");
        self.send(bind_response(m.msgid));
        Some(m.msgid)
    }

    /// The next paged search: its id and cookie (`None`: an unbind or the client is gone).
    pub fn search(&mut self) -> Option<(i32, Vec<u8>)> {
        let m = self.request()?;
        let LdapOp::SearchRequest(_) = m.op else {
            return None;
        };
        let cookie = m
            .ctrl
            .iter()
            .find_map(|c| match c {
                LdapControl::SimplePagedResults { cookie, .. } => Some(cookie.clone()),
                _ => None,
            })
            .unwrap_or_default();
        Some((m.msgid, cookie))
    }

    /// The entries of page `n` (0-based).
    pub fn page(&mut self, id: i32, n: usize) {
        for i in n * PAGE..((n + 1) * PAGE).min(USERS) {
            self.send(entry(id, i));
        }
    }

    /// A whole, well-behaved session.
    pub fn good(&mut self) {
        if self.bind().is_none() {
            return;
        }
        while let Some((id, cookie)) = self.search() {
            let n = page_of(&cookie);
            self.page(id, n);
            let next = if (n + 1) * PAGE < USERS {
                format!("p{}", n + 1).into_bytes()
            } else {
                Vec::new()
            };
            self.send(done(id, LdapResultCode::Success, Some(&next)));
        }
    }

    /// Keeps the connection open without a word until the client gives up.
    pub fn stall(&mut self) {
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(30)));
        let mut sink = [0u8; 1024];
        while matches!(self.stream.read(&mut sink), Ok(n) if n > 0) {}
    }
}

fn page_of(cookie: &[u8]) -> usize {
    std::str::from_utf8(cookie)
        .ok()
        .and_then(|c| c.strip_prefix('p'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn result(code: LdapResultCode, message: &str) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.into(),
        referral: vec![],
    }
}

pub fn bind_response(id: i32) -> LdapMsg {
    LdapMsg {
        msgid: id,
        op: LdapOp::BindResponse(LdapBindResponse {
            res: result(LdapResultCode::Success, ""),
            saslcreds: None,
        }),
        ctrl: vec![],
    }
}

pub fn entry(id: i32, i: usize) -> LdapMsg {
    LdapMsg {
        msgid: id,
        op: LdapOp::SearchResultEntry(LdapSearchResultEntry {
            dn: format!("CN=u{i},OU=Users,DC=example,DC=com"),
            attributes: vec![
                LdapPartialAttribute {
                    atype: "objectClass".into(),
                    vals: vec![b"user".to_vec()],
                },
                LdapPartialAttribute {
                    atype: "proxyAddresses".into(),
                    vals: vec![format!("SMTP:u{i}@example.com").into_bytes()],
                },
            ],
        }),
        ctrl: vec![],
    }
}

/// `SearchResultDone` with `code`, and the paged-results control when `cookie` is given.
pub fn done(id: i32, code: LdapResultCode, cookie: Option<&[u8]>) -> LdapMsg {
    LdapMsg {
        msgid: id,
        op: LdapOp::SearchResultDone(result(code, "")),
        ctrl: cookie
            .map(|c| {
                vec![LdapControl::SimplePagedResults {
                    size: 0,
                    cookie: c.to_vec(),
                }]
            })
            .unwrap_or_default(),
    }
}

type Script = dyn Fn(usize, &mut Conn) + Send + Sync;

/// Starts a server on 127.0.0.1; connection `i` (0, 1, …) is served by `script(i, conn)`.
pub fn serve(script: Arc<Script>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let i = count.fetch_add(1, Ordering::SeqCst);
            let script = script.clone();
            std::thread::spawn(move || {
                let mut conn = Conn {
                    stream,
                    received: BytesMut::new(),
                    codec: LdapCodec::new(Some(1 << 20), None),
                };
                script(i, &mut conn);
            });
        }
    });
    port
}

/// A well-behaved first connection, then `hostile` for every later one.
fn first_good(hostile: impl Fn(usize, &mut Conn) + Send + Sync + 'static) -> u16 {
    serve(Arc::new(
        move |i, c: &mut Conn| {
            if i == 0 {
                c.good()
            } else {
                hostile(i, c)
            }
        },
    ))
}

/// A case whose config reads `url`; `extra` adds keys to [source].
fn config(case: &Case, url: &str, extra: &str) {
    case.write(
        "dirsync.toml",
        format!(
            "customer_id = \"12345\"\ndomains = [\"example.com\"]\nstate_dir = \"state\"\n\
             [source]\ntype = \"ldap\"\nurl = \"{url}\"\nallow_plaintext = true\n\
             bind_dn = \"CN=reader,DC=example,DC=com\"\npassword_env = \"{PW_ENV}\"\n\
             base_dn = \"OU=Users,DC=example,DC=com\"\npage_size = {PAGE}\n\
             connect_timeout_seconds = 2\ntimeout_seconds = 2\n{extra}\n\
             [output]\npath = \"out/retarus.map\"\n"
        ),
    );
}

fn sync(case: &Case) -> Run {
    case.run_env(
        &["sync", "--config", "dirsync.toml"],
        &[(PW_ENV, "not-a-real-password")],
    )
}

/// Files by path, with their bytes (None: absent).
pub type Files = Vec<(String, Option<Vec<u8>>)>;

/// The files a failed run must leave as they were.
pub fn files(case: &Case) -> Files {
    let mut out = vec![("out/retarus.map".to_string(), case.read("out/retarus.map"))];
    let mut names: Vec<_> = std::fs::read_dir(case.path("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "last-run.json" && n != "dirsync.lock")
        .collect();
    names.sort();
    for n in names {
        let path = format!("state/{n}");
        let bytes = case.read(&path);
        out.push((path, bytes));
    }
    out
}

/// A case after one good run against `port` (25 addresses written).
fn baseline(port: u16) -> (Case, Files) {
    let case = Case::new();
    config(&case, &format!("ldap://127.0.0.1:{port}"), "");
    let run = sync(&case);
    assert_eq!(run.code, 0, "{run:?}");
    let map = String::from_utf8(case.read("out/retarus.map").unwrap()).unwrap();
    assert_eq!(map.matches("\tDIR:\t").count(), USERS, "{map}");
    let before = files(&case);
    (case, before)
}

/// The hostile run: exit 4 within `limit`, the error line containing `expect`, the files as
/// they were.
fn refused(
    case: &Case,
    before: &[(String, Option<Vec<u8>>)],
    expect: &str,
    limit: Duration,
) -> Run {
    let started = Instant::now();
    let run = sync(case);
    let took = started.elapsed();
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.error_line().contains(expect),
        "expected {expect:?}: {run:?}"
    );
    assert!(took < limit, "took {took:?} (limit {limit:?}): {run:?}");
    assert_eq!(
        files(case),
        before,
        "the MAP file or the state changed: {run:?}"
    );
    let report = String::from_utf8(case.read("state/last-run.json").unwrap()).unwrap();
    assert!(report.contains("\"exit_code\": 4"), "{report}");
    run
}

const QUICK: Duration = Duration::from_secs(10);

/// The bytes of a good session's first page, as one buffer.
fn first_page_bytes(id: i32) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..PAGE {
        out.extend(Conn::bytes(entry(id, i)));
    }
    out.extend(Conn::bytes(done(id, LdapResultCode::Success, Some(b"p1"))));
    out
}

#[test]
fn truncation_at_every_byte_of_the_bind_response_and_of_a_page_is_refused() {
    let bind = Conn::bytes(bind_response(1));
    let page = first_page_bytes(2);
    // Cut points: every byte of the bind response, every byte of the first entry and of the
    // page's end, and a stride through the rest.
    let mut cuts: Vec<(bool, usize)> = (0..bind.len()).map(|n| (true, n)).collect();
    let first = Conn::bytes(entry(2, 0)).len();
    let end = page.len() - Conn::bytes(done(2, LdapResultCode::Success, Some(b"p1"))).len();
    cuts.extend((0..first).map(|n| (false, n)));
    cuts.extend((first..end).step_by(7).map(|n| (false, n)));
    cuts.extend((end..page.len()).map(|n| (false, n)));
    let cuts = Arc::new(cuts);
    let plan = cuts.clone();
    let port = first_good(move |i, c| {
        let (in_bind, cut) = plan[i - 1];
        let Some(m) = c.request() else { return };
        if in_bind {
            c.raw(&Conn::bytes(bind_response(m.msgid))[..cut]);
            return;
        }
        c.send(bind_response(m.msgid));
        let Some((id, _)) = c.search() else { return };
        c.raw(&first_page_bytes(id)[..cut]);
    });
    let (case, before) = baseline(port);
    for _ in 0..cuts.len() {
        refused(&case, &before, "the server closed the connection", QUICK);
    }
}

#[test]
fn lying_lengths_are_refused_without_allocating_what_they_claim() {
    // Claims of 2 GiB and 256 MiB behind a SEQUENCE tag, then a stall; an indefinite length;
    // an inner element running past the end of its message; a tag that is no message.
    let cases: Vec<Vec<u8>> = vec![
        vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01, 0x02],
        vec![0x30, 0x84, 0x10, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02],
        vec![
            0x30, 0x80, 0x02, 0x01, 0x02, 0x65, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
            0x00, 0x00,
        ],
        vec![
            0x30, 0x0c, 0x02, 0x01, 0x02, 0x64, 0x07, 0x04, 0x7f, b'C', b'N', b'=', b'x', 0x30,
            0x00,
        ],
        vec![0x04, 0x03, 0x02, 0x01, 0x02],
    ];
    let cases = Arc::new(cases);
    let plan = cases.clone();
    let port = first_good(move |i, c| {
        if c.bind().is_none() {
            return;
        }
        if c.search().is_none() {
            return;
        }
        c.raw(&plan[i - 1]);
        c.stall();
    });
    let (case, before) = baseline(port);
    for n in 0..cases.len() {
        // Address space capped at 384 MiB: a client that reserved what a length claims
        // (256 MiB rounded up to the next power of two) would abort instead of exiting 4.
        let started = Instant::now();
        let run = sync_limited(&case, 384 << 20);
        assert_eq!(run.code, 4, "case {n}: {run:?}");
        assert!(started.elapsed() < QUICK, "case {n}: {run:?}");
        assert_eq!(files(&case), before, "case {n}: {run:?}");
    }
}

/// `sync` with the address space limited to `bytes` (RLIMIT_AS).
fn sync_limited(case: &Case, bytes: u64) -> Run {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"));
    cmd.args(["sync", "--config", "dirsync.toml"])
        .current_dir(case.dir.path())
        .env_remove("DIRSYNC_LOG")
        .env("DIRSYNC_TEST_BACKOFF_MS", crate::util::TEST_BACKOFF_MS)
        .env(PW_ENV, "not-a-real-password");
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    Run::from_output(out)
}

#[test]
fn wrong_message_ids_and_unexpected_operations_are_refused() {
    let port = first_good(|i, c| {
        let Some(bind) = c.request() else { return };
        match i {
            // A bind response for a request never sent.
            1 => c.send(bind_response(bind.msgid + 1)),
            // Something that is not a bind response.
            2 => c.send(done(bind.msgid, LdapResultCode::Success, None)),
            _ => {
                c.send(bind_response(bind.msgid));
                let Some((id, _)) = c.search() else { return };
                c.send(entry(id, 0));
                match i {
                    // An entry of another request.
                    3 => c.send(entry(id + 7, 1)),
                    // A bind response inside a search.
                    4 => c.send(bind_response(id)),
                    // A request (the server speaking as a client).
                    _ => c.send(LdapMsg {
                        msgid: id,
                        op: LdapOp::UnbindRequest,
                        ctrl: vec![],
                    }),
                }
            }
        }
        c.stall();
    });
    let (case, before) = baseline(port);
    refused(&case, &before, "while dirsync waited for message 1", QUICK);
    refused(
        &case,
        &before,
        "the server answered the bind with a search result",
        QUICK,
    );
    refused(
        &case,
        &before,
        "for message 9 while dirsync waited for message 2",
        QUICK,
    );
    refused(
        &case,
        &before,
        "the server sent a bind response inside a search",
        QUICK,
    );
    refused(&case, &before, "inside a search", QUICK);
}

/// Every result code ldap3_proto knows, but success.
const FAILURE_CODES: &[i64] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21, 32, 33, 34, 36, 48, 49, 50,
    51, 52, 53, 54, 64, 65, 66, 67, 68, 69, 71, 76, 80, 118, 119, 120, 121, 122, 123, 4096,
];

#[test]
fn every_non_success_result_code_on_any_page_is_refused() {
    let port = first_good(|i, c| {
        let code = LdapResultCode::try_from(FAILURE_CODES[(i - 1) / 2]).unwrap();
        if c.bind().is_none() {
            return;
        }
        // Odd connections fail on the first page, even ones on the last.
        let fail_on = if i % 2 == 1 { 0 } else { 2 };
        while let Some((id, cookie)) = c.search() {
            let n = page_of(&cookie);
            c.page(id, n);
            if n == fail_on {
                c.send(done(id, code.clone(), Some(b"")));
                break;
            }
            c.send(done(
                id,
                LdapResultCode::Success,
                Some(format!("p{}", n + 1).as_bytes()),
            ));
        }
        c.stall();
    });
    let (case, before) = baseline(port);
    for rc in FAILURE_CODES {
        let run = refused(&case, &before, &format!("result code {rc}"), QUICK);
        assert!(run.error_line().contains("after 10 entries"), "{run:?}");
        let run = refused(&case, &before, &format!("result code {rc}"), QUICK);
        assert!(run.error_line().contains("after 25 entries"), "{run:?}");
    }
    // A result code outside the protocol's list: not a message dirsync can trust.
    let port = first_good(|_, c| {
        if c.bind().is_none() {
            return;
        }
        let Some((id, _)) = c.search() else { return };
        let mut bytes = Conn::bytes(done(id, LdapResultCode::Success, Some(b"")));
        let at = bytes
            .windows(3)
            .position(|w| w == [0x0a, 0x01, 0x00])
            .unwrap();
        bytes[at + 2] = 9;
        c.raw(&bytes);
        c.stall();
    });
    let (case, before) = baseline(port);
    refused(&case, &before, "not a valid LDAP message", QUICK);
}

#[test]
fn paging_that_stops_repeats_garbles_or_never_ends_is_refused() {
    let port = first_good(|i, c| {
        if c.bind().is_none() {
            return;
        }
        let mut pages = 0usize;
        while let Some((id, cookie)) = c.search() {
            let n = page_of(&cookie);
            match i {
                // Page 2 ends successfully, without the control: everything after it lost.
                1 => {
                    c.page(id, n);
                    c.send(done(
                        id,
                        LdapResultCode::Success,
                        (n == 0).then_some(b"p1".as_slice()),
                    ));
                }
                // The same cookie again and again.
                2 => {
                    c.page(id, 0);
                    c.send(done(id, LdapResultCode::Success, Some(b"p1")));
                }
                // New cookies, never an entry.
                3 => {
                    pages += 1;
                    c.send(done(
                        id,
                        LdapResultCode::Success,
                        Some(format!("e{pages}").as_bytes()),
                    ));
                }
                // The same page replayed under new cookies.
                4 => {
                    pages += 1;
                    c.page(id, 0);
                    c.send(done(
                        id,
                        LdapResultCode::Success,
                        Some(format!("r{pages}").as_bytes()),
                    ));
                }
                // The control's value garbled: its page size is not an INTEGER.
                5 => {
                    c.page(id, 0);
                    let mut bytes = Conn::bytes(done(id, LdapResultCode::Success, Some(b"p1")));
                    let at = bytes.windows(2).position(|w| w == b"p1").unwrap();
                    assert_eq!(bytes[at - 5], 0x02);
                    bytes[at - 5] = 0x01;
                    c.raw(&bytes);
                }
                // The controls' wrapper garbled ([1] for [0]): the decoder sees no control.
                _ => {
                    c.page(id, 0);
                    let mut bytes = Conn::bytes(done(id, LdapResultCode::Success, Some(b"p1")));
                    let at = bytes.iter().position(|&b| b == 0xa0).unwrap();
                    bytes[at] = 0xa1;
                    c.raw(&bytes);
                }
            }
        }
    });
    let (case, before) = baseline(port);
    let run = refused(&case, &before, "the server stopped paging", QUICK);
    assert!(run.error_line().contains("after 20 entries"), "{run:?}");
    refused(
        &case,
        &before,
        "paging cookie of an earlier page again",
        QUICK,
    );
    refused(&case, &before, "pages in a row without a new entry", QUICK);
    let run = refused(&case, &before, "pages in a row without a new entry", QUICK);
    assert!(
        run.stderr
            .contains("CN=u0,OU=Users,DC=example,DC=com a second time"),
        "{run:?}"
    );
    refused(&case, &before, "not a valid LDAP message", QUICK);
    refused(
        &case,
        &before,
        "exactly 10 entries (source.page_size) but without the paged-results control",
        QUICK,
    );
}

#[test]
fn a_notice_of_disconnection_and_an_intermediate_response_mid_page_are_refused() {
    let port = first_good(|i, c| {
        if c.bind().is_none() {
            return;
        }
        let Some((id, _)) = c.search() else { return };
        c.send(entry(id, 0));
        if i == 1 {
            c.send(LdapMsg {
                msgid: 0,
                op: LdapOp::ExtendedResponse(LdapExtendedResponse {
                    res: result(LdapResultCode::Unavailable, "shutting down"),
                    name: Some("1.3.6.1.4.1.1466.20036".into()),
                    value: None,
                }),
                ctrl: vec![],
            });
        } else {
            c.send(LdapMsg {
                msgid: id,
                op: LdapOp::IntermediateResponse(LdapIntermediateResponse::Raw {
                    name: Some("1.2.3.4".into()),
                    value: None,
                }),
                ctrl: vec![],
            });
        }
        c.stall();
    });
    let (case, before) = baseline(port);
    refused(
        &case,
        &before,
        "the server ended the connection: result code 52",
        QUICK,
    );
    refused(&case, &before, "an intermediate response", QUICK);
}

#[test]
fn slow_servers_cannot_keep_a_run_alive() {
    let port = first_good(|i, c| match i {
        // Accepted, never answers the bind.
        1 => {
            c.request();
            c.stall();
        }
        // Half a page, then silence.
        2 => {
            if c.bind().is_none() {
                return;
            }
            let Some((id, _)) = c.search() else { return };
            c.page(id, 0);
            c.stall();
        }
        // Drip-feed: one byte every 100 ms (a message takes far longer than timeout_seconds).
        3 => {
            if c.bind().is_none() {
                return;
            }
            let Some((id, _)) = c.search() else { return };
            for b in first_page_bytes(id) {
                if !c.raw(&[b]) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // Whole messages, each in time, but the read never ends: read_timeout_seconds.
        _ => {
            if c.bind().is_none() {
                return;
            }
            let mut pages = 0usize;
            while let Some((id, _)) = c.search() {
                for _ in 0..5 {
                    pages += 1;
                    std::thread::sleep(Duration::from_millis(300));
                    c.send(entry(id, pages));
                }
                c.send(done(
                    id,
                    LdapResultCode::Success,
                    Some(format!("s{pages}").as_bytes()),
                ));
            }
        }
    });
    let (case, before) = baseline(port);
    let bound = Duration::from_secs(6);
    refused(&case, &before, "bind as CN=reader,DC=example,DC=com failed: the server did not send a whole response within 2s", bound);
    refused(
        &case,
        &before,
        "did not send a whole response within 2s (source.timeout_seconds) after 10 entries",
        bound,
    );
    refused(
        &case,
        &before,
        "did not send a whole response within 2s",
        bound,
    );
    config(
        &case,
        &format!("ldap://127.0.0.1:{port}"),
        "read_timeout_seconds = 4",
    );
    refused(
        &case,
        &before,
        "the whole read took longer than 4s (source.read_timeout_seconds)",
        bound,
    );
}

#[test]
fn stalls_before_the_bind_are_bounded_and_said_for_what_they_are() {
    // A listener that never accepts: TCP connects (the kernel's backlog), nothing answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let port = first_good(|_, c| c.stall());
    let (case, before) = baseline(port);

    config(&case, &format!("ldap://127.0.0.1:{silent_port}"), "");
    refused(
        &case,
        &before,
        "did not send a whole response within 2s",
        Duration::from_secs(6),
    );

    // ldaps:// to a server that accepts and says nothing: the handshake stalls (retried).
    config(&case, &format!("ldaps://127.0.0.1:{port}"), "");
    let run = refused(
        &case,
        &before,
        "connected, but the TLS handshake got no answer within 2s",
        Duration::from_secs(10),
    );
    assert!(run.stderr.contains("attempt 2 of 3"), "{run:?}");
    drop(silent);
}

#[test]
fn bytes_injected_behind_the_starttls_response_are_refused() {
    let port = first_good(|_, c| {
        let Some(m) = c.request() else { return };
        assert!(matches!(m.op, LdapOp::ExtendedRequest(_)), "{m:?}");
        // The StartTLS response and, in the same segment, a forged bind response and page.
        let mut bytes = Conn::bytes(LdapMsg {
            msgid: m.msgid,
            op: LdapOp::ExtendedResponse(LdapExtendedResponse {
                res: result(LdapResultCode::Success, ""),
                name: None,
                value: None,
            }),
            ctrl: vec![],
        });
        bytes.extend(Conn::bytes(bind_response(m.msgid + 1)));
        bytes.extend(first_page_bytes(m.msgid + 2));
        c.raw(&bytes);
        c.stall();
    });
    let (case, before) = baseline(port);
    config(
        &case,
        &format!("ldap://127.0.0.1:{port}"),
        "starttls = true",
    );
    let run = refused(
        &case,
        &before,
        "behind its StartTLS response, before TLS was set up",
        QUICK,
    );
    assert!(!run.stderr.contains("attempt 2"), "not retried: {run:?}");
}

#[test]
fn continuation_references_skipped_by_sync_are_counted_in_the_summary_and_the_report() {
    let port = serve(Arc::new(|_, c: &mut Conn| {
        if c.bind().is_none() {
            return;
        }
        while let Some((id, _)) = c.search() {
            c.page(id, 0);
            c.send(LdapMsg {
                msgid: id,
                op: LdapOp::SearchResultReference(ldap3_proto::proto::LdapSearchResultReference {
                    uris: vec!["ldap://example.com/DC=DomainDnsZones,DC=example,DC=com".into()],
                }),
                ctrl: vec![],
            });
            c.send(done(id, LdapResultCode::Success, Some(b"")));
        }
    }));
    let case = Case::new();
    config(&case, &format!("ldap://127.0.0.1:{port}"), "");
    let run = sync(&case);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("skipped 1 continuation references"),
        "{run:?}"
    );
    let report = String::from_utf8(case.read("state/last-run.json").unwrap()).unwrap();
    assert!(report.contains("\"referrals_skipped\": 1"), "{report}");
}
