//! `diff`, `explain`, `init`, `check`, `--version`, `--help`.

use crate::util::{repo, users_ldif, Case};

#[test]
fn version_and_help() {
    let case = Case::new();
    let run = case.run(&["--version"]);
    assert_eq!(
        (run.code, run.stdout.trim()),
        (0, concat!("dirsync ", env!("CARGO_PKG_VERSION")))
    );
    let run = case.run(&["--help"]);
    assert!(
        run.stdout.contains("Exit codes: 0 success")
            && run
                .stdout
                .contains("dirsync sync --config dirsync.toml --dry-run"),
        "{run:?}"
    );
    let run = case.run(&["sync"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn diff_lists_changes_per_domain() {
    let case = Case::new();
    let ldif = case.write("export.ldif", users_ldif(3));
    case.ldif_config(&ldif, "");
    assert_eq!(case.run(&["sync", "--config", "dirsync.toml"]).code, 0);
    std::fs::copy(case.path("out/retarus.map"), case.path("old.map")).unwrap();
    case.write(
        "export.ldif",
        users_ldif(2) + "dn: CN=n\nobjectClass: user\nmail: new@example.com\n\n",
    );
    assert_eq!(
        case.run(&["sync", "--config", "dirsync.toml", "--dry-run", "--force"])
            .code,
        0
    );
    let run = case.run(&["diff", "old.map", "out/retarus.map"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "  example.com: DIR 3 -> 3 (+1 -1)\n  example.de: DIR 3 -> 2 (+0 -1), MAP +0 -1\n\
         - example.com\tDIR:\tu2@example.com\n+ example.com\tDIR:\tnew@example.com\n\
         - example.de\tDIR:\tu2@example.de\n- example.de\tMAP:\tu2@example.de\tu2@example.com\n\
         total: +1 -2 addresses\n"
    );
    let run = case.run(&["diff", "old.map", "export.ldif"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.error_line()
            .contains("export.ldif is not a valid MAP file: line 1"),
        "{run:?}"
    );
}

/// Two hand-edited MAP files of 100,000 lines in random order: `diff` reads them with one
/// sort each (an insert per line would take minutes) and finds exactly the changes.
#[test]
fn diff_of_two_unsorted_files_of_100k_lines_is_exact_and_fast() {
    let mut lines: Vec<String> = (0..100_000)
        .map(|i| format!("12345|example.com\tDIR:\tuser{i}@example.com\r\n"))
        .collect();
    // A fixed shuffle (LCG), so the file is far from sorted.
    let mut x: u64 = 0x2545_f491;
    for i in (1..lines.len()).rev() {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        lines.swap(i, (x >> 33) as usize % (i + 1));
    }
    let file = |lines: &[String]| {
        format!(
            "12345|example.com\tDOMAIN:\texample.com\r\n{}++++\r\n",
            lines.concat()
        )
    };
    let case = Case::new();
    case.write("old.map", file(&lines));
    let removed: Vec<String> = lines.drain(..3).collect();
    lines.push("12345|example.com\tDIR:\tnew@example.com\r\n".into());
    case.write("new.map", file(&lines));
    let started = std::time::Instant::now();
    let run = case.run(&["diff", "old.map", "new.map"]);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    let mut expected: Vec<String> = removed
        .iter()
        .map(|l| {
            format!(
                "- example.com\tDIR:\t{}",
                l.trim_end().rsplit('\t').next().unwrap()
            )
        })
        .collect();
    expected.sort();
    expected.push("+ example.com\tDIR:\tnew@example.com".into());
    assert_eq!(
        run.stdout,
        format!(
            "  example.com: DIR 100000 -> 99998 (+1 -3)\n{}\ntotal: +1 -3 addresses\n",
            expected.join("\n")
        )
    );
    assert!(
        took < std::time::Duration::from_secs(10),
        "diff took {took:?}"
    );
    // A repeat in an unsorted file is still found.
    lines.push(lines[10].clone());
    case.write("repeat.map", file(&lines));
    let run = case.run(&["diff", "old.map", "repeat.map"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.error_line()
            .contains("repeated DIR: record in example.com"),
        "{run:?}"
    );
}

#[test]
fn explain_says_where_an_address_comes_from() {
    let case = Case::new();
    let config = case.ldif_config(&repo().join("examples/demo.ldif"), "");
    let cfg = config.to_str().unwrap();
    let run = case.run(&["explain", "--config", cfg, "Support@Example.com"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("found on CN=Support,OU=AADDC Users,DC=example,DC=com (group) in proxyAddresses (SMTP:, primary)"), "{run:?}");
    assert!(
        run.stdout.contains("conflict: also on CN=Paula Braun"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("12345|example.de\tMAP:\thilfe@example.de\tsupport@example.com"),
        "{run:?}"
    );
    let run = case.run(&[
        "explain",
        "--config",
        cfg,
        "anna.schmidt@example.onmicrosoft.com",
    ]);
    assert!(
        run.stdout.contains("is not in `domains`") && run.stdout.contains("MAP lines: none"),
        "{run:?}"
    );
    let run = case.run(&["explain", "--config", cfg, "nobody@example.com"]);
    assert!(
        run.stdout.contains("nobody@example.com is on no object"),
        "{run:?}"
    );
}

#[test]
fn init_writes_the_example_and_never_overwrites_silently() {
    let case = Case::new();
    let run = case.run(&["init", "my.toml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        case.read("my.toml").unwrap(),
        std::fs::read(repo().join("examples/dirsync.toml")).unwrap()
    );
    let run = case.run(&["init", "my.toml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.error_line().contains("exists; use --force"), "{run:?}");
}

#[test]
fn check_reports_each_step() {
    let case = Case::new();
    let ldif = case.write("export.ldif", users_ldif(5));
    case.ldif_config(&ldif, "");
    let run = case.run(&["check", "--config", "dirsync.toml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("ok    source: 5 entries from"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("a sync would write 10 addresses"),
        "{run:?}"
    );
    assert!(run.stdout.contains("no previous upload"), "{run:?}");
    std::fs::remove_file(&ldif).unwrap();
    let run = case.run(&["check", "--config", "dirsync.toml"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout
            .contains("FAIL  source: cannot open the LDIF export"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("ok    state:"),
        "check goes on after a failure: {run:?}"
    );
}

/// `check` changes nothing on disk: no output, state or log folder, no log file, no lock —
/// it says what a sync would create.
#[test]
fn check_creates_nothing_and_says_what_a_sync_would_create() {
    let case = Case::new();
    let ldif = case.write("export.ldif", users_ldif(3));
    case.ldif_config(&ldif, "log_dir = 'logs'");
    let before: Vec<_> = std::fs::read_dir(case.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let run = case.run(&["check", "--config", "dirsync.toml"]);
    assert_eq!(run.code, 0, "{run:?}");
    let after: Vec<_> = std::fs::read_dir(case.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "check created something: {run:?}");
    for folder in ["out", "state", "logs"] {
        assert!(
            run.stdout.contains(&format!(
                "{folder} does not exist yet; a sync will create it"
            )),
            "{folder}: {run:?}"
        );
    }
}
