//! OpenSSH `known_hosts` files: which host keys are recorded for a host.
//!
//! Plain (`host`, `[host]:port`, patterns with `*`, `?` and `!`) and hashed (`|1|salt|hash`)
//! entries are understood; `@revoked` keys are refused; `@cert-authority` lines are skipped
//! (host certificates are not supported).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Digest as _;

/// A host key recorded for a host: its algorithm name and key blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownKey {
    pub key_type: String,
    pub blob: Vec<u8>,
    pub line: usize,
}

#[derive(Debug, Default)]
pub struct Lookup {
    pub keys: Vec<KnownKey>,
    pub revoked: Vec<KnownKey>,
}

/// The keys recorded for `host` on `port` in the text of a known_hosts file.
pub fn lookup(text: &str, host: &str, port: u16) -> Lookup {
    let name = if port == 22 {
        host.to_ascii_lowercase()
    } else {
        format!("[{}]:{port}", host.to_ascii_lowercase())
    };
    let mut out = Lookup::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or("");
        let marker = first.starts_with('@').then(|| first.to_owned());
        if marker.is_some() {
            first = fields.next().unwrap_or("");
        }
        let (Some(key_type), Some(key)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !host_matches(first, &name) {
            continue;
        }
        let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(key) else {
            continue;
        };
        let known = KnownKey {
            key_type: key_type.to_owned(),
            blob,
            line: i + 1,
        };
        match marker.as_deref() {
            None => out.keys.push(known),
            Some("@revoked") => out.revoked.push(known),
            Some(_) => {}
        }
    }
    out
}

fn host_matches(patterns: &str, name: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        let Some((salt, hash)) = hashed.split_once('|') else {
            return false;
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
            return false;
        };
        mac.update(name.as_bytes());
        return mac.verify_slice(&hash).is_ok();
    }
    let mut matched = false;
    for pattern in patterns.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if crate::glob::matches(&pattern.to_ascii_lowercase(), name) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// `SHA256:<base64 without padding>`, as `ssh-keygen -lf` prints it.
pub fn fingerprint(blob: &[u8]) -> String {
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(blob))
    )
}

/// The host-key algorithms to offer for recorded key types (an RSA key is used with SHA-2).
pub fn algorithms(key_types: &[&str]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for t in key_types {
        let names: &[&str] = match *t {
            "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
            _ => std::slice::from_ref(t),
        };
        for n in names {
            if !out.contains(n) {
                out.push(n);
            }
        }
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIGk6m5X9PfsDLZFdLPJ1sI1Mj6p1FJ0Q1Hh1yR6Jd6kJ";

    #[test]
    fn plain_port_and_pattern_entries() {
        let text = format!(
            "# comment\nsftp.example.net {t} {KEY}\n[sftp.example.net]:2222 ecdsa-sha2-nistp256 {KEY}\n\
             *.retarus.test,!bad.retarus.test ssh-rsa {KEY} comment\n",
            t = "ssh-ed25519"
        );
        assert_eq!(
            lookup(&text, "SFTP.example.net", 22).keys[0].key_type,
            "ssh-ed25519"
        );
        assert_eq!(
            lookup(&text, "sftp.example.net", 2222).keys[0].key_type,
            "ecdsa-sha2-nistp256"
        );
        assert_eq!(lookup(&text, "a.retarus.test", 22).keys[0].line, 4);
        assert!(lookup(&text, "bad.retarus.test", 22).keys.is_empty());
        assert!(lookup(&text, "other.net", 22).keys.is_empty());
    }

    #[test]
    fn hashed_entries_match_their_host_only() {
        // ssh-keygen -H of "[127.0.0.1]:2222": HMAC-SHA1(salt, name).
        let salt = [7u8; 20];
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"[127.0.0.1]:2222");
        let b64 = base64::engine::general_purpose::STANDARD;
        let line = format!(
            "|1|{}|{} ssh-ed25519 {KEY}\n",
            b64.encode(salt),
            b64.encode(mac.finalize().into_bytes())
        );
        assert_eq!(lookup(&line, "127.0.0.1", 2222).keys.len(), 1);
        assert!(lookup(&line, "127.0.0.1", 22).keys.is_empty());
    }

    #[test]
    fn revoked_keys_are_listed_apart() {
        let text = format!("@revoked sftp.example.net ssh-ed25519 {KEY}\n");
        let l = lookup(&text, "sftp.example.net", 22);
        assert!(l.keys.is_empty());
        assert_eq!(l.revoked.len(), 1);
    }

    #[test]
    fn algorithms_for_rsa_include_sha2() {
        assert_eq!(
            algorithms(&["ssh-rsa", "ssh-ed25519"]),
            "rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-ed25519"
        );
    }
}
