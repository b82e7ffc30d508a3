//! A real OpenLDAP slapd on 127.0.0.1 with an AD-like schema and Active Directory's limits
//! (unpaged searches stop at 1000 entries, pages above 1000 are refused), LDAPS with a
//! per-run certificate, started per test and stopped by PID.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::pki::ServerCert;

const SCHEMA: &str = include_str!("../data/slapd/ad.schema");

pub const SUFFIX: &str = "DC=example,DC=com";
pub const READER_DN: &str = "CN=dirsync-reader,DC=example,DC=com";
pub const READER_PASSWORD: &str = "Reader-Pa55word!";

pub struct Slapd {
    pub dir: tempfile::TempDir,
    pub ldaps_port: u16,
    pub ldap_port: u16,
    child: Option<Child>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn require(binary: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin"] {
        let p = Path::new(dir).join(binary);
        if p.exists() {
            return p;
        }
    }
    panic!("{binary} is not installed: run scripts/test.sh, which installs the test servers");
}

impl Slapd {
    /// Loads `data` (LDIF below `OU=AADDC Users,DC=example,DC=com`) and starts slapd with
    /// `cert`. `limits` replaces AD's default size limits when given.
    pub fn start(data: &str, cert: &ServerCert, limits: Option<&str>) -> Slapd {
        Slapd::start_forest(SUFFIX, data, cert, limits)
    }

    /// A directory under another suffix (a second forest); its reader is
    /// `CN=dirsync-reader,<suffix>` with the same password.
    pub fn start_forest(
        suffix: &str,
        data: &str,
        cert: &ServerCert,
        limits: Option<&str>,
    ) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();
        std::fs::write(d.join("ad.schema"), SCHEMA).unwrap();
        let limits =
            limits.unwrap_or("size.soft=1000 size.hard=1000 size.pr=1000 size.prtotal=unlimited");
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\ninclude {d}/ad.schema\n\
             pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n\
             TLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n\
             sizelimit {limits}\n\
             database mdb\nmaxsize 4294967296\nsuffix \"{suffix}\"\nrootdn \"CN=admin,{suffix}\"\nrootpw not-used-by-tests\n\
             directory {d}/db\ndbnosync\n\
             access to attrs=userPassword by anonymous auth by * none\naccess to * by users read by * none\n",
            d = d.display(),
            cert = cert.cert.display(),
            key = cert.key.display(),
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        let head = format!(
            "dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\ndc: {dc}\no: {dc}\n\n\
             dn: OU=AADDC Users,{suffix}\nobjectClass: organizationalUnit\nou: AADDC Users\n\n\
             dn: CN=dirsync-reader,{suffix}\nobjectClass: person\ncn: dirsync-reader\nsn: reader\nuserPassword: {READER_PASSWORD}\n\n",
            dc = suffix
                .split(',')
                .next()
                .and_then(|r| r.split_once('='))
                .map_or("example", |(_, v)| v),
        );
        std::fs::write(d.join("data.ldif"), head + data).unwrap();
        let out = Command::new(require("slapadd"))
            .args(["-q", "-f"])
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("data.ldif"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut slapd = Slapd {
            dir,
            ldaps_port: free_port(),
            ldap_port: free_port(),
            child: None,
        };
        slapd.run();
        slapd
    }

    fn run(&mut self) {
        let d = self.dir.path();
        let log = std::fs::File::create(d.join("slapd.log")).unwrap();
        let child = Command::new(require("slapd"))
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldaps://127.0.0.1:{}/ ldap://127.0.0.1:{}/",
                self.ldaps_port, self.ldap_port
            ))
            .args(["-d", "stats"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.ldaps_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "slapd did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// How many bind requests the server received (slapd logs a request as
    /// `BIND dn="…" method=128`, and a successful one again with `mech=`).
    pub fn binds(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains(" BIND dn=") && l.contains(" method="))
            .count()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
