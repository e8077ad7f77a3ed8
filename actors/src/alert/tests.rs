//! Cross-module checks: no secret in any `Debug`, error or journaled event;
//! dry runs; a sender's outcome through the router into the journal.

use std::collections::BTreeMap;

use super::config::{check_env, EnvProblem, EnvProblemKind};
use super::dry_run::{dry_run, DryRunError, DryRunRequest};
use super::events::{AdapterKind, AdapterRef, AlertFailed, NotificationPlanned};
use super::payload::{self, AlertInfo, BuildError, Notification};
use super::router::{DeliveryOutcome, NetworkErrorKind};
use super::secret::{scrub, Credentials, SecretError};
use super::send::{deliver, Sender};
use super::sign::{SignError, SigningKey};
use super::*;
use crate::model::{AlertClass, AlertSeverity, Timestamp};
use crate::spec::{
    check_str, AlertAdapter, AlertConfig, AlertRoute, Format, PagerDutyAdapter, SlackAdapter,
    ValidateContext, WebhookAdapter,
};

const URL_SECRET: &str = "https://hooks.slack.com/services/T0AAA/B0BBB/K3yS3cr3tValue";
const KEY_SECRET: &str = "e93facc04764012d7bfb002500d5d1a6";
const SIGN_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn assert_clean(what: &str, text: &str) {
    for secret in [
        URL_SECRET,
        "K3yS3cr3tValue",
        "/services/T0AAA/B0BBB",
        KEY_SECRET,
        SIGN_SECRET,
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ] {
        assert!(!text.contains(secret), "{what} shows {secret:?}: {text}");
    }
}

fn info() -> AlertInfo {
    AlertInfo {
        id: "a-1".into(),
        class: AlertClass::NeedsHuman,
        source: AlertSource::run("r-1"),
        task: Some("lint".into()),
        attempt: Some(1),
        worker: Some("local-1".into()),
        reason: "needs a deploy key".into(),
        severity: AlertSeverity::Error,
        at: Timestamp(1_800_000_000_000_000_000),
    }
}

fn notification() -> Notification {
    Notification {
        id: NotificationId::new("a-1", 1),
        kind: NotificationKind::Trigger,
        at: Timestamp(1_800_000_000_000_000_000),
        alert: info(),
        more: Vec::new(),
        address: None,
    }
}

#[test]
fn no_type_shows_a_secret_in_debug_display_or_errors() {
    let url = Secret::new("ORCA_SLACK_WEBHOOK", URL_SECRET);
    let key = Secret::new("ORCA_PAGERDUTY_ROUTING_KEY", KEY_SECRET);
    let sign = Secret::new("ORCA_WEBHOOK_SECRET", SIGN_SECRET);
    assert_clean(
        "Secret",
        &format!("{url:?} {url} {key:?} {key} {sign:?} {sign}"),
    );

    let creds = [
        Credentials::Slack { url: url.clone() },
        Credentials::Webhook {
            url: url.clone(),
            signing: Some(sign.clone()),
        },
        Credentials::PagerDuty {
            routing_key: key.clone(),
            endpoint: "https://events.pagerduty.com/v2/enqueue".into(),
        },
    ];
    assert_clean("Credentials", &format!("{creds:?}"));

    let signing = SigningKey::from_secret(&sign).unwrap();
    assert_clean("SigningKey", &format!("{signing:?}"));

    let n = notification();
    let adapters = [
        AlertAdapter::Slack(SlackAdapter {
            webhook_env: "ORCA_SLACK_WEBHOOK".into(),
            ..Default::default()
        }),
        AlertAdapter::Webhook(WebhookAdapter {
            url_env: "ORCA_SLACK_WEBHOOK".into(),
            secret_env: Some("ORCA_WEBHOOK_SECRET".into()),
            ..Default::default()
        }),
        AlertAdapter::PagerDuty(PagerDutyAdapter {
            routing_key_env: "ORCA_PAGERDUTY_ROUTING_KEY".into(),
            ..Default::default()
        }),
    ];
    for (adapter, c) in adapters.iter().zip(&creds) {
        let req = payload::request("x", adapter, c, &n, n.at).unwrap();
        assert_clean("Request", &format!("{req:?}"));
        assert_clean("Request::shown_url", &req.shown_url());
    }

    let errors: Vec<Box<dyn std::error::Error>> = vec![
        Box::new(SecretError::Missing {
            adapter: "chat".into(),
            field: "webhook_env",
            env: "ORCA_SLACK_WEBHOOK".into(),
        }),
        Box::new(SignError::BadBase64 {
            env: "ORCA_WEBHOOK_SECRET".into(),
        }),
        Box::new(BuildError::Signing {
            adapter: "hook".into(),
            source: SignError::Empty {
                env: "ORCA_WEBHOOK_SECRET".into(),
            },
        }),
        Box::new(
            endpoint::check("http://hooks.slack.com/services/T0AAA/B0BBB/K3yS3cr3tValue")
                .unwrap_err(),
        ),
    ];
    for e in &errors {
        assert_clean("error", &format!("{e} {e:?}"));
    }

    let problem = EnvProblem {
        adapter: "chat".into(),
        field: "webhook_env",
        env: "ORCA_SLACK_WEBHOOK".into(),
        kind: EnvProblemKind::Url(endpoint::EndpointProblem::Insecure),
    };
    assert_clean("EnvProblem", &format!("{problem} {problem:?}"));

    let outcome = DeliveryOutcome::Network {
        kind: NetworkErrorKind::Connect,
        error: scrub(
            &format!("error sending request for url ({URL_SECRET}): refused"),
            &[&url],
        ),
    };
    assert_clean("DeliveryOutcome", &format!("{outcome:?}"));

    let effect = Effect::Send {
        notification: Box::new(n),
        adapter: Box::new(ResolvedAdapter::new("x", adapters[1].clone())),
    };
    assert_clean("Effect", &format!("{effect:?}"));
}

#[test]
fn spec_errors_about_inline_secrets_never_repeat_them() {
    let spec = serde_json::json!({
        "tasks": [{"id": "t", "command": "true"}],
        "alerts": {
            "enabled": true,
            "routes": [{"events": ["stale"], "adapter": "a"}, {"events": ["stale"], "adapter": "p"}, {"events": ["stale"], "adapter": "h"}],
            "adapters": {
                "a": {"kind": "slack", "webhook_env": URL_SECRET, "channel": URL_SECRET},
                "p": {"kind": "pager_duty", "routing_key_env": KEY_SECRET},
                "h": {"kind": "webhook", "url_env": "HOOK", "secret_env": SIGN_SECRET, "url": URL_SECRET},
            }
        }
    });
    let report = check_str(
        &spec.to_string(),
        Format::Json,
        "s.json",
        &ValidateContext::default(),
    );
    assert!(!report.is_ok());
    let mut paths: Vec<&str> = report.errors().map(|d| d.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "alerts.adapters.a.channel",
            "alerts.adapters.a.webhook_env",
            "alerts.adapters.h.secret_env",
            "alerts.adapters.h.url",
            "alerts.adapters.p.routing_key_env",
        ]
    );
    for d in &report.diagnostics {
        assert_clean(
            "diagnostic",
            &format!("{} {:?}", d.display("s.json"), d.hint),
        );
    }
}

#[test]
fn check_env_reports_every_adapter_by_name() {
    let adapters: BTreeMap<String, AlertAdapter> = [(
        "chat".to_string(),
        AlertAdapter::Slack(SlackAdapter {
            webhook_env: "ORCA_TEST_UNSET_SLACK".into(),
            ..Default::default()
        }),
    )]
    .into();
    let problems = check_env(&adapters, &BTreeMap::<String, String>::new());
    assert_eq!(
        problems[0].to_string(),
        "adapter `chat`: ORCA_TEST_UNSET_SLACK (webhook_env) is not set"
    );
}

// ---------------------------------------------------------------------------
// Dry run
// ---------------------------------------------------------------------------

fn dry(adapter: &str) -> DryRunRequest {
    DryRunRequest {
        class: AlertClass::Stale,
        source: AlertSource::run("fleet-demo"),
        worker: Some("local-1".into()),
        task: Some("release-triage".into()),
        attempt: None,
        reason: "worker heartbeat stale since 2026-06-13T02:00:00Z".into(),
        adapter: adapter.into(),
        kind: NotificationKind::Trigger,
    }
}

const NOW: Timestamp = Timestamp(1_800_000_000_000_000_000);

#[test]
fn dry_run_a_bare_kind_uses_the_default_env_names() {
    let out = dry_run(&dry("slack"), None, NOW).unwrap();
    assert_eq!(out.kind, AdapterKind::Slack);
    assert_eq!(out.url, "<redacted:env:ORCA_SLACK_WEBHOOK>");
    assert_eq!(
        out.body["blocks"][0]["text"]["text"],
        "[orca] stale — fleet-demo / release-triage"
    );
    let text = out.to_text();
    assert!(text.starts_with(
        "POST <redacted:env:ORCA_SLACK_WEBHOOK>\ncontent-type: application/json\n\n{"
    ));
    assert!(text.contains("orca inspect fleet-demo release-triage"));

    let out = dry_run(&dry("pager_duty"), None, NOW).unwrap();
    assert_eq!(out.url, "https://events.pagerduty.com/v2/enqueue");
    assert_eq!(
        out.body["routing_key"],
        "<redacted:env:ORCA_PAGERDUTY_ROUTING_KEY>"
    );
    assert_eq!(out.body["payload"]["severity"], "warning");
    assert_eq!(
        out.body["dedup_key"],
        "orca/run:fleet-demo/release-triage/stale"
    );

    let out = dry_run(&dry("webhook"), None, NOW).unwrap();
    assert_eq!(out.url, "<redacted:env:ORCA_WEBHOOK_URL>");
    let h: BTreeMap<&str, &str> = out
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(h["webhook-id"], "dry-run:1");
    assert_eq!(h["webhook-timestamp"], "1800000000");
    assert_eq!(
        h["webhook-signature"],
        "v1,<hmac-sha256 with env:ORCA_WEBHOOK_SECRET>"
    );
    assert_eq!(out.body["type"], "alert.triggered");
}

#[test]
fn dry_run_a_named_adapter_uses_its_config() {
    let cfg = AlertConfig {
        enabled: true,
        routes: vec![AlertRoute {
            events: vec![AlertClass::NeedsHuman],
            adapter: "pager".into(),
            ..Default::default()
        }],
        adapters: [(
            "pager".to_string(),
            AlertAdapter::PagerDuty(PagerDutyAdapter {
                routing_key_env: "TEAM_PD_KEY".into(),
                severity: Some(AlertSeverity::Critical),
                ..Default::default()
            }),
        )]
        .into(),
        ..Default::default()
    };
    let mut req = dry("pager");
    req.class = AlertClass::NeedsHuman;
    let out = dry_run(&req, Some(&cfg), NOW).unwrap();
    assert_eq!(out.body["routing_key"], "<redacted:env:TEAM_PD_KEY>");
    assert_eq!(out.body["payload"]["severity"], "critical");
    assert!(out.body["payload"]["custom_details"]["escalation_draft"]
        .as_str()
        .unwrap()
        .contains("Requested decision: permission decision"));
    assert_eq!(
        dry_run(&dry("teams"), Some(&cfg), NOW).unwrap_err(),
        DryRunError::UnknownAdapter {
            name: "teams".into(),
            known: "pager".into()
        }
    );
}

// ---------------------------------------------------------------------------
// A send's outcome, through the router, into the journal
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_failed_send_is_journaled_without_the_url() {
    // Nothing listens on this port.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let secret_url = format!("http://{addr}/services/T0AAA/B0BBB/K3yS3cr3tValue");
    let adapter = ResolvedAdapter::new(
        "chat",
        AlertAdapter::Slack(SlackAdapter {
            webhook_env: "ORCA_SLACK_WEBHOOK".into(),
            ..Default::default()
        }),
    );
    let env: BTreeMap<String, String> = [("ORCA_SLACK_WEBHOOK".to_string(), secret_url)].into();
    let outcome = deliver(
        &Sender::new().unwrap(),
        &adapter,
        &notification(),
        &env,
        NOW,
    )
    .await;

    let raised = AlertRaised {
        id: "a-1".into(),
        class: AlertClass::NeedsHuman,
        source: AlertSource::run("r-1"),
        task: Some("lint".into()),
        attempt: Some(1),
        worker: Some("local-1".into()),
        reason: "needs a deploy key".into(),
        at: NOW,
    };
    let chat = AdapterRef {
        name: "chat".into(),
        kind: AdapterKind::Slack,
    };
    let state = RouterState::from_events(&[
        AlertEvent::Raised(raised),
        AlertEvent::Planned(NotificationPlanned {
            id: NotificationId::new("a-1", 1),
            kind: NotificationKind::Trigger,
            at: NOW,
            members: vec!["a-1".into()],
            adapters: vec![chat.clone()],
        }),
    ]);
    let mut configs = AlertConfigs::default();
    configs.runs.insert(
        "r-1".into(),
        ResolvedAlerts::from_config(Some(&AlertConfig {
            enabled: true,
            adapters: [("chat".to_string(), adapter.spec.clone())].into(),
            ..Default::default()
        })),
    );
    let (events, _) = decide(
        &state,
        &configs,
        Command::Result {
            id: NotificationId::new("a-1", 1),
            adapter: "chat".into(),
            outcome,
        },
        NOW,
        0.5,
    );
    let [AlertEvent::Failed(AlertFailed {
        adapter,
        status: None,
        attempts: 1,
        retry_at: Some(_),
        error,
        ..
    })] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!(adapter, &chat);
    assert!(error.starts_with("connect: "), "{error}");
    let json = serde_json::to_string(&events).unwrap();
    assert_clean("journaled event", &json);
    let bin = bincode::serde::encode_to_vec(&events, bincode::config::standard()).unwrap();
    assert_clean("journaled bytes", &String::from_utf8_lossy(&bin));
}
