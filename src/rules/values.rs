//! What the configured rules give an object: the filter decision, the profile, the routing
//! (`UCFG:`) keys and the signature (`P13N:`) fields, each from the first matching rule.

use std::collections::BTreeMap;

use super::condition::Groups;
use super::report::{BuildReport, Decision, InvalidValue, LISTED};
use super::spec::{Derive, Piece, RulesConfig, ValueRule, ValueSource};
use crate::mapfile::clean_value;
use crate::model::Recipient;

pub fn filter_label(rules: &RulesConfig, rule: Option<usize>) -> String {
    match rule {
        Some(i) => rules.filters[i].label.clone(),
        None => "filter.default".into(),
    }
}

/// First matching filter rule decides; none matching: `filter.default`.
pub fn decide(rules: &RulesConfig, r: &Recipient, groups: &Groups) -> Decision {
    for (i, f) in rules.filters.iter().enumerate() {
        if f.when.eval(r, groups) {
            return Decision {
                excluded: f.exclude,
                rule: Some(i),
            };
        }
    }
    Decision {
        excluded: rules.default_exclude,
        rule: None,
    }
}

/// DN components in order, with `\,` escapes respected: `[("CN", "Doe\, John"), ("OU", …)]`.
pub fn dn_components(dn: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in dn.chars().chain(std::iter::once(',')) {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            if let Some((t, v)) = current.split_once('=') {
                out.push((t.trim().to_ascii_uppercase(), v.trim().to_owned()));
            }
            current.clear();
        } else {
            current.push(c);
        }
    }
    out
}

/// The value a rule yields for an object, if its condition matches and a value results.
fn rule_value(rule: &ValueRule, r: &Recipient, groups: &Groups) -> Option<String> {
    if !rule.when.as_ref().is_none_or(|c| c.eval(r, groups)) {
        return None;
    }
    match &rule.value {
        ValueSource::Constant(v) => Some(v.clone()),
        ValueSource::Derived {
            from,
            map,
            use_unmapped,
        } => {
            let raw = match from {
                Derive::Attribute(a) => r.attrs.get(a).and_then(|v| v.first()).cloned()?,
                Derive::DnComponent(t) => dn_components(&r.dn).into_iter().find(|(k, _)| k == t)?.1,
            };
            let (value, _) = clean_value(&raw);
            if value.is_empty() {
                return None;
            }
            match map.get(&value.to_lowercase()) {
                Some(mapped) => Some(mapped.clone()),
                None if *use_unmapped => Some(value),
                None => None,
            }
        }
    }
}

/// The object's profile and the rule (label) that gave it.
pub fn profile(rules: &RulesConfig, r: &Recipient, groups: &Groups) -> Option<(String, String)> {
    for rule in &rules.profiles.rules {
        if let Some(v) = rule_value(rule, r, groups) {
            return Some((v, rule.label.clone()));
        }
    }
    rules
        .profiles
        .default
        .clone()
        .map(|d| (d, "profiles.default".into()))
}

/// UCFG key/value pairs: per key, the first matching routing rule.
pub fn routing(rules: &RulesConfig, r: &Recipient, groups: &Groups) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for rule in &rules.routing {
        if out.contains_key(&rule.key) {
            continue;
        }
        if let Some(v) = rule_value(rule, r, groups) {
            out.insert(rule.key.clone(), v);
        }
    }
    out.into_iter().collect()
}

/// P13N field/value pairs, cleaned; changes are reported naming the entry.
pub fn signature(
    rules: &RulesConfig,
    r: &Recipient,
    report: &mut BuildReport,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (field, template) in &rules.signature.fields {
        let mut raw = String::new();
        let mut control = false;
        for piece in &template.0 {
            match piece {
                Piece::Text(t) => raw.push_str(t),
                Piece::Attribute(a) => {
                    if let Some(v) = r.attrs.get(a).and_then(|v| v.first()) {
                        control |= v.chars().any(char::is_control);
                        raw.push_str(v);
                    }
                }
            }
        }
        let (mut value, _) = clean_value(&raw);
        let max = rules.signature.max_length;
        let long = value.chars().count() > max;
        if long {
            value = value
                .chars()
                .take(max)
                .collect::<String>()
                .trim_end()
                .to_owned();
        }
        if control || long {
            report.cleaned_values_total += 1;
            if report.cleaned_values.len() < LISTED {
                report.cleaned_values.push(InvalidValue {
                    dn: r.who().into_owned(),
                    value: field.clone(),
                    reason: match (control, long) {
                        (true, true) => {
                            format!("control characters replaced; cut to {max} characters")
                        }
                        (true, false) => "control characters replaced".into(),
                        _ => format!("cut to {max} characters"),
                    },
                });
            }
        }
        if !value.is_empty() {
            out.push((field.clone(), value));
        }
    }
    out
}
