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

#[test]
fn shipped_maps_are_archived_for_archive_days_and_then_removed() {
    let case = Case::new();
    let ldif = case.write("export.ldif", users_ldif(3));
    case.ldif_config(&ldif, "archive_days = 2");
    let old = case.write("state/archive/20200101T000000Z.map", "old");
    let status = std::process::Command::new("touch")
        .args(["-d", "3 days ago"])
        .arg(&old)
        .status()
        .unwrap();
    assert!(status.success());
    let recent = case.write("state/archive/20991231T000000Z.map", "recent");
    let run = case.run(&["sync", "--config", "dirsync.toml"]);
    assert_eq!(run.code, 0, "{run:?}");
    let names: Vec<String> = std::fs::read_dir(case.path("state/archive"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !old.exists(),
        "the copy older than archive_days was kept: {names:?}"
    );
    assert!(recent.exists());
    let today: String = today().chars().filter(|c| *c != '-').collect();
    let archived: Vec<&String> = names.iter().filter(|n| n.starts_with(&today)).collect();
    assert_eq!(archived.len(), 1, "{names:?}");
    assert_eq!(
        std::fs::read(case.path(&format!("state/archive/{}", archived[0]))).unwrap(),
        case.read("out/retarus.map").unwrap()
    );
    // Without archive_days, nothing is kept (the files hold personal data).
    let plain = Case::new();
    let ldif = plain.write("export.ldif", users_ldif(3));
    plain.ldif_config(&ldif, "");
    assert_eq!(plain.run(&["sync", "--config", "dirsync.toml"]).code, 0);
    assert!(!plain.path("state/archive").exists());
}
