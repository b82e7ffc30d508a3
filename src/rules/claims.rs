//! Who owns each address: every object's claims on its addresses, resolved to one owner per
//! address whatever the order the directory came in.
//!
//! An object holding an address as its primary wins; among objects holding it only as an
//! alias, the DN that sorts first keeps its `DIR:` line, but the address is marked shared and
//! gets no `MAP:` line; an `addresses.extra` entry owns an address only when no object has it.
//! This module decides ownership only; what records an owner gets is `mod.rs`.

use std::collections::BTreeSet;

use super::report::{count_foreign, BuildReport, Conflict, Decision, DROP_EXCLUDED, DROP_FILTERED};
use super::spec::RulesConfig;
use super::values::filter_label;
use crate::model::{Address, Recipient};

/// Who holds an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Object {
        /// Index into the recipients (u32: keeps a claim small).
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

/// An address and who claims it.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub address: &'a Address,
    pub owner: Owner,
}

/// Every claim on an address in an accepted domain by an object the filters keep, and every
/// `addresses.extra` entry, sorted by address. What is left out is counted in `report`.
pub fn collect<'a>(
    recipients: &'a [Recipient],
    decisions: &[Decision],
    accepted: &BTreeSet<String>,
    rules: &'a RulesConfig,
    report: &mut BuildReport,
) -> Vec<Claim<'a>> {
    let mut claims = Vec::with_capacity(recipients.len() * 3);
    for (index, (r, decision)) in recipients.iter().zip(decisions).enumerate() {
        if r.primary
            .as_ref()
            .is_some_and(|p| !accepted.contains(p.domain()))
        {
            report.primary_not_accepted += 1;
        }
        if decision.excluded {
            report
                .excluded_by_rule
                .entry(filter_label(rules, decision.rule))
                .or_default()
                .objects += 1;
        }
        for (address, _) in r.addresses() {
            if !accepted.contains(address.domain()) {
                count_foreign(report, address);
            } else if decision.excluded {
                *report.dropped.entry(DROP_FILTERED).or_default() += 1;
                report
                    .excluded_by_rule
                    .entry(filter_label(rules, decision.rule))
                    .or_default()
                    .addresses += 1;
            } else if rules
                .exclude_addresses
                .iter()
                .any(|p| p.matches(address.as_str()))
            {
                *report.dropped.entry(DROP_EXCLUDED).or_default() += 1;
            } else {
                claims.push(Claim {
                    address,
                    owner: Owner::Object {
                        recipient: index as u32,
                        is_primary: Some(address) == r.primary.as_ref(),
                        shared: false,
                    },
                });
            }
        }
    }
    claims.extend(rules.extra_addresses.iter().map(|address| Claim {
        address,
        owner: Owner::Extra,
    }));
    claims.sort_unstable_by(|a, b| a.address.cmp(b.address));
    claims
}

/// The owner of every address (sorted by address), the claims that lost, and which objects'
/// primary addresses have an owner.
pub struct Resolved<'a> {
    owners: Vec<Claim<'a>>,
    losers: Vec<Claim<'a>>,
    primary_owned: Vec<bool>,
}

/// Resolves claims sorted by address (see the module's rules).
pub fn resolve<'a>(recipients: &[Recipient], claims: Vec<Claim<'a>>) -> Resolved<'a> {
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
    let mut resolved = Resolved {
        owners: Vec::with_capacity(claims.len()),
        losers: Vec::new(),
        primary_owned: vec![false; recipients.len()],
    };
    for group in claims.chunk_by(|a, b| a.address == b.address) {
        for claim in group {
            if let Owner::Object {
                recipient,
                is_primary: true,
                ..
            } = claim.owner
            {
                resolved.primary_owned[recipient as usize] = true;
            }
        }
        let mut winner = match group {
            [only] => *only,
            _ => match group.iter().min_by_key(|c| key(c.owner)) {
                Some(w) => *w,
                None => continue,
            },
        };
        if group.len() > 1 {
            resolved
                .losers
                .extend(group.iter().filter(|c| c.owner != winner.owner));
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
        }
        resolved.owners.push(winner);
    }
    resolved
}

impl<'a> Resolved<'a> {
    /// Claims of objects that lost (an `addresses.extra` entry losing is no conflict).
    pub fn objects_lost(&self) -> u64 {
        self.losers
            .iter()
            .filter(|c| !matches!(c.owner, Owner::Extra))
            .count() as u64
    }

    /// The owner of every address, in address order.
    pub fn owners(&self) -> &[Claim<'a>] {
        &self.owners
    }

    /// Whether the primary address of object `recipient` has an owner (it can have lost it
    /// to an object holding it as its primary too).
    pub fn primary_is_owned(&self, recipient: u32, primary: &Address) -> bool {
        self.primary_owned[recipient as usize] || self.owner_of(primary).is_some()
    }

    /// Who owns an address.
    pub fn owner_of(&self, address: &Address) -> Option<Owner> {
        self.owners
            .binary_search_by(|o| o.address.cmp(address))
            .ok()
            .map(|i| self.owners[i].owner)
    }

    /// The conflicts, sorted by address and loser, at most `limit`.
    pub fn conflicts(&self, recipients: &[Recipient], limit: usize) -> Vec<Conflict> {
        let mut conflicts: Vec<Conflict> = self
            .losers
            .iter()
            .filter(|lost| !matches!(lost.owner, Owner::Extra))
            .map(|lost| {
                let kept = self.owner_of(lost.address);
                Conflict {
                    address: lost.address.to_string(),
                    kept: kept.map(|o| owner_name(recipients, o)).unwrap_or_default(),
                    dropped: owner_name(recipients, lost.owner),
                    shared_alias: matches!(kept, Some(Owner::Object { shared: true, .. })),
                }
            })
            .collect();
        conflicts.sort_by(|a, b| (&a.address, &a.dropped).cmp(&(&b.address, &b.dropped)));
        conflicts.truncate(limit);
        conflicts
    }
}

fn owner_name(recipients: &[Recipient], owner: Owner) -> String {
    match owner {
        Owner::Object { recipient, .. } => recipients[recipient as usize].who().into_owned(),
        Owner::Extra => "addresses.extra".into(),
    }
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
