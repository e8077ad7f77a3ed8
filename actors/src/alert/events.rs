//! The alert router's journal events — a proposal for the journal's
//! `Event` enum to embed (as one `Event::Alert(AlertEvent)` variant, or one
//! variant each).
//!
//! They follow the journal's rules (docs/journal.md): plain structs and
//! externally tagged enums only; no `serde_json::Value`, flatten, untagged
//! or internally tagged enums, no `skip_serializing_if`; every time is a
//! [`Timestamp`]; every deadline the router acts on later is journaled as a
//! wall-clock time (`Grouped::flush_at`, `RepeatScheduled::at`,
//! `AlertFailed::retry_at`). No event holds a secret: adapters appear by
//! name and kind, failures with their HTTP status and scrubbed text.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{AlertClass, Timestamp};

/// PagerDuty's limit on `dedup_key`.
pub const MAX_DEDUP_KEY: usize = 255;

/// A new alert id: `a-` + the UTC time to the second + 32 random bits
/// (`a-261121072400-9f3c01aa`): time-ordered, unique without coordination.
pub fn new_alert_id(now: Timestamp) -> String {
    let dt = now.to_datetime();
    let random = (uuid::Uuid::new_v4().as_u128() & 0xffff_ffff) as u32;
    format!("a-{}-{random:08x}", dt.format("%y%m%d%H%M%S"))
}

impl AlertRaised {
    /// A new alert, with an id that names it: `a-`, the time to the second,
    /// and 32 bits of a digest of what it is about (so a decision taken
    /// again after a crash raises the same alert, not a second one).
    pub fn new(
        class: AlertClass,
        source: AlertSource,
        task: Option<String>,
        attempt: Option<u32>,
        worker: Option<String>,
        reason: String,
        at: Timestamp,
    ) -> Self {
        let about = format!(
            "{source}/{}/{}/{class}/{}",
            task.as_deref().unwrap_or(""),
            attempt.unwrap_or(0),
            at.nanos()
        );
        let digest = Sha256::digest(about.as_bytes());
        let id = format!(
            "a-{}-{:02x}{:02x}{:02x}{:02x}",
            at.to_datetime().format("%y%m%d%H%M%S"),
            digest[0],
            digest[1],
            digest[2],
            digest[3]
        );
        Self {
            id,
            class,
            source,
            task,
            attempt,
            worker,
            reason,
            at,
        }
    }

    /// The journal event that raises it.
    pub fn event(self) -> crate::journal::event::Event {
        crate::journal::event::Event::Alert(AlertEvent::Raised(self))
    }
}

/// Where an alert came from: a run, or an agent identity (an alert raised
/// by an agent has no run).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum AlertSource {
    Run {
        run: String,
    },
    Agent {
        agent: String,
    },
    /// Raised by an operator (or a tool under the workspace's own
    /// authority: `orca mcp`'s `raise_alert`), through `POST /v1/alerts`.
    Operator {
        by: String,
    },
}

impl AlertSource {
    pub fn run(run: impl Into<String>) -> Self {
        AlertSource::Run { run: run.into() }
    }

    pub fn agent(agent: impl Into<String>) -> Self {
        AlertSource::Agent {
            agent: agent.into(),
        }
    }

    /// The run's or the agent's id.
    pub fn id(&self) -> &str {
        match self {
            AlertSource::Run { run } => run,
            AlertSource::Agent { agent } => agent,
            AlertSource::Operator { by } => by,
        }
    }

    /// The run, if the source is one.
    pub fn run_id(&self) -> Option<&str> {
        match self {
            AlertSource::Run { run } => Some(run),
            AlertSource::Agent { .. } | AlertSource::Operator { .. } => None,
        }
    }
}

impl fmt::Display for AlertSource {
    /// `run:r-2611…` or `agent:triage`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlertSource::Run { run } => write!(f, "run:{run}"),
            AlertSource::Agent { agent } => write!(f, "agent:{agent}"),
            AlertSource::Operator { by } => write!(f, "operator:{by}"),
        }
    }
}

/// What makes two raises the same *condition*: the source, the task and the
/// class. While a condition fires, further raises of it are deduplicated;
/// PagerDuty's `dedup_key` is derived from it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct ConditionKey {
    pub source: AlertSource,
    pub task: Option<String>,
    pub class: AlertClass,
}

impl ConditionKey {
    /// The key of a raised alert.
    pub fn of(alert: &AlertRaised) -> Self {
        Self {
            source: alert.source.clone(),
            task: alert.task.clone(),
            class: alert.class,
        }
    }

    /// PagerDuty's `dedup_key`: `orca/<source>/<task>/<class>`, stable for
    /// the condition across redeliveries and restarts; when that would pass
    /// 255 characters, `orca/sha256:` + the hex digest of it.
    pub fn dedup_key(&self) -> String {
        let full = format!("orca/{self}");
        if full.len() <= MAX_DEDUP_KEY {
            full
        } else {
            let digest = Sha256::digest(full.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("orca/sha256:{hex}")
        }
    }
}

impl fmt::Display for ConditionKey {
    /// `run:r-1/lint/stale`; a run-wide alert has an empty task
    /// (`run:r-1//needs_human`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.source,
            self.task.as_deref().unwrap_or(""),
            self.class
        )
    }
}

/// One notification: the alert that owns it and its number. Shown as
/// `<alert>:<n>` — the Standard Webhooks `webhook-id`, the same only when
/// that notification is delivered again.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct NotificationId {
    pub alert: String,
    pub n: u32,
}

impl NotificationId {
    pub fn new(alert: impl Into<String>, n: u32) -> Self {
        Self {
            alert: alert.into(),
            n,
        }
    }
}

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.alert, self.n)
    }
}

/// What a notification says.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// An alert, first time.
    Trigger,
    /// A condition still firing, `repeat_interval` after its last
    /// notification.
    Repeat,
    /// A condition cleared.
    Resolve,
    /// Several alerts of one run collected over `group_wait`.
    Group,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Trigger => "trigger",
            NotificationKind::Repeat => "repeat",
            NotificationKind::Resolve => "resolve",
            NotificationKind::Group => "group",
        }
    }
}

/// An adapter's kind, journaled beside its name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterKind {
    Slack,
    Webhook,
    PagerDuty,
}

impl AdapterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AdapterKind::Slack => "slack",
            AdapterKind::Webhook => "webhook",
            AdapterKind::PagerDuty => "pager_duty",
        }
    }

    pub fn of(adapter: &crate::spec::AlertAdapter) -> Self {
        match adapter {
            crate::spec::AlertAdapter::Slack(_) => AdapterKind::Slack,
            crate::spec::AlertAdapter::Webhook(_) => AdapterKind::Webhook,
            crate::spec::AlertAdapter::PagerDuty(_) => AdapterKind::PagerDuty,
        }
    }
}

impl fmt::Display for AdapterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An adapter as journaled: its name and kind.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct AdapterRef {
    pub name: String,
    pub kind: AdapterKind,
}

/// Why an alert was not sent anywhere. Final for the alert.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SuppressReason {
    /// Alerting is not enabled for the alert's run (or the workspace).
    Disabled,
    /// `dry_run`: these adapters would have received it.
    DryRun { adapters: Vec<AdapterRef> },
    /// No route matches the alert's class (with the task's policy).
    NoRoute,
    /// The same condition is already firing (opened by alert `of`).
    Deduplicated { of: String },
}

impl SuppressReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            SuppressReason::Disabled => "disabled",
            SuppressReason::DryRun { .. } => "dry_run",
            SuppressReason::NoRoute => "no_route",
            SuppressReason::Deduplicated { .. } => "deduplicated",
        }
    }
}

/// What answered a condition.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearCause {
    /// The stale attempt produced output or an event again.
    AttemptSpoke,
    /// The attempt ended.
    AttemptEnded,
    /// A manual verdict was recorded.
    Verdict,
    /// The task (or worker) was restarted.
    Restarted,
    /// The run or the attempt was stopped.
    Stopped,
}

impl ClearCause {
    pub fn as_str(self) -> &'static str {
        match self {
            ClearCause::AttemptSpoke => "attempt_spoke",
            ClearCause::AttemptEnded => "attempt_ended",
            ClearCause::Verdict => "verdict",
            ClearCause::Restarted => "restarted",
            ClearCause::Stopped => "stopped",
        }
    }
}

/// An alert was raised: the outbox entry. Written by whoever raises it
/// (attempt, run supervisor, agent); the router delivers it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AlertRaised {
    /// [`new_alert_id`].
    pub id: String,
    pub class: AlertClass,
    pub source: AlertSource,
    pub task: Option<String>,
    pub attempt: Option<u32>,
    /// The worker slot (`local-1`), when the alert concerns an attempt.
    pub worker: Option<String>,
    /// Short, bounded, secrets redacted (a receipt summary or a reason).
    pub reason: String,
    /// When it was raised (payload timestamps; stable across redeliveries).
    /// Exported as `raised_at` (`at` is the envelope's).
    #[serde(rename = "raised_at")]
    pub at: Timestamp,
}

/// The router planned a notification to some adapters.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NotificationPlanned {
    pub id: NotificationId,
    pub kind: NotificationKind,
    /// When it was planned (the webhook body's `timestamp`). Exported as
    /// `planned_at` (`at` is the envelope's).
    #[serde(rename = "planned_at")]
    pub at: Timestamp,
    /// The alerts it carries: the owner alone, or a group's members.
    pub members: Vec<String>,
    pub adapters: Vec<AdapterRef>,
}

/// An adapter accepted a notification (2xx).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AlertDelivered {
    pub id: NotificationId,
    pub adapter: AdapterRef,
    pub status: u16,
    /// Sends it took, this one included.
    pub attempts: u32,
}

/// A send failed. Final when `retry_at` is `None`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AlertFailed {
    pub id: NotificationId,
    pub adapter: AdapterRef,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// Sends so far, this one included.
    pub attempts: u32,
    /// Scrubbed of URLs and secrets, bounded.
    pub error: String,
    /// When it is tried again; `None`: never (final).
    pub retry_at: Option<Timestamp>,
}

impl AlertFailed {
    pub fn is_final(&self) -> bool {
        self.retry_at.is_none()
    }
}

/// The alert router's events.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum AlertEvent {
    /// An alert was raised (by its raiser, not the router).
    Raised(AlertRaised),
    /// The alert is sent nowhere, and why. Final.
    Suppressed { alert: String, why: SuppressReason },
    /// The alert waits in its source's group until `flush_at` for these
    /// adapters. The first member's id names the group.
    Grouped {
        alert: String,
        group: String,
        flush_at: Timestamp,
        adapters: Vec<AdapterRef>,
    },
    /// The group's window closed (its notifications are planned just
    /// before, in the same batch).
    GroupFlushed { group: String },
    /// A condition started firing, owned by `alert` (its notifications
    /// carry that alert's id).
    ConditionOpened { key: ConditionKey, alert: String },
    /// The condition is notified again at `at` if still firing (`None`:
    /// not again; each repeat journals the next one).
    RepeatScheduled {
        key: ConditionKey,
        /// Exported as `due` (`at` is the envelope's).
        #[serde(rename = "due")]
        at: Option<Timestamp>,
    },
    /// The condition stopped firing (its resolve, to the adapters it
    /// reached, is planned just before, in the same batch).
    ConditionCleared {
        key: ConditionKey,
        cause: ClearCause,
    },
    /// A notification was planned.
    Planned(NotificationPlanned),
    /// An adapter accepted a notification.
    Delivered(AlertDelivered),
    /// A send failed (retried unless final).
    Failed(AlertFailed),
}

impl AlertEvent {
    /// The serde variant behind a `type` name `orca journal export` shows
    /// (the inverse of [`AlertEvent::type_name`]).
    pub fn variant_of(type_name: &str) -> Option<&'static str> {
        Some(match type_name {
            "AlertRaised" => "Raised",
            "AlertSuppressed" => "Suppressed",
            "AlertGrouped" => "Grouped",
            "AlertGroupFlushed" => "GroupFlushed",
            "AlertConditionOpened" => "ConditionOpened",
            "AlertRepeatScheduled" => "RepeatScheduled",
            "AlertResolved" => "ConditionCleared",
            "AlertNotificationPlanned" => "Planned",
            "AlertDelivered" => "Delivered",
            "AlertFailed" => "Failed",
            _ => return None,
        })
    }

    /// The name `orca journal export` shows as `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AlertEvent::Raised(_) => "AlertRaised",
            AlertEvent::Suppressed { .. } => "AlertSuppressed",
            AlertEvent::Grouped { .. } => "AlertGrouped",
            AlertEvent::GroupFlushed { .. } => "AlertGroupFlushed",
            AlertEvent::ConditionOpened { .. } => "AlertConditionOpened",
            AlertEvent::RepeatScheduled { .. } => "AlertRepeatScheduled",
            AlertEvent::ConditionCleared { .. } => "AlertResolved",
            AlertEvent::Planned(_) => "AlertNotificationPlanned",
            AlertEvent::Delivered(_) => "AlertDelivered",
            AlertEvent::Failed(_) => "AlertFailed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raised() -> AlertRaised {
        AlertRaised {
            id: "a-1".into(),
            class: AlertClass::Stale,
            source: AlertSource::run("r-1"),
            task: Some("lint".into()),
            attempt: Some(2),
            worker: Some("local-1".into()),
            reason: "no output for 300 s".into(),
            at: Timestamp(1_700_000_000_000_000_000),
        }
    }

    fn every_variant() -> Vec<AlertEvent> {
        let key = ConditionKey::of(&raised());
        let adapter = AdapterRef {
            name: "ops".into(),
            kind: AdapterKind::Slack,
        };
        let id = NotificationId::new("a-1", 1);
        vec![
            AlertEvent::Raised(raised()),
            AlertEvent::Raised(AlertRaised {
                source: AlertSource::agent("triage"),
                task: None,
                attempt: None,
                worker: None,
                ..raised()
            }),
            AlertEvent::Suppressed {
                alert: "a-1".into(),
                why: SuppressReason::Disabled,
            },
            AlertEvent::Suppressed {
                alert: "a-1".into(),
                why: SuppressReason::DryRun {
                    adapters: vec![adapter.clone()],
                },
            },
            AlertEvent::Suppressed {
                alert: "a-1".into(),
                why: SuppressReason::NoRoute,
            },
            AlertEvent::Suppressed {
                alert: "a-2".into(),
                why: SuppressReason::Deduplicated { of: "a-1".into() },
            },
            AlertEvent::Grouped {
                alert: "a-1".into(),
                group: "a-1".into(),
                flush_at: Timestamp(5),
                adapters: vec![adapter.clone()],
            },
            AlertEvent::GroupFlushed {
                group: "a-1".into(),
            },
            AlertEvent::ConditionOpened {
                key: key.clone(),
                alert: "a-1".into(),
            },
            AlertEvent::RepeatScheduled {
                key: key.clone(),
                at: Some(Timestamp(9)),
            },
            AlertEvent::RepeatScheduled {
                key: key.clone(),
                at: None,
            },
            AlertEvent::ConditionCleared {
                key,
                cause: ClearCause::AttemptSpoke,
            },
            AlertEvent::Planned(NotificationPlanned {
                id: id.clone(),
                kind: NotificationKind::Group,
                at: Timestamp(3),
                members: vec!["a-1".into(), "a-2".into()],
                adapters: vec![adapter.clone()],
            }),
            AlertEvent::Delivered(AlertDelivered {
                id: id.clone(),
                adapter: adapter.clone(),
                status: 200,
                attempts: 1,
            }),
            AlertEvent::Failed(AlertFailed {
                id: id.clone(),
                adapter: adapter.clone(),
                status: Some(503),
                attempts: 1,
                error: "service unavailable".into(),
                retry_at: Some(Timestamp(7)),
            }),
            AlertEvent::Failed(AlertFailed {
                id,
                adapter,
                status: None,
                attempts: 3,
                error: "connection refused".into(),
                retry_at: None,
            }),
        ]
    }

    #[test]
    fn every_event_round_trips_through_bincode_and_json() {
        let cfg = bincode::config::standard();
        for e in every_variant() {
            let bin = bincode::serde::encode_to_vec(&e, cfg).unwrap();
            let (back, used): (AlertEvent, usize) =
                bincode::serde::decode_from_slice(&bin, cfg).unwrap();
            assert_eq!(back, e);
            assert_eq!(used, bin.len());
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<AlertEvent>(&json).unwrap(), e);
        }
    }

    #[test]
    fn dedup_key_is_stable_and_bounded() {
        let key = ConditionKey::of(&raised());
        assert_eq!(key.dedup_key(), "orca/run:r-1/lint/stale");
        assert_eq!(key.to_string(), "run:r-1/lint/stale");
        let long = ConditionKey {
            source: AlertSource::agent("a".repeat(128)),
            task: Some("t".repeat(128)),
            class: AlertClass::NeedsHuman,
        };
        let k = long.dedup_key();
        assert!(k.len() <= MAX_DEDUP_KEY, "{}", k.len());
        assert!(k.starts_with("orca/sha256:"));
        assert_eq!(k, long.clone().dedup_key());
        let other = ConditionKey {
            class: AlertClass::Stale,
            ..long
        };
        assert_ne!(other.dedup_key(), k);
    }

    #[test]
    fn alert_ids_are_time_ordered() {
        let a = new_alert_id(Timestamp(1_700_000_000_000_000_000));
        let b = new_alert_id(Timestamp(1_700_000_001_000_000_000));
        assert!(a.starts_with("a-") && a.len() == 23, "{a}");
        assert!(a[..15] < b[..15]);
        assert_eq!(NotificationId::new(&a, 3).to_string(), format!("{a}:3"));
    }
}
