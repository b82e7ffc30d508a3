//! The deletion guard: refuse to ship a map that lost too many addresses.
//!
//! A run that saw only part of the directory (a scoped-out sync, a wrong filter, a fault)
//! would otherwise tell Retarus to reject mail for everyone missing. The guard compares the
//! new map with the last one shipped and refuses when more than `max_removed` addresses, or
//! more than `max_removed_percent` of them, would go, or when a domain that had addresses has
//! none. Pure: it takes two maps and returns a verdict; `--force` is applied by the caller.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::mapfile::{MapDiff, MapFile};
use crate::model::Domain;
use crate::problems::Problems;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuard {
    max_removed: Option<i64>,
    max_removed_percent: Option<f64>,
    allow_empty_domains: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct GuardConfig {
    pub max_removed: u64,
    pub max_removed_percent: f64,
    pub allow_empty_domains: BTreeSet<String>,
}

pub const DEFAULT_MAX_REMOVED: u64 = 500;
pub const DEFAULT_MAX_REMOVED_PERCENT: f64 = 10.0;

/// Validates `[guard]`; `allow_empty_domains` must name accepted domains.
pub fn validate(
    g: RawGuard,
    domains: &BTreeSet<Domain>,
    domains_from_exchange: bool,
    pr: &mut Problems,
) -> GuardConfig {
    let max_removed = match g.max_removed {
        None => DEFAULT_MAX_REMOVED,
        Some(n) if n >= 0 => n as u64,
        Some(n) => {
            pr.problem("guard.max_removed", format!("{n}; expected 0 or more"));
            DEFAULT_MAX_REMOVED
        }
    };
    let max_removed_percent = match g.max_removed_percent {
        None => DEFAULT_MAX_REMOVED_PERCENT,
        Some(p) if (0.0..=100.0).contains(&p) => p,
        Some(p) => {
            pr.problem(
                "guard.max_removed_percent",
                format!("{p}; expected 0 to 100"),
            );
            DEFAULT_MAX_REMOVED_PERCENT
        }
    };
    let mut allow_empty_domains = BTreeSet::new();
    for (i, d) in g.allow_empty_domains.unwrap_or_default().iter().enumerate() {
        match Domain::parse(d.trim()) {
            Ok(domain) if domains_from_exchange || domains.contains(&domain) => {
                allow_empty_domains.insert(domain.as_str().to_owned());
            }
            Ok(_) => pr.problem(
                &format!("guard.allow_empty_domains[{i}]"),
                format!("{d:?} is not in domains"),
            ),
            Err(e) => pr.problem(
                &format!("guard.allow_empty_domains[{i}]"),
                format!("{d:?}: {e}"),
            ),
        }
    }
    GuardConfig {
        max_removed,
        max_removed_percent,
        allow_empty_domains,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// No previous map: nothing to compare with.
    pub first_run: bool,
    pub previous: usize,
    pub current: usize,
    pub added: usize,
    pub removed: usize,
    /// Why the guard refuses (empty = it passes).
    pub reasons: Vec<String>,
    /// With several sources: each source's addresses, before and now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceChange {
    pub source: String,
    pub previous: Option<u64>,
    pub current: u64,
}

impl Verdict {
    pub fn passes(&self) -> bool {
        self.reasons.is_empty()
    }

    /// One paragraph for the admin.
    pub fn describe(&self) -> String {
        if self.first_run {
            return format!(
                "deletion guard: no previous upload recorded in state_dir (a first run, or the \
                 state was lost): nothing to compare with, {} addresses",
                self.current
            );
        }
        let mut s = format!(
            "deletion guard: {} -> {} addresses (+{} -{})",
            self.previous, self.current, self.added, self.removed
        );
        for c in &self.sources {
            match c.previous {
                Some(p) => {
                    let _ = write!(s, "; {} {p} -> {}", c.source, c.current);
                }
                None => {
                    let _ = write!(s, "; {} {} (no earlier count)", c.source, c.current);
                }
            }
        }
        if self.passes() {
            s.push_str(": passed");
        } else {
            s.push_str(": REFUSED");
            for r in &self.reasons {
                let _ = write!(s, "\n  - {r}");
            }
        }
        s
    }
}

/// Each source against its own last count: a source that lost more than the thresholds is
/// refused even when the total passes (half a forest hides behind a big second forest).
/// A source without a previous count (new, or the first run with several) is not judged.
fn per_source(
    previous: &BTreeMap<String, u64>,
    current: &BTreeMap<String, u64>,
    config: &GuardConfig,
    reasons: &mut Vec<String>,
) -> Vec<SourceChange> {
    let mut out = Vec::new();
    for (source, &now) in current {
        let before = previous.get(source).copied();
        out.push(SourceChange {
            source: source.clone(),
            previous: before,
            current: now,
        });
        let Some(before) = before.filter(|b| *b > now) else {
            continue;
        };
        let lost = before - now;
        let percent = lost as f64 * 100.0 / before as f64;
        if lost > config.max_removed || percent > config.max_removed_percent {
            reasons.push(format!(
                "source {source}: {before} -> {now} addresses (-{lost}, {percent:.1}%), more than \
                 guard.max_removed = {} or guard.max_removed_percent = {} for one source: did it \
                 return only part of its objects?",
                config.max_removed, config.max_removed_percent
            ));
        }
    }
    out
}

/// The verdict on `current` against the last shipped map; `sources` are the addresses per
/// source (several sources only): before (from the state) and now.
pub fn evaluate(
    previous: Option<&MapFile>,
    current: &MapFile,
    sources: (&BTreeMap<String, u64>, &BTreeMap<String, u64>),
    config: &GuardConfig,
) -> Verdict {
    let Some(previous) = previous else {
        return Verdict {
            first_run: true,
            previous: 0,
            current: current.dir_count(),
            added: current.dir_count(),
            removed: 0,
            reasons: Vec::new(),
            sources: Vec::new(),
        };
    };
    let diff = MapDiff::between(previous, current);
    let (prev, removed) = (previous.dir_count(), diff.dirs_removed());
    let mut reasons = Vec::new();
    let most_affected = || {
        let mut by_domain: Vec<(&String, usize)> = diff
            .domains
            .iter()
            .map(|(d, dd)| (d, dd.dirs_removed()))
            .filter(|(_, n)| *n > 0)
            .collect();
        by_domain.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        by_domain
            .iter()
            .take(5)
            .map(|(d, n)| format!("{d} -{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if removed as u64 > config.max_removed {
        reasons.push(format!(
            "{removed} addresses would be removed, more than guard.max_removed = {} (most affected: {})",
            config.max_removed,
            most_affected()
        ));
    }
    let percent = if prev == 0 {
        0.0
    } else {
        removed as f64 * 100.0 / prev as f64
    };
    if percent > config.max_removed_percent {
        reasons.push(format!(
            "{percent:.1}% of the {prev} previous addresses would be removed, more than \
             guard.max_removed_percent = {} (most affected: {})",
            config.max_removed_percent,
            most_affected()
        ));
    }
    for (domain, d) in &diff.domains {
        if d.old_dirs > 0 && d.new_dirs == 0 && !config.allow_empty_domains.contains(domain) {
            reasons.push(format!(
                "domain {domain} had {} addresses and now has none (allow it with guard.allow_empty_domains)",
                d.old_dirs
            ));
        }
    }
    let sources = per_source(sources.0, sources.1, config, &mut reasons);
    Verdict {
        first_run: false,
        previous: prev,
        current: current.dir_count(),
        added: diff.dirs_added(),
        removed,
        reasons,
        sources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapfile::Record;

    fn map(counts: &[(&str, usize)]) -> MapFile {
        let mut m = MapFile::new("1");
        for (domain, n) in counts {
            m.add_domain(domain);
            for i in 0..*n {
                m.insert(domain, Record::Dir(format!("u{i}@{domain}").into()));
            }
        }
        m
    }

    fn config(max: u64, pct: f64) -> GuardConfig {
        GuardConfig {
            max_removed: max,
            max_removed_percent: pct,
            allow_empty_domains: Default::default(),
        }
    }

    #[test]
    fn first_run_passes_with_a_note() {
        let v = evaluate(
            None,
            &map(&[("a.com", 3)]),
            (&BTreeMap::new(), &BTreeMap::new()),
            &config(0, 0.0),
        );
        assert!(v.passes() && v.first_run);
        assert!(v.describe().contains("a first run"));
    }

    #[test]
    fn limits_are_exclusive_thresholds() {
        let old = map(&[("a.com", 100)]);
        assert!(evaluate(
            Some(&old),
            &map(&[("a.com", 90)]),
            (&BTreeMap::new(), &BTreeMap::new()),
            &config(10, 10.0)
        )
        .passes());
        let v = evaluate(
            Some(&old),
            &map(&[("a.com", 89)]),
            (&BTreeMap::new(), &BTreeMap::new()),
            &config(10, 10.0),
        );
        assert_eq!(v.reasons.len(), 2, "{v:?}");
        assert_eq!(
            v.reasons[0],
            "11 addresses would be removed, more than guard.max_removed = 10 (most affected: a.com -11)"
        );
        assert!(v.reasons[1].starts_with("11.0% of the 100 previous addresses"));
    }

    #[test]
    fn a_domain_that_went_empty_is_refused_unless_allowed() {
        let old = map(&[("a.com", 100), ("b.com", 2)]);
        let new = map(&[("a.com", 100), ("b.com", 0)]);
        let v = evaluate(
            Some(&old),
            &new,
            (&BTreeMap::new(), &BTreeMap::new()),
            &config(500, 10.0),
        );
        assert_eq!(v.reasons, ["domain b.com had 2 addresses and now has none (allow it with guard.allow_empty_domains)"]);
        let mut allow = config(500, 10.0);
        allow.allow_empty_domains.insert("b.com".into());
        assert!(evaluate(
            Some(&old),
            &new,
            (&BTreeMap::new(), &BTreeMap::new()),
            &allow
        )
        .passes());
    }
}
