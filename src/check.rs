//! `dirsync check`: test the configuration and every connection, change nothing.
//!
//! Each step prints one `ok` or `FAIL` line; all steps run even after a failure, so one
//! check shows everything to fix. The exit code is that of the first failed step.

use anyhow::{anyhow, Context as _};

use crate::config::Config;
use crate::error::{fail, Exit, Failure};
use crate::run;
use crate::state::StateDir;

pub fn check(config: &Config) -> Result<(), Failure> {
    println!("ok    config {}", config.file.display());
    let mut first: Option<Failure> = None;
    let mut step = |name: &str, result: Result<String, Failure>| match result {
        Ok(detail) => println!("ok    {name}: {detail}"),
        Err(f) => {
            println!("FAIL  {name}: {f}");
            first.get_or_insert(f);
        }
    };

    step("source", check_source(config));
    step(
        "output",
        writable(
            &config
                .output
                .path
                .parent()
                .map(|p| p.to_owned())
                .unwrap_or_default(),
        )
        .map_err(|e| fail(Exit::Failure, e)),
    );
    step(
        "state",
        check_state(config).map_err(|e| fail(Exit::Failure, e)),
    );
    if let Some(log) = &config.log {
        step(
            "log",
            writable(&log.dir).map_err(|e| fail(Exit::Failure, e)),
        );
    }
    match &config.upload {
        None => println!("ok    upload: none configured (local-only mode)"),
        Some(upload_config) => step(
            "upload",
            crate::upload::check(upload_config).map_err(|e| fail(Exit::Upload, e)),
        ),
    }
    match first {
        None => Ok(()),
        Some(f) => Err(fail(f.exit, anyhow!("check failed: {f}"))),
    }
}

fn check_source(config: &Config) -> Result<String, Failure> {
    let prepared = run::prepare(config)?;
    let config = &prepared.config;
    let run::Build {
        built,
        stats,
        exchange,
    } = run::build(&prepared, true)?;
    let bytes = run::checked_render(config, &built.map)?;
    let kinds: Vec<String> = built
        .report
        .objects
        .iter()
        .map(|(k, n)| format!("{} {n}", k.name()))
        .collect();
    let mut text = String::new();
    for m in &exchange {
        text.push_str(&format!("{}; ", crate::report::summarize_exchange(m)));
    }
    if stats.sources.is_empty() {
        text.push_str(&connection(&stats));
    }
    for (name, each) in &stats.sources {
        let written = built
            .report
            .addresses_per_source
            .get(name)
            .copied()
            .unwrap_or(0);
        text.push_str(&format!(
            "source {name}: {}{} entries from {}, {written} addresses; ",
            connection(each),
            each.entries,
            each.origin
        ));
    }
    text.push_str(&format!(
        "{} entries from {} ({}); a sync would write {} addresses ({} bytes)",
        stats.entries,
        stats.origin,
        kinds.join(", "),
        built.map.dir_count(),
        bytes.len()
    ));
    Ok(text)
}

/// How one source was reached: its certificate or sign-in, its bases, skipped references.
fn connection(stats: &crate::source::SourceStats) -> String {
    let mut text = String::new();
    if let Some(cert) = &stats.server_certificate {
        text.push_str(&format!("TLS certificate: {cert}; bind succeeded; "));
    }
    if let Some(how) = &stats.signed_in {
        text.push_str(&format!("{how}; "));
    }
    for (base, n) in &stats.per_base {
        text.push_str(&format!("{n} entries in {base}; "));
    }
    if stats.referrals_skipped > 0 {
        text.push_str(&format!(
            "{} continuation references skipped; ",
            stats.referrals_skipped
        ));
    }
    text
}

/// Whether a sync could write in `dir`, changing nothing: an existing folder is proven
/// writable by a probe file that is removed at once; a missing one is reported as what a sync
/// would create, below its nearest existing parent (which must be writable).
fn writable(dir: &std::path::Path) -> anyhow::Result<String> {
    let dir = if dir.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        dir
    };
    let probe = |folder: &std::path::Path| {
        tempfile::Builder::new()
            .prefix(".dirsync-probe-")
            .tempfile_in(folder)
            .map(drop)
            .with_context(|| format!("{} is not writable", folder.display()))
    };
    if dir.is_dir() {
        probe(dir)?;
        return Ok(format!("{} is writable", dir.display()));
    }
    let parent = dir
        .ancestors()
        .skip(1)
        .find(|a| a.is_dir() || a.as_os_str().is_empty())
        .map(|a| {
            if a.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                a
            }
        })
        .ok_or_else(|| anyhow!("no part of {} exists", dir.display()))?;
    probe(parent).with_context(|| format!("a sync would have to create {}", dir.display()))?;
    Ok(format!(
        "{} does not exist yet; a sync will create it (in {}, which is writable)",
        dir.display(),
        parent.display()
    ))
}

fn check_state(config: &Config) -> anyhow::Result<String> {
    let folder = writable(&config.state_dir)?;
    if !config.state_dir.is_dir() {
        return Ok(format!(
            "{folder}; no previous upload (the next sync is a first run)"
        ));
    }
    let baseline = StateDir::new(&config.state_dir).baseline()?;
    Ok(match baseline {
        Some(m) => format!(
            "{}: last upload had {} addresses",
            config.state_dir.display(),
            m.dir_count()
        ),
        None => format!(
            "{}: no previous upload (the next sync is a first run)",
            config.state_dir.display()
        ),
    })
}
