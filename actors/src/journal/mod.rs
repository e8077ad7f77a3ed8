//! The event-sourced journal (see docs/journal.md).

pub mod event;

pub use event::{Event, EVENT_SCHEMA_VERSION};
