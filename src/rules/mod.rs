//! The rules stage: which addresses go into the MAP file, and which records they get.
//!
//! Input is every [`Recipient`] read; output is a [`MapFile`] and a [`BuildReport`]. Fixed
//! rules every map needs: an address must be valid and in an accepted domain, each address
//! belongs to exactly one object (conflicts are resolved deterministically and reported), and
//! each alias gets a `MAP:` line to its primary. Configured rules (`spec`): filters (first
//! match decides), extra and excluded addresses, profiles (`PROFILE:`), signature data
//! (`P13N:`) and routing (`UCFG:`). Rules run after the whole directory is read, so group
//! nesting is known. Nothing here does I/O.

mod claims;
pub mod condition;
mod explain;
mod report;
pub mod spec;
mod values;

use std::collections::BTreeSet;

use crate::mapfile::{Block, MapFile, Record, Setting};
use crate::model::{Address, Domain, Recipient};
pub use claims::holders;
use claims::Owner;
use condition::Groups;
pub use report::*;
use spec::RulesConfig;

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
                    dn: recipient.who().into_owned(),
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
        let groups = Groups::new(&recipients);
        let decisions: Vec<Decision> = recipients
            .iter()
            .map(|r| values::decide(&rules, r, &groups))
            .collect();
        let claims = claims::collect(&recipients, &decisions, &accepted, &rules, &mut report);
        let resolved = claims::resolve(&recipients, claims);
        let lost = resolved.objects_lost();
        if lost > 0 {
            *report.dropped.entry(DROP_CONFLICT).or_default() += lost;
        }
        let profiles: Vec<Option<(String, String)>> = recipients
            .iter()
            .zip(&decisions)
            .map(|(r, d)| {
                (!d.excluded)
                    .then(|| values::profile(&rules, r, &groups))
                    .flatten()
            })
            .collect();
        let records = Records {
            rules: &rules,
            recipients: &recipients,
            groups: &groups,
            profiles: &profiles,
            resolved: &resolved,
        };
        let map = records.map(&customer_id, &accepted, &mut report);
        report.conflicts = resolved.conflicts(&recipients, LISTED);
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

/// What makes the records of a domain: the owners of its addresses and what the rules give
/// each object.
struct Records<'a> {
    rules: &'a RulesConfig,
    recipients: &'a [Recipient],
    groups: &'a Groups,
    profiles: &'a [Option<(String, String)>],
    resolved: &'a claims::Resolved<'a>,
}

impl Records<'_> {
    /// The map: one block per accepted domain, filled in one pass over the owners (which
    /// come in address order, so each block's lists arrive in order).
    fn map(
        &self,
        customer_id: &str,
        accepted: &BTreeSet<String>,
        report: &mut BuildReport,
    ) -> MapFile {
        let mut blocks: Vec<(&str, Block, u64)> = accepted
            .iter()
            .map(|d| (d.as_str(), Block::default(), 0))
            .collect();
        let mut last = 0;
        for claim in self.resolved.owners() {
            let domain = claim.address.domain();
            if blocks.get(last).is_none_or(|(d, ..)| *d != domain) {
                match blocks.iter().position(|(d, ..)| *d == domain) {
                    Some(i) => last = i,
                    None => continue,
                }
            }
            let (_, block, count) = &mut blocks[last];
            *count += 1;
            self.records(block, claim, report);
        }
        let mut map = MapFile::new(customer_id);
        for (domain, block, count) in blocks {
            map.domains.insert(domain.to_owned(), block.finish());
            report.addresses_per_domain.insert(domain.to_owned(), count);
        }
        map
    }

    /// The records of one address: its `DIR:` line, and what its owner gives it.
    fn records(&self, block: &mut Block, claim: &claims::Claim, report: &mut BuildReport) {
        {
            let address = claim.address;
            block.push(Record::Dir(address.shared()));
            let Owner::Object {
                recipient,
                is_primary,
                shared,
            } = claim.owner
            else {
                return;
            };
            let r = &self.recipients[recipient as usize];
            if let Some(source) = &r.source {
                *report
                    .addresses_per_source
                    .entry(source.to_string())
                    .or_default() += 1;
            }
            if !is_primary && !shared {
                if let Some(primary) = r
                    .primary
                    .as_ref()
                    .filter(|p| self.resolved.primary_is_owned(recipient, p))
                {
                    block.push(Record::Map {
                        alias: address.shared(),
                        primary: primary.shared(),
                    });
                }
            }
            if let Some((name, _)) = &self.profiles[recipient as usize] {
                if is_primary || (self.rules.profiles.aliases && !shared) {
                    block.push(Record::Profile {
                        address: address.shared(),
                        profile: name.as_str().into(),
                    });
                }
            }
            if is_primary {
                self.settings(block, address, r, report);
            }
        }
    }

    /// The `P13N:` and `UCFG:` records of a primary address.
    fn settings(
        &self,
        block: &mut Block,
        address: &Address,
        r: &Recipient,
        report: &mut BuildReport,
    ) {
        for (field, value) in values::signature(self.rules, r, report) {
            block.push(Record::P13n(Setting::new(address.shared(), field, value)));
        }
        for (key, value) in values::routing(self.rules, r, self.groups) {
            block.push(Record::Ucfg(Setting::new(address.shared(), key, value)));
        }
        if let Some(key) = &self.rules.group_owner_key {
            for owner in &r.owners {
                block.push(Record::Ucfg(Setting::new(
                    address.shared(),
                    key.as_str(),
                    owner.shared(),
                )));
            }
        }
    }
}

/// The map and the report of a build, without what only `explain` needs.
pub struct MapAndReport {
    pub map: MapFile,
    pub report: BuildReport,
}

impl Built {
    /// Drops the recipients and the per-object decisions (a large share of the memory).
    pub fn into_map_and_report(self) -> MapAndReport {
        MapAndReport {
            map: self.map,
            report: self.report,
        }
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
        let mut problems = crate::problems::Problems::new(std::path::Path::new("/"));
        let r = RulesConfig::parse(
            t.get("filter"),
            t.get("addresses"),
            t.get("profiles"),
            t.get("signature"),
            t.get("routing"),
            &mut problems,
        );
        assert!(problems.is_empty(), "{:?}", problems.into_list());
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
            values::dn_components("CN=Doe\\, John,OU=Sales,DC=x"),
            [
                ("CN".to_string(), "Doe, John".to_string()),
                ("OU".into(), "Sales".into()),
                ("DC".into(), "x".into())
            ]
        );
    }
}
