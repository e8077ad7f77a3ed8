//! The run supervisor (`run:<id>` at `/runs/<id>`): keeps a run's inbox of
//! queued tasks, leases them to worker slots as `attempt` actors, and
//! supervises those attempts with the run's strategy and intensity.
//!
//! Decide, then apply: every decision is [`decide::decide`], a pure
//! function of the run's state ([`state::RunState`], the fold of its
//! journal) and a command. The actor journals the decision's events, folds
//! them into its state at once (appends are totally ordered, so the state
//! is the journal as it will be), and carries out the decision's effects —
//! spawning an attempt, a backoff timer, stopping attempts, writing a
//! receipt's copy, answering a caller — only once the append is durable
//! (`Persisted`, delivered in append order). While one append syncs, the
//! actor keeps handling messages, so decisions group-commit together. Its
//! mode (normal, stopping, escalated, ended) is derived from the state; the
//! actor adds only whether it is halted (suspending, or its journal
//! failed).
//!
//! An attempt reports its end to its run through a narrow reference
//! (`DerivedActorRef<AttemptOutcome>`), and the run reports its own end to
//! `runs` the same way ([`RunReport`]): run, attempt, scorer and runs do
//! not import each other in a circle.
//!
//! # Messages ([`RunMsg`])
//!
//! | variant | what it does | reply | journals |
//! |---|---|---|---|
//! | `Boot` | (to itself) start the scorer; a new run leases; a resumed run first kills the process groups of attempts the journal shows running (if still provably theirs), then reconciles (`RunCommand::Reconcile`) and leases | — | `ChildStarted` / `ChildRestarted` (scorer); for a resumed run the terminal events of interrupted attempts (`AttemptInterrupted` orca crash, `AttemptFinished`, `ReceiptRecorded`) and their restarts; leases |
//! | `AttemptEnded(outcome)` | an attempt ended: its terminal events and the decision about its task, in one batch | — | `AttemptInterrupted`?, `AttemptFinished`, `AttemptUsage`?, `ReceiptRecorded`, `AlertRaised`*, then `ChildFailed`? and `TaskFinished` (+ `AlertRaised` restart_exhausted / needs_human) or `RestartScheduled`, or `TaskFinished` + `IntensityExceeded` + `Escalated` + `AlertRaised` needs_human; at the end `RunFinished` + `AlertRaised` run_completed |
//! | `Persisted(acts)` | an append became durable: carry out its effects, answer its caller | — | — |
//! | `BackoffDue{task, attempt}` | a restart deadline came: queue the task | — | `ChildRestarted` when leased |
//! | `BudgetDue` | (its timer) the run's wall-time `budget.max_seconds` ran out | — | `RunBudgetExceeded`, `AlertRaised` budget_exceeded, `TaskFinished` (skip) for waiting tasks |
//! | `Request(req, reply)` | [`RunRequest`]: stop, pause, resume, interrupt / restart an attempt, a manual verdict | `Result<Answer, RunError>`, once journaled | `RunStopRequested` + `TaskFinished` (skip); `RunPaused`; `RunResumed`; `ControlRequested`; `VerdictRecorded` |
//! | `Suspend{reply}` | orca shuts down: stop every attempt with its grace (interrupted by orca: resumed later without using up an attempt), then stop | `()` once all ended | their terminal events and transparent restarts |
//! | `Kill{reply}` | kill every running attempt's process group at once (a second Ctrl-C) | the attempts not confirmed killed | — |
//! | `Get(reply)` | the run's state as folded | [`state::RunState`] | — |
//! | `JournalFailed(reason)` | an append failed: nothing more is acted on; attempts are stopped, the run reports to `runs` and stops | — | — |
//!
//! Supervision events: the scorer is a row of the run's
//! [`ChildTable`](crate::supervision::ChildTable) (restarted 3 times in
//! 5 s, past that the run ends escalated); an attempt actor that *fails*
//! (orca's own bug) is an attempt that ended transient: its process group
//! is killed if still ours, then it is decided like any end.

pub mod actor;
pub mod decide;
pub mod lease;
pub mod state;

use ractor::RpcReplyPort;

use crate::model::{AttemptRef, RunStatus, Surface};
use crate::outcome::AttemptOutcome;

pub use actor::{RunArgs, RunMode, RunSupervisor};
pub use decide::{Answer, RunError, VerdictRequest};

/// Messages of the run supervisor (see the table above).
pub enum RunMsg {
    Boot,
    AttemptEnded(Box<AttemptOutcome>),
    Persisted(Vec<actor::Act>),
    BackoffDue {
        task: String,
        attempt: u32,
    },
    BudgetDue,
    Request(RunRequest, Option<RpcReplyPort<Result<Answer, RunError>>>),
    Suspend {
        reply: Option<RpcReplyPort<()>>,
    },
    Kill {
        reply: RpcReplyPort<Vec<(AttemptRef, String)>>,
    },
    Get(RpcReplyPort<state::RunState>),
    JournalFailed(String),
}

impl std::fmt::Debug for RunMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunMsg::Boot => f.write_str("Boot"),
            RunMsg::AttemptEnded(o) => write!(f, "AttemptEnded({})", o.attempt),
            RunMsg::Persisted(acts) => write!(f, "Persisted({acts:?})"),
            RunMsg::BackoffDue { task, attempt } => write!(f, "BackoffDue({task}:{attempt})"),
            RunMsg::BudgetDue => f.write_str("BudgetDue"),
            RunMsg::Request(r, _) => write!(f, "Request({r:?})"),
            RunMsg::Suspend { .. } => f.write_str("Suspend"),
            RunMsg::Kill { .. } => f.write_str("Kill"),
            RunMsg::Get(_) => f.write_str("Get"),
            RunMsg::JournalFailed(r) => write!(f, "JournalFailed({r})"),
        }
    }
}

/// What an operator (or orca) asks of a running run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunRequest {
    Stop {
        surface: Surface,
        reason: String,
    },
    Pause {
        surface: Surface,
    },
    Resume {
        surface: Surface,
    },
    Interrupt {
        task: String,
        surface: Surface,
        restart: bool,
    },
    Verdict(VerdictRequest),
}

/// How a run supervisor tells `runs` about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunReport {
    /// The run ended (journaled `RunFinished`).
    Ended { run: String, status: RunStatus },
    /// The run cannot go on (its journal failed).
    Failed { run: String, reason: String },
}

impl From<RunRequest> for decide::RunCommand {
    fn from(r: RunRequest) -> Self {
        use decide::RunCommand as C;
        match r {
            RunRequest::Stop { surface, reason } => C::Stop { surface, reason },
            RunRequest::Pause { surface } => C::Pause { surface },
            RunRequest::Resume { surface } => C::Resume { surface },
            RunRequest::Interrupt {
                task,
                surface,
                restart,
            } => C::Interrupt {
                task,
                surface,
                restart,
            },
            RunRequest::Verdict(v) => C::Verdict(v),
        }
    }
}

impl From<AttemptOutcome> for RunMsg {
    fn from(o: AttemptOutcome) -> Self {
        RunMsg::AttemptEnded(Box::new(o))
    }
}

impl TryFrom<RunMsg> for AttemptOutcome {
    type Error = ();

    fn try_from(m: RunMsg) -> Result<Self, ()> {
        match m {
            RunMsg::AttemptEnded(o) => Ok(*o),
            _ => Err(()),
        }
    }
}
