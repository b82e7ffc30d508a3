//! Local state in `state_dir`: the last shipped MAP file (the deletion guard's baseline), the
//! run report, and the lock that keeps two scheduled runs from overlapping.
//!
//! The baseline changes only after a confirmed upload (or, without `[upload]`, after the MAP
//! file was written in local-only mode): a failed run leaves it exactly as it was. The run
//! report `last-run.json` is not state: every run that is not a dry run writes it, failures
//! included, so monitoring can read the outcome.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::fsutil::write_atomic;
use crate::mapfile::{self, MapFile};

pub const BASELINE: &str = "last-uploaded.map";
pub const REPORT: &str = "last-run.json";
pub const LOCK: &str = "dirsync.lock";
/// The last map the deletion guard refused, kept for review (removed by the next run that passes).
pub const REFUSED: &str = "refused.map";
/// With several sources: the addresses each had in the last shipped map (for the guard).
pub const SOURCES: &str = "last-sources.json";

pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: &Path) -> Self {
        StateDir {
            dir: dir.to_owned(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The last shipped map, or `None` before the first run. A baseline that exists but
    /// cannot be read is an error, never "no baseline": that would disarm the guard.
    pub fn baseline(&self) -> anyhow::Result<Option<MapFile>> {
        let path = self.path(BASELINE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot read the guard's baseline {}", path.display())
                })
            }
        };
        mapfile::parse(BufReader::new(file))
            .map(Some)
            .with_context(|| {
                format!(
                    "the guard's baseline {} is damaged; restore it, or delete it to start over \
                 (the next run is then treated as a first run)",
                    path.display()
                )
            })
    }

    /// The addresses per source of the last shipped map; empty before the first run with
    /// several sources. A file that exists but cannot be read is an error (as the baseline).
    pub fn source_counts(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let path = self.path(SOURCES);
        match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is damaged; restore it, or delete it (the guard then checks the total only, once)",
                    path.display()
                )
            }),
        }
    }

    /// Records the addresses per source of the map that was shipped (none: removes the file).
    pub fn store_source_counts(&self, counts: &BTreeMap<String, u64>) -> anyhow::Result<()> {
        let path = self.path(SOURCES);
        if counts.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).with_context(|| format!("cannot remove {}", path.display()))
                }
                _ => Ok(()),
            };
        }
        let json = serde_json::to_vec_pretty(counts).expect("counts serialize");
        write_atomic(&path, &json).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Records the map that was shipped.
    pub fn store_baseline(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let path = self.path(BASELINE);
        write_atomic(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Keeps a copy of a shipped map in `archive/` and removes copies older than `days`.
    pub fn archive(
        &self,
        bytes: &[u8],
        days: u32,
        now: std::time::SystemTime,
    ) -> anyhow::Result<()> {
        let dir = self.dir.join("archive");
        let stamp = crate::stamp::compact(now);
        let path = dir.join(format!("{stamp}.map"));
        write_atomic(&path, bytes)
            .with_context(|| format!("cannot archive to {}", path.display()))?;
        let keep = std::time::Duration::from_secs(u64::from(days) * 86_400);
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > keep);
            if old && entry.path().extension().is_some_and(|e| e == "map") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    pub fn write_report(&self, json: &[u8]) -> anyhow::Result<()> {
        let path = self.path(REPORT);
        write_atomic(&path, json).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Takes the run lock, or fails naming the process that holds it.
    pub fn lock(&self) -> anyhow::Result<RunLock> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create state_dir {}", self.dir.display()))?;
        let path = self.path(LOCK);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                anyhow::bail!(
                    "another dirsync run holds the lock {} ({}); this run does nothing",
                    path.display(),
                    holder.trim()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        if !previous.trim().is_empty() {
            tracing::warn!(
                "took over the lock {} left by a run that did not finish ({})",
                path.display(),
                previous.trim()
            );
        }
        let stamp = format!(
            "pid {} since {}",
            std::process::id(),
            crate::stamp::rfc3339(std::time::SystemTime::now())
        );
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(stamp.as_bytes())?;
        file.sync_all()?;
        Ok(RunLock { file })
    }
}

/// Held while a run works; released (and emptied, so the next run sees a clean end) on drop.
/// The operating system releases it if the process dies.
pub struct RunLock {
    file: File,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_a_stale_one_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let held = state.lock().unwrap();
        let err = state.lock().err().unwrap().to_string();
        assert!(err.contains("another dirsync run holds the lock"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        // A lock file with content but no OS lock: a run that died.
        std::fs::write(state.path(LOCK), "pid 999999 since yesterday").unwrap();
        let _again = state.lock().unwrap();
    }

    #[test]
    fn damaged_baseline_is_an_error_not_a_first_run() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        assert!(state.baseline().unwrap().is_none());
        std::fs::write(state.path(BASELINE), "1|a.com\tDOMAIN:\ta.com\n").unwrap();
        let err = format!("{:#}", state.baseline().unwrap_err());
        assert!(
            err.contains("is damaged") && err.contains("does not end with ++++"),
            "{err}"
        );
    }
}
