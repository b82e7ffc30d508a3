//! The documentation promises what the program does: the configuration reference names
//! exactly the keys of the example config, and the troubleshooting table covers every exit code.

use std::collections::BTreeSet;

use crate::util::repo;

/// Keys of examples/dirsync.toml, active or commented (`# key =`, `#> key =`), with their
/// section: `source.url`, `filter.rule.when`.
fn example_keys() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("examples/dirsync.toml")).unwrap();
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let line = line
            .strip_prefix("#> ")
            .or_else(|| line.strip_prefix("# "))
            .unwrap_or(line);
        if let Some(s) = line
            .strip_prefix("[[")
            .and_then(|l| l.strip_suffix("]]"))
            .or_else(|| line.strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        {
            if s.bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
            {
                section = s.to_owned();
            }
            continue;
        }
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            continue;
        }
        keys.insert(if section.is_empty() {
            key.to_owned()
        } else {
            format!("{section}.{key}")
        });
    }
    keys
}

/// Keys in the first column of the reference's tables: `` `source.url` ``, `` `filter.rule[].when` ``.
fn reference_keys() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(k, _)| k.replace("[]", "")))
        .collect()
}

#[test]
fn the_configuration_reference_names_exactly_the_example_keys() {
    let (example, reference) = (example_keys(), reference_keys());
    assert!(example.len() > 70, "{example:?}");
    let missing: Vec<&String> = example.difference(&reference).collect();
    let extra: Vec<&String> = reference.difference(&example).collect();
    assert!(
        missing.is_empty(),
        "in the example but not in docs/configuration.md: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "in docs/configuration.md but not in the example: {extra:?}"
    );
}

#[test]
fn the_troubleshooting_table_covers_every_exit_code() {
    let text = std::fs::read_to_string(repo().join("docs/troubleshooting.md")).unwrap();
    let codes: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" |").next())
        .collect();
    for code in ["0", "1", "2", "3", "4", "5", "6"] {
        assert!(
            codes.contains(code),
            "exit code {code} is not in docs/troubleshooting.md"
        );
    }
}
