//! The rules stage: which addresses go into the MAP file, and which records they get.
//!
//! Input is every [`Recipient`] read; output is a [`MapFile`] and a [`BuildReport`]. Fixed
//! rules every map needs: an address must be valid and in an accepted domain, each address
//! belongs to exactly one object (conflicts are resolved deterministically and reported), and
//! each alias gets a `MAP:` line to its primary. Configured rules (`spec`): filters (first
//! match decides), extra and excluded addresses, profiles (`PROFILE:`), signature data
//! (`P13N:`) and routing (`UCFG:`). Rules run after the whole directory is read, so group
//! nesting is known. Nothing here does I/O.

pub mod condition;
pub mod spec;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::mapfile::{clean_value, Block, MapFile, Record, Setting};
use crate::model::{Address, Domain, ObjectKind, Recipient};
use condition::Groups;
use spec::{Derive, Piece, RulesConfig, ValueRule, ValueSource};

/// How many individual findings the report lists per kind (counts are always complete).
const LISTED: usize = 100;

/// Who holds an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Object {
        /// Index into the recipients (u32: keeps a claim at 32 bytes).
        recipient: u32,
        is_primary: bool,
        /// Set on the owner of an address that several objects hold as an alias and none as
        /// its primary: it gets its `DIR:` line but no `MAP:` (nor an alias `PROFILE:`) line,
        /// because whose mailbox it is cannot be told.
        shared: bool,
    },
    /// Listed in `addresses.extra`.
    Extra,
}

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

/// Collects recipients; [`MapBuilder::finish`] applies the rules and builds the map.
pub struct MapBuilder {
    customer_id: String,
    accepted: BTreeSet<String>,
    rules: RulesConfig,
    recipients: Vec<Recipient>,
    report: BuildReport,
    lean: bool,
}

/// The finished build: the MAP file, the report, and what is needed to explain it.
pub struct Built {
    pub map: MapFile,
    pub report: BuildReport,
    pub recipients: Vec<Recipient>,
    pub decisions: Vec<Decision>,
    /// The profile of each object and the rule that gave it.
    pub profiles: Vec<Option<(String, String)>>,
    rules: RulesConfig,
}

impl MapBuilder {
    pub fn new(customer_id: &str, accepted: &BTreeSet<Domain>, rules: &RulesConfig) -> Self {
        MapBuilder {
            customer_id: customer_id.to_owned(),
            accepted: accepted.iter().map(|d| d.as_str().to_owned()).collect(),
            rules: rules.clone(),
            recipients: Vec::new(),
            report: BuildReport::default(),
            lean: false,
        }
    }

    /// Keep less of each recipient: aliases outside the accepted domains are counted and
    /// dropped as they arrive (a sync needs only the counts; `explain` keeps them all).
    pub fn lean(mut self) -> Self {
        self.lean = true;
        self
    }

    pub fn add(&mut self, mut recipient: Recipient) {
        if self.lean {
            let accepted = &self.accepted;
            let report = &mut self.report;
            recipient.aliases.retain(|(a, _)| {
                let keep = accepted.contains(a.domain());
                if !keep {
                    count_foreign(report, a);
                }
                keep
            });
            recipient.aliases.shrink_to_fit();
        }
        let report = &mut self.report;
        *report.objects.entry(recipient.kind).or_default() += 1;
        report.objects_disabled += u64::from(recipient.disabled);
        report.several_primaries += u64::from(recipient.extra_primaries > 0);
        for r in &recipient.rejected {
            *report.dropped.entry(DROP_INVALID).or_default() += 1;
            if report.invalid.len() < LISTED {
                report.invalid.push(InvalidValue {
                    dn: recipient.dn.to_string(),
                    value: r.raw.clone(),
                    reason: format!("{} in {}", r.error, r.origin.describe()),
                });
            }
        }
        if recipient.primary.is_none() {
            report.objects_without_address += 1;
        }
        self.recipients.push(recipient);
    }

    /// Mutable access for the Exchange merge (kinds, extra recipients).
    pub fn recipients_mut(&mut self) -> &mut Vec<Recipient> {
        &mut self.recipients
    }

    pub fn finish(self) -> Built {
        let MapBuilder {
            customer_id,
            accepted,
            rules,
            recipients,
            mut report,
            ..
        } = self;
        let groups = Groups::new(recipients.iter());
        let is_accepted = |a: &Address| accepted.contains(a.domain());

        // Every claim on an address, then sorted by address: one pass resolves conflicts
        // (much cheaper than a map insert per address on large directories).
        let mut claims: Vec<Claim> = Vec::with_capacity(recipients.len() * 3);
        let mut decisions = Vec::with_capacity(recipients.len());
        for (index, r) in recipients.iter().enumerate() {
            let decision = decide(&rules, r, &groups);
            decisions.push(decision);
            if r.primary.as_ref().is_some_and(|p| !is_accepted(p)) {
                report.primary_not_accepted += 1;
            }
            for (address, _) in r.addresses() {
                if !is_accepted(address) {
                    count_foreign(&mut report, address);
                    continue;
                }
                if decision.excluded {
                    *report.dropped.entry(DROP_FILTERED).or_default() += 1;
                    report
                        .excluded_by_rule
                        .entry(filter_label(&rules, decision.rule))
                        .or_default()
                        .addresses += 1;
                    continue;
                }
                if rules
                    .exclude_addresses
                    .iter()
                    .any(|p| crate::glob::matches(p, address.as_str()))
                {
                    *report.dropped.entry(DROP_EXCLUDED).or_default() += 1;
                    continue;
                }
                let is_primary = Some(address) == r.primary.as_ref();
                claims.push(Claim::new(
                    address,
                    Owner::Object {
                        recipient: index as u32,
                        is_primary,
                        shared: false,
                    },
                ));
            }
            if decision.excluded {
                report
                    .excluded_by_rule
                    .entry(filter_label(&rules, decision.rule))
                    .or_default()
                    .objects += 1;
            }
        }
        claims.extend(
            rules
                .extra_addresses
                .iter()
                .map(|a| Claim::new(a, Owner::Extra)),
        );
        sort_claims(&mut claims);
        let mut primary_owned = vec![false; recipients.len()];
        let (owners, losers) = resolve(&recipients, claims, &mut primary_owned);
        let lost = losers
            .iter()
            .filter(|c| !matches!(c.owner, Owner::Extra))
            .count() as u64;
        if lost > 0 {
            *report.dropped.entry(DROP_CONFLICT).or_default() += lost;
        }
        // Whether a recipient's primary address has an owner: known from its own claim on it,
        // looked up only for a primary it did not claim.
        let primary_is_owned = |recipient: u32, primary: &Address| {
            primary_owned[recipient as usize] || find_owner(&owners, primary).is_some()
        };

        let profiles: Vec<Option<(String, String)>> = recipients
            .iter()
            .zip(&decisions)
            .map(|(r, d)| {
                if d.excluded {
                    None
                } else {
                    profile(&rules, r, &groups)
                }
            })
            .collect();

        // One list per record type and domain: owners come in address order, so each list is
        // (nearly) sorted already and the final sort is about linear.
        // Few domains: found by a scan (no tree lookup per address).
        let domains: Vec<&str> = accepted.iter().map(|d| d.as_str()).collect();
        let mut blocks: Vec<[Vec<Record>; 5]> =
            domains.iter().map(|_| Default::default()).collect();
        let mut counts = vec![0usize; domains.len()];
        if let Some([dirs, maps, ..]) = blocks.first_mut() {
            // Most addresses are in one domain: size the lists once instead of growing them.
            dirs.reserve(owners.len());
            maps.reserve(owners.len() / 2);
        }
        let mut last = 0;
        for &Claim { address, owner, .. } in &owners {
            let domain = address.domain();
            if domains.get(last) != Some(&domain) {
                match domains.iter().position(|d| *d == domain) {
                    Some(i) => last = i,
                    None => continue,
                }
            }
            counts[last] += 1;
            let [dirs, maps, profiles_out, ucfgs, p13ns] = &mut blocks[last];
            dirs.push(Record::Dir(address.shared()));
            let Owner::Object {
                recipient,
                is_primary,
                shared,
            } = owner
            else {
                continue;
            };
            let r = &recipients[recipient as usize];
            if !is_primary && !shared {
                if let Some(primary) = r
                    .primary
                    .as_ref()
                    .filter(|p| primary_is_owned(recipient, p))
                {
                    maps.push(Record::Map {
                        alias: address.shared(),
                        primary: primary.shared(),
                    });
                }
            }
            if let Some((name, _)) = &profiles[recipient as usize] {
                if is_primary || (rules.profiles.aliases && !shared) {
                    profiles_out.push(Record::Profile {
                        address: address.shared(),
                        profile: name.as_str().into(),
                    });
                }
            }
            if is_primary {
                for (field, value) in signature(&rules, r, &mut report) {
                    p13ns.push(Record::P13n(Setting::new(address.shared(), field, value)));
                }
                for (key, value) in routing(&rules, r, &groups) {
                    ucfgs.push(Record::Ucfg(Setting::new(address.shared(), key, value)));
                }
                if let Some(key) = &rules.group_owner_key {
                    for owner in &r.owners {
                        ucfgs.push(Record::Ucfg(Setting::new(
                            address.shared(),
                            key.as_str(),
                            owner.shared(),
                        )));
                    }
                }
            }
        }
        let mut map = MapFile::new(&customer_id);
        for ((domain, lists), count) in domains.iter().zip(blocks).zip(counts) {
            map.domains
                .insert((*domain).to_owned(), Block::from_lists(lists));
            report
                .addresses_per_domain
                .insert((*domain).to_owned(), count as u64);
        }

        let mut conflicts: Vec<Conflict> = losers
            .iter()
            .filter(|lost| !matches!(lost.owner, Owner::Extra))
            .map(|lost| {
                let kept = find_owner(&owners, lost.address);
                Conflict {
                    address: lost.address.to_string(),
                    kept: kept.map(|o| owner_name(&recipients, o)).unwrap_or_default(),
                    dropped: owner_name(&recipients, lost.owner),
                    shared_alias: matches!(kept, Some(Owner::Object { shared: true, .. })),
                }
            })
            .collect();
        conflicts.sort_by(|a, b| (&a.address, &a.dropped).cmp(&(&b.address, &b.dropped)));
        conflicts.truncate(LISTED);
        report.conflicts = conflicts;
        drop(owners);
        Built {
            map,
            report,
            recipients,
            decisions,
            profiles,
            rules,
        }
    }
}

/// An address and who claims it, with the address's first 16 bytes as an integer: most
/// comparisons of the sort are decided without reading the address itself, which lies
/// somewhere in memory (at 1M recipients, reading it is most of the cost of sorting).
#[derive(Debug, Clone, Copy)]
struct Claim<'a> {
    head: u128,
    address: &'a Address,
    owner: Owner,
}

impl<'a> Claim<'a> {
    fn new(address: &'a Address, owner: Owner) -> Self {
        let mut head = [0u8; 16];
        let text = address.as_str().as_bytes();
        let n = text.len().min(16);
        head[..n].copy_from_slice(&text[..n]);
        Claim {
            head: u128::from_be_bytes(head),
            address,
            owner,
        }
    }

    /// The order of the addresses (byte order: the head decides, or the whole text).
    fn cmp(&self, other: &Claim) -> std::cmp::Ordering {
        self.head
            .cmp(&other.head)
            .then_with(|| self.address.cmp(other.address))
    }

    fn same_address(&self, other: &Claim) -> bool {
        self.head == other.head && self.address == other.address
    }
}

/// Sorts claims by address, on two threads for a large directory: split around the median
/// (in place, no second buffer), then each half sorted on its own core. Below 100,000 claims
/// a thread costs more than it saves.
fn sort_claims(claims: &mut [Claim]) {
    const PARALLEL_FROM: usize = 100_000;
    if claims.len() < PARALLEL_FROM {
        claims.sort_unstable_by(Claim::cmp);
        return;
    }
    let middle = claims.len() / 2;
    claims.select_nth_unstable_by(middle, Claim::cmp);
    let (low, high) = claims.split_at_mut(middle);
    std::thread::scope(|scope| {
        // The upper half goes to the helper through a channel, so that it stays here when
        // no thread can be started (or the helper is gone) and is sorted here instead.
        let (give, take) = std::sync::mpsc::channel::<&mut [Claim]>();
        let helper = std::thread::Builder::new()
            .name("sort".into())
            .spawn_scoped(scope, move || {
                if let Ok(half) = take.recv() {
                    half.sort_unstable_by(Claim::cmp);
                }
            });
        let unsent = match helper {
            Ok(_) => give.send(high).err().map(|e| e.0),
            Err(_) => Some(high),
        };
        if let Some(half) = unsent {
            half.sort_unstable_by(Claim::cmp);
        }
        low.sort_unstable_by(Claim::cmp);
    });
}

/// Who owns an address, from the owners sorted by address.
fn find_owner(owners: &[Claim], address: &Address) -> Option<Owner> {
    let probe = Claim::new(address, Owner::Extra);
    owners
        .binary_search_by(|o| o.cmp(&probe))
        .ok()
        .map(|i| owners[i].owner)
}

/// Resolves claims sorted by address: one owner per address, chosen independently of input
/// order — an object holding it as its primary address, else the DN that sorts first (then
/// marked `shared` when several objects hold it, all as an alias); an `addresses.extra`
/// entry only when no object has it. Returns the owners (sorted by address) and the claims
/// that lost.
/// Marks in `primary_owned` each recipient whose primary address got an owner.
fn resolve<'a>(
    recipients: &[Recipient],
    claims: Vec<Claim<'a>>,
    primary_owned: &mut [bool],
) -> (Vec<Claim<'a>>, Vec<Claim<'a>>) {
    let key = |o: Owner| match o {
        Owner::Object {
            recipient,
            is_primary,
            ..
        } => (
            0u8,
            !is_primary,
            recipients[recipient as usize].dn.to_lowercase(),
        ),
        Owner::Extra => (1, true, String::new()),
    };
    let mut owners: Vec<Claim> = Vec::with_capacity(claims.len());
    let mut losers = Vec::new();
    let mut i = 0;
    while i < claims.len() {
        let mut j = i + 1;
        while j < claims.len() && claims[j].same_address(&claims[i]) {
            j += 1;
        }
        for claim in &claims[i..j] {
            if let Owner::Object {
                recipient,
                is_primary: true,
                ..
            } = claim.owner
            {
                primary_owned[recipient as usize] = true;
            }
        }
        if j - i == 1 {
            owners.push(claims[i]);
        } else {
            let group = &claims[i..j];
            let mut winner = group
                .iter()
                .min_by_key(|c| key(c.owner))
                .copied()
                .unwrap_or(claims[i]);
            losers.extend(group.iter().filter(|c| c.owner != winner.owner).copied());
            let objects = group
                .iter()
                .filter(|c| matches!(c.owner, Owner::Object { .. }))
                .count();
            if let Owner::Object {
                is_primary: false,
                shared,
                ..
            } = &mut winner.owner
            {
                // No object holds it as its primary (the winner would): an alias of several.
                *shared = objects > 1;
            }
            owners.push(winner);
        }
        i = j;
    }
    (owners, losers)
}

/// Every object holding a conflicting address, the kept one first: "A, B and C".
pub fn holders(first: &Conflict, all: &[&Conflict]) -> String {
    let mut names = vec![first.kept.as_str()];
    names.extend(all.iter().map(|c| c.dropped.as_str()));
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// Counts an address outside the accepted domains, per domain.
fn count_foreign(report: &mut BuildReport, address: &Address) {
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

fn owner_name(recipients: &[Recipient], owner: Owner) -> String {
    match owner {
        Owner::Object { recipient, .. } => recipients[recipient as usize].dn.to_string(),
        Owner::Extra => "addresses.extra".into(),
    }
}

fn filter_label(rules: &RulesConfig, rule: Option<usize>) -> String {
    match rule {
        Some(i) => rules.filters[i].label.clone(),
        None => "filter.default".into(),
    }
}

/// First matching filter rule decides; none matching: `filter.default`.
fn decide(rules: &RulesConfig, r: &Recipient, groups: &Groups) -> Decision {
    for (i, f) in rules.filters.iter().enumerate() {
        if f.when.eval(r, groups) {
            return Decision {
                excluded: f.exclude,
                rule: Some(i),
            };
        }
    }
    Decision {
        excluded: rules.default_exclude,
        rule: None,
    }
}

/// DN components in order, with `\,` escapes respected: `[("CN", "Doe\, John"), ("OU", …)]`.
fn dn_components(dn: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in dn.chars().chain(std::iter::once(',')) {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            if let Some((t, v)) = current.split_once('=') {
                out.push((t.trim().to_ascii_uppercase(), v.trim().to_owned()));
            }
            current.clear();
        } else {
            current.push(c);
        }
    }
    out
}

/// The value a rule yields for an object, if its condition matches and a value results.
fn rule_value(rule: &ValueRule, r: &Recipient, groups: &Groups) -> Option<String> {
    if !rule.when.as_ref().is_none_or(|c| c.eval(r, groups)) {
        return None;
    }
    match &rule.value {
        ValueSource::Constant(v) => Some(v.clone()),
        ValueSource::Derived {
            from,
            map,
            use_unmapped,
        } => {
            let raw = match from {
                Derive::Attribute(a) => r.attrs.get(a).and_then(|v| v.first()).cloned()?,
                Derive::DnComponent(t) => dn_components(&r.dn).into_iter().find(|(k, _)| k == t)?.1,
            };
            let (value, _) = clean_value(&raw);
            if value.is_empty() {
                return None;
            }
            match map.get(&value.to_lowercase()) {
                Some(mapped) => Some(mapped.clone()),
                None if *use_unmapped => Some(value),
                None => None,
            }
        }
    }
}

/// The object's profile and the rule (label) that gave it.
fn profile(rules: &RulesConfig, r: &Recipient, groups: &Groups) -> Option<(String, String)> {
    for rule in &rules.profiles.rules {
        if let Some(v) = rule_value(rule, r, groups) {
            return Some((v, rule.label.clone()));
        }
    }
    rules
        .profiles
        .default
        .clone()
        .map(|d| (d, "profiles.default".into()))
}

/// UCFG key/value pairs: per key, the first matching routing rule.
fn routing(rules: &RulesConfig, r: &Recipient, groups: &Groups) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for rule in &rules.routing {
        if out.contains_key(&rule.key) {
            continue;
        }
        if let Some(v) = rule_value(rule, r, groups) {
            out.insert(rule.key.clone(), v);
        }
    }
    out.into_iter().collect()
}

/// P13N field/value pairs, cleaned; changes are reported naming the entry.
fn signature(
    rules: &RulesConfig,
    r: &Recipient,
    report: &mut BuildReport,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (field, template) in &rules.signature.fields {
        let mut raw = String::new();
        let mut control = false;
        for piece in &template.0 {
            match piece {
                Piece::Text(t) => raw.push_str(t),
                Piece::Attribute(a) => {
                    if let Some(v) = r.attrs.get(a).and_then(|v| v.first()) {
                        control |= v.chars().any(char::is_control);
                        raw.push_str(v);
                    }
                }
            }
        }
        let (mut value, _) = clean_value(&raw);
        let max = rules.signature.max_length;
        let long = value.chars().count() > max;
        if long {
            value = value
                .chars()
                .take(max)
                .collect::<String>()
                .trim_end()
                .to_owned();
        }
        if control || long {
            report.cleaned_values_total += 1;
            if report.cleaned_values.len() < LISTED {
                report.cleaned_values.push(InvalidValue {
                    dn: r.dn.to_string(),
                    value: field.clone(),
                    reason: match (control, long) {
                        (true, true) => {
                            format!("control characters replaced; cut to {max} characters")
                        }
                        (true, false) => "control characters replaced".into(),
                        _ => format!("cut to {max} characters"),
                    },
                });
            }
        }
        if !value.is_empty() {
            out.push((field.clone(), value));
        }
    }
    out
}

/// The map and the report of a build, without what only `explain` needs.
pub struct MapAndReport {
    pub map: MapFile,
    pub report: BuildReport,
}

impl Built {
    /// Drops the recipients and the per-object decisions (a large share of the memory) — on
    /// a thread of their own: freeing 100k recipients takes tens of milliseconds (1M: a few
    /// hundred), which the rest of the run need not wait for.
    pub fn into_map_and_report(self) -> MapAndReport {
        let Built {
            map,
            report,
            recipients,
            decisions,
            profiles,
            rules,
        } = self;
        let rest = (recipients, decisions, profiles, rules);
        // If no thread can be started, the closure (and with it `rest`) is dropped right here.
        let _ = std::thread::Builder::new()
            .name("free".into())
            .spawn(move || drop(rest));
        MapAndReport { map, report }
    }

    /// Explains what happens to one address: every object that carries it, in which
    /// attribute, what the rules decided, and the MAP lines it produces.
    pub fn explain(&self, query: &str) -> Vec<String> {
        let mut out = Vec::new();
        let wanted = match Address::parse(query.trim()) {
            Ok(a) => a,
            Err(e) => {
                out.push(format!("{query:?} is not a valid address: {e}"));
                return out;
            }
        };
        if !self.map.domains.contains_key(wanted.domain()) {
            out.push(format!(
                "{wanted}: its domain {} is not in `domains`, so it cannot be in the map",
                wanted.domain()
            ));
        }
        if let Some(p) = self
            .rules
            .exclude_addresses
            .iter()
            .find(|p| crate::glob::matches(p, wanted.as_str()))
        {
            out.push(format!("excluded by addresses.exclude pattern {p:?}"));
        }
        if self.rules.extra_addresses.contains(&wanted) {
            out.push("listed in addresses.extra".into());
        }
        let mut found = false;
        for (i, r) in self.recipients.iter().enumerate() {
            for (address, origin) in r.addresses() {
                if *address != wanted {
                    continue;
                }
                found = true;
                out.push(format!(
                    "found on {} ({}{}{}) in {}",
                    r.dn,
                    r.kind.name(),
                    r.exchange_kind
                        .as_deref()
                        .map(|k| format!(", {k}"))
                        .unwrap_or_default(),
                    if r.disabled { ", disabled" } else { "" },
                    origin.describe()
                ));
                if let Some(guid) = &r.object_guid {
                    out.push(format!("  objectGUID {guid}"));
                }
                if let Some(p) = r.primary.as_ref().filter(|p| **p != wanted) {
                    out.push(format!("  its primary address is {p}"));
                }
                if r.kind == ObjectKind::Group {
                    out.push(format!("  {} members", r.members));
                }
                for group in &r.member_of {
                    out.push(format!("  member of {group}"));
                }
                let d = self.decisions[i];
                let by = match d.rule {
                    Some(rule) => format!("by {}", self.rules.filters[rule].label),
                    None => "by filter.default (no filter rule matched)".into(),
                };
                out.push(format!(
                    "  {} {by}",
                    if d.excluded { "EXCLUDED" } else { "kept" }
                ));
                if let Some((profile, rule)) = &self.profiles[i] {
                    out.push(format!("  profile {profile:?} from {rule}"));
                }
            }
            for rej in &r.rejected {
                if rej.raw.trim().eq_ignore_ascii_case(wanted.as_str()) {
                    out.push(format!("found on {} but rejected: {}", r.dn, rej.error));
                }
            }
        }
        if !found && !self.rules.extra_addresses.contains(&wanted) {
            out.push(format!("{wanted} is on no object read from the directory"));
        }
        let conflicts: Vec<&Conflict> = self
            .report
            .conflicts
            .iter()
            .filter(|c| c.address == wanted.as_str())
            .collect();
        match conflicts.first() {
            Some(c) if c.shared_alias => out.push(format!(
                "shared alias: an alias of {} and the primary address of none: one DIR line, \
                 and no MAP line (whose mailbox it is cannot be told; make it the primary \
                 address of one object, or remove it from the others)",
                holders(c, &conflicts)
            )),
            Some(c) => out.push(format!(
                "conflict: also on {}; kept for {} (primary address wins, then the DN that sorts first)",
                conflicts.iter().map(|c| c.dropped.as_str()).collect::<Vec<_>>().join(", "),
                c.kept
            )),
            None => {}
        }
        let lines: Vec<String> = self
            .map
            .domains
            .iter()
            .flat_map(|(domain, records)| records.iter().map(move |r| (domain, r)))
            .filter(|(_, r)| r.addresses().contains(&wanted.as_str()))
            .map(|(domain, r)| {
                format!(
                    "  {}|{domain}\t{}\t{}",
                    self.map.customer_id,
                    r.tag(),
                    r.values().join("\t")
                )
            })
            .collect();
        if lines.is_empty() {
            out.push("MAP lines: none".into());
        } else {
            out.push("MAP lines:".into());
            out.extend(lines);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_claim_list_is_sorted_on_two_threads_like_on_one() {
        // Above the parallel threshold, with repeats and shared 16-byte heads.
        let addresses: Vec<Address> = (0..150_000u64)
            .map(|i| {
                let n = i.wrapping_mul(2_654_435_761) % 90_000;
                Address::parse(&format!("firstname.lastname.{n}@example.com")).unwrap()
            })
            .collect();
        let claims: Vec<Claim> = addresses
            .iter()
            .enumerate()
            .map(|(i, a)| {
                Claim::new(
                    a,
                    Owner::Object {
                        recipient: i as u32,
                        is_primary: false,
                        shared: false,
                    },
                )
            })
            .collect();
        let mut parallel = claims.clone();
        sort_claims(&mut parallel);
        let mut expected: Vec<&str> = addresses.iter().map(Address::as_str).collect();
        expected.sort_unstable();
        let sorted: Vec<&str> = parallel.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(sorted, expected);
    }
    use crate::source::Entry;

    fn recipient(dn: &str, proxies: &[&str]) -> Recipient {
        let mut e = Entry::new(dn);
        e.push("objectclass", b"user".to_vec());
        for p in proxies {
            e.push("proxyaddresses", p.as_bytes().to_vec());
        }
        Recipient::from_entry(&e, &crate::model::Keep::all(BTreeSet::new()))
    }

    fn accepted() -> BTreeSet<Domain> {
        ["example.com", "example.de"]
            .iter()
            .map(|d| Domain::parse(d).unwrap())
            .collect()
    }

    fn build(recipients: Vec<Recipient>) -> Built {
        let mut b = MapBuilder::new("12345", &accepted(), &RulesConfig::default());
        for r in recipients {
            b.add(r);
        }
        b.finish()
    }

    fn lines(built: &Built) -> Vec<String> {
        built
            .map
            .render(crate::mapfile::LineEnding::Lf)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn aliases_map_to_primary_across_domains_and_foreign_domains_are_counted() {
        let built = build(vec![recipient(
            "CN=John,DC=x",
            &[
                "SMTP:John.Doe@example.com",
                "smtp:j.doe@example.com",
                "smtp:john.doe@example.de",
                "smtp:jd@tenant.onmicrosoft.com",
            ],
        )]);
        assert_eq!(
            lines(&built),
            [
                "12345|example.com\tDOMAIN:\texample.com",
                "12345|example.com\tDIR:\tj.doe@example.com",
                "12345|example.com\tDIR:\tjohn.doe@example.com",
                "12345|example.com\tMAP:\tj.doe@example.com\tjohn.doe@example.com",
                "12345|example.de\tDOMAIN:\texample.de",
                "12345|example.de\tDIR:\tjohn.doe@example.de",
                "12345|example.de\tMAP:\tjohn.doe@example.de\tjohn.doe@example.com",
                "++++",
            ]
        );
        assert_eq!(built.report.dropped[DROP_FOREIGN], 1);
        assert_eq!(built.report.foreign_domains["tenant.onmicrosoft.com"], 1);
    }

    #[test]
    fn conflict_is_resolved_the_same_whatever_the_order() {
        let a = recipient(
            "CN=B,DC=x",
            &["SMTP:b@example.com", "smtp:shared@example.com"],
        );
        let b = recipient(
            "CN=A,DC=x",
            &["SMTP:a@example.com", "smtp:Shared@example.com"],
        );
        let c = recipient("CN=Z,DC=x", &["SMTP:shared@example.com"]);
        let one = build(vec![a.clone(), b.clone(), c.clone()]);
        let two = build(vec![c, b, a]);
        assert_eq!(one.map, two.map);
        assert_eq!(one.report.conflicts, two.report.conflicts);
        // The object that has it as its primary address wins over alias holders.
        assert!(lines(&one).contains(&"12345|example.com\tDIR:\tshared@example.com".to_string()));
        assert!(!lines(&one).iter().any(|l| l.contains("MAP:\tshared@")));
        assert_eq!(one.report.dropped[DROP_CONFLICT], 2);
        assert!(one.report.conflicts.iter().all(|c| c.kept == "CN=Z,DC=x"));
        assert!(one.report.conflicts.iter().all(|c| !c.shared_alias));
        // An alias of two objects and the primary of none: one DIR line, no MAP line (which
        // mailbox it belongs to cannot be told), whatever the order.
        let anna = recipient(
            "CN=Anna Helper,DC=x",
            &["SMTP:anna.helper@example.com", "smtp:helpdesk@example.com"],
        );
        let team = recipient(
            "CN=Helpdesk Team,DC=x",
            &["SMTP:team@example.com", "smtp:helpdesk@example.com"],
        );
        for two_aliases in [
            build(vec![anna.clone(), team.clone()]),
            build(vec![team, anna]),
        ] {
            let lines = lines(&two_aliases);
            let helpdesk: Vec<&String> = lines.iter().filter(|l| l.contains("helpdesk@")).collect();
            assert_eq!(
                helpdesk,
                ["12345|example.com\tDIR:\thelpdesk@example.com"],
                "{lines:?}"
            );
            let c = &two_aliases.report.conflicts[0];
            assert!(c.shared_alias, "{c:?}");
            assert_eq!(
                (c.kept.as_str(), c.dropped.as_str()),
                ("CN=Anna Helper,DC=x", "CN=Helpdesk Team,DC=x")
            );
            assert!(two_aliases
                .explain("helpdesk@example.com")
                .iter()
                .any(|l| l.starts_with(
                    "shared alias: an alias of CN=Anna Helper,DC=x and CN=Helpdesk Team,DC=x"
                )));
        }
    }

    #[test]
    fn primary_in_foreign_domain_gives_no_map_lines() {
        let built = build(vec![recipient(
            "CN=C,DC=x",
            &["SMTP:c@partner.org", "smtp:c@example.com"],
        )]);
        assert!(lines(&built).contains(&"12345|example.com\tDIR:\tc@example.com".to_string()));
        assert!(!lines(&built).iter().any(|l| l.contains("MAP:")));
        assert_eq!(built.report.primary_not_accepted, 1);
    }

    #[test]
    fn explain_names_object_attribute_and_lines() {
        let built = build(vec![recipient(
            "CN=John,DC=x",
            &["SMTP:john@example.com", "smtp:jd@example.com"],
        )]);
        let text = built.explain("JD@example.com").join("\n");
        assert!(
            text.contains("found on CN=John,DC=x (user) in proxyAddresses (smtp:, alias)"),
            "{text}"
        );
        assert!(
            text.contains("12345|example.com\tMAP:\tjd@example.com\tjohn@example.com"),
            "{text}"
        );
        let none = built.explain("x@other.org").join("\n");
        assert!(
            none.contains("not in `domains`") && none.contains("MAP lines: none"),
            "{none}"
        );
    }

    fn rules(text: &str) -> RulesConfig {
        let t: toml::Table = toml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let r = RulesConfig::parse(
            t.get("filter"),
            t.get("addresses"),
            t.get("profiles"),
            t.get("signature"),
            t.get("routing"),
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        r
    }

    fn person(
        dn: &str,
        proxies: &[&str],
        attrs: &[(&str, &str)],
        rules: &RulesConfig,
    ) -> Recipient {
        let mut e = Entry::new(dn);
        e.push("objectclass", b"user".to_vec());
        for p in proxies {
            e.push("proxyaddresses", p.as_bytes().to_vec());
        }
        for (k, v) in attrs {
            e.push(k, v.as_bytes().to_vec());
        }
        Recipient::from_entry(&e, &crate::model::Keep::all(rules.attributes()))
    }

    fn build_with(rules: &RulesConfig, recipients: Vec<Recipient>) -> Vec<String> {
        let mut b = MapBuilder::new("12345", &accepted(), rules);
        for r in recipients {
            b.add(r);
        }
        lines(&b.finish())
            .into_iter()
            .filter(|l| !l.contains("DOMAIN:") && l != "++++")
            .collect()
    }

    #[test]
    fn first_matching_filter_decides_and_the_default_applies_otherwise() {
        let r = rules(
            r#"
[filter]
default = "exclude"
[[filter.rule]]
action = "include"
when = { attribute = "department", equals = "Sales" }
[[filter.rule]]
action = "exclude"
when = { attribute = "title", equals = "Intern" }
[[filter.rule]]
action = "include"
when = { attribute = "title", present = true }
"#,
        );
        let out = build_with(
            &r,
            vec![
                person(
                    "CN=A",
                    &["SMTP:a@example.com"],
                    &[("department", "Sales"), ("title", "Intern")],
                    &r,
                ),
                person("CN=B", &["SMTP:b@example.com"], &[("title", "Intern")], &r),
                person("CN=C", &["SMTP:c@example.com"], &[("title", "Manager")], &r),
                person("CN=D", &["SMTP:d@example.com"], &[], &r),
            ],
        );
        assert_eq!(
            out,
            [
                "12345|example.com\tDIR:\ta@example.com",
                "12345|example.com\tDIR:\tc@example.com"
            ]
        );
    }

    #[test]
    fn extra_and_excluded_addresses() {
        let r = rules("[addresses]\nextra = [\"postmaster@example.com\", \"a@example.com\"]\nexclude = [\"test-*@example.com\"]\n");
        let out = build_with(
            &r,
            vec![person(
                "CN=A",
                &["SMTP:a@example.com", "smtp:test-a@example.com"],
                &[],
                &r,
            )],
        );
        assert_eq!(
            out,
            [
                "12345|example.com\tDIR:\ta@example.com",
                "12345|example.com\tDIR:\tpostmaster@example.com"
            ]
        );
    }

    #[test]
    fn profiles_from_constants_attributes_mapping_tables_and_dn() {
        let r = rules(
            r#"
[profiles]
default = "Standard"
aliases = false
[[profiles.rule]]
when = { attribute = "title", equals = "CEO" }
profile = "VIP"
[[profiles.rule]]
from_attribute = "department"
map = { sales = "Sales Profile" }
[[profiles.rule]]
from_dn = "OU"
"#,
        );
        let out = build_with(
            &r,
            vec![
                person(
                    "CN=A,OU=Berlin,DC=x",
                    &["SMTP:a@example.com", "smtp:alias-a@example.com"],
                    &[("title", "CEO"), ("department", "Sales")],
                    &r,
                ),
                person(
                    "CN=B,OU=Berlin,DC=x",
                    &["SMTP:b@example.com"],
                    &[("department", "SALES")],
                    &r,
                ),
                person(
                    "CN=C,OU=Hamburg,DC=x",
                    &["SMTP:c@example.com"],
                    &[("department", "Unmapped")],
                    &r,
                ),
                person("CN=D", &["SMTP:d@example.com"], &[], &r),
            ],
        );
        let profiles: Vec<&String> = out.iter().filter(|l| l.contains("PROFILE:")).collect();
        assert_eq!(
            profiles,
            [
                "12345|example.com\tPROFILE:\ta@example.com\tVIP",
                "12345|example.com\tPROFILE:\tb@example.com\tSales Profile",
                "12345|example.com\tPROFILE:\tc@example.com\tHamburg",
                "12345|example.com\tPROFILE:\td@example.com\tStandard",
            ]
        );
    }

    #[test]
    fn signature_values_are_cleaned_shortened_and_reported() {
        let r = rules("[signature]\nmax_length = 12\nfields = { Name = \"{givenName} {sn}\", Title = \"title\" }\n");
        let mut b = MapBuilder::new("12345", &accepted(), &r);
        b.add(person(
            "CN=A",
            &["SMTP:a@example.com", "smtp:x@example.com"],
            &[
                ("givenName", "Jörg"),
                ("sn", "Müller"),
                ("title", "Head of\tSales\r\nEMEA"),
            ],
            &r,
        ));
        b.add(person(
            "CN=B",
            &["SMTP:b@example.com"],
            &[("sn", "Solo")],
            &r,
        ));
        let built = b.finish();
        let out: Vec<String> = lines(&built)
            .into_iter()
            .filter(|l| l.contains("P13N:"))
            .collect();
        assert_eq!(
            out,
            [
                "12345|example.com\tP13N:\ta@example.com\tName\tJörg Müller",
                "12345|example.com\tP13N:\ta@example.com\tTitle\tHead of Sale",
                "12345|example.com\tP13N:\tb@example.com\tName\tSolo",
            ]
        );
        assert_eq!(built.report.cleaned_values_total, 1);
        assert_eq!(
            built.report.cleaned_values[0].reason,
            "control characters replaced; cut to 12 characters"
        );
        assert_eq!(built.report.cleaned_values[0].dn, "CN=A");
    }

    #[test]
    fn routing_gives_one_value_per_key_first_rule_wins() {
        let r = rules(
            r#"
[[routing.rule]]
when = { attribute = "department", equals = "Logistics" }
value = "eu-relay"
[[routing.rule]]
from_attribute = "extensionAttribute5"
[[routing.rule]]
key = "archive"
when = { attribute = "title", present = true }
value = "yes"
"#,
        );
        let out = build_with(
            &r,
            vec![
                person(
                    "CN=A",
                    &["SMTP:a@example.com", "smtp:alias@example.com"],
                    &[
                        ("department", "Logistics"),
                        ("extensionAttribute5", "us-relay"),
                        ("title", "x"),
                    ],
                    &r,
                ),
                person(
                    "CN=B",
                    &["SMTP:b@example.com"],
                    &[("extensionAttribute5", "us-relay")],
                    &r,
                ),
            ],
        );
        let ucfg: Vec<&String> = out.iter().filter(|l| l.contains("UCFG:")).collect();
        assert_eq!(
            ucfg,
            [
                "12345|example.com\tUCFG:\ta@example.com\tarchive\tyes",
                "12345|example.com\tUCFG:\ta@example.com\trouting\teu-relay",
                "12345|example.com\tUCFG:\tb@example.com\trouting\tus-relay",
            ]
        );
    }

    #[test]
    fn dn_components_respect_escaped_commas() {
        assert_eq!(
            dn_components("CN=Doe\\, John,OU=Sales,DC=x"),
            [
                ("CN".to_string(), "Doe, John".to_string()),
                ("OU".into(), "Sales".into()),
                ("DC".into(), "x".into())
            ]
        );
    }
}
