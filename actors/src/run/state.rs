//! A run's state as a pure fold of its journal events.
//!
//! [`RunState::apply`] is the same code in the run supervisor (live, after
//! each append: persist, then apply), at resume (rebuilding from the
//! journal), in the daemon's views and in offline CLI reads. It is plain
//! data (bincode-safe, for snapshots).

use serde::{Deserialize, Serialize};

use crate::journal::event::{Event, InterruptCause, LogStream, RunSubmitted, WorkerEvent};
use crate::model::{
    AlertClass, AttemptRef, AttemptResult, FailureClass, FailureSource, Receipt, RunStatus,
    Strategy, Surface, Timestamp, Verdict,
};
use crate::path::PathRef;
use crate::runtime::budget::RunSpend;
use crate::runtime::UsageRecord;
use crate::supervision::RestartWindow;

/// Where a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskPhase {
    /// In the inbox, waiting for a worker slot.
    Queued,
    /// An attempt is starting or running (or being judged).
    Running,
    /// Waiting for a restart deadline.
    Backoff,
    /// Done: no more attempts will start.
    Finished,
}

/// Where an attempt is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptPhase {
    /// Decided, process not started yet.
    Starting,
    /// The process runs.
    Running,
    /// The process exited; checks and scorer run.
    Exited,
    /// Ended, with a receipt.
    Finished,
}

/// What orca recorded of attempt `attempt`'s process (`a`, if it got that
/// far), to find it again later and check it is still the attempt's: its
/// pid, group and start time, and its `ORCA_ATTEMPT_ID`.
pub fn recorded_proc(attempt: &AttemptRef, a: Option<&AttemptState>) -> crate::host::RecordedProc {
    crate::host::RecordedProc {
        proc: crate::host::ProcHandle {
            pid: a.and_then(|a| a.pid).unwrap_or(0),
            pgid: a.and_then(|a| a.pgid).unwrap_or(0),
            proc_start: a.map(|a| a.proc_start).unwrap_or(0),
        },
        attempt_id: attempt.to_string(),
    }
}

/// One attempt of a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptState {
    pub n: u32,
    pub phase: AttemptPhase,
    pub worker: Option<String>,
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub pgid: Option<i32>,
    pub proc_start: u64,
    /// Whether it used up one of `max_attempts`.
    pub counted: bool,
    /// When the supervisor started it.
    pub started: Timestamp,
    /// When its process started.
    pub running_since: Option<Timestamp>,
    /// The last journaled sign of life (start, worker report).
    pub heartbeat: Timestamp,
    pub last_event: Option<WorkerEvent>,
    pub tool: Option<String>,
    pub tokens: u64,
    pub tool_calls: u64,
    pub stale: bool,
    pub logs_capped: Vec<LogStream>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub interrupted: Option<InterruptCause>,
    pub result: Option<AttemptResult>,
    pub source: Option<FailureSource>,
    pub class: Option<FailureClass>,
    pub reason: Option<String>,
    pub receipt: Option<Receipt>,
    /// What it used (`AttemptUsage`, journaled with its end).
    pub usage: Option<UsageRecord>,
}

impl AttemptState {
    fn new(n: u32, at: Timestamp) -> Self {
        Self {
            n,
            phase: AttemptPhase::Starting,
            worker: None,
            host: None,
            pid: None,
            pgid: None,
            proc_start: 0,
            counted: false,
            started: at,
            running_since: None,
            heartbeat: at,
            last_event: None,
            tool: None,
            tokens: 0,
            tool_calls: 0,
            stale: false,
            logs_capped: Vec::new(),
            exit_code: None,
            signal: None,
            interrupted: None,
            result: None,
            source: None,
            class: None,
            reason: None,
            receipt: None,
            usage: None,
        }
    }

    /// Whether the attempt's process may still be alive (started, not
    /// finished).
    pub fn is_live(&self) -> bool {
        matches!(
            self.phase,
            AttemptPhase::Starting | AttemptPhase::Running | AttemptPhase::Exited
        )
    }
}

/// One task of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    pub id: String,
    pub priority: i64,
    /// Position in the spec.
    pub order: u32,
    pub phase: TaskPhase,
    pub attempts: Vec<AttemptState>,
    /// Attempts that used up one of `max_attempts`.
    pub counted: u32,
    /// Restarts that counted toward the run's intensity.
    pub restarts: u32,
    /// The number the next attempt will have.
    pub next_attempt: u32,
    /// Whether the next attempt uses up one of `max_attempts`.
    pub next_counted: bool,
    /// Pending restart deadline.
    pub deadline: Option<Timestamp>,
    /// Final result (after `TaskFinished`, amended by verdicts).
    pub result: Option<AttemptResult>,
    pub final_attempt: Option<u32>,
}

impl TaskState {
    fn new(id: String, priority: i64, order: u32) -> Self {
        Self {
            id,
            priority,
            order,
            phase: TaskPhase::Queued,
            attempts: Vec::new(),
            counted: 0,
            restarts: 0,
            next_attempt: 1,
            next_counted: true,
            deadline: None,
            result: None,
            final_attempt: None,
        }
    }

    pub fn attempt(&self, n: u32) -> Option<&AttemptState> {
        self.attempts.iter().rev().find(|a| a.n == n)
    }

    fn attempt_mut(&mut self, n: u32) -> Option<&mut AttemptState> {
        self.attempts.iter_mut().rev().find(|a| a.n == n)
    }

    /// The latest attempt.
    pub fn current(&self) -> Option<&AttemptState> {
        self.attempts.last()
    }

    /// The receipt that is the task's final one, once finished.
    pub fn final_receipt(&self) -> Option<&Receipt> {
        self.final_attempt
            .and_then(|n| self.attempt(n))
            .and_then(|a| a.receipt.as_ref())
    }
}

/// An alert raised in the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Its id (`a-…`; empty for an alert journaled before alerts had ids).
    pub id: String,
    pub class: AlertClass,
    pub task: Option<String>,
    pub attempt: Option<u32>,
    pub reason: String,
    pub at: Timestamp,
}

/// Task id → position, kept beside the tasks (rebuilt when stale; not
/// part of the state's value).
#[derive(Clone, Debug, Default)]
pub struct TaskIndex(std::collections::HashMap<String, usize>);

impl PartialEq for TaskIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The run's spec parsed from its JSON text on first use, kept beside it
/// (not part of the state's value; clones share it: a run's spec never
/// changes once submitted). A 10,000-task spec is about a megabyte of
/// JSON: reads such as `inspect` must not parse it again on every call.
#[derive(Clone, Default)]
pub struct SpecCache(
    std::sync::Arc<std::sync::OnceLock<Option<std::sync::Arc<crate::spec::RunSpec>>>>,
);

impl PartialEq for SpecCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for SpecCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpecCache")
    }
}

/// A run, folded from its events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub run: String,
    pub name: String,
    /// The normalized spec (JSON text).
    pub spec_json: String,
    pub source: String,
    pub max_workers: u32,
    pub stale_after_ms: Option<u64>,
    pub depth: u32,
    pub parent: Option<AttemptRef>,
    pub surface: Surface,
    pub submitted: Timestamp,
    pub finished: Option<Timestamp>,
    /// As journaled by `RunFinished` (see [`RunState::status`]).
    pub ended_as: Option<RunStatus>,
    pub paused: bool,
    pub stopping: bool,
    pub escalated: bool,
    pub strategy: Strategy,
    pub max_restarts: u32,
    pub within_ms: u64,
    pub tasks: Vec<TaskState>,
    /// Counted restarts, for the intensity window.
    pub window: RestartWindow,
    pub restart_count: u32,
    pub alerts: Vec<AlertRecord>,
    /// Tasks not finished yet.
    pub unfinished: u32,
    /// Whether the run's scorer was started, and its restarts.
    pub scorer_started: bool,
    pub scorer_restarts: u32,
    /// The run went past its run-level `budget` (what was used, in words):
    /// it leases no new attempt.
    pub budget_exceeded: Option<String>,
    /// The seq of the last event applied.
    pub last_seq: u64,
    #[serde(skip)]
    index: TaskIndex,
    #[serde(skip)]
    parsed: SpecCache,
}

impl RunState {
    /// A run as submitted.
    pub fn submitted(s: &RunSubmitted, at: Timestamp) -> Self {
        Self {
            run: s.run.clone(),
            name: s.name.clone(),
            spec_json: s.spec_json.clone(),
            source: s.source.clone(),
            max_workers: s.max_workers,
            stale_after_ms: s.stale_after_ms,
            depth: s.depth,
            parent: s.parent.clone(),
            surface: s.surface,
            submitted: at,
            finished: None,
            ended_as: None,
            paused: false,
            stopping: false,
            escalated: false,
            strategy: Strategy::OneForOne,
            max_restarts: crate::spec::DEFAULT_RUN_MAX_RESTARTS,
            within_ms: (crate::spec::DEFAULT_RUN_WITHIN_SECS * 1000.0) as u64,
            tasks: Vec::new(),
            window: RestartWindow::default(),
            restart_count: 0,
            alerts: Vec::new(),
            unfinished: 0,
            scorer_started: false,
            scorer_restarts: 0,
            budget_exceeded: None,
            last_seq: 0,
            index: TaskIndex::default(),
            parsed: SpecCache::default(),
        }
    }

    /// What the run has used: its finished attempts' usage and cost, and
    /// the tokens its running attempts have reported so far.
    pub fn spend(&self) -> RunSpend {
        let mut spend = RunSpend::default();
        for a in self.tasks.iter().flat_map(|t| &t.attempts) {
            match &a.usage {
                Some(u) => spend.add_record(u),
                None if a.is_live() => spend.tokens = spend.tokens.saturating_add(a.tokens),
                None => {}
            }
        }
        spend
    }

    /// The spec, parsed from the journaled JSON.
    pub fn spec(&self) -> Option<crate::spec::RunSpec> {
        self.parsed_spec().map(|s| (*s).clone())
    }

    /// The spec, parsed once per run (see [`SpecCache`]) and shared.
    pub fn parsed_spec(&self) -> Option<std::sync::Arc<crate::spec::RunSpec>> {
        self.parsed
            .0
            .get_or_init(|| {
                crate::spec::from_journal_json(&self.spec_json)
                    .ok()
                    .map(std::sync::Arc::new)
            })
            .clone()
    }

    /// The position of task `id` (O(1) through the index; a scan after a
    /// snapshot load, until the index is rebuilt). A miss in a complete
    /// index is the answer: scanning then made every new task's
    /// `TaskEnqueued` O(n), replaying a 10,000-task run O(n²) (65% of an
    /// offline `orca status` of one).
    pub fn position(&self, id: &str) -> Option<usize> {
        match self.index.0.get(id) {
            Some(&i) if self.tasks.get(i).is_some_and(|t| t.id == id) => Some(i),
            None if self.index.0.len() == self.tasks.len() => None,
            _ => self.tasks.iter().position(|t| t.id == id),
        }
    }

    /// Rebuilds the index if it does not cover every task (after a
    /// snapshot load: it is not serialized).
    fn fresh_index(&mut self) {
        if self.index.0.len() != self.tasks.len() {
            self.index.0 = self
                .tasks
                .iter()
                .enumerate()
                .map(|(i, t)| (t.id.clone(), i))
                .collect();
        }
    }

    pub fn task(&self, id: &str) -> Option<&TaskState> {
        self.position(id).map(|i| &self.tasks[i])
    }

    fn task_mut(&mut self, id: &str) -> Option<&mut TaskState> {
        self.fresh_index();
        let i = self.position(id)?;
        self.tasks.get_mut(i)
    }

    /// The run's status: its journaled end, amended by later verdicts.
    pub fn status(&self) -> RunStatus {
        match self.ended_as {
            None if self.paused => RunStatus::Paused,
            None if self.tasks.iter().all(|t| t.phase == TaskPhase::Queued) => RunStatus::Queued,
            None => RunStatus::Running,
            Some(RunStatus::AwaitingVerdict)
            | Some(RunStatus::Passed)
            | Some(RunStatus::Failed) => status_from_results(self.tasks.iter().map(|t| t.result)),
            Some(s) => s,
        }
    }

    /// Applies one event (`at`: its journal timestamp, `seq`: its number).
    pub fn apply(&mut self, seq: u64, at: Timestamp, event: &Event) {
        self.last_seq = seq;
        match event {
            Event::RunSubmitted(_) => {}
            Event::TaskEnqueued {
                task,
                priority,
                order,
                ..
            } => {
                self.fresh_index();
                if self.position(task).is_none() {
                    self.index.0.insert(task.clone(), self.tasks.len());
                    self.tasks
                        .push(TaskState::new(task.clone(), *priority, *order));
                    self.unfinished += 1;
                }
            }
            Event::RunPaused { .. } => self.paused = true,
            Event::RunResumed { .. } => self.paused = false,
            Event::RunStopRequested { .. } => self.stopping = true,
            Event::RunFinished { status, .. } => {
                self.ended_as = Some(*status);
                self.finished = Some(at);
            }
            Event::SupervisorConfigured {
                strategy,
                max_restarts,
                within_ms,
                ..
            } => {
                self.strategy = *strategy;
                self.max_restarts = *max_restarts;
                self.within_ms = *within_ms;
            }
            Event::ChildStarted { path, .. } | Event::ChildRestarted { path, .. } => {
                match PathRef::parse(path) {
                    Some(PathRef::Scorer(_)) => {
                        if self.scorer_started {
                            self.scorer_restarts += 1;
                        }
                        self.scorer_started = true;
                    }
                    Some(PathRef::Attempt { task, n, .. }) => {
                        if let Some(t) = self.task_mut(task) {
                            t.phase = TaskPhase::Running;
                            t.deadline = None;
                            t.next_attempt = t.next_attempt.max(n + 1);
                            // The attempt uses up one of max_attempts unless
                            // the restart that led to it said otherwise;
                            // counted when started, so attempts that never
                            // got a process count too, and the supervisor's
                            // own fold agrees with a replay.
                            let mut a = AttemptState::new(n, at);
                            a.counted = t.next_counted;
                            if t.next_counted {
                                t.counted += 1;
                            }
                            t.next_counted = true;
                            t.attempts.push(a);
                        }
                    }
                    _ => {}
                }
            }
            Event::ChildFailed { .. }
            | Event::ChildStopped { .. }
            | Event::ControlRequested { .. } => {}
            Event::RestartScheduled {
                child,
                attempt,
                deadline,
                delay_ms,
                counted,
                counts_intensity,
                ..
            } => {
                let (within, count) = (self.within_ms, *counts_intensity);
                if count {
                    self.window.record(at, within);
                    self.restart_count += 1;
                }
                if let Some(t) = self.task_mut(child) {
                    t.next_attempt = *attempt;
                    t.next_counted = *counted;
                    if count {
                        t.restarts += 1;
                    }
                    if *delay_ms > 0 {
                        t.phase = TaskPhase::Backoff;
                        t.deadline = Some(*deadline);
                    } else {
                        t.phase = TaskPhase::Queued;
                        t.deadline = None;
                    }
                }
            }
            Event::IntensityExceeded { .. } | Event::Escalated { .. } => self.escalated = true,
            Event::AttemptStarted {
                attempt,
                worker,
                host,
                pid,
                pgid,
                proc_start,
                counted,
            } => {
                if let Some(t) = self.task_mut(&attempt.task) {
                    if let Some(a) = t.attempt_mut(attempt.attempt) {
                        a.phase = AttemptPhase::Running;
                        a.worker = Some(worker.clone());
                        a.host = Some(host.clone());
                        a.pid = Some(*pid);
                        a.pgid = Some(*pgid);
                        a.proc_start = *proc_start;
                        a.counted = *counted;
                        a.running_since = Some(at);
                        a.heartbeat = at;
                    }
                }
            }
            Event::WorkerReported { attempt, event } => {
                if let Some(a) = self
                    .task_mut(&attempt.task)
                    .and_then(|t| t.attempt_mut(attempt.attempt))
                {
                    a.heartbeat = at;
                    match event {
                        WorkerEvent::RunningTool { tool } => a.tool = Some(tool.clone()),
                        WorkerEvent::Usage { tokens, tool_calls } => {
                            a.tokens = *tokens;
                            a.tool_calls = *tool_calls;
                        }
                        WorkerEvent::Stale { .. } => a.stale = true,
                        WorkerEvent::LogCapped { stream } => a.logs_capped.push(*stream),
                        _ => {}
                    }
                    a.last_event = Some(event.clone());
                }
            }
            Event::AttemptExited {
                attempt,
                exit_code,
                signal,
            } => {
                if let Some(a) = self
                    .task_mut(&attempt.task)
                    .and_then(|t| t.attempt_mut(attempt.attempt))
                {
                    a.phase = AttemptPhase::Exited;
                    a.exit_code = *exit_code;
                    a.signal = *signal;
                }
            }
            Event::AttemptInterrupted { attempt, cause } => {
                if let Some(a) = self
                    .task_mut(&attempt.task)
                    .and_then(|t| t.attempt_mut(attempt.attempt))
                {
                    a.interrupted = Some(cause.clone());
                }
            }
            Event::AttemptFinished {
                attempt,
                result,
                source,
                class,
                reason,
            } => {
                if let Some(a) = self
                    .task_mut(&attempt.task)
                    .and_then(|t| t.attempt_mut(attempt.attempt))
                {
                    a.phase = AttemptPhase::Finished;
                    a.result = Some(*result);
                    a.source = *source;
                    a.class = *class;
                    a.reason = Some(reason.clone());
                }
            }
            Event::AttemptUsage { attempt, record } => {
                if let Some(a) = self
                    .task_mut(&attempt.task)
                    .and_then(|t| t.attempt_mut(attempt.attempt))
                {
                    a.usage = Some(record.clone());
                }
            }
            Event::RunBudgetExceeded { detail, .. } => {
                self.budget_exceeded = Some(detail.clone());
            }
            Event::ReceiptRecorded(r) => {
                if let Some(a) = self
                    .task_mut(&r.task)
                    .and_then(|t| t.attempt_mut(r.attempt))
                {
                    a.receipt = Some(r.clone());
                }
            }
            Event::VerdictRecorded {
                attempt, verdict, ..
            } => {
                if let Some(t) = self.task_mut(&attempt.task) {
                    let is_final = t.final_attempt == Some(attempt.attempt);
                    if let Some(a) = t.attempt_mut(attempt.attempt) {
                        let result = match verdict.verdict {
                            Verdict::Pass => AttemptResult::Pass,
                            Verdict::Fail => AttemptResult::Fail,
                        };
                        a.result = Some(result);
                        if verdict.verdict == Verdict::Fail {
                            a.source = Some(FailureSource::Verifier);
                            a.class = Some(FailureClass::Verifier);
                        } else {
                            a.source = None;
                            a.class = None;
                        }
                        // The summary said it awaited this verdict: it now
                        // says what the verdict was.
                        let summary = crate::model::bounded(
                            &format!(
                                "manual verdict: {} by {}{}",
                                match verdict.verdict {
                                    Verdict::Pass => "pass",
                                    Verdict::Fail => "fail",
                                },
                                verdict.who,
                                if verdict.note.is_empty() {
                                    String::new()
                                } else {
                                    format!(": {}", verdict.note)
                                }
                            ),
                            500,
                        );
                        a.reason = Some(summary.clone());
                        if let Some(r) = &mut a.receipt {
                            r.result = result;
                            r.failure_source = a.source;
                            r.class = a.class;
                            r.verdict = Some(verdict.clone());
                            r.summary = summary;
                        }
                        if is_final {
                            t.result = Some(result);
                        }
                    }
                }
            }
            Event::TaskFinished {
                task,
                result,
                final_attempt,
                ..
            } => {
                let mut newly = false;
                if let Some(t) = self.task_mut(task) {
                    newly = t.phase != TaskPhase::Finished;
                    t.phase = TaskPhase::Finished;
                    t.result = Some(*result);
                    t.final_attempt = Some(*final_attempt);
                    t.deadline = None;
                }
                if newly {
                    self.unfinished = self.unfinished.saturating_sub(1);
                }
            }
            Event::AlertRaised {
                class,
                task,
                attempt,
                reason,
                ..
            } => self.alerts.push(AlertRecord {
                id: String::new(),
                class: *class,
                task: task.clone(),
                attempt: *attempt,
                reason: reason.clone(),
                at,
            }),
            Event::Alert(crate::alert::AlertEvent::Raised(r)) => self.alerts.push(AlertRecord {
                id: r.id.clone(),
                class: r.class,
                task: r.task.clone(),
                attempt: r.attempt,
                reason: r.reason.clone(),
                at: r.at,
            }),
            Event::Alert(_)
            | Event::Agent(_)
            | Event::DaemonStarted { .. }
            | Event::DaemonStopped { .. } => {}
        }
    }

    /// Counts for status views.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for t in &self.tasks {
            match t.phase {
                TaskPhase::Queued => c.queued += 1,
                TaskPhase::Running => c.running += 1,
                TaskPhase::Backoff => c.retrying += 1,
                TaskPhase::Finished => match t.result {
                    Some(AttemptResult::Pass) => c.passed += 1,
                    Some(AttemptResult::Partial) => c.partial += 1,
                    Some(AttemptResult::Fail) => c.failed += 1,
                    Some(AttemptResult::Timeout) => c.timed_out += 1,
                    Some(AttemptResult::Skip) | None => c.cancelled += 1,
                },
            }
            c.restarted += t.restarts;
            for a in &t.attempts {
                if a.stale {
                    c.stale += 1;
                }
                if a.interrupted.is_some() {
                    c.interrupted += 1;
                }
            }
            if t.phase == TaskPhase::Finished {
                match t.final_receipt().and_then(|r| r.failure_source) {
                    Some(FailureSource::Transport) => c.source_transport += 1,
                    Some(FailureSource::Task) => c.source_task += 1,
                    Some(FailureSource::Verifier) => c.source_verifier += 1,
                    None => {}
                }
            }
        }
        c.escalated = u32::from(self.escalated);
        c
    }
}

/// A run's status from its tasks' final results.
pub fn status_from_results(results: impl Iterator<Item = Option<AttemptResult>>) -> RunStatus {
    let mut partial = false;
    let mut cancelled = false;
    for r in results {
        match r {
            Some(AttemptResult::Fail) | Some(AttemptResult::Timeout) => return RunStatus::Failed,
            Some(AttemptResult::Partial) => partial = true,
            Some(AttemptResult::Skip) | None => cancelled = true,
            Some(AttemptResult::Pass) => {}
        }
    }
    if cancelled {
        RunStatus::Cancelled
    } else if partial {
        RunStatus::AwaitingVerdict
    } else {
        RunStatus::Passed
    }
}

/// Task and attempt counts of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub queued: u32,
    pub running: u32,
    pub retrying: u32,
    pub passed: u32,
    pub partial: u32,
    pub failed: u32,
    pub timed_out: u32,
    pub cancelled: u32,
    /// Restarts that counted toward intensity.
    pub restarted: u32,
    /// Attempts that went stale.
    pub stale: u32,
    /// Attempts interrupted (by orca, an operator or a sibling restart).
    pub interrupted: u32,
    pub escalated: u32,
    /// Final receipts by failure source.
    pub source_transport: u32,
    pub source_task: u32,
    pub source_verifier: u32,
}

impl Counts {
    pub fn total(&self) -> u32 {
        self.queued
            + self.running
            + self.retrying
            + self.passed
            + self.partial
            + self.failed
            + self.timed_out
            + self.cancelled
    }

    pub fn finished(&self) -> u32 {
        self.passed + self.partial + self.failed + self.timed_out + self.cancelled
    }
}

#[cfg(test)]
mod tests;
