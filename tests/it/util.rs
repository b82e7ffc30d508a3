use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (for examples/).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The retry backoff's unit in the tests (dirsync's is a second): retries wait for nothing.
pub const TEST_BACKOFF_MS: &str = "10";

/// A temporary working folder with a config file.
pub struct Case {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The last `dirsync: error:` line.
    pub fn error_line(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("dirsync: error:"))
            .unwrap_or("")
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Case {
    pub fn new() -> Case {
        Case {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(name)).ok()
    }

    /// A local-only config reading `ldif` (a path relative to the case folder).
    pub fn ldif_config(&self, ldif: &Path, extra: &str) -> PathBuf {
        self.write(
            "dirsync.toml",
            format!(
                "customer_id = \"12345\"\ndomains = [\"example.com\", \"example.de\"]\nstate_dir = \"state\"\n{extra}\n\
                 [source]\ntype = \"ldif\"\npath = {:?}\n[output]\npath = \"out/retarus.map\"\n",
                ldif.display().to_string()
            ),
        )
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dirsync"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("DIRSYNC_LOG")
            .env("DIRSYNC_TEST_BACKOFF_MS", TEST_BACKOFF_MS);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from_output(cmd.output().unwrap())
    }
}

/// Compares with a golden file; `DIRSYNC_BLESS=1` rewrites it on purpose.
pub fn assert_golden(golden: &Path, actual: &[u8]) {
    if std::env::var_os("DIRSYNC_BLESS").is_some() {
        std::fs::write(golden, actual).unwrap();
        return;
    }
    let expected = std::fs::read(golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
    if expected != actual {
        panic!(
            "{} differs from the output (rerun with DIRSYNC_BLESS=1 to accept it on purpose)\n--- expected\n{}\n--- actual\n{}",
            golden.display(),
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(actual)
        );
    }
}

/// A small LDIF of `n` users u0..u{n-1}@example.com (+ an example.de alias each).
pub fn users_ldif(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "dn: CN=u{i},OU=Users,DC=example,DC=com\nobjectClass: user\nproxyAddresses: SMTP:u{i}@example.com\nproxyAddresses: smtp:u{i}@example.de\n\n"
        ));
    }
    s
}

/// What a [`proxy`] does once `after` bytes went from the client to the server.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AtLimit {
    /// Cuts the connection: a server that goes away mid-transfer.
    Cut,
    /// Stops passing data but keeps the connection open: the client is stuck mid-transfer,
    /// whatever its speed.
    Stall,
}

/// Forwards connections on a free port to `target` on 127.0.0.1 (everything from the server;
/// from the client up to `after` bytes, then `at_limit`). Returns the port and a flag set
/// when the limit was reached.
pub fn proxy(
    target: u16,
    after: usize,
    at_limit: AtLimit,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read as _, Write as _};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reached = std::sync::Arc::new(AtomicBool::new(false));
    let flag = reached.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(("127.0.0.1", target)).unwrap();
            let (mut s_read, mut c_write) =
                (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_read, &mut c_write);
            });
            let flag = flag.clone();
            std::thread::spawn(move || {
                let (mut c_read, mut s_write) = (client, server);
                let (mut buf, mut passed) = ([0u8; 8192], 0);
                while passed < after {
                    let n = match c_read.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n.min(after - passed),
                    };
                    if s_write.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    passed += n;
                }
                flag.store(true, Ordering::SeqCst);
                if at_limit == AtLimit::Stall {
                    std::thread::sleep(std::time::Duration::from_secs(120));
                }
                let _ = c_read.shutdown(std::net::Shutdown::Both);
                let _ = s_write.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (port, reached)
}
