//! The checks a MAP file must pass before it may leave the machine (map-format.md): one
//! `DOMAIN:` per domain, one `DIR:` per address, every address of the other records declared,
//! accepted domains only, no empty domain unless allowed, and the round trip.
use std::collections::BTreeSet;
use std::io::BufRead;

use super::parse::split_line;
use super::render::valid_value;
use super::{MapFile, Record, END_MARKER};

impl MapFile {
    /// The checks of map-format.md that a file must pass before it may leave the machine.
    /// Returns every problem found (empty = fine).
    pub fn verify(
        &self,
        accepted: &BTreeSet<String>,
        allow_empty: &BTreeSet<String>,
    ) -> Vec<String> {
        self.problems(accepted, allow_empty, true)
    }

    /// As [`verify`](Self::verify), except for the characters of each value: for a map about
    /// to be written with [`render_checked_to`](Self::render_checked_to), which checks them
    /// as it renders each line (when they are in the cache anyway).
    pub fn verify_structure(
        &self,
        accepted: &BTreeSet<String>,
        allow_empty: &BTreeSet<String>,
    ) -> Vec<String> {
        self.problems(accepted, allow_empty, false)
    }

    fn problems(
        &self,
        accepted: &BTreeSet<String>,
        allow_empty: &BTreeSet<String>,
        values: bool,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        if !valid_value(&self.customer_id) || self.customer_id.contains('|') {
            problems.push(format!(
                "customer id {:?} cannot be written",
                self.customer_id
            ));
        }
        let mut dirs = std::collections::HashSet::with_capacity_and_hasher(
            self.domains.values().map(|b| b.dirs().len()).sum(),
            foldhash::fast::RandomState::default(),
        );
        for (domain, block) in &self.domains {
            for record in block.dirs() {
                let Record::Dir(a) = record else { continue };
                if a.rsplit_once('@').map(|(_, d)| d) != Some(domain) {
                    problems.push(format!("{domain}: DIR: {a} is not in domain {domain}"));
                }
                dirs.insert(&**a);
            }
        }
        for (domain, block) in &self.domains {
            if !accepted.contains(domain) {
                problems.push(format!("domain {domain} is not an accepted domain"));
            }
            // Without the values, the DIR records need no second look.
            let records: Box<dyn Iterator<Item = &Record>> = if values {
                Box::new(block.iter())
            } else {
                Box::new(block.iter_after_dirs())
            };
            for record in records {
                for value in record.values().iter().filter(|_| values) {
                    if !valid_value(value) {
                        problems.push(bad_value(domain, record.tag(), value));
                    }
                }
                if matches!(record, Record::Dir(_)) {
                    continue;
                }
                for address in record.addresses().iter() {
                    if !dirs.contains(address) {
                        problems.push(format!(
                            "{domain}: {} refers to {address}, which has no DIR: line",
                            record.tag()
                        ));
                    }
                }
            }
            if block.dirs().is_empty() && !allow_empty.contains(domain) {
                problems.push(format!("domain {domain} has no DIR: lines"));
            }
        }
        problems
    }
}

impl MapFile {
    /// The round-trip check: `text` (as rendered) parses back into exactly these records, in
    /// order, ending with the end marker. Streams over the text: no second copy of the map.
    pub fn check_round_trip(&self, text: &str) -> Result<(), String> {
        self.check_round_trip_from(text.as_bytes())
    }

    /// As [`check_round_trip`](Self::check_round_trip), reading the file as it was written.
    pub fn check_round_trip_from(&self, reader: impl BufRead) -> Result<(), String> {
        let mut expected = self.domains.iter().flat_map(|(d, records)| {
            std::iter::once((d, None)).chain(records.iter().map(move |r| (d, Some(r))))
        });
        let mut ended = false;
        for (i, raw) in reader.split(b'\n').enumerate() {
            let raw = raw.map_err(|e| format!("reading it back failed: {e}"))?;
            let at = |m: String| format!("line {}: {m}", i + 1);
            if ended {
                return Err(at("text after the end marker".into()));
            }
            let raw = String::from_utf8(raw).map_err(|_| at("not valid UTF-8".into()))?;
            let line = raw.strip_suffix('\r').unwrap_or(&raw);
            if line == END_MARKER {
                if expected.next().is_some() {
                    return Err(at("the end marker comes before the last record".into()));
                }
                ended = true;
                continue;
            }
            split_line(line).map_err(at)?;
            let Some((domain, want)) = expected.next() else {
                return Err(at("a line after the last record".into()));
            };
            let same = match want {
                None => parses_back(line, &self.customer_id, domain, "DOMAIN:", &[domain]),
                Some(r) => parses_back(line, &self.customer_id, domain, r.tag(), &r.values()),
            };
            if !same {
                return Err(at(format!(
                    "{line:?} does not parse back into the record it was written from"
                )));
            }
        }
        if ended {
            Ok(())
        } else {
            Err("the text does not end with the end marker".into())
        }
    }
}

pub(super) fn bad_value(domain: &str, tag: &str, value: &str) -> String {
    format!("{domain}: {tag} value {value:?} contains a control character or surrounding spaces")
}

/// Whether a line (without its line ending) reads back as exactly these fields.
pub(super) fn parses_back(
    line: &str,
    customer: &str,
    domain: &str,
    tag: &str,
    values: &[&str],
) -> bool {
    let mut fields = line.split('\t');
    fields
        .next()
        .and_then(|prefix| prefix.split_once('|'))
        .is_some_and(|(c, d)| c == customer && d == domain)
        && fields.next() == Some(tag)
        && fields.eq(values.iter().copied())
}
