//! Hosts: where an attempt's process runs.
//!
//! A [`HostAdapter`] can prepare an attempt's directory, start its process
//! in its own process group, signal that group (interrupt, stop), tell
//! whether it is still alive, bring artifacts back, clean up, and kill a
//! group recorded by an earlier orca if it is still ours. Output streams
//! into the local attempt directory's capped logs for every host, so reading
//! bounded logs is host-independent (`attempt::logs`); a restart is a stop
//! and a new attempt, orchestrated by the run supervisor.
//!
//! Adapters: [`local::LocalHost`] (child processes here) and
//! [`ssh::SshAdapter`] (processes on another machine, over SSH).

pub mod cgroup;
pub mod clone3;
pub mod env;
pub mod local;
pub mod logcap;
pub mod process;
pub mod procfs;
pub mod sandbox;
#[cfg(feature = "ssh")]
pub mod ssh;
#[cfg(not(feature = "ssh"))]
#[path = "ssh_off.rs"]
pub mod ssh;
mod unusable;

use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::io::AsyncRead;

pub use env::{EnvValue, EnvVar};

/// Errors from a host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The process could not be started (program missing, not executable…).
    #[error("cannot start `{program}`: {reason}")]
    Spawn { program: String, reason: String },
    /// The host could not be reached or the connection broke (transient).
    #[error("transport: {0}")]
    Transport(String),
    /// The worker's own configuration is wrong (an identity file missing or
    /// unreadable): retrying cannot help; someone must fix the spec or the
    /// file.
    #[error("configuration: {0}")]
    Config(String),
    /// Local I/O around the attempt (directories, files).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl HostError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        HostError::Io {
            what: what.into(),
            source,
        }
    }

    /// Whether the failure is transient (transport) rather than the task's.
    pub fn is_transport(&self) -> bool {
        matches!(self, HostError::Transport(_))
    }
}

/// Where an attempt lives on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPaths {
    /// `$ORCA_WORKSPACE` on the host.
    pub workspace: String,
    /// The task's working directory on the host.
    pub cwd: String,
    /// `$ORCA_ATTEMPT_DIR` on the host.
    pub attempt_dir: String,
}

/// A process to start.
pub struct Launch {
    pub argv: Vec<String>,
    /// The whole environment (nothing is inherited).
    pub env: Vec<EnvVar>,
    pub paths: HostPaths,
    /// For logs and errors.
    pub attempt_id: String,
    /// Written to the process's stdin, which is then closed (an agent
    /// CLI's prompt); `None`: stdin is closed. Only for hosts whose
    /// [`HostAdapter::writes_stdin`] is true.
    pub stdin: Option<Vec<u8>>,
    /// What the host enforces (only what [`HostAdapter::caps`] says it
    /// can: the plan was made against them).
    pub confine: sandbox::Confine,
}

impl fmt::Debug for Launch {
    // argv may hold a prompt; env values may hold secrets: show names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Launch")
            .field("program", &self.argv.first())
            .field("args", &self.argv.len().saturating_sub(1))
            .field(
                "env",
                &self.env.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
            )
            .field("paths", &self.paths)
            .field("attempt_id", &self.attempt_id)
            .field("stdin_bytes", &self.stdin.as_ref().map(Vec::len))
            .field("confine", &self.confine)
            .finish()
    }
}

/// A started process group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcHandle {
    pub pid: u32,
    pub pgid: i32,
    /// Clock ticks since boot at start (`/proc/<pid>/stat` field 22), 0 if
    /// unknown.
    pub proc_start: u64,
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// A byte stream from the process.
pub type OutputStream = Box<dyn AsyncRead + Send + Unpin>;

/// A running process: its handle, its output and its end.
pub struct Running {
    pub proc: ProcHandle,
    pub stdout: OutputStream,
    pub stderr: OutputStream,
    /// Resolves when the process (not necessarily its group) exits.
    pub exit: BoxFuture<'static, Result<ExitInfo, HostError>>,
    /// For the receipt: what the host could not do for this process (no
    /// cgroup, a restriction not enforced under `best_effort`).
    pub notes: Vec<String>,
}

/// Signals orca sends to a process group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sig {
    Term,
    Kill,
}

impl Sig {
    pub fn number(self) -> i32 {
        match self {
            Sig::Term => libc::SIGTERM,
            Sig::Kill => libc::SIGKILL,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Sig::Term => "TERM",
            Sig::Kill => "KILL",
        }
    }
}

/// A process group an earlier orca recorded in the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedProc {
    pub proc: ProcHandle,
    /// `ORCA_ATTEMPT_ID` of the attempt.
    pub attempt_id: String,
}

/// What a host can do for an attempt.
#[async_trait]
pub trait HostAdapter: Send + Sync + fmt::Debug {
    /// `local`, or the ssh host.
    fn name(&self) -> String;

    /// Whether a process started here can reach orca's API, which listens
    /// on this machine's loopback: only then does it get `ORCA_API` and a
    /// per-attempt `ORCA_TOKEN` (a token is not sent where it is useless).
    fn reaches_local_api(&self) -> bool {
        false
    }

    /// What this host can enforce (Landlock, network namespaces); none by
    /// default (an ssh host).
    fn caps(&self) -> crate::policy::HostCaps {
        crate::policy::HostCaps::default()
    }

    /// Whether [`Launch::stdin`] reaches the process here (otherwise an
    /// agent CLI that reads its prompt on stdin gets it redirected from the
    /// prompt file).
    fn writes_stdin(&self) -> bool {
        false
    }

    /// Where an attempt's directories are on this host, given the task's
    /// working directory and the attempt directory relative to the
    /// workspace.
    fn paths(&self, task_root_rel: &Path, attempt_dir_rel: &Path) -> HostPaths;

    /// The agent runtime program on this host, replacing the runtime
    /// template's first word (an ssh host's `binary`).
    fn runtime_program(&self) -> Option<String> {
        None
    }

    /// Which of `files` (relative to the task's working directory) do not
    /// exist on the host (or lead outside the workspace).
    async fn missing_files(
        &self,
        paths: &HostPaths,
        files: &[String],
    ) -> Result<Vec<String>, HostError>;

    /// Makes sure the attempt directory exists on the host and writes
    /// `files` (name relative to the attempt directory, contents) into it.
    /// (On this machine it is the directory the attempt created for its
    /// logs before calling this.)
    async fn prepare(
        &self,
        paths: &HostPaths,
        files: &[(String, Vec<u8>)],
    ) -> Result<(), HostError>;

    /// Starts the process in its own process group, stdin closed.
    async fn start(&self, launch: Launch) -> Result<Running, HostError>;

    /// Signals the whole process group.
    async fn signal(&self, proc: &ProcHandle, sig: Sig) -> Result<(), HostError>;

    /// Whether any process of the group is still alive.
    async fn alive(&self, proc: &ProcHandle) -> Result<bool, HostError>;

    /// Brings the attempt's `artifacts/` back into `local_attempt_dir`
    /// (files over `cap` bytes are skipped). Returns notes for the receipt
    /// about what was left behind. Nothing to do locally.
    async fn collect(
        &self,
        paths: &HostPaths,
        local_attempt_dir: &Path,
        cap: u64,
    ) -> Result<Vec<String>, HostError>;

    /// Removes what the attempt left on the host (not the local attempt
    /// directory, which holds logs and receipts).
    async fn cleanup(&self, paths: &HostPaths) -> Result<(), HostError>;

    /// Kills a group recorded by an earlier orca if it is still ours
    /// (checked by start time or `ORCA_ATTEMPT_ID`: pids are reused).
    /// Returns whether anything was killed.
    async fn kill_orphan(&self, rec: &RecordedProc, grace_ms: u64) -> Result<bool, HostError>;
}
