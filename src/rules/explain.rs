//! `dirsync explain`: for one address, every object that carries it and in which attribute,
//! what the rules decided, any conflict, and the MAP lines it produces.

use super::claims::holders;
use super::report::Conflict;
use super::Built;
use crate::model::{Address, ObjectKind};

impl Built {
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
            .find(|p| p.matches(wanted.as_str()))
        {
            out.push(format!(
                "excluded by addresses.exclude pattern {:?}",
                p.as_str()
            ));
        }
        if self.rules.extra_addresses.contains(&wanted) {
            out.push("listed in addresses.extra".into());
        }
        let found = self.holders(&wanted, &mut out);
        if !found && !self.rules.extra_addresses.contains(&wanted) {
            out.push(format!("{wanted} is on no object read from the directory"));
        }
        self.conflict(&wanted, &mut out);
        self.map_lines(&wanted, &mut out);
        out
    }

    /// Every object that carries `wanted`, in which attribute, and what the rules decided for
    /// it; whether there was any.
    fn holders(&self, wanted: &Address, out: &mut Vec<String>) -> bool {
        let mut found = false;
        for (i, r) in self.recipients.iter().enumerate() {
            for (address, origin) in r.addresses() {
                if address != wanted {
                    continue;
                }
                found = true;
                out.push(format!(
                    "found on {} ({}{}{}) in {}",
                    r.who(),
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
                if let Some(p) = r.primary.as_ref().filter(|p| *p != wanted) {
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
                    out.push(format!("found on {} but rejected: {}", r.who(), rej.error));
                }
            }
        }
        found
    }

    /// The conflict `wanted` was part of, if any.
    fn conflict(&self, wanted: &Address, out: &mut Vec<String>) {
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
    }

    /// The MAP lines of `wanted`.
    fn map_lines(&self, wanted: &Address, out: &mut Vec<String>) {
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
    }
}
