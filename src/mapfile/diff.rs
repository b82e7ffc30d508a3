//! What changed between two MAP files, per domain: for the deletion guard and `dirsync diff`.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{Block, MapFile, Record};

/// The differences between two MAP files, per domain.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MapDiff {
    pub domains: BTreeMap<String, DomainDiff>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct DomainDiff {
    pub old_dirs: usize,
    pub new_dirs: usize,
    pub added: Vec<Record>,
    pub removed: Vec<Record>,
}

impl DomainDiff {
    pub fn dirs_added(&self) -> usize {
        self.added
            .iter()
            .filter(|r| matches!(r, Record::Dir(_)))
            .count()
    }
    pub fn dirs_removed(&self) -> usize {
        self.removed
            .iter()
            .filter(|r| matches!(r, Record::Dir(_)))
            .count()
    }
}

impl MapDiff {
    pub fn between(old: &MapFile, new: &MapFile) -> MapDiff {
        let empty = Block::default();
        let names: BTreeSet<&String> = old.domains.keys().chain(new.domains.keys()).collect();
        let mut domains = BTreeMap::new();
        for name in names {
            let before = old.domains.get(name).unwrap_or(&empty);
            let after = new.domains.get(name).unwrap_or(&empty);
            let count = |s: &Block| s.iter().filter(|r| matches!(r, Record::Dir(_))).count();
            domains.insert(
                name.clone(),
                DomainDiff {
                    old_dirs: count(before),
                    new_dirs: count(after),
                    added: after.minus(before),
                    removed: before.minus(after),
                },
            );
        }
        MapDiff { domains }
    }

    pub fn dirs_added(&self) -> usize {
        self.domains.values().map(DomainDiff::dirs_added).sum()
    }

    pub fn dirs_removed(&self) -> usize {
        self.domains.values().map(DomainDiff::dirs_removed).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.domains
            .values()
            .all(|d| d.added.is_empty() && d.removed.is_empty())
    }

    /// One line per domain with counts per record type, e.g.
    /// `example.com: DIR 120 -> 118 (+1 -3), MAP +0 -2`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (domain, d) in &self.domains {
            let _ = write!(
                out,
                "  {domain}: DIR {} -> {} (+{} -{})",
                d.old_dirs,
                d.new_dirs,
                d.dirs_added(),
                d.dirs_removed()
            );
            for tag in ["MAP:", "PROFILE:", "UCFG:", "P13N:"] {
                let plus = d.added.iter().filter(|r| r.tag() == tag).count();
                let minus = d.removed.iter().filter(|r| r.tag() == tag).count();
                if plus + minus > 0 {
                    let _ = write!(out, ", {} +{plus} -{minus}", tag.trim_end_matches(':'));
                }
            }
            out.push('\n');
        }
        out
    }

    /// The summary followed by every changed record, `+`/`-` prefixed.
    pub fn details(&self) -> String {
        let mut out = self.summary();
        for (domain, d) in &self.domains {
            for (sign, records) in [('-', &d.removed), ('+', &d.added)] {
                for r in records {
                    let _ = writeln!(
                        out,
                        "{sign} {domain}\t{}\t{}",
                        r.tag(),
                        r.values().join("\t")
                    );
                }
            }
        }
        out
    }
}
