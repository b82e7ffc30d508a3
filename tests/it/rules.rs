//! The rules over the demo directory: the golden MAP of examples/rules.toml, `explain`, and
//! rule errors in the config.

use crate::util::{assert_golden, repo, Case};

/// A copy of examples/rules.toml next to a copy of the demo directory.
fn rules_case() -> Case {
    let case = Case::new();
    case.write(
        "demo.ldif",
        std::fs::read(repo().join("examples/demo.ldif")).unwrap(),
    );
    case.write(
        "rules.toml",
        std::fs::read(repo().join("examples/rules.toml")).unwrap(),
    );
    case
}

#[test]
fn rules_example_gives_the_reviewed_map_bytes() {
    let case = rules_case();
    let run = case.run(&["sync", "--config", "rules.toml", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_golden(
        &repo().join("examples/rules.map"),
        &case.read("out/rules.map").unwrap(),
    );
    assert!(
        run.stderr
            .contains("excluded by filter.rule[0] \"departed staff\": 1 objects, 1 addresses"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("excluded by filter.rule[2] \"no machine accounts\": 3 objects, 0 addresses"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("1 matched addresses.exclude"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("signature field Title: control characters replaced"),
        "{run:?}"
    );
}

fn explain(case: &Case, address: &str) -> String {
    let run = case.run(&["explain", "--config", "rules.toml", address]);
    assert_eq!(run.code, 0, "{run:?}");
    run.stdout
}

#[test]
fn explain_covers_kept_alias_excluded_foreign_conflict_and_unknown() {
    let case = rules_case();
    let kept = explain(&case, "stefan.lange@example.com");
    assert!(kept.contains("found on CN=Stefan Lange,OU=AADDC Users,DC=example,DC=com (user) in proxyAddresses (SMTP:, primary)"), "{kept}");
    assert!(
        kept.contains("  kept by filter.default (no filter rule matched)"),
        "{kept}"
    );
    assert!(
        kept.contains("  profile \"VIP\" from profiles.rule[0] \"executives\""),
        "{kept}"
    );
    assert!(
        kept.contains("  12345|example.com\tP13N:\tstefan.lange@example.com\tTitle\tCEO"),
        "{kept}"
    );

    let alias = explain(&case, "ceo@example.com");
    assert!(
        alias.contains("in proxyAddresses (smtp:, alias)")
            && alias.contains("its primary address is stefan.lange@example.com"),
        "{alias}"
    );
    assert!(
        alias.contains("  12345|example.com\tMAP:\tceo@example.com\tstefan.lange@example.com"),
        "{alias}"
    );
    assert!(
        alias.contains("  12345|example.com\tPROFILE:\tceo@example.com\tVIP"),
        "{alias}"
    );

    let excluded = explain(&case, "former.employee@example.com");
    assert!(
        excluded.contains("  EXCLUDED by filter.rule[0] \"departed staff\""),
        "{excluded}"
    );
    assert!(excluded.ends_with("MAP lines: none\n"), "{excluded}");

    let pattern = explain(&case, "phoenix@example.com");
    assert!(
        pattern.contains("excluded by addresses.exclude pattern \"phoenix@*\""),
        "{pattern}"
    );

    let foreign = explain(&case, "anna.schmidt@example.onmicrosoft.com");
    assert!(
        foreign.contains("its domain example.onmicrosoft.com is not in `domains`"),
        "{foreign}"
    );
    assert!(foreign.ends_with("MAP lines: none\n"), "{foreign}");

    let conflict = explain(&case, "support@example.com");
    assert!(conflict.contains("conflict: also on CN=Paula Braun,OU=AADDC Users,DC=example,DC=com; kept for CN=Support,OU=AADDC Users,DC=example,DC=com"), "{conflict}");

    let unknown = explain(&case, "nobody@example.com");
    assert!(
        unknown.contains("nobody@example.com is on no object read from the directory"),
        "{unknown}"
    );
    assert!(unknown.ends_with("MAP lines: none\n"), "{unknown}");

    let extra = explain(&case, "postmaster@example.com");
    assert!(
        extra.contains("listed in addresses.extra")
            && extra.contains("DIR:\tpostmaster@example.com"),
        "{extra}"
    );
}

#[test]
fn invalid_rules_are_config_errors_naming_the_key_path() {
    let case = rules_case();
    let text = std::fs::read_to_string(case.path("rules.toml"))
        .unwrap()
        .replace(
            "when = { disabled = true }",
            "when = { disabled = true, kind = \"robot\" }",
        )
        .replace("map = { Sales", "mapp = { Sales")
        .replace("\"phoenix@*\"", "\"phoenix\"");
    case.write("bad.toml", text);
    let run = case.run(&["sync", "--config", "bad.toml", "--dry-run"]);
    assert_eq!(run.code, 2, "{run:?}");
    for expected in [
        "bad.toml: 3 configuration problems",
        "  - filter.rule[1].when: unknown key `disabled` next to `kind` (one test per table; combine with all/any)",
        "  - profiles.rule[1].mapp: unknown key",
        "  - addresses.exclude[0]: \"phoenix\": expected an address or a pattern",
    ] {
        assert!(run.stderr.contains(expected), "missing {expected:?}: {run:?}");
    }
    assert!(case.read("out/rules.map").is_none());
}
