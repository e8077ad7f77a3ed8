//! Exit codes (documented in README.md and docs/spec.md).
//!
//! `orca run` uses all of them; every other command uses [`OK`], [`FAILED`]
//! (the thing asked for failed) and [`INVALID`].

/// Success: for `orca run`, every task passed.
pub const OK: i32 = 0;
/// `orca run`: some task failed or timed out. Other commands: the thing
/// asked for failed.
pub const FAILED: i32 = 1;
/// Invalid input or usage (bad spec, bad flag, unknown run).
pub const INVALID: i32 = 2;
/// `orca run`: no failures, but some receipt awaits a manual verdict.
pub const AWAITING_VERDICT: i32 = 3;
/// `orca run`: cancelled by the operator.
pub const CANCELLED: i32 = 4;
/// `orca run`: the run was escalated (past its supervision intensity).
pub const ESCALATED: i32 = 5;
/// `orca run`: orca got SIGTERM or SIGHUP before the run ended; its
/// attempts were interrupted by orca (using up no attempt) and
/// `orca run --resume <run>` carries it on.
pub const SUSPENDED: i32 = 6;

/// An error caused by the caller's input: maps to [`INVALID`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// The exit code for an error that reached `main`.
pub fn code_for(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<InvalidInput>().is_some()
        || err.downcast_ref::<orca_actors::spec::SpecError>().is_some()
    {
        INVALID
    } else {
        FAILED
    }
}
