//! Budget checks as pure functions: an attempt's (`budget`) after each
//! batch of signals, a run's (`budget` at the run level) before leasing.

use std::fmt;

use super::usage::Usage;
use crate::spec::types::{Budget, RunBudget};
use crate::stream_json::StreamState;

/// A budget that was exceeded, with what was used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BudgetBreach {
    Tokens { used: u64, limit: u64 },
    ToolCalls { used: u64, limit: u64 },
    CostUsd { used: f64, limit: f64 },
    Seconds { used: f64, limit: f64 },
}

impl BudgetBreach {
    /// The limit, as journaled.
    pub fn limit(&self) -> crate::journal::event::BudgetLimit {
        use crate::journal::event::BudgetLimit;
        match self {
            BudgetBreach::Tokens { .. } => BudgetLimit::Tokens,
            BudgetBreach::ToolCalls { .. } => BudgetLimit::ToolCalls,
            BudgetBreach::CostUsd { .. } => BudgetLimit::CostUsd,
            BudgetBreach::Seconds { .. } => BudgetLimit::Seconds,
        }
    }

    /// The budget field (`max_tokens`, …).
    pub fn field(&self) -> &'static str {
        match self {
            BudgetBreach::Tokens { .. } => "max_tokens",
            BudgetBreach::ToolCalls { .. } => "max_tool_calls",
            BudgetBreach::CostUsd { .. } => "max_cost_usd",
            BudgetBreach::Seconds { .. } => "max_seconds",
        }
    }
}

impl fmt::Display for BudgetBreach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetBreach::Tokens { used, limit } => {
                write!(f, "{used} tokens used, over budget.max_tokens = {limit}")
            }
            BudgetBreach::ToolCalls { used, limit } => {
                write!(
                    f,
                    "{used} tool calls made, over budget.max_tool_calls = {limit}"
                )
            }
            BudgetBreach::CostUsd { used, limit } => {
                write!(
                    f,
                    "${used:.4} spent (orca's computation), over budget.max_cost_usd = ${limit}"
                )
            }
            BudgetBreach::Seconds { used, limit } => {
                write!(f, "{used:.1}s elapsed, over budget.max_seconds = {limit}s")
            }
        }
    }
}

/// The first of an attempt's budgets its stream has exceeded (tokens, then
/// tool calls, then cost). `cost_usd` is orca's computation for the
/// stream's usage (`None`: not priced). Seconds are a timer's business.
pub fn attempt_breach(
    budget: &Budget,
    stream: &StreamState,
    cost_usd: Option<f64>,
) -> Option<BudgetBreach> {
    if let Some(limit) = budget.max_tokens.filter(|m| stream.tokens > *m) {
        return Some(BudgetBreach::Tokens {
            used: stream.tokens,
            limit,
        });
    }
    if let Some(limit) = budget.max_tool_calls.filter(|m| stream.tool_calls > *m) {
        return Some(BudgetBreach::ToolCalls {
            used: stream.tool_calls,
            limit,
        });
    }
    match (budget.max_cost_usd, cost_usd) {
        (Some(limit), Some(used)) if used > limit => Some(BudgetBreach::CostUsd { used, limit }),
        _ => None,
    }
}

/// What a run has used so far: finished attempts and what running attempts
/// have reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSpend {
    /// Budget tokens ([`StreamState::tokens`]: normalized usage plus the
    /// `auto` format's token totals).
    pub tokens: u64,
    /// Normalized usage.
    pub usage: Usage,
    /// orca's cost of the priced attempts.
    pub cost_usd: f64,
    /// Attempts whose usage could not be priced (unknown model).
    pub unpriced_attempts: u64,
}

impl RunSpend {
    /// Adds one attempt's stream state and orca's cost of it.
    pub fn add(&mut self, stream: &StreamState, cost_usd: Option<f64>) {
        self.tokens = self.tokens.saturating_add(stream.tokens);
        self.usage += stream.usage;
        match cost_usd {
            Some(c) if c.is_finite() && c >= 0.0 => self.cost_usd += c,
            _ => self.unpriced_attempts += 1,
        }
    }
}

impl RunSpend {
    /// Adds one finished attempt's journaled usage.
    pub fn add_record(&mut self, r: &super::usage::UsageRecord) {
        self.tokens = self.tokens.saturating_add(r.tokens);
        self.usage += r.usage;
        match r.cost_usd {
            Some(c) if c.is_finite() && c >= 0.0 => self.cost_usd += c,
            _ => self.unpriced_attempts += 1,
        }
    }
}

/// The first run budget exceeded (tokens, cost, then wall time): the run
/// leases no new attempt and raises `budget_exceeded`.
pub fn run_breach(budget: &RunBudget, spend: &RunSpend, elapsed_secs: f64) -> Option<BudgetBreach> {
    let tokens = spend.tokens;
    if let Some(limit) = budget.max_tokens.filter(|m| tokens > *m) {
        return Some(BudgetBreach::Tokens {
            used: tokens,
            limit,
        });
    }
    if let Some(limit) = budget.max_cost_usd.filter(|m| spend.cost_usd > *m) {
        return Some(BudgetBreach::CostUsd {
            used: spend.cost_usd,
            limit,
        });
    }
    if let Some(limit) = budget.max_seconds.map(|s| s.get()) {
        if elapsed_secs > limit {
            return Some(BudgetBreach::Seconds {
                used: elapsed_secs,
                limit,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::types::Seconds;

    #[test]
    fn attempt_budgets_in_order() {
        let b = Budget {
            max_tokens: Some(1_000),
            max_tool_calls: Some(2),
            max_cost_usd: Some(0.5),
            ..Budget::default()
        };
        let mut s = StreamState::default();
        assert_eq!(attempt_breach(&b, &s, Some(0.5)), None);
        s.tool_calls = 3;
        assert_eq!(
            attempt_breach(&b, &s, None),
            Some(BudgetBreach::ToolCalls { used: 3, limit: 2 })
        );
        s.tokens = 1_001;
        let t = attempt_breach(&b, &s, Some(9.0)).unwrap();
        assert_eq!(
            t,
            BudgetBreach::Tokens {
                used: 1_001,
                limit: 1_000
            }
        );
        assert_eq!(t.field(), "max_tokens");
        let s = StreamState::default();
        let c = attempt_breach(&b, &s, Some(0.51)).unwrap();
        assert_eq!(c.field(), "max_cost_usd");
        assert!(c.to_string().contains("$0.5100"), "{c}");
        // Unpriced: a cost budget cannot trip.
        assert_eq!(attempt_breach(&b, &s, None), None);
    }

    #[test]
    fn run_budgets_sum_attempts() {
        let b = RunBudget {
            max_tokens: Some(100),
            max_cost_usd: Some(1.0),
            max_seconds: Seconds::new(60.0),
            ..RunBudget::default()
        };
        let mut spend = RunSpend::default();
        let mut attempt = StreamState::default();
        attempt.observe(vec![crate::stream_json::Signal::Usage(Usage {
            input_tokens: 40,
            output_tokens: 10,
            ..Usage::default()
        })]);
        assert_eq!(attempt.tokens, 50);
        spend.add(&attempt, Some(0.6));
        assert_eq!(run_breach(&b, &spend, 1.0), None);
        spend.add(&attempt, None);
        assert_eq!(spend.unpriced_attempts, 1);
        assert_eq!(spend.usage.input_tokens, 80);
        assert_eq!(run_breach(&b, &spend, 1.0), None, "100 tokens is the limit");
        spend.add(&StreamState::default(), Some(0.5));
        match run_breach(&b, &spend, 1.0) {
            Some(BudgetBreach::CostUsd { used, limit }) => {
                assert!((used - 1.1).abs() < 1e-9 && limit == 1.0, "{used}")
            }
            other => panic!("{other:?}"),
        }
        // The `auto` format's token totals count too.
        let mut legacy = StreamState::default();
        legacy.observe(vec![crate::stream_json::Signal::TurnTokens { tokens: 1 }]);
        spend.add(&legacy, Some(0.0));
        assert_eq!(run_breach(&b, &spend, 1.0).unwrap().field(), "max_tokens");
        let idle = RunSpend::default();
        assert_eq!(run_breach(&b, &idle, 61.0).unwrap().field(), "max_seconds");
    }
}
