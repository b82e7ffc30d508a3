//! `dirsync sync` from an LDIF export, local-only: the golden demo, fail-closed behaviour, the
//! deletion guard and the lock.

use crate::util::{assert_golden, repo, users_ldif, Case};

#[test]
fn demo_directory_gives_the_reviewed_map_bytes() {
    let case = Case::new();
    let config = case.ldif_config(&repo().join("examples/demo.ldif"), "");
    let run = case.run(&["sync", "--config", config.to_str().unwrap(), "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_golden(
        &repo().join("examples/demo.map"),
        &case.read("out/retarus.map").unwrap(),
    );
    assert!(run.stderr.contains("read 44 objects from"), "{run:?}");
    assert!(
        run.stderr
            .contains("addresses: example.com 66, example.de 36"),
        "{run:?}"
    );
    assert!(run.stderr.contains("not written: 34 in domains not in `domains` (example.onmicrosoft.com 32, partner.org 1, steuer-weiss.de 1), 1 invalid, 1 claimed by two objects (kept once)"), "{run:?}");
    assert!(
        run.stderr
            .contains("dry run: nothing uploaded, state unchanged"),
        "{run:?}"
    );
    // Nothing else: six summary lines and the two warnings (the conflict, the invalid value).
    assert_eq!(run.stderr.lines().count(), 8, "{run:?}");
    assert_eq!(run.stderr.matches(" WARN ").count(), 2, "{run:?}");
    // A dry run records nothing.
    assert!(case.read("state/last-uploaded.map").is_none());
    assert!(case.read("state/last-run.json").is_none());
}

#[test]
fn the_readme_demo_config_runs_as_written() {
    // examples/demo.toml is what the README's first command uses; run it in a copy.
    let case = Case::new();
    case.write(
        "demo.ldif",
        std::fs::read(repo().join("examples/demo.ldif")).unwrap(),
    );
    case.write(
        "demo.toml",
        std::fs::read(repo().join("examples/demo.toml")).unwrap(),
    );
    let run = case.run(&["sync", "--config", "demo.toml", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        case.read("out/retarus.map").unwrap(),
        std::fs::read(repo().join("examples/demo.map")).unwrap()
    );
}

#[test]
fn local_only_sync_records_state_and_report() {
    let case = Case::new();
    let ldif = case.write("export.ldif", users_ldif(3));
    let config = case.ldif_config(&ldif, "");
    let run = case.run(&["sync", "--config", config.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    let map = case.read("out/retarus.map").unwrap();
    assert_eq!(case.read("state/last-uploaded.map").unwrap(), map);
    let text = String::from_utf8(map).unwrap();
    assert!(
        text.contains("12345|example.de\tMAP:\tu1@example.de\tu1@example.com\r\n"),
        "{text}"
    );
    assert!(text.ends_with("++++\r\n"));
    let report: serde_json::Value =
        serde_json::from_slice(&case.read("state/last-run.json").unwrap()).unwrap();
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["build"]["addresses_per_domain"]["example.com"], 3);
    assert_eq!(report["output"]["records"]["DIR"], 6);
}

/// Runs a sync that must fail and checks the MAP file and the baseline did not change.
fn assert_fails_untouched(case: &Case, config: &str, code: i32, message: &str) {
    let map_before = case.read("out/retarus.map");
    let base_before = case.read("state/last-uploaded.map");
    let run = case.run(&["sync", "--config", config]);
    assert_eq!(run.code, code, "{run:?}");
    assert!(
        run.error_line().contains(message),
        "expected {message:?} in {run:?}"
    );
    assert_eq!(case.read("out/retarus.map"), map_before, "MAP file changed");
    assert_eq!(
        case.read("state/last-uploaded.map"),
        base_before,
        "baseline changed"
    );
}

fn case_after_one_good_sync() -> Case {
    let case = Case::new();
    let ldif = case.write("export.ldif", users_ldif(20));
    case.ldif_config(&ldif, "");
    assert_eq!(case.run(&["sync", "--config", "dirsync.toml"]).code, 0);
    case
}

#[test]
fn broken_ldif_exits_4_naming_the_line_and_touches_nothing() {
    let case = case_after_one_good_sync();
    let mut text = users_ldif(20);
    text.push_str("dn: CN=bad,DC=example,DC=com\nproxyAddresses SMTP:bad@example.com\n");
    case.write("export.ldif", text);
    assert_fails_untouched(
        &case,
        "dirsync.toml",
        4,
        "export.ldif: line 102: invalid attribute name \"proxyAddresses SMTP\" before the colon",
    );
}

#[test]
fn truncated_ldapsearch_export_exits_4() {
    let case = case_after_one_good_sync();
    case.write(
        "export.ldif",
        users_ldif(20) + "search: 2\nresult: 4 Size limit exceeded\n",
    );
    assert_fails_untouched(&case, "dirsync.toml", 4, "the export is incomplete");
}

#[test]
fn missing_ldif_exits_4() {
    let case = case_after_one_good_sync();
    std::fs::remove_file(case.path("export.ldif")).unwrap();
    assert_fails_untouched(&case, "dirsync.toml", 4, "cannot open the LDIF export");
}

#[test]
fn config_typo_exits_2_naming_line_and_key() {
    let case = case_after_one_good_sync();
    let text = std::fs::read_to_string(case.path("dirsync.toml"))
        .unwrap()
        .replace("state_dir", "statedir");
    case.write("bad.toml", text);
    assert_fails_untouched(&case, "bad.toml", 2, "bad.toml: 1 configuration problem");
    let run = case.run(&["sync", "--config", "bad.toml"]);
    assert!(
        run.stderr
            .contains("statedir: unknown key; did you mean `state_dir`? (line 3)"),
        "{run:?}"
    );
}

#[test]
fn config_wrong_type_exits_2() {
    let case = case_after_one_good_sync();
    let text = std::fs::read_to_string(case.path("dirsync.toml")).unwrap()
        + "[guard]\nmax_removed = \"many\"\n";
    case.write("bad.toml", text);
    let run = case.run(&["sync", "--config", "bad.toml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains(
                "guard.max_removed: expected a whole number (without quotes), found the text \"many\" (line 11)"
            ),
        "{run:?}"
    );
    let text = std::fs::read_to_string(case.path("dirsync.toml"))
        .unwrap()
        .replace(
            "domains = [\"example.com\", \"example.de\"]",
            "domains = \"example.com\"",
        );
    case.write("bad.toml", text);
    let run = case.run(&["sync", "--config", "bad.toml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("domains: \"example.com\"; expected a list such as [\"example.com\"] or the word \"exchange\""), "{run:?}");
}

#[test]
fn missing_config_exits_2_with_the_fix() {
    let case = Case::new();
    let run = case.run(&["sync", "--config", "nowhere.toml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("dirsync init nowhere.toml"), "{run:?}");
}

#[test]
fn unwritable_output_folder_exits_1_and_keeps_state() {
    let case = case_after_one_good_sync();
    // A file where the output folder should be: not writable even for root.
    let text = std::fs::read_to_string(case.path("dirsync.toml"))
        .unwrap()
        .replace("out/retarus.map", "blocker/retarus.map");
    case.write("blocker", "not a folder");
    case.write("blocked.toml", text);
    let base_before = case.read("state/last-uploaded.map");
    let run = case.run(&["sync", "--config", "blocked.toml"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.error_line().contains("cannot write the MAP file")
            && run.error_line().contains("check [output] path"),
        "{run:?}"
    );
    assert_eq!(case.read("state/last-uploaded.map"), base_before);
    assert_eq!(case.read("blocker").unwrap(), b"not a folder");
}

#[test]
fn a_configured_domain_without_addresses_is_refused_unless_allowed() {
    let case = Case::new();
    let ldif = case.write(
        "export.ldif",
        "dn: CN=a\nobjectClass: user\nmail: a@example.com\n\n",
    );
    case.ldif_config(&ldif, "");
    let run = case.run(&["sync", "--config", "dirsync.toml"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.error_line()
            .contains("domain example.de has no DIR: lines"),
        "{run:?}"
    );
    assert!(case.read("out/retarus.map").is_none());
    case.ldif_config(&ldif, "[guard]\nallow_empty_domains = [\"example.de\"]");
    let run = case.run(&["sync", "--config", "dirsync.toml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(String::from_utf8(case.read("out/retarus.map").unwrap())
        .unwrap()
        .contains("12345|example.de\tDOMAIN:\texample.de\r\n++++"));
}

#[test]
fn shrunken_directory_is_refused_by_the_guard_and_force_passes() {
    let case = case_after_one_good_sync();
    let baseline = case.read("state/last-uploaded.map").unwrap();
    let output = case.read("out/retarus.map").unwrap();
    case.write("export.ldif", users_ldif(17)); // 6 of 40 addresses gone = 15% > 10%
    let run = case.run(&["sync", "--config", "dirsync.toml", "--dry-run"]);
    assert_eq!(run.code, 3, "{run:?}");
    // The refused map never reaches the output path (local-only mode: it is the deliverable);
    // it is kept for review in state_dir, and the message says where.
    assert_eq!(
        case.read("out/retarus.map").unwrap(),
        output,
        "output path touched"
    );
    let refused = String::from_utf8(case.read("state/refused.map").unwrap()).unwrap();
    assert_eq!(refused.matches("\tDIR:\t").count(), 34, "{refused}");
    assert!(run.error_line().contains("is unchanged"), "{run:?}");
    assert!(
        run.error_line()
            .contains("refused map is kept for review in"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("MAP file written"), "{run:?}");
    std::fs::remove_file(case.path("state/refused.map")).unwrap();
    assert!(
        run.stderr
            .contains("deletion guard: 40 -> 34 addresses (+0 -6): REFUSED"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("15.0% of the 40 previous addresses would be removed"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("example.com: DIR 20 -> 17 (+0 -3)"),
        "{run:?}"
    );
    let run = case.run(&["sync", "--config", "dirsync.toml"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.error_line().contains("run once with --force"),
        "{run:?}"
    );
    assert_eq!(case.read("state/last-uploaded.map").unwrap(), baseline);
    assert_eq!(
        case.read("out/retarus.map").unwrap(),
        output,
        "output path touched"
    );
    assert!(case.read("state/refused.map").is_some());
    let report: serde_json::Value =
        serde_json::from_slice(&case.read("state/last-run.json").unwrap()).unwrap();
    assert_eq!(report["exit_code"], 3);
    let run = case.run(&["sync", "--config", "dirsync.toml", "--force"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("--force overrides it"), "{run:?}");
    assert!(
        case.read("state/refused.map").is_none(),
        "a passing run removes the refused map"
    );
    assert_eq!(
        case.read("state/last-uploaded.map").unwrap(),
        case.read("out/retarus.map").unwrap()
    );
}

#[test]
fn damaged_baseline_stops_the_run_before_anything_is_written() {
    let case = case_after_one_good_sync();
    case.write(
        "state/last-uploaded.map",
        "12345|example.com\tDOMAIN:\texample.com\r\n",
    );
    assert_fails_untouched(&case, "dirsync.toml", 1, "is damaged");
}

#[test]
fn a_second_run_while_the_lock_is_held_does_nothing() {
    let case = case_after_one_good_sync();
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(case.path("state/dirsync.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    assert_fails_untouched(
        &case,
        "dirsync.toml",
        1,
        "another dirsync run holds the lock",
    );
    drop(lock);
    assert_eq!(case.run(&["sync", "--config", "dirsync.toml"]).code, 0);
}

/// The demo export cut in the middle of an entry (no final line break), cut at a line inside
/// an entry, and saved as UTF-16: each refused with exit 4 and a message saying what it is;
/// nothing is written, and no run is a first run that ships a part of the directory.
#[test]
fn a_truncated_or_utf16_export_is_refused() {
    let demo = std::fs::read_to_string(repo().join("examples/demo.ldif")).unwrap();
    let middle = demo.len() / 2;
    let line_cut = demo[..middle].rfind('\n').unwrap() + 1;
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(demo.encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "mid-line",
            demo.as_bytes()[..middle].to_vec(),
            "looks truncated",
        ),
        (
            "at a line",
            demo.as_bytes()[..line_cut].to_vec(),
            "the export ends in the middle of an entry",
        ),
        ("UTF-16", utf16, "the export is UTF-16"),
    ];
    for (name, bytes, message) in cases {
        let case = Case::new();
        let ldif = case.write("export.ldif", bytes);
        case.ldif_config(&ldif, "");
        let run = case.run(&["sync", "--config", "dirsync.toml"]);
        assert_eq!(run.code, 4, "{name}: {run:?}");
        assert!(run.error_line().contains(message), "{name}: {run:?}");
        assert!(case.read("out/retarus.map").is_none(), "{name}");
        assert!(case.read("state/last-uploaded.map").is_none(), "{name}");
    }
}
