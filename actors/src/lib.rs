//! `orca-actors`: orca's domain — specs, the journal, supervision and the
//! actors (see docs/architecture.md).
//!
//! `spec`, `model` and `journal::event` import neither ractor nor tokio; the
//! actors see traits (host adapters, alert sinks, the journal handle), never
//! clap, axum or tables.

pub mod agent;
pub mod agents;
pub mod alert;
pub mod attempt;
pub mod control;
pub mod fuzzing;
pub mod host;
pub mod journal;
pub mod model;
pub mod ops;
pub mod outcome;
pub mod path;
pub mod persist;
pub mod policy;
pub mod redact;
pub mod resume;
pub mod root;
pub mod run;
pub mod runs;
pub mod runtime;
pub mod scorer;
pub mod services;
pub mod spec;
pub mod stream_json;
pub mod supervision;
pub mod view;
pub mod workspace;
