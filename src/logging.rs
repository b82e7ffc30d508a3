//! Logging: stderr for whoever watches, a daily log file with a retention for scheduled runs,
//! and — on Windows — failures and guard refusals in the Application event log.
//!
//! The run summary goes to stderr and, through the `summary` target, into the log file, so the
//! file alone tells what each run did. Secrets never reach a log line: they are [`Secret`]s,
//! which print as `***`.
//!
//! [`Secret`]: crate::secret::Secret

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use tracing_subscriber::filter::{filter_fn, EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

/// The target of summary lines (already printed on stderr, so only the file shows them).
pub const SUMMARY: &str = "summary";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub dir: PathBuf,
    /// Days of log files kept (today's included).
    pub days: u32,
    pub level: LevelFilter,
}

/// Prints a summary line on stderr and writes it to the log file.
pub fn say(line: &str) {
    eprintln!("{line}");
    tracing::info!(target: SUMMARY, "{line}");
}

/// `dirsync-YYYY-MM-DD.log` for a day.
fn file_name(day: &str) -> String {
    format!("dirsync-{day}.log")
}

fn today(now: SystemTime) -> String {
    crate::stamp::day(now)
}

/// Removes log files older than `days` days (by the date in their name); returns their names.
pub fn prune(dir: &Path, days: u32, now: SystemTime) -> Vec<String> {
    let oldest_kept =
        today(now - std::time::Duration::from_secs(u64::from(days.saturating_sub(1)) * 86_400));
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(day) = name
            .strip_prefix("dirsync-")
            .and_then(|n| n.strip_suffix(".log"))
        else {
            continue;
        };
        let is_date = day.len() == 10
            && day.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if is_date && *day < *oldest_kept.as_str() && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(name);
        }
    }
    removed.sort();
    removed
}

/// Sets up logging: stderr at warn (-v info, -vv debug, or `DIRSYNC_LOG`), and the log file
/// when configured. A log file that cannot be opened is reported and the run goes on.
pub fn init(verbose: u8, file: Option<&LogConfig>) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // rustls-platform-verifier logs each refused certificate and ldap3_proto each message it
    // cannot decode; dirsync's own message says more.
    let stderr_filter = EnvFilter::try_from_env("DIRSYNC_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default},rustls_platform_verifier=off,ldap3_proto=off,ldap3_lber=off"
        ))
    });
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(filter_fn(|m| m.target() != SUMMARY))
        .with_filter(stderr_filter);
    let mut problem = None;
    let file_layer = file.and_then(|cfg| {
        let now = SystemTime::now();
        if let Err(e) = std::fs::create_dir_all(&cfg.dir) {
            problem = Some(format!("cannot create log_dir {}: {e}", cfg.dir.display()));
            return None;
        }
        let removed = prune(&cfg.dir, cfg.days, now);
        let path = cfg.dir.join(file_name(&today(now)));
        match OpenOptions::new().create(true).append(true).open(&path) {
            Ok(f) => Some((removed, cfg.level, f)),
            Err(e) => {
                problem = Some(format!("cannot open the log file {}: {e}", path.display()));
                None
            }
        }
    });
    let (removed, layer) = match file_layer {
        Some((removed, level, f)) => (
            removed,
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(Mutex::new(f))
                    .with_ansi(false)
                    .with_target(false)
                    .with_filter(filter_fn(|m| {
                        !m.target().starts_with("rustls_platform_verifier")
                            && !m.target().starts_with("ldap3_")
                    }))
                    .with_filter(level),
            ),
        ),
        None => (Vec::new(), None),
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(layer)
        .try_init();
    if let Some(p) = problem {
        tracing::warn!("{p}; logging to stderr only");
    }
    if !removed.is_empty() {
        tracing::info!(
            "removed {} log files older than log_days: {}",
            removed.len(),
            removed.join(", ")
        );
    }
}

/// Event log entries for failures (errors) and guard refusals (warnings).
#[derive(Debug, Clone, Copy)]
pub enum Event {
    Error,
    Warning,
}

/// Writes to the Windows Application event log, source "dirsync" (registered by
/// `scripts/Register-DirSyncTask.ps1`). Does nothing elsewhere.
#[cfg(windows)]
pub fn event_log(kind: Event, message: &str) {
    use windows_sys::Win32::System::EventLog::{
        DeregisterEventSource, RegisterEventSourceW, ReportEventW, EVENTLOG_ERROR_TYPE,
        EVENTLOG_WARNING_TYPE,
    };
    let wide = |s: &str| {
        s.encode_utf16()
            .chain(std::iter::once(0))
            .collect::<Vec<u16>>()
    };
    let source = wide("dirsync");
    let text = wide(message);
    unsafe {
        let handle = RegisterEventSourceW(std::ptr::null(), source.as_ptr());
        if handle.is_null() {
            return;
        }
        let strings = [text.as_ptr()];
        let kind = match kind {
            Event::Error => EVENTLOG_ERROR_TYPE,
            Event::Warning => EVENTLOG_WARNING_TYPE,
        };
        ReportEventW(
            handle,
            kind,
            0,
            1,
            std::ptr::null_mut(),
            1,
            0,
            strings.as_ptr(),
            std::ptr::null(),
        );
        DeregisterEventSource(handle);
    }
}

#[cfg(not(windows))]
pub fn event_log(_kind: Event, _message: &str) {}

/// Validates the logging keys (`log_dir`, `log_days`, `log_level`); no `log_dir`: no log file.
pub fn validate(
    dir: Option<std::path::PathBuf>,
    days: Option<i64>,
    level: Option<String>,
    pr: &mut crate::problems::Problems,
) -> Option<LogConfig> {
    let days = pr.count("log_days", days, 30, 1..=3650) as u32;
    let level = match level.as_deref().unwrap_or("info") {
        "error" => LevelFilter::ERROR,
        "warn" => LevelFilter::WARN,
        "info" => LevelFilter::INFO,
        "debug" => LevelFilter::DEBUG,
        other => {
            pr.problem(
                "log_level",
                format!("{other:?}; expected \"error\", \"warn\", \"info\" or \"debug\""),
            );
            LevelFilter::INFO
        }
    };
    dir.map(|d| LogConfig {
        dir: pr.path("log_dir", d),
        days,
        level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_last_days_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "dirsync-2026-11-20.log",
            "dirsync-2026-11-25.log",
            "dirsync-2026-11-26.log",
            "dirsync-2026-11-27.log",
            "dirsync-notes.log",
            "other.txt",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let now = humantime::parse_rfc3339("2026-11-27T12:00:00Z").unwrap();
        assert_eq!(prune(dir.path(), 3, now), ["dirsync-2026-11-20.log"]);
        assert_eq!(
            prune(dir.path(), 1, now),
            ["dirsync-2026-11-25.log", "dirsync-2026-11-26.log"]
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["dirsync-2026-11-27.log", "dirsync-notes.log", "other.txt"]
        );
    }
}
