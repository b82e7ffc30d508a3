//! The commands' pipelines: source → recipients → rules → MAP file → guard → upload → state.
//!
//! Each step either succeeds or ends the run with its documented exit code, before anything
//! is shipped or recorded: the order of the steps is the fail-closed guarantee.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{anyhow, Context as _};
use serde::Serialize;

use crate::config::Config;
use crate::error::{fail, Exit, Failure, OrExit};
use crate::guard::{self, Verdict};
use crate::logging::say;
use crate::mapfile::write::{write_checked, WriteError};
use crate::mapfile::{MapDiff, MapFile};
use crate::model::{Keep, Recipient};
use crate::report::{log_findings, summarize, summarize_exchange};
use crate::rules::{BuildReport, Built, MapBuilder};
use crate::source::{self, SourceStats};
use crate::state::StateDir;
use crate::{exchange, upload};

/// How many individual warnings of one kind are logged; the rest are counted.

#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    pub dry_run: bool,
    pub force: bool,
}

/// The configuration a run works with, and the Exchange data, obtained first.
pub struct Prepared {
    /// With `domains = "exchange"`, the accepted domains are filled in from the Exchange data.
    pub config: Config,
    /// One per `config.exchange` block, in its order.
    pub exchange: Vec<exchange::Obtained>,
}

/// Obtains the Exchange data (exit 5 on failure) and resolves the accepted domains.
pub fn prepare(config: &Config) -> Result<Prepared, Failure> {
    let mut config = config.clone();
    let state = StateDir::new(&config.state_dir);
    let mut obtained = Vec::new();
    for ec in &config.exchange {
        let o = exchange::obtain(ec, &state, SystemTime::now())
            .with_context(|| match &ec.applies_to {
                Some(s) => format!("the Exchange data of source {s}"),
                None => "the Exchange data".into(),
            })
            .context("nothing is shipped while the Exchange data is missing")
            .or_exit(Exit::Exchange)?;
        obtained.push(o);
    }
    if config.domains_from_exchange {
        config.domains.clear();
        for o in &obtained {
            config
                .domains
                .extend(exchange::accepted_domains(&o.data).or_exit(Exit::Exchange)?);
        }
    }
    Ok(Prepared {
        config,
        exchange: obtained,
    })
}

/// What a build produced.
pub struct Build {
    pub built: Built,
    /// What was read; with several sources, their sum, each of them in `sources`.
    pub stats: SourceStats,
    pub exchange: Vec<exchange::MergeReport>,
}

/// Reads the source, merges the Exchange data and builds the map (no output written).
/// `details`: also read what only `explain` and `check` show (objectGUID, memberOf, members).
pub fn build(prepared: &Prepared, details: bool) -> Result<Build, Failure> {
    let config = &prepared.config;
    let mut builder = MapBuilder::new(&config.customer_id, &config.domains, &config.rules);
    if !details {
        builder = builder.lean();
    }
    let keep = Keep {
        attrs: config.rules.attributes(),
        member_of: details || config.rules.uses_membership(),
        details,
        groups: Default::default(),
    };
    let request = source::Request {
        attributes: keep.request(!config.exchange.is_empty()),
        groups: config.rules.groups(),
    };
    let phase = Instant::now();
    let names: Vec<Option<Arc<String>>> = match config.sources.as_slice() {
        [_] => vec![None],
        several => several
            .iter()
            .map(|s| Some(Arc::new(s.name.clone())))
            .collect(),
    };
    let per_source = source::read_all(&config.sources, &request, &mut |i, entry| {
        let mut r = Recipient::from_entry(&entry, &keep);
        r.source = names[i].clone();
        builder.add(r)
    })
    .or_exit(Exit::Source)?;
    let stats = SourceStats::combined(&config.sources, &per_source);
    tracing::debug!(
        "read {} entries in {:.3}s",
        stats.entries,
        phase.elapsed().as_secs_f64()
    );
    let merged = prepared
        .exchange
        .iter()
        .zip(&config.exchange)
        .map(|(o, ec)| {
            let mut report = exchange::merge(builder.recipients_mut(), &o.data, ec);
            report.origin = o.origin.clone();
            report.fallback = o.fallback.clone();
            report.source = ec.applies_to.clone();
            report
        })
        .collect();
    let phase = Instant::now();
    let built = builder.finish();
    tracing::debug!("applied the rules in {:.3}s", phase.elapsed().as_secs_f64());
    Ok(Build {
        built,
        stats,
        exchange: merged,
    })
}

/// The JSON run report (`state_dir/last-run.json`).
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub dirsync_version: &'static str,
    pub started: String,
    pub finished: String,
    pub seconds: f64,
    pub dry_run: bool,
    pub forced: bool,
    pub exit_code: u8,
    pub outcome: String,
    pub error: Option<String>,
    pub source: Option<SourceStats>,
    pub build: Option<BuildReport>,
    pub output: Option<OutputReport>,
    pub guard: Option<Verdict>,
    pub upload: Option<upload::Uploaded>,
    pub exchange: Option<exchange::MergeReport>,
    /// With several Exchange blocks: each (then `exchange` is empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exchanges: Vec<exchange::MergeReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputReport {
    pub path: PathBuf,
    pub bytes: usize,
    pub sha256: String,
    pub records: BTreeMap<&'static str, usize>,
}

/// `dirsync sync`.
pub fn sync(config: &Config, options: SyncOptions) -> Result<(), Failure> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let state = StateDir::new(&config.state_dir);
    let _lock = state.lock().or_exit(Exit::Failure)?;
    let mut report = RunReport {
        dirsync_version: env!("CARGO_PKG_VERSION"),
        started: crate::stamp::rfc3339(started),
        finished: String::new(),
        seconds: 0.0,
        dry_run: options.dry_run,
        forced: options.force,
        exit_code: 0,
        outcome: String::new(),
        error: None,
        source: None,
        build: None,
        output: None,
        guard: None,
        upload: None,
        exchange: None,
        exchanges: Vec::new(),
    };
    let result = sync_steps(config, options, &state, &mut report);
    report.finished = crate::stamp::rfc3339(SystemTime::now());
    report.seconds = clock.elapsed().as_secs_f64();
    match &result {
        Ok(outcome) => report.outcome = outcome.clone(),
        Err(f) => {
            report.exit_code = f.exit.code();
            report.outcome = "failed".into();
            report.error = Some(f.to_string());
        }
    }
    if !options.dry_run {
        let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
        if let Err(e) = state.write_report(&json) {
            tracing::warn!("{e:#}");
        }
    }
    result.map(|_| ())
}

fn sync_steps(
    config: &Config,
    options: SyncOptions,
    state: &StateDir,
    report: &mut RunReport,
) -> Result<String, Failure> {
    // Read the baseline first: a damaged one must stop the run before anything is written.
    let baseline = state.baseline().or_exit(Exit::Failure)?;

    let prepared = prepare(config)?;
    let config = &prepared.config;
    let Build {
        built,
        stats,
        exchange: merged,
    } = build(&prepared, false)?;
    // From here on only the map and the report are needed: free the recipients first.
    let built = built.into_map_and_report();
    say(summarize(&built.report, &stats).trim_end());
    for m in &merged {
        say(&summarize_exchange(m));
    }
    log_findings(&built.report);
    report.source = Some(stats);
    report.build = Some(built.report.clone());
    if merged.len() == 1 {
        report.exchange = merged.into_iter().next();
    } else {
        report.exchanges = merged;
    }

    let written = write_guarded(
        config,
        options,
        state,
        baseline.as_ref(),
        &built.map,
        report,
    )?;
    // What is shipped and recorded is the file as written and checked.
    drop(built);
    if options.dry_run {
        say("dry run: nothing uploaded, state unchanged");
        return Ok("dry run".into());
    }
    ship(&prepared, state, &written, report)
}

/// The guard's verdict first, then the map written: to `[output] path` when it passed (or
/// with `--force`); a refused map never reaches that path (in local-only mode that file is the
/// deliverable): it is kept for review in state_dir, and the run ends with exit 3.
fn write_guarded(
    config: &Config,
    options: SyncOptions,
    state: &StateDir,
    baseline: Option<&MapFile>,
    map: &MapFile,
    report: &mut RunReport,
) -> Result<OutputReport, Failure> {
    let counts = &report
        .build
        .as_ref()
        .map(|b| b.addresses_per_source.clone())
        .unwrap_or_default();
    let previous = state.source_counts().or_exit(Exit::Failure)?;
    let verdict = guard::evaluate(baseline, map, (&previous, counts), &config.guard);
    let refused = !verdict.passes() && !options.force;
    let path = if refused {
        state.path(crate::state::REFUSED)
    } else {
        config.output.path.clone()
    };
    let output = write_map(config, map, &path)?;
    report.output = Some(output.clone());
    if !refused {
        say(&format!(
            "MAP file written: {} ({} addresses)",
            path.display(),
            map.dir_count()
        ));
    }
    say(&verdict.describe());
    report.guard = Some(verdict.clone());
    if let Some(old) = baseline {
        let diff = MapDiff::between(old, map);
        if !diff.is_empty() {
            say(&format!(
                "changes since the last upload:\n{}",
                diff.summary().trim_end()
            ));
        }
    }
    if refused {
        return Err(fail(
            Exit::Guard,
            anyhow!(
                "the deletion guard refused this map: {} is unchanged, nothing uploaded, state \
                 unchanged; the refused map is kept for review in {} (compare: dirsync diff {} \
                 {}); if the removals are intended, run once with --force",
                config.output.path.display(),
                path.display(),
                state.path(crate::state::BASELINE).display(),
                path.display()
            ),
        ));
    }
    if !verdict.passes() {
        tracing::warn!(
            "the deletion guard refused this map, but --force overrides it for this run"
        );
    }
    // A map that passed replaces an earlier refused one: it is no longer what needs review.
    let _ = std::fs::remove_file(state.path(crate::state::REFUSED));
    Ok(output)
}

/// Ships the written file (read back and compared by hash), then records it as the guard's
/// baseline, keeps the Exchange data for a fallback and archives it if configured.
fn ship(
    prepared: &Prepared,
    state: &StateDir,
    written: &OutputReport,
    report: &mut RunReport,
) -> Result<String, Failure> {
    let config = &prepared.config;
    let path = &written.path;
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read back {}", path.display()))
        .or_exit(Exit::Failure)?;
    if sha256_hex(&bytes) != written.sha256 {
        return Err(fail(
            Exit::Failure,
            anyhow!(
                "{} changed after it was written (another process?); nothing uploaded",
                path.display()
            ),
        ));
    }
    let outcome = match &config.upload {
        Some(upload_config) => {
            let uploaded = upload::upload(
                upload_config,
                &config.customer_id,
                &bytes,
                SystemTime::now(),
            )
            .context("nothing was recorded; the next run uploads again")
            .or_exit(Exit::Upload)?;
            say(&format!(
                "uploaded {} bytes to {}:{}{} (host key {})",
                uploaded.bytes,
                upload_config.host,
                upload_config.port,
                uploaded.remote_path,
                uploaded.host_key
            ));
            report.upload = Some(uploaded);
            "uploaded"
        }
        None => "written (local only)",
    };
    state.store_baseline(&bytes).or_exit(Exit::Failure)?;
    let counts = report
        .build
        .as_ref()
        .map(|b| b.addresses_per_source.clone())
        .unwrap_or_default();
    state.store_source_counts(&counts).or_exit(Exit::Failure)?;
    let fresh = prepared.exchange.iter().zip(&prepared.config.exchange);
    for (o, ec) in fresh.filter(|(o, _)| o.fallback.is_none()) {
        if let Err(e) = crate::fsutil::write_atomic(&state.path(&ec.last_good), &o.bytes) {
            tracing::warn!("cannot keep the Exchange data for a fallback: {e}");
        }
    }
    if config.archive_days > 0 {
        if let Err(e) = state.archive(&bytes, config.archive_days, SystemTime::now()) {
            tracing::warn!("{e:#}");
        }
    }
    if config.upload.is_none() {
        say(&format!(
            "local-only mode (no [upload]): state recorded in {}",
            config.state_dir.display()
        ));
    }
    Ok(outcome.into())
}

/// The checks of map-format.md that need no rendering.
fn check_map(config: &Config, map: &MapFile) -> Result<(), Failure> {
    checks_passed(map_problems(config, map, true))
}

/// The problems `verify` finds (`values`: also the characters of each value).
fn map_problems(config: &Config, map: &MapFile, values: bool) -> Vec<String> {
    let accepted = config
        .domains
        .iter()
        .map(|d| d.as_str().to_owned())
        .collect();
    let allow_empty = &config.guard.allow_empty_domains;
    if values {
        map.verify(&accepted, allow_empty)
    } else {
        map.verify_structure(&accepted, allow_empty)
    }
}

fn checks_passed(problems: Vec<String>) -> Result<(), Failure> {
    if problems.is_empty() {
        return Ok(());
    }
    Err(checks_failed(problems))
}

fn checks_failed(problems: Vec<String>) -> Failure {
    fail(
        Exit::Failure,
        anyhow!(
            "the MAP file failed its checks, nothing written: {} (a configured domain \
             without addresses: remove it from `domains` or list it in \
             guard.allow_empty_domains)",
            problems.join("; ")
        ),
    )
}

fn round_trip_failure(e: String) -> Failure {
    fail(
        Exit::Failure,
        anyhow!("internal error: the MAP file does not parse back into its records ({e}); nothing written"),
    )
}

/// Renders the map in memory and runs every check of map-format.md on it, including the
/// round trip (for `check`, which writes nothing).
pub fn checked_render(config: &Config, map: &MapFile) -> Result<String, Failure> {
    check_map(config, map)?;
    let bytes = map.render(config.output.line_ending);
    map.check_round_trip(&bytes).map_err(round_trip_failure)?;
    Ok(bytes)
}

/// Writes the map to `path`, checked (see `mapfile::write`), after removing what interrupted
/// runs left in its folder.
pub fn write_map(config: &Config, map: &MapFile, path: &Path) -> Result<OutputReport, Failure> {
    if let Some(folder) = path.parent() {
        let removed = crate::fsutil::remove_temporaries(folder);
        if removed > 0 {
            tracing::warn!(
                "removed {removed} half-written temporary file(s) of an interrupted run from {}",
                folder.display()
            );
        }
    }
    let problems = |values| map_problems(config, map, values);
    let written = match write_checked(map, config.output.line_ending, path, problems) {
        Ok(w) => w,
        Err(WriteError::Problems(p)) => return Err(checks_failed(p)),
        Err(WriteError::RoundTrip(e)) => return Err(round_trip_failure(e)),
        Err(WriteError::Io(e)) => {
            return Err(fail(
                Exit::Failure,
                anyhow!(e).context(format!(
                    "cannot write the MAP file {}; check [output] path and that the folder is \
                     writable",
                    path.display()
                )),
            ))
        }
    };
    let mut records = BTreeMap::new();
    for r in map.domains.values().flatten() {
        *records.entry(r.tag().trim_end_matches(':')).or_default() += 1;
    }
    records.insert("DOMAIN", map.domains.len());
    Ok(OutputReport {
        path: path.to_path_buf(),
        bytes: written.bytes,
        sha256: written.sha256,
        records,
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
