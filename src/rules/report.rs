//! What a build reports: counts and findings for the run summary and `last-run.json`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Address, ObjectKind};

/// How many individual findings the report lists per kind (counts are always complete).
pub const LISTED: usize = 100;

/// What the filter rules decided for an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub excluded: bool,
    /// The deciding rule (index into the filter rules), or `None` for the default.
    pub rule: Option<usize>,
}

/// Counts and findings of one build, for the run summary and `last-run.json`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct BuildReport {
    pub objects: BTreeMap<ObjectKind, u64>,
    pub objects_disabled: u64,
    pub objects_without_address: u64,
    pub addresses_per_domain: BTreeMap<String, u64>,
    /// With several sources: the addresses written for the objects of each (the deletion
    /// guard holds each source to its thresholds).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub addresses_per_source: BTreeMap<String, u64>,
    /// Addresses not written, by reason.
    pub dropped: BTreeMap<&'static str, u64>,
    /// Addresses dropped because their domain is not accepted, per domain.
    pub foreign_domains: BTreeMap<String, u64>,
    /// Objects (and their addresses) excluded, per filter rule.
    pub excluded_by_rule: BTreeMap<String, Excluded>,
    pub conflicts: Vec<Conflict>,
    pub invalid: Vec<InvalidValue>,
    /// Signature values that were changed (control characters, length), listed.
    pub cleaned_values: Vec<InvalidValue>,
    pub cleaned_values_total: u64,
    /// Objects whose primary address is not in an accepted domain: their aliases get no
    /// `MAP:` line.
    pub primary_not_accepted: u64,
    /// Objects with more than one `SMTP:` proxy address.
    pub several_primaries: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Excluded {
    pub objects: u64,
    pub addresses: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Conflict {
    pub address: String,
    /// The object whose claim was kept (for a shared alias: the one that sorts first).
    pub kept: String,
    pub dropped: String,
    /// An alias of several objects and the primary address of none: one `DIR:` line, no
    /// `MAP:` line.
    pub shared_alias: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InvalidValue {
    pub dn: String,
    pub value: String,
    pub reason: String,
}

pub const DROP_FOREIGN: &str = "domain_not_accepted";
pub const DROP_INVALID: &str = "invalid_address";
pub const DROP_CONFLICT: &str = "claimed_by_another_object";
pub const DROP_FILTERED: &str = "object_excluded_by_filter";
pub const DROP_EXCLUDED: &str = "excluded_by_addresses_exclude";

/// Counts an address outside the accepted domains, per domain.
pub fn count_foreign(report: &mut BuildReport, address: &Address) {
    *report.dropped.entry(DROP_FOREIGN).or_default() += 1;
    match report.foreign_domains.get_mut(address.domain()) {
        Some(n) => *n += 1,
        None => {
            report
                .foreign_domains
                .insert(address.domain().to_owned(), 1);
        }
    }
}
