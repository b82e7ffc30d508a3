//! The network plumbing every remote step shares: a TCP connect that tries each address of a
//! host in turn within a timeout, and the one backoff schedule of retried steps (LDAP connect,
//! SFTP upload).

use std::io;
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// Connects to `host:port`, each of its addresses in turn, within `timeout` each. A timeout
/// is reported as `TimedOut` naming `timeout_key`, the config key that sets it.
pub fn connect(
    host: &str,
    port: u16,
    timeout: Duration,
    timeout_key: &str,
) -> io::Result<TcpStream> {
    let mut last = None;
    for address in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(s) => return Ok(s),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                last = Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no TCP connection within {}s ({timeout_key})",
                        timeout.as_secs()
                    ),
                ))
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
    }))
}

/// The wait before attempt `attempt + 1`: 2 s, 4 s, 8 s … at most 30 s. The test suite
/// shortens the unit (a second) with `DIRSYNC_TEST_BACKOFF_MS`, so that it waits for
/// nothing; an admin has no reason to set it.
pub fn backoff(attempt: u32) -> Duration {
    let unit_ms = std::env::var("DIRSYNC_TEST_BACKOFF_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1000);
    Duration::from_millis(2u64.saturating_pow(attempt).min(30) * unit_ms)
}

/// A wait for messages: "2s", "500ms".
pub fn describe_wait(wait: Duration) -> String {
    humantime::format_duration(wait).to_string()
}
