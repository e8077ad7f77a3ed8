//! Fleet events as agents see them: journal facts turned into named events
//! (`receipt.fail`, `run.escalated`, `alert.stale`, …) with the fields a
//! subscription's filter and a route's `{{event.…}}` read.
//!
//! - `receipt.<result>` is a task's *final* receipt (when the task
//!   finishes; attempts that are retried are not events);
//! - `run.started` at submission; `run.finished` and `run.<status>`
//!   (`passed`, `failed`, `escalated`, `cancelled`) when a run ends;
//! - `alert.<class>` when an alert is raised.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::spec::Subscription;
use crate::alert::{AlertEvent, AlertSource};
use crate::journal::{Envelope, Event};
use crate::model::{AttemptResult, Receipt, RunStatus};

/// What the classifier knows of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Task id → its tags.
    pub tags: HashMap<String, Vec<String>>,
}

impl RunInfo {
    /// From a run's journaled spec.
    pub fn of(name: &str, spec_json: &str) -> RunInfo {
        let spec = crate::spec::from_journal_json(spec_json).ok();
        RunInfo {
            name: name.to_string(),
            labels: spec.as_ref().map(|s| s.labels.clone()).unwrap_or_default(),
            tags: spec
                .map(|s| {
                    s.tasks
                        .into_iter()
                        .filter(|t| !t.tags.is_empty())
                        .map(|t| (t.id, t.tags))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A named fleet event.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetEvent {
    /// Its names (a run's end is `run.finished` and `run.<status>`).
    pub names: Vec<String>,
    /// The journal seq it came from (the wake's event id).
    pub seq: u64,
    /// Its fields, as routes and runs see them.
    pub json: Value,
    /// The run it concerns, if any.
    pub run: Option<String>,
    /// The agent that raised it (an agent's alert).
    pub agent: Option<String>,
}

/// Turns journal envelopes into fleet events; keeps what it needs of runs.
#[derive(Clone, Debug, Default)]
pub struct Classifier {
    pub runs: HashMap<String, RunInfo>,
    /// The latest receipt of each unfinished task (run, task).
    receipts: HashMap<(String, String), Receipt>,
}

impl Classifier {
    /// The fleet event an envelope is, if any.
    pub fn observe(&mut self, env: &Envelope) -> Option<FleetEvent> {
        let at = env.at.rfc3339();
        match &env.event {
            Event::RunSubmitted(s) => {
                let info = RunInfo::of(&s.name, &s.spec_json);
                let ev = FleetEvent {
                    names: vec!["run.started".into()],
                    seq: env.seq,
                    json: json!({
                        "event": "run.started",
                        "seq": env.seq,
                        "at": at,
                        "run": s.run,
                        "run_name": info.name,
                        "labels": info.labels,
                    }),
                    run: Some(s.run.clone()),
                    agent: None,
                };
                self.runs.insert(s.run.clone(), info);
                Some(ev)
            }
            Event::ReceiptRecorded(r) => {
                self.receipts
                    .insert((r.run.clone(), r.task.clone()), r.clone());
                None
            }
            Event::TaskFinished {
                run, task, result, ..
            } => {
                let receipt = self.receipts.remove(&(run.clone(), task.clone()));
                let info = self.runs.get(run).cloned().unwrap_or_default();
                let name = format!("receipt.{}", result_name(*result));
                Some(FleetEvent {
                    names: vec![name.clone()],
                    seq: env.seq,
                    json: json!({
                        "event": name,
                        "seq": env.seq,
                        "at": at,
                        "run": run,
                        "run_name": info.name,
                        "labels": info.labels,
                        "task": task,
                        "tags": info.tags.get(task).cloned().unwrap_or_default(),
                        "result": result_name(*result),
                        "attempt": receipt.as_ref().map(|r| r.attempt),
                        "worker": receipt.as_ref().map(|r| r.worker.clone()),
                        "summary": receipt.as_ref().map(|r| r.summary.clone()),
                        "failure_source": receipt.as_ref().and_then(|r| r.failure_source).map(|s| s.to_string()),
                        "class": receipt.as_ref().and_then(|r| r.class).map(|c| c.to_string()),
                    }),
                    run: Some(run.clone()),
                    agent: None,
                })
            }
            Event::RunFinished { run, status } => {
                let info = self.runs.get(run).cloned().unwrap_or_default();
                self.receipts.retain(|(r, _), _| r != run);
                let status_name = status_name(*status);
                Some(FleetEvent {
                    names: vec!["run.finished".into(), format!("run.{status_name}")],
                    seq: env.seq,
                    json: json!({
                        "event": "run.finished",
                        "seq": env.seq,
                        "at": at,
                        "run": run,
                        "run_name": info.name,
                        "labels": info.labels,
                        "status": status.to_string(),
                    }),
                    run: Some(run.clone()),
                    agent: None,
                })
            }
            Event::Alert(AlertEvent::Raised(a)) => {
                let run = a.source.run_id().map(str::to_string);
                let info = run
                    .as_ref()
                    .and_then(|r| self.runs.get(r))
                    .cloned()
                    .unwrap_or_default();
                let name = format!("alert.{}", a.class.as_str());
                Some(FleetEvent {
                    names: vec![name.clone()],
                    seq: env.seq,
                    json: json!({
                        "event": name,
                        "seq": env.seq,
                        "at": at,
                        "alert": a.id,
                        "class": a.class.as_str(),
                        "run": run,
                        "run_name": info.name,
                        "labels": info.labels,
                        "task": a.task,
                        "tags": a.task.as_ref().and_then(|t| info.tags.get(t)).cloned().unwrap_or_default(),
                        "worker": a.worker,
                        "reason": a.reason,
                    }),
                    run,
                    agent: match &a.source {
                        AlertSource::Agent { agent } => Some(agent.clone()),
                        AlertSource::Run { .. } | AlertSource::Operator { .. } => None,
                    },
                })
            }
            _ => None,
        }
    }
}

fn result_name(r: AttemptResult) -> &'static str {
    match r {
        AttemptResult::Pass => "pass",
        AttemptResult::Fail => "fail",
        AttemptResult::Timeout => "timeout",
        AttemptResult::Partial => "partial",
        AttemptResult::Skip => "skip",
    }
}

fn status_name(s: RunStatus) -> String {
    s.to_string()
}

/// Whether an event's fields pass a filter: the run's name (exact, or a
/// prefix ending in `*`), its labels, the task's tags.
pub fn matches_fields(
    event: &Value,
    run_name: Option<&str>,
    labels: &BTreeMap<String, String>,
    tags: &[String],
) -> bool {
    if let Some(want) = run_name {
        let name = event.get("run_name").and_then(Value::as_str).unwrap_or("");
        let ok = match want.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == want,
        };
        if !ok {
            return false;
        }
    }
    for (k, v) in labels {
        if event
            .get("labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            != Some(v.as_str())
        {
            return false;
        }
    }
    if !tags.is_empty() {
        let have: Vec<&str> = event
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !tags.iter().all(|t| have.contains(&t.as_str())) {
            return false;
        }
    }
    true
}

/// Whether fleet subscription `sub` of agent `agent` takes `ev`
/// (`own`: whether the event's run is one the agent started).
pub fn subscription_takes(sub: &Subscription, agent: &str, ev: &FleetEvent, own: bool) -> bool {
    if !sub.events.iter().any(|e| ev.names.contains(e)) {
        return false;
    }
    let is_own = own || ev.agent.as_deref() == Some(agent);
    if is_own && !sub.include_own {
        return false;
    }
    match &sub.filter {
        None => true,
        Some(f) => matches_fields(&ev.json, f.run_name.as_deref(), &f.labels, &f.tags),
    }
}
