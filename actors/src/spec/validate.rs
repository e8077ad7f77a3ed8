//! Semantic validation of a parsed spec: every rule, every finding
//! collected, each naming its field path (in run shape: `tasks[3].…`; the
//! loader maps paths to the document's own shape and adds line:column).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::config::{RuntimeConfig, RUNTIME_HINT};
use serde_json::Value;

use super::diag::Diagnostic;
use super::parse::{Diags, FromSpec};
use super::paths::{self, PathError};
use super::source::{join_index, join_key};
use super::types::*;
use crate::model::{is_valid_id, FailureClass, ID_RULE};

/// Text that makes an env var name secret-like wherever it appears in
/// the name (any case).
pub const SECRET_WORDS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "CREDENTIAL",
    "PRIVATE_KEY",
    "WEBHOOK",
];

/// Words that make an env var name secret-like when they are a whole
/// `_`-separated word of it (any case): `DB_PASS`, `AWS_ACCESS_KEY_ID`,
/// `STRIPE_KEY`, `GIT_AUTH` — but not `PASSENGER` or `KEYBOARD`.
pub const SECRET_NAME_WORDS: &[&str] = &["PASS", "KEY", "AUTH", "COOKIE", "DSN"];

/// Whether an env var name looks like it holds a secret: it contains one of
/// [`SECRET_WORDS`] or has one of [`SECRET_NAME_WORDS`] as a word (any
/// case). Secrets reach a worker only through `secret_env`.
pub fn is_secret_like(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| upper.contains(w))
        || upper
            .split('_')
            .any(|word| SECRET_NAME_WORDS.contains(&word))
}

/// The rule in words, for messages and docs.
pub fn secret_rule() -> String {
    format!(
        "containing {}, or with the word {}",
        SECRET_WORDS.join(", "),
        SECRET_NAME_WORDS.join(", ")
    )
}

/// `[A-Za-z_][A-Za-z0-9_]*`
pub fn is_valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What validation needs to know besides the spec.
#[derive(Clone, Copy, Debug, Default)]
pub struct ValidateContext<'a> {
    /// The workspace root (absolute paths inside it are accepted).
    pub workspace_root: Option<&'a Path>,
    /// The configured agent runtime, if any.
    pub runtime: Option<&'a RuntimeConfig>,
    /// The workspace's default alert config (`[alerts]` in
    /// `.orca/config.toml`): the routes of a task's `alert_policy` in a run
    /// without `alerts` must name its adapters.
    pub alerts: Option<&'a AlertConfig>,
}

impl<'a> ValidateContext<'a> {
    /// Validation inside a workspace with its `.orca/config.toml`.
    pub fn workspace(root: &'a Path, config: &'a super::config::OrcaConfig) -> Self {
        Self {
            workspace_root: Some(root),
            runtime: config.runtime(),
            alerts: config.alerts.as_ref(),
        }
    }
}

/// Validates `spec`; returns every error and warning.
pub fn validate(spec: &RunSpec, ctx: &ValidateContext<'_>) -> Vec<Diagnostic> {
    let mut v = Validator {
        ctx,
        out: Vec::new(),
    };
    v.run(spec);
    v.out
}

struct Validator<'a> {
    ctx: &'a ValidateContext<'a>,
    out: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn error(&mut self, path: impl Into<String>, msg: impl Into<String>) -> &mut Diagnostic {
        self.out.push(Diagnostic::error(path, msg));
        self.out.last_mut().expect("just pushed")
    }

    fn warn(&mut self, path: impl Into<String>, msg: impl Into<String>) -> &mut Diagnostic {
        self.out.push(Diagnostic::warning(path, msg));
        self.out.last_mut().expect("just pushed")
    }

    fn name(&mut self, path: String, name: Option<&str>) {
        if let Some(n) = name {
            if n.chars().any(char::is_control) {
                self.error(
                    path,
                    "must not contain control characters (newlines, tabs, escapes)",
                );
            }
        }
    }

    fn positive(&mut self, path: String, s: Option<Seconds>) {
        if let Some(s) = s {
            if s.get() <= 0.0 {
                self.error(path, "must be greater than 0");
            }
        }
    }

    fn usd(&mut self, path: String, v: Option<f64>) {
        if let Some(v) = v {
            if !v.is_finite() || v <= 0.0 {
                self.error(
                    path,
                    format!("must be a positive number of US dollars (got {v})"),
                );
            }
        }
    }

    fn run(&mut self, spec: &RunSpec) {
        self.name("name".into(), spec.name.as_deref());
        if spec.tasks.is_empty() {
            self.error("tasks", "a run needs at least one task");
        }
        if spec.max_workers == Some(0) {
            self.error("max_workers", "must be at least 1");
        }
        if let Some(d) = spec.max_spawn_depth {
            if d > MAX_SPAWN_DEPTH {
                self.warn(
                    "max_spawn_depth",
                    format!("{d} is above the ceiling; clamped to {MAX_SPAWN_DEPTH}"),
                );
            }
        }
        if let Some(sup) = &spec.supervision {
            self.positive("supervision.within_seconds".into(), sup.within_seconds);
        }
        self.positive("stale_after_seconds".into(), spec.stale_after_seconds);
        if let Some(b) = &spec.budget {
            self.positive("budget.max_seconds".into(), b.max_seconds);
            self.usd("budget.max_cost_usd".into(), b.max_cost_usd);
            if b.max_tokens == Some(0) {
                self.error("budget.max_tokens", "must be at least 1");
            }
        }
        if let Some(alerts) = &spec.alerts {
            self.out.extend(alert_config_findings("alerts", alerts));
        }

        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, w) in spec.workers.iter().enumerate() {
            let path = join_index("workers", i);
            self.id(&join_key(&path, "id"), &w.id, "worker", &mut seen, i);
            self.worker(spec, &path, w);
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, t) in spec.tasks.iter().enumerate() {
            let path = join_index("tasks", i);
            self.id(&join_key(&path, "id"), &t.id, "task", &mut seen, i);
            self.task(spec, &path, t);
        }
    }

    fn id<'s>(
        &mut self,
        path: &str,
        id: &'s str,
        what: &str,
        seen: &mut HashMap<&'s str, usize>,
        index: usize,
    ) {
        if id.is_empty() {
            // A missing id is reported by the parser.
            return;
        }
        if !is_valid_id(id) {
            self.error(path, format!("invalid {what} id {id:?}: {ID_RULE}"));
        }
        if let Some(first) = seen.insert(id, index) {
            seen.insert(id, first);
            self.error(
                path,
                format!("duplicate {what} id {id:?} (first used by {what}s[{first}])"),
            );
        }
    }

    fn env_names(&mut self, path: &str, names: &[String]) {
        for (i, name) in names.iter().enumerate() {
            let p = join_index(path, i);
            if !is_valid_env_name(name) {
                self.error(
                    p,
                    format!(
                        "`{name}` is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
                    ),
                );
            } else if is_secret_like(name) {
                self.error(
                    p,
                    format!(
                        "`{name}` looks like a secret; secret-like names ({}; any case) are refused in env allowlists",
                        secret_rule()
                    ),
                )
                .hint = Some(
                    "pass provider keys to agent runtimes with [runtime] secret_env in .orca/config.toml"
                        .into(),
                );
            }
        }
    }

    fn path(&mut self, field: String, task_root: Option<&str>, p: &str) {
        match paths::resolve_lexically(self.ctx.workspace_root, task_root, None, p) {
            Ok(_) => {}
            Err(e @ PathError::Escapes(_)) => {
                self.error(field, e.to_string()).hint = Some(
                    "paths resolve against the task's working directory inside the workspace; \
                     use $ORCA_ATTEMPT_DIR/… for the attempt directory"
                        .into(),
                );
            }
            Err(e) => {
                self.error(field, e.to_string());
            }
        }
    }

    /// `worker.tool_profile` and `worker.tools` must be expressible by the
    /// runtime that will run the task (docs/runtimes.md "Tool profiles").
    fn tool_profile(&mut self, path: &str, t: &TaskSpec) {
        use crate::runtime::profile::{profile_args, ProfileError};
        use crate::runtime::ResolvedRuntime;
        let Some(w) = &t.worker else { return };
        if w.tool_profile.is_none() && w.tools.is_empty() {
            return;
        }
        let at = join_key(
            path,
            if w.tool_profile.is_some() {
                "worker.tool_profile"
            } else {
                "worker.tools"
            },
        );
        let preset = match crate::runtime::resolve(t, self.ctx.runtime) {
            ResolvedRuntime::Preset { preset, .. } => Some(preset),
            ResolvedRuntime::Template { .. } => None,
            ResolvedRuntime::Command { .. } => {
                if w.tool_profile.is_some() {
                    self.warn(
                        at,
                        "a tool profile has no effect on a plain command (use \
                         workspace.writable_paths and security_policy to confine it)",
                    );
                }
                return;
            }
            // No runtime: the task already fails (and is warned about).
            ResolvedRuntime::Missing => {
                if let Some(p) = &w.tool_profile {
                    if crate::runtime::profile::ToolProfile::parse(p).is_none() {
                        self.error(at, ProfileError::Unknown(p.clone()).to_string());
                    }
                }
                return;
            }
        };
        if let Err(e) = profile_args(preset, w.tool_profile.as_deref(), &w.tools) {
            self.error(at, e.to_string()).hint = Some(
                "use the claude, codex or gemini preset for tool profiles (docs/runtimes.md), \
                 or drop tool_profile / tools"
                    .into(),
            );
        }
    }

    fn task(&mut self, spec: &RunSpec, path: &str, t: &TaskSpec) {
        self.name(join_key(path, "name"), t.name.as_deref());
        let task_root = t.workspace_root();

        match (&t.command, &t.instructions) {
            (None, None) => {
                self.error(
                    path,
                    "a task needs `command` (a plain process) or `instructions` (for the agent runtime)",
                );
            }
            (Some(CommandSpec::Argv(argv)), _) if argv.is_empty() || argv[0].is_empty() => {
                self.error(join_key(path, "command"), "the argv must name a program");
            }
            (Some(CommandSpec::Shell(s)), _) if s.trim().is_empty() => {
                self.error(join_key(path, "command"), "the shell command is empty");
            }
            (None, Some(_))
                if self.ctx.runtime.is_none()
                    && t.runtime.as_ref().and_then(|r| r.preset).is_none() =>
            {
                self.warn(
                    path,
                    "this task has only instructions and no agent runtime is configured; \
                     it will fail when it is about to run",
                )
                .hint = Some(RUNTIME_HINT.into());
            }
            _ => {}
        }

        self.tool_profile(path, t);

        if let Some(ws) = &t.workspace {
            if let Some(root) = &ws.root {
                if let Err(e) = paths::task_dir_relative(Some(root)) {
                    self.error(join_key(path, "workspace.root"), e.to_string());
                }
            }
            for (i, f) in ws.required_files.iter().enumerate() {
                self.path(
                    join_index(&join_key(path, "workspace.required_files"), i),
                    task_root,
                    f,
                );
            }
            for (i, f) in ws.writable_paths.iter().flatten().enumerate() {
                self.path(
                    join_index(&join_key(path, "workspace.writable_paths"), i),
                    task_root,
                    f,
                );
            }
            if let Some(env) = &ws.environment {
                self.env_names(
                    &join_key(path, "workspace.environment.required"),
                    &env.required,
                );
                self.env_names(
                    &join_key(path, "workspace.environment.allowlist"),
                    &env.allowlist,
                );
            }
        }
        for (i, f) in t.input_files.iter().enumerate() {
            self.path(join_index(&join_key(path, "input_files"), i), task_root, f);
        }

        if let Some(rt) = &t.runtime {
            self.task_runtime(&join_key(path, "runtime"), t, rt);
        }
        for (i, name) in t.secret_env.iter().enumerate() {
            if !is_valid_env_name(name) {
                self.error(
                    join_index(&join_key(path, "secret_env"), i),
                    format!(
                        "`{name}` is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
                    ),
                );
            }
        }

        self.positive(join_key(path, "timeout_seconds"), t.timeout_seconds);
        self.positive(join_key(path, "stale_after_seconds"), t.stale_after_seconds);
        if let Some(b) = &t.budget {
            self.positive(join_key(path, "budget.max_seconds"), b.max_seconds);
            self.usd(join_key(path, "budget.max_cost_usd"), b.max_cost_usd);
        }
        if let Some(r) = &t.retry_policy {
            self.retry(&join_key(path, "retry_policy"), r);
        }
        if let Some(s) = &t.scorer {
            self.scorer(&join_key(path, "scorer"), task_root, s);
        }
        if let Some(policy) = &t.alert_policy {
            self.alert_policy(spec, path, policy);
        }
        for (i, kind) in t.expected_artifacts.iter().enumerate() {
            if kind.is_empty() || kind.contains('/') || kind.starts_with('.') {
                self.error(
                    join_index(&join_key(path, "expected_artifacts"), i),
                    format!("artifact kind {kind:?} must be a plain name (it is matched against file names in artifacts/)"),
                );
            }
        }
        if let Some(p) = t.metadata.get("priority") {
            if p.as_i64().is_none() {
                self.error(
                    join_key(path, "metadata.priority"),
                    format!("must be an integer (lower runs first), found {p}"),
                );
            }
        }
        let caps = t.required_capabilities();
        if !caps.is_empty()
            && !spec.workers.is_empty()
            && !spec.workers.iter().any(|w| w.can_take(t))
        {
            self.error(
                join_key(path, "worker.capabilities"),
                format!(
                    "no declared worker has all of [{}]; the task could never run",
                    caps.join(", ")
                ),
            );
        }
    }

    fn task_runtime(&mut self, path: &str, t: &TaskSpec, rt: &TaskRuntime) {
        match (&t.command, rt.preset) {
            (Some(_), Some(p)) => {
                self.error(
                    join_key(path, "preset"),
                    format!(
                        "the task has a `command`; `preset = \"{p}\"` would run another process"
                    ),
                )
                .hint = Some(
                    "drop `command` to run the preset, or keep `command` and name its stream with `runtime.format`"
                        .into(),
                );
            }
            (Some(_), None) => {
                for (field, set) in [
                    ("args", rt.args.is_some()),
                    ("program", rt.program.is_some()),
                ] {
                    if set {
                        self.warn(
                            join_key(path, field),
                            "ignored: the task's `command` is the process that runs",
                        );
                    }
                }
            }
            (None, Some(p)) => {
                if rt.format.is_some() {
                    self.warn(
                        join_key(path, "format"),
                        "ignored with `preset`: the preset knows its format",
                    );
                }
                if !crate::runtime::PRESETS_WIRED {
                    self.warn(
                        join_key(path, "preset"),
                        format!(
                            "this orca validates `preset = \"{p}\"` but does not run presets yet; \
                             the attempt will fail with \"no agent runtime is configured\""
                        ),
                    )
                    .hint = Some(
                        "until then, use an argv template: [runtime] command in .orca/config.toml (docs/runtimes.md)"
                            .into(),
                    );
                }
            }
            (None, None) => {
                if rt.format.is_some() {
                    self.warn(
                        join_key(path, "format"),
                        "ignored: `format` names the stream of the task's `command`, and it has none",
                    );
                }
            }
        }
        if matches!(rt.model.as_deref(), Some(m) if m.trim().is_empty()) {
            self.error(join_key(path, "model"), "must not be empty");
        }
        if matches!(rt.program.as_deref(), Some(p) if p.trim().is_empty()) {
            self.error(join_key(path, "program"), "must not be empty");
        }
        for (i, arg) in rt.args.iter().flatten().enumerate() {
            if arg.contains("{prompt}") {
                self.error(
                    join_index(&join_key(path, "args"), i),
                    "`{prompt}` is not allowed in args: the preset passes the prompt itself (on stdin, or as a file for long prompts)",
                );
            }
        }
    }

    fn retry(&mut self, path: &str, r: &RetryPolicy) {
        if r.max_attempts == Some(0) {
            self.error(
                join_key(path, "max_attempts"),
                "must be at least 1 (it counts the first attempt)",
            );
        }
        if let Some(m) = r.backoff_multiplier {
            if m.is_nan() || m < 1.0 || !m.is_finite() {
                self.error(
                    join_key(path, "backoff_multiplier"),
                    format!("must be at least 1 (got {m}); delays must not shrink"),
                );
            }
        }
        let eff = EffectiveRetry::from(Some(r));
        if eff.initial_backoff > eff.max_backoff {
            let which = if r.initial_backoff_seconds.is_some() {
                "initial_backoff_seconds"
            } else {
                "max_backoff_seconds"
            };
            self.error(
                join_key(path, which),
                format!(
                    "initial_backoff_seconds ({}) is greater than max_backoff_seconds ({})",
                    eff.initial_backoff.get(),
                    eff.max_backoff.get()
                ),
            );
        }
        if let Some(on) = &r.retry_on {
            if let Some(i) = on.iter().position(|c| *c == FailureClass::NeedsHuman) {
                self.warn(
                    join_index(&join_key(path, "retry_on"), i),
                    "needs_human is never retried; listing it has no effect",
                );
            }
        }
    }

    fn scorer(&mut self, path: &str, task_root: Option<&str>, s: &ScorerSpec) {
        let (required, allowed) = s.kind.fields();
        if s.kind == ScorerKind::VerifierPrompt && self.ctx.runtime.is_none() {
            self.warn(
                path,
                "a verifier_prompt scorer runs the agent runtime and none is configured; \
                 the attempt will fail (source verifier) when it is scored",
            )
            .hint = Some(RUNTIME_HINT.into());
        }
        let present = |name: &str| match name {
            "expected" => s.expected.is_some(),
            "path" => s.path.is_some(),
            "pattern" => s.pattern.is_some(),
            "expression" => s.expression.is_some(),
            "equals" => s.equals.is_some(),
            "fresh" => s.fresh.is_some(),
            "command" => s.command.is_some(),
            "args" => !s.args.is_empty(),
            "prompt" => s.prompt.is_some(),
            _ => false,
        };
        for f in required {
            if !present(f) {
                self.error(path, format!("kind {} requires `{f}`", s.kind));
            }
        }
        for f in [
            "expected",
            "path",
            "pattern",
            "expression",
            "equals",
            "fresh",
            "command",
            "args",
            "prompt",
        ] {
            if present(f) && !allowed.contains(&f) {
                self.warn(
                    join_key(path, f),
                    format!(
                        "ignored by kind {} (it uses: {})",
                        s.kind,
                        describe(allowed)
                    ),
                );
            }
        }
        if let Some(p) = &s.path {
            let stream = s.kind == ScorerKind::RegexMatch && (p == "stdout" || p == "stderr");
            if s.kind.is_file_based() && !stream {
                self.path(join_key(path, "path"), task_root, p);
            }
        }
        if s.kind == ScorerKind::RegexMatch {
            if let Some(pat) = &s.pattern {
                if let Err(e) = regex::Regex::new(pat) {
                    // regex's messages draw a caret over the pattern on
                    // several lines; the last line says what is wrong.
                    let text = e.to_string();
                    let what = text.lines().last().unwrap_or_default();
                    let what = what.strip_prefix("error: ").unwrap_or(what);
                    self.error(
                        join_key(path, "pattern"),
                        format!("invalid regex {pat:?}: {what}"),
                    );
                }
            }
        }
        if s.kind == ScorerKind::JsonPath {
            if let Some(expr) = &s.expression {
                if let Err(e) = serde_json_path::JsonPath::parse(expr) {
                    self.error(
                        join_key(path, "expression"),
                        format!("invalid JSONPath (RFC 9535): {e}"),
                    );
                }
            }
        }
        if s.kind == ScorerKind::Command && matches!(&s.command, Some(c) if c.trim().is_empty()) {
            self.error(join_key(path, "command"), "must name a program");
        }
        self.positive(join_key(path, "timeout_seconds"), s.timeout_seconds);
    }

    fn worker(&mut self, spec: &RunSpec, path: &str, w: &WorkerSpec) {
        self.name(join_key(path, "name"), w.name.as_deref());
        if w.max_concurrent_tasks == Some(0) {
            self.error(join_key(path, "max_concurrent_tasks"), "must be at least 1");
        }
        let host_path = join_key(path, "host");
        match &w.host {
            HostSpec::Local(l) => {
                self.env_names(&join_key(&host_path, "env_allowlist"), &l.env_allowlist);
            }
            HostSpec::Ssh(s) => {
                if s.host.as_deref().is_none_or(str::is_empty) {
                    self.error(&host_path, "an ssh host requires `host`");
                }
                match s.working_directory.as_deref() {
                    None | Some("") => {
                        self.error(&host_path, "an ssh host requires `working_directory` (where attempts run on the host)");
                    }
                    Some(d) if !d.starts_with('/') => {
                        self.error(
                            join_key(&host_path, "working_directory"),
                            "must be an absolute path on the host",
                        );
                    }
                    _ => {}
                }
                let needs_binary = spec
                    .tasks
                    .iter()
                    .any(|t| t.needs_runtime() && w.can_take(t));
                if needs_binary && s.binary.is_none() {
                    self.error(
                        &host_path,
                        "an ssh host requires `binary` (the agent runtime on the host; the seed's \
                         `codewhale_binary` is accepted) when it may run tasks without `command`",
                    );
                }
                self.positive(
                    join_key(&host_path, "connect_timeout_seconds"),
                    s.connect_timeout_seconds,
                );
                if s.port == Some(0) {
                    self.error(join_key(&host_path, "port"), "must be between 1 and 65535");
                }
                match s.max_sessions {
                    Some(0) => {
                        self.error(join_key(&host_path, "max_sessions"), "must be at least 1");
                    }
                    Some(n) if n > DEFAULT_SSH_MAX_SESSIONS => {
                        self.warn(
                            join_key(&host_path, "max_sessions"),
                            format!(
                                "{n} task channels plus 2 control channels exceed OpenSSH's default MaxSessions of 10; raise MaxSessions on the host"
                            ),
                        );
                    }
                    _ => {}
                }
                if let Some(fp) = &s.host_key_fingerprint {
                    if !fp.starts_with("SHA256:") || fp.len() < 12 {
                        self.error(
                            join_key(&host_path, "host_key_fingerprint"),
                            "expected `SHA256:<base64>`, as `ssh-keygen -lf` prints it",
                        );
                    }
                }
                if s.insecure_accept_any_host_key {
                    self.warn(
                        join_key(&host_path, "insecure_accept_any_host_key"),
                        "any host key will be accepted: a man-in-the-middle would go unnoticed (labs only)",
                    );
                }
                if s.identity.is_none() {
                    self.warn(
                        &host_path,
                        "no `identity`: orca will try ~/.ssh/id_ed25519, then ~/.ssh/id_rsa",
                    );
                }
                self.env_names(&join_key(&host_path, "env_allowlist"), &s.env_allowlist);
            }
        }
    }

    /// A task's `alert_policy`, through its typed view: type errors and
    /// unknown fields with their paths, routes to adapters that the
    /// effective alert config (the run's `alerts`, else the workspace's)
    /// does not declare.
    fn alert_policy(&mut self, spec: &RunSpec, path: &str, raw: &Extra) {
        let path = join_key(path, "alert_policy");
        let mut diags = Diags::default();
        let policy = AlertPolicy::from_spec(Value::Object(raw.clone()), &path, &mut diags);
        self.out.extend(diags.items.into_iter().map(|(d, _)| d));
        let Some(policy) = policy else { return };
        for (i, route) in policy.routes.iter().enumerate() {
            let rpath = join_index(&join_key(&path, "routes"), i);
            match spec.alerts.as_ref().or(self.ctx.alerts) {
                Some(alerts) => {
                    if let Some(d) = unknown_adapter(&rpath, &route.adapter, alerts) {
                        self.out.push(d);
                    }
                }
                None => self.out.push(Diagnostic::error(
                    join_key(&rpath, "adapter"),
                    format!(
                        "no adapter named {:?}: neither the run (`alerts`) nor the workspace \
                         (`[alerts]` in .orca/config.toml) declares alert adapters",
                        route.adapter
                    ),
                )),
            }
            if route.events.is_empty() {
                self.warn(
                    join_key(&rpath, "events"),
                    "no events: this route never fires",
                );
            }
            inline_secrets(&rpath, &route.extra, &mut self.out);
        }
        inline_secrets(&path, &policy.extra, &mut self.out);
    }
}

/// Whether a value written where an env var *name* belongs (or in a free
/// field of an alert config) looks like a secret itself: a URL, a Slack
/// webhook or token, a `whsec_` signing secret, or a long mixed-case key
/// such as a PagerDuty routing key. Env names are conventionally
/// UPPER_SNAKE_CASE, which never matches the last rule.
pub fn looks_like_secret_value(value: &str) -> bool {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    if lower.contains("://") || lower.starts_with("www.") || lower.contains("hooks.slack.com") {
        return true;
    }
    if ["whsec_", "xoxb-", "xoxp-", "xoxa-", "xapp-"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return true;
    }
    let key_chars = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-'));
    v.len() >= 20
        && !v.contains('_')
        && key_chars
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars().any(|c| c.is_ascii_lowercase())
}

/// Every finding for an alert config (a run's `alerts`, or `[alerts]` in
/// `.orca/config.toml`), paths under `prefix`. Messages never repeat a
/// value that may be a secret.
pub fn alert_config_findings(prefix: &str, a: &AlertConfig) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, route) in a.routes.iter().enumerate() {
        let path = join_index(&join_key(prefix, "routes"), i);
        if let Some(d) = unknown_adapter(&path, &route.adapter, a) {
            out.push(d);
        }
        if route.events.is_empty() {
            out.push(Diagnostic::warning(
                join_key(&path, "events"),
                "no events: this route never fires",
            ));
        }
        inline_secrets(&path, &route.extra, &mut out);
    }
    inline_secrets(prefix, &a.extra, &mut out);
    for (name, adapter) in &a.adapters {
        let path = join_key(&join_key(prefix, "adapters"), name);
        for (field, env) in adapter.env_fields() {
            if let Some(d) = env_field_finding(&join_key(&path, field), env) {
                out.push(d);
            }
        }
        if let Some(rate) = adapter.rate_limit() {
            if !(rate.is_finite() && rate > 0.0) {
                out.push(Diagnostic::error(
                    join_key(&path, "rate_limit"),
                    format!("must be a positive number of messages a second (got {rate})"),
                ));
            }
        }
        match adapter {
            AlertAdapter::Slack(s) => {
                if s.channel.as_deref().is_some_and(looks_like_secret_value) {
                    out.push(inline_secret(join_key(&path, "channel"), "channel"));
                }
            }
            AlertAdapter::PagerDuty(p) => {
                if let Some(endpoint) = &p.endpoint {
                    if let Err(why) = crate::alert::endpoint::check(endpoint) {
                        out.push(Diagnostic::error(
                            join_key(&path, "endpoint"),
                            format!("adapter `{name}`: {why}"),
                        ));
                    }
                }
            }
            AlertAdapter::Webhook(_) => {}
        }
        inline_secrets(&path, adapter.extra(), &mut out);
    }
    let used: HashSet<&str> = a.routes.iter().map(|r| r.adapter.as_str()).collect();
    for name in a.adapters.keys() {
        if !used.contains(name.as_str()) {
            out.push(Diagnostic::warning(
                join_key(&join_key(prefix, "adapters"), name),
                "no route uses this adapter",
            ));
        }
    }
    out
}

/// A route's adapter that `a` does not declare.
fn unknown_adapter(path: &str, adapter: &str, a: &AlertConfig) -> Option<Diagnostic> {
    if a.adapters.contains_key(adapter) {
        return None;
    }
    let known: Vec<&str> = a.adapters.keys().map(String::as_str).collect();
    Some(Diagnostic::error(
        join_key(path, "adapter"),
        format!(
            "no adapter named {adapter:?} (declared: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ),
    ))
}

/// A field that must hold an env var name.
fn env_field_finding(path: &str, value: &str) -> Option<Diagnostic> {
    if looks_like_secret_value(value) {
        return Some(inline_secret(path.to_string(), "value"));
    }
    if !is_valid_env_name(value) {
        return Some(Diagnostic::error(
            path,
            "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*); \
             adapters hold env var names, never values",
        ));
    }
    None
}

fn inline_secret(path: String, what: &str) -> Diagnostic {
    Diagnostic::error(
        path,
        format!(
            "this {what} looks like a URL or a secret written inline; refused so it never \
             reaches the journal (the value is not repeated here)"
        ),
    )
    .with_hint(
        "put it in an environment variable and name that variable in the adapter's \
         `webhook_env`, `url_env`, `secret_env` or `routing_key_env`",
    )
}

/// Unknown string fields of an alert config that hold what looks like a
/// URL or a secret (`url = "https://hooks.slack.com/…"` instead of
/// `url_env`): kept unknown fields are journaled with the spec, so these
/// are errors, not warnings.
fn inline_secrets(path: &str, extra: &Extra, out: &mut Vec<Diagnostic>) {
    for (key, value) in extra {
        if let Value::String(text) = value {
            if looks_like_secret_value(text) {
                out.push(inline_secret(join_key(path, key), "field"));
            }
        }
    }
}

fn describe(fields: &[&str]) -> String {
    if fields.is_empty() {
        "no other fields".into()
    } else {
        fields.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_like_names() {
        for s in [
            "GITHUB_TOKEN",
            "my_secret",
            "DB_PASSWORD",
            "passwd",
            "OPENAI_API_KEY",
            "AWS_CREDENTIALS",
            "SSH_PRIVATE_KEY",
            "AWS_ACCESS_KEY_ID",
            "aws_secret_access_key",
            "DB_PASS",
            "OPENAI_APIKEY",
            "SLACK_WEBHOOK_URL",
            "Stripe_Key",
            "SENTRY_DSN",
        ] {
            assert!(is_secret_like(s), "{s}");
        }
        for s in [
            "PATH",
            "HOME",
            "CODEWHALE_PROFILE",
            "KEYBOARD",
            "PASSENGER_COUNT",
            "AUTHOR_NAME",
            "PWD",
            "LANG",
        ] {
            assert!(!is_secret_like(s), "{s}");
        }
    }

    #[test]
    fn env_names() {
        assert!(is_valid_env_name("_A1"));
        assert!(!is_valid_env_name("1A"));
        assert!(!is_valid_env_name("A-B"));
        assert!(!is_valid_env_name(""));
    }
}
