//! The kernel's own confinement for processes orca starts on this machine:
//! a cgroup ([`super::cgroup`]), Landlock (writes only under the allowed
//! paths; reads everywhere) and a network namespace of its own (`deny`: no
//! interface at all; `loopback`: only `lo`, brought up by orca).
//!
//! Everything that allocates or can fail in an interesting way happens in
//! orca before the fork: the Landlock ruleset is built (its fd has
//! `O_CLOEXEC`, so the program never sees it), the cgroup is created and
//! its `cgroup.procs` opened. Between fork and exec the child only makes
//! raw syscalls on those fds ([`PreExec::apply`]): `write` (enter the
//! cgroup), `unshare(CLONE_NEWNET)`, `socket` + `ioctl(SIOCSIFFLAGS)` (bring
//! `lo` up), `prctl(PR_SET_NO_NEW_PRIVS)` and `landlock_restrict_self`.
//!
//! Landlock is used through its three syscalls directly (no crate): the
//! child half must be raw syscalls anyway, and the parent half is three
//! small `#[repr(C)]` structs.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Network isolation of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetIsolation {
    /// A new network namespace with no interface up.
    Deny,
    /// A new network namespace with only `lo`, up.
    Loopback,
}

/// What a forked child does to itself before exec (all optional).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PreExec {
    /// `cgroup.procs` of its cgroup (entered by a write: the fallback).
    pub cgroup_procs: Option<RawFd>,
    /// Its cgroup's directory: the process is created in it
    /// (`clone3(CLONE_INTO_CGROUP)`, [`super::clone3`]).
    pub cgroup_dir: Option<RawFd>,
    /// A network namespace of its own.
    pub network: Option<NetIsolation>,
    /// A Landlock ruleset to restrict itself with.
    pub landlock: Option<RawFd>,
}

impl PreExec {
    pub fn is_empty(&self) -> bool {
        *self == PreExec::default()
    }

    /// Runs in the child between fork and exec: raw syscalls only.
    pub fn apply(&self) -> io::Result<()> {
        if let Some(fd) = self.cgroup_procs {
            super::cgroup::enter_in_child(fd)?;
        }
        if let Some(net) = self.network {
            // SAFETY: unshare(2) with a constant flag.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            if net == NetIsolation::Loopback {
                loopback_up()?;
            }
        }
        if let Some(fd) = self.landlock {
            // SAFETY: prctl(2) and landlock_restrict_self(2) with constant
            // arguments and an fd prepared (and kept open) by the parent.
            unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::syscall(libc::SYS_landlock_restrict_self, fd, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }
}

/// `struct ifreq` with the flags member (40 bytes on Linux).
#[repr(C)]
struct IfReqFlags {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Brings `lo` up in the current network namespace: `socket` and two
/// `ioctl`s, no allocation (async-signal-safe).
fn loopback_up() -> io::Result<()> {
    // SAFETY: socket(2), ioctl(2) on a stack struct of the kernel's layout,
    // close(2).
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req = IfReqFlags {
            name: [0; 16],
            flags: 0,
            _pad: [0; 22],
        };
        req.name[..2].copy_from_slice(b"lo");
        let mut r = libc::ioctl(s, libc::SIOCGIFFLAGS as _, &mut req);
        if r == 0 {
            req.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            r = libc::ioctl(s, libc::SIOCSIFFLAGS as _, &mut req);
        }
        let err = io::Error::last_os_error();
        libc::close(s);
        if r != 0 {
            return Err(err);
        }
    }
    Ok(())
}

/// capability(7) number of CAP_SYS_ADMIN.
const CAP_SYS_ADMIN: u32 = 21;

// --- Landlock ----------------------------------------------------------

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;

const ACCESS_FS_WRITE_FILE: u64 = 1 << 1;
const ACCESS_FS_REMOVE_DIR: u64 = 1 << 4;
const ACCESS_FS_REMOVE_FILE: u64 = 1 << 5;
const ACCESS_FS_MAKE_CHAR: u64 = 1 << 6;
const ACCESS_FS_MAKE_DIR: u64 = 1 << 7;
const ACCESS_FS_MAKE_REG: u64 = 1 << 8;
const ACCESS_FS_MAKE_SOCK: u64 = 1 << 9;
const ACCESS_FS_MAKE_FIFO: u64 = 1 << 10;
const ACCESS_FS_MAKE_BLOCK: u64 = 1 << 11;
const ACCESS_FS_MAKE_SYM: u64 = 1 << 12;
const ACCESS_FS_REFER: u64 = 1 << 13; // ABI 2
const ACCESS_FS_TRUNCATE: u64 = 1 << 14; // ABI 3

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version of the running kernel (`None`: no Landlock, or
/// disabled).
pub fn landlock_abi() -> Option<u32> {
    // SAFETY: the documented version query: NULL attr, size 0.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    (v > 0).then_some(v as u32)
}

/// Whether this process may create network namespaces (CAP_SYS_ADMIN in
/// its effective set).
pub fn can_unshare_net() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// Set to `off` to treat this host as unable to confine (no Landlock, no
/// network namespaces): `strict` policies then refuse to start and
/// `best_effort` ones run unconfined, with a note.
pub const ENV_SWITCH: &str = "ORCA_CONFINE";

/// What this machine can enforce for a process orca starts.
pub fn local_caps() -> crate::policy::HostCaps {
    if matches!(
        std::env::var(ENV_SWITCH).as_deref(),
        Ok("off") | Ok("0") | Ok("false")
    ) {
        return crate::policy::HostCaps::default();
    }
    static CAPS: std::sync::OnceLock<crate::policy::HostCaps> = std::sync::OnceLock::new();
    *CAPS.get_or_init(|| crate::policy::HostCaps {
        landlock: landlock_abi().is_some(),
        netns: can_unshare_net(),
    })
}

/// Why a ruleset could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("Landlock is not available on this kernel")]
    NoLandlock,
    #[error("Landlock: {what}: {source}")]
    Landlock {
        what: String,
        #[source]
        source: io::Error,
    },
}

/// A Landlock ruleset ready for [`PreExec::landlock`]: writes only under
/// its paths.
#[derive(Debug)]
pub struct Ruleset {
    fd: OwnedFd,
}

impl Ruleset {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Where writes are allowed: directories (everything under them) and
/// single files (write and truncate only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Writable {
    pub dirs: Vec<PathBuf>,
    pub files: Vec<PathBuf>,
}

/// The write rights Landlock handles on `abi` (reads and execution are
/// not handled: allowed everywhere).
fn handled_writes(abi: u32) -> u64 {
    let mut a = ACCESS_FS_WRITE_FILE
        | ACCESS_FS_REMOVE_DIR
        | ACCESS_FS_REMOVE_FILE
        | ACCESS_FS_MAKE_CHAR
        | ACCESS_FS_MAKE_DIR
        | ACCESS_FS_MAKE_REG
        | ACCESS_FS_MAKE_SOCK
        | ACCESS_FS_MAKE_FIFO
        | ACCESS_FS_MAKE_BLOCK
        | ACCESS_FS_MAKE_SYM;
    if abi >= 2 {
        a |= ACCESS_FS_REFER;
    }
    if abi >= 3 {
        a |= ACCESS_FS_TRUNCATE;
    }
    a
}

/// Builds the ruleset (in orca, before the fork). A path that does not
/// exist is skipped (nothing there to write into).
pub fn writable_ruleset(w: &Writable) -> Result<Ruleset, SandboxError> {
    let abi = landlock_abi().ok_or(SandboxError::NoLandlock)?;
    let handled = handled_writes(abi);
    let attr = RulesetAttr {
        handled_access_fs: handled,
    };
    // SAFETY: a valid attr of the size given; the kernel returns a new fd
    // (O_CLOEXEC) or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(SandboxError::Landlock {
            what: "cannot create a ruleset".into(),
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: a fresh fd the kernel just gave us.
    let ruleset = Ruleset {
        fd: unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
    };
    let file_rights = handled & (ACCESS_FS_WRITE_FILE | ACCESS_FS_TRUNCATE);
    let rules = w
        .dirs
        .iter()
        .map(|d| (d, handled))
        .chain(w.files.iter().map(|f| (f, file_rights)));
    for (path, rights) in rules {
        let Ok(file) = std::fs::File::options()
            .read(true)
            .custom_flags_path()
            .open(path)
        else {
            continue;
        };
        let rights = if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            rights
        } else {
            rights & file_rights
        };
        let rule = PathBeneathAttr {
            allowed_access: rights,
            parent_fd: file.as_raw_fd(),
        };
        // SAFETY: a valid ruleset fd and a packed rule of the kernel's
        // layout.
        let r = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset.fd(),
                RULE_PATH_BENEATH,
                &rule as *const PathBeneathAttr,
                0u32,
            )
        };
        if r != 0 {
            return Err(SandboxError::Landlock {
                what: format!("cannot allow writes under {}", path.display()),
                source: io::Error::last_os_error(),
            });
        }
    }
    Ok(ruleset)
}

trait PathFlags {
    fn custom_flags_path(&mut self) -> &mut Self;
}

impl PathFlags for std::fs::OpenOptions {
    /// `O_PATH`: a handle on the path, not its contents (works for
    /// directories, devices and files without read permission).
    fn custom_flags_path(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_PATH | libc::O_CLOEXEC)
    }
}

/// The device files every confined process may write.
pub const WRITABLE_DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/tty"];

/// What a host is asked to enforce for one process (decided by
/// [`crate::policy::plan`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Confine {
    /// Writes only under these (relative to the task's working directory)
    /// and the attempt's own places; `None`: unrestricted.
    pub writable: Option<Vec<String>>,
    pub network: Option<crate::spec::NetworkPolicy>,
}

impl Confine {
    pub fn is_empty(&self) -> bool {
        self.writable.is_none() && self.network.is_none()
    }
}

/// A confinement made ready before the fork.
#[derive(Debug, Default)]
pub struct Prepared {
    pub ruleset: Option<Ruleset>,
    pub network: Option<NetIsolation>,
    /// The private `TMPDIR` (set in the process's environment).
    pub tmpdir: Option<PathBuf>,
}

impl Prepared {
    /// The child's part, in `cgroup` (if any; its `cgroup.procs` is opened
    /// only if the process cannot be created in it, see
    /// [`super::process::spawn`]).
    pub fn pre_exec(&self, cgroup: Option<&super::cgroup::Cgroup>) -> PreExec {
        PreExec {
            cgroup_procs: None,
            cgroup_dir: cgroup.map(super::cgroup::Cgroup::dir_fd),
            network: self.network,
            landlock: self.ruleset.as_ref().map(Ruleset::fd),
        }
    }
}

/// Prepares `c` for a process working in the task directory `task_root`
/// (relative, `None` = the workspace root) of `workspace`, whose attempt
/// directory is `attempt_dir`: creates the writable directories that do
/// not exist yet (refusing any that leads out of the workspace), the
/// private `TMPDIR` (`<attempt_dir>/tmp`), and builds the ruleset.
pub fn prepare(
    c: &Confine,
    workspace: &Path,
    task_root: Option<&str>,
    attempt_dir: &Path,
) -> Result<Prepared, String> {
    let mut p = Prepared {
        network: c.network.and_then(|n| match n {
            crate::spec::NetworkPolicy::Deny => Some(NetIsolation::Deny),
            crate::spec::NetworkPolicy::Loopback => Some(NetIsolation::Loopback),
            crate::spec::NetworkPolicy::Allow => None,
        }),
        ..Default::default()
    };
    let Some(rel) = &c.writable else {
        return Ok(p);
    };
    let mut w = Writable {
        dirs: Vec::new(),
        files: WRITABLE_DEVICES.iter().map(PathBuf::from).collect(),
    };
    for r in rel {
        // Checked through symlinks before anything is created, and again
        // after: a link out of the workspace is refused, never followed.
        let resolve = || {
            crate::spec::paths::resolve_existing(workspace, task_root, None, r)
                .map_err(|e| format!("writable_paths: {e}"))
        };
        let first = resolve()?;
        if !first.exists() {
            std::fs::create_dir_all(&first)
                .map_err(|e| format!("writable_paths: cannot create {}: {e}", first.display()))?;
        }
        let real = resolve()?;
        if real.is_dir() {
            w.dirs.push(real);
        } else {
            w.files.push(real);
        }
    }
    let tmp = attempt_dir.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    w.dirs.push(attempt_dir.to_path_buf());
    p.ruleset = Some(writable_ruleset(&w).map_err(|e| e.to_string())?);
    p.tmpdir = Some(tmp);
    Ok(p)
}

/// Whether `path` lies under one of `w`'s directories (or is one of its
/// files): the same rule the kernel applies, for messages and tests.
pub fn allows(w: &Writable, path: &Path) -> bool {
    w.dirs.iter().any(|d| path.starts_with(d)) || w.files.iter().any(|f| f == path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn run_confined(pre: PreExec, script: &str) -> std::process::Output {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", script]);
        // SAFETY: PreExec::apply makes raw syscalls only.
        unsafe {
            cmd.pre_exec(move || pre.apply());
        }
        cmd.output().unwrap()
    }

    #[test]
    fn landlock_allows_writes_only_under_the_paths() {
        if landlock_abi().is_none() {
            eprintln!("no Landlock here: skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (inside, outside) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let rs = writable_ruleset(&Writable {
            dirs: vec![inside.clone()],
            files: WRITABLE_DEVICES.iter().map(PathBuf::from).collect(),
        })
        .unwrap();
        let pre = PreExec {
            landlock: Some(rs.fd()),
            ..Default::default()
        };
        let out = run_confined(
            pre,
            &format!(
                "echo a > {i}/f && echo ok; echo b > /dev/null && echo devnull; \
                 echo e > /dev/stderr && echo stderr; \
                 cat /etc/hostname >/dev/null && echo read; echo c > {o}/f || echo denied",
                i = inside.display(),
                o = outside.display()
            ),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("ok") && text.contains("devnull"), "{text}");
        assert!(
            text.contains("stderr"),
            "re-opening a pipe by /dev/stderr: {text}"
        );
        assert!(text.contains("read") && text.contains("denied"), "{text}");
        assert!(inside.join("f").exists());
        assert!(!outside.join("f").exists());
        assert!(allows(
            &Writable {
                dirs: vec![inside.clone()],
                files: vec![]
            },
            &inside.join("x/y")
        ));
    }

    #[test]
    fn network_namespaces_deny_or_keep_loopback() {
        if !can_unshare_net() {
            eprintln!("cannot create network namespaces here: skipped");
            return;
        }
        let probe = |net| {
            let out = run_confined(
                PreExec {
                    network: Some(net),
                    ..Default::default()
                },
                "tail -n +3 /proc/net/dev | cut -d: -f1; \
                 bash -c 'echo > /dev/tcp/127.0.0.1/1' 2>&1; true",
            );
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let deny = probe(NetIsolation::Deny);
        let lo = probe(NetIsolation::Loopback);
        // Only `lo` exists in a new namespace; only `loopback` brings it up
        // (a closed port is then refused rather than unreachable).
        assert_eq!(deny.lines().next().map(str::trim), Some("lo"), "{deny}");
        assert!(deny.contains("unreachable"), "{deny}");
        assert_eq!(lo.lines().next().map(str::trim), Some("lo"), "{lo}");
        assert!(lo.contains("refused"), "{lo}");
    }
}
