//! The exclusive writer lock: `flock(LOCK_EX | LOCK_NB)` on
//! `<journal>/LOCK`, which holds the holder's pid.
//!
//! `flock` locks belong to the open file description, so a second writer is
//! refused whether it is another process or another `open_writer` in the
//! same process; the kernel releases the lock when the holder dies, however
//! it dies (SIGKILL included), so a stale lock never needs cleaning up.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use super::error::{IoContext as _, JournalError};

/// The lock file's name inside the journal directory.
pub const LOCK_FILE: &str = "LOCK";

/// How many times (10 ms apart) to retry a lock that no live pid holds.
const RELEASED_TRIES: u32 = 50;

/// A held writer lock; released when dropped.
#[derive(Debug)]
pub struct WriterLock {
    file: File,
    path: PathBuf,
}

impl WriterLock {
    /// Takes the lock on `dir` (which must exist) or fails naming the
    /// holder's pid.
    pub fn acquire(dir: &Path) -> Result<Self, JournalError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx("open the writer lock", &path)?;
        // A lock whose holder cleared its pid is being released: a child
        // forked while it was held keeps a copy of the descriptor (and so
        // the lock) until it execs. Wait that out, briefly.
        let mut released_tries = 0;
        loop {
            // SAFETY: flock on a file descriptor we own; no memory is involved.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(JournalError::io("lock", &path, err));
            }
            let pid = holder_pid(&file);
            if pid.is_some() || released_tries >= RELEASED_TRIES {
                return Err(JournalError::Locked {
                    dir: dir.to_path_buf(),
                    pid,
                });
            }
            released_tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0).ctx("write the writer lock", &path)?;
        file.write_all_at(pid.as_bytes(), 0)
            .ctx("write the writer lock", &path)?;
        Ok(Self { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Clear the pid so nobody reads a stale one; closing the file
        // releases the lock.
        let _ = self.file.set_len(0);
    }
}

/// The pid recorded by the lock's holder, if it is readable and alive.
fn holder_pid(file: &File) -> Option<u32> {
    let mut f = file.try_clone().ok()?;
    f.seek(SeekFrom::Start(0)).ok()?;
    let mut text = String::new();
    f.read_to_string(&mut text).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    let alive = i32::try_from(pid)
        // SAFETY: kill with signal 0 only checks that the process exists.
        .map(|p| unsafe { libc::kill(p, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
        .unwrap_or(false);
    alive.then_some(pid)
}
