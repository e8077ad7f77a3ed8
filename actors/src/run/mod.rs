//! The run supervisor (`run:<id>` at `/runs/<id>`): keeps a run's inbox of
//! queued tasks, leases them to worker slots as `attempt` actors, and
//! supervises those attempts with the run's strategy and intensity.
//!
//! Its state is [`state::RunState`], the fold of everything it journaled:
//! each decision is appended first, folded into the state at once (appends
//! are ordered, so the state is the journal as it will be), and its effects
//! — spawning an attempt, a backoff timer, stopping siblings — wait until the
//! append is durable (`Persisted`). While one append syncs, the supervisor
//! keeps handling messages, so decisions group-commit together.
//!
//! When an attempt ends it classifies the end ([`ChildExit`]), calls
//! [`supervision::decide`](crate::supervision::decide), journals the decision
//! and acts: finish the task, restart it after its backoff (with its
//! siblings under one_for_all / rest_for_one), or — past the intensity — stop
//! every attempt, end `escalated` and raise needs_human. Escalation goes to
//! `runs`, which never touches other runs.
//!
//! # Messages ([`RunMsg`])
//!
//! | variant | what it does | reply | journals |
//! |---|---|---|---|
//! | `Boot` | (to itself) new run: lease; resumed run: reconcile attempts found running (kill their groups if still ours, interrupt them without using up an attempt), re-arm backoff deadlines, lease | — | `AttemptInterrupted`, `AttemptFinished`, `ReceiptRecorded`, `RestartScheduled` for interrupted attempts; `ChildStarted` / `ChildRestarted` for leases |
//! | `AttemptEnded(end)` | an attempt reported its end: decide and act | — | `ChildFailed` if it failed, then `TaskFinished` (+ `AlertRaised` restart_exhausted / needs_human), or `ChildFailed` + `RestartScheduled`, or `ChildFailed` + `IntensityExceeded` + `Escalated` + `AlertRaised` needs_human; at the end `RunFinished` + `AlertRaised` run_completed |
//! | `Persisted(effects)` | an append became durable: carry out its effects | — | — |
//! | `BackoffDue{task, attempt}` | a restart deadline came: queue the task | — | `ChildRestarted` when leased |
//! | `Stop{surface, reason, reply}` | cancel the run: queued tasks end `skip`, attempts are stopped with their grace | `()` once the stop is journaled | `RunStopRequested`, `TaskFinished` (skip) |
//! | `Pause{surface, reply}` / `Resume{surface, reply}` | stop / restart leasing new tasks (running attempts and timers go on) | `()` | `RunPaused` / `RunResumed` |
//! | `Interrupt{task, surface, restart, reply}` | stop a task's running attempt; `restart`: a new attempt follows, using up none | `Result<String, String>` (the attempt) | `ControlRequested` |
//! | `Suspend{reply}` | orca shuts down: stop every attempt with its grace (journaled as interrupted by orca) and stop | `()` once all ended | — (the attempts journal their interruption) |
//! | `Get(reply)` | the run's state | [`state::RunState`] | — |
//! | `JournalFailed(reason)` | an append failed: the run cannot go on safely; attempts are stopped | — | — |
//!
//! Supervision events: an attempt actor that *fails* (panics or errors —
//! orca's own bug) is treated as a transient failure of its attempt: its
//! process group is killed if still ours and the attempt is journaled as
//! failed (source transport) before the decision. ractor's default (a
//! supervisor dies with its child) never applies.

pub mod actor;
pub mod lease;
pub mod state;

use ractor::RpcReplyPort;

use crate::attempt::AttemptEnd;
use crate::model::Surface;

pub use crate::supervision::ChildExit;
pub use actor::{RunArgs, RunMode, RunSupervisor};

/// Messages of the run supervisor (see the table above).
#[derive(Debug)]
pub enum RunMsg {
    Boot,
    AttemptEnded(AttemptEnd),
    Persisted(Vec<actor::Effect>),
    BackoffDue {
        task: String,
        attempt: u32,
    },
    Stop {
        surface: Surface,
        reason: String,
        reply: Option<RpcReplyPort<()>>,
    },
    Pause {
        surface: Surface,
        reply: Option<RpcReplyPort<()>>,
    },
    Resume {
        surface: Surface,
        reply: Option<RpcReplyPort<()>>,
    },
    Interrupt {
        task: String,
        surface: Surface,
        restart: bool,
        reply: Option<RpcReplyPort<Result<String, String>>>,
    },
    Suspend {
        reply: Option<RpcReplyPort<()>>,
    },
    Get(RpcReplyPort<state::RunState>),
    JournalFailed(String),
}
