//! Verifier processes (`command` and `verifier_prompt` scorers): started in
//! their own process group, output capped into the attempt directory,
//! stdout read as stream-json and for its last JSON line, killed with their
//! group when the scorer's timeout is reached.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::attempt::logcap::{CappedLog, LineSplitter};
use crate::attempt::stream_json::{parse_line, StreamState, MAX_PARSED_LINE};
use crate::host::local::resolve_program;
use crate::host::{procfs, EnvVar, ExitInfo};

/// How long a killed verifier may take to close its pipes and be reaped.
pub(crate) const REAP_LIMIT: Duration = Duration::from_secs(5);

/// A verifier process to run.
#[derive(Debug)]
pub struct VerifierProcess {
    pub argv: Vec<String>,
    pub env: Vec<EnvVar>,
    pub cwd: PathBuf,
    pub stdout_log: PathBuf,
    pub stderr_log: PathBuf,
    pub log_cap: u64,
    pub timeout: Duration,
}

/// How it went.
#[derive(Debug, Default)]
pub struct Outcome {
    pub exit: Option<ExitInfo>,
    /// stream-json seen on stdout.
    pub stream: StreamState,
    /// The last stdout line that was a JSON object.
    pub last_json: Option<Value>,
}

/// Why a verifier could not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    #[error("cannot start `{program}`: {reason}")]
    Spawn { program: String, reason: String },
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
}

/// Runs a verifier process to its end (or its timeout).
pub async fn run(p: VerifierProcess) -> Result<Outcome, VerifierError> {
    let Some((program, args)) = p.argv.split_first() else {
        return Err(VerifierError::Spawn {
            program: String::new(),
            reason: "empty command".into(),
        });
    };
    let path_var = p
        .env
        .iter()
        .find(|v| v.name == "PATH")
        .map(|v| v.value.expose().to_string())
        .unwrap_or_default();
    let resolved =
        resolve_program(program, &path_var, &p.cwd).ok_or_else(|| VerifierError::Spawn {
            program: program.clone(),
            reason: format!("not found in PATH ({path_var})"),
        })?;
    let mut cmd = tokio::process::Command::new(&resolved);
    cmd.arg0(program)
        .args(args)
        .env_clear()
        .envs(p.env.iter().map(|v| (&v.name, v.value.expose())))
        .current_dir(&p.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = cmd.spawn().map_err(|e| VerifierError::Spawn {
        program: program.clone(),
        reason: e.to_string(),
    })?;
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(VerifierError::Spawn {
            program: program.clone(),
            reason: "output pipes missing".into(),
        });
    };
    let cap = p.log_cap;
    let out_log = p.stdout_log.clone();
    let err_log = p.stderr_log.clone();
    let work = async move {
        let (out, _) = tokio::join!(
            read(stdout, &out_log, cap, true),
            read(stderr, &err_log, cap, false)
        );
        let status = child.wait().await.ok();
        (out, status)
    };
    let mut work = std::pin::pin!(work);
    match tokio::time::timeout(p.timeout, &mut work).await {
        Ok((mut outcome, status)) => {
            outcome.exit = status.map(|s| ExitInfo {
                code: s.code(),
                signal: s.signal(),
            });
            // Nothing of the verifier outlives it.
            if pgid > 1 && procfs::group_alive(pgid) {
                let _ = procfs::signal_group(pgid, libc::SIGKILL);
            }
            Ok(outcome)
        }
        Err(_) => {
            if pgid > 1 {
                let _ = procfs::signal_group(pgid, libc::SIGKILL);
                // The kill closes the group's pipes: the reads end and the
                // verifier is reaped, so it is gone when the verdict is
                // given (bounded, should a stray holder keep a pipe open).
                let _ = tokio::time::timeout(REAP_LIMIT, &mut work).await;
            }
            Err(VerifierError::TimedOut(p.timeout))
        }
    }
}

async fn read(mut r: impl AsyncRead + Unpin, log: &Path, cap: u64, parse: bool) -> Outcome {
    let mut out = Outcome::default();
    let mut file: Option<CappedLog> = None;
    let mut splitter = LineSplitter::new(MAX_PARSED_LINE);
    let mut buf = vec![0u8; 16 * 1024];
    let on_line = |line: Option<&[u8]>, out: &mut Outcome| {
        let Some(line) = line else {
            return;
        };
        if let Some(signals) = parse_line(line) {
            out.stream.observe(signals);
        }
        if line.trim_ascii().first() == Some(&b'{') {
            if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(line) {
                out.last_json = Some(v);
            }
        }
    };
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if file.is_none() {
            file = CappedLog::create(log, cap).ok();
        }
        if let Some(f) = file.as_mut() {
            let _ = f.write(&buf[..n]);
        }
        if parse {
            splitter.feed(&buf[..n], |l| on_line(l, &mut out));
        }
    }
    if parse {
        splitter.finish(|l| on_line(l, &mut out));
    }
    if let Some(f) = file {
        let _ = f.finish();
    }
    out
}
