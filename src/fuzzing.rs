//! Fuzz entry points of the `orca` crate (the API's request bodies and
//! `orca mcp`'s tool inputs), beside `orca_actors::fuzzing`'s: each target
//! in `fuzz/fuzz_targets/` calls one, and `tests/fuzz_corpus.rs` runs them
//! all over every corpus and regression input on stable (docs/fuzzing.md).

pub use crate::api::fuzzing::{api_agent, api_control, api_submit, api_verdict};
#[cfg(feature = "mcp")]
pub use crate::mcp::fuzz_tool_input as mcp_tool;
pub use orca_actors::fuzzing::Entry;

/// This crate's targets: (name, entry point).
pub const TARGETS: &[(&str, Entry)] = &[
    ("api_submit", api_submit),
    ("api_verdict", api_verdict),
    ("api_control", api_control),
    ("api_agent", api_agent),
    #[cfg(feature = "mcp")]
    ("mcp_tool", mcp_tool),
];

/// Every target, both crates'.
pub fn all_targets() -> Vec<(&'static str, Entry)> {
    orca_actors::fuzzing::TARGETS
        .iter()
        .chain(TARGETS)
        .copied()
        .collect()
}

/// The entry point of a target by name.
pub fn target(name: &str) -> Option<Entry> {
    all_targets()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| f)
}
