//! Every unknown key and every value of the wrong type in a config file, reported at once:
//! serde stops at the first one, so each is recorded with its key path, taken out, and the
//! file read again, until it reads. Messages are in admin words, with a "did you mean" for a
//! misspelt key.

use serde_path_to_error::Segment;

use super::RawConfig;

/// How many problems are collected before giving up (a file that is not a dirsync config).
const MAX_PROBLEMS: usize = 100;

/// What reading the keys found.
pub struct Read {
    /// The raw config, if what is left of the file reads.
    pub raw: Option<RawConfig>,
    pub problems: Vec<String>,
    /// The key paths these problems cover: each key reported, and the key a misspelt one
    /// was probably meant to be (not to be reported again as missing).
    pub covered: Vec<String>,
}

/// Reads the table into the raw config, taking out and reporting every bad key.
pub fn deserialize(mut table: toml::Table, text: &str) -> Read {
    let mut read = Read {
        raw: None,
        problems: Vec::new(),
        covered: Vec::new(),
    };
    while read.problems.len() < MAX_PROBLEMS {
        let value = toml::Value::Table(table.clone());
        match serde_path_to_error::deserialize::<_, RawConfig>(value) {
            Ok(raw) => {
                read.raw = Some(raw);
                return read;
            }
            Err(e) => {
                let segments: Vec<Segment> = e.path().iter().cloned().collect();
                // toml adds "in `key`" on lines of its own: the path says that already.
                let message = e
                    .inner()
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let (path, what, meant) = describe(&segments, &message);
                let line = line_of(text, &path)
                    .map(|l| format!(" (line {l})"))
                    .unwrap_or_default();
                read.problems.push(format!("{path}: {what}{line}"));
                if let Some(meant) = meant {
                    let parent = path.rsplit_once('.').map_or("", |(p, _)| p);
                    read.covered.push(if parent.is_empty() {
                        meant
                    } else {
                        format!("{parent}.{meant}")
                    });
                }
                read.covered.push(path);
                if !remove(&mut table, &segments) {
                    return read;
                }
            }
        }
    }
    read
}

/// The key path a problem line is about (`source.page_size: …` → `source.page_size`).
pub fn key_of(problem: &str) -> String {
    problem.split(": ").next().unwrap_or("").to_owned()
}

/// `source.bases[0].filter`, what is wrong, from serde's message, and for a misspelt key the
/// one probably meant.
fn describe(segments: &[Segment], message: &str) -> (String, String, Option<String>) {
    let path = join(segments);
    if let Some(unknown) = unknown_field(message) {
        let expected = expected_fields(message);
        let close = expected
            .iter()
            .map(|k| (strsim::jaro_winkler(&unknown, k), k))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let hint = match close {
            Some((_, k)) => format!("; did you mean `{k}`?"),
            None if !expected.is_empty() => format!("; expected one of {}", expected.join(", ")),
            None => String::new(),
        };
        return (
            path,
            format!("unknown key{hint}"),
            close.map(|(_, k)| k.clone()),
        );
    }
    (path, admin_words(message), None)
}

fn join(segments: &[Segment]) -> String {
    let mut path = String::new();
    for s in segments {
        match s {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    path
}

/// serde's "unknown field `pth`, expected one of `type`, `path`" → `pth`.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

fn expected_fields(message: &str) -> Vec<String> {
    let Some((_, list)) = message.split_once("expected ") else {
        return Vec::new();
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// "invalid type: string \"500\", expected i64" → "expected a whole number, found the text \"500\"".
fn admin_words(message: &str) -> String {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        if message.contains("untagged enum RawDomains") {
            return "expected a list such as [\"example.com\"] or the word \"exchange\"".into();
        }
        return message.to_owned();
    };
    let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
    let expected = match expected {
        "i64" | "u64" | "i32" | "u32" => "a whole number (without quotes)",
        "f64" | "f32" => "a number (without quotes)",
        "a boolean" => "true or false (without quotes)",
        "a string" => "text in quotes",
        "a sequence" => "a list such as [\"a\", \"b\"]",
        e if e.starts_with("struct") || e.starts_with("a map") => "a table (a [section] or { … })",
        e => e,
    };
    let found = found
        .replace("string ", "the text ")
        .replace("integer ", "the number ")
        .replace("floating point ", "the number ")
        .replace("boolean ", "");
    format!("expected {expected}, found {found}")
}

/// Takes the key a problem is about out of the table; false if it cannot be found.
fn remove(table: &mut toml::Table, segments: &[Segment]) -> bool {
    let keys: Vec<Key> = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(Key::Index(*index)),
            Segment::Map { key } => Some(Key::Name(key.clone())),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = keys.split_last() else {
        return false;
    };
    let mut node = match parents.first() {
        None => return matches!(last, Key::Name(k) if table.remove(k).is_some()),
        Some(Key::Name(k)) => table.get_mut(k),
        Some(Key::Index(_)) => None,
    };
    for key in parents.iter().skip(1) {
        node = match (node, key) {
            (Some(toml::Value::Table(t)), Key::Name(k)) => t.get_mut(k),
            (Some(toml::Value::Array(a)), Key::Index(i)) => a.get_mut(*i),
            _ => None,
        };
    }
    match (node, last) {
        (Some(toml::Value::Table(t)), Key::Name(k)) => t.remove(k).is_some(),
        (Some(toml::Value::Array(a)), Key::Index(i)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

enum Key {
    Name(String),
    Index(usize),
}

/// The line of `section.key` in the text, if it is written the usual way (`key = …` below
/// `[section]`); `None` when it cannot be told.
fn line_of(text: &str, path: &str) -> Option<usize> {
    let (section, key) = match path.rsplit_once('.') {
        Some((s, k)) if !s.contains('[') => (s, k),
        None if !path.contains('[') => ("", path),
        _ => return None,
    };
    let mut current = "";
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            current = h.trim_matches(|c| c == '[' || c == ']').trim();
            // The key may be a section of its own: `[sourc]`.
            if current == path {
                return Some(i + 1);
            }
            continue;
        }
        let is_key = t
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if current == section && is_key {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_become_admin_words() {
        assert_eq!(
            admin_words("invalid type: string \"500\", expected i64"),
            "expected a whole number (without quotes), found the text \"500\""
        );
        assert_eq!(
            expected_fields("unknown field `pth`, expected one of `type`, `path`"),
            ["type", "path"]
        );
        assert_eq!(
            unknown_field("unknown field `pth`, expected one of `type`"),
            Some("pth".into())
        );
    }
}
