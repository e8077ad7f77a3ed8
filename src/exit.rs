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
#[error("{message}")]
pub struct InvalidInput {
    pub message: String,
    /// The name `--json` reports (`invalid_input`, or the API's code).
    pub code: String,
    pub details: Option<serde_json::Value>,
}

impl InvalidInput {
    /// An input error with the generic name.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: "invalid_input".into(),
            details: None,
        }
    }
}

/// A failure with a name of its own (for `--json` errors) and an exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// A stable snake_case name (`daemon_gone`, …).
    pub code: &'static str,
    pub exit: i32,
    pub message: String,
}

/// The exit code for an error that reached `main`.
pub fn code_for(err: &anyhow::Error) -> i32 {
    if let Some(f) = err.downcast_ref::<Failure>() {
        return f.exit;
    }
    if err.downcast_ref::<InvalidInput>().is_some()
        || err.downcast_ref::<orca_actors::spec::SpecError>().is_some()
    {
        INVALID
    } else {
        FAILED
    }
}

/// The one JSON object a `--json` command prints on stdout when it fails:
/// `{"error": {"code", "message", "exit", "details"?}}`.
pub fn json_error(err: &anyhow::Error) -> serde_json::Value {
    use serde_json::json;
    let exit = code_for(err);
    let message = format!("{err:#}");
    let (code, details) = if let Some(f) = err.downcast_ref::<Failure>() {
        (f.code.to_string(), None)
    } else if let Some(e) = err.downcast_ref::<orca_actors::spec::SpecError>() {
        (
            "invalid_spec".to_string(),
            Some(json!({ "diagnostics": e.diagnostics })),
        )
    } else if let Some(a) = err.downcast_ref::<crate::client::ApiFailure>() {
        (a.code.clone(), a.details.clone())
    } else if let Some(i) = err.downcast_ref::<InvalidInput>() {
        (i.code.to_string(), i.details.clone())
    } else {
        ("failed".to_string(), None)
    };
    let mut error = json!({ "code": code, "message": message, "exit": exit });
    if let Some(d) = details {
        error["details"] = d;
    }
    json!({ "error": error })
}
