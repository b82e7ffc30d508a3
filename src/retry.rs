//! The one backoff schedule of every retried network step (LDAP connect, SFTP upload).

use std::time::Duration;

/// The wait before attempt `attempt + 1`: 2 s, 4 s, 8 s … at most 30 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(attempt).min(30))
}
