//! Thinking agents (docs/agents.md, "Thinking agents"): a `think` route
//! runs the agent's runtime — an agent CLI — as the one task of a run
//! labelled `agent=<id>`. This module is pure: the prompt (persona, the
//! agent's state, the event, the tools), the run spec orca writes for it,
//! the flags that make each preset load `orca mcp`, and the tool calls the
//! runtime makes back (their names, inputs and what each becomes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::spec::{AgentSpec, Route};
use super::state::{AgentState, IntentStatus};
use crate::model::AlertClass;
use crate::runtime::Preset;
use crate::spec::TaskRuntime;

/// The label every think run carries: `agent=<id>`.
pub const AGENT_LABEL: &str = "agent";
/// The label that marks a run as a think run: `orca.think=<wake>`.
pub const THINK_LABEL: &str = "orca.think";
/// The task id of a think run.
pub const THINK_TASK: &str = "think";
/// How many notes and refusals the prompt shows.
const PROMPT_HISTORY: usize = 10;

/// A tool the runtime may call back (through `orca mcp`, the CLI's `orca
/// agent act`, or `POST /v1/agents/{id}/tools/{tool}`), as one intent of
/// the wake its think run belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "tool", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToolCall {
    /// A commitment: wake again at `due` (RFC 3339, or a delay such as
    /// `"10m"` from now).
    Commit { what: String, due: String },
    /// Keep (forget) a commitment by its id.
    Complete { commitment: String },
    /// A note in the agent's history.
    Note { text: String },
    /// Raise an alert of `class` (through the alert router).
    RaiseAlert { class: AlertClass, reason: String },
    /// Put a question to an operator: a pending approval and a
    /// `needs_human` alert; the answer wakes the agent.
    AskHuman { question: String },
    /// Start a run: `spec_path` (relative to the workspace, inside the
    /// agent's workspaces; the caller reads its text into `spec_text`), or
    /// an inline `spec` (TOML or JSON text).
    StartRun {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spec_path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spec: Option<String>,
        /// Filled in by the API from `spec_path` (never by the model).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spec_text: Option<String>,
    },
    /// Stop a run the agent started.
    StopRun { run: String },
}

impl ToolCall {
    pub fn name(&self) -> &'static str {
        match self {
            ToolCall::Commit { .. } => "commit",
            ToolCall::Complete { .. } => "complete",
            ToolCall::Note { .. } => "note",
            ToolCall::RaiseAlert { .. } => "raise_alert",
            ToolCall::AskHuman { .. } => "ask_human",
            ToolCall::StartRun { .. } => "start_run",
            ToolCall::StopRun { .. } => "stop_run",
        }
    }

    /// A call from a tool name and its JSON arguments: an error the model
    /// can read when they do not fit.
    pub fn from_args(tool: &str, args: Value) -> Result<ToolCall, String> {
        if !AGENT_TOOLS.iter().any(|t| t.name == tool) {
            let names: Vec<&str> = AGENT_TOOLS.iter().map(|t| t.name).collect();
            return Err(format!(
                "unknown agent tool {tool:?}; the tools are {}",
                names.join(", ")
            ));
        }
        let mut obj = match args {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            other => return Err(format!("the arguments must be an object, not {other}")),
        };
        obj.remove("spec_text");
        obj.insert("tool".into(), Value::String(tool.into()));
        let v = Value::Object(obj);
        let call: ToolCall = serde_path_to_error::deserialize(&v).map_err(|e| {
            let path = e.path().to_string();
            if path == "." || path.is_empty() {
                format!("{tool}: {}", e.inner())
            } else {
                format!("{tool}: {path}: {}", e.inner())
            }
        })?;
        if let ToolCall::StartRun {
            spec_path, spec, ..
        } = &call
        {
            if spec_path.is_some() == spec.is_some() {
                return Err("start_run: give exactly one of spec_path and spec".into());
            }
        }
        Ok(call)
    }

    /// The key that makes a repeated call (a think attempt redone after a
    /// crash) the same intent: the tool and its arguments, canonical.
    pub fn key(&self) -> String {
        use sha2::Digest as _;
        let canonical = serde_json::to_string(self).unwrap_or_default();
        let digest = sha2::Sha256::digest(canonical.as_bytes());
        let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}-{hex}", self.name())
    }
}

/// One tool as offered to a model: its name, what it does, its input's
/// JSON Schema, and whether it needs an agent's token.
#[derive(Clone, Copy, Debug)]
pub struct ToolInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub agent_only: bool,
}

/// The agent tools (they act as the agent, within its policy).
pub const AGENT_TOOLS: &[ToolInfo] = &[
    ToolInfo {
        name: "commit",
        description: "Remember a commitment: you are woken again when it comes due. `due` is an RFC 3339 time or a delay from now such as \"30m\" or \"2h\".",
        agent_only: true,
    },
    ToolInfo {
        name: "complete",
        description: "Mark a commitment kept (by the id `commit` answered): it will not wake you.",
        agent_only: true,
    },
    ToolInfo {
        name: "note",
        description: "Write a note in your history; the next wakes show the recent ones.",
        agent_only: true,
    },
    ToolInfo {
        name: "ask_human",
        description: "Ask an operator: it becomes a pending approval and a needs_human alert; their answer (approve or deny) wakes you with it.",
        agent_only: true,
    },
    ToolInfo {
        name: "raise_alert",
        description: "Raise an alert of a class (needs_human, stale, restart_exhausted, budget_exceeded, verifier_failed, run_completed) with a reason; the alert router delivers it.",
        agent_only: false,
    },
    ToolInfo {
        name: "start_run",
        description: "Start a run from a spec file (`spec_path`, relative to the workspace) or an inline spec (`spec`, TOML or JSON text). Answers the run id.",
        agent_only: false,
    },
    ToolInfo {
        name: "stop_run",
        description: "Stop a run (with an agent's token: only a run the agent started).",
        agent_only: false,
    },
];

/// The JSON Schema of a tool's input (agent and fleet tools alike).
pub fn input_schema(tool: &str) -> Value {
    let s = |props: Value, required: &[&str]| {
        json!({
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        })
    };
    let text = |d: &str| json!({"type": "string", "minLength": 1, "description": d});
    match tool {
        "commit" => s(
            json!({"what": text("what you commit to"), "due": text("RFC 3339 time, or a delay such as \"30m\"")}),
            &["what", "due"],
        ),
        "complete" => s(
            json!({"commitment": text("the commitment's id")}),
            &["commitment"],
        ),
        "note" => s(json!({"text": text("the note")}), &["text"]),
        "ask_human" => s(
            json!({"question": text("what you need an operator to decide")}),
            &["question"],
        ),
        "raise_alert" => s(
            json!({
                "class": {"type": "string", "enum": AlertClass::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>()},
                "reason": text("why"),
            }),
            &["class", "reason"],
        ),
        "start_run" => s(
            json!({
                "spec_path": text("a run spec file, relative to the workspace"),
                "spec": text("an inline run spec (TOML or JSON text)"),
            }),
            &[],
        ),
        "stop_run" => s(
            json!({"run": text("the run id (or a unique prefix)")}),
            &["run"],
        ),
        "fleet_status" => s(json!({}), &[]),
        "inspect" => s(
            json!({"target": text("a run id, or run/task (prefixes are accepted)")}),
            &["target"],
        ),
        "logs" => s(
            json!({
                "run": text("the run id"),
                "task": text("the task id"),
                "attempt": {"type": "integer", "minimum": 1, "description": "the attempt (default: the last)"},
                "stream": {"type": "string", "enum": ["stdout", "stderr"]},
                "max_bytes": {"type": "integer", "minimum": 1, "maximum": 65536, "description": "at most this many bytes from the end (default 16384)"},
            }),
            &["run", "task"],
        ),
        _ => s(json!({}), &[]),
    }
}

/// Parses a commitment's `due`: RFC 3339, or a delay from `now`.
pub fn parse_due(
    due: &str,
    now: crate::model::Timestamp,
) -> Result<crate::model::Timestamp, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(due.trim()) {
        return Ok(crate::model::Timestamp::from_datetime(
            t.with_timezone(&chrono::Utc),
        ));
    }
    let iv = super::spec::Interval::parse(due.trim()).ok_or_else(|| {
        format!("due {due:?} is neither an RFC 3339 time nor a delay such as \"30m\"")
    })?;
    Ok(now.plus_millis(iv.millis()))
}

/// The flags that make a preset load `orca mcp` (`{orca}` is orca's own
/// executable, substituted at launch). `None`: the preset has no flag for
/// it (its runtime acts through `orca agent act` instead).
pub fn mcp_args(preset: Preset) -> Option<Vec<String>> {
    match preset {
        Preset::Claude => Some(vec![
            "--mcp-config".into(),
            r#"{"mcpServers":{"orca":{"command":"{orca}","args":["mcp"]}}}"#.into(),
            "--allowedTools".into(),
            "mcp__orca".into(),
        ]),
        Preset::Codex => Some(vec![
            "-c".into(),
            r#"mcp_servers.orca.command="{orca}""#.into(),
            "-c".into(),
            r#"mcp_servers.orca.args=["mcp"]"#.into(),
            "-c".into(),
            r#"mcp_servers.orca.env_vars=["ORCA_API","ORCA_TOKEN","ORCA_WORKSPACE","ORCA_RUN_ID"]"#
                .into(),
        ]),
        Preset::Gemini => Some(vec!["--allowed-mcp-server-names".into(), "orca".into()]),
        Preset::Codewhale => None,
    }
}

/// The prompt of a think attempt: the persona, the agent's state, the
/// event, and how to act.
pub fn prompt(state: &AgentState, spec: &AgentSpec, source: &str, event_json: &str) -> String {
    let mut p = String::new();
    let name = spec.display_name.as_deref().unwrap_or(&spec.id);
    p.push_str(&format!("You are {name} (orca agent `{}`).\n", spec.id));
    if let Some(persona) = &spec.persona {
        p.push_str(&format!("\n{persona}\n"));
    }
    p.push_str(&format!(
        "\n## What woke you\n\nsubscription `{source}`:\n\n```json\n{event_json}\n```\n"
    ));
    p.push_str("\n## What you watch\n\n");
    for s in &spec.subscriptions {
        p.push_str(&format!("- `{}` ({})\n", s.id, s.kind.as_str()));
    }
    p.push_str("\n## Your commitments\n\n");
    if state.commitments.is_empty() {
        p.push_str("none\n");
    }
    for c in state.commitments.values() {
        p.push_str(&format!(
            "- `{}` due {}: {}\n",
            c.id,
            c.due.rfc3339(),
            c.text
        ));
    }
    p.push_str(&format!(
        "\n## Your inbox\n\n{} more wake(s) waiting\n",
        state.inbox.len()
    ));
    p.push_str("\n## Pending approvals\n\n");
    if state.approvals.is_empty() {
        p.push_str("none\n");
    }
    for a in state.approvals.values() {
        p.push_str(&format!("- `{}`: {}\n", a.request, a.what));
    }
    p.push_str("\n## Your runs\n\n");
    if state.runs.is_empty() {
        p.push_str("none\n");
    }
    for r in state.runs.values().rev().take(PROMPT_HISTORY) {
        let status = r.status.map(|s| s.as_str()).unwrap_or("running");
        p.push_str(&format!("- {}: {status}\n", r.run));
    }
    p.push_str("\n## Recent notes\n\n");
    if state.notes.is_empty() {
        p.push_str("none\n");
    }
    let skip = state.notes.len().saturating_sub(PROMPT_HISTORY);
    for (at, text) in state.notes.iter().skip(skip) {
        p.push_str(&format!("- {}: {text}\n", at.rfc3339()));
    }
    p.push_str("\n## Actions refused recently\n\n");
    let refused: Vec<(String, String)> = state
        .intents
        .values()
        .filter_map(|i| match &i.status {
            IntentStatus::Refused(why) => Some((i.intent.clone(), why.clone())),
            _ => None,
        })
        .collect();
    if refused.is_empty() {
        p.push_str("none\n");
    }
    for (intent, why) in refused.iter().rev().take(PROMPT_HISTORY) {
        p.push_str(&format!("- {intent}: {why}\n"));
    }
    p.push_str(
        "\n## How to act\n\nUse the `orca` MCP server's tools (or `orca agent act <tool> '<json>'`): \
         fleet_status, inspect, logs, start_run, stop_run, raise_alert, commit, complete, note, \
         ask_human. You act only within your workspaces, trust level and policy; a refused action \
         comes back as an error and is shown at your next wake. When you are done, end your turn.\n",
    );
    p
}

/// The run spec (JSON text) of a think run: one task running the agent's
/// runtime (with the flags that load `orca mcp`), labelled with the agent
/// and the wake.
pub fn think_spec(
    state: &AgentState,
    spec: &AgentSpec,
    route: &Route,
    wake: &str,
    source: &str,
    event_json: &str,
) -> Result<String, String> {
    let mut task = serde_json::Map::new();
    task.insert("id".into(), json!(THINK_TASK));
    task.insert(
        "name".into(),
        json!(format!(
            "{} thinks",
            spec.display_name.as_deref().unwrap_or(&spec.id)
        )),
    );
    task.insert(
        "instructions".into(),
        json!(prompt(state, spec, source, event_json)),
    );
    if let Some(rt) = &spec.runtime {
        task.insert("runtime".into(), runtime_with_mcp(rt)?);
    }
    if let Some(budget) = &route.budget {
        task.insert("budget".into(), budget.clone());
    }
    if let Some(t) = route.timeout_seconds {
        task.insert("timeout_seconds".into(), json!(t));
    }
    // A think attempt is not retried: a wake redone after a crash runs it
    // again, and its tool calls are not repeated.
    task.insert("retry_policy".into(), json!({"max_attempts": 1}));
    let mut labels = BTreeMap::new();
    labels.insert(AGENT_LABEL.to_string(), spec.id.clone());
    labels.insert(THINK_LABEL.to_string(), wake.to_string());
    let run = json!({
        "name": format!("think:{}", spec.id),
        "labels": labels,
        "tasks": [Value::Object(task)],
    });
    serde_json::to_string(&run).map_err(|e| e.to_string())
}

/// The agent's runtime as a task's, with the MCP flags added after its own
/// args.
fn runtime_with_mcp(rt: &TaskRuntime) -> Result<Value, String> {
    let mut rt = rt.clone();
    if let Some(preset) = rt.preset {
        if let Some(extra) = mcp_args(preset) {
            let mut args = rt.args.take().unwrap_or_default();
            args.extend(extra);
            rt.args = Some(args);
        }
    }
    serde_json::to_value(&rt).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;

    #[test]
    fn calls_parse_with_errors_a_model_can_read() {
        let c = ToolCall::from_args("commit", json!({"what": "re-check", "due": "10m"})).unwrap();
        assert_eq!(c.name(), "commit");
        let e = ToolCall::from_args("commit", json!({"what": "x"})).unwrap_err();
        assert!(e.contains("missing field `due`"), "{e}");
        let e =
            ToolCall::from_args("commit", json!({"what": "x", "due": "1m", "x": 1})).unwrap_err();
        assert!(e.contains("unknown field `x`"), "{e}");
        let e = ToolCall::from_args("explode", json!({})).unwrap_err();
        assert!(
            e.contains("unknown agent tool") && e.contains("ask_human"),
            "{e}"
        );
        let e = ToolCall::from_args("start_run", json!({})).unwrap_err();
        assert!(e.contains("exactly one"), "{e}");
        let e = ToolCall::from_args("raise_alert", json!({"class": "loud", "reason": "r"}))
            .unwrap_err();
        assert!(e.contains("loud") && e.contains("needs_human"), "{e}");
        let e = ToolCall::from_args("note", json!([1])).unwrap_err();
        assert!(e.contains("object"), "{e}");
        // The API fills spec_text; a model cannot.
        let c = ToolCall::from_args(
            "start_run",
            json!({"spec_path": "a.toml", "spec_text": "forged"}),
        )
        .unwrap();
        assert!(matches!(
            c,
            ToolCall::StartRun {
                spec_text: None,
                ..
            }
        ));
    }

    #[test]
    fn the_same_call_has_the_same_key_and_another_does_not() {
        let a = ToolCall::from_args("note", json!({"text": "a"})).unwrap();
        let b = ToolCall::from_args("note", json!({"text": "a"})).unwrap();
        let c = ToolCall::from_args("note", json!({"text": "b"})).unwrap();
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
        assert!(a.key().starts_with("note-"));
    }

    #[test]
    fn due_is_a_time_or_a_delay() {
        let now = Timestamp(1_800_000_000_000_000_000);
        assert_eq!(parse_due("90s", now).unwrap(), now.plus_millis(90_000));
        assert!(parse_due("2030-01-01T00:00:00Z", now).is_ok());
        assert!(parse_due("soon", now).unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn every_tool_has_an_object_schema() {
        for t in AGENT_TOOLS {
            assert_eq!(input_schema(t.name)["type"], "object", "{}", t.name);
        }
        assert_eq!(input_schema("commit")["required"], json!(["what", "due"]));
    }

    #[test]
    fn presets_load_orca_mcp_except_codewhale() {
        let claude = mcp_args(Preset::Claude).unwrap();
        assert!(claude.iter().any(|a| a.contains("{orca}")));
        assert!(mcp_args(Preset::Codex)
            .unwrap()
            .iter()
            .any(|a| a.contains("mcp_servers.orca")));
        assert!(mcp_args(Preset::Codewhale).is_none());
    }
}
