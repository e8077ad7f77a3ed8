//! What each adapter is sent: pure builders from a [`Notification`].
//!
//! - Slack incoming webhook: `text` (the notification fallback) and
//!   `blocks` (a header, a section with the reason and up to 10 fields, the
//!   safe commands, the escalation draft for needs_human, a context line),
//!   within Slack's limits (header ≤ 150 chars, section text ≤ 3,000, field
//!   ≤ 2,000, ≤ 10 fields, ≤ 50 blocks). Text from workers is escaped, so a
//!   reason cannot mention `<!channel>` or forge a link.
//! - PagerDuty Events API v2: `routing_key`, `event_action`
//!   (trigger / resolve), `dedup_key` (the condition's, ≤ 255), and for a
//!   trigger `payload` {summary ≤ 1,024, source, severity, timestamp,
//!   component, group, class, custom_details}, `client`, `client_url` when
//!   the daemon's address is known. A resolve carries the trigger's routing
//!   key and dedup key only.
//! - Generic webhook, Standard Webhooks: body `{type, timestamp, data}`,
//!   headers `webhook-id` (`<alert>:<n>`), `webhook-timestamp` (send time,
//!   Unix seconds), `webhook-signature` when the adapter has a secret.
//!
//! Every limit is enforced by cutting on a char boundary with `…`.

use std::fmt;

use serde_json::{json, Map, Value};

use super::events::{AlertRaised, AlertSource, ConditionKey, NotificationId, NotificationKind};
use super::secret::{Credentials, Secret, Target};
use super::sign::{SignError, SigningKey};
use crate::model::{AlertClass, AlertSeverity, Timestamp};

/// Slack: header `plain_text` limit (characters).
pub const SLACK_HEADER_MAX: usize = 150;
/// Slack: section text limit.
pub const SLACK_SECTION_MAX: usize = 3000;
/// Slack: limit of one section field's text.
pub const SLACK_FIELD_MAX: usize = 2000;
/// Slack: fields per section.
pub const SLACK_MAX_FIELDS: usize = 10;
/// Slack: blocks per message.
pub const SLACK_MAX_BLOCKS: usize = 50;
/// The fallback `text` orca sends (Slack accepts more; notifications show
/// far less).
pub const SLACK_TEXT_MAX: usize = 3000;
/// PagerDuty: `payload.summary` limit.
pub const PD_SUMMARY_MAX: usize = 1024;
/// A reason in any payload.
pub const REASON_MAX: usize = 2000;
/// The one-sentence reason of an escalation draft.
pub const DRAFT_REASON_MAX: usize = 300;
/// `client` in PagerDuty events and the User-Agent of every request.
pub const CLIENT: &str = "orca";

/// What the router knows of one alert, for a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertInfo {
    pub id: String,
    pub class: AlertClass,
    pub source: AlertSource,
    pub task: Option<String>,
    pub attempt: Option<u32>,
    pub worker: Option<String>,
    pub reason: String,
    /// For the adapter this notification goes to.
    pub severity: AlertSeverity,
    /// When it was raised.
    pub at: Timestamp,
}

impl AlertInfo {
    pub fn from_raised(r: &AlertRaised, severity: AlertSeverity) -> Self {
        Self {
            id: r.id.clone(),
            class: r.class,
            source: r.source.clone(),
            task: r.task.clone(),
            attempt: r.attempt,
            worker: r.worker.clone(),
            reason: r.reason.clone(),
            severity,
            at: r.at,
        }
    }

    pub fn key(&self) -> ConditionKey {
        ConditionKey {
            source: self.source.clone(),
            task: self.task.clone(),
            class: self.class,
        }
    }

    /// The worker's global form `<run>:<worker>` (the slot's name for an
    /// agent's alert).
    pub fn worker_global(&self) -> Option<String> {
        let w = self.worker.as_deref()?;
        Some(match &self.source {
            AlertSource::Run { run } => format!("{run}:{w}"),
            AlertSource::Agent { .. } | AlertSource::Operator { .. } => w.to_string(),
        })
    }

    /// `r-1 / lint`, `r-1`, `agent triage`.
    fn subject(&self) -> String {
        let src = match &self.source {
            AlertSource::Run { run } => run.clone(),
            AlertSource::Agent { agent } => format!("agent {agent}"),
            AlertSource::Operator { by } => format!("operator ({by})"),
        };
        match &self.task {
            Some(t) => format!("{src} / {t}"),
            None => src,
        }
    }
}

/// One notification to one adapter: what the router sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// `<alert>:<n>`.
    pub id: NotificationId,
    pub kind: NotificationKind,
    /// When the router planned it (the webhook body's `timestamp`; stable
    /// across redeliveries).
    pub at: Timestamp,
    /// The alert (a group's first member).
    pub alert: AlertInfo,
    /// A group's other members.
    pub more: Vec<AlertInfo>,
    /// The daemon's base URL (`http://127.0.0.1:7070`), when known.
    pub address: Option<String>,
}

impl Notification {
    /// Every alert it carries.
    pub fn alerts(&self) -> impl Iterator<Item = &AlertInfo> {
        std::iter::once(&self.alert).chain(&self.more)
    }

    pub fn count(&self) -> usize {
        1 + self.more.len()
    }

    /// A link to the daemon's view of the alert's run (task) or tree.
    pub fn client_url(&self) -> Option<String> {
        let base = self.address.as_deref()?.trim_end_matches('/');
        let base = if base.contains("://") {
            base.to_string()
        } else {
            format!("http://{base}")
        };
        Some(match (&self.alert.source, &self.alert.task) {
            (AlertSource::Run { run }, Some(t)) if self.more.is_empty() => {
                format!("{base}/v1/fleet/runs/{run}/tasks/{t}")
            }
            (AlertSource::Run { run }, _) => format!("{base}/v1/fleet/runs/{run}"),
            (AlertSource::Agent { .. } | AlertSource::Operator { .. }, _) => {
                format!("{base}/v1/tree")
            }
        })
    }

    /// The one-line title: `[orca] needs_human — r-1 / lint`.
    pub fn title(&self) -> String {
        let a = &self.alert;
        match self.kind {
            NotificationKind::Group if !self.more.is_empty() => {
                let src = match &a.source {
                    AlertSource::Run { run } => run.clone(),
                    AlertSource::Agent { agent } => format!("agent {agent}"),
                    AlertSource::Operator { by } => format!("operator ({by})"),
                };
                format!("[orca] {} alerts — {src}", self.count())
            }
            NotificationKind::Repeat => {
                format!("[orca] still firing: {} — {}", a.class, a.subject())
            }
            NotificationKind::Resolve => format!("[orca] resolved: {} — {}", a.class, a.subject()),
            _ => format!("[orca] {} — {}", a.class, a.subject()),
        }
    }
}

// ---------------------------------------------------------------------------
// Text helpers
// ---------------------------------------------------------------------------

/// At most `max` characters, cut on a char boundary, ending in `…` when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(1);
    let mut out: String = text.chars().take(keep).collect();
    out.push('…');
    out
}

/// Control characters (newlines included) become spaces: a reason is one
/// line wherever it lands.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// A reason as payloads carry it: one line, bounded.
pub fn clean_reason(reason: &str) -> String {
    truncate_chars(&one_line(reason), REASON_MAX)
}

/// The first sentence of a reason, one line, at most 300 characters.
pub fn one_sentence(reason: &str) -> String {
    let line = one_line(reason);
    let end = line
        .char_indices()
        .find(|&(i, c)| matches!(c, '.' | '!' | '?') && line[i + c.len_utf8()..].starts_with(' '))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(line.len());
    let first = &line[..end];
    if first.is_empty() {
        "no reason given".to_string()
    } else {
        truncate_chars(first, DRAFT_REASON_MAX)
    }
}

/// Escapes text for Slack mrkdwn: `&`, `<`, `>` (so `<!channel>` or a
/// `<url|label>` in worker output is shown, not acted on).
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Read-only commands an operator runs to look at the evidence. Ids are
/// spec ids (`[A-Za-z0-9._-]`), safe to paste into a shell.
pub fn safe_commands(a: &AlertInfo) -> Vec<String> {
    match (&a.source, &a.task) {
        (AlertSource::Run { run }, Some(task)) => {
            let attempt = a
                .attempt
                .map(|n| format!(" --attempt {n}"))
                .unwrap_or_default();
            vec![
                format!("orca inspect {run} {task}"),
                format!("orca logs {run} {task}{attempt}"),
                format!("orca artifacts {run} {task}"),
            ]
        }
        (AlertSource::Run { run }, None) => vec![
            format!("orca status {run}"),
            format!("orca receipts {run}"),
            format!("orca tree {run}"),
        ],
        (AlertSource::Agent { .. } | AlertSource::Operator { .. }, _) => {
            vec!["orca tree".to_string()]
        }
    }
}

/// The decision a needs_human alert asks for: a worker that asked for a
/// human needs a permission decision; a run escalated past its restart
/// intensity needs restart approval.
pub fn requested_decision(a: &AlertInfo) -> &'static str {
    match (a.class, &a.task) {
        (AlertClass::NeedsHuman, Some(_)) => "permission decision",
        (AlertClass::NeedsHuman, None) => "restart approval",
        (AlertClass::VerifierFailed, _) => "verifier review",
        (AlertClass::RestartExhausted | AlertClass::Stale, _) => "restart approval",
        _ => "task owner review",
    }
}

/// The runbook's "Safe Slack or PagerDuty draft" for a needs_human alert
/// (docs/runbook.md; the seed's manager-agent runbook).
pub fn escalation_draft(a: &AlertInfo) -> String {
    let run = match &a.source {
        AlertSource::Run { run } => run.clone(),
        AlertSource::Agent { agent } => format!("none (agent {agent})"),
        AlertSource::Operator { by } => format!("none (operator, {by})"),
    };
    let evidence = match (&a.source, &a.task) {
        (AlertSource::Run { run }, Some(task)) => {
            format!("orca inspect {run} {task}; orca artifacts {run} {task}")
        }
        _ => safe_commands(a).join("; "),
    };
    let excerpt = match (&a.source, &a.task) {
        (AlertSource::Run { run }, Some(task)) => {
            format!("see artifact log (orca logs {run} {task})")
        }
        _ => "see the run's receipts".to_string(),
    };
    format!(
        "orca fleet needs attention\n\
         Run: {run}\n\
         Worker: {worker}\n\
         Task: {task}\n\
         Classification: needs-human\n\
         Reason: {reason}\n\
         Latest typed evidence: {evidence}\n\
         Safe log excerpt: {excerpt}\n\
         Requested decision: {decision}",
        worker = a.worker_global().unwrap_or_else(|| "unknown".into()),
        task = a.task.as_deref().unwrap_or("unknown"),
        reason = one_sentence(&a.reason),
        decision = requested_decision(a),
    )
}

/// The one-line summary (PagerDuty's `summary`, Slack's fallback).
pub fn summary(n: &Notification) -> String {
    let a = &n.alert;
    let mut s = n.title();
    if n.more.is_empty() {
        if let Some(w) = a.worker_global() {
            s.push_str(&format!(" on {w}"));
        }
        s.push_str(": ");
        s.push_str(&one_line(&a.reason));
    }
    s
}

// ---------------------------------------------------------------------------
// Slack
// ---------------------------------------------------------------------------

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": truncate_chars(&text, SLACK_SECTION_MAX)})
}

fn field(label: &str, value: &str) -> Value {
    json!({
        "type": "mrkdwn",
        "text": truncate_chars(&format!("*{label}*\n{}", slack_escape(value)), SLACK_FIELD_MAX),
    })
}

fn alert_fields(a: &AlertInfo, n: &NotificationId) -> Vec<Value> {
    let mut fields = Vec::new();
    match &a.source {
        AlertSource::Run { run } => fields.push(field("Run", run)),
        AlertSource::Agent { agent } => fields.push(field("Agent", agent)),
        AlertSource::Operator { by } => fields.push(field("Operator", by)),
    }
    fields.push(field("Task", a.task.as_deref().unwrap_or("—")));
    fields.push(field("Worker", a.worker_global().as_deref().unwrap_or("—")));
    if let Some(n) = a.attempt {
        fields.push(field("Attempt", &n.to_string()));
    }
    fields.push(field("Class", a.class.as_str()));
    fields.push(field("Severity", a.severity.as_str()));
    fields.push(field("Notification", &n.to_string()));
    fields.truncate(SLACK_MAX_FIELDS);
    fields
}

fn commands_text(a: &AlertInfo) -> String {
    let lines: Vec<String> = safe_commands(a)
        .iter()
        .map(|c| format!("`{}`", slack_escape(c)))
        .collect();
    format!("*Safe commands*\n{}", lines.join("\n"))
}

/// The Slack incoming-webhook body.
pub fn slack(n: &Notification, channel: Option<&str>) -> Value {
    let mut blocks: Vec<Value> = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate_chars(&one_line(&n.title()), SLACK_HEADER_MAX), "emoji": true},
    })];
    let verb = match n.kind {
        NotificationKind::Resolve => "Resolved",
        NotificationKind::Repeat => "Still firing",
        _ => "Reason",
    };
    if n.more.is_empty() {
        let a = &n.alert;
        blocks.push(json!({
            "type": "section",
            "text": mrkdwn(format!("*{verb}:* {}", slack_escape(&clean_reason(&a.reason)))),
            "fields": alert_fields(a, &n.id),
        }));
        blocks.push(json!({"type": "section", "text": mrkdwn(commands_text(a))}));
        if a.class == AlertClass::NeedsHuman && n.kind != NotificationKind::Resolve {
            blocks.push(json!({
                "type": "section",
                "text": mrkdwn(format!(
                    "*Escalation draft*\n```{}```",
                    slack_escape(&escalation_draft(a))
                )),
            }));
        }
    } else {
        // header + one section per alert + maybe "and N more" + context.
        let room = SLACK_MAX_BLOCKS - 3;
        let all: Vec<&AlertInfo> = n.alerts().collect();
        for a in all.iter().take(room) {
            let worker = a
                .worker_global()
                .map(|w| format!(" · {w}"))
                .unwrap_or_default();
            let mut text = format!(
                "*{}* ({}) · {}{}\n{}\n{}",
                a.class,
                a.severity,
                slack_escape(&a.subject()),
                slack_escape(&worker),
                slack_escape(&clean_reason(&a.reason)),
                safe_commands(a)
                    .iter()
                    .map(|c| format!("`{}`", slack_escape(c)))
                    .collect::<Vec<_>>()
                    .join("  "),
            );
            if a.class == AlertClass::NeedsHuman {
                text.push_str(&format!("\n```{}```", slack_escape(&escalation_draft(a))));
            }
            blocks.push(json!({"type": "section", "text": mrkdwn(text)}));
        }
        if all.len() > room {
            blocks.push(json!({
                "type": "section",
                "text": mrkdwn(format!("…and {} more: `orca status`", all.len() - room)),
            }));
        }
    }
    let mut context = format!("orca · notification `{}`", n.id);
    if let Some(url) = n.client_url() {
        context.push_str(&format!(" · {}", slack_escape(&url)));
    }
    blocks.push(json!({"type": "context", "elements": [mrkdwn(context)]}));
    blocks.truncate(SLACK_MAX_BLOCKS);

    let mut body = Map::new();
    body.insert(
        "text".into(),
        Value::String(truncate_chars(&slack_escape(&summary(n)), SLACK_TEXT_MAX)),
    );
    if let Some(ch) = channel {
        body.insert("channel".into(), Value::String(ch.to_string()));
    }
    body.insert("blocks".into(), Value::Array(blocks));
    Value::Object(body)
}

// ---------------------------------------------------------------------------
// PagerDuty
// ---------------------------------------------------------------------------

/// PagerDuty's `event_action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagerDutyAction {
    Trigger,
    Resolve,
}

impl PagerDutyAction {
    /// A resolve for [`NotificationKind::Resolve`], a trigger otherwise
    /// (a repeat re-triggers the same dedup key: PagerDuty folds it into
    /// the open incident).
    pub fn of(kind: NotificationKind) -> Self {
        match kind {
            NotificationKind::Resolve => PagerDutyAction::Resolve,
            _ => PagerDutyAction::Trigger,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PagerDutyAction::Trigger => "trigger",
            PagerDutyAction::Resolve => "resolve",
        }
    }
}

/// The PagerDuty Events API v2 body for the notification's alert (the
/// router never groups PagerDuty events: each condition keeps its own
/// incident and dedup key).
pub fn pager_duty(n: &Notification, routing_key: &Secret, action: PagerDutyAction) -> Value {
    let a = &n.alert;
    let mut body = Map::new();
    body.insert(
        "routing_key".into(),
        Value::String(routing_key.expose().to_string()),
    );
    body.insert("event_action".into(), Value::String(action.as_str().into()));
    body.insert("dedup_key".into(), Value::String(a.key().dedup_key()));
    if action == PagerDutyAction::Resolve {
        return Value::Object(body);
    }
    let mut details = Map::new();
    details.insert("alert".into(), Value::String(a.id.clone()));
    details.insert("notification".into(), Value::String(n.id.to_string()));
    match &a.source {
        AlertSource::Run { run } => details.insert("run".into(), Value::String(run.clone())),
        AlertSource::Agent { agent } => {
            details.insert("agent".into(), Value::String(agent.clone()))
        }
        AlertSource::Operator { by } => {
            details.insert("operator".into(), Value::String(by.clone()))
        }
    };
    if let Some(t) = &a.task {
        details.insert("task".into(), Value::String(t.clone()));
    }
    if let Some(n) = a.attempt {
        details.insert("attempt".into(), json!(n));
    }
    if let Some(w) = a.worker_global() {
        details.insert("worker".into(), Value::String(w));
    }
    details.insert("reason".into(), Value::String(clean_reason(&a.reason)));
    details.insert("commands".into(), json!(safe_commands(a)));
    if a.class == AlertClass::NeedsHuman {
        details.insert(
            "escalation_draft".into(),
            Value::String(escalation_draft(a)),
        );
    }
    if n.kind == NotificationKind::Repeat {
        details.insert("repeat".into(), Value::Bool(true));
    }
    let source = a.worker_global().unwrap_or_else(|| a.source.to_string());
    body.insert(
        "payload".into(),
        json!({
            "summary": truncate_chars(&summary(n), PD_SUMMARY_MAX),
            "source": source,
            "severity": a.severity.as_str(),
            "timestamp": a.at.rfc3339(),
            "component": a.task.clone().unwrap_or_else(|| "run".to_string()),
            "group": a.source.id(),
            "class": a.class.as_str(),
            "custom_details": Value::Object(details),
        }),
    );
    body.insert("client".into(), Value::String(CLIENT.into()));
    if let Some(url) = n.client_url() {
        body.insert("client_url".into(), Value::String(url));
    }
    Value::Object(body)
}

// ---------------------------------------------------------------------------
// Webhook
// ---------------------------------------------------------------------------

/// The webhook `type`: `alert.triggered`, `alert.repeated`,
/// `alert.resolved`, `alert.grouped`.
pub fn webhook_type(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Trigger => "alert.triggered",
        NotificationKind::Repeat => "alert.repeated",
        NotificationKind::Resolve => "alert.resolved",
        NotificationKind::Group => "alert.grouped",
    }
}

fn alert_json(a: &AlertInfo) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(a.id.clone()));
    m.insert("class".into(), Value::String(a.class.as_str().into()));
    m.insert("severity".into(), Value::String(a.severity.as_str().into()));
    m.insert("run".into(), json!(a.source.run_id()));
    m.insert(
        "agent".into(),
        match &a.source {
            AlertSource::Agent { agent } => Value::String(agent.clone()),
            AlertSource::Run { .. } | AlertSource::Operator { .. } => Value::Null,
        },
    );
    m.insert("task".into(), json!(a.task));
    m.insert("attempt".into(), json!(a.attempt));
    m.insert("worker".into(), json!(a.worker_global()));
    m.insert("reason".into(), Value::String(clean_reason(&a.reason)));
    m.insert("condition".into(), Value::String(a.key().to_string()));
    m.insert("raised_at".into(), Value::String(a.at.rfc3339()));
    m.insert("commands".into(), json!(safe_commands(a)));
    if a.class == AlertClass::NeedsHuman {
        m.insert(
            "escalation_draft".into(),
            Value::String(escalation_draft(a)),
        );
    }
    Value::Object(m)
}

/// The webhook body: `{type, timestamp, data}`, `data` holding the
/// notification's id and kind and its alerts.
pub fn webhook_body(n: &Notification) -> Vec<u8> {
    let mut data = Map::new();
    data.insert("notification".into(), Value::String(n.id.to_string()));
    data.insert("kind".into(), Value::String(n.kind.as_str().into()));
    data.insert(
        "alerts".into(),
        Value::Array(n.alerts().map(alert_json).collect()),
    );
    if let Some(url) = n.client_url() {
        data.insert("url".into(), Value::String(url));
    }
    let body = json!({
        "type": webhook_type(n.kind),
        "timestamp": n.at.rfc3339(),
        "data": Value::Object(data),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The webhook body and its Standard Webhooks headers (`webhook-signature`
/// only with a signing key). `sent_at` is this send's time.
pub fn webhook(
    n: &Notification,
    signing: Option<&SigningKey>,
    sent_at: Timestamp,
) -> (Vec<u8>, Vec<(String, String)>) {
    let body = webhook_body(n);
    let id = n.id.to_string();
    let ts = sent_at.nanos().div_euclid(1_000_000_000);
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("webhook-id".to_string(), id.clone()),
        ("webhook-timestamp".to_string(), ts.to_string()),
    ];
    if let Some(key) = signing {
        headers.push(("webhook-signature".to_string(), key.sign(&id, ts, &body)));
    }
    (body, headers)
}

// ---------------------------------------------------------------------------
// A whole request
// ---------------------------------------------------------------------------

/// An HTTP POST ready to send. Its `Debug` shows neither the URL (a secret
/// for Slack and webhooks) nor the body (PagerDuty's holds the routing key).
#[derive(Clone)]
pub struct Request {
    /// The adapter's name (for errors and the journal).
    pub adapter: String,
    url: RequestUrl,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    secrets: Vec<Secret>,
}

#[derive(Clone, PartialEq, Eq)]
enum RequestUrl {
    Secret(Secret),
    Public(String),
}

impl Request {
    /// The URL to POST to.
    pub fn url(&self) -> &str {
        match &self.url {
            RequestUrl::Secret(s) => s.expose(),
            RequestUrl::Public(u) => u,
        }
    }

    /// The URL as it may be shown: `<redacted:env:NAME>` when it is a secret.
    pub fn shown_url(&self) -> String {
        match &self.url {
            RequestUrl::Secret(s) => s.placeholder(),
            RequestUrl::Public(u) => u.clone(),
        }
    }

    /// The env var holding the URL, when the URL is a secret.
    pub fn url_env(&self) -> Option<&str> {
        match &self.url {
            RequestUrl::Secret(s) => Some(s.env()),
            RequestUrl::Public(_) => None,
        }
    }

    /// The secrets this request carries (to scrub error text with).
    pub fn secrets(&self) -> Vec<&Secret> {
        self.secrets.iter().collect()
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("adapter", &self.adapter)
            .field("url", &self.shown_url())
            .field("headers", &self.headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// A request could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("adapter `{adapter}`: {source}")]
    Signing {
        adapter: String,
        #[source]
        source: SignError,
    },
    #[error("adapter `{adapter}`: its credentials are for another kind of adapter")]
    WrongCredentials { adapter: String },
}

/// The request for `n` to the adapter `name` (kind taken from `creds`),
/// with the Slack channel when there is one. `now` is the send time.
pub fn request(
    name: &str,
    adapter: &crate::spec::AlertAdapter,
    creds: &Credentials,
    n: &Notification,
    now: Timestamp,
) -> Result<Request, BuildError> {
    use crate::spec::AlertAdapter as A;
    let json_headers = || vec![("content-type".to_string(), "application/json".to_string())];
    let (headers, body) = match (adapter, creds) {
        (A::Slack(s), Credentials::Slack { .. }) => (
            json_headers(),
            serde_json::to_vec(&slack(n, s.channel.as_deref())).unwrap_or_default(),
        ),
        (A::PagerDuty(_), Credentials::PagerDuty { routing_key, .. }) => (
            json_headers(),
            serde_json::to_vec(&pager_duty(n, routing_key, PagerDutyAction::of(n.kind)))
                .unwrap_or_default(),
        ),
        (A::Webhook(_), Credentials::Webhook { signing, .. }) => {
            let key = signing
                .as_ref()
                .map(SigningKey::from_secret)
                .transpose()
                .map_err(|source| BuildError::Signing {
                    adapter: name.to_string(),
                    source,
                })?;
            let (body, headers) = webhook(n, key.as_ref(), now);
            (headers, body)
        }
        _ => {
            return Err(BuildError::WrongCredentials {
                adapter: name.to_string(),
            })
        }
    };
    let url = match creds.target() {
        Target::Secret(s) => RequestUrl::Secret(s.clone()),
        Target::Public(u) => RequestUrl::Public(u.to_string()),
    };
    Ok(Request {
        adapter: name.to_string(),
        url,
        headers,
        body,
        secrets: creds.secrets().into_iter().cloned().collect(),
    })
}

#[cfg(test)]
mod tests;
