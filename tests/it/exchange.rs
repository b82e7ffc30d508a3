//! Exchange data merged into the map: from an input file, from the script runner (with a
//! stand-in interpreter that is a test double for the runner only), stale and failed data.

use crate::util::{repo, Case, Run};

fn fixture() -> String {
    std::fs::read_to_string(repo().join("tests/data/exchange/full.json")).unwrap()
}

/// The fixture with `collectedAt` set `hours_ago` before now.
fn fixture_collected(hours_ago: u64) -> String {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(hours_ago * 3600);
    fixture().replace(
        "2026-11-27T06:00:00Z",
        &humantime::format_rfc3339_seconds(t).to_string(),
    )
}

const RULES: &str = r#"
[filter]
default = "include"
[[filter.rule]]
name = "no equipment"
action = "exclude"
when = { kind = "equipment_mailbox" }
[profiles]
[[profiles.rule]]
when = { kind = "shared_mailbox" }
profile = "Shared"
[[profiles.rule]]
when = { owned_by = "lena.wolf@example.com" }
profile = "Marketing"
"#;

/// Demo directory, `domains = "exchange"`, and an [exchange] section.
fn setup(case: &Case, exchange: &str) {
    case.write(
        "demo.ldif",
        std::fs::read(repo().join("examples/demo.ldif")).unwrap(),
    );
    case.write(
        "dirsync.toml",
        format!(
            "customer_id = \"12345\"\ndomains = \"exchange\"\nstate_dir = \"state\"\n\
             [source]\ntype = \"ldif\"\npath = \"demo.ldif\"\n[output]\npath = \"out/retarus.map\"\n\
             [exchange]\n{exchange}\n{RULES}"
        ),
    );
}

fn map(case: &Case) -> String {
    String::from_utf8(case.read("out/retarus.map").unwrap())
        .unwrap()
        .replace("\r\n", "\n")
}

fn sync(case: &Case) -> Run {
    case.run(&["sync", "--config", "dirsync.toml"])
}

#[test]
fn the_documented_example_is_the_fixture() {
    let doc = std::fs::read_to_string(repo().join("docs/exchange-data.md")).unwrap();
    let block = doc
        .split("```json\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    assert_eq!(block, fixture());
}

#[test]
fn exchange_data_adds_kinds_groups_folders_addresses_and_owners() {
    let case = Case::new();
    case.write("exchange.json", fixture_collected(1));
    setup(&case, "input = \"exchange.json\"\nemit_group_owners = true");
    let run = sync(&case);
    assert_eq!(run.code, 0, "{run:?}");
    let m = map(&case);
    for line in [
        // A dynamic distribution group and a public folder: never visible over LDAP.
        "12345|example.com\tDIR:\tall-berlin@example.com",
        "12345|example.de\tDIR:\talle-berlin@example.de",
        "12345|example.de\tMAP:\talle-berlin@example.de\tall-berlin@example.com",
        "12345|example.com\tDIR:\tsupport-archive@example.com",
        // A mailbox Entra DS does not have yet, and an alias it lacks.
        "12345|example.com\tDIR:\tnew.hire@example.com",
        "12345|example.de\tMAP:\ta.schmidt@example.de\tanna.schmidt@example.com",
        // Shared mailboxes classified, and a rule on the kind acting on them.
        "12345|example.com\tPROFILE:\tinfo@example.com\tShared",
        "12345|example.de\tPROFILE:\tkontakt@example.de\tShared",
        // Owners reach rules and, opted in, the map.
        "12345|example.com\tPROFILE:\tmarketing-team@example.com\tMarketing",
        "12345|example.com\tUCFG:\tmarketing-team@example.com\towner\tlena.wolf@example.com",
        "12345|example.com\tUCFG:\tmarketing-team@example.com\towner\thannah.schulz@example.com",
    ] {
        assert!(m.contains(&format!("{line}\n")), "missing {line:?} in\n{m}");
    }
    // The equipment mailbox is excluded by its Exchange kind; the onmicrosoft domain is not used.
    assert!(!m.contains("beamer-hh@example.de"), "{m}");
    assert!(!m.contains("onmicrosoft"), "{m}");
    assert!(run.stderr.contains("Exchange data of "), "{run:?}");
    assert!(
        run.stderr.contains(
            "added dynamic_distribution_group 1, m365_group 1, public_folder 1, user_mailbox 1"
        ),
        "{run:?}"
    );
    let explain = case.run(&[
        "explain",
        "--config",
        "dirsync.toml",
        "a.schmidt@example.de",
    ]);
    assert!(
        explain.stdout.contains(
            "(user, user_mailbox) in Exchange Online's EmailAddresses (not in the directory)"
        ),
        "{explain:?}"
    );
}

#[test]
fn stale_or_broken_exchange_data_exits_5_and_keeps_everything() {
    let case = Case::new();
    case.write("exchange.json", fixture_collected(1));
    setup(&case, "input = \"exchange.json\"\nmax_age_hours = 2");
    assert_eq!(sync(&case).code, 0);
    let (m, base) = (
        case.read("out/retarus.map"),
        case.read("state/last-uploaded.map"),
    );

    case.write("exchange.json", fixture_collected(3));
    let run = sync(&case);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.error_line()
            .contains("more than exchange.max_age_hours allows: is the export task running?"),
        "{run:?}"
    );
    // (An unknown recipient type is no longer a broken document: it is kept, as "other".)
    case.write(
        "exchange.json",
        fixture_collected(1).replace(
            "[\"SMTP:info@example.com\", \"smtp:kontakt@example.de\", \"smtp:info@example.onmicrosoft.com\"]",
            "\"SMTP:info@example.com smtp:kontakt@example.de smtp:info@example.onmicrosoft.com\"",
        ),
    );
    let run = sync(&case);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.error_line()
            .contains("recipients[0].emailAddresses[0]: \"SMTP:info@example.com smtp:kontakt@example.de smtp:info@example.onmicrosoft.com\" holds several addresses in one string"),
        "{run:?}"
    );
    assert_eq!(case.read("out/retarus.map"), m);
    assert_eq!(case.read("state/last-uploaded.map"), base);
}

#[test]
fn a_failed_step_falls_back_to_the_last_good_data_when_configured() {
    let case = Case::new();
    case.write("exchange.json", fixture_collected(1));
    setup(
        &case,
        "input = \"exchange.json\"\nfallback_max_age_hours = 12",
    );
    assert_eq!(sync(&case).code, 0);
    let good = map(&case);
    assert!(case.read("state/exchange-last-good.json").is_some());
    std::fs::remove_file(case.path("exchange.json")).unwrap();
    let run = sync(&case);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("using the last good data"), "{run:?}");
    assert_eq!(map(&case), good);
    let report: serde_json::Value =
        serde_json::from_slice(&case.read("state/last-run.json").unwrap()).unwrap();
    assert!(
        report["exchange"]["fallback"]
            .as_str()
            .unwrap()
            .contains("cannot read exchange.input"),
        "{report}"
    );
    // Without the fallback, the same failure stops the run.
    setup(&case, "input = \"exchange.json\"");
    let run = sync(&case);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.error_line().contains("cannot read exchange.input")
            && run.error_line().contains("nothing is shipped"),
        "{run:?}"
    );
}

/// Config for the runner with the test double as interpreter; `body` is the shell the
/// double runs in place of the PowerShell script.
fn runner_case(body: &str, extra: &str) -> Case {
    let case = Case::new();
    case.write("fake-export.ps1", body);
    let double = repo().join("tests/data/exchange/fake-pwsh-test-double.sh");
    setup(
        &case,
        &format!(
            "script = \"fake-export.ps1\"\ninterpreter = {:?}\nparameters = {{ AppId = \"3f1b\", Organization = \"example.onmicrosoft.com\", CertificateThumbprint = \"0123ABCD\" }}\n{extra}",
            double.display().to_string()
        ),
    );
    case
}

#[test]
fn the_runner_passes_parameters_and_reads_what_the_script_wrote() {
    let case = runner_case("cat > \"$OUT\" <<'JSON'\n__FIXTURE__\nJSON\n", "");
    let body = std::fs::read_to_string(case.path("fake-export.ps1"))
        .unwrap()
        .replace("__FIXTURE__", &fixture_collected(0));
    case.write("fake-export.ps1", body);
    let run = sync(&case);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(map(&case).contains("DIR:\tall-berlin@example.com"));
    let args = std::fs::read_to_string(case.path("state/exchange-run.json.args")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args[..3], ["-NoProfile", "-NonInteractive", "-File"]);
    assert!(
        args[3].ends_with("fake-export.ps1")
            && args[4] == "-OutputPath"
            && args[5].ends_with("state/exchange-run.json"),
        "{args:?}"
    );
    assert_eq!(
        args[6..],
        [
            "-AppId",
            "3f1b",
            "-CertificateThumbprint",
            "0123ABCD",
            "-Organization",
            "example.onmicrosoft.com"
        ]
    );
    assert!(
        case.read("state/exchange-run.json").is_none(),
        "the run's output file is cleaned up"
    );
}

#[test]
fn the_runner_reports_exit_code_and_stderr_and_stops_a_hanging_script() {
    let case = runner_case("echo 'Connect-ExchangeOnline: AADSTS700027: Client assertion contains an invalid signature.' >&2\nexit 3\n", "");
    let run = sync(&case);
    assert_eq!(run.code, 5, "{run:?}");
    let e = run.error_line();
    assert!(e.contains("failed (exit code 3): Connect-ExchangeOnline: AADSTS700027: Client assertion contains an invalid signature."), "{run:?}");

    let case = runner_case("sleep 30\n", "timeout_seconds = 1");
    let started = std::time::Instant::now();
    let run = sync(&case);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(started.elapsed().as_secs() < 10, "not stopped in time");
    assert!(
        run.error_line()
            .contains("did not finish within 1s (exchange.timeout_seconds) and was stopped"),
        "{run:?}"
    );

    let case = runner_case("exit 0\n", "");
    let text = std::fs::read_to_string(case.path("dirsync.toml")).unwrap();
    let double = repo()
        .join("tests/data/exchange/fake-pwsh-test-double.sh")
        .display()
        .to_string();
    case.write(
        "dirsync.toml",
        text.replace(
            &format!("interpreter = {double:?}\n"),
            "interpreter = \"/nonexistent/pwsh\"\n",
        ),
    );
    let run = sync(&case);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.error_line()
            .contains("exchange.interpreter /nonexistent/pwsh was not found"),
        "{run:?}"
    );

    case.write(
        "dirsync.toml",
        text.replace(&format!("interpreter = {double:?}\n"), ""),
    );
    let empty = case.path("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let run = case.run_env(
        &["sync", "--config", "dirsync.toml"],
        &[("PATH", empty.to_str().unwrap())],
    );
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.error_line()
            .contains("no PowerShell found on the PATH (looked for pwsh, powershell.exe)"),
        "{run:?}"
    );
}

#[test]
fn secrets_are_refused_as_script_parameters() {
    let case = runner_case("exit 0\n", "");
    let text = std::fs::read_to_string(case.path("dirsync.toml"))
        .unwrap()
        .replace(
            "CertificateThumbprint = \"0123ABCD\"",
            "CertificatePassword = \"hunter2\"",
        );
    case.write("dirsync.toml", text);
    let run = sync(&case);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "exchange.parameters.CertificatePassword: secrets are never passed on the command line"
        ),
        "{run:?}"
    );
    assert!(!run.stderr.contains("hunter2"));
}

/// The Exchange documents of `tests/data/exchange/powershell/`, byte for byte as Windows
/// PowerShell 5.1 (`ps51-*`) and PowerShell 7 (`ps7-*`) write them with the script's method
/// (made by `make.py` there): each gives exactly these MAP files, or is refused as it must be.
mod powershell_documents {
    use super::*;

    /// A directory of one user (Anna), local-only, Exchange data from `exchange.json`.
    fn case(fixture: &str) -> Case {
        let case = Case::new();
        let path = repo().join(format!("tests/data/exchange/powershell/{fixture}.json"));
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        // The fixture's collectedAt ('o' format) moved to now, every other byte as written.
        let fresh = now.replace('Z', ".0000000Z");
        let bytes = std::fs::read_to_string(path)
            .unwrap()
            .replace("2026-11-27T06:00:00.0000000Z", &fresh);
        case.write("exchange.json", bytes);
        case.write(
            "export.ldif",
            "dn: CN=Anna Helper,OU=AADDC Users,DC=example,DC=com\nobjectClass: user\n\
             msDS-aadObjectId: 11111111-1111-1111-1111-111111111111\nproxyAddresses: SMTP:anna@example.com\n\n",
        );
        case.write(
            "dirsync.toml",
            "customer_id = \"12345\"\ndomains = [\"example.com\", \"example.de\"]\nstate_dir = 'state'\n\
             [source]\ntype = \"ldif\"\npath = 'export.ldif'\n[output]\npath = 'out/retarus.map'\n\
             [exchange]\ninput = 'exchange.json'\nemit_group_owners = true\n",
        );
        case
    }

    fn lines(prefix: &str, body: &[&str]) -> String {
        let mut out = String::new();
        for l in body {
            out.push_str(&format!("{prefix}{l}\n"));
        }
        out
    }

    const ANNA_DE: [&str; 2] = [
        "example.de\tDIR:\tanna.alias@example.de",
        "example.de\tMAP:\tanna.alias@example.de\tanna@example.com",
    ];

    fn expect(fixture: &str, com: &[&str], de: &[&str]) {
        for version in ["ps51", "ps7"] {
            let case = case(&format!("{version}-{fixture}"));
            let run = sync(&case);
            assert_eq!(run.code, 0, "{version}-{fixture}: {run:?}");
            let expected = format!(
                "12345|example.com\tDOMAIN:\texample.com\n{}12345|example.de\tDOMAIN:\texample.de\n{}++++\n",
                lines("12345|example.com\t", com),
                lines("12345|", de)
            );
            assert_eq!(map(&case), expected, "{version}-{fixture}");
        }
    }

    #[test]
    fn a_normal_tenant_with_one_ddg_one_public_folder_and_one_owner() {
        expect(
            "normal",
            &[
                "DIR:\tall@example.com",
                "DIR:\tanna@example.com",
                "DIR:\tinfo@example.com",
                "DIR:\tpf@example.com",
                "DIR:\tteam@example.com",
                "UCFG:\tteam@example.com\towner\tanna@example.com",
            ],
            &[
                ANNA_DE[0],
                "example.de\tDIR:\tkontakt@example.de",
                "example.de\tDIR:\troom@example.de",
                ANNA_DE[1],
                "example.de\tMAP:\tkontakt@example.de\tinfo@example.com",
            ],
        );
    }

    #[test]
    fn zero_ddgs_public_folders_and_owners() {
        expect("zero", &["DIR:\tanna@example.com"], &ANNA_DE);
    }

    #[test]
    fn a_hybrid_tenant_with_linked_room_and_remote_team_mailboxes_and_an_unknown_type() {
        for version in ["ps51", "ps7"] {
            let run = sync(&case(&format!("{version}-hybrid")));
            assert!(
                run.stderr.contains(
                    "1 recipient(s) of type FutureMailbox, which this dirsync does not know: kept"
                ),
                "{run:?}"
            );
        }
        expect(
            "hybrid",
            &[
                "DIR:\tanna@example.com",
                "DIR:\tfuture@example.com",
                "DIR:\tremote-team@example.com",
            ],
            &[
                ANNA_DE[0],
                "example.de\tDIR:\tlinked-room@example.de",
                ANNA_DE[1],
            ],
        );
    }

    #[test]
    fn non_ascii_names_are_read_as_written() {
        expect(
            "non-ascii",
            &["DIR:\tanna@example.com"],
            &[
                ANNA_DE[0],
                "example.de\tDIR:\tj.muessig@example.de",
                "example.de\tDIR:\tjuergen@example.de",
                ANNA_DE[1],
                "example.de\tMAP:\tjuergen@example.de\tj.muessig@example.de",
            ],
        );
    }

    #[test]
    fn a_finnish_culture_timestamp_and_flattened_lists_are_refused() {
        for version in ["ps51", "ps7"] {
            let finnish = case(&format!("{version}-finnish-time"));
            let run = sync(&finnish);
            assert_eq!(run.code, 5, "{run:?}");
            assert!(
                run.error_line()
                    .contains("collectedAt: \"2026-11-27T07.26.56Z\" is not a date")
                    && run
                        .error_line()
                        .contains("update scripts/Export-DirSyncExchangeData.ps1"),
                "{run:?}"
            );
            assert!(finnish.read("out/retarus.map").is_none());
            let flattened = case(&format!("{version}-flattened"));
            let run = sync(&flattened);
            assert_eq!(run.code, 5, "{run:?}");
            assert!(
                run.error_line().contains("recipients[0].emailAddresses[0]: \"SMTP:anna@example.com smtp:anna.alias@example.de\" holds several addresses in one string")
                    && run.error_line().contains("run the bundled scripts/Export-DirSyncExchangeData.ps1"),
                "{run:?}"
            );
        }
    }

    #[test]
    fn a_collected_at_in_the_future_is_refused_naming_the_clock() {
        let case = case("ps7-zero");
        let later = humantime::format_rfc3339_seconds(
            std::time::SystemTime::now() + std::time::Duration::from_secs(3 * 3600),
        )
        .to_string();
        let text = String::from_utf8(case.read("exchange.json").unwrap()).unwrap();
        let start = text.find("\"collectedAt\": \"").unwrap() + 16;
        let end = start + text[start..].find('"').unwrap();
        case.write(
            "exchange.json",
            format!("{}{later}{}", &text[..start], &text[end..]),
        );
        let run = sync(&case);
        assert_eq!(run.code, 5, "{run:?}");
        assert!(
            run.error_line().contains("ahead of this host's clock"),
            "{run:?}"
        );
        assert!(run.error_line().contains("check the clocks"), "{run:?}");
    }
}
