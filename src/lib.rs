//! `orca`: the edges — CLI, renderers, daemon wiring — over `orca-actors`
//! (see docs/architecture.md).

pub mod api;
pub mod cli;
pub mod client;
pub mod console;
pub mod daemon;
pub mod exit;
pub mod fuzzing;
pub mod mcp;
pub mod render;
