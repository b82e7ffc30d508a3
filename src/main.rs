//! The `dirsync` binary: parses the command line and maps failures to exit codes.

use std::io::BufReader;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use clap::Parser as _;

use dirsync::cli::{Cli, Command};
use dirsync::config::{self, Config};
use dirsync::error::{fail, Exit, Failure, OrExit};
use dirsync::logging::{self, Event};
use dirsync::{check, fsutil, mapfile, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command, cli.verbose) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let line = format!("dirsync: error: {f}");
            eprintln!("{line}");
            tracing::error!(target: logging::SUMMARY, "{line} (exit {})", f.exit.code());
            let kind = if f.exit == Exit::Guard {
                Event::Warning
            } else {
                Event::Error
            };
            logging::event_log(kind, &line);
            ExitCode::from(f.exit.code())
        }
    }
}

/// Loads the config and starts logging, with its log file when `log_file` (`check` writes
/// nothing, not even a log file).
fn load(path: &Path, verbose: u8, log_file: bool) -> Result<Config, Failure> {
    match Config::load(path) {
        Ok(c) => {
            logging::init(verbose, c.log.as_ref().filter(|_| log_file));
            Ok(c)
        }
        Err(e) => {
            logging::init(verbose, None);
            Err(fail(Exit::Usage, e.into()))
        }
    }
}

fn dispatch(command: Command, verbose: u8) -> Result<(), Failure> {
    match command {
        Command::Sync {
            config,
            dry_run,
            force,
        } => run::sync(
            &load(&config, verbose, true)?,
            run::SyncOptions { dry_run, force },
        ),
        Command::Check { config } => check::check(&load(&config, verbose, false)?),
        Command::Explain { config, address } => {
            let config = load(&config, verbose, true)?;
            let built = run::build(&run::prepare(&config)?, true)?.built;
            for line in built.explain(&address) {
                println!("{line}");
            }
            Ok(())
        }
        Command::Diff { old, new, summary } => {
            logging::init(verbose, None);
            let read = |p: &Path| -> Result<mapfile::MapFile, Failure> {
                let file = std::fs::File::open(p)
                    .with_context(|| format!("cannot open {}", p.display()))
                    .or_exit(Exit::Usage)?;
                mapfile::parse(BufReader::new(file))
                    .with_context(|| format!("{} is not a valid MAP file", p.display()))
                    .or_exit(Exit::Failure)
            };
            let diff = mapfile::MapDiff::between(&read(&old)?, &read(&new)?);
            let (added, removed) = (diff.dirs_added(), diff.dirs_removed());
            print!(
                "{}",
                if summary {
                    diff.summary()
                } else {
                    diff.details()
                }
            );
            println!("total: +{added} -{removed} addresses");
            Ok(())
        }
        Command::Init { path, force } => {
            logging::init(verbose, None);
            if path.exists() && !force {
                return Err(fail(
                    Exit::Usage,
                    anyhow!("{} exists; use --force to overwrite it", path.display()),
                ));
            }
            fsutil::write_atomic(&path, config::EXAMPLE.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))
                .or_exit(Exit::Failure)?;
            eprintln!(
                "wrote {}: edit it, then run `dirsync check --config {}`",
                path.display(),
                path.display()
            );
            Ok(())
        }
    }
}
