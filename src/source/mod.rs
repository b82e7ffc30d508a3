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

pub use config::{LdapConfig, SearchBase, SourceConfig};

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
