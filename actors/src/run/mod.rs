//! The run supervisor and its state.

pub mod state;
