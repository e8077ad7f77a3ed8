//! The agent CLIs' stream-json output, turned into signals.
//!
//! CodeWhale (`codewhale exec --output-format stream-json`): one JSON object
//! per line with `type` one of `content {content}`, `tool_use {name, id,
//! input}`, `tool_result {id, name, output, status, …}`, `turn_usage
//! {input_tokens, output_tokens, reasoning_tokens?}`, `metadata {meta: {…}}`,
//! `done`, `error {error}` (plus `agent_spawned`, `workflow_event`, … which
//! are heartbeats only). orca also reads its own conventions on `metadata`
//! lines, at the top level or inside `meta`: `{"needs_human": {"reason"}}`,
//! `{"artifact": {"kind", "path"}}` and, for verifiers, `{"verdict": "pass" |
//! "fail", "score"?, "max"?, "notes"?}`.
//!
//! Claude Code (`claude -p --output-format stream-json`): `system`,
//! `assistant` (content blocks, `tool_use` among them; `usage`), `user`
//! (tool results) and a final `result {subtype, is_error, usage}`.
//!
//! Anything else — not JSON, not an object, an unknown `type` — is just log.
//!
//! [`parse_line`] is the stateless detection plain commands keep (format
//! `auto`). The runtime presets' stateful parsers
//! ([`crate::runtime::parse`]) produce the same [`Signal`]s plus normalized
//! usage deltas ([`Signal::Usage`]), the model, the CLI's own cost figure and
//! the CLI's own limits; [`StreamState::observe`] folds both kinds.

use serde_json::Value;

use crate::runtime::usage::Usage;

/// The longest line orca parses; longer lines are only log.
pub const MAX_PARSED_LINE: usize = 1 << 20;

/// What one stream-json line said.
#[derive(Clone, Debug, PartialEq)]
pub enum Signal {
    /// A recognized line with no state change (content, tool results):
    /// a heartbeat.
    Heartbeat,
    /// A tool started.
    Tool { name: String },
    /// Tokens used by one turn.
    TurnTokens { tokens: u64 },
    /// Cumulative tokens reported at the end.
    TotalTokens { tokens: u64 },
    /// The worker named an artifact.
    Artifact { kind: String, path: String },
    /// The worker asked for a human.
    NeedsHuman { reason: String },
    /// A verifier's verdict.
    Verdict {
        pass: bool,
        score: Option<f64>,
        max: Option<f64>,
        notes: String,
    },
    /// The worker said it finished.
    Done,
    /// The worker reported an error.
    Error { message: String },
    /// Usage since the previous report, normalized (a delta, never a total:
    /// the parsers turn cumulative reports into deltas).
    Usage(Usage),
    /// The model the CLI says it runs.
    Model { name: String },
    /// The CLI's own cost estimate so far, in USD (cumulative). Kept beside
    /// orca's own computation, never trusted for a budget.
    ReportedCost { usd: f64 },
    /// The CLI stopped at one of its own limits (an `error` follows).
    LimitReached { limit: RuntimeLimit },
}

/// A limit an agent CLI enforces itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeLimit {
    /// Claude's `error_max_turns`, Gemini's exit 53.
    Turns,
    /// Claude's `error_max_budget_usd`.
    CostUsd,
}

/// Parses one line. `None`: not stream-json (log only).
pub fn parse_line(line: &[u8]) -> Option<Vec<Signal>> {
    if line.len() > MAX_PARSED_LINE {
        return None;
    }
    let trimmed = line.trim_ascii();
    if trimmed.first() != Some(&b'{') {
        return None;
    }
    let v: Value = serde_json::from_slice(trimmed).ok()?;
    let obj = v.as_object()?;
    let kind = obj.get("type")?.as_str()?;
    let mut out = Vec::new();
    match kind {
        "content" | "tool_result" | "agent_spawned" | "sandbox_denied" | "workflow_event"
        | "session_capture" | "service_released" | "system" | "user" => out.push(Signal::Heartbeat),
        "tool_use" => {
            let name = obj.get("name").and_then(Value::as_str).unwrap_or("tool");
            out.push(Signal::Tool {
                name: name.to_string(),
            });
        }
        "turn_usage" => {
            out.push(Signal::TurnTokens {
                tokens: token_sum(&v),
            });
        }
        "metadata" => {
            metadata_signals(&v, &mut out);
            if let Some(meta) = obj.get("meta") {
                metadata_signals(meta, &mut out);
                let total = token_sum(meta);
                if total > 0 {
                    out.push(Signal::TotalTokens { tokens: total });
                }
                if let Some(err) = meta.get("error").and_then(Value::as_str) {
                    if meta.get("status").and_then(Value::as_str) != Some("ok") {
                        out.push(Signal::Error {
                            message: err.to_string(),
                        });
                    }
                }
            }
            if out.is_empty() {
                out.push(Signal::Heartbeat);
            }
        }
        "done" => out.push(Signal::Done),
        "error" => {
            let message = match obj.get("error") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => obj
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_string(),
            };
            out.push(Signal::Error { message });
        }
        // Claude Code.
        "assistant" => {
            let message = obj.get("message");
            if let Some(blocks) = message
                .and_then(|m| m.get("content"))
                .and_then(Value::as_array)
            {
                for b in blocks {
                    if b.get("type").and_then(Value::as_str) == Some("tool_use") {
                        let name = b.get("name").and_then(Value::as_str).unwrap_or("tool");
                        out.push(Signal::Tool {
                            name: name.to_string(),
                        });
                    }
                }
            }
            if let Some(usage) = message.and_then(|m| m.get("usage")) {
                let t = token_sum(usage);
                if t > 0 {
                    out.push(Signal::TurnTokens { tokens: t });
                }
            }
            if out.is_empty() {
                out.push(Signal::Heartbeat);
            }
        }
        "result" => {
            if let Some(usage) = obj.get("usage") {
                out.push(Signal::TotalTokens {
                    tokens: token_sum(usage),
                });
            }
            if obj.get("is_error").and_then(Value::as_bool) == Some(true) {
                let message = obj
                    .get("result")
                    .and_then(Value::as_str)
                    .or_else(|| obj.get("subtype").and_then(Value::as_str))
                    .unwrap_or("error")
                    .to_string();
                out.push(Signal::Error { message });
            } else {
                out.push(Signal::Done);
            }
        }
        _ => return None,
    }
    Some(out)
}

/// input + output (+ reasoning) tokens of a usage object.
fn token_sum(v: &Value) -> u64 {
    ["input_tokens", "output_tokens", "reasoning_tokens"]
        .iter()
        .filter_map(|k| v.get(*k).and_then(Value::as_u64))
        .sum()
}

/// orca's own conventions in a `metadata` object (or its `meta`):
/// `needs_human`, `artifact`, `verdict`.
pub(crate) fn metadata_signals(v: &Value, out: &mut Vec<Signal>) {
    if let Some(nh) = v.get("needs_human") {
        let reason = match nh {
            Value::String(s) => s.clone(),
            other => other
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("the worker asked for a human")
                .to_string(),
        };
        out.push(Signal::NeedsHuman { reason });
    }
    if let Some(a) = v.get("artifact") {
        if let (Some(kind), Some(path)) = (
            a.get("kind").and_then(Value::as_str),
            a.get("path").and_then(Value::as_str),
        ) {
            out.push(Signal::Artifact {
                kind: kind.to_string(),
                path: path.to_string(),
            });
        }
    }
    if let Some(verdict) = v.get("verdict").and_then(Value::as_str) {
        let pass = match verdict {
            "pass" | "passed" => Some(true),
            "fail" | "failed" => Some(false),
            _ => None,
        };
        if let Some(pass) = pass {
            out.push(Signal::Verdict {
                pass,
                score: v.get("score").and_then(Value::as_f64),
                max: v.get("max").and_then(Value::as_f64),
                notes: v
                    .get("notes")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            });
        }
    }
}

/// What an attempt's stream-json said so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamState {
    pub tool_calls: u64,
    /// Sum of per-turn tokens, or the reported total when larger, plus the
    /// budget tokens of every usage delta ([`Usage::tokens_for_budget`]).
    pub tokens: u64,
    pub last_tool: Option<String>,
    pub artifacts: Vec<(String, String)>,
    pub needs_human: Option<String>,
    /// The last `error` (a later `done` does not clear it: DESIGN says a
    /// final error fails the attempt; see [`StreamState::final_error`]).
    pub error: Option<String>,
    pub done: bool,
    /// Whether the last terminal line was an error (vs done).
    pub ended_in_error: bool,
    pub verdict: Option<(bool, Option<f64>, Option<f64>, String)>,
    pub saw_any: bool,
    /// Normalized usage so far (from [`Signal::Usage`] deltas and tool
    /// calls); the old per-line token signals only move `tokens`.
    pub usage: Usage,
    /// The model the CLI last named.
    pub model: Option<String>,
    /// The CLI's own cost estimate, as last reported.
    pub reported_cost_usd: Option<f64>,
    /// A limit the CLI stopped at.
    pub limit: Option<RuntimeLimit>,
}

/// A state change worth journaling.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The first recognized line.
    Running,
    Tool(String),
    /// Usage totals changed (tokens, tool calls).
    Usage {
        tokens: u64,
        tool_calls: u64,
    },
    Artifact {
        kind: String,
        path: String,
    },
    NeedsHuman(String),
    Done,
    Error(String),
}

impl StreamState {
    /// Folds a line's signals; returns the state changes.
    pub fn observe(&mut self, signals: Vec<Signal>) -> Vec<Change> {
        let mut changes = Vec::new();
        if !self.saw_any {
            self.saw_any = true;
            changes.push(Change::Running);
        }
        let (tokens0, calls0) = (self.tokens, self.tool_calls);
        let mut turn_sum = 0u64;
        for s in signals {
            match s {
                Signal::Heartbeat => {}
                Signal::Tool { name } => {
                    self.tool_calls += 1;
                    self.usage.tool_calls = self.usage.tool_calls.saturating_add(1);
                    self.last_tool = Some(name.clone());
                    changes.push(Change::Tool(name));
                }
                Signal::TurnTokens { tokens } => turn_sum = turn_sum.saturating_add(tokens),
                Signal::TotalTokens { tokens } => self.tokens = self.tokens.max(tokens),
                Signal::Artifact { kind, path } => {
                    self.artifacts.push((kind.clone(), path.clone()));
                    changes.push(Change::Artifact { kind, path });
                }
                Signal::NeedsHuman { reason } => {
                    self.needs_human = Some(reason.clone());
                    changes.push(Change::NeedsHuman(reason));
                }
                Signal::Verdict {
                    pass,
                    score,
                    max,
                    notes,
                } => self.verdict = Some((pass, score, max, notes)),
                Signal::Done => {
                    self.done = true;
                    self.ended_in_error = false;
                    changes.push(Change::Done);
                }
                Signal::Error { message } => {
                    self.error = Some(message.clone());
                    self.ended_in_error = true;
                    changes.push(Change::Error(message));
                }
                Signal::Usage(u) => {
                    self.usage += u;
                    turn_sum = turn_sum.saturating_add(u.tokens_for_budget());
                    self.tool_calls = self.tool_calls.saturating_add(u.tool_calls);
                }
                Signal::Model { name } => self.model = Some(name),
                Signal::ReportedCost { usd } => self.reported_cost_usd = Some(usd),
                Signal::LimitReached { limit } => self.limit = Some(limit),
            }
        }
        self.tokens = self.tokens.saturating_add(turn_sum);
        if self.tokens != tokens0 || self.tool_calls != calls0 {
            changes.push(Change::Usage {
                tokens: self.tokens,
                tool_calls: self.tool_calls,
            });
        }
        changes
    }

    /// The error that fails the attempt: an `error` line that was not
    /// followed by a `done`.
    pub fn final_error(&self) -> Option<&str> {
        if self.ended_in_error {
            self.error.as_deref()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<Vec<Signal>> {
        parse_line(s.as_bytes())
    }

    #[test]
    fn codewhale_lines() {
        let schema = r#""schema":"codewhale.exec-stream","schema_version":1"#;
        assert_eq!(
            p(&format!(r#"{{"type":"content","content":"hi",{schema}}}"#)),
            Some(vec![Signal::Heartbeat])
        );
        assert_eq!(
            p(r#"{"type":"tool_use","name":"bash","id":"t1","input":{"cmd":"ls"}}"#),
            Some(vec![Signal::Tool {
                name: "bash".into()
            }])
        );
        assert_eq!(
            p(
                r#"{"type":"turn_usage","turn":1,"input_tokens":100,"output_tokens":20,"reasoning_tokens":5}"#
            ),
            Some(vec![Signal::TurnTokens { tokens: 125 }])
        );
        assert_eq!(p(r#"{"type":"done"}"#), Some(vec![Signal::Done]));
        assert_eq!(
            p(r#"{"type":"error","error":"rate limited"}"#),
            Some(vec![Signal::Error {
                message: "rate limited".into()
            }])
        );
        assert_eq!(
            p(
                r#"{"type":"metadata","meta":{"receipt_kind":"terminal","input_tokens":10,"output_tokens":5,"status":"ok"}}"#
            ),
            Some(vec![Signal::TotalTokens { tokens: 15 }])
        );
    }

    #[test]
    fn orca_metadata_conventions() {
        assert_eq!(
            p(r#"{"type":"metadata","needs_human":{"reason":"needs a secret"}}"#),
            Some(vec![Signal::NeedsHuman {
                reason: "needs a secret".into()
            }])
        );
        assert_eq!(
            p(r#"{"type":"metadata","meta":{"artifact":{"kind":"report","path":"r.md"}}}"#),
            Some(vec![Signal::Artifact {
                kind: "report".into(),
                path: "r.md".into()
            }])
        );
        assert_eq!(
            p(r#"{"type":"metadata","meta":{"verdict":"fail","notes":"no finding"}}"#),
            Some(vec![Signal::Verdict {
                pass: false,
                score: None,
                max: None,
                notes: "no finding".into()
            }])
        );
    }

    #[test]
    fn claude_lines() {
        assert_eq!(
            p(
                r#"{"type":"assistant","message":{"content":[{"type":"text","text":"x"},{"type":"tool_use","name":"Bash","id":"1","input":{}}],"usage":{"input_tokens":3,"output_tokens":4}}}"#
            ),
            Some(vec![
                Signal::Tool {
                    name: "Bash".into()
                },
                Signal::TurnTokens { tokens: 7 }
            ])
        );
        assert_eq!(
            p(
                r#"{"type":"result","subtype":"success","is_error":false,"usage":{"input_tokens":30,"output_tokens":40}}"#
            ),
            Some(vec![Signal::TotalTokens { tokens: 70 }, Signal::Done])
        );
        assert!(matches!(
            p(r#"{"type":"result","subtype":"error_max_turns","is_error":true}"#).unwrap()[0],
            Signal::Error { .. }
        ));
    }

    #[test]
    fn everything_else_is_log() {
        for line in [
            "plain text",
            "",
            "[1,2]",
            "{not json",
            r#"{"no_type":1}"#,
            r#"{"type":"mystery"}"#,
            r#"{"type":5}"#,
        ] {
            assert_eq!(p(line), None, "{line}");
        }
        let long = format!(
            r#"{{"type":"done","pad":"{}"}}"#,
            "x".repeat(MAX_PARSED_LINE)
        );
        assert_eq!(p(&long), None);
    }

    #[test]
    fn state_counts_and_changes() {
        let mut s = StreamState::default();
        let c = s.observe(p(r#"{"type":"content","content":"x"}"#).unwrap());
        assert_eq!(c, [Change::Running]);
        assert_eq!(
            s.observe(p(r#"{"type":"content","content":"y"}"#).unwrap()),
            []
        );
        let c = s.observe(p(r#"{"type":"tool_use","name":"bash"}"#).unwrap());
        assert_eq!(
            c,
            [
                Change::Tool("bash".into()),
                Change::Usage {
                    tokens: 0,
                    tool_calls: 1
                }
            ]
        );
        let c =
            s.observe(p(r#"{"type":"turn_usage","input_tokens":7,"output_tokens":3}"#).unwrap());
        assert_eq!(
            c,
            [Change::Usage {
                tokens: 10,
                tool_calls: 1
            }]
        );
        s.observe(p(r#"{"type":"error","error":"boom"}"#).unwrap());
        assert_eq!(s.final_error(), Some("boom"));
        s.observe(p(r#"{"type":"done"}"#).unwrap());
        assert_eq!(s.final_error(), None, "a done after an error recovers");
        s.observe(
            p(r#"{"type":"metadata","meta":{"input_tokens":50,"output_tokens":50}}"#).unwrap(),
        );
        assert_eq!(s.tokens, 100);
    }

    #[test]
    fn state_folds_usage_deltas_and_runtime_facts() {
        let mut s = StreamState::default();
        let delta = Usage {
            input_tokens: 1_000,
            cached_input_tokens: 800,
            output_tokens: 50,
            reasoning_tokens: 5,
            tool_calls: 1,
            turns: 1,
            ..Usage::default()
        };
        let c = s.observe(vec![
            Signal::Model {
                name: "gpt-5".into(),
            },
            Signal::Tool {
                name: "shell".into(),
            },
            Signal::Usage(delta),
        ]);
        assert_eq!(
            c.last(),
            Some(&Change::Usage {
                tokens: 1_055,
                tool_calls: 2
            })
        );
        assert_eq!(
            s.usage.tool_calls, 2,
            "the tool signal and the delta's call"
        );
        assert_eq!(s.usage.input_tokens, 1_000);
        assert_eq!(s.model.as_deref(), Some("gpt-5"));
        let c = s.observe(vec![
            Signal::ReportedCost { usd: 0.25 },
            Signal::LimitReached {
                limit: RuntimeLimit::Turns,
            },
            Signal::Error {
                message: "error_max_turns".into(),
            },
        ]);
        assert_eq!(c, [Change::Error("error_max_turns".into())]);
        assert_eq!(s.reported_cost_usd, Some(0.25));
        assert_eq!(s.limit, Some(RuntimeLimit::Turns));
        // The legacy per-line tokens still add up beside the deltas.
        s.observe(vec![Signal::TurnTokens { tokens: 45 }]);
        assert_eq!(s.tokens, 1_100);
        assert_eq!(
            s.usage.input_tokens, 1_000,
            "legacy lines carry no breakdown"
        );
    }
}
