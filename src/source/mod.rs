//! Directory sources: where directory entries come from.
//!
//! A source yields [`Entry`] values one at a time, so a large directory is never held in
//! memory as raw entries; the model keeps only what it needs of each. This module knows
//! nothing about mail addresses or Active Directory semantics (that is `model`), and a source
//! never decides what is kept: it reads everything or fails.

pub mod config;
pub mod graph;
pub mod ldap;
pub mod ldif;
pub mod tls;

pub use config::{LdapConfig, NamedSource, SearchBase, SourceConfig};

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::BufReader;

use anyhow::Context as _;

/// What a source read, for the run summary.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SourceStats {
    /// Where the entries came from (file or URL), for messages.
    pub origin: String,
    pub entries: u64,
    /// Continuation references the server sent (skipped: dirsync reads one directory).
    pub referrals_skipped: u64,
    /// Entries the server sent more than once (kept once).
    pub duplicate_entries: u64,
    /// Entries per search base (LDAP).
    pub per_base: Vec<(String, u64)>,
    /// The LDAPS server's certificate, described.
    pub server_certificate: Option<String>,
    /// How the source signed in (Graph: the credential and the token's lifetime).
    pub signed_in: Option<String>,
    /// With several sources: each of them, by name (the fields above are their sums).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<(String, SourceStats)>,
}

impl SourceStats {
    /// One source's stats as they are; several sources' summed, each kept by name.
    pub fn combined(sources: &[NamedSource], each: &[SourceStats]) -> SourceStats {
        if let [one] = each {
            return one.clone();
        }
        let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        let mut sum = SourceStats {
            origin: format!("{} sources ({})", each.len(), names.join(", ")),
            ..SourceStats::default()
        };
        for (name, s) in names.iter().zip(each) {
            sum.entries += s.entries;
            sum.referrals_skipped += s.referrals_skipped;
            sum.duplicate_entries += s.duplicate_entries;
            sum.sources.push((name.to_string(), s.clone()));
        }
        sum
    }
}

/// What the run needs from a source.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Attributes by their AD names (an LDIF export has what it has).
    pub attributes: Vec<String>,
    /// The groups `member_of` rules name (lower case): a source without `memberOf` (Graph)
    /// reads their members.
    pub groups: std::collections::BTreeSet<String>,
}

/// Reads every entry of the configured source into `sink`. Any error ends the read: the
/// caller must then ship nothing, because what was read is incomplete.
pub fn read(
    config: &SourceConfig,
    request: &Request,
    sink: &mut dyn FnMut(Entry),
) -> anyhow::Result<SourceStats> {
    match config {
        SourceConfig::Ldif { path } => {
            let origin = path.display().to_string();
            let file = std::fs::File::open(path).with_context(|| {
                format!("cannot open the LDIF export {origin}; check source.path")
            })?;
            let mut stats = SourceStats {
                origin,
                ..SourceStats::default()
            };
            for entry in ldif::LdifReader::new(BufReader::with_capacity(1 << 20, file)) {
                let entry = entry.with_context(|| format!("LDIF export {}", stats.origin))?;
                stats.entries += 1;
                sink(entry);
            }
            Ok(stats)
        }
        SourceConfig::Ldap(ldap_config) => ldap::read(ldap_config, &request.attributes, sink),
        SourceConfig::Graph(graph_config) => graph::read(graph_config, request, sink),
    }
}

/// Reads every source completely, in parallel when there are several; `sink` gets each
/// entry with the index of its source. If any source fails the whole read fails, naming
/// every failed source: a map is never made from the sources that happened to work.
pub fn read_all(
    sources: &[NamedSource],
    request: &Request,
    sink: &mut dyn FnMut(usize, Entry),
) -> anyhow::Result<Vec<SourceStats>> {
    if let [only] = sources {
        return Ok(vec![read(&only.config, request, &mut |e| sink(0, e))?]);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Entry)>(4096);
    let results: Vec<anyhow::Result<SourceStats>> = std::thread::scope(|s| {
        let readers: Vec<_> = sources
            .iter()
            .enumerate()
            .map(|(i, source)| {
                let tx = tx.clone();
                s.spawn(move || {
                    // A closed channel means the run already failed: the rest is discarded.
                    read(&source.config, request, &mut |e| drop(tx.send((i, e))))
                })
            })
            .collect();
        drop(tx);
        for (i, entry) in rx {
            sink(i, entry);
        }
        readers
            .into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the reader failed")))
            })
            .collect()
    });
    let mut stats = Vec::new();
    let mut failed = Vec::new();
    for (source, result) in sources.iter().zip(results) {
        match result {
            Ok(s) => stats.push(s),
            Err(e) => failed.push(format!("source {}: {e:#}", source.name)),
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} sources failed, so none is used: {}",
            failed.len(),
            sources.len(),
            failed.join("; ")
        );
    }
    Ok(stats)
}

/// One directory object as read from the source: its DN and its attributes.
///
/// Attribute names compare case-insensitively (they are stored lower-cased) and values are
/// raw bytes, because binary attributes such as `objectGUID` are not text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    attrs: BTreeMap<Cow<'static, str>, Vec<Vec<u8>>>,
}

/// Attribute names every entry has: their lower-case keys need no allocation.
const KNOWN: &[&str] = &[
    "objectclass",
    "proxyaddresses",
    "mail",
    "useraccountcontrol",
    "memberof",
    "member",
    "objectguid",
    "displayname",
    "msds-aadobjectid",
    "cn",
    "sn",
    "givenname",
    "samaccountname",
    "userprincipalname",
    "department",
    "title",
];

impl Entry {
    pub fn new(dn: impl Into<String>) -> Self {
        Entry {
            dn: dn.into(),
            attrs: BTreeMap::new(),
        }
    }

    /// Adds one value; `name` is lower-cased.
    pub fn push(&mut self, name: &str, value: Vec<u8>) {
        self.slot(name).push(value);
    }

    /// Adds several values of one attribute; `name` is lower-cased.
    pub fn push_all(&mut self, name: &str, values: Vec<Vec<u8>>) {
        self.slot(name).extend(values);
    }

    /// The values of an attribute, to add to.
    fn slot(&mut self, name: &str) -> &mut Vec<Vec<u8>> {
        let key = match KNOWN.iter().find(|k| k.eq_ignore_ascii_case(name)) {
            Some(known) => Cow::Borrowed(*known),
            None => Cow::Owned(name.to_ascii_lowercase()),
        };
        self.attrs.entry(key).or_default()
    }

    /// All values of an attribute (empty when absent). `name` must be lower case.
    pub fn values(&self, name: &str) -> &[Vec<u8>] {
        debug_assert!(!name.bytes().any(|b| b.is_ascii_uppercase()));
        self.attrs.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The values of an attribute that are valid UTF-8, as text.
    pub fn texts<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.values(name)
            .iter()
            .filter_map(|v| std::str::from_utf8(v).ok())
    }

    pub fn first_text(&self, name: &str) -> Option<&str> {
        self.texts(name).next()
    }

    pub fn attributes(&self) -> impl Iterator<Item = (&str, &[Vec<u8>])> {
        self.attrs.iter().map(|(k, v)| (k.as_ref(), v.as_slice()))
    }

    pub fn take(&mut self, name: &str) -> Vec<Vec<u8>> {
        self.attrs.remove(name).unwrap_or_default()
    }
}
