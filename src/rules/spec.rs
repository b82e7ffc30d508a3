//! The rules part of the config, validated: filters, address lists, profiles, signature
//! (P13N) fields and routing (UCFG) rules.
//!
//! The sections are read from TOML values by hand so that every problem — an unknown key, a
//! bad regex, an unknown kind, a template naming no attribute — is reported with its key path,
//! all at once.

use std::collections::{BTreeMap, BTreeSet};

use super::condition::{valid_attribute, Condition};
use crate::model::Address;
use crate::problems::Problems;

#[derive(Debug, Clone, Default)]
pub struct RulesConfig {
    /// When no filter rule matches: include (default) or exclude.
    pub default_exclude: bool,
    pub filters: Vec<FilterRule>,
    pub extra_addresses: Vec<Address>,
    pub exclude_addresses: Vec<crate::glob::Pattern>,
    pub profiles: Profiles,
    pub signature: Signature,
    pub routing: Vec<ValueRule>,
    /// With `exchange.emit_group_owners`: the UCFG key under which a Microsoft 365 group's
    /// owners are written (`UCFG: group@… owner owner@…`).
    pub group_owner_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FilterRule {
    pub label: String,
    pub exclude: bool,
    pub when: Condition,
}

#[derive(Debug, Clone)]
pub struct Profiles {
    pub default: Option<String>,
    /// Aliases get their primary address's profile.
    pub aliases: bool,
    pub rules: Vec<ValueRule>,
}

impl Default for Profiles {
    fn default() -> Self {
        Profiles {
            default: None,
            aliases: true,
            rules: Vec::new(),
        }
    }
}

/// A rule that yields a value (a profile name, a routing target) when its condition matches.
#[derive(Debug, Clone)]
pub struct ValueRule {
    pub label: String,
    /// For routing: the UCFG key.
    pub key: String,
    pub when: Option<Condition>,
    pub value: ValueSource,
}

#[derive(Debug, Clone)]
pub enum ValueSource {
    Constant(String),
    /// From an attribute's first value, or the first DN component of a type (`OU`), through an
    /// optional mapping table (keys lower case). Unmapped values fall through to the next rule
    /// unless `use_unmapped`.
    Derived {
        from: Derive,
        map: BTreeMap<String, String>,
        use_unmapped: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Derive {
    Attribute(String),
    DnComponent(String),
}

#[derive(Debug, Clone)]
pub struct Signature {
    pub fields: Vec<(String, Template)>,
    pub max_length: usize,
}

impl Default for Signature {
    fn default() -> Self {
        Signature {
            fields: Vec::new(),
            max_length: 256,
        }
    }
}

/// `"{givenName} {sn}"`: literal text and attribute placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Attribute(String),
}

impl Template {
    /// A plain attribute name means `{name}`.
    pub fn parse(text: &str) -> Result<Template, String> {
        if !text.contains('{') {
            return if valid_attribute(text) {
                Ok(Template(vec![Piece::Attribute(text.to_ascii_lowercase())]))
            } else {
                Err(format!("{text:?} is neither an attribute name nor a template with {{attribute}} placeholders"))
            };
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
            }
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| format!("{text:?}: unclosed {{"))?
                + start;
            let name = &rest[start + 1..end];
            if !valid_attribute(name) {
                return Err(format!("{text:?}: {{{name}}} is not an attribute name"));
            }
            pieces.push(Piece::Attribute(name.to_ascii_lowercase()));
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template(pieces))
    }

    pub fn attributes(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Piece::Attribute(a) => Some(a.as_str()),
            Piece::Text(_) => None,
        })
    }
}

impl RulesConfig {
    /// Whether any rule asks about group membership.
    pub fn uses_membership(&self) -> bool {
        !self.groups().is_empty()
    }

    /// The groups `member_of` conditions name (lower case).
    pub fn groups(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.conditions().for_each(|c| c.groups(&mut out));
        out
    }

    /// The source names `source` conditions name.
    pub fn sources(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.conditions().for_each(|c| c.sources(&mut out));
        out
    }

    /// Every rule's condition.
    fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.filters
            .iter()
            .map(|f| Some(&f.when))
            .chain(
                self.profiles
                    .rules
                    .iter()
                    .chain(&self.routing)
                    .map(|r| r.when.as_ref()),
            )
            .flatten()
    }

    /// Every attribute the rules read (lower case): the sources must fetch them.
    pub fn attributes(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for f in &self.filters {
            f.when.attributes(&mut out);
        }
        for r in self.profiles.rules.iter().chain(&self.routing) {
            if let Some(c) = &r.when {
                c.attributes(&mut out);
            }
            if let ValueSource::Derived {
                from: Derive::Attribute(a),
                ..
            } = &r.value
            {
                out.insert(a.clone());
            }
        }
        for (_, t) in &self.signature.fields {
            out.extend(t.attributes().map(str::to_owned));
        }
        out
    }

    /// Reads the rule sections of the config (each may be absent).
    pub fn parse(
        filter: Option<&toml::Value>,
        addresses: Option<&toml::Value>,
        profiles: Option<&toml::Value>,
        signature: Option<&toml::Value>,
        routing: Option<&toml::Value>,
        problems: &mut Problems,
    ) -> RulesConfig {
        let mut p = Parser { problems };
        let mut rules = RulesConfig::default();
        if let Some(t) = filter.and_then(|v| p.table(v, "filter", &["default", "rule"])) {
            p.filter(t, &mut rules);
        }
        if let Some(t) = addresses.and_then(|v| p.table(v, "addresses", &["extra", "exclude"])) {
            p.addresses(t, &mut rules);
        }
        if let Some(t) =
            profiles.and_then(|v| p.table(v, "profiles", &["default", "aliases", "rule"]))
        {
            p.profiles(t, &mut rules);
        }
        if let Some(t) = signature.and_then(|v| p.table(v, "signature", &["fields", "max_length"]))
        {
            p.signature(t, &mut rules);
        }
        if let Some(t) = routing.and_then(|v| p.table(v, "routing", &["rule"])) {
            for (i, rule) in p.list(t.get("rule"), "routing.rule").iter().enumerate() {
                let path = format!("routing.rule[{i}]");
                if let Some(r) = p.value_rule(rule, &path, "value", true) {
                    rules.routing.push(r);
                }
            }
        }
        rules
    }
}

/// The sections, each read into `rules`.
impl Parser<'_, '_> {
    fn filter(&mut self, t: &toml::Table, rules: &mut RulesConfig) {
        let p = self;
        match t.get("default").map(|v| v.as_str()) {
            None | Some(Some("include")) => {}
            Some(Some("exclude")) => rules.default_exclude = true,
            _ => p.problem("filter.default", "expected \"include\" or \"exclude\""),
        }
        for (i, rule) in p.list(t.get("rule"), "filter.rule").iter().enumerate() {
            let path = format!("filter.rule[{i}]");
            let Some(r) = p.table(rule, &path, &["name", "action", "when"]) else {
                continue;
            };
            let exclude = match r.get("action").and_then(toml::Value::as_str) {
                Some("include") => false,
                Some("exclude") => true,
                _ => {
                    p.problem(
                        &format!("{path}.action"),
                        "expected \"include\" or \"exclude\"",
                    );
                    continue;
                }
            };
            let Some(when) = r.get("when") else {
                p.problem(&format!("{path}.when"), "missing; expected a condition");
                continue;
            };
            if let Some(when) = Condition::parse(when, &format!("{path}.when"), p.problems) {
                rules.filters.push(FilterRule {
                    label: label(&path, r),
                    exclude,
                    when,
                });
            }
        }
    }

    fn addresses(&mut self, t: &toml::Table, rules: &mut RulesConfig) {
        let p = self;
        for (i, a) in p
            .strings(t.get("extra"), "addresses.extra")
            .into_iter()
            .enumerate()
        {
            match Address::parse(a.trim()) {
                Ok(addr) => rules.extra_addresses.push(addr),
                Err(e) => p.problem(&format!("addresses.extra[{i}]"), format!("{a:?}: {e}")),
            }
        }
        for (i, pattern) in p
            .strings(t.get("exclude"), "addresses.exclude")
            .into_iter()
            .enumerate()
        {
            if !pattern.contains('@') {
                p.problem(&format!("addresses.exclude[{i}]"), format!("{pattern:?}: expected an address or a pattern such as \"test-*@example.com\""));
            }
            rules
                .exclude_addresses
                .push(crate::glob::Pattern::new(&pattern.trim().to_lowercase()));
        }
    }

    fn profiles(&mut self, t: &toml::Table, rules: &mut RulesConfig) {
        let p = self;
        rules.profiles.default = t
            .get("default")
            .and_then(|v| p.name_value(v, "profiles.default"));
        match t.get("aliases").map(toml::Value::as_bool) {
            None => {}
            Some(Some(b)) => rules.profiles.aliases = b,
            Some(None) => p.problem("profiles.aliases", "expected true or false"),
        }
        for (i, rule) in p.list(t.get("rule"), "profiles.rule").iter().enumerate() {
            let path = format!("profiles.rule[{i}]");
            if let Some(r) = p.value_rule(rule, &path, "profile", false) {
                rules.profiles.rules.push(r);
            }
        }
    }

    fn signature(&mut self, t: &toml::Table, rules: &mut RulesConfig) {
        let p = self;
        match t.get("max_length").map(toml::Value::as_integer) {
            None => {}
            Some(Some(n)) if (1..=4096).contains(&n) => rules.signature.max_length = n as usize,
            Some(_) => p.problem("signature.max_length", "expected 1 to 4096 characters"),
        }
        if let Some(fields) = t.get("fields") {
            match fields.as_table() {
                Some(fields) => {
                    for (name, v) in fields {
                        let path = format!("signature.fields.{name}");
                        if !crate::mapfile::valid_value(name) {
                            p.problem(&path, "a field name may not contain spaces or control characters at its ends");
                        }
                        match v.as_str().map(Template::parse) {
                            Some(Ok(t)) => rules.signature.fields.push((name.clone(), t)),
                            Some(Err(e)) => p.problem(&path, e),
                            None => p.problem(&path, "expected an attribute name or a template such as \"{givenName} {sn}\""),
                        }
                    }
                }
                None => p.problem(
                    "signature.fields",
                    "expected a table: field name = attribute or template",
                ),
            }
        }
    }
}

fn label(path: &str, rule: &toml::Table) -> String {
    match rule.get("name").and_then(toml::Value::as_str) {
        Some(name) => format!("{path} \"{name}\""),
        None => path.to_owned(),
    }
}

struct Parser<'a, 'b> {
    problems: &'a mut Problems<'b>,
}

impl Parser<'_, '_> {
    fn problem(&mut self, path: &str, what: impl std::fmt::Display) {
        self.problems.problem(path, what);
    }

    /// A table whose keys must be among `allowed`.
    fn table<'v>(
        &mut self,
        v: &'v toml::Value,
        path: &str,
        allowed: &[&str],
    ) -> Option<&'v toml::Table> {
        let Some(t) = v.as_table() else {
            self.problem(path, "expected a table");
            return None;
        };
        for key in t.keys() {
            if !allowed.contains(&key.as_str()) {
                self.problem(
                    &format!("{path}.{key}"),
                    format!("unknown key; expected one of {}", allowed.join(", ")),
                );
            }
        }
        Some(t)
    }

    fn list<'v>(&mut self, v: Option<&'v toml::Value>, path: &str) -> Vec<&'v toml::Value> {
        match v {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => a.iter().collect(),
            Some(_) => {
                self.problem(
                    path,
                    format!("expected a list of rules ([[{path}]] sections)"),
                );
                Vec::new()
            }
        }
    }

    fn strings(&mut self, v: Option<&toml::Value>, path: &str) -> Vec<String> {
        match v {
            None => Vec::new(),
            Some(toml::Value::Array(a)) if a.iter().all(toml::Value::is_str) => a
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
            Some(_) => {
                self.problem(path, "expected a list of strings");
                Vec::new()
            }
        }
    }

    /// A value that ends up in the MAP file.
    fn name_value(&mut self, v: &toml::Value, path: &str) -> Option<String> {
        match v.as_str() {
            Some(s) if crate::mapfile::valid_value(s) => Some(s.to_owned()),
            _ => {
                self.problem(
                    path,
                    "expected a non-empty name without control characters or surrounding spaces",
                );
                None
            }
        }
    }

    /// `when` (optional) plus exactly one of `<constant_key>`, `from_attribute`, `from_dn`,
    /// with `map` / `unmapped` for the derived ones; routing rules also take `key`.
    fn value_rule(
        &mut self,
        v: &toml::Value,
        path: &str,
        constant_key: &str,
        routing: bool,
    ) -> Option<ValueRule> {
        let mut allowed = vec![
            "name",
            "when",
            constant_key,
            "from_attribute",
            "from_dn",
            "map",
            "unmapped",
        ];
        if routing {
            allowed.push("key");
        }
        let t = self.table(v, path, &allowed)?;
        let when = match t.get("when") {
            Some(c) => Some(Condition::parse(c, &format!("{path}.when"), self.problems)?),
            None => None,
        };
        let key = if routing {
            match t.get("key") {
                None => "routing".to_owned(),
                Some(k) => self.name_value(k, &format!("{path}.key"))?,
            }
        } else {
            String::new()
        };
        let sources: Vec<&str> = [constant_key, "from_attribute", "from_dn"]
            .into_iter()
            .filter(|k| t.contains_key(*k))
            .collect();
        if sources.len() != 1 {
            self.problem(
                path,
                format!("give exactly one of {constant_key}, from_attribute, from_dn"),
            );
            return None;
        }
        let value = if sources[0] == constant_key {
            if t.contains_key("map") || t.contains_key("unmapped") {
                self.problem(
                    path,
                    format!(
                        "map and unmapped apply to from_attribute / from_dn, not to {constant_key}"
                    ),
                );
            }
            ValueSource::Constant(
                self.name_value(&t[constant_key], &format!("{path}.{constant_key}"))?,
            )
        } else {
            self.derived(t, path, sources[0])?
        };
        Some(ValueRule {
            label: label(path, t),
            key,
            when,
            value,
        })
    }

    /// A value derived `from_attribute` or `from_dn`, through an optional mapping table.
    fn derived(&mut self, t: &toml::Table, path: &str, source: &str) -> Option<ValueSource> {
        let text = t[source].as_str().unwrap_or("");
        let from = if source == "from_attribute" {
            if !valid_attribute(text) {
                self.problem(
                    &format!("{path}.from_attribute"),
                    "expected an attribute name such as \"department\"",
                );
                return None;
            }
            Derive::Attribute(text.to_ascii_lowercase())
        } else {
            if !matches!(
                text.to_ascii_uppercase().as_str(),
                "OU" | "CN" | "DC" | "O" | "L" | "C"
            ) {
                self.problem(
                    &format!("{path}.from_dn"),
                    "expected a DN component type such as \"OU\"",
                );
                return None;
            }
            Derive::DnComponent(text.to_ascii_uppercase())
        };
        let mut map = BTreeMap::new();
        if let Some(m) = t.get("map") {
            match m.as_table() {
                Some(m) => {
                    for (k, v) in m {
                        if let Some(v) = self.name_value(v, &format!("{path}.map.{k}")) {
                            map.insert(k.to_lowercase(), v);
                        }
                    }
                }
                None => self.problem(
                    &format!("{path}.map"),
                    "expected a table: directory value = name",
                ),
            }
        }
        let use_unmapped = match t.get("unmapped").map(toml::Value::as_str) {
            None => map.is_empty(),
            Some(Some("use")) => true,
            Some(Some("next")) => false,
            Some(_) => {
                self.problem(
                    &format!("{path}.unmapped"),
                    "expected \"use\" (the value itself) or \"next\" (try the next rule)",
                );
                false
            }
        };
        Some(ValueSource::Derived {
            from,
            map,
            use_unmapped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (RulesConfig, Vec<String>) {
        let t: toml::Table = toml::from_str(text).unwrap();
        let mut problems = Problems::new(std::path::Path::new("/"));
        let r = RulesConfig::parse(
            t.get("filter"),
            t.get("addresses"),
            t.get("profiles"),
            t.get("signature"),
            t.get("routing"),
            &mut problems,
        );
        (r, problems.into_list())
    }

    #[test]
    fn templates() {
        assert_eq!(
            Template::parse("title").unwrap().0,
            [Piece::Attribute("title".into())]
        );
        let t = Template::parse("{givenName} {sn}, {title}").unwrap();
        assert_eq!(
            t.attributes().collect::<Vec<_>>(),
            ["givenname", "sn", "title"]
        );
        assert!(Template::parse("Example GmbH")
            .unwrap_err()
            .contains("neither an attribute name"));
        assert!(Template::parse("{given Name}")
            .unwrap_err()
            .contains("is not an attribute name"));
        assert!(Template::parse("{sn").unwrap_err().contains("unclosed"));
    }

    #[test]
    fn every_problem_with_its_key_path() {
        let (_, problems) = parse(
            r#"
[filter]
default = "maybe"
[[filter.rule]]
action = "drop"
when = { disabled = true }
[[filter.rule]]
action = "exclude"
when = { kind = "robot" }
[[filter.rule]]
action = "include"
[addresses]
extra = ["not-an-address"]
exclude = ["nothing"]
[profiles]
aliases = "yes"
[[profiles.rule]]
profile = "VIP"
from_attribute = "department"
[[profiles.rule]]
from_dn = "XX"
[signature]
fields = { Name = "{given name}" }
max_length = 0
[[routing.rule]]
value = "relay"
colour = "red"
"#,
        );
        let expect = [
            "filter.default: expected \"include\" or \"exclude\"",
            "filter.rule[0].action: expected \"include\" or \"exclude\"",
            "filter.rule[1].when: unknown kind \"robot\"",
            "filter.rule[2].when: missing; expected a condition",
            "addresses.extra[0]: \"not-an-address\": no @ in the address",
            "addresses.exclude[0]: \"nothing\": expected an address or a pattern",
            "profiles.aliases: expected true or false",
            "profiles.rule[0]: give exactly one of profile, from_attribute, from_dn",
            "profiles.rule[1].from_dn: expected a DN component type",
            "signature.max_length: expected 1 to 4096 characters",
            "signature.fields.Name: \"{given name}\": {given name} is not an attribute name",
            "routing.rule[0].colour: unknown key",
        ];
        for e in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(e)),
                "missing {e:?} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    }

    #[test]
    fn attributes_the_sources_must_fetch() {
        let (r, problems) = parse(
            r#"
[[filter.rule]]
action = "exclude"
when = { attribute = "extensionAttribute1", equals = "noretarus" }
[[profiles.rule]]
from_attribute = "Department"
[signature]
fields = { Name = "{givenName} {sn}" }
"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            r.attributes().into_iter().collect::<Vec<_>>(),
            ["department", "extensionattribute1", "givenname", "sn"]
        );
    }
}
