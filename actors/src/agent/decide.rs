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
    commitment_wake, timer_wake, AgentState, IntentStatus, MAX_INBOX, WAKE_BUDGET_REQUEST,
};
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
            x.emit(AgentEvent::Approved { agent, request, by });
            if let Some(intent) = a.intent {
                redo(&mut x, &intent);
            }
        }
        AgentCommand::Deny { request, by } => {
            if !x.s.approvals.contains_key(&request) {
                return Err(AgentError::NoApproval { agent, request });
            }
            x.emit(AgentEvent::Denied { agent, request, by });
        }
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
    if let IntentAction::StartRun {
        run,
        spec,
        spec_text,
        event_json,
    } = &rec.action
    {
        x.d.effects.push(AgentEffect::StartRun {
            intent: intent.to_string(),
            run: run.clone(),
            spec: spec.clone(),
            spec_text: spec_text.clone(),
            event_json: event_json.clone(),
        });
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
                )
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
    match action {
        IntentAction::StartRun { .. } => redo(x, &intent),
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
            if x.spec.trust() == AgentTrust::Untrusted {
                return Err("an untrusted agent may not start runs (trust_level)".into());
            }
            let rel = route.spec.clone().unwrap_or_default();
            let spec_path = join_rel(&x.s.dir, &rel)
                .ok_or_else(|| format!("the run spec {rel:?} leads outside the workspace"))?;
            let inside = x
                .spec
                .effective_workspaces()
                .iter()
                .any(|w| within(&spec_path, w));
            if !inside {
                return Err(format!(
                    "the run spec {spec_path} is outside the agent's workspaces ({})",
                    x.spec.effective_workspaces().join(", ")
                ));
            }
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
    }
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
