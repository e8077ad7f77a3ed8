//! What an agent watches, is doing, is blocked on and needs approval for —
//! `orca agent explain`, `orca agent list` and the API — as pure functions
//! of its folded state and spec.

use serde::{Deserialize, Serialize};

use super::spec::{AgentSpec, SubscriptionKind};
use super::state::{AgentState, Approval, IntentStatus, Lifecycle, WAKE_BUDGET_REQUEST};
use crate::model::Timestamp;

/// One agent at a glance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentSummary {
    pub id: String,
    pub display_name: Option<String>,
    pub lifecycle: Lifecycle,
    pub inbox: usize,
    pub next_timer: Option<Timestamp>,
    pub runs_running: usize,
    pub runs: usize,
    pub approvals: usize,
    pub wakes: u64,
    pub last_activity: Timestamp,
}

impl AgentSummary {
    pub fn of(a: &AgentState) -> Self {
        let spec = a.spec();
        Self {
            id: a.id.clone(),
            display_name: spec.and_then(|s| s.display_name),
            lifecycle: a.lifecycle(),
            inbox: a.inbox.len(),
            next_timer: a.timers.values().map(|t| t.due).min(),
            runs_running: a.running_runs(),
            runs: a.runs.len(),
            approvals: a.approvals.len(),
            wakes: a.wakes_taken,
            last_activity: a.last_activity,
        }
    }
}

/// One subscription, in words.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Watching {
    pub subscription: String,
    pub kind: SubscriptionKind,
    /// What it watches (`receipt.fail, receipt.timeout`; `every 10m`;
    /// `cron 0 7 * * *`; `POST /v1/agents/x/events/y`; `files under src`).
    pub what: String,
    /// A timer's next tick.
    pub next: Option<Timestamp>,
}

/// What the agent is doing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Doing {
    pub wake: String,
    pub source: String,
    pub since: Timestamp,
    /// Each intent of the wake: `start_run r-… (pending)`.
    pub intents: Vec<String>,
}

/// `orca agent explain`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub agent: String,
    pub display_name: Option<String>,
    pub persona: Option<String>,
    pub lifecycle: Lifecycle,
    pub watching: Vec<Watching>,
    pub doing: Option<Doing>,
    /// Why it is not taking its next wake, in words (empty: it is not
    /// blocked).
    pub blocked_on: Vec<String>,
    pub needs_approval: Vec<Approval>,
    pub inbox: usize,
    pub commitments: Vec<(String, Timestamp, String)>,
    pub runs_running: Vec<String>,
    pub notes: Vec<(Timestamp, String)>,
}

/// Explains agent `a` (its spec as journaled).
pub fn explain(a: &AgentState, now: Timestamp) -> Explanation {
    let spec = a.spec().unwrap_or_default();
    let watching = spec
        .subscriptions
        .iter()
        .map(|s| Watching {
            subscription: s.id.clone(),
            kind: s.kind,
            what: match s.kind {
                SubscriptionKind::Fleet => s.events.join(", "),
                SubscriptionKind::Timer => match (&s.every, &s.cron) {
                    (Some(e), _) => format!("every {e}"),
                    (None, Some(c)) => format!("cron {c} (UTC)"),
                    _ => "no schedule".into(),
                },
                SubscriptionKind::Webhook => {
                    format!("POST /v1/agents/{}/events/{} (signed)", a.id, s.id)
                }
                SubscriptionKind::Files => {
                    format!("files under {}", s.path.as_deref().unwrap_or("?"))
                }
            },
            next: a.timers.get(&s.id).map(|t| t.due),
        })
        .collect();
    let doing = a.current.as_ref().map(|c| Doing {
        wake: c.wake.clone(),
        source: c.source.clone(),
        since: c.started,
        intents: a
            .current_intents()
            .map(|i| {
                let status = match &i.status {
                    IntentStatus::Pending => "pending".to_string(),
                    IntentStatus::AwaitingApproval(r) => format!("awaiting approval {r}"),
                    IntentStatus::Done(_) => "done".to_string(),
                    IntentStatus::Refused(why) => format!("refused: {why}"),
                };
                format!("{} ({status})", i.action.kind())
            })
            .collect(),
    });
    Explanation {
        agent: a.id.clone(),
        display_name: spec.display_name.clone(),
        persona: spec.persona.clone(),
        lifecycle: a.lifecycle(),
        watching,
        doing,
        blocked_on: blocked_on(a, &spec, now),
        needs_approval: a.approvals.values().cloned().collect(),
        inbox: a.inbox.len(),
        commitments: a
            .commitments
            .values()
            .map(|c| (c.id.clone(), c.due, c.text.clone()))
            .collect(),
        runs_running: a
            .runs
            .values()
            .filter(|r| r.status.is_none())
            .map(|r| r.run.clone())
            .collect(),
        notes: a.notes.iter().rev().take(10).cloned().collect(),
    }
}

/// Why the agent is not taking its next wake.
fn blocked_on(a: &AgentState, spec: &AgentSpec, now: Timestamp) -> Vec<String> {
    let mut out = Vec::new();
    if a.retired {
        out.push("retired".into());
        return out;
    }
    if let Some(why) = &a.escalated {
        out.push(format!("escalated: {why}"));
    }
    if a.paused {
        out.push("paused by an operator (`orca agent resume`)".into());
    }
    for ap in a.approvals.values() {
        out.push(if ap.request == WAKE_BUDGET_REQUEST {
            format!("its wake_budget: {}", ap.what)
        } else {
            format!("approval {} for: {}", ap.request, ap.what)
        });
    }
    if a.inbox.is_empty() {
        return out;
    }
    let policy = spec.policy();
    if let Some(max) = policy.max_wakes_per_hour {
        let hour_ago = now.minus_millis(3_600_000);
        let recent = a.recent_wakes.iter().filter(|t| **t > hour_ago).count();
        if recent as u64 >= u64::from(max) {
            out.push(format!("max_wakes_per_hour ({max}) reached"));
        }
    }
    if let Some(max) = policy.max_concurrent_runs {
        if a.running_runs() as u64 >= u64::from(max) {
            out.push(format!("max_concurrent_runs ({max}) running"));
        }
    }
    if a.current.is_some() {
        out.push("the wake before it is not done".into());
    }
    out
}
