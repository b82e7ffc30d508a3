//! A local Microsoft Graph and identity-platform stand-in over HTTPS, shaped as Microsoft
//! documents them, checking what they check: the token endpoint verifies the client
//! assertion's signature against the registered certificate (or the secret), its audience,
//! issuer, subject, lifetime and `jti`; Graph checks the bearer token on every request,
//! honours `$select` and `$top` (1–999), pages with absolute `@odata.nextLink`s, and answers
//! `$count` only with `ConsistencyLevel: eventual`. Faults are injected on request.
//!
//! A second listener ("foreign") stands for another host: it only counts what reaches it.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

use crate::pki::Ca;

/// The objects of a tenant, as Graph returns them (every property; `$select` picks).
#[derive(Default, Clone)]
pub struct Tenant {
    pub users: Vec<Value>,
    pub groups: Vec<Value>,
    pub contacts: Vec<Value>,
    /// Group id → (member id, `@odata.type`).
    pub members: HashMap<String, Vec<(String, &'static str)>>,
}

/// What the app registration has.
#[derive(Clone)]
pub enum AppCredential {
    /// The certificate's public key (PKCS#1 DER) and `x5t#S256`.
    Certificate {
        public: Vec<u8>,
        x5t_s256: String,
    },
    Secret {
        value: String,
        expired: bool,
    },
}

/// Faults, each on the listing of `/users` at page `n` (0-based).
#[derive(Default, Clone)]
pub struct Faults {
    /// 429 with `Retry-After: 1`, this many times at this page.
    pub throttle: Option<(usize, u32)>,
    /// This status (with a Graph error body) at this page, every time.
    pub status: Option<(usize, u16)>,
    /// A 200 whose JSON is cut in half.
    pub truncated_json: Option<usize>,
    /// A 200 whose body breaks off (the connection is dropped mid-body).
    pub broken_body: Option<usize>,
    /// A next link to the foreign listener instead of the next page.
    pub foreign_next: Option<usize>,
    /// Tokens are valid for this many Graph requests, then 401 (as an expired token).
    pub token_requests: Option<u32>,
    /// Every token is refused (401).
    pub refuse_tokens: bool,
    /// 403 (Authorization_RequestDenied) for this collection.
    pub forbidden: Option<&'static str>,
}

#[derive(Default)]
pub struct Seen {
    /// Token requests answered 200.
    pub tokens_issued: u32,
    /// Every Graph request: path and query.
    pub requests: Vec<String>,
    /// Requests that reached the foreign listener, and whether they carried a token.
    pub foreign_requests: u32,
    pub foreign_authorization: bool,
    pub jtis: HashSet<String>,
}

struct State {
    tenant: Tenant,
    tenant_id: String,
    client_id: String,
    credential: AppCredential,
    faults: Faults,
    base: String,
    foreign: String,
    /// Token → Graph requests it has made.
    tokens: HashMap<String, u32>,
    served: HashMap<usize, u32>,
    seen: Seen,
}

pub struct StandIn {
    pub url: String,
    pub foreign_url: String,
    pub ca_file: std::path::PathBuf,
    state: Arc<Mutex<State>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl StandIn {
    pub fn start(
        dir: &std::path::Path,
        tenant_id: &str,
        client_id: &str,
        credential: AppCredential,
        tenant: Tenant,
        faults: Faults,
    ) -> StandIn {
        let ca = Ca::new("Graph stand-in CA");
        let ca_file = ca.write_pem(&dir.join("graph-ca.pem"));
        let cert = ca.server(dir, "graph", &["127.0.0.1"], crate::pki::Validity::Current);
        let tls = tls_config(&cert.cert, &cert.key);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let main = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let foreign = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", main.local_addr().unwrap());
        let foreign_url = format!("https://{}", foreign.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            tenant,
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            credential,
            faults,
            base: url.clone(),
            foreign: foreign_url.clone(),
            tokens: HashMap::new(),
            served: HashMap::new(),
            seen: Seen::default(),
        }));
        for (listener, is_foreign) in [(main, false), (foreign, true)] {
            listener.set_nonblocking(true).unwrap();
            let (state, tls) = (state.clone(), tls.clone());
            runtime.spawn(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                loop {
                    let Ok((socket, peer)) = listener.accept().await else {
                        continue;
                    };
                    let (state, acceptor) = (state.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        if is_foreign {
                            state.lock().unwrap().seen.foreign_requests += 1;
                        }
                        let Ok(stream) = acceptor.accept(socket).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(move |req| {
                            handle(req, state.clone(), is_foreign, peer)
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        }
        StandIn {
            url,
            foreign_url,
            ca_file,
            state,
            runtime: Some(runtime),
        }
    }

    /// What the stand-in saw so far.
    pub fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.state.lock().unwrap().seen)
    }

    pub fn set_faults(&self, faults: Faults) {
        let mut s = self.state.lock().unwrap();
        s.faults = faults;
        s.served.clear();
    }
}

fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> Arc<rustls::ServerConfig> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &std::fs::read(cert).unwrap()[..])
        .map(Result::unwrap)
        .collect();
    let key = rustls_pemfile::private_key(&mut &std::fs::read(key).unwrap()[..])
        .unwrap()
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

type Answer = Response<http_body_util::combinators::BoxBody<Bytes, std::io::Error>>;

fn answer(status: u16, content_type: &str, body: String) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed())
        .unwrap()
}

fn json_answer(status: u16, body: Value) -> Answer {
    answer(status, "application/json", body.to_string())
}

fn graph_error(status: u16, code: &str, message: &str) -> Answer {
    json_answer(
        status,
        json!({"error": {"code": code, "message": message,
            "innerError": {"request-id": "00000000-0000-0000-0000-000000000000"}}}),
    )
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: Arc<Mutex<State>>,
    is_foreign: bool,
    _peer: SocketAddr,
) -> Result<Answer, Infallible> {
    if is_foreign {
        let mut s = state.lock().unwrap();
        s.seen.foreign_authorization |= req.headers().contains_key("authorization");
        return Ok(json_answer(200, json!({"value": []})));
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let headers = req.headers().clone();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let mut s = state.lock().unwrap();
    if method == hyper::Method::POST && path.ends_with("/oauth2/v2.0/token") {
        return Ok(s.token(&path, &body));
    }
    if method != hyper::Method::GET {
        return Ok(graph_error(405, "Request_BadRequest", "method not allowed"));
    }
    s.seen.requests.push(format!("{path}?{query}"));
    if let Some(refused) = s.check_token(&headers) {
        return Ok(refused);
    }
    Ok(s.graph(&path, &query, &headers))
}

fn aadsts(status: u16, error: &str, code: u64, text: &str) -> Answer {
    json_answer(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 1111\r\nCorrelation ID: 2222\r\nTimestamp: 2026-12-01 00:00:00Z"),
            "error_codes": [code],
            "timestamp": "2026-12-01 00:00:00Z",
            "trace_id": "1111-trace",
            "correlation_id": "2222",
        }),
    )
}

#[derive(serde::Deserialize)]
struct AssertionClaims {
    sub: String,
    jti: String,
    exp: u64,
    nbf: u64,
}

impl State {
    fn token(&mut self, path: &str, body: &[u8]) -> Answer {
        let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let tenant = path.trim_start_matches('/').split('/').next().unwrap_or("");
        if tenant != self.tenant_id {
            return aadsts(
                400,
                "invalid_request",
                90002,
                &format!("Tenant '{tenant}' not found."),
            );
        }
        if form.get("grant_type").map(String::as_str) != Some("client_credentials")
            || form.get("scope") != Some(&format!("{}/.default", self.base))
        {
            return aadsts(
                400,
                "invalid_request",
                90014,
                "grant_type or scope is wrong.",
            );
        }
        if form.get("client_id") != Some(&self.client_id) {
            return aadsts(
                400,
                "unauthorized_client",
                700016,
                "Application was not found in the directory.",
            );
        }
        let token_url = format!("{}{path}", self.base);
        let credential = self.credential.clone();
        let verdict = match (
            &credential,
            form.get("client_assertion"),
            form.get("client_secret"),
        ) {
            (AppCredential::Certificate { public, x5t_s256 }, Some(assertion), None) => {
                self.verify_assertion(assertion, public, x5t_s256, &token_url, &form)
            }
            (AppCredential::Secret { value, expired }, None, Some(secret)) => {
                if secret != value {
                    Err(aadsts(
                        401,
                        "invalid_client",
                        7000215,
                        "Invalid client secret provided.",
                    ))
                } else if *expired {
                    Err(aadsts(
                        401,
                        "invalid_client",
                        7000222,
                        "The provided client secret keys are expired.",
                    ))
                } else {
                    Ok(())
                }
            }
            _ => Err(aadsts(
                401,
                "invalid_client",
                7000218,
                "The request body must contain client_assertion or client_secret.",
            )),
        };
        if let Err(refusal) = verdict {
            return refusal;
        }
        self.seen.tokens_issued += 1;
        let token = format!("eyJ0-token-{}-{}", self.seen.tokens_issued, rand_text());
        self.tokens.insert(token.clone(), 0);
        json_answer(
            200,
            json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
        )
    }

    #[allow(clippy::result_large_err)] // the refusal is the HTTP answer itself
    fn verify_assertion(
        &mut self,
        assertion: &str,
        public: &[u8],
        x5t_s256: &str,
        token_url: &str,
        form: &HashMap<String, String>,
    ) -> Result<(), Answer> {
        let bad = |why: &str| {
            aadsts(
                401,
                "invalid_client",
                700027,
                &format!("Client assertion failed signature validation. {why}"),
            )
        };
        if form.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return Err(bad("wrong client_assertion_type"));
        }
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| bad("not a JWT"))?;
        if header.x5t_s256.as_deref() != Some(x5t_s256) {
            return Err(bad("Key was not found (x5t#S256)."));
        }
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
            return Err(bad("alg"));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[token_url]);
        validation.set_issuer(&[&self.client_id]);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<AssertionClaims>(
            assertion,
            &DecodingKey::from_rsa_der(public),
            &validation,
        )
        .map_err(|e| bad(&e.to_string()))?
        .claims;
        if claims.sub != self.client_id || claims.exp.saturating_sub(claims.nbf) > 600 {
            return Err(bad("sub or lifetime"));
        }
        if !self.seen.jtis.insert(claims.jti) {
            return Err(aadsts(
                401,
                "invalid_client",
                7000235,
                "Client assertion contains a replayed jti.",
            ));
        }
        Ok(())
    }

    fn check_token(&mut self, headers: &hyper::HeaderMap) -> Option<Answer> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let limit = self.faults.token_requests;
        let refuse = self.faults.refuse_tokens;
        match self.tokens.get_mut(token) {
            Some(used) if !refuse && limit.is_none_or(|l| *used < l) => {
                *used += 1;
                None
            }
            Some(_) => Some(graph_error(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )),
            None => Some(graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            )),
        }
    }

    fn graph(&mut self, path: &str, query: &str, headers: &hyper::HeaderMap) -> Answer {
        let q: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["v1.0", collection, "$count"] => {
                if headers
                    .get("consistencylevel")
                    .and_then(|v| v.to_str().ok())
                    != Some("eventual")
                {
                    return graph_error(
                        400,
                        "Request_BadRequest",
                        "Count is not supported without ConsistencyLevel: eventual.",
                    );
                }
                match self.objects(collection) {
                    Some(objects) => answer(200, "text/plain", objects.len().to_string()),
                    None => graph_error(404, "Request_ResourceNotFound", "no such collection"),
                }
            }
            ["v1.0", "groups", id, "members"] => {
                let members: Vec<Value> = self
                    .tenant
                    .members
                    .get(*id)
                    .into_iter()
                    .flatten()
                    .map(|(m, t)| json!({"@odata.type": t, "id": m}))
                    .collect();
                self.page(&format!("groups/{id}/members"), &members, &q, usize::MAX)
            }
            ["v1.0", collection] => {
                if self.faults.forbidden == Some(*collection) {
                    return graph_error(
                        403,
                        "Authorization_RequestDenied",
                        "Insufficient privileges to complete the operation.",
                    );
                }
                let Some(objects) = self.objects(collection).cloned() else {
                    return graph_error(404, "Request_ResourceNotFound", "no such collection");
                };
                let fault_page = if *collection == "users" {
                    0
                } else {
                    usize::MAX
                };
                self.page(collection, &objects, &q, fault_page)
            }
            _ => graph_error(400, "BadRequest", "Resource not found for the segment."),
        }
    }

    fn objects(&self, collection: &str) -> Option<&Vec<Value>> {
        match collection {
            "users" => Some(&self.tenant.users),
            "groups" => Some(&self.tenant.groups),
            "contacts" => Some(&self.tenant.contacts),
            _ => None,
        }
    }

    /// One page: `$top` objects from `$skiptoken`, each with only the `$select`ed properties.
    /// `faulty` is 0 for the listing that faults apply to.
    fn page(
        &mut self,
        path: &str,
        objects: &[Value],
        q: &HashMap<String, String>,
        faulty: usize,
    ) -> Answer {
        let top: usize = match q.get("$top").map(|t| t.parse::<usize>()) {
            None => 100,
            Some(Ok(t)) if (1..=999).contains(&t) => t,
            _ => {
                return graph_error(
                    400,
                    "Request_UnsupportedQuery",
                    "Invalid page size specified.",
                )
            }
        };
        let select: Option<Vec<&str>> = q.get("$select").map(|s| s.split(',').collect());
        let skip: usize = q
            .get("$skiptoken")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let page_no = skip / top;
        if faulty == 0 {
            if let Some(answer) = self.fault(page_no) {
                return answer;
            }
        }
        let value: Vec<Value> = objects
            .iter()
            .skip(skip)
            .take(top)
            .map(|o| match &select {
                None => o.clone(),
                Some(props) => {
                    let mut out = serde_json::Map::new();
                    for (k, v) in o.as_object().unwrap() {
                        if k == "id"
                            || k.starts_with("@odata")
                            || props.iter().any(|p| p.eq_ignore_ascii_case(k))
                        {
                            out.insert(k.clone(), v.clone());
                        }
                    }
                    Value::Object(out)
                }
            })
            .collect();
        let mut body = json!({"@odata.context": format!("{}/v1.0/$metadata#{path}", self.base), "value": value});
        if skip + top < objects.len() {
            let host = if faulty == 0 && self.faults.foreign_next == Some(page_no) {
                self.foreign.clone()
            } else {
                self.base.clone()
            };
            let mut next = form_urlencoded::Serializer::new(String::new());
            for (k, v) in q {
                if k != "$skiptoken" {
                    next.append_pair(k, v);
                }
            }
            next.append_pair("$skiptoken", &(skip + top).to_string());
            body["@odata.nextLink"] = json!(format!("{host}/v1.0/{path}?{}", next.finish()));
        }
        if faulty == 0 && self.faults.truncated_json == Some(page_no) {
            let text = body.to_string();
            return answer(200, "application/json", text[..text.len() / 2].to_owned());
        }
        if faulty == 0 && self.faults.broken_body == Some(page_no) {
            let text = body.to_string();
            let half = Bytes::from(text[..text.len() / 2].to_owned());
            // The headers and half the body go out; then the connection drops.
            let stream = futures_util::stream::unfold(Some(half), |half| async move {
                match half {
                    Some(h) => Some((Ok(hyper::body::Frame::data(h)), None)),
                    None => {
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        Some((Err(std::io::Error::other("connection dropped")), None))
                    }
                }
            });
            return Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .header("content-length", text.len().to_string())
                .body(http_body_util::StreamBody::new(stream).boxed())
                .unwrap();
        }
        json_answer(200, body)
    }

    fn fault(&mut self, page_no: usize) -> Option<Answer> {
        let served = self.served.entry(page_no).or_insert(0);
        *served += 1;
        if let Some((at, times)) = self.faults.throttle {
            if at == page_no && *served <= times {
                let mut a = graph_error(429, "TooManyRequests", "Too many requests.");
                a.headers_mut().insert("retry-after", "1".parse().unwrap());
                return Some(a);
            }
        }
        if let Some((at, status)) = self.faults.status {
            if at == page_no {
                let a = graph_error(status, "generalException", "An error occurred.");
                return Some(a);
            }
        }
        None
    }
}

fn rand_text() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    format!("{:016x}", h.finish())
}

/// An RSA certificate for the app registration, made with the openssl tool (rcgen on ring
/// cannot make RSA keys): PEM files, and their `AppCredential`.
pub fn app_certificate(
    dir: &std::path::Path,
    stem: &str,
) -> (std::path::PathBuf, std::path::PathBuf, AppCredential) {
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
        ])
        .arg(format!("/CN={stem}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl tool (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read(&cert).unwrap();
    let der = rustls_pemfile::certs(&mut &pem[..])
        .next()
        .unwrap()
        .unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
    let public = parsed
        .tbs_certificate
        .subject_pki
        .subject_public_key
        .data
        .to_vec();
    use base64::Engine as _;
    use sha2::Digest as _;
    let x5t_s256 =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der));
    (cert, key, AppCredential::Certificate { public, x5t_s256 })
}
