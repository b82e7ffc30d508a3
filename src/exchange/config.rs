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
    /// The source (`[[sources]]` name) whose tenant this Exchange data belongs to.
    source: Option<String>,
}

/// `[exchange]` (one table) or `[[exchange]]` (a list, one per tenant).
#[derive(Debug)]
pub enum RawExchanges {
    One(RawExchange),
    Many(Vec<RawExchange>),
}

impl<'de> Deserialize<'de> for RawExchanges {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RawExchanges;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an [exchange] table or a list of [[exchange]] tables")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                RawExchange::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawExchanges::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(RawExchanges::Many)
            }
        }
        d.deserialize_any(Visit)
    }
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
    /// With several sources: the source whose objects this data is merged into.
    pub applies_to: Option<String>,
    /// The file in state_dir that keeps the last good data (for a fallback).
    pub last_good: String,
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

/// Validates `[exchange]` or `[[exchange]]` against the source names: with several sources
/// each block names its source (once); with one, `source` may name it. Also returns whether
/// any block has `emit_group_owners`.
pub fn validate_all(
    raw: RawExchanges,
    sources: &[&str],
    pr: &mut Problems,
) -> (Vec<ExchangeConfig>, bool) {
    let list: Vec<(String, RawExchange)> = match raw {
        RawExchanges::One(e) => vec![("exchange".into(), e)],
        RawExchanges::Many(list) => list
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("exchange[{i}]"), e))
            .collect(),
    };
    let several = sources.len() > 1;
    let mut out: Vec<ExchangeConfig> = Vec::new();
    let mut owners = false;
    for (at, mut e) in list {
        let applies_to = match e.source.take() {
            Some(name)
                if !sources.is_empty()
                    && !sources.iter().any(|s| s.eq_ignore_ascii_case(&name)) =>
            {
                pr.problem(
                    &format!("{at}.source"),
                    format!(
                        "{name:?} is not a configured source; the sources are: {}",
                        sources.join(", ")
                    ),
                );
                None
            }
            Some(name) => Some(name),
            None if several => {
                pr.problem(&format!("{at}.source"), format!("missing; with several sources, name the one whose tenant this Exchange data belongs to ({})", sources.join(", ")));
                None
            }
            None => None,
        };
        let applies_to = applies_to.filter(|_| several);
        if out.iter().any(|o| o.applies_to == applies_to) {
            pr.problem(
                &format!("{at}.source"),
                "another Exchange block already applies to this source: one per tenant",
            );
        }
        if let Some((mut config, emit)) = validate(e, &at, pr) {
            if let Some(name) = &applies_to {
                config.last_good = format!("exchange-{name}-last-good.json");
            }
            config.applies_to = applies_to;
            owners |= emit;
            out.push(config);
        }
    }
    (out, owners)
}

/// Validates one Exchange block (`at`: its key path); also returns `emit_group_owners`.
fn validate(e: RawExchange, at: &str, pr: &mut Problems) -> Option<(ExchangeConfig, bool)> {
    let max_age = hours(pr, &format!("{at}.max_age_hours"), e.max_age_hours, 4.0);
    let fallback_max_age = e
        .fallback_max_age_hours
        .map(|h| hours(pr, &format!("{at}.fallback_max_age_hours"), Some(h), 24.0));
    let source = match (e.script, e.input) {
        (Some(_), Some(_)) => {
            pr.problem(&format!("{at}.input"), "set either script (dirsync runs it) or input (a file another task writes), not both");
            None
        }
        (None, None) => {
            pr.problem(&format!("{at}.script"), "missing; set script = 'scripts/Export-DirSyncExchangeData.ps1' or input = 'exchange.json'");
            None
        }
        (None, Some(input)) => {
            for (key, set) in [
                ("interpreter", e.interpreter.is_some()),
                ("parameters", e.parameters.is_some()),
                ("timeout_seconds", e.timeout_seconds.is_some()),
            ] {
                if set {
                    pr.problem(&format!("{at}.{key}"), "applies only to script; remove it");
                }
            }
            Some(ExchangeSource::Input(
                pr.path(&format!("{at}.input"), input),
            ))
        }
        (Some(script), None) => Some(ExchangeSource::Script {
            script: pr.path(&format!("{at}.script"), script),
            interpreter: e.interpreter,
            parameters: parameters(e.parameters.unwrap_or_default(), at, pr),
            timeout: pr.seconds(&format!("{at}.timeout_seconds"), e.timeout_seconds, 1800),
        }),
    };
    Some((
        ExchangeConfig {
            source: source?,
            max_age,
            fallback_max_age,
            add_exchange_only: e.add_exchange_only.unwrap_or(true),
            applies_to: None,
            last_good: super::LAST_GOOD.to_owned(),
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
fn parameters(table: toml::Table, at: &str, pr: &mut Problems) -> Vec<(String, String)> {
    let mut parameters = Vec::new();
    for (name, value) in table {
        let key = format!("{at}.parameters.{name}");
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
