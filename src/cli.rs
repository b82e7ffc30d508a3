//! The command line (`../shared/spec/interface.md`): names admins script against.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dirsync",
    version,
    about = "Sync a directory (LDAPS or LDIF) to a Retarus Email Security MAP file, fail-closed",
    after_help = "Examples:
  dirsync init dirsync.toml                       write the commented example config
  dirsync check --config dirsync.toml             test every connection, change nothing
  dirsync sync --config dirsync.toml --dry-run    build the map, show the guard's verdict and the diff
  dirsync sync --config dirsync.toml              the scheduled job
  dirsync explain --config dirsync.toml info@example.com
  dirsync diff state/last-uploaded.map out/retarus.map

Exit codes: 0 success, 1 failure, 2 usage or configuration error, 3 deletion guard refused,
4 directory source failed, 5 Exchange data step failed, 6 upload failed.
Logging: -v / -vv, or DIRSYNC_LOG (e.g. DIRSYNC_LOG=debug)."
)]
pub struct Cli {
    /// More log output (-v info, -vv debug)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read the directory, build the MAP file, check it against the last upload, upload it
    #[command(after_help = "Examples:
  dirsync sync --config dirsync.toml --dry-run
  dirsync sync --config dirsync.toml
  dirsync sync --config dirsync.toml --force     # accept removals the guard refused, once")]
    Sync {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Build and write the MAP file, print the guard's verdict and the diff; no upload,
        /// no state change
        #[arg(long)]
        dry_run: bool,
        /// Let this one run pass a deletion-guard refusal (logged)
        #[arg(long)]
        force: bool,
    },
    /// Test the configuration and every connection; change nothing
    #[command(after_help = "Example:\n  dirsync check --config dirsync.toml")]
    Check {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Show why ADDRESS is (not) in the map, and the MAP lines it gets
    #[command(after_help = "Example:\n  dirsync explain --config dirsync.toml j.doe@example.com")]
    Explain {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        address: String,
    },
    /// Per-domain differences between two MAP files
    #[command(after_help = "Example:\n  dirsync diff state/last-uploaded.map out/retarus.map")]
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// Only the counts per domain, not every changed record
        #[arg(long)]
        summary: bool,
    },
    /// Write the commented example configuration
    #[command(after_help = "Example:\n  dirsync init C:\\dirsync\\dirsync.toml")]
    Init {
        #[arg(default_value = "dirsync.toml")]
        path: PathBuf,
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
}
