//! Following the journal: tail new records as they are appended, by this
//! process or another one.
//!
//! The follower reads what is already written, then waits for inotify
//! (through the `notify` crate) to report a change in the journal directory
//! — no fixed polling tick. The watch is set up before the first read, so a
//! write between a read and the wait is never missed (`Notify` keeps one
//! permit).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::Notify;

use super::envelope::Envelope;
use super::error::JournalError;
use super::reader::Cursor;
use super::segment::Collect;

/// Tails the journal ([`follow`]).
pub struct Follower {
    cursor: Cursor,
    from: u64,
    pending: VecDeque<Envelope>,
    wake: Arc<Notify>,
    _watcher: Box<dyn notify::Watcher + Send>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("from", &self.from)
            .finish()
    }
}

/// Follows the journal in `dir` (which must exist) from seq `from`
/// (inclusive): [`Follower::next`] yields every event, in order, waiting
/// for new ones as they are appended.
pub fn follow(dir: &Path, from: u64) -> Result<Follower, JournalError> {
    let wake = Arc::new(Notify::new());
    let w = wake.clone();
    let handler = move |res: notify::Result<notify::Event>| {
        // Our own opens and reads show up as access events: ignore them, or
        // every read would wake us again.
        if let Ok(ev) = res {
            if !matches!(ev.kind, EventKind::Access(_)) {
                w.notify_one();
            }
        } else {
            w.notify_one();
        }
    };
    let not_watchable = |e: notify::Error| JournalError::Io {
        op: "watch",
        path: dir.to_path_buf(),
        source: Arc::new(std::io::Error::other(e.to_string())),
    };
    let watcher: Box<dyn notify::Watcher + Send> =
        match notify::recommended_watcher(handler.clone()) {
            Ok(mut w) => match w.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => Box::new(w),
                Err(e) if !dir.is_dir() => return Err(not_watchable(e)),
                Err(e) => poll_watcher(dir, handler, &e).map_err(not_watchable)?,
            },
            Err(e) => poll_watcher(dir, handler, &e).map_err(not_watchable)?,
        };
    let from = from.max(1);
    Ok(Follower {
        cursor: Cursor::new(dir, from, from),
        from,
        pending: VecDeque::new(),
        wake,
        _watcher: watcher,
    })
}

/// Falls back to polling when inotify is unavailable (e.g. out of watches).
fn poll_watcher<H: notify::EventHandler>(
    dir: &Path,
    handler: H,
    why: &notify::Error,
) -> notify::Result<Box<dyn notify::Watcher + Send>> {
    tracing::warn!(
        journal = %dir.display(),
        error = %why,
        "inotify is unavailable; following the journal by polling every 250 ms"
    );
    let config = notify::Config::default().with_poll_interval(Duration::from_millis(250));
    let mut w = notify::PollWatcher::new(handler, config)?;
    w.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(Box::new(w))
}

impl Follower {
    /// The next event if one is already written, without waiting.
    pub fn try_next(&mut self) -> Result<Option<Envelope>, JournalError> {
        loop {
            if let Some(env) = self.pending.pop_front() {
                if env.seq < self.from {
                    continue;
                }
                return Ok(Some(env));
            }
            if self
                .cursor
                .next_frame(&mut Collect::new(&mut self.pending))?
                .is_none()
            {
                return Ok(None);
            }
        }
    }

    /// The next event, waiting until it is written. An error (corruption, a
    /// newer format) ends the follow.
    pub async fn next(&mut self) -> Result<Envelope, JournalError> {
        loop {
            if let Some(env) = self.try_next()? {
                return Ok(env);
            }
            self.wake.notified().await;
        }
    }
}
