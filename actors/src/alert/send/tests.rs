//! Against a real HTTP/1.1 server on 127.0.0.1 that each test starts: a
//! hand-rolled responder that records what it received byte for byte.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;
use crate::alert::events::{AlertSource, NotificationId, NotificationKind};
use crate::alert::payload::AlertInfo;
use crate::alert::secret::Secret;
use crate::alert::sign::SigningKey;
use crate::model::{AlertClass, AlertSeverity};
use crate::spec::{AlertAdapter, PagerDutyAdapter, SlackAdapter, WebhookAdapter};

/// One request as the server read it.
#[derive(Debug)]
struct Received {
    method: String,
    path: String,
    /// Lower-cased names.
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// Serves `responses` (raw status line + headers, no body framing needed)
/// one connection each, in order. Bound before it returns, so a request
/// made after this cannot miss it.
async fn serve(responses: Vec<String>) -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for response in responses {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let head_end = loop {
                let mut chunk = [0u8; 4096];
                let n = sock.read(&mut chunk).await.unwrap();
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
            let mut lines = head.split("\r\n");
            let mut request_line = lines.next().unwrap().split(' ');
            let method = request_line.next().unwrap().to_string();
            let path = request_line.next().unwrap().to_string();
            let headers: BTreeMap<String, String> = lines
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once(':').unwrap();
                    (k.trim().to_ascii_lowercase(), v.trim().to_string())
                })
                .collect();
            let len: usize = headers
                .get("content-length")
                .map(|v| v.parse().unwrap())
                .unwrap_or(0);
            let mut body = buf[head_end..].to_vec();
            while body.len() < len {
                let mut chunk = [0u8; 4096];
                let n = sock.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            tx.send(Received {
                method,
                path,
                headers,
                body,
            })
            .unwrap();
            sock.write_all(response.as_bytes()).await.unwrap();
            sock.shutdown().await.ok();
        }
    });
    (addr, rx)
}

/// A response with `connection: close` and its body framed.
fn resp(status: &str, headers: &[&str], body: &str) -> String {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    out
}

fn ok() -> String {
    resp("200 OK", &[], "ok")
}

fn notification(class: AlertClass) -> Notification {
    Notification {
        id: NotificationId::new("a-7", 2),
        kind: NotificationKind::Trigger,
        at: Timestamp(1_800_000_000_000_000_000),
        alert: AlertInfo {
            id: "a-7".into(),
            class,
            source: AlertSource::run("r-1"),
            task: Some("lint".into()),
            attempt: Some(1),
            worker: Some("local-1".into()),
            reason: "quiet for 300 s".into(),
            severity: AlertSeverity::Warning,
            at: Timestamp(1_800_000_000_000_000_000),
        },
        more: Vec::new(),
        address: None,
    }
}

fn env(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn slack_adapter() -> ResolvedAdapter {
    ResolvedAdapter::new(
        "chat",
        AlertAdapter::Slack(SlackAdapter {
            webhook_env: "ORCA_SLACK_WEBHOOK".into(),
            channel: Some("#fleet".into()),
            ..Default::default()
        }),
    )
}

#[tokio::test]
async fn slack_gets_exactly_the_built_payload() {
    let (addr, mut rx) = serve(vec![ok()]).await;
    let url = format!("http://{addr}/services/T000/B000/s3cr3tT0ken");
    let n = notification(AlertClass::Stale);
    let outcome = deliver(
        &Sender::new().unwrap(),
        &slack_adapter(),
        &n,
        &env(&[("ORCA_SLACK_WEBHOOK", url)]),
        Timestamp::now(),
    )
    .await;
    assert_eq!(
        outcome,
        DeliveryOutcome::Status {
            code: 200,
            retry_after_ms: None,
            body: "ok".into()
        }
    );
    let got = rx.recv().await.unwrap();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/services/T000/B000/s3cr3tT0ken");
    assert_eq!(got.headers["content-type"], "application/json");
    assert!(got.headers["user-agent"].starts_with("orca/"));
    let expected = serde_json::to_vec(&payload::slack(&n, Some("#fleet"))).unwrap();
    assert_eq!(got.body, expected);
}

#[tokio::test]
async fn webhooks_are_signed_and_the_signature_verifies() {
    let (addr, mut rx) = serve(vec![ok()]).await;
    let adapter = ResolvedAdapter::new(
        "hook",
        AlertAdapter::Webhook(WebhookAdapter {
            url_env: "ORCA_WEBHOOK_URL".into(),
            secret_env: Some("ORCA_WEBHOOK_SECRET".into()),
            ..Default::default()
        }),
    );
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let e = env(&[
        ("ORCA_WEBHOOK_URL", format!("http://{addr}/orca")),
        ("ORCA_WEBHOOK_SECRET", secret.to_string()),
    ]);
    let n = notification(AlertClass::NeedsHuman);
    let now = Timestamp(1_800_000_042_000_000_000);
    let outcome = deliver(&Sender::new().unwrap(), &adapter, &n, &e, now).await;
    assert!(matches!(outcome, DeliveryOutcome::Status { code: 200, .. }));
    let got = rx.recv().await.unwrap();
    assert_eq!(got.body, payload::webhook_body(&n));
    assert_eq!(got.headers["webhook-id"], "a-7:2");
    assert_eq!(got.headers["webhook-timestamp"], "1800000042");
    let key = SigningKey::from_secret(&Secret::new("S", secret)).unwrap();
    assert!(key.verify(
        "a-7:2",
        1_800_000_042,
        &got.body,
        &got.headers["webhook-signature"]
    ));
    // The signature is over exactly these bytes.
    assert!(!key.verify(
        "a-7:2",
        1_800_000_042,
        b"{}",
        &got.headers["webhook-signature"]
    ));
}

#[tokio::test]
async fn pager_duty_posts_the_routing_key_in_the_body_to_its_endpoint() {
    let (addr, mut rx) = serve(vec![resp("202 Accepted", &[], r#"{"status":"success"}"#)]).await;
    let adapter = ResolvedAdapter::new(
        "pager",
        AlertAdapter::PagerDuty(PagerDutyAdapter {
            routing_key_env: "ORCA_PAGERDUTY_ROUTING_KEY".into(),
            endpoint: Some(format!("http://{addr}/v2/enqueue")),
            ..Default::default()
        }),
    );
    let key = "0123456789abcdef0123456789abcdef".to_string();
    let e = env(&[("ORCA_PAGERDUTY_ROUTING_KEY", key.clone())]);
    let mut n = notification(AlertClass::Stale);
    n.kind = NotificationKind::Resolve;
    let outcome = deliver(&Sender::new().unwrap(), &adapter, &n, &e, Timestamp::now()).await;
    assert!(matches!(outcome, DeliveryOutcome::Status { code: 202, .. }));
    let got = rx.recv().await.unwrap();
    assert_eq!(got.path, "/v2/enqueue");
    let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "routing_key": key,
            "event_action": "resolve",
            "dedup_key": "orca/run:r-1/lint/stale",
        })
    );
}

#[tokio::test]
async fn retry_after_and_the_response_body_come_back_scrubbed() {
    let (addr, _rx) = serve(vec![
        resp("429 Too Many Requests", &["retry-after: 7"], "rate_limited"),
        resp(
            "503 Service Unavailable",
            &[],
            "no route to http://10.0.0.9/services/X/Y/Z\n",
        ),
    ])
    .await;
    let url = format!("http://{addr}/services/T/B/s3cr3t");
    let e = env(&[("ORCA_SLACK_WEBHOOK", url)]);
    let sender = Sender::new().unwrap();
    let n = notification(AlertClass::Stale);
    let first = deliver(&sender, &slack_adapter(), &n, &e, Timestamp::now()).await;
    assert_eq!(
        first,
        DeliveryOutcome::Status {
            code: 429,
            retry_after_ms: Some(7_000),
            body: "rate_limited".into()
        }
    );
    let second = deliver(&sender, &slack_adapter(), &n, &e, Timestamp::now()).await;
    assert_eq!(
        second,
        DeliveryOutcome::Status {
            code: 503,
            retry_after_ms: None,
            body: "no route to <redacted:url>".into()
        }
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (addr, mut rx) = serve(vec![resp(
        "302 Found",
        &["location: http://127.0.0.1:9/elsewhere"],
        "",
    )])
    .await;
    let e = env(&[("ORCA_SLACK_WEBHOOK", format!("http://{addr}/x"))]);
    let outcome = deliver(
        &Sender::new().unwrap(),
        &slack_adapter(),
        &notification(AlertClass::Stale),
        &e,
        Timestamp::now(),
    )
    .await;
    assert!(matches!(outcome, DeliveryOutcome::Status { code: 302, .. }));
    assert_eq!(rx.recv().await.unwrap().path, "/x");
}

#[tokio::test]
async fn connection_refused_is_a_network_error_without_the_url() {
    // A port that was just free: nothing listens there.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{addr}/services/T0/B0/s3cr3tT0ken");
    let e = env(&[("ORCA_SLACK_WEBHOOK", url)]);
    let outcome = deliver(
        &Sender::new().unwrap(),
        &slack_adapter(),
        &notification(AlertClass::Stale),
        &e,
        Timestamp::now(),
    )
    .await;
    let DeliveryOutcome::Network { kind, error } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(*kind, NetworkErrorKind::Connect);
    assert!(!error.contains("s3cr3t"), "{error}");
    assert!(!error.contains("/services/"), "{error}");
    assert!(!format!("{outcome:?}").contains("s3cr3t"));
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and holds the connection, never answers.
    let hold = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let mut sock = sock;
        let mut buf = [0u8; 1024];
        while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let e = env(&[("ORCA_SLACK_WEBHOOK", format!("http://{addr}/x"))]);
    let sender = Sender::with_timeout(Duration::from_millis(300)).unwrap();
    let outcome = deliver(
        &sender,
        &slack_adapter(),
        &notification(AlertClass::Stale),
        &e,
        Timestamp::now(),
    )
    .await;
    assert!(
        matches!(
            outcome,
            DeliveryOutcome::Network {
                kind: NetworkErrorKind::Timeout,
                ..
            }
        ),
        "{outcome:?}"
    );
    hold.abort();
}

#[tokio::test]
async fn plain_http_off_loopback_is_refused_before_connecting() {
    let e = env(&[(
        "ORCA_SLACK_WEBHOOK",
        "http://hooks.example.com/services/T/B/s3cr3t".to_string(),
    )]);
    let outcome = deliver(
        &Sender::new().unwrap(),
        &slack_adapter(),
        &notification(AlertClass::Stale),
        &e,
        Timestamp::now(),
    )
    .await;
    assert_eq!(
        outcome,
        DeliveryOutcome::Refused {
            error:
                "adapter `chat`: the URL in ORCA_SLACK_WEBHOOK is refused: plain http:// is \
                    accepted only to a loopback address (127.0.0.0/8, ::1, localhost); use https://"
                    .into()
        }
    );
}

#[tokio::test]
async fn a_missing_env_var_is_refused_by_name() {
    let outcome = deliver(
        &Sender::new().unwrap(),
        &slack_adapter(),
        &notification(AlertClass::Stale),
        &env(&[]),
        Timestamp::now(),
    )
    .await;
    assert_eq!(
        outcome,
        DeliveryOutcome::Refused {
            error:
                "adapter `chat`: environment variable ORCA_SLACK_WEBHOOK (webhook_env) is not set"
                    .into()
        }
    );
}

#[test]
fn retry_after_seconds_or_http_date() {
    let now = Timestamp::from_datetime(
        chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    );
    assert_eq!(parse_retry_after("120", now), Some(120_000));
    assert_eq!(parse_retry_after(" 0 ", now), Some(0));
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
        Some(30_000)
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
        Some(0)
    );
    assert_eq!(parse_retry_after("soon", now), None);
    assert_eq!(parse_retry_after("-5", now), None);
}
