//! The alert config the router acts on, defaults applied.
//!
//! A run's effective config is its spec's `alerts` when it has one (even a
//! disabled one: that is how a run opts out), else the workspace default
//! (`[alerts]` in `.orca/config.toml`); agents' alerts use the workspace
//! default. A task's `alert_policy` then adds routes to the run's (or
//! replaces them, `replace_routes = true`) and may set the severity of that
//! task's alerts. Severity: the task's policy, else the adapter's
//! (`pager_duty.severity`), else the class's default.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::endpoint::{self, EndpointProblem};
use super::events::{AdapterKind, AdapterRef, AlertSource};
use super::secret::{self, EnvLookup, SecretError};
use super::sign::SigningKey;
use crate::model::{AlertClass, AlertSeverity};
use crate::spec::source::{join_index, join_key};
use crate::spec::{
    AlertAdapter, AlertConfig, AlertPolicy, AlertRoute, Diagnostic, RunSpec,
    DEFAULT_PAGER_DUTY_RATE_LIMIT, DEFAULT_SLACK_RATE_LIMIT, DEFAULT_WEBHOOK_RATE_LIMIT,
};

/// One adapter, defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedAdapter {
    pub name: String,
    pub kind: AdapterKind,
    pub spec: AlertAdapter,
    /// Messages a second at most (> 0).
    pub rate_limit: f64,
}

impl ResolvedAdapter {
    pub fn new(name: impl Into<String>, spec: AlertAdapter) -> Self {
        // Validation refuses a non-positive or non-finite rate; should one
        // get here anyway, the kind's default applies.
        let rate = spec
            .rate_limit()
            .filter(|r| r.is_finite() && *r > 0.0)
            .unwrap_or(match &spec {
                AlertAdapter::Slack(_) => DEFAULT_SLACK_RATE_LIMIT,
                AlertAdapter::Webhook(_) => DEFAULT_WEBHOOK_RATE_LIMIT,
                AlertAdapter::PagerDuty(_) => DEFAULT_PAGER_DUTY_RATE_LIMIT,
            });
        Self {
            name: name.into(),
            kind: AdapterKind::of(&spec),
            rate_limit: rate,
            spec,
        }
    }

    /// Its name and kind, as journaled.
    pub fn reference(&self) -> AdapterRef {
        AdapterRef {
            name: self.name.clone(),
            kind: self.kind,
        }
    }

    /// The adapter's own severity (PagerDuty's `severity`).
    pub fn severity(&self) -> Option<AlertSeverity> {
        match &self.spec {
            AlertAdapter::PagerDuty(p) => p.severity,
            _ => None,
        }
    }
}

/// An effective alert config.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedAlerts {
    pub enabled: bool,
    pub dry_run: bool,
    /// 0: each alert on its own.
    pub group_wait_ms: u64,
    /// 0: never repeat.
    pub repeat_interval_ms: u64,
    pub routes: Vec<AlertRoute>,
    pub adapters: BTreeMap<String, ResolvedAdapter>,
    /// Task id → its `alert_policy`.
    pub policies: BTreeMap<String, AlertPolicy>,
}

impl Default for ResolvedAlerts {
    fn default() -> Self {
        Self::disabled()
    }
}

impl ResolvedAlerts {
    /// Nothing is sent.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            dry_run: false,
            group_wait_ms: 0,
            repeat_interval_ms: AlertConfig::default()
                .effective_repeat_interval()
                .as_millis(),
            routes: Vec::new(),
            adapters: BTreeMap::new(),
            policies: BTreeMap::new(),
        }
    }

    /// A config without task policies (the workspace default, agents).
    pub fn from_config(cfg: Option<&AlertConfig>) -> Self {
        let Some(cfg) = cfg else {
            return Self::disabled();
        };
        Self {
            enabled: cfg.enabled,
            dry_run: cfg.dry_run,
            group_wait_ms: cfg.effective_group_wait().as_millis(),
            repeat_interval_ms: cfg.effective_repeat_interval().as_millis(),
            routes: cfg.routes.clone(),
            adapters: cfg
                .adapters
                .iter()
                .map(|(name, a)| (name.clone(), ResolvedAdapter::new(name, a.clone())))
                .collect(),
            policies: BTreeMap::new(),
        }
    }

    /// A run's effective config: its `alerts`, else `default`, with its
    /// tasks' policies. A policy route naming an adapter the effective
    /// config does not declare is an error at its field path (spec
    /// validation can check it only against the run's own `alerts`).
    pub fn for_run(spec: &RunSpec, default: Option<&AlertConfig>) -> Result<Self, Vec<Diagnostic>> {
        let mut out = Self::from_config(spec.alerts.as_ref().or(default));
        let mut errors = Vec::new();
        for (i, task) in spec.tasks.iter().enumerate() {
            let Some(policy) = task.typed_alert_policy() else {
                continue;
            };
            for (j, route) in policy.routes.iter().enumerate() {
                if !out.adapters.contains_key(&route.adapter) {
                    let known: Vec<&str> = out.adapters.keys().map(String::as_str).collect();
                    errors.push(Diagnostic::error(
                        join_key(
                            &join_index(
                                &join_key(&join_index("tasks", i), "alert_policy.routes"),
                                j,
                            ),
                            "adapter",
                        ),
                        format!(
                            "no adapter named {:?} in the {} alert config (declared: {})",
                            route.adapter,
                            if spec.alerts.is_some() {
                                "run's"
                            } else {
                                "workspace's"
                            },
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
            }
            out.policies.insert(task.id.clone(), policy);
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    pub fn adapter(&self, name: &str) -> Option<&ResolvedAdapter> {
        self.adapters.get(name)
    }

    /// The adapters an alert of `class` from `task` goes to, in route order,
    /// each once.
    pub fn targets(&self, class: AlertClass, task: Option<&str>) -> Vec<&ResolvedAdapter> {
        let policy = task.and_then(|t| self.policies.get(t));
        let run_routes = if policy.is_some_and(|p| p.replace_routes) {
            &[][..]
        } else {
            &self.routes[..]
        };
        let task_routes = policy.map(|p| &p.routes[..]).unwrap_or(&[]);
        let mut out: Vec<&ResolvedAdapter> = Vec::new();
        for r in run_routes.iter().chain(task_routes) {
            if !r.events.contains(&class) {
                continue;
            }
            if let Some(a) = self.adapters.get(&r.adapter) {
                if !out.iter().any(|o| o.name == a.name) {
                    out.push(a);
                }
            }
        }
        out
    }

    /// The severity of an alert of `class` from `task` at `adapter`.
    pub fn severity(&self, class: AlertClass, task: Option<&str>, adapter: &str) -> AlertSeverity {
        task.and_then(|t| self.policies.get(t))
            .and_then(|p| p.severity)
            .or_else(|| {
                self.adapters
                    .get(adapter)
                    .and_then(ResolvedAdapter::severity)
            })
            .unwrap_or_else(|| class.default_severity())
    }
}

/// Every config the router needs: the workspace default and each run's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertConfigs {
    /// The workspace default: runs without `alerts`, agents, unknown runs.
    pub default: ResolvedAlerts,
    /// Run id → its effective config.
    pub runs: HashMap<String, ResolvedAlerts>,
    /// The daemon's base URL, for links (`client_url`), when it serves one.
    pub address: Option<String>,
}

impl AlertConfigs {
    /// The config that governs alerts from `source`.
    pub fn for_source(&self, source: &AlertSource) -> &ResolvedAlerts {
        match source {
            AlertSource::Run { run } => self.runs.get(run).unwrap_or(&self.default),
            AlertSource::Agent { .. } | AlertSource::Operator { .. } => &self.default,
        }
    }
}

/// What is wrong with an adapter's environment (before anything is sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvProblemKind {
    Missing,
    Empty,
    /// The URL in the variable is refused (not a URL, not https…).
    Url(EndpointProblem),
    /// The signing secret is not usable (bad `whsec_` base64).
    SigningSecret,
}

/// An env problem of one adapter field. Names the variable, never its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvProblem {
    pub adapter: String,
    pub field: &'static str,
    pub env: String,
    pub kind: EnvProblemKind,
}

impl fmt::Display for EnvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "adapter `{}`: {} ({}) ",
            self.adapter, self.env, self.field
        )?;
        match &self.kind {
            EnvProblemKind::Missing => f.write_str("is not set"),
            EnvProblemKind::Empty => f.write_str("is empty"),
            EnvProblemKind::Url(p) => write!(f, "holds a URL that is refused: {p}"),
            EnvProblemKind::SigningSecret => {
                f.write_str("is not a usable signing secret (`whsec_` must be followed by base64)")
            }
        }
    }
}

/// Checks every adapter's env vars in `env` (what `orca validate` and
/// `orca alert test` report): set, non-empty, URLs https (or loopback
/// http), signing secrets decodable.
pub fn check_env(
    adapters: &BTreeMap<String, AlertAdapter>,
    env: &dyn EnvLookup,
) -> Vec<EnvProblem> {
    let mut out = Vec::new();
    for (name, adapter) in adapters {
        for (field, var) in adapter.env_fields() {
            let problem = |kind| EnvProblem {
                adapter: name.clone(),
                field,
                env: var.to_string(),
                kind,
            };
            let value = match secret::resolve(env, name, field, var) {
                Ok(v) => v,
                Err(SecretError::Missing { .. }) => {
                    out.push(problem(EnvProblemKind::Missing));
                    continue;
                }
                Err(SecretError::Empty { .. }) => {
                    out.push(problem(EnvProblemKind::Empty));
                    continue;
                }
            };
            match field {
                "webhook_env" | "url_env" => {
                    if let Err(p) = endpoint::check(value.expose()) {
                        out.push(problem(EnvProblemKind::Url(p)));
                    }
                }
                "secret_env" if SigningKey::from_secret(&value).is_err() => {
                    out.push(problem(EnvProblemKind::SigningSecret));
                }
                _ => {}
            }
        }
    }
    out
}

/// Where a run's effective alert config comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanSource {
    /// The run's own `alerts`.
    Run,
    /// `[alerts]` in `.orca/config.toml`.
    Workspace,
    /// Neither: alerts are disabled.
    None,
}

/// What becomes of a run's alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanState {
    /// Alerts are journaled; nothing is routed or sent.
    Disabled,
    /// Routed and journaled as suppressed (`dry_run`); nothing is sent.
    DryRun,
    /// Routed and sent.
    Enabled,
}

/// One adapter as `orca validate` shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PlannedAdapter {
    pub kind: AdapterKind,
    /// The env var names it reads at send time (never their values).
    pub env: Vec<String>,
    pub rate_limit: f64,
}

/// What a run's alerts will do, stated from its effective config: which
/// classes go where, which are suppressed for want of a route, and what
/// in the environment would stop a send. Pure: the environment is given.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AlertPlan {
    pub source: PlanSource,
    pub state: PlanState,
    pub group_wait_seconds: f64,
    /// 0: never repeated.
    pub repeat_interval_seconds: f64,
    /// Class → the adapters its alerts go to (tasks without a policy).
    pub routes: BTreeMap<AlertClass, Vec<String>>,
    /// Task → class → adapters, for tasks whose `alert_policy` changes
    /// where their alerts go.
    pub tasks: BTreeMap<String, BTreeMap<AlertClass, Vec<String>>>,
    /// Classes no route sends (journaled as suppressed: no route).
    pub unrouted: Vec<AlertClass>,
    pub adapters: BTreeMap<String, PlannedAdapter>,
    /// Variables missing, empty or refused in the environment checked.
    pub env_problems: Vec<PlannedEnvProblem>,
}

/// An [`EnvProblem`] as shown (names only, never a value).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PlannedEnvProblem {
    pub adapter: String,
    pub field: &'static str,
    pub env: String,
    /// The whole sentence ("adapter `x`: VAR (url_env) is not set").
    pub problem: String,
}

impl AlertPlan {
    /// The plan of `spec` in a workspace whose default is `default`, its
    /// adapters' env checked in `env`.
    pub fn of(spec: &RunSpec, default: Option<&AlertConfig>, env: &dyn EnvLookup) -> Self {
        let (source, cfg) = match (&spec.alerts, default) {
            (Some(a), _) => (PlanSource::Run, Some(a)),
            (None, Some(d)) => (PlanSource::Workspace, Some(d)),
            (None, None) => (PlanSource::None, None),
        };
        let resolved = ResolvedAlerts::for_run(spec, default)
            .unwrap_or_else(|_| ResolvedAlerts::from_config(cfg));
        let state = match (resolved.enabled, resolved.dry_run) {
            (false, _) => PlanState::Disabled,
            (true, true) => PlanState::DryRun,
            (true, false) => PlanState::Enabled,
        };
        let targets = |task: Option<&str>| -> BTreeMap<AlertClass, Vec<String>> {
            AlertClass::ALL
                .iter()
                .map(|c| {
                    let names = resolved
                        .targets(*c, task)
                        .into_iter()
                        .map(|a| a.name.clone());
                    (*c, names.collect::<Vec<_>>())
                })
                .filter(|(_, v)| !v.is_empty())
                .collect()
        };
        let routes = targets(None);
        let tasks: BTreeMap<_, _> = resolved
            .policies
            .keys()
            .map(|t| (t.clone(), targets(Some(t))))
            .filter(|(_, t)| *t != routes)
            .collect();
        let unrouted = AlertClass::ALL
            .iter()
            .copied()
            .filter(|c| !routes.contains_key(c) && !tasks.values().any(|t| t.contains_key(c)))
            .collect();
        let adapters = resolved
            .adapters
            .values()
            .map(|a| {
                let env = a.spec.env_fields().into_iter().map(|(_, v)| v.to_string());
                (
                    a.name.clone(),
                    PlannedAdapter {
                        kind: a.kind,
                        env: env.collect(),
                        rate_limit: a.rate_limit,
                    },
                )
            })
            .collect();
        let specs: BTreeMap<String, AlertAdapter> = resolved
            .adapters
            .iter()
            .map(|(n, a)| (n.clone(), a.spec.clone()))
            .collect();
        Self {
            source,
            state,
            group_wait_seconds: resolved.group_wait_ms as f64 / 1000.0,
            repeat_interval_seconds: resolved.repeat_interval_ms as f64 / 1000.0,
            routes,
            tasks,
            unrouted,
            adapters,
            env_problems: check_env(&specs, env)
                .into_iter()
                .map(|p| PlannedEnvProblem {
                    problem: p.to_string(),
                    adapter: p.adapter,
                    field: p.field,
                    env: p.env,
                })
                .collect(),
        }
    }

    /// Whether a notification can leave this process: enabled, routed, and
    /// some routed adapter's env is complete.
    pub fn sends(&self) -> bool {
        self.state == PlanState::Enabled
            && (!self.routes.is_empty() || !self.tasks.is_empty())
            && self
                .adapters
                .keys()
                .any(|name| !self.env_problems.iter().any(|p| &p.adapter == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{
        check_str, Format, PagerDutyAdapter, SlackAdapter, ValidateContext, WebhookAdapter,
    };

    fn spec(json: &str) -> RunSpec {
        let report = check_str(json, Format::Json, "t.json", &ValidateContext::default());
        match report.into_result() {
            Ok(v) => v.spec,
            Err(e) => panic!("{e}"),
        }
    }

    const RUN: &str = r#"{
        "alerts": {
            "enabled": true,
            "group_wait": 30,
            "routes": [
                {"events": ["stale", "needs_human"], "adapter": "chat"},
                {"events": ["needs_human"], "adapter": "pager"}
            ],
            "adapters": {
                "chat": {"kind": "slack", "webhook_env": "ORCA_SLACK_WEBHOOK"},
                "hook": {"kind": "webhook", "url_env": "ORCA_WEBHOOK_URL", "rate_limit": 0.5},
                "pager": {"kind": "pager_duty", "routing_key_env": "ORCA_PAGERDUTY_ROUTING_KEY", "severity": "critical"}
            }
        },
        "tasks": [
            {"id": "plain", "command": "true"},
            {"id": "quiet", "command": "true", "alert_policy": {"replace_routes": true}},
            {"id": "extra", "command": "true", "alert_policy": {"routes": [{"events": ["stale"], "adapter": "hook"}], "severity": "info"}}
        ]
    }"#;

    #[test]
    fn defaults_and_rate_limits() {
        let r = ResolvedAlerts::for_run(&spec(RUN), None).unwrap();
        assert!(r.enabled && !r.dry_run);
        assert_eq!(r.group_wait_ms, 30_000);
        assert_eq!(r.repeat_interval_ms, 4 * 3600 * 1000);
        assert_eq!(r.adapters["chat"].rate_limit, 1.0);
        assert_eq!(r.adapters["hook"].rate_limit, 0.5);
        assert_eq!(r.adapters["pager"].rate_limit, 2.0);
        assert_eq!(r.adapters["pager"].kind, AdapterKind::PagerDuty);
    }

    fn names(v: Vec<&ResolvedAdapter>) -> Vec<&str> {
        v.into_iter().map(|a| a.name.as_str()).collect()
    }

    #[test]
    fn routing_by_class_and_task_policy() {
        let r = ResolvedAlerts::for_run(&spec(RUN), None).unwrap();
        assert_eq!(
            names(r.targets(AlertClass::NeedsHuman, Some("plain"))),
            ["chat", "pager"]
        );
        assert_eq!(names(r.targets(AlertClass::Stale, None)), ["chat"]);
        assert!(r.targets(AlertClass::RunCompleted, None).is_empty());
        // replace_routes without routes silences the task.
        assert!(r.targets(AlertClass::NeedsHuman, Some("quiet")).is_empty());
        // A policy's routes extend the run's.
        assert_eq!(
            names(r.targets(AlertClass::Stale, Some("extra"))),
            ["chat", "hook"]
        );
    }

    #[test]
    fn severity_precedence_task_then_adapter_then_class() {
        let r = ResolvedAlerts::for_run(&spec(RUN), None).unwrap();
        assert_eq!(
            r.severity(AlertClass::Stale, Some("extra"), "pager"),
            AlertSeverity::Info
        );
        assert_eq!(
            r.severity(AlertClass::Stale, Some("plain"), "pager"),
            AlertSeverity::Critical
        );
        assert_eq!(
            r.severity(AlertClass::Stale, Some("plain"), "chat"),
            AlertSeverity::Warning
        );
        assert_eq!(
            r.severity(AlertClass::RunCompleted, None, "chat"),
            AlertSeverity::Info
        );
    }

    #[test]
    fn workspace_default_applies_only_without_run_alerts() {
        let default = AlertConfig {
            enabled: true,
            adapters: [(
                "ws".to_string(),
                AlertAdapter::Slack(SlackAdapter {
                    webhook_env: "W".into(),
                    ..Default::default()
                }),
            )]
            .into(),
            routes: vec![AlertRoute {
                events: vec![AlertClass::Stale],
                adapter: "ws".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let bare = spec(r#"{"tasks": [{"id": "t", "command": "true"}]}"#);
        let r = ResolvedAlerts::for_run(&bare, Some(&default)).unwrap();
        assert!(r.enabled);
        assert_eq!(names(r.targets(AlertClass::Stale, Some("t"))), ["ws"]);
        let opted_out =
            spec(r#"{"alerts": {"enabled": false}, "tasks": [{"id": "t", "command": "true"}]}"#);
        let r = ResolvedAlerts::for_run(&opted_out, Some(&default)).unwrap();
        assert!(!r.enabled);
        assert!(!ResolvedAlerts::for_run(&bare, None).unwrap().enabled);
    }

    #[test]
    fn policy_route_to_an_adapter_of_neither_config_is_an_error() {
        let text = r#"{"tasks": [{"id": "t", "command": "true", "alert_policy": {"routes": [{"events": ["stale"], "adapter": "nope"}]}}]}"#;
        // Validation checks the route against the workspace default too.
        let default: AlertConfig = serde_json::from_str(
            r#"{"enabled": true, "adapters": {"chat": {"kind": "slack", "webhook_env": "S"}}}"#,
        )
        .unwrap();
        let ctx = ValidateContext {
            alerts: Some(&default),
            ..ValidateContext::default()
        };
        let report = check_str(text, Format::Json, "t.json", &ctx);
        let errs: Vec<_> = report.errors().collect();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "tasks[0].alert_policy.routes[0].adapter");
        assert!(
            errs[0].message.contains("(declared: chat)"),
            "{}",
            errs[0].message
        );
        let report = check_str(text, Format::Json, "t.json", &ValidateContext::default());
        let errs: Vec<_> = report.errors().collect();
        assert!(
            errs[0].message.contains("neither the run"),
            "{}",
            errs[0].message
        );
        // A spec journaled before this check: resolving it still says why.
        let lenient = crate::spec::from_journal_json(text).unwrap();
        let errs = ResolvedAlerts::for_run(&lenient, Some(&default)).unwrap_err();
        assert!(
            errs[0].message.contains("in the workspace's"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn for_source_picks_the_run_or_the_default() {
        let mut configs = AlertConfigs::default();
        let mut run = ResolvedAlerts::disabled();
        run.enabled = true;
        configs.runs.insert("r-1".into(), run);
        assert!(configs.for_source(&AlertSource::run("r-1")).enabled);
        assert!(!configs.for_source(&AlertSource::run("r-2")).enabled);
        assert!(!configs.for_source(&AlertSource::agent("r-1")).enabled);
    }

    #[test]
    fn check_env_names_every_problem_without_values() {
        let adapters: BTreeMap<String, AlertAdapter> = [
            (
                "chat".to_string(),
                AlertAdapter::Slack(SlackAdapter {
                    webhook_env: "SLACK_URL".into(),
                    ..Default::default()
                }),
            ),
            (
                "hook".to_string(),
                AlertAdapter::Webhook(WebhookAdapter {
                    url_env: "HOOK_URL".into(),
                    secret_env: Some("HOOK_SECRET".into()),
                    ..Default::default()
                }),
            ),
            (
                "pager".to_string(),
                AlertAdapter::PagerDuty(PagerDutyAdapter {
                    routing_key_env: "PD_KEY".into(),
                    ..Default::default()
                }),
            ),
        ]
        .into();
        let env: BTreeMap<String, String> = [
            ("SLACK_URL", "http://hooks.example.com/services/T/B/sekrit"),
            ("HOOK_URL", "https://example.com/hook"),
            ("HOOK_SECRET", "whsec_***"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let problems = check_env(&adapters, &env);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "adapter `chat`: SLACK_URL (webhook_env) holds a URL that is refused: plain http:// is accepted only to a loopback address (127.0.0.0/8, ::1, localhost); use https://",
                "adapter `hook`: HOOK_SECRET (secret_env) is not a usable signing secret (`whsec_` must be followed by base64)",
                "adapter `pager`: PD_KEY (routing_key_env) is not set",
            ]
        );
        assert!(!format!("{problems:?}").contains("sekrit"));
    }

    #[test]
    fn plan_states_routes_unrouted_classes_and_missing_env() {
        let mut env = BTreeMap::new();
        env.insert(
            "ORCA_SLACK_WEBHOOK".to_string(),
            "https://hooks.example.com/T/B/x".to_string(),
        );
        let plan = AlertPlan::of(&spec(RUN), None, &env);
        assert_eq!(plan.source, PlanSource::Run);
        assert_eq!(plan.state, PlanState::Enabled);
        assert_eq!(plan.group_wait_seconds, 30.0);
        assert_eq!(plan.routes[&AlertClass::Stale], ["chat"]);
        assert_eq!(plan.routes[&AlertClass::NeedsHuman], ["chat", "pager"]);
        // `quiet` is silenced, `extra` adds a route; `plain` is as the run.
        assert!(plan.tasks["quiet"].is_empty());
        assert_eq!(plan.tasks["extra"][&AlertClass::Stale], ["chat", "hook"]);
        assert!(!plan.tasks.contains_key("plain"));
        assert_eq!(
            plan.unrouted,
            [
                AlertClass::RestartExhausted,
                AlertClass::BudgetExceeded,
                AlertClass::VerifierFailed,
                AlertClass::RunCompleted
            ]
        );
        let missing: Vec<&str> = plan.env_problems.iter().map(|p| p.env.as_str()).collect();
        assert_eq!(missing, ["ORCA_WEBHOOK_URL", "ORCA_PAGERDUTY_ROUTING_KEY"]);
        assert!(plan.env_problems[0].problem.contains("is not set"));
        assert!(plan.sends(), "chat's env is complete");
        // Nothing set at all: nothing can leave.
        assert!(!AlertPlan::of(&spec(RUN), None, &BTreeMap::<String, String>::new()).sends());
        // No alerts anywhere.
        let none = AlertPlan::of(
            &spec(r#"{"tasks": [{"id": "a", "command": "true"}]}"#),
            None,
            &env,
        );
        assert_eq!(
            (none.source, none.state),
            (PlanSource::None, PlanState::Disabled)
        );
        assert!(!none.sends());
    }
}
