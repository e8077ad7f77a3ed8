//! Starting a process straight into its cgroup: `clone3(CLONE_INTO_CGROUP)`.
//!
//! Moving a process into a cgroup by writing `cgroup.procs` takes the
//! kernel's global threadgroup rwsem for writing, which waits for an RCU
//! grace period: ~3 ms an attempt on this machine, serialized across every
//! attempt (the fan-out bench). A child created *in* its cgroup takes only
//! the fork path's read side. std and tokio cannot pass clone flags, so this
//! module does the fork and exec itself, the way std's fork path does:
//! everything (argv, envp, pipes) is prepared before `clone3`; the child
//! makes only raw async-signal-safe syscalls (`dup2`, `setpgid`, `chdir`,
//! [`PreExec::apply`], `sigprocmask`, `execve`) and reports a failure
//! through a close-on-exec pipe; the parent waits for the child's end on
//! its pidfd and reaps it with `waitid(P_PIDFD)` — tokio never sees it, so
//! no reaper can steal its status.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::sandbox::PreExec;
use super::ExitInfo;

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
const P_PIDFD: libc::idtype_t = 3;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A started child: its pid, pidfd and pipe ends.
#[derive(Debug)]
pub struct Child3 {
    pub pid: u32,
    pub pidfd: OwnedFd,
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fds from pipe2.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn cstring(s: &str, what: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// What failed in the child before exec (reported with its errno).
fn step_name(step: i32) -> &'static str {
    match step {
        1 => "dup2",
        2 => "setpgid",
        3 => "chdir",
        4 => "confinement (netns / Landlock)",
        _ => "execve",
    }
}

/// Starts `program` (an absolute or relative path, not looked up) with
/// `argv` (its `argv[0]` first) and exactly `env`, in `cwd`, in its own
/// process group, inside the cgroup whose directory is open as
/// `cgroup_dir`, applying `pre` (network, Landlock; its cgroup write is
/// not needed) before exec. stdout and stderr are pipes; stdin a pipe when
/// `stdin_piped`, else `/dev/null`. `Err` with `ENOSYS` / `EINVAL` /
/// `E2BIG`: this kernel has no `CLONE_INTO_CGROUP` (the caller falls back).
pub fn spawn(
    program: &std::path::Path,
    argv: &[String],
    env: &[(String, String)],
    cwd: &std::path::Path,
    stdin_piped: bool,
    cgroup_dir: RawFd,
    pre: PreExec,
) -> io::Result<Child3> {
    use std::os::unix::ffi::OsStrExt;
    let path = CString::new(program.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "program has a NUL byte"))?;
    let cwd_c = CString::new(cwd.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cwd has a NUL byte"))?;
    let argv_c: Vec<CString> = argv
        .iter()
        .map(|a| cstring(a, "an argument"))
        .collect::<io::Result<_>>()?;
    let env_c: Vec<CString> = env
        .iter()
        .map(|(k, v)| cstring(&format!("{k}={v}"), "an environment variable"))
        .collect::<io::Result<_>>()?;
    let mut argv_p: Vec<*const libc::c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut env_p: Vec<*const libc::c_char> = env_c.iter().map(|c| c.as_ptr()).collect();
    env_p.push(std::ptr::null());

    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (report_r, report_w) = pipe()?;
    let (stdin_child, stdin_parent) = if stdin_piped {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        let f = std::fs::File::open("/dev/null")?;
        (OwnedFd::from(f), None)
    };
    let pre = PreExec {
        cgroup_procs: None,
        ..pre
    };

    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: CLONE_PIDFD | CLONE_INTO_CGROUP,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_dir as u64,
        ..Default::default()
    };
    // Signals stay blocked across the clone so no handler of orca's runs
    // in the child; the parent restores its mask at once, the child
    // clears it right before exec.
    // SAFETY: sigset operations on zeroed stack values.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: clone3 without CLONE_VM: the child is a copy of this process;
    // until execve it only makes raw syscalls on values prepared above.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r == 0 {
        // The child.
        // SAFETY: raw syscalls only; `_exit` on any failure.
        unsafe {
            let fail = |step: i32| -> ! {
                let errno = *libc::__errno_location();
                let msg = [step, errno];
                libc::write(report_w.as_raw_fd(), msg.as_ptr().cast(), 8);
                libc::_exit(127)
            };
            if libc::dup2(stdin_child.as_raw_fd(), 0) < 0
                || libc::dup2(out_w.as_raw_fd(), 1) < 0
                || libc::dup2(err_w.as_raw_fd(), 2) < 0
            {
                fail(1);
            }
            if libc::setpgid(0, 0) != 0 {
                fail(2);
            }
            if libc::chdir(cwd_c.as_ptr()) != 0 {
                fail(3);
            }
            if pre.apply().is_err() {
                fail(4);
            }
            // As std does: SIGPIPE back to its default (Rust ignores it),
            // nothing blocked.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let empty: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::execve(path.as_ptr(), argv_p.as_ptr(), env_p.as_ptr());
            fail(5);
        }
    }
    let clone_err = io::Error::last_os_error();
    // SAFETY: restoring the mask saved above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
    if r < 0 {
        return Err(clone_err);
    }
    // SAFETY: the kernel wrote a fresh pidfd for the child.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    drop((out_w, err_w, report_w, stdin_child));
    // The report pipe closes on exec (EOF: success) or carries the failure.
    let mut msg = [0i32; 2];
    let n = loop {
        // SAFETY: read(2) into a stack buffer of 8 bytes.
        let n = unsafe { libc::read(report_r.as_raw_fd(), msg.as_mut_ptr().cast(), 8) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        break n;
    };
    if n == 8 {
        // Reap the failed child before answering.
        let _ = reap(&pidfd);
        let e = io::Error::from_raw_os_error(msg[1]);
        return Err(io::Error::new(
            e.kind(),
            format!("{} failed: {e}", step_name(msg[0])),
        ));
    }
    Ok(Child3 {
        pid: r as u32,
        pidfd,
        stdin: stdin_parent,
        stdout: out_r,
        stderr: err_r,
    })
}

/// `posix_spawnattr_setcgroup_np` (glibc 2.35+), looked up at run time so
/// an older glibc still loads orca.
type SetCgroup = unsafe extern "C" fn(*mut libc::posix_spawnattr_t, libc::c_int) -> libc::c_int;
const POSIX_SPAWN_SETCGROUP: libc::c_int = 0x100;

fn setcgroup_fn() -> Option<SetCgroup> {
    static F: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let addr = *F.get_or_init(|| {
        // SAFETY: dlsym(3) with a NUL-terminated name.
        unsafe {
            libc::dlsym(libc::RTLD_DEFAULT, c"posix_spawnattr_setcgroup_np".as_ptr()) as usize
        }
    });
    // SAFETY: the symbol, when present, has this signature (glibc's
    // <spawn.h>).
    (addr != 0).then(|| unsafe { std::mem::transmute::<usize, SetCgroup>(addr) })
}

/// Like [`spawn`] without any code of orca's in the child: glibc's
/// `posix_spawn` (`CLONE_VM | CLONE_VFORK`, so no page tables are copied
/// and orca's memory is not made copy-on-write) with
/// `POSIX_SPAWN_SETCGROUP`, which glibc turns into
/// `clone3(CLONE_INTO_CGROUP)`. For a process that needs only its cgroup
/// (no network namespace, no Landlock). `None`: this glibc cannot.
pub fn spawn_vfork(
    program: &std::path::Path,
    argv: &[String],
    env: &[(String, String)],
    cwd: &std::path::Path,
    stdin_piped: bool,
    cgroup_dir: RawFd,
) -> Option<io::Result<Child3>> {
    let setcgroup = setcgroup_fn()?;
    Some((|| {
        use std::os::unix::ffi::OsStrExt;
        let path = CString::new(program.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "program has a NUL byte"))?;
        let cwd_c = CString::new(cwd.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cwd has a NUL byte"))?;
        let argv_c: Vec<CString> = argv
            .iter()
            .map(|a| cstring(a, "an argument"))
            .collect::<io::Result<_>>()?;
        let env_c: Vec<CString> = env
            .iter()
            .map(|(k, v)| cstring(&format!("{k}={v}"), "an environment variable"))
            .collect::<io::Result<_>>()?;
        let mut argv_p: Vec<*mut libc::c_char> =
            argv_c.iter().map(|c| c.as_ptr() as *mut _).collect();
        argv_p.push(std::ptr::null_mut());
        let mut env_p: Vec<*mut libc::c_char> =
            env_c.iter().map(|c| c.as_ptr() as *mut _).collect();
        env_p.push(std::ptr::null_mut());
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (stdin_child, stdin_parent) = if stdin_piped {
            let (r, w) = pipe()?;
            (r, Some(w))
        } else {
            (OwnedFd::from(std::fs::File::open("/dev/null")?), None)
        };
        let check = |r: libc::c_int, what: &str| -> io::Result<()> {
            if r == 0 {
                Ok(())
            } else {
                let e = io::Error::from_raw_os_error(r);
                Err(io::Error::new(e.kind(), format!("{what}: {e}")))
            }
        };
        // SAFETY: posix_spawn's file actions and attributes, initialized,
        // used and destroyed here; every pointer outlives the call.
        unsafe {
            let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
            let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
            check(libc::posix_spawn_file_actions_init(&mut fa), "file actions")?;
            check(libc::posix_spawnattr_init(&mut attr), "spawn attributes")?;
            let mut pid: libc::pid_t = 0;
            let r = (|| {
                check(
                    libc::posix_spawn_file_actions_adddup2(&mut fa, stdin_child.as_raw_fd(), 0),
                    "stdin",
                )?;
                check(
                    libc::posix_spawn_file_actions_adddup2(&mut fa, out_w.as_raw_fd(), 1),
                    "stdout",
                )?;
                check(
                    libc::posix_spawn_file_actions_adddup2(&mut fa, err_w.as_raw_fd(), 2),
                    "stderr",
                )?;
                check(
                    libc::posix_spawn_file_actions_addchdir_np(&mut fa, cwd_c.as_ptr()),
                    "chdir",
                )?;
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                let mut pipe_set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut pipe_set);
                libc::sigaddset(&mut pipe_set, libc::SIGPIPE);
                check(
                    libc::posix_spawnattr_setsigmask(&mut attr, &empty),
                    "sigmask",
                )?;
                check(
                    libc::posix_spawnattr_setsigdefault(&mut attr, &pipe_set),
                    "sigdefault",
                )?;
                check(libc::posix_spawnattr_setpgroup(&mut attr, 0), "pgroup")?;
                check(setcgroup(&mut attr, cgroup_dir), "cgroup")?;
                let flags = libc::POSIX_SPAWN_SETPGROUP
                    | libc::POSIX_SPAWN_SETSIGMASK
                    | libc::POSIX_SPAWN_SETSIGDEF
                    | POSIX_SPAWN_SETCGROUP;
                check(
                    libc::posix_spawnattr_setflags(&mut attr, flags as libc::c_short),
                    "flags",
                )?;
                let r = libc::posix_spawn(
                    &mut pid,
                    path.as_ptr(),
                    &fa,
                    &attr,
                    argv_p.as_ptr(),
                    env_p.as_ptr(),
                );
                if r != 0 {
                    return Err(io::Error::from_raw_os_error(r));
                }
                Ok(())
            })();
            libc::posix_spawn_file_actions_destroy(&mut fa);
            libc::posix_spawnattr_destroy(&mut attr);
            r?;
            drop((out_w, err_w, stdin_child));
            // The child is ours and not reaped: its pid cannot be reused
            // before we open its pidfd.
            let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Child3 {
                pid: pid as u32,
                pidfd: OwnedFd::from_raw_fd(fd as RawFd),
                stdin: stdin_parent,
                stdout: out_r,
                stderr: err_r,
            })
        }
    })())
}

/// Reaps the exited child behind `pidfd` (it must have exited: the pidfd
/// was readable).
pub fn reap(pidfd: &OwnedFd) -> io::Result<ExitInfo> {
    // SAFETY: waitid(2) into a zeroed siginfo.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe {
            libc::waitid(
                P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
        if r == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    // SAFETY: a siginfo filled by waitid for a child.
    let status = unsafe { info.si_status() };
    Ok(match info.si_code {
        libc::CLD_EXITED => ExitInfo {
            code: Some(status),
            signal: None,
        },
        _ => ExitInfo {
            code: None,
            signal: Some(status),
        },
    })
}

/// Waits (on the pidfd, no polling) for the child to exit and reaps it.
pub async fn wait(pidfd: OwnedFd) -> io::Result<ExitInfo> {
    // SAFETY: the AsyncFd owns the pidfd, which stays open and is not
    // replaced while registered.
    let afd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
    }?;
    let _ = afd.readable().await?;
    reap(afd.get_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_child_is_born_in_its_cgroup_and_reaped_by_its_pidfd() {
        let Ok(cg) = super::super::cgroup::Cgroup::create() else {
            eprintln!("cgroups unavailable here: skipped");
            return;
        };
        let argv: Vec<String> = [
            "sh",
            "-c",
            "cat /proc/self/cgroup; read x; echo \"in:$x\" >&2; exit 3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        let c = match spawn(
            std::path::Path::new("/bin/sh"),
            &argv,
            &env,
            std::path::Path::new("/"),
            true,
            cg.dir_fd(),
            PreExec::default(),
        ) {
            Ok(c) => c,
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => return,
            Err(e) => panic!("{e}"),
        };
        let stdin = std::fs::File::from(c.stdin.unwrap());
        std::io::Write::write_all(&mut &stdin, b"hello\n").unwrap();
        drop(stdin);
        let mut out = String::new();
        let mut err = String::new();
        tokio::net::unix::pipe::Receiver::from_owned_fd(c.stdout)
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        tokio::net::unix::pipe::Receiver::from_owned_fd(c.stderr)
            .unwrap()
            .read_to_string(&mut err)
            .await
            .unwrap();
        let name = cg
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(out.contains(&name), "{out}");
        assert_eq!(err.trim(), "in:hello");
        let info = wait(c.pidfd).await.unwrap();
        assert_eq!(info.code, Some(3));
        // A program that does not exist is an error from the child, reaped.
        let e = spawn(
            std::path::Path::new("/nonexistent/x"),
            &argv,
            &env,
            std::path::Path::new("/"),
            false,
            cg.dir_fd(),
            PreExec::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("execve failed"), "{e}");
        // The vfork path: born in the cgroup too.
        let Some(r) = spawn_vfork(
            std::path::Path::new("/bin/sh"),
            &argv,
            &env,
            std::path::Path::new("/"),
            false,
            cg.dir_fd(),
        ) else {
            return; // glibc before 2.35
        };
        let c = r.unwrap();
        let mut out = String::new();
        tokio::net::unix::pipe::Receiver::from_owned_fd(c.stdout)
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        assert!(out.contains(&name), "{out}");
        assert_eq!(wait(c.pidfd).await.unwrap().code, Some(3));
    }
}
