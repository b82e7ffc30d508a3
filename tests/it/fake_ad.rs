//! A scripted LDAP server (ldap3_proto) for what neither slapd nor Samba produces: attribute
//! values returned in ranges (`member;range=0-1499`, as AD does above 1500 values), AD's
//! silent cap of the page size, a server that ignores the paged-results control, and the
//! notice of disconnection (RFC 4511 §4.4.1) a server sends before it drops a connection.
//! Plain LDAP on 127.0.0.1; runs on its own thread.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindResponse, LdapExtendedResponse, LdapMsg, LdapOp, LdapPartialAttribute, LdapResult,
    LdapResultCode, LdapSearchResultEntry, LdapSearchResultReference, LdapSearchScope,
};
use ldap3_proto::LdapCodec;
use tokio_util::codec::{FramedRead, FramedWrite};

/// AD returns at most this many values of one attribute per read.
const MAX_VALUES: usize = 1500;

pub struct FakeEntry {
    pub dn: String,
    pub attrs: Vec<(String, Vec<String>)>,
}

pub struct FakeAd {
    pub entries: Vec<FakeEntry>,
    /// The server's MaxPageSize: larger requested pages are silently cut to this.
    pub max_page: usize,
    /// Answer a paged search with everything at once and no control (an old server).
    pub ignore_paging: bool,
    /// After this many entries of a search: a notice of disconnection, then the connection
    /// is closed.
    pub disconnect_after: Option<usize>,
}

impl FakeAd {
    pub fn new(entries: Vec<FakeEntry>, max_page: usize) -> Self {
        FakeAd {
            entries,
            max_page,
            ignore_paging: false,
            disconnect_after: None,
        }
    }
}

/// Starts the server; returns its port.
pub fn start(ad: FakeAd) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let ad = Arc::new(ad);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, ad.clone()));
            }
        });
    });
    port
}

fn done(msgid: i32, ctrl: Vec<LdapControl>) -> LdapMsg {
    LdapMsg {
        msgid,
        op: LdapOp::SearchResultDone(LdapResult {
            code: LdapResultCode::Success,
            matcheddn: String::new(),
            message: String::new(),
            referral: vec![],
        }),
        ctrl,
    }
}

/// The attribute as AD returns it: whole, or its first range.
fn plain_or_first_range(name: &str, values: &[String]) -> LdapPartialAttribute {
    let vals: Vec<Vec<u8>> = values
        .iter()
        .take(MAX_VALUES)
        .map(|v| v.clone().into_bytes())
        .collect();
    let atype = if values.len() > MAX_VALUES {
        format!("{name};range=0-{}", MAX_VALUES - 1)
    } else {
        name.to_owned()
    };
    LdapPartialAttribute { atype, vals }
}

/// `member;range=1500-*` → the next range, its end `*` when it is the last.
fn range(name: &str, values: &[String], start: usize) -> LdapPartialAttribute {
    let end = (start + MAX_VALUES).min(values.len());
    let last = end == values.len();
    LdapPartialAttribute {
        atype: if last {
            format!("{name};range={start}-*")
        } else {
            format!("{name};range={start}-{}", end - 1)
        },
        vals: values[start.min(end)..end]
            .iter()
            .map(|v| v.clone().into_bytes())
            .collect(),
    }
}

async fn serve(socket: tokio::net::TcpStream, ad: Arc<FakeAd>) {
    // Each response is written as it is made: without this, Nagle's algorithm holds a short
    // one back until the client's delayed ACK (40 ms per ranged read).
    let _ = socket.set_nodelay(true);
    let (r, w) = tokio::io::split(socket);
    let mut reqs = FramedRead::new(r, LdapCodec::default());
    let mut resp = FramedWrite::new(w, LdapCodec::default());
    while let Some(Ok(msg)) = reqs.next().await {
        let mut out = Vec::new();
        match msg.op {
            LdapOp::BindRequest(_) => out.push(LdapMsg {
                msgid: msg.msgid,
                op: LdapOp::BindResponse(LdapBindResponse {
                    res: LdapResult {
                        code: LdapResultCode::Success,
                        matcheddn: String::new(),
                        message: String::new(),
                        referral: vec![],
                    },
                    saslcreds: None,
                }),
                ctrl: vec![],
            }),
            LdapOp::UnbindRequest => return,
            LdapOp::SearchRequest(sr) if sr.scope == LdapSearchScope::Base => {
                // A ranged re-read: attrs = ["member;range=1500-*"].
                if let Some(entry) = ad
                    .entries
                    .iter()
                    .find(|e| e.dn.eq_ignore_ascii_case(&sr.base))
                {
                    let mut attributes = Vec::new();
                    for want in &sr.attrs {
                        let Some((name, spec)) = want.split_once(";range=") else {
                            continue;
                        };
                        let start: usize = spec.split('-').next().unwrap().parse().unwrap();
                        if let Some((_, values)) = entry
                            .attrs
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case(name))
                        {
                            attributes.push(range(name, values, start));
                        }
                    }
                    out.push(LdapMsg {
                        msgid: msg.msgid,
                        op: LdapOp::SearchResultEntry(LdapSearchResultEntry {
                            dn: entry.dn.clone(),
                            attributes,
                        }),
                        ctrl: vec![],
                    });
                }
                out.push(done(msg.msgid, vec![]));
            }
            LdapOp::SearchRequest(_) => {
                let (size, cookie) = msg
                    .ctrl
                    .iter()
                    .find_map(|c| match c {
                        LdapControl::SimplePagedResults { size, cookie } => {
                            Some((*size as usize, cookie.clone()))
                        }
                        _ => None,
                    })
                    .filter(|_| !ad.ignore_paging)
                    .unwrap_or((usize::MAX, vec![]));
                let start: usize = String::from_utf8(cookie)
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let limit = if ad.ignore_paging {
                    usize::MAX
                } else {
                    size.min(ad.max_page)
                };
                let end = start.saturating_add(limit).min(ad.entries.len());
                if start == 0 {
                    out.push(LdapMsg {
                        msgid: msg.msgid,
                        op: LdapOp::SearchResultReference(LdapSearchResultReference {
                            uris: vec![
                                "ldap://example.test/CN=Configuration,DC=example,DC=test".into()
                            ],
                        }),
                        ctrl: vec![],
                    });
                }
                for (n, e) in ad.entries[start..end].iter().enumerate() {
                    if ad.disconnect_after == Some(start + n) {
                        let notice = LdapMsg {
                            msgid: 0,
                            op: LdapOp::ExtendedResponse(LdapExtendedResponse {
                                res: LdapResult {
                                    code: LdapResultCode::Unavailable,
                                    matcheddn: String::new(),
                                    message: "the server is shutting down".into(),
                                    referral: vec![],
                                },
                                name: Some("1.3.6.1.4.1.1466.20036".into()),
                                value: None,
                            }),
                            ctrl: vec![],
                        };
                        out.push(notice);
                        for m in out {
                            let _ = resp.send(m).await;
                        }
                        return;
                    }
                    let attributes = e
                        .attrs
                        .iter()
                        .map(|(n, v)| plain_or_first_range(n, v))
                        .collect();
                    out.push(LdapMsg {
                        msgid: msg.msgid,
                        op: LdapOp::SearchResultEntry(LdapSearchResultEntry {
                            dn: e.dn.clone(),
                            attributes,
                        }),
                        ctrl: vec![],
                    });
                }
                let next = if end < ad.entries.len() {
                    end.to_string().into_bytes()
                } else {
                    vec![]
                };
                let control = LdapControl::SimplePagedResults {
                    size: 0,
                    cookie: next,
                };
                out.push(done(
                    msg.msgid,
                    if ad.ignore_paging {
                        vec![]
                    } else {
                        vec![control]
                    },
                ));
            }
            _ => return,
        }
        for m in out {
            if resp.send(m).await.is_err() {
                return;
            }
        }
    }
}
