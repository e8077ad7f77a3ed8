//! OpenAI Codex, `codex exec --json`.
//!
//! Lines: `thread.started {thread_id}`, `turn.started`,
//! `item.started|updated|completed {item: {id, type, …}}` with item types
//! `agent_message {text}`, `reasoning`, `command_execution {command,
//! aggregated_output, exit_code, status}`, `file_change`, `mcp_tool_call
//! {server, tool}`, `web_search {query}`, `todo_list`, `error`;
//! `turn.completed {usage: {input_tokens, cached_input_tokens,
//! output_tokens}}`, `turn.failed {error: {message}}` and `error {message}`.
//! No model and no cost in the stream.
//!
//! A command execution, an MCP tool call or a web search is a tool call,
//! counted once per item id (an item appears started, updated and
//! completed). `turn.completed` usage is cumulative for the session: each
//! report minus the previous one is the delta (a report below the previous
//! one starts a new count). `cached_input_tokens` are part of
//! `input_tokens` already. A `turn.completed` is the worker saying it
//! finished (a later one wins); `turn.failed` and `error` are errors (a
//! later `turn.completed` recovers, as Codex does after reconnecting).

use serde_json::Value;

use super::{
    count, message_of, metadata_in_text, orca_metadata, text, tool_name, typed_object, RecentSet,
    StreamParser,
};
use crate::runtime::usage::Usage;
use crate::stream_json::Signal;

/// See the module docs.
#[derive(Debug, Default)]
pub struct CodexParser {
    /// The last cumulative usage report.
    last: Usage,
    /// Tool-call item ids already counted.
    items: RecentSet<String>,
}

impl StreamParser for CodexParser {
    fn feed(&mut self, line: &[u8]) -> Vec<Signal> {
        let Some((kind, obj)) = typed_object(line) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match kind.as_str() {
            "thread.started" | "turn.started" => {}
            "item.started" | "item.updated" | "item.completed" => {
                if let Some(item) = obj.get("item") {
                    self.item(item, kind == "item.completed", &mut out);
                }
            }
            "turn.completed" => {
                if let Some(usage) = obj.get("usage").filter(|u| u.is_object()) {
                    let u = Some(usage);
                    let now = Usage {
                        input_tokens: count(u, "input_tokens"),
                        cached_input_tokens: count(u, "cached_input_tokens"),
                        output_tokens: count(u, "output_tokens"),
                        ..Usage::default()
                    }
                    .normalized();
                    let delta = if now.covers(&self.last) {
                        now.saturating_sub(&self.last)
                    } else {
                        now
                    };
                    self.last = now;
                    out.push(Signal::Usage(Usage { turns: 1, ..delta }));
                }
                out.push(Signal::Done);
            }
            "turn.failed" => out.push(Signal::Error {
                message: message_of(obj.get("error"))
                    .unwrap_or_else(|| "the Codex turn failed".to_string()),
            }),
            "error" => out.push(Signal::Error {
                message: message_of(obj.get("message"))
                    .or_else(|| message_of(obj.get("error")))
                    .unwrap_or_else(|| "Codex reported an error".to_string()),
            }),
            "metadata" => orca_metadata(&obj, &mut out),
            _ => return Vec::new(),
        }
        if out.is_empty() {
            out.push(Signal::Heartbeat);
        }
        out
    }
}

impl CodexParser {
    fn item(&mut self, item: &Value, completed: bool, out: &mut Vec<Signal>) {
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        let name = match kind {
            "command_execution" => Some(match text(Some(item), "command") {
                Some(c) => format!("shell: {c}"),
                None => "shell".to_string(),
            }),
            "mcp_tool_call" => Some(
                match (text(Some(item), "server"), text(Some(item), "tool")) {
                    (Some(s), Some(t)) => format!("mcp: {s}/{t}"),
                    (None, Some(t)) => format!("mcp: {t}"),
                    _ => "mcp".to_string(),
                },
            ),
            "web_search" => Some("web_search".to_string()),
            _ => None,
        };
        if let Some(name) = name {
            let fresh = match item.get("id").and_then(Value::as_str) {
                Some(id) => self.items.insert(id.to_string()),
                // Without an id, count it once: when it completes.
                None => completed,
            };
            if fresh {
                out.push(Signal::Tool {
                    name: tool_name(&name),
                });
            }
        }
        if kind == "agent_message" && completed {
            if let Some(t) = text(Some(item), "text") {
                metadata_in_text(t, out);
            }
        }
    }
}
