//! A real OpenSSH sshd (internal-sftp) on 127.0.0.1 with its own config and host keys made
//! per run, one system user for key and password logins, stopped by PID.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::slapd::free_port;

pub const USER: &str = "dirsync-sftp";

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A random password made once per machine and kept in root's home (mode 0600), so that test
/// runs at the same time agree on it instead of resetting each other's.
fn machine_password() -> String {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = Path::new(&std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
        .join(".cache/dirsync-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sftp-password");
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    let fresh: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        std::io::Write::write_all(&mut f, fresh.as_bytes()).unwrap();
    }
    let mut pw = std::fs::read_to_string(&path).unwrap();
    for _ in 0..50 {
        if pw.len() == 24 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        pw = std::fs::read_to_string(&path).unwrap();
    }
    pw
}

/// The test user's password, set once per test process (random, shared by the machine's runs).
pub fn password() -> &'static str {
    static PASSWORD: OnceLock<String> = OnceLock::new();
    PASSWORD.get_or_init(|| {
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "sshd is not installed: run scripts/test.sh, which installs the test servers"
        );
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the SFTP tests create a system user and need root (CI runs as root)"
        );
        if !Command::new("id")
            .arg(USER)
            .output()
            .unwrap()
            .status
            .success()
        {
            run(Command::new("useradd").args([
                "--system",
                "--home-dir",
                "/",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ]));
        }
        let pw = machine_password();
        let mut child = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            format!("{USER}:{pw}\n").as_bytes(),
        )
        .unwrap();
        assert!(child.wait().unwrap().success());
        std::fs::create_dir_all("/run/sshd").unwrap();
        pw
    })
}

fn keygen(path: &Path, kind: &str) {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "dirsync-test", "-f"])
        .arg(path));
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with(false)
    }

    /// With `rsa`, also an RSA host key (`host_rsa`) and an RSA client key (`client_rsa`).
    pub fn start_with(rsa: bool) -> Sshd {
        password();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_ed25519"), "ed25519");
        keygen(&d.join("host_ecdsa"), "ecdsa");
        keygen(&d.join("client_key"), "ed25519");
        keygen(&d.join("other_key"), "ed25519");
        let mut authorized = std::fs::read_to_string(d.join("client_key.pub")).unwrap();
        if rsa {
            keygen(&d.join("host_rsa"), "rsa");
            keygen(&d.join("client_rsa"), "rsa");
            authorized += &std::fs::read_to_string(d.join("client_rsa.pub")).unwrap();
        }
        std::fs::write(d.join("authorized_keys"), authorized).unwrap();
        let upload = d.join("upload");
        std::fs::create_dir(&upload).unwrap();
        run(Command::new("chown").arg(USER).arg(&upload));
        let mut sshd = Sshd {
            dir,
            port: free_port(),
            child: None,
        };
        sshd.write_config();
        sshd.restart();
        sshd
    }

    fn write_config(&self) {
        let d = self.dir.path().display();
        std::fs::write(
            self.dir.path().join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nHostKey {d}/host_ecdsa\n{rsa}\
                 PidFile {d}/sshd.pid\nUsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nAuthorizedKeysFile {d}/authorized_keys\nStrictModes no\n\
                 AllowUsers {USER}\nPermitRootLogin no\nSubsystem sftp internal-sftp\nForceCommand internal-sftp\nLogLevel VERBOSE\n",
                port = self.port,
                rsa = if self.dir.path().join("host_rsa").exists() {
                    format!("HostKey {d}/host_rsa\n")
                } else {
                    String::new()
                },
            ),
        )
        .unwrap();
    }

    /// Starts (again) on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("sshd.log"))
            .unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(self.dir.path().join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    pub fn upload_dir(&self) -> PathBuf {
        self.dir.path().join("upload")
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A known_hosts line for this server with the given host key (`host_ed25519`, …).
    pub fn known_hosts_line(&self, host_key: &str) -> String {
        let public =
            std::fs::read_to_string(self.dir.path().join(format!("{host_key}.pub"))).unwrap();
        let mut parts = public.split_whitespace();
        format!(
            "[127.0.0.1]:{} {} {}\n",
            self.port,
            parts.next().unwrap(),
            parts.next().unwrap()
        )
    }

    /// `SHA256:…` of a host key, as ssh-keygen prints it.
    pub fn fingerprint(&self, host_key: &str) -> String {
        let out = run(Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(self.dir.path().join(format!("{host_key}.pub"))));
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
