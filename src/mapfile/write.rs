//! Writing a MAP file to disk, checked: streamed into a temporary file in the target folder,
//! every line checked to parse back into its record as it is rendered, then the map's checks
//! run; only when all passed is the file renamed over the old one (the old file, or the whole
//! new one — never a part). What is written is hashed, so it can be compared before an upload.

use std::io::Write as _;
use std::path::Path;

use sha2::Digest as _;

use super::{LineEnding, MapFile, RenderError};
use crate::fsutil::write_atomic_with;

/// What was written.
#[derive(Debug)]
pub struct Written {
    pub bytes: usize,
    pub sha256: String,
}

/// Why nothing was written.
#[derive(Debug)]
pub enum WriteError {
    Io(std::io::Error),
    /// A line did not parse back into its record (a bug: values are checked first).
    RoundTrip(String),
    /// The map's checks failed.
    Problems(Vec<String>),
}

impl From<std::io::Error> for WriteError {
    fn from(e: std::io::Error) -> Self {
        WriteError::Io(e)
    }
}

/// Counts and hashes what passes through.
struct Tee<W> {
    inner: W,
    sha: sha2::Sha256,
    bytes: usize,
}

impl<W: std::io::Write> std::io::Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `map` to `path` as described above. `problems(values)` lists what is wrong with
/// the map (`values`: the characters of every value too; asked when the rendering stopped at
/// a bad value, so that all of them are listed).
pub fn write_checked(
    map: &MapFile,
    eol: LineEnding,
    path: &Path,
    problems: impl Fn(bool) -> Vec<String>,
) -> Result<Written, WriteError> {
    let mut written = None;
    write_atomic_with(path, |file| -> Result<(), WriteError> {
        let mut out = std::io::BufWriter::with_capacity(
            1 << 20,
            Tee {
                inner: &mut *file,
                sha: sha2::Sha256::new(),
                bytes: 0,
            },
        );
        let found = match map.render_checked_to(eol, &mut out) {
            Ok(()) => problems(false),
            Err(RenderError::Value(_)) => problems(true),
            Err(RenderError::RoundTrip(e)) => return Err(WriteError::RoundTrip(e)),
            Err(RenderError::Io(e)) => return Err(WriteError::Io(e)),
        };
        if !found.is_empty() {
            return Err(WriteError::Problems(found));
        }
        out.flush()?;
        let tee = out.into_inner().map_err(|e| e.into_error())?;
        written = Some(Written {
            bytes: tee.bytes,
            sha256: hex::encode(tee.sha.finalize()),
        });
        Ok(())
    })?;
    written.ok_or_else(|| WriteError::Io(std::io::Error::other("nothing was written")))
}
