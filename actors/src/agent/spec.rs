//! Agent specs (TOML or JSON): an identity, what it subscribes to, and the
//! routes from its wakes to actions — parsed field by field like run specs,
//! every problem reported with its field path, line and column
//! (docs/agents.md).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::from_spec;
use crate::model::{is_valid_id, AlertClass, ID_RULE};
use crate::spec::parse::{Diags, FromSpec};
use crate::spec::source::{join_index, join_key};
use crate::spec::types::{Extra, TaskRuntime};
use crate::spec::{Diagnostic, Document, Format};

/// Subscription ids, route names and the like: the id rule.
fn check_id(path: &str, what: &str, id: &str, out: &mut Vec<Diagnostic>) {
    if id.is_empty() {
        out.push(Diagnostic::error(path, format!("{what} is required")));
    } else if !is_valid_id(id) {
        out.push(Diagnostic::error(
            path,
            format!("invalid {what} {id:?}: {ID_RULE}"),
        ));
    }
}

/// How far an agent is trusted (the same values as workers').
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentTrust {
    /// Every action (the default).
    #[default]
    Trusted,
    /// `start_run` waits for an operator's approval; the rest goes on.
    Restricted,
    /// Only `note`, `remember` and `alert`: no run is ever started.
    Untrusted,
}

impl AgentTrust {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentTrust::Trusted => "trusted",
            AgentTrust::Restricted => "restricted",
            AgentTrust::Untrusted => "untrusted",
        }
    }
}

/// A length of time: a number of seconds, or a string with a unit
/// (`"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`); kept in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval(pub u64);

impl Interval {
    pub fn millis(self) -> u64 {
        self.0
    }

    /// Parses `"30s"`, `"5m"`, `"1.5h"`, `"1d"`, `"500ms"` or a bare number
    /// of seconds.
    pub fn parse(text: &str) -> Option<Interval> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().ok()?;
        let scale = match unit.trim() {
            "ms" => 1.0,
            "" | "s" | "sec" | "secs" => 1_000.0,
            "m" | "min" | "mins" => 60_000.0,
            "h" | "hr" | "hrs" => 3_600_000.0,
            "d" | "day" | "days" => 86_400_000.0,
            _ => return None,
        };
        let ms = n * scale;
        (ms.is_finite() && ms >= 0.0 && ms <= u64::MAX as f64).then_some(Interval(ms as u64))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms % 86_400_000 == 0 && ms > 0 {
            write!(f, "{}d", ms / 86_400_000)
        } else if ms % 3_600_000 == 0 && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms % 60_000 == 0 && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms % 1_000 == 0 {
            write!(f, "{}s", ms / 1_000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const WHAT: &str =
            "a duration: seconds, or a string such as \"30s\", \"5m\", \"2h\", \"1d\"";
        impl Visitor<'_> for V {
            type Value = Interval;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(WHAT)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Interval, E> {
                Ok(Interval(v.saturating_mul(1000)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Interval, E> {
                u64::try_from(v)
                    .map(|v| Interval(v.saturating_mul(1000)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &WHAT))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Interval, E> {
                Interval::parse(&v.to_string())
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &WHAT))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Interval, E> {
                Interval::parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &WHAT))
            }
        }
        d.deserialize_any(V)
    }
}

/// What an agent may do, how often.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentPolicy {
    /// Runs it started that may run at once (a `start_run` beyond waits
    /// in the inbox until one ends). Default: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_runs: Option<u32>,
    /// Wakes in any rolling hour; more wait in the inbox. Default:
    /// unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wakes_per_hour: Option<u32>,
    /// Wakes in all; past it the agent waits for an operator's approval
    /// (`orca agent approve <id> wake_budget`), which grants as many again.
    /// Default: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_budget: Option<u64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Which fleet events a subscription wants.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetFilter {
    /// The run's name: exact, or a prefix ending in `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
    /// Every one of these labels, with these values, on the run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The task has every one of these tags (receipt events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The kinds of subscription.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionKind {
    /// Fleet events (receipts, runs, alerts).
    #[default]
    Fleet,
    /// `every` or `cron`.
    Timer,
    /// `POST /v1/agents/{id}/events/{subscription}`, signed.
    Webhook,
    /// Changes under a workspace path.
    Files,
}

impl SubscriptionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionKind::Fleet => "fleet",
            SubscriptionKind::Timer => "timer",
            SubscriptionKind::Webhook => "webhook",
            SubscriptionKind::Files => "files",
        }
    }
}

/// Ticks a timer missed while orca was down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    /// Forget them: the next tick is the next one from now (default).
    #[default]
    Skip,
    /// One wake for all of them at start, then the schedule.
    RunOnce,
}

/// One subscription: an id, a kind and the fields of that kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub kind: SubscriptionKind,
    // fleet
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FleetFilter>,
    /// Also wake on the agent's own runs and alerts (default false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_own: bool,
    // timer
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Interval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<Missed>,
    // webhook
    /// The env var holding the Standard Webhooks signing secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// How far a `webhook-timestamp` may be from now (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Interval>,
    // files
    /// A path under one of the agent's workspaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Changes closer together than this are one wake (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debounce: Option<Interval>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Default webhook timestamp tolerance.
pub const DEFAULT_WEBHOOK_TOLERANCE_MS: u64 = 5 * 60_000;
/// Default debounce of a `files` subscription.
pub const DEFAULT_DEBOUNCE_MS: u64 = 1_000;
/// The shortest timer interval.
pub const MIN_EVERY_MS: u64 = 1_000;

/// What a route does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Start a run from `spec`.
    StartRun,
    /// Raise an alert (through the alert router).
    Alert,
    /// A commitment with a due time: it wakes the agent when due.
    Remember,
    /// A note in the agent's history.
    #[default]
    Note,
    /// Run the agent's runtime (an agent CLI) on the wake: it acts through
    /// `orca mcp` (docs/agents.md, "Thinking agents").
    Think,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::StartRun => "start_run",
            ActionKind::Alert => "alert",
            ActionKind::Remember => "remember",
            ActionKind::Note => "note",
            ActionKind::Think => "think",
        }
    }
}

/// What a wake does while the agent is busy with another.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Busy {
    /// Wait in the inbox (default).
    #[default]
    Queue,
    /// Drop it (journaled).
    Drop,
    /// Stop what the agent is doing for it: the agent's running runs of
    /// this route are stopped, then this wake acts.
    Interrupt,
}

/// A route: from a subscription's wakes to one action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The subscription id (or `inbox` for `orca agent tell`, `commitment`
    /// for commitments coming due).
    pub on: String,
    /// Only wakes whose event matches (fleet: the same fields as a
    /// subscription's filter, plus `events`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<RouteFilter>,
    pub action: ActionKind,
    #[serde(default)]
    pub busy: Busy,
    /// start_run: the spec, relative to the agent spec's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    /// start_run: values substituted into the spec's string fields as
    /// `{{vars.NAME}}` (themselves may use `{{event.…}}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// alert: its class (default needs_human).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<AlertClass>,
    /// alert / note / remember: the text (`{{event.…}}` substituted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// remember: due this long after the wake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Interval>,
    /// Wait for an operator's approval before acting.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approve: bool,
    /// think: the attempt's budget (a task's `budget` shape), checked when
    /// the think run is submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<serde_json::Value>,
    /// think: the attempt's timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A route's filter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteFilter {
    /// Only these fleet event names (`receipt.fail`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An agent identity's spec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The agent's mind (a preset or a command template), for `think`
    /// routes (the next issue); kept and validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<TaskRuntime>,
    /// Roots inside the workspace where it may act (default `["."]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_level: Option<AgentTrust>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<AgentPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<Subscription>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(flatten)]
    pub extra: Extra,
}

from_spec!(AgentSpec {
    id: required,
    display_name: leaf,
    persona: leaf,
    owner: leaf,
    runtime: nested,
    workspaces: leaf,
    trust_level: leaf,
    policy: nested,
    subscriptions: nested,
    routes: nested,
});

from_spec!(AgentPolicy {
    max_concurrent_runs: leaf,
    max_wakes_per_hour: leaf,
    wake_budget: leaf,
});

from_spec!(Subscription {
    id: required,
    kind: required,
    events: leaf,
    filter: nested,
    include_own: leaf,
    every: leaf,
    cron: leaf,
    missed: leaf,
    secret_env: leaf,
    tolerance: leaf,
    path: leaf,
    debounce: leaf,
});

from_spec!(FleetFilter {
    run_name: leaf,
    labels: leaf,
    tags: leaf,
});

from_spec!(Route {
    on: required,
    filter: nested,
    action: required,
    busy: leaf,
    spec: leaf,
    vars: leaf,
    class: leaf,
    text: leaf,
    after: leaf,
    approve: leaf,
    budget: leaf,
    timeout_seconds: leaf,
});

from_spec!(RouteFilter {
    events: leaf,
    run_name: leaf,
    labels: leaf,
    tags: leaf,
});

/// The fleet events a subscription may name.
pub fn fleet_vocabulary() -> Vec<String> {
    let mut v: Vec<String> = [
        "receipt.pass",
        "receipt.fail",
        "receipt.timeout",
        "receipt.partial",
        "receipt.skip",
        "run.started",
        "run.finished",
        "run.passed",
        "run.failed",
        "run.escalated",
        "run.cancelled",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(
        AlertClass::ALL
            .iter()
            .map(|c| format!("alert.{}", c.as_str())),
    );
    v
}

/// Route `on` names that are not subscriptions: `orca agent tell`'s
/// messages, and commitments coming due.
pub const BUILTIN_SOURCES: &[&str] = &["inbox", "commitment", "approval"];

impl AgentSpec {
    /// `workspaces`, with its default.
    pub fn effective_workspaces(&self) -> Vec<String> {
        if self.workspaces.is_empty() {
            vec![".".into()]
        } else {
            self.workspaces.clone()
        }
    }

    pub fn trust(&self) -> AgentTrust {
        self.trust_level.unwrap_or_default()
    }

    pub fn policy(&self) -> AgentPolicy {
        self.policy.clone().unwrap_or_default()
    }

    pub fn subscription(&self, id: &str) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.id == id)
    }

    /// The routes a wake from `source` (a subscription id, `inbox`,
    /// `commitment`) may take, in order.
    pub fn routes_on<'a>(
        &'a self,
        source: &'a str,
    ) -> impl Iterator<Item = (usize, &'a Route)> + 'a {
        self.routes
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.on == source)
    }
}

/// Semantic checks (after parsing), at field paths.
pub fn validate(spec: &AgentSpec) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    check_id("id", "agent id", &spec.id, &mut out);
    for (i, w) in spec.workspaces.iter().enumerate() {
        if let Err(e) = crate::spec::paths::task_dir_relative(Some(w)) {
            out.push(Diagnostic::error(
                join_index("workspaces", i),
                e.to_string(),
            ));
        }
    }
    let vocab = fleet_vocabulary();
    let mut seen = std::collections::HashSet::new();
    for (i, s) in spec.subscriptions.iter().enumerate() {
        let path = join_index("subscriptions", i);
        check_id(&join_key(&path, "id"), "subscription id", &s.id, &mut out);
        if !s.id.is_empty() && !seen.insert(s.id.clone()) {
            out.push(Diagnostic::error(
                join_key(&path, "id"),
                format!("duplicate subscription id {:?}", s.id),
            ));
        }
        if BUILTIN_SOURCES.contains(&s.id.as_str()) {
            out.push(Diagnostic::error(
                join_key(&path, "id"),
                format!(
                    "{:?} is reserved (routes use it for orca agent tell and commitments)",
                    s.id
                ),
            ));
        }
        let misplaced = |field: &str, set: bool, out: &mut Vec<Diagnostic>| {
            if set {
                out.push(Diagnostic::warning(
                    join_key(&path, field),
                    format!(
                        "ignored: `{field}` is not a field of a {} subscription",
                        s.kind.as_str()
                    ),
                ));
            }
        };
        match s.kind {
            SubscriptionKind::Fleet => {
                if s.events.is_empty() {
                    out.push(Diagnostic::error(
                        join_key(&path, "events"),
                        "a fleet subscription needs `events`",
                    ));
                }
                for (j, e) in s.events.iter().enumerate() {
                    if !vocab.contains(e) {
                        let mut d = Diagnostic::error(
                            join_index(&join_key(&path, "events"), j),
                            format!("unknown fleet event {e:?} (one of: {})", vocab.join(", ")),
                        );
                        let names: Vec<&str> = vocab.iter().map(String::as_str).collect();
                        if let Some(k) = crate::spec::diag::did_you_mean(e, &names) {
                            d = d.with_hint(format!("did you mean `{k}`?"));
                        }
                        out.push(d);
                    }
                }
            }
            SubscriptionKind::Timer => {
                match (&s.every, &s.cron) {
                    (None, None) => out.push(Diagnostic::error(
                        path.clone(),
                        "a timer needs `every` (a duration) or `cron` (5 fields)",
                    )),
                    (Some(_), Some(_)) => out.push(Diagnostic::error(
                        join_key(&path, "cron"),
                        "a timer takes `every` or `cron`, not both",
                    )),
                    (Some(e), None) if e.millis() < MIN_EVERY_MS => out.push(Diagnostic::error(
                        join_key(&path, "every"),
                        format!("{e} is too short: 1s at least"),
                    )),
                    (None, Some(c)) => {
                        if let Err(why) = super::timer::parse_cron(c) {
                            out.push(Diagnostic::error(join_key(&path, "cron"), why));
                        }
                    }
                    _ => {}
                }
            }
            SubscriptionKind::Webhook => match &s.secret_env {
                None => out.push(Diagnostic::error(
                    join_key(&path, "secret_env"),
                    "a webhook subscription needs `secret_env` (the env var holding its signing secret)",
                )),
                Some(name) if !crate::spec::validate::is_valid_env_name(name) => {
                    out.push(Diagnostic::error(
                        join_key(&path, "secret_env"),
                        "must be an env var name (the secret itself never goes in a spec)",
                    ))
                }
                Some(_) => {}
            },
            SubscriptionKind::Files => match &s.path {
                None => out.push(Diagnostic::error(
                    join_key(&path, "path"),
                    "a files subscription needs `path` (under the agent's workspaces)",
                )),
                Some(p) => {
                    if let Err(e) = crate::spec::paths::task_dir_relative(Some(p)) {
                        out.push(Diagnostic::error(join_key(&path, "path"), e.to_string()));
                    } else if p.split('/').any(|c| c == ".orca") {
                        out.push(Diagnostic::error(
                            join_key(&path, "path"),
                            "orca's own directory is never watched",
                        ));
                    }
                }
            },
        }
        misplaced(
            "events",
            s.kind != SubscriptionKind::Fleet && !s.events.is_empty(),
            &mut out,
        );
        misplaced(
            "every",
            s.kind != SubscriptionKind::Timer && s.every.is_some(),
            &mut out,
        );
        misplaced(
            "cron",
            s.kind != SubscriptionKind::Timer && s.cron.is_some(),
            &mut out,
        );
        misplaced(
            "secret_env",
            s.kind != SubscriptionKind::Webhook && s.secret_env.is_some(),
            &mut out,
        );
        misplaced(
            "path",
            s.kind != SubscriptionKind::Files && s.path.is_some(),
            &mut out,
        );
    }
    for (i, r) in spec.routes.iter().enumerate() {
        let path = join_index("routes", i);
        let known = r.on.is_empty()
            || BUILTIN_SOURCES.contains(&r.on.as_str())
            || spec.subscription(&r.on).is_some();
        if !known {
            let ids: Vec<&str> = spec
                .subscriptions
                .iter()
                .map(|s| s.id.as_str())
                .chain(BUILTIN_SOURCES.iter().copied())
                .collect();
            out.push(Diagnostic::error(
                join_key(&path, "on"),
                format!("no subscription {:?} (known: {})", r.on, ids.join(", ")),
            ));
        }
        match r.action {
            ActionKind::StartRun => match &r.spec {
                None => out.push(Diagnostic::error(
                    join_key(&path, "spec"),
                    "start_run needs `spec` (a run spec, relative to this file)",
                )),
                Some(p) if p.trim().is_empty() => out.push(Diagnostic::error(
                    join_key(&path, "spec"),
                    "must name a run spec",
                )),
                Some(_) => {}
            },
            ActionKind::Remember if r.after.is_none() => out.push(Diagnostic::error(
                join_key(&path, "after"),
                "remember needs `after` (when the commitment comes due)",
            )),
            _ => {}
        }
        if let Some(f) = &r.filter {
            for (j, e) in f.events.iter().enumerate() {
                if !vocab.contains(e) {
                    out.push(Diagnostic::error(
                        join_index(&join_key(&join_key(&path, "filter"), "events"), j),
                        format!("unknown fleet event {e:?}"),
                    ));
                }
            }
        }
    }
    out
}

/// A checked agent spec, with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidAgentSpec {
    pub spec: AgentSpec,
    /// The spec file's directory (a route's `spec` is relative to it).
    pub dir: PathBuf,
    pub warnings: Vec<Diagnostic>,
}

/// An agent spec with errors (each located).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}", crate::spec::SpecError { origin: origin.clone(), diagnostics: diagnostics.clone() })]
pub struct AgentSpecError {
    pub origin: String,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses and checks an agent spec's text; `origin` names it in messages.
pub fn check_agent_str(
    text: &str,
    format: Format,
    origin: &str,
) -> Result<(AgentSpec, Vec<Diagnostic>), AgentSpecError> {
    let fail = |diagnostics| AgentSpecError {
        origin: origin.to_string(),
        diagnostics,
    };
    let doc = Document::parse(text, format).map_err(|d| fail(vec![d]))?;
    let mut diags = Diags::default();
    let spec = AgentSpec::from_spec(doc.value.clone(), "", &mut diags);
    if let Some(spec) = &spec {
        for d in validate(spec) {
            diags.items.push((d, false));
        }
    }
    let mut all: Vec<Diagnostic> = diags
        .items
        .into_iter()
        .map(|(mut d, at_key)| {
            if d.line.is_none() {
                if let Some((l, c)) = doc.locate(&d.path, at_key) {
                    d = d.at(l, c);
                }
            }
            d
        })
        .collect();
    all.sort_by_key(|d| (d.severity, d.line.unwrap_or(0), d.column.unwrap_or(0)));
    match spec {
        Some(spec) if !all.iter().any(Diagnostic::is_error) => Ok((spec, all)),
        _ => {
            if all.is_empty() {
                all.push(Diagnostic::error("", "expected an agent (an object with `id`)").at(1, 1));
            }
            Err(fail(all))
        }
    }
}

/// Reads and checks an agent spec file.
pub fn check_agent_file(path: &Path) -> Result<ValidAgentSpec, AgentSpecError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| AgentSpecError {
        origin: origin.clone(),
        diagnostics: vec![Diagnostic::error(
            "",
            format!("cannot read the agent spec: {e}"),
        )],
    })?;
    let (spec, warnings) = check_agent_str(&text, Format::detect(&origin, &text), &origin)?;
    Ok(ValidAgentSpec {
        spec,
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        warnings,
    })
}

/// The spec as journaled (JSON text: unknown fields round-trip).
pub fn to_journal_json(spec: &AgentSpec) -> String {
    serde_json::to_string(spec).unwrap_or_default()
}

/// A journaled spec back.
pub fn from_journal_json(text: &str) -> Result<AgentSpec, serde_json::Error> {
    serde_json::from_str::<AgentSpec>(text)
}

/// An agent spec ready to create or update: checked, its directory
/// (relative to the workspace), and the run specs its `start_run` routes
/// name, read and captured (path relative to the workspace → text).
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedAgent {
    pub spec: AgentSpec,
    pub dir: String,
    pub run_specs: Vec<(String, String)>,
    pub warnings: Vec<Diagnostic>,
}

/// Checks an agent spec's text (`origin`: its path, absolute or relative
/// to the workspace) and captures its run specs, each checked as a run
/// spec. Every problem is a located diagnostic; a run spec's are under
/// `routes[i].spec`.
pub fn prepare_agent(
    workspace_root: &Path,
    text: &str,
    origin: &str,
) -> Result<PreparedAgent, AgentSpecError> {
    let format = Format::detect(origin, text);
    let (spec, warnings) = check_agent_str(text, format, origin)?;
    let origin_path = Path::new(origin);
    let rel_origin = if origin_path.is_absolute() {
        origin_path
            .strip_prefix(workspace_root)
            .map(Path::to_path_buf)
            .map_err(|_| AgentSpecError {
                origin: origin.to_string(),
                diagnostics: vec![Diagnostic::error(
                    "",
                    format!(
                        "the agent spec must be inside the workspace ({})",
                        workspace_root.display()
                    ),
                )],
            })?
    } else {
        origin_path.to_path_buf()
    };
    let dir = rel_origin
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut errors = Vec::new();
    let mut run_specs: Vec<(String, String)> = Vec::new();
    for (i, r) in spec.routes.iter().enumerate() {
        let Some(rel) = r
            .spec
            .as_deref()
            .filter(|_| r.action == ActionKind::StartRun)
        else {
            continue;
        };
        let path = join_key(&join_index("routes", i), "spec");
        let joined = Path::new(&dir).join(rel);
        let Ok(norm) = crate::spec::paths::task_dir_relative(Some(&joined.to_string_lossy()))
        else {
            errors.push(Diagnostic::error(
                path,
                format!("{rel:?} leads outside the workspace"),
            ));
            continue;
        };
        let norm = norm.to_string_lossy().into_owned();
        let full = workspace_root.join(&norm);
        match std::fs::read_to_string(&full) {
            Ok(run_text) => {
                let ctx = crate::spec::ValidateContext {
                    workspace_root: Some(workspace_root),
                    ..Default::default()
                };
                let report = crate::spec::check_str(
                    &run_text,
                    Format::detect(&norm, &run_text),
                    &norm,
                    &ctx,
                );
                for d in report.errors() {
                    errors.push(Diagnostic::error(
                        path.clone(),
                        format!("the run spec does not validate: {}", d.display(&norm)),
                    ));
                }
                if !run_specs.iter().any(|(p, _)| *p == norm) {
                    run_specs.push((norm, run_text));
                }
            }
            Err(e) => errors.push(Diagnostic::error(
                path,
                format!("cannot read the run spec {}: {e}", full.display()),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(AgentSpecError {
            origin: origin.to_string(),
            diagnostics: errors,
        });
    }
    Ok(PreparedAgent {
        spec,
        dir,
        run_specs,
        warnings,
    })
}
