//! The one process runner for every process orca starts on this machine —
//! attempts (through [`super::local::LocalHost`]) and verifier processes
//! (`command` and `verifier_prompt` scorers) — and the one output pump that
//! copies a process's output into its capped log through the redactor.
//!
//! A process always starts in its own process group (so orca can stop all
//! of it), with exactly the environment given (nothing inherited), stdin
//! closed unless bytes are given for it, and its program resolved in the
//! *given* `PATH` as execvp would. It starts with `clone3` (in its cgroup
//! when it has one, [`super::clone3`]); std's spawn (posix_spawn, or fork
//! and exec with a cgroup to enter) only where the kernel has no `clone3`.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

use super::local::resolve_program;
pub use super::sandbox::PreExec;
use super::{procfs, EnvVar, ExitInfo, HostError, ProcHandle};
use crate::host::logcap::{CappedLog, LineSplitter};
use crate::redact::Redactor;

/// A process to start.
pub struct ProcessSpec<'a> {
    pub argv: &'a [String],
    /// The whole environment.
    pub env: &'a [EnvVar],
    pub cwd: &'a Path,
    /// Written to stdin, which is then closed (`None`: stdin is closed at
    /// once).
    pub stdin: Option<Vec<u8>>,
    /// What the child does to itself between fork and exec (enter its
    /// cgroup, …); the default is nothing.
    pub pre_exec: PreExec,
}

impl std::fmt::Debug for ProcessSpec<'_> {
    // argv may hold a prompt and env values secrets: names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessSpec")
            .field("program", &self.argv.first())
            .field("args", &self.argv.len().saturating_sub(1))
            .field(
                "env",
                &self.env.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
            )
            .field("cwd", &self.cwd)
            .field("stdin", &self.stdin.as_ref().map(Vec::len))
            .field("pre_exec", &self.pre_exec)
            .finish()
    }
}

/// A process's output pipe.
pub type Pipe = Box<dyn AsyncRead + Send + Unpin>;

/// What to wait on for a started process's end.
#[derive(Debug)]
pub enum Waiter {
    /// Started by tokio (it reaps it): kernels without clone3.
    Tokio(Child),
    /// Started with clone3: its pidfd (orca reaps it).
    Pidfd(std::os::fd::OwnedFd),
}

/// A started process.
pub struct Spawned {
    pub child: Waiter,
    pub proc: ProcHandle,
    pub stdout: Pipe,
    pub stderr: Pipe,
}

impl Spawned {
    /// Waits for the process (not its group) to exit.
    pub async fn wait(child: Waiter) -> Result<ExitInfo, HostError> {
        match child {
            Waiter::Tokio(mut child) => {
                let status = child
                    .wait()
                    .await
                    .map_err(|e| HostError::io("cannot wait for the process", e))?;
                Ok(ExitInfo {
                    code: status.code(),
                    signal: status.signal(),
                })
            }
            Waiter::Pidfd(fd) => super::clone3::wait(fd)
                .await
                .map_err(|e| HostError::io("cannot wait for the process", e)),
        }
    }
}

/// Writes `bytes` to a process's stdin beside it, then closes it: a reader
/// that does not read yet must not hold up its start (nor output, read at
/// the same time).
fn feed_stdin(mut stdin: impl tokio::io::AsyncWrite + Send + Unpin + 'static, bytes: Vec<u8>) {
    tokio::spawn(async move {
        let _ = stdin.write_all(&bytes).await;
        let _ = stdin.shutdown().await;
    });
}

/// Starts the process with clone3 (see [`super::clone3`]), straight into
/// its cgroup if it has one; `None` when this kernel cannot (the caller
/// falls back to std's spawn, entering the cgroup after the fork).
fn spawn_clone3(
    spec: &ProcessSpec<'_>,
    program: &str,
    resolved: &Path,
) -> Option<Result<Spawned, HostError>> {
    use tokio::net::unix::pipe;
    let env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|v| (v.name.clone(), v.value.expose().to_string()))
        .collect();
    let spawn_err = |reason: String| HostError::Spawn {
        program: program.to_string(),
        reason,
    };
    let clock = procfs::StartClock::before();
    let spawned = super::clone3::spawn(
        resolved,
        spec.argv,
        &env,
        spec.cwd,
        spec.stdin.is_some(),
        spec.pre_exec,
    );
    let child = match spawned {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::E2BIG)
            ) =>
        {
            return None
        }
        Err(e) => {
            return Some(Err(spawn_err(
                if e.kind() == std::io::ErrorKind::NotFound && !spec.cwd.is_dir() {
                    format!("working directory {} does not exist", spec.cwd.display())
                } else {
                    e.to_string()
                },
            )))
        }
    };
    // The read ends of pipes, non-blocking (clone3::spawn made them so).
    let pipes = (|| -> std::io::Result<(Pipe, Pipe)> {
        Ok((
            Box::new(pipe::Receiver::from_owned_fd_unchecked(child.stdout)?),
            Box::new(pipe::Receiver::from_owned_fd_unchecked(child.stderr)?),
        ))
    })();
    let (stdout, stderr) = match pipes {
        Ok(p) => p,
        Err(e) => return Some(Err(spawn_err(format!("output pipes: {e}")))),
    };
    if let (Some(bytes), Some(fd)) = (spec.stdin.clone(), child.stdin) {
        match pipe::Sender::from_owned_fd(fd) {
            Ok(tx) => feed_stdin(tx, bytes),
            Err(e) => return Some(Err(spawn_err(format!("stdin pipe: {e}")))),
        }
    }
    Some(Ok(Spawned {
        proc: ProcHandle {
            pid: child.pid,
            pgid: child.pid as i32,
            proc_start: clock.start_of(child.pid),
        },
        child: Waiter::Pidfd(child.pidfd),
        stdout,
        stderr,
    }))
}

/// Starts a process in its own group (see the module docs).
pub fn spawn(spec: ProcessSpec<'_>) -> Result<Spawned, HostError> {
    let Some(program) = spec.argv.first() else {
        return Err(HostError::Spawn {
            program: String::new(),
            reason: "empty command".into(),
        });
    };
    let path_var = spec
        .env
        .iter()
        .find(|v| v.name == "PATH")
        .map(|v| v.value.expose().to_string())
        .unwrap_or_default();
    let resolved: PathBuf =
        resolve_program(program, &path_var, spec.cwd).ok_or_else(|| HostError::Spawn {
            program: program.clone(),
            reason: format!("not found in PATH ({path_var})"),
        })?;
    match spawn_clone3(&spec, program, &resolved) {
        Some(r) => r,
        None => spawn_std(spec, &resolved),
    }
}

/// Starts the process with std's spawn: for kernels without `clone3`.
/// `spec.argv` is not empty ([`spawn`] checked).
fn spawn_std(spec: ProcessSpec<'_>, resolved: &Path) -> Result<Spawned, HostError> {
    let (program, args) = spec
        .argv
        .split_first()
        .map_or(("", &[][..]), |(p, a)| (p.as_str(), a));
    // Where this kernel cannot create the process (in its cgroup) with
    // clone3, std spawns it and the child enters its cgroup by a write to
    // `cgroup.procs` after the fork; the fd stays open (here) until the
    // spawn is done.
    let procs = match spec.pre_exec.cgroup_dir {
        Some(dir) => Some(
            super::cgroup::open_procs(dir).map_err(|e| HostError::Spawn {
                program: program.to_string(),
                reason: format!("cannot open its cgroup's cgroup.procs: {e}"),
            })?,
        ),
        None => None,
    };
    let pre = PreExec {
        cgroup_procs: procs.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
        ..spec.pre_exec
    };
    let mut cmd = tokio::process::Command::new(resolved);
    cmd.arg0(program);
    cmd.args(args)
        .env_clear()
        .envs(spec.env.iter().map(|v| (&v.name, v.value.expose())))
        .current_dir(spec.cwd)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    if !pre.is_empty() {
        // SAFETY: `PreExec::apply` makes only raw, async-signal-safe
        // syscalls on fds and values prepared before the fork.
        unsafe {
            cmd.pre_exec(move || pre.apply());
        }
    }
    let clock = procfs::StartClock::before();
    let mut child = cmd.spawn().map_err(|e| HostError::Spawn {
        program: program.to_string(),
        reason: if e.kind() == std::io::ErrorKind::NotFound && !spec.cwd.is_dir() {
            format!("working directory {} does not exist", spec.cwd.display())
        } else {
            e.to_string()
        },
    })?;
    let pid = child.id().ok_or_else(|| HostError::Spawn {
        program: program.to_string(),
        reason: "the process ended before orca saw its pid".into(),
    })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(HostError::Spawn {
            program: program.to_string(),
            reason: "output pipes missing".into(),
        });
    };
    if let (Some(bytes), Some(stdin)) = (spec.stdin, child.stdin.take()) {
        feed_stdin(stdin, bytes);
    }
    Ok(Spawned {
        child: Waiter::Tokio(child),
        proc: ProcHandle {
            pid,
            pgid: pid as i32,
            proc_start: clock.start_of(pid),
        },
        stdout: Box::new(stdout),
        stderr: Box::new(stderr),
    })
}

/// What the pump tells its caller while it copies.
#[derive(Debug)]
pub enum Pumped<'a> {
    /// Bytes arrived (a sign of life).
    Output,
    /// A complete line (`None`: a line longer than the parse limit, kept
    /// in the log only).
    Line(Option<&'a [u8]>),
    /// The log reached its cap: its head and a rolling tail are kept.
    Capped,
}

/// Copies `stream` into the capped log at `log` (created on the first
/// output, so a silent stream leaves no file), secrets replaced by
/// `redactor`, telling `on` of output, lines (when `lines` is set, at most
/// `max_line` bytes each) and the cap, until the stream ends or `abandon`
/// fires. Returns whether it created the log.
pub async fn pump(
    mut stream: impl AsyncRead + Unpin,
    log: &Path,
    cap: u64,
    mut redactor: Redactor,
    lines: Option<usize>,
    mut abandon: Option<tokio::sync::watch::Receiver<bool>>,
    mut on: impl FnMut(Pumped<'_>),
) -> bool {
    let mut file: Option<CappedLog> = None;
    let mut failed = false;
    let mut created = false;
    let mut splitter = lines.map(LineSplitter::new);
    // Filled by the reads without being zeroed first: a silent process
    // (most of a fleet's stderr) costs no 64 KiB memset.
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let write = |file: &mut Option<CappedLog>, data: &[u8], on: &mut dyn FnMut(Pumped<'_>)| {
        if let Some(l) = file.as_mut() {
            match l.write(data) {
                Ok(true) => on(Pumped::Capped),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(path = %log.display(), error = %e, "cannot write the log");
                    *file = None;
                }
            }
        }
    };
    loop {
        buf.clear();
        let n = match &mut abandon {
            Some(stop) => tokio::select! {
                r = stream.read_buf(&mut buf) => r,
                _ = stop.changed() => break,
            },
            None => stream.read_buf(&mut buf).await,
        };
        let n = match n {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        on(Pumped::Output);
        // Once: a log that failed a write is not created again (that
        // would truncate what it holds).
        if !created && !failed {
            match CappedLog::create(log, cap) {
                Ok(l) => {
                    file = Some(l);
                    created = true;
                }
                Err(e) => {
                    tracing::error!(path = %log.display(), error = %e, "cannot create the log");
                    failed = true;
                }
            }
        }
        let clean = redactor.feed(&buf[..n]);
        write(&mut file, &clean, &mut on);
        if let Some(s) = splitter.as_mut() {
            s.feed(&buf[..n], |line| on(Pumped::Line(line)));
        }
    }
    if let Some(s) = splitter.as_mut() {
        s.finish(|line| on(Pumped::Line(line)));
    }
    let rest = redactor.finish();
    write(&mut file, &rest, &mut on);
    if let Some(l) = file {
        if let Err(e) = l.finish() {
            tracing::error!(path = %log.display(), error = %e, "cannot finish the log");
        }
    }
    created
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Secrets;

    #[tokio::test]
    async fn stdin_bytes_reach_the_process_and_output_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![EnvVar::plain("PATH", "/usr/bin:/bin")];
        let argv: Vec<String> = ["sh", "-c", "cat; echo; echo tok-12345 >&2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let big = "p".repeat(100 * 1024);
        let s = spawn(ProcessSpec {
            argv: &argv,
            env: &env,
            cwd: dir.path(),
            stdin: Some(big.clone().into_bytes()),
            pre_exec: PreExec::default(),
        })
        .unwrap();
        let secrets = Secrets::new(["tok-12345"]);
        let out = dir.path().join("out.log");
        let err = dir.path().join("err.log");
        let mut lines = Vec::new();
        let mut capped = false;
        let (out_logged, err_logged) = tokio::join!(
            pump(
                s.stdout,
                &out,
                1 << 20,
                secrets.stream(),
                Some(1 << 20),
                None,
                |p| if let Pumped::Line(Some(l)) = p {
                    lines.push(l.len())
                }
            ),
            pump(s.stderr, &err, 1 << 20, secrets.stream(), None, None, |p| {
                capped |= matches!(p, Pumped::Capped)
            })
        );
        let exit = Spawned::wait(s.child).await.unwrap();
        assert_eq!(exit.code, Some(0));
        assert_eq!(
            lines,
            vec![big.len()],
            "the whole prompt came through stdin"
        );
        assert_eq!(std::fs::read_to_string(&err).unwrap(), "<redacted>\n");
        assert!(!capped);
        assert!(out_logged && err_logged, "both logs were created");
    }

    #[tokio::test]
    async fn a_silent_stream_leaves_no_log() {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![EnvVar::plain("PATH", "/usr/bin:/bin")];
        let argv = vec!["true".to_string()];
        let s = spawn(ProcessSpec {
            argv: &argv,
            env: &env,
            cwd: dir.path(),
            stdin: None,
            pre_exec: PreExec::default(),
        })
        .unwrap();
        let out = dir.path().join("out.log");
        let logged = pump(
            s.stdout,
            &out,
            1 << 20,
            crate::redact::Secrets::default().stream(),
            None,
            None,
            |_| {},
        )
        .await;
        assert!(!logged && !out.exists());
        Spawned::wait(s.child).await.unwrap();
    }

    /// The fallback for kernels without clone3: std's spawn, the child
    /// entering its cgroup by a write to `cgroup.procs`.
    #[tokio::test]
    async fn without_clone3_std_spawns_it_into_its_cgroup() {
        let Ok(cg) = super::super::cgroup::Cgroup::create() else {
            eprintln!("cgroups unavailable here: skipped");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let env = vec![EnvVar::plain("PATH", "/usr/bin:/bin")];
        let argv: Vec<String> = ["sh", "-c", "cat /proc/self/cgroup; exit 4"]
            .map(String::from)
            .into();
        let s = spawn_std(
            ProcessSpec {
                argv: &argv,
                env: &env,
                cwd: dir.path(),
                stdin: None,
                pre_exec: PreExec {
                    cgroup_dir: Some(cg.dir_fd()),
                    ..PreExec::default()
                },
            },
            Path::new("/bin/sh"),
        )
        .unwrap();
        assert!(matches!(s.child, Waiter::Tokio(_)));
        assert!(s.proc.proc_start > 0);
        let mut out = String::new();
        let mut stdout = s.stdout;
        stdout.read_to_string(&mut out).await.unwrap();
        let name = cg.name();
        assert!(out.trim_end().ends_with(&name), "{out}");
        assert_eq!(Spawned::wait(s.child).await.unwrap().code, Some(4));
    }
}
