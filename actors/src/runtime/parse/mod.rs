//! Stateful parsers of the agent CLIs' streams, one per [`StreamFormat`],
//! behind one trait: feed a stdout line, get [`Signal`]s.
//!
//! Every parser:
//! - returns nothing for a line that is not its CLI's JSON (log only): not
//!   JSON, not an object, an unknown `type`, or longer than
//!   [`MAX_PARSED_LINE`]; it never fails and never panics;
//! - returns at least [`Signal::Heartbeat`] for a line it recognized;
//! - reports usage as normalized **deltas** ([`Signal::Usage`]) — Claude's
//!   repeated `message.id` usage counted once, Codex's cumulative
//!   `turn.completed` usage differenced, a final total (Claude's `result`,
//!   CodeWhale's `metadata`, Gemini's `result.stats`) only adding what the
//!   deltas had not counted yet;
//! - reads orca's own `metadata` lines (`needs_human`, `artifact`,
//!   `verdict`) and, for agent CLIs whose output orca cannot print into,
//!   the same objects written on a line of their own in the agent's final
//!   message.
//!
//! State is bounded: the ids a parser remembers (message ids, item ids) are
//! capped at [`MAX_REMEMBERED_IDS`], the final-message text at
//! [`MAX_FINAL_TEXT`].

mod claude;
mod codewhale;
mod codex;
mod gemini;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;

use serde_json::{Map, Value};

pub use claude::ClaudeParser;
pub use codewhale::CodewhaleParser;
pub use codex::CodexParser;
pub use gemini::GeminiParser;

use super::preset::StreamFormat;
use crate::stream_json::{metadata_signals, parse_line, Signal, MAX_PARSED_LINE};

/// Ids a parser remembers at most (older ones are forgotten first).
pub const MAX_REMEMBERED_IDS: usize = 4096;
/// Bytes of an agent's final message kept to look for orca's metadata lines.
pub const MAX_FINAL_TEXT: usize = 64 * 1024;
/// Longest tool name a parser reports (the attempt bounds it again).
const MAX_TOOL_NAME: usize = 120;

/// Turns a CLI's stdout, line by line, into signals.
pub trait StreamParser {
    /// One line of stdout (without its newline). Empty: a log line.
    fn feed(&mut self, line: &[u8]) -> Vec<Signal>;
}

/// The parser for a format.
#[derive(Debug)]
pub enum Parser {
    Auto(AutoParser),
    Codewhale(CodewhaleParser),
    Claude(ClaudeParser),
    Codex(CodexParser),
    Gemini(GeminiParser),
}

impl Parser {
    pub fn new(format: StreamFormat) -> Self {
        match format {
            StreamFormat::Auto => Parser::Auto(AutoParser),
            StreamFormat::Codewhale => Parser::Codewhale(CodewhaleParser::default()),
            StreamFormat::Claude => Parser::Claude(ClaudeParser::default()),
            StreamFormat::Codex => Parser::Codex(CodexParser::default()),
            StreamFormat::Gemini => Parser::Gemini(GeminiParser::default()),
        }
    }

    pub fn format(&self) -> StreamFormat {
        match self {
            Parser::Auto(_) => StreamFormat::Auto,
            Parser::Codewhale(_) => StreamFormat::Codewhale,
            Parser::Claude(_) => StreamFormat::Claude,
            Parser::Codex(_) => StreamFormat::Codex,
            Parser::Gemini(_) => StreamFormat::Gemini,
        }
    }
}

impl StreamParser for Parser {
    fn feed(&mut self, line: &[u8]) -> Vec<Signal> {
        match self {
            Parser::Auto(p) => p.feed(line),
            Parser::Codewhale(p) => p.feed(line),
            Parser::Claude(p) => p.feed(line),
            Parser::Codex(p) => p.feed(line),
            Parser::Gemini(p) => p.feed(line),
        }
    }
}

/// Format `auto`: orca's stateless detection ([`parse_line`]), unchanged.
#[derive(Debug, Default, Clone, Copy)]
pub struct AutoParser;

impl StreamParser for AutoParser {
    fn feed(&mut self, line: &[u8]) -> Vec<Signal> {
        parse_line(line).unwrap_or_default()
    }
}

/// The JSON object on a line, with its `type`; `None` for anything else.
fn typed_object(line: &[u8]) -> Option<(String, Map<String, Value>)> {
    if line.len() > MAX_PARSED_LINE {
        return None;
    }
    let trimmed = line.trim_ascii();
    if trimmed.first() != Some(&b'{') {
        return None;
    }
    match serde_json::from_slice::<Value>(trimmed).ok()? {
        Value::Object(obj) => {
            let kind = obj.get("type")?.as_str()?.to_string();
            Some((kind, obj))
        }
        _ => None,
    }
}

/// A non-negative integer field, 0 when absent or not one.
fn count(v: Option<&Value>, key: &str) -> u64 {
    v.and_then(|v| v.get(key)).map(as_count).unwrap_or(0)
}

/// A count: an unsigned integer, or a non-negative float truncated (some
/// CLIs write `12.0`); anything else 0.
fn as_count(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_u64().unwrap_or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f.min(u64::MAX as f64) as u64)
                .unwrap_or(0)
        }),
        _ => 0,
    }
}

/// A string field.
fn text<'v>(v: Option<&'v Value>, key: &str) -> Option<&'v str> {
    v.and_then(|v| v.get(key)).and_then(Value::as_str)
}

/// An error message from a string or an object with `message`.
fn message_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(
            other
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| other.to_string()),
        ),
    }
}

/// A tool name of bounded length (cut on a char boundary).
fn tool_name(name: &str) -> String {
    let name = name.trim();
    if name.len() <= MAX_TOOL_NAME {
        return name.to_string();
    }
    let mut end = MAX_TOOL_NAME;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &name[..end])
}

/// orca's `metadata` line (`{"type": "metadata", "needs_human": …}` or with
/// the object under `meta`), in a format whose CLI has no `metadata` type of
/// its own.
fn orca_metadata(obj: &Map<String, Value>, out: &mut Vec<Signal>) {
    let v = Value::Object(obj.clone());
    metadata_signals(&v, out);
    if let Some(meta) = obj.get("meta") {
        metadata_signals(meta, out);
    }
}

/// orca's metadata objects written on lines of their own in an agent's
/// final message (``{"verdict": "pass"}``, with or without
/// `"type": "metadata"`, inside a code fence or not).
fn metadata_in_text(text: &str, out: &mut Vec<Signal>) {
    for line in text.lines() {
        let line = line.trim();
        if !(line.starts_with('{') && line.ends_with('}')) {
            continue;
        }
        if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(line) {
            metadata_signals(&v, out);
            if let Some(meta) = v.get("meta") {
                metadata_signals(meta, out);
            }
        }
    }
}

/// The tail of a text, at most `MAX_FINAL_TEXT` bytes (cut on a char
/// boundary).
fn keep_tail(buf: &mut String) {
    if buf.len() <= MAX_FINAL_TEXT {
        return;
    }
    let mut start = buf.len() - MAX_FINAL_TEXT;
    while !buf.is_char_boundary(start) {
        start += 1;
    }
    buf.drain(..start);
}

/// A set that forgets its oldest members past a cap.
#[derive(Debug)]
struct RecentSet<K> {
    set: HashSet<K>,
    order: VecDeque<K>,
}

impl<K> Default for RecentSet<K> {
    fn default() -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> RecentSet<K> {
    /// Inserts; `true` when `k` was not there.
    fn insert(&mut self, k: K) -> bool {
        if !self.set.insert(k.clone()) {
            return false;
        }
        self.order.push_back(k);
        if self.order.len() > MAX_REMEMBERED_IDS {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// A map that forgets its oldest keys past a cap.
#[derive(Debug)]
struct RecentMap<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K, V> Default for RecentMap<K, V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, V> RecentMap<K, V> {
    fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }

    fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back(k);
            if self.order.len() > MAX_REMEMBERED_IDS {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}
