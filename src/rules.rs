//! The rules stage: which addresses go into the MAP file, and which records they get.
//!
//! Input is a stream of [`Recipient`]s; output is a [`MapFile`] and a [`BuildReport`]. Today
//! the rules are the fixed ones every map needs: an address must be valid and in an accepted
//! domain, each address belongs to exactly one object (conflicts are resolved
//! deterministically and reported), and each alias gets a `MAP:` line to its primary.
//! Attribute filters, profiles, signature data and routing are not implemented yet.
//! Nothing here does I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::mapfile::{MapFile, Record};
use crate::model::{Address, Domain, ObjectKind, Origin, Recipient};

/// How many individual problems the report lists per kind (counts are always complete).
const LISTED: usize = 100;

/// Who holds an address.
#[derive(Debug, Clone)]
struct Claim {
    recipient: usize,
    is_primary: bool,
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
    pub conflicts: Vec<Conflict>,
    pub invalid: Vec<InvalidValue>,
    /// Objects whose primary address is not in an accepted domain: their aliases get no
    /// `MAP:` line.
    pub primary_not_accepted: u64,
    /// Objects with more than one `SMTP:` proxy address.
    pub several_primaries: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Conflict {
    pub address: String,
    pub kept: String,
    pub dropped: String,
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

/// Builds the MAP file from recipients, one at a time.
pub struct MapBuilder {
    customer_id: String,
    accepted: BTreeSet<Domain>,
    recipients: Vec<Recipient>,
    owners: BTreeMap<Address, Claim>,
    /// Claims that lost a conflict; reported against the final owner in `finish`.
    losers: Vec<(Address, Claim)>,
    report: BuildReport,
}

/// The finished build: the MAP file, the report, and what is needed to explain it.
pub struct Built {
    pub map: MapFile,
    pub report: BuildReport,
    pub recipients: Vec<Recipient>,
}

impl MapBuilder {
    pub fn new(customer_id: &str, accepted: &BTreeSet<Domain>) -> Self {
        MapBuilder {
            customer_id: customer_id.to_owned(),
            accepted: accepted.clone(),
            recipients: Vec::new(),
            owners: BTreeMap::new(),
            losers: Vec::new(),
            report: BuildReport::default(),
        }
    }

    fn is_accepted(&self, address: &Address) -> bool {
        self.accepted.iter().any(|d| d.as_str() == address.domain())
    }

    pub fn add(&mut self, recipient: Recipient) {
        let report = &mut self.report;
        *report.objects.entry(recipient.kind).or_default() += 1;
        report.objects_disabled += u64::from(recipient.disabled);
        report.several_primaries += u64::from(recipient.extra_primaries > 0);
        for r in &recipient.rejected {
            *report.dropped.entry(DROP_INVALID).or_default() += 1;
            if report.invalid.len() < LISTED {
                report.invalid.push(InvalidValue {
                    dn: recipient.dn.clone(),
                    value: r.raw.clone(),
                    reason: format!("{} in {}", r.error, r.origin.describe()),
                });
            }
        }
        if recipient.primary.is_none() {
            self.report.objects_without_address += 1;
        }
        if recipient
            .primary
            .as_ref()
            .is_some_and(|p| !self.is_accepted(p))
        {
            self.report.primary_not_accepted += 1;
        }

        let index = self.recipients.len();
        let mut claims = Vec::new();
        for (address, origin) in recipient.addresses() {
            if !self.is_accepted(address) {
                *self.report.dropped.entry(DROP_FOREIGN).or_default() += 1;
                *self
                    .report
                    .foreign_domains
                    .entry(address.domain().to_owned())
                    .or_default() += 1;
                continue;
            }
            let is_primary = Some(address) == recipient.primary.as_ref();
            debug_assert!(
                is_primary || origin != Origin::ProxyPrimary || recipient.extra_primaries > 0
            );
            claims.push((address.clone(), is_primary));
        }
        self.recipients.push(recipient);
        for (address, is_primary) in claims {
            self.claim(
                address,
                Claim {
                    recipient: index,
                    is_primary,
                },
            );
        }
    }

    /// Gives an address to one object. The winner does not depend on input order: the
    /// object that has it as its primary address, else the one whose DN sorts first.
    fn claim(&mut self, address: Address, new: Claim) {
        let Some(old) = self.owners.get(&address) else {
            self.owners.insert(address, new);
            return;
        };
        let key = |c: &Claim| {
            (
                !c.is_primary,
                self.recipients[c.recipient].dn.to_lowercase(),
            )
        };
        let (kept, dropped) = if key(&new) < key(old) {
            (new, old.clone())
        } else {
            (old.clone(), new)
        };
        *self.report.dropped.entry(DROP_CONFLICT).or_default() += 1;
        self.losers.push((address.clone(), dropped));
        self.owners.insert(address, kept);
    }

    pub fn finish(mut self) -> Built {
        let mut map = MapFile::new(&self.customer_id);
        for domain in &self.accepted {
            map.add_domain(domain.as_str());
        }
        for (address, claim) in &self.owners {
            let domain = address.domain();
            *self
                .report
                .addresses_per_domain
                .entry(domain.to_owned())
                .or_default() += 1;
            map.insert(domain, Record::Dir(address.to_string()));
            if claim.is_primary {
                continue;
            }
            let owner = &self.recipients[claim.recipient];
            if let Some(primary) = owner
                .primary
                .as_ref()
                .filter(|p| self.owners.contains_key(*p))
            {
                map.insert(
                    domain,
                    Record::Map {
                        alias: address.to_string(),
                        primary: primary.to_string(),
                    },
                );
            }
        }
        for domain in &self.accepted {
            self.report
                .addresses_per_domain
                .entry(domain.as_str().to_owned())
                .or_default();
        }
        let mut conflicts: Vec<Conflict> = self
            .losers
            .iter()
            .map(|(address, lost)| Conflict {
                address: address.to_string(),
                kept: self.recipients[self.owners[address].recipient].dn.clone(),
                dropped: self.recipients[lost.recipient].dn.clone(),
            })
            .collect();
        conflicts.sort_by(|a, b| (&a.address, &a.dropped).cmp(&(&b.address, &b.dropped)));
        conflicts.truncate(LISTED);
        self.report.conflicts = conflicts;
        Built {
            map,
            report: self.report,
            recipients: self.recipients,
        }
    }
}

impl Built {
    /// Explains what happens to one address: every object that carries it, in which
    /// attribute, whether it was kept, and the MAP lines it produces.
    pub fn explain(&self, query: &str, accepted: &BTreeSet<Domain>) -> Vec<String> {
        let mut out = Vec::new();
        let wanted = match Address::parse(query.trim()) {
            Ok(a) => a,
            Err(e) => {
                out.push(format!("{query:?} is not a valid address: {e}"));
                return out;
            }
        };
        if !accepted.iter().any(|d| d.as_str() == wanted.domain()) {
            out.push(format!(
                "{wanted}: its domain {} is not in `domains`, so it cannot be in the map",
                wanted.domain()
            ));
        }
        let mut found = false;
        for r in &self.recipients {
            for (address, origin) in r.addresses() {
                if *address == wanted {
                    found = true;
                    out.push(format!(
                        "found on {} ({}{}) in {}",
                        r.dn,
                        r.kind.name(),
                        if r.disabled { ", disabled" } else { "" },
                        origin.describe()
                    ));
                    if let Some(guid) = &r.object_guid {
                        out.push(format!("  objectGUID {guid}"));
                    }
                    if r.kind == ObjectKind::Group {
                        out.push(format!("  {} members", r.members));
                    }
                    for group in &r.member_of {
                        out.push(format!("  member of {group}"));
                    }
                    if let Some(p) = r.primary.as_ref().filter(|p| **p != wanted) {
                        out.push(format!("  its primary address is {p}"));
                    }
                }
            }
            for rej in &r.rejected {
                if rej.raw.trim().eq_ignore_ascii_case(wanted.as_str()) {
                    out.push(format!("found on {} but rejected: {}", r.dn, rej.error));
                }
            }
        }
        if !found {
            out.push(format!("{wanted} is on no object read from the directory"));
        }
        if let Some(c) = self
            .report
            .conflicts
            .iter()
            .find(|c| c.address == wanted.as_str())
        {
            out.push(format!(
                "conflict: also on {}; kept for {} (primary address wins, then the DN that sorts first)",
                c.dropped, c.kept
            ));
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
    use crate::source::Entry;

    fn recipient(dn: &str, proxies: &[&str]) -> Recipient {
        let mut e = Entry::new(dn);
        e.push("objectclass", b"user".to_vec());
        for p in proxies {
            e.push("proxyaddresses", p.as_bytes().to_vec());
        }
        Recipient::from_entry(&e)
    }

    fn accepted() -> BTreeSet<Domain> {
        ["example.com", "example.de"]
            .iter()
            .map(|d| Domain::parse(d).unwrap())
            .collect()
    }

    fn build(recipients: Vec<Recipient>) -> Built {
        let mut b = MapBuilder::new("12345", &accepted());
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
        // Between two alias holders, the DN that sorts first.
        let two_aliases = build(vec![
            recipient("CN=B,DC=x", &["SMTP:b@example.com", "smtp:s@example.com"]),
            recipient("CN=A,DC=x", &["SMTP:a@example.com", "smtp:s@example.com"]),
        ]);
        assert!(lines(&two_aliases)
            .contains(&"12345|example.com\tMAP:\ts@example.com\ta@example.com".to_string()));
        assert_eq!(two_aliases.report.conflicts[0].dropped, "CN=B,DC=x");
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
        let text = built.explain("JD@example.com", &accepted()).join("\n");
        assert!(
            text.contains("found on CN=John,DC=x (user) in proxyAddresses (smtp:, alias)"),
            "{text}"
        );
        assert!(
            text.contains("12345|example.com\tMAP:\tjd@example.com\tjohn@example.com"),
            "{text}"
        );
        let none = built.explain("x@other.org", &accepted()).join("\n");
        assert!(
            none.contains("not in `domains`") && none.contains("MAP lines: none"),
            "{none}"
        );
    }
}
