//! The recipient model: directory entries read with Active Directory semantics.
//!
//! An [`Entry`] becomes a [`Recipient`]: its kind (from `objectClass`), whether it is
//! disabled, its primary address (the `SMTP:` proxy address, else `mail`) and its aliases (the
//! `smtp:` proxy addresses). Addresses are validated and normalised on construction
//! ([`Address`]). This module does not decide which recipients go to Retarus (that is
//! `rules`) nor how records are written (that is `mapfile`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::source::Entry;

/// A mail domain in its canonical form: lower case ASCII, internationalised names in
/// punycode (`bücher.de` → `xn--bcher-kva.de`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Domain(String);

impl Domain {
    pub fn parse(text: &str) -> Result<Domain, AddressError> {
        canonical_domain(text).map(|d| Domain(d.into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A domain in canonical form, without allocating when it already is (the common case: this
/// runs for every address of the directory). Plain ASCII names skip the IDNA machinery;
/// anything else (Unicode, punycode `xn--` labels) goes through UTS #46.
fn canonical_domain(text: &str) -> Result<std::borrow::Cow<'_, str>, AddressError> {
    use std::borrow::Cow;
    let text = text.strip_suffix('.').unwrap_or(text);
    if text.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let punycode = text.len() >= 4
        && text
            .as_bytes()
            .windows(4)
            .any(|w| w.eq_ignore_ascii_case(b"xn--"));
    let ascii: Cow<'_, str> = if plain && !punycode {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    } else {
        Cow::Owned(idna::domain_to_ascii_strict(text).map_err(|_| AddressError::BadDomain)?)
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if ascii.len() > 253 || !ascii.contains('.') || !ascii.split('.').all(label_ok) {
        return Err(AddressError::BadDomain);
    }
    Ok(ascii)
}

/// Why a text is not a usable mail address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("no @ in the address")]
    NoAt,
    #[error("empty local part")]
    EmptyLocal,
    #[error("local part longer than 64 characters")]
    LongLocal,
    #[error("the local part contains a character not allowed in an address")]
    BadLocal,
    #[error("empty domain")]
    EmptyDomain,
    #[error("not a valid domain name")]
    BadDomain,
    #[error("not valid UTF-8")]
    NotUtf8,
}

/// A valid mail address, lower-cased, its domain canonical (see [`Domain`]).
///
/// Local parts are compared case-insensitively, as Exchange does; quoted local parts and
/// non-ASCII local parts (SMTPUTF8) are refused: Exchange Online does not route them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    /// Shared with the MAP records that name the address: one copy of each address in memory.
    text: std::sync::Arc<str>,
    at: u32,
}

impl Address {
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let at = text.rfind('@').ok_or(AddressError::NoAt)?;
        let (local, domain) = (&text[..at], &text[at + 1..]);
        if local.is_empty() {
            return Err(AddressError::EmptyLocal);
        }
        if local.len() > 64 {
            return Err(AddressError::LongLocal);
        }
        let local_ok = local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if !local_ok {
            return Err(AddressError::BadLocal);
        }
        let domain = canonical_domain(domain)?;
        // Assembled on the stack (at most 64 + 1 + 253 bytes, both parts checked ASCII above),
        // so the shared text is the only allocation.
        let mut buf = [0u8; 320];
        let n = local.len() + 1 + domain.len();
        for (slot, b) in buf.iter_mut().zip(local.bytes()) {
            *slot = b.to_ascii_lowercase();
        }
        buf[local.len()] = b'@';
        buf[local.len() + 1..n].copy_from_slice(domain.as_bytes());
        let text = std::str::from_utf8(&buf[..n]).map_err(|_| AddressError::BadDomain)?;
        Ok(Address {
            text: text.into(),
            at: local.len() as u32,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The domain part, canonical.
    pub fn domain(&self) -> &str {
        &self.text[self.at as usize + 1..]
    }

    /// The address as shared text, for a record that names it (no copy).
    pub fn shared(&self) -> std::sync::Arc<str> {
        self.text.clone()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What kind of directory object a recipient is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    User,
    Group,
    Contact,
    Other,
}

impl ObjectKind {
    /// From the `objectClass` values, in AD's terms: a computer is also a `user` but not a
    /// recipient kind of its own; `inetOrgPerson` counts as a user.
    pub fn from_object_classes<'a>(classes: impl Iterator<Item = &'a str>) -> ObjectKind {
        let (mut user, mut group, mut contact, mut computer) = (false, false, false, false);
        for class in classes {
            match class.to_ascii_lowercase().as_str() {
                "user" | "inetorgperson" | "person" | "organizationalperson" => user = true,
                "group" | "groupofnames" | "groupofuniquenames" => group = true,
                "contact" => contact = true,
                "computer" => computer = true,
                _ => {}
            }
        }
        if computer {
            ObjectKind::Other
        } else if contact {
            ObjectKind::Contact
        } else if group {
            ObjectKind::Group
        } else if user {
            ObjectKind::User
        } else {
            ObjectKind::Other
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::User => "user",
            ObjectKind::Group => "group",
            ObjectKind::Contact => "contact",
            ObjectKind::Other => "other",
        }
    }
}

/// Where an address was found on its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// `SMTP:` in proxyAddresses.
    ProxyPrimary,
    /// `smtp:` in proxyAddresses.
    ProxyAlias,
    /// The `mail` attribute.
    Mail,
    /// Exchange Online's EmailAddresses (the directory object lacked it).
    Exchange,
}

impl Origin {
    pub fn describe(self) -> &'static str {
        match self {
            Origin::ProxyPrimary => "proxyAddresses (SMTP:, primary)",
            Origin::ProxyAlias => "proxyAddresses (smtp:, alias)",
            Origin::Mail => "mail",
            Origin::Exchange => "Exchange Online's EmailAddresses (not in the directory)",
        }
    }
}

/// An address candidate on a recipient that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub raw: String,
    pub origin: Origin,
    pub error: AddressError,
}

/// One directory object with the addresses it receives mail for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub dn: Box<str>,
    pub kind: ObjectKind,
    /// `userAccountControl` bit 0x2. Disabled objects are kept: shared, room and equipment
    /// mailboxes are disabled users.
    pub disabled: bool,
    pub primary: Option<Address>,
    /// Further addresses of the object (sorted, without the primary), with where each was found.
    pub aliases: Vec<(Address, Origin)>,
    pub primary_origin: Origin,
    /// Address values that are not valid addresses.
    pub rejected: Box<[Rejected]>,
    /// `objectGUID` in AD's text form.
    pub object_guid: Option<Box<str>>,
    /// Direct group memberships (`memberOf` DNs).
    /// The DNs of its groups, shared between the objects of a group (a directory has far
    /// fewer groups than memberships).
    pub member_of: Box<[std::sync::Arc<str>]>,
    /// Number of `member` values (groups), all ranges read.
    pub members: u32,
    /// The attributes the rules read (lower-case names, text values).
    pub attrs: BTreeMap<String, Vec<String>>,
    /// Exchange's recipient type (`shared_mailbox`, …), when Exchange data is merged.
    pub exchange_kind: Option<Box<str>>,
    /// `msDS-aadObjectId` (Entra DS), lower case: matches Exchange's ExternalDirectoryObjectId.
    pub aad_object_id: Option<Box<str>>,
    /// Owners of a Microsoft 365 group, from Exchange.
    pub owners: Box<[Address]>,
    /// More than one `SMTP:` value: the ones not chosen as primary (kept as aliases).
    pub extra_primaries: u32,
    /// The name of the source it came from, when several sources are configured (an `Arc`
    /// of a `String`: one pointer, where `Arc<str>` takes two, in every recipient).
    pub source: Option<std::sync::Arc<String>>,
}

impl Recipient {
    /// Reads a recipient from a directory entry with AD semantics: the primary address is the
    /// `SMTP:` proxy address, else `mail`; `smtp:` values are aliases; other proxy types
    /// (`X500:`, `SIP:`, `SPO:` …) are ignored. A `mail` value that differs from the primary is
    /// kept as an alias: a missing address bounces mail, an extra one does not.
    /// `keep` says what to keep beyond the addresses (see [`Keep`]).
    pub fn from_entry(entry: &Entry, keep: &Keep) -> Recipient {
        let disabled = entry
            .first_text("useraccountcontrol")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .is_some_and(|uac| uac & 0x2 != 0);
        let (candidates, rejected) = candidates(entry);
        let (primary, primary_origin, extra_primaries) = choose_primary(&candidates);
        let aliases = aliases(candidates, primary.as_ref());
        Recipient {
            dn: entry.dn.as_str().into(),
            kind: ObjectKind::from_object_classes(entry.texts("objectclass")),
            disabled,
            primary,
            aliases,
            primary_origin,
            rejected: rejected.into_boxed_slice(),
            extra_primaries: u32::try_from(extra_primaries).unwrap_or(u32::MAX),
            object_guid: keep
                .details
                .then(|| {
                    entry
                        .values("objectguid")
                        .first()
                        .and_then(|v| guid_text(v))
                })
                .flatten()
                .map(String::into_boxed_str),
            member_of: if keep.member_of {
                entry.texts("memberof").map(|g| keep.group(g)).collect()
            } else {
                Box::default()
            },
            members: if keep.details {
                u32::try_from(entry.values("member").len()).unwrap_or(u32::MAX)
            } else {
                0
            },
            attrs: keep
                .attrs
                .iter()
                .map(|name| {
                    (
                        name.clone(),
                        entry.texts(name).map(str::to_owned).collect::<Vec<_>>(),
                    )
                })
                .filter(|(_, values)| !values.is_empty())
                .collect(),
            exchange_kind: None,
            aad_object_id: entry
                .first_text("msds-aadobjectid")
                .map(|s| s.trim().to_lowercase().into_boxed_str()),
            owners: Box::default(),
            source: None,
        }
    }

    /// The object for messages: its DN, and its source when there are several.
    pub fn who(&self) -> std::borrow::Cow<'_, str> {
        match &self.source {
            None => std::borrow::Cow::Borrowed(&self.dn),
            Some(s) => std::borrow::Cow::Owned(format!("{} (source {s})", self.dn)),
        }
    }

    /// Every address of the recipient, primary first.
    pub fn addresses(&self) -> impl Iterator<Item = (&Address, Origin)> {
        self.primary
            .iter()
            .map(|p| (p, self.primary_origin))
            .chain(self.aliases.iter().map(|(a, o)| (a, *o)))
    }
}

/// What to keep of each entry beyond its addresses: memory goes to what is used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keep {
    /// Attributes the rules read (lower case); their text values go to [`Recipient::attrs`].
    pub attrs: BTreeSet<String>,
    /// `memberOf`: for rules on group membership, and `explain`.
    pub member_of: bool,
    /// objectGUID, the member count of groups, the display name: for `explain` and `check`.
    pub details: bool,
    /// The group DNs seen so far, each stored once.
    pub groups: std::cell::RefCell<std::collections::HashSet<std::sync::Arc<str>>>,
}

impl Keep {
    /// Everything (for `explain`).
    pub fn all(attrs: BTreeSet<String>) -> Keep {
        Keep {
            attrs,
            member_of: true,
            details: true,
            groups: Default::default(),
        }
    }

    /// A group DN, shared with every other object in that group.
    pub fn group(&self, dn: &str) -> std::sync::Arc<str> {
        let mut groups = self.groups.borrow_mut();
        if let Some(known) = groups.get(dn) {
            return known.clone();
        }
        let new: std::sync::Arc<str> = dn.into();
        groups.insert(new.clone());
        new
    }

    /// The attributes to request from an LDAP server, by name.
    pub fn request(&self, exchange: bool) -> Vec<String> {
        let mut out: Vec<String> = [
            "objectClass",
            "proxyAddresses",
            "mail",
            "userAccountControl",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if exchange {
            out.push("msDS-aadObjectId".into());
        }
        if self.member_of {
            out.push("memberOf".into());
        }
        if self.details {
            out.extend(
                ["objectGUID", "member", "displayName"]
                    .iter()
                    .map(|s| s.to_string()),
            );
        }
        for a in &self.attrs {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(a)) {
                out.push(a.clone());
            }
        }
        out
    }
}

/// AD's text form of an objectGUID: the first three groups are little-endian.
pub fn guid_text(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

/// Every address an entry carries (`SMTP:`/`smtp:` proxy addresses, then `mail`), parsed;
/// the values that are not valid addresses, with why.
fn candidates(entry: &Entry) -> (Vec<(Address, Origin)>, Vec<Rejected>) {
    let mut rejected = Vec::new();
    let mut candidates: Vec<(Address, Origin)> = Vec::new();
    let mut consider = |raw: &str, origin: Origin, rejected: &mut Vec<Rejected>| {
        match Address::parse(raw.trim()) {
            Ok(a) => candidates.push((a, origin)),
            Err(error) => rejected.push(Rejected {
                raw: raw.to_owned(),
                origin,
                error,
            }),
        }
    };
    let not_text = |raw: &[u8], origin| Rejected {
        raw: String::from_utf8_lossy(raw).into_owned(),
        origin,
        error: AddressError::NotUtf8,
    };
    for raw in entry.values("proxyaddresses") {
        let Ok(value) = std::str::from_utf8(raw) else {
            rejected.push(not_text(raw, Origin::ProxyAlias));
            continue;
        };
        let Some((prefix, addr)) = value.split_once(':') else {
            continue;
        };
        if prefix == "SMTP" {
            consider(addr, Origin::ProxyPrimary, &mut rejected);
        } else if prefix.eq_ignore_ascii_case("smtp") {
            consider(addr, Origin::ProxyAlias, &mut rejected);
        }
    }
    for raw in entry.values("mail") {
        match std::str::from_utf8(raw) {
            Ok(value) => consider(value, Origin::Mail, &mut rejected),
            Err(_) => rejected.push(not_text(raw, Origin::Mail)),
        }
    }
    (candidates, rejected)
}

/// The primary address: the `SMTP:` value (if several — invalid in AD — the one equal to
/// `mail`, else the smallest, so the choice does not depend on value order); else `mail`.
/// Also how many more `SMTP:` values there were.
fn choose_primary(candidates: &[(Address, Origin)]) -> (Option<Address>, Origin, usize) {
    let mail: Option<&Address> = candidates
        .iter()
        .find(|(_, o)| *o == Origin::Mail)
        .map(|(a, _)| a);
    let mut primaries: Vec<&Address> = candidates
        .iter()
        .filter(|(_, o)| *o == Origin::ProxyPrimary)
        .map(|(a, _)| a)
        .collect();
    primaries.sort();
    primaries.dedup();
    let extra = primaries.len().saturating_sub(1);
    match (primaries.as_slice(), mail) {
        ([], None) => (None, Origin::Mail, extra),
        ([], Some(m)) => (Some(m.clone()), Origin::Mail, extra),
        (ps, m) => {
            let chosen = m
                .and_then(|m| ps.iter().find(|p| **p == m))
                .unwrap_or(&ps[0]);
            (Some((*chosen).clone()), Origin::ProxyPrimary, extra)
        }
    }
}

/// Every address but the primary, once (the first origin in precedence order wins).
fn aliases(
    mut candidates: Vec<(Address, Origin)>,
    primary: Option<&Address>,
) -> Vec<(Address, Origin)> {
    candidates.sort();
    let mut aliases: Vec<(Address, Origin)> = Vec::with_capacity(candidates.len());
    for (address, origin) in candidates {
        if Some(&address) == primary || aliases.last().is_some_and(|(a, _)| *a == address) {
            continue;
        }
        aliases.push((address, origin));
    }
    aliases.shrink_to_fit();
    aliases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(classes: &[&str], attrs: &[(&str, &str)]) -> Entry {
        let mut e = Entry::new("CN=Test,DC=example,DC=com");
        for c in classes {
            e.push("objectClass", c.as_bytes().to_vec());
        }
        for (k, v) in attrs {
            e.push(k, v.as_bytes().to_vec());
        }
        e
    }

    impl Recipient {
        fn from_entry_all(entry: &Entry) -> Recipient {
            Recipient::from_entry(entry, &Keep::all(BTreeSet::new()))
        }
    }

    fn addrs(r: &Recipient) -> Vec<String> {
        r.aliases.iter().map(|(a, _)| a.to_string()).collect()
    }

    #[test]
    fn address_is_lowercased_and_validated() {
        assert_eq!(
            Address::parse("John.Doe@Example.COM").unwrap().as_str(),
            "john.doe@example.com"
        );
        assert_eq!(
            Address::parse("a@b.example.").unwrap().domain(),
            "b.example"
        );
        assert_eq!(Address::parse("nobody"), Err(AddressError::NoAt));
        assert_eq!(
            Address::parse("@example.com"),
            Err(AddressError::EmptyLocal)
        );
        assert_eq!(
            Address::parse("a b@example.com"),
            Err(AddressError::BadLocal)
        );
        assert_eq!(
            Address::parse("a..b@example.com"),
            Err(AddressError::BadLocal)
        );
        assert_eq!(
            Address::parse("a\tb@example.com"),
            Err(AddressError::BadLocal)
        );
        assert_eq!(
            Address::parse("jörg@example.com"),
            Err(AddressError::BadLocal)
        );
        assert_eq!(Address::parse("a@localhost"), Err(AddressError::BadDomain));
        assert_eq!(
            Address::parse("a@exa_mple.com"),
            Err(AddressError::BadDomain)
        );
        assert_eq!(Address::parse("a@"), Err(AddressError::EmptyDomain));
        assert_eq!(
            Address::parse(&format!("{}@example.com", "x".repeat(65))),
            Err(AddressError::LongLocal)
        );
    }

    #[test]
    fn internationalised_domains_become_punycode() {
        let a = Address::parse("Info@Bücher.DE").unwrap();
        assert_eq!(a.as_str(), "info@xn--bcher-kva.de");
        assert_eq!(a.domain(), "xn--bcher-kva.de");
        assert_eq!(Address::parse("info@xn--bcher-kva.de").unwrap(), a);
        assert_eq!(
            Domain::parse("BÜCHER.de").unwrap().as_str(),
            "xn--bcher-kva.de"
        );
    }

    #[test]
    fn proxy_addresses_primary_aliases_and_other_types() {
        let r = Recipient::from_entry_all(&entry(
            &["top", "person", "user"],
            &[
                ("proxyAddresses", "SMTP:John.Doe@example.com"),
                ("proxyAddresses", "smtp:j.doe@example.com"),
                ("proxyAddresses", "Smtp:jd@example.de"),
                (
                    "proxyAddresses",
                    "X500:/o=ExchangeLabs/ou=Exchange/cn=Recipients/cn=x",
                ),
                ("proxyAddresses", "SIP:john.doe@example.com"),
                ("proxyAddresses", "SPO:SPO_abc@SPO_def"),
                ("proxyAddresses", "smtp:JOHN.DOE@EXAMPLE.COM"),
                ("proxyAddresses", "smtp:J.Doe@example.com"),
                ("mail", "john.doe@example.com"),
            ],
        ));
        assert_eq!(r.kind, ObjectKind::User);
        assert_eq!(r.primary.as_ref().unwrap().as_str(), "john.doe@example.com");
        assert_eq!(r.primary_origin, Origin::ProxyPrimary);
        assert_eq!(addrs(&r), ["j.doe@example.com", "jd@example.de"]);
        assert!(r.rejected.is_empty());
    }

    #[test]
    fn no_smtp_primary_falls_back_to_mail() {
        let r = Recipient::from_entry_all(&entry(
            &["user"],
            &[
                ("proxyAddresses", "smtp:alias@example.com"),
                ("mail", "Main@Example.com"),
            ],
        ));
        assert_eq!(r.primary.as_ref().unwrap().as_str(), "main@example.com");
        assert_eq!(r.primary_origin, Origin::Mail);
        assert_eq!(addrs(&r), ["alias@example.com"]);
    }

    #[test]
    fn no_address_at_all() {
        let r = Recipient::from_entry_all(&entry(&["user"], &[("displayName", "No Mail")]));
        assert!(r.primary.is_none() && r.aliases.is_empty());
    }

    #[test]
    fn mail_differing_from_primary_is_kept_as_alias() {
        let r = Recipient::from_entry_all(&entry(
            &["user"],
            &[
                ("proxyAddresses", "SMTP:a@example.com"),
                ("mail", "old@example.com"),
            ],
        ));
        assert_eq!(r.primary.unwrap().as_str(), "a@example.com");
        assert_eq!(
            r.aliases,
            [(Address::parse("old@example.com").unwrap(), Origin::Mail)]
        );
    }

    #[test]
    fn two_smtp_primaries_choose_deterministically() {
        let one = entry(
            &["user"],
            &[
                ("proxyAddresses", "SMTP:z@example.com"),
                ("proxyAddresses", "SMTP:b@example.com"),
            ],
        );
        let two = entry(
            &["user"],
            &[
                ("proxyAddresses", "SMTP:b@example.com"),
                ("proxyAddresses", "SMTP:z@example.com"),
            ],
        );
        let (r1, r2) = (
            Recipient::from_entry_all(&one),
            Recipient::from_entry_all(&two),
        );
        assert_eq!(r1, r2);
        assert_eq!(r1.primary.unwrap().as_str(), "b@example.com");
        assert_eq!(r1.extra_primaries, 1);
        assert_eq!(addrs(&r2), ["z@example.com"]);
    }

    #[test]
    fn invalid_addresses_are_reported_not_dropped_silently() {
        let r = Recipient::from_entry_all(&entry(
            &["user"],
            &[
                ("proxyAddresses", "SMTP:good@example.com"),
                ("proxyAddresses", "smtp:bad address@example.com"),
                ("proxyAddresses", "smtp:"),
                ("proxyAddresses", "smtpbroken"),
            ],
        ));
        assert_eq!(r.rejected.len(), 2);
        assert_eq!(r.rejected[0].raw, "bad address@example.com");
        assert_eq!(r.rejected[0].error, AddressError::BadLocal);
        assert_eq!(r.rejected[1].error, AddressError::NoAt);
    }

    #[test]
    fn object_guid_in_ad_text_form() {
        // The bytes AD stores for {de23a3b8-f218-4f7b-a5a2-6b1e2c3d4e5f}.
        let bytes = [
            0xb8, 0xa3, 0x23, 0xde, 0x18, 0xf2, 0x7b, 0x4f, 0xa5, 0xa2, 0x6b, 0x1e, 0x2c, 0x3d,
            0x4e, 0x5f,
        ];
        assert_eq!(
            guid_text(&bytes).unwrap(),
            "de23a3b8-f218-4f7b-a5a2-6b1e2c3d4e5f"
        );
        assert_eq!(guid_text(&bytes[..15]), None);
    }

    #[test]
    fn disabled_bit_and_kinds() {
        let shared = entry(&["user"], &[("userAccountControl", "514")]);
        assert!(Recipient::from_entry_all(&shared).disabled);
        let enabled = entry(&["user"], &[("userAccountControl", "512")]);
        assert!(!Recipient::from_entry_all(&enabled).disabled);
        let kind = |c: &[&str]| ObjectKind::from_object_classes(c.iter().copied());
        assert_eq!(
            kind(&["top", "person", "organizationalPerson", "user", "computer"]),
            ObjectKind::Other
        );
        assert_eq!(
            kind(&["top", "person", "organizationalPerson", "contact"]),
            ObjectKind::Contact
        );
        assert_eq!(kind(&["top", "group"]), ObjectKind::Group);
        assert_eq!(
            kind(&["top", "msExchDynamicDistributionList"]),
            ObjectKind::Other
        );
    }
}
