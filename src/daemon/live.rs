//! The daemon's live view: the fleet folded from the journal at start, then
//! kept current from the journal's feed (every batch once it is durable).

use std::sync::{Arc, RwLock};

use orca_actors::journal::JournalHandle;
use orca_actors::view::FleetView;
use tokio::sync::broadcast::error::RecvError;

/// A shared, always-current fleet view.
#[derive(Clone, Debug)]
pub struct LiveView {
    inner: Arc<RwLock<FleetView>>,
    /// The last seq applied, for readers that must see everything durable.
    applied: tokio::sync::watch::Receiver<u64>,
}

impl LiveView {
    /// Subscribes to the feed, folds the files, then follows the feed
    /// (applying only what the files did not hold: no gap, no double).
    pub async fn start(journal: &JournalHandle) -> anyhow::Result<LiveView> {
        let mut feed = journal.subscribe();
        let dir = journal.dir().to_path_buf();
        let loaded = tokio::task::spawn_blocking(move || FleetView::load(&dir)).await??;
        let (applied_tx, applied) = tokio::sync::watch::channel(loaded.last_seq);
        let live = LiveView {
            inner: Arc::new(RwLock::new(loaded)),
            applied,
        };
        let me = live.clone();
        let dir = journal.dir().to_path_buf();
        tokio::spawn(async move {
            loop {
                match feed.recv().await {
                    Ok(batch) => {
                        let mut last = None;
                        if let Ok(mut v) = me.inner.write() {
                            for env in batch.iter() {
                                if env.seq > v.last_seq {
                                    v.apply_event(env.seq, env.at, &env.event);
                                }
                            }
                            last = Some(v.last_seq);
                        }
                        if let Some(seq) = last {
                            let _ = applied_tx.send(seq);
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let d = dir.clone();
                        if let Ok(Ok(fresh)) =
                            tokio::task::spawn_blocking(move || FleetView::load(&d)).await
                        {
                            let seq = fresh.last_seq;
                            if let Ok(mut v) = me.inner.write() {
                                *v = fresh;
                            }
                            let _ = applied_tx.send(seq);
                        }
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

    /// Runs `f` on the current view.
    pub fn read<T>(&self, f: impl FnOnce(&FleetView) -> T) -> T {
        match self.inner.read() {
            Ok(v) => f(&v),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }
}
