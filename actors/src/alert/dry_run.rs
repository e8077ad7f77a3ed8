//! `orca alert dry-run`: the exact request an adapter would get, with every
//! secret shown as `<redacted:env:NAME>`. Needs no alert config (a bare
//! kind uses the default env names) and no existing run.

use serde_json::Value;

use super::config::ResolvedAdapter;
use super::events::{AdapterKind, AlertSource, NotificationId, NotificationKind};

use super::payload::{self, AlertInfo, Notification};
use super::secret::{Credentials, RedactedEnv};
use crate::model::{AlertClass, AlertSeverity, Timestamp};
use crate::spec::{AlertAdapter, AlertConfig, PagerDutyAdapter, SlackAdapter, WebhookAdapter};

/// Default env var of a bare `slack` adapter.
pub const DEFAULT_SLACK_ENV: &str = "ORCA_SLACK_WEBHOOK";
/// Default env vars of a bare `webhook` adapter.
pub const DEFAULT_WEBHOOK_URL_ENV: &str = "ORCA_WEBHOOK_URL";
pub const DEFAULT_WEBHOOK_SECRET_ENV: &str = "ORCA_WEBHOOK_SECRET";
/// Default env var of a bare `pager_duty` adapter.
pub const DEFAULT_PAGER_DUTY_ENV: &str = "ORCA_PAGERDUTY_ROUTING_KEY";

/// What to render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DryRunRequest {
    pub class: AlertClass,
    pub source: AlertSource,
    pub worker: Option<String>,
    pub task: Option<String>,
    pub attempt: Option<u32>,
    pub reason: String,
    /// An adapter's name in the config, or a kind: `slack`, `webhook`,
    /// `pager_duty` (`pagerduty`).
    pub adapter: String,
    pub kind: NotificationKind,
}

/// The request, secrets redacted.
#[derive(Clone, Debug, PartialEq)]
pub struct DryRun {
    pub adapter: String,
    pub kind: AdapterKind,
    pub method: &'static str,
    /// `<redacted:env:NAME>` for Slack and webhooks.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl DryRun {
    /// As an HTTP request: the request line, headers, a blank line, the
    /// body as pretty JSON.
    pub fn to_text(&self) -> String {
        let mut out = format!("{} {}\n", self.method, self.url);
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\n"));
        }
        out.push('\n');
        out.push_str(&serde_json::to_string_pretty(&self.body).unwrap_or_default());
        out.push('\n');
        out
    }
}

/// Why there is nothing to render.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DryRunError {
    #[error(
        "no adapter named {name:?} (declared: {known}; or a kind: slack, webhook, pager_duty)"
    )]
    UnknownAdapter { name: String, known: String },
    #[error("{0}")]
    Build(String),
}

/// The adapter `name` of `config`, or a bare kind with the default env
/// names.
pub fn adapter_for(
    name: &str,
    config: Option<&AlertConfig>,
) -> Result<ResolvedAdapter, DryRunError> {
    if let Some(a) = config.and_then(|c| c.adapters.get(name)) {
        return Ok(ResolvedAdapter::new(name, a.clone()));
    }
    let spec = match name {
        "slack" => AlertAdapter::Slack(SlackAdapter {
            webhook_env: DEFAULT_SLACK_ENV.into(),
            ..Default::default()
        }),
        "webhook" => AlertAdapter::Webhook(WebhookAdapter {
            url_env: DEFAULT_WEBHOOK_URL_ENV.into(),
            secret_env: Some(DEFAULT_WEBHOOK_SECRET_ENV.into()),
            ..Default::default()
        }),
        "pager_duty" | "pagerduty" => AlertAdapter::PagerDuty(PagerDutyAdapter {
            routing_key_env: DEFAULT_PAGER_DUTY_ENV.into(),
            ..Default::default()
        }),
        _ => {
            let known: Vec<&str> = config
                .map(|c| c.adapters.keys().map(String::as_str).collect())
                .unwrap_or_default();
            return Err(DryRunError::UnknownAdapter {
                name: name.to_string(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        }
    };
    Ok(ResolvedAdapter::new(name, spec))
}

/// The notification `req` describes, to `adapter`, with id `id`: what
/// `dry-run` renders and `alert test` sends.
pub fn sample(
    req: &DryRunRequest,
    adapter: &ResolvedAdapter,
    id: NotificationId,
    now: Timestamp,
) -> Notification {
    let severity: AlertSeverity = adapter
        .severity()
        .unwrap_or_else(|| req.class.default_severity());
    Notification {
        alert: AlertInfo {
            id: id.alert.clone(),
            class: req.class,
            source: req.source.clone(),
            task: req.task.clone(),
            attempt: req.attempt,
            worker: req.worker.clone(),
            reason: req.reason.clone(),
            severity,
            at: now,
        },
        id,
        kind: req.kind,
        at: now,
        more: Vec::new(),
        address: None,
    }
}

/// Renders the request `req` would make, at `now`.
pub fn dry_run(
    req: &DryRunRequest,
    config: Option<&AlertConfig>,
    now: Timestamp,
) -> Result<DryRun, DryRunError> {
    let adapter = adapter_for(&req.adapter, config)?;
    let notification = sample(req, &adapter, NotificationId::new("dry-run", 1), now);
    let creds = Credentials::resolve(&adapter.name, &adapter.spec, &RedactedEnv)
        .map_err(|e| DryRunError::Build(format!("{e:?}")))?;
    let request = payload::request(&adapter.name, &adapter.spec, &creds, &notification, now)
        .map_err(|e| DryRunError::Build(e.to_string()))?;
    let signing_env = match &creds {
        Credentials::Webhook {
            signing: Some(s), ..
        } => Some(s.env().to_string()),
        _ => None,
    };
    let headers = request
        .headers
        .iter()
        .map(|(k, v)| match (k.as_str(), &signing_env) {
            // A signature over a placeholder means nothing: say what signs.
            ("webhook-signature", Some(env)) => {
                (k.clone(), format!("v1,<hmac-sha256 with env:{env}>"))
            }
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let body = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    Ok(DryRun {
        adapter: adapter.name.clone(),
        kind: adapter.kind,
        method: "POST",
        url: request.shown_url(),
        headers,
        body,
    })
}
