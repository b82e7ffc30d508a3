//! Conditions of the rule language: what a rule asks of a directory object.
//!
//! Written in the config as TOML inline tables, e.g.
//! `{ attribute = "department", equals = "Sales" }`, `{ member_of = "Executives" }`,
//! `{ not = { disabled = true } }`. Parsed and checked when the config loads (a bad regex or an
//! unknown kind is a config error with its key path); evaluated against a [`Recipient`].

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use regex::Regex;

use crate::model::{ObjectKind, Recipient};
use crate::problems::Problems;

/// The kinds a `kind` condition may name: the directory's object classes, and the Exchange
/// recipient types the Exchange data adds.
pub const KINDS: &[&str] = &[
    "user",
    "group",
    "contact",
    "other",
    "user_mailbox",
    "shared_mailbox",
    "room_mailbox",
    "equipment_mailbox",
    "m365_group",
    "dynamic_distribution_group",
    "public_folder",
    "mail_user",
    "mail_contact",
    "distribution_group",
    "mail_security_group",
    "system_mailbox",
];

#[derive(Debug, Clone)]
pub enum Condition {
    Equals {
        attribute: String,
        value: String,
    },
    Matches {
        attribute: String,
        regex: Regex,
    },
    StartsWith {
        attribute: String,
        prefix: String,
    },
    EndsWith {
        attribute: String,
        suffix: String,
    },
    Present {
        attribute: String,
        present: bool,
    },
    MemberOf {
        group: String,
        transitive: bool,
    },
    /// A Microsoft 365 group owned by this address (owners come from Exchange).
    OwnedBy(crate::glob::Pattern),
    DnContains(String),
    /// Read from the source of this name (`[[sources]]`).
    Source(String),
    Kind(BTreeSet<String>),
    Disabled(bool),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

/// How groups nest, for transitive `member_of`: built once per run from the groups read;
/// the groups a condition names, with every group nested in them, are worked out once per
/// condition and then looked up for each object.
#[derive(Debug, Default)]
pub struct Groups {
    /// Lower-case group DN → the lower-case DNs of the groups that are members of it.
    children: HashMap<String, Vec<String>>,
    /// `member_of` target → the lower-case DNs it names and all groups nested in them.
    nested: RefCell<HashMap<String, Rc<HashSet<String>>>>,
}

impl Groups {
    pub fn new<'a>(recipients: impl IntoIterator<Item = &'a Recipient>) -> Groups {
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for r in recipients
            .into_iter()
            .filter(|r| r.kind == ObjectKind::Group)
        {
            let dn = r.dn.to_lowercase();
            for parent in &r.member_of {
                children
                    .entry(parent.to_lowercase())
                    .or_default()
                    .push(dn.clone());
            }
        }
        Groups {
            children,
            nested: RefCell::default(),
        }
    }

    /// Whether one of `direct` (an object's groups) is the group `target` names or nested
    /// in it, at any depth; cycles are safe.
    fn contains(&self, target: &str, direct: &[std::sync::Arc<str>]) -> bool {
        let inside = self.nested_in(target);
        direct.iter().any(|g| inside.contains(&g.to_lowercase()))
    }

    fn nested_in(&self, target: &str) -> Rc<HashSet<String>> {
        if let Some(known) = self.nested.borrow().get(target) {
            return known.clone();
        }
        let named = |dn: &str| dn == target || rdn_value(dn) == target;
        // Every group DN known: those with members, and those that are members.
        let mut todo: Vec<&str> = self
            .children
            .iter()
            .flat_map(|(parent, kids)| std::iter::once(parent).chain(kids))
            .map(String::as_str)
            .filter(|dn| named(dn))
            .collect();
        let mut inside = HashSet::new();
        inside.insert(target.to_owned());
        while let Some(g) = todo.pop() {
            if inside.insert(g.to_owned()) {
                if let Some(kids) = self.children.get(g) {
                    todo.extend(kids.iter().map(String::as_str));
                }
            }
        }
        let inside = Rc::new(inside);
        self.nested
            .borrow_mut()
            .insert(target.to_owned(), inside.clone());
        inside
    }
}

/// The tests a condition table may hold besides `attribute`.
const VERBS: [&str; 9] = [
    "member_of",
    "source",
    "owned_by",
    "dn_contains",
    "kind",
    "disabled",
    "all",
    "any",
    "not",
];

/// A condition table being parsed, with where it is and where problems go.
struct Table<'a, 'p, 'b> {
    table: &'a toml::Table,
    path: &'a str,
    problems: &'p mut Problems<'b>,
}

impl Table<'_, '_, '_> {
    fn fail(&mut self, what: String) -> Option<Condition> {
        self.problems.problem(self.path, what);
        None
    }

    fn string(&self, key: &str) -> Option<&str> {
        self.table.get(key).and_then(toml::Value::as_str)
    }

    /// A key of the table not in `allowed`.
    fn other_than(&self, allowed: &[&str]) -> Option<String> {
        self.table
            .keys()
            .find(|k| !allowed.contains(&k.as_str()))
            .cloned()
    }

    /// `{ attribute = "…", equals|matches|starts_with|ends_with|present = … }`.
    fn attribute_test(&mut self) -> Option<Condition> {
        let Some(attribute) = self.string("attribute").filter(|a| valid_attribute(a)) else {
            return self
                .fail("`attribute` must be an attribute name such as \"department\"".into());
        };
        let attribute = attribute.to_ascii_lowercase();
        let tests = ["equals", "matches", "starts_with", "ends_with", "present"];
        let given: Vec<&str> = tests
            .iter()
            .copied()
            .filter(|t| self.table.contains_key(*t))
            .collect();
        if given.len() != 1 {
            return self.fail(format!(
                "with `attribute`, give exactly one of {}",
                tests.join(", ")
            ));
        }
        let test = given[0];
        if let Some(extra) = self.other_than(&["attribute", test]) {
            return self.fail(format!("unknown key `{extra}` in this condition"));
        }
        if test == "present" {
            let Some(present) = self.table.get("present").and_then(toml::Value::as_bool) else {
                return self.fail("`present` must be true or false".into());
            };
            return Some(Condition::Present { attribute, present });
        }
        let Some(text) = self.string(test) else {
            return self.fail(format!("`{test}` must be a string"));
        };
        let lower = text.to_lowercase();
        Some(match test {
            "equals" => Condition::Equals {
                attribute,
                value: lower,
            },
            "starts_with" => Condition::StartsWith {
                attribute,
                prefix: lower,
            },
            "ends_with" => Condition::EndsWith {
                attribute,
                suffix: lower,
            },
            _ => match regex::RegexBuilder::new(text)
                .case_insensitive(true)
                .build()
            {
                Ok(regex) => Condition::Matches { attribute, regex },
                Err(e) => {
                    return self.fail(format!(
                        "`matches` is not a valid regular expression: {}",
                        e.to_string().replace('\n', " ")
                    ))
                }
            },
        })
    }

    /// One of [`VERBS`].
    fn verb(&mut self, verb: &str) -> Option<Condition> {
        match verb {
            "member_of" => self.member_of(),
            "owned_by" => match self.string("owned_by") {
                Some(owner) if owner.contains('@') => Some(Condition::OwnedBy(
                    crate::glob::Pattern::new(&owner.trim().to_lowercase()),
                )),
                _ => self.fail(
                    "`owned_by` must be an owner's address (wildcards * and ? allowed)".into(),
                ),
            },
            "dn_contains" => match self.string("dn_contains") {
                Some(part) if !part.trim().is_empty() => Some(Condition::DnContains(
                    part.trim().to_lowercase().replace(", ", ","),
                )),
                _ => self
                    .fail("`dn_contains` must be part of a DN such as \"OU=Contractors\"".into()),
            },
            "source" => match self.string("source") {
                Some(name) if !name.trim().is_empty() => {
                    Some(Condition::Source(name.trim().to_owned()))
                }
                _ => self.fail("`source` must be the name of one of [[sources]]".into()),
            },
            "kind" => self.kind(),
            "disabled" => match self.table.get("disabled").and_then(toml::Value::as_bool) {
                Some(d) => Some(Condition::Disabled(d)),
                None => self.fail("`disabled` must be true or false".into()),
            },
            "not" => {
                let path = format!("{}.not", self.path);
                let inner = Condition::parse(&self.table["not"], &path, self.problems)?;
                Some(Condition::Not(Box::new(inner)))
            }
            _ => self.list(verb),
        }
    }

    fn member_of(&mut self) -> Option<Condition> {
        let Some(group) = self.string("member_of").filter(|g| !g.trim().is_empty()) else {
            return self.fail("`member_of` must be a group's DN or name".into());
        };
        let group = group.trim().to_lowercase();
        let transitive = match self.table.get("transitive") {
            None => false,
            Some(v) => match v.as_bool() {
                Some(b) => b,
                None => return self.fail("`transitive` must be true or false".into()),
            },
        };
        Some(Condition::MemberOf { group, transitive })
    }

    fn kind(&mut self) -> Option<Condition> {
        let names: Vec<&str> = match self.table.get("kind") {
            Some(toml::Value::String(s)) => vec![s.as_str()],
            Some(toml::Value::Array(a)) => a.iter().filter_map(toml::Value::as_str).collect(),
            _ => vec![],
        };
        if names.is_empty() {
            return self.fail("`kind` must be a kind or a list of kinds".into());
        }
        let mut kinds = BTreeSet::new();
        for n in names {
            if KINDS.contains(&n) {
                kinds.insert(n.to_owned());
            } else {
                self.problems.problem(
                    self.path,
                    format!("unknown kind {n:?}; expected one of {}", KINDS.join(", ")),
                );
            }
        }
        Some(Condition::Kind(kinds))
    }

    /// `all` or `any`: a non-empty list of conditions.
    fn list(&mut self, verb: &str) -> Option<Condition> {
        let Some(list) = self.table[verb].as_array().filter(|l| !l.is_empty()) else {
            return self.fail(format!("`{verb}` must be a non-empty list of conditions"));
        };
        let parsed: Vec<Option<Condition>> = list
            .iter()
            .enumerate()
            .map(|(i, c)| Condition::parse(c, &format!("{}.{verb}[{i}]", self.path), self.problems))
            .collect();
        let parsed: Vec<Condition> = parsed.into_iter().collect::<Option<_>>()?;
        Some(if verb == "all" {
            Condition::All(parsed)
        } else {
            Condition::Any(parsed)
        })
    }
}

/// A value's characters lower-cased as they are read (no copy of the value is made: conditions
/// run for every object and every rule).
fn lowered(v: &str) -> impl Iterator<Item = char> + '_ {
    v.chars().flat_map(char::to_lowercase)
}

/// Whether `text` begins with `prefix`.
fn starts_with(mut text: impl Iterator<Item = char>, prefix: impl Iterator<Item = char>) -> bool {
    prefix.into_iter().all(|p| text.next() == Some(p))
}

/// The first RDN value of a DN (`CN=Sales Team,OU=…` → `sales team`), lower case.
fn rdn_value(dn: &str) -> String {
    dn.split(',')
        .next()
        .and_then(|rdn| rdn.split_once('='))
        .map(|(_, v)| v.trim().to_lowercase())
        .unwrap_or_default()
}

impl Condition {
    /// The attributes this condition reads (lower case).
    pub fn attributes(&self, out: &mut BTreeSet<String>) {
        match self {
            Condition::Equals { attribute, .. }
            | Condition::Matches { attribute, .. }
            | Condition::StartsWith { attribute, .. }
            | Condition::EndsWith { attribute, .. }
            | Condition::Present { attribute, .. } => {
                out.insert(attribute.clone());
            }
            Condition::All(cs) | Condition::Any(cs) => cs.iter().for_each(|c| c.attributes(out)),
            Condition::Not(c) => c.attributes(out),
            _ => {}
        }
    }

    /// The source names the condition asks about.
    pub fn sources<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        match self {
            Condition::Source(name) => {
                out.insert(name);
            }
            Condition::All(cs) | Condition::Any(cs) => cs.iter().for_each(|c| c.sources(out)),
            Condition::Not(c) => c.sources(out),
            _ => {}
        }
    }

    /// The groups the condition asks about (lower case): then memberOf must be read.
    pub fn groups(&self, out: &mut BTreeSet<String>) {
        match self {
            Condition::MemberOf { group, .. } => {
                out.insert(group.clone());
            }
            Condition::All(cs) | Condition::Any(cs) => cs.iter().for_each(|c| c.groups(out)),
            Condition::Not(c) => c.groups(out),
            _ => {}
        }
    }

    pub fn eval(&self, r: &Recipient, groups: &Groups) -> bool {
        let values = |a: &str| r.attrs.get(a).map(Vec::as_slice).unwrap_or(&[]);
        match self {
            Condition::Equals { attribute, value } => values(attribute)
                .iter()
                .any(|v| lowered(v).eq(value.chars())),
            Condition::Matches { attribute, regex } => {
                values(attribute).iter().any(|v| regex.is_match(v))
            }
            Condition::StartsWith { attribute, prefix } => values(attribute)
                .iter()
                .any(|v| starts_with(lowered(v), prefix.chars())),
            Condition::EndsWith { attribute, suffix } => values(attribute).iter().any(|v| {
                starts_with(
                    v.chars().rev().flat_map(|c| c.to_lowercase().rev()),
                    suffix.chars().rev(),
                )
            }),
            Condition::Present { attribute, present } => values(attribute).is_empty() != *present,
            Condition::MemberOf { group, transitive } => {
                let matches = |dn: &str| dn.eq_ignore_ascii_case(group) || rdn_value(dn) == *group;
                if *transitive {
                    r.member_of.iter().any(|g| matches(g)) || groups.contains(group, &r.member_of)
                } else {
                    r.member_of.iter().any(|g| matches(g))
                }
            }
            Condition::OwnedBy(owner) => r.owners.iter().any(|o| owner.matches(o.as_str())),
            Condition::DnContains(part) => {
                r.dn.to_lowercase()
                    .replace(", ", ",")
                    .contains(part.as_str())
            }
            Condition::Kind(kinds) => {
                kinds.contains(r.kind.name())
                    || r.exchange_kind
                        .as_deref()
                        .is_some_and(|k| kinds.contains(k))
            }
            // No source name: the config has one source, which the name was checked against.
            Condition::Source(name) => r
                .source
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case(name)),
            Condition::Disabled(d) => r.disabled == *d,
            Condition::All(cs) => cs.iter().all(|c| c.eval(r, groups)),
            Condition::Any(cs) => cs.iter().any(|c| c.eval(r, groups)),
            Condition::Not(c) => !c.eval(r, groups),
        }
    }

    /// Parses a condition table; every problem is pushed with its key path.
    pub fn parse(value: &toml::Value, path: &str, problems: &mut Problems) -> Option<Condition> {
        let Some(table) = value.as_table() else {
            problems.problem(path, "expected a condition table such as { attribute = \"department\", equals = \"Sales\" }");
            return None;
        };
        let mut t = Table {
            table,
            path,
            problems,
        };
        if table.contains_key("attribute") {
            return t.attribute_test();
        }
        let verb = VERBS.iter().copied().find(|v| table.contains_key(*v));
        let Some(verb) = verb else {
            let found: Vec<&str> = table.keys().map(String::as_str).collect();
            return t.fail(format!(
                "unknown condition {{ {} }}; expected attribute (with equals/matches/starts_with/ends_with/present), member_of, source, owned_by, dn_contains, kind, disabled, all, any or not",
                found.join(", ")
            ));
        };
        let allowed: &[&str] = if verb == "member_of" {
            &["member_of", "transitive"]
        } else {
            std::slice::from_ref(&verb)
        };
        if let Some(extra) = t.other_than(allowed) {
            return t.fail(format!(
                "unknown key `{extra}` next to `{verb}` (one test per table; combine with all/any)"
            ));
        }
        t.verb(verb)
    }
}

pub fn valid_attribute(a: &str) -> bool {
    !a.is_empty()
        && a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && a.as_bytes()[0].is_ascii_alphabetic()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_case_insensitively_without_copies() {
        assert!(lowered("Müller-ÖSTER").eq("müller-öster".chars()));
        assert!(starts_with(lowered("Vertrieb Süd"), "vertrieb".chars()));
        assert!(!starts_with(lowered("Ver"), "vertrieb".chars()));
        let ends = |v: &str, s: &str| {
            starts_with(
                v.chars().rev().flat_map(|c| c.to_lowercase().rev()),
                s.chars().rev(),
            )
        };
        assert!(ends("Team SÜD", "süd"));
        assert!(ends("x@Example.COM", "@example.com"));
        assert!(!ends("süd", "team süd"));
    }
    use crate::source::Entry;

    fn parse(text: &str) -> Result<Condition, Vec<String>> {
        let v: toml::Value =
            toml::from_str::<toml::Table>(&format!("c = {text}")).unwrap()["c"].clone();
        let mut problems = Problems::new(std::path::Path::new("/"));
        match Condition::parse(&v, "when", &mut problems) {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(problems.into_list()),
        }
    }

    fn recipient(dn: &str, classes: &[&str], attrs: &[(&str, &str)]) -> Recipient {
        let mut e = Entry::new(dn);
        for c in classes {
            e.push("objectclass", c.as_bytes().to_vec());
        }
        for (k, v) in attrs {
            e.push(k, v.as_bytes().to_vec());
        }
        let keep: BTreeSet<String> = ["department", "title", "extensionattribute1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Recipient::from_entry(&e, &crate::model::Keep::all(keep))
    }

    fn anna() -> Recipient {
        recipient(
            "CN=Anna,OU=Sales, OU=Germany,DC=example,DC=com",
            &["user"],
            &[
                ("department", "Sales"),
                ("title", "Head of Sales"),
                ("userAccountControl", "514"),
                ("memberOf", "CN=Sales Team,OU=Groups,DC=example,DC=com"),
            ],
        )
    }

    fn check(text: &str, r: &Recipient, groups: &Groups) -> bool {
        parse(text)
            .unwrap_or_else(|p| panic!("{p:?}"))
            .eval(r, groups)
    }

    #[test]
    fn attribute_tests_are_case_insensitive() {
        let (r, g) = (anna(), Groups::default());
        assert!(check(
            r#"{ attribute = "department", equals = "SALES" }"#,
            &r,
            &g
        ));
        assert!(!check(
            r#"{ attribute = "department", equals = "Sale" }"#,
            &r,
            &g
        ));
        assert!(check(
            r#"{ attribute = "Title", matches = "^head of" }"#,
            &r,
            &g
        ));
        assert!(check(
            r#"{ attribute = "title", starts_with = "HEAD" }"#,
            &r,
            &g
        ));
        assert!(check(
            r#"{ attribute = "title", ends_with = "sales" }"#,
            &r,
            &g
        ));
        assert!(check(
            r#"{ attribute = "department", present = true }"#,
            &r,
            &g
        ));
        assert!(check(
            r#"{ attribute = "extensionAttribute1", present = false }"#,
            &r,
            &g
        ));
    }

    #[test]
    fn membership_dn_kind_disabled_and_combinators() {
        let r = anna();
        let nested = recipient(
            "CN=Sales Team,OU=Groups,DC=example,DC=com",
            &["group"],
            &[("memberOf", "CN=All Staff,DC=example,DC=com")],
        );
        let g = Groups::new([&nested]);
        assert!(check(r#"{ member_of = "Sales Team" }"#, &r, &g));
        assert!(check(
            r#"{ member_of = "cn=sales team,ou=groups,dc=example,dc=com" }"#,
            &r,
            &g
        ));
        assert!(!check(r#"{ member_of = "All Staff" }"#, &r, &g));
        assert!(check(
            r#"{ member_of = "All Staff", transitive = true }"#,
            &r,
            &g
        ));
        assert!(check(r#"{ dn_contains = "OU=Sales,OU=Germany" }"#, &r, &g));
        assert!(check(r#"{ kind = ["contact", "user"] }"#, &r, &g));
        assert!(!check(r#"{ kind = "shared_mailbox" }"#, &r, &g));
        assert!(check(r#"{ disabled = true }"#, &r, &g));
        assert!(check(
            r#"{ all = [{ disabled = true }, { kind = "user" }] }"#,
            &r,
            &g
        ));
        assert!(!check(
            r#"{ all = [{ disabled = true }, { kind = "group" }] }"#,
            &r,
            &g
        ));
        assert!(check(
            r#"{ any = [{ disabled = false }, { kind = "user" }] }"#,
            &r,
            &g
        ));
        assert!(check(r#"{ not = { kind = "group" } }"#, &r, &g));
        let mut shared = anna();
        shared.exchange_kind = Some("shared_mailbox".into());
        assert!(check(r#"{ kind = "shared_mailbox" }"#, &shared, &g));
    }

    #[test]
    fn cyclic_group_nesting_terminates() {
        let a = recipient("CN=A", &["group"], &[("memberOf", "CN=B")]);
        let b = recipient("CN=B", &["group"], &[("memberOf", "CN=A")]);
        let g = Groups::new([&a, &b]);
        let user = recipient("CN=U", &["user"], &[("memberOf", "CN=A")]);
        assert!(check(
            r#"{ member_of = "B", transitive = true }"#,
            &user,
            &g
        ));
    }

    #[test]
    fn bad_conditions_name_their_key_path() {
        let e = |t: &str| parse(t).unwrap_err().join("; ");
        assert!(e(r#"{ attribute = "title", matches = "(" }"#)
            .starts_with("when: `matches` is not a valid regular expression"));
        assert_eq!(
            e(r#"{ kind = "mailbox" }"#),
            format!(
                "when: unknown kind \"mailbox\"; expected one of {}",
                KINDS.join(", ")
            )
        );
        assert!(e(r#"{ atribute = "title" }"#).starts_with("when: unknown condition { atribute }"));
        assert_eq!(e(r#"{ attribute = "title" }"#), "when: with `attribute`, give exactly one of equals, matches, starts_with, ends_with, present");
        assert_eq!(
            e(r#"{ all = [{ disabled = "yes" }] }"#),
            "when.all[0]: `disabled` must be true or false"
        );
        assert_eq!(e(r#"{ not = { kind = "user", disabled = true } }"#), "when.not: unknown key `disabled` next to `kind` (one test per table; combine with all/any)");
        assert_eq!(e(r#""department""#), "when: expected a condition table such as { attribute = \"department\", equals = \"Sales\" }");
    }
}
