//! One normalized usage, whatever the CLI reported.
//!
//! Every parser turns its CLI's token counts into [`Usage`] *deltas* with one
//! meaning per field, so totals are plain sums and one budget rule fits all:
//!
//! - `input_tokens` counts **every** input token, cached reads and cache
//!   writes included. Codex and Gemini already report it that way (their
//!   cached counts are a part of their input counts); Claude reports
//!   `input_tokens` without its cache reads and writes, so the Claude parser
//!   adds `cache_read_input_tokens` and `cache_creation_input_tokens` to it.
//! - `cached_input_tokens` and `cache_write_tokens` are the parts of
//!   `input_tokens` read from and written to the provider's prompt cache.
//!   They are priced differently, never added to the budget again.
//! - `output_tokens` is what the model generated as the provider bills it.
//! - `reasoning_tokens` are tokens the provider bills *beside* the output
//!   count (Gemini's thoughts). Where reasoning is already inside the output
//!   count (OpenAI, Codex, CodeWhale, Claude) the parsers leave it at 0, so
//!   nothing is counted twice.
//!
//! The struct has plain fields only (bincode-safe: it is meant to travel in
//! journal events and receipts).

use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

/// Token and call counts; additive (a delta or a total).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Usage {
    /// Every input token, cached reads and cache writes included.
    pub input_tokens: u64,
    /// The part of `input_tokens` read from the prompt cache.
    pub cached_input_tokens: u64,
    /// The part of `input_tokens` written to the prompt cache.
    pub cache_write_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Billed tokens that are not inside `output_tokens` (Gemini's thoughts).
    pub reasoning_tokens: u64,
    /// Tool calls (commands, MCP tools, web searches).
    pub tool_calls: u64,
    /// Model turns.
    pub turns: u64,
}

impl Usage {
    /// The tokens `budget.max_tokens` compares against: input + output +
    /// reasoning (cached reads and cache writes are inside input already).
    pub fn tokens_for_budget(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.reasoning_tokens)
    }

    /// Input tokens that were neither read from nor written to the cache.
    pub fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cached_input_tokens)
            .saturating_sub(self.cache_write_tokens)
    }

    /// Whether every count is zero.
    pub fn is_zero(&self) -> bool {
        *self == Usage::default()
    }

    /// Field by field `self - earlier`, never below zero: what was added
    /// since a cumulative report `earlier`.
    pub fn saturating_sub(&self, earlier: &Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_sub(earlier.input_tokens),
            cached_input_tokens: self
                .cached_input_tokens
                .saturating_sub(earlier.cached_input_tokens),
            cache_write_tokens: self
                .cache_write_tokens
                .saturating_sub(earlier.cache_write_tokens),
            output_tokens: self.output_tokens.saturating_sub(earlier.output_tokens),
            reasoning_tokens: self
                .reasoning_tokens
                .saturating_sub(earlier.reasoning_tokens),
            tool_calls: self.tool_calls.saturating_sub(earlier.tool_calls),
            turns: self.turns.saturating_sub(earlier.turns),
        }
    }

    /// Field by field maximum.
    pub fn max(&self, other: &Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.max(other.input_tokens),
            cached_input_tokens: self.cached_input_tokens.max(other.cached_input_tokens),
            cache_write_tokens: self.cache_write_tokens.max(other.cache_write_tokens),
            output_tokens: self.output_tokens.max(other.output_tokens),
            reasoning_tokens: self.reasoning_tokens.max(other.reasoning_tokens),
            tool_calls: self.tool_calls.max(other.tool_calls),
            turns: self.turns.max(other.turns),
        }
    }

    /// Whether no field of `self` is below the same field of `other`.
    pub fn covers(&self, other: &Usage) -> bool {
        self.max(other) == *self
    }

    /// Keeps the cache parts inside the input count (a CLI that reports a
    /// cache count larger than its input count is believed on the cache
    /// count: the input grows to hold it).
    pub fn normalized(mut self) -> Usage {
        let parts = self
            .cached_input_tokens
            .saturating_add(self.cache_write_tokens);
        self.input_tokens = self.input_tokens.max(parts);
        self
    }
}

/// What one attempt used, as journaled (`Event::AttemptUsage`) and shown
/// in receipts, `orca inspect`, `orca status` and the API.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The normalized usage the stream reported.
    pub usage: Usage,
    /// Budget tokens ([`crate::stream_json::StreamState::tokens`]: the
    /// normalized usage, or the token totals a plain stream reported).
    pub tokens: u64,
    /// The model priced: the one the stream named, else the configured one.
    pub model: Option<String>,
    /// orca's own cost, from the price table; `None`: not priced (no
    /// model, or one the table does not know).
    pub cost_usd: Option<f64>,
    /// The CLI's own figure, kept beside orca's, never trusted for a
    /// budget.
    pub reported_cost_usd: Option<f64>,
}

impl UsageRecord {
    /// Whether there is anything to show.
    pub fn is_empty(&self) -> bool {
        self.usage.is_zero()
            && self.tokens == 0
            && self.cost_usd.is_none()
            && self.reported_cost_usd.is_none()
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.input_tokens = self.input_tokens.saturating_add(o.input_tokens);
        self.cached_input_tokens = self
            .cached_input_tokens
            .saturating_add(o.cached_input_tokens);
        self.cache_write_tokens = self.cache_write_tokens.saturating_add(o.cache_write_tokens);
        self.output_tokens = self.output_tokens.saturating_add(o.output_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(o.reasoning_tokens);
        self.tool_calls = self.tool_calls.saturating_add(o.tool_calls);
        self.turns = self.turns.saturating_add(o.turns);
    }
}

impl Add for Usage {
    type Output = Usage;
    fn add(mut self, o: Usage) -> Usage {
        self += o;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(input: u64, cached: u64, write: u64, output: u64, reasoning: u64) -> Usage {
        Usage {
            input_tokens: input,
            cached_input_tokens: cached,
            cache_write_tokens: write,
            output_tokens: output,
            reasoning_tokens: reasoning,
            ..Usage::default()
        }
    }

    #[test]
    fn budget_tokens_count_cache_parts_once() {
        // 1,000 input of which 600 cached and 100 written: the budget sees
        // the 1,000 once, plus output and reasoning.
        let x = u(1_000, 600, 100, 50, 7);
        assert_eq!(x.tokens_for_budget(), 1_057);
        assert_eq!(x.uncached_input_tokens(), 300);
    }

    #[test]
    fn sums_and_differences() {
        let a = u(10, 2, 1, 5, 0);
        let b = u(20, 10, 0, 6, 3);
        let total = a + b;
        assert_eq!(total, u(30, 12, 1, 11, 3));
        assert_eq!(total.saturating_sub(&a), b);
        assert_eq!(a.saturating_sub(&b), u(0, 0, 1, 0, 0));
        assert!(total.covers(&a) && !a.covers(&b));
        let saturated = Usage {
            input_tokens: u64::MAX,
            ..Usage::default()
        } + u(5, 0, 0, 0, 0);
        assert_eq!(saturated.input_tokens, u64::MAX);
        assert_eq!(saturated.tokens_for_budget(), u64::MAX);
    }

    #[test]
    fn normalized_keeps_cache_inside_input() {
        assert_eq!(u(10, 30, 5, 0, 0).normalized().input_tokens, 35);
        assert_eq!(u(100, 30, 5, 0, 0).normalized().input_tokens, 100);
    }

    #[test]
    fn survives_bincode() {
        let x = Usage {
            tool_calls: 4,
            turns: 2,
            ..u(1, 2, 3, 4, 5)
        };
        let bytes = bincode::serde::encode_to_vec(x, bincode::config::standard()).unwrap();
        let (back, _): (Usage, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, x);
    }
}
