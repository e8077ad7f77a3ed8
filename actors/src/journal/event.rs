//! Journal events: the past-tense facts every view is folded from.
//!
//! Rules (bincode 2 is not self-describing, see docs/journal.md):
//! - plain structs and externally tagged enums only; no
//!   `serde_json::Value`, `#[serde(flatten)]`, untagged or internally tagged
//!   enums, `skip_serializing_if` or `default` tricks;
//! - data that needs those (a submitted spec with unknown fields and
//!   free-form metadata) travels as JSON text (`spec_json`);
//! - new variants go at the **end** of [`Event`] (bincode encodes the
//!   variant index); changing an existing variant's fields means bumping
//!   [`EVENT_SCHEMA_VERSION`] and adding an upcast from the old shape.

use serde::{Deserialize, Serialize};

use crate::model::{
    AlertClass, AttemptRef, AttemptResult, FailureClass, FailureSource, NodeKind, Receipt,
    RestartType, RunStatus, Strategy, Surface, Timestamp, VerdictRecord,
};

/// The schema version of [`Event`] written by this build.
pub const EVENT_SCHEMA_VERSION: u16 = 1;

/// One journal event. Each variant says what happened, in the past tense.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub enum Event {
    // ----- runs -------------------------------------------------------------
    /// A run was accepted: its normalized spec (JSON text, secrets never
    /// included: specs hold env var *names* only) and how it was submitted.
    RunSubmitted(RunSubmitted),
    /// A task entered the run's inbox.
    TaskEnqueued {
        run: String,
        task: String,
        /// `metadata.priority` (lower runs first; 0 when absent).
        priority: i64,
        /// Position in the spec (ties on priority go by spec order).
        order: u32,
    },
    /// The operator paused leasing of new tasks; running attempts go on.
    RunPaused { run: String, surface: Surface },
    /// Leasing resumed.
    RunResumed { run: String, surface: Surface },
    /// Someone asked the run to stop (cancel); attempts get their grace.
    RunStopRequested {
        run: String,
        surface: Surface,
        reason: String,
    },
    /// The run ended.
    RunFinished { run: String, status: RunStatus },

    // ----- supervision (any supervisor) -------------------------------------
    /// A supervised child started.
    ChildStarted {
        path: String,
        kind: NodeKind,
        restart: RestartType,
    },
    /// A supervised child failed; `class` decides what the supervisor does.
    ChildFailed {
        path: String,
        class: FailureClass,
        reason: String,
    },
    /// A restart was decided and will happen at `deadline` (a journaled
    /// deadline survives orca's own restart). Transparent restarts (after
    /// orca's own interruption, a sibling restart or an operator restart)
    /// have `counts_intensity: false` and use up no attempt.
    RestartScheduled {
        /// The supervisor that decided.
        supervisor: String,
        /// The task to restart (for runs) or the child path.
        child: String,
        /// The attempt number the restart will have.
        attempt: u32,
        delay_ms: u64,
        deadline: Timestamp,
        /// Whether the next attempt uses up one of `max_attempts`.
        counted: bool,
        /// Whether this restart counts toward the supervisor's intensity.
        counts_intensity: bool,
    },
    /// A restarted child started (the new child's path); the first start of
    /// a child is [`Event::ChildStarted`].
    ChildRestarted { path: String, attempt: u32 },
    /// A supervisor saw more restarts than its intensity allows.
    IntensityExceeded {
        supervisor: String,
        restarts: u32,
        within_ms: u64,
    },
    /// A supervisor gave up and escalated to its parent.
    Escalated {
        from: String,
        to: String,
        reason: String,
    },
    /// A supervised child stopped (normally, or stopped by its supervisor).
    ChildStopped { path: String, reason: String },
    /// A supervisor's policy, recorded when it starts (for the tree view).
    SupervisorConfigured {
        path: String,
        strategy: Strategy,
        max_restarts: u32,
        within_ms: u64,
    },

    // ----- attempts ---------------------------------------------------------
    /// An attempt's process started. `pgid` and `proc_start` let a later
    /// orca check the group is still ours before killing it.
    AttemptStarted {
        attempt: AttemptRef,
        /// The worker slot (`local-1`, a declared worker id).
        worker: String,
        /// `local`, or the ssh host.
        host: String,
        pid: u32,
        pgid: i32,
        /// Process start time in clock ticks since boot (`/proc/<pid>/stat`
        /// field 22), 0 when unknown.
        proc_start: u64,
        /// Whether this attempt uses up one of `max_attempts` (false for
        /// restarts after orca's own interruption or an operator restart).
        counted: bool,
    },
    /// A state change reported by the worker's output (never one event per
    /// content line).
    WorkerReported {
        attempt: AttemptRef,
        event: WorkerEvent,
    },
    /// The attempt's process exited (not terminal: checks and scorer follow).
    AttemptExited {
        attempt: AttemptRef,
        exit_code: Option<i32>,
        signal: Option<i32>,
    },
    /// The attempt was interrupted before it could end on its own.
    AttemptInterrupted {
        attempt: AttemptRef,
        cause: InterruptCause,
    },
    /// The attempt ended. Journaled in the same batch as its
    /// [`Event::ReceiptRecorded`].
    AttemptFinished {
        attempt: AttemptRef,
        result: AttemptResult,
        source: Option<FailureSource>,
        class: Option<FailureClass>,
        reason: String,
    },
    /// The receipt of a finished attempt.
    ReceiptRecorded(Receipt),
    /// A manual verdict amended an attempt's receipt.
    VerdictRecorded {
        attempt: AttemptRef,
        verdict: VerdictRecord,
        surface: Surface,
    },
    /// A task reached its final result (no more attempts will start).
    TaskFinished {
        run: String,
        task: String,
        result: AttemptResult,
        /// The attempt whose receipt is the task's final one.
        final_attempt: u32,
    },
    /// An alert class was raised, as journaled before alerts had ids of
    /// their own (the router leaves these alone: they were never sent).
    /// Written no more: see [`Event::Alert`].
    AlertRaised {
        class: AlertClass,
        run: String,
        task: Option<String>,
        attempt: Option<u32>,
        reason: String,
    },
    /// An operator (or agent) sent a control message to an actor.
    ControlRequested {
        path: String,
        message: String,
        surface: Surface,
    },

    // ----- daemon -----------------------------------------------------------
    /// A daemon (or an embedded `orca run`) started serving this workspace.
    DaemonStarted {
        pid: u32,
        version: String,
        address: String,
        embedded: bool,
    },
    /// The daemon stopped (suspended: running attempts were interrupted).
    DaemonStopped { pid: u32, reason: String },

    // ----- alerts (appended: journals before it never hold it) --------------
    /// An alert's life: raised (by its raiser: a run, an attempt, an agent —
    /// it has an id of its own), then routed, planned, delivered, failed or
    /// suppressed (by the alert router). Supersedes [`Event::AlertRaised`],
    /// which older journals hold and the router leaves alone.
    Alert(crate::alert::AlertEvent),

    // ----- usage and budgets (appended) -------------------------------------
    /// What an attempt used, as its runtime reported it, and orca's cost of
    /// it. Journaled by the run with the attempt's end (before its
    /// receipt), when the attempt reported any usage.
    AttemptUsage {
        attempt: AttemptRef,
        record: crate::runtime::UsageRecord,
    },
    /// The run went past its run-level `budget`: it leases no new attempt
    /// (its queued tasks end skip; running attempts finish) and raises
    /// `budget_exceeded`.
    RunBudgetExceeded {
        run: String,
        limit: BudgetLimit,
        /// What was used against what limit, in words.
        detail: String,
    },

    // ----- agents (appended) -------------------------------------------------
    /// An agent identity's life: created, woken, its intents and their
    /// outcomes, timers, approvals (docs/agents.md).
    Agent(crate::agent::events::AgentEvent),
}

/// The submission record of a run.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct RunSubmitted {
    pub run: String,
    pub name: String,
    /// The normalized spec as JSON text (round-trips unknown fields).
    pub spec_json: String,
    /// Where the spec came from (a path, `api`, …).
    pub source: String,
    /// Effective `max_workers` (flag > spec > CPUs).
    pub max_workers: u32,
    /// Effective stale threshold override from the command line, if any.
    pub stale_after_ms: Option<u64>,
    /// Spawn depth: 0 for top-level runs.
    pub depth: u32,
    /// The attempt that submitted this run (nested runs).
    pub parent: Option<AttemptRef>,
    pub surface: Surface,
}

/// A state change reported by a worker's stream-json output.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub enum WorkerEvent {
    /// The worker produced its first output / said it is running.
    Running,
    /// The worker started a tool.
    RunningTool { tool: String },
    /// Usage totals so far (cumulative, not deltas).
    Usage { tokens: u64, tool_calls: u64 },
    /// The worker named an artifact (`{"artifact": {kind, path}}`).
    Artifact { kind: String, path: String },
    /// The worker asked for a human (`{"needs_human": {"reason": …}}`).
    NeedsHuman { reason: String },
    /// A `done` line.
    Completed,
    /// An `error` line.
    Failed { error: String },
    /// No output for longer than the stale threshold.
    Stale { silent_ms: u64 },
    /// A log reached its cap; the head and a rolling tail are kept.
    LogCapped { stream: LogStream },
    /// A budget limit was reached and the attempt is being stopped.
    BudgetExceeded { limit: BudgetLimit },
}

/// An attempt's output stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// Which budget limit was reached.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum BudgetLimit {
    Seconds,
    Tokens,
    ToolCalls,
    /// `max_cost_usd` (appended).
    CostUsd,
}

impl BudgetLimit {
    /// The budget field it names.
    pub fn field(self) -> &'static str {
        match self {
            BudgetLimit::Seconds => "max_seconds",
            BudgetLimit::Tokens => "max_tokens",
            BudgetLimit::ToolCalls => "max_tool_calls",
            BudgetLimit::CostUsd => "max_cost_usd",
        }
    }
}

/// Why an attempt was interrupted.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum InterruptCause {
    /// orca died (found at recovery); uses up no attempt.
    OrcaCrash,
    /// orca shut down or was suspended (`orca down`, SIGTERM); uses up no
    /// attempt.
    OrcaShutdown,
    /// An operator interrupted or restarted it; an operator restart uses up
    /// no attempt.
    Operator { surface: Surface, restart: bool },
    /// Stopped by its supervisor's strategy (one_for_all / rest_for_one)
    /// because a sibling restarted; uses up no attempt.
    SiblingRestart { sibling: String },
    /// The run was stopped or escalated.
    RunStopped,
}

impl Event {
    /// A cheap value (no allocation) for a slot that is about to be decoded
    /// into; never journaled as such.
    pub(crate) fn placeholder() -> Self {
        Event::DaemonStopped {
            pid: 0,
            reason: String::new(),
        }
    }

    /// The event's type name, as `orca journal export` prints it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::RunSubmitted(_) => "RunSubmitted",
            Event::TaskEnqueued { .. } => "TaskEnqueued",
            Event::RunPaused { .. } => "RunPaused",
            Event::RunResumed { .. } => "RunResumed",
            Event::RunStopRequested { .. } => "RunStopRequested",
            Event::RunFinished { .. } => "RunFinished",
            Event::ChildStarted { .. } => "ChildStarted",
            Event::ChildFailed { .. } => "ChildFailed",
            Event::RestartScheduled { .. } => "RestartScheduled",
            Event::ChildRestarted { .. } => "ChildRestarted",
            Event::IntensityExceeded { .. } => "IntensityExceeded",
            Event::Escalated { .. } => "Escalated",
            Event::ChildStopped { .. } => "ChildStopped",
            Event::SupervisorConfigured { .. } => "SupervisorConfigured",
            Event::AttemptStarted { .. } => "AttemptStarted",
            Event::WorkerReported { .. } => "WorkerReported",
            Event::AttemptExited { .. } => "AttemptExited",
            Event::AttemptInterrupted { .. } => "AttemptInterrupted",
            Event::AttemptFinished { .. } => "AttemptFinished",
            Event::ReceiptRecorded(_) => "ReceiptRecorded",
            Event::VerdictRecorded { .. } => "VerdictRecorded",
            Event::TaskFinished { .. } => "TaskFinished",
            Event::AlertRaised { .. } => "AlertRaised",
            Event::ControlRequested { .. } => "ControlRequested",
            Event::DaemonStarted { .. } => "DaemonStarted",
            Event::DaemonStopped { .. } => "DaemonStopped",
            Event::Alert(a) => a.type_name(),
            Event::AttemptUsage { .. } => "AttemptUsage",
            Event::RunBudgetExceeded { .. } => "RunBudgetExceeded",
            Event::Agent(a) => a.type_name(),
        }
    }

    /// The run this event belongs to, if any.
    pub fn run_id(&self) -> Option<&str> {
        match self {
            Event::RunSubmitted(s) => Some(&s.run),
            Event::TaskEnqueued { run, .. }
            | Event::RunPaused { run, .. }
            | Event::RunResumed { run, .. }
            | Event::RunStopRequested { run, .. }
            | Event::RunFinished { run, .. }
            | Event::TaskFinished { run, .. }
            | Event::AlertRaised { run, .. }
            | Event::RunBudgetExceeded { run, .. } => Some(run),
            Event::AttemptStarted { attempt, .. }
            | Event::WorkerReported { attempt, .. }
            | Event::AttemptExited { attempt, .. }
            | Event::AttemptInterrupted { attempt, .. }
            | Event::AttemptFinished { attempt, .. }
            | Event::VerdictRecorded { attempt, .. }
            | Event::AttemptUsage { attempt, .. } => Some(&attempt.run),
            Event::ReceiptRecorded(r) => Some(&r.run),
            Event::ChildStarted { path, .. }
            | Event::ChildFailed { path, .. }
            | Event::ChildRestarted { path, .. }
            | Event::ChildStopped { path, .. }
            | Event::SupervisorConfigured { path, .. }
            | Event::ControlRequested { path, .. } => run_of_path(path),
            Event::RestartScheduled { supervisor, .. }
            | Event::IntensityExceeded { supervisor, .. } => run_of_path(supervisor),
            Event::Escalated { from, .. } => run_of_path(from),
            Event::DaemonStarted { .. } | Event::DaemonStopped { .. } => None,
            Event::Alert(crate::alert::AlertEvent::Raised(r)) => r.source.run_id(),
            Event::Alert(_) | Event::Agent(_) => None,
        }
    }
}

pub use crate::path::run_of_path;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_bincode() {
        let events = vec![
            Event::TaskEnqueued {
                run: "r-1".into(),
                task: "lint".into(),
                priority: -3,
                order: 2,
            },
            Event::WorkerReported {
                attempt: AttemptRef::new("r-1", "lint", 1),
                event: WorkerEvent::Usage {
                    tokens: 10,
                    tool_calls: 2,
                },
            },
            Event::AttemptInterrupted {
                attempt: AttemptRef::new("r-1", "lint", 2),
                cause: InterruptCause::Operator {
                    surface: Surface::Api,
                    restart: true,
                },
            },
        ];
        let cfg = bincode::config::standard();
        for e in events {
            let bytes = bincode::serde::encode_to_vec(&e, cfg).unwrap();
            let (back, n): (Event, usize) = bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
            assert_eq!(n, bytes.len());
            assert_eq!(back, e);
        }
    }
}
