//! Graph objects as directory entries: which Graph property gives which Active Directory
//! attribute, so that one rules file works with the LDAP and the Graph source.
//!
//! The table is the documentation (docs/graph.md shows it); [`to_entry`] applies it. Graph's
//! JSON is decoded by serde into [`GraphObject`]: a property of the wrong type makes the page
//! malformed, and the read fails.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::source::Entry;

/// The collections read, in the order their entries are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Collection {
    Users,
    Groups,
    Contacts,
}

impl Collection {
    pub const ALL: [Collection; 3] = [Collection::Users, Collection::Groups, Collection::Contacts];

    /// The path below `/v1.0/`.
    pub fn path(self) -> &'static str {
        match self {
            Collection::Users => "users",
            Collection::Groups => "groups",
            Collection::Contacts => "contacts",
        }
    }

    /// The application permission that reads it, for messages.
    pub fn permission(self) -> &'static str {
        match self {
            Collection::Users => "User.Read.All",
            Collection::Groups => "Group.Read.All",
            Collection::Contacts => "OrgContact.Read.All",
        }
    }

    fn object_class(self) -> &'static str {
        match self {
            Collection::Users => "user",
            Collection::Groups => "group",
            Collection::Contacts => "contact",
        }
    }

    fn letter(self) -> char {
        match self {
            Collection::Users => 'U',
            Collection::Groups => 'G',
            Collection::Contacts => 'C',
        }
    }
}

/// Graph property → AD attribute, and the collections that have the property (U, G, C).
/// `id`, `displayName`, `accountEnabled` and the extension attributes are handled apart:
/// see [`to_entry`].
pub const PROPERTIES: &[(&str, &str, &str)] = &[
    ("mail", "mail", "UGC"),
    ("proxyAddresses", "proxyAddresses", "UGC"),
    ("mailNickname", "mailNickname", "UGC"),
    ("userPrincipalName", "userPrincipalName", "U"),
    ("givenName", "givenName", "UC"),
    ("surname", "sn", "UC"),
    ("jobTitle", "title", "UC"),
    ("department", "department", "UC"),
    ("companyName", "company", "UC"),
    ("officeLocation", "physicalDeliveryOfficeName", "U"),
    ("streetAddress", "streetAddress", "U"),
    ("postalCode", "postalCode", "U"),
    ("city", "l", "U"),
    ("state", "st", "U"),
    ("country", "co", "U"),
    ("businessPhones", "telephoneNumber", "U"),
    ("mobilePhone", "mobile", "U"),
    ("faxNumber", "facsimileTelephoneNumber", "U"),
    ("employeeId", "employeeID", "U"),
    ("employeeType", "employeeType", "U"),
    ("onPremisesSamAccountName", "sAMAccountName", "UG"),
    ("description", "description", "G"),
];

/// AD attributes the model reads that Graph gives under another shape.
const STRUCTURAL: &[(&str, &str)] = &[
    ("objectclass", "(the collection: user, group, contact)"),
    ("useraccountcontrol", "accountEnabled"),
    ("msds-aadobjectid", "id"),
    ("displayname", "displayName"),
    (
        "memberof",
        "the groups the rules name, read by their members",
    ),
];

/// What the Graph source cannot give and the model only shows in `explain`: left out.
const NOT_IN_GRAPH: &[&str] = &["objectguid", "member"];

/// Whether an attribute (any case) can come from Graph; if not, the fix for the message.
pub fn supports(attribute: &str) -> bool {
    let a = attribute.to_ascii_lowercase();
    STRUCTURAL.iter().any(|(ad, _)| *ad == a)
        || NOT_IN_GRAPH.contains(&a.as_str())
        || PROPERTIES
            .iter()
            .any(|(_, ad, _)| ad.eq_ignore_ascii_case(&a))
        || extension_attribute(&a).is_some()
        || a.starts_with("extension_")
}

/// The AD attributes the Graph source gives, for the message when a rule asks for another.
pub fn supported_list() -> String {
    let mut names: Vec<&str> = PROPERTIES.iter().map(|(_, ad, _)| *ad).collect();
    names.extend([
        "displayName",
        "extensionAttribute1…15",
        "extension_<appId>_<name>",
    ]);
    names.join(", ")
}

/// `extensionattribute7` → 7.
fn extension_attribute(lower: &str) -> Option<u8> {
    let n: u8 = lower.strip_prefix("extensionattribute")?.parse().ok()?;
    (1..=15).contains(&n).then_some(n)
}

/// The `$select` for a collection: exactly the properties that give the requested attributes.
pub fn select(collection: Collection, requested: &[String]) -> String {
    let mut props: Vec<String> = vec!["id".into(), "displayName".into()];
    let mut push = |p: &str| {
        if !props.iter().any(|q| q == p) {
            props.push(p.to_owned());
        }
    };
    for wanted in requested {
        let lower = wanted.to_ascii_lowercase();
        if lower == "useraccountcontrol" && collection == Collection::Users {
            push("accountEnabled");
        }
        for (graph, ad, on) in PROPERTIES {
            if ad.eq_ignore_ascii_case(&lower) && on.contains(collection.letter()) {
                push(graph);
            }
        }
        if extension_attribute(&lower).is_some() && collection == Collection::Users {
            push("onPremisesExtensionAttributes");
        }
        if lower.starts_with("extension_") {
            // Directory extensions keep their Graph name; Graph lower-cases nothing, so the
            // name is sent as the rules wrote it.
            push(wanted);
        }
    }
    props.join(",")
}

/// One object of a page, as Graph returns it with the `$select` above.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphObject {
    pub id: String,
    pub display_name: Option<String>,
    pub account_enabled: Option<bool>,
    pub proxy_addresses: Option<Vec<String>>,
    pub business_phones: Option<Vec<String>>,
    pub on_premises_extension_attributes: Option<BTreeMap<String, Option<String>>>,
    #[serde(rename = "@odata.type")]
    pub odata_type: Option<String>,
    /// Every other property: single text values (or null), or directory extensions.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl GraphObject {
    /// The entry's DN: not an LDAP DN (Graph has none) but shaped like one, so that warnings
    /// and `explain` show the display name, `member_of` matches a group by its display name,
    /// and the object id keeps it unique.
    pub fn dn(&self, collection: Collection) -> String {
        let name = self.display_name.as_deref().unwrap_or(&self.id);
        format!(
            "CN={},ID={},OU={}",
            escape_rdn(name),
            self.id,
            collection.path()
        )
    }
}

/// RFC 4514 escaping of an attribute value.
fn escape_rdn(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && matches!(c, '#' | ' '));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The entry of a Graph object, under AD's attribute names. `Err` names the property whose
/// value has a shape Graph does not document (the page is then refused).
pub fn to_entry(collection: Collection, object: GraphObject) -> Result<Entry, String> {
    let mut entry = Entry::new(object.dn(collection));
    entry.push("objectClass", collection.object_class().into());
    entry.push(
        "msDS-aadObjectId",
        object.id.to_ascii_lowercase().into_bytes(),
    );
    if let Some(name) = object.display_name {
        entry.push("displayName", name.into_bytes());
    }
    if let Some(enabled) = object.account_enabled {
        // AD's NORMAL_ACCOUNT (0x200), with ACCOUNTDISABLE (0x2) when disabled.
        let uac = if enabled { "512" } else { "514" };
        entry.push("userAccountControl", uac.into());
    }
    for value in object.proxy_addresses.into_iter().flatten() {
        entry.push("proxyAddresses", value.into_bytes());
    }
    for value in object.business_phones.into_iter().flatten() {
        entry.push("telephoneNumber", value.into_bytes());
    }
    for (name, value) in object
        .on_premises_extension_attributes
        .into_iter()
        .flatten()
    {
        let lower = name.to_ascii_lowercase();
        if let (Some(_), Some(v)) = (extension_attribute(&lower), value) {
            entry.push(&lower, v.into_bytes());
        }
    }
    for (name, value) in object.other {
        let ad = PROPERTIES
            .iter()
            .find(|(graph, _, _)| *graph == name)
            .map(|(_, ad, _)| *ad);
        let Some(ad) = ad.or(name.starts_with("extension_").then_some(name.as_str())) else {
            continue; // @odata.* annotations, and properties dirsync does not use.
        };
        match value {
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => entry.push(ad, s.into_bytes()),
            serde_json::Value::Bool(b) => entry.push(ad, b.to_string().into_bytes()),
            serde_json::Value::Number(n) => entry.push(ad, n.to_string().into_bytes()),
            serde_json::Value::Array(items) => {
                for item in items {
                    match item {
                        serde_json::Value::String(s) => entry.push(ad, s.into_bytes()),
                        other => return Err(format!("{name} holds {other}, not text")),
                    }
                }
            }
            serde_json::Value::Object(_) => return Err(format!("{name} is an object, not text")),
        }
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(json: &str) -> GraphObject {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_user_gets_ad_names() {
        let e = to_entry(
            Collection::Users,
            object(
                r#"{"id":"6E8D0000-aaaa-bbbb-cccc-000000000001","displayName":"Doe, Jane",
                "accountEnabled":false,"mail":"jane@example.com",
                "proxyAddresses":["SMTP:jane@example.com","smtp:jd@example.com"],
                "companyName":"Example AG","jobTitle":null,"businessPhones":["+49 1"],
                "onPremisesExtensionAttributes":{"extensionAttribute3":"HR","extensionAttribute4":null},
                "extension_abc_costCenter":"42","@odata.etag":"x"}"#,
            ),
        )
        .unwrap();
        assert_eq!(
            e.dn,
            r"CN=Doe\, Jane,ID=6E8D0000-aaaa-bbbb-cccc-000000000001,OU=users"
        );
        assert_eq!(e.first_text("useraccountcontrol"), Some("514"));
        assert_eq!(e.first_text("objectclass"), Some("user"));
        assert_eq!(
            e.first_text("msds-aadobjectid"),
            Some("6e8d0000-aaaa-bbbb-cccc-000000000001")
        );
        assert_eq!(e.texts("proxyaddresses").count(), 2);
        assert_eq!(e.first_text("company"), Some("Example AG"));
        assert_eq!(e.first_text("title"), None);
        assert_eq!(e.first_text("telephonenumber"), Some("+49 1"));
        assert_eq!(e.first_text("extensionattribute3"), Some("HR"));
        assert_eq!(e.first_text("extensionattribute4"), None);
        assert_eq!(e.first_text("extension_abc_costcenter"), Some("42"));
    }

    #[test]
    fn a_wrongly_shaped_value_is_refused() {
        assert!(
            serde_json::from_str::<GraphObject>(r#"{"id":"1","proxyAddresses":"SMTP:a@b"}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<GraphObject>(r#"{"displayName":"no id"}"#).is_err());
        let e = to_entry(Collection::Users, object(r#"{"id":"1","mail":{"a":1}}"#));
        assert_eq!(e.unwrap_err(), "mail is an object, not text");
    }

    #[test]
    fn select_asks_for_exactly_what_is_needed_per_collection() {
        let wanted: Vec<String> = [
            "objectClass",
            "proxyAddresses",
            "mail",
            "userAccountControl",
            "company",
            "extensionAttribute5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            select(Collection::Users, &wanted),
            "id,displayName,proxyAddresses,mail,accountEnabled,companyName,onPremisesExtensionAttributes"
        );
        assert_eq!(
            select(Collection::Groups, &wanted),
            "id,displayName,proxyAddresses,mail"
        );
        assert_eq!(
            select(Collection::Contacts, &wanted),
            "id,displayName,proxyAddresses,mail,companyName"
        );
        assert!(supports("physicalDeliveryOfficeName") && supports("extensionAttribute15"));
        assert!(!supports("extensionAttribute16") && !supports("msExchHideFromAddressLists"));
    }
}
