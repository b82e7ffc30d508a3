//! Exit codes (`../shared/spec/interface.md`) and the error that carries one.

use std::fmt;

/// The documented exit codes admins script against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// Any failure not listed below.
    Failure = 1,
    /// Usage or configuration error: nothing was read or written.
    Usage = 2,
    /// The deletion guard refused: nothing uploaded, state unchanged.
    Guard = 3,
    /// The directory source failed: no MAP written, nothing uploaded.
    Source = 4,
    /// The Exchange data step failed: nothing uploaded.
    Exchange = 5,
    /// The upload failed: state unchanged, the next run retries.
    Upload = 6,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error and the exit code it ends the run with.
pub struct Failure {
    pub exit: Exit,
    pub error: anyhow::Error,
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:#}", self.exit, self.error)
    }
}

impl fmt::Display for Failure {
    /// The error and its causes on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// Attaches an exit code to any error.
pub trait OrExit<T> {
    fn or_exit(self, exit: Exit) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> OrExit<T> for Result<T, E> {
    fn or_exit(self, exit: Exit) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            exit,
            error: e.into(),
        })
    }
}

pub fn fail(exit: Exit, error: anyhow::Error) -> Failure {
    Failure { exit, error }
}
