//! The journal events of agent identities (bincode-safe: plain structs and
//! externally tagged enums; free-form data — specs, events — travels as JSON
//! text). One journal variant, `Event::Agent(AgentEvent)`, holds them all.
//!
//! Ids are derived, never random, so a wake or an action redone after a
//! crash is recognised:
//! - a wake is `<source>:<event id>` (a fleet event's journal seq, a
//!   timer's tick time, a webhook's `webhook-id`, a commitment's id, …);
//! - an intent is `<wake>/<route index>`;
//! - the run an intent starts is [`run_id_of`]`(intent)`.

use serde::{Deserialize, Serialize};

use crate::model::{AlertClass, RunStatus, Surface, Timestamp};

/// What an intent does, as journaled before it is carried out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IntentAction {
    /// Start run `run` (its id is fixed here) from the spec at `spec`
    /// (relative to the workspace), whose text with the wake's values
    /// substituted is `spec_text`.
    StartRun {
        run: String,
        spec: String,
        spec_text: String,
        /// The wake's event (JSON text): the run gets it as
        /// `$ORCA_EVENT_FILE`.
        event_json: String,
    },
    /// Raise an alert (journaled in the same batch: raising is
    /// journaling).
    Alert { class: AlertClass, reason: String },
    /// A commitment: wake again at `due`.
    Remember {
        commitment: String,
        due: Timestamp,
        text: String,
    },
    /// A note in the agent's history.
    Note { text: String },
    /// Think: run the agent's runtime as the one task of run `run` (its id
    /// fixed here, labelled `agent=<id>`), whose spec orca wrote
    /// (`spec_text`, JSON: the prompt holds the persona, the agent's state
    /// and the event). The wake stays open until that run ends; the
    /// runtime acts through `orca mcp` (tool calls, each an intent of the
    /// wake).
    Think {
        run: String,
        spec_text: String,
        event_json: String,
    },
    /// A commitment is kept: it is forgotten (its wake will not come).
    Complete { commitment: String },
    /// A question for an operator: a pending approval (request id = the
    /// intent id) and a `needs_human` alert; the answer wakes the agent
    /// (`on = "approval"`).
    AskHuman { question: String },
    /// Stop a run the agent started.
    StopRun { run: String },
}

impl IntentAction {
    pub fn kind(&self) -> &'static str {
        match self {
            IntentAction::StartRun { .. } => "start_run",
            IntentAction::Alert { .. } => "alert",
            IntentAction::Remember { .. } => "remember",
            IntentAction::Note { .. } => "note",
            IntentAction::Think { .. } => "think",
            IntentAction::Complete { .. } => "complete",
            IntentAction::AskHuman { .. } => "ask_human",
            IntentAction::StopRun { .. } => "stop_run",
        }
    }
}

/// How an intent ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IntentOutcome {
    /// The run was submitted (or already had been: a redone wake).
    RunStarted {
        run: String,
    },
    AlertRaised {
        alert: String,
    },
    Remembered,
    Noted,
    /// A commitment was forgotten as kept.
    Completed,
    /// A question was put to an operator as approval `request`, with
    /// alert `alert`.
    Asked {
        request: String,
        alert: String,
    },
    /// A stop was asked of the run.
    Stopped,
    /// It could not be carried out (the spec did not validate, …).
    Failed {
        error: String,
    },
}

/// One agent event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AgentEvent {
    /// An identity was created from `spec_json`; the run specs its routes
    /// name are captured (path relative to the workspace → text).
    Created {
        agent: String,
        spec_json: String,
        /// The spec file's directory, relative to the workspace.
        dir: String,
        run_specs: Vec<(String, String)>,
        by: Surface,
    },
    /// A new spec applies; the state stays.
    Updated {
        agent: String,
        spec_json: String,
        dir: String,
        run_specs: Vec<(String, String)>,
        by: Surface,
    },
    Paused {
        agent: String,
        by: Surface,
    },
    Resumed {
        agent: String,
        by: Surface,
    },
    /// The identity ended; its history stays readable and its id is never
    /// reused.
    Retired {
        agent: String,
        by: Surface,
    },
    /// It crashed too often (or could not go on): no more wakes until an
    /// operator resumes it.
    Escalated {
        agent: String,
        reason: String,
    },
    /// A wake arrived (before anything acts on it): it waits in the inbox
    /// until the agent takes it.
    Woke {
        agent: String,
        wake: String,
        /// A subscription id, `inbox` or `commitment`.
        source: String,
        /// The event (JSON text, bounded).
        event_json: String,
    },
    /// A wake was dropped: `busy = "drop"` while busy, or the inbox was
    /// full (the oldest goes).
    WakeDropped {
        agent: String,
        wake: String,
        why: String,
    },
    /// The agent took a wake from its inbox; the intents that follow are
    /// its.
    WakeStarted {
        agent: String,
        wake: String,
    },
    /// An action the wake's route chose, journaled before it is carried out.
    Intended {
        agent: String,
        intent: String,
        wake: String,
        route: u32,
        action: IntentAction,
    },
    /// An action was refused (outside the agent's workspaces, trust or
    /// policy), with why.
    Refused {
        agent: String,
        intent: String,
        wake: String,
        reason: String,
    },
    /// An intent was carried out.
    Done {
        agent: String,
        intent: String,
        outcome: IntentOutcome,
    },
    /// Every intent of the wake is done.
    WakeDone {
        agent: String,
        wake: String,
    },
    /// An action (or more wakes) waits for an operator.
    ApprovalRequested {
        agent: String,
        request: String,
        /// The intent it holds, if one (`wake_budget` holds none).
        intent: Option<String>,
        what: String,
    },
    Approved {
        agent: String,
        request: String,
        by: Surface,
    },
    Denied {
        agent: String,
        request: String,
        by: Surface,
    },
    /// A timer's next tick (`anchor`: its schedule's origin).
    TimerArmed {
        agent: String,
        subscription: String,
        due: Timestamp,
        anchor: Timestamp,
    },
    /// Ticks that fell while orca was down were skipped (`missed = skip`).
    TimerSkipped {
        agent: String,
        subscription: String,
        until: Timestamp,
    },
    /// A run the agent started ended.
    RunEnded {
        agent: String,
        run: String,
        status: RunStatus,
    },
    /// Every agent has taken the fleet events up to `seq` (written by the
    /// `agents` supervisor; at start it catches up from there).
    Cursor {
        seq: u64,
    },
}

impl AgentEvent {
    /// The agent it is about (`None`: the supervisor's cursor).
    pub fn agent(&self) -> Option<&str> {
        match self {
            AgentEvent::Created { agent, .. }
            | AgentEvent::Updated { agent, .. }
            | AgentEvent::Paused { agent, .. }
            | AgentEvent::Resumed { agent, .. }
            | AgentEvent::Retired { agent, .. }
            | AgentEvent::Escalated { agent, .. }
            | AgentEvent::Woke { agent, .. }
            | AgentEvent::WakeDropped { agent, .. }
            | AgentEvent::WakeStarted { agent, .. }
            | AgentEvent::Intended { agent, .. }
            | AgentEvent::Refused { agent, .. }
            | AgentEvent::Done { agent, .. }
            | AgentEvent::WakeDone { agent, .. }
            | AgentEvent::ApprovalRequested { agent, .. }
            | AgentEvent::Approved { agent, .. }
            | AgentEvent::Denied { agent, .. }
            | AgentEvent::TimerArmed { agent, .. }
            | AgentEvent::TimerSkipped { agent, .. }
            | AgentEvent::RunEnded { agent, .. } => Some(agent),
            AgentEvent::Cursor { .. } => None,
        }
    }

    /// The name `orca journal export` shows as `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AgentEvent::Created { .. } => "AgentCreated",
            AgentEvent::Updated { .. } => "AgentUpdated",
            AgentEvent::Paused { .. } => "AgentPaused",
            AgentEvent::Resumed { .. } => "AgentResumed",
            AgentEvent::Retired { .. } => "AgentRetired",
            AgentEvent::Escalated { .. } => "AgentEscalated",
            AgentEvent::Woke { .. } => "AgentWoke",
            AgentEvent::WakeDropped { .. } => "AgentWakeDropped",
            AgentEvent::WakeStarted { .. } => "AgentWakeStarted",
            AgentEvent::Intended { .. } => "AgentIntended",
            AgentEvent::Refused { .. } => "AgentRefused",
            AgentEvent::Done { .. } => "AgentDone",
            AgentEvent::WakeDone { .. } => "AgentWakeDone",
            AgentEvent::ApprovalRequested { .. } => "AgentApprovalRequested",
            AgentEvent::Approved { .. } => "AgentApproved",
            AgentEvent::Denied { .. } => "AgentDenied",
            AgentEvent::TimerArmed { .. } => "AgentTimerArmed",
            AgentEvent::TimerSkipped { .. } => "AgentTimerSkipped",
            AgentEvent::RunEnded { .. } => "AgentRunEnded",
            AgentEvent::Cursor { .. } => "AgentCursor",
        }
    }

    /// The variant a type name (`AgentWoke`) stands for, for importing
    /// exports.
    pub fn is_type_name(name: &str) -> bool {
        name.starts_with("Agent")
    }
}

/// The intent of route `route` for wake `wake`.
pub fn intent_id(wake: &str, route: usize) -> String {
    format!("{wake}/{route}")
}

/// The run an intent starts: `r-<time>-<8 hex of the intent>`, the same
/// every time the intent is redone.
pub fn run_id_of(agent: &str, intent: &str, at: Timestamp) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{agent}\0{intent}").as_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("r-{}-{hex}", at.to_datetime().format("%y%m%d%H%M%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_stable_per_intent() {
        let t = Timestamp(1_800_000_000_000_000_000);
        let a = run_id_of("watch", "failures:42/0", t);
        assert_eq!(a, run_id_of("watch", "failures:42/0", t));
        assert_ne!(a, run_id_of("watch", "failures:43/0", t));
        assert!(a.starts_with("r-") && a.len() == 2 + 12 + 1 + 8, "{a}");
    }

    #[test]
    fn survive_bincode() {
        let e = AgentEvent::Intended {
            agent: "watch".into(),
            intent: "failures:42/0".into(),
            wake: "failures:42".into(),
            route: 0,
            action: IntentAction::StartRun {
                run: "r-1".into(),
                spec: "specs/fix.toml".into(),
                spec_text: "[[tasks]]\nid = \"fix\"\n".into(),
                event_json: "{}".into(),
            },
        };
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&e, cfg).unwrap();
        let (back, _): (AgentEvent, usize) =
            bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
        assert_eq!(back, e);
    }
}
