//! Exchange Online data: what only Exchange knows, merged into the directory's recipients.
//!
//! The data comes from the bundled PowerShell script (`scripts/Export-DirSyncExchangeData.ps1`),
//! which dirsync runs itself (`script`), or from a JSON file another scheduled task wrote
//! (`input`). It adds dynamic distribution groups and mail-enabled public folders (never
//! visible over LDAP), classifies directory objects (shared/room/equipment mailbox, Microsoft
//! 365 group …), adds addresses Exchange has and the directory lacks, and attaches Microsoft 365
//! group owners. A failed or stale step fails the run (exit 5) unless a fallback to the last good
//! data is configured. This module does not decide what goes into the map (that is `rules`).

pub mod config;
pub mod data;
mod runner;

pub use config::{ExchangeConfig, ExchangeSource};

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context as _};
use serde::Serialize;

use crate::model::{Address, Domain, Origin, Recipient};
use crate::source::Entry;
use crate::state::StateDir;
pub use data::ExchangeData;

/// The file in `state_dir` that keeps the last good data (for the fallback).
pub const LAST_GOOD: &str = "exchange-last-good.json";

/// Data ready to merge, and where it came from.
#[derive(Debug)]
pub struct Obtained {
    pub data: ExchangeData,
    /// The raw document (kept as the last good data after a successful run).
    pub bytes: Vec<u8>,
    pub origin: String,
    /// Set when the last good data stands in for a failed step: why.
    pub fallback: Option<String>,
}

/// Runs the script or reads the input, checks the data's age, and falls back if configured.
pub fn obtain(
    config: &ExchangeConfig,
    state: &StateDir,
    now: SystemTime,
) -> anyhow::Result<Obtained> {
    match fresh(config, state, now) {
        Ok(o) => Ok(o),
        Err(e) => {
            let Some(max) = config.fallback_max_age else {
                return Err(e);
            };
            let path = state.path(&config.last_good);
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "{e:#}; and there is no last good Exchange data to fall back on ({})",
                    path.display()
                )
            })?;
            let data = data::parse(&bytes).map_err(|p| {
                anyhow!(
                    "{e:#}; and the last good data {} is unreadable: {p}",
                    path.display()
                )
            })?;
            let age = age(&data, now).map_err(|a| {
                anyhow!(
                    "{e:#}; and the last good data {} is not usable: {a:#}",
                    path.display()
                )
            })?;
            if age > max {
                bail!(
                    "{e:#}; and the last good Exchange data is {} old, more than exchange.fallback_max_age_hours allows",
                    humantime::format_duration(Duration::from_secs(age.as_secs() / 60 * 60))
                );
            }
            let reason = format!("{e:#}");
            tracing::warn!(
                "the Exchange data step failed ({reason}); using the last good data from {} ({} old)",
                data.collected_at,
                humantime::format_duration(Duration::from_secs(age.as_secs() / 60 * 60))
            );
            Ok(Obtained {
                data,
                bytes,
                origin: path.display().to_string(),
                fallback: Some(reason),
            })
        }
    }
}

/// A `collectedAt` this far ahead of the host's clock is still taken as clock skew.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// How old the data is. A `collectedAt` in the future (beyond clock skew) is refused: it
/// would never go stale, which disables `max_age_hours`.
fn age(data: &ExchangeData, now: SystemTime) -> anyhow::Result<Duration> {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let ahead = data.collected_at_unix.saturating_sub(now);
    if ahead > MAX_CLOCK_SKEW.as_secs() {
        let hint = if ahead > 300 * 86_400 {
            " — a year far ahead comes from a host with a non-Gregorian calendar (e.g. Thai \
             2569) and an older export script: update scripts/Export-DirSyncExchangeData.ps1"
        } else {
            " — check the clocks of the machine that ran the export and of this one"
        };
        bail!(
            "collectedAt: {} is {} ahead of this host's clock{hint}",
            data.collected_at,
            humantime::format_duration(Duration::from_secs(ahead / 60 * 60))
        );
    }
    Ok(Duration::from_secs(
        now.saturating_sub(data.collected_at_unix),
    ))
}

fn fresh(config: &ExchangeConfig, state: &StateDir, now: SystemTime) -> anyhow::Result<Obtained> {
    let (bytes, origin) = match &config.source {
        ExchangeSource::Input(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read exchange.input {}", path.display()))?;
            (bytes, path.display().to_string())
        }
        ExchangeSource::Script {
            script,
            interpreter,
            parameters,
            timeout,
        } => {
            let out = state.path(&config.last_good.replace("last-good", "run"));
            let _ = std::fs::remove_file(&out);
            runner::run(script, interpreter.as_deref(), parameters, *timeout, &out)?;
            let bytes = std::fs::read(&out)
                .with_context(|| format!("the script finished but wrote no {}", out.display()))?;
            let _ = std::fs::remove_file(&out);
            (bytes, script.display().to_string())
        }
    };
    let data = data::parse(&bytes)
        .map_err(|e| anyhow!("the Exchange data from {origin} is not usable: {e}"))?;
    let age = age(&data, now)
        .map_err(|e| anyhow!("the Exchange data from {origin} is not usable: {e:#}"))?;
    if age > config.max_age {
        bail!(
            "the Exchange data from {origin} was collected at {}, {} ago, more than exchange.max_age_hours allows: is the export task running?",
            data.collected_at,
            humantime::format_duration(Duration::from_secs(age.as_secs() / 60 * 60))
        );
    }
    Ok(Obtained {
        data,
        bytes,
        origin,
        fallback: None,
    })
}

/// The accepted domains to use with `domains = "exchange"`: Authoritative and InternalRelay,
/// without the tenant's `*.onmicrosoft.com` domains (their MX is Microsoft's, not Retarus').
pub fn accepted_domains(data: &ExchangeData) -> anyhow::Result<BTreeSet<Domain>> {
    if !data.collections.contains("AcceptedDomains") {
        bail!("domains = \"exchange\" needs the AcceptedDomains collection, which this Exchange data does not have");
    }
    let mut out = BTreeSet::new();
    for d in &data.accepted_domains {
        if d.domain_type.eq_ignore_ascii_case("ExternalRelay")
            || d.name.to_ascii_lowercase().ends_with(".onmicrosoft.com")
        {
            continue;
        }
        out.insert(
            Domain::parse(&d.name)
                .map_err(|e| anyhow!("accepted domain {:?} from Exchange: {e}", d.name))?,
        );
    }
    if out.is_empty() {
        bail!("the Exchange data lists no accepted domain to use (Authoritative or InternalRelay, not *.onmicrosoft.com)");
    }
    Ok(out)
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct MergeReport {
    /// The source it was merged into (several sources only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub origin: String,
    pub collected_at: String,
    pub fallback: Option<String>,
    pub matched_by_object_id: u64,
    pub matched_by_address: u64,
    /// Recipients added from Exchange, by kind.
    pub added: BTreeMap<String, u64>,
    /// Addresses Exchange has and the directory object lacks, added as aliases.
    pub addresses_added: u64,
    pub groups_with_owners: u64,
    /// Owner lists whose group was not found.
    pub owners_unmatched: Vec<String>,
    /// Recipients of types dirsync does not know (kept, as kind "other"), per type.
    pub unknown_types: BTreeMap<String, u64>,
}

/// Merges Exchange data into the recipients read from the directory.
pub fn merge(
    recipients: &mut Vec<Recipient>,
    data: &ExchangeData,
    config: &ExchangeConfig,
) -> MergeReport {
    let mut report = MergeReport {
        collected_at: data.collected_at.clone(),
        unknown_types: data.unknown_types.clone(),
        ..MergeReport::default()
    };
    for (kind, n) in &data.unknown_types {
        tracing::warn!(
            "the Exchange data has {n} recipient(s) of type {kind}, which this dirsync does not \
             know: kept with their addresses, as kind \"other\"; update dirsync to map the type"
        );
    }
    let mut index = Index::new(recipients, config.applies_to.as_deref());
    let all = data
        .recipients
        .iter()
        .chain(&data.dynamic_distribution_groups)
        .chain(&data.public_folders);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for ex in all {
        let key = ex
            .external_directory_object_id
            .clone()
            .unwrap_or_else(|| ex.primary_smtp_address.to_lowercase());
        if seen.insert(key) {
            merge_one(recipients, &mut index, ex, config, &mut report);
        }
    }
    for go in &data.group_owners {
        let group = go
            .external_directory_object_id
            .as_ref()
            .and_then(|id| index.by_id.get(id))
            .or_else(|| {
                Address::parse(&go.group)
                    .ok()
                    .and_then(|a| index.by_address.get(&a))
            })
            .copied();
        match group {
            Some(i) => {
                let owners: Vec<Address> = go
                    .owners
                    .iter()
                    .filter_map(|o| Address::parse(o.trim()).ok())
                    .collect();
                report.groups_with_owners += u64::from(!owners.is_empty());
                recipients[i].owners = owners.into_boxed_slice();
            }
            None => report.owners_unmatched.push(go.group.clone()),
        }
    }
    report
}

/// Directory objects by Entra object id and by address.
struct Index {
    by_id: BTreeMap<String, usize>,
    by_address: BTreeMap<Address, usize>,
}

impl Index {
    /// The recipients of `source` (all, with one source).
    fn new(recipients: &[Recipient], source: Option<&str>) -> Index {
        let mut index = Index {
            by_id: BTreeMap::new(),
            by_address: BTreeMap::new(),
        };
        let ours = |r: &&Recipient| {
            source.is_none_or(|s| r.source.as_deref().map(String::as_str) == Some(s))
        };
        for (i, r) in recipients.iter().enumerate().filter(|(_, r)| ours(r)) {
            if let Some(id) = &r.aad_object_id {
                index.by_id.insert(id.to_string(), i);
            }
            for (a, _) in r.addresses() {
                index.by_address.entry(a.clone()).or_insert(i);
            }
        }
        index
    }
}

/// One Exchange recipient: its kind and missing addresses go to the directory object it
/// matches (by object id, else by primary address); without a match it is added (dynamic
/// distribution groups and public folders always, others with `add_exchange_only`).
fn merge_one(
    recipients: &mut Vec<Recipient>,
    index: &mut Index,
    ex: &data::ExRecipient,
    config: &ExchangeConfig,
    report: &mut MergeReport,
) {
    let from_exchange = ex_recipient(ex);
    let found = match ex
        .external_directory_object_id
        .as_ref()
        .and_then(|id| index.by_id.get(id))
    {
        Some(&i) => {
            report.matched_by_object_id += 1;
            Some(i)
        }
        None => {
            let i = from_exchange
                .primary
                .as_ref()
                .and_then(|p| index.by_address.get(p))
                .copied();
            report.matched_by_address += u64::from(i.is_some());
            i
        }
    };
    if let Some(i) = found {
        let r = &mut recipients[i];
        r.exchange_kind = Some(ex.kind.as_str().into());
        for (a, _) in from_exchange.addresses() {
            if !r.addresses().any(|(have, _)| have == a) {
                r.aliases.push((a.clone(), Origin::Exchange));
                report.addresses_added += 1;
            }
        }
        r.aliases.sort();
        return;
    }
    let always = matches!(
        ex.kind.as_str(),
        "dynamic_distribution_group" | "public_folder"
    );
    if (always || config.add_exchange_only) && from_exchange.primary.is_some() {
        *report.added.entry(ex.kind.clone()).or_default() += 1;
        let at = recipients.len();
        for (a, _) in from_exchange.addresses() {
            index.by_address.entry(a.clone()).or_insert(at);
        }
        let mut added = from_exchange;
        added.source = config.applies_to.clone().map(std::sync::Arc::new);
        recipients.push(added);
    }
}

/// A recipient from Exchange's view, read with the same rules as a directory entry.
fn ex_recipient(ex: &data::ExRecipient) -> Recipient {
    let class = match ex.kind.as_str() {
        "m365_group"
        | "distribution_group"
        | "mail_security_group"
        | "dynamic_distribution_group" => "group",
        "mail_contact" => "contact",
        "public_folder" | "system_mailbox" => "publicFolder",
        _ => "user",
    };
    let mut entry = Entry::new(format!(
        "Exchange {}: {}",
        ex.recipient_type_details, ex.primary_smtp_address
    ));
    entry.push("objectclass", class.as_bytes().to_vec());
    entry.push("mail", ex.primary_smtp_address.as_bytes().to_vec());
    for e in &ex.email_addresses {
        entry.push("proxyaddresses", e.as_bytes().to_vec());
    }
    let mut r = Recipient::from_entry(&entry, &crate::model::Keep::default());
    r.exchange_kind = Some(ex.kind.as_str().into());
    r.aad_object_id = ex.external_directory_object_id.as_deref().map(Into::into);
    if let Some(name) = &ex.display_name {
        r.attrs.insert("displayname".into(), vec![name.clone()]);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(dn: &str, id: Option<&str>, proxies: &[&str]) -> Recipient {
        let mut e = Entry::new(dn);
        e.push("objectclass", b"user".to_vec());
        if let Some(id) = id {
            e.push("msds-aadobjectid", id.as_bytes().to_vec());
        }
        for p in proxies {
            e.push("proxyaddresses", p.as_bytes().to_vec());
        }
        Recipient::from_entry(&e, &crate::model::Keep::all(BTreeSet::new()))
    }

    fn config() -> ExchangeConfig {
        ExchangeConfig {
            source: ExchangeSource::Input("x".into()),
            max_age: Duration::from_secs(3600),
            fallback_max_age: None,
            add_exchange_only: true,
            applies_to: None,
            last_good: LAST_GOOD.into(),
        }
    }

    fn ex(kind: &str, primary: &str, emails: &[&str], id: Option<&str>) -> data::ExRecipient {
        data::ExRecipient {
            kind: data::kind_of(kind).unwrap().into(),
            recipient_type_details: kind.into(),
            primary_smtp_address: primary.into(),
            email_addresses: emails.iter().map(|s| s.to_string()).collect(),
            external_directory_object_id: id.map(str::to_owned),
            display_name: None,
        }
    }

    #[test]
    fn classifies_adds_missing_addresses_and_exchange_only_recipients() {
        let mut rs = vec![
            user("CN=Info", Some("id-1"), &["SMTP:info@example.com"]),
            user("CN=Room", None, &["SMTP:room@example.de"]),
        ];
        let data = ExchangeData {
            recipients: vec![
                ex(
                    "SharedMailbox",
                    "info@example.com",
                    &["SMTP:info@example.com", "smtp:new-alias@example.com"],
                    Some("id-1"),
                ),
                ex(
                    "RoomMailbox",
                    "room@example.de",
                    &["SMTP:room@example.de"],
                    Some("id-2"),
                ),
                ex(
                    "UserMailbox",
                    "fresh@example.com",
                    &["SMTP:fresh@example.com"],
                    Some("id-3"),
                ),
            ],
            dynamic_distribution_groups: vec![ex(
                "DynamicDistributionGroup",
                "all-sales@example.com",
                &[
                    "SMTP:all-sales@example.com",
                    "smtp:vertrieb-alle@example.de",
                ],
                None,
            )],
            public_folders: vec![ex(
                "PublicFolder",
                "archive@example.com",
                &["SMTP:archive@example.com"],
                None,
            )],
            group_owners: vec![data::GroupOwners {
                group: "all-sales@example.com".into(),
                external_directory_object_id: None,
                owners: vec!["Alice@Example.com".into()],
            }],
            ..ExchangeData::default()
        };
        let report = merge(&mut rs, &data, &config());
        assert_eq!(
            (report.matched_by_object_id, report.matched_by_address),
            (1, 1)
        );
        assert_eq!(rs[0].exchange_kind.as_deref(), Some("shared_mailbox"));
        assert_eq!(
            rs[0].aliases,
            [(
                Address::parse("new-alias@example.com").unwrap(),
                Origin::Exchange
            )]
        );
        assert_eq!(rs[1].exchange_kind.as_deref(), Some("room_mailbox"));
        assert_eq!(rs.len(), 5);
        assert_eq!(report.added.get("user_mailbox"), Some(&1));
        let ddg = rs
            .iter()
            .find(|r| r.exchange_kind.as_deref() == Some("dynamic_distribution_group"))
            .unwrap();
        assert_eq!(
            ddg.primary.as_ref().unwrap().as_str(),
            "all-sales@example.com"
        );
        assert_eq!(&*ddg.owners, [Address::parse("alice@example.com").unwrap()]);
        assert_eq!(
            &*ddg.dn,
            "Exchange DynamicDistributionGroup: all-sales@example.com"
        );

        let mut only_dir = vec![user("CN=Info", Some("id-1"), &["SMTP:info@example.com"])];
        let strict = ExchangeConfig {
            add_exchange_only: false,
            ..config()
        };
        merge(&mut only_dir, &data, &strict);
        // Dynamic groups and public folders are always added; other Exchange-only ones are not.
        assert_eq!(only_dir.len(), 3);
    }

    #[test]
    fn accepted_domains_skip_external_relay_and_onmicrosoft() {
        let mut d = ExchangeData::default();
        assert!(accepted_domains(&d)
            .unwrap_err()
            .to_string()
            .contains("needs the AcceptedDomains collection"));
        d.collections.insert("AcceptedDomains".into());
        for (n, t) in [
            ("Example.com", "Authoritative"),
            ("example.de", "InternalRelay"),
            ("partner.org", "ExternalRelay"),
            ("contoso.onmicrosoft.com", "Authoritative"),
        ] {
            d.accepted_domains.push(data::AcceptedDomain {
                name: n.into(),
                domain_type: t.into(),
            });
        }
        let names: Vec<String> = accepted_domains(&d)
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(names, ["example.com", "example.de"]);
    }
}
