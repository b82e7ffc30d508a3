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
    if let Some(m) = &exchange {
        text.push_str(&format!("{}; ", run::summarize_exchange(m)));
    }
    if let Some(cert) = &stats.server_certificate {
        text.push_str(&format!("TLS certificate: {cert}; bind succeeded; "));
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

/// Proves a folder is writable by creating and removing a probe file in it.
fn writable(dir: &std::path::Path) -> anyhow::Result<String> {
    let dir = if dir.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        dir
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    tempfile::Builder::new()
        .prefix(".dirsync-probe-")
        .tempfile_in(dir)
        .with_context(|| format!("{} is not writable", dir.display()))?;
    Ok(format!("{} is writable", dir.display()))
}

fn check_state(config: &Config) -> anyhow::Result<String> {
    writable(&config.state_dir)?;
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
