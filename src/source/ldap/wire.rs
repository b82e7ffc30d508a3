//! One LDAP connection's messages: framed and decoded by ldap3_proto's `LdapCodec` (the
//! decoder kanidm and lldap expose to untrusted clients), over a blocking stream — with the
//! bounds a scheduled run needs against any server: a maximum message size, a deadline per
//! response message and one for the whole read.
//!
//! Memory grows only with the bytes that actually arrived: the receive buffer is extended by
//! what each read returns, never by a length a server claims. This module knows nothing of
//! searches or paging (that is the session in `mod.rs`).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ldap3_proto::proto::{LdapBindCred, LdapBindRequest, LdapMsg, LdapOp};
use ldap3_proto::LdapCodec;
use tokio_util::codec::{Decoder as _, Encoder as _};

/// Bytes asked of the stream per read.
const READ_CHUNK: usize = 256 << 10;

/// A byte stream to an LDAP server whose reads and writes can be bounded in time.
pub trait Transport: Read + Write {
    /// Bounds each following read and write (a blocking socket's timeouts).
    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()>;
}

/// The limits of one read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest LDAP message accepted (`source.max_message_mib`).
    pub max_message: usize,
    /// Time for one whole response message (`source.timeout_seconds`).
    pub per_message: Duration,
    /// When the whole read must be over (`source.read_timeout_seconds`).
    pub read_deadline: Instant,
    /// `source.read_timeout_seconds`, for messages.
    pub read_timeout: Duration,
}

/// Why no message could be read. Each ends the read.
#[derive(Debug)]
pub enum WireError {
    /// No whole message within `source.timeout_seconds`.
    MessageTimeout(Duration),
    /// The read as a whole took longer than `source.read_timeout_seconds`.
    ReadDeadline(Duration),
    /// A message larger than `source.max_message_mib`.
    TooLarge(usize),
    /// The bytes are not an LDAP message.
    Malformed(String),
    /// The server closed the connection.
    Closed,
    Io(io::Error),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::MessageTimeout(t) => write!(
                f,
                "the server did not send a whole response within {}s (source.timeout_seconds)",
                t.as_secs()
            ),
            WireError::ReadDeadline(limit) => write!(
                f,
                "the whole read took longer than {}s (source.read_timeout_seconds): a slow or \
                 stalled server, or a directory that needs a longer limit",
                limit.as_secs()
            ),
            WireError::TooLarge(max) => write!(
                f,
                "the server sent a message larger than {} MiB (source.max_message_mib; raise \
                 it only if one directory entry can really be that large)",
                max >> 20
            ),
            WireError::Malformed(what) => write!(
                f,
                "the server sent bytes that are not a valid LDAP message ({what})"
            ),
            WireError::Closed => f.write_str("the server closed the connection"),
            WireError::Io(e) => write!(f, "{e} (the connection was lost)"),
        }
    }
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Messages to and from one server.
pub struct Wire<T> {
    io: T,
    codec: LdapCodec,
    /// Received bytes not yet decoded.
    received: BytesMut,
    chunk: Vec<u8>,
    last_id: i32,
    limits: Limits,
}

impl<T: Transport> Wire<T> {
    pub fn new(io: T, limits: Limits) -> Self {
        Wire {
            io,
            // The codec refuses a message above max_message once it is whole; the receive
            // loop refuses one that is still growing past it.
            codec: LdapCodec::new(Some(limits.max_message), None),
            received: BytesMut::new(),
            chunk: vec![0; READ_CHUNK],
            last_id: 0,
            limits,
        }
    }

    /// Sends one request; returns its message id.
    pub fn send(
        &mut self,
        op: LdapOp,
        ctrl: Vec<ldap3_proto::control::LdapControl>,
    ) -> Result<i32, WireError> {
        let (id, bytes) = self.encode(op, ctrl)?;
        self.write(&bytes)?;
        Ok(id)
    }

    /// Sends a simple bind. The password is never in a buffer that is not wiped: the codec
    /// encodes a placeholder of the same length (the password is the message's last
    /// element), which is overwritten in the encoded bytes, sent, and wiped.
    pub fn send_bind(&mut self, dn: &str, password: &[u8]) -> Result<i32, WireError> {
        let op = LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: dn.to_owned(),
            cred: LdapBindCred::Simple("\0".repeat(password.len())),
        });
        let (id, mut bytes) = self.encode(op, vec![])?;
        let tail = bytes.len() - password.len();
        if bytes[tail..].iter().any(|&b| b != 0) {
            return Err(WireError::Malformed("unexpected bind encoding".into()));
        }
        bytes[tail..].copy_from_slice(password);
        let sent = self.write(&bytes);
        zeroize::Zeroize::zeroize(bytes.as_mut());
        sent.map(|()| id)
    }

    /// The next message id and the request encoded with it.
    fn encode(
        &mut self,
        op: LdapOp,
        ctrl: Vec<ldap3_proto::control::LdapControl>,
    ) -> Result<(i32, BytesMut), WireError> {
        self.last_id += 1;
        let msgid = self.last_id;
        let mut bytes = BytesMut::new();
        self.codec
            .encode(LdapMsg { msgid, op, ctrl }, &mut bytes)
            .map_err(|e| WireError::Malformed(format!("cannot encode a request: {e}")))?;
        Ok((msgid, bytes))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        let deadline = self.deadline(Instant::now() + self.limits.per_message);
        self.bound(deadline)?;
        self.io
            .write_all(bytes)
            .and_then(|()| self.io.flush())
            .map_err(|e| self.io_error(e, deadline))
    }

    /// The next message, whole, within the per-message deadline and the read's deadline.
    pub fn receive(&mut self) -> Result<LdapMsg, WireError> {
        let deadline = self.deadline(Instant::now() + self.limits.per_message);
        loop {
            if !self.received.is_empty() {
                match self.codec.decode(&mut self.received) {
                    Ok(Some(message)) => return Ok(message),
                    Ok(None) => {}
                    Err(e) if e.kind() == io::ErrorKind::OutOfMemory => {
                        return Err(WireError::TooLarge(self.limits.max_message))
                    }
                    Err(e) => return Err(WireError::Malformed(e.to_string())),
                }
            }
            if self.received.len() > self.limits.max_message {
                return Err(WireError::TooLarge(self.limits.max_message));
            }
            self.bound(deadline)?;
            match self.io.read(&mut self.chunk) {
                Ok(0) => return Err(WireError::Closed),
                Ok(n) => self.received.extend_from_slice(&self.chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e, deadline)),
            }
        }
    }

    /// Bytes received but not yet decoded (after StartTLS there must be none).
    pub fn pending(&self) -> usize {
        self.received.len()
    }

    /// The earlier of `deadline` and the read's deadline.
    fn deadline(&self, deadline: Instant) -> Instant {
        deadline.min(self.limits.read_deadline)
    }

    /// Sets the stream's timeout to what is left until `deadline`.
    fn bound(&mut self, deadline: Instant) -> Result<(), WireError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.expired(deadline));
        }
        self.io.set_timeout(left).map_err(WireError::Io)
    }

    fn expired(&self, deadline: Instant) -> WireError {
        if deadline >= self.limits.read_deadline {
            WireError::ReadDeadline(self.limits.read_timeout)
        } else {
            WireError::MessageTimeout(self.limits.per_message)
        }
    }

    fn io_error(&self, e: io::Error, deadline: Instant) -> WireError {
        if is_timeout(&e) {
            self.expired(deadline)
        } else {
            WireError::Io(e)
        }
    }

    /// Continues on another stream made from this one (TLS after StartTLS), with the same
    /// message ids and limits. Bytes received but not decoded would be lost: the caller
    /// refuses to upgrade while there are any (see [`pending`](Self::pending)).
    pub fn upgrade<E>(self, f: impl FnOnce(T) -> Result<T, E>) -> Result<Wire<T>, E> {
        Ok(Wire {
            io: f(self.io)?,
            codec: self.codec,
            received: self.received,
            chunk: self.chunk,
            last_id: self.last_id,
            limits: self.limits,
        })
    }

    pub fn transport(&self) -> &T {
        &self.io
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.io
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::source::ldap::scripted::Script;

    fn script(reads: Vec<Vec<u8>>) -> Script {
        Script {
            reads: reads.into(),
            written: Vec::new(),
        }
    }

    fn limits(max_message: usize) -> Limits {
        Limits {
            max_message,
            per_message: Duration::from_secs(5),
            read_deadline: Instant::now() + Duration::from_secs(60),
            read_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_claimed_length_allocates_nothing_until_bytes_arrive() {
        // SEQUENCE, length 2^28, then only a few bytes: the buffer holds what arrived.
        let head = vec![0x30, 0x84, 0x10, 0x00, 0x00, 0x00, 0x02, 0x01, 0x01];
        let mut wire = Wire::new(script(vec![head]), limits(64 << 20));
        assert!(matches!(wire.receive(), Err(WireError::Closed)));
        assert!(
            wire.received.capacity() < 1 << 20,
            "{}",
            wire.received.capacity()
        );
    }

    #[test]
    fn a_message_above_the_limit_is_refused_while_it_grows() {
        let mut head = vec![0x30, 0x84, 0x01, 0x00, 0x00, 0x00];
        head.extend(std::iter::repeat_n(0x04, 3 << 20));
        let mut wire = Wire::new(script(vec![head]), limits(1 << 20));
        assert!(matches!(wire.receive(), Err(WireError::TooLarge(_))));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let mut wire = Wire::new(script(vec![vec![0x30, 0x03, 0x02, 0x01]]), limits(1 << 20));
        assert!(wire.receive().is_err());
        let mut wire = Wire::new(script(vec![vec![0x04, 0x01, 0x00]]), limits(1 << 20));
        assert!(matches!(wire.receive(), Err(WireError::Malformed(_))));
    }

    #[test]
    fn the_bind_carries_the_password_where_the_placeholder_was() {
        let mut wire = Wire::new(script(vec![]), limits(1 << 20));
        wire.send_bind("CN=svc", "pässwörd".as_bytes()).unwrap();
        let mut sent = BytesMut::from(&wire.io.written[..]);
        let decoded = LdapCodec::default().decode(&mut sent).unwrap().unwrap();
        match decoded.op {
            LdapOp::BindRequest(LdapBindRequest {
                dn,
                cred: LdapBindCred::Simple(pw),
                ..
            }) => {
                assert_eq!(dn, "CN=svc");
                assert_eq!(pw, "pässwörd");
            }
            other => panic!("{other:?}"),
        }
    }
}
