//! What a run tells the admin: the human summary of a build and of the Exchange merge, and
//! the entry-level findings as warnings (a limited number of each; counts are complete).

use std::fmt::Write as _;

use crate::exchange;
use crate::rules::{BuildReport, DROP_CONFLICT, DROP_EXCLUDED, DROP_FOREIGN, DROP_INVALID};
use crate::source::SourceStats;

/// Findings of each kind shown as warnings; the rest are counted.
const WARN_LIMIT: usize = 20;

/// The human summary of a build, for stderr.
pub fn summarize(r: &BuildReport, stats: &SourceStats) -> String {
    let mut s = String::new();
    let kinds: Vec<String> = r
        .objects
        .iter()
        .map(|(k, n)| format!("{} {n}", k.name()))
        .collect();
    let _ = writeln!(
        s,
        "read {} objects from {} ({}; {} disabled, {} without a mail address)",
        stats.entries,
        stats.origin,
        kinds.join(", "),
        r.objects_disabled,
        r.objects_without_address
    );
    let per_domain: Vec<String> = r
        .addresses_per_domain
        .iter()
        .map(|(d, n)| format!("{d} {n}"))
        .collect();
    if stats.referrals_skipped > 0 {
        let _ = writeln!(
            s,
            "skipped {} continuation references (other naming contexts; not read)",
            stats.referrals_skipped
        );
    }
    if stats.duplicate_entries > 0 {
        let _ = writeln!(
            s,
            "the directory server sent {} entries twice (kept once)",
            stats.duplicate_entries
        );
    }
    let _ = writeln!(s, "addresses: {}", per_domain.join(", "));
    for (name, each) in &stats.sources {
        let _ = writeln!(
            s,
            "source {name}: {} entries from {}, {} addresses written",
            each.entries,
            each.origin,
            r.addresses_per_source.get(name).copied().unwrap_or(0)
        );
    }
    let dropped = dropped(r);
    if !dropped.is_empty() {
        let _ = writeln!(s, "not written: {}", dropped.join(", "));
    }
    for (rule, e) in &r.excluded_by_rule {
        let _ = writeln!(
            s,
            "excluded by {rule}: {} objects, {} addresses",
            e.objects, e.addresses
        );
    }
    if r.cleaned_values_total > 0 {
        let _ = writeln!(
            s,
            "signature values cleaned or shortened: {}",
            r.cleaned_values_total
        );
    }
    s
}

/// Why addresses were not written, per reason.
fn dropped(r: &BuildReport) -> Vec<String> {
    let mut dropped = Vec::new();
    if let Some(n) = r.dropped.get(DROP_FOREIGN) {
        let mut top: Vec<(&String, &u64)> = r.foreign_domains.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = top
            .iter()
            .take(5)
            .map(|(d, n)| format!("{d} {n}"))
            .collect();
        dropped.push(format!(
            "{n} in domains not in `domains` ({})",
            top.join(", ")
        ));
    }
    if let Some(n) = r.dropped.get(DROP_INVALID) {
        dropped.push(format!("{n} invalid"));
    }
    if let Some(n) = r.dropped.get(DROP_CONFLICT) {
        dropped.push(format!("{n} claimed by two objects (kept once)"));
    }
    if let Some(n) = r.dropped.get(DROP_EXCLUDED) {
        dropped.push(format!("{n} matched addresses.exclude"));
    }
    dropped
}

/// One line on what the Exchange data added.
pub fn summarize_exchange(m: &exchange::MergeReport) -> String {
    let added: Vec<String> = m.added.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let mut s = m
        .source
        .as_ref()
        .map(|name| format!("source {name}: "))
        .unwrap_or_default();
    s += &format!(
        "Exchange data of {} from {}: {} objects matched by id, {} by address; added {}; {} addresses added to directory objects; {} groups with owners",
        m.collected_at,
        m.origin,
        m.matched_by_object_id,
        m.matched_by_address,
        if added.is_empty() { "none".to_string() } else { added.join(", ") },
        m.addresses_added,
        m.groups_with_owners
    );
    if let Some(reason) = &m.fallback {
        s.push_str(&format!(
            "; FALLBACK to the last good data because: {reason}"
        ));
    }
    s
}

/// Logs the entry-level findings of a build as warnings, a limited number of each.
pub fn log_findings(r: &BuildReport) {
    for c in r.cleaned_values.iter().take(WARN_LIMIT) {
        tracing::warn!("{}: signature field {}: {}", c.dn, c.value, c.reason);
    }
    let mut conflicts = r.conflicts.iter().peekable();
    let mut warned = 0;
    while let Some(c) = conflicts.next() {
        let mut same = vec![c];
        while let Some(next) = conflicts.next_if(|n| n.address == c.address) {
            same.push(next);
        }
        warned += 1;
        if warned > WARN_LIMIT {
            continue;
        }
        if c.shared_alias {
            tracing::warn!(
                "address {} is an alias of {} and the primary address of none: written once, \
                 without a MAP line (whose mailbox it is cannot be told)",
                c.address,
                crate::rules::holders(c, &same)
            );
        } else {
            let objects = match same.len() {
                1 => "two objects".to_string(),
                n => format!("{} objects", n + 1),
            };
            tracing::warn!(
                "address {} is on {objects}: kept for {}, not for {}",
                c.address,
                c.kept,
                same.iter()
                    .map(|c| c.dropped.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    for i in r.invalid.iter().take(WARN_LIMIT) {
        tracing::warn!(
            "{}: {:?} is not a valid address ({})",
            i.dn,
            i.value,
            i.reason
        );
    }
    let more = r
        .dropped
        .get(DROP_CONFLICT)
        .copied()
        .unwrap_or(0)
        .saturating_sub(WARN_LIMIT as u64)
        + r.dropped
            .get(DROP_INVALID)
            .copied()
            .unwrap_or(0)
            .saturating_sub(WARN_LIMIT as u64);
    if more > 0 {
        tracing::warn!("{more} more address warnings: see last-run.json");
    }
    if r.several_primaries > 0 {
        tracing::warn!(
            "{} objects have more than one SMTP: proxy address; the one equal to `mail` (else the first in order) is used as primary",
            r.several_primaries
        );
    }
}
