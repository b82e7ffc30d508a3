//! The one way times are written in names and reports (UTC, from `humantime`).

use std::time::SystemTime;

/// `2026-11-27T17:30:00Z`.
pub fn rfc3339(now: SystemTime) -> String {
    humantime::format_rfc3339_seconds(now).to_string()
}

/// `20261127T173000Z`, for file names.
pub fn compact(now: SystemTime) -> String {
    rfc3339(now)
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

/// `2026-11-27`.
pub fn day(now: SystemTime) -> String {
    rfc3339(now)[..10].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_800_600);
        assert_eq!(rfc3339(t), "2026-11-27T17:30:00Z");
        assert_eq!(compact(t), "20261127T173000Z");
        assert_eq!(day(t), "2026-11-27");
    }
}
