//! Throwaway test PKI: a CA and server certificates, good and bad ones.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};

pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and key written to PEM files.
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: Vec<u8>,
}

pub enum Validity {
    Current,
    Expired,
    /// Valid now, ending in this many days.
    EndsInDays(u64),
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    pub fn write_pem(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.issuer.pem()).unwrap();
        path.to_owned()
    }

    /// A server certificate for `names` (DNS names; "127.0.0.1" becomes an IP SAN).
    pub fn server(&self, dir: &Path, stem: &str, names: &[&str], validity: Validity) -> ServerCert {
        let (params, key) = server_params(names, validity);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        write_pair(dir, stem, cert.pem(), &key, cert.der().to_vec())
    }
}

fn server_params(names: &[&str], validity: Validity) -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    for n in names {
        params.subject_alt_names.push(match n.parse::<Ipv4Addr>() {
            Ok(ip) => SanType::IpAddress(IpAddr::V4(ip)),
            Err(_) => SanType::DnsName((*n).try_into().unwrap()),
        });
    }
    params.is_ca = IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    match validity {
        Validity::Expired => {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        Validity::EndsInDays(days) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let end = now + days * 86_400;
            let date = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(end),
            )
            .to_string();
            let (y, m, d) = (
                date[0..4].parse().unwrap(),
                date[5..7].parse().unwrap(),
                date[8..10].parse().unwrap(),
            );
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(y, m, d);
        }
        Validity::Current => {}
    }
    (params, KeyPair::generate().unwrap())
}

/// A self-signed leaf, as Entra Domain Services admins often make.
pub fn self_signed(dir: &Path, stem: &str, names: &[&str]) -> ServerCert {
    let (params, key) = server_params(names, Validity::Current);
    let cert = params.self_signed(&key).unwrap();
    write_pair(dir, stem, cert.pem(), &key, cert.der().to_vec())
}

fn write_pair(dir: &Path, stem: &str, pem: String, key: &KeyPair, der: Vec<u8>) -> ServerCert {
    let cert = dir.join(format!("{stem}.crt"));
    let key_path = dir.join(format!("{stem}.key"));
    std::fs::write(&cert, pem).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    ServerCert {
        cert,
        key: key_path,
        der,
    }
}
