//! Workers on other machines, over SSH (async-ssh2-tokio and russh).
//!
//! The same operations as local workers (see docs/ssh.md):
//!
//! - **Connection** ([`pool`]): one per host, shared by every attempt on
//!   it, reconnected with backoff; `max_sessions` task channels plus
//!   [`CONTROL_CHANNELS`] for control commands. Key authentication; the
//!   host key checked against known_hosts or a pinned SHA256 fingerprint
//!   ([`connect`]). Every connect failure is a transport failure.
//! - **Environment**: the attempt's variables (but PATH and HOME, which
//!   are the host's) go as SSH `env` requests on the task's channel, never
//!   in the command string; a refused one becomes a warning line at the top
//!   of the attempt's stderr log. The wrapper keeps only PATH, HOME and
//!   what orca sent.
//! - **Process control** ([`script`]): the task leads its own session and
//!   process group and reports `pgid` and start time first; orca gets its
//!   real exit code or signal. Interrupt and stop signal the group through
//!   a second exec on the same connection (sshd ignores channel signals
//!   for root, and a dropped connection without a pty leaves the work
//!   running).
//! - **Files** ([`sftp`]): the attempt directory
//!   `<working_directory>/.orca/runs/<run>/<task>/<n>/` and the prompt file
//!   go up over SFTP, `artifacts/` comes back into the local attempt
//!   directory; cleanup removes the remote directory unless the worker says
//!   `keep_remote_attempt_dirs = true`.

pub mod connect;
pub mod exec;
pub mod pool;
pub mod script;
pub mod sftp;
pub mod target;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use pool::{Connection, Limits, Need, Pool};
pub use target::{HostKeyCheck, Target, CONTROL_CHANNELS, DEFAULT_CONNECT_TIMEOUT};

use super::{HostAdapter, HostError, HostPaths, Launch, ProcHandle, RecordedProc, Running, Sig};
use crate::spec::SshHost;

/// Bound on short control commands (signal, alive, missing files).
const CONTROL_LIMIT: Duration = Duration::from_secs(30);

/// One ssh worker's view of its host: the shared connection plus the
/// worker's directories and runtime binary.
#[derive(Debug, Clone)]
pub struct SshAdapter {
    conn: Arc<Connection>,
    working_directory: String,
    binary: Option<String>,
    keep_dirs: bool,
    insecure: bool,
}

impl SshAdapter {
    /// The adapter for `spec`, on the pool's connection to its host.
    pub fn new(
        pool: &Pool,
        spec: &SshHost,
        workspace_root: &Path,
        grace: Duration,
    ) -> Result<Self, String> {
        let target = Target::from_spec(spec, workspace_root)?;
        let working_directory = spec
            .working_directory
            .clone()
            .filter(|d| d.starts_with('/'))
            .ok_or("an ssh host requires an absolute `working_directory`")?;
        if working_directory.chars().any(char::is_control) {
            return Err("`working_directory` holds a control character".into());
        }
        let insecure = target.check == HostKeyCheck::Insecure;
        let conn = pool.get(
            &target,
            Limits {
                max_sessions: target::max_sessions(spec),
                grace,
                connect_timeout: spec
                    .connect_timeout_seconds
                    .map(|s| s.as_duration())
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            },
        );
        Ok(Self {
            conn,
            working_directory: working_directory.trim_end_matches('/').to_string(),
            binary: spec.binary.clone(),
            keep_dirs: spec.keep_remote_attempt_dirs,
            insecure,
        })
    }

    pub fn connection(&self) -> &Arc<Connection> {
        &self.conn
    }

    fn tracked(&self, rec: &RecordedProc) -> pool::Tracked {
        pool::Tracked {
            pgid: rec.proc.pgid,
            start: rec.proc.proc_start,
            attempt_id: rec.attempt_id.clone(),
            generation: 0,
        }
    }
}

/// The parent directory of a POSIX path.
fn parent(p: &str) -> &str {
    match p.trim_end_matches('/').rfind('/') {
        Some(0) => "/",
        Some(i) => &p[..i],
        None => p,
    }
}

#[async_trait]
impl HostAdapter for SshAdapter {
    fn name(&self) -> String {
        self.conn.target().display()
    }

    fn paths(&self, task_root_rel: &Path, attempt_dir_rel: &Path) -> HostPaths {
        HostPaths {
            workspace: self.working_directory.clone(),
            cwd: target::join(&self.working_directory, task_root_rel),
            attempt_dir: target::join(&self.working_directory, attempt_dir_rel),
        }
    }

    fn runtime_program(&self) -> Option<String> {
        self.binary.clone()
    }

    async fn missing_files(
        &self,
        paths: &HostPaths,
        files: &[String],
    ) -> Result<Vec<String>, HostError> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![paths.workspace.clone(), paths.cwd.clone()];
        args.extend(files.iter().cloned());
        let out = self
            .conn
            .control(script::MISSING, &args, Need::Wait, CONTROL_LIMIT)
            .await?;
        let text = out.stdout_text();
        if text.lines().any(|l| l.trim() == "ORCA-ERR ws") {
            return Err(HostError::Spawn {
                program: "orca".into(),
                reason: format!(
                    "the working directory {} does not exist on {}",
                    paths.workspace,
                    self.name()
                ),
            });
        }
        Ok(text
            .lines()
            .filter_map(|l| l.trim().parse::<usize>().ok())
            .filter_map(|i| files.get(i).cloned())
            .collect())
    }

    async fn prepare(
        &self,
        paths: &HostPaths,
        files: &[(String, Vec<u8>)],
    ) -> Result<(), HostError> {
        // Without files the wrapper makes the directory itself (one round
        // trip fewer per attempt).
        if files.is_empty() {
            return Ok(());
        }
        let s = sftp::Sftp::open(&self.conn, Need::Wait).await?;
        s.mkdir_p(&paths.attempt_dir, &paths.workspace).await?;
        for (name, data) in files {
            if name.contains('/') || name.contains('\0') || name.starts_with('.') {
                return Err(HostError::Spawn {
                    program: "prepare".into(),
                    reason: format!("refusing to write {name:?} into the attempt directory"),
                });
            }
            s.write_file(&format!("{}/{name}", paths.attempt_dir), data)
                .await?;
        }
        Ok(())
    }

    async fn start(&self, launch: Launch) -> Result<Running, HostError> {
        let Some(program) = launch.argv.first().cloned() else {
            return Err(HostError::Spawn {
                program: String::new(),
                reason: "empty command".into(),
            });
        };
        // PATH and HOME are the host's own; everything else goes as env
        // requests, and the wrapper keeps exactly those names.
        let env: Vec<super::EnvVar> = launch
            .env
            .into_iter()
            .filter(|v| v.name != "PATH" && v.name != "HOME")
            .collect();
        let keep = env
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let mut inner_args = vec![
            script::TASK_INNER.to_string(),
            launch.paths.attempt_dir.clone(),
            launch.paths.cwd.clone(),
            keep,
        ];
        inner_args.extend(launch.argv.iter().cloned());
        let cmd =
            script::command(script::TASK_OUTER, &inner_args).ok_or_else(|| HostError::Spawn {
                program: program.clone(),
                reason: "an argument holds a NUL byte, which no command line can carry".into(),
            })?;
        let mut preface = Vec::new();
        if self.insecure {
            preface.push(format!(
                "the host key of {} was not checked (insecure_accept_any_host_key)",
                self.name()
            ));
        }
        exec::start(exec::StartArgs {
            conn: &self.conn,
            program: &program,
            cmd,
            env: &env,
            attempt_id: &launch.attempt_id,
            cwd: &launch.paths.cwd,
            attempt_dir: &launch.paths.attempt_dir,
            preface,
        })
        .await
    }

    async fn signal(&self, proc: &ProcHandle, sig: Sig) -> Result<(), HostError> {
        if self.conn.is_dead(proc.pgid) {
            // Gone after its attempt: the number may be someone else's now.
            return Ok(());
        }
        if self.conn.is_lost(proc.pgid) {
            return Err(HostError::Transport(format!(
                "{}: the connection to the group dropped; the next connection kills it",
                self.name()
            )));
        }
        self.conn
            .control(
                script::SIGNAL,
                &[sig.name().to_string(), proc.pgid.to_string()],
                Need::FailFast,
                CONTROL_LIMIT,
            )
            .await
            .map(|_| ())
    }

    async fn alive(&self, proc: &ProcHandle) -> Result<bool, HostError> {
        if self.conn.is_lost(proc.pgid) {
            return Err(HostError::Transport(format!(
                "{}: the connection to the group dropped; the next connection kills it",
                self.name()
            )));
        }
        self.conn.alive(proc.pgid, CONTROL_LIMIT).await
    }

    async fn collect(
        &self,
        paths: &HostPaths,
        local_attempt_dir: &Path,
        cap: u64,
    ) -> Result<Vec<String>, HostError> {
        // The liveness check after the exit already looked.
        if self.conn.take_no_artifacts(&paths.attempt_dir) {
            return Ok(Vec::new());
        }
        let s = sftp::Sftp::open(&self.conn, Need::FailFast).await?;
        s.fetch_dir(
            &format!("{}/artifacts", paths.attempt_dir),
            &local_attempt_dir.join("artifacts"),
            cap,
        )
        .await
    }

    async fn cleanup(&self, paths: &HostPaths) -> Result<(), HostError> {
        if self.keep_dirs {
            return Ok(());
        }
        let task_dir = parent(&paths.attempt_dir).to_string();
        let run_dir = parent(&task_dir).to_string();
        // Never anything outside the host's .orca/runs.
        let runs = format!("{}/.orca/runs/", self.working_directory);
        if !paths.attempt_dir.starts_with(&runs) || !run_dir.starts_with(&runs) {
            return Err(HostError::Spawn {
                program: "rm".into(),
                reason: format!(
                    "refusing to remove {} (not under {runs})",
                    paths.attempt_dir
                ),
            });
        }
        // An unreachable host gets it done by the next connection.
        self.conn
            .cleanup(vec![paths.attempt_dir.clone(), task_dir, run_dir])
            .await
    }

    async fn kill_orphan(&self, rec: &RecordedProc, grace_ms: u64) -> Result<bool, HostError> {
        self.conn
            .kill_orphan(&self.tracked(rec), Duration::from_millis(grace_ms))
            .await
    }
}

pub use super::unusable::Unusable;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(parent("/w/.orca/runs/r/t/1"), "/w/.orca/runs/r/t");
        assert_eq!(parent("/x"), "/");
    }
}
