use super::*;
use crate::spec::{AlertAdapter, PagerDutyAdapter, SlackAdapter, WebhookAdapter};

const T: Timestamp = Timestamp(1_800_000_000_000_000_000);

fn info(class: AlertClass, reason: &str) -> AlertInfo {
    AlertInfo {
        id: "a-1".into(),
        class,
        source: AlertSource::run("r-2611"),
        task: Some("lint".into()),
        attempt: Some(2),
        worker: Some("local-1".into()),
        reason: reason.into(),
        severity: AlertSeverity::Error,
        at: T,
    }
}

fn notification(kind: NotificationKind, alert: AlertInfo) -> Notification {
    Notification {
        id: NotificationId::new("a-1", 3),
        kind,
        at: T.plus_millis(1_500),
        alert,
        more: Vec::new(),
        address: None,
    }
}

fn blocks(v: &Value) -> &Vec<Value> {
    v["blocks"].as_array().expect("blocks")
}

/// Every Slack limit, checked on a built message.
fn assert_slack_limits(v: &Value) {
    let blocks = blocks(v);
    assert!(blocks.len() <= SLACK_MAX_BLOCKS, "{} blocks", blocks.len());
    for b in blocks {
        match b["type"].as_str() {
            Some("header") => {
                let t = b["text"]["text"].as_str().unwrap();
                assert!(t.chars().count() <= SLACK_HEADER_MAX, "header {}", t.len());
                assert_eq!(b["text"]["type"], "plain_text");
            }
            Some("section") => {
                let t = b["text"]["text"].as_str().unwrap();
                assert!(t.chars().count() <= SLACK_SECTION_MAX);
                if let Some(fields) = b["fields"].as_array() {
                    assert!(fields.len() <= SLACK_MAX_FIELDS);
                    for f in fields {
                        assert!(f["text"].as_str().unwrap().chars().count() <= SLACK_FIELD_MAX);
                    }
                }
            }
            Some("context") => {}
            other => panic!("unexpected block {other:?}"),
        }
    }
    assert!(v["text"].as_str().unwrap().chars().count() <= SLACK_TEXT_MAX);
}

#[test]
fn slack_message_has_header_fields_commands_and_context() {
    let mut n = notification(
        NotificationKind::Trigger,
        info(AlertClass::Stale, "no output for 300 s"),
    );
    n.address = Some("127.0.0.1:7070".into());
    let v = slack(&n, Some("#fleet"));
    assert_eq!(v["channel"], "#fleet");
    assert_eq!(
        v["text"],
        "[orca] stale — r-2611 / lint on r-2611:local-1: no output for 300 s"
    );
    let b = blocks(&v);
    assert_eq!(b[0]["text"]["text"], "[orca] stale — r-2611 / lint");
    assert_eq!(b[1]["text"]["text"], "*Reason:* no output for 300 s");
    let fields: Vec<&str> = b[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "*Run*\nr-2611",
            "*Task*\nlint",
            "*Worker*\nr-2611:local-1",
            "*Attempt*\n2",
            "*Class*\nstale",
            "*Severity*\nerror",
            "*Notification*\na-1:3",
        ]
    );
    assert_eq!(
        b[2]["text"]["text"],
        "*Safe commands*\n`orca inspect r-2611 lint`\n`orca logs r-2611 lint --attempt 2`\n`orca artifacts r-2611 lint`"
    );
    // No escalation draft for a stale alert.
    assert_eq!(b.len(), 4);
    assert_eq!(
        b[3]["elements"][0]["text"],
        "orca · notification `a-1:3` · http://127.0.0.1:7070/v1/fleet/runs/r-2611/tasks/lint"
    );
    assert_slack_limits(&v);
    // Without a channel, no `channel` key.
    assert!(slack(&n, None).get("channel").is_none());
}

#[test]
fn slack_escapes_worker_text_so_it_cannot_ping_or_link() {
    let n = notification(
        NotificationKind::Trigger,
        info(
            AlertClass::Stale,
            "hey <!channel> see <https://evil.example|docs> & more",
        ),
    );
    let text = serde_json::to_string(&slack(&n, None)).unwrap();
    assert!(!text.contains("<!channel>"), "{text}");
    assert!(!text.contains("<https://evil"), "{text}");
    assert!(text.contains("&lt;!channel&gt;"));
    assert!(text.contains("&amp; more"));
}

#[test]
fn slack_limits_hold_for_huge_text_and_big_groups() {
    let long = "é".repeat(10_000);
    let mut a = info(AlertClass::NeedsHuman, &long);
    a.task = Some("t".repeat(128));
    a.worker = Some("w".repeat(128));
    let n = notification(NotificationKind::Trigger, a.clone());
    let v = slack(&n, None);
    assert_slack_limits(&v);
    assert!(blocks(&v)[0]["text"]["text"]
        .as_str()
        .unwrap()
        .ends_with('…'));

    let mut g = notification(NotificationKind::Group, a.clone());
    g.more = (0..120)
        .map(|i| AlertInfo {
            id: format!("a-{i}"),
            ..a.clone()
        })
        .collect();
    let v = slack(&g, None);
    assert_slack_limits(&v);
    assert_eq!(blocks(&v).len(), SLACK_MAX_BLOCKS);
    assert_eq!(blocks(&v)[0]["text"]["text"], "[orca] 121 alerts — r-2611");
    let more = &blocks(&v)[SLACK_MAX_BLOCKS - 2]["text"]["text"];
    assert_eq!(more, "…and 74 more: `orca status`");
}

#[test]
fn resolve_and_repeat_titles() {
    let a = info(AlertClass::NeedsHuman, "asked for a token");
    let r = slack(&notification(NotificationKind::Resolve, a.clone()), None);
    assert_eq!(
        blocks(&r)[0]["text"]["text"],
        "[orca] resolved: needs_human — r-2611 / lint"
    );
    assert_eq!(
        blocks(&r)[1]["text"]["text"],
        "*Resolved:* asked for a token"
    );
    // A resolve carries no escalation draft.
    assert!(!serde_json::to_string(&r)
        .unwrap()
        .contains("Escalation draft"));
    let r = slack(&notification(NotificationKind::Repeat, a), None);
    assert_eq!(
        blocks(&r)[0]["text"]["text"],
        "[orca] still firing: needs_human — r-2611 / lint"
    );
}

#[test]
fn needs_human_carries_the_runbook_draft() {
    let a = info(
        AlertClass::NeedsHuman,
        "The worker needs a deploy key to push. It stopped before pushing.\nsecond line",
    );
    assert_eq!(
        escalation_draft(&a),
        "orca fleet needs attention\n\
         Run: r-2611\n\
         Worker: r-2611:local-1\n\
         Task: lint\n\
         Classification: needs-human\n\
         Reason: The worker needs a deploy key to push.\n\
         Latest typed evidence: orca inspect r-2611 lint; orca artifacts r-2611 lint\n\
         Safe log excerpt: see artifact log (orca logs r-2611 lint)\n\
         Requested decision: permission decision"
    );
    let v = slack(&notification(NotificationKind::Trigger, a.clone()), None);
    let draft = blocks(&v)[3]["text"]["text"].as_str().unwrap();
    assert!(draft.starts_with("*Escalation draft*\n```orca fleet needs attention\nRun: r-2611"));
    // A run escalated past its intensity: no task, restart approval.
    let run_wide = AlertInfo {
        task: None,
        worker: None,
        attempt: None,
        ..a
    };
    let d = escalation_draft(&run_wide);
    assert!(d.contains("Worker: unknown\nTask: unknown\n"), "{d}");
    assert!(d.contains(
        "Latest typed evidence: orca status r-2611; orca receipts r-2611; orca tree r-2611"
    ));
    assert!(d.ends_with("Requested decision: restart approval"));
    // An agent's alert has no run.
    let agent = AlertInfo {
        source: AlertSource::agent("triage"),
        ..run_wide
    };
    assert!(escalation_draft(&agent).contains("Run: none (agent triage)\n"));
    assert_eq!(safe_commands(&agent), ["orca tree"]);
}

#[test]
fn one_sentence_and_truncation() {
    assert_eq!(one_sentence("Done. Then more."), "Done.");
    assert_eq!(one_sentence("v1.2 failed: exit 3"), "v1.2 failed: exit 3");
    assert_eq!(one_sentence("line one\nline two"), "line one line two");
    assert_eq!(one_sentence("   "), "no reason given");
    assert_eq!(
        one_sentence(&"x".repeat(1000)).chars().count(),
        DRAFT_REASON_MAX
    );
    assert_eq!(truncate_chars("ééé", 3), "ééé");
    assert_eq!(truncate_chars("éééé", 3), "éé…");
    assert_eq!(truncate_chars("日本語テキスト", 4), "日本語…");
    assert_eq!(truncate_chars("abc", 0), "…");
}

#[test]
fn pager_duty_trigger() {
    let mut n = notification(
        NotificationKind::Trigger,
        info(AlertClass::NeedsHuman, "asked for a token"),
    );
    n.address = Some("http://127.0.0.1:7070/".into());
    let key = Secret::new(
        "ORCA_PAGERDUTY_ROUTING_KEY",
        "0123456789abcdef0123456789abcdef",
    );
    let v = pager_duty(&n, &key, PagerDutyAction::of(n.kind));
    assert_eq!(v["routing_key"], "0123456789abcdef0123456789abcdef");
    assert_eq!(v["event_action"], "trigger");
    assert_eq!(v["dedup_key"], "orca/run:r-2611/lint/needs_human");
    let p = &v["payload"];
    assert_eq!(
        p["summary"],
        "[orca] needs_human — r-2611 / lint on r-2611:local-1: asked for a token"
    );
    assert_eq!(p["source"], "r-2611:local-1");
    assert_eq!(p["severity"], "error");
    assert_eq!(p["timestamp"], T.rfc3339());
    assert_eq!(p["component"], "lint");
    assert_eq!(p["group"], "r-2611");
    assert_eq!(p["class"], "needs_human");
    let d = &p["custom_details"];
    assert_eq!(d["notification"], "a-1:3");
    assert_eq!(d["attempt"], 2);
    assert!(d["escalation_draft"]
        .as_str()
        .unwrap()
        .starts_with("orca fleet needs attention"));
    assert_eq!(v["client"], "orca");
    assert_eq!(
        v["client_url"],
        "http://127.0.0.1:7070/v1/fleet/runs/r-2611/tasks/lint"
    );
    // Without an address, no client_url.
    n.address = None;
    assert!(pager_duty(&n, &key, PagerDutyAction::Trigger)
        .get("client_url")
        .is_none());
}

#[test]
fn pager_duty_summary_is_bounded_and_resolve_reuses_key_and_dedup_key() {
    let n = notification(
        NotificationKind::Trigger,
        info(AlertClass::Stale, &"ü".repeat(5_000)),
    );
    let key = Secret::new("PD", "k");
    let v = pager_duty(&n, &key, PagerDutyAction::Trigger);
    assert!(v["payload"]["summary"].as_str().unwrap().chars().count() <= PD_SUMMARY_MAX);
    let r = notification(
        NotificationKind::Resolve,
        info(AlertClass::Stale, "spoke again"),
    );
    let v = pager_duty(&r, &key, PagerDutyAction::of(r.kind));
    assert_eq!(
        v,
        json!({
            "routing_key": "k",
            "event_action": "resolve",
            "dedup_key": "orca/run:r-2611/lint/stale",
        })
    );
}

#[test]
fn webhook_body_headers_and_signature() {
    let n = notification(
        NotificationKind::Trigger,
        info(AlertClass::NeedsHuman, "asked for a token"),
    );
    let key = SigningKey::from_secret(&Secret::new("S", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        .unwrap();
    let sent = Timestamp(1_800_000_123_456_000_000);
    let (body, headers) = webhook(&n, Some(&key), sent);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "alert.triggered");
    assert_eq!(v["timestamp"], T.plus_millis(1_500).rfc3339());
    assert_eq!(v["data"]["notification"], "a-1:3");
    assert_eq!(v["data"]["kind"], "trigger");
    let a = &v["data"]["alerts"][0];
    assert_eq!(a["id"], "a-1");
    assert_eq!(a["run"], "r-2611");
    assert_eq!(a["agent"], Value::Null);
    assert_eq!(a["worker"], "r-2611:local-1");
    assert_eq!(a["condition"], "run:r-2611/lint/needs_human");
    assert!(a["escalation_draft"].is_string());
    let h: std::collections::BTreeMap<&str, &str> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(h["webhook-id"], "a-1:3");
    assert_eq!(h["webhook-timestamp"], "1800000123");
    assert_eq!(h["content-type"], "application/json");
    assert!(key.verify("a-1:3", 1_800_000_123, &body, h["webhook-signature"]));
    // A redelivery: same id and body, a new timestamp and signature.
    let (body2, headers2) = webhook(&n, Some(&key), sent.plus_millis(60_000));
    assert_eq!(body2, body);
    assert_eq!(headers2[1], headers[1]);
    assert_ne!(headers2[2], headers[2]);
    // Unsigned without a key.
    let (_, headers) = webhook(&n, None, sent);
    assert!(headers.iter().all(|(k, _)| k != "webhook-signature"));
    // Types per kind.
    assert_eq!(webhook_type(NotificationKind::Resolve), "alert.resolved");
    assert_eq!(webhook_type(NotificationKind::Group), "alert.grouped");
    assert_eq!(webhook_type(NotificationKind::Repeat), "alert.repeated");
}

#[test]
fn requests_per_adapter_kind_keep_secrets_out_of_debug() {
    let n = notification(NotificationKind::Trigger, info(AlertClass::Stale, "quiet"));
    let url = Secret::new("HOOK", "https://example.com/hook/s3cr3t-path");
    let hook = AlertAdapter::Webhook(WebhookAdapter {
        url_env: "HOOK".into(),
        secret_env: Some("SIG".into()),
        ..Default::default()
    });
    let creds = Credentials::Webhook {
        url: url.clone(),
        signing: Some(Secret::new("SIG", "plain-s3cr3t-key")),
    };
    let req = request("hook", &hook, &creds, &n, T).unwrap();
    assert_eq!(req.url(), "https://example.com/hook/s3cr3t-path");
    assert_eq!(req.shown_url(), "<redacted:env:HOOK>");
    assert_eq!(req.url_env(), Some("HOOK"));
    assert_eq!(req.secrets().len(), 2);
    let debug = format!("{req:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");

    let pd = AlertAdapter::PagerDuty(PagerDutyAdapter {
        routing_key_env: "PD".into(),
        ..Default::default()
    });
    let creds = Credentials::PagerDuty {
        routing_key: Secret::new("PD", "routing-s3cr3t-key-0123456789ab"),
        endpoint: "https://events.pagerduty.com/v2/enqueue".into(),
    };
    let req = request("pager", &pd, &creds, &n, T).unwrap();
    assert_eq!(req.url(), "https://events.pagerduty.com/v2/enqueue");
    assert!(String::from_utf8_lossy(&req.body).contains("routing-s3cr3t"));
    assert!(!format!("{req:?}").contains("s3cr3t"));

    // Credentials of another kind are refused, naming the adapter.
    let slack_adapter = AlertAdapter::Slack(SlackAdapter {
        webhook_env: "X".into(),
        ..Default::default()
    });
    let err = request("chat", &slack_adapter, &creds, &n, T).unwrap_err();
    assert_eq!(
        err.to_string(),
        "adapter `chat`: its credentials are for another kind of adapter"
    );
    // A bad whsec_ secret is an error naming the env var only.
    let creds = Credentials::Webhook {
        url,
        signing: Some(Secret::new("SIG", "whsec_!!!")),
    };
    let err = request("hook", &hook, &creds, &n, T).unwrap_err();
    assert_eq!(
        err.to_string(),
        "adapter `hook`: SIG: a `whsec_` secret must be base64 after the prefix"
    );
}
