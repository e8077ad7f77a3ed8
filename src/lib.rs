//! `orca`: the edges — CLI, renderers, daemon wiring — over `orca-actors`
//! (see docs/architecture.md).

pub mod cli;
pub mod daemon;
pub mod exit;
pub mod render;
