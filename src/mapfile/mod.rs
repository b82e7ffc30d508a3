//! The Retarus Email Security MAP file: records, rendering, parsing and the checks a file
//! must pass before it may leave the machine (`../shared/spec/map-format.md`).
//!
//! Every byte of the line layout is decided in ONE place, [`render_line`], so the format can
//! be corrected there when a byte-exact sample is available. The reader ([`parse`]) serves
//! `dirsync diff`, the deletion guard and the round-trip check. This module does not decide
//! which addresses exist (that is `rules`), nor where files go (that is `state`/`upload`).

mod diff;
pub mod output;
mod parse;
mod render;
mod verify;
pub mod write;

use std::collections::BTreeMap;

pub use diff::{DomainDiff, MapDiff};
pub use parse::{parse, MapError};
pub use render::{clean_value, valid_value, RenderError};

/// The end marker: without it Retarus ignores the whole file.
pub const END_MARKER: &str = "++++";

/// Text of a record: shared, so records naming the same address hold one copy of it.
pub type Text = std::sync::Arc<str>;

/// One record of a domain block. The variant order is the order of the blocks in the file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Record {
    /// A valid address.
    Dir(Text),
    /// An alias and its primary address.
    Map { alias: Text, primary: Text },
    /// An address and its Email Security profile.
    Profile { address: Text, profile: Text },
    /// Per-user configuration: address, key, value.
    Ucfg(Box<Setting>),
    /// Personalisation (signature/disclaimer) data: address, field (the key), value.
    P13n(Box<Setting>),
}

/// The values of a UCFG or P13N record. Boxed in [`Record`]: these records are few, and
/// inline their third value would make every record of a large map 56 bytes instead of 40.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Setting {
    pub address: Text,
    pub key: Text,
    pub value: Text,
}

impl Setting {
    pub fn new(address: Text, key: impl Into<Text>, value: impl Into<Text>) -> Box<Setting> {
        Box::new(Setting {
            address,
            key: key.into(),
            value: value.into(),
        })
    }
}

impl Record {
    pub fn tag(&self) -> &'static str {
        match self {
            Record::Dir(_) => "DIR:",
            Record::Map { .. } => "MAP:",
            Record::Profile { .. } => "PROFILE:",
            Record::Ucfg(_) => "UCFG:",
            Record::P13n(_) => "P13N:",
        }
    }

    /// The record's values in file order (no allocation: this runs for every record).
    pub fn values(&self) -> Fields<'_> {
        match self {
            Record::Dir(a) => Fields::new([a, "", ""], 1),
            Record::Map { alias, primary } => Fields::new([alias, primary, ""], 2),
            Record::Profile { address, profile } => Fields::new([address, profile, ""], 2),
            Record::Ucfg(s) | Record::P13n(s) => Fields::new([&s.address, &s.key, &s.value], 3),
        }
    }

    /// The addresses the record refers to (each needs a `DIR:` line).
    pub fn addresses(&self) -> Fields<'_> {
        match self {
            Record::Dir(a) => Fields::new([a, "", ""], 1),
            Record::Map { alias, primary } => Fields::new([alias, primary, ""], 2),
            Record::Profile { address, .. } => Fields::new([address, "", ""], 1),
            Record::Ucfg(s) | Record::P13n(s) => Fields::new([&s.address, "", ""], 1),
        }
    }
}

/// Up to three fields of a record, as a slice.
pub struct Fields<'a> {
    items: [&'a str; 3],
    len: usize,
}

impl<'a> Fields<'a> {
    fn new(items: [&'a str; 3], len: usize) -> Self {
        Fields { items, len }
    }
}

impl<'a> std::ops::Deref for Fields<'a> {
    type Target = [&'a str];
    fn deref(&self) -> &[&'a str] {
        &self.items[..self.len]
    }
}

/// The records of one domain: sorted (the order of the file) and without repeats, one sorted
/// vector per record type — a large map is built once and read in order, and this needs no
/// tree nodes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    dir: Vec<Record>,
    map: Vec<Record>,
    profile: Vec<Record>,
    ucfg: Vec<Record>,
    p13n: Vec<Record>,
}

impl Block {
    /// The lists in file order.
    fn lists(&self) -> [&Vec<Record>; 5] {
        [&self.dir, &self.map, &self.profile, &self.ucfg, &self.p13n]
    }

    fn lists_mut(&mut self) -> [&mut Vec<Record>; 5] {
        [
            &mut self.dir,
            &mut self.map,
            &mut self.profile,
            &mut self.ucfg,
            &mut self.p13n,
        ]
    }

    /// The list a record belongs in.
    fn list_of(&mut self, record: &Record) -> &mut Vec<Record> {
        match record {
            Record::Dir(_) => &mut self.dir,
            Record::Map { .. } => &mut self.map,
            Record::Profile { .. } => &mut self.profile,
            Record::Ucfg(_) => &mut self.ucfg,
            Record::P13n(_) => &mut self.p13n,
        }
    }

    /// Adds a record at the end of its list, in whatever order; [`finish`](Self::finish)
    /// (or [`sort`](Self::sort)) must follow before the block is used.
    pub fn push(&mut self, record: Record) {
        self.list_of(&record).push(record);
    }

    /// The last record of the list `record` belongs in.
    fn last_like(&mut self, record: &Record) -> Option<&Record> {
        self.list_of(record).last()
    }

    /// Sorts every list and drops repeats; a list already strictly in order (as the rules
    /// build them) costs one pass.
    pub fn finish(mut self) -> Block {
        for list in self.lists_mut() {
            if !list.windows(2).all(|w| w[0] < w[1]) {
                list.sort_unstable();
                list.dedup();
            }
            list.shrink_to_fit();
        }
        self
    }

    /// Sorts every list; returns a record that is there twice, if any.
    fn sort(&mut self) -> Option<Record> {
        let mut repeated = None;
        for list in self.lists_mut() {
            if !list.is_sorted() {
                list.sort_unstable();
            }
            if repeated.is_none() {
                repeated = list.windows(2).find(|w| w[0] == w[1]).map(|w| w[0].clone());
            }
        }
        repeated
    }

    /// Adds a record; false if it was there already.
    pub fn insert(&mut self, record: Record) -> bool {
        let list = self.list_of(&record);
        match list.binary_search(&record) {
            Ok(_) => false,
            Err(i) => {
                list.insert(i, record);
                true
            }
        }
    }

    pub fn remove(&mut self, record: &Record) -> bool {
        let list = self.list_of(record);
        match list.binary_search(record) {
            Ok(i) => {
                list.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    pub fn contains(&self, record: &Record) -> bool {
        let list = match record {
            Record::Dir(_) => &self.dir,
            Record::Map { .. } => &self.map,
            Record::Profile { .. } => &self.profile,
            Record::Ucfg(_) => &self.ucfg,
            Record::P13n(_) => &self.p13n,
        };
        list.binary_search(record).is_ok()
    }

    /// The records in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Record> + '_ {
        self.lists().into_iter().flatten()
    }

    /// The records after the DIR records, in file order.
    pub fn iter_after_dirs(&self) -> impl Iterator<Item = &Record> + '_ {
        self.lists().into_iter().skip(1).flatten()
    }

    /// The DIR records, sorted.
    pub fn dirs(&self) -> &[Record] {
        &self.dir
    }

    pub fn len(&self) -> usize {
        self.lists().iter().map(|l| l.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records in `self` and not in `other` (both sorted: one merge pass per type).
    pub fn minus(&self, other: &Block) -> Vec<Record> {
        let mut out = Vec::new();
        for (mine, theirs) in self.lists().into_iter().zip(other.lists()) {
            let (mut i, mut j) = (0, 0);
            while i < mine.len() {
                match theirs.get(j).map(|o| mine[i].cmp(o)) {
                    Some(std::cmp::Ordering::Greater) => j += 1,
                    Some(std::cmp::Ordering::Equal) => {
                        i += 1;
                        j += 1;
                    }
                    _ => {
                        out.push(mine[i].clone());
                        i += 1;
                    }
                }
            }
        }
        out
    }
}

impl<'a> IntoIterator for &'a Block {
    type Item = &'a Record;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<&'a Vec<Record>, 5>>;
    fn into_iter(self) -> Self::IntoIter {
        self.lists().into_iter().flatten()
    }
}

/// Line ending of the written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineEnding {
    #[default]
    Crlf,
    Lf,
}

impl LineEnding {
    fn as_str(self) -> &'static str {
        match self {
            LineEnding::Crlf => "\r\n",
            LineEnding::Lf => "\n",
        }
    }
}

/// A whole MAP file: the customer number and, per domain, its records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapFile {
    pub customer_id: String,
    pub domains: BTreeMap<String, Block>,
}

impl MapFile {
    pub fn new(customer_id: impl Into<String>) -> Self {
        MapFile {
            customer_id: customer_id.into(),
            domains: BTreeMap::new(),
        }
    }

    /// Declares a domain (its `DOMAIN:` line), also when it gets no records.
    pub fn add_domain(&mut self, domain: &str) {
        self.domains.entry(domain.to_owned()).or_default();
    }

    pub fn insert(&mut self, domain: &str, record: Record) {
        self.domains
            .entry(domain.to_owned())
            .or_default()
            .insert(record);
    }

    /// All `DIR:` addresses of a domain.
    pub fn dir_addresses<'a>(&'a self, domain: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.domains
            .get(domain)
            .into_iter()
            .flatten()
            .filter_map(|r| match r {
                Record::Dir(a) => Some(&**a),
                _ => None,
            })
    }

    pub fn dir_count(&self) -> usize {
        self.domains
            .keys()
            .map(|d| self.dir_addresses(d).count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn blocks_from_unsorted_records_are_sorted_in_every_build() {
        let dir = |a: &str| Record::Dir(a.into());
        let mut block = Block::default();
        for a in ["c@x.com", "a@x.com", "c@x.com", "b@x.com"] {
            block.push(dir(a));
        }
        let block = block.finish();
        let addresses: Vec<Record> = block.iter().cloned().collect();
        assert_eq!(addresses, [dir("a@x.com"), dir("b@x.com"), dir("c@x.com")]);
        let mut other = Block::default();
        other.push(dir("b@x.com"));
        let other = other.finish();
        assert_eq!(block.minus(&other), [dir("a@x.com"), dir("c@x.com")]);
        assert!(block.contains(&dir("c@x.com")));
    }

    fn sample() -> MapFile {
        let mut m = MapFile::new("12345");
        m.add_domain("example.de");
        m.insert("example.com", Record::Dir("john.doe@example.com".into()));
        m.insert("example.com", Record::Dir("j.doe@example.com".into()));
        m.insert("example.com", Record::Dir("info@example.com".into()));
        m.insert(
            "example.com",
            Record::Profile {
                address: "john.doe@example.com".into(),
                profile: "Engineering".into(),
            },
        );
        m.insert(
            "example.com",
            Record::Map {
                alias: "j.doe@example.com".into(),
                primary: "john.doe@example.com".into(),
            },
        );
        m.insert("example.de", Record::Dir("john.doe@example.de".into()));
        m.insert(
            "example.de",
            Record::Map {
                alias: "john.doe@example.de".into(),
                primary: "john.doe@example.com".into(),
            },
        );
        m
    }

    #[test]
    fn renders_the_spec_example_byte_for_byte() {
        let expected = "12345|example.com\tDOMAIN:\texample.com\r\n\
            12345|example.com\tDIR:\tinfo@example.com\r\n\
            12345|example.com\tDIR:\tj.doe@example.com\r\n\
            12345|example.com\tDIR:\tjohn.doe@example.com\r\n\
            12345|example.com\tMAP:\tj.doe@example.com\tjohn.doe@example.com\r\n\
            12345|example.com\tPROFILE:\tjohn.doe@example.com\tEngineering\r\n\
            12345|example.de\tDOMAIN:\texample.de\r\n\
            12345|example.de\tDIR:\tjohn.doe@example.de\r\n\
            12345|example.de\tMAP:\tjohn.doe@example.de\tjohn.doe@example.com\r\n\
            ++++\r\n";
        assert_eq!(sample().render(LineEnding::Crlf), expected);
        assert_eq!(
            sample().render(LineEnding::Lf),
            expected.replace("\r\n", "\n")
        );
    }

    #[test]
    fn round_trips() {
        for eol in [LineEnding::Crlf, LineEnding::Lf] {
            let text = sample().render(eol);
            assert_eq!(parse(text.as_bytes()).unwrap(), sample());
            assert_eq!(sample().check_round_trip(&text), Ok(()));
        }
    }

    #[test]
    fn the_round_trip_check_catches_what_would_break_a_line() {
        let mut m = sample();
        m.insert(
            "example.com",
            Record::Profile {
                address: "info@example.com".into(),
                profile: "Sales\tVIP".into(),
            },
        );
        let text = m.render(LineEnding::Crlf);
        let err = m.check_round_trip(&text).unwrap_err();
        assert!(
            err.starts_with("line 6:") && err.contains("does not parse back"),
            "{err}"
        );
        let good = sample().render(LineEnding::Lf);
        assert_eq!(
            sample().check_round_trip(good.trim_end_matches("++++\n")),
            Err("the text does not end with the end marker".to_string())
        );
        assert!(sample()
            .check_round_trip(&format!("{good}x\n"))
            .unwrap_err()
            .contains("text after the end marker"));
    }

    #[test]
    fn checked_rendering_stops_at_a_value_that_would_break_its_line() {
        let accepted: BTreeSet<String> = ["example.com".into(), "example.de".into()].into();
        let mut m = sample();
        m.insert(
            "example.com",
            Record::Profile {
                address: "info@example.com".into(),
                profile: "Sales\nVIP".into(),
            },
        );
        let mut out = Vec::new();
        match m.render_checked_to(LineEnding::Crlf, &mut out) {
            Err(RenderError::Value(problem)) => assert_eq!(
                problem,
                "example.com: PROFILE: value \"Sales\\nVIP\" contains a control character or \
                 surrounding spaces"
            ),
            other => panic!("{other:?}"),
        }
        assert!(!String::from_utf8(out).unwrap().contains("Sales"));
        assert_eq!(
            m.verify_structure(&accepted, &BTreeSet::new()),
            Vec::<String>::new()
        );
        assert_eq!(m.verify(&accepted, &BTreeSet::new()).len(), 1);
        let mut out = Vec::new();
        sample()
            .render_checked_to(LineEnding::Crlf, &mut out)
            .unwrap();
        assert_eq!(out, sample().render(LineEnding::Crlf).into_bytes());
    }

    #[test]
    fn verify_finds_every_problem() {
        let accepted: BTreeSet<String> = ["example.com".to_string()].into();
        let mut m = sample();
        m.insert("example.com", Record::Dir("x@other.org".into()));
        m.insert(
            "example.com",
            Record::P13n(Setting::new(
                "ghost@example.com".into(),
                "title",
                "Head\tof",
            )),
        );
        m.add_domain("empty.org");
        let problems = m.verify(&accepted, &BTreeSet::new());
        let expect = [
            "example.com: DIR: x@other.org is not in domain example.com",
            "example.com: P13N: value \"Head\\tof\" contains a control character or surrounding spaces",
            "example.com: P13N: refers to ghost@example.com, which has no DIR: line",
            "domain example.de is not an accepted domain",
            "domain empty.org is not an accepted domain",
            "domain empty.org has no DIR: lines",
        ];
        for e in expect {
            assert!(
                problems.iter().any(|p| p == e),
                "missing {e:?} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
        let ok: BTreeSet<String> = ["example.com".to_string(), "example.de".to_string()].into();
        assert!(sample().verify(&ok, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = |t: &str| parse(t.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            e("1|a.com\tDOMAIN:\ta.com\n"),
            "line 1: the file does not end with ++++: it is incomplete"
        );
        assert_eq!(
            e("1|a.com\tDIR:\tx@a.com\n++++\n"),
            "line 1: DIR: line before the DOMAIN: line of a.com"
        );
        assert_eq!(
            e("1|a.com\tDOMAIN:\ta.com\n1|a.com\tDIR:\tx@a.com\n1|a.com\tDIR:\tx@a.com\n++++\n"),
            "line 3: repeated DIR: record"
        );
        assert_eq!(
            e("1|a.com\tDOMAIN:\ta.com\n1|a.com\tFOO:\tx\n++++\n"),
            "line 2: unknown record type \"FOO:\""
        );
        assert_eq!(
            e("1|a.com\tDOMAIN:\ta.com\n1|a.com\tMAP:\tx@a.com\n++++\n"),
            "line 2: MAP: takes 2 value(s), found 1"
        );
        assert_eq!(
            e("1|a.com\tDOMAIN:\ta.com\n++++\nmore\n"),
            "line 3: text after the end marker ++++"
        );
        assert_eq!(
            e("1|a.com\tDOMAIN:\ta.com\n2|a.com\tDOMAIN:\ta.com\n++++\n"),
            "line 2: customer id 2 differs from 1 on line 1"
        );
    }

    #[test]
    fn clean_value_removes_what_could_break_a_line() {
        assert_eq!(
            clean_value("Head of\tSales\r\n"),
            ("Head of Sales".to_string(), true)
        );
        assert_eq!(
            clean_value("  Jörg  Müller "),
            ("Jörg Müller".to_string(), true)
        );
        assert_eq!(clean_value("a\u{0}b"), ("a b".to_string(), true));
        assert_eq!(clean_value("Plain"), ("Plain".to_string(), false));
        assert!(
            !valid_value("a\tb") && !valid_value(" a") && !valid_value("") && valid_value("a b")
        );
    }

    #[test]
    fn diff_counts_per_domain() {
        let old = sample();
        let mut new = sample();
        new.domains
            .get_mut("example.com")
            .unwrap()
            .remove(&Record::Dir("info@example.com".into()));
        new.insert("example.de", Record::Dir("new@example.de".into()));
        let d = MapDiff::between(&old, &new);
        assert_eq!((d.dirs_added(), d.dirs_removed()), (1, 1));
        assert_eq!(
            d.summary(),
            "  example.com: DIR 3 -> 2 (+0 -1)\n  example.de: DIR 1 -> 2 (+1 -0)\n"
        );
        assert!(MapDiff::between(&old, &old).is_empty());
    }
}
