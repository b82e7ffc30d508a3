//! The Exchange data document (`docs/exchange-data.md`): reading it the way PowerShell really
//! writes it, and strictly about what it means.
//!
//! Tolerated: a UTF-8 byte order mark (Windows PowerShell 5.1), UTF-16 with a byte order mark
//! (`>` redirection), a scalar where a list is expected and a missing or null list
//! (`ConvertTo-Json` unwraps one-element arrays and drops empty ones). Refused, naming the
//! field: another schema or version, a wrong type, an invalid date, an address list flattened
//! into one string (`ConvertTo-Json` at its default depth), an owner that is not an address. A
//! recipient type dirsync does not know is kept (completeness first), as kind "other", and
//! counted.

use std::collections::BTreeSet;

use serde_json::Value;

pub const SCHEMA: &str = "dirsync-exchange";
pub const SCHEMA_VERSION: i64 = 1;

/// Collections the script may gather (`-Collections`).
pub const COLLECTIONS: &[&str] = &[
    "AcceptedDomains",
    "Recipients",
    "DynamicDistributionGroups",
    "PublicFolders",
    "GroupOwners",
];

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExchangeData {
    pub collected_at: String,
    /// Seconds since the Unix epoch of `collected_at`.
    pub collected_at_unix: u64,
    pub tenant: String,
    pub collections: BTreeSet<String>,
    pub accepted_domains: Vec<AcceptedDomain>,
    pub recipients: Vec<ExRecipient>,
    pub dynamic_distribution_groups: Vec<ExRecipient>,
    pub public_folders: Vec<ExRecipient>,
    pub group_owners: Vec<GroupOwners>,
    /// Recipients whose `recipientTypeDetails` dirsync does not know, per type.
    pub unknown_types: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedDomain {
    pub name: String,
    /// Authoritative, InternalRelay or ExternalRelay.
    pub domain_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExRecipient {
    /// dirsync's kind name (`shared_mailbox`, …), from RecipientTypeDetails.
    pub kind: String,
    pub recipient_type_details: String,
    pub primary_smtp_address: String,
    pub email_addresses: Vec<String>,
    /// Entra object id (msDS-aadObjectId in Entra DS), lower case.
    pub external_directory_object_id: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOwners {
    pub group: String,
    pub external_directory_object_id: Option<String>,
    pub owners: Vec<String>,
}

/// RecipientTypeDetails → dirsync kind: every value Microsoft documents for
/// `Get-EXORecipient -RecipientTypeDetails` and the RecipientTypeDetails enumeration; a value
/// not listed is kept as kind "other" (see [`parse`]).
pub fn kind_of(recipient_type_details: &str) -> Option<&'static str> {
    Some(match recipient_type_details {
        "UserMailbox" | "LinkedMailbox" | "RemoteUserMailbox" | "SchedulingMailbox"
        | "LegacyMailbox" => "user_mailbox",
        "SharedMailbox" | "RemoteSharedMailbox" | "TeamMailbox" | "RemoteTeamMailbox" => {
            "shared_mailbox"
        }
        "RoomMailbox" | "RemoteRoomMailbox" | "LinkedRoomMailbox" | "Workspace" => "room_mailbox",
        "EquipmentMailbox" | "RemoteEquipmentMailbox" => "equipment_mailbox",
        "GroupMailbox" | "RemoteGroupMailbox" => "m365_group",
        "DynamicDistributionGroup" => "dynamic_distribution_group",
        "PublicFolder" | "PublicFolderMailbox" => "public_folder",
        "MailUser" | "GuestMailUser" | "LinkedUser" | "RemoteMailUser" => "mail_user",
        "MailContact" | "MailForestContact" => "mail_contact",
        "MailUniversalDistributionGroup" | "MailNonUniversalGroup" | "RoomList" => {
            "distribution_group"
        }
        "MailUniversalSecurityGroup" => "mail_security_group",
        "DiscoveryMailbox"
        | "ArbitrationMailbox"
        | "AuditLogMailbox"
        | "AuxAuditLogMailbox"
        | "MonitoringMailbox"
        | "SupervisoryReviewPolicyMailbox"
        | "SubstrateGroupMailbox"
        | "SystemAttendantMailbox"
        | "SystemMailbox" => "system_mailbox",
        _ => return None,
    })
}

/// Decodes what PowerShell wrote: UTF-8 with or without BOM, or UTF-16 with BOM.
pub fn decode(bytes: &[u8]) -> Result<String, String> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8(rest.to_vec()).map_err(|_| "not valid UTF-8".into());
    }
    let utf16 = |rest: &[u8], le: bool| {
        if !rest.len().is_multiple_of(2) {
            return Err("UTF-16 text with an odd number of bytes".to_string());
        }
        let units: Vec<u16> = rest
            .chunks(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|_| "not valid UTF-16".to_string())
    };
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, false);
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        "not valid UTF-8 (the script must write UTF-8; see docs/exchange-data.md)".into()
    })
}

/// Parses and checks a document. Errors name the field: `recipients[3].emailAddresses: …`.
pub fn parse(bytes: &[u8]) -> Result<ExchangeData, String> {
    let text = decode(bytes)?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))?;
    let root = doc.as_object().ok_or("expected a JSON object at the top")?;
    check_schema(root)?;
    let collected_at = string(root.get("collectedAt"), "collectedAt")?;
    let collected_at_unix = timestamp(&collected_at)?;
    let tenant = string(root.get("tenant"), "tenant")?;
    let mut collections = BTreeSet::new();
    for (i, c) in list(root.get("collections"), "collections")?
        .iter()
        .enumerate()
    {
        let name = string(Some(c), &format!("collections[{i}]"))?;
        if !COLLECTIONS.contains(&name.as_str()) {
            return Err(format!(
                "collections[{i}]: unknown collection {name:?}; expected {}",
                COLLECTIONS.join(", ")
            ));
        }
        collections.insert(name);
    }
    let mut data = ExchangeData {
        collected_at,
        collected_at_unix,
        tenant,
        collections,
        ..ExchangeData::default()
    };
    data.accepted_domains = accepted_domains(root.get("acceptedDomains"))?;
    let mut unknown = std::collections::BTreeMap::new();
    data.recipients = recipients(root.get("recipients"), "recipients", None, &mut unknown)?;
    data.dynamic_distribution_groups = recipients(
        root.get("dynamicDistributionGroups"),
        "dynamicDistributionGroups",
        Some("DynamicDistributionGroup"),
        &mut unknown,
    )?;
    data.public_folders = recipients(
        root.get("publicFolders"),
        "publicFolders",
        Some("PublicFolder"),
        &mut unknown,
    )?;
    data.unknown_types = unknown;
    data.group_owners = group_owners(root.get("groupOwners"))?;
    Ok(data)
}

/// `schema` and `schemaVersion`: this dirsync's, or a clear refusal.
fn check_schema(root: &serde_json::Map<String, Value>) -> Result<(), String> {
    match root.get("schema").and_then(Value::as_str) {
        Some(SCHEMA) => {}
        other => {
            return Err(format!(
                "schema: expected \"{SCHEMA}\", found {}",
                show(other.map(|s| Value::String(s.into())).as_ref())
            ))
        }
    }
    match root.get("schemaVersion").and_then(Value::as_i64) {
        Some(SCHEMA_VERSION) => {}
        Some(v) if v > SCHEMA_VERSION => {
            return Err(format!("schemaVersion: {v} is newer than this dirsync understands ({SCHEMA_VERSION}); update dirsync or use the script it ships with"))
        }
        _ => return Err(format!("schemaVersion: expected {SCHEMA_VERSION}, found {}", show(root.get("schemaVersion")))),
    }
    Ok(())
}

/// `collectedAt` as seconds since the epoch.
fn timestamp(collected_at: &str) -> Result<u64, String> {
    let time = humantime::parse_rfc3339_weak(collected_at).map_err(|_| {
        let culture = if collected_at.contains('.') && !collected_at.contains(':') {
            " (the time has dots: a host culture such as Finnish and an export script \
                 older than this dirsync; update scripts/Export-DirSyncExchangeData.ps1)"
        } else {
            ""
        };
        format!("collectedAt: {collected_at:?} is not a date such as 2026-11-27T17:00:00Z{culture}")
    })?;
    Ok(time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0))
}

fn accepted_domains(v: Option<&Value>) -> Result<Vec<AcceptedDomain>, String> {
    let mut out = Vec::new();
    for (i, d) in list(v, "acceptedDomains")?.iter().enumerate() {
        let path = format!("acceptedDomains[{i}]");
        out.push(AcceptedDomain {
            name: string(
                field(d, "domainName", &path)?,
                &format!("{path}.domainName"),
            )?,
            domain_type: string(
                field(d, "domainType", &path)?,
                &format!("{path}.domainType"),
            )?,
        });
    }
    Ok(out)
}

fn group_owners(v: Option<&Value>) -> Result<Vec<GroupOwners>, String> {
    let mut out = Vec::new();
    for (i, g) in list(v, "groupOwners")?.iter().enumerate() {
        let path = format!("groupOwners[{i}]");
        let owners = list(field(g, "owners", &path)?, &format!("{path}.owners"))?
            .iter()
            .enumerate()
            .map(|(j, o)| one_address(Some(o), &format!("{path}.owners[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(GroupOwners {
            group: string(field(g, "group", &path)?, &format!("{path}.group"))?,
            external_directory_object_id: optional_string(g, "externalDirectoryObjectId", &path)?
                .map(|s| s.to_lowercase()),
            owners,
        });
    }
    Ok(out)
}

/// What to tell an admin whose document has its lists flattened.
const FLATTENED: &str = "several addresses in one string: the document was written by \
                         ConvertTo-Json at its default depth, which flattens lists; run the \
                         bundled scripts/Export-DirSyncExchangeData.ps1 (it sets -Depth)";

/// A string that holds at most one address (a primary address: not necessarily valid, which
/// the model reports per object).
fn single(v: Option<&Value>, path: &str) -> Result<String, String> {
    let s = string(v, path)?;
    let trimmed = s.trim();
    let several = trimmed.matches('@').count() > 1
        || (trimmed.contains('@') && trimmed.split_whitespace().count() > 1);
    if several {
        return Err(format!("{path}: {s:?} holds {FLATTENED}"));
    }
    Ok(s)
}

/// A string that is exactly one valid mail address (an owner: never skipped silently).
fn one_address(v: Option<&Value>, path: &str) -> Result<String, String> {
    let s = single(v, path)?;
    if crate::model::Address::parse(s.trim()).is_err() {
        return Err(format!("{path}: {s:?} is not a mail address"));
    }
    Ok(s.trim().to_owned())
}

/// One proxy address such as `smtp:a@example.com` (X500 values may contain spaces; SMTP
/// values may not, and a second `smtp:` in the string is a flattened list).
fn proxy_address(v: Option<&Value>, path: &str) -> Result<String, String> {
    let s = string(v, path)?;
    let lower = s.to_ascii_lowercase();
    let smtp_values = lower.matches("smtp:").count();
    let is_smtp = lower.trim_start().starts_with("smtp:");
    if smtp_values > 1 || (is_smtp && s.split_whitespace().count() > 1) {
        return Err(format!("{path}: {s:?} holds {FLATTENED}"));
    }
    Ok(s)
}

fn recipients(
    v: Option<&Value>,
    path: &str,
    implied_type: Option<&str>,
    unknown: &mut std::collections::BTreeMap<String, u64>,
) -> Result<Vec<ExRecipient>, String> {
    let mut out = Vec::new();
    for (i, r) in list(v, path)?.iter().enumerate() {
        let path = format!("{path}[{i}]");
        let rtd = match (
            optional_string(r, "recipientTypeDetails", &path)?,
            implied_type,
        ) {
            (Some(t), _) => t,
            (None, Some(t)) => t.to_owned(),
            (None, None) => return Err(format!("{path}.recipientTypeDetails: missing")),
        };
        let kind = kind_of(&rtd).unwrap_or_else(|| {
            *unknown.entry(rtd.clone()).or_default() += 1;
            "other"
        });
        let emails = list(
            field(r, "emailAddresses", &path)?,
            &format!("{path}.emailAddresses"),
        )?
        .iter()
        .enumerate()
        .map(|(j, e)| proxy_address(Some(e), &format!("{path}.emailAddresses[{j}]")))
        .collect::<Result<Vec<_>, _>>()?;
        out.push(ExRecipient {
            kind: kind.to_owned(),
            recipient_type_details: rtd,
            primary_smtp_address: single(
                field(r, "primarySmtpAddress", &path)?,
                &format!("{path}.primarySmtpAddress"),
            )?,
            email_addresses: emails,
            external_directory_object_id: optional_string(r, "externalDirectoryObjectId", &path)?
                .map(|s| s.to_lowercase())
                .filter(|s| !s.is_empty()),
            display_name: optional_string(r, "displayName", &path)?,
        });
    }
    Ok(out)
}

fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "nothing".into(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 60 {
                format!(
                    "{}…",
                    &s[..s.char_indices().nth(57).map_or(s.len(), |(i, _)| i)]
                )
            } else {
                s
            }
        }
    }
}

fn field<'a>(v: &'a Value, name: &str, path: &str) -> Result<Option<&'a Value>, String> {
    match v {
        Value::Object(o) => Ok(o.get(name)),
        other => Err(format!(
            "{path}: expected an object, found {}",
            show(Some(other))
        )),
    }
}

fn string(v: Option<&Value>, path: &str) -> Result<String, String> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        other => Err(format!("{path}: expected a string, found {}", show(other))),
    }
}

fn optional_string(v: &Value, name: &str, path: &str) -> Result<Option<String>, String> {
    match field(v, name, path)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "{path}.{name}: expected a string, found {}",
            show(Some(other))
        )),
    }
}

/// A list, as PowerShell may write it: missing or null = empty, a scalar = one item.
fn list<'a>(v: Option<&'a Value>, _path: &str) -> Result<Vec<&'a Value>, String> {
    Ok(match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => vec![other],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"schema":"dirsync-exchange","schemaVersion":1,"collectedAt":"2026-11-27T17:00:00Z","tenant":"contoso.onmicrosoft.com","collections":["Recipients"],
        "recipients":[{"recipientTypeDetails":"SharedMailbox","primarySmtpAddress":"info@example.com","emailAddresses":["SMTP:info@example.com","smtp:kontakt@example.de"],"externalDirectoryObjectId":"ABC"}]}"#;

    #[test]
    fn reads_utf8_utf8_bom_and_utf16_alike() {
        let plain = parse(MINIMAL.as_bytes()).unwrap();
        assert_eq!(plain.recipients[0].kind, "shared_mailbox");
        assert_eq!(
            plain.recipients[0].external_directory_object_id.as_deref(),
            Some("abc")
        );
        assert_eq!(plain.collected_at_unix, 1_795_798_800);
        let bom = [b"\xEF\xBB\xBF".as_slice(), MINIMAL.as_bytes()].concat();
        assert_eq!(parse(&bom).unwrap(), plain);
        let mut le = vec![0xFF, 0xFE];
        le.extend(MINIMAL.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(parse(&le).unwrap(), plain);
        let mut be = vec![0xFE, 0xFF];
        be.extend(MINIMAL.encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(parse(&be).unwrap(), plain);
    }

    #[test]
    fn scalars_and_missing_lists_are_what_powershell_meant() {
        // One-element arrays unwrapped, empty ones dropped or null: as Windows PowerShell 5.1 writes them.
        let text = r#"{"schema":"dirsync-exchange","schemaVersion":1,"collectedAt":"2026-11-27T17:00:00Z","tenant":"t","collections":"Recipients",
            "recipients":{"recipientTypeDetails":"RoomMailbox","primarySmtpAddress":"room@example.de","emailAddresses":"SMTP:room@example.de"},
            "publicFolders":null}"#;
        let d = parse(text.as_bytes()).unwrap();
        assert_eq!(d.collections.iter().collect::<Vec<_>>(), ["Recipients"]);
        assert_eq!(d.recipients[0].email_addresses, ["SMTP:room@example.de"]);
        assert!(d.public_folders.is_empty() && d.group_owners.is_empty());
    }

    #[test]
    fn malformed_documents_name_the_field() {
        let e = |t: &str| parse(t.as_bytes()).unwrap_err();
        let with = |from: &str, to: &str| MINIMAL.replace(from, to);
        assert_eq!(e(&with("\"schemaVersion\":1", "\"schemaVersion\":2")), "schemaVersion: 2 is newer than this dirsync understands (1); update dirsync or use the script it ships with");
        assert_eq!(
            e(&with("dirsync-exchange", "other")),
            "schema: expected \"dirsync-exchange\", found \"other\""
        );
        assert_eq!(
            e(&with(
                "\"primarySmtpAddress\":\"info@example.com\"",
                "\"primarySmtpAddress\":42"
            )),
            "recipients[0].primarySmtpAddress: expected a string, found 42"
        );
        assert_eq!(
            e(&with("\"smtp:kontakt@example.de\"", "{\"a\":1}")),
            "recipients[0].emailAddresses[1]: expected a string, found {\"a\":1}"
        );
        assert_eq!(
            e(&with("2026-11-27T17:00:00Z", "yesterday")),
            "collectedAt: \"yesterday\" is not a date such as 2026-11-27T17:00:00Z"
        );
        assert_eq!(e(&with("[\"Recipients\"]", "[\"Mailboxes\"]")), "collections[0]: unknown collection \"Mailboxes\"; expected AcceptedDomains, Recipients, DynamicDistributionGroups, PublicFolders, GroupOwners");
        assert!(e("{\"schema\": ").starts_with("not valid JSON"));
        assert!(parse(b"\xFF\xFE\x41")
            .unwrap_err()
            .contains("odd number of bytes"));
        assert_eq!(e("[1]"), "expected a JSON object at the top");
    }
}
