//! Verifier processes (`command` and `verifier_prompt` scorers): started by
//! the one process runner in their own process group, output capped (and
//! secrets redacted) into the attempt directory,
//! stdout read as stream-json and for its last JSON line, killed with their
//! group when the scorer's timeout is reached.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::host::cgroup::Cgroup;
use crate::host::process::{self, pump, ProcessSpec, Pumped, Spawned};
use crate::host::sandbox::{self, Confine};
use crate::host::{procfs, EnvVar, ExitInfo, HostError};
use crate::redact::Secrets;
use crate::runtime::{Parser, StreamFormat, StreamParser};
use crate::stream_json::{StreamState, MAX_PARSED_LINE};

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
    /// Values redacted from its logs.
    pub secrets: Secrets,
    /// Written to its stdin, then closed (an agent CLI's prompt).
    pub stdin: Option<Vec<u8>>,
    /// How its stdout is read (`auto` for `command` scorers).
    pub format: StreamFormat,
    /// The task's confinement, with where it applies: the workspace, the
    /// task's root in it, and the attempt directory.
    pub confine: Confine,
    pub workspace: PathBuf,
    pub task_root: Option<String>,
    pub attempt_dir: PathBuf,
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

/// Runs a verifier process to its end (or its timeout), through the one
/// process runner; its logs go through the one redactor.
pub async fn run(p: VerifierProcess) -> Result<Outcome, VerifierError> {
    // A cgroup of its own where the host allows it: nothing the verifier
    // starts (detached or not) outlives it.
    let cgroup = Cgroup::create().ok();
    // Under the task's own policy (Landlock, network namespace).
    let prepared = sandbox::prepare(
        &p.confine,
        &p.workspace,
        p.task_root.as_deref(),
        &p.attempt_dir,
    )
    .map_err(|reason| VerifierError::Spawn {
        program: p.argv.first().cloned().unwrap_or_default(),
        reason,
    })?;
    let mut env = p.env.clone();
    if let Some(tmp) = &prepared.tmpdir {
        env.retain(|v| v.name != "TMPDIR");
        env.push(EnvVar::plain("TMPDIR", tmp.display().to_string()));
    }
    let spawned = process::spawn(ProcessSpec {
        argv: &p.argv,
        env: &env,
        cwd: &p.cwd,
        stdin: p.stdin.clone(),
        pre_exec: prepared.pre_exec(cgroup.as_ref()),
    })
    .map_err(|e| match e {
        HostError::Spawn { program, reason } => VerifierError::Spawn { program, reason },
        other => VerifierError::Spawn {
            program: p.argv.first().cloned().unwrap_or_default(),
            reason: other.to_string(),
        },
    })?;
    let pgid = spawned.proc.pgid;
    let (child, stdout, stderr) = (spawned.child, spawned.stdout, spawned.stderr);
    let cap = p.log_cap;
    let (out_log, err_log, secrets) = (p.stdout_log.clone(), p.stderr_log.clone(), p.secrets);
    let format = p.format;
    let work = async move {
        let mut out = Outcome::default();
        let mut parser = Parser::new(format);
        let mut on_line = |line: &[u8], out: &mut Outcome| {
            let signals = parser.feed(line);
            if !signals.is_empty() {
                out.stream.observe(signals);
            }
            if line.trim_ascii().first() == Some(&b'{') {
                if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(line) {
                    out.last_json = Some(v);
                }
            }
        };
        tokio::join!(
            pump(
                stdout,
                &out_log,
                cap,
                secrets.stream(),
                Some(MAX_PARSED_LINE),
                None,
                |e| {
                    if let Pumped::Line(Some(line)) = e {
                        on_line(line, &mut out)
                    }
                }
            ),
            pump(stderr, &err_log, cap, secrets.stream(), None, None, |_| {})
        );
        let status = Spawned::wait(child).await.ok();
        (out, status)
    };
    let mut work = std::pin::pin!(work);
    let result = match tokio::time::timeout(p.timeout, &mut work).await {
        Ok((mut outcome, status)) => {
            outcome.exit = status;
            // Nothing of the verifier outlives it.
            if pgid > 1 && procfs::group_alive(pgid) {
                let _ = procfs::signal_group(pgid, libc::SIGKILL);
            }
            Ok(outcome)
        }
        Err(_) => {
            if let Some(c) = &cgroup {
                let _ = c.kill();
            }
            if pgid > 1 {
                let _ = procfs::signal_group(pgid, libc::SIGKILL);
                // The kill closes the group's pipes: the reads end and the
                // verifier is reaped, so it is gone when the verdict is
                // given (bounded, should a stray holder keep a pipe open).
                let _ = tokio::time::timeout(REAP_LIMIT, &mut work).await;
            }
            Err(VerifierError::TimedOut(p.timeout))
        }
    };
    if let Some(c) = cgroup {
        c.kill_and_wait(REAP_LIMIT).await;
    }
    result
}
