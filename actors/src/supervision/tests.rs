//! The decision function, exhaustively: every strategy × restart type ×
//! exit, intensity counting within the period, escalation, backoff bounds.

use super::*;
use crate::spec::Seconds;

const T0: Timestamp = Timestamp(1_700_000_000_000_000_000);

fn at_ms(ms: u64) -> Timestamp {
    T0.plus_millis(ms)
}

fn retry(max_attempts: u32, retry_on: &[FailureClass]) -> EffectiveRetry {
    EffectiveRetry {
        max_attempts,
        initial_backoff: Seconds::new(1.0).unwrap(),
        max_backoff: Seconds::new(8.0).unwrap(),
        multiplier: 2.0,
        jitter: 0.0,
        retry_on: retry_on.to_vec(),
    }
}

fn policy(strategy: Strategy, max_restarts: u32) -> SupervisorPolicy {
    SupervisorPolicy {
        strategy,
        intensity: Intensity {
            max_restarts,
            within_ms: 60_000,
        },
        shutdown_grace_ms: 5_000,
    }
}

const ALL_EXITS: [ChildExit; 9] = [
    ChildExit::Normal,
    ChildExit::Failed(FailureClass::Transient),
    ChildExit::Failed(FailureClass::Timeout),
    ChildExit::Failed(FailureClass::Task),
    ChildExit::Failed(FailureClass::Verifier),
    ChildExit::Failed(FailureClass::NeedsHuman),
    ChildExit::InterruptedByOrca,
    ChildExit::StoppedForSibling,
    ChildExit::Cancelled,
];

/// The expected decision kind for every strategy × restart type × exit,
/// with the default retry_on (transient, timeout) and attempts remaining.
#[test]
fn decision_table() {
    let default_on = EffectiveRetry::default_retry_on();
    for strategy in Strategy::ALL {
        for restart in RestartType::ALL {
            for exit in ALL_EXITS {
                let child = ChildPolicy {
                    restart: *restart,
                    retry: retry(3, &default_on),
                };
                let d = decide(
                    &policy(*strategy, 20),
                    &RestartWindow::default(),
                    T0,
                    &child,
                    1,
                    exit,
                    0.0,
                );
                let siblings = Siblings::from(*strategy);
                let expected = match (restart, exit) {
                    (_, ChildExit::InterruptedByOrca | ChildExit::StoppedForSibling) => {
                        Decision::Restart {
                            delay_ms: 0,
                            counts_attempt: false,
                            counts_intensity: false,
                            siblings: Siblings::None,
                        }
                    }
                    (_, ChildExit::Cancelled) => Decision::Finish { alert: None },
                    (_, ChildExit::Failed(FailureClass::NeedsHuman)) => Decision::Finish {
                        alert: Some(AlertClass::NeedsHuman),
                    },
                    (RestartType::Permanent, ChildExit::Normal) => Decision::Restart {
                        delay_ms: 0,
                        counts_attempt: false,
                        counts_intensity: true,
                        siblings,
                    },
                    (_, ChildExit::Normal) => Decision::Finish { alert: None },
                    (RestartType::Temporary, _) => Decision::Finish { alert: None },
                    (RestartType::Permanent, ChildExit::Failed(_)) => Decision::Restart {
                        delay_ms: 1_000,
                        counts_attempt: true,
                        counts_intensity: true,
                        siblings,
                    },
                    (
                        RestartType::Transient,
                        ChildExit::Failed(FailureClass::Transient | FailureClass::Timeout),
                    ) => Decision::Restart {
                        delay_ms: 1_000,
                        counts_attempt: true,
                        counts_intensity: true,
                        siblings,
                    },
                    (RestartType::Transient, ChildExit::Failed(_)) => {
                        Decision::Finish { alert: None }
                    }
                };
                assert_eq!(d, expected, "{strategy} × {restart} × {exit:?}");
            }
        }
    }
}

#[test]
fn retry_on_task_and_verifier_when_asked() {
    for class in [FailureClass::Task, FailureClass::Verifier] {
        let child = ChildPolicy {
            restart: RestartType::Transient,
            retry: retry(3, &[class]),
        };
        let d = decide(
            &policy(Strategy::OneForOne, 20),
            &RestartWindow::default(),
            T0,
            &child,
            1,
            ChildExit::Failed(class),
            0.0,
        );
        assert!(matches!(d, Decision::Restart { .. }), "{class}: {d:?}");
    }
}

#[test]
fn exhausted_attempts_finish_with_restart_exhausted() {
    let child = ChildPolicy {
        restart: RestartType::Transient,
        retry: retry(3, &[FailureClass::Transient]),
    };
    let p = policy(Strategy::OneForOne, 20);
    let w = RestartWindow::default();
    let fail = ChildExit::Failed(FailureClass::Transient);
    assert!(matches!(
        decide(&p, &w, T0, &child, 2, fail, 0.0),
        Decision::Restart { .. }
    ));
    assert_eq!(
        decide(&p, &w, T0, &child, 3, fail, 0.0),
        Decision::Finish {
            alert: Some(AlertClass::RestartExhausted)
        }
    );
    // max_attempts = 1: the first failure is final.
    let once = ChildPolicy {
        restart: RestartType::Transient,
        retry: retry(1, &[FailureClass::Transient]),
    };
    assert_eq!(
        decide(&p, &w, T0, &once, 1, fail, 0.0),
        Decision::Finish {
            alert: Some(AlertClass::RestartExhausted)
        }
    );
}

#[test]
fn backoff_grows_and_caps() {
    let child = ChildPolicy {
        restart: RestartType::Transient,
        retry: retry(10, &[FailureClass::Task]),
    };
    let p = policy(Strategy::OneForOne, 100);
    let delays: Vec<u64> = (1..=6)
        .map(|used| {
            match decide(
                &p,
                &RestartWindow::default(),
                T0,
                &child,
                used,
                ChildExit::Failed(FailureClass::Task),
                0.0,
            ) {
                Decision::Restart { delay_ms, .. } => delay_ms,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
}

#[test]
fn jitter_stays_within_bounds() {
    let b = Backoff {
        initial_ms: 1_000,
        max_ms: 60_000,
        multiplier: 3.0,
        jitter: 0.25,
    };
    for failures in 1..6 {
        let (lo, hi) = b.bounds_ms(failures);
        assert_eq!(lo, (hi as f64 * 0.75).round() as u64);
        for i in 0..100 {
            let d = b.delay_ms(failures, i as f64 / 100.0);
            assert!(lo <= d && d <= hi, "{failures}: {d} not in {lo}..={hi}");
        }
    }
    assert_eq!(b.delay_ms(1, 0.0), 1_000);
    assert_eq!(b.delay_ms(100, 0.0), 60_000);
}

#[test]
fn intensity_counts_only_within_the_period() {
    let mut w = RestartWindow::default();
    let i = Intensity {
        max_restarts: 3,
        within_ms: 5_000,
    };
    w.record(at_ms(0), i.within_ms);
    w.record(at_ms(1_000), i.within_ms);
    w.record(at_ms(2_000), i.within_ms);
    assert_eq!(w.count_within(at_ms(2_500), i.within_ms), 3);
    assert!(w.would_exceed(at_ms(2_500), i));
    // At 5.5 s the first restart has left the period.
    assert_eq!(w.count_within(at_ms(5_500), i.within_ms), 2);
    assert!(!w.would_exceed(at_ms(5_500), i));
    // Recording forgets what left the period.
    w.record(at_ms(9_000), i.within_ms);
    assert_eq!(w.len(), 1);
}

#[test]
fn past_intensity_escalates() {
    let child = ChildPolicy {
        restart: RestartType::Transient,
        retry: retry(100, &[FailureClass::Transient]),
    };
    let p = policy(Strategy::OneForOne, 2);
    let mut w = RestartWindow::default();
    let fail = ChildExit::Failed(FailureClass::Transient);
    for n in 0..2u64 {
        let d = decide(&p, &w, at_ms(n * 100), &child, 1, fail, 0.0);
        assert!(matches!(d, Decision::Restart { .. }), "{n}: {d:?}");
        w.record(at_ms(n * 100), p.intensity.within_ms);
    }
    assert_eq!(
        decide(&p, &w, at_ms(300), &child, 1, fail, 0.0),
        Decision::Escalate {
            restarts: 3,
            within_ms: 60_000
        }
    );
    // Transparent restarts never escalate, however many.
    assert!(matches!(
        decide(
            &p,
            &w,
            at_ms(300),
            &child,
            1,
            ChildExit::InterruptedByOrca,
            0.0
        ),
        Decision::Restart {
            counts_intensity: false,
            ..
        }
    ));
    // max_restarts = 0: the first restart escalates.
    let zero = policy(Strategy::OneForAll, 0);
    assert!(matches!(
        decide(&zero, &RestartWindow::default(), T0, &child, 1, fail, 0.0),
        Decision::Escalate { restarts: 1, .. }
    ));
}

#[test]
fn internal_policy_restarts_any_failure() {
    let p = SupervisorPolicy::internal();
    assert_eq!(p.intensity, Intensity::INTERNAL);
    let child = ChildPolicy::internal();
    for class in [
        FailureClass::Transient,
        FailureClass::Task,
        FailureClass::Verifier,
    ] {
        assert!(matches!(
            decide(
                &p,
                &RestartWindow::default(),
                T0,
                &child,
                7,
                ChildExit::Failed(class),
                0.5
            ),
            Decision::Restart { delay_ms: 0, .. }
        ));
    }
}
