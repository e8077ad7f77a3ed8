//! Given events, when a command, then events and effects — cqrs-es's
//! TestFramework style, with no actor, process or network.

use super::*;
use crate::alert::config::ResolvedAlerts;
use crate::model::AlertClass;
use crate::spec::{
    AlertAdapter, AlertConfig, AlertRoute, PagerDutyAdapter, SlackAdapter, WebhookAdapter,
};

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

const T0: Timestamp = Timestamp(1_800_000_000_000_000_000);

fn at(ms: u64) -> Timestamp {
    T0.plus_millis(ms)
}

/// A router fed some history.
struct Given {
    state: RouterState,
    configs: AlertConfigs,
    random: f64,
}

/// What one command led to.
struct Then {
    events: Vec<AlertEvent>,
    effects: Vec<Effect>,
}

fn given(events: &[AlertEvent]) -> Given {
    Given {
        state: RouterState::from_events(events),
        configs: configs(config()),
        random: 1.0,
    }
}

impl Given {
    fn with(mut self, cfg: AlertConfig) -> Self {
        self.configs = configs(cfg);
        self
    }

    fn random(mut self, r: f64) -> Self {
        self.random = r;
        self
    }

    /// Folds more history (an `AlertRaised` from the feed, say).
    fn and(mut self, events: &[AlertEvent]) -> Self {
        for e in events {
            self.state.apply(e);
        }
        self
    }

    /// Decides, checks purity, and commits as the actor would.
    fn when(&mut self, cmd: Command, now: Timestamp) -> Then {
        let before = self.state.clone();
        let (events, effects) = decide(&self.state, &self.configs, cmd, now, self.random);
        assert_eq!(self.state, before, "decide must not change the state");
        self.state.commit(&events, &effects, now);
        Then { events, effects }
    }
}

/// An effect, short: `send a-1:1 -> chat` / `timer +1000ms`.
fn short(e: &Effect) -> String {
    match e {
        Effect::Send {
            notification,
            adapter,
        } => format!("send {} -> {}", notification.id, adapter.name),
        Effect::ArmTimer { at } => format!("timer +{}ms", at.millis_since(T0)),
    }
}

impl Then {
    fn events(&self, expected: &[AlertEvent]) -> &Self {
        assert_eq!(self.events, expected, "events");
        self
    }

    fn effects(&self, expected: &[&str]) -> &Self {
        let got: Vec<String> = self.effects.iter().map(short).collect();
        assert_eq!(got, expected, "effects");
        self
    }

    fn no_events(&self) -> &Self {
        self.events(&[])
    }

    fn sent(&self) -> Vec<&Notification> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { notification, .. } => Some(&**notification),
                _ => None,
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

fn slack(env: &str) -> AlertAdapter {
    AlertAdapter::Slack(SlackAdapter {
        webhook_env: env.into(),
        ..Default::default()
    })
}

fn route(events: &[AlertClass], adapter: &str) -> AlertRoute {
    AlertRoute {
        events: events.to_vec(),
        adapter: adapter.into(),
        ..Default::default()
    }
}

/// chat (slack, 1/s) gets stale, needs_human, verifier_failed; pager gets
/// needs_human; hook (webhook, 10/s) gets run_completed.
fn config() -> AlertConfig {
    AlertConfig {
        enabled: true,
        routes: vec![
            route(
                &[
                    AlertClass::Stale,
                    AlertClass::NeedsHuman,
                    AlertClass::VerifierFailed,
                ],
                "chat",
            ),
            route(&[AlertClass::NeedsHuman], "pager"),
            route(&[AlertClass::RunCompleted], "hook"),
        ],
        adapters: [
            ("chat".to_string(), slack("CHAT")),
            (
                "pager".to_string(),
                AlertAdapter::PagerDuty(PagerDutyAdapter {
                    routing_key_env: "PD".into(),
                    ..Default::default()
                }),
            ),
            (
                "hook".to_string(),
                AlertAdapter::Webhook(WebhookAdapter {
                    url_env: "HOOK".into(),
                    ..Default::default()
                }),
            ),
        ]
        .into(),
        ..Default::default()
    }
}

fn configs(cfg: AlertConfig) -> AlertConfigs {
    let mut c = AlertConfigs {
        default: ResolvedAlerts::disabled(),
        address: Some("127.0.0.1:7070".into()),
        ..Default::default()
    };
    c.runs
        .insert("r-1".into(), ResolvedAlerts::from_config(Some(&cfg)));
    c
}

fn raised(id: &str, class: AlertClass, task: Option<&str>, ms: u64) -> AlertEvent {
    AlertEvent::Raised(AlertRaised {
        id: id.into(),
        class,
        source: AlertSource::run("r-1"),
        task: task.map(Into::into),
        attempt: task.map(|_| 1),
        worker: task.map(|_| "local-1".into()),
        reason: format!("{class} on {}", task.unwrap_or("the run")),
        at: at(ms),
    })
}

fn stale(id: &str, ms: u64) -> AlertEvent {
    raised(id, AlertClass::Stale, Some("lint"), ms)
}

fn key(class: AlertClass, task: Option<&str>) -> ConditionKey {
    ConditionKey {
        source: AlertSource::run("r-1"),
        task: task.map(Into::into),
        class,
    }
}

fn aref(name: &str) -> AdapterRef {
    AdapterRef {
        name: name.into(),
        kind: match name {
            "pager" => AdapterKind::PagerDuty,
            "hook" => AdapterKind::Webhook,
            _ => AdapterKind::Slack,
        },
    }
}

fn planned(
    alert: &str,
    n: u32,
    kind: NotificationKind,
    ms: u64,
    members: &[&str],
    adapters: &[&str],
) -> AlertEvent {
    AlertEvent::Planned(NotificationPlanned {
        id: NotificationId::new(alert, n),
        kind,
        at: at(ms),
        members: members.iter().map(|m| m.to_string()).collect(),
        adapters: adapters.iter().map(|a| aref(a)).collect(),
    })
}

fn opened(class: AlertClass, task: Option<&str>, alert: &str) -> AlertEvent {
    AlertEvent::ConditionOpened {
        key: key(class, task),
        alert: alert.into(),
    }
}

fn repeat_at(class: AlertClass, task: Option<&str>, ms: Option<u64>) -> AlertEvent {
    AlertEvent::RepeatScheduled {
        key: key(class, task),
        at: ms.map(at),
    }
}

const H4: u64 = 4 * 3600 * 1000;

fn ok(alert: &str, n: u32, adapter: &str) -> Command {
    result(alert, n, adapter, status(200))
}

fn result(alert: &str, n: u32, adapter: &str, outcome: DeliveryOutcome) -> Command {
    Command::Result {
        id: NotificationId::new(alert, n),
        adapter: adapter.into(),
        outcome,
    }
}

fn status(code: u16) -> DeliveryOutcome {
    DeliveryOutcome::Status {
        code,
        retry_after_ms: None,
        body: String::new(),
    }
}

fn route_cmd(alert: &str) -> Command {
    Command::Route {
        alert: alert.into(),
    }
}

/// The history of a stale alert a-1 delivered to chat at t=0.
fn stale_firing() -> Vec<AlertEvent> {
    vec![
        stale("a-1", 0),
        opened(AlertClass::Stale, Some("lint"), "a-1"),
        repeat_at(AlertClass::Stale, Some("lint"), Some(H4)),
        planned("a-1", 1, NotificationKind::Trigger, 0, &["a-1"], &["chat"]),
        AlertEvent::Delivered(AlertDelivered {
            id: NotificationId::new("a-1", 1),
            adapter: aref("chat"),
            status: 200,
            attempts: 1,
        }),
    ]
}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

#[test]
fn disabled_alerts_are_suppressed_and_forgotten() {
    let mut g = given(&[stale("a-1", 0)]).with(AlertConfig::default());
    g.when(route_cmd("a-1"), at(0))
        .events(&[AlertEvent::Suppressed {
            alert: "a-1".into(),
            why: SuppressReason::Disabled,
        }])
        .effects(&[]);
    assert!(g.state.alert("a-1").is_none());
}

#[test]
fn an_unrouted_class_is_suppressed_no_route() {
    let mut g = given(&[raised("a-1", AlertClass::BudgetExceeded, Some("lint"), 0)]);
    g.when(route_cmd("a-1"), at(0))
        .events(&[AlertEvent::Suppressed {
            alert: "a-1".into(),
            why: SuppressReason::NoRoute,
        }])
        .effects(&[]);
}

#[test]
fn dry_run_names_the_adapters_and_sends_nothing() {
    let mut cfg = config();
    cfg.dry_run = true;
    let mut g = given(&[raised("a-1", AlertClass::NeedsHuman, Some("lint"), 0)]).with(cfg);
    g.when(route_cmd("a-1"), at(0))
        .events(&[AlertEvent::Suppressed {
            alert: "a-1".into(),
            why: SuppressReason::DryRun {
                adapters: vec![aref("chat"), aref("pager")],
            },
        }])
        .effects(&[]);
}

#[test]
fn a_one_shot_alert_is_planned_and_sent_to_its_adapters() {
    let mut g = given(&[raised("a-1", AlertClass::RunCompleted, None, 0)]);
    let then = g.when(route_cmd("a-1"), at(5));
    then.events(&[planned(
        "a-1",
        1,
        NotificationKind::Trigger,
        5,
        &["a-1"],
        &["hook"],
    )])
    .effects(&["send a-1:1 -> hook"]);
    let n = then.sent()[0];
    assert_eq!(n.alert.class, AlertClass::RunCompleted);
    assert_eq!(n.alert.severity, crate::model::AlertSeverity::Info);
    assert_eq!(n.address.as_deref(), Some("127.0.0.1:7070"));
    // Delivered: nothing is left.
    g.when(ok("a-1", 1, "hook"), at(50))
        .events(&[AlertEvent::Delivered(AlertDelivered {
            id: NotificationId::new("a-1", 1),
            adapter: aref("hook"),
            status: 200,
            attempts: 1,
        })])
        .effects(&[]);
    assert!(g.state.alert("a-1").is_none());
    assert_eq!(g.state.pending().count(), 0);
}

#[test]
fn a_condition_opens_arms_its_repeat_and_is_sent() {
    let mut g = given(&[raised("a-1", AlertClass::NeedsHuman, Some("lint"), 0)]);
    let then = g.when(route_cmd("a-1"), at(0));
    then.events(&[
        opened(AlertClass::NeedsHuman, Some("lint"), "a-1"),
        repeat_at(AlertClass::NeedsHuman, Some("lint"), Some(H4)),
        planned(
            "a-1",
            1,
            NotificationKind::Trigger,
            0,
            &["a-1"],
            &["chat", "pager"],
        ),
    ])
    .effects(&[
        "send a-1:1 -> chat",
        "send a-1:1 -> pager",
        &format!("timer +{H4}ms"),
    ]);
    // The task's severity per adapter: needs_human is `error` by default.
    assert!(then
        .sent()
        .iter()
        .all(|n| n.alert.severity == crate::model::AlertSeverity::Error));
}

#[test]
fn the_task_policy_extends_or_replaces_routes() {
    let mut resolved = ResolvedAlerts::from_config(Some(&config()));
    resolved.policies.insert(
        "quiet".into(),
        crate::spec::AlertPolicy {
            replace_routes: true,
            ..Default::default()
        },
    );
    resolved.policies.insert(
        "loud".into(),
        crate::spec::AlertPolicy {
            routes: vec![route(&[AlertClass::Stale], "pager")],
            severity: Some(crate::model::AlertSeverity::Critical),
            ..Default::default()
        },
    );
    let mut g = given(&[
        raised("a-1", AlertClass::Stale, Some("quiet"), 0),
        raised("a-2", AlertClass::Stale, Some("loud"), 0),
    ]);
    g.configs.runs.insert("r-1".into(), resolved);
    g.when(route_cmd("a-1"), at(0))
        .events(&[AlertEvent::Suppressed {
            alert: "a-1".into(),
            why: SuppressReason::NoRoute,
        }]);
    let then = g.when(route_cmd("a-2"), at(0));
    then.effects(&[
        "send a-2:1 -> chat",
        "send a-2:1 -> pager",
        &format!("timer +{H4}ms"),
    ]);
    assert!(then
        .sent()
        .iter()
        .all(|n| n.alert.severity == crate::model::AlertSeverity::Critical));
}

#[test]
fn routing_twice_does_nothing_the_second_time() {
    let mut g = given(&[raised("a-1", AlertClass::RunCompleted, None, 0)]);
    g.when(route_cmd("a-1"), at(0));
    g.when(route_cmd("a-1"), at(0)).no_events();
    g.when(route_cmd("nope"), at(0)).no_events().effects(&[]);
}

// ---------------------------------------------------------------------------
// Conditions: dedupe, repeat, resolve
// ---------------------------------------------------------------------------

#[test]
fn a_condition_still_firing_is_deduplicated() {
    let mut g = given(&stale_firing()).and(&[stale("a-2", 60_000)]);
    g.when(route_cmd("a-2"), at(60_000))
        .events(&[AlertEvent::Suppressed {
            alert: "a-2".into(),
            why: SuppressReason::Deduplicated { of: "a-1".into() },
        }])
        .effects(&[&format!("timer +{H4}ms")]);
    assert!(g.state.alert("a-2").is_none());
    // Another task's stale is another condition.
    let mut g = g.and(&[raised("a-3", AlertClass::Stale, Some("test"), 61_000)]);
    g.when(route_cmd("a-3"), at(61_000)).events(&[
        opened(AlertClass::Stale, Some("test"), "a-3"),
        repeat_at(AlertClass::Stale, Some("test"), Some(61_000 + H4)),
        planned(
            "a-3",
            1,
            NotificationKind::Trigger,
            61_000,
            &["a-3"],
            &["chat"],
        ),
    ]);
}

#[test]
fn a_condition_still_firing_repeats_after_repeat_interval() {
    let mut g = given(&stale_firing());
    // Not yet.
    g.when(Command::Tick, at(H4 - 1))
        .no_events()
        .effects(&[&format!("timer +{H4}ms")]);
    g.when(Command::Tick, at(H4))
        .events(&[
            planned("a-1", 2, NotificationKind::Repeat, H4, &["a-1"], &["chat"]),
            repeat_at(AlertClass::Stale, Some("lint"), Some(2 * H4)),
        ])
        .effects(&["send a-1:2 -> chat", &format!("timer +{}ms", 2 * H4)]);
}

#[test]
fn repeat_interval_zero_never_repeats() {
    let mut cfg = config();
    cfg.repeat_interval = crate::spec::Seconds::new(0.0);
    let mut g = given(&[stale("a-1", 0)]).with(cfg);
    g.when(route_cmd("a-1"), at(0))
        .events(&[
            opened(AlertClass::Stale, Some("lint"), "a-1"),
            planned("a-1", 1, NotificationKind::Trigger, 0, &["a-1"], &["chat"]),
        ])
        .effects(&["send a-1:1 -> chat"]);
    // A deadline journaled before repeats were turned off is consumed once.
    let mut g = given(&stale_firing()).with({
        let mut c = config();
        c.repeat_interval = crate::spec::Seconds::new(0.0);
        c
    });
    g.when(Command::Tick, at(H4)).events(&[
        planned("a-1", 2, NotificationKind::Repeat, H4, &["a-1"], &["chat"]),
        repeat_at(AlertClass::Stale, Some("lint"), None),
    ]);
    g.when(ok("a-1", 2, "chat"), at(H4 + 10));
    g.when(Command::Tick, at(3 * H4)).no_events().effects(&[]);
}

#[test]
fn clearing_a_condition_resolves_it_where_it_was_sent() {
    let mut g = given(&stale_firing());
    g.when(
        Command::Clear {
            key: key(AlertClass::Stale, Some("lint")),
            cause: ClearCause::AttemptSpoke,
        },
        at(90_000),
    )
    .events(&[
        planned(
            "a-1",
            2,
            NotificationKind::Resolve,
            90_000,
            &["a-1"],
            &["chat"],
        ),
        AlertEvent::ConditionCleared {
            key: key(AlertClass::Stale, Some("lint")),
            cause: ClearCause::AttemptSpoke,
        },
    ])
    .effects(&["send a-1:2 -> chat"]);
    assert!(g
        .state
        .condition(&key(AlertClass::Stale, Some("lint")))
        .is_none());
    // No repeat comes after a clear.
    g.when(ok("a-1", 2, "chat"), at(91_000));
    g.when(Command::Tick, at(H4)).no_events().effects(&[]);
    assert!(g.state.alert("a-1").is_none());
    // The same condition raised again opens anew.
    let mut g = g.and(&[stale("a-9", H4 + 1)]);
    g.when(route_cmd("a-9"), at(H4 + 1)).events(&[
        opened(AlertClass::Stale, Some("lint"), "a-9"),
        repeat_at(AlertClass::Stale, Some("lint"), Some(2 * H4 + 1)),
        planned(
            "a-9",
            1,
            NotificationKind::Trigger,
            H4 + 1,
            &["a-9"],
            &["chat"],
        ),
    ]);
}

#[test]
fn clearing_what_does_not_fire_does_nothing() {
    let mut g = given(&[]);
    g.when(
        Command::Clear {
            key: key(AlertClass::Stale, Some("lint")),
            cause: ClearCause::AttemptEnded,
        },
        at(0),
    )
    .no_events()
    .effects(&[]);
}

#[test]
fn a_resolve_waits_for_its_trigger_at_the_same_adapter() {
    // Trigger to pager failed once and waits for its retry.
    let mut g = given(&[
        raised("a-1", AlertClass::NeedsHuman, Some("lint"), 0),
        opened(AlertClass::NeedsHuman, Some("lint"), "a-1"),
        planned(
            "a-1",
            1,
            NotificationKind::Trigger,
            0,
            &["a-1"],
            &["chat", "pager"],
        ),
        AlertEvent::Delivered(AlertDelivered {
            id: NotificationId::new("a-1", 1),
            adapter: aref("chat"),
            status: 200,
            attempts: 1,
        }),
        AlertEvent::Failed(AlertFailed {
            id: NotificationId::new("a-1", 1),
            adapter: aref("pager"),
            status: Some(503),
            attempts: 1,
            error: "HTTP 503".into(),
            retry_at: Some(at(1_000)),
        }),
    ]);
    g.when(
        Command::Clear {
            key: key(AlertClass::NeedsHuman, Some("lint")),
            cause: ClearCause::Verdict,
        },
        at(500),
    )
    .events(&[
        planned(
            "a-1",
            2,
            NotificationKind::Resolve,
            500,
            &["a-1"],
            &["chat", "pager"],
        ),
        AlertEvent::ConditionCleared {
            key: key(AlertClass::NeedsHuman, Some("lint")),
            cause: ClearCause::Verdict,
        },
    ])
    // chat's resolve goes now; pager's waits behind the trigger's retry.
    .effects(&["send a-1:2 -> chat", "timer +1000ms"]);
    g.when(Command::Tick, at(1_000))
        .effects(&["send a-1:1 -> pager"]);
    g.when(ok("a-1", 1, "pager"), at(1_100))
        .effects(&["send a-1:2 -> pager"]);
}

// ---------------------------------------------------------------------------
// Delivery: retry, backoff, Retry-After, final failures
// ---------------------------------------------------------------------------

fn one_shot_sent() -> Given {
    let mut g = given(&[raised("a-1", AlertClass::RunCompleted, None, 0)]);
    g.when(route_cmd("a-1"), at(0));
    g
}

#[test]
fn a_5xx_is_retried_within_a_second_then_with_backoff() {
    let mut g = one_shot_sent().random(0.0);
    let then = g.when(result("a-1", 1, "hook", status(503)), at(100));
    then.events(&[AlertEvent::Failed(AlertFailed {
        id: NotificationId::new("a-1", 1),
        adapter: aref("hook"),
        status: Some(503),
        attempts: 1,
        error: "HTTP 503".into(),
        retry_at: Some(at(600)),
    })])
    .effects(&["timer +600ms"]);
    // The timer: sent again with the same id.
    g.when(Command::Tick, at(600))
        .no_events()
        .effects(&["send a-1:1 -> hook"]);
    let then = g.when(result("a-1", 1, "hook", status(502)), at(700));
    match &then.events[0] {
        AlertEvent::Failed(f) => {
            assert_eq!(f.attempts, 2);
            // 2 s base, jittered to [1 s, 2 s].
            assert_eq!(f.retry_at, Some(at(1_700)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn network_errors_are_retried_until_the_last_attempt() {
    let mut g = one_shot_sent();
    let net = || DeliveryOutcome::Network {
        kind: NetworkErrorKind::Connect,
        error: "connection refused".into(),
    };
    let mut now = 0;
    for attempt in 1..MAX_SEND_ATTEMPTS {
        now += 1;
        let then = g.when(result("a-1", 1, "hook", net()), at(now));
        let AlertEvent::Failed(f) = &then.events[0] else {
            panic!("{:?}", then.events)
        };
        assert_eq!(f.attempts, attempt);
        assert_eq!(f.error, "connect: connection refused");
        let retry = f.retry_at.expect("retried");
        assert!(retry.millis_since(at(now)) <= MAX_RETRY_MS);
        now = retry.millis_since(T0);
        g.when(Command::Tick, at(now))
            .effects(&["send a-1:1 -> hook"]);
    }
    let then = g.when(result("a-1", 1, "hook", net()), at(now + 1));
    let AlertEvent::Failed(f) = &then.events[0] else {
        panic!()
    };
    assert!(f.is_final());
    assert_eq!(f.attempts, MAX_SEND_ATTEMPTS);
    then.effects(&[]);
    assert!(g.state.alert("a-1").is_none());
}

#[test]
fn a_4xx_other_than_429_is_final_with_its_status() {
    let mut g = one_shot_sent();
    g.when(
        result(
            "a-1",
            1,
            "hook",
            DeliveryOutcome::Status {
                code: 400,
                retry_after_ms: None,
                body: "invalid_payload".into(),
            },
        ),
        at(10),
    )
    .events(&[AlertEvent::Failed(AlertFailed {
        id: NotificationId::new("a-1", 1),
        adapter: aref("hook"),
        status: Some(400),
        attempts: 1,
        error: "HTTP 400: invalid_payload".into(),
        retry_at: None,
    })])
    .effects(&[]);
    // A late duplicate result changes nothing.
    g.when(ok("a-1", 1, "hook"), at(20)).no_events();
}

#[test]
fn refused_sends_are_final() {
    let mut g = one_shot_sent();
    let then = g.when(
        result(
            "a-1",
            1,
            "hook",
            DeliveryOutcome::Refused {
                error: "adapter `hook`: environment variable HOOK (url_env) is not set".into(),
            },
        ),
        at(10),
    );
    let AlertEvent::Failed(f) = &then.events[0] else {
        panic!()
    };
    assert!(f.is_final() && f.status.is_none());
    assert!(f.error.contains("HOOK (url_env) is not set"));
}

#[test]
fn a_429_honours_retry_after_and_holds_the_whole_adapter() {
    let mut g = given(&[
        raised("a-1", AlertClass::VerifierFailed, Some("lint"), 0),
        raised("a-2", AlertClass::VerifierFailed, Some("test"), 0),
    ]);
    g.when(route_cmd("a-1"), at(0))
        .effects(&["send a-1:1 -> chat"]);
    g.when(
        result(
            "a-1",
            1,
            "chat",
            DeliveryOutcome::Status {
                code: 429,
                retry_after_ms: Some(30_000),
                body: String::new(),
            },
        ),
        at(100),
    )
    .events(&[AlertEvent::Failed(AlertFailed {
        id: NotificationId::new("a-1", 1),
        adapter: aref("chat"),
        status: Some(429),
        attempts: 1,
        error: "HTTP 429".into(),
        retry_at: Some(at(30_100)),
    })])
    .effects(&["timer +30100ms"]);
    // Another alert to the same adapter waits for the same time.
    g.when(route_cmd("a-2"), at(2_000))
        .events(&[planned(
            "a-2",
            1,
            NotificationKind::Trigger,
            2_000,
            &["a-2"],
            &["chat"],
        )])
        .effects(&["timer +30100ms"]);
    g.when(Command::Tick, at(30_100))
        .effects(&["send a-1:1 -> chat", "timer +31100ms"]);
    // …and the rate limit spaces them a second apart.
    g.when(Command::Tick, at(31_100))
        .effects(&["send a-2:1 -> chat"]);
}

#[test]
fn a_huge_retry_after_is_capped() {
    let mut g = one_shot_sent();
    let then = g.when(
        result(
            "a-1",
            1,
            "hook",
            DeliveryOutcome::Status {
                code: 503,
                retry_after_ms: Some(u64::MAX),
                body: String::new(),
            },
        ),
        at(0),
    );
    let AlertEvent::Failed(f) = &then.events[0] else {
        panic!()
    };
    assert_eq!(f.retry_at, Some(at(MAX_RETRY_AFTER_MS)));
}

#[test]
fn an_adapter_removed_since_fails_for_good() {
    let history = [
        raised("a-1", AlertClass::RunCompleted, None, 0),
        planned("a-1", 1, NotificationKind::Trigger, 0, &["a-1"], &["hook"]),
    ];
    let mut cfg = config();
    cfg.adapters.remove("hook");
    let mut g = given(&history).with(cfg);
    g.when(Command::Start, at(5))
        .events(&[AlertEvent::Failed(AlertFailed {
            id: NotificationId::new("a-1", 1),
            adapter: aref("hook"),
            status: None,
            attempts: 0,
            error: "adapter `hook` is no longer configured".into(),
            retry_at: None,
        })])
        .effects(&[]);
}

// ---------------------------------------------------------------------------
// Rate limit
// ---------------------------------------------------------------------------

#[test]
fn the_rate_limit_spaces_messages_to_one_adapter() {
    let mut g = given(&[
        raised("a-1", AlertClass::VerifierFailed, Some("t1"), 0),
        raised("a-2", AlertClass::VerifierFailed, Some("t2"), 0),
        raised("a-3", AlertClass::VerifierFailed, Some("t3"), 0),
    ]);
    g.when(route_cmd("a-1"), at(0))
        .effects(&["send a-1:1 -> chat"]);
    g.when(route_cmd("a-2"), at(0)).effects(&["timer +1000ms"]);
    g.when(route_cmd("a-3"), at(10)).effects(&["timer +1000ms"]);
    g.when(Command::Tick, at(1_000))
        .effects(&["send a-2:1 -> chat", "timer +2000ms"]);
    g.when(Command::Tick, at(2_000))
        .effects(&["send a-3:1 -> chat"]);
}

#[test]
fn token_bucket_on_a_given_clock() {
    let mut b = TokenBucket::new(1.0, at(0));
    assert_eq!(b.try_take(at(0)), Ok(()));
    assert_eq!(b.try_take(at(0)), Err(at(1_000)));
    assert_eq!(b.try_take(at(400)), Err(at(1_000)));
    assert_eq!(b.try_take(at(1_000)), Ok(()));
    // A burst of max(1, rate).
    let mut b = TokenBucket::new(10.0, at(0));
    for _ in 0..10 {
        assert!(b.try_take(at(0)).is_ok());
    }
    assert_eq!(b.try_take(at(0)), Err(at(100)));
    // Idle time refills only up to the burst.
    assert!(b.try_take(at(60_000)).is_ok());
    let mut taken = 1;
    while b.try_take(at(60_000)).is_ok() {
        taken += 1;
    }
    assert_eq!(taken, 10);
    // Half a message a second.
    let mut b = TokenBucket::new(0.5, at(0));
    assert!(b.try_take(at(0)).is_ok());
    assert_eq!(b.try_take(at(0)), Err(at(2_000)));
    // A clock going back takes nothing.
    let mut b = TokenBucket::new(1.0, at(5_000));
    assert!(b.try_take(at(5_000)).is_ok());
    assert!(b.try_take(at(1_000)).is_err());
}

#[test]
fn backoff_grows_caps_and_jitters_down_to_half() {
    assert_eq!(backoff_ms(1, 1.0), 1_000);
    assert_eq!(backoff_ms(1, 0.0), 500);
    assert_eq!(backoff_ms(2, 1.0), 2_000);
    assert_eq!(backoff_ms(4, 1.0), 8_000);
    assert_eq!(backoff_ms(30, 1.0), MAX_RETRY_MS);
    assert_eq!(backoff_ms(30, 0.0), MAX_RETRY_MS / 2);
    assert_eq!(backoff_ms(1, f64::NAN), 1_000);
    for r in [0.0, 0.3, 0.99] {
        assert!(backoff_ms(1, r) <= 1_000);
    }
}

// ---------------------------------------------------------------------------
// group_wait
// ---------------------------------------------------------------------------

fn grouping() -> AlertConfig {
    let mut c = config();
    c.group_wait = crate::spec::Seconds::new(30.0);
    c
}

#[test]
fn group_wait_sends_one_message_per_run_and_window() {
    let mut g = given(&[
        raised("a-1", AlertClass::NeedsHuman, Some("lint"), 0),
        raised("a-2", AlertClass::VerifierFailed, Some("test"), 5_000),
        raised("a-3", AlertClass::VerifierFailed, Some("doc"), 9_000),
    ])
    .with(grouping());
    // PagerDuty goes at once; chat waits for the window.
    g.when(route_cmd("a-1"), at(0))
        .events(&[
            opened(AlertClass::NeedsHuman, Some("lint"), "a-1"),
            repeat_at(AlertClass::NeedsHuman, Some("lint"), Some(H4)),
            planned("a-1", 1, NotificationKind::Trigger, 0, &["a-1"], &["pager"]),
            AlertEvent::Grouped {
                alert: "a-1".into(),
                group: "a-1".into(),
                flush_at: at(30_000),
                adapters: vec![aref("chat")],
            },
        ])
        .effects(&["send a-1:1 -> pager", "timer +30000ms"]);
    g.when(route_cmd("a-2"), at(5_000))
        .events(&[AlertEvent::Grouped {
            alert: "a-2".into(),
            group: "a-1".into(),
            flush_at: at(30_000),
            adapters: vec![aref("chat")],
        }])
        .effects(&["timer +30000ms"]);
    g.when(route_cmd("a-3"), at(9_000));
    let then = g.when(Command::Tick, at(30_000));
    then.events(&[
        planned(
            "a-1",
            2,
            NotificationKind::Group,
            30_000,
            &["a-1", "a-2", "a-3"],
            &["chat"],
        ),
        AlertEvent::GroupFlushed {
            group: "a-1".into(),
        },
    ])
    .effects(&["send a-1:2 -> chat", &format!("timer +{H4}ms")]);
    let n = then.sent()[0];
    assert_eq!(n.count(), 3);
    assert_eq!(n.more[1].id, "a-3");
    // The condition's resolve goes to both adapters it reached.
    let cond = g
        .state
        .condition(&key(AlertClass::NeedsHuman, Some("lint")))
        .unwrap();
    assert_eq!(
        cond.targets
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["chat", "pager"]
    );
    // A new window opens after the flush.
    let mut g = g.and(&[raised("a-4", AlertClass::VerifierFailed, Some("x"), 31_000)]);
    g.when(route_cmd("a-4"), at(31_000))
        .events(&[AlertEvent::Grouped {
            alert: "a-4".into(),
            group: "a-4".into(),
            flush_at: at(61_000),
            adapters: vec![aref("chat")],
        }]);
}

#[test]
fn a_group_of_one_is_sent_as_its_own_trigger() {
    let mut g =
        given(&[raised("a-1", AlertClass::VerifierFailed, Some("lint"), 0)]).with(grouping());
    g.when(route_cmd("a-1"), at(0)).effects(&["timer +30000ms"]);
    g.when(Command::Tick, at(30_000))
        .events(&[
            planned(
                "a-1",
                1,
                NotificationKind::Trigger,
                30_000,
                &["a-1"],
                &["chat"],
            ),
            AlertEvent::GroupFlushed {
                group: "a-1".into(),
            },
        ])
        .effects(&["send a-1:1 -> chat"]);
}

// ---------------------------------------------------------------------------
// Start: recovery
// ---------------------------------------------------------------------------

#[test]
fn start_redelivers_everything_without_a_final_outcome_with_the_same_ids() {
    let history = [
        // Sent, crashed before its outcome was journaled.
        raised("a-1", AlertClass::RunCompleted, None, 0),
        planned("a-1", 1, NotificationKind::Trigger, 0, &["a-1"], &["hook"]),
        // Failed once, retry already due.
        raised("a-2", AlertClass::NeedsHuman, Some("lint"), 0),
        opened(AlertClass::NeedsHuman, Some("lint"), "a-2"),
        repeat_at(AlertClass::NeedsHuman, Some("lint"), Some(H4)),
        planned(
            "a-2",
            1,
            NotificationKind::Trigger,
            0,
            &["a-2"],
            &["chat", "pager"],
        ),
        AlertEvent::Delivered(AlertDelivered {
            id: NotificationId::new("a-2", 1),
            adapter: aref("chat"),
            status: 200,
            attempts: 1,
        }),
        AlertEvent::Failed(AlertFailed {
            id: NotificationId::new("a-2", 1),
            adapter: aref("pager"),
            status: Some(500),
            attempts: 2,
            error: "HTTP 500".into(),
            retry_at: Some(at(3_000)),
        }),
        // Delivered: nothing to do.
        raised("a-3", AlertClass::VerifierFailed, Some("t"), 0),
        planned("a-3", 1, NotificationKind::Trigger, 0, &["a-3"], &["chat"]),
        AlertEvent::Delivered(AlertDelivered {
            id: NotificationId::new("a-3", 1),
            adapter: aref("chat"),
            status: 200,
            attempts: 1,
        }),
        // Raised, never routed.
        raised("a-4", AlertClass::Stale, Some("lint"), 1_000),
    ];
    let mut g = given(&history);
    assert!(g.state.alert("a-3").is_none());
    let then = g.when(Command::Start, at(10_000));
    then.events(&[
        opened(AlertClass::Stale, Some("lint"), "a-4"),
        repeat_at(AlertClass::Stale, Some("lint"), Some(10_000 + H4)),
        planned(
            "a-4",
            1,
            NotificationKind::Trigger,
            10_000,
            &["a-4"],
            &["chat"],
        ),
    ])
    .effects(&[
        "send a-1:1 -> hook",
        "send a-2:1 -> pager",
        "send a-4:1 -> chat",
        &format!("timer +{H4}ms"),
    ]);
    // The attempts go on from the journaled count.
    let then = g.when(result("a-2", 1, "pager", status(500)), at(10_100));
    let AlertEvent::Failed(f) = &then.events[0] else {
        panic!()
    };
    assert_eq!(f.attempts, 3);
}

#[test]
fn start_acts_on_deadlines_that_passed_while_down() {
    let history = [
        raised("a-5", AlertClass::VerifierFailed, Some("doc"), 0),
        AlertEvent::Grouped {
            alert: "a-5".into(),
            group: "a-5".into(),
            flush_at: at(30_000),
            adapters: vec![aref("chat")],
        },
    ];
    let mut g = given(&stale_firing()).and(&history).with(grouping());
    g.when(Command::Start, at(H4 + 5))
        .events(&[
            planned(
                "a-5",
                1,
                NotificationKind::Trigger,
                H4 + 5,
                &["a-5"],
                &["chat"],
            ),
            AlertEvent::GroupFlushed {
                group: "a-5".into(),
            },
            planned(
                "a-1",
                2,
                NotificationKind::Repeat,
                H4 + 5,
                &["a-1"],
                &["chat"],
            ),
            repeat_at(AlertClass::Stale, Some("lint"), Some(2 * H4 + 5)),
        ])
        // One chat message a second: the second waits a second.
        .effects(&["send a-1:2 -> chat", &format!("timer +{}ms", H4 + 1_005)]);
}

#[test]
fn start_rearms_future_deadlines() {
    let mut g = given(&stale_firing());
    g.when(Command::Start, at(1_000))
        .no_events()
        .effects(&[&format!("timer +{H4}ms")]);
}

// ---------------------------------------------------------------------------
// Fold
// ---------------------------------------------------------------------------

#[test]
fn commit_equals_a_fold_of_the_journaled_events() {
    let mut g = given(&[
        raised("a-1", AlertClass::NeedsHuman, Some("lint"), 0),
        raised("a-2", AlertClass::VerifierFailed, Some("t"), 0),
        raised("a-3", AlertClass::Stale, Some("lint"), 0),
    ])
    .with(grouping());
    let mut journal: Vec<AlertEvent> = g
        .state
        .alerts
        .values()
        .map(|a| AlertEvent::Raised(a.raised.clone()))
        .collect();
    let script = [
        (route_cmd("a-1"), 0),
        (route_cmd("a-2"), 10),
        (route_cmd("a-3"), 20),
        (result("a-1", 1, "pager", status(503)), 30),
        (Command::Tick, 30_000),
        (ok("a-1", 2, "chat"), 30_100),
        (
            Command::Clear {
                key: key(AlertClass::NeedsHuman, Some("lint")),
                cause: ClearCause::Stopped,
            },
            40_000,
        ),
    ];
    for (cmd, ms) in script {
        let then = g.when(cmd, at(ms));
        journal.extend(then.events.iter().cloned());
    }
    assert_eq!(RouterState::from_events(&journal), g.state.durable());
}
