//! A cgroup (v2) per process orca starts on this machine, so that *every*
//! descendant — also one that called `setsid` and left the process group —
//! is found and killed when the attempt (or verifier) ends.
//!
//! orca looks for the cgroup v2 hierarchy (the `unified` mount on a hybrid
//! host, `/sys/fs/cgroup` on a pure v2 one), and creates
//! `<its own cgroup>/orca/<orca pid>.<n>` for each process it starts. The
//! child moves itself in before it runs its program (a `write` of `0` to a
//! `cgroup.procs` fd opened before the fork: async-signal-safe), so nothing
//! it starts can be outside. At the end `cgroup.kill` kills the whole
//! cgroup at once, orca waits (on pidfds) for its members to be gone, and
//! removes the directory.
//!
//! No subreaper is involved: tokio keeps reaping its own children, and the
//! kernel's `cgroup.kill` needs none. Where cgroups cannot be used (not
//! root and no delegated subtree, no cgroup v2, a kernel before 5.14 with
//! no `cgroup.kill`) orca falls back to killing the process group — and
//! says so once in its log and in each receipt ([`unavailable`]).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Set to `0` / `off` to turn cgroups off (process-group kill only).
pub const ENV_SWITCH: &str = "ORCA_CGROUPS";

/// Where orca's per-process cgroups go.
#[derive(Debug)]
struct Parent {
    dir: PathBuf,
}

static PARENT: OnceLock<Result<Parent, String>> = OnceLock::new();
static NEXT: AtomicU64 = AtomicU64::new(1);

/// The cgroup v2 mount point, from `/proc/self/mountinfo` text.
fn cgroup2_mount(mountinfo: &str) -> Option<(PathBuf, String)> {
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let f: Vec<&str> = pre.split_whitespace().collect();
        Some((PathBuf::from(f.get(4)?), f.get(3)?.to_string()))
    })
}

/// The process's own cgroup v2 path, from `/proc/self/cgroup` text.
fn own_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// Where orca's cgroups go on this host, decided from the two `/proc`
/// texts (a pure function, tested without a kernel).
fn parent_dir(mountinfo: &str, cgroup: &str) -> Result<PathBuf, String> {
    let (mount, mount_root) =
        cgroup2_mount(mountinfo).ok_or("no cgroup v2 hierarchy is mounted")?;
    let own = own_cgroup(cgroup).ok_or("orca's own cgroup v2 path is unknown")?;
    let rel = own
        .strip_prefix(mount_root.trim_end_matches('/'))
        .unwrap_or(&own)
        .trim_start_matches('/');
    Ok(mount.join(rel).join("orca"))
}

/// Whether `ORCA_CGROUPS` turns cgroups off (read at every use, so a
/// bench can compare both in one process).
fn switched_off() -> bool {
    matches!(
        std::env::var(ENV_SWITCH).as_deref(),
        Ok("0") | Ok("off") | Ok("false")
    )
}

fn parent() -> Result<&'static Parent, &'static str> {
    PARENT
        .get_or_init(|| {
            let mi = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
            let cg = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
            let dir = parent_dir(&mi, &cg)?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            // Probe once: a cgroup of our own, with cgroup.kill (5.14+).
            let probe = dir.join(format!("{}.probe", std::process::id()));
            let _ = std::fs::create_dir(&probe);
            let has_kill = probe.join("cgroup.kill").exists();
            let _ = std::fs::remove_dir(&probe);
            if !has_kill {
                return Err(format!(
                    "cannot create cgroups with cgroup.kill under {}",
                    dir.display()
                ));
            }
            Ok(Parent { dir })
        })
        .as_ref()
        .map_err(|e| {
            static WARNED: OnceLock<()> = OnceLock::new();
            WARNED.get_or_init(|| {
                tracing::warn!(
                    reason = %e,
                    "cgroups unavailable: processes that leave their process group may outlive \
                     their attempt (containment falls back to the process group)"
                );
            });
            e.as_str()
        })
}

/// Why cgroup containment is not used on this host, if it is not.
pub fn unavailable() -> Option<String> {
    if switched_off() {
        return Some(format!(
            "containment: process group only, no cgroup (turned off with {ENV_SWITCH}); a process that calls setsid can outlive its attempt"
        ));
    }
    parent().err().map(|e| {
        format!("containment: process group only, no cgroup ({e}); a process that calls setsid can outlive its attempt")
    })
}

/// One process's cgroup. Dropping it kills what is left and removes it.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    procs: OwnedFd,
    /// The directory, open for `clone3(CLONE_INTO_CGROUP)`.
    dir_fd: OwnedFd,
    /// Set once `rmdir` succeeded: nothing left for `Drop`.
    removed: std::sync::atomic::AtomicBool,
}

impl Cgroup {
    /// A new, empty cgroup; `Err` with the reason when cgroups are not
    /// usable here.
    pub fn create() -> Result<Cgroup, String> {
        if switched_off() {
            return Err(format!("turned off ({ENV_SWITCH})"));
        }
        let p = parent()?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = p.dir.join(format!("{}.{n}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(|e| {
                let _ = std::fs::remove_dir(&dir);
                format!("cannot open {}/cgroup.procs: {e}", dir.display())
            })?;
        let dir_fd = std::fs::File::open(&dir).map_err(|e| {
            let _ = std::fs::remove_dir(&dir);
            format!("cannot open {}: {e}", dir.display())
        })?;
        Ok(Cgroup {
            dir,
            procs: procs.into(),
            dir_fd: dir_fd.into(),
            removed: Default::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The `cgroup.procs` fd the child writes `0` into (moving itself).
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// The cgroup's directory fd (`CLONE_INTO_CGROUP`).
    pub fn dir_fd(&self) -> RawFd {
        self.dir_fd.as_raw_fd()
    }

    /// Live members.
    pub fn pids(&self) -> Vec<i32> {
        let mut s = String::new();
        let _ = std::fs::File::open(self.dir.join("cgroup.procs"))
            .and_then(|mut f| f.read_to_string(&mut s));
        s.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// Whether any process is still in it.
    pub fn populated(&self) -> bool {
        std::fs::read_to_string(self.dir.join("cgroup.events"))
            .map(|t| t.lines().any(|l| l.trim() == "populated 1"))
            .unwrap_or(false)
    }

    /// Sends `sig` to every member (SIGTERM to the ones that left the
    /// process group, too).
    pub fn signal_all(&self, sig: i32) {
        for pid in self.pids() {
            super::procfs::signal_pid(pid, sig);
        }
    }

    /// SIGKILL to every member at once (`cgroup.kill`).
    pub fn kill(&self) -> io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.kill"))?
            .write_all(b"1")
    }

    /// Removes the cgroup, first killing every member still in it and
    /// waiting (at most `limit`) until they are gone. True when no process
    /// is left in it.
    ///
    /// The usual case — the attempt's processes all ended — is one
    /// `rmdir`: the kernel refuses it (`EBUSY`) while the cgroup is
    /// populated, so no `cgroup.events` read is needed to find out (each
    /// read of a fresh cgroup's file cost about 60 µs here, twice an
    /// attempt before).
    pub async fn kill_and_wait(&self, limit: Duration) -> bool {
        if self.remove().is_ok() {
            return true;
        }
        if let Err(e) = self.kill() {
            tracing::warn!(cgroup = %self.dir.display(), error = %e, "cgroup.kill failed");
            self.signal_all(libc::SIGKILL);
        }
        let pids = self.pids();
        super::procfs::wait_gone(&pids, limit).await;
        // Killed members may still be exiting: then `Drop` (or the next
        // sweep of stale ones) removes the directory.
        self.remove().is_ok() || !self.populated()
    }

    /// Removes the (empty) cgroup; `EBUSY` while a process is in it.
    /// Removing it again once removed is `Ok`.
    pub fn remove(&self) -> io::Result<()> {
        if self.removed.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        match std::fs::remove_dir(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => {
                self.removed
                    .store(true, std::sync::atomic::Ordering::Release);
                Ok(())
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if self.remove().is_ok() {
            return;
        }
        let _ = self.kill();
        // Members killed just now may still be exiting: then the directory
        // stays (empty, harmless) until the next cleanup of stale ones.
        let _ = self.remove();
    }
}

/// Removes the *empty* cgroups left by orca processes that no longer exist
/// (a crash); called when a process first uses cgroups. A populated one is
/// left alone: its processes are a crashed orca's orphans, possibly of
/// another workspace, and only that workspace's next start may decide
/// about them (it reconciles its own orphans by their recorded group and
/// `ORCA_ATTEMPT_ID`); killing them here raced with that and killed other
/// workspaces' work. The directory goes at a later sweep, once empty.
pub fn sweep_stale() {
    let Ok(p) = parent() else { return };
    let Ok(rd) = std::fs::read_dir(&p.dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split('.').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid as u32 != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            // rmdir(2) refuses a populated cgroup (EBUSY): only empty ones
            // go.
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// In the forked child, before exec: moves the calling process into the
/// cgroup whose `cgroup.procs` is `fd`. Only a raw `write(2)`:
/// async-signal-safe.
pub fn enter_in_child(fd: RawFd) -> io::Result<()> {
    // SAFETY: write(2) on an fd that stays open for the spawn; a static
    // buffer.
    let r = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    if r == 1 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
    const PURE: &str = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn finds_the_v2_hierarchy_and_our_place_in_it() {
        assert_eq!(
            parent_dir(HYBRID, "4:memory:/x\n0::/\n").unwrap(),
            PathBuf::from("/sys/fs/cgroup/unified/orca")
        );
        assert_eq!(
            parent_dir(PURE, "0::/user.slice/user-1000.slice/session-2.scope\n").unwrap(),
            PathBuf::from("/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/orca")
        );
        assert!(parent_dir("1 2 0:1 / / rw - ext4 /dev/sda rw\n", "0::/\n").is_err());
        assert!(parent_dir(PURE, "1:cpu:/\n").is_err());
    }

    #[tokio::test]
    async fn an_empty_cgroup_is_removed_at_once_and_dropping_it_after_is_a_no_op() {
        let Ok(cg) = Cgroup::create() else {
            eprintln!("cgroups unavailable here: skipped");
            return;
        };
        let dir = cg.path().to_path_buf();
        assert!(dir.is_dir());
        assert!(cg.kill_and_wait(Duration::from_secs(1)).await);
        assert!(!dir.exists(), "removed by its one rmdir");
        assert!(cg.remove().is_ok(), "removing it again is not an error");
        drop(cg);
        assert!(!dir.exists());
    }

    #[tokio::test]
    async fn a_cgroup_kills_everything_inside() {
        let Ok(cg) = Cgroup::create() else {
            eprintln!("cgroups unavailable here: skipped");
            return;
        };
        let fd = cg.procs_fd();
        let mut cmd = std::process::Command::new("sh");
        // A detached grandchild that left the group.
        cmd.args([
            "-c",
            "setsid sleep 1000 >/dev/null 2>&1 </dev/null & echo $!",
        ]);
        cmd.stdout(std::process::Stdio::piped());
        // SAFETY: the closure only calls write(2).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || enter_in_child(fd));
        }
        let out = cmd.output().unwrap();
        let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(cg.pids().contains(&pid), "the grandchild is in the cgroup");
        assert!(cg.populated());
        assert!(cg.kill_and_wait(Duration::from_secs(5)).await);
        let st = super::super::procfs::stat(pid);
        assert!(st.is_none() || st.unwrap().state == 'Z', "{st:?}");
        let dir = cg.path().to_path_buf();
        drop(cg);
        assert!(!dir.exists());
    }
}
