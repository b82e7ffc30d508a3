//! Runs the Exchange export script with PowerShell: `pwsh`, else Windows PowerShell, found on
//! the PATH — or the interpreter the config names. A non-zero exit, a timeout or a missing
//! interpreter is an error that carries the exit status and the end of stderr.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};

/// How much of stderr goes into the error.
const STDERR_TAIL: usize = 2000;

pub fn find_interpreter(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return which::which(p).map_err(|_| {
            anyhow!(
                "exchange.interpreter {} was not found or is not executable",
                p.display()
            )
        });
    }
    for name in ["pwsh", "powershell.exe", "powershell"] {
        if let Ok(p) = which::which(name) {
            return Ok(p);
        }
    }
    bail!("no PowerShell found on the PATH (looked for pwsh, powershell.exe): install PowerShell 7, or set exchange.interpreter")
}

/// Runs `script -OutputPath out -Name value …` and waits at most `timeout`.
pub fn run(
    script: &Path,
    interpreter: Option<&Path>,
    parameters: &[(String, String)],
    timeout: Duration,
    out: &Path,
) -> anyhow::Result<()> {
    let interpreter = find_interpreter(interpreter)?;
    if !script.exists() {
        bail!("exchange.script {} does not exist", script.display());
    }
    let mut cmd = Command::new(&interpreter);
    cmd.args(["-NoProfile", "-NonInteractive", "-File"])
        .arg(script)
        .arg("-OutputPath")
        .arg(out);
    for (name, value) in parameters {
        cmd.arg(format!("-{name}")).arg(value);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow!("cannot start {}: {e}", interpreter.display()))?;
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the Exchange script {} did not finish within {} (exchange.timeout_seconds) and was stopped",
                script.display(),
                humantime::format_duration(timeout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = stdout.join();
    let err = stderr.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "the Exchange script {} failed ({}){}",
            script.display(),
            match status.code() {
                Some(c) => format!("exit code {c}"),
                None => "killed by a signal".into(),
            },
            stderr_tail(&err)
        );
    }
    Ok(())
}

/// Reads a child's pipe to the end on a thread of its own (so a full pipe never blocks it).
fn drain(pipe: Option<Box<dyn Read + Send>>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// ": the last STDERR_TAIL bytes of stderr" on one line, or nothing.
fn stderr_tail(err: &[u8]) -> String {
    let text = String::from_utf8_lossy(err);
    let text = text.trim();
    let tail = if text.len() > STDERR_TAIL {
        let cut = text
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| i >= text.len() - STDERR_TAIL)
            .unwrap_or(0);
        format!("…{}", &text[cut..])
    } else {
        text.to_owned()
    };
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {}", tail.replace('\n', " | "))
    }
}
