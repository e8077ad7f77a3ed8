//! Gemini CLI, `gemini --output-format stream-json`.
//!
//! Lines: `init {session_id, model}`, `message {role, content, delta?}`,
//! `tool_use {tool_name, tool_id, parameters}`, `tool_result {tool_id,
//! status, output?, error?}`, `error {severity, message}` (documented as
//! non-fatal warnings and errors: a heartbeat, the exit code and the
//! `result` decide) and a final `result {status, error?, stats:
//! {total_tokens, input_tokens, output_tokens, cached, input, duration_ms,
//! tool_calls}}`. No cost in the stream.
//!
//! Usage arrives only in `result.stats`, totals for the session (summed
//! over models by the CLI). `cached` is a part of `input_tokens`; what
//! `total_tokens` holds beyond input + output (thoughts, tool-use prompts)
//! is reported as reasoning, billed beside the output. Tool calls are
//! counted live from `tool_use`; `stats.tool_calls` adds any the stream
//! did not show.

use serde_json::{Map, Value};

use super::{
    count, keep_tail, message_of, metadata_in_text, orca_metadata, tool_name, typed_object,
    RecentSet, StreamParser,
};
use crate::runtime::usage::Usage;
use crate::stream_json::Signal;

/// See the module docs.
#[derive(Debug, Default)]
pub struct GeminiParser {
    /// Everything reported so far (tokens and tool calls).
    counted: Usage,
    tools: RecentSet<String>,
    model: Option<String>,
    /// The tail of the assistant's text, searched for orca's metadata at
    /// the end.
    pub(super) assistant_text: String,
}

impl StreamParser for GeminiParser {
    fn feed(&mut self, line: &[u8]) -> Vec<Signal> {
        let Some((kind, obj)) = typed_object(line) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match kind.as_str() {
            "init" => {
                if let Some(model) = obj.get("model").and_then(Value::as_str) {
                    if !model.is_empty() && self.model.as_deref() != Some(model) {
                        self.model = Some(model.to_string());
                        out.push(Signal::Model {
                            name: model.to_string(),
                        });
                    }
                }
            }
            "message" => self.message(&obj),
            "tool_use" => {
                let fresh = match obj.get("tool_id").and_then(Value::as_str) {
                    Some(id) => self.tools.insert(id.to_string()),
                    None => true,
                };
                if fresh {
                    self.counted.tool_calls = self.counted.tool_calls.saturating_add(1);
                    let name = obj
                        .get("tool_name")
                        .and_then(Value::as_str)
                        .unwrap_or("tool");
                    out.push(Signal::Tool {
                        name: tool_name(name),
                    });
                }
            }
            "tool_result" | "error" => {}
            "result" => self.result(&obj, &mut out),
            "metadata" => orca_metadata(&obj, &mut out),
            _ => return Vec::new(),
        }
        if out.is_empty() {
            out.push(Signal::Heartbeat);
        }
        out
    }
}

impl GeminiParser {
    fn message(&mut self, obj: &Map<String, Value>) {
        if obj.get("role").and_then(Value::as_str) != Some("assistant") {
            return;
        }
        let Some(content) = obj.get("content").and_then(Value::as_str) else {
            return;
        };
        let delta = obj.get("delta").and_then(Value::as_bool) == Some(true);
        if !delta && !self.assistant_text.is_empty() {
            self.assistant_text.push('\n');
        }
        self.assistant_text.push_str(content);
        keep_tail(&mut self.assistant_text);
    }

    fn result(&mut self, obj: &Map<String, Value>, out: &mut Vec<Signal>) {
        if let Some(stats) = obj.get("stats").filter(|s| s.is_object()) {
            let s = Some(stats);
            let input = count(s, "input_tokens");
            let output = count(s, "output_tokens");
            let total = Usage {
                input_tokens: input,
                cached_input_tokens: count(s, "cached"),
                output_tokens: output,
                reasoning_tokens: count(s, "total_tokens")
                    .saturating_sub(input)
                    .saturating_sub(output),
                tool_calls: count(s, "tool_calls"),
                ..Usage::default()
            }
            .normalized();
            let delta = total.saturating_sub(&self.counted);
            if !delta.is_zero() {
                self.counted += delta;
                out.push(Signal::Usage(delta));
            }
        }
        metadata_in_text(&self.assistant_text, out);
        self.assistant_text.clear();
        let status = obj.get("status").and_then(Value::as_str);
        let error = message_of(obj.get("error"));
        if status == Some("success") || (status.is_none() && error.is_none()) {
            out.push(Signal::Done);
        } else {
            out.push(Signal::Error {
                message: error.unwrap_or_else(|| "Gemini CLI reported an error".to_string()),
            });
        }
    }
}
