//! TLS trust for LDAPS: the operating system's trust store (the Windows store on Windows),
//! extra PEM roots from `ca_file`, and an optional SHA-256 pin of the server certificate.
//!
//! The host name is always verified. A pinned certificate is accepted without a trusted
//! issuer (the usual self-signed Entra Domain Services certificate), but still only for the
//! right name and inside its validity period. The certificate the server presented is kept,
//! so a failure — and `dirsync check` — can show what it was and how to trust it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context as _};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::Digest as _;

/// The certificate the server presented in the last handshake.
pub type Presented = Arc<Mutex<Option<CertificateDer<'static>>>>;

/// Builds the client config: TLS 1.2+, ring, the platform verifier with extra roots, the pin.
pub fn client_config(
    ca_file: Option<&Path>,
    pin: Option<&[u8]>,
) -> anyhow::Result<(Arc<rustls::ClientConfig>, Presented)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let extra = match ca_file {
        Some(path) => read_pem_certs(path)?,
        None => Vec::new(),
    };
    let inner = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
        .context("cannot load the system's trust store")?;
    let presented: Presented = Arc::default();
    let verifier = Arc::new(TrustCheck {
        inner: Arc::new(inner),
        pin: pin.map(<[u8]>::to_vec),
        presented: presented.clone(),
        schemes: provider.signature_verification_algorithms,
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS setup")?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((Arc::new(config), presented))
}

/// Reads every certificate of a PEM file.
fn read_pem_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read source.ca_file {}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<_, _>>()
        .with_context(|| format!("source.ca_file {} is not valid PEM", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!(
            "source.ca_file {} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----; \
             convert a .cer with `openssl x509 -inform der -in cert.cer -out cert.pem`)",
            path.display()
        );
    }
    Ok(certs)
}

#[derive(Debug)]
struct TrustCheck {
    inner: Arc<dyn ServerCertVerifier>,
    pin: Option<Vec<u8>>,
    presented: Presented,
    schemes: rustls::crypto::WebPkiSupportedAlgorithms,
}

#[derive(Debug)]
struct PinMismatch;

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the certificate does not match source.tls_fingerprint_sha256")
    }
}

impl std::error::Error for PinMismatch {}

impl ServerCertVerifier for TrustCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut slot) = self.presented.lock() {
            *slot = Some(end_entity.clone().into_owned());
        }
        let pinned = match &self.pin {
            None => false,
            Some(pin) if sha256(end_entity).as_slice() == pin.as_slice() => true,
            Some(_) => {
                return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    rustls::OtherError(Arc::new(PinMismatch)),
                )))
            }
        };
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Ok(ok) => Ok(ok),
            // A pinned certificate needs no trusted issuer, but the right name and dates.
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) if pinned => {
                check_name_and_dates(end_entity, server_name, now)?;
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.schemes)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.schemes)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.supported_schemes()
    }
}

/// For a pinned certificate without a trusted issuer: webpki checks name and dates against
/// the certificate itself used as its own trust anchor.
fn check_name_and_dates(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let parsed = webpki_cert(cert)?;
    let seconds = now.as_secs() as i64;
    if seconds < parsed.validity().not_before.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
    }
    if seconds > parsed.validity().not_after.timestamp() {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    let names = subject_alt_names(&parsed);
    let matches = match server_name {
        ServerName::DnsName(dns) => {
            let host = dns.as_ref().to_ascii_lowercase();
            names.iter().any(|n| dns_matches(n, &host))
        }
        ServerName::IpAddress(ip) => {
            let ip: std::net::IpAddr = (*ip).into();
            names.iter().any(|n| *n == format!("IP:{ip}"))
        }
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        ))
    }
}

fn webpki_cert<'a>(
    cert: &'a CertificateDer<'_>,
) -> Result<x509_parser::certificate::X509Certificate<'a>, rustls::Error> {
    x509_parser::parse_x509_certificate(cert.as_ref())
        .map(|(_, c)| c)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))
}

fn dns_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

/// SANs as `name` (DNS) or `IP:addr`.
fn subject_alt_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(format!(
                    "IP:{}",
                    std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3])
                )),
                16 => <[u8; 16]>::try_from(*b)
                    .ok()
                    .map(|a| format!("IP:{}", std::net::Ipv6Addr::from(a))),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

pub fn sha256(der: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(der).to_vec()
}

/// `AB:CD:…`, as admins compare fingerprints.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What a certificate is, for the admin: subject, issuer, SANs, fingerprint, validity.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub sha256: String,
    pub not_before: String,
    pub not_after: String,
    /// Seconds from now until `notAfter` (negative: expired).
    pub expires_in: i64,
}

impl CertInfo {
    pub fn from_der(der: &[u8]) -> anyhow::Result<CertInfo> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| anyhow!("the server's certificate cannot be parsed: {e}"))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Ok(CertInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            sans: subject_alt_names(&cert),
            sha256: colon_hex(&sha256(der)),
            not_before: cert.validity().not_before.to_string(),
            not_after: cert.validity().not_after.to_string(),
            expires_in: cert.validity().not_after.timestamp() - now,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "subject: {}; issuer: {}; names: {}; valid {} to {}; SHA-256 fingerprint: {}",
            self.subject,
            self.issuer,
            if self.sans.is_empty() {
                "none (no subjectAltName: rustls requires one)".to_string()
            } else {
                self.sans.join(", ")
            },
            self.not_before,
            self.not_after,
            self.sha256
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_names_match_one_label() {
        assert!(dns_matches("*.aaddscontoso.com", "ldaps.aaddscontoso.com"));
        assert!(!dns_matches("*.aaddscontoso.com", "a.b.aaddscontoso.com"));
        assert!(!dns_matches("*.aaddscontoso.com", "aaddscontoso.com"));
        assert!(dns_matches("LDAPS.Example.com", "ldaps.example.com"));
    }

    #[test]
    fn fingerprints_print_as_colon_hex() {
        assert_eq!(colon_hex(&[0xab, 0x01, 0xff]), "AB:01:FF");
    }
}
