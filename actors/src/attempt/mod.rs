//! The `attempt` actor: one run of one task in a worker slot.
//!
//! A *worker* is a slot (a declared worker or `local-N`); each attempt of a
//! task in a slot is one short-lived `attempt` actor at
//! `/runs/<run>/attempts/<task>:<n>`, supervised by its run. It prepares the
//! attempt directory, starts the process through the slot's
//! [`HostAdapter`](crate::host::HostAdapter), streams stdout and stderr into
//! capped logs (stdout's stream-json lines become worker events), enforces
//! the heartbeat (stale), `timeout_seconds` and the budget, and when the
//! process has exited and its output is drained, decides the attempt's end in
//! DESIGN.md's order ([`crate::outcome::judge`]), asks the run's scorer, and
//! reports the end ([`crate::outcome::AttemptOutcome`], with its receipt) to
//! its run through a narrow reference: the run journals it with its decision
//! in one batch.
//!
//! # Messages ([`AttemptMsg`])
//!
//! | variant | what it does | reply | journals |
//! |---|---|---|---|
//! | `Start` | (sent to itself once spawned) checks required files and env, builds argv, starts the process, spawns the output readers and timers | — | `AttemptStarted` (queued: the run's decision about the attempt comes later and waits for durability); when it cannot start, its end goes to the run at once |
//! | `Signals(signals)` | stream-json signals from stdout (heartbeat-only lines never become messages) | — | `WorkerReported` (one batch per line: running, tool, usage, artifact, needs_human, done, error); `BudgetExceeded` when a limit is passed |
//! | `LogCapped(stream)` | a log reached its cap | — | `WorkerReported{LogCapped}` |
//! | `OutputClosed(stream, logged)` | a reader finished (EOF or abandoned); `logged`: it wrote the stream's log (a silent stream leaves none) | — | — (at the end: see `Exited`) |
//! | `Exited(result)` | the process exited; leftover group members get SIGTERM, the grace, SIGKILL | — | once output is drained: `AttemptExited` (queued); then the end goes to the run, which journals it |
//! | `StaleCheck` | heartbeat timer: no output or event for `stale_after` → stop (stale) | — | `WorkerReported{Stale}` |
//! | `Deadline(kind)` | `timeout_seconds` or `budget.max_seconds` reached → stop | — | `WorkerReported{BudgetExceeded}` for the budget |
//! | `KillGroup` | the grace after SIGTERM is over: SIGKILL the group | — | — |
//! | `AbandonOutput` | output pipes still open long after the group is gone (an escaped process holds them): kill what carries the attempt's id, stop reading | — | — |
//! | `JournalFailed(reason)` | a queued append failed: kill the group, fail the actor (its run treats that as a transient failure) | — | — |
//! | `Stop(cause)` | stop the attempt (timeout, operator, sibling restart, run stop, shutdown): SIGTERM the group, KillGroup after the grace | — | — (the cause decides the receipt) |
//! | `Kill(reply)` | a second Ctrl-C: SIGKILL the group now, answer once it is gone (at most 2 s) | `Ok(())`, or the attempt and why it could not be confirmed | — |
//! | `Status(reply)` | the attempt's live view | [`AttemptStatus`] | — |
//!
//! Every handler is an exhaustive match; nothing from the worker's output
//! can make the actor fail (unparseable lines are just log).

pub mod actor;
pub mod artifacts;

use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorRef, DerivedActorRef, RpcReplyPort};

use crate::host::{ExitInfo, HostAdapter, ProcHandle};
use crate::journal::event::LogStream;
use crate::model::{AttemptRef, Timestamp};
use crate::outcome::{AttemptOutcome, StopCause};
use crate::services::Services;
use crate::spec::{RunSpec, TaskSpec};

pub use actor::AttemptActor;

/// Messages of the `attempt` actor (see the table above).
#[derive(Debug)]
pub enum AttemptMsg {
    Start,
    Signals(Vec<crate::stream_json::Signal>),
    LogCapped(LogStream),
    OutputClosed(LogStream, bool),
    Exited(Result<ExitInfo, String>),
    StaleCheck,
    Deadline(DeadlineKind),
    KillGroup,
    AbandonOutput,
    JournalFailed(String),
    Stop(StopCause),
    Kill(RpcReplyPort<Result<(), (AttemptRef, String)>>),
    Status(RpcReplyPort<AttemptStatus>),
}

/// Timers that stop an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadlineKind {
    Timeout,
    BudgetSeconds,
}

/// What the attempt actor is given.
#[derive(Clone)]
pub struct AttemptArgs {
    pub attempt: AttemptRef,
    /// The worker slot.
    pub worker: String,
    /// Whether this attempt uses up one of `max_attempts`.
    pub counted: bool,
    pub task: Arc<TaskSpec>,
    pub spec: Arc<RunSpec>,
    pub stale_after: Duration,
    pub spawn_depth: u32,
    /// The slot's host env allowlist.
    pub host_allowlist: Vec<String>,
    pub host: Arc<dyn HostAdapter>,
    pub services: Services,
    /// Where to report the end: the run, seen only as what takes an
    /// [`AttemptOutcome`].
    pub supervisor: DerivedActorRef<AttemptOutcome>,
    /// The run's scorer.
    pub scorer: Option<ActorRef<crate::scorer::ScorerMsg>>,
}

/// The live view of an attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptStatus {
    pub attempt: AttemptRef,
    pub worker: String,
    pub proc: Option<ProcHandle>,
    pub started: Timestamp,
    pub last_output: Timestamp,
    pub tokens: u64,
    pub tool_calls: u64,
    pub stopping: Option<StopCause>,
}

/// Sends `Kill` to every attempt in `attempts` at once (each kills its
/// group now and answers once it is gone, waited for at most `limit`) and
/// answers `reply` with those not confirmed gone.
pub fn kill_all(
    attempts: Vec<ActorRef<AttemptMsg>>,
    limit: Duration,
    reply: RpcReplyPort<Vec<(AttemptRef, String)>>,
) {
    tokio::spawn(async move {
        let kills = attempts.into_iter().map(|a| async move {
            match a.call(AttemptMsg::Kill, Some(limit)).await {
                Ok(ractor::rpc::CallResult::Success(Err(failed))) => Some(failed),
                _ => None,
            }
        });
        let failed = futures::future::join_all(kills).await;
        let _ = reply.send(failed.into_iter().flatten().collect());
    });
}
