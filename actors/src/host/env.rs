//! The worker environment (DESIGN.md "Shared contracts: Worker
//! environment").
//!
//! Exactly: PATH and HOME; the task's and the host's allowlists (union; set
//! variables only); the names in `environment.required` (missing → the task
//! fails before starting); `[runtime] secret_env` names, for agent-runtime
//! processes only; and the `ORCA_*` context. Values never appear in `Debug`
//! output; secret ones are never logged or journaled.

use std::fmt;

use crate::spec::TaskSpec;

/// An environment value; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvValue {
    value: String,
    secret: bool,
}

impl EnvValue {
    pub fn plain(value: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            secret: false,
        }
    }

    pub fn secret(value: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            secret: true,
        }
    }

    /// The value, for handing to the process.
    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn is_secret(&self) -> bool {
        self.secret
    }
}

impl fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secret { "<secret>" } else { "<value>" })
    }
}

/// One variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub value: EnvValue,
}

impl EnvVar {
    pub fn plain(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: EnvValue::plain(value),
        }
    }
}

/// The `ORCA_*` context of an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrcaContext {
    pub run: String,
    pub task: String,
    pub attempt: u32,
    pub attempt_id: String,
    pub workspace: String,
    pub attempt_dir: String,
    pub spawn_depth: u32,
    /// `ORCA_API` and the per-attempt `ORCA_TOKEN`, when an API is served.
    pub api: Option<(String, EnvValue)>,
    /// `ORCA_EVENT_FILE`: the event that woke the agent that started the
    /// run (its `event.json`), when it was started by one.
    pub event_file: Option<String>,
}

/// `environment.required` names that are not set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("required environment variable{} not set: {}", if .0.len() == 1 { " is" } else { "s are" }, .0.join(", "))]
pub struct MissingEnv(pub Vec<String>);

/// Builds the environment for an attempt. `lookup` reads orca's own
/// environment; `runtime_secrets` is `Some` only for agent-runtime
/// processes.
pub fn build_env(
    task: &TaskSpec,
    host_allowlist: &[String],
    runtime_secrets: Option<&[String]>,
    ctx: &OrcaContext,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<EnvVar>, MissingEnv> {
    let mut vars: Vec<EnvVar> = Vec::new();
    let set = |vars: &mut Vec<EnvVar>, name: &str, value: EnvValue| {
        if let Some(v) = vars.iter_mut().find(|v| v.name == name) {
            v.value = value;
        } else {
            vars.push(EnvVar {
                name: name.to_string(),
                value,
            });
        }
    };
    for base in ["PATH", "HOME"] {
        if let Some(v) = lookup(base) {
            set(&mut vars, base, EnvValue::plain(v));
        }
    }
    if !vars.iter().any(|v| v.name == "PATH") {
        set(
            &mut vars,
            "PATH",
            EnvValue::plain("/usr/local/bin:/usr/bin:/bin"),
        );
    }
    let env = task.environment();
    let allow = env
        .map(|e| e.allowlist.as_slice())
        .unwrap_or_default()
        .iter()
        .chain(host_allowlist);
    for name in allow {
        if let Some(v) = lookup(name) {
            set(&mut vars, name, EnvValue::plain(v));
        }
    }
    let mut missing = Vec::new();
    for name in env.map(|e| e.required.as_slice()).unwrap_or_default() {
        match lookup(name) {
            Some(v) => set(&mut vars, name, EnvValue::plain(v)),
            None => missing.push(name.clone()),
        }
    }
    // The task's own secrets (a plain command's `GH_TOKEN`) are required:
    // the process cannot do without them.
    let mut task_secrets = Vec::new();
    for name in &task.secret_env {
        match lookup(name) {
            Some(v) => task_secrets.push((name, v)),
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(MissingEnv(missing));
    }
    for name in runtime_secrets.unwrap_or_default() {
        if let Some(v) = lookup(name) {
            set(&mut vars, name, EnvValue::secret(v));
        }
    }
    for (name, v) in task_secrets {
        set(&mut vars, name, EnvValue::secret(v));
    }
    let c = ctx;
    for (name, value) in [
        ("ORCA_RUN_ID", c.run.clone()),
        ("ORCA_TASK_ID", c.task.clone()),
        ("ORCA_ATTEMPT", c.attempt.to_string()),
        ("ORCA_ATTEMPT_ID", c.attempt_id.clone()),
        ("ORCA_ATTEMPT_DIR", c.attempt_dir.clone()),
        ("ORCA_WORKSPACE", c.workspace.clone()),
        ("ORCA_SPAWN_DEPTH", c.spawn_depth.to_string()),
    ] {
        set(&mut vars, name, EnvValue::plain(value));
    }
    if let Some(file) = &c.event_file {
        set(&mut vars, "ORCA_EVENT_FILE", EnvValue::plain(file.clone()));
    }
    if let Some((api, token)) = &c.api {
        set(&mut vars, "ORCA_API", EnvValue::plain(api.clone()));
        set(&mut vars, "ORCA_TOKEN", EnvValue::secret(token.expose()));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{EnvironmentRequirements, WorkspaceRequirements};

    fn ctx() -> OrcaContext {
        OrcaContext {
            run: "r-1".into(),
            task: "t".into(),
            attempt: 2,
            attempt_id: "r-1:t:2".into(),
            workspace: "/ws".into(),
            attempt_dir: "/ws/.orca/runs/r-1/t/2".into(),
            spawn_depth: 0,
            api: None,
            event_file: None,
        }
    }

    fn task(required: &[&str], allow: &[&str]) -> TaskSpec {
        TaskSpec {
            id: "t".into(),
            workspace: Some(WorkspaceRequirements {
                environment: Some(EnvironmentRequirements {
                    required: required.iter().map(|s| s.to_string()).collect(),
                    allowlist: allow.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn lookup(name: &str) -> Option<String> {
        match name {
            "PATH" => Some("/bin".into()),
            "HOME" => Some("/root".into()),
            "EDITOR" => Some("vi".into()),
            "LANG" => Some("C".into()),
            "PROVIDER_API_KEY" => Some("sk-very-secret".into()),
            "UNRELATED" => Some("x".into()),
            _ => None,
        }
    }

    #[test]
    fn exactly_the_documented_variables() {
        let vars = build_env(
            &task(&["LANG"], &["EDITOR", "NOT_SET"]),
            &[],
            None,
            &ctx(),
            lookup,
        )
        .unwrap();
        let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "PATH",
                "HOME",
                "EDITOR",
                "LANG",
                "ORCA_RUN_ID",
                "ORCA_TASK_ID",
                "ORCA_ATTEMPT",
                "ORCA_ATTEMPT_ID",
                "ORCA_ATTEMPT_DIR",
                "ORCA_WORKSPACE",
                "ORCA_SPAWN_DEPTH"
            ]
        );
    }

    #[test]
    fn secrets_only_for_runtimes_and_never_in_debug() {
        let secrets = vec!["PROVIDER_API_KEY".to_string()];
        let plain = build_env(&task(&[], &[]), &[], None, &ctx(), lookup).unwrap();
        assert!(!plain.iter().any(|v| v.name == "PROVIDER_API_KEY"));
        let rt = build_env(&task(&[], &[]), &[], Some(&secrets), &ctx(), lookup).unwrap();
        let key = rt.iter().find(|v| v.name == "PROVIDER_API_KEY").unwrap();
        assert!(key.value.is_secret());
        assert_eq!(key.value.expose(), "sk-very-secret");
        assert!(!format!("{rt:?}").contains("sk-very-secret"));
    }

    #[test]
    fn missing_required_names_fail() {
        let err = build_env(
            &task(&["LANG", "NOPE", "ALSO_NOPE"], &[]),
            &[],
            None,
            &ctx(),
            lookup,
        )
        .unwrap_err();
        assert_eq!(err.0, ["NOPE", "ALSO_NOPE"]);
        assert_eq!(
            err.to_string(),
            "required environment variables are not set: NOPE, ALSO_NOPE"
        );
    }

    #[test]
    fn host_allowlist_joins_the_task_allowlist() {
        let vars = build_env(&task(&[], &[]), &["EDITOR".into()], None, &ctx(), lookup).unwrap();
        assert!(vars.iter().any(|v| v.name == "EDITOR"));
        assert!(!vars.iter().any(|v| v.name == "UNRELATED"));
    }
}
