//! `orca inspect`, `orca artifacts`, `orca receipts`, `orca logs`: pure
//! renderers of the folded run.

use orca_actors::model::{ArtifactRef, Receipt, Timestamp};
use orca_actors::run::state::{AttemptPhase, AttemptState, RunState, TaskPhase, TaskState};
use orca_actors::spec::{HostSpec, RunSpec};
use serde::{Deserialize, Serialize};

use super::{ellipsize, table};

/// What `orca logs <run> <task> --json` prints: the shown part of one log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogExcerpt {
    pub run: String,
    pub task: String,
    pub attempt: u32,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The log file, relative to the workspace.
    pub path: String,
    /// The file's size in bytes (0: the stream was silent, no file).
    pub size: u64,
    /// Where `text` starts in the file (> 0: earlier bytes not shown).
    pub offset: u64,
    /// Whether orca capped the log while it was written (head, marker,
    /// tail).
    pub capped: bool,
    /// Whether the attempt is still running (the log may grow).
    pub live: bool,
    /// The bytes shown, as text (invalid UTF-8 replaced; ANSI stripped
    /// unless `--raw`).
    pub text: String,
}

/// What `orca inspect <run> <task> --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskInspection {
    pub run: String,
    pub task: TaskState,
    pub objective: Option<String>,
    pub role: Option<String>,
    pub host: String,
    pub alerts: Vec<orca_actors::run::state::AlertRecord>,
}

impl TaskInspection {
    pub fn of(r: &RunState, t: &TaskState, spec: Option<&RunSpec>) -> Self {
        // Tasks are in spec order: the run's task index finds it at once.
        let task_spec = spec.and_then(|s| match r.position(&t.id).and_then(|i| s.tasks.get(i)) {
            Some(x) if x.id == t.id => Some(x),
            _ => s.tasks.iter().find(|x| x.id == t.id),
        });
        let worker = t.current().and_then(|a| a.worker.clone());
        let host = spec
            .and_then(|s| {
                worker
                    .as_ref()
                    .and_then(|w| s.workers.iter().find(|x| &x.id == w))
            })
            .map(|w| match &w.host {
                HostSpec::Local(_) => "local".to_string(),
                h => h.display(),
            })
            .or_else(|| t.current().and_then(|a| a.host.clone()))
            .unwrap_or_else(|| "local".into());
        Self {
            run: r.run.clone(),
            task: t.clone(),
            objective: task_spec.and_then(|t| t.objective.clone()),
            role: task_spec
                .and_then(|t| t.worker.as_ref())
                .and_then(|w| w.role.clone()),
            host,
            alerts: r
                .alerts
                .iter()
                .filter(|a| a.task.as_deref() == Some(t.id.as_str()))
                .cloned()
                .collect(),
        }
    }
}

impl TaskInspection {
    /// Brings each live attempt's heartbeat up to its last sign of life
    /// (`last`: the attempt's last output, when the reader knows it): the
    /// journal records events, not every line a plain command prints.
    pub fn with_last_output(mut self, last: impl Fn(u32) -> Option<Timestamp>) -> Self {
        for a in self.task.attempts.iter_mut().filter(|a| a.is_live()) {
            if let Some(t) = last(a.n) {
                a.heartbeat = a.heartbeat.max(t);
            }
        }
        self
    }
}

fn phase(t: &TaskState) -> String {
    match (t.phase, t.result) {
        (TaskPhase::Finished, Some(r)) => r.to_string(),
        (TaskPhase::Finished, None) => "finished".into(),
        (TaskPhase::Running, _) => "running".into(),
        (TaskPhase::Backoff, _) => "waiting to retry".into(),
        (TaskPhase::Queued, _) => "queued".into(),
    }
}

fn attempt_state(a: &AttemptState) -> String {
    match (a.phase, a.result) {
        (AttemptPhase::Finished, Some(r)) => r.to_string(),
        (AttemptPhase::Finished, None) => "finished".into(),
        (AttemptPhase::Starting, _) => "starting".into(),
        (AttemptPhase::Running, _) => "running".into(),
        (AttemptPhase::Exited, _) => "scoring".into(),
    }
}

/// One task in detail.
pub fn task(i: &TaskInspection) -> String {
    let t = &i.task;
    let mut out = format!("task {} of run {}: {}\n", t.id, i.run, phase(t));
    if let Some(o) = &i.objective {
        out.push_str(&format!("objective   {}\n", ellipsize(o, 100)));
    }
    if let Some(r) = &i.role {
        out.push_str(&format!("role        {r}\n"));
    }
    out.push_str(&format!("host        {}\n", i.host));
    if let Some(a) = t.current() {
        out.push_str(&format!(
            "worker      {}\n",
            a.worker.clone().unwrap_or_else(|| "-".into())
        ));
    }
    out.push_str(&format!(
        "attempts    {} ({} counted toward max_attempts, {} restart{})\n",
        t.attempts.len(),
        t.counted,
        t.restarts,
        if t.restarts == 1 { "" } else { "s" }
    ));
    if let (TaskPhase::Backoff, Some(d)) = (t.phase, t.deadline) {
        out.push_str(&format!(
            "next        attempt {} at {}\n",
            t.next_attempt,
            d.rfc3339()
        ));
    }
    if !t.attempts.is_empty() {
        let rows: Vec<Vec<String>> = t
            .attempts
            .iter()
            .map(|a| {
                vec![
                    a.n.to_string(),
                    attempt_state(a),
                    a.worker.clone().unwrap_or_else(|| "-".into()),
                    a.started.rfc3339(),
                    a.heartbeat.rfc3339(),
                    a.exit_code
                        .map(|c| c.to_string())
                        .or_else(|| a.signal.map(|s| format!("signal {s}")))
                        .unwrap_or_else(|| "-".into()),
                    ellipsize(a.reason.as_deref().unwrap_or(""), 60),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&super::indent(
            &table(
                &[
                    "#",
                    "STATE",
                    "WORKER",
                    "STARTED",
                    "HEARTBEAT",
                    "EXIT",
                    "REASON",
                ],
                &rows,
            ),
            2,
        ));
    }
    if let Some(a) = t.current() {
        if let Some(e) = &a.last_event {
            out.push_str(&format!("\nlatest event  {}\n", worker_event(e)));
        }
        match &a.usage {
            Some(u) => out.push_str(&format!("usage         {}\n", usage_text(u))),
            None if a.tokens > 0 || a.tool_calls > 0 => out.push_str(&format!(
                "usage         {} tokens, {} tool calls\n",
                a.tokens, a.tool_calls
            )),
            None => {}
        }
    }
    if let Some(err) = latest_error(t) {
        out.push_str(&format!("latest error  {}\n", ellipsize(&err, 160)));
    }
    let receipt = t
        .final_receipt()
        .or_else(|| t.attempts.iter().rev().find_map(|a| a.receipt.as_ref()));
    if let Some(r) = receipt {
        out.push_str(&format!("\nreceipt (attempt {})\n", r.attempt));
        out.push_str(&super::indent(&receipt_block(r), 2));
        if !r.artifacts.is_empty() {
            out.push_str("\nartifacts\n");
            out.push_str(&super::indent(&artifacts(&r.artifacts), 2));
        }
    }
    if !i.alerts.is_empty() {
        let classes: Vec<String> = i
            .alerts
            .iter()
            .map(|a| {
                format!(
                    "{} (attempt {})",
                    a.class,
                    a.attempt
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "-".into())
                )
            })
            .collect();
        out.push_str(&format!("\nalerts  {}\n", classes.join(", ")));
    }
    out
}

fn worker_event(e: &orca_actors::journal::event::WorkerEvent) -> String {
    use orca_actors::journal::event::WorkerEvent as W;
    match e {
        W::Running => "running".into(),
        W::RunningTool { tool } => format!("running tool {tool}"),
        W::Usage { tokens, tool_calls } => {
            format!("usage: {tokens} tokens, {tool_calls} tool calls")
        }
        W::Artifact { kind, path } => format!("artifact {kind} at {path}"),
        W::NeedsHuman { reason } => format!("needs a human: {reason}"),
        W::Completed => "done".into(),
        W::Failed { error } => format!("error: {error}"),
        W::Stale { silent_ms } => format!("stale after {} ms of silence", silent_ms),
        W::LogCapped { stream } => format!("{stream:?} log capped").to_lowercase(),
        W::BudgetExceeded { limit } => format!("budget exceeded: {limit:?}").to_lowercase(),
    }
}

/// The latest failure reason of a task, if its latest attempt failed.
pub fn latest_error(t: &TaskState) -> Option<String> {
    let a = t.attempts.iter().rev().find(|a| a.result.is_some())?;
    match a.result {
        Some(orca_actors::model::AttemptResult::Pass)
        | Some(orca_actors::model::AttemptResult::Partial) => None,
        _ => a.reason.clone(),
    }
}

fn receipt_block(r: &Receipt) -> String {
    let mut rows = vec![
        vec!["result".into(), r.result.to_string()],
        vec![
            "source".into(),
            r.failure_source
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
        ],
        vec!["worker".into(), r.worker.clone()],
        vec![
            "exit".into(),
            r.exit_code
                .map(|c| c.to_string())
                .or_else(|| r.signal.map(|s| format!("signal {s}")))
                .unwrap_or_else(|| "-".into()),
        ],
        vec!["duration".into(), format!("{} ms", r.duration_ms)],
        vec!["summary".into(), ellipsize(&r.summary, 100)],
    ];
    if let Some(s) = &r.score {
        rows.push(vec![
            "score".into(),
            format!("{}/{} {}", s.value, s.max, s.notes)
                .trim_end()
                .to_string(),
        ]);
    }
    if let Some(v) = &r.verdict {
        rows.push(vec![
            "verdict".into(),
            format!(
                "{} by {} at {}{}",
                v.verdict,
                v.who,
                v.at.rfc3339(),
                if v.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", v.note)
                }
            ),
        ]);
    }
    let mut out = String::new();
    for row in rows {
        out.push_str(&format!("{:<9} {}\n", row[0], row[1]));
    }
    out
}

/// Artifact refs (never contents).
pub fn artifacts(refs: &[ArtifactRef]) -> String {
    if refs.is_empty() {
        return "no artifacts\n".into();
    }
    let rows: Vec<Vec<String>> = refs
        .iter()
        .map(|a| {
            vec![
                a.kind.clone(),
                a.path.clone(),
                a.size.to_string(),
                a.mime.clone(),
                a.sha256.clone(),
            ]
        })
        .collect();
    table(&["KIND", "PATH", "SIZE", "MIME", "SHA256"], &rows)
}

/// One line per task: its final (or latest) receipt (and its usage and
/// cost, when any task reported usage).
pub fn receipts(r: &orca_actors::view::RunSummary) -> String {
    let with_usage = r.tasks.iter().any(|t| t.usage.is_some());
    let rows: Vec<Vec<String>> = r
        .tasks
        .iter()
        .map(|t| {
            let mut row = match &t.receipt {
                Some(rec) => vec![
                    t.id.clone(),
                    rec.attempt.to_string(),
                    rec.result.to_string(),
                    rec.failure_source
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    rec.score
                        .as_ref()
                        .map(|s| format!("{}/{}", s.value, s.max))
                        .unwrap_or_else(|| "-".into()),
                    rec.artifacts.len().to_string(),
                    ellipsize(&rec.summary, 60),
                ],
                None => vec![
                    t.id.clone(),
                    "-".into(),
                    t.phase.clone(),
                    "-".into(),
                    "-".into(),
                    "0".into(),
                    String::new(),
                ],
            };
            if with_usage {
                let usage = match &t.usage {
                    Some(u) => match u.cost_usd {
                        Some(c) => format!("{} tok ${c:.4}", u.tokens),
                        None => format!("{} tok", u.tokens),
                    },
                    None => "-".into(),
                };
                row.insert(6, usage);
            }
            row
        })
        .collect();
    let mut headers = vec![
        "TASK",
        "ATTEMPT",
        "RESULT",
        "SOURCE",
        "SCORE",
        "ARTIFACTS",
        "SUMMARY",
    ];
    if with_usage {
        headers.insert(6, "USAGE");
    }
    table(&headers, &rows)
}

/// Removes ANSI escape sequences (CSI, OSC, two-byte escapes).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // CSI: parameters and intermediates, then a final byte @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // OSC: until BEL or ST (ESC \).
                while let Some(c) = chars.next() {
                    if c == '\x07' {
                        break;
                    }
                    if c == '\x1b' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// One attempt's usage and cost in a line: budget tokens (input, cached,
/// output, reasoning), tool calls, turns, orca's cost beside the CLI's.
pub fn usage_text(u: &orca_actors::runtime::UsageRecord) -> String {
    let x = &u.usage;
    let mut text = format!("{} tokens", u.tokens);
    if !x.is_zero() {
        text.push_str(&format!(
            " (input {}, cached {}, output {}",
            x.input_tokens, x.cached_input_tokens, x.output_tokens
        ));
        if x.reasoning_tokens > 0 {
            text.push_str(&format!(", reasoning {}", x.reasoning_tokens));
        }
        text.push(')');
    }
    text.push_str(&format!(", {} tool calls", x.tool_calls));
    if x.turns > 0 {
        text.push_str(&format!(", {} turns", x.turns));
    }
    match (u.cost_usd, &u.model) {
        (Some(c), Some(m)) => text.push_str(&format!(", ${c:.4} on {m} (orca's prices)")),
        (Some(c), None) => text.push_str(&format!(", ${c:.4} (orca's prices)")),
        (None, Some(m)) => text.push_str(&format!(", not priced ({m} is not in the price table)")),
        (None, None) => {}
    }
    if let Some(r) = u.reported_cost_usd {
        text.push_str(&format!("; the CLI reported ${r:.4}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(strip_ansi("\x1b[31mred\x1b[0m plain"), "red plain");
        assert_eq!(strip_ansi("\x1b]0;title\x07x"), "x");
        assert_eq!(
            strip_ansi("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b"),
            "alinkb"
        );
        assert_eq!(strip_ansi("ünï"), "ünï");
    }
}
