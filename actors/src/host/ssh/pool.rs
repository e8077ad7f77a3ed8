//! One connection per host, shared by every attempt on it: reused while it
//! lives, reconnected with backoff when it drops, with at most
//! `max_sessions` task channels and [`CONTROL_CHANNELS`] control channels
//! open at once.
//!
//! Process groups of attempts that were running when a connection dropped
//! are remembered; the next connection kills them (SIGTERM, the grace,
//! SIGKILL, after checking they are still the attempts') *before* anyone
//! else may use it, so a retry never runs beside the attempt it replaces.
//! A dropped connection with such groups reconnects on its own, with
//! backoff, even if no attempt asks for the host again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::Msg;
use russh::Channel;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connect::{connect, Session};
use super::exec::{self, Output};
use super::script;
use super::target::{Target, CONTROL_CHANNELS, DEFAULT_CONNECT_TIMEOUT};
use crate::host::HostError;

/// First reconnect delay after a failed connect; doubles up to
/// [`BACKOFF_MAX`].
const BACKOFF_INITIAL: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// A connection that dropped with attempts' groups on it is retried in the
/// background this many times.
const BACKGROUND_RECONNECTS: u32 = 12;
/// Bound on opening a channel (a connection that does not answer is
/// closed and replaced).
const CHANNEL_OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Lost groups killed at once on a new connection (channels in use then).
const KILL_CONCURRENCY: usize = 8;
/// Last delay before giving up on a refused channel open.
const OPEN_RETRY_MAX: Duration = Duration::from_millis(64);

/// An attempt's process group on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracked {
    pub pgid: i32,
    pub start: u64,
    pub attempt_id: String,
    /// The connection it runs on.
    pub generation: u64,
}

#[derive(Default)]
struct State {
    live: Option<Arc<Session>>,
    generation: u64,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
}

#[derive(Default)]
struct Procs {
    running: HashMap<i32, Tracked>,
    /// Groups whose connection dropped while they ran: killed by the next
    /// connection.
    lost: Vec<Tracked>,
    /// Cleanups that could not reach the host (arguments of
    /// [`script::CLEANUP`]): run by the next connection.
    cleanups: Vec<Vec<String>>,
    reconnecting: bool,
    /// The remote attempt directory of each started group (for the
    /// artifacts probe in liveness checks).
    dirs: HashMap<i32, String>,
    /// Groups seen gone after their attempt: a gone group stays gone, and
    /// its number may later be another group's.
    dead: VecDeque<i32>,
    /// Attempt directories seen without `artifacts/` once their group was
    /// gone.
    no_artifacts: VecDeque<String>,
}

/// Entries kept in the `dead` and `no_artifacts` memories.
const MEMORY: usize = 4_096;

/// A cleanup's outcome: `Err((transient, message))`.
type CleanupResult = Result<(), (bool, String)>;

#[derive(Default)]
struct Batch {
    queue: Vec<(Vec<String>, tokio::sync::oneshot::Sender<CleanupResult>)>,
    flushing: bool,
}

/// Attempt directories removed by one command at most.
const CLEANUP_BATCH: usize = 64;

/// Deferred cleanups kept at most (beyond, the oldest are dropped).
const MAX_DEFERRED_CLEANUPS: usize = 1_000;

/// A connection to one host.
pub struct Connection {
    target: Target,
    connect_timeout: Duration,
    /// SIGTERM → SIGKILL grace for lost groups.
    grace: Duration,
    state: tokio::sync::Mutex<State>,
    tasks: Arc<Semaphore>,
    control: Arc<Semaphore>,
    procs: Mutex<Procs>,
    cleanup_batch: Mutex<Batch>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target.display())
            .field("task_channels_free", &self.tasks.available_permits())
            .finish()
    }
}

/// Whether an operation waits out the reconnect backoff (work about to
/// start) or fails at once (follow-ups of work that already failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Wait,
    FailFast,
}

impl Connection {
    pub fn new(target: Target, limits: Limits) -> Arc<Self> {
        let Limits {
            max_sessions,
            grace,
            connect_timeout,
        } = limits;
        Arc::new(Self {
            target,
            connect_timeout: connect_timeout.min(Duration::from_secs(3600)),
            grace,
            state: tokio::sync::Mutex::new(State::default()),
            tasks: Arc::new(Semaphore::new(max_sessions.max(1) as usize)),
            control: Arc::new(Semaphore::new(CONTROL_CHANNELS as usize)),
            procs: Mutex::new(Procs::default()),
            cleanup_batch: Mutex::new(Batch::default()),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    fn transport(&self, what: impl std::fmt::Display) -> HostError {
        HostError::Transport(format!("{}: {what}", self.target.display()))
    }

    /// The live connection, connecting (or reconnecting) if needed. Only
    /// one connect runs at a time; everyone else waits for its outcome.
    pub async fn session(self: &Arc<Self>, need: Need) -> Result<(Arc<Session>, u64), HostError> {
        let mut st = self.state.lock().await;
        if let Some(s) = &st.live {
            if !s.is_closed() {
                return Ok((s.clone(), st.generation));
            }
            st.live = None;
            tracing::warn!(host = %self.target.display(), "the ssh connection dropped");
        }
        if let Some(at) = st.retry_at {
            let now = Instant::now();
            if at > now {
                match need {
                    Need::FailFast => {
                        return Err(HostError::Transport(format!(
                            "{} (next reconnect in {} ms)",
                            st.last_error.as_deref().unwrap_or("unreachable"),
                            (at - now).as_millis()
                        )))
                    }
                    Need::Wait => tokio::time::sleep_until(at.into()).await,
                }
            }
        }
        match connect(&self.target, self.connect_timeout).await {
            Ok(s) => {
                let s = Arc::new(s);
                st.generation += 1;
                st.failures = 0;
                st.retry_at = None;
                st.last_error = None;
                let generation = st.generation;
                // Nobody else can reach this connection until the lock is
                // released: the old attempts' groups die first.
                self.kill_lost(&s, generation).await;
                st.live = Some(s.clone());
                Ok((s, generation))
            }
            Err(e) => {
                st.failures = st.failures.saturating_add(1);
                let delay = BACKOFF_INITIAL
                    .saturating_mul(1u32 << st.failures.saturating_sub(1).min(6))
                    .min(BACKOFF_MAX);
                st.retry_at = Some(Instant::now() + delay);
                st.last_error = Some(e.to_string());
                Err(match e {
                    // A key file orca cannot use is the worker's
                    // configuration, not the network: no retry helps.
                    e @ super::connect::ConnectError::Identity { .. } => {
                        HostError::Config(e.to_string())
                    }
                    e => HostError::Transport(e.to_string()),
                })
            }
        }
    }

    /// Kills the groups lost with earlier connections, on a connection
    /// nobody else uses yet (so no channel permit is needed).
    async fn kill_lost(self: &Arc<Self>, s: &Arc<Session>, generation: u64) {
        let lost: Vec<Tracked> = {
            let Ok(mut p) = self.procs.lock() else {
                return;
            };
            // Groups whose end nobody saw yet belong to the old connection
            // too.
            let stale: Vec<i32> = p
                .running
                .values()
                .filter(|t| t.generation < generation)
                .map(|t| t.pgid)
                .collect();
            for pgid in stale {
                if let Some(t) = p.running.remove(&pgid) {
                    p.lost.push(t);
                }
            }
            p.lost.clone()
        };
        // Concurrently (each waits out its own grace), a few at a time:
        // this connection's channels are all theirs for now.
        let lost = &lost;
        let kills = (0..KILL_CONCURRENCY.min(lost.len())).map(|i| async move {
            for t in lost.iter().skip(i).step_by(KILL_CONCURRENCY) {
                self.kill_lost_one(s, t).await;
            }
        });
        futures::future::join_all(kills).await;
        let cleanups = self
            .procs
            .lock()
            .map(|mut p| std::mem::take(&mut p.cleanups))
            .unwrap_or_default();
        for args in cleanups {
            let Some(cmd) = script::command(script::CLEANUP, &args) else {
                continue;
            };
            let done = match self.open_on(s).await {
                Ok(ch) => exec::run(ch, &cmd, Duration::from_secs(120), &self.target)
                    .await
                    .is_ok(),
                Err(_) => false,
            };
            if !done {
                self.defer_cleanup(args);
            }
        }
    }

    /// Remembers a cleanup that could not reach the host; the next
    /// connection runs it.
    pub fn defer_cleanup(&self, args: Vec<String>) {
        if let Ok(mut p) = self.procs.lock() {
            if p.cleanups.len() >= MAX_DEFERRED_CLEANUPS {
                p.cleanups.remove(0);
            }
            p.cleanups.push(args);
        }
    }

    async fn kill_lost_one(&self, s: &Session, t: &Tracked) {
        match self.kill_group_on(s, t, self.grace).await {
            Ok(killed) => {
                if killed {
                    tracing::warn!(
                        host = %self.target.display(),
                        attempt = %t.attempt_id,
                        pgid = t.pgid,
                        "killed the process group of an attempt whose connection dropped"
                    );
                }
                if let Ok(mut p) = self.procs.lock() {
                    p.lost.retain(|x| x != t);
                }
            }
            Err(e) => tracing::error!(
                host = %self.target.display(),
                attempt = %t.attempt_id,
                error = %e,
                "cannot kill the process group of an attempt whose connection dropped"
            ),
        }
    }

    async fn kill_group_on(
        &self,
        s: &Session,
        t: &Tracked,
        grace: Duration,
    ) -> Result<bool, HostError> {
        let ticks = (grace.as_millis() / 50).max(1).to_string();
        let cmd = script::command(
            script::KILL_ORPHAN,
            &[
                t.attempt_id.clone(),
                t.pgid.to_string(),
                t.start.to_string(),
                ticks,
            ],
        )
        .ok_or_else(|| HostError::Spawn {
            program: "kill".into(),
            reason: "an attempt id with a NUL byte".into(),
        })?;
        let ch = self.open_on(s).await?;
        let out = exec::run(ch, &cmd, grace + Duration::from_secs(30), &self.target).await?;
        Ok(out.stdout_text().contains("killed"))
    }

    /// Opens a channel on `s`, bounded; a connection that does not answer
    /// is closed (its channels end, its attempts fail as transport).
    ///
    /// sshd frees a closed session lazily (after the packets that arrived
    /// with the close are handled), so an open right after a close can be
    /// refused while orca's count is within MaxSessions: a refusal is
    /// retried a few times, after 2, 4, … 64 ms.
    async fn open_on(&self, s: &Session) -> Result<Channel<Msg>, HostError> {
        let mut delay = Duration::from_millis(2);
        loop {
            match tokio::time::timeout(CHANNEL_OPEN_TIMEOUT, s.channel()).await {
                Ok(Ok(ch)) => return Ok(ch),
                Ok(Err(e)) if e.refused && delay <= OPEN_RETRY_MAX => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Ok(Err(e)) if e.refused => {
                    return Err(self.transport(format!(
                        "the host refused a new session ({}): is its MaxSessions below \
                         max_sessions + {CONTROL_CHANNELS}?",
                        e.reason
                    )))
                }
                Ok(Err(e)) => {
                    return Err(self.transport(format!("cannot open a channel: {}", e.reason)))
                }
                Err(_) => {
                    s.disconnect().await;
                    return Err(self.transport(format!(
                        "opening a channel took over {CHANNEL_OPEN_TIMEOUT:?}; reconnecting"
                    )));
                }
            }
        }
    }

    /// A task channel (waits for one of the `max_sessions`).
    pub async fn task_channel(
        self: &Arc<Self>,
    ) -> Result<(Channel<Msg>, OwnedSemaphorePermit, u64), HostError> {
        let permit = self
            .tasks
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.transport("closed"))?;
        let (s, generation) = self.session(Need::Wait).await?;
        let ch = self.open_on(&s).await?;
        Ok((ch, permit, generation))
    }

    /// A control channel: one of the [`CONTROL_CHANNELS`], or an idle task
    /// channel's place when those are busy (channels never exceed
    /// `max_sessions` + [`CONTROL_CHANNELS`], and tasks never take the
    /// control ones).
    pub async fn control_channel(
        self: &Arc<Self>,
        need: Need,
    ) -> Result<(Channel<Msg>, OwnedSemaphorePermit), HostError> {
        let permit = match self.control.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => match self.tasks.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => self
                    .control
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| self.transport("closed"))?,
            },
        };
        let (s, _) = self.session(need).await?;
        let ch = self.open_on(&s).await?;
        Ok((ch, permit))
    }

    /// Runs a control script; its exit code and bounded output.
    pub async fn control(
        self: &Arc<Self>,
        script_text: &str,
        args: &[String],
        need: Need,
        limit: Duration,
    ) -> Result<Output, HostError> {
        let cmd = script::command(script_text, args).ok_or_else(|| HostError::Spawn {
            program: "sh".into(),
            reason: "an argument with a NUL byte".into(),
        })?;
        let (ch, permit) = self.control_channel(need).await?;
        let out = exec::run(ch, &cmd, limit, &self.target).await;
        drop(permit);
        out
    }

    // --- attempts' process groups -------------------------------------

    pub fn track(&self, t: Tracked, attempt_dir: &str) {
        if let Ok(mut p) = self.procs.lock() {
            p.dead.retain(|g| *g != t.pgid);
            if p.dirs.len() >= MEMORY {
                p.dirs.clear();
            }
            p.dirs.insert(t.pgid, attempt_dir.to_string());
            p.running.insert(t.pgid, t);
        }
    }

    /// Whether the group was seen gone after its attempt.
    pub fn is_dead(&self, pgid: i32) -> bool {
        self.procs
            .lock()
            .map(|p| p.dead.contains(&pgid))
            .unwrap_or(false)
    }

    /// Checks whether the group has a live member; when it has none,
    /// remembers that, and whether its attempt left an `artifacts/`.
    pub async fn alive(self: &Arc<Self>, pgid: i32, limit: Duration) -> Result<bool, HostError> {
        if self.is_dead(pgid) {
            return Ok(false);
        }
        let dir = self
            .procs
            .lock()
            .ok()
            .and_then(|p| p.dirs.get(&pgid).cloned())
            .unwrap_or_default();
        let out = self
            .control(
                script::ALIVE,
                &[pgid.to_string(), dir.clone()],
                Need::FailFast,
                limit,
            )
            .await?;
        let alive = out.code == Some(0);
        if !alive {
            if let Ok(mut p) = self.procs.lock() {
                if p.dead.len() >= MEMORY {
                    p.dead.pop_front();
                }
                p.dead.push_back(pgid);
                p.dirs.remove(&pgid);
                if !dir.is_empty() && out.stdout_text().contains("no-artifacts") {
                    if p.no_artifacts.len() >= MEMORY {
                        p.no_artifacts.pop_front();
                    }
                    p.no_artifacts.push_back(dir);
                }
            }
        }
        Ok(alive)
    }

    /// Whether the attempt directory was seen without `artifacts/` after
    /// its group was gone (forgotten once asked).
    pub fn take_no_artifacts(&self, attempt_dir: &str) -> bool {
        let Ok(mut p) = self.procs.lock() else {
            return false;
        };
        match p.no_artifacts.iter().position(|d| d == attempt_dir) {
            Some(i) => {
                p.no_artifacts.remove(i);
                true
            }
            None => false,
        }
    }

    /// Removes attempt directories: cleanups that arrive together share
    /// one command (one channel, one round trip).
    pub async fn cleanup(self: &Arc<Self>, args: Vec<String>) -> Result<(), HostError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let lead = {
            let Ok(mut b) = self.cleanup_batch.lock() else {
                return Err(self.transport("cleanup state poisoned"));
            };
            b.queue.push((args, tx));
            !std::mem::replace(&mut b.flushing, true)
        };
        if lead {
            let me = self.clone();
            tokio::spawn(async move { me.flush_cleanups().await });
        }
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((true, e))) => Err(HostError::Transport(e)),
            Ok(Err((false, e))) => Err(HostError::Spawn {
                program: "rm".into(),
                reason: e,
            }),
            Err(_) => Err(self.transport("the cleanup was dropped")),
        }
    }

    async fn flush_cleanups(self: Arc<Self>) {
        loop {
            let batch: Vec<_> = {
                let Ok(mut b) = self.cleanup_batch.lock() else {
                    return;
                };
                if b.queue.is_empty() {
                    b.flushing = false;
                    return;
                }
                let n = b.queue.len().min(CLEANUP_BATCH);
                b.queue.drain(..n).collect()
            };
            let args: Vec<String> = batch.iter().flat_map(|(a, _)| a.clone()).collect();
            let r = self
                .control(
                    script::CLEANUP,
                    &args,
                    Need::FailFast,
                    Duration::from_secs(120),
                )
                .await;
            for (a, tx) in batch {
                let res = match &r {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        if e.is_transport() {
                            // The next connection removes it.
                            self.defer_cleanup(a);
                        }
                        Err((e.is_transport(), e.to_string()))
                    }
                };
                let _ = tx.send(res);
            }
        }
    }

    /// The process ended and its channel closed normally.
    pub fn untrack(&self, pgid: i32) {
        if let Ok(mut p) = self.procs.lock() {
            p.running.remove(&pgid);
        }
    }

    /// The connection dropped under a running group: the next connection
    /// kills it, and one is made in the background if nobody asks.
    pub fn lost(self: &Arc<Self>, pgid: i32) {
        let t = self
            .procs
            .lock()
            .ok()
            .and_then(|mut p| p.running.remove(&pgid));
        if let Some(t) = t {
            self.push_lost(t);
        }
    }

    fn push_lost(self: &Arc<Self>, t: Tracked) {
        let start_reconnect = {
            let Ok(mut p) = self.procs.lock() else {
                return;
            };
            p.lost.push(t);
            let go = !p.reconnecting;
            if go {
                p.reconnecting = true;
            }
            go
        };
        if start_reconnect {
            let me = self.clone();
            tokio::spawn(async move {
                for _ in 0..BACKGROUND_RECONNECTS {
                    if me.session(Need::Wait).await.is_ok() {
                        // Reconnecting killed what was lost by then; what
                        // came after goes now.
                        let rest = me.procs.lock().map(|p| p.lost.clone()).unwrap_or_default();
                        for t in rest {
                            if let Err(e) = me.kill_orphan(&t, me.grace).await {
                                tracing::error!(attempt = %t.attempt_id, error = %e, "cannot kill the process group of an attempt whose connection dropped");
                            }
                        }
                        break;
                    }
                    if me.procs.lock().map(|p| p.lost.is_empty()).unwrap_or(true) {
                        break;
                    }
                }
                if let Ok(mut p) = me.procs.lock() {
                    p.reconnecting = false;
                }
            });
        }
    }

    /// An attempt whose process may have started without orca learning
    /// its group (the connection dropped, or the wrapper never reported):
    /// the next connection kills whatever carries its `ORCA_ATTEMPT_ID`.
    pub fn lost_unknown(self: &Arc<Self>, attempt_id: &str) {
        let t = Tracked {
            pgid: 0,
            start: 0,
            attempt_id: attempt_id.to_string(),
            generation: 0,
        };
        let live = self
            .state
            .try_lock()
            .map(|s| s.live.as_ref().is_some_and(|l| !l.is_closed()))
            .unwrap_or(false);
        if live {
            // The connection is fine (the wrapper was slow): now.
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.kill_orphan(&t, me.grace).await {
                    tracing::warn!(attempt = %t.attempt_id, error = %e, "cannot stop an attempt that never reported");
                }
            });
        } else {
            self.push_lost(t);
        }
    }

    /// Whether `pgid` is a group lost with its connection and not killed
    /// yet.
    pub fn is_lost(&self, pgid: i32) -> bool {
        self.procs
            .lock()
            .map(|p| p.lost.iter().any(|t| t.pgid == pgid))
            .unwrap_or(false)
    }

    /// Kills a recorded group if it is provably the attempt's.
    pub async fn kill_orphan(
        self: &Arc<Self>,
        t: &Tracked,
        grace: Duration,
    ) -> Result<bool, HostError> {
        let ticks = (grace.as_millis() / 50).max(1).to_string();
        let out = self
            .control(
                script::KILL_ORPHAN,
                &[
                    t.attempt_id.clone(),
                    t.pgid.to_string(),
                    t.start.to_string(),
                    ticks,
                ],
                Need::Wait,
                grace + Duration::from_secs(30),
            )
            .await?;
        if let Ok(mut p) = self.procs.lock() {
            p.lost
                .retain(|x| !(x.pgid == t.pgid && x.attempt_id == t.attempt_id));
        }
        Ok(out.stdout_text().contains("killed"))
    }
}

/// A connection's limits (from the first worker that asks for the host).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Task channels at once.
    pub max_sessions: u32,
    /// SIGTERM → SIGKILL grace for groups a dropped connection left.
    pub grace: Duration,
    pub connect_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: crate::spec::DEFAULT_SSH_MAX_SESSIONS,
            grace: Duration::from_secs(5),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Connections by target: one per host, for the whole process.
#[derive(Debug, Default)]
pub struct Pool {
    conns: Mutex<HashMap<Target, Arc<Connection>>>,
}

impl Pool {
    /// The connection for `target` (created on first use, with the limits
    /// of the first worker that asks).
    pub fn get(&self, target: &Target, limits: Limits) -> Arc<Connection> {
        let Ok(mut m) = self.conns.lock() else {
            return Connection::new(target.clone(), limits);
        };
        m.entry(target.clone())
            .or_insert_with(|| Connection::new(target.clone(), limits))
            .clone()
    }
}
