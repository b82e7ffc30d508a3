//! Shipping the MAP file to Retarus over SFTP.
//!
//! Not implemented yet: this version writes the MAP file locally only. The file-name template
//! is here because the config already validates it.

use std::time::SystemTime;

/// Placeholders a remote file name may use.
const PLACEHOLDERS: [&str; 3] = ["{customer_id}", "{date}", "{timestamp}"];

/// Checks a file-name template: only known `{placeholders}`.
pub fn check_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("{template:?}: unclosed {{"))?;
        let placeholder = &rest[start..start + end + 1];
        if !PLACEHOLDERS.contains(&placeholder) {
            return Err(format!(
                "{template:?}: unknown placeholder {placeholder}; expected one of {}",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &rest[start + end + 1..];
    }
    Ok(())
}

/// Fills a file-name template: `{customer_id}`, `{date}` (UTC, `YYYYMMDD`) and `{timestamp}`
/// (UTC, `YYYYMMDDTHHMMSSZ`).
pub fn render_template(template: &str, customer_id: &str, now: SystemTime) -> String {
    let iso = humantime::format_rfc3339_seconds(now).to_string(); // 2026-11-27T17:30:00Z
    let compact: String = iso.chars().filter(|c| *c != '-' && *c != ':').collect();
    template
        .replace("{customer_id}", customer_id)
        .replace("{date}", &compact[..8])
        .replace("{timestamp}", &compact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_placeholders() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_800_000);
        assert_eq!(
            render_template("{customer_id}-{date}-{timestamp}.map", "12345", t),
            "12345-20261127-20261127T172000Z.map"
        );
        assert!(check_template("{customer_id}.map").is_ok());
        assert!(check_template("{customer}.map")
            .unwrap_err()
            .contains("unknown placeholder {customer}"));
        assert!(check_template("{date.map")
            .unwrap_err()
            .contains("unclosed"));
    }
}
