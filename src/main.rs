//! The `dirsync` binary: parses the command line and maps failures to exit codes.

use std::io::BufReader;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use clap::Parser as _;

use dirsync::cli::{Cli, Command};
use dirsync::config::{self, Config};
use dirsync::error::{fail, Exit, Failure, OrExit};
use dirsync::{check, fsutil, mapfile, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("dirsync: error: {f}");
            ExitCode::from(f.exit.code())
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DIRSYNC_LOG").unwrap_or_else(|_| {
        // rustls-platform-verifier logs each refused certificate; dirsync's own message
        // says more, once.
        tracing_subscriber::EnvFilter::new(format!("{default},rustls_platform_verifier=off"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn load(path: &Path) -> Result<Config, Failure> {
    Config::load(path).or_exit(Exit::Usage)
}

fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Sync {
            config,
            dry_run,
            force,
        } => run::sync(&load(&config)?, run::SyncOptions { dry_run, force }),
        Command::Check { config } => check::check(&load(&config)?),
        Command::Explain { config, address } => {
            let config = load(&config)?;
            let built = run::build(&run::prepare(&config)?)?.built;
            for line in built.explain(&address) {
                println!("{line}");
            }
            Ok(())
        }
        Command::Diff { old, new, summary } => {
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
