//! The `scorer` actor (`/runs/<run>/scorer`, one per run, supervised by
//! the run): verifies finished attempts.
//!
//! Kinds: the deterministic ones in [`checks`] (`exit_code`, `file_exists`,
//! `regex_match`, `json_path`); `command` (a verifier process, [`process`]);
//! `verifier_prompt` (the agent runtime asked to judge the evidence); and
//! `manual`, which the attempt settles itself as `partial` until an operator
//! gives a verdict. Every scoring runs in its own task with the scorer's
//! timeout (default 120 s) and answers through its own reply port, so the
//! actor stays responsive, a hung scorer cannot stall the run, and a scorer
//! that errors, panics or times out gives `fail` with source `verifier` and
//! the alert class `verifier_failed` — the attempt's receipt is never lost.
//!
//! # Messages ([`ScorerMsg`])
//!
//! | variant | what it does | reply | journals |
//! |---|---|---|---|
//! | `Score(request, reply)` | runs the request's scorer with its timeout | [`Judgement`] | — (the attempt journals its receipt) |

pub mod actor;
pub mod checks;
pub mod process;

use std::path::PathBuf;
use std::time::SystemTime;

use ractor::RpcReplyPort;

use crate::host::ExitInfo;
use crate::model::{ArtifactRef, AttemptRef, Receipt};
use crate::outcome::Judgement;
use crate::spec::{RuntimeConfig, ScorerSpec};

pub use actor::ScorerActor;

/// Messages of the scorer (see the table above).
#[derive(Debug)]
pub enum ScorerMsg {
    Score(Box<ScoreRequest>, RpcReplyPort<Judgement>),
}

/// Everything a scorer may look at.
#[derive(Clone, Debug)]
pub struct ScoreRequest {
    pub attempt: AttemptRef,
    pub scorer: ScorerSpec,
    pub workspace_root: PathBuf,
    /// `workspace.root` of the task.
    pub task_root: Option<String>,
    /// The attempt directory, relative to the workspace.
    pub attempt_dir_rel: PathBuf,
    /// When the attempt started (freshness).
    pub started: SystemTime,
    pub exit: ExitInfo,
    /// The receipt so far (result `partial` until the scorer decides).
    pub draft: Receipt,
    pub artifacts: Vec<ArtifactRef>,
    /// The task's objective, for the verifier's evidence.
    pub objective: Option<String>,
    /// The agent runtime (for `verifier_prompt`).
    pub runtime: Option<RuntimeConfig>,
    /// Cap for the verifier's own logs.
    pub log_cap: u64,
    /// The attempt's secret values: redacted from the verifier's logs too.
    pub secrets: crate::redact::Secrets,
    /// The task's confinement: verifier processes run under it too.
    pub confine: crate::host::sandbox::Confine,
    /// Whether the task's trust level allows `secret_env` (a
    /// `verifier_prompt` verifier's runtime secrets).
    pub secrets_allowed: bool,
}

impl ScoreRequest {
    pub fn attempt_dir(&self) -> PathBuf {
        self.workspace_root.join(&self.attempt_dir_rel)
    }

    /// The task's working directory.
    pub fn task_dir(&self) -> PathBuf {
        match crate::spec::paths::task_dir_relative(self.task_root.as_deref()) {
            Ok(rel) => self.workspace_root.join(rel),
            Err(_) => self.workspace_root.clone(),
        }
    }
}
