//! The attempt: one run of one task in a worker slot.

pub mod artifacts;
pub mod judge;
pub mod logcap;
pub mod stream_json;
