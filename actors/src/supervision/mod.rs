//! Supervision as data: restart types, strategies, intensity, backoff and
//! escalation, decided by a pure function.
//!
//! ractor has no restart strategies of its own (its default stops a
//! supervisor when any child ends). orca's supervisors — the run supervisor
//! for attempts, `runs` for run supervisors — receive a child's end, classify
//! it, call [`decide`], journal the decision (`ChildFailed`,
//! `RestartScheduled`, `IntensityExceeded`, `Escalated`, …) and only then act.
//!
//! The rules (Erlang/OTP's, with DESIGN.md's retry table):
//! - orca's own interruptions (crash, shutdown) and sibling restarts are
//!   transparent: the child is started again at once, using up neither an
//!   attempt nor intensity;
//! - an operator's cancel finishes the child;
//! - `temporary` children never restart; `transient` ones restart after a
//!   failure whose class is in `retry_on`, while attempts remain;
//!   `permanent` ones restart after any end but `needs_human`, bounded only
//!   by intensity;
//! - `needs_human` is never retried;
//! - a restart that would make more than `max_restarts` within the period
//!   escalates instead: the supervisor stops its children and tells its
//!   parent.

use std::collections::VecDeque;

pub mod table;

pub use table::{
    escalation_events, Action, ChildSpec, ChildTable, Escalation, ExitPlan, Outcome, Starter,
};

use crate::model::{AlertClass, FailureClass, RestartType, Strategy, Timestamp};
use crate::spec::EffectiveRetry;

/// How many restarts a supervisor tolerates within a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intensity {
    pub max_restarts: u32,
    pub within_ms: u64,
}

impl Intensity {
    /// orca's internal supervisors (root, `runs`, `agents`): 3 in 5 s.
    pub const INTERNAL: Intensity = Intensity {
        max_restarts: 3,
        within_ms: 5_000,
    };
}

/// A supervisor's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupervisorPolicy {
    pub strategy: Strategy,
    pub intensity: Intensity,
    /// How long a stopped child gets between SIGTERM and SIGKILL.
    pub shutdown_grace_ms: u64,
}

impl SupervisorPolicy {
    /// Default grace before SIGKILL.
    pub const DEFAULT_GRACE_MS: u64 = 5_000;

    /// orca's internal supervisors: one_for_one, 3 in 5 s.
    pub fn internal() -> Self {
        Self {
            strategy: Strategy::OneForOne,
            intensity: Intensity::INTERNAL,
            shutdown_grace_ms: Self::DEFAULT_GRACE_MS,
        }
    }

    /// A run's policy from its spec (default one_for_one, 20 in 60 s).
    pub fn for_run(spec: &crate::spec::RunSpec, grace_ms: u64) -> Self {
        let (max_restarts, within) = spec.effective_intensity();
        Self {
            strategy: spec.effective_strategy(),
            intensity: Intensity {
                max_restarts,
                within_ms: within.as_millis(),
            },
            shutdown_grace_ms: grace_ms,
        }
    }
}

/// The restart times a supervisor remembers, to count them within its
/// period.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestartWindow {
    times: VecDeque<Timestamp>,
}

impl RestartWindow {
    /// Restarts within `within_ms` before `now`.
    pub fn count_within(&self, now: Timestamp, within_ms: u64) -> u32 {
        let since = Timestamp(
            now.0
                .saturating_sub(within_ms.saturating_mul(1_000_000) as i64),
        );
        self.times.iter().filter(|t| **t > since).count() as u32
    }

    /// Records a restart at `at`, forgetting those older than `within_ms`.
    pub fn record(&mut self, at: Timestamp, within_ms: u64) {
        let since = Timestamp(at.0.saturating_sub(within_ms.saturating_mul(1_000_000) as i64));
        while self.times.front().is_some_and(|t| *t <= since) {
            self.times.pop_front();
        }
        self.times.push_back(at);
    }

    /// Whether one more restart at `now` exceeds `intensity`.
    pub fn would_exceed(&self, now: Timestamp, intensity: Intensity) -> bool {
        self.count_within(now, intensity.within_ms) + 1 > intensity.max_restarts
    }

    /// All restarts remembered (for the tree's restart count).
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

/// Exponential backoff with jitter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub initial_ms: u64,
    pub max_ms: u64,
    pub multiplier: f64,
    /// Fraction in [0, 1]: the delay is multiplied by a factor in
    /// `[1 - jitter, 1]`.
    pub jitter: f64,
}

impl Backoff {
    pub fn from_retry(r: &EffectiveRetry) -> Self {
        Self {
            initial_ms: r.initial_backoff.as_millis(),
            max_ms: r.max_backoff.as_millis(),
            multiplier: r.multiplier.max(1.0),
            jitter: r.jitter.clamp(0.0, 1.0),
        }
    }

    /// The delay before the next attempt after `failures` counted failures
    /// (1 → the initial delay). `unit_random` in `[0, 1)` draws the jitter.
    pub fn delay_ms(&self, failures: u32, unit_random: f64) -> u64 {
        let exp = failures.saturating_sub(1).min(1_000) as i32;
        let raw = self.initial_ms as f64 * self.multiplier.powi(exp);
        let capped = raw.min(self.max_ms as f64).max(0.0);
        let factor = 1.0 - self.jitter * unit_random.clamp(0.0, 1.0);
        (capped * factor).round() as u64
    }

    /// The bounds `delay_ms` stays within for `failures`.
    pub fn bounds_ms(&self, failures: u32) -> (u64, u64) {
        (self.delay_ms(failures, 1.0), self.delay_ms(failures, 0.0))
    }
}

/// How a supervised child ended, as its supervisor sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildExit {
    /// Ended normally (for an attempt: its receipt passed, or awaits a
    /// verdict).
    Normal,
    /// Ended abnormally, classified.
    Failed(FailureClass),
    /// Interrupted by orca's own crash or shutdown.
    InterruptedByOrca,
    /// Stopped by the supervisor's strategy because a sibling restarted.
    StoppedForSibling,
    /// Cancelled by an operator (or its run was stopped).
    Cancelled,
}

/// What a supervisor knows about one child when deciding.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildPolicy {
    pub restart: RestartType,
    pub retry: EffectiveRetry,
}

impl ChildPolicy {
    /// orca's internal children (a run supervisor under `runs`): restarted
    /// after any failure, without backoff, bounded by intensity.
    pub fn internal() -> Self {
        Self {
            restart: RestartType::Transient,
            retry: EffectiveRetry {
                max_attempts: u32::MAX,
                initial_backoff: crate::spec::Seconds::default(),
                max_backoff: crate::spec::Seconds::default(),
                multiplier: 1.0,
                jitter: 0.0,
                retry_on: FailureClass::ALL.to_vec(),
            },
        }
    }
}

/// Which siblings a restart takes along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Siblings {
    /// one_for_one: none.
    None,
    /// one_for_all: every other running child.
    All,
    /// rest_for_one: the running children after this one (in spec order).
    Later,
}

impl From<Strategy> for Siblings {
    fn from(s: Strategy) -> Self {
        match s {
            Strategy::OneForOne => Siblings::None,
            Strategy::OneForAll => Siblings::All,
            Strategy::RestForOne => Siblings::Later,
        }
    }
}

/// A supervisor's decision about a child that ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// The child is done for good. `alert` is raised with it
    /// (`restart_exhausted` when retries ran out, `needs_human` for a
    /// needs_human end).
    Finish { alert: Option<AlertClass> },
    /// Start the child again after `delay_ms`.
    Restart {
        delay_ms: u64,
        /// Whether the next attempt uses up one of `max_attempts`.
        counts_attempt: bool,
        /// Whether this restart counts toward the supervisor's intensity.
        counts_intensity: bool,
        /// Siblings to stop and restart along with it.
        siblings: Siblings,
    },
    /// Past the intensity: stop every child and escalate to the parent
    /// (which raises `needs_human`).
    Escalate { restarts: u32, within_ms: u64 },
}

/// Decides what a supervisor does about a child that ended.
///
/// `counted_attempts` is how many of the child's attempts used up one of
/// `max_attempts` so far (including the one that just ended);
/// `unit_random` in `[0, 1)` draws the backoff jitter.
pub fn decide(
    policy: &SupervisorPolicy,
    window: &RestartWindow,
    now: Timestamp,
    child: &ChildPolicy,
    counted_attempts: u32,
    exit: ChildExit,
    unit_random: f64,
) -> Decision {
    let transparent = Decision::Restart {
        delay_ms: 0,
        counts_attempt: false,
        counts_intensity: false,
        siblings: Siblings::None,
    };
    let restart = |delay_ms: u64, counts_attempt: bool| {
        if window.would_exceed(now, policy.intensity) {
            Decision::Escalate {
                restarts: window.count_within(now, policy.intensity.within_ms) + 1,
                within_ms: policy.intensity.within_ms,
            }
        } else {
            Decision::Restart {
                delay_ms,
                counts_attempt,
                counts_intensity: true,
                siblings: policy.strategy.into(),
            }
        }
    };
    let backoff = Backoff::from_retry(&child.retry);
    match exit {
        ChildExit::InterruptedByOrca | ChildExit::StoppedForSibling => transparent,
        ChildExit::Cancelled => Decision::Finish { alert: None },
        ChildExit::Normal => match child.restart {
            RestartType::Permanent => restart(0, false),
            RestartType::Transient | RestartType::Temporary => Decision::Finish { alert: None },
        },
        ChildExit::Failed(FailureClass::NeedsHuman) => Decision::Finish {
            alert: Some(AlertClass::NeedsHuman),
        },
        ChildExit::Failed(class) => match child.restart {
            RestartType::Temporary => Decision::Finish { alert: None },
            RestartType::Permanent => {
                restart(backoff.delay_ms(counted_attempts.max(1), unit_random), true)
            }
            RestartType::Transient => {
                if !child.retry.retry_on.contains(&class) {
                    Decision::Finish { alert: None }
                } else if counted_attempts >= child.retry.max_attempts {
                    Decision::Finish {
                        alert: Some(AlertClass::RestartExhausted),
                    }
                } else {
                    restart(backoff.delay_ms(counted_attempts.max(1), unit_random), true)
                }
            }
        },
    }
}

#[cfg(test)]
mod tests;
