//! Faults injected on purpose across the pipeline: the connection to the directory lost at
//! each page, the process killed while writing the MAP file and while uploading, a full disk.
//! Each time: the documented exit code, and the MAP file, the state and the remote file exactly
//! as they were; the next run succeeds.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pki::{Ca, Validity};
use crate::slapd::{free_port, Slapd, READER_DN, READER_PASSWORD};
use crate::sshd::{self, Sshd};
use crate::util::{users_ldif, Case, Run};

/// Forwards connections to `target`; each is cut once more than `after` bytes came back from
/// the server. `seen` counts the bytes of the last connection.
fn proxy(target: u16, after: usize) -> (u16, Arc<AtomicUsize>) {
    let port = free_port();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(("127.0.0.1", target)).unwrap();
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
            });
            counter.store(0, Ordering::SeqCst);
            let (mut s_read, mut c_write) = (server, client);
            let mut buf = [0u8; 4096];
            loop {
                let n = match s_read.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let before = counter.fetch_add(n, Ordering::SeqCst);
                let n = n.min(after.saturating_sub(before));
                if n == 0 || c_write.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = c_write.shutdown(std::net::Shutdown::Both);
            let _ = s_read.shutdown(std::net::Shutdown::Both);
        }
    });
    (port, seen)
}

fn ldap_case(case: &Case, port: u16, ca: &Path) {
    case.write(
        "dirsync.toml",
        format!(
            "customer_id = \"12345\"\ndomains = [\"example.com\", \"example.de\"]\n\
             [source]\ntype = \"ldap\"\nurl = \"ldaps://127.0.0.1:{port}\"\nbind_dn = \"{READER_DN}\"\npassword_env = \"P\"\n\
             ca_file = {:?}\nbase_dn = \"OU=AADDC Users,DC=example,DC=com\"\npage_size = 1000\n\
             [output]\npath = \"out/retarus.map\"\n",
            ca.display().to_string()
        ),
    );
}

#[test]
fn the_directory_connection_lost_in_each_page_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("faults CA");
    let ca_pem = ca.write_pem(&dir.path().join("ca.pem"));
    let cert = ca.server(dir.path(), "server", &["127.0.0.1"], Validity::Current);
    let server = Slapd::start(&crate::gen::directory(5000), &cert, None);
    let case = Case::new();
    // A full read through the proxy, to learn how many bytes it takes.
    let (port, seen) = proxy(server.ldaps_port, usize::MAX);
    ldap_case(&case, port, &ca_pem);
    let run = case.run_env(
        &["sync", "--config", "dirsync.toml"],
        &[("P", READER_PASSWORD)],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let total = seen.load(Ordering::SeqCst);
    let (map, base) = (
        case.read("out/retarus.map"),
        case.read("state/last-uploaded.map"),
    );
    // 5,000 users and their groups and contacts: 6 pages of at most 1,000. Cut in each.
    for k in 1..=6 {
        let (port, _) = proxy(server.ldaps_port, total * (2 * k - 1) / 12);
        ldap_case(&case, port, &ca_pem);
        let run = case.run_env(
            &["sync", "--config", "dirsync.toml"],
            &[("P", READER_PASSWORD)],
        );
        assert_eq!(run.code, 4, "page {k}: {run:?}");
        assert!(
            run.error_line().contains("nothing is shipped") || run.error_line().contains("bind"),
            "page {k}: {run:?}"
        );
        assert_eq!(
            case.read("out/retarus.map"),
            map,
            "page {k}: MAP file changed"
        );
        assert_eq!(
            case.read("state/last-uploaded.map"),
            base,
            "page {k}: state changed"
        );
    }
    // Cut before the bind's answer.
    let (port, _) = proxy(server.ldaps_port, 1500);
    ldap_case(&case, port, &ca_pem);
    let run = case.run_env(
        &["sync", "--config", "dirsync.toml"],
        &[("P", READER_PASSWORD)],
    );
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(case.read("out/retarus.map"), map);
}

/// Starts `dirsync sync` and SIGKILLs it as soon as `marker` (a file name prefix) appears in
/// `dir`. Returns whether it was caught in the act.
fn kill_when_appears(
    case: &Case,
    args: &[&str],
    env: &[(&str, &str)],
    dir: &Path,
    marker: &str,
) -> bool {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dirsync"));
    cmd.args(args)
        .current_dir(case.dir.path())
        .env("DIRSYNC_TEST_BACKOFF_MS", crate::util::TEST_BACKOFF_MS)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let present = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(marker))
            })
            .unwrap_or(false);
        if present {
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
            return true;
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            let _ = child.kill();
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn killed_while_writing_the_map_file_leaves_the_old_one() {
    let case = Case::new();
    let ldif = case.write("export.ldif", users_ldif(50));
    case.ldif_config(&ldif, "");
    assert_eq!(case.run(&["sync", "--config", "dirsync.toml"]).code, 0);
    let (mut map, mut base) = (
        case.read("out/retarus.map"),
        case.read("state/last-uploaded.map"),
    );
    // Killed when its temporary file appears. The write cannot be held from outside, so a
    // run that finished before the kill is repeated with a directory four times larger: a
    // faster dirsync only takes a larger directory to catch.
    let mut caught = false;
    for users in [40_000, 160_000, 640_000] {
        case.write("export.ldif", users_ldif(users));
        caught = kill_when_appears(
            &case,
            &["sync", "--config", "dirsync.toml", "--force"],
            &[],
            &case.path("out"),
            ".dirsync-",
        );
        if caught {
            break;
        }
        // It finished: its map and state are now what must stay.
        (map, base) = (
            case.read("out/retarus.map"),
            case.read("state/last-uploaded.map"),
        );
    }
    assert!(
        caught,
        "the run ended before it could be killed while writing"
    );
    assert_eq!(
        case.read("out/retarus.map"),
        map,
        "the MAP file under its name changed"
    );
    assert_eq!(case.read("state/last-uploaded.map"), base, "state changed");
    // The next run succeeds, takes over the lock and clears the half-written temporary file.
    let run = case.run(&["sync", "--config", "dirsync.toml", "--force"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("took over the lock"), "{run:?}");
    let names: Vec<String> = std::fs::read_dir(case.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["retarus.map"], "a temporary file stayed behind");
}

#[test]
fn killed_during_the_upload_leaves_the_remote_file_and_the_state() {
    let server = Sshd::start();
    let case = Case::new();
    let ldif = case.write("export.ldif", users_ldif(50));
    let kh = case.write("known_hosts", server.known_hosts_line("host_ed25519"));
    case.ldif_config(
        &ldif,
        &format!(
            "[upload]\ntype = \"sftp\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = {:?}\nknown_hosts = {:?}\nremote_dir = {:?}\n",
            server.port,
            sshd::USER,
            server.key("client_key").display().to_string(),
            kh.display().to_string(),
            server.upload_dir().display().to_string()
        ),
    );
    assert_eq!(case.run(&["sync", "--config", "dirsync.toml"]).code, 0);
    let remote = || std::fs::read(server.upload_dir().join("12345.map")).ok();
    let (uploaded, base) = (remote(), case.read("state/last-uploaded.map"));
    case.write("export.ldif", users_ldif(60_000));
    // The upload is held mid-file by a proxy (after 1 MB of what dirsync sends), so the kill
    // lands while the temporary remote file is half written, however fast dirsync is.
    let (proxy, stalled) = crate::util::proxy(server.port, 1 << 20, crate::util::AtLimit::Stall);
    let config = std::fs::read_to_string(case.path("dirsync.toml")).unwrap();
    case.write(
        "dirsync.toml",
        config.replace(
            &format!("port = {}", server.port),
            &format!("port = {proxy}"),
        ),
    );
    let kh_proxy = server
        .known_hosts_line("host_ed25519")
        .replace(&format!("]:{}", server.port), &format!("]:{proxy}"));
    case.write("known_hosts", kh_proxy);
    let mut child = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args(["sync", "--config", "dirsync.toml", "--force"])
        .current_dir(case.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let temporary = || {
        std::fs::read_dir(server.upload_dir())
            .unwrap()
            .flatten()
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".12345.map.dirsync-upload")
            })
    };
    while !(stalled.load(Ordering::SeqCst) && temporary()) {
        assert!(
            Instant::now() < deadline,
            "the upload never reached the proxy's stall"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "dirsync ended before the stall"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    // Back to the server itself for the next run.
    case.write("dirsync.toml", config);
    case.write("known_hosts", server.known_hosts_line("host_ed25519"));
    assert_eq!(remote(), uploaded, "the remote file under its name changed");
    assert_eq!(case.read("state/last-uploaded.map"), base, "state changed");
    let run = case.run(&["sync", "--config", "dirsync.toml", "--force"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(remote().unwrap(), case.read("out/retarus.map").unwrap());
    let names: Vec<String> = std::fs::read_dir(server.upload_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["12345.map"],
        "the temporary remote file stayed behind"
    );
}

/// A full disk, stood in for by a file size limit (RLIMIT_FSIZE) on the dirsync process: its
/// writes fail as they would on a full volume (EFBIG instead of ENOSPC). A real small tmpfs
/// needs mount rights the test sandbox does not have.
#[test]
fn a_full_disk_while_writing_leaves_the_old_file() {
    let case = Case::new();
    let ldif = case.write("export.ldif", users_ldif(50));
    case.ldif_config(&ldif, "");
    assert_eq!(case.run(&["sync", "--config", "dirsync.toml"]).code, 0);
    let (map, base) = (
        case.read("out/retarus.map"),
        case.read("state/last-uploaded.map"),
    );
    case.write("export.ldif", users_ldif(5000));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dirsync"));
    cmd.args(["sync", "--config", "dirsync.toml", "--force"])
        .current_dir(case.dir.path());
    use std::os::unix::process::CommandExt as _;
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.error_line().contains("cannot write the MAP file")
            && run.error_line().contains("File too large"),
        "{run:?}"
    );
    assert_eq!(case.read("out/retarus.map"), map);
    assert_eq!(case.read("state/last-uploaded.map"), base);
}

#[test]
fn a_lost_state_folder_is_a_first_run_and_says_so() {
    let case = Case::new();
    let ldif = case.write("export.ldif", users_ldif(10));
    case.ldif_config(&ldif, "");
    assert_eq!(case.run(&["sync", "--config", "dirsync.toml"]).code, 0);
    std::fs::remove_dir_all(case.path("state")).unwrap();
    case.write("export.ldif", users_ldif(2));
    let run = case.run(&["sync", "--config", "dirsync.toml", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(
            "no previous upload recorded in state_dir (a first run, or the state was lost)"
        ),
        "{run:?}"
    );
}
