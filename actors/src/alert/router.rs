//! The alert router's state and decisions, as pure functions: decide, then
//! apply.
//!
//! The journal is the outbox. Raising an alert is journaling
//! [`AlertEvent::Raised`]; the router folds every alert event into a
//! [`RouterState`] ([`RouterState::apply`], the same fold live and at
//! start), and [`decide`] turns a [`Command`] into the events to journal
//! and the [`Effect`]s to carry out once they are durable.
//!
//! How an actor drives it:
//!
//! 1. At start, fold every alert event of the journal (`apply`), then
//!    `decide(Start)`: alerts raised but never routed are routed; every
//!    planned notification without a final outcome is sent again with the
//!    same id (`<alert>:<n>`: the same `webhook-id` and `dedup_key`, so
//!    receivers see a redelivery, not a new alert); journaled deadlines
//!    (group windows, repeats, retries) are re-armed or, if past, acted on.
//! 2. For each `AlertRaised` the journal feed shows (written by an attempt,
//!    a run, an agent): `apply` it, then `decide(Route { alert })`.
//! 3. After every `decide`: `commit` (apply the events, track the effects)
//!    at once, append the events, and carry out the effects only when the
//!    append is durable (persist, then act). `Send`: build the request and
//!    POST it (`send::deliver`), then `decide(Result { … })` with the
//!    outcome. `ArmTimer { at }`: (re)arm the router's single timer for
//!    `at`; when it fires, `decide(Tick)`.
//! 4. When the journal shows a condition answered (table in
//!    docs/alerts.md), `decide(Clear { key, cause })`.
//!
//! Delivery is at least once: a crash between a send and the journaling of
//! its outcome sends that notification again, with the same id.
//!
//! Rate limiting and in-flight sends are not journaled (they do not
//! survive a restart, nor need to): [`RouterState`] keeps them beside the
//! fold, and `commit` updates them.

use std::collections::{BTreeMap, BTreeSet};

use super::config::{AlertConfigs, ResolvedAdapter, ResolvedAlerts};
use super::events::{
    AdapterKind, AdapterRef, AlertDelivered, AlertEvent, AlertFailed, AlertRaised, AlertSource,
    ClearCause, ConditionKey, NotificationId, NotificationKind, NotificationPlanned,
    SuppressReason,
};
use super::payload::{AlertInfo, Notification};
use crate::model::{bounded, Timestamp};

/// The first retry comes after at most this long (jitter takes it down to
/// half).
pub const FIRST_RETRY_MS: u64 = 1_000;
/// Retries never wait longer than this (unless `Retry-After` says so).
pub const MAX_RETRY_MS: u64 = 300_000;
/// Sends of one notification to one adapter before its failure is final
/// (about 8.5 minutes of backoff without `Retry-After`).
pub const MAX_SEND_ATTEMPTS: u32 = 10;
/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER_MS: u64 = 3_600_000;
/// Failure text journaled, at most.
pub const ERROR_MAX: usize = 300;

// ---------------------------------------------------------------------------
// Commands, outcomes, effects
// ---------------------------------------------------------------------------

/// What a send came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered.
    Status {
        code: u16,
        /// `Retry-After`, in milliseconds from the response.
        retry_after_ms: Option<u64>,
        /// The start of the response body (Slack says why there), scrubbed.
        body: String,
    },
    /// No answer: connect, timeout, transport.
    Network {
        kind: NetworkErrorKind,
        /// Scrubbed of URLs and secrets.
        error: String,
    },
    /// Not sent: a missing env var, a refused URL, an unusable secret.
    /// Never retried (the process's environment does not change).
    Refused {
        /// Names the adapter and the env var, never a value.
        error: String,
    },
}

/// Why there was no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkErrorKind {
    Connect,
    Timeout,
    /// Sending the request or reading the response failed.
    Transport,
}

impl NetworkErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkErrorKind::Connect => "connect",
            NetworkErrorKind::Timeout => "timeout",
            NetworkErrorKind::Transport => "transport",
        }
    }
}

/// What the router is told.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// The journal was folded: recover (route, resend, re-arm).
    Start,
    /// A newly journaled (and applied) alert: route it.
    Route { alert: String },
    /// A send came back.
    Result {
        id: NotificationId,
        adapter: String,
        outcome: DeliveryOutcome,
    },
    /// The timer fired.
    Tick,
    /// A condition was answered.
    Clear {
        key: ConditionKey,
        cause: ClearCause,
    },
    /// Send what waits in `group_wait` windows now (an embedded `orca
    /// run` delivers everything its run raised before it exits).
    FlushGroups,
}

/// What the router asks its actor to do once the decision is durable.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send this notification to this adapter.
    Send {
        notification: Box<Notification>,
        adapter: Box<ResolvedAdapter>,
    },
    /// (Re)arm the router's one timer for `at`, replacing any other: the
    /// earliest pending deadline. At most one per decision.
    ArmTimer { at: Timestamp },
}

// ---------------------------------------------------------------------------
// Rate limiting
// ---------------------------------------------------------------------------

/// A token bucket on a given clock: `rate` messages a second, bursts of up
/// to `max(1, rate)`.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Timestamp,
}

impl TokenBucket {
    /// Full at `now`.
    pub fn new(rate_per_sec: f64, now: Timestamp) -> Self {
        let rate = if rate_per_sec.is_finite() && rate_per_sec > 0.0 {
            rate_per_sec
        } else {
            1.0
        };
        let burst = rate.max(1.0);
        Self {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Timestamp) {
        if now > self.at {
            let secs = now.millis_since(self.at) as f64 / 1000.0;
            self.tokens = (self.tokens + secs * self.rate).min(self.burst);
            self.at = now;
        }
    }

    /// Takes a token at `now`, or says when the next one is there.
    pub fn try_take(&mut self, now: Timestamp) -> Result<(), Timestamp> {
        self.refill(now);
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // (minus a hair, so float noise never adds a millisecond)
            let ms = ((1.0 - self.tokens) / self.rate * 1000.0 - 1e-6)
                .ceil()
                .max(1.0);
            Err(self.at.plus_millis(ms as u64))
        }
    }
}

/// The delay before retry number `attempts` (after `attempts` sends):
/// 1 s doubling per send up to 5 min, times a factor in [0.5, 1] from
/// `random` (in [0, 1)). The first retry comes within 0.5–1 s.
pub fn backoff_ms(attempts: u32, random: f64) -> u64 {
    let exp = attempts.saturating_sub(1).min(20);
    let base = FIRST_RETRY_MS.saturating_mul(1u64 << exp).min(MAX_RETRY_MS);
    let r = if random.is_finite() {
        random.clamp(0.0, 1.0)
    } else {
        1.0
    };
    (base as f64 * (0.5 + 0.5 * r)) as u64
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

/// An alert the router still has business with.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertRecord {
    pub raised: AlertRaised,
    /// A routing decision was journaled for it.
    pub routed: bool,
    /// The highest notification number it owns (0: none yet).
    pub last_n: u32,
}

/// A condition that fires.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Condition {
    /// The alert that opened it (its notifications carry this id).
    pub owner: String,
    pub repeat_at: Option<Timestamp>,
    /// Adapters it was planned to (a resolve goes to these).
    pub targets: BTreeSet<AdapterRef>,
}

/// A source's open group (`group_wait`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Group {
    /// The first member's id.
    pub id: String,
    pub flush_at: Timestamp,
    /// Members in order, each with the adapters it waits for.
    pub members: Vec<(String, Vec<AdapterRef>)>,
}

/// One notification to one adapter.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    pub adapter: AdapterRef,
    /// Sends so far.
    pub attempts: u32,
    /// Not before (a retry's time); `None`: now.
    pub next_at: Option<Timestamp>,
    /// Delivered, or failed for good.
    pub done: bool,
}

/// A planned notification, until every delivery is done.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlannedNotification {
    pub kind: NotificationKind,
    pub at: Timestamp,
    pub members: Vec<String>,
    /// By adapter name.
    pub deliveries: BTreeMap<String, Delivery>,
}

/// The router's state: the fold of the alert events still open, plus
/// what is in flight and the rate limiters.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RouterState {
    alerts: BTreeMap<String, AlertRecord>,
    conditions: BTreeMap<ConditionKey, Condition>,
    groups: BTreeMap<AlertSource, Group>,
    notifications: BTreeMap<NotificationId, PlannedNotification>,
    /// Adapter → not before (a 429).
    blocked: BTreeMap<String, Timestamp>,
    // Not journaled (nor snapshotted):
    #[serde(skip)]
    inflight: BTreeSet<(NotificationId, String)>,
    #[serde(skip)]
    buckets: BTreeMap<String, TokenBucket>,
}

impl RouterState {
    /// The fold of `events` (what the router does at start).
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a AlertEvent>) -> Self {
        let mut s = Self::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    pub fn alert(&self, id: &str) -> Option<&AlertRecord> {
        self.alerts.get(id)
    }

    pub fn condition(&self, key: &ConditionKey) -> Option<&Condition> {
        self.conditions.get(key)
    }

    pub fn conditions(&self) -> impl Iterator<Item = (&ConditionKey, &Condition)> {
        self.conditions.iter()
    }

    pub fn notification(&self, id: &NotificationId) -> Option<&PlannedNotification> {
        self.notifications.get(id)
    }

    /// Notifications with a delivery not yet done.
    pub fn pending(&self) -> impl Iterator<Item = (&NotificationId, &PlannedNotification)> {
        self.notifications.iter()
    }

    pub fn group(&self, source: &AlertSource) -> Option<&Group> {
        self.groups.get(source)
    }

    /// Nothing left to do: every alert routed, no group window open, no
    /// notification waiting for a delivery.
    pub fn is_idle(&self) -> bool {
        self.alerts.values().all(|a| a.routed)
            && self.groups.is_empty()
            && self.notifications.is_empty()
    }

    /// Sends in flight now.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// The state without what is not journaled (in-flight sends, rate
    /// limiters): what a fold of the same events gives.
    pub fn durable(&self) -> Self {
        Self {
            inflight: BTreeSet::new(),
            buckets: BTreeMap::new(),
            ..self.clone()
        }
    }

    /// Folds one event. Idempotent where a replay could repeat one.
    pub fn apply(&mut self, event: &AlertEvent) {
        match event {
            AlertEvent::Raised(r) => {
                self.alerts.entry(r.id.clone()).or_insert(AlertRecord {
                    raised: r.clone(),
                    routed: false,
                    last_n: 0,
                });
            }
            AlertEvent::Suppressed { alert, .. } => {
                self.routed(alert);
                self.release(alert);
            }
            AlertEvent::Grouped {
                alert,
                group,
                flush_at,
                adapters,
            } => {
                self.routed(alert);
                let Some(source) = self.alerts.get(alert).map(|a| a.raised.source.clone()) else {
                    return;
                };
                let g = self.groups.entry(source).or_insert_with(|| Group {
                    id: group.clone(),
                    flush_at: *flush_at,
                    members: Vec::new(),
                });
                if !g.members.iter().any(|(m, _)| m == alert) {
                    g.members.push((alert.clone(), adapters.clone()));
                }
            }
            AlertEvent::GroupFlushed { group } => {
                let source = self
                    .groups
                    .iter()
                    .find(|(_, g)| &g.id == group)
                    .map(|(s, _)| s.clone());
                if let Some(source) = source {
                    if let Some(g) = self.groups.remove(&source) {
                        for (m, _) in g.members {
                            self.release(&m);
                        }
                    }
                }
            }
            AlertEvent::ConditionOpened { key, alert } => {
                self.routed(alert);
                self.conditions.entry(key.clone()).or_insert(Condition {
                    owner: alert.clone(),
                    repeat_at: None,
                    targets: BTreeSet::new(),
                });
            }
            AlertEvent::RepeatScheduled { key, at } => {
                if let Some(c) = self.conditions.get_mut(key) {
                    c.repeat_at = *at;
                }
            }
            AlertEvent::ConditionCleared { key, .. } => {
                if let Some(c) = self.conditions.remove(key) {
                    self.release(&c.owner);
                }
            }
            AlertEvent::Planned(p) => self.planned(p),
            AlertEvent::Delivered(d) => {
                self.inflight
                    .remove(&(d.id.clone(), d.adapter.name.clone()));
                self.finish_delivery(&d.id, &d.adapter.name, d.attempts, None);
            }
            AlertEvent::Failed(f) => {
                self.inflight
                    .remove(&(f.id.clone(), f.adapter.name.clone()));
                if f.status == Some(429) {
                    if let Some(at) = f.retry_at {
                        let b = self.blocked.entry(f.adapter.name.clone()).or_insert(at);
                        *b = (*b).max(at);
                    }
                }
                self.finish_delivery(&f.id, &f.adapter.name, f.attempts, Some(f.retry_at));
            }
        }
    }

    fn routed(&mut self, alert: &str) {
        if let Some(a) = self.alerts.get_mut(alert) {
            a.routed = true;
        }
    }

    fn planned(&mut self, p: &NotificationPlanned) {
        for m in &p.members {
            self.routed(m);
        }
        if let Some(owner) = self.alerts.get_mut(&p.id.alert) {
            owner.last_n = owner.last_n.max(p.id.n);
        }
        // Conditions owned by a member: a resolve goes where they went.
        if p.kind != NotificationKind::Resolve {
            for c in self.conditions.values_mut() {
                if p.members.contains(&c.owner) {
                    c.targets.extend(p.adapters.iter().cloned());
                }
            }
        }
        if self.notifications.contains_key(&p.id) || p.adapters.is_empty() {
            return;
        }
        self.notifications.insert(
            p.id.clone(),
            PlannedNotification {
                kind: p.kind,
                at: p.at,
                members: p.members.clone(),
                deliveries: p
                    .adapters
                    .iter()
                    .map(|a| {
                        (
                            a.name.clone(),
                            Delivery {
                                adapter: a.clone(),
                                attempts: 0,
                                next_at: None,
                                done: false,
                            },
                        )
                    })
                    .collect(),
            },
        );
    }

    /// `retry`: `None` for a delivery, `Some(None)` for a final failure,
    /// `Some(Some(at))` for a retry at `at`.
    fn finish_delivery(
        &mut self,
        id: &NotificationId,
        adapter: &str,
        attempts: u32,
        retry: Option<Option<Timestamp>>,
    ) {
        let Some(n) = self.notifications.get_mut(id) else {
            return;
        };
        if let Some(d) = n.deliveries.get_mut(adapter) {
            d.attempts = d.attempts.max(attempts);
            match retry {
                Some(Some(at)) => d.next_at = Some(at),
                _ => d.done = true,
            }
        }
        if n.deliveries.values().all(|d| d.done) {
            if let Some(n) = self.notifications.remove(id) {
                for m in n.members {
                    self.release(&m);
                }
            }
        }
    }

    /// Forgets an alert nothing refers to any more.
    fn release(&mut self, alert: &str) {
        let Some(rec) = self.alerts.get(alert) else {
            return;
        };
        let referenced = !rec.routed
            || self.conditions.values().any(|c| c.owner == alert)
            || self
                .groups
                .values()
                .any(|g| g.id == alert || g.members.iter().any(|(m, _)| m == alert))
            || self
                .notifications
                .iter()
                .any(|(id, n)| id.alert == alert || n.members.iter().any(|m| m == alert));
        if !referenced {
            self.alerts.remove(alert);
        }
    }

    /// Records what carrying out an effect changes outside the journal: a
    /// send is in flight and took a token.
    pub fn track(&mut self, effect: &Effect, now: Timestamp) {
        if let Effect::Send {
            notification,
            adapter,
        } = effect
        {
            self.inflight
                .insert((notification.id.clone(), adapter.name.clone()));
            let _ = self
                .buckets
                .entry(adapter.name.clone())
                .or_insert_with(|| TokenBucket::new(adapter.rate_limit, now))
                .try_take(now);
        }
    }

    /// Applies a decision at once (events, then effects), as the actor does
    /// right after `decide`.
    pub fn commit(&mut self, events: &[AlertEvent], effects: &[Effect], now: Timestamp) {
        for e in events {
            self.apply(e);
        }
        for f in effects {
            self.track(f, now);
        }
    }
}

// ---------------------------------------------------------------------------
// Decide
// ---------------------------------------------------------------------------

/// Decides what `cmd` leads to: the events to journal and the effects to
/// carry out once they are durable. `now` is the wall clock; `random` is a
/// uniform number in [0, 1) for jitter. Pure: `state` is not changed.
pub fn decide(
    state: &RouterState,
    configs: &AlertConfigs,
    cmd: Command,
    now: Timestamp,
    random: f64,
) -> (Vec<AlertEvent>, Vec<Effect>) {
    let mut d = Decider {
        s: state.clone(),
        configs,
        now,
        random,
        events: Vec::new(),
        effects: Vec::new(),
        wake: None,
    };
    match cmd {
        Command::Start => {
            let unrouted: Vec<String> =
                d.s.alerts
                    .iter()
                    .filter(|(_, a)| !a.routed)
                    .map(|(id, _)| id.clone())
                    .collect();
            for id in unrouted {
                d.route(&id);
            }
            d.due();
        }
        Command::Route { alert } => d.route(&alert),
        Command::Tick => d.due(),
        Command::Result {
            id,
            adapter,
            outcome,
        } => d.result(&id, &adapter, outcome),
        Command::Clear { key, cause } => d.clear(&key, cause),
        Command::FlushGroups => {
            let sources: Vec<AlertSource> = d.s.groups.keys().cloned().collect();
            for source in sources {
                d.flush(&source);
            }
        }
    }
    d.schedule();
    (d.events, d.effects)
}

struct Decider<'a> {
    /// The state as it will be: every emitted event is applied at once.
    s: RouterState,
    configs: &'a AlertConfigs,
    now: Timestamp,
    random: f64,
    events: Vec<AlertEvent>,
    effects: Vec<Effect>,
    wake: Option<Timestamp>,
}

impl Decider<'_> {
    fn emit(&mut self, e: AlertEvent) {
        self.s.apply(&e);
        self.events.push(e);
    }

    fn wake_at(&mut self, at: Timestamp) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    fn config(&self, source: &AlertSource) -> &ResolvedAlerts {
        self.configs.for_source(source)
    }

    fn next_id(&self, alert: &str) -> NotificationId {
        let n = self.s.alerts.get(alert).map_or(0, |a| a.last_n) + 1;
        NotificationId::new(alert, n)
    }

    fn plan(
        &mut self,
        owner: &str,
        kind: NotificationKind,
        members: Vec<String>,
        adapters: Vec<AdapterRef>,
    ) {
        if adapters.is_empty() {
            return;
        }
        let id = self.next_id(owner);
        self.emit(AlertEvent::Planned(NotificationPlanned {
            id,
            kind,
            at: self.now,
            members,
            adapters,
        }));
    }

    fn route(&mut self, id: &str) {
        let Some(rec) = self.s.alerts.get(id) else {
            return;
        };
        if rec.routed {
            return;
        }
        let r = rec.raised.clone();
        let cfg = self.config(&r.source);
        let suppress = |why| AlertEvent::Suppressed {
            alert: id.to_string(),
            why,
        };
        if !cfg.enabled {
            self.emit(suppress(SuppressReason::Disabled));
            return;
        }
        let targets: Vec<AdapterRef> = cfg
            .targets(r.class, r.task.as_deref())
            .into_iter()
            .map(ResolvedAdapter::reference)
            .collect();
        if targets.is_empty() {
            self.emit(suppress(SuppressReason::NoRoute));
            return;
        }
        if cfg.dry_run {
            self.emit(suppress(SuppressReason::DryRun { adapters: targets }));
            return;
        }
        let (group_wait, repeat) = (cfg.group_wait_ms, cfg.repeat_interval_ms);
        if r.class.is_condition() {
            let key = ConditionKey::of(&r);
            if let Some(c) = self.s.conditions.get(&key) {
                let of = c.owner.clone();
                self.emit(suppress(SuppressReason::Deduplicated { of }));
                return;
            }
            self.emit(AlertEvent::ConditionOpened {
                key: key.clone(),
                alert: id.to_string(),
            });
            if repeat > 0 {
                self.emit(AlertEvent::RepeatScheduled {
                    key,
                    at: Some(self.now.plus_millis(repeat)),
                });
            }
        }
        // PagerDuty is never grouped: each condition keeps its own
        // incident, dedup key and resolve.
        let (now_targets, grouped): (Vec<AdapterRef>, Vec<AdapterRef>) = if group_wait > 0 {
            targets
                .into_iter()
                .partition(|a| a.kind == AdapterKind::PagerDuty)
        } else {
            (targets, Vec::new())
        };
        self.plan(
            id,
            NotificationKind::Trigger,
            vec![id.to_string()],
            now_targets,
        );
        if !grouped.is_empty() {
            let (group, flush_at) = match self.s.groups.get(&r.source) {
                Some(g) => (g.id.clone(), g.flush_at),
                None => (id.to_string(), self.now.plus_millis(group_wait)),
            };
            self.emit(AlertEvent::Grouped {
                alert: id.to_string(),
                group,
                flush_at,
                adapters: grouped,
            });
        }
    }

    /// Group windows and repeats whose time has come.
    fn due(&mut self) {
        let now = self.now;
        let groups: Vec<AlertSource> = self
            .s
            .groups
            .iter()
            .filter(|(_, g)| g.flush_at <= now)
            .map(|(s, _)| s.clone())
            .collect();
        for source in groups {
            self.flush(&source);
        }
        let repeats: Vec<ConditionKey> = self
            .s
            .conditions
            .iter()
            .filter(|(_, c)| c.repeat_at.is_some_and(|at| at <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in repeats {
            self.repeat(&key);
        }
    }

    /// One notification per adapter with the members routed to it (a
    /// single member is sent as its own trigger), then `GroupFlushed`
    /// (after them, so the fold never forgets a member in between).
    fn flush(&mut self, source: &AlertSource) {
        let Some(g) = self.s.groups.get(source).cloned() else {
            return;
        };
        let mut per_adapter: BTreeMap<AdapterRef, Vec<String>> = BTreeMap::new();
        for (member, adapters) in &g.members {
            for a in adapters {
                per_adapter
                    .entry(a.clone())
                    .or_default()
                    .push(member.clone());
            }
        }
        for (adapter, members) in per_adapter {
            match members.as_slice() {
                [only] => {
                    let only = only.clone();
                    self.plan(
                        &only,
                        NotificationKind::Trigger,
                        vec![only.clone()],
                        vec![adapter],
                    );
                }
                _ => self.plan(&g.id, NotificationKind::Group, members, vec![adapter]),
            }
        }
        self.emit(AlertEvent::GroupFlushed { group: g.id });
    }

    fn repeat(&mut self, key: &ConditionKey) {
        let Some(c) = self.s.conditions.get(key).cloned() else {
            return;
        };
        let Some(owner) = self.s.alerts.get(&c.owner) else {
            return;
        };
        let interval = self.config(&owner.raised.source).repeat_interval_ms;
        self.plan(
            &c.owner,
            NotificationKind::Repeat,
            vec![c.owner.clone()],
            c.targets.iter().cloned().collect(),
        );
        // Always journaled, so the deadline just acted on is consumed even
        // when repeats were turned off since.
        self.emit(AlertEvent::RepeatScheduled {
            key: key.clone(),
            at: (interval > 0).then(|| self.now.plus_millis(interval)),
        });
    }

    /// The resolve, then `ConditionCleared` (after it, so the fold keeps
    /// the owner alert for the resolve).
    fn clear(&mut self, key: &ConditionKey, cause: ClearCause) {
        let Some(c) = self.s.conditions.get(key).cloned() else {
            return;
        };
        self.plan(
            &c.owner,
            NotificationKind::Resolve,
            vec![c.owner.clone()],
            c.targets.into_iter().collect(),
        );
        self.emit(AlertEvent::ConditionCleared {
            key: key.clone(),
            cause,
        });
    }

    fn result(&mut self, id: &NotificationId, adapter: &str, outcome: DeliveryOutcome) {
        let Some(d) = self
            .s
            .notifications
            .get(id)
            .and_then(|n| n.deliveries.get(adapter))
        else {
            return;
        };
        if d.done {
            return;
        }
        let adapter_ref = d.adapter.clone();
        let attempts = d.attempts + 1;
        let (status, retry_after, error, retryable) = match outcome {
            DeliveryOutcome::Status { code, .. } if (200..300).contains(&code) => {
                self.emit(AlertEvent::Delivered(AlertDelivered {
                    id: id.clone(),
                    adapter: adapter_ref,
                    status: code,
                    attempts,
                }));
                return;
            }
            DeliveryOutcome::Status {
                code,
                retry_after_ms,
                body,
            } => {
                let mut error = format!("HTTP {code}");
                if !body.trim().is_empty() {
                    error.push_str(": ");
                    error.push_str(body.trim());
                }
                (
                    Some(code),
                    retry_after_ms,
                    error,
                    code == 429 || code >= 500,
                )
            }
            DeliveryOutcome::Network { kind, error } => {
                (None, None, format!("{}: {error}", kind.as_str()), true)
            }
            DeliveryOutcome::Refused { error } => (None, None, error, false),
        };
        let retry_at = (retryable && attempts < MAX_SEND_ATTEMPTS).then(|| {
            let delay = match retry_after {
                Some(ms) => ms.min(MAX_RETRY_AFTER_MS),
                None => backoff_ms(attempts, self.random),
            };
            self.now.plus_millis(delay)
        });
        self.emit(AlertEvent::Failed(AlertFailed {
            id: id.clone(),
            adapter: adapter_ref,
            status,
            attempts,
            error: bounded(&error, ERROR_MAX),
            retry_at,
        }));
    }

    /// Sends every delivery that may go now, within rate limits and in
    /// order per alert and adapter; arms the timer for the next deadline.
    fn schedule(&mut self) {
        let now = self.now;
        let mut ready: Vec<(NotificationId, String)> = Vec::new();
        let mut waiting_behind: BTreeSet<(String, String)> = BTreeSet::new();
        for (id, n) in &self.s.notifications {
            for (name, d) in &n.deliveries {
                if d.done {
                    continue;
                }
                // Notifications of one alert reach an adapter in order
                // (a resolve never overtakes its trigger).
                if !waiting_behind.insert((id.alert.clone(), name.clone())) {
                    continue;
                }
                if self.s.inflight.contains(&(id.clone(), name.clone())) {
                    continue;
                }
                let not_before = d
                    .next_at
                    .into_iter()
                    .chain(self.s.blocked.get(name).copied())
                    .max();
                match not_before {
                    Some(t) if t > now => {
                        self.wake = Some(self.wake.map_or(t, |w| w.min(t)));
                    }
                    _ => ready.push((id.clone(), name.clone())),
                }
            }
        }
        for (id, name) in ready {
            self.send(&id, &name);
        }
        let deadlines: Vec<Timestamp> = self
            .s
            .groups
            .values()
            .map(|g| g.flush_at)
            .chain(self.s.conditions.values().filter_map(|c| c.repeat_at))
            .collect();
        for at in deadlines {
            self.wake_at(at.max(now));
        }
        if let Some(at) = self.wake {
            self.effects.push(Effect::ArmTimer { at });
        }
    }

    fn send(&mut self, id: &NotificationId, name: &str) {
        let Some(n) = self.s.notifications.get(id).cloned() else {
            return;
        };
        let Some(owner) = self
            .s
            .alerts
            .get(&id.alert)
            .map(|a| a.raised.source.clone())
        else {
            return;
        };
        let cfg = self.configs.for_source(&owner);
        let kind = n.deliveries.get(name).map(|d| d.adapter.kind);
        let adapter = match cfg.adapter(name) {
            Some(a) if Some(a.kind) == kind => a.clone(),
            _ => {
                let d = &n.deliveries[name];
                self.emit(AlertEvent::Failed(AlertFailed {
                    id: id.clone(),
                    adapter: d.adapter.clone(),
                    status: None,
                    attempts: d.attempts,
                    error: format!("adapter `{name}` is no longer configured"),
                    retry_at: None,
                }));
                return;
            }
        };
        let bucket = self
            .s
            .buckets
            .entry(name.to_string())
            .or_insert_with(|| TokenBucket::new(adapter.rate_limit, self.now));
        if let Err(at) = bucket.clone().try_take(self.now) {
            self.wake_at(at);
            return;
        }
        let infos: Vec<AlertInfo> = n
            .members
            .iter()
            .filter_map(|m| self.s.alerts.get(m))
            .map(|a| {
                let r = &a.raised;
                let severity =
                    self.configs
                        .for_source(&r.source)
                        .severity(r.class, r.task.as_deref(), name);
                AlertInfo::from_raised(r, severity)
            })
            .collect();
        let mut infos = infos.into_iter();
        let Some(first) = infos.next() else {
            return;
        };
        let effect = Effect::Send {
            notification: Box::new(Notification {
                id: id.clone(),
                kind: n.kind,
                at: n.at,
                alert: first,
                more: infos.collect(),
                address: self.configs.address.clone(),
            }),
            adapter: Box::new(adapter),
        };
        self.s.track(&effect, self.now);
        self.effects.push(effect);
    }
}

#[cfg(test)]
mod tests;
