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

/// Reads `/proc/<pid>/stat`.
pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
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
    fn refuses_to_signal_init_groups() {
        assert!(signal_group(1, libc::SIGTERM).is_err());
        assert!(signal_group(0, libc::SIGTERM).is_err());
        assert!(!group_alive(0));
    }
}
