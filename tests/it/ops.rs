//! Running unattended: the log file, its rotation and retention.

use crate::util::{users_ldif, Case};

fn today() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()[..10].to_owned()
}

#[test]
fn the_log_file_records_each_run_and_old_files_are_removed() {
    let case = Case::new();
    let ldif = case.write("export.ldif", users_ldif(5));
    case.ldif_config(&ldif, "log_dir = \"logs\"\nlog_days = 2");
    case.write("logs/dirsync-2020-01-01.log", "old");
    case.write("logs/keep-me.txt", "not a dirsync log");
    let run = case.run(&["sync", "--config", "dirsync.toml"]);
    assert_eq!(run.code, 0, "{run:?}");
    let log =
        String::from_utf8(case.read(&format!("logs/dirsync-{}.log", today())).unwrap()).unwrap();
    assert!(log.contains("INFO read 5 objects from"), "{log}");
    assert!(log.contains("MAP file written:"), "{log}");
    assert!(
        log.contains("removed 1 log files older than log_days: dirsync-2020-01-01.log"),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "no terminal colours in the file");
    assert!(case.read("logs/dirsync-2020-01-01.log").is_none());
    assert!(case.read("logs/keep-me.txt").is_some());

    // A failure lands in the same file, appended, with its exit code.
    std::fs::remove_file(&ldif).unwrap();
    let run = case.run(&["sync", "--config", "dirsync.toml"]);
    assert_eq!(run.code, 4, "{run:?}");
    let log =
        String::from_utf8(case.read(&format!("logs/dirsync-{}.log", today())).unwrap()).unwrap();
    assert!(
        log.contains("INFO read 5 objects from"),
        "the first run's lines are kept: {log}"
    );
    assert!(
        log.contains("ERROR dirsync: error: cannot open the LDIF export")
            && log.contains("(exit 4)"),
        "{log}"
    );
}

#[test]
fn an_unusable_log_folder_does_not_stop_the_run() {
    let case = Case::new();
    let ldif = case.write("export.ldif", users_ldif(2));
    case.write("blocker", "a file where the log folder should be");
    case.ldif_config(&ldif, "log_dir = \"blocker/logs\"");
    let run = case.run(&["sync", "--config", "dirsync.toml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("cannot create log_dir")
            && run.stderr.contains("logging to stderr only"),
        "{run:?}"
    );
}
