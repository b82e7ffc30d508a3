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
        users_ldif(2) + "dn: CN=n\nobjectClass: user\nmail: new@example.com\n",
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
