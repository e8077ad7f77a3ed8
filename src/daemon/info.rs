//! `.orca/daemon.json`, `.orca/token`, and whether a workspace is held.

use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::Context as _;
use orca_actors::model::Timestamp;
use orca_actors::workspace::Workspace;
use serde::{Deserialize, Serialize};

/// How orca serves a workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `orca up`: the always-on daemon.
    Daemon,
    /// `orca run` without a daemon: serves the same API while its run lasts.
    Embedded,
}

/// What `.orca/daemon.json` says (written once the API serves).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    /// `host:port` the API listens on.
    pub address: String,
    pub version: String,
    pub started_at: Timestamp,
    pub mode: Mode,
}

impl DaemonInfo {
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Writes `.orca/daemon.json` atomically (temp file, rename).
    pub fn write(&self, ws: &Workspace) -> anyhow::Result<()> {
        let path = ws.daemon_info_path();
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// Reads `.orca/daemon.json`, if present and well-formed.
    pub fn read(ws: &Workspace) -> Option<DaemonInfo> {
        let text = std::fs::read(ws.daemon_info_path()).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn remove(ws: &Workspace) {
        let _ = std::fs::remove_file(ws.daemon_info_path());
    }
}

/// Who holds the workspace's journal lock: `None` when nobody does;
/// `Some(pid)` (the pid written in the lock, if any) when someone does.
/// The kernel drops the lock when its holder dies, however it dies, so this
/// is how a `daemon.json` left by a killed daemon is recognised as stale.
pub fn lock_holder(ws: &Workspace) -> Option<Option<u32>> {
    let path = ws.journal_dir().join(orca_actors::journal::lock::LOCK_FILE);
    let file = std::fs::File::open(&path).ok()?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    if rc == 0 {
        // SAFETY: as above.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        return None;
    }
    let pid = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    Some(pid)
}

/// Whether process `pid` exists.
pub fn pid_alive(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        // SAFETY: kill with signal 0 only checks that the process exists.
        .map(|p| {
            let rc = unsafe { libc::kill(p, 0) };
            rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
        })
        .unwrap_or(false)
}

/// A daemon SIGKILLed a moment ago can still seem to hold the journal lock:
/// a child it was starting (forked, not yet at `execve`, where
/// close-on-exec descriptors close) has a copy of its descriptors, the
/// lock's among them. When `info` names a process that is gone, waits (at
/// most `limit`, woken by the kernel when the lock is released) until
/// nobody holds the lock; whether that happened (then `daemon.json` is
/// stale). False at once when the process lives.
pub fn wait_for_a_dead_daemons_lock(
    ws: &Workspace,
    info: &DaemonInfo,
    limit: std::time::Duration,
) -> bool {
    if pid_alive(info.pid) {
        return false;
    }
    let path = ws.journal_dir().join(orca_actors::journal::lock::LOCK_FILE);
    let Ok(file) = std::fs::File::open(&path) else {
        return true;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: flock on a descriptor this thread owns; blocks until a
        // shared lock can be had (no exclusive holder left).
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH) };
        if rc == 0 {
            // SAFETY: as above.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        }
        let _ = tx.send(rc == 0);
    });
    rx.recv_timeout(limit).unwrap_or(false)
}

/// The running daemon (or embedded run) of a workspace, after checking
/// `daemon.json` against the lock; a stale file is removed.
pub fn live(ws: &Workspace) -> Option<DaemonInfo> {
    let info = DaemonInfo::read(ws)?;
    match lock_holder(ws) {
        Some(Some(pid)) if pid == info.pid => Some(info),
        Some(None) => Some(info),
        _ => {
            DaemonInfo::remove(ws);
            None
        }
    }
}

/// The workspace token (256 random bits, hex), created exclusively with
/// mode 0600 the first time and reused after.
///
/// The token is written to a temporary file (created exclusively, mode
/// 0600, synced) and then hard-linked into place, which fails if a token
/// is already there: `.orca/token` is never seen empty or half-written,
/// even if orca dies while creating it, and of two orcas creating it at
/// once both end up with the one that landed. (Where the filesystem has no
/// hard links, the file is created in place, exclusively.)
pub fn token(ws: &Workspace) -> anyhow::Result<String> {
    let path = ws.token_path();
    if path.exists() {
        return read_token(&path);
    }
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let tmp = dir.join(format!(
        ".token.tmp-{}-{}",
        std::process::id(),
        &random_token()[..8]
    ));
    let t = random_token();
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(t.as_bytes())?;
            f.sync_all()
        })
        .with_context(|| format!("cannot write {}", tmp.display()));
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, &path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // A filesystem without hard links (some FUSE and SMB mounts):
        // create the file in place, exclusively, as a last resort.
        Err(_) => match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => match f.write_all(t.as_bytes()).and_then(|()| f.sync_all()) {
                Ok(()) => Ok(true),
                Err(e) => {
                    // Leave no partial token behind.
                    let _ = std::fs::remove_file(&path);
                    Err(e).with_context(|| format!("cannot write {}", path.display()))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
        },
    });
    let _ = std::fs::remove_file(&tmp);
    if linked? {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(t)
    } else {
        read_token(&path)
    }
}

/// Reads a token file, refusing one others can read.
pub fn read_token(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        anyhow::bail!(
            "{} is readable by others (mode {:o}); run `chmod 600 {}`",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        );
    }
    // Where a token is created in place (no hard links), another orca may
    // be between creating and writing it: a short file is looked at again
    // for a moment before it counts as bad.
    let mut tries = 0;
    let t = loop {
        let t = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if t.trim().len() >= 64 || tries >= 50 {
            break t;
        }
        tries += 1;
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let t = t.trim().to_string();
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!(
            "{} does not hold an orca token; remove it and the next `orca up` or `orca run` makes a new one",
            path.display()
        );
    }
    Ok(t)
}

/// 256 random bits as 64 hex digits.
pub fn random_token() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::at(dir.path());
        std::fs::create_dir_all(ws.orca_dir()).unwrap();
        let t1 = token(&ws).unwrap();
        let t2 = token(&ws).unwrap();
        assert_eq!(t1, t2);
        assert_eq!(t1.len(), 64);
        let mode = std::fs::metadata(ws.token_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(ws.token_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(token(&ws)
            .unwrap_err()
            .to_string()
            .contains("readable by others"));
    }

    #[test]
    fn racing_creators_agree_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::at(dir.path());
        std::fs::create_dir_all(ws.orca_dir()).unwrap();
        let tokens: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| token(&ws).unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
        assert_eq!(read_token(&ws.token_path()).unwrap(), tokens[0]);
        let names: Vec<String> = std::fs::read_dir(ws.orca_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["token"]);
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
