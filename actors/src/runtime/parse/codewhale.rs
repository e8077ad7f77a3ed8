//! CodeWhale, `codewhale exec --output-format stream-json`.
//!
//! One JSON object per line with `type` (and `schema:
//! "codewhale.exec-stream"`): `content`, `tool_use {name}`, `tool_result`,
//! `agent_spawned`, `sandbox_denied`, `workflow_event`, `session_capture`,
//! `service_released` (heartbeats), `turn_usage {turn, input_tokens,
//! output_tokens, reasoning_tokens?, prompt_cache_hit_tokens?,
//! prompt_cache_miss_tokens?, prompt_cache_write_tokens?, …}` once per model
//! call, `metadata {meta: {model, provider, input_tokens?, output_tokens?,
//! status?, error?, …}}` (the terminal receipt, with cumulative totals),
//! `done` and `error {error}`. orca's own conventions ride on `metadata`
//! lines, at the top level or inside `meta`.
//!
//! Each `turn_usage` is a delta. CodeWhale's `reasoning_tokens` are a part
//! of its `output_tokens` (its client never adds them to the output), so
//! they are not counted again; its cache-hit count is a part of
//! `input_tokens`. The terminal `metadata` totals only add what the turns
//! had not counted.
//!
//! The `content` text is kept (its tail) and searched for orca's metadata
//! objects on lines of their own at `done`, as for the other CLIs.

use serde_json::{Map, Value};

use super::{
    count, keep_tail, message_of, metadata_in_text, tool_name, typed_object, StreamParser,
};
use crate::runtime::usage::Usage;
use crate::stream_json::{metadata_signals, Signal};

/// See the module docs.
#[derive(Debug, Default)]
pub struct CodewhaleParser {
    /// Tokens and turns reported so far.
    counted: Usage,
    model: Option<String>,
    /// The tail of the `content` text since the last `done`.
    content: String,
}

impl StreamParser for CodewhaleParser {
    fn feed(&mut self, line: &[u8]) -> Vec<Signal> {
        let Some((kind, obj)) = typed_object(line) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match kind.as_str() {
            "content" => {
                if let Some(c) = obj.get("content").and_then(Value::as_str) {
                    self.content.push_str(c);
                    keep_tail(&mut self.content);
                }
            }
            "tool_result" | "agent_spawned" | "sandbox_denied" | "workflow_event"
            | "session_capture" | "service_released" => {}
            "tool_use" => {
                let name = obj.get("name").and_then(Value::as_str).unwrap_or("tool");
                out.push(Signal::Tool {
                    name: tool_name(name),
                });
            }
            "turn_usage" => {
                let delta = Usage {
                    turns: 1,
                    ..usage_of(&Value::Object(obj))
                };
                self.counted += delta;
                out.push(Signal::Usage(delta));
            }
            "metadata" => self.metadata(&obj, &mut out),
            "done" => {
                metadata_in_text(&self.content, &mut out);
                self.content.clear();
                out.push(Signal::Done);
            }
            "error" => out.push(Signal::Error {
                message: message_of(obj.get("error"))
                    .or_else(|| message_of(obj.get("message")))
                    .unwrap_or_else(|| "error".to_string()),
            }),
            _ => return Vec::new(),
        }
        if out.is_empty() {
            out.push(Signal::Heartbeat);
        }
        out
    }
}

impl CodewhaleParser {
    fn metadata(&mut self, obj: &Map<String, Value>, out: &mut Vec<Signal>) {
        metadata_signals(&Value::Object(obj.clone()), out);
        let Some(meta) = obj.get("meta").filter(|m| m.is_object()) else {
            return;
        };
        metadata_signals(meta, out);
        if let Some(model) = meta.get("model").and_then(Value::as_str) {
            if !model.is_empty() && self.model.as_deref() != Some(model) {
                self.model = Some(model.to_string());
                out.push(Signal::Model {
                    name: model.to_string(),
                });
            }
        }
        let total = usage_of(meta);
        let delta = Usage {
            turns: 0,
            tool_calls: 0,
            ..total.saturating_sub(&self.counted)
        };
        if !delta.is_zero() {
            self.counted += delta;
            out.push(Signal::Usage(delta));
        }
        if let Some(err) = meta.get("error").and_then(Value::as_str) {
            if meta.get("status").and_then(Value::as_str) != Some("ok") {
                out.push(Signal::Error {
                    message: err.to_string(),
                });
            }
        }
    }
}

/// A `turn_usage` line's or a `metadata` receipt's token counts.
fn usage_of(v: &Value) -> Usage {
    let v = Some(v);
    Usage {
        input_tokens: count(v, "input_tokens"),
        cached_input_tokens: count(v, "prompt_cache_hit_tokens"),
        cache_write_tokens: count(v, "prompt_cache_write_tokens"),
        output_tokens: count(v, "output_tokens"),
        ..Usage::default()
    }
    .normalized()
}
