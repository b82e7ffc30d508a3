//! The SFTP upload with libssh2 (`ssh2`): host key pinned before authenticating, the file
//! written under a temporary name and renamed when complete, sizes verified.

use std::io::Write as _;

use std::path::{Path, PathBuf};

use ssh2::{ErrorCode, MethodType, Session, Sftp};

use super::config::{HostKeyCheck, SftpAuth, UploadConfig};
use super::known_hosts;

/// Write size: libssh2's SFTP is slow with small writes.
const CHUNK: usize = 256 * 1024;

/// Why an attempt failed, and whether another attempt may help.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub transient: bool,
}

fn transient(message: String) -> Failure {
    Failure {
        message,
        transient: true,
    }
}

fn fatal(message: String) -> Failure {
    Failure {
        message,
        transient: false,
    }
}

/// An authenticated SFTP connection.
pub struct Connection {
    _session: Session,
    pub sftp: Sftp,
    pub host_key: String,
}

fn ssh_err(what: &str, e: &ssh2::Error) -> String {
    format!("{what}: {}", e.message())
}

/// Connects, verifies the host key (before any credential is sent) and authenticates.
pub fn connect(config: &UploadConfig) -> Result<Connection, Failure> {
    let timeout = config.timeout;
    let target = format!("{}:{}", config.host, config.port);
    let tcp = crate::net::connect(&config.host, config.port, timeout, "upload.timeout_seconds")
        .map_err(|e| {
            transient(format!(
                "cannot connect to {target}: {e} (check upload.host/port and the firewall)"
            ))
        })?;
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));

    let mut session =
        Session::new().map_err(|e| fatal(ssh_err("cannot start an SSH session", &e)))?;
    session.set_tcp_stream(tcp);
    session.set_timeout(timeout.as_millis().min(u32::MAX as u128) as u32);

    // Known keys first: libssh2 must negotiate a key type that is recorded, or a correct
    // server would look like a mismatch.
    let known = known_keys(&session, config)?;
    session
        .handshake()
        .map_err(|e| transient(ssh_err(&format!("SSH handshake with {target} failed"), &e)))?;
    let (blob, _) = session
        .host_key()
        .ok_or_else(|| fatal("the server sent no host key".into()))?;
    let presented = known_hosts::fingerprint(blob);
    verify_host_key(config, known.as_ref(), blob, &presented, &target)?;
    authenticate(&session, config)?;
    let sftp = session
        .sftp()
        .map_err(|e| transient(ssh_err("cannot start the SFTP subsystem", &e)))?;
    Ok(Connection {
        _session: session,
        sftp,
        host_key: presented,
    })
}

/// With known_hosts: the keys recorded for this host (none is an error: dirsync never trusts
/// on first use), and libssh2 told to negotiate only their types.
fn known_keys(
    session: &Session,
    config: &UploadConfig,
) -> Result<Option<(PathBuf, known_hosts::Lookup)>, Failure> {
    Ok(match &config.host_key {
        HostKeyCheck::KnownHosts(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                fatal(format!(
                    "cannot read upload.known_hosts {}: {e}",
                    path.display()
                ))
            })?;
            let found = known_hosts::lookup(&text, &config.host, config.port);
            if found.keys.is_empty() {
                return Err(fatal(format!(
                    "{} has no host key for {} in {} (dirsync never trusts on first use): add \
                     the key Retarus gave you, e.g. `ssh-keyscan -p {} {} >> {}` after \
                     checking its fingerprint with Retarus",
                    path.display(),
                    entry_name(config),
                    path.display(),
                    config.port,
                    config.host,
                    path.display()
                )));
            }
            let types: Vec<&str> = found.keys.iter().map(|k| k.key_type.as_str()).collect();
            session
                .method_pref(MethodType::HostKey, &known_hosts::algorithms(&types))
                .map_err(|e| fatal(ssh_err("host key algorithms", &e)))?;
            Some((path.clone(), found))
        }
        HostKeyCheck::Sha256(_) => None,
    })
}

/// The presented host key is the pinned one, or one recorded (and not revoked) in known_hosts.
fn verify_host_key(
    config: &UploadConfig,
    known: Option<&(PathBuf, known_hosts::Lookup)>,
    blob: &[u8],
    presented: &str,
    target: &str,
) -> Result<(), Failure> {
    match (&config.host_key, known) {
        (HostKeyCheck::Sha256(pin), _) => {
            if pin != presented {
                return Err(fatal(host_key_mismatch(config, pin, presented)));
            }
        }
        (HostKeyCheck::KnownHosts(_), Some((path, found))) => {
            if found.revoked.iter().any(|k| k.blob == blob) {
                return Err(fatal(format!(
                    "the host key of {target} ({presented}) is marked @revoked in {}",
                    path.display()
                )));
            }
            if !found.keys.iter().any(|k| k.blob == blob) {
                let expected: Vec<String> = found
                    .keys
                    .iter()
                    .map(|k| {
                        format!(
                            "{} {} (line {})",
                            k.key_type,
                            known_hosts::fingerprint(&k.blob),
                            k.line
                        )
                    })
                    .collect();
                return Err(fatal(host_key_mismatch(
                    config,
                    &expected.join(", "),
                    presented,
                )));
            }
        }
        (HostKeyCheck::KnownHosts(_), None) => {
            return Err(fatal("known_hosts was not read".into()))
        }
    }
    Ok(())
}

fn entry_name(config: &UploadConfig) -> String {
    if config.port == 22 {
        config.host.clone()
    } else {
        format!("[{}]:{}", config.host, config.port)
    }
}

fn host_key_mismatch(config: &UploadConfig, expected: &str, presented: &str) -> String {
    format!(
        "HOST KEY MISMATCH for {}: expected {expected}, the server presented {presented}. \
         Nothing was sent. If Retarus changed its host key, confirm the new fingerprint with \
         Retarus before updating upload.known_hosts / host_key_sha256; otherwise something else \
         answers at this address",
        entry_name(config)
    )
}

fn authenticate(session: &Session, config: &UploadConfig) -> Result<(), Failure> {
    let result = match &config.auth {
        SftpAuth::Key {
            key_file,
            passphrase,
        } => {
            let passphrase = match passphrase {
                Some(source) => Some(
                    source
                        .read()
                        .map_err(|e| fatal(format!("cannot read the key passphrase: {e}")))?,
                ),
                None => None,
            };
            if !key_file.exists() {
                return Err(fatal(format!(
                    "upload.key_file {} does not exist",
                    key_file.display()
                )));
            }
            session.userauth_pubkey_file(
                &config.user,
                None,
                key_file,
                passphrase.as_ref().map(|p| p.expose()),
            )
        }
        SftpAuth::Password(source) => {
            let password = source
                .read()
                .map_err(|e| fatal(format!("cannot read the SFTP password: {e}")))?;
            session.userauth_password(&config.user, password.expose())
        }
    };
    match result {
        Ok(()) if session.authenticated() => Ok(()),
        Ok(()) => Err(fatal(format!(
            "the server did not accept the login of {}",
            config.user
        ))),
        Err(e) => {
            let how = match &config.auth {
                SftpAuth::Key { key_file, .. } => format!(
                    "key {} (is its public key registered with Retarus for this user? is the passphrase right?)",
                    key_file.display()
                ),
                SftpAuth::Password(source) => format!("the password from {}", source.describe()),
            };
            Err(fatal(format!(
                "SFTP login as {} with {how} was refused: {}",
                config.user,
                e.message()
            )))
        }
    }
}

fn sftp_err(what: &str, path: &Path, e: &ssh2::Error) -> Failure {
    let message = format!("{what} {}: {}", path.display(), e.message());
    // Permission and missing-folder errors do not heal by retrying.
    let permanent = matches!(
        e.code(),
        ErrorCode::SFTP(2) | ErrorCode::SFTP(3) | ErrorCode::SFTP(10)
    );
    Failure {
        message,
        transient: !permanent,
    }
}

/// Where the file goes: the temporary name (dot-prefixed, the same on every attempt so a
/// retry overwrites what a failed one left) and the final name.
pub fn remote_paths(remote_dir: &str, file_name: &str) -> (PathBuf, PathBuf) {
    let dir = Path::new(if remote_dir.is_empty() {
        "."
    } else {
        remote_dir
    });
    (
        dir.join(format!(".{file_name}.dirsync-upload")),
        dir.join(file_name),
    )
}

/// One upload attempt: write the temporary file, verify its size, move it to the final name.
pub fn put(
    conn: &Connection,
    config: &UploadConfig,
    file_name: &str,
    bytes: &[u8],
) -> Result<PathBuf, Failure> {
    let sftp = &conn.sftp;
    let (temp, target) = remote_paths(&config.remote_dir, file_name);
    {
        let mut file = sftp
            .create(&temp)
            .map_err(|e| sftp_err("cannot create", &temp, &e))?;
        for chunk in bytes.chunks(CHUNK) {
            file.write_all(chunk)
                .map_err(|e| transient(format!("writing {} failed: {e}", temp.display())))?;
        }
        file.flush()
            .map_err(|e| transient(format!("writing {} failed: {e}", temp.display())))?;
        let _ = file.fsync(); // needs fsync@openssh.com; the size check below is the real proof
    }
    let size = sftp
        .stat(&temp)
        .map_err(|e| sftp_err("cannot check", &temp, &e))?
        .size;
    if size != Some(bytes.len() as u64) {
        let _ = sftp.unlink(&temp);
        return Err(transient(format!(
            "the uploaded {} has {} bytes instead of {}",
            temp.display(),
            size.map(|s| s.to_string())
                .unwrap_or_else(|| "an unknown number of".into()),
            bytes.len()
        )));
    }
    if sftp.rename(&temp, &target, None).is_err() {
        // SFTPv3 (OpenSSH without posix-rename) will not rename onto an existing file.
        if sftp.stat(&target).is_ok() {
            if !config.replace_existing {
                let _ = sftp.unlink(&temp);
                return Err(fatal(format!(
                    "{} exists on the server and upload.replace_existing = false: Retarus has not \
                     picked up the previous file yet, or the name is wrong",
                    target.display()
                )));
            }
            sftp.unlink(&target)
                .map_err(|e| sftp_err("cannot replace", &target, &e))?;
        }
        sftp.rename(&temp, &target, None)
            .map_err(|e| sftp_err(&format!("cannot rename {} to", temp.display()), &target, &e))?;
    }
    let size = sftp
        .stat(&target)
        .map_err(|e| sftp_err("cannot check", &target, &e))?
        .size;
    if size != Some(bytes.len() as u64) {
        return Err(transient(format!(
            "{} has the wrong size after the rename",
            target.display()
        )));
    }
    Ok(target)
}

/// Proves the remote folder is writable: a probe file created and removed.
pub fn probe(conn: &Connection, config: &UploadConfig) -> Result<String, Failure> {
    let (_, probe) = remote_paths(
        &config.remote_dir,
        &format!(".dirsync-probe-{}", std::process::id()),
    );
    {
        let mut f = conn
            .sftp
            .create(&probe)
            .map_err(|e| sftp_err("cannot create a probe file", &probe, &e))?;
        f.write_all(b"dirsync probe")
            .map_err(|e| transient(format!("writing the probe file failed: {e}")))?;
    }
    conn.sftp
        .unlink(&probe)
        .map_err(|e| sftp_err("cannot remove the probe file", &probe, &e))?;
    Ok(format!(
        "{} is writable",
        if config.remote_dir.is_empty() {
            "."
        } else {
            &config.remote_dir
        }
    ))
}
