//! The Retarus Email Security MAP file: records, rendering, parsing and the checks a file
//! must pass before it may leave the machine (`../shared/spec/map-format.md`).
//!
//! Every byte of the line layout is decided in ONE place, [`render_line`], so the format can
//! be corrected there when a byte-exact sample is available. The reader ([`parse`]) serves
//! `dirsync diff`, the deletion guard and the round-trip check. This module does not decide
//! which addresses exist (that is `rules`), nor where files go (that is `state`/`upload`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::BufRead;

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

    fn from_parts(tag: &str, values: &[&str]) -> Result<Record, String> {
        let own = |i: usize| Text::from(values[i]);
        let want = |n: usize| {
            if values.len() == n {
                Ok(())
            } else {
                Err(format!("{tag} takes {n} value(s), found {}", values.len()))
            }
        };
        Ok(match tag {
            "DIR:" => {
                want(1)?;
                Record::Dir(own(0))
            }
            "MAP:" => {
                want(2)?;
                Record::Map {
                    alias: own(0),
                    primary: own(1),
                }
            }
            "PROFILE:" => {
                want(2)?;
                Record::Profile {
                    address: own(0),
                    profile: own(1),
                }
            }
            "UCFG:" => {
                want(3)?;
                Record::Ucfg(Setting::new(own(0), own(1), own(2)))
            }
            "P13N:" => {
                want(3)?;
                Record::P13n(Setting::new(own(0), own(1), own(2)))
            }
            other => return Err(format!("unknown record type \"{other}\"")),
        })
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

    /// Sorts every list (a linear pass when it is in order already, as the rules build them)
    /// and drops repeats.
    pub fn finish(mut self) -> Block {
        self.sort();
        for list in self.lists_mut() {
            list.dedup();
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

    /// The file's bytes. Deterministic: the same records always give the same bytes.
    pub fn render(&self, eol: LineEnding) -> String {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail, and the text is UTF-8 (built from Strings).
        let _ = self.render_to(eol, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Writes the file to `out`, line by line: a large map is never held twice in memory.
    pub fn render_to(&self, eol: LineEnding, out: &mut impl std::io::Write) -> std::io::Result<()> {
        self.render_lines(eol, out, |_, _, _| Ok(()))
            .map_err(|e| match e {
                RenderError::Io(e) => e,
                other => std::io::Error::other(other.to_string()),
            })
    }

    /// As [`render_to`](Self::render_to), checking every line as it is written: it must
    /// parse back into the record it was rendered from (the round trip of map-format.md),
    /// or nothing more is written.
    pub fn render_checked_to(
        &self,
        eol: LineEnding,
        out: &mut impl std::io::Write,
    ) -> Result<(), RenderError> {
        self.render_lines(eol, out, |line, domain, (tag, values)| {
            if let Some(bad) = values.iter().find(|v| !valid_value(v)) {
                return Err(RenderError::Value(bad_value(domain, tag, bad)));
            }
            if parses_back(line, &self.customer_id, domain, tag, values) {
                Ok(())
            } else {
                Err(RenderError::RoundTrip(
                    "does not parse back into the record it was written from".into(),
                ))
            }
        })
    }

    /// Renders every line, asking `check` about each (without its line ending) first.
    fn render_lines(
        &self,
        eol: LineEnding,
        out: &mut impl std::io::Write,
        mut check: impl FnMut(&str, &str, (&str, &[&str])) -> Result<(), RenderError>,
    ) -> Result<(), RenderError> {
        let mut line = String::with_capacity(256);
        let mut number = 0;
        for (domain, records) in &self.domains {
            let lines = std::iter::once(("DOMAIN:", Fields::new([domain, "", ""], 1)))
                .chain(records.iter().map(|r| (r.tag(), r.values())));
            for (tag, values) in lines {
                number += 1;
                line.clear();
                render_line(&mut line, &self.customer_id, domain, tag, &values);
                match check(&line, domain, (tag, &values)) {
                    Err(RenderError::RoundTrip(why)) => {
                        return Err(RenderError::RoundTrip(format!(
                            "line {number}: {line:?} {why}"
                        )))
                    }
                    other => other?,
                }
                line.push_str(eol.as_str());
                out.write_all(line.as_bytes())?;
            }
        }
        out.write_all(END_MARKER.as_bytes())?;
        out.write_all(eol.as_str().as_bytes())?;
        Ok(())
    }

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

/// Renders one line, without its line ending. THE place where the line layout is decided:
/// `customer|domain`, TAB, tag, then each value after a TAB.
fn render_line(out: &mut String, customer: &str, domain: &str, tag: &str, values: &[&str]) {
    out.push_str(customer);
    out.push('|');
    out.push_str(domain);
    out.push('\t');
    out.push_str(tag);
    for value in values {
        out.push('\t');
        out.push_str(value);
    }
}

fn bad_value(domain: &str, tag: &str, value: &str) -> String {
    format!("{domain}: {tag} value {value:?} contains a control character or surrounding spaces")
}

/// Whether a line (without its line ending) reads back as exactly these fields.
fn parses_back(line: &str, customer: &str, domain: &str, tag: &str, values: &[&str]) -> bool {
    let mut fields = line.split('\t');
    fields
        .next()
        .and_then(|prefix| prefix.split_once('|'))
        .is_some_and(|(c, d)| c == customer && d == domain)
        && fields.next() == Some(tag)
        && fields.eq(values.iter().copied())
}

/// Why a MAP file could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    RoundTrip(String),
    /// A value that would break its line (see [`valid_value`]).
    #[error("{0}")]
    Value(String),
}

/// A value may not contain control characters (TAB, CR, LF …) nor start or end with a space:
/// nothing may be able to break a line.
pub fn valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    // Printable ASCII, no space at either end: most values, checked without decoding.
    let plain = bytes.iter().all(|b| (b' '..=b'~').contains(b))
        && bytes.first().is_some_and(|b| *b != b' ')
        && bytes.last().is_some_and(|b| *b != b' ');
    plain || (!value.is_empty() && !value.chars().any(char::is_control) && value.trim() == value)
}

/// Cleans free text from the directory (display names, titles) for a MAP value: control
/// characters become spaces, runs of spaces one space, and the result is trimmed. Returns the
/// value and whether anything was changed (callers warn, naming the entry).
pub fn clean_value(raw: &str) -> (String, bool) {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.pop();
    }
    let changed = out != raw;
    (out, changed)
}

#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("reading the MAP file failed: {0}")]
    Io(#[from] std::io::Error),
}

/// One data line, split: `customer|domain TAB tag TAB values…`.
struct Line<'a> {
    customer: &'a str,
    domain: &'a str,
    tag: &'a str,
    values: Vec<&'a str>,
}

fn split_line(line: &str) -> Result<Line<'_>, String> {
    let mut fields = line.split('\t');
    let prefix = fields.next().unwrap_or_default();
    let (customer, domain) = prefix
        .split_once('|')
        .ok_or("expected \"customer|domain\" before the first TAB")?;
    let tag = fields.next().ok_or("no record type after the domain")?;
    Ok(Line {
        customer,
        domain,
        tag,
        values: fields.collect(),
    })
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

/// Parses a MAP file (CRLF or LF). Strict: a file that does not end with `++++`, a line that
/// is not `customer|domain TAB TAG: TAB values`, a record before its `DOMAIN:` line, a second
/// `DOMAIN:` or a repeated record is an error with its line number.
pub fn parse(reader: impl BufRead) -> Result<MapFile, MapError> {
    let mut map: Option<MapFile> = None;
    let mut ended = false;
    let mut line_no = 0;
    for line in reader.split(b'\n') {
        let mut line = line?;
        line_no += 1;
        let err = |message: String| MapError::Syntax {
            line: line_no,
            message,
        };
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if ended {
            if line.is_empty() {
                continue;
            }
            return Err(err(format!("text after the end marker {END_MARKER}")));
        }
        let line = String::from_utf8(line).map_err(|_| err("not valid UTF-8".into()))?;
        if line == END_MARKER {
            ended = true;
            continue;
        }
        let Line {
            customer,
            domain,
            tag,
            values,
        } = split_line(&line).map_err(err)?;
        let map = map.get_or_insert_with(|| MapFile::new(customer));
        if map.customer_id != customer {
            return Err(err(format!(
                "customer id {customer} differs from {} on line 1",
                map.customer_id
            )));
        }
        if tag == "DOMAIN:" {
            if values != [domain] {
                return Err(err(format!("DOMAIN: must repeat the domain {domain}")));
            }
            if map.domains.contains_key(domain) {
                return Err(err(format!("second DOMAIN: line for {domain}")));
            }
            map.add_domain(domain);
            continue;
        }
        let record = Record::from_parts(tag, &values).map_err(err)?;
        let block = map
            .domains
            .get_mut(domain)
            .ok_or_else(|| err(format!("{tag} line before the DOMAIN: line of {domain}")))?;
        // A file in order (as dirsync writes it) shows a repeat right here, with its line;
        // a hand-edited one is sorted once at the end (never an insert per line).
        if block.last_like(&record) == Some(&record) {
            return Err(err(format!("repeated {tag} record")));
        }
        block.push(record);
    }
    if !ended {
        return Err(MapError::Syntax {
            line: line_no,
            message: format!("the file does not end with {END_MARKER}: it is incomplete"),
        });
    }
    let mut map = map.unwrap_or_default();
    for (domain, block) in &mut map.domains {
        if let Some(r) = block.sort() {
            return Err(MapError::Syntax {
                line: line_no,
                message: format!(
                    "repeated {} record in {domain}: {} (the file is not in order, so the \
                     line of the repeat is not known)",
                    r.tag(),
                    r.values().join(" ")
                ),
            });
        }
    }
    Ok(map)
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
