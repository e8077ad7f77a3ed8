//! `orca alert test <adapter>` (and `POST /v1/alerts/test`): sends one test
//! notification through an adapter so an operator can check its set-up —
//! the env vars, the URL, the receiver's answer — before a real alert
//! needs it.
//!
//! The send happens in the process that would send real alerts: the
//! daemon when one runs (the API calls [`probe`]), else the CLI itself
//! (as an embedded `orca run` would). A test is not an alert: it is not
//! journaled, not retried and not rate-limited; its `webhook-id` is
//! `test-<time>:1`, so a receiver never takes it for a real alert's
//! redelivery.

use serde::{Deserialize, Serialize};

use super::config::check_env;
use super::dry_run::{adapter_for, sample, DryRunError, DryRunRequest};
use super::events::{AdapterKind, AlertSource, NotificationId, NotificationKind};
use super::router::DeliveryOutcome;
use super::secret::EnvLookup;
use super::send::{deliver, Sender};
use crate::model::{AlertClass, Timestamp};
use crate::spec::AlertConfig;

/// What the operator asked to test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRequest {
    /// An adapter's name in the workspace's `[alerts]`, or a bare kind
    /// (`slack`, `webhook`, `pager_duty`) with the default env names.
    pub adapter: String,
    /// The class the test notification claims (default `run_completed`:
    /// informational, so a PagerDuty test pages no one at high severity).
    #[serde(default = "default_class")]
    pub class: AlertClass,
}

fn default_class() -> AlertClass {
    AlertClass::RunCompleted
}

/// How the test went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub adapter: String,
    pub kind: AdapterKind,
    /// The `webhook-id` it carried.
    pub notification: String,
    /// The receiver accepted it (2xx).
    pub delivered: bool,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it was not delivered: env problems, a refused URL, a network
    /// error, the receiver's answer. Names env vars, never their values.
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

/// Sends a test notification through `req.adapter` (found in `config`, or
/// a bare kind), reading its secrets from `env`. Fails only when there is
/// no such adapter.
pub async fn probe(
    req: &ProbeRequest,
    config: Option<&AlertConfig>,
    env: &dyn EnvLookup,
    sender: &Sender,
) -> Result<ProbeReport, DryRunError> {
    let adapter = adapter_for(&req.adapter, config)?;
    let now = Timestamp::now();
    let id = NotificationId::new(format!("test-{}", now.0), 1);
    let mut report = ProbeReport {
        adapter: adapter.name.clone(),
        kind: adapter.kind,
        notification: id.to_string(),
        delivered: false,
        status: None,
        error: None,
        elapsed_ms: 0,
    };
    let single = [(adapter.name.clone(), adapter.spec.clone())].into();
    let problems = check_env(&single, env);
    if !problems.is_empty() {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        report.error = Some(text.join("; "));
        return Ok(report);
    }
    let sample_req = DryRunRequest {
        class: req.class,
        source: AlertSource::run("orca-alert-test"),
        worker: None,
        task: None,
        attempt: None,
        reason: format!(
            "orca alert test: checking that adapter `{}` reaches you (no run is involved)",
            adapter.name
        ),
        adapter: adapter.name.clone(),
        kind: NotificationKind::Trigger,
    };
    let notification = sample(&sample_req, &adapter, id, now);
    let started = std::time::Instant::now();
    let outcome = deliver(sender, &adapter, &notification, env, now).await;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    match outcome {
        DeliveryOutcome::Status { code, body, .. } => {
            report.status = Some(code);
            report.delivered = (200..300).contains(&code);
            if !report.delivered {
                report.error = Some(if body.is_empty() {
                    format!("the receiver answered HTTP {code}")
                } else {
                    format!("the receiver answered HTTP {code}: {body}")
                });
            }
        }
        DeliveryOutcome::Network { kind, error } => {
            report.error = Some(format!("no answer ({}): {error}", kind.as_str()));
        }
        DeliveryOutcome::Refused { error } => report.error = Some(error),
    }
    Ok(report)
}
