//! Agent runtimes, without actors: presets, stream parsers, usage, prices
//! and budgets (docs/runtimes.md).
//!
//! | piece | what it does |
//! |---|---|
//! | [`Preset`], [`Preset::invocation`] | a CLI's argv (streaming flags, model, extra args) and where its prompt goes (stdin, or a file for long CodeWhale prompts) |
//! | [`Preset::classify_exit`] | a CLI's exit code → transient / budget / task |
//! | [`StreamFormat`], [`parse::Parser`] | one stateful parser per format: stdout line → [`Signal`](crate::attempt::stream_json::Signal)s, usage as normalized deltas |
//! | [`Usage`] | normalized, additive usage; [`Usage::tokens_for_budget`] |
//! | [`prices::PriceTable`], [`prices::cost_usd`] | the price table in the repository (+ `[[prices]]` overrides) and orca's cost |
//! | [`resolve::resolve`], [`resolve::unenforceable_budgets`] | which runtime a task gets; which of its budgets cannot be enforced |
//! | [`budget`] | attempt and run budget checks |
//!
//! Nothing here imports ractor or tokio: the attempt actor feeds lines and
//! acts on the results.

pub mod preset;
pub mod prices;
pub mod usage;

pub use preset::{
    stdin_from_file, ExitClass, ExitMeaning, Invocation, InvocationInput, Preset, PromptChannel,
    Stdin, StreamFormat,
};
pub use prices::{cost_usd, PriceEntry, PriceTable};
pub use usage::Usage;
