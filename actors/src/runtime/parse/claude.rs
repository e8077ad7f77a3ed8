//! Claude Code, `claude -p --output-format stream-json --verbose`.
//!
//! Lines: `system` (`init` carries `model`), `assistant` (`message` with
//! `id`, `model`, `content` blocks — `tool_use` among them — and `usage`
//! {`input_tokens`, `output_tokens`, `cache_creation_input_tokens`,
//! `cache_read_input_tokens`}), `user` (tool results), `stream_event`
//! (partial messages, with `--include-partial-messages`) and a final
//! `result` {`subtype` (`success`, `error_max_turns`,
//! `error_during_execution`, `error_max_budget_usd`, …), `is_error`,
//! `num_turns`, `total_cost_usd`, `usage`, `result`}.
//!
//! Claude repeats a message's usage on every `assistant` event of that
//! message (one per content block): usage is kept per `message.id` as the
//! largest seen and only growth is reported, so a message counts once.
//! Claude's `input_tokens` leave out the cache: the normalized input adds
//! the cache reads and writes. The `result`'s usage is the session's total:
//! whatever it holds beyond the messages' sum is reported then.

use serde_json::{Map, Value};

use super::{
    as_count, count, metadata_in_text, orca_metadata, text, tool_name, typed_object, RecentMap,
    RecentSet, StreamParser,
};
use crate::runtime::usage::Usage;
use crate::stream_json::{RuntimeLimit, Signal};

/// See the module docs.
#[derive(Debug, Default)]
pub struct ClaudeParser {
    /// The largest usage seen per message id.
    pub(super) messages: RecentMap<String, Usage>,
    /// Tool-use block ids already counted.
    pub(super) tools: RecentSet<String>,
    /// Everything reported so far (tokens and turns).
    counted: Usage,
    model: Option<String>,
}

impl StreamParser for ClaudeParser {
    fn feed(&mut self, line: &[u8]) -> Vec<Signal> {
        let Some((kind, obj)) = typed_object(line) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match kind.as_str() {
            "system" => {
                if let Some(model) = obj.get("model").and_then(Value::as_str) {
                    self.model_named(model, &mut out);
                }
            }
            "assistant" => self.assistant(obj.get("message"), &mut out),
            "user" | "stream_event" => {}
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

impl ClaudeParser {
    fn model_named(&mut self, model: &str, out: &mut Vec<Signal>) {
        if !model.is_empty() && self.model.as_deref() != Some(model) {
            self.model = Some(model.to_string());
            out.push(Signal::Model {
                name: model.to_string(),
            });
        }
    }

    fn assistant(&mut self, message: Option<&Value>, out: &mut Vec<Signal>) {
        let Some(message) = message else {
            return;
        };
        if let Some(model) = text(Some(message), "model") {
            self.model_named(model, out);
        }
        if let Some(blocks) = message.get("content").and_then(Value::as_array) {
            for b in blocks {
                if b.get("type").and_then(Value::as_str) != Some("tool_use") {
                    continue;
                }
                let fresh = match b.get("id").and_then(Value::as_str) {
                    Some(id) => self.tools.insert(id.to_string()),
                    None => true,
                };
                if fresh {
                    let name = b.get("name").and_then(Value::as_str).unwrap_or("tool");
                    out.push(Signal::Tool {
                        name: tool_name(name),
                    });
                }
            }
        }
        if let Some(usage) = message.get("usage").filter(|u| u.is_object()) {
            let now = normalized(usage);
            let delta = match message.get("id").and_then(Value::as_str) {
                Some(id) => {
                    let id = id.to_string();
                    match self.messages.get(&id).copied() {
                        Some(before) => {
                            let most = before.max(&now);
                            self.messages.insert(id, most);
                            most.saturating_sub(&before)
                        }
                        None => {
                            self.messages.insert(id, now);
                            Usage { turns: 1, ..now }
                        }
                    }
                }
                // Without an id nothing can be deduplicated: one message.
                None => Usage { turns: 1, ..now },
            };
            self.report(delta, out);
        }
    }

    fn result(&mut self, obj: &Map<String, Value>, out: &mut Vec<Signal>) {
        if let Some(usage) = obj.get("usage").filter(|u| u.is_object()) {
            let mut total = normalized(usage);
            total.turns = obj.get("num_turns").map(as_count).unwrap_or(0);
            let delta = total.saturating_sub(&self.counted);
            self.report(delta, out);
        }
        if let Some(usd) = obj
            .get("total_cost_usd")
            .and_then(Value::as_f64)
            .filter(|f| f.is_finite() && *f >= 0.0)
        {
            out.push(Signal::ReportedCost { usd });
        }
        let subtype = obj.get("subtype").and_then(Value::as_str).unwrap_or("");
        let final_text = obj.get("result").and_then(Value::as_str);
        if let Some(t) = final_text {
            metadata_in_text(t, out);
        }
        let is_error = obj.get("is_error").and_then(Value::as_bool) == Some(true)
            || subtype.starts_with("error");
        if !is_error {
            out.push(Signal::Done);
            return;
        }
        match subtype {
            "error_max_turns" => out.push(Signal::LimitReached {
                limit: RuntimeLimit::Turns,
            }),
            "error_max_budget_usd" => out.push(Signal::LimitReached {
                limit: RuntimeLimit::CostUsd,
            }),
            _ => {}
        }
        let message = match (final_text.filter(|t| !t.trim().is_empty()), subtype) {
            (Some(t), "" | "success") => t.to_string(),
            (Some(t), s) => format!("{s}: {t}"),
            (None, "") => "Claude Code reported an error".to_string(),
            (None, s) => s.to_string(),
        };
        out.push(Signal::Error { message });
    }

    fn report(&mut self, delta: Usage, out: &mut Vec<Signal>) {
        if !delta.is_zero() {
            self.counted += delta;
            out.push(Signal::Usage(delta));
        }
    }
}

/// Claude's usage object, normalized: the cache reads and writes are added
/// to the input.
fn normalized(usage: &Value) -> Usage {
    let u = Some(usage);
    let cached = count(u, "cache_read_input_tokens");
    let written = count(u, "cache_creation_input_tokens");
    Usage {
        input_tokens: count(u, "input_tokens")
            .saturating_add(cached)
            .saturating_add(written),
        cached_input_tokens: cached,
        cache_write_tokens: written,
        output_tokens: count(u, "output_tokens"),
        ..Usage::default()
    }
}
