//! The daemon's live view: the fleet folded from the journal at start, then
//! kept current from the journal's feed (every batch once it is durable).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use orca_actors::journal::JournalHandle;
use orca_actors::view::FleetView;
use orca_actors::workspace::Workspace;
use tokio::sync::broadcast::error::RecvError;

/// A shared, always-current fleet view.
#[derive(Clone, Debug)]
pub struct LiveView {
    inner: Arc<RwLock<FleetView>>,
    /// The last seq applied, for readers that must see everything durable.
    applied: tokio::sync::watch::Receiver<u64>,
}

impl LiveView {
    /// Subscribes to the feed, loads the fleet (its snapshot and the files
    /// after it), then follows the feed (applying only what the files did
    /// not hold: no gap, no double). Every `snapshot_every` events from the
    /// feed it writes a fleet snapshot, so the next start — and offline
    /// reads, and `orca journal compact` — need not replay everything.
    pub async fn start(
        journal: &JournalHandle,
        ws: &Workspace,
        snapshot_every: u64,
    ) -> anyhow::Result<LiveView> {
        let mut feed = journal.subscribe();
        let w = ws.clone();
        let loaded = tokio::task::spawn_blocking(move || FleetView::load(&w)).await??;
        let (applied_tx, applied) = tokio::sync::watch::channel(loaded.last_seq);
        let live = LiveView {
            inner: Arc::new(RwLock::new(loaded)),
            applied,
        };
        let me = live.clone();
        let ws = ws.clone();
        tokio::spawn(async move {
            let mut snapshots = Snapshots::new(ws.snapshot_dir(), snapshot_every);
            // Every batch on the feed is durable, so the highest seq seen
            // there is. (No JournalHandle is held here: the task ends when
            // the journal's feed closes.)
            let mut durable = 0;
            loop {
                match feed.recv().await {
                    Ok(batch) => {
                        if let Some(e) = batch.last() {
                            durable = durable.max(e.seq);
                        }
                        let mut last = None;
                        if let Ok(mut v) = me.inner.write() {
                            for env in batch.iter() {
                                if env.seq > v.last_seq {
                                    v.apply_event(env.seq, env.at, &env.event);
                                }
                            }
                            last = Some(v.last_seq);
                            snapshots.applied(batch.len() as u64, &v, durable);
                        }
                        if let Some(seq) = last {
                            let _ = applied_tx.send(seq);
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Fell behind: reload from the files. Until that
                        // works the view must not apply later batches over
                        // the gap, so a failed reload is retried.
                        let mut wait = std::time::Duration::from_millis(100);
                        let fresh = loop {
                            let w = ws.clone();
                            match tokio::task::spawn_blocking(move || FleetView::load(&w)).await {
                                Ok(Ok(fresh)) => break fresh,
                                Ok(Err(e)) => {
                                    tracing::error!(error = %e, "the live view cannot reload the journal; retrying")
                                }
                                Err(e) => {
                                    tracing::error!(error = %e, "the live view cannot reload the journal; retrying")
                                }
                            }
                            // Keep trying (up to every 30 s): giving up would
                            // leave the daemon serving a frozen view.
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(std::time::Duration::from_secs(30));
                        };
                        let seq = fresh.last_seq;
                        if let Ok(mut v) = me.inner.write() {
                            *v = fresh;
                        }
                        let _ = applied_tx.send(seq);
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        Ok(live)
    }

    /// Waits (at most 2 s) until the view holds every event up to `seq`, so
    /// a reader sees everything durable when it asked.
    pub async fn caught_up(&self, seq: u64) {
        let mut rx = self.applied.clone();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            rx.wait_for(|applied| *applied >= seq),
        )
        .await;
    }

    /// Changes whenever the view applied more events (its last seq).
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.applied.clone()
    }

    /// Runs `f` on the current view.
    pub fn read<T>(&self, f: impl FnOnce(&FleetView) -> T) -> T {
        match self.inner.read() {
            Ok(v) => f(&v),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }
}

/// When the live view writes fleet snapshots: after every `every` events
/// applied, one at a time, in a blocking task on a copy of the view.
/// (`journal::Snapshotter` counts the same way but owns its projection and
/// writes inline; the live view shares its view with readers behind a lock
/// and must not block the runtime on a multi-megabyte write.)
struct Snapshots {
    dir: PathBuf,
    every: u64,
    since: u64,
    writing: Arc<AtomicBool>,
}

impl Snapshots {
    fn new(dir: PathBuf, every: u64) -> Self {
        Self {
            dir,
            every: every.max(1),
            since: 0,
            writing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// `n` more events were applied to `view`; `durable` is the journal's
    /// last durable seq. A view ahead of it (loaded from the files after a
    /// lag) is not snapshotted: a snapshot must never hold an event a crash
    /// could still take back.
    fn applied(&mut self, n: u64, view: &FleetView, durable: u64) {
        self.since += n;
        if self.since < self.every
            || view.last_seq > durable
            || self.writing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.since = 0;
        let copy = view.clone();
        let dir = self.dir.clone();
        let writing = self.writing.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = copy.write_snapshot(&dir) {
                tracing::warn!(error = %e, "cannot write the fleet snapshot");
            } else {
                tracing::debug!(seq = copy.last_seq, "fleet snapshot written");
            }
            writing.store(false, Ordering::Release);
        });
    }
}
