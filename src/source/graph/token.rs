//! App-only sign-in to Microsoft's identity platform: the OAuth 2.0 client credentials grant,
//! with a certificate (a signed client assertion) or a client secret.
//!
//! One token per run, shared by the threads that read; it is renewed when it is about to
//! expire, or once when Graph answers 401. The token and the secrets are [`Secret`]s: they
//! never reach a log line or an error message.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::config::{CredentialConfig, GraphConfig};
use crate::secret::Secret;

/// The credential, loaded and checked.
pub enum Credential {
    Certificate {
        key: EncodingKey,
        algorithm: Algorithm,
        /// base64url of the certificate's SHA-256 (the `x5t#S256` header).
        x5t_s256: String,
        /// For messages: subject, SHA-1 thumbprint as the Entra portal shows it, expiry.
        description: String,
    },
    Secret {
        secret: Secret,
        description: String,
    },
}

impl Credential {
    pub fn load(config: &GraphConfig) -> anyhow::Result<Credential> {
        match &config.credential {
            CredentialConfig::Pem {
                certificate_file,
                key_file,
            } => {
                let cert = std::fs::read(certificate_file).with_context(|| {
                    format!(
                        "cannot read source.certificate_file {}",
                        certificate_file.display()
                    )
                })?;
                let der = first_certificate(&cert).with_context(|| {
                    format!("source.certificate_file {}", certificate_file.display())
                })?;
                let key = std::fs::read(key_file).with_context(|| {
                    format!("cannot read source.key_file {}", key_file.display())
                })?;
                let key = EncodingKey::from_rsa_pem(&key).map_err(|_| {
                    anyhow!(
                        "source.key_file {}: not an unencrypted RSA private key in PEM \
                         (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY); Microsoft's identity \
                         platform takes RSA keys only",
                        key_file.display()
                    )
                })?;
                certificate(key, &der, config, key_file)
            }
            CredentialConfig::Pfx { pfx_file, password } => from_pfx(pfx_file, password, config),
            CredentialConfig::Secret(source) => Ok(Credential::Secret {
                secret: source
                    .read()
                    .map_err(|e| anyhow!("source.client_secret: {e}"))?,
                description: format!("client secret from {}", source.describe()),
            }),
        }
    }

    pub fn describe(&self) -> &str {
        match self {
            Credential::Certificate { description, .. }
            | Credential::Secret { description, .. } => description,
        }
    }
}

/// The certificate and key of a .pfx (PKCS#12), opened with its password.
fn from_pfx(
    pfx_file: &Path,
    password: &crate::secret::SecretSource,
    config: &GraphConfig,
) -> anyhow::Result<Credential> {
    let data = std::fs::read(pfx_file)
        .with_context(|| format!("cannot read source.pfx_file {}", pfx_file.display()))?;
    let password = password
        .read()
        .map_err(|e| anyhow!("source.pfx_password: {e}"))?;
    let store = p12_keystore::KeyStore::from_pkcs12(
        &data,
        password.expose(),
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|e| {
        anyhow!(
            "source.pfx_file {}: cannot open it ({e}); check the password \
                 (source.pfx_password_*) and that the file holds the private key",
            pfx_file.display()
        )
    })?;
    let (_, chain) = store.private_key_chain().ok_or_else(|| {
        anyhow!(
            "source.pfx_file {} holds no private key with its certificate; export \
                 the certificate *with* its private key",
            pfx_file.display()
        )
    })?;
    let cert = chain.certs().first().ok_or_else(|| {
        anyhow!(
            "source.pfx_file {} holds no certificate",
            pfx_file.display()
        )
    })?;
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(chain.key().as_der())
    );
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| {
        anyhow!(
            "source.pfx_file {}: the private key is not an RSA key; Microsoft's \
                 identity platform takes RSA keys only",
            pfx_file.display()
        )
    })?;
    certificate(key, cert.as_der(), config, pfx_file)
}

fn first_certificate(pem: &[u8]) -> anyhow::Result<Vec<u8>> {
    match rustls_pemfile::certs(&mut &pem[..]).next() {
        Some(item) => Ok(item.context("not a PEM certificate")?.to_vec()),
        None => bail!("no certificate (BEGIN CERTIFICATE) in it"),
    }
}

/// Checks the key against the certificate (a signature made with the key must verify with
/// the certificate's public key), and the certificate's dates.
fn certificate(
    key: EncodingKey,
    der: &[u8],
    config: &GraphConfig,
    key_path: &Path,
) -> anyhow::Result<Credential> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| anyhow!("the certificate cannot be parsed: {e}"))?;
    let public =
        DecodingKey::from_rsa_der(&cert.tbs_certificate.subject_pki.subject_public_key.data);
    let probe = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &Probe { probe: 1 }, &key)
        .context("cannot sign with the private key")?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    if jsonwebtoken::decode::<Probe>(&probe, &public, &validation).is_err() {
        bail!(
            "the private key in {} does not belong to the certificate (its public key differs); \
             use the key the certificate was made with",
            key_path.display()
        );
    }
    let not_after = cert.validity().not_after.timestamp();
    let now = unix_now();
    let thumbprint = hex::encode_upper(sha1_digest(der));
    if not_after < now as i64 {
        bail!(
            "the certificate (thumbprint {thumbprint}) expired on {}; make a new one and upload \
             it to the app registration (Certificates & secrets)",
            cert.validity().not_after
        );
    }
    let sha256 = crate::source::tls::sha256(der);
    Ok(Credential::Certificate {
        key,
        algorithm: config.algorithm,
        x5t_s256: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256),
        description: format!(
            "certificate {} (thumbprint {thumbprint}, valid until {})",
            cert.subject(),
            cert.validity().not_after
        ),
    })
}

fn sha1_digest(der: &[u8]) -> Vec<u8> {
    use sha1::Digest as _;
    sha1::Sha1::digest(der).to_vec()
}

#[derive(Serialize, Deserialize)]
struct Probe {
    probe: u8,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The claims of a client assertion, as Microsoft's identity platform documents them.
#[derive(Serialize)]
struct Assertion<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

/// A unique `jti`: 128 random bits, in UUID form.
fn jti() -> anyhow::Result<String> {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| anyhow!("the system has no random numbers for the client assertion"))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// An access token and when to stop using it.
#[derive(Clone)]
pub struct Token {
    pub value: std::sync::Arc<Secret>,
    /// Renew after this (five minutes before the token expires).
    renew_at: Instant,
    pub expires_in: Duration,
    /// Which token of the run this is (1, 2, …).
    pub serial: u32,
}

/// The one token of a run, renewed when needed.
pub struct Tokens {
    credential: Credential,
    client_id: String,
    tenant_id: String,
    token_url: String,
    scope: String,
    current: Mutex<Option<Token>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize, Default)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
    #[serde(default)]
    trace_id: String,
}

impl Tokens {
    pub fn new(config: &GraphConfig, credential: Credential) -> Tokens {
        Tokens {
            credential,
            client_id: config.client_id.clone(),
            tenant_id: config.tenant_id.clone(),
            token_url: config.token_url(),
            scope: format!("{}/.default", config.graph_url),
            current: Mutex::new(None),
        }
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The token to use now: the current one, or a new one when it is due for renewal.
    pub fn get(&self, agent: &ureq::Agent) -> anyhow::Result<Token> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        match &*current {
            Some(t) if Instant::now() < t.renew_at => Ok(t.clone()),
            previous => {
                let serial = previous.as_ref().map_or(1, |t| t.serial + 1);
                let fresh = self.request(agent, serial)?;
                *current = Some(fresh.clone());
                Ok(fresh)
            }
        }
    }

    /// Graph refused `used` (401): a new token, unless another thread renewed it already.
    pub fn renew(&self, agent: &ureq::Agent, used: &Token) -> anyhow::Result<Token> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = &*current {
            if t.serial != used.serial {
                return Ok(t.clone());
            }
        }
        let fresh = self.request(agent, used.serial + 1)?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    fn request(&self, agent: &ureq::Agent, serial: u32) -> anyhow::Result<Token> {
        let assertion;
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", self.client_id.as_str()),
            ("scope", self.scope.as_str()),
            ("grant_type", "client_credentials"),
        ];
        match &self.credential {
            Credential::Certificate {
                key,
                algorithm,
                x5t_s256,
                ..
            } => {
                let mut header = Header::new(*algorithm);
                header.typ = Some("JWT".into());
                header.x5t_s256 = Some(x5t_s256.clone());
                let now = unix_now();
                let claims = Assertion {
                    aud: &self.token_url,
                    iss: &self.client_id,
                    sub: &self.client_id,
                    jti: jti()?,
                    nbf: now,
                    iat: now,
                    exp: now + 300,
                };
                assertion = Secret::new(
                    jsonwebtoken::encode(&header, &claims, key)
                        .context("cannot sign the client assertion")?,
                );
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
                form.push(("client_assertion", assertion.expose()));
            }
            Credential::Secret { secret, .. } => form.push(("client_secret", secret.expose())),
        }
        let started = Instant::now();
        let mut response = agent
            .post(&self.token_url)
            .send_form(form)
            .map_err(|e| anyhow!("cannot reach the sign-in endpoint {}: {e}", self.token_url))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(|e| anyhow!("the sign-in endpoint's answer broke off: {e}"))?;
        if status != 200 {
            let e: TokenError = serde_json::from_str(&body).unwrap_or_default();
            bail!("{}", self.describe_error(status, &e));
        }
        let t: TokenResponse = serde_json::from_str(&body)
            .map_err(|e| anyhow!("the sign-in endpoint answered 200 with no token in it ({e})"))?;
        let expires_in = Duration::from_secs(t.expires_in);
        tracing::debug!("token {serial} obtained, valid for {}s", t.expires_in);
        Ok(Token {
            value: std::sync::Arc::new(Secret::new(t.access_token)),
            renew_at: started + expires_in.saturating_sub(Duration::from_secs(300)),
            expires_in,
            serial,
        })
    }

    /// A sign-in error in words that name the fix. Microsoft's text follows (it holds no
    /// secret), first line only, with the trace id for a support case.
    fn describe_error(&self, status: u16, e: &TokenError) -> String {
        let code = e.error_codes.first().copied();
        let fix = match code {
            Some(700016) => format!(
                "the application {} is not known in tenant {}: check source.client_id (the \
                 app registration's Application (client) ID) and source.tenant_id",
                self.client_id, self.tenant_id
            ),
            Some(7000215) => "the client secret is wrong: use the secret's Value (shown once \
                 when it was created), not its Secret ID"
                .into(),
            Some(7000222) => "the client secret has expired: create a new one under the app \
                 registration's Certificates & secrets and store it where \
                 source.client_secret_* points"
                .into(),
            Some(700027) => format!(
                "the client assertion's signature was not accepted: upload this certificate \
                 ({}) to the app registration (Certificates & secrets > Certificates)",
                self.credential.describe()
            ),
            Some(90002) | Some(900023) => format!(
                "tenant {} was not found: set source.tenant_id to the Directory (tenant) ID \
                 or a verified domain of the tenant, and check source.cloud",
                self.tenant_id
            ),
            Some(700024) => "the client assertion is outside its valid time: check this \
                 machine's clock"
                .into(),
            Some(7000112) => "the application is disabled in the tenant: enable its \
                 enterprise application (Properties > Enabled for users to sign in)"
                .into(),
            Some(500011) => {
                "the Graph resource is not in this tenant's cloud: check source.cloud".into()
            }
            Some(53003) => "sign-in was blocked by a Conditional Access policy for workload \
                 identities: exclude this application or allow this machine's address"
                .into(),
            _ => format!("the sign-in endpoint refused the request (HTTP {status})"),
        };
        let microsoft = e.error_description.lines().next().unwrap_or("").trim();
        let mut text = format!("sign-in failed: {fix}");
        if !microsoft.is_empty() || !e.error.is_empty() {
            text.push_str(&format!(" [{}: {microsoft}]", e.error));
        }
        if !e.trace_id.is_empty() {
            text.push_str(&format!(" (trace id {})", e.trace_id));
        }
        text
    }
}
