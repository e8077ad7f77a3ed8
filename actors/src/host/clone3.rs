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
//! in the memory it shares with the parent (`CLONE_VM`, as glibc's
//! posix_spawn does) or, where it is a plain fork, through a close-on-exec
//! pipe; the parent waits for the child's end on
//! its pidfd and reaps it with `waitid(P_PIDFD)` — tokio never sees it, so
//! no reaper can steal its status.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::sandbox::PreExec;
use super::ExitInfo;

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Whether this kernel takes `CLONE_CLEAR_SIGHAND` (5.5 and later): 0 not
/// tried yet, 1 yes, 2 no.
static CLEARS_SIGHAND: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
const P_PIDFD: libc::idtype_t = 3;

#[repr(C)]
#[derive(Clone, Copy, Default)]
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

/// A started child: its pid, pidfd and pipe ends (stdout's and stderr's
/// read ends non-blocking).
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

/// A pipe whose read end (orca's) is non-blocking and whose write end (the
/// child's) is not: tokio takes the read end as it is, without the `fstat`
/// and the two `fcntl`s of checking it.
fn output_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = pipe()?;
    // SAFETY: F_SETFL on an fd we own; O_NONBLOCK is its only status flag.
    if unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((r, w))
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

/// Everything the child needs, prepared by the parent before the clone:
/// raw pointers and fds only, read by the child in place (with
/// `CLONE_VM` it shares the parent's memory; the parent's thread is
/// suspended until the child execs or exits, so this stays valid).
struct ChildCtx {
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    /// Where a failure goes when the child is a plain fork: a pipe's write
    /// end (-1 otherwise).
    report: RawFd,
    /// Where a `CLONE_VM` child writes `[step, errno]` of a failure before
    /// exec: the parent's, read once it resumes (null: use `report`).
    failed: *mut [i32; 2],
    /// The kernel reset the child's signal handlers (`CLONE_CLEAR_SIGHAND`).
    sighand_cleared: bool,
    cwd: *const libc::c_char,
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    pre: PreExec,
}

/// The child, between clone and exec. Raw async-signal-safe syscalls only:
/// no allocation, no lock, nothing that touches the parent's heap (with
/// `CLONE_VM` it is the same memory). A failure is reported as `[step,
/// errno]` (in `failed`, or to the report pipe), then `_exit(127)`.
extern "C" fn child_main(ctx: *mut libc::c_void) -> ! {
    // SAFETY: `ctx` points at the parent's `ChildCtx`, alive and unchanged
    // until this child execs or exits (vfork), or copied with the whole
    // process (fork). Everything below is a raw syscall; `failed` is
    // written only by this child, read by the parent only once it exited.
    unsafe {
        let c = &*(ctx as *const ChildCtx);
        let fail = |step: i32| -> ! {
            let errno = *libc::__errno_location();
            let msg = [step, errno];
            if c.failed.is_null() {
                libc::write(c.report, msg.as_ptr().cast(), 8);
            } else {
                std::ptr::write_volatile(c.failed, msg);
            }
            libc::_exit(127)
        };
        // No handler of orca's may run in the child (with CLONE_VM it
        // would run on orca's memory): every caught signal back to its
        // default while all are blocked — by the kernel at the clone
        // (CLONE_CLEAR_SIGHAND), else here, one sigaction per signal —
        // and SIGPIPE too (Rust ignores it; ignored ones stay ignored).
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        if !c.sighand_cleared {
            for sig in 1..=64 {
                let mut old: libc::sigaction = std::mem::zeroed();
                if sig != libc::SIGPIPE
                    && libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                    && old.sa_sigaction != libc::SIG_DFL
                    && old.sa_sigaction != libc::SIG_IGN
                {
                    libc::sigaction(sig, &dfl, std::ptr::null_mut());
                }
            }
        }
        libc::sigaction(libc::SIGPIPE, &dfl, std::ptr::null_mut());
        if libc::dup2(c.stdin, 0) < 0 || libc::dup2(c.stdout, 1) < 0 || libc::dup2(c.stderr, 2) < 0
        {
            fail(1);
        }
        if libc::setpgid(0, 0) != 0 {
            fail(2);
        }
        if libc::chdir(c.cwd) != 0 {
            fail(3);
        }
        if c.pre.apply().is_err() {
            fail(4);
        }
        let empty: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::execve(c.path, c.argv, c.envp);
        fail(5)
    }
}

/// The child's stack for a `CLONE_VM` clone: an anonymous mapping with a
/// guard page below it, unmapped on drop (after the child exec'd or
/// exited: the parent was suspended until then).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl ChildStack {
    /// 256 KiB: the child's frames are small (no allocation, no
    /// formatting); Landlock and netns set-up are syscalls.
    const SIZE: usize = 256 * 1024;
    const GUARD: usize = 4096;

    fn new() -> io::Result<ChildStack> {
        STACKS_MAPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let len = Self::SIZE + Self::GUARD;
        // SAFETY: a fresh private anonymous mapping; the lowest page is
        // then made inaccessible (a guard against overflow).
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            libc::mprotect(base, Self::GUARD, libc::PROT_NONE);
            Ok(ChildStack { base, len })
        }
    }

    /// A stack from the spares, or a new one.
    fn take() -> io::Result<ChildStack> {
        let spare = SPARE_STACKS.lock().ok().and_then(|mut v| v.pop());
        spare.map_or_else(Self::new, Ok)
    }

    /// Keeps the stack for the next spawn (up to [`SPARE_MAX`]); call only
    /// once the clone returned, when no child runs on it any more.
    fn give_back(self) {
        if let Ok(mut spares) = SPARE_STACKS.lock() {
            if spares.len() < SPARE_MAX {
                spares.push(self);
            }
        }
    }

    /// The lowest usable address (clone3 takes the low end and the size).
    fn low(&self) -> u64 {
        self.base as u64 + Self::GUARD as u64
    }
}

/// Stacks whose child has exec'd or exited, kept for the next spawn: a
/// fresh one per attempt costs an `mmap`, an `mprotect`, page faults, and
/// an `munmap` that, in a process with threads on every core, interrupts
/// each of them to flush its TLB.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
static SPARE_STACKS: std::sync::Mutex<Vec<ChildStack>> = std::sync::Mutex::new(Vec::new());

/// Stacks mapped so far (a test checks that spawns reuse them).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
static STACKS_MAPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// At most this many spare stacks (each 260 KiB of address space, a few
/// pages of it touched).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SPARE_MAX: usize = 16;

// SAFETY: a `ChildStack` owns its mapping outright; it moves between
// threads only while no child runs on it (in the spares).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe impl Send for ChildStack {}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used.
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}

/// `clone3` whose child starts on its own stack and calls `f(arg)` (which
/// never returns). The libc `syscall` wrapper cannot be used for a
/// `CLONE_VM` child: it would return into the parent's frame on the new
/// stack. Returns the child's pid, or `-errno`.
///
/// # Safety
/// `args` must describe a valid clone with a stack that stays mapped until
/// the child execs or exits; `f` must be safe to run in that child.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3_on_stack(
    args: &CloneArgs,
    f: extern "C" fn(*mut libc::c_void) -> !,
    arg: *mut libc::c_void,
) -> i64 {
    let ret: i64;
    // SAFETY: the caller's contract. The kernel preserves every register
    // but rax, rcx and r11; the child gets rsp = stack + stack_size (16-byte
    // aligned: `call` leaves it as the ABI expects at a function's entry).
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r13",
            "call r12",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") args as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") f,
            in("r13") arg,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// See the x86_64 version.
///
/// # Safety
/// As the x86_64 version.
#[cfg(target_arch = "aarch64")]
unsafe fn clone3_on_stack(
    args: &CloneArgs,
    f: extern "C" fn(*mut libc::c_void) -> !,
    arg: *mut libc::c_void,
) -> i64 {
    let ret: i64;
    // SAFETY: the caller's contract. The kernel preserves every register
    // but x0; the child gets sp = stack + stack_size.
    unsafe {
        std::arch::asm!(
            "svc 0",
            "cbnz x0, 2f",
            "mov x0, x10",
            "blr x9",
            "brk #0",
            "2:",
            inlateout("x0") args as *const CloneArgs => ret,
            in("x1") std::mem::size_of::<CloneArgs>(),
            in("x8") libc::SYS_clone3,
            in("x9") f,
            in("x10") arg,
            lateout("x30") _,
            options(nostack),
        );
    }
    ret
}

/// Starts `program` (an absolute or relative path, not looked up) with
/// `argv` (its `argv[0]` first) and exactly `env`, in `cwd`, in its own
/// process group, inside the cgroup whose directory is open as
/// `pre.cgroup_dir` if one is given, applying the rest of `pre` (network,
/// Landlock; its cgroup write is not needed) before exec. stdout and stderr are pipes;
/// stdin a pipe when `stdin_piped`, else `/dev/null`. `Err` with `ENOSYS` /
/// `EINVAL` / `E2BIG`: this kernel has no `clone3` or no
/// `CLONE_INTO_CGROUP` (the caller falls back).
///
/// On x86_64 and aarch64 the child shares orca's memory until it execs
/// (`CLONE_VM | CLONE_VFORK`, as `posix_spawn` does): no page table is
/// copied and orca's memory is not made copy-on-write, which a plain fork
/// of a large multi-threaded daemon costs at every attempt (about 2 ms
/// each in the fan-out bench). Elsewhere it is a fork.
pub fn spawn(
    program: &std::path::Path,
    argv: &[String],
    env: &[(String, String)],
    cwd: &std::path::Path,
    stdin_piped: bool,
    pre: PreExec,
) -> io::Result<Child3> {
    let cgroup_dir = pre.cgroup_dir;
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

    let (out_r, out_w) = output_pipe()?;
    let (err_r, err_w) = output_pipe()?;
    // A child that shares orca's memory reports a failure there.
    let mut failed = [0i32; 2];
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let report: Option<(OwnedFd, OwnedFd)> = None;
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let report = Some(pipe()?);
    let (stdin_child, stdin_parent) = if stdin_piped {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        let f = std::fs::File::open("/dev/null")?;
        (OwnedFd::from(f), None)
    };
    let mut ctx = ChildCtx {
        stdin: stdin_child.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        report: report.as_ref().map_or(-1, |(_, w)| w.as_raw_fd()),
        failed: if report.is_some() {
            std::ptr::null_mut()
        } else {
            &mut failed
        },
        sighand_cleared: false,
        cwd: cwd_c.as_ptr(),
        path: path.as_ptr(),
        argv: argv_p.as_ptr(),
        envp: env_p.as_ptr(),
        pre: PreExec {
            cgroup_procs: None,
            ..pre
        },
    };

    let mut pidfd: libc::c_int = -1;
    #[allow(unused_mut)]
    let mut args = CloneArgs {
        flags: CLONE_PIDFD | cgroup_dir.map_or(0, |_| CLONE_INTO_CGROUP),
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_dir.map_or(0, |fd| fd as u64),
        ..Default::default()
    };
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let stack = {
        let stack = ChildStack::take()?;
        args.flags |= (libc::CLONE_VM | libc::CLONE_VFORK) as u64;
        args.stack = stack.low();
        args.stack_size = ChildStack::SIZE as u64;
        stack
    };
    // Signals stay blocked across the clone so no handler of orca's runs
    // in the child; the parent restores its mask at once, the child
    // resets the handlers and clears the mask right before exec.
    // SAFETY: sigset operations on zeroed stack values.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let clone_once = |args: &CloneArgs, ctx: &mut ChildCtx| -> i64 {
        let ctx_ptr = ctx as *mut ChildCtx as *mut libc::c_void;
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        // SAFETY: the stack stays mapped until after this returns, which is
        // after the child exec'd or exited (CLONE_VFORK); `child_main` makes
        // raw syscalls only.
        let r = unsafe { clone3_on_stack(args, child_main, ctx_ptr) };
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        // SAFETY: clone3 without CLONE_VM: the child is a copy of this
        // process and runs only `child_main`.
        let r = unsafe {
            let r = libc::syscall(
                libc::SYS_clone3,
                args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            );
            if r == 0 {
                child_main(ctx_ptr);
            }
            if r < 0 {
                -(*libc::__errno_location() as i64)
            } else {
                r
            }
        };
        r
    };
    // The kernel resets the child's handlers where it can
    // (CLONE_CLEAR_SIGHAND); a kernel that refuses the flag (EINVAL) is
    // asked again without it, and the child resets them itself.
    let mut clear = CLEARS_SIGHAND.load(std::sync::atomic::Ordering::Relaxed) != 2;
    let r = loop {
        ctx.sighand_cleared = clear;
        let flags = args.flags | if clear { CLONE_CLEAR_SIGHAND } else { 0 };
        let r = clone_once(&CloneArgs { flags, ..args }, &mut ctx);
        if clear && r == -(libc::EINVAL as i64) {
            clear = false;
            continue;
        }
        if r >= 0 {
            let known = if clear { 1 } else { 2 };
            CLEARS_SIGHAND.store(known, std::sync::atomic::Ordering::Relaxed);
        }
        break r;
    };
    // SAFETY: restoring the mask saved above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
    // The child has exec'd or exited (CLONE_VFORK), or never started.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    stack.give_back();
    if r < 0 {
        return Err(io::Error::from_raw_os_error(-r as i32));
    }
    // SAFETY: the kernel wrote a fresh pidfd for the child.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    drop((out_w, err_w, stdin_child));
    let msg = match report {
        // The report pipe closes on exec (EOF: success) or carries the
        // failure.
        Some((report_r, report_w)) => {
            drop(report_w);
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
                msg
            } else {
                [0; 2]
            }
        }
        // SAFETY: the child has exec'd or exited (CLONE_VFORK); nothing
        // writes `failed` any more.
        None => unsafe { std::ptr::read_volatile(&failed) },
    };
    if msg[0] != 0 {
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

    /// `program` started in `cg` at `/` with only PATH set; `None` where
    /// this kernel has no clone3.
    fn spawn_in(
        program: &str,
        argv: &[String],
        stdin: bool,
        cg: &super::super::cgroup::Cgroup,
    ) -> Option<Child3> {
        let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        match spawn(
            std::path::Path::new(program),
            argv,
            &env,
            std::path::Path::new("/"),
            stdin,
            PreExec {
                cgroup_dir: Some(cg.dir_fd()),
                ..PreExec::default()
            },
        ) {
            Ok(c) => Some(c),
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => None,
            Err(e) => panic!("{e}"),
        }
    }

    /// The kernel clears the child's handlers where it can, and SIGPIPE,
    /// which Rust ignores, reaches the program at its default.
    #[test]
    fn the_child_starts_with_default_signals() {
        let Ok(cg) = super::super::cgroup::Cgroup::create() else {
            eprintln!("cgroups unavailable here: skipped");
            return;
        };
        let argv: Vec<String> = ["cat", "/proc/self/status"].map(String::from).into();
        let Some(c) = spawn_in("/bin/cat", &argv, false, &cg) else {
            return;
        };
        // SAFETY: F_SETFL on an fd owned by `c` (read it blocking here).
        unsafe { libc::fcntl(c.stdout.as_raw_fd(), libc::F_SETFL, 0) };
        let mut status = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(c.stdout), &mut status).unwrap();
        reap(&c.pidfd).unwrap();
        let ignored = status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap();
        assert_eq!(ignored & (1 << (libc::SIGPIPE - 1)), 0, "SIGPIPE ignored");
        // 5.5 and later take CLONE_CLEAR_SIGHAND: the child's loop of
        // sigactions is not needed there.
        // SAFETY: uname fills the struct it is given.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::uname(&mut u) }, 0);
        let release: Vec<u32> = u
            .release
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8 as char)
            .collect::<String>()
            .split(|c: char| !c.is_ascii_digit())
            .take(2)
            .filter_map(|n| n.parse().ok())
            .collect();
        if release >= vec![5, 5] {
            assert_eq!(
                CLEARS_SIGHAND.load(std::sync::atomic::Ordering::Relaxed),
                1,
                "kernel {release:?}"
            );
        }
    }

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
        let Some(c) = spawn_in("/bin/sh", &argv, true, &cg) else {
            return;
        };
        let stdin = std::fs::File::from(c.stdin.unwrap());
        std::io::Write::write_all(&mut &stdin, b"hello\n").unwrap();
        drop(stdin);
        let mut out = String::new();
        let mut err = String::new();
        // Orca's ends come non-blocking, as tokio takes them unchecked.
        for fd in [&c.stdout, &c.stderr] {
            // SAFETY: F_GETFL on an fd owned by `c`.
            let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
            assert_ne!(flags & libc::O_NONBLOCK, 0);
        }
        tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(c.stdout)
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(c.stderr)
            .unwrap()
            .read_to_string(&mut err)
            .await
            .unwrap();
        let name = cg.name();
        assert!(out.contains(&name), "{out}");
        assert_eq!(err.trim(), "in:hello");
        let info = wait(c.pidfd).await.unwrap();
        assert_eq!(info.code, Some(3));
        // A program that does not exist is an error from the child, reaped.
        let e = spawn(
            std::path::Path::new("/nonexistent/x"),
            &argv,
            &[("PATH".to_string(), "/usr/bin:/bin".to_string())],
            std::path::Path::new("/"),
            false,
            PreExec {
                cgroup_dir: Some(cg.dir_fd()),
                ..PreExec::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("execve failed"), "{e}");
    }

    /// Child stacks are reused, never while a child runs on one: spawns
    /// from four threads at once each see their own arguments, and the
    /// spares stay bounded.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn child_stacks_are_reused_and_never_shared() {
        let Ok(cg) = super::super::cgroup::Cgroup::create() else {
            eprintln!("cgroups unavailable here: skipped");
            return;
        };
        let cg = &cg;
        let mapped = || STACKS_MAPPED.load(std::sync::atomic::Ordering::Relaxed);
        let before = mapped();
        std::thread::scope(|scope| {
            for t in 0..4 {
                scope.spawn(move || {
                    for i in 0..25 {
                        let tag = format!("t{t}-{i}");
                        let argv: Vec<String> = ["sh", "-c", "printf %s \"$0\"", &tag]
                            .map(String::from)
                            .into();
                        let Some(c) = spawn_in("/bin/sh", &argv, false, cg) else {
                            return;
                        };
                        let mut out = String::new();
                        // Read it blocking here (orca's end is non-blocking).
                        // SAFETY: F_SETFL on an fd owned by `c`.
                        unsafe { libc::fcntl(c.stdout.as_raw_fd(), libc::F_SETFL, 0) };
                        std::io::Read::read_to_string(&mut std::fs::File::from(c.stdout), &mut out)
                            .unwrap();
                        assert_eq!(out, tag);
                        let info = reap(&c.pidfd).unwrap();
                        assert_eq!(info.code, Some(0), "{tag}");
                    }
                });
            }
        });
        let spares = SPARE_STACKS.lock().unwrap().len();
        assert!((1..=SPARE_MAX).contains(&spares), "{spares} spare stacks");
        // 100 spawns, at most four at a time (other tests may spawn too).
        let new = mapped() - before;
        assert!(new <= 2 * SPARE_MAX, "{new} stacks mapped for 100 spawns");
    }

    #[tokio::test]
    async fn a_process_is_not_killed_at_birth_by_an_earlier_cgroup_kill() {
        // On 6.18 a child created in a cgroup that was once written
        // `cgroup.kill` is SIGKILLed at birth: a killed cgroup must never be
        // reused (the pool once handed them out and killed other attempts).
        use super::super::cgroup::Cgroup;
        let Ok(cg) = Cgroup::create() else {
            eprintln!("cgroups unavailable here: skipped");
            return;
        };
        cg.kill().unwrap();
        drop(cg);
        let argv = vec!["true".to_string()];
        // Several from the pool: the killed one would be among them.
        let cgs: Vec<Cgroup> = (0..16).filter_map(|_| Cgroup::create().ok()).collect();
        for cg in &cgs {
            let Some(c) = spawn_in("/bin/true", &argv, false, cg) else {
                return;
            };
            let info = wait(c.pidfd).await.unwrap();
            assert_eq!(
                (info.code, info.signal),
                (Some(0), None),
                "started in {}",
                cg.path().display()
            );
        }
    }
}
