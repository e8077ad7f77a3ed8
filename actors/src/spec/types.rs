//! The spec types: runs, tasks, workers, scorers, alerts.
//!
//! Every struct keeps the fields it does not know in `extra` and writes them
//! back when serialized, so a spec round-trips; `orca validate` warns about
//! each unknown field. Optional fields stay `None` when absent (so the
//! normalized spec says what the author wrote); the `effective_*` accessors
//! apply the documented defaults (docs/spec.md).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

pub use super::policy::{Enforcement, Grant, NetworkPolicy, SecurityPolicy, TrustLevel};
use crate::model::{AlertClass, AlertSeverity, FailureClass, RestartType, Strategy};
use crate::runtime::{Preset, StreamFormat};

/// Free-form or unknown fields, kept in order.
pub type Extra = Map<String, Value>;

/// Default `retry_policy.max_attempts` (counts the first attempt).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default `retry_policy.initial_backoff_seconds`.
pub const DEFAULT_INITIAL_BACKOFF_SECS: f64 = 5.0;
/// Default `retry_policy.max_backoff_seconds`.
pub const DEFAULT_MAX_BACKOFF_SECS: f64 = 300.0;
/// Default `retry_policy.backoff_multiplier`.
pub const DEFAULT_BACKOFF_MULTIPLIER: f64 = 2.0;
/// Jitter fraction used when `jitter` is `true` (or absent): the delay is
/// multiplied by a random factor in `[1 - j, 1]`.
pub const DEFAULT_JITTER: f64 = 0.2;
/// Default stale threshold (no output or event for this long).
pub const DEFAULT_STALE_AFTER_SECS: f64 = 300.0;
/// Default run supervision intensity: restarts…
pub const DEFAULT_RUN_MAX_RESTARTS: u32 = 20;
/// …within this many seconds.
pub const DEFAULT_RUN_WITHIN_SECS: f64 = 60.0;
/// Default and ceiling of `max_spawn_depth`.
pub const MAX_SPAWN_DEPTH: u32 = 3;
/// Default scorer timeout.
pub const DEFAULT_SCORER_TIMEOUT_SECS: f64 = 120.0;
/// Default `max_concurrent_tasks` of a declared worker.
pub const DEFAULT_WORKER_CONCURRENCY: u32 = 1;
/// Default ssh port.
pub const DEFAULT_SSH_PORT: u16 = 22;
/// Default ssh `max_sessions` (task channels per host; 2 more are kept for
/// control commands, within OpenSSH's default MaxSessions of 10).
pub const DEFAULT_SSH_MAX_SESSIONS: u32 = 8;

fn is_false(b: &bool) -> bool {
    !*b
}

// ---------------------------------------------------------------------------
// Seconds
// ---------------------------------------------------------------------------

/// A non-negative, finite number of seconds. Accepts integers and decimals;
/// written back as an integer when whole.
#[derive(Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Seconds(f64);

impl Seconds {
    /// `None` when `secs` is negative or not finite.
    pub fn new(secs: f64) -> Option<Self> {
        (secs.is_finite() && secs >= 0.0).then_some(Self(secs))
    }

    pub fn get(self) -> f64 {
        self.0
    }

    pub fn as_duration(self) -> Duration {
        Duration::from_secs_f64(self.0.min(1e12))
    }

    /// Whole milliseconds, saturating.
    pub fn as_millis(self) -> u64 {
        (self.0 * 1000.0).min(u64::MAX as f64) as u64
    }
}

impl fmt::Debug for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.fract() == 0.0 && self.0 <= (1u64 << 53) as f64 {
            s.serialize_u64(self.0 as u64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative number of seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                Seconds::new(v as f64).ok_or_else(|| {
                    E::invalid_value(
                        de::Unexpected::Signed(v),
                        &"a non-negative number of seconds",
                    )
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Seconds::new(v).ok_or_else(|| {
                    E::invalid_value(
                        de::Unexpected::Float(v),
                        &"a non-negative number of seconds",
                    )
                })
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------

/// A run: a set of tasks, optional workers, and run-wide policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub tasks: Vec<TaskSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerSpec>,
    /// Concurrent attempts at most (the `--max-workers` flag overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<u32>,
    /// Nesting budget for child runs (default 3, clamped to 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_spawn_depth: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervision: Option<SupervisionSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after_seconds: Option<Seconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertConfig>,
    /// Network, enforcement and grants for every task of the run
    /// (docs/security.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_policy: Option<SecurityPolicy>,
    /// The whole run's budget: past it no new attempt is leased and
    /// `budget_exceeded` is raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<RunBudget>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A run's budget, summed over all its attempts (tokens and cost) or since
/// it started (seconds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunBudget {
    /// input + output + reasoning tokens of every attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// orca's computed cost of every attempt, USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// Wall time since the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seconds: Option<Seconds>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// How a run supervises its attempts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SupervisionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_seconds: Option<Seconds>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl RunSpec {
    /// The run's strategy (default one_for_one).
    pub fn effective_strategy(&self) -> Strategy {
        self.supervision
            .as_ref()
            .and_then(|s| s.strategy)
            .unwrap_or(Strategy::OneForOne)
    }

    /// The run's intensity: (max restarts, period) — default 20 in 60 s.
    pub fn effective_intensity(&self) -> (u32, Seconds) {
        let s = self.supervision.as_ref();
        (
            s.and_then(|s| s.max_restarts)
                .unwrap_or(DEFAULT_RUN_MAX_RESTARTS),
            s.and_then(|s| s.within_seconds)
                .unwrap_or(Seconds(DEFAULT_RUN_WITHIN_SECS)),
        )
    }

    /// `max_spawn_depth`, default 3, clamped to 3.
    pub fn effective_max_spawn_depth(&self) -> u32 {
        self.max_spawn_depth
            .unwrap_or(MAX_SPAWN_DEPTH)
            .min(MAX_SPAWN_DEPTH)
    }

    /// The run's display name: its `name`, else its single task's name or id.
    pub fn display_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match self.tasks.as_slice() {
            [only] => only.name.clone().unwrap_or_else(|| only.id.clone()),
            _ => "unnamed run".to_string(),
        }
    }

    /// The stale threshold for a task: task > run > default.
    pub fn effective_stale_after(&self, task: &TaskSpec) -> Seconds {
        task.stale_after_seconds
            .or(self.stale_after_seconds)
            .unwrap_or(Seconds(DEFAULT_STALE_AFTER_SECS))
    }

    /// The heartbeat limit `task`'s attempts run with: the task's own, else
    /// the one given at submission (`--stale-after`), else the run's.
    pub fn stale_after_for(
        &self,
        task: &TaskSpec,
        submitted: Option<std::time::Duration>,
    ) -> std::time::Duration {
        task.stale_after_seconds
            .map(|s| s.as_duration())
            .or(submitted)
            .unwrap_or_else(|| self.effective_stale_after(task).as_duration())
    }
}

// ---------------------------------------------------------------------------
// Task
// ---------------------------------------------------------------------------

/// One unit of work.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// orca extension: run this plain process instead of an agent runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSpec>,
    /// orca extension: the agent runtime for this task (wins over
    /// `[runtime]` in the config), or, with `command`, how to read that
    /// command's stream (`format`) and price it (`model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<TaskRuntime>,
    /// orca extension: names of env vars holding secrets the task's process
    /// needs (a plain command's `GH_TOKEN`); passed to it, never journaled,
    /// logged or shown (redacted as `[runtime] secret_env`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<String>,
    /// Overrides the run's `security_policy`, field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_policy: Option<SecurityPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<WorkspaceRequirements>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_files: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub context: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<Seconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after_seconds: Option<Seconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// orca extension: the attempt's restart type (default transient).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_artifacts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorer: Option<ScorerSpec>,
    /// Kept and shown; not enforced yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_policy: Option<Extra>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Free-form; `metadata.priority` (an integer, lower runs first) is read.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Extra,
    #[serde(flatten)]
    pub extra: Extra,
}

impl TaskSpec {
    /// `metadata.priority`, 0 when absent or not an integer (validation
    /// reports the latter).
    pub fn priority(&self) -> i64 {
        self.metadata
            .get("priority")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    /// Whether the task runs the configured agent runtime (it has no
    /// `command`).
    pub fn needs_runtime(&self) -> bool {
        self.command.is_none()
    }

    /// Capabilities a worker must have to take the task.
    pub fn required_capabilities(&self) -> &[String] {
        self.worker
            .as_ref()
            .map(|w| w.capabilities.as_slice())
            .unwrap_or(&[])
    }

    /// The retry policy with defaults applied.
    pub fn effective_retry(&self) -> EffectiveRetry {
        EffectiveRetry::from(self.retry_policy.as_ref())
    }

    /// The restart type of the task's attempts (default transient).
    pub fn effective_restart(&self) -> RestartType {
        self.restart.unwrap_or(RestartType::Transient)
    }

    /// `workspace.root`, if set.
    pub fn workspace_root(&self) -> Option<&str> {
        self.workspace.as_ref().and_then(|w| w.root.as_deref())
    }

    /// `workspace.required_files`.
    pub fn required_files(&self) -> &[String] {
        self.workspace
            .as_ref()
            .map(|w| w.required_files.as_slice())
            .unwrap_or(&[])
    }

    /// `workspace.environment`, if set.
    pub fn environment(&self) -> Option<&EnvironmentRequirements> {
        self.workspace.as_ref().and_then(|w| w.environment.as_ref())
    }
}

/// A task's own runtime settings (`runtime = { preset = "codex" }`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskRuntime {
    /// The agent CLI (claude, codex, gemini, codewhale); not with `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// The model: passed to the preset's CLI, and the model orca prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Extra arguments after the preset's own (replace `[runtime] args`);
    /// placeholders `{prompt_file}`, `{attempt_dir}`, `{task_id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// The CLI's program (default: the preset's name, found in PATH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// With `command`: the format of its stdout (default `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<StreamFormat>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A plain process: an argv array, or a string run with `sh -c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandSpec {
    Argv(Vec<String>),
    Shell(String),
}

impl CommandSpec {
    /// The argv to execute.
    pub fn argv(&self) -> Vec<String> {
        match self {
            CommandSpec::Argv(v) => v.clone(),
            CommandSpec::Shell(s) => vec!["sh".into(), "-c".into(), s.clone()],
        }
    }

    /// A short display form.
    pub fn display(&self) -> String {
        match self {
            CommandSpec::Argv(v) => v.join(" "),
            CommandSpec::Shell(s) => s.clone(),
        }
    }
}

impl Serialize for CommandSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CommandSpec::Argv(v) => v.serialize(s),
            CommandSpec::Shell(c) => c.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for CommandSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CommandSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an argv array of strings, or a shell command string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CommandSpec, E> {
                Ok(CommandSpec::Shell(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<CommandSpec, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(CommandSpec::Argv(argv))
            }
        }
        d.deserialize_any(V)
    }
}

/// Accepts a string or a list of strings.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(vec![v.to_string()])
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// The worker profile a task asks for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Kept and shown; not enforced yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// A worker must have all of these to take the task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Workspace constraints checked before a task starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceRequirements {
    /// The task's working directory, relative to (and inside) the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Files that must exist before the task starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_files: Vec<String>,
    /// Where the task may write (relative to its working directory),
    /// enforced with Landlock on local hosts: absent = unrestricted (unless
    /// its worker is untrusted), present (even empty) = confined to these,
    /// its attempt directory and a private `TMPDIR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writable_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentRequirements>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Environment a task needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentRequirements {
    /// Must be set in orca's environment; passed to the worker. Missing → the
    /// task fails before starting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    /// Passed to the worker when set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowlist: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Per-attempt budget.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// input + output + reasoning tokens (runtime::Usage::tokens_for_budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_calls: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seconds: Option<Seconds>,
    /// orca's own computed cost (the price table), USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Jitter: `true` (the default fraction), `false`, or a fraction in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Jitter {
    Enabled(bool),
    Fraction(f64),
}

impl Jitter {
    /// The jitter fraction.
    pub fn fraction(self) -> f64 {
        match self {
            Jitter::Enabled(true) => DEFAULT_JITTER,
            Jitter::Enabled(false) => 0.0,
            Jitter::Fraction(f) => f,
        }
    }
}

impl Serialize for Jitter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Jitter::Enabled(b) => s.serialize_bool(*b),
            Jitter::Fraction(f) => s.serialize_f64(*f),
        }
    }
}

impl<'de> Deserialize<'de> for Jitter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Jitter;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, or a fraction between 0 and 1")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Jitter, E> {
                Ok(Jitter::Enabled(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Jitter, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Jitter, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Jitter, E> {
                if (0.0..=1.0).contains(&v) {
                    Ok(Jitter::Fraction(v))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// How a task is retried (DESIGN.md's retry table).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Counts the first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_backoff_seconds: Option<Seconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff_seconds: Option<Seconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_multiplier: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Jitter>,
    /// Failure classes that are retried (default transient, timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<Vec<FailureClass>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A retry policy with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct EffectiveRetry {
    pub max_attempts: u32,
    pub initial_backoff: Seconds,
    pub max_backoff: Seconds,
    pub multiplier: f64,
    /// Fraction in [0, 1].
    pub jitter: f64,
    pub retry_on: Vec<FailureClass>,
}

impl EffectiveRetry {
    /// The default `retry_on`: transient and timeout.
    pub fn default_retry_on() -> Vec<FailureClass> {
        vec![FailureClass::Transient, FailureClass::Timeout]
    }
}

impl From<Option<&RetryPolicy>> for EffectiveRetry {
    fn from(p: Option<&RetryPolicy>) -> Self {
        Self {
            max_attempts: p
                .and_then(|p| p.max_attempts)
                .unwrap_or(DEFAULT_MAX_ATTEMPTS),
            initial_backoff: p
                .and_then(|p| p.initial_backoff_seconds)
                .unwrap_or(Seconds(DEFAULT_INITIAL_BACKOFF_SECS)),
            max_backoff: p
                .and_then(|p| p.max_backoff_seconds)
                .unwrap_or(Seconds(DEFAULT_MAX_BACKOFF_SECS)),
            multiplier: p
                .and_then(|p| p.backoff_multiplier)
                .unwrap_or(DEFAULT_BACKOFF_MULTIPLIER),
            jitter: p
                .and_then(|p| p.jitter)
                .map(Jitter::fraction)
                .unwrap_or(DEFAULT_JITTER),
            retry_on: p
                .and_then(|p| p.retry_on.clone())
                .unwrap_or_else(Self::default_retry_on),
        }
    }
}

// ---------------------------------------------------------------------------
// Scorer
// ---------------------------------------------------------------------------

/// Scorer kinds. `code_whale_verifier_prompt` is the seed's name for
/// `verifier_prompt`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScorerKind {
    #[default]
    ExitCode,
    FileExists,
    RegexMatch,
    JsonPath,
    Command,
    #[serde(alias = "code_whale_verifier_prompt")]
    VerifierPrompt,
    Manual,
}

impl ScorerKind {
    pub const ALL: &'static [ScorerKind] = &[
        ScorerKind::ExitCode,
        ScorerKind::FileExists,
        ScorerKind::RegexMatch,
        ScorerKind::JsonPath,
        ScorerKind::Command,
        ScorerKind::VerifierPrompt,
        ScorerKind::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScorerKind::ExitCode => "exit_code",
            ScorerKind::FileExists => "file_exists",
            ScorerKind::RegexMatch => "regex_match",
            ScorerKind::JsonPath => "json_path",
            ScorerKind::Command => "command",
            ScorerKind::VerifierPrompt => "verifier_prompt",
            ScorerKind::Manual => "manual",
        }
    }

    /// The fields this kind requires, and those it accepts besides `kind`
    /// and `timeout_seconds`.
    pub fn fields(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            ScorerKind::ExitCode => (&[], &["expected"]),
            ScorerKind::FileExists => (&["path"], &["path", "fresh"]),
            ScorerKind::RegexMatch => (
                &["path", "pattern"],
                &["path", "pattern", "multiline", "fresh"],
            ),
            ScorerKind::JsonPath => (
                &["path", "expression"],
                &["path", "expression", "equals", "fresh"],
            ),
            ScorerKind::Command => (&["command"], &["command", "args"]),
            ScorerKind::VerifierPrompt => (&["prompt"], &["prompt"]),
            ScorerKind::Manual => (&[], &[]),
        }
    }

    /// Whether the scorer reads a file under `path`.
    pub fn is_file_based(self) -> bool {
        matches!(
            self,
            ScorerKind::FileExists | ScorerKind::RegexMatch | ScorerKind::JsonPath
        )
    }
}

impl fmt::Display for ScorerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scorer as written: `kind` plus the fields of that kind. Validation
/// checks that the kind's required fields are present; [`ScorerSpec::typed`]
/// gives the typed form the scorer actor runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScorerSpec {
    pub kind: ScorerKind,
    /// exit_code: the expected exit code (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<i32>,
    /// file_exists / regex_match / json_path: the file (`stdout` for the
    /// attempt's stdout in regex_match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// regex_match: the pattern. `^` and `$` match at the start and end
    /// of the whole text unless `multiline` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// regex_match: `^` and `$` match at the start and end of every line
    /// (default false: of the whole text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiline: Option<bool>,
    /// json_path: an RFC 9535 JSONPath query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// json_path: a selected node must equal this value.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_value"
    )]
    pub equals: Option<Value>,
    /// File-based scorers: only files written after the attempt started
    /// count (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh: Option<bool>,
    /// command: the verifier program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// command: its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// verifier_prompt: what the verifier is asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Every kind: the scorer's own timeout (default 120 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<Seconds>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `equals: null` is a value to compare with, not an absent field.
fn present_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The typed form of a scorer.
#[derive(Clone, Debug, PartialEq)]
pub enum Scorer {
    ExitCode {
        expected: i32,
    },
    FileExists {
        path: String,
        fresh: bool,
    },
    RegexMatch {
        path: String,
        pattern: String,
        multiline: bool,
        fresh: bool,
    },
    JsonPath {
        path: String,
        expression: String,
        equals: Option<Value>,
        fresh: bool,
    },
    Command {
        command: String,
        args: Vec<String>,
    },
    VerifierPrompt {
        prompt: String,
    },
    Manual,
}

impl ScorerSpec {
    /// A scorer of `kind` with no other field set.
    pub fn of_kind(kind: ScorerKind) -> Self {
        Self {
            kind,
            expected: None,
            path: None,
            pattern: None,
            multiline: None,
            expression: None,
            equals: None,
            fresh: None,
            command: None,
            args: Vec::new(),
            prompt: None,
            timeout_seconds: None,
            extra: Extra::new(),
        }
    }

    /// The scorer's timeout (default 120 s).
    pub fn effective_timeout(&self) -> Seconds {
        self.timeout_seconds
            .unwrap_or(Seconds(DEFAULT_SCORER_TIMEOUT_SECS))
    }

    /// The typed scorer, or the name of the first missing required field.
    pub fn typed(&self) -> Result<Scorer, &'static str> {
        let fresh = self.fresh.unwrap_or(true);
        let need = |v: &Option<String>, name: &'static str| v.clone().ok_or(name);
        Ok(match self.kind {
            ScorerKind::ExitCode => Scorer::ExitCode {
                expected: self.expected.unwrap_or(0),
            },
            ScorerKind::FileExists => Scorer::FileExists {
                path: need(&self.path, "path")?,
                fresh,
            },
            ScorerKind::RegexMatch => Scorer::RegexMatch {
                path: need(&self.path, "path")?,
                pattern: need(&self.pattern, "pattern")?,
                multiline: self.multiline.unwrap_or(false),
                fresh,
            },
            ScorerKind::JsonPath => Scorer::JsonPath {
                path: need(&self.path, "path")?,
                expression: need(&self.expression, "expression")?,
                equals: self.equals.clone(),
                fresh,
            },
            ScorerKind::Command => Scorer::Command {
                command: need(&self.command, "command")?,
                args: self.args.clone(),
            },
            ScorerKind::VerifierPrompt => Scorer::VerifierPrompt {
                prompt: need(&self.prompt, "prompt")?,
            },
            ScorerKind::Manual => Scorer::Manual,
        })
    }
}

// ---------------------------------------------------------------------------
// Workers and hosts
// ---------------------------------------------------------------------------

/// A declared worker slot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub host: HostSpec,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Attempts this worker runs at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_tasks: Option<u32>,
    /// How far orca trusts this worker (default `trusted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_level: Option<TrustLevel>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl WorkerSpec {
    pub fn effective_concurrency(&self) -> u32 {
        self.max_concurrent_tasks
            .unwrap_or(DEFAULT_WORKER_CONCURRENCY)
    }

    /// Whether the worker has every capability the task requires.
    pub fn can_take(&self, task: &TaskSpec) -> bool {
        task.required_capabilities()
            .iter()
            .all(|c| self.capabilities.contains(c))
    }
}

/// Where a worker runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HostSpec {
    Local(LocalHost),
    Ssh(SshHost),
}

impl Default for HostSpec {
    fn default() -> Self {
        HostSpec::Local(LocalHost::default())
    }
}

impl HostSpec {
    /// The host's env allowlist.
    pub fn env_allowlist(&self) -> &[String] {
        match self {
            HostSpec::Local(l) => &l.env_allowlist,
            HostSpec::Ssh(s) => &s.env_allowlist,
        }
    }

    /// `local`, or `user@host:port` for ssh.
    pub fn display(&self) -> String {
        match self {
            HostSpec::Local(_) => "local".into(),
            HostSpec::Ssh(s) => {
                let user = s
                    .user
                    .as_deref()
                    .map(|u| format!("{u}@"))
                    .unwrap_or_default();
                format!(
                    "{user}{}:{}",
                    s.host.as_deref().unwrap_or("?"),
                    s.port.unwrap_or(DEFAULT_SSH_PORT)
                )
            }
        }
    }
}

/// This machine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalHost {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_allowlist: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A host reached over SSH.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SshHost {
    /// Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Private key file for key authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// known_hosts file (default `~/.ssh/known_hosts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<String>,
    /// A pinned `SHA256:…` host key fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key_fingerprint: Option<String>,
    /// Labs only: accept any host key (warns on every run).
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_accept_any_host_key: bool,
    /// Task channels at once on this host (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<u32>,
    /// Required: where attempts run on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_allowlist: Vec<String>,
    /// The agent runtime binary on the host (seed: `codewhale_binary`);
    /// required for agent-runtime tasks.
    #[serde(
        default,
        alias = "codewhale_binary",
        skip_serializing_if = "Option::is_none"
    )]
    pub binary: Option<String>,
    /// Connects (TCP, key exchange, authentication) give up after this
    /// long (default 10 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_seconds: Option<Seconds>,
    /// Debugging: leave each attempt's directory on the host instead of
    /// removing it after the attempt (default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_remote_attempt_dirs: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------

/// Default `alerts.group_wait`: 0, each alert is sent on its own.
pub const DEFAULT_ALERT_GROUP_WAIT_SECS: f64 = 0.0;
/// Default `alerts.repeat_interval`: 4 h, Alertmanager's default. A
/// condition still firing is notified again this long after its last
/// notification; 0 never repeats.
pub const DEFAULT_ALERT_REPEAT_INTERVAL_SECS: f64 = 4.0 * 3600.0;
/// Default `rate_limit` of a Slack adapter (Slack allows about one message
/// a second per incoming webhook).
pub const DEFAULT_SLACK_RATE_LIMIT: f64 = 1.0;
/// Default `rate_limit` of a PagerDuty adapter (about 120 events a minute
/// per integration key).
pub const DEFAULT_PAGER_DUTY_RATE_LIMIT: f64 = 2.0;
/// Default `rate_limit` of a generic webhook adapter.
pub const DEFAULT_WEBHOOK_RATE_LIMIT: f64 = 10.0;
/// PagerDuty Events API v2's endpoint (US service region).
pub const PAGER_DUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Alerting (disabled by default). Adapters hold env var *names*, never
/// secret values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Route and journal alerts, but send nothing (`AlertSuppressed`
    /// dry_run names the adapters that would have received each).
    #[serde(default)]
    pub dry_run: bool,
    /// Seconds a run's alerts are collected before one message per adapter
    /// carries them all (Slack and webhooks; PagerDuty always gets one
    /// event per alert). 0 (default): each alert on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<Seconds>,
    /// Seconds after which a condition still firing is notified again
    /// (default 4 h; 0 never repeats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<Seconds>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<AlertRoute>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub adapters: BTreeMap<String, AlertAdapter>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl AlertConfig {
    /// `group_wait` with its default.
    pub fn effective_group_wait(&self) -> Seconds {
        self.group_wait
            .unwrap_or(Seconds(DEFAULT_ALERT_GROUP_WAIT_SECS))
    }

    /// `repeat_interval` with its default (0 = never repeat).
    pub fn effective_repeat_interval(&self) -> Seconds {
        self.repeat_interval
            .unwrap_or(Seconds(DEFAULT_ALERT_REPEAT_INTERVAL_SECS))
    }
}

/// Sends the listed event classes to an adapter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertRoute {
    #[serde(default)]
    pub events: Vec<AlertClass>,
    #[serde(default)]
    pub adapter: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A task's `alert_policy`: how that task's alerts are routed.
///
/// `TaskSpec::alert_policy` keeps the object as written (so it round-trips
/// exactly); [`TaskSpec::typed_alert_policy`] gives this typed view, and
/// validation reports its errors and unknown fields with their paths.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertPolicy {
    /// Routes for this task's alerts, added to the run's (or, with
    /// `replace_routes`, used instead of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<AlertRoute>,
    /// Only this policy's routes apply to the task's alerts (default false:
    /// they extend the run's). `replace_routes = true` with no routes
    /// silences the task.
    #[serde(default, skip_serializing_if = "is_false")]
    pub replace_routes: bool,
    /// The severity of the task's alerts, over the adapter's and the
    /// class's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<AlertSeverity>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl TaskSpec {
    /// The typed view of `alert_policy` (fields that do not parse are left
    /// at their defaults; validation reports them).
    pub fn typed_alert_policy(&self) -> Option<AlertPolicy> {
        let raw = self.alert_policy.as_ref()?;
        let mut diags = super::parse::Diags::default();
        <AlertPolicy as super::parse::FromSpec>::from_spec(
            Value::Object(raw.clone()),
            "",
            &mut diags,
        )
    }
}

/// An alert destination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertAdapter {
    Slack(SlackAdapter),
    Webhook(WebhookAdapter),
    #[serde(alias = "pagerduty")]
    PagerDuty(PagerDutyAdapter),
}

/// Posts to a Slack incoming webhook.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlackAdapter {
    /// Name of the env var holding the webhook URL.
    pub webhook_env: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Messages a second at most (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Posts JSON to a URL, signed per Standard Webhooks when `secret_env` is
/// set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookAdapter {
    /// Name of the env var holding the URL.
    pub url_env: String,
    /// Name of the env var holding the signing secret (`whsec_<base64>`,
    /// or plain text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Messages a second at most (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Sends PagerDuty Events API v2 events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PagerDutyAdapter {
    /// Name of the env var holding the routing (integration) key.
    pub routing_key_env: String,
    /// The severity of every event this adapter sends, unless the task's
    /// `alert_policy` sets one (default: by class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<AlertSeverity>,
    /// The Events API URL (default `https://events.pagerduty.com/v2/enqueue`;
    /// the EU service region uses `https://events.eu.pagerduty.com/v2/enqueue`).
    /// Not a secret: the routing key travels in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Messages a second at most (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl AlertAdapter {
    pub fn kind(&self) -> &'static str {
        match self {
            AlertAdapter::Slack(_) => "slack",
            AlertAdapter::Webhook(_) => "webhook",
            AlertAdapter::PagerDuty(_) => "pager_duty",
        }
    }

    /// The env var names this adapter reads (never their values).
    pub fn env_names(&self) -> Vec<&str> {
        self.env_fields()
            .into_iter()
            .map(|(_, name)| name)
            .collect()
    }

    /// Each env-name field with its name: `("webhook_env", "ORCA_SLACK_WEBHOOK")`.
    pub fn env_fields(&self) -> Vec<(&'static str, &str)> {
        match self {
            AlertAdapter::Slack(a) => vec![("webhook_env", a.webhook_env.as_str())],
            AlertAdapter::Webhook(a) => std::iter::once(("url_env", a.url_env.as_str()))
                .chain(a.secret_env.as_deref().map(|s| ("secret_env", s)))
                .collect(),
            AlertAdapter::PagerDuty(a) => vec![("routing_key_env", a.routing_key_env.as_str())],
        }
    }

    /// `rate_limit` as written.
    pub fn rate_limit(&self) -> Option<f64> {
        match self {
            AlertAdapter::Slack(a) => a.rate_limit,
            AlertAdapter::Webhook(a) => a.rate_limit,
            AlertAdapter::PagerDuty(a) => a.rate_limit,
        }
    }

    /// Messages a second at most, with the kind's default.
    pub fn effective_rate_limit(&self) -> f64 {
        self.rate_limit().unwrap_or(match self {
            AlertAdapter::Slack(_) => DEFAULT_SLACK_RATE_LIMIT,
            AlertAdapter::Webhook(_) => DEFAULT_WEBHOOK_RATE_LIMIT,
            AlertAdapter::PagerDuty(_) => DEFAULT_PAGER_DUTY_RATE_LIMIT,
        })
    }

    /// Fields this adapter's author wrote but orca does not know.
    pub fn extra(&self) -> &Extra {
        match self {
            AlertAdapter::Slack(a) => &a.extra,
            AlertAdapter::Webhook(a) => &a.extra,
            AlertAdapter::PagerDuty(a) => &a.extra,
        }
    }
}
