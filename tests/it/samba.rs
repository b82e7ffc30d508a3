//! A real Active Directory: Samba AD DC, provisioned per run into a temporary folder, on
//! 127.0.0.1 (its LDAP ports are fixed: 389 and 636), stopped by PID. Slow to load, so the
//! data set is small.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::pki::ServerCert;

pub const BASE: &str = "DC=example,DC=test";
pub const BIND_UPN: &str = "svc-dirsync@example.test";
pub const BIND_PASSWORD: &str = "Svc-Pa55word!2026";

pub struct Samba {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Samba {
    /// Provisions a domain EXAMPLE.TEST with `cert`, adds the bind account and `data` (LDIF),
    /// and starts the DC.
    pub fn start(cert: &ServerCert, ca: &Path, data: &str) -> Samba {
        assert!(
            Path::new("/usr/sbin/samba").exists(),
            "samba is not installed: run scripts/test.sh, which installs the test servers"
        );
        assert!(
            TcpStream::connect(("127.0.0.1", 636)).is_err(),
            "port 636 is in use: another LDAP server runs here"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        run(Command::new("samba-tool")
            .args([
                "domain",
                "provision",
                "--realm=EXAMPLE.TEST",
                "--domain=EXAMPLE",
                "--server-role=dc",
                "--dns-backend=NONE",
            ])
            .args([
                "--host-name=dc1",
                "--host-ip=127.0.0.1",
                "--adminpass=Admin-Pa55word!2026",
            ])
            .arg(format!("--targetdir={}", d.display()))
            .args([
                "--option=server services=ldap",
                "--option=interfaces=127.0.0.1",
                "--option=bind interfaces only=yes",
                "--option=ldb:nosync=true",
            ])
            .arg(format!("--option=tls keyfile={}", cert.key.display()))
            .arg(format!("--option=tls certfile={}", cert.cert.display()))
            .arg(format!("--option=tls cafile={}", ca.display())));
        let sam = d.join("private/sam.ldb");
        run(Command::new("samba-tool")
            .args(["user", "create", "svc-dirsync", BIND_PASSWORD, "-H"])
            .arg(&sam));
        std::fs::write(d.join("data.ldif"), data).unwrap();
        run(Command::new("ldbadd")
            .arg("-H")
            .arg(&sam)
            .arg(d.join("data.ldif")));
        let log = std::fs::File::create(d.join("samba.log")).unwrap();
        let child = Command::new("/usr/sbin/samba")
            .args(["-i", "-M", "single", "-s"])
            .arg(d.join("etc/smb.conf"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let samba = Samba {
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", 636)).is_err() {
            assert!(
                Instant::now() < deadline,
                "samba did not start: {}",
                std::fs::read_to_string(samba.dir.path().join("samba.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        samba
    }

    /// An attribute as Samba's own tools print it (objectGUID in text form).
    pub fn ldb_attribute(&self, filter: &str, attribute: &str) -> String {
        let out = run(Command::new("ldbsearch")
            .arg("-H")
            .arg(self.dir.path().join("private/sam.ldb"))
            .arg(filter)
            .arg(attribute));
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{attribute}: ")))
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
