//! `orca-actors`: orca's domain — specs, the journal, supervision and the
//! actors (see docs/architecture.md).
//!
//! `spec`, `model` and `journal::event` import neither ractor nor tokio; the
//! actors see traits (host adapters, alert sinks, the journal handle), never
//! clap, axum or tables.

pub mod attempt;
pub mod host;
pub mod journal;
pub mod model;
pub mod run;
pub mod scorer;
pub mod spec;
pub mod supervision;
pub mod workspace;
