//! Child processes on this machine: own process group, stdin closed,
//! environment exactly as given, output piped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::cgroup::Cgroup;
use super::process::PreExec;
use super::{
    procfs, HostAdapter, HostError, HostPaths, Launch, ProcHandle, RecordedProc, Running, Sig,
};

/// A running attempt's process group and cgroup.
type Contained = (i32, Arc<Cgroup>);

/// Runs attempts as child processes in the workspace, each in a cgroup of
/// its own where the host allows it ([`super::cgroup`]).
#[derive(Clone, Debug)]
pub struct LocalHost {
    workspace_root: PathBuf,
    /// The cgroup of each running attempt, by attempt directory (with its
    /// process group).
    cgroups: Arc<Mutex<HashMap<String, Contained>>>,
}

impl LocalHost {
    pub fn new(workspace_root: impl Into<PathBuf>) -> Self {
        super::cgroup::sweep_stale();
        Self {
            workspace_root: workspace_root.into(),
            cgroups: Arc::default(),
        }
    }

    fn cgroup_of(&self, pgid: i32) -> Option<Arc<Cgroup>> {
        let map = self.cgroups.lock().ok()?;
        map.values()
            .find(|(g, _)| *g == pgid)
            .map(|(_, c)| c.clone())
    }
}

/// How long an attempt's cgroup may take to empty after `cgroup.kill`.
const CGROUP_DRAIN: Duration = Duration::from_secs(5);

/// Resolves `program` like execvp(3) would, in `path_var` (relative PATH
/// entries against `cwd`); a name with a `/` is taken as it is.
///
/// A lookup found within the last [`RESOLVED_FOR`] is reused after one
/// `stat` of the file it found (a fleet starts the same program thousands
/// of times; each full lookup costs a `stat` per PATH entry before the
/// program's): a program removed is looked up again at once, one installed
/// earlier in the PATH is found at most [`RESOLVED_FOR`] later. A program
/// not found is never remembered.
pub fn resolve_program(program: &str, path_var: &str, cwd: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    // Relative PATH entries depend on the directory; others do not.
    let relative = path_var.split(':').any(|d| !d.starts_with('/'));
    let key = (
        program.to_string(),
        path_var.to_string(),
        relative.then(|| cwd.to_path_buf()),
    );
    let now = std::time::Instant::now();
    let recent = RESOLVED.lock().ok().and_then(|m| {
        m.get(&key)
            .filter(|(_, at)| now.duration_since(*at) < RESOLVED_FOR)
            .map(|(p, _)| p.clone())
    });
    if let Some(p) = recent.filter(|p| is_executable(p)) {
        return Some(p);
    }
    let found = lookup(program, path_var, cwd)?;
    if let Ok(mut m) = RESOLVED.lock() {
        if m.len() >= RESOLVED_MAX {
            m.clear();
        }
        m.insert(key, (found.clone(), now));
    }
    Some(found)
}

/// How long a program's PATH lookup is reused ([`resolve_program`]).
pub const RESOLVED_FOR: Duration = Duration::from_secs(1);
/// At most this many lookups are remembered.
const RESOLVED_MAX: usize = 256;

/// Recent lookups: (program, PATH, working directory when the PATH has a
/// relative entry) → (the file, when it was found).
type Lookups = HashMap<(String, String, Option<PathBuf>), (PathBuf, std::time::Instant)>;
static RESOLVED: std::sync::LazyLock<Mutex<Lookups>> = std::sync::LazyLock::new(Mutex::default);

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The lookup itself: the first executable file named `program` along
/// `path_var`.
fn lookup(program: &str, path_var: &str, cwd: &Path) -> Option<PathBuf> {
    path_var
        .split(':')
        .map(|dir| {
            if dir.is_empty() {
                Path::new(".")
            } else {
                Path::new(dir)
            }
        })
        .map(|dir| {
            if dir.is_absolute() {
                dir.join(program)
            } else {
                cwd.join(dir).join(program)
            }
        })
        .find(|p| is_executable(p))
}

#[async_trait]
impl HostAdapter for LocalHost {
    fn name(&self) -> String {
        "local".into()
    }

    fn reaches_local_api(&self) -> bool {
        true
    }

    fn writes_stdin(&self) -> bool {
        true
    }

    fn caps(&self) -> crate::policy::HostCaps {
        super::sandbox::local_caps()
    }

    fn paths(&self, task_root_rel: &Path, attempt_dir_rel: &Path) -> HostPaths {
        HostPaths {
            workspace: self.workspace_root.display().to_string(),
            cwd: self
                .workspace_root
                .join(task_root_rel)
                .display()
                .to_string(),
            attempt_dir: self
                .workspace_root
                .join(attempt_dir_rel)
                .display()
                .to_string(),
        }
    }

    async fn missing_files(
        &self,
        paths: &HostPaths,
        files: &[String],
    ) -> Result<Vec<String>, HostError> {
        let task_root = Path::new(&paths.cwd)
            .strip_prefix(&self.workspace_root)
            .ok()
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty());
        Ok(files
            .iter()
            .filter_map(|f| {
                match crate::spec::paths::resolve_existing(
                    &self.workspace_root,
                    task_root.as_deref(),
                    None,
                    f,
                ) {
                    Ok(p) if p.exists() => None,
                    Ok(_) => Some(f.clone()),
                    // Say why, not just "missing".
                    Err(e) => Some(format!("{f} ({e})")),
                }
            })
            .collect())
    }

    async fn prepare(
        &self,
        paths: &HostPaths,
        files: &[(String, Vec<u8>)],
    ) -> Result<(), HostError> {
        let dir = Path::new(&paths.attempt_dir);
        // On this machine the attempt directory is the one the attempt
        // created for its logs before preparing: only files to write cost
        // a lookup.
        if !files.is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| HostError::io(format!("cannot create {}", dir.display()), e))?;
        }
        for (name, contents) in files {
            let p = dir.join(name);
            std::fs::write(&p, contents)
                .map_err(|e| HostError::io(format!("cannot write {}", p.display()), e))?;
        }
        Ok(())
    }

    async fn start(&self, launch: Launch) -> Result<Running, HostError> {
        let Some((program, _)) = launch.argv.split_first() else {
            return Err(HostError::Spawn {
                program: String::new(),
                reason: "empty command".into(),
            });
        };
        // Look the program up in the *worker's* PATH. (Also lets std use
        // posix_spawn: with a bare name and a PATH of our own it falls back
        // to fork + exec, copying orca's page tables for every attempt.)
        let path_var = launch
            .env
            .iter()
            .find(|v| v.name == "PATH")
            .map(|v| v.value.expose().to_string())
            .unwrap_or_default();
        // The task's working directory (its `workspace.root`) must not lead
        // out of the workspace through a symlink: validation checked the
        // path's text, this checks the filesystem as it is now, and the
        // process starts in the resolved directory (no symlink left to
        // swap between the check and the start).
        let cwd = match Path::new(&launch.paths.cwd).strip_prefix(&self.workspace_root) {
            Ok(rel) if rel.as_os_str().is_empty() => PathBuf::from(&launch.paths.cwd),
            Ok(rel) => crate::spec::paths::resolve_existing(
                &self.workspace_root,
                None,
                None,
                &rel.display().to_string(),
            )
            .map_err(|e| HostError::Spawn {
                program: program.clone(),
                reason: format!("its working directory (workspace.root): {e}"),
            })?,
            Err(_) => {
                return Err(HostError::Spawn {
                    program: program.clone(),
                    reason: format!(
                        "its working directory {} is not inside the workspace",
                        launch.paths.cwd
                    ),
                })
            }
        };
        let mut notes = Vec::new();
        let cgroup = match Cgroup::create() {
            Ok(c) => Some(Arc::new(c)),
            Err(_) => {
                notes.extend(super::cgroup::unavailable());
                None
            }
        };
        let task_root = Path::new(&launch.paths.cwd)
            .strip_prefix(&self.workspace_root)
            .ok()
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty());
        let prepared = super::sandbox::prepare(
            &launch.confine,
            &self.workspace_root,
            task_root.as_deref(),
            Path::new(&launch.paths.attempt_dir),
        )
        .map_err(|reason| HostError::Spawn {
            program: program.clone(),
            reason,
        })?;
        let mut env = launch.env;
        if let Some(tmp) = &prepared.tmpdir {
            env.retain(|v| v.name != "TMPDIR");
            env.push(super::EnvVar::plain("TMPDIR", tmp.display().to_string()));
        }
        let pre_exec: PreExec = prepared.pre_exec(cgroup.as_deref());
        let spawned = super::process::spawn(super::process::ProcessSpec {
            argv: &launch.argv,
            env: &env,
            cwd: &cwd,
            stdin: launch.stdin,
            pre_exec,
        })
        .map_err(|e| match e {
            HostError::Spawn { program, reason } if reason.starts_with("not found in PATH") => {
                HostError::Spawn {
                    program,
                    reason: format!("not found in the worker's PATH ({path_var})"),
                }
            }
            e => e,
        })?;
        if let (Some(c), Ok(mut map)) = (cgroup, self.cgroups.lock()) {
            map.insert(launch.paths.attempt_dir.clone(), (spawned.proc.pgid, c));
        }
        let exit = Box::pin(super::process::Spawned::wait(spawned.child));
        Ok(Running {
            proc: spawned.proc,
            stdout: spawned.stdout,
            stderr: spawned.stderr,
            exit,
            notes,
        })
    }

    async fn signal(&self, proc: &ProcHandle, sig: Sig) -> Result<(), HostError> {
        // The cgroup holds also what left the group (setsid): it gets the
        // same signal; SIGKILL is the kernel's cgroup.kill.
        if let Some(c) = self.cgroup_of(proc.pgid) {
            match sig {
                Sig::Term => c.signal_all(libc::SIGTERM),
                Sig::Kill => {
                    if c.kill().is_err() {
                        c.signal_all(libc::SIGKILL);
                    }
                }
            }
        }
        procfs::signal_group(proc.pgid, sig.number())
            .map(|_| ())
            .map_err(|e| {
                HostError::io(
                    format!("cannot send SIG{} to group {}", sig.name(), proc.pgid),
                    e,
                )
            })
    }

    async fn alive(&self, proc: &ProcHandle) -> Result<bool, HostError> {
        Ok(procfs::group_alive(proc.pgid)
            || self.cgroup_of(proc.pgid).is_some_and(|c| c.populated()))
    }

    async fn collect(&self, _: &HostPaths, _: &Path, _: u64) -> Result<Vec<String>, HostError> {
        Ok(Vec::new())
    }

    async fn cleanup(&self, paths: &HostPaths) -> Result<(), HostError> {
        // Nothing of the attempt outlives it: whatever is left in its
        // cgroup (a detached daemon) is killed, and the cgroup removed.
        let cgroup = self
            .cgroups
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&paths.attempt_dir));
        if let Some((_, c)) = cgroup {
            if !c.kill_and_wait(CGROUP_DRAIN).await {
                tracing::warn!(cgroup = %c.path().display(), "processes survived cgroup.kill");
            }
        }
        Ok(())
    }

    async fn kill_orphan(&self, rec: &RecordedProc, grace_ms: u64) -> Result<bool, HostError> {
        let grace = Duration::from_millis(grace_ms);
        let marker = format!("ORCA_ATTEMPT_ID={}", rec.attempt_id);
        let mut killed = false;
        // The recorded group, if a member is provably ours.
        let members = procfs::group_members(rec.proc.pgid);
        let ours = members.iter().any(|m| {
            (m.pid as u32 == rec.proc.pid
                && rec.proc.proc_start != 0
                && m.start == rec.proc.proc_start)
                || procfs::environ_contains(m.pid, &marker)
        });
        if ours {
            killed |= procfs::terminate_group(rec.proc.pgid, grace)
                .await
                .map_err(|e| HostError::io("cannot stop an orphaned process group", e))?;
        }
        // Anything else still carrying the attempt's id (it left the group,
        // or orca died before journaling the group).
        // SAFETY: getpgrp(2) cannot fail.
        let own_group = unsafe { libc::getpgrp() };
        for s in procfs::with_env(&marker) {
            if s.pid as u32 == std::process::id() {
                continue;
            }
            if s.pgrp > 1 && s.pgrp != own_group {
                killed |= procfs::terminate_group(s.pgrp, grace)
                    .await
                    .map_err(|e| HostError::io("cannot stop an orphaned process group", e))?;
            } else {
                killed |= procfs::signal_pid(s.pid, libc::SIGKILL);
            }
        }
        Ok(killed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::EnvVar;
    use tokio::io::AsyncReadExt;

    fn launch(ws: &Path, argv: &[&str], env: Vec<EnvVar>) -> Launch {
        Launch {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env,
            paths: HostPaths {
                workspace: ws.display().to_string(),
                cwd: ws.display().to_string(),
                attempt_dir: ws.join("a").display().to_string(),
            },
            attempt_id: "r:t:1".into(),
            stdin: None,
            confine: Default::default(),
        }
    }

    #[tokio::test]
    async fn runs_in_its_own_group_with_exactly_the_env() {
        let ws = tempfile::tempdir().unwrap();
        let host = LocalHost::new(ws.path());
        let mut r = host
            .start(launch(
                ws.path(),
                &["sh", "-c", "echo $$ $(ps -o pgid= $$ 2>/dev/null || cat /proc/$$/stat | cut -d' ' -f5); env | sort; pwd; read x || echo stdin-closed"],
                vec![EnvVar::plain("PATH", "/usr/bin:/bin"), EnvVar::plain("ORCA_X", "1")],
            ))
            .await
            .unwrap();
        let mut out = String::new();
        r.stdout.read_to_string(&mut out).await.unwrap();
        let exit = r.exit.await.unwrap();
        assert_eq!(exit.code, Some(0));
        let mut lines = out.lines();
        let ids: Vec<i64> = lines
            .next()
            .unwrap()
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(ids[0], ids[1], "the process leads its own group");
        assert_eq!(ids[0] as u32, r.proc.pid);
        let env: Vec<&str> = lines.by_ref().take_while(|l| l.contains('=')).collect();
        let names: Vec<&str> = env.iter().map(|l| l.split('=').next().unwrap()).collect();
        // sh adds PWD (and may add SHLVL / _): nothing from orca's own env.
        assert!(names.contains(&"ORCA_X") && names.contains(&"PATH"));
        assert!(!names.contains(&"HOME"), "{names:?}");
        assert!(out.contains("stdin-closed"));
        assert!(r.proc.proc_start > 0);
    }

    #[test]
    fn programs_resolve_in_the_workers_path() {
        let cwd = Path::new("/");
        assert_eq!(
            resolve_program("sh", "/nonexistent:/bin", cwd),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(resolve_program("./x", "", cwd), Some(PathBuf::from("./x")));
        assert_eq!(resolve_program("sh", "/nonexistent", cwd), None);
    }

    #[test]
    fn a_remembered_lookup_follows_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        let install = |d: &Path| {
            let p = d.join("orca-prog");
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let path_var = format!("{}:{}", first.display(), second.display());
        let cwd = Path::new("/");
        assert_eq!(resolve_program("orca-prog", &path_var, cwd), None);
        let in_second = install(&second);
        // Not found is not remembered: found as soon as it is there.
        assert_eq!(
            resolve_program("orca-prog", &path_var, cwd),
            Some(in_second.clone())
        );
        // One installed earlier in the PATH: the remembered one is still
        // used, for at most RESOLVED_FOR.
        let in_first = install(&first);
        assert_eq!(
            resolve_program("orca-prog", &path_var, cwd),
            Some(in_second.clone())
        );
        // The remembered file removed: looked up again at once.
        std::fs::remove_file(&in_second).unwrap();
        assert_eq!(
            resolve_program("orca-prog", &path_var, cwd),
            Some(in_first.clone())
        );
        // A file that lost its execute bit is not used either.
        install(&second);
        std::fs::set_permissions(&in_first, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            resolve_program("orca-prog", &path_var, cwd),
            Some(in_second)
        );
    }

    #[tokio::test]
    async fn missing_program_is_a_spawn_error() {
        let ws = tempfile::tempdir().unwrap();
        let host = LocalHost::new(ws.path());
        let err = host
            .start(launch(
                ws.path(),
                &["definitely-not-a-program-xyz"],
                vec![EnvVar::plain("PATH", "/usr/bin:/bin")],
            ))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, HostError::Spawn { .. }), "{err}");
        assert!(!err.is_transport());
    }

    #[tokio::test]
    async fn kill_orphan_only_kills_ours() {
        let ws = tempfile::tempdir().unwrap();
        let host = LocalHost::new(ws.path());
        // kill_orphan also finds the attempt's processes by environment,
        // machine-wide: an id unique to this test process.
        let id = format!("r{}:t:1", std::process::id());
        let r = host
            .start(launch(
                ws.path(),
                &["sleep", "30"],
                vec![
                    EnvVar::plain("PATH", "/usr/bin:/bin"),
                    EnvVar::plain("ORCA_ATTEMPT_ID", &id),
                ],
            ))
            .await
            .unwrap();
        let exit = tokio::spawn(r.exit);
        // A record with a wrong start time and a wrong attempt id is not ours.
        let stranger = RecordedProc {
            proc: ProcHandle {
                proc_start: r.proc.proc_start + 1,
                ..r.proc
            },
            attempt_id: "someone:else:1".into(),
        };
        assert!(!host.kill_orphan(&stranger, 100).await.unwrap());
        assert!(host.alive(&r.proc).await.unwrap());
        let ours = RecordedProc {
            proc: r.proc,
            attempt_id: id.clone(),
        };
        assert!(host.kill_orphan(&ours, 2_000).await.unwrap());
        let info = exit.await.unwrap().unwrap();
        assert_eq!(info.signal, Some(libc::SIGTERM));
        assert!(!host.alive(&r.proc).await.unwrap());
    }
}
