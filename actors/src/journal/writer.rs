//! The writer: a ractor actor (with its callers' help) that owns the active
//! segment, assigns seqs and timestamps, writes one frame per batch and
//! syncs once per group commit.
//!
//! # How an append travels
//!
//! [`JournalHandle::append`] encodes the batch's records on the caller's
//! task (so serialization runs in parallel, not in the single writer), then
//! pushes it onto the handle's submission queue. Rounds — everything queued,
//! seqs assigned in queue order, one frame per batch in a single buffer,
//! one `write` — are committed by whoever holds the *engine* (the active
//! segment, behind a mutex), one round at a time:
//!
//! - The engine is busy: the caller leaves its batch to the holder, which
//!   looks at the queue when it lets go and schedules the actor with one
//!   [`JournalMsg::Drain`] if anything is waiting.
//! - The engine is free and fewer than [`JournalOptions::combine_at`]
//!   batches (default 32) wait: the actor is scheduled. It first yields to
//!   the tasks that are ready to run (callers just answered queue their
//!   next batches meanwhile), then commits a round.
//! - The engine is free and at least that many wait (flat combining): the
//!   caller commits the queue itself, right there — its own answer is then
//!   ready without a sleep and a wake, the round is written on the
//!   caller's worker while the other workers go on, and no hand-off to the
//!   actor happens. Roll-overs (which may `fdatasync`) are always the
//!   actor's.
//!
//! Then, by sync mode:
//!
//! - [`SyncMode::Always`]: the round's committer hands it to the
//!   writer's sync thread and goes on with the next round. The sync thread
//!   takes every round queued by then, runs one `fdatasync` per file they
//!   wrote, and only then answers their callers (and publishes them on the
//!   live feed). Rounds written while a sync is in flight share the next one
//!   (group commit), and writing overlaps syncing.
//! - [`SyncMode::Never`]: the committer answers right after the write: one
//!   syscall per round, not per tiny batch. Readers never see a
//!   partial batch because the buffer holds only complete frames.
//!
//! # Failure
//!
//! A failed `write` or `fdatasync` is never retried on the same file (its
//! dirty pages may already have been dropped): every caller whose batch that
//! write or sync covered gets the error, the writer refuses every later
//! append (batches already written and waiting for a sync are answered with
//! the failure too, never synced again), `health()` turns
//! [`JournalHealth::Failed`], and the failure is logged at `error` level.
//! Whether the failed batches are on disk is unknown: callers treat the error
//! as "not acknowledged". Reopening the journal (a restart) recovers it from
//! what is on disk.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{broadcast, oneshot};

use super::envelope::{AppendAck, Envelope, NewEvent};
use super::error::{IoContext as _, JournalError};
use super::lock::WriterLock;
use super::recovery::{drop_unacknowledged, recover, RecoveryReport};
use super::schema::encode_record;
use super::segment::{
    encode_frame, segment_file_name, FrameHead, SegmentHeader, FRAME_HEADER_LEN, HEADER_LEN,
    MAX_FRAME_BYTES,
};
use crate::model::Timestamp;
use crate::spec::config::{JournalConfig, SyncMode};

/// Default segment roll-over size.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Default snapshot interval, in events.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;
/// Default number of recent segments `compact` keeps.
pub const DEFAULT_KEEP_SEGMENTS: u32 = 2;
/// Default capacity of the live feed (batches a slow subscriber may lag).
pub const DEFAULT_FEED_CAPACITY: usize = 4096;

/// How long [`JournalHandle::stop`] waits for the writer to let go of
/// the lock once it stopped.
const STOP_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Rounds one `Drain` message may commit before letting other messages in.
const ROUNDS_PER_DRAIN: usize = 64;

/// Rounds a caller commits for others before leaving the rest to the actor
/// ([`Shared::after_queueing`]), so its own append is not held up for long.
const LEAD_ROUNDS: usize = 4;

/// Default of [`JournalOptions::combine_at`]. Measured with bench (a) on
/// two workers and 64 callers (docs/journal.md): callers that commit as
/// soon as 2, 4 or 8 batches wait write smaller rounds (3–5 batches a
/// `write`) and took 1.39–1.61×, 1.25–1.34×, 1.17–1.38× the raw time;
/// from 16 or 32, rounds of 8–15 batches, 1.15–1.48×; the actor alone
/// (rounds of ~50, while the other worker idles) 1.51–1.90×.
pub const DEFAULT_COMBINE_AT: usize = 32;

/// Room kept for the frame head when bounding a batch's size.
const HEAD_ROOM: usize = 64;

/// What kind of sync the writer is about to do (for [`SyncHook`]s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKind {
    /// `fdatasync` of the active segment after writing a round of batches
    /// (exactly one per group commit).
    Data,
    /// `fdatasync` of a newly created segment's header.
    NewSegment,
    /// `fsync` of the journal directory after creating or removing a file.
    Directory,
    /// `fsync` of a segment after recovery truncated its torn tail.
    Truncate,
}

/// A sync the writer is about to do.
#[derive(Clone, Debug)]
pub struct SyncEvent {
    pub kind: SyncKind,
    pub path: PathBuf,
}

/// Test hook called on the syncing thread right before every sync. An `Err`
/// is treated exactly like the sync itself failing (the real sync is then
/// skipped). Only called with [`SyncMode::Always`]: `Never` syncs nothing.
pub type SyncHook = Arc<dyn Fn(&SyncEvent) -> std::io::Result<()> + Send + Sync>;

/// How the writer behaves.
#[derive(Clone)]
pub struct JournalOptions {
    /// `Always` (default): an append is answered once `fdatasync` returned.
    /// `Never`: once the bytes are written to the file (tests and benches).
    pub sync: SyncMode,
    /// Roll over to a new segment past this size (default 64 MiB). A
    /// segment always holds at least one frame.
    pub segment_bytes: u64,
    /// Snapshot interval in events, for [`super::Snapshotter`]s (default
    /// 10,000).
    pub snapshot_every: u64,
    /// Recent segments `compact` keeps (default 2).
    pub keep_segments: u32,
    /// Batches the live feed buffers for a slow subscriber (default 4096).
    pub feed_capacity: usize,
    /// A caller whose batch finds at least this many queued (its own
    /// included) and nobody committing commits them all itself (flat
    /// combining; default [`DEFAULT_COMBINE_AT`]); below, the writer actor
    /// commits, after letting the other ready callers queue theirs. At
    /// least 2. Tests lower it to exercise the callers' path.
    pub combine_at: usize,
    /// Test hook: see [`SyncHook`].
    pub sync_hook: Option<SyncHook>,
}

impl std::fmt::Debug for JournalOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalOptions")
            .field("sync", &self.sync)
            .field("segment_bytes", &self.segment_bytes)
            .field("snapshot_every", &self.snapshot_every)
            .field("keep_segments", &self.keep_segments)
            .field("feed_capacity", &self.feed_capacity)
            .field("combine_at", &self.combine_at)
            .field("sync_hook", &self.sync_hook.as_ref().map(|_| "<hook>"))
            .finish()
    }
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            sync: SyncMode::Always,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            keep_segments: DEFAULT_KEEP_SEGMENTS,
            feed_capacity: DEFAULT_FEED_CAPACITY,
            combine_at: DEFAULT_COMBINE_AT,
            sync_hook: None,
        }
    }
}

impl JournalOptions {
    /// Options from `.orca/config.toml`'s `[journal]` (defaults for what it
    /// leaves out).
    pub fn from_config(config: Option<&JournalConfig>) -> Self {
        let d = Self::default();
        let Some(c) = config else { return d };
        Self {
            sync: c.sync.unwrap_or(d.sync),
            segment_bytes: c.segment_bytes.unwrap_or(d.segment_bytes),
            snapshot_every: c.snapshot_every.unwrap_or(d.snapshot_every).max(1),
            keep_segments: c.keep_segments.unwrap_or(d.keep_segments),
            ..d
        }
    }

    pub fn with_sync(mut self, sync: SyncMode) -> Self {
        self.sync = sync;
        self
    }

    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    pub fn with_combine_at(mut self, batches: usize) -> Self {
        self.combine_at = batches.max(2);
        self
    }

    pub fn with_sync_hook(mut self, hook: SyncHook) -> Self {
        self.sync_hook = Some(hook);
        self
    }

    fn syncer(&self) -> Syncer {
        Syncer {
            enabled: self.sync == SyncMode::Always,
            hook: self.sync_hook.clone(),
        }
    }
}

/// Runs syncs through the hook, or not at all with `Never`.
#[derive(Clone)]
pub(crate) struct Syncer {
    pub(crate) enabled: bool,
    hook: Option<SyncHook>,
}

impl Syncer {
    /// Blocking: call on a blocking thread.
    pub(crate) fn sync(&self, kind: SyncKind, file: &File, path: &Path) -> std::io::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        if let Some(hook) = &self.hook {
            hook(&SyncEvent {
                kind,
                path: path.to_path_buf(),
            })?;
        }
        match kind {
            SyncKind::Data | SyncKind::NewSegment => file.sync_data(),
            SyncKind::Directory | SyncKind::Truncate => file.sync_all(),
        }
    }

    pub(crate) fn sync_dir(&self, dir: &Path) -> Result<(), JournalError> {
        if !self.enabled {
            return Ok(());
        }
        let d = File::open(dir).ctx("open directory", dir)?;
        self.sync(SyncKind::Directory, &d, dir)
            .ctx("fsync directory", dir)
    }
}

/// Whether the writer still accepts appends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalHealth {
    Ok,
    /// A write or sync failed; appends are refused (the daemon is degraded).
    Failed(String),
    /// The writer was stopped.
    Stopped,
}

/// Counters the writer reports ([`JournalMsg::Status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterStatus {
    pub last_seq: u64,
    /// The active segment.
    pub segment: PathBuf,
    pub segment_len: u64,
    /// Batches appended since open.
    pub batches: u64,
    /// Rounds (one `write`, and one `fdatasync` with `Always`, each) since
    /// open: `batches / rounds` is the average group size.
    pub rounds: u64,
    /// Of those rounds, the ones a caller committed itself (flat
    /// combining) rather than the actor.
    pub caller_rounds: u64,
    /// Group-commit `fdatasync`s since open.
    pub data_syncs: u64,
    pub failed: Option<String>,
}

/// The writer actor's messages. Callers normally use [`JournalHandle`],
/// which sends these; the enum is public for the supervision tree and for
/// callers that hold only the `ActorRef`.
pub enum JournalMsg {
    /// Batches are waiting in the handle's submission queue: let ready
    /// tasks run (a yield), take them all (a round), write one frame per
    /// batch with one `write` (rolling to a new segment when due), and
    /// repeat while more arrive (up to 64 rounds, then this message is
    /// re-sent to the back of the mailbox). Callers may commit rounds
    /// between two of these (see the module docs).
    /// Each batch's caller gets its [`AppendAck`] — from the sync thread
    /// after the `fdatasync` with `Always`, right after the write with
    /// `Never` — or the error. Reply: none (each batch carries its own).
    /// Journal events written: the queued batches, verbatim.
    Drain,
    /// Append one batch, exactly like [`JournalHandle::append`] (records are
    /// encoded by the actor here). Reply: the [`AppendAck`] once durable, or
    /// the error. Journal events written: the batch.
    Append(Vec<NewEvent>, RpcReplyPort<Result<AppendAck, JournalError>>),
    /// Drain everything queued, wait until the sync thread has answered
    /// every written batch, and reply with the last durable seq, or the
    /// failure. Journal events written: only the queued batches.
    Flush(RpcReplyPort<Result<u64, JournalError>>),
    /// Reply with the writer's [`WriterStatus`]. Writes nothing.
    Status(RpcReplyPort<WriterStatus>),
}

impl std::fmt::Debug for JournalMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalMsg::Drain => f.write_str("Drain"),
            JournalMsg::Append(b, _) => write!(f, "Append({} events)", b.len()),
            JournalMsg::Flush(_) => f.write_str("Flush"),
            JournalMsg::Status(_) => f.write_str("Status"),
        }
    }
}

/// A caller's answer, with the batch's events and encoded records handed
/// back so they are freed on the caller's thread (which allocated them)
/// rather than in the single writer.
type Answer = (Result<AppendAck, JournalError>, Vec<NewEvent>, Vec<u8>);

enum Reply {
    Handle(oneshot::Sender<Answer>),
    Port(RpcReplyPort<Result<AppendAck, JournalError>>),
}

impl Reply {
    fn send(
        self,
        result: Result<AppendAck, JournalError>,
        events: Vec<NewEvent>,
        records: Vec<u8>,
    ) {
        match self {
            Reply::Handle(tx) => {
                let _ = tx.send((result, events, records));
            }
            Reply::Port(port) => {
                let _ = port.send(result);
            }
        }
    }
}

struct Submission {
    events: Vec<NewEvent>,
    /// The batch's records, encoded by the caller.
    records: Vec<u8>,
    reply: Reply,
}

impl Submission {
    fn answer(self, result: Result<AppendAck, JournalError>) {
        self.reply.send(result, self.events, self.records);
    }
}

#[derive(Default)]
struct Queue {
    items: Vec<Submission>,
    /// A `Drain` is in the mailbox or being handled: no need to send one.
    scheduled: bool,
    closed: bool,
}

/// State shared by the handles, the actor and the sync thread.
struct Shared {
    dir: PathBuf,
    queue: Mutex<Queue>,
    /// [`JournalOptions::combine_at`].
    combine_at: usize,
    /// The active segment and the round machinery. A tokio mutex so the
    /// actor may hold it across a roll-over (which waits on a blocking
    /// thread); callers only ever `try_lock` it.
    engine: tokio::sync::Mutex<Engine>,
    last_seq: AtomicU64,
    /// The highest seq written, or about to be, to the segment files
    /// (durable or not yet): set before each write.
    written_seq: AtomicU64,
    failed: OnceLock<String>,
    stopped: AtomicBool,
    /// Set once the writer actor has let go of its share of the writer
    /// lock (the end of its `post_stop`).
    released: tokio::sync::watch::Sender<bool>,
    feed: broadcast::Sender<Arc<[Envelope]>>,
    /// Group-commit `fdatasync`s done.
    data_syncs: AtomicU64,
    /// The writer actor, stopped by [`Shared::fail`] so that its supervisor
    /// (the root's `/journal` row) learns of the failure and reopens the
    /// journal.
    actor: OnceLock<ActorRef<JournalMsg>>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock; recover the data anyway.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses new submissions and answers queued ones with `Stopped`.
    fn close(&self) {
        let items = {
            let mut q = self.queue();
            q.closed = true;
            std::mem::take(&mut q.items)
        };
        self.stopped.store(true, Ordering::Release);
        for sub in items {
            sub.answer(Err(JournalError::Stopped));
        }
    }

    /// Sends the writer actor a `Drain` if batches are queued and none is
    /// scheduled yet.
    fn schedule_drain(&self) {
        let need = {
            let mut q = self.queue();
            !q.items.is_empty() && !std::mem::replace(&mut q.scheduled, true)
        };
        if need
            && self
                .actor
                .get()
                .is_none_or(|a| a.cast(JournalMsg::Drain).is_err())
        {
            self.close();
        }
    }

    /// The engine, if nobody holds it. See [`Held`] for what letting go of
    /// it does.
    fn try_engine(&self) -> Option<Held<'_>> {
        let guard = self.engine.try_lock().ok()?;
        Some(Held {
            guard,
            _then: LookAtQueue(self),
        })
    }

    /// The engine, waiting for it (the actor).
    async fn engine(&self) -> Held<'_> {
        Held {
            guard: self.engine.lock().await,
            _then: LookAtQueue(self),
        }
    }

    /// Called right after a caller queued its batch (`queued` batches are
    /// waiting now, its own included).
    ///
    /// - The engine is busy: nothing to do — its holder sees the batch when
    ///   it lets go ([`Held`]).
    /// - The engine is free and fewer than `combine_at` batches wait:
    ///   schedule the actor, which first lets the other ready callers queue
    ///   theirs (one round for many batches instead of a `write` for a few).
    /// - The engine is free and at least that many wait (flat combining):
    ///   commit the whole queue right here — a round written on the
    ///   caller's worker while the other workers go on, the caller's own
    ///   answer ready without a sleep and a wake, no hand-off to the actor
    ///   — and again while as many arrive meanwhile, up to
    ///   [`LEAD_ROUNDS`] rounds. A
    ///   roll-over (which may `fdatasync`: never on a caller's worker
    ///   thread) puts the rest back, first in line, for the actor.
    fn after_queueing(&self, queued: usize) {
        std::sync::atomic::fence(Ordering::SeqCst);
        let Some(mut engine) = self.try_engine() else {
            return;
        };
        if queued < self.combine_at {
            return; // letting go schedules the actor
        }
        for round in 0..LEAD_ROUNDS {
            // Again only while enough have queued meanwhile; the rest is
            // the actor's (letting go schedules it).
            if round > 0 && self.queue().items.len() < self.combine_at {
                return;
            }
            if !engine.take(self) {
                return;
            }
            if engine.commit(self).is_some() {
                let rest = std::mem::take(&mut engine.taken);
                self.queue().items.splice(0..0, rest);
                return;
            }
            engine.caller_rounds += 1;
        }
    }

    /// The error a batch gets once the writer failed or stopped.
    fn refusal(&self) -> JournalError {
        match self.failed.get() {
            Some(reason) => JournalError::Failed {
                reason: reason.clone(),
            },
            None => JournalError::Stopped,
        }
    }

    /// Enters the failed state (once), says so loudly and stops the writer
    /// actor: its supervisor reopens the journal (recovery) with backoff.
    fn fail(&self, e: &JournalError) {
        let reason = e.to_string();
        if self.failed.set(reason.clone()).is_ok() {
            tracing::error!(
                journal = %self.dir.display(),
                error = %reason,
                "journal write or fdatasync failed: appends are refused and orca is degraded \
                 until the journal is reopened (recovered from disk) by its supervisor; \
                 the sync is not retried on the same file"
            );
            if let Some(a) = self.actor.get() {
                a.stop(Some(format!("journal failed: {reason}")));
            }
        }
    }

    /// Batches are durable, up to seq `last_seq`: publish them and answer
    /// their callers, in order. The last durable seq is raised before any
    /// caller is answered, and the feed's receivers are counted once per
    /// round rather than once per batch (a count takes the feed's lock).
    fn complete(&self, done: impl IntoIterator<Item = Done>, last_seq: u64) {
        self.last_seq.fetch_max(last_seq, Ordering::AcqRel);
        let publish = self.feed.receiver_count() > 0;
        for Done { mut sub, ack } in done {
            if publish {
                let envs: Arc<[Envelope]> = std::mem::take(&mut sub.events)
                    .into_iter()
                    .zip(ack.first_seq..)
                    .map(|(e, seq)| Envelope {
                        seq,
                        at: ack.at,
                        actor: e.actor,
                        event: e.event,
                    })
                    .collect();
                let _ = self.feed.send(envs);
            }
            sub.answer(Ok(ack));
        }
    }
}

/// A batch written to its segment, waiting to be answered.
struct Done {
    sub: Submission,
    ack: AppendAck,
}

/// Work for the sync thread.
enum SyncJob {
    /// `fdatasync` the file (written up to these batches), then answer them.
    Sync {
        file: Arc<File>,
        path: PathBuf,
        done: Vec<Done>,
    },
    /// Answered once every job queued before it is finished.
    Barrier(oneshot::Sender<()>),
}

#[derive(Default)]
struct SyncQueue {
    jobs: Vec<SyncJob>,
    closed: bool,
}

/// The writer's sync thread (sync `always` only). The actor writes a round
/// and queues it here without waiting, so it can write the next round while
/// this one syncs; the thread takes every queued round at once, syncs each
/// file they wrote once (group commit), then answers their callers directly
/// — one hand-off fewer than syncing on a blocking pool and answering from
/// the actor.
struct SyncThread {
    queue: Mutex<SyncQueue>,
    wake: Condvar,
}

impl SyncThread {
    fn lock(&self) -> MutexGuard<'_, SyncQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job. One pushed after [`Self::close`] is handed back:
    /// the thread may already be gone, and nobody would answer it.
    fn push(&self, job: SyncJob) -> Result<(), SyncJob> {
        let mut q = self.lock();
        if q.closed {
            return Err(job);
        }
        q.jobs.push(job);
        drop(q);
        self.wake.notify_one();
        Ok(())
    }

    /// Lets the thread finish what is queued and exit.
    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    fn run(&self, shared: &Shared, syncer: &Syncer) {
        let mut jobs = Vec::new();
        loop {
            {
                let mut q = self.lock();
                while q.jobs.is_empty() && !q.closed {
                    q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                if q.jobs.is_empty() {
                    return;
                }
                std::mem::swap(&mut q.jobs, &mut jobs);
            }
            // Every job's bytes were written before it was queued, so one
            // sync per file covers them all.
            let mut result = match shared.failed.get() {
                Some(reason) => Err(JournalError::Failed {
                    reason: reason.clone(),
                }),
                None => Ok(()),
            };
            let mut synced: Vec<*const File> = Vec::new();
            for job in &jobs {
                let SyncJob::Sync { file, path, .. } = job else {
                    continue;
                };
                if result.is_err() || synced.contains(&Arc::as_ptr(file)) {
                    continue;
                }
                synced.push(Arc::as_ptr(file));
                match syncer.sync(SyncKind::Data, file, path) {
                    Ok(()) => {
                        shared.data_syncs.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        let err = JournalError::SyncFailed {
                            path: path.clone(),
                            reason: e.to_string(),
                        };
                        shared.fail(&err);
                        result = Err(err);
                    }
                }
            }
            for job in jobs.drain(..) {
                match job {
                    SyncJob::Sync { done, .. } => match &result {
                        Ok(()) => {
                            let last = done.last().map_or(0, |d| d.ack.last_seq);
                            shared.complete(done, last);
                        }
                        Err(e) => {
                            for d in done {
                                d.sub.answer(Err(e.clone()));
                            }
                        }
                    },
                    SyncJob::Barrier(tx) => {
                        let _ = tx.send(());
                    }
                }
            }
        }
    }
}

/// Encodes a batch's records (on the caller's task).
fn encode_batch(batch: &[NewEvent]) -> Result<Vec<u8>, JournalError> {
    if batch.is_empty() {
        return Err(JournalError::EmptyBatch);
    }
    let mut records = Vec::with_capacity(batch.len() * 128);
    for e in batch {
        encode_record(&mut records, &e.actor, &e.event).map_err(|err| JournalError::Encode {
            event_type: e.event.type_name(),
            reason: err.to_string(),
        })?;
        if records.len() > MAX_FRAME_BYTES - HEAD_ROOM {
            return Err(JournalError::BatchTooLarge {
                size: records.len(),
                max: MAX_FRAME_BYTES - HEAD_ROOM,
            });
        }
    }
    if u32::try_from(batch.len()).is_err() {
        return Err(JournalError::BatchTooLarge {
            size: records.len(),
            max: MAX_FRAME_BYTES - HEAD_ROOM,
        });
    }
    Ok(records)
}

/// The handle the rest of orca appends through. Cheap to clone.
///
/// Every clone follows the journal across reopens: after the writer failed
/// (a failed write or `fdatasync`) its supervisor calls [`Self::reopen`],
/// which recovers the journal from disk and starts a new writer behind the
/// same handles. The live feed is the handle's, not the writer's, so
/// subscribers keep receiving across a reopen.
#[derive(Clone)]
pub struct JournalHandle {
    cur: Arc<Current>,
}

/// What every clone of a handle shares.
struct Current {
    dir: PathBuf,
    opts: JournalOptions,
    feed: broadcast::Sender<Arc<[Envelope]>>,
    /// The writer appends currently go to.
    gen: std::sync::RwLock<Gen>,
    /// The workspace's writer lock, held across reopens (so no other
    /// process can take the journal while this one is reopening it, and
    /// reopening a full disk writes nothing to take it again); released by
    /// [`JournalHandle::stop`].
    lock: Mutex<Option<Arc<WriterLock>>>,
}

/// One opened writer.
#[derive(Clone)]
struct Gen {
    shared: Arc<Shared>,
    actor: ActorRef<JournalMsg>,
}

impl std::fmt::Debug for JournalHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalHandle")
            .field("dir", &self.cur.dir)
            .field("last_seq", &self.last_seq())
            .field("health", &self.health())
            .finish()
    }
}

impl JournalHandle {
    /// The writer appends currently go to (a read lock and two `Arc`
    /// clones).
    fn gen(&self) -> Gen {
        self.cur
            .gen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Appends a batch (all-or-nothing, one frame) and resolves once it is
    /// durable under the sync mode, with the seqs and the timestamp the
    /// writer assigned. Persist, then apply: act only after `Ok`.
    ///
    /// The batch is queued when `append` is *called* (the future only waits
    /// for the answer), so appends called one after another from one task
    /// get increasing seqs in call order even if their futures are awaited
    /// later or together.
    pub fn append(
        &self,
        batch: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendAck, JournalError>> + Send + 'static {
        let rx = self.submit(batch);
        async move {
            match rx?.await {
                Ok((result, events, records)) => {
                    drop((events, records));
                    result
                }
                Err(_) => Err(JournalError::Stopped),
            }
        }
    }

    fn submit(&self, batch: Vec<NewEvent>) -> Result<oneshot::Receiver<Answer>, JournalError> {
        // Borrowed under the read lock, not cloned: every append would
        // otherwise bump and drop two reference counts that all workers
        // share (about 3% of the samples of bench (a) under perf).
        let gen = self.cur.gen.read().unwrap_or_else(|e| e.into_inner());
        let Gen { shared, .. } = &*gen;
        if let Some(reason) = shared.failed.get() {
            return Err(JournalError::Failed {
                reason: reason.clone(),
            });
        }
        let records = encode_batch(&batch)?;
        let (tx, rx) = oneshot::channel();
        let queued = {
            let mut q = shared.queue();
            if q.closed {
                return Err(JournalError::Stopped);
            }
            q.items.push(Submission {
                events: batch,
                records,
                reply: Reply::Handle(tx),
            });
            q.items.len()
        };
        shared.after_queueing(queued);
        Ok(rx)
    }

    /// `Ok` while appends are accepted; `Failed(reason)` after a failed
    /// write or `fdatasync` (appends are refused until [`Self::reopen`]).
    /// Cheap enough for every status request.
    pub fn health(&self) -> JournalHealth {
        let g = self.gen();
        if let Some(reason) = g.shared.failed.get() {
            JournalHealth::Failed(reason.clone())
        } else if g.shared.stopped.load(Ordering::Acquire) {
            JournalHealth::Stopped
        } else {
            JournalHealth::Ok
        }
    }

    /// The last durable seq (0: the journal is empty).
    pub fn last_seq(&self) -> u64 {
        self.gen().shared.last_seq.load(Ordering::Acquire)
    }

    /// The highest seq written (or being written) to the segment files: a
    /// reader of the files (`orca journal export`, a follower) never sees
    /// more. At least [`Self::last_seq`]; ahead of it while a round is
    /// being written or synced.
    pub fn written_seq(&self) -> u64 {
        self.gen().shared.written_seq.load(Ordering::Acquire)
    }

    /// The live feed: every batch, in seq order, after it is durable.
    ///
    /// To fold the journal and then follow it without a gap or a double,
    /// subscribe *first*, then replay the files (noting the last seq
    /// applied), then apply only envelopes with a higher seq from the feed.
    /// A subscriber that falls more than `feed_capacity` batches behind gets
    /// `RecvError::Lagged` and must catch up from the files.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<[Envelope]>> {
        self.cur.feed.subscribe()
    }

    /// The current writer actor, to link into the supervision tree
    /// (`/journal`).
    pub fn actor(&self) -> ActorCell {
        self.gen().actor.get_cell()
    }

    /// The current writer actor's typed reference.
    pub fn actor_ref(&self) -> ActorRef<JournalMsg> {
        self.gen().actor
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.cur.dir
    }

    /// The writer's counters (a round trip to the actor).
    pub async fn status(&self) -> Result<WriterStatus, JournalError> {
        match self.gen().actor.call(JournalMsg::Status, None).await {
            Ok(ractor::rpc::CallResult::Success(s)) => Ok(s),
            _ => Err(JournalError::Stopped),
        }
    }

    /// Writes and syncs everything appended so far; answers the last seq.
    /// A barrier: a reader of the files afterwards sees every earlier
    /// append.
    pub async fn flush(&self) -> Result<u64, JournalError> {
        match self.gen().actor.call(JournalMsg::Flush, None).await {
            Ok(ractor::rpc::CallResult::Success(r)) => r,
            _ => Err(JournalError::Stopped),
        }
    }

    /// Writes and syncs everything queued, stops the actor and releases the
    /// writer lock. Waits until the lock is released.
    pub async fn stop(&self) {
        let g = self.gen();
        let _ = g.actor.call(JournalMsg::Flush, None).await;
        self.cur
            .lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let _ = g
            .actor
            .stop_and_wait(Some("journal stopped".into()), None)
            .await;
        // A writer that had failed was already stopping (`Shared::fail`),
        // and `stop_and_wait` can return before its `post_stop` let go of
        // the lock: a reopen right after then found the journal locked by
        // this very process. Wait for the release itself (bounded, should
        // the actor have died without its `post_stop`).
        let mut released = g.shared.released.subscribe();
        let _ = tokio::time::timeout(STOP_LIMIT, released.wait_for(|r| *r)).await;
        g.shared.close();
    }

    /// Reopens a journal whose writer failed: waits for the failed writer
    /// to stop (releasing the lock), drops from disk every batch after the
    /// last one acknowledged (their callers were answered with an error, so
    /// nothing may act on them later), recovers the rest (a torn tail is
    /// truncated) and starts a new writer behind every clone of this
    /// handle. Refused (`Ok(None)`) while the current writer is healthy.
    /// Returns the new writer (to link into the tree) and what recovery
    /// found.
    pub async fn reopen(&self) -> Result<Option<(ActorCell, RecoveryReport)>, JournalError> {
        let old = self.gen();
        if old.shared.failed.get().is_none() && !old.shared.stopped.load(Ordering::Acquire) {
            return Ok(None);
        }
        if old.actor.get_status() != ractor::ActorStatus::Stopped {
            let _ = old
                .actor
                .stop_and_wait(Some("reopening the journal".into()), None)
                .await;
        }
        old.shared.close();
        // Nobody writes to the old segment any more (a caller that was
        // committing has finished) before recovery reads it.
        drop(old.shared.engine.lock().await);
        let lock = self
            .cur
            .lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(JournalError::Stopped)?;
        let acked = old.shared.last_seq.load(Ordering::Acquire);
        let (shared, actor, report, _) = start_writer(
            &self.cur.dir,
            &self.cur.opts,
            self.cur.feed.clone(),
            Some((acked, lock)),
        )
        .await?;
        let cell = actor.get_cell();
        *self.cur.gen.write().unwrap_or_else(|e| e.into_inner()) = Gen { shared, actor };
        Ok(Some((cell, report)))
    }
}

/// Takes the exclusive writer lock (a second writer fails naming the
/// holder's pid), recovers the journal in `dir` (creating it if needed) and
/// spawns the writer actor (unnamed: link it with [`JournalHandle::actor`]).
pub async fn open_writer(
    dir: &Path,
    opts: JournalOptions,
) -> Result<(JournalHandle, RecoveryReport), JournalError> {
    let (feed, _) = broadcast::channel(opts.feed_capacity.max(1));
    let (shared, actor, report, lock) = start_writer(dir, &opts, feed.clone(), None).await?;
    let cur = Current {
        dir: dir.to_path_buf(),
        opts,
        feed,
        gen: std::sync::RwLock::new(Gen { shared, actor }),
        lock: Mutex::new(Some(lock)),
    };
    Ok((JournalHandle { cur: Arc::new(cur) }, report))
}

/// The parts of one started writer.
type Started = (
    Arc<Shared>,
    ActorRef<JournalMsg>,
    RecoveryReport,
    Arc<WriterLock>,
);

/// Locks, recovers and spawns one writer. `reopen`: reopening after a
/// failure, with the last seq whose caller was answered `Ok` (everything
/// after it is dropped from disk first) and the lock still held.
async fn start_writer(
    dir: &Path,
    opts: &JournalOptions,
    feed: broadcast::Sender<Arc<[Envelope]>>,
    reopen: Option<(u64, Arc<WriterLock>)>,
) -> Result<Started, JournalError> {
    let d = dir.to_path_buf();
    let syncer = opts.syncer();
    let (lock, report, last_at, segment) = tokio::task::spawn_blocking(move || {
        let created = !d.is_dir();
        std::fs::create_dir_all(&d).ctx("create the journal directory", &d)?;
        if created {
            if let Some(parent) = d.parent() {
                syncer.sync_dir(parent)?;
            }
        }
        let (lock, unacknowledged) = match reopen {
            Some((seq, lock)) => (lock, drop_unacknowledged(&d, seq, &syncer)?),
            None => (Arc::new(WriterLock::acquire(&d)?), None),
        };
        let mut recovered = recover(&d, &syncer)?;
        if let Some(w) = unacknowledged {
            recovered.report.warnings.insert(0, w);
        }
        let next = recovered.report.last_seq + 1;
        let segment = match recovered.active {
            Some((file, len)) => ActiveSegment::open(file.path, len)?,
            None => ActiveSegment::create(&d, next, &syncer)?,
        };
        Ok::<_, JournalError>((lock, recovered.report, recovered.last_at, segment))
    })
    .await
    .map_err(|e| JournalError::Spawn(e.to_string()))??;

    let sync_thread = (opts.sync == SyncMode::Always).then(|| {
        Arc::new(SyncThread {
            queue: Mutex::new(SyncQueue::default()),
            wake: Condvar::new(),
        })
    });
    let engine = Engine {
        seg: segment,
        next_seq: report.last_seq + 1,
        last_at,
        out: Vec::new(),
        taken: Vec::new(),
        acks: Vec::new(),
        batches: 0,
        rounds: 0,
        caller_rounds: 0,
        segment_bytes: opts.segment_bytes,
        dir: dir.to_path_buf(),
        syncer: opts.syncer(),
        sync_thread: sync_thread.clone(),
    };
    let shared = Arc::new(Shared {
        dir: dir.to_path_buf(),
        queue: Mutex::new(Queue::default()),
        combine_at: opts.combine_at.max(2),
        engine: tokio::sync::Mutex::new(engine),
        last_seq: AtomicU64::new(report.last_seq),
        written_seq: AtomicU64::new(report.last_seq),
        failed: OnceLock::new(),
        stopped: AtomicBool::new(false),
        released: tokio::sync::watch::Sender::new(false),
        feed,
        data_syncs: AtomicU64::new(0),
        actor: OnceLock::new(),
    });
    if let Some(t) = &sync_thread {
        let (thread, sh, syncer) = (t.clone(), shared.clone(), opts.syncer());
        std::thread::Builder::new()
            .name("orca-journal-sync".into())
            .spawn(move || thread.run(&sh, &syncer))
            .map_err(|e| JournalError::Spawn(format!("cannot start the sync thread: {e}")))?;
    }
    let state = WriterState {
        shared: shared.clone(),
        sync_thread,
        lock: Some(lock.clone()),
    };
    let (actor, _join) = Actor::spawn(None, JournalWriter, StartState(Some(state)))
        .await
        .map_err(|e| JournalError::Spawn(e.to_string()))?;
    let _ = shared.actor.set(actor.clone());
    Ok((shared, actor, report, lock))
}

/// The segment appends go to.
struct ActiveSegment {
    file: Arc<File>,
    path: PathBuf,
    /// Bytes in the file (header included).
    len: u64,
}

impl ActiveSegment {
    /// Continues the recovered last segment (already truncated to `len`).
    fn open(path: PathBuf, len: u64) -> Result<Self, JournalError> {
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .ctx("open for append", &path)?;
        Ok(Self {
            file: Arc::new(file),
            path,
            len,
        })
    }

    /// Creates a segment starting at `first_seq`: header written and synced,
    /// directory synced (blocking).
    fn create(dir: &Path, first_seq: u64, syncer: &Syncer) -> Result<Self, JournalError> {
        let path = dir.join(segment_file_name(first_seq));
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .ctx("create segment", &path)?;
        let header = SegmentHeader::new(first_seq, Timestamp::now()).encode();
        file.write_all(&header).ctx("write the header of", &path)?;
        syncer
            .sync(SyncKind::NewSegment, &file, &path)
            .map_err(|e| JournalError::SyncFailed {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        syncer.sync_dir(dir).map_err(|e| JournalError::SyncFailed {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            file: Arc::new(file),
            path,
            len: HEADER_LEN as u64,
        })
    }
}

/// The writer actor.
pub struct JournalWriter;

/// The writer's state, built by [`open_writer`] (recovery happens before
/// the actor starts, so a failed recovery is an ordinary error).
pub struct StartState(Option<WriterState>);

pub struct WriterState {
    shared: Arc<Shared>,
    /// `Some` with sync `always`.
    sync_thread: Option<Arc<SyncThread>>,
    lock: Option<Arc<WriterLock>>,
}

impl Drop for WriterState {
    fn drop(&mut self) {
        // However the actor ends, nobody waits forever on a queued batch:
        // queued ones are refused, written ones are still synced and
        // answered by the sync thread, which then exits.
        self.shared.close();
        if let Some(t) = &self.sync_thread {
            t.close();
        }
    }
}

impl Actor for JournalWriter {
    type Msg = JournalMsg;
    type State = WriterState;
    type Arguments = StartState;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: StartState,
    ) -> Result<Self::State, ActorProcessingErr> {
        args.0
            .ok_or_else(|| "journal writer started without its state".into())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            JournalMsg::Drain => state.drain_once(&myself).await,
            JournalMsg::Append(batch, port) => match encode_batch(&batch) {
                Err(e) => {
                    let _ = port.send(Err(e));
                }
                Ok(records) => {
                    {
                        let mut q = state.shared.queue();
                        q.items.push(Submission {
                            events: batch,
                            records,
                            reply: Reply::Port(port),
                        });
                        q.scheduled = true;
                    }
                    state.drain_once(&myself).await;
                }
            },
            JournalMsg::Flush(port) => {
                let next_seq = {
                    let mut engine = state.shared.engine().await;
                    while engine.take(&state.shared) {
                        engine.commit_all(&state.shared).await;
                    }
                    engine.next_seq
                };
                state.synced().await;
                let _ = port.send(match state.shared.failed.get() {
                    Some(reason) => Err(JournalError::Failed {
                        reason: reason.clone(),
                    }),
                    None => Ok(next_seq - 1),
                });
            }
            JournalMsg::Status(port) => {
                let engine = state.shared.engine().await;
                let _ = port.send(WriterStatus {
                    last_seq: state.shared.last_seq.load(Ordering::Acquire),
                    segment: engine.seg.path.clone(),
                    segment_len: engine.seg.len,
                    batches: engine.batches,
                    rounds: engine.rounds,
                    caller_rounds: engine.caller_rounds,
                    data_syncs: state.shared.data_syncs.load(Ordering::Relaxed),
                    failed: state.shared.failed.get().cloned(),
                });
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.shared.close();
        // A caller may be committing a round it took before the close: let
        // it finish its write (and hand it to the sync thread) before the
        // last sync and before the writer lock goes.
        drop(state.shared.engine.lock().await);
        state.synced().await;
        if let Some(t) = &state.sync_thread {
            t.close();
        }
        state.lock.take();
        state.shared.released.send_replace(true);
        Ok(())
    }
}

impl WriterState {
    /// Commits rounds while batches keep arriving, at most
    /// [`ROUNDS_PER_DRAIN`]; if more are still queued then, another `Drain`
    /// goes to the back of the mailbox, so status and flush requests are not
    /// starved under sustained load.
    async fn drain_once(&mut self, myself: &ActorRef<JournalMsg>) {
        for _ in 0..ROUNDS_PER_DRAIN {
            // Let the callers that are ready run first: the ones just
            // answered build and queue their next batches, so the round
            // takes them all at once (one write for many batches) instead of
            // the first one or two. Without this, the first caller to
            // queue woke the actor, which tokio then ran next (its LIFO
            // slot): 1.4 batches per round and a write syscall each.
            tokio::task::yield_now().await;
            let mut engine = self.shared.engine().await;
            if !engine.take(&self.shared) {
                return;
            }
            engine.commit_all(&self.shared).await;
        }
        let more = {
            let mut q = self.shared.queue();
            if q.items.is_empty() {
                q.scheduled = false;
            }
            !q.items.is_empty()
        };
        if more && myself.cast(JournalMsg::Drain).is_err() {
            self.shared.close();
        }
    }

    /// Waits until every round handed to the sync thread is answered.
    async fn synced(&self) {
        if let Some(t) = &self.sync_thread {
            let (tx, rx) = oneshot::channel();
            // Refused once closed: nothing is waiting to be synced then.
            if t.push(SyncJob::Barrier(tx)).is_ok() {
                let _ = rx.await;
            }
        }
    }
}

/// The engine, held. Letting go of it looks at the queue: a batch queued
/// while it was held (whose caller found it busy and left the batch to the
/// holder) gets a `Drain` scheduled, so nothing queued is left behind.
struct Held<'a> {
    guard: tokio::sync::MutexGuard<'a, Engine>,
    /// Dropped after `guard` (fields drop in declaration order).
    _then: LookAtQueue<'a>,
}

/// What runs once the engine is let go. The fence pairs with the one
/// between queueing and `try_lock` in [`Shared::after_queueing`]: either
/// the caller sees the engine free, or the holder sees its batch here.
struct LookAtQueue<'a>(&'a Shared);

impl Drop for LookAtQueue<'_> {
    fn drop(&mut self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        self.0.schedule_drain();
    }
}

impl std::ops::Deref for Held<'_> {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.guard
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Engine {
        &mut self.guard
    }
}

/// The active segment and the round machinery, behind
/// [`Shared::engine`]: whoever holds the lock commits rounds — the writer
/// actor, or a caller that queued its batch behind others' while nobody
/// held it (flat combining, see [`Shared::after_queueing`]). Either way rounds are
/// written one at a time, in seq order.
struct Engine {
    seg: ActiveSegment,
    next_seq: u64,
    last_at: Timestamp,
    /// Frames of the current round, written with one `write`.
    out: Vec<u8>,
    /// The round's submissions (reused buffer).
    taken: Vec<Submission>,
    acks: Vec<AppendAck>,
    batches: u64,
    rounds: u64,
    /// Rounds committed by callers ([`Shared::after_queueing`]).
    caller_rounds: u64,
    segment_bytes: u64,
    dir: PathBuf,
    syncer: Syncer,
    /// `Some` with sync `always`: written rounds go there to be synced.
    sync_thread: Option<Arc<SyncThread>>,
}

impl Engine {
    /// Takes everything queued into `taken`; false (and no drain scheduled
    /// any more) when the queue is empty.
    fn take(&mut self, shared: &Shared) -> bool {
        let mut q = shared.queue();
        if q.items.is_empty() {
            q.scheduled = false;
            return false;
        }
        // Every round leaves `taken` empty (committed, answered, or put
        // back in the queue): swap buffers rather than move the batches.
        debug_assert!(self.taken.is_empty());
        std::mem::swap(&mut q.items, &mut self.taken);
        true
    }

    /// The batch timestamp: now, but never before the previous batch's.
    fn stamp(&mut self) -> Timestamp {
        let now = Timestamp::now().max(self.last_at);
        self.last_at = now;
        now
    }

    /// Commits every taken batch, rolling to new segments as needed (the
    /// roll may `fdatasync`, so it runs on a blocking thread).
    async fn commit_all(&mut self, shared: &Shared) {
        while let Some(first_seq) = self.commit(shared) {
            if let Err(e) = self.roll(shared, first_seq).await {
                shared.fail(&e);
                for sub in self.taken.drain(..) {
                    sub.answer(Err(e.clone()));
                }
            }
        }
    }

    /// One round: frames for the taken batches, one write, and their
    /// answers (from the sync thread once synced with `always`, right away
    /// with `never`). Stops before the first batch that does not fit in the
    /// active segment: the batches before it are written and answered, it
    /// and the rest stay taken, and the seq it starts at is returned — roll
    /// over with [`Self::roll`] and commit again. `None`: all done.
    fn commit(&mut self, shared: &Shared) -> Option<u64> {
        if shared.failed.get().is_some() || shared.stopped.load(Ordering::Acquire) {
            let err = shared.refusal();
            for sub in self.taken.drain(..) {
                sub.answer(Err(err.clone()));
            }
            return None;
        }
        self.acks.clear();
        // One timestamp per round: the batches were accepted together.
        let at = self.stamp();
        let mut roll_at = None;
        for sub in &self.taken {
            let head = FrameHead {
                first_seq: self.next_seq,
                at,
                count: sub.events.len() as u32,
            };
            let frame_len = (FRAME_HEADER_LEN + HEAD_ROOM + sub.records.len()) as u64;
            let used = self.seg.len + self.out.len() as u64;
            if used > HEADER_LEN as u64 && used + frame_len > self.segment_bytes {
                roll_at = Some(head.first_seq);
                break;
            }
            encode_frame(&mut self.out, &head, &sub.records);
            self.next_seq = head.last_seq() + 1;
            self.acks.push(AppendAck {
                first_seq: head.first_seq,
                last_seq: head.last_seq(),
                at: head.at,
            });
        }
        // Announced before the write: a reader of the files must never see
        // a seq the handle does not count as written yet.
        shared
            .written_seq
            .fetch_max(self.next_seq - 1, Ordering::AcqRel);
        let framed = self.acks.len();
        match self.write_out() {
            Err(e) => {
                shared.fail(&e);
                for sub in self.taken.drain(..) {
                    sub.answer(Err(e.clone()));
                }
                return None;
            }
            Ok(()) if framed > 0 => {
                self.batches += framed as u64;
                self.rounds += 1;
                let done = self
                    .taken
                    .drain(..framed)
                    .zip(self.acks.drain(..))
                    .map(|(sub, ack)| Done { sub, ack });
                match &self.sync_thread {
                    // Durable once synced: the sync thread answers.
                    Some(t) => {
                        let job = SyncJob::Sync {
                            file: self.seg.file.clone(),
                            path: self.seg.path.clone(),
                            done: done.collect(),
                        };
                        // The writer stopped meanwhile: never synced, so
                        // never acknowledged.
                        if let Err(SyncJob::Sync { done, .. }) = t.push(job) {
                            let err = shared.refusal();
                            for d in done {
                                d.sub.answer(Err(err.clone()));
                            }
                        }
                    }
                    // `never`: written is all there is to wait for.
                    None => shared.complete(done, self.next_seq - 1),
                }
            }
            Ok(()) => {}
        }
        if self.out.capacity() > 4 * MAX_FRAME_BYTES {
            self.out = Vec::new();
        }
        roll_at
    }

    /// Writes the round's buffered frames with one `write`.
    fn write_out(&mut self) -> Result<(), JournalError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = (&*self.seg.file)
            .write_all(&self.out)
            .ctx("write", &self.seg.path);
        if r.is_ok() {
            self.seg.len += self.out.len() as u64;
        }
        self.out.clear();
        r
    }

    /// Rolls to a new segment whose first event is `first_seq`: the current
    /// one is synced first (its rounds are all written), so only the last
    /// segment can ever have a torn tail.
    async fn roll(&mut self, shared: &Shared, first_seq: u64) -> Result<(), JournalError> {
        let file = self.seg.file.clone();
        let path = self.seg.path.clone();
        let dir = self.dir.clone();
        let syncer = self.syncer.clone();
        let seg = tokio::task::spawn_blocking(move || {
            if syncer.enabled {
                syncer.sync(SyncKind::Data, &file, &path).map_err(|e| {
                    JournalError::SyncFailed {
                        path: path.clone(),
                        reason: e.to_string(),
                    }
                })?;
            }
            ActiveSegment::create(&dir, first_seq, &syncer)
        })
        .await
        .map_err(|e| JournalError::SyncFailed {
            path: self.dir.clone(),
            reason: e.to_string(),
        })??;
        if self.syncer.enabled {
            shared.data_syncs.fetch_add(1, Ordering::Relaxed);
        }
        self.seg = seg;
        Ok(())
    }
}
