//! A whole LDAP session — bind, paged search, ranged reads — against bytes a "server" sent,
//! given up front. The coverage-guided fuzz target (`fuzz/`) and the test that replays its
//! corpus (`tests/fuzz.rs`) drive the session's response handling through it: whatever the
//! bytes, the session must end with entries or an error, never a panic or a hang.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::wire::{Limits, Transport, Wire};
use crate::secret::{Secret, SecretSource};
use crate::source::config::{LdapConfig, SearchBase};

/// Server bytes handed out read by read, as scripted; what the client writes is kept.
pub(crate) struct Script {
    pub reads: VecDeque<Vec<u8>>,
    pub written: Vec<u8>,
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(mut next) = self.reads.pop_front() else {
            return Ok(0);
        };
        let n = next.len().min(buf.len());
        buf[..n].copy_from_slice(&next[..n]);
        if n < next.len() {
            self.reads.push_front(next.split_off(n));
        }
        Ok(n)
    }
}

impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Script {
    fn set_timeout(&mut self, _: Duration) -> io::Result<()> {
        Ok(())
    }
}

/// What a scripted session ended with.
#[derive(Debug)]
pub struct Outcome {
    pub entries: u64,
    pub result: Result<(), String>,
}

/// Runs a session against `server`: its first byte sets the size of each read (1–256 bytes,
/// so messages arrive split at every point), the rest is what the server sends.
pub fn session(server: &[u8]) -> Outcome {
    let (chunk, bytes) = match server.split_first() {
        Some((c, rest)) => (usize::from(*c) + 1, rest),
        None => (1, server),
    };
    let reads = bytes.chunks(chunk).map(<[u8]>::to_vec).collect();
    let config = LdapConfig {
        url: "ldap://scripted".into(),
        bind_dn: "CN=reader,DC=example,DC=com".into(),
        password: SecretSource::Env("DIRSYNC_SCRIPTED_UNUSED".into()),
        ca_file: None,
        tls_fingerprint_sha256: None,
        bases: vec![SearchBase {
            base_dn: "OU=Users,DC=example,DC=com".into(),
            filter: "(objectClass=*)".into(),
        }],
        page_size: 10,
        starttls: false,
        allow_plaintext: true,
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(30),
        max_message: 1 << 20,
    };
    let limits = Limits {
        max_message: config.max_message,
        per_message: config.timeout,
        read_deadline: Instant::now() + config.read_timeout,
        read_timeout: config.read_timeout,
    };
    let mut wire = Wire::new(
        Script {
            reads,
            written: Vec::new(),
        },
        limits,
    );
    let mut entries = 0;
    let result = super::read_over(
        &mut wire,
        None,
        &config,
        &Secret::new("scripted".into()),
        &["mail".to_string(), "member".to_string()],
        &mut |_| entries += 1,
    );
    Outcome {
        entries,
        result: result.map(|_| ()).map_err(|e| format!("{e:#}")),
    }
}

/// Well-formed conversations to start fuzzing from: the bytes a server sends for a paged
/// read, a ranged attribute, a continuation reference and a notice of disconnection.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use server::{bind_ok, done, entry, notice, reference, user};
    let group = "CN=g,OU=Users,DC=example,DC=com";
    let paged = [
        bind_ok(1),
        user(2, 0),
        user(2, 1),
        done(2, Some(b"c1")),
        user(3, 2),
        done(3, Some(b"")),
    ]
    .concat();
    let ranged = [
        bind_ok(1),
        entry(2, group, &[("member;range=0-1", &["CN=a", "CN=b"])]),
        done(2, Some(b"")),
        entry(3, group, &[("member;range=2-*", &["CN=c"])]),
        done(3, None),
    ]
    .concat();
    let referral = [
        bind_ok(1),
        user(2, 0),
        reference(2),
        done(2, Some(b"c1")),
        user(3, 1),
        notice(),
    ]
    .concat();
    vec![
        ("paged", [&[255u8][..], &paged].concat()),
        ("paged-bytewise", [&[0u8][..], &paged].concat()),
        ("ranged", [&[17u8][..], &ranged].concat()),
        ("referral-notice", [&[63u8][..], &referral].concat()),
    ]
}

/// Server messages, encoded by ldap3_proto.
mod server {
    use ldap3_proto::control::LdapControl;
    use ldap3_proto::proto::{
        LdapBindResponse, LdapExtendedResponse, LdapMsg, LdapOp, LdapPartialAttribute, LdapResult,
        LdapResultCode, LdapSearchResultEntry, LdapSearchResultReference,
    };
    use tokio_util::codec::Encoder as _;

    fn result(code: LdapResultCode) -> LdapResult {
        LdapResult {
            code,
            matcheddn: String::new(),
            message: String::new(),
            referral: vec![],
        }
    }

    fn encode(msgid: i32, op: LdapOp, ctrl: Vec<LdapControl>) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        ldap3_proto::LdapCodec::default()
            .encode(LdapMsg { msgid, op, ctrl }, &mut out)
            .expect("encodable");
        out.to_vec()
    }

    pub fn bind_ok(id: i32) -> Vec<u8> {
        let res = result(LdapResultCode::Success);
        encode(
            id,
            LdapOp::BindResponse(LdapBindResponse {
                res,
                saslcreds: None,
            }),
            vec![],
        )
    }

    pub fn entry(id: i32, dn: &str, attrs: &[(&str, &[&str])]) -> Vec<u8> {
        let attributes = attrs
            .iter()
            .map(|(name, vals)| LdapPartialAttribute {
                atype: (*name).into(),
                vals: vals.iter().map(|v| v.as_bytes().to_vec()).collect(),
            })
            .collect();
        let dn = dn.into();
        encode(
            id,
            LdapOp::SearchResultEntry(LdapSearchResultEntry { dn, attributes }),
            vec![],
        )
    }

    pub fn user(id: i32, n: u32) -> Vec<u8> {
        let mail = format!("u{n}@example.com");
        let dn = format!("CN=u{n},OU=Users,DC=example,DC=com");
        entry(id, &dn, &[("objectClass", &["user"]), ("mail", &[&mail])])
    }

    /// `SearchResultDone` (success), with the paged-results control when `cookie` is given.
    pub fn done(id: i32, cookie: Option<&[u8]>) -> Vec<u8> {
        let ctrl = cookie
            .map(|c| {
                vec![LdapControl::SimplePagedResults {
                    size: 0,
                    cookie: c.to_vec(),
                }]
            })
            .unwrap_or_default();
        encode(
            id,
            LdapOp::SearchResultDone(result(LdapResultCode::Success)),
            ctrl,
        )
    }

    pub fn reference(id: i32) -> Vec<u8> {
        let uris = vec!["ldap://example.com/DC=DomainDnsZones,DC=example,DC=com".into()];
        encode(
            id,
            LdapOp::SearchResultReference(LdapSearchResultReference { uris }),
            vec![],
        )
    }

    /// The notice of disconnection (RFC 4511 §4.4.1).
    pub fn notice() -> Vec<u8> {
        let op = LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: result(LdapResultCode::Unavailable),
            name: Some("1.3.6.1.4.1.1466.20036".into()),
            value: None,
        });
        encode(0, op, vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_are_whole_conversations() {
        let outcome = |name| {
            let (_, bytes) = seeds().into_iter().find(|(n, _)| *n == name).unwrap();
            session(&bytes)
        };
        let paged = outcome("paged");
        assert_eq!(
            (paged.entries, paged.result.clone()),
            (3, Ok(())),
            "{paged:?}"
        );
        let bytewise = outcome("paged-bytewise");
        assert_eq!(
            (bytewise.entries, bytewise.result.clone()),
            (3, Ok(())),
            "{bytewise:?}"
        );
        let ranged = outcome("ranged");
        assert_eq!(
            (ranged.entries, ranged.result.clone()),
            (1, Ok(())),
            "{ranged:?}"
        );
        let notice = outcome("referral-notice");
        assert!(notice
            .result
            .unwrap_err()
            .contains("the server ended the connection"));
        // Cut anywhere, a conversation is an error, never entries taken as complete.
        let (_, paged) = seeds().remove(0);
        for cut in 1..paged.len() - 1 {
            let outcome = session(&paged[..cut]);
            assert!(outcome.result.is_err(), "cut at {cut}: {outcome:?}");
        }
    }
}
