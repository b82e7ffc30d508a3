//! Shipping the MAP file to Retarus over SFTP.
//!
//! The server's host key is checked against `known_hosts` or a pinned `SHA256:` fingerprint
//! before anything is sent — never trust on first use. The file is uploaded under a
//! temporary name and renamed when its size is verified, so Retarus never sees a partial file
//! under the final name. Transient failures are retried with backoff; a host key mismatch or
//! a refused login is not. This module does not decide whether to upload (that is `guard`).

pub mod config;
mod known_hosts;
mod sftp;

pub use config::{HostKeyCheck, SftpAuth, UploadConfig};

use std::time::SystemTime;

/// What was uploaded where.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Uploaded {
    pub remote_path: String,
    pub bytes: usize,
    pub host_key: String,
    pub attempts: u32,
}

/// Uploads `bytes` as the configured file, retrying transient failures.
pub fn upload(
    config: &UploadConfig,
    customer_id: &str,
    bytes: &[u8],
    now: SystemTime,
) -> anyhow::Result<Uploaded> {
    let file_name = render_template(&config.file_name, customer_id, now);
    let attempts = config.retries + 1;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = sftp::connect(config).and_then(|conn| {
            sftp::put(&conn, config, &file_name, bytes).map(|path| (path, conn.host_key))
        });
        match result {
            Ok((path, host_key)) => {
                return Ok(Uploaded {
                    remote_path: path.display().to_string(),
                    bytes: bytes.len(),
                    host_key,
                    attempts: attempt,
                })
            }
            Err(f) if f.transient && attempt < attempts => {
                let wait = crate::net::backoff(attempt);
                tracing::warn!(
                    "upload attempt {attempt} of {attempts} failed: {}; retrying in {}",
                    f.message,
                    crate::net::describe_wait(wait)
                );
                std::thread::sleep(wait);
            }
            Err(f) => {
                let tries = if f.transient {
                    format!(" (after {attempt} attempts)")
                } else {
                    String::new()
                };
                anyhow::bail!(
                    "upload to {}:{} failed{tries}: {}",
                    config.host,
                    config.port,
                    f.message
                );
            }
        }
    }
}

/// `dirsync check` for the SFTP side: host key, login, a probe file.
pub fn check(config: &UploadConfig) -> anyhow::Result<String> {
    let conn = sftp::connect(config).map_err(|f| anyhow::anyhow!(f.message))?;
    let writable = sftp::probe(&conn, config).map_err(|f| anyhow::anyhow!(f.message))?;
    Ok(format!(
        "{}@{}:{}: host key {} matches; login succeeded; {writable}",
        config.user, config.host, config.port, conn.host_key
    ))
}

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
    let compact = crate::stamp::compact(now);
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
