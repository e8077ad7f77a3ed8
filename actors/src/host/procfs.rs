//! Process groups on this machine, through `/proc`, `kill(2)` and pidfds.
//!
//! Before killing a group recorded in the journal orca checks it is still
//! its own — by the leader's start time, or by `ORCA_ATTEMPT_ID` in a
//! member's environment — because pids are reused. Waiting for processes
//! that are not orca's children uses pidfds (readable when the process
//! exits), never a polling loop.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

/// The fields of `/proc/<pid>/stat` orca reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub state: char,
    pub pgrp: i32,
    /// Clock ticks since boot (field 22).
    pub start: u64,
}

/// Reads `/proc/<pid>/stat`: one `open`, one `read` into a buffer on the
/// stack (the file is one line, well under its size), one `close` —
/// `read_to_string` took a `statx` and six growing reads, the file's size
/// being reported as 0.
pub fn stat(pid: i32) -> Option<Stat> {
    use std::io::Read;
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 2048];
    let mut len = 0;
    while len < buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    parse_stat(pid, std::str::from_utf8(&buf[..len]).ok()?)
}

fn parse_stat(pid: i32, text: &str) -> Option<Stat> {
    // comm (field 2) may hold spaces and parentheses: fields resume after
    // the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        pid,
        state: f.first()?.chars().next()?,
        pgrp: f.get(2)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// The start time of `pid`, or 0.
pub fn start_time(pid: u32) -> u64 {
    i32::try_from(pid)
        .ok()
        .and_then(stat)
        .map(|s| s.start)
        .unwrap_or(0)
}

/// Clock ticks since boot now, in the unit and on the clock of
/// `/proc/<pid>/stat`'s start time: the kernel stamps a new process with
/// `CLOCK_BOOTTIME` and reports it divided down to `USER_HZ` ticks.
pub fn boot_ticks() -> Option<u64> {
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ns_per_tick = u64::try_from(hz)
        .ok()
        .filter(|hz| *hz > 0 && 1_000_000_000 % *hz == 0)
        .map(|hz| 1_000_000_000 / hz)?;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return None;
    }
    let ns = u64::try_from(ts.tv_sec).ok()? * 1_000_000_000 + u64::try_from(ts.tv_nsec).ok()?;
    Some(ns / ns_per_tick)
}

/// A process's start time without reading `/proc` (which costs the spawn
/// a `/proc/<pid>/stat` read, and its reaping the flush of the dentries
/// that read created): the clock is read just before the process is
/// created ([`StartClock::before`]) and just after ([`StartClock::start_of`]);
/// when both fall in the same tick the process started in it. Only when a
/// tick boundary passed in between is `/proc/<pid>/stat` read.
#[derive(Clone, Copy, Debug)]
pub struct StartClock(Option<u64>);

impl StartClock {
    /// Read just before the process is created.
    pub fn before() -> StartClock {
        StartClock(boot_ticks())
    }

    /// The start time of `pid`, created since [`StartClock::before`]; 0
    /// when it cannot be known.
    pub fn start_of(self, pid: u32) -> u64 {
        match (self.0, boot_ticks()) {
            (Some(before), Some(after)) if before == after => before,
            _ => start_time(pid),
        }
    }
}

/// Every process on the machine.
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Live (not zombie) members of process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<Stat> {
    all_pids()
        .into_iter()
        .filter_map(stat)
        .filter(|s| s.pgrp == pgid && s.state != 'Z')
        .collect()
}

/// Whether `pid`'s environment holds `entry` (`NAME=value`).
pub fn environ_contains(pid: i32, entry: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
        .unwrap_or(false)
}

/// Live processes whose environment holds `entry`.
pub fn with_env(entry: &str) -> Vec<Stat> {
    all_pids()
        .into_iter()
        .filter(|p| environ_contains(*p, entry))
        .filter_map(stat)
        .filter(|s| s.state != 'Z')
        .collect()
}

/// Whether any non-zombie process of group `pgid` exists.
pub fn group_alive(pgid: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks for existence.
    let r = unsafe { libc::kill(-pgid, 0) };
    if r != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    // kill succeeds for zombies too: confirm a live member.
    !group_members(pgid).is_empty()
}

/// Sends `sig` to group `pgid`; false when the group no longer exists.
pub fn signal_group(pgid: i32, sig: i32) -> io::Result<bool> {
    if pgid <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal process group {pgid}"),
        ));
    }
    // SAFETY: plain kill(2) on a negative pid (a process group).
    let r = unsafe { libc::kill(-pgid, sig) };
    if r == 0 {
        Ok(true)
    } else {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            Ok(false)
        } else {
            Err(e)
        }
    }
}

/// Sends `sig` to one process; false when it no longer exists.
pub fn signal_pid(pid: i32, sig: i32) -> bool {
    // SAFETY: plain kill(2).
    pid > 1 && unsafe { libc::kill(pid, sig) } == 0
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the syscall returned a fresh fd that we now own.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until every process in `pids` has exited, at most `timeout`.
/// Returns whether they all exited.
pub async fn wait_gone(pids: &[i32], timeout: Duration) -> bool {
    let mut waits = Vec::new();
    for pid in pids {
        let Some(fd) = pidfd_open(*pid) else {
            continue; // already gone
        };
        // SAFETY: the AsyncFd owns the pidfd, which is valid and is neither
        // closed nor replaced while registered.
        match unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        } {
            Ok(afd) => waits.push(async move {
                let _ = afd.readable().await;
            }),
            Err(_) => return false,
        }
    }
    tokio::time::timeout(timeout, futures::future::join_all(waits))
        .await
        .is_ok()
}

/// SIGTERM to the group, up to `grace` for its members to exit, then
/// SIGKILL. Returns whether the group existed.
pub async fn terminate_group(pgid: i32, grace: Duration) -> io::Result<bool> {
    if !signal_group(pgid, libc::SIGTERM)? {
        return Ok(false);
    }
    let members: Vec<i32> = group_members(pgid).iter().map(|s| s.pid).collect();
    if !members.is_empty() && !wait_gone(&members, grace).await {
        signal_group(pgid, libc::SIGKILL)?;
        let left: Vec<i32> = group_members(pgid).iter().map(|s| s.pid).collect();
        wait_gone(&left, Duration::from_secs(5)).await;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let line =
            "1234 (a) b (c)) S 1 1230 1230 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100";
        let s = parse_stat(1234, line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.pgrp, 1230);
        assert_eq!(s.start, 987654);
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        let s = stat(me as i32).unwrap();
        assert!(s.start > 0);
        assert_eq!(start_time(me), s.start);
        assert!(
            environ_contains(me as i32, "PATH=") || std::env::var("PATH").is_err() || {
                let path = std::env::var("PATH").unwrap();
                environ_contains(me as i32, &format!("PATH={path}"))
            }
        );
    }

    #[test]
    fn the_clock_gives_the_start_time_proc_reports() {
        // Processes that stay alive until compared, so /proc has them.
        let mut from_clock = 0;
        for _ in 0..40 {
            let clock = StartClock::before();
            let mut child = std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap();
            let pid = child.id();
            let bracketed = match (clock.0, boot_ticks()) {
                (Some(b), Some(a)) if a == b => Some(b),
                _ => None,
            };
            let proc_says = stat(pid as i32).unwrap().start;
            assert_eq!(clock.start_of(pid), proc_says);
            if let Some(b) = bracketed {
                assert_eq!(b, proc_says, "the clock and /proc disagree");
                from_clock += 1;
            }
            child.kill().unwrap();
            child.wait().unwrap();
        }
        // A tick is 10 ms and a spawn well under one: most come from the
        // clock (else this test checked only the fallback).
        assert!(from_clock >= 20, "{from_clock} of 40 from the clock");
        // And start_of takes it from the clock: a reaped process is no
        // longer in /proc, yet its start time is known.
        let known = (0..40)
            .filter(|_| {
                let clock = StartClock::before();
                let mut child = std::process::Command::new("true").spawn().unwrap();
                let pid = child.id();
                child.wait().unwrap();
                clock.start_of(pid) != 0
            })
            .count();
        assert!(known >= 20, "{known} of 40 known without /proc");
    }

    #[test]
    fn refuses_to_signal_init_groups() {
        assert!(signal_group(1, libc::SIGTERM).is_err());
        assert!(signal_group(0, libc::SIGTERM).is_err());
        assert!(!group_alive(0));
    }
}
