//! Agent runtimes, without actors: presets, stream parsers, usage, prices
//! and budgets (docs/runtimes.md).
//!
//! | piece | what it does |
//! |---|---|
//! | [`Preset`], [`Preset::invocation`] | a CLI's argv (streaming flags, model, extra args) and where its prompt goes (stdin, or a file for long CodeWhale prompts) |
//! | [`Preset::classify_exit`] | a CLI's exit code → transient / budget / task |
//! | [`StreamFormat`], [`parse::Parser`] | one stateful parser per format: stdout line → [`Signal`](crate::stream_json::Signal)s, usage as normalized deltas |
//! | [`Usage`] | normalized, additive usage; [`Usage::tokens_for_budget`] |
//! | [`prices::PriceTable`], [`prices::cost_usd`] | the price table in the repository (+ `[[prices]]` overrides) and orca's cost |
//! | [`resolve::resolve`], [`resolve::unenforceable_budgets`] | which runtime a task gets; which of its budgets cannot be enforced |
//! | [`budget`] | attempt and run budget checks |
//! | [`profile`] | a task's `tool_profile` / `tools` → each CLI's own flags, or a refusal |
//! | [`launch`] | a resolved runtime + a prompt → the argv, stdin and stream format to start with (attempts and verifiers) |
//!
//! Nothing here imports ractor or tokio: the attempt actor feeds lines and
//! acts on the results.

/// Whether the attempt actor runs presets: it does (validation no longer
/// warns on a task's `runtime.preset`).
pub const PRESETS_WIRED: bool = true;

pub mod budget;
pub mod launch;
pub mod parse;
pub mod preset;
pub mod prices;
pub mod profile;
pub mod resolve;
pub mod usage;

pub use parse::{Parser, StreamParser};
pub use preset::{
    stdin_from_file, ExitClass, ExitMeaning, Invocation, InvocationInput, Preset, PromptChannel,
    Stdin, StreamFormat,
};
pub use prices::{cost_usd, PriceEntry, PriceTable};
pub use resolve::{resolve, run_budget_gaps, unenforceable_budgets, ResolvedRuntime};
pub use usage::{Usage, UsageRecord};
