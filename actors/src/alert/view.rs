//! Alerts as operators read them (`orca alert list`, `GET /v1/alerts`, the
//! tree's `alert-router` node): every alert raised and where its delivery
//! stands — a pure fold of the alert events, part of the fleet view (and
//! its snapshot), which also carries the router's durable state so the
//! router starts from the same load as every other view.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::events::{AlertEvent, AlertRaised, ClearCause, NotificationId, NotificationKind};
use super::router::RouterState;
use crate::model::Timestamp;

/// Where an alert's delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Raised; not routed yet, or its notifications are on their way.
    Pending,
    /// Waiting in its run's `group_wait` window.
    Grouped,
    /// Sent nowhere (`why` says: disabled, dry run, no route, deduplicated).
    Suppressed,
    /// Every adapter it went to accepted it.
    Delivered,
    /// Some adapter refused it for good (or gave up).
    Failed,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Grouped => "grouped",
            AlertState::Suppressed => "suppressed",
            AlertState::Delivered => "delivered",
            AlertState::Failed => "failed",
        }
    }
}

/// One notification to one adapter, as far as it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// `<alert>:<n>` (the webhook-id).
    pub notification: String,
    pub kind: NotificationKind,
    pub adapter: String,
    pub adapter_kind: String,
    /// The last HTTP status, if any.
    pub status: Option<u16>,
    pub attempts: u32,
    /// `planned`, `delivered`, `retrying`, `failed`.
    pub outcome: String,
    /// The last failure, scrubbed.
    pub error: Option<String>,
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEntry {
    pub alert: AlertRaised,
    pub state: AlertState,
    /// Why it was suppressed.
    pub why: Option<String>,
    pub deliveries: Vec<DeliveryRecord>,
    /// For a condition: what cleared it.
    pub cleared: Option<ClearCause>,
}

/// Every alert, and the router's fold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertsView {
    /// By id (ids are time-ordered).
    pub alerts: BTreeMap<String, AlertEntry>,
    /// The router's durable state (what it starts from).
    pub router: RouterState,
    /// Which alerts each notification carries.
    carries: BTreeMap<NotificationId, Vec<String>>,
    /// When an adapter last accepted a notification.
    pub last_delivery: Option<Timestamp>,
    /// Deliveries that failed for good.
    pub failures: u64,
}

impl AlertsView {
    /// Folds one alert event journaled at `at`.
    pub fn apply(&mut self, at: Timestamp, event: &AlertEvent) {
        self.router.apply(event);
        match event {
            AlertEvent::Raised(r) => {
                self.alerts.entry(r.id.clone()).or_insert(AlertEntry {
                    alert: r.clone(),
                    state: AlertState::Pending,
                    why: None,
                    deliveries: Vec::new(),
                    cleared: None,
                });
            }
            AlertEvent::Suppressed { alert, why } => {
                if let Some(a) = self.alerts.get_mut(alert) {
                    a.state = AlertState::Suppressed;
                    a.why = Some(why.as_str().to_string());
                }
            }
            AlertEvent::Grouped { alert, .. } => {
                if let Some(a) = self.alerts.get_mut(alert) {
                    a.state = AlertState::Grouped;
                }
            }
            AlertEvent::ConditionCleared { key, cause } => {
                for a in self.alerts.values_mut() {
                    if a.cleared.is_none()
                        && a.alert.class == key.class
                        && a.alert.source == key.source
                        && a.alert.task == key.task
                    {
                        a.cleared = Some(*cause);
                    }
                }
            }
            AlertEvent::Planned(p) => {
                self.carries.insert(p.id.clone(), p.members.clone());
                for m in &p.members {
                    if let Some(a) = self.alerts.get_mut(m) {
                        a.state = AlertState::Pending;
                        for adapter in &p.adapters {
                            a.deliveries.push(DeliveryRecord {
                                notification: p.id.to_string(),
                                kind: p.kind,
                                adapter: adapter.name.clone(),
                                adapter_kind: adapter.kind.as_str().to_string(),
                                status: None,
                                attempts: 0,
                                outcome: "planned".into(),
                                error: None,
                            });
                        }
                    }
                }
            }
            AlertEvent::Delivered(d) => {
                self.last_delivery = Some(self.last_delivery.map_or(at, |l| l.max(at)));
                self.record(&d.id, &d.adapter.name, |r| {
                    r.status = Some(d.status);
                    r.attempts = d.attempts;
                    r.outcome = "delivered".into();
                });
            }
            AlertEvent::Failed(f) => {
                if f.is_final() {
                    self.failures += 1;
                }
                self.record(&f.id, &f.adapter.name, |r| {
                    r.status = f.status;
                    r.attempts = f.attempts;
                    r.outcome = if f.is_final() { "failed" } else { "retrying" }.into();
                    r.error = Some(f.error.clone());
                });
            }
            AlertEvent::GroupFlushed { .. }
            | AlertEvent::ConditionOpened { .. }
            | AlertEvent::RepeatScheduled { .. } => {}
        }
    }

    /// Updates one delivery of a notification, then the states of the
    /// alerts it carries.
    fn record(&mut self, id: &NotificationId, adapter: &str, f: impl Fn(&mut DeliveryRecord)) {
        let notification = id.to_string();
        let members = self.carries.get(id).cloned().unwrap_or_default();
        for m in members {
            let Some(a) = self.alerts.get_mut(&m) else {
                continue;
            };
            for r in a
                .deliveries
                .iter_mut()
                .filter(|r| r.notification == notification && r.adapter == adapter)
            {
                f(r);
            }
            a.state = settled(&a.deliveries);
        }
    }

    /// Notifications still to be delivered (the router's queue).
    pub fn queue_depth(&self) -> usize {
        self.router.pending().count()
    }

    /// What `orca alert list` and `GET /v1/alerts` show: every alert (or
    /// those of run `run`, an exact id), oldest first.
    pub fn list(&self, run: Option<&str>) -> AlertList {
        AlertList {
            alerts: self
                .alerts
                .values()
                .filter(|a| run.is_none_or(|r| a.alert.source.run_id() == Some(r)))
                .cloned()
                .collect(),
            queue: self.queue_depth(),
            last_delivery: self.last_delivery,
            failures: self.failures,
        }
    }
}

/// Alerts and where their delivery stands, with the router's counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertList {
    pub alerts: Vec<AlertEntry>,
    /// Notifications not yet delivered (or failed for good).
    pub queue: usize,
    pub last_delivery: Option<Timestamp>,
    /// Deliveries that failed for good.
    pub failures: u64,
}

/// An alert's state from its deliveries.
fn settled(deliveries: &[DeliveryRecord]) -> AlertState {
    if deliveries
        .iter()
        .any(|d| matches!(d.outcome.as_str(), "planned" | "retrying"))
    {
        AlertState::Pending
    } else if deliveries.iter().any(|d| d.outcome == "failed") {
        AlertState::Failed
    } else {
        AlertState::Delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::fixture::{sample_alert_events, sample_events};
    use crate::journal::Event;

    #[test]
    fn a_delivery_retried_then_accepted_reads_delivered() {
        let mut v = AlertsView::default();
        let mut at = Timestamp(1);
        for e in sample_events().into_iter().chain(sample_alert_events()) {
            if let Event::Alert(a) = &e.event {
                at = at.plus_millis(1);
                v.apply(at, a);
            }
        }
        let (_, a) = v.alerts.iter().next().unwrap();
        assert_eq!(a.state, AlertState::Delivered);
        assert_eq!(a.deliveries.len(), 1);
        assert_eq!(a.deliveries[0].attempts, 2);
        assert_eq!(a.deliveries[0].status, Some(200));
        assert_eq!(a.cleared, Some(ClearCause::AttemptEnded));
        assert_eq!(v.failures, 0);
        assert!(v.last_delivery.is_some());
        assert_eq!(v.queue_depth(), 0);
    }
}
