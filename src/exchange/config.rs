//! The `[exchange]` section: where the Exchange Online data comes from (the bundled script,
//! run by dirsync, or a file another task writes) and how old it may be, validated here.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::problems::Problems;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExchange {
    script: Option<PathBuf>,
    input: Option<PathBuf>,
    interpreter: Option<PathBuf>,
    parameters: Option<toml::Table>,
    timeout_seconds: Option<i64>,
    max_age_hours: Option<f64>,
    fallback_max_age_hours: Option<f64>,
    add_exchange_only: Option<bool>,
    emit_group_owners: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    pub source: ExchangeSource,
    /// Data older than this (by its `collectedAt`) is stale: the step fails.
    pub max_age: Duration,
    /// When the step fails: use the last good data if it is younger than this.
    pub fallback_max_age: Option<Duration>,
    /// Exchange recipients that are not in the directory are added (default: yes).
    pub add_exchange_only: bool,
}

#[derive(Debug, Clone)]
pub enum ExchangeSource {
    Script {
        script: PathBuf,
        interpreter: Option<PathBuf>,
        parameters: Vec<(String, String)>,
        timeout: Duration,
    },
    Input(PathBuf),
}

/// Validates `[exchange]`; also returns `emit_group_owners`.
pub fn validate(e: RawExchange, pr: &mut Problems) -> Option<(ExchangeConfig, bool)> {
    let max_age = hours(pr, "exchange.max_age_hours", e.max_age_hours, 4.0);
    let fallback_max_age = e
        .fallback_max_age_hours
        .map(|h| hours(pr, "exchange.fallback_max_age_hours", Some(h), 24.0));
    let source = match (e.script, e.input) {
        (Some(_), Some(_)) => {
            pr.problem("exchange.input", "set either script (dirsync runs it) or input (a file another task writes), not both");
            None
        }
        (None, None) => {
            pr.problem("exchange.script", "missing; set script = 'scripts/Export-DirSyncExchangeData.ps1' or input = 'exchange.json'");
            None
        }
        (None, Some(input)) => {
            for (key, set) in [
                ("interpreter", e.interpreter.is_some()),
                ("parameters", e.parameters.is_some()),
                ("timeout_seconds", e.timeout_seconds.is_some()),
            ] {
                if set {
                    pr.problem(
                        &format!("exchange.{key}"),
                        "applies only to script; remove it",
                    );
                }
            }
            Some(ExchangeSource::Input(pr.path("exchange.input", input)))
        }
        (Some(script), None) => Some(ExchangeSource::Script {
            script: pr.path("exchange.script", script),
            interpreter: e.interpreter,
            parameters: parameters(e.parameters.unwrap_or_default(), pr),
            timeout: pr.seconds("exchange.timeout_seconds", e.timeout_seconds, 1800),
        }),
    };
    Some((
        ExchangeConfig {
            source: source?,
            max_age,
            fallback_max_age,
            add_exchange_only: e.add_exchange_only.unwrap_or(true),
        },
        e.emit_group_owners.unwrap_or(false),
    ))
}

fn hours(pr: &mut Problems, key: &str, value: Option<f64>, default: f64) -> Duration {
    match value {
        None => Duration::from_secs_f64(default * 3600.0),
        Some(h) if h > 0.0 && h <= 24.0 * 365.0 => Duration::from_secs_f64(h * 3600.0),
        Some(h) => {
            pr.problem(key, format!("{h}; expected a number of hours above 0"));
            Duration::from_secs_f64(default * 3600.0)
        }
    }
}

/// The script's parameters as PowerShell gets them; secrets are refused.
fn parameters(table: toml::Table, pr: &mut Problems) -> Vec<(String, String)> {
    let mut parameters = Vec::new();
    for (name, value) in table {
        let key = format!("exchange.parameters.{name}");
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric())
            || name.eq_ignore_ascii_case("OutputPath")
        {
            pr.problem(&key, "expected a parameter name of the script (letters and digits; OutputPath is set by dirsync)");
            continue;
        }
        if name.to_ascii_lowercase().contains("password")
            && !name.to_ascii_lowercase().ends_with("file")
        {
            pr.problem(&key, "secrets are never passed on the command line: use CertificatePasswordFile (a file only the service account can read)");
            continue;
        }
        match value {
            toml::Value::String(s) => parameters.push((name, s)),
            toml::Value::Integer(i) => parameters.push((name, i.to_string())),
            toml::Value::Boolean(true) => parameters.push((name, "$true".into())),
            toml::Value::Boolean(false) => parameters.push((name, "$false".into())),
            toml::Value::Array(items) if items.iter().all(toml::Value::is_str) => {
                let joined: Vec<&str> = items.iter().filter_map(toml::Value::as_str).collect();
                parameters.push((name, joined.join(",")));
            }
            _ => pr.problem(
                &key,
                "expected a string, a number, true/false or a list of strings",
            ),
        }
    }
    parameters
}
