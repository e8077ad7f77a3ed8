//! An agent's decisions as one pure function: `(state, spec, command, now)
//! → (events, effects, answer)`. The actor journals the events (folded into
//! its state at once), and carries out the effects — arming timers,
//! starting runs — only once they are durable.
//!
//! A decision runs on a scratch copy of the state, applying each event as
//! it emits it, so one command can take a wake, route it and decide its
//! actions in one batch, exactly as the fold will see them.
//!
//! Busy: a wake is *busy* for a route when the agent is still handling
//! another wake, or a run that route started is still running. Then the
//! route's `busy` policy applies: `queue` (it waits in the inbox), `drop`
//! (journaled and dropped) or `interrupt` (those runs are stopped and the
//! wake goes first).

use std::collections::BTreeMap;

use serde_json::Value;

use super::events::{intent_id, run_id_of, AgentEvent, IntentAction, IntentOutcome};
use super::spec::{ActionKind, AgentSpec, AgentTrust, Busy, Route, SubscriptionKind};
use super::state::{
    commitment_wake, timer_wake, AgentState, IntentRecord, IntentStatus, MAX_INBOX,
    WAKE_BUDGET_REQUEST,
};
use super::think::{parse_due, think_spec, ToolCall};
use super::timer::{rearm, TimerRule};
use crate::alert::{AlertRaised, AlertSource};
use crate::journal::Event;
use crate::model::{AlertClass, RunStatus, Surface, Timestamp};

/// Bytes of an event kept in a wake (the rest is cut).
pub const MAX_EVENT_JSON: usize = 64 * 1024;

/// What the agent is asked to decide about.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentCommand {
    /// The agent (re)started: arm its timers (catching up or skipping what
    /// fell while orca was down), re-arm commitments, redo intents that
    /// were journaled but not carried out, take the next wake.
    Boot,
    /// An event for `source` (a subscription id, or `inbox` for
    /// `orca agent tell`) with its own id (a fleet seq, a webhook-id…).
    Event {
        source: String,
        event_id: String,
        event_json: String,
    },
    /// A timer's deadline came.
    TimerDue {
        subscription: String,
        due: Timestamp,
    },
    /// A commitment came due.
    CommitmentDue {
        commitment: String,
    },
    /// An effect came back.
    Carried {
        intent: String,
        outcome: IntentOutcome,
    },
    /// A run the agent started ended.
    RunEnded {
        run: String,
        status: RunStatus,
    },
    /// The wake rate may allow more now.
    Retry,
    Pause {
        by: Surface,
    },
    Resume {
        by: Surface,
    },
    Retire {
        by: Surface,
    },
    Approve {
        request: String,
        by: Surface,
    },
    Deny {
        request: String,
        by: Surface,
    },
    /// A tool call from the runtime of think run `run` (an attempt holding
    /// that run's token): one intent of the wake the run thinks about,
    /// keyed by the call, so a call repeated after a crash is answered from
    /// the journal and not carried out again.
    Tool {
        run: String,
        call: ToolCall,
    },
}

/// Something to do once the decision is durable.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentEffect {
    ArmTimer {
        subscription: String,
        at: Timestamp,
    },
    ArmCommitment {
        commitment: String,
        at: Timestamp,
    },
    /// Try the inbox again at `at` (the wake rate was full).
    ArmRetry {
        at: Timestamp,
    },
    /// Submit run `run` (its id fixed by the intent) from `spec_text`.
    StartRun {
        intent: String,
        run: String,
        spec: String,
        spec_text: String,
        event_json: String,
    },
    /// Stop these runs (a `busy = "interrupt"` wake).
    StopRuns {
        runs: Vec<String>,
    },
    /// The agent retired: stop the actor.
    Stop,
}

/// What the caller hears.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum AgentAnswer {
    #[default]
    Done,
    /// The wake was journaled.
    Accepted { wake: String },
    /// A wake with that id was seen already: nothing more happens.
    Duplicate { wake: String },
    /// A tool call was journaled as `intent` (`repeated`: it had been
    /// before, and was not carried out again); `result` is what the model
    /// reads.
    Tool {
        intent: String,
        repeated: bool,
        result: Value,
    },
    /// A tool call was refused (and the refusal journaled).
    Refused { intent: String, reason: String },
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    #[error("agent {agent} is retired")]
    Retired { agent: String },
    #[error("agent {agent} has no subscription {subscription:?}")]
    NoSubscription { agent: String, subscription: String },
    #[error("agent {agent} has no pending approval {request:?}")]
    NoApproval { agent: String, request: String },
    #[error("run {run} is not a think run of agent {agent}'s current wake")]
    NotThinking { agent: String, run: String },
}

/// A decision.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentDecision {
    pub events: Vec<Event>,
    pub effects: Vec<AgentEffect>,
    pub answer: AgentAnswer,
}

struct Scratch<'a> {
    s: AgentState,
    spec: &'a AgentSpec,
    now: Timestamp,
    d: AgentDecision,
}

impl Scratch<'_> {
    fn emit(&mut self, e: AgentEvent) {
        self.s.apply(self.now, &e);
        self.d.events.push(Event::Agent(e));
    }

    fn id(&self) -> String {
        self.s.id.clone()
    }
}

/// Whether an agent whose boot decided `d` can be a passive row — its state
/// in the `agents` view, no actor, no mailbox, no timer task — until one of
/// its deadlines comes or something wakes it (docs/agents.md, "Passive
/// rows"): the decision journals only timer bookkeeping and only arms
/// deadlines; no wake is taken, no run started or stopped.
pub fn stays_passive(d: &AgentDecision) -> bool {
    d.events.iter().all(|e| {
        matches!(
            e,
            Event::Agent(AgentEvent::TimerArmed { .. } | AgentEvent::TimerSkipped { .. })
        )
    }) && d.effects.iter().all(|e| {
        matches!(
            e,
            AgentEffect::ArmTimer { .. }
                | AgentEffect::ArmCommitment { .. }
                | AgentEffect::ArmRetry { .. }
        )
    })
}

/// Whether an agent is at rest — no wake being handled, none waiting in
/// its inbox, not retired —, so its actor may stop and its row go passive:
/// what comes next for it is a deadline ([`armed_deadlines`]) or something
/// its supervisor hands it (an event, a run's end, a command).
pub fn at_rest(state: &AgentState) -> bool {
    !state.retired && state.current.is_none() && state.inbox.is_empty()
}

/// The deadlines its state holds armed: each timer's tick not taken yet,
/// each commitment not fired yet (a passive row waits for the earliest;
/// its actor arms them all when woken).
pub fn armed_deadlines(state: &AgentState, spec: &AgentSpec) -> Vec<AgentEffect> {
    let mut arms: Vec<AgentEffect> = spec
        .subscriptions
        .iter()
        .filter(|s| s.kind == SubscriptionKind::Timer)
        .filter_map(|s| {
            let t = state.timers.get(&s.id).filter(|t| !t.fired)?;
            Some(AgentEffect::ArmTimer {
                subscription: s.id.clone(),
                at: t.due,
            })
        })
        .collect();
    arms.extend(state.commitments.values().filter(|c| !c.fired).map(|c| {
        AgentEffect::ArmCommitment {
            commitment: c.id.clone(),
            at: c.due,
        }
    }));
    arms
}

/// The earliest deadline these effects arm (a passive row's place in the
/// `agents` supervisor's one timer).
pub fn next_deadline(effects: &[AgentEffect]) -> Option<Timestamp> {
    effects
        .iter()
        .filter_map(|e| match e {
            AgentEffect::ArmTimer { at, .. }
            | AgentEffect::ArmCommitment { at, .. }
            | AgentEffect::ArmRetry { at } => Some(*at),
            AgentEffect::StartRun { .. } | AgentEffect::StopRuns { .. } | AgentEffect::Stop => None,
        })
        .min()
}

/// Decides `cmd` for the agent whose state is `state` and spec `spec`.
pub fn decide(
    state: &AgentState,
    spec: &AgentSpec,
    cmd: AgentCommand,
    now: Timestamp,
) -> Result<AgentDecision, AgentError> {
    let mut x = Scratch {
        s: state.clone(),
        spec,
        now,
        d: AgentDecision::default(),
    };
    let agent = x.id();
    if x.s.retired && !matches!(cmd, AgentCommand::Boot | AgentCommand::RunEnded { .. }) {
        return Err(AgentError::Retired { agent });
    }
    match cmd {
        AgentCommand::Boot => boot(&mut x),
        AgentCommand::Event {
            source,
            event_id,
            event_json,
        } => {
            if source != "inbox" && spec.subscription(&source).is_none() {
                return Err(AgentError::NoSubscription {
                    agent,
                    subscription: source,
                });
            }
            let wake = format!("{source}:{event_id}");
            arrive(&mut x, wake, source, event_json);
        }
        AgentCommand::TimerDue { subscription, due } => {
            let armed = x.s.timers.get(&subscription).cloned();
            if let Some(t) = armed.filter(|t| t.due == due && !t.fired) {
                let rule = spec.subscription(&subscription).and_then(TimerRule::of);
                let event = serde_json::json!({
                    "event": "timer",
                    "subscription": subscription,
                    "due": due.rfc3339(),
                });
                arrive(
                    &mut x,
                    timer_wake(&subscription, due),
                    subscription.clone(),
                    event.to_string(),
                );
                if let Some(next) = rule.and_then(|r| r.next_after(t.anchor, now.max(due))) {
                    x.emit(AgentEvent::TimerArmed {
                        agent: agent.clone(),
                        subscription: subscription.clone(),
                        due: next,
                        anchor: t.anchor,
                    });
                    x.d.effects.push(AgentEffect::ArmTimer {
                        subscription,
                        at: next,
                    });
                }
            }
        }
        AgentCommand::CommitmentDue { commitment } => {
            if let Some(c) = x.s.commitments.get(&commitment).cloned() {
                if !c.fired {
                    let event = serde_json::json!({
                        "event": "commitment",
                        "commitment": c.id,
                        "due": c.due.rfc3339(),
                        "text": c.text,
                    });
                    arrive(
                        &mut x,
                        commitment_wake(&c.id),
                        "commitment".into(),
                        event.to_string(),
                    );
                }
            }
        }
        AgentCommand::Carried { intent, outcome } => {
            let pending =
                x.s.intents
                    .get(&intent)
                    .is_some_and(|i| i.status == IntentStatus::Pending);
            if pending {
                x.emit(AgentEvent::Done {
                    agent,
                    intent,
                    outcome,
                });
            }
        }
        AgentCommand::RunEnded { run, status } => {
            if x.s.runs.get(&run).is_some_and(|r| r.status.is_none()) {
                x.emit(AgentEvent::RunEnded { agent, run, status });
            }
        }
        AgentCommand::Retry => {}
        AgentCommand::Pause { by } => {
            if !x.s.paused {
                x.emit(AgentEvent::Paused { agent, by });
            }
        }
        AgentCommand::Resume { by } => {
            if x.s.paused || x.s.escalated.is_some() {
                x.emit(AgentEvent::Resumed { agent, by });
            }
        }
        AgentCommand::Retire { by } => {
            x.emit(AgentEvent::Retired { agent, by });
            x.d.effects.push(AgentEffect::Stop);
            return Ok(x.d);
        }
        AgentCommand::Approve { request, by } => {
            let Some(a) = x.s.approvals.get(&request).cloned() else {
                return Err(AgentError::NoApproval { agent, request });
            };
            x.emit(AgentEvent::Approved {
                agent,
                request: request.clone(),
                by,
            });
            match a.intent {
                Some(intent) => redo(&mut x, &intent),
                None => answered(&mut x, &request, &a.what, "approved"),
            }
        }
        AgentCommand::Deny { request, by } => {
            let Some(a) = x.s.approvals.get(&request).cloned() else {
                return Err(AgentError::NoApproval { agent, request });
            };
            x.emit(AgentEvent::Denied {
                agent,
                request: request.clone(),
                by,
            });
            if a.intent.is_none() {
                answered(&mut x, &request, &a.what, "denied");
            }
        }
        AgentCommand::Tool { run, call } => tool(&mut x, &run, call)?,
    }
    pump(&mut x);
    Ok(x.d)
}

/// Timers, commitments and pending intents at start.
fn boot(x: &mut Scratch<'_>) {
    let agent = x.id();
    if x.s.retired {
        return;
    }
    let now = x.now;
    for sub in x
        .spec
        .subscriptions
        .iter()
        .filter(|s| s.kind == SubscriptionKind::Timer)
    {
        let Some(rule) = TimerRule::of(sub) else {
            continue;
        };
        let state = x.s.timers.get(&sub.id).cloned();
        let anchor = state.as_ref().map(|t| t.anchor).unwrap_or(now);
        let r = rearm(
            &rule,
            anchor,
            state.as_ref().map(|t| t.due),
            state.as_ref().is_some_and(|t| t.fired),
            sub.missed.unwrap_or_default(),
            now,
        );
        if let Some(tick) = r.catch_up {
            let event = serde_json::json!({
                "event": "timer",
                "subscription": sub.id,
                "due": tick.rfc3339(),
                "caught_up": true,
            });
            arrive(
                x,
                timer_wake(&sub.id, tick),
                sub.id.clone(),
                event.to_string(),
            );
        }
        if r.skipped {
            x.emit(AgentEvent::TimerSkipped {
                agent: agent.clone(),
                subscription: sub.id.clone(),
                until: now,
            });
        }
        if let Some(next) = r.next {
            let same = state.as_ref().is_some_and(|t| t.due == next && !t.fired);
            if !same {
                x.emit(AgentEvent::TimerArmed {
                    agent: agent.clone(),
                    subscription: sub.id.clone(),
                    due: next,
                    anchor,
                });
            }
            x.d.effects.push(AgentEffect::ArmTimer {
                subscription: sub.id.clone(),
                at: next,
            });
        }
    }
    let commitments: Vec<(String, Timestamp)> =
        x.s.commitments
            .values()
            .filter(|c| !c.fired)
            .map(|c| (c.id.clone(), c.due))
            .collect();
    for (commitment, at) in commitments {
        x.d.effects
            .push(AgentEffect::ArmCommitment { commitment, at });
    }
    // Intents journaled but not carried out (orca died in between): done
    // now, once — a run keeps the id its intent fixed.
    let pending: Vec<String> =
        x.s.intents
            .values()
            .filter(|i| i.status == IntentStatus::Pending)
            .map(|i| i.intent.clone())
            .collect();
    for intent in pending {
        redo(x, &intent);
    }
}

/// The effect of a journaled intent that is pending.
fn redo(x: &mut Scratch<'_>, intent: &str) {
    let Some(rec) = x.s.intents.get(intent) else {
        return;
    };
    match &rec.action {
        IntentAction::StartRun {
            run,
            spec,
            spec_text,
            event_json,
        } => x.d.effects.push(AgentEffect::StartRun {
            intent: intent.to_string(),
            run: run.clone(),
            spec: spec.clone(),
            spec_text: spec_text.clone(),
            event_json: event_json.clone(),
        }),
        IntentAction::Think {
            run,
            spec_text,
            event_json,
        } => x.d.effects.push(AgentEffect::StartRun {
            intent: intent.to_string(),
            run: run.clone(),
            spec: "think".into(),
            spec_text: spec_text.clone(),
            event_json: event_json.clone(),
        }),
        IntentAction::Alert { .. }
        | IntentAction::Remember { .. }
        | IntentAction::Note { .. }
        | IntentAction::Complete { .. }
        | IntentAction::AskHuman { .. }
        | IntentAction::StopRun { .. } => {}
    }
}

/// An operator answered question `request` (an `ask_human`): the answer
/// wakes the agent (`on = "approval"`).
fn answered(x: &mut Scratch<'_>, request: &str, question: &str, answer: &str) {
    let event = serde_json::json!({
        "event": "approval",
        "request": request,
        "question": question,
        "answer": answer,
    });
    arrive(
        x,
        format!("approval:{request}"),
        "approval".into(),
        event.to_string(),
    );
}

/// Whether intent `i` is a think whose run is still running (its wake
/// stays open until the run ends).
fn thinking(s: &AgentState, i: &IntentRecord) -> bool {
    match (&i.action, &i.status) {
        (IntentAction::Think { .. }, IntentStatus::Done(IntentOutcome::RunStarted { run })) => {
            s.runs.get(run).is_some_and(|r| r.status.is_none())
        }
        _ => false,
    }
}

/// The wake think run `run` belongs to, when it is the current wake and
/// the run has not ended.
fn think_wake(s: &AgentState, run: &str) -> Option<String> {
    let r = s.runs.get(run).filter(|r| r.status.is_none())?;
    let rec = s.intents.get(&r.intent)?;
    if !matches!(rec.action, IntentAction::Think { .. }) {
        return None;
    }
    let current = s.current.as_ref()?;
    (current.wake == rec.wake).then(|| rec.wake.clone())
}

/// What a tool call's intent answers the model.
fn tool_result(rec: &IntentRecord) -> Value {
    let mut v = serde_json::json!({"intent": rec.intent, "action": rec.action.kind()});
    match &rec.action {
        IntentAction::StartRun { run, .. } => v["run"] = Value::String(run.clone()),
        IntentAction::Remember {
            commitment, due, ..
        } => {
            v["commitment"] = Value::String(commitment.clone());
            v["due"] = Value::String(due.rfc3339());
        }
        IntentAction::StopRun { run } => v["run"] = Value::String(run.clone()),
        _ => {}
    }
    match &rec.status {
        IntentStatus::Pending => v["status"] = "pending".into(),
        IntentStatus::AwaitingApproval(r) => {
            v["status"] = "awaiting_approval".into();
            v["request"] = Value::String(r.clone());
        }
        IntentStatus::Done(o) => {
            v["status"] = "done".into();
            match o {
                IntentOutcome::AlertRaised { alert } => v["alert"] = Value::String(alert.clone()),
                IntentOutcome::Asked { request, alert } => {
                    v["request"] = Value::String(request.clone());
                    v["alert"] = Value::String(alert.clone());
                }
                IntentOutcome::Failed { error } => {
                    v["status"] = "failed".into();
                    v["error"] = Value::String(error.clone());
                }
                _ => {}
            }
        }
        IntentStatus::Refused(why) => {
            v["status"] = "refused".into();
            v["error"] = Value::String(why.clone());
        }
    }
    v
}

/// A tool call of think run `run`: checked, journaled as an intent of its
/// wake, carried out; a repeat answered from the journal.
fn tool(x: &mut Scratch<'_>, run: &str, call: ToolCall) -> Result<(), AgentError> {
    let agent = x.id();
    let Some(wake) = think_wake(&x.s, run) else {
        return Err(AgentError::NotThinking {
            agent,
            run: run.to_string(),
        });
    };
    let intent = format!("{wake}/tool:{}", call.key());
    if let Some(rec) = x.s.intents.get(&intent) {
        x.d.answer = match &rec.status {
            IntentStatus::Refused(reason) => AgentAnswer::Refused {
                intent,
                reason: reason.clone(),
            },
            _ => AgentAnswer::Tool {
                intent,
                repeated: true,
                result: tool_result(rec),
            },
        };
        return Ok(());
    }
    let action = match plan_tool(x, run, &call) {
        Ok(a) => a,
        Err(reason) => {
            x.emit(AgentEvent::Refused {
                agent,
                intent: intent.clone(),
                wake,
                reason: format!("{}: {reason}", call.name()),
            });
            x.d.answer = AgentAnswer::Refused {
                intent,
                reason: format!("{}: {reason}", call.name()),
            };
            return Ok(());
        }
    };
    x.emit(AgentEvent::Intended {
        agent: agent.clone(),
        intent: intent.clone(),
        wake,
        route: TOOL_ROUTE,
        action: action.clone(),
    });
    let needs_approval =
        matches!(action, IntentAction::StartRun { .. }) && x.spec.trust() == AgentTrust::Restricted;
    if needs_approval {
        x.emit(AgentEvent::ApprovalRequested {
            agent,
            request: intent.clone(),
            intent: Some(intent.clone()),
            what: describe(&action),
        });
    } else {
        carry(x, &intent, action);
    }
    if let Some(rec) = x.s.intents.get(&intent) {
        x.d.answer = AgentAnswer::Tool {
            intent: intent.clone(),
            repeated: false,
            result: tool_result(rec),
        };
    }
    Ok(())
}

/// The `route` of an intent a tool call made.
pub const TOOL_ROUTE: u32 = u32::MAX;

/// What a tool call does, or why the agent may not.
fn plan_tool(x: &Scratch<'_>, think_run: &str, call: &ToolCall) -> Result<IntentAction, String> {
    match call {
        ToolCall::Commit { what, due } => Ok(IntentAction::Remember {
            commitment: call.key(),
            due: parse_due(due, x.now)?,
            text: what.clone(),
        }),
        ToolCall::Complete { commitment } => {
            if !x.s.commitments.contains_key(commitment) {
                let yours: Vec<&str> = x.s.commitments.keys().map(String::as_str).collect();
                return Err(format!(
                    "no commitment {commitment:?} (yours: {})",
                    if yours.is_empty() {
                        "none".into()
                    } else {
                        yours.join(", ")
                    }
                ));
            }
            Ok(IntentAction::Complete {
                commitment: commitment.clone(),
            })
        }
        ToolCall::Note { text } => Ok(IntentAction::Note { text: text.clone() }),
        ToolCall::RaiseAlert { class, reason } => Ok(IntentAction::Alert {
            class: *class,
            reason: reason.clone(),
        }),
        ToolCall::AskHuman { question } => Ok(IntentAction::AskHuman {
            question: question.clone(),
        }),
        ToolCall::StartRun {
            spec_path,
            spec,
            spec_text,
        } => {
            let others =
                x.s.runs
                    .values()
                    .filter(|r| r.status.is_none() && r.run != think_run)
                    .count();
            if let Some(max) = x.spec.policy().max_concurrent_runs {
                if others as u64 >= u64::from(max) {
                    return Err(format!(
                        "policy.max_concurrent_runs ({max}) reached: {others} of the agent's runs are running"
                    ));
                }
            }
            let (path, text) = match (spec_path, spec) {
                (Some(p), _) => {
                    let norm = may_start(x, "", p)?;
                    let text = spec_text
                        .clone()
                        .ok_or_else(|| format!("the run spec {norm} could not be read"))?;
                    (norm, text)
                }
                (None, Some(inline)) => {
                    // An inline spec has no place of its own: only an
                    // agent whose workspaces are the whole workspace.
                    may_start(x, "", ".").map_err(|_| {
                        "an inline spec needs an agent whose workspaces are the whole workspace (or trust to start runs): give spec_path".to_string()
                    })?;
                    ("inline.toml".to_string(), inline.clone())
                }
                (None, None) => return Err("give spec_path or spec".into()),
            };
            let spec_json = substitute_spec(&text, &path, &Value::Null, &BTreeMap::new())?;
            let intent_seed = format!("{think_run}/{}", call.key());
            Ok(IntentAction::StartRun {
                run: run_id_of(&x.s.id, &intent_seed, x.now),
                spec: path,
                spec_text: spec_json,
                event_json: x
                    .s
                    .current
                    .as_ref()
                    .map(|c| c.event_json.clone())
                    .unwrap_or_else(|| "null".into()),
            })
        }
        ToolCall::StopRun { run } => {
            let mine: Vec<&String> =
                x.s.runs
                    .keys()
                    .filter(|r| *r == run || r.starts_with(run.as_str()))
                    .collect();
            match mine.as_slice() {
                [one] if one.as_str() != think_run => Ok(IntentAction::StopRun {
                    run: (*one).clone(),
                }),
                [_] => Err("a think run cannot stop itself: end your turn instead".into()),
                [] => Err(format!(
                    "run {run:?} was not started by agent {}: an agent may stop only its own runs",
                    x.s.id
                )),
                _ => Err(format!("{run:?} names more than one of the agent's runs")),
            }
        }
    }
}

/// A wake arrives: deduplicated by id, journaled, and queued, dropped or
/// put first by its route's busy policy.
fn arrive(x: &mut Scratch<'_>, wake: String, source: String, event_json: String) {
    let agent = x.id();
    if x.s.has_seen(&wake) {
        x.d.answer = AgentAnswer::Duplicate { wake };
        return;
    }
    let event_json = bounded_json(event_json);
    if x.s.inbox.len() >= MAX_INBOX {
        if let Some(oldest) = x.s.inbox.front().map(|i| i.wake.clone()) {
            x.emit(AgentEvent::WakeDropped {
                agent: agent.clone(),
                wake: oldest,
                why: format!("the inbox was full ({MAX_INBOX} wakes): the oldest was dropped"),
            });
        }
    }
    x.emit(AgentEvent::Woke {
        agent: agent.clone(),
        wake: wake.clone(),
        source: source.clone(),
        event_json: event_json.clone(),
    });
    x.d.answer = AgentAnswer::Accepted { wake: wake.clone() };
    let event: Value = serde_json::from_str(&event_json).unwrap_or(Value::Null);
    let route = x
        .spec
        .routes_on(&source)
        .find(|(_, r)| route_matches(r, &event));
    let Some((idx, route)) = route else { return };
    let busy_runs = runs_of_route(&x.s, idx);
    let busy = x.s.current.is_some() || !busy_runs.is_empty();
    if !busy {
        return;
    }
    match route.busy {
        Busy::Queue => {}
        Busy::Drop => x.emit(AgentEvent::WakeDropped {
            agent,
            wake,
            why: "busy (route busy = \"drop\")".into(),
        }),
        Busy::Interrupt => {
            if !busy_runs.is_empty() {
                x.d.effects.push(AgentEffect::StopRuns { runs: busy_runs });
            }
        }
    }
}

/// Runs started by route `idx` that are still running.
fn runs_of_route(s: &AgentState, idx: usize) -> Vec<String> {
    let suffix = format!("/{idx}");
    s.runs
        .values()
        .filter(|r| r.status.is_none() && r.intent.ends_with(&suffix))
        .map(|r| r.run.clone())
        .collect()
}

/// Takes wakes from the inbox while the agent may: one handler at a time,
/// within its wake rate, budget and concurrency.
fn pump(x: &mut Scratch<'_>) {
    let agent = x.id();
    let policy = x.spec.policy();
    for _ in 0..(MAX_INBOX + 2) {
        if x.s.retired || x.s.paused || x.s.escalated.is_some() {
            return;
        }
        if let Some(cur) = x.s.current.clone() {
            let open = x.s.current_intents().any(|i| {
                matches!(
                    i.status,
                    IntentStatus::Pending | IntentStatus::AwaitingApproval(_)
                ) || thinking(&x.s, i)
            });
            if open {
                return;
            }
            x.emit(AgentEvent::WakeDone {
                agent: agent.clone(),
                wake: cur.wake,
            });
            continue;
        }
        let Some(item) = x.s.inbox.front().cloned() else {
            return;
        };
        // The wake rate.
        if let Some(max) = policy.max_wakes_per_hour {
            let hour_ago = x.now.minus_millis(3_600_000);
            let recent: Vec<Timestamp> =
                x.s.recent_wakes
                    .iter()
                    .copied()
                    .filter(|t| *t > hour_ago)
                    .collect();
            if recent.len() as u64 >= u64::from(max) {
                if let Some(oldest) = recent.first() {
                    x.d.effects.push(AgentEffect::ArmRetry {
                        at: oldest.plus_millis(3_600_000),
                    });
                }
                return;
            }
        }
        // The wake budget: past it, an operator decides.
        if let Some(budget) = policy.wake_budget {
            if x.s.wakes_taken.saturating_sub(x.s.budget_granted) >= budget {
                if !x.s.approvals.contains_key(WAKE_BUDGET_REQUEST) {
                    x.emit(AgentEvent::ApprovalRequested {
                        agent: agent.clone(),
                        request: WAKE_BUDGET_REQUEST.into(),
                        intent: None,
                        what: format!(
                            "{} wakes taken, the wake_budget; approve to allow {budget} more",
                            x.s.wakes_taken
                        ),
                    });
                }
                return;
            }
        }
        let event: Value = serde_json::from_str(&item.event_json).unwrap_or(Value::Null);
        let routes: Vec<(usize, Route)> = x
            .spec
            .routes_on(&item.source)
            .filter(|(_, r)| route_matches(r, &event))
            .map(|(i, r)| (i, r.clone()))
            .collect();
        // Concurrency: a start_run waits while the agent's runs are at
        // `max_concurrent_runs` (their end comes back and pumps again).
        let starts = routes.iter().any(|(_, r)| r.action == ActionKind::StartRun);
        if let Some(max) = policy.max_concurrent_runs {
            if starts && x.s.running_runs() as u64 >= u64::from(max) {
                return;
            }
        }
        x.emit(AgentEvent::WakeStarted {
            agent: agent.clone(),
            wake: item.wake.clone(),
        });
        for (idx, route) in routes {
            act(x, &item.wake, idx, &route, &event);
        }
    }
}

/// One route's action for a wake: checked against the agent's workspaces,
/// trust and policy, journaled as an intent, then carried out (at once when
/// it is only journaling; an effect when it starts a run).
fn act(x: &mut Scratch<'_>, wake: &str, idx: usize, route: &Route, event: &Value) {
    let agent = x.id();
    let intent = intent_id(wake, idx);
    if x.s.intents.contains_key(&intent) {
        return;
    }
    let action = match plan(x, &intent, route, event) {
        Ok(a) => a,
        Err(reason) => {
            x.emit(AgentEvent::Refused {
                agent,
                intent,
                wake: wake.to_string(),
                reason,
            });
            return;
        }
    };
    x.emit(AgentEvent::Intended {
        agent: agent.clone(),
        intent: intent.clone(),
        wake: wake.to_string(),
        route: idx as u32,
        action: action.clone(),
    });
    let needs_approval = route.approve
        || (matches!(action, IntentAction::StartRun { .. })
            && x.spec.trust() == AgentTrust::Restricted);
    if needs_approval {
        x.emit(AgentEvent::ApprovalRequested {
            agent,
            request: intent.clone(),
            intent: Some(intent.clone()),
            what: describe(&action),
        });
        return;
    }
    carry(x, &intent, action);
}

/// Carries out a journaled intent: at once when it only journals, an
/// effect when it starts or stops a run.
fn carry(x: &mut Scratch<'_>, intent: &str, action: IntentAction) {
    let agent = x.id();
    let intent = intent.to_string();
    match action {
        IntentAction::StartRun { .. } | IntentAction::Think { .. } => redo(x, &intent),
        IntentAction::Complete { .. } => x.emit(AgentEvent::Done {
            agent,
            intent,
            outcome: IntentOutcome::Completed,
        }),
        IntentAction::AskHuman { question } => {
            let raised = AlertRaised::new(
                AlertClass::NeedsHuman,
                AlertSource::agent(&agent),
                None,
                None,
                None,
                format!(
                    "agent {agent} asks: {question} (orca agent approve|deny {agent} {intent})"
                ),
                x.now,
            );
            let alert = raised.id.clone();
            x.d.events.push(raised.event());
            x.emit(AgentEvent::ApprovalRequested {
                agent: agent.clone(),
                request: intent.clone(),
                intent: None,
                what: question,
            });
            x.emit(AgentEvent::Done {
                agent,
                intent: intent.clone(),
                outcome: IntentOutcome::Asked {
                    request: intent,
                    alert,
                },
            });
        }
        IntentAction::StopRun { run } => {
            x.d.effects.push(AgentEffect::StopRuns { runs: vec![run] });
            x.emit(AgentEvent::Done {
                agent,
                intent,
                outcome: IntentOutcome::Stopped,
            });
        }
        IntentAction::Alert { class, reason } => {
            let raised = AlertRaised::new(
                class,
                AlertSource::agent(&agent),
                None,
                None,
                None,
                reason,
                x.now,
            );
            let alert = raised.id.clone();
            x.d.events.push(raised.event());
            x.emit(AgentEvent::Done {
                agent,
                intent,
                outcome: IntentOutcome::AlertRaised { alert },
            });
        }
        IntentAction::Remember {
            commitment, due, ..
        } => {
            x.emit(AgentEvent::Done {
                agent,
                intent,
                outcome: IntentOutcome::Remembered,
            });
            x.d.effects.push(AgentEffect::ArmCommitment {
                commitment,
                at: due,
            });
        }
        IntentAction::Note { .. } => x.emit(AgentEvent::Done {
            agent,
            intent,
            outcome: IntentOutcome::Noted,
        }),
    }
}

/// Words for an approval request.
fn describe(a: &IntentAction) -> String {
    match a {
        IntentAction::StartRun { run, spec, .. } => format!("start run {run} from {spec}"),
        IntentAction::Alert { class, reason } => format!("raise {class}: {reason}"),
        IntentAction::Remember { text, due, .. } => {
            format!("remember {text:?} until {}", due.rfc3339())
        }
        IntentAction::Note { text } => format!("note {text:?}"),
        IntentAction::Think { run, .. } => format!("think (run {run})"),
        IntentAction::Complete { commitment } => format!("complete commitment {commitment}"),
        IntentAction::AskHuman { question } => format!("ask: {question}"),
        IntentAction::StopRun { run } => format!("stop run {run}"),
    }
}

/// The action a route takes for an event, or why it may not.
fn plan(
    x: &Scratch<'_>,
    intent: &str,
    route: &Route,
    event: &Value,
) -> Result<IntentAction, String> {
    let text = route
        .text
        .as_deref()
        .map(|t| substitute(t, event, &BTreeMap::new()))
        .unwrap_or_default();
    match route.action {
        ActionKind::StartRun => {
            let rel = route.spec.clone().unwrap_or_default();
            let spec_path = may_start(x, &x.s.dir, &rel)?;
            let text = x
                .s
                .run_specs
                .get(&spec_path)
                .ok_or_else(|| format!("the run spec {spec_path} was not captured when the agent was created or updated"))?;
            let vars: BTreeMap<String, String> = route
                .vars
                .iter()
                .map(|(k, v)| (k.clone(), substitute(v, event, &BTreeMap::new())))
                .collect();
            let spec_text = substitute_spec(text, &spec_path, event, &vars)?;
            Ok(IntentAction::StartRun {
                run: run_id_of(&x.s.id, intent, x.now),
                spec: spec_path,
                spec_text,
                event_json: event.to_string(),
            })
        }
        ActionKind::Alert => Ok(IntentAction::Alert {
            class: route.class.unwrap_or(AlertClass::NeedsHuman),
            reason: if text.is_empty() {
                format!("agent {} was woken", x.s.id)
            } else {
                text
            },
        }),
        ActionKind::Remember => Ok(IntentAction::Remember {
            commitment: intent.replace('/', "-"),
            due: x
                .now
                .plus_millis(route.after.map(|a| a.millis()).unwrap_or(0)),
            text,
        }),
        ActionKind::Note => Ok(IntentAction::Note { text }),
        ActionKind::Think => {
            let current = x.s.current.as_ref();
            let wake = current.map(|c| c.wake.as_str()).unwrap_or_default();
            let source = current.map(|c| c.source.as_str()).unwrap_or_default();
            let spec_text = think_spec(&x.s, x.spec, route, wake, source, &event.to_string())?;
            Ok(IntentAction::Think {
                run: run_id_of(&x.s.id, intent, x.now),
                spec_text,
                event_json: event.to_string(),
            })
        }
    }
}

/// Whether the agent may start a run from the spec at `dir/rel`: its trust
/// allows runs and the spec is inside its workspaces. Answers the spec's
/// workspace-relative path.
fn may_start(x: &Scratch<'_>, dir: &str, rel: &str) -> Result<String, String> {
    if x.spec.trust() == AgentTrust::Untrusted {
        return Err("an untrusted agent may not start runs (trust_level)".into());
    }
    let path = join_rel(dir, rel)
        .ok_or_else(|| format!("the run spec {rel:?} leads outside the workspace"))?;
    if !x
        .spec
        .effective_workspaces()
        .iter()
        .any(|w| within(&path, w))
    {
        return Err(format!(
            "the run spec {path} is outside the agent's workspaces ({})",
            x.spec.effective_workspaces().join(", ")
        ));
    }
    Ok(path)
}

/// `dir/rel`, normalized, relative to the workspace (`None`: it climbs out).
fn join_rel(dir: &str, rel: &str) -> Option<String> {
    let p = std::path::Path::new(dir).join(rel);
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop()?;
            }
            std::path::Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            _ => return None,
        }
    }
    Some(out.join("/"))
}

/// Whether workspace-relative `path` is under workspace root `root`.
fn within(path: &str, root: &str) -> bool {
    let root = join_rel("", root).unwrap_or_default();
    root.is_empty() || path == root || path.starts_with(&format!("{root}/"))
}

/// Whether a route's filter takes an event.
fn route_matches(r: &Route, event: &Value) -> bool {
    let Some(f) = &r.filter else { return true };
    let name = event.get("event").and_then(Value::as_str).unwrap_or("");
    if !f.events.is_empty() && !f.events.iter().any(|e| e == name) {
        return false;
    }
    super::fleet::matches_fields(event, f.run_name.as_deref(), &f.labels, &f.tags)
}

/// `{{event.a.b}}` and `{{vars.x}}` in `text`, from the event and vars
/// (a missing value becomes empty).
pub fn substitute(text: &str, event: &Value, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = after[..end].trim();
        let value = if let Some(path) = key.strip_prefix("event.") {
            lookup(event, path)
        } else if let Some(name) = key.strip_prefix("vars.") {
            vars.get(name).cloned().unwrap_or_default()
        } else {
            format!("{{{{{key}}}}}")
        };
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn lookup(event: &Value, path: &str) -> String {
    let mut v = event;
    for part in path.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return String::new(),
        }
    }
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The run spec with `{{vars.…}}` / `{{event.…}}` substituted into its
/// parsed string values only — never into a `command` or `args` (shell
/// text, or a program's arguments: the event reaches a process as
/// `$ORCA_EVENT_FILE`) — and written back as JSON.
fn substitute_spec(
    text: &str,
    path: &str,
    event: &Value,
    vars: &BTreeMap<String, String>,
) -> Result<String, String> {
    let format = crate::spec::Format::detect(path, text);
    let doc = crate::spec::Document::parse(text, format)
        .map_err(|d| format!("the run spec {path} does not parse: {}", d.display(path)))?;
    let mut value = doc.value;
    walk(&mut value, None, event, vars);
    serde_json::to_string(&value).map_err(|e| e.to_string())
}

fn walk(v: &mut Value, key: Option<&str>, event: &Value, vars: &BTreeMap<String, String>) {
    match v {
        _ if matches!(key, Some("command" | "args")) => {}
        Value::String(s) => *s = substitute(s, event, vars),
        Value::Array(items) => {
            for i in items {
                walk(i, None, event, vars);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                walk(item, Some(k), event, vars);
            }
        }
        _ => {}
    }
}

/// An event's JSON, bounded (an oversized one keeps a note that it was
/// cut).
fn bounded_json(json: String) -> String {
    if json.len() <= MAX_EVENT_JSON {
        json
    } else {
        serde_json::json!({"truncated": true, "bytes": json.len()}).to_string()
    }
}

#[cfg(test)]
mod tests;
