//! An agent identity's state: a pure fold of its journal events, the same
//! in the agent's actor, at start (from the fleet snapshot and the journal)
//! and in every read (`orca agent show`, `explain`, the tree).

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::events::{AgentEvent, IntentAction, IntentOutcome};
use super::spec::{from_journal_json, AgentSpec};
use crate::model::{RunStatus, Timestamp};

/// The most wakes an inbox holds; past it the oldest is dropped (and the
/// drop journaled).
pub const MAX_INBOX: usize = 1_000;
/// Notes kept (the newest).
pub const MAX_NOTES: usize = 50;
/// How long a wake's id is remembered to answer a repeat as a duplicate
/// (webhook redeliveries, a fleet event replayed at start).
pub const SEEN_WINDOW_MS: u64 = 24 * 3_600_000;
/// Finished runs remembered (the newest; running ones are always kept).
pub const MAX_RUNS: usize = 100;

/// Where an agent is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Created, no wake yet.
    #[default]
    Created,
    /// Nothing to do.
    Idle,
    /// A wake was taken; its actions are being decided.
    Waking,
    /// Carrying out actions (a run being started).
    Working,
    /// Waiting: for an approval, or for its runs (`max_concurrent_runs`),
    /// or for its wake rate to allow more.
    Waiting,
    Paused,
    Escalated,
    Retired,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Created => "created",
            Lifecycle::Idle => "idle",
            Lifecycle::Waking => "waking",
            Lifecycle::Working => "working",
            Lifecycle::Waiting => "waiting",
            Lifecycle::Paused => "paused",
            Lifecycle::Escalated => "escalated",
            Lifecycle::Retired => "retired",
        }
    }
}

/// A wake in the inbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboxItem {
    pub wake: String,
    pub source: String,
    pub event_json: String,
    pub at: Timestamp,
}

/// Where an intent stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Journaled, not carried out yet (redone after a crash).
    Pending,
    /// Held until an operator approves request `0`.
    AwaitingApproval(String),
    Done(IntentOutcome),
    Refused(String),
}

/// One intent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntentRecord {
    pub intent: String,
    pub wake: String,
    pub action: IntentAction,
    pub status: IntentStatus,
    pub at: Timestamp,
}

/// The wake being handled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurrentWake {
    pub wake: String,
    pub source: String,
    pub event_json: String,
    pub started: Timestamp,
}

/// A commitment: it wakes the agent when due.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Commitment {
    pub id: String,
    pub due: Timestamp,
    pub text: String,
    /// Whether its wake was journaled.
    pub fired: bool,
}

/// An approval an operator is asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub request: String,
    pub intent: Option<String>,
    pub what: String,
    pub at: Timestamp,
}

/// A run the agent started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentRun {
    pub run: String,
    pub intent: String,
    pub started: Timestamp,
    pub status: Option<RunStatus>,
}

/// A timer's schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimerState {
    pub anchor: Timestamp,
    pub due: Timestamp,
    /// Whether the wake of `due` was journaled.
    pub fired: bool,
}

/// One agent identity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    pub id: String,
    pub spec_json: String,
    /// The spec file's directory, relative to the workspace.
    pub dir: String,
    /// The run specs its routes name, as captured at create / update.
    pub run_specs: BTreeMap<String, String>,
    pub created: Timestamp,
    pub paused: bool,
    pub retired: bool,
    pub escalated: Option<String>,
    pub inbox: VecDeque<InboxItem>,
    pub current: Option<CurrentWake>,
    pub intents: BTreeMap<String, IntentRecord>,
    pub commitments: BTreeMap<String, Commitment>,
    pub approvals: BTreeMap<String, Approval>,
    pub runs: BTreeMap<String, AgentRun>,
    pub notes: VecDeque<(Timestamp, String)>,
    pub timers: BTreeMap<String, TimerState>,
    /// Wake ids seen, with when (for duplicates; expired after
    /// [`SEEN_WINDOW_MS`]).
    pub seen: BTreeMap<String, Timestamp>,
    /// Wakes taken in all, and in the last hour (their start times).
    pub wakes_taken: u64,
    pub recent_wakes: VecDeque<Timestamp>,
    /// Wakes granted beyond `wake_budget` by approvals.
    pub budget_granted: u64,
    pub dropped: u64,
    pub last_activity: Timestamp,
}

impl AgentState {
    /// The spec as last created or updated.
    pub fn spec(&self) -> Option<AgentSpec> {
        from_journal_json(&self.spec_json).ok()
    }

    /// Where it is in its life (derived).
    pub fn lifecycle(&self) -> Lifecycle {
        if self.retired {
            Lifecycle::Retired
        } else if self.escalated.is_some() {
            Lifecycle::Escalated
        } else if self.paused {
            Lifecycle::Paused
        } else if self.current.is_some() {
            let pending = self
                .current_intents()
                .any(|i| matches!(i.status, IntentStatus::Pending));
            if pending {
                Lifecycle::Working
            } else if self
                .current_intents()
                .any(|i| matches!(i.status, IntentStatus::AwaitingApproval(_)))
            {
                Lifecycle::Waiting
            } else {
                Lifecycle::Waking
            }
        } else if !self.inbox.is_empty() || !self.approvals.is_empty() {
            Lifecycle::Waiting
        } else if self.wakes_taken == 0 {
            Lifecycle::Created
        } else {
            Lifecycle::Idle
        }
    }

    /// The intents of the wake being handled.
    pub fn current_intents(&self) -> impl Iterator<Item = &IntentRecord> {
        let wake = self.current.as_ref().map(|c| c.wake.clone());
        self.intents
            .values()
            .filter(move |i| Some(&i.wake) == wake.as_ref())
    }

    /// Runs it started that have not ended.
    pub fn running_runs(&self) -> usize {
        self.runs.values().filter(|r| r.status.is_none()).count()
    }

    /// Whether a wake with this id was seen (within the window).
    pub fn has_seen(&self, wake: &str) -> bool {
        self.seen.contains_key(wake)
    }

    /// Folds one event journaled at `at`.
    pub fn apply(&mut self, at: Timestamp, e: &AgentEvent) {
        self.last_activity = at;
        match e {
            AgentEvent::Created {
                agent,
                spec_json,
                dir,
                run_specs,
                ..
            } => {
                self.id = agent.clone();
                self.created = at;
                self.spec_json = spec_json.clone();
                self.dir = dir.clone();
                self.run_specs = run_specs.iter().cloned().collect();
            }
            AgentEvent::Updated {
                spec_json,
                dir,
                run_specs,
                ..
            } => {
                self.spec_json = spec_json.clone();
                self.dir = dir.clone();
                self.run_specs = run_specs.iter().cloned().collect();
                // Timers of subscriptions that are gone are forgotten.
                if let Some(spec) = self.spec() {
                    self.timers.retain(|id, _| spec.subscription(id).is_some());
                }
            }
            AgentEvent::Paused { .. } => self.paused = true,
            AgentEvent::Resumed { .. } => {
                self.paused = false;
                self.escalated = None;
            }
            AgentEvent::Retired { .. } => {
                self.retired = true;
                self.inbox.clear();
                self.timers.clear();
            }
            AgentEvent::Escalated { reason, .. } => self.escalated = Some(reason.clone()),
            AgentEvent::Woke {
                wake,
                source,
                event_json,
                ..
            } => {
                self.seen.insert(wake.clone(), at);
                self.expire_seen(at);
                if let Some(t) = self.timers.get_mut(source.as_str()) {
                    if wake == &timer_wake(source, t.due) {
                        t.fired = true;
                    }
                }
                if source == "commitment" {
                    if let Some(c) = self
                        .commitments
                        .values_mut()
                        .find(|c| wake == &commitment_wake(&c.id))
                    {
                        c.fired = true;
                    }
                }
                self.inbox.push_back(InboxItem {
                    wake: wake.clone(),
                    source: source.clone(),
                    event_json: event_json.clone(),
                    at,
                });
            }
            AgentEvent::WakeDropped { wake, .. } => {
                self.dropped += 1;
                self.inbox.retain(|i| &i.wake != wake);
            }
            AgentEvent::WakeStarted { wake, .. } => {
                if let Some(pos) = self.inbox.iter().position(|i| &i.wake == wake) {
                    if let Some(item) = self.inbox.remove(pos) {
                        self.current = Some(CurrentWake {
                            wake: item.wake,
                            source: item.source,
                            event_json: item.event_json,
                            started: at,
                        });
                    }
                }
                self.wakes_taken += 1;
                self.recent_wakes.push_back(at);
                while self
                    .recent_wakes
                    .front()
                    .is_some_and(|t| at.millis_since(*t) >= 3_600_000)
                {
                    self.recent_wakes.pop_front();
                }
            }
            AgentEvent::Intended {
                intent,
                wake,
                action,
                ..
            } => {
                self.intents.insert(
                    intent.clone(),
                    IntentRecord {
                        intent: intent.clone(),
                        wake: wake.clone(),
                        action: action.clone(),
                        status: IntentStatus::Pending,
                        at,
                    },
                );
            }
            AgentEvent::Refused {
                intent,
                wake,
                reason,
                ..
            } => {
                let rec = self.intents.entry(intent.clone()).or_insert(IntentRecord {
                    intent: intent.clone(),
                    wake: wake.clone(),
                    action: IntentAction::Note {
                        text: String::new(),
                    },
                    status: IntentStatus::Pending,
                    at,
                });
                rec.status = IntentStatus::Refused(reason.clone());
                self.note(at, format!("refused: {reason}"));
            }
            AgentEvent::Done {
                intent, outcome, ..
            } => {
                let Some(rec) = self.intents.get_mut(intent) else {
                    return;
                };
                rec.status = IntentStatus::Done(outcome.clone());
                let action = rec.action.clone();
                match (&action, outcome) {
                    (
                        IntentAction::StartRun { .. } | IntentAction::Think { .. },
                        IntentOutcome::RunStarted { run },
                    ) => {
                        self.runs.entry(run.clone()).or_insert(AgentRun {
                            run: run.clone(),
                            intent: intent.clone(),
                            started: at,
                            status: None,
                        });
                        self.trim_runs();
                    }
                    (
                        IntentAction::Remember {
                            commitment,
                            due,
                            text,
                        },
                        IntentOutcome::Remembered,
                    ) => {
                        self.commitments.insert(
                            commitment.clone(),
                            Commitment {
                                id: commitment.clone(),
                                due: *due,
                                text: text.clone(),
                                fired: false,
                            },
                        );
                    }
                    (IntentAction::Note { text }, IntentOutcome::Noted) => {
                        self.note(at, text.clone());
                    }
                    (IntentAction::Complete { commitment }, IntentOutcome::Completed) => {
                        self.commitments.remove(commitment);
                    }
                    (_, IntentOutcome::Failed { error }) => {
                        self.note(at, format!("{} failed: {error}", action.kind()));
                    }
                    _ => {}
                }
            }
            AgentEvent::WakeDone { wake, .. } => {
                if self.current.as_ref().is_some_and(|c| &c.wake == wake) {
                    self.current = None;
                }
                // A commitment that woke it is kept as done no more.
                self.commitments
                    .retain(|_, c| &commitment_wake(&c.id) != wake);
                // Intents of finished wakes are history: keep the last few.
                if self.intents.len() > 200 {
                    let keep: Vec<String> = self
                        .intents
                        .values()
                        .filter(|i| {
                            matches!(
                                i.status,
                                IntentStatus::Pending | IntentStatus::AwaitingApproval(_)
                            )
                        })
                        .map(|i| i.intent.clone())
                        .collect();
                    let mut done: Vec<(Timestamp, String)> = self
                        .intents
                        .values()
                        .filter(|i| !keep.contains(&i.intent))
                        .map(|i| (i.at, i.intent.clone()))
                        .collect();
                    done.sort();
                    let drop = done.len().saturating_sub(100);
                    for (_, id) in done.into_iter().take(drop) {
                        self.intents.remove(&id);
                    }
                }
            }
            AgentEvent::ApprovalRequested {
                request,
                intent,
                what,
                ..
            } => {
                if let Some(i) = intent.as_ref().and_then(|i| self.intents.get_mut(i)) {
                    i.status = IntentStatus::AwaitingApproval(request.clone());
                }
                self.approvals.insert(
                    request.clone(),
                    Approval {
                        request: request.clone(),
                        intent: intent.clone(),
                        what: what.clone(),
                        at,
                    },
                );
            }
            AgentEvent::Approved { request, .. } => {
                if let Some(a) = self.approvals.remove(request) {
                    if let Some(i) = a.intent.as_ref().and_then(|i| self.intents.get_mut(i)) {
                        i.status = IntentStatus::Pending;
                    }
                    if a.intent.is_none() && request == WAKE_BUDGET_REQUEST {
                        self.budget_granted = self.wakes_taken;
                    }
                }
            }
            AgentEvent::Denied { request, .. } => {
                if let Some(a) = self.approvals.remove(request) {
                    if let Some(i) = a.intent.as_ref().and_then(|i| self.intents.get_mut(i)) {
                        i.status = IntentStatus::Refused("denied by an operator".into());
                    }
                }
            }
            AgentEvent::TimerArmed {
                subscription,
                due,
                anchor,
                ..
            } => {
                self.timers.insert(
                    subscription.clone(),
                    TimerState {
                        anchor: *anchor,
                        due: *due,
                        fired: false,
                    },
                );
            }
            AgentEvent::TimerSkipped {
                subscription,
                until,
                ..
            } => {
                self.note(
                    at,
                    format!(
                        "timer {subscription}: ticks until {} fell while orca was down; skipped",
                        until.rfc3339()
                    ),
                );
            }
            AgentEvent::RunEnded { run, status, .. } => {
                if let Some(r) = self.runs.get_mut(run) {
                    r.status = Some(*status);
                }
                self.trim_runs();
            }
            AgentEvent::Cursor { .. } => {}
        }
    }

    fn note(&mut self, at: Timestamp, text: String) {
        self.notes.push_back((at, text));
        while self.notes.len() > MAX_NOTES {
            self.notes.pop_front();
        }
    }

    fn expire_seen(&mut self, now: Timestamp) {
        if self.seen.len() < 64 {
            return;
        }
        self.seen
            .retain(|_, t| now.millis_since(*t) < SEEN_WINDOW_MS);
    }

    /// Keeps the newest [`MAX_RUNS`] ended runs (and every running one).
    fn trim_runs(&mut self) {
        let mut ended: Vec<(Timestamp, String)> = self
            .runs
            .values()
            .filter(|r| r.status.is_some())
            .map(|r| (r.started, r.run.clone()))
            .collect();
        if ended.len() > MAX_RUNS {
            ended.sort();
            let over = ended.len() - MAX_RUNS;
            for (_, run) in ended.into_iter().take(over) {
                self.runs.remove(&run);
            }
        }
    }
}

/// The approval request that lets an agent past its `wake_budget`.
pub const WAKE_BUDGET_REQUEST: &str = "wake_budget";

/// The wake id of a timer's tick.
pub fn timer_wake(subscription: &str, due: Timestamp) -> String {
    format!("{subscription}:{}", due.nanos())
}

/// The wake id of a commitment coming due.
pub fn commitment_wake(commitment: &str) -> String {
    format!("commitment:{commitment}")
}

/// Every agent, and the supervisor's cursor over fleet events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentsView {
    pub agents: BTreeMap<String, AgentState>,
    /// The fleet events every agent has taken (see [`AgentEvent::Cursor`]).
    pub cursor: u64,
    /// Run → the agent that started it.
    pub run_owner: BTreeMap<String, String>,
}

impl AgentsView {
    /// Folds one agent event journaled at `at`.
    pub fn apply(&mut self, at: Timestamp, e: &AgentEvent) {
        match e {
            AgentEvent::Cursor { seq } => self.cursor = self.cursor.max(*seq),
            other => {
                let Some(id) = other.agent() else { return };
                if let AgentEvent::Created { .. } = other {
                    // A retired id is never reused: creation refuses it;
                    // should one appear anyway, its history is kept.
                    self.agents.entry(id.to_string()).or_default();
                }
                let Some(a) = self.agents.get_mut(id) else {
                    return;
                };
                a.apply(at, other);
                if let AgentEvent::Done {
                    outcome: IntentOutcome::RunStarted { run },
                    ..
                } = other
                {
                    self.run_owner.insert(run.clone(), id.to_string());
                }
            }
        }
    }
}
