//! TLS trust for LDAPS, the same on Windows as on Linux.
//!
//! - A pin (`tls_fingerprint_sha256`): the server certificate must be the pinned one, valid
//!   for the host name (webpki) and inside its validity period. Nothing in any trust store can
//!   make a pinned connection fail or pass.
//! - `ca_file`: the chain is verified by rustls/webpki against those certificates (a
//!   self-signed server certificate works there too), never through the operating system's
//!   chain engine; the OS store is asked only as an additional source of trust.
//! - Neither: the operating system's trust store (rustls-platform-verifier; on Windows the
//!   machine store, where admins import the Entra DS certificate).
//!
//! The certificate the server presented is kept, so a failure — and `dirsync check` — can show
//! what it was and how to trust it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context as _};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::Digest as _;

/// The certificate the server presented in the last handshake.
pub type Presented = Arc<Mutex<Option<CertificateDer<'static>>>>;

/// Builds the client config: TLS 1.2+, ring, and the trust described above.
pub fn client_config(
    ca_file: Option<&Path>,
    pin: Option<&[u8]>,
) -> anyhow::Result<(Arc<rustls::ClientConfig>, Presented)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match ca_file {
        Some(path) => {
            let mut store = rustls::RootCertStore::empty();
            for cert in read_pem_certs(path)? {
                store.add(cert).map_err(|e| {
                    anyhow!(
                        "source.ca_file {}: a certificate cannot be used as a trust anchor: {e}",
                        path.display()
                    )
                })?;
            }
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .context("TLS setup with source.ca_file")?,
            )
        }
        None => None,
    };
    // The OS store: the only trust without ca_file and pin, an additional source beside
    // ca_file. Where it cannot be loaded (Wine, a broken store) ca_file and pins still work.
    let os = if pin.is_some() {
        None
    } else {
        match rustls_platform_verifier::Verifier::new(provider.clone()) {
            Ok(v) => Some(Arc::new(v) as Arc<dyn ServerCertVerifier>),
            Err(e) if roots.is_some() => {
                tracing::debug!(
                    "the system's trust store is not available ({e}); using source.ca_file only"
                );
                None
            }
            Err(e) => {
                return Err(anyhow!(
                    "cannot load the system's trust store: {e}; give the server's CA (or its \
                     self-signed certificate) as PEM in source.ca_file, or pin it with \
                     source.tls_fingerprint_sha256"
                ))
            }
        }
    };
    let presented: Presented = Arc::default();
    let verifier = Arc::new(TrustCheck {
        roots: roots.map(|r| r as Arc<dyn ServerCertVerifier>),
        os,
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
    /// webpki over the certificates of `ca_file`.
    roots: Option<Arc<dyn ServerCertVerifier>>,
    /// The operating system's store.
    os: Option<Arc<dyn ServerCertVerifier>>,
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
        if let Some(pin) = &self.pin {
            // The pinned certificate needs no issuer, but the right name and dates.
            if sha256(end_entity).as_slice() != pin.as_slice() {
                return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    rustls::OtherError(Arc::new(PinMismatch)),
                )));
            }
            check_name_and_dates(end_entity, server_name, now)?;
            return Ok(ServerCertVerified::assertion());
        }
        let mut first_error = None;
        for verifier in self.roots.iter().chain(&self.os) {
            match verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                Ok(ok) => return Ok(ok),
                // Not known to this source of trust: the next may know it.
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature,
                )) if first_error.is_none() => {
                    first_error = Some(rustls::Error::InvalidCertificate(
                        CertificateError::UnknownIssuer,
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_error.unwrap_or(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        )))
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

/// For a pinned certificate: the name by webpki, the dates by x509-parser.
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
    let end_entity = rustls::server::ParsedCertificate::try_from(cert)?;
    rustls::client::verify_server_name(&end_entity, server_name)
}

fn webpki_cert<'a>(
    cert: &'a CertificateDer<'_>,
) -> Result<x509_parser::certificate::X509Certificate<'a>, rustls::Error> {
    x509_parser::parse_x509_certificate(cert.as_ref())
        .map(|(_, c)| c)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))
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

    /// A pinned Entra DS-style wildcard certificate: webpki's name rules (one label for `*`),
    /// dates checked.
    #[test]
    fn a_pinned_certificate_is_checked_for_name_and_dates() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["*.aaddscontoso.com".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = CertificateDer::from(cert.der().to_vec());
        let now = UnixTime::now();
        let name = |n: &str| ServerName::try_from(n.to_string()).unwrap();
        assert!(check_name_and_dates(&der, &name("ldaps.aaddscontoso.com"), now).is_ok());
        assert!(check_name_and_dates(&der, &name("LDAPS.AADDSContoso.com"), now).is_ok());
        for wrong in [
            "a.b.aaddscontoso.com",
            "aaddscontoso.com",
            "ldaps.example.com",
        ] {
            assert!(
                check_name_and_dates(&der, &name(wrong), now).is_err(),
                "{wrong}"
            );
        }
        // rcgen's default validity ends in 4096.
        let far = UnixTime::since_unix_epoch(std::time::Duration::from_secs(70_000_000_000));
        assert_eq!(
            check_name_and_dates(&der, &name("ldaps.aaddscontoso.com"), far),
            Err(rustls::Error::InvalidCertificate(CertificateError::Expired))
        );
    }

    #[test]
    fn fingerprints_print_as_colon_hex() {
        assert_eq!(colon_hex(&[0xab, 0x01, 0xff]), "AB:01:FF");
    }
}
