//! A cgroup (v2) per process orca starts on this machine, so that *every*
//! descendant — also one that called `setsid` and left the process group —
//! is found and killed when the attempt (or verifier) ends.
//!
//! orca looks for the cgroup v2 hierarchy (the `unified` mount on a hybrid
//! host, `/sys/fs/cgroup` on a pure v2 one), and runs each process it
//! starts in a cgroup `<its own cgroup>/orca/<orca pid>.<n>` of its own.
//! The process is created in it (`clone3(CLONE_INTO_CGROUP)`; where the
//! kernel cannot, the child moves itself in before it runs its program by
//! a `write` of `0` to a `cgroup.procs` fd opened before the fork), so
//! nothing it starts can be outside. At the end whatever is left is killed
//! at once (`cgroup.kill`), orca waits (on pidfds) for it to be gone, and
//! the empty cgroup goes back to a pool for the next process ([`POOL`]):
//! a cgroup is made only when none is free and removed when orca exits.
//!
//! No subreaper is involved: tokio keeps reaping its own children, and the
//! kernel's `cgroup.kill` needs none. Where cgroups cannot be used (not
//! root and no delegated subtree, no cgroup v2, a kernel before 5.14 with
//! no `cgroup.kill`) orca falls back to killing the process group — and
//! says so once in its log and in each receipt ([`unavailable`]).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
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

/// A cgroup directory of this process, kept open: what a [`Cgroup`] holds
/// and what the pool keeps between processes.
#[derive(Debug)]
struct Slot {
    dir: PathBuf,
    /// The directory: `clone3(CLONE_INTO_CGROUP)` and `openat` of its files.
    dir_fd: OwnedFd,
    /// Its `cgroup.events`, read with `pread` to learn whether it is empty
    /// (about 3 µs; opening the file each time cost 15 µs, and 60 µs on a
    /// fresh cgroup).
    events: std::fs::File,
    /// `cgroup.kill` was written to it: it is never handed out again (see
    /// [`POOL`]).
    killed: AtomicBool,
}

/// Empty cgroups kept for the next process. Creating and removing a cgroup
/// takes the kernel's cgroup lock and ~80 µs here (mkdir + rmdir); reused,
/// a cgroup per attempt costs a few `pread`s of `cgroup.events` (~3 µs
/// each): when it is taken, when the attempt ends (`kill_and_wait`) and
/// when it is given back.
///
/// Only cgroups that were never killed come back: on this kernel (6.18) a
/// process created by `clone3(CLONE_INTO_CGROUP)` in a cgroup that was once
/// written `cgroup.kill` is SIGKILLed at birth, every time after (the
/// kernel compares kill counters it should not), so a reused killed cgroup
/// killed the next attempts started in it. A killed cgroup is removed once
/// its members are gone ([`DOOMED`]). A pooled one is taken only once
/// `cgroup.events` says it is empty, so a process never starts beside a
/// leftover of an earlier one. Removed at exit ([`drain_pool`]) or, after a
/// crash, by the next orca's [`sweep_stale`].
static POOL: Mutex<Vec<Slot>> = Mutex::new(Vec::new());
/// Killed cgroups whose members were still exiting when they were given
/// back: removed at a later give-back or at exit.
static DOOMED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// The most slots kept (more than the workers a workspace runs at once).
const POOL_MAX: usize = 256;

fn pool() -> MutexGuard<'static, Vec<Slot>> {
    lock(&POOL)
}

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    // Nothing panics while holding these; recover the data anyway.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slot {
    /// A new cgroup directory under `parent` (a name not taken yet: a
    /// directory left by an earlier process with this pid is skipped, never
    /// reused).
    fn create(parent: &Path) -> Result<Slot, String> {
        let pid = std::process::id();
        let mut tries = 0;
        let dir = loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = parent.join(format!("{pid}.{n}"));
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 64 => tries += 1,
                Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
            }
        };
        let opened = std::fs::File::open(&dir).and_then(|d| {
            let events = openat(d.as_raw_fd(), c"cgroup.events", libc::O_RDONLY)?;
            Ok((OwnedFd::from(d), std::fs::File::from(events)))
        });
        match opened {
            Ok((dir_fd, events)) => Ok(Slot {
                dir,
                dir_fd,
                events,
                killed: Default::default(),
            }),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(format!("cannot open {}: {e}", dir.display()))
            }
        }
    }

    /// Whether a process is in it; `None` when `cgroup.events` cannot be
    /// read.
    fn populated(&self) -> Option<bool> {
        let mut buf = [0u8; 128];
        let n = std::os::unix::fs::FileExt::read_at(&self.events, &mut buf, 0).ok()?;
        let text = std::str::from_utf8(&buf[..n]).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("populated "))
            .map(|v| v.trim() != "0")
    }

    /// Known to be empty (an unreadable `cgroup.events` is not).
    fn is_empty(&self) -> bool {
        self.populated() == Some(false)
    }

    /// SIGKILL to every member at once (`cgroup.kill`).
    fn kill(&self) -> io::Result<()> {
        self.killed.store(true, Ordering::Release);
        let fd = openat(self.dir_fd.as_raw_fd(), c"cgroup.kill", libc::O_WRONLY)?;
        std::fs::File::from(fd).write_all(b"1")
    }
}

/// `openat(2)` with `O_CLOEXEC`.
fn openat(dir: RawFd, name: &std::ffi::CStr, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: a valid directory fd and a NUL-terminated name; the fd
    // returned is new and owned by nobody else.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just opened, owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One process's cgroup. Dropping it gives it back: to the pool when it is
/// empty and was never killed, else killed (what is left) and removed.
#[derive(Debug)]
pub struct Cgroup {
    /// `None` only once `Drop` has given it back.
    slot: Option<Slot>,
    /// [`Cgroup::kill_and_wait`] found it empty, never killed: given back
    /// without reading `cgroup.events` again (nothing of the attempt is
    /// left to enter it).
    found_empty: AtomicBool,
}

impl Cgroup {
    /// An empty cgroup — a pooled one, or a new one when none is free;
    /// `Err` with the reason when cgroups are not usable here.
    pub fn create() -> Result<Cgroup, String> {
        if switched_off() {
            return Err(format!("turned off ({ENV_SWITCH})"));
        }
        let p = parent()?;
        let pooled = pool().pop();
        let slot = match pooled {
            Some(slot) if slot.is_empty() => slot,
            Some(slot) => {
                // Pooled empty and never killed, so nothing should be in it;
                // if something is, it is killed and removed, not reused.
                drop(Cgroup::of(slot));
                Slot::create(&p.dir)?
            }
            None => Slot::create(&p.dir)?,
        };
        Ok(Cgroup::of(slot))
    }

    fn of(slot: Slot) -> Cgroup {
        Cgroup {
            slot: Some(slot),
            found_empty: AtomicBool::new(false),
        }
    }

    fn slot(&self) -> &Slot {
        // Taken out only by `Drop`.
        self.slot.as_ref().expect("a live cgroup")
    }

    pub fn path(&self) -> &Path {
        &self.slot().dir
    }

    /// Its directory's name (`<orca pid>.<n>`), as `/proc/<pid>/cgroup`
    /// ends for its members.
    pub fn name(&self) -> String {
        self.path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The cgroup's directory fd (`CLONE_INTO_CGROUP`; the fallback opens
    /// `cgroup.procs` under it with [`open_procs`]).
    pub fn dir_fd(&self) -> RawFd {
        self.slot().dir_fd.as_raw_fd()
    }

    /// Live members.
    pub fn pids(&self) -> Vec<i32> {
        let mut s = String::new();
        let _ = openat(self.dir_fd(), c"cgroup.procs", libc::O_RDONLY)
            .map(std::fs::File::from)
            .and_then(|mut f| f.read_to_string(&mut s));
        s.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// Whether any process is still in it (`false` when that cannot be
    /// read).
    pub fn populated(&self) -> bool {
        self.slot().populated().unwrap_or(false)
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
        self.slot().kill()
    }

    /// Kills every member still in it and waits (at most `limit`) until
    /// they are gone. True when no process is left in it.
    ///
    /// The usual case — the attempt's processes all ended — is one `pread`
    /// of `cgroup.events`.
    pub async fn kill_and_wait(&self, limit: Duration) -> bool {
        if self.slot().is_empty() {
            self.found_empty.store(true, Ordering::Release);
            return true;
        }
        if let Err(e) = self.kill() {
            tracing::warn!(cgroup = %self.path().display(), error = %e, "cgroup.kill failed");
            self.signal_all(libc::SIGKILL);
        }
        let pids = self.pids();
        super::procfs::wait_gone(&pids, limit).await;
        // Killed: never handed out again; removed when given back (or, if
        // members are still exiting then, later).
        self.slot().is_empty()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        // Killed ones given back earlier, whose members may have gone since.
        let doomed = std::mem::take(&mut *lock(&DOOMED));
        for dir in doomed {
            remove_or_doom(dir);
        }
        if !slot.killed.load(Ordering::Acquire)
            && (self.found_empty.load(Ordering::Acquire) || slot.is_empty())
        {
            let mut pool = pool();
            if pool.len() < POOL_MAX {
                pool.push(slot);
                return;
            }
        } else if !slot.is_empty() {
            let _ = slot.kill();
        }
        remove_or_doom(slot.dir);
    }
}

/// Removes the cgroup directory `dir`, or, while it is busy (killed
/// members still exiting), keeps it in [`DOOMED`] for later.
fn remove_or_doom(dir: PathBuf) {
    match std::fs::remove_dir(&dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => lock(&DOOMED).push(dir),
        _ => {}
    }
}

/// Removes the pooled cgroups and the killed ones given back (at exit); one
/// whose killed members are still exiting is left (empty soon, harmless)
/// for the next orca's [`sweep_stale`].
pub fn drain_pool() {
    let slots = std::mem::take(&mut *pool());
    let doomed = std::mem::take(&mut *lock(&DOOMED));
    for dir in slots.into_iter().map(|s| s.dir).chain(doomed) {
        let _ = std::fs::remove_dir(&dir);
    }
}

/// Opens the `cgroup.procs` of the cgroup whose directory is `dir_fd`, for
/// a child to enter it by a write after the fork (the fallback when
/// `clone3(CLONE_INTO_CGROUP)` is not available).
pub fn open_procs(dir_fd: RawFd) -> io::Result<OwnedFd> {
    openat(dir_fd, c"cgroup.procs", libc::O_WRONLY)
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
    async fn an_empty_cgroup_goes_back_to_the_pool_and_is_taken_again() {
        let Some(cg) = usable() else {
            return;
        };
        let dir = cg.path().to_path_buf();
        assert!(dir.is_dir());
        assert!(cg.kill_and_wait(Duration::from_secs(1)).await);
        drop(cg);
        assert!(dir.is_dir(), "kept for the next process");
        // Other tests of this binary create cgroups at the same time: the
        // one given back is among the few most recent of the pool.
        let again: Vec<Cgroup> = (0..8).filter_map(|_| Cgroup::create().ok()).collect();
        assert!(
            again.iter().any(|c| c.path() == dir),
            "the pooled cgroup is reused"
        );
    }

    /// A cgroup, or `None` (said on stderr) where this host has none.
    fn usable() -> Option<Cgroup> {
        let cg = Cgroup::create().ok();
        if cg.is_none() {
            eprintln!("cgroups unavailable here: skipped");
        }
        cg
    }

    /// Starts, in `cg`, a shell whose background `sleep` calls setsid and
    /// detaches (a grandchild that left the group); its pid.
    fn detached_sleep_in(cg: &Cgroup) -> i32 {
        let fd = open_procs(cg.dir_fd()).unwrap();
        let raw = fd.as_raw_fd();
        let mut cmd = std::process::Command::new("sh");
        cmd.args([
            "-c",
            "setsid sleep 1000 >/dev/null 2>&1 </dev/null & echo $!",
        ]);
        cmd.stdout(std::process::Stdio::piped());
        // SAFETY: the closure only calls write(2).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || enter_in_child(raw));
        }
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    #[tokio::test]
    async fn a_cgroup_kills_everything_inside() {
        let Some(cg) = usable() else {
            return;
        };
        let pid = detached_sleep_in(&cg);
        assert!(cg.pids().contains(&pid), "the grandchild is in the cgroup");
        assert!(cg.populated());
        assert!(cg.kill_and_wait(Duration::from_secs(5)).await);
        let st = super::super::procfs::stat(pid);
        assert!(st.is_none() || st.unwrap().state == 'Z', "{st:?}");
        assert!(
            !cg.populated(),
            "cgroup.events, read again on the same fd, says empty"
        );
    }

    #[tokio::test]
    async fn a_killed_cgroup_is_removed_and_never_handed_out_again() {
        let Some(cg) = usable() else {
            return;
        };
        let pid = detached_sleep_in(&cg);
        let dir = cg.path().to_path_buf();
        // Given back without `kill_and_wait`: `Drop` kills what is left.
        drop(cg);
        assert!(
            !pool().iter().any(|s| s.dir == dir),
            "a killed cgroup is not pooled"
        );
        assert!(super::super::procfs::wait_gone(&[pid], Duration::from_secs(5)).await);
        // A later give-back removes it once its member is gone (other tests
        // give theirs back at the same time and may hold the list a moment).
        for _ in 0..1000 {
            if !dir.exists() {
                break;
            }
            drop(Cgroup::create().unwrap());
            tokio::task::yield_now().await;
        }
        assert!(!dir.exists(), "{} removed", dir.display());
    }
}
