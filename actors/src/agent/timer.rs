//! Timer rules as pure functions of a given clock: the next tick of an
//! `every` or `cron` timer, and what to do at start for ticks that fell
//! while orca was down (`missed = skip | run_once`). No actor, no clock of
//! its own: the agent passes `now`.
//!
//! `every` ticks are anchored at the timer's first arming (its `anchor`),
//! so a restart does not shift the schedule; `cron` ticks are the
//! expression's, in UTC. A clock far ahead costs nothing: the next tick is
//! computed, never iterated to.

use std::str::FromStr;

use super::spec::{Interval, Missed, Subscription};
use crate::model::Timestamp;

/// A parsed timer.
#[derive(Clone, Debug)]
pub enum TimerRule {
    Every(Interval),
    Cron(Box<croner::Cron>),
}

/// Parses a 5-field cron expression (minute hour day-of-month month
/// day-of-week), UTC.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "a cron expression has 5 fields (minute hour day-of-month month day-of-week); {expr:?} has {fields}"
        ));
    }
    let cron = croner::Cron::from_str(expr)
        .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))?;
    if never_fires(&cron) {
        return Err(format!(
            "cron expression {expr:?} never fires: no date and time matches all its fields"
        ));
    }
    Ok(cron)
}

/// Calendar years repeat every 28 years (weekdays and leap days; 2100's
/// missing leap day aside): an expression that fires at all fires within
/// this many years of any date.
const CRON_CYCLE_YEARS: u16 = 28;

/// Whether no date and time can ever match `cron` (`0 0 31 2 *`, an empty
/// field such as `9 , 5 * 1-6`, an empty day-of-week set in AND mode).
/// Found by the `cron` fuzz target: croner searches such an expression up
/// to its year 5000, stepping hour by hour through an empty hour set (far
/// beyond the fuzzer's 10 s), and an agent would do it at every re-arm.
/// So: empty fields are refused outright, and the rest is searched over
/// one calendar cycle only (its other years switched off in a copy), which
/// bounds the work; an expression accepted here finds its next tick within
/// 28 years at any later search.
fn never_fires(cron: &croner::Cron) -> bool {
    let empty = |c: &croner::CronComponent| c.values().is_empty() && !c.has_modifiers();
    let p = &cron.pattern;
    if empty(&p.minutes) || empty(&p.hours) || empty(&p.months) {
        return true;
    }
    if empty(&p.days) && empty(&p.days_of_week) {
        return true;
    }
    const FROM: u16 = 2000;
    let mut probe = cron.clone();
    for year in FROM + CRON_CYCLE_YEARS + 1..=croner::YEAR_UPPER_LIMIT as u16 {
        let _ = probe.pattern.years.unset_bit(year, 1);
    }
    let Some(reference) = chrono::DateTime::<chrono::Utc>::from_timestamp(946_684_800, 0) else {
        return false;
    };
    probe.find_next_occurrence(&reference, false).is_err()
}

impl TimerRule {
    /// The rule of a timer subscription (`None`: not a valid timer; the
    /// spec's validation says why).
    pub fn of(s: &Subscription) -> Option<TimerRule> {
        match (&s.every, &s.cron) {
            (Some(e), None) if e.millis() > 0 => Some(TimerRule::Every(*e)),
            (None, Some(c)) => parse_cron(c).ok().map(|c| TimerRule::Cron(Box::new(c))),
            _ => None,
        }
    }

    /// The first tick strictly after `after` (`anchor`: when an `every`
    /// timer was first armed).
    pub fn next_after(&self, anchor: Timestamp, after: Timestamp) -> Option<Timestamp> {
        match self {
            TimerRule::Every(every) => {
                let step = every.millis().max(1);
                if after < anchor {
                    return Some(anchor);
                }
                let elapsed = after.millis_since(anchor);
                let k = elapsed / step + 1;
                Some(anchor.plus_millis(k.saturating_mul(step)))
            }
            TimerRule::Cron(cron) => {
                let dt = after.to_datetime();
                cron.find_next_occurrence(&dt, false)
                    .ok()
                    .map(Timestamp::from_datetime)
            }
        }
    }

    /// The last tick at or before `at`, after `since` (for `run_once`: the
    /// one tick that stands for all that were missed).
    pub fn last_at_or_before(
        &self,
        anchor: Timestamp,
        since: Timestamp,
        at: Timestamp,
    ) -> Option<Timestamp> {
        match self {
            TimerRule::Every(every) => {
                let step = every.millis().max(1);
                if at < anchor {
                    return None;
                }
                let k = at.millis_since(anchor) / step;
                let t = anchor.plus_millis(k.saturating_mul(step));
                (t > since || t == anchor && since < anchor).then_some(t)
            }
            TimerRule::Cron(_) => {
                // The first tick after `since`; if it is not after `at`,
                // step forward (bounded) to the last one that is not.
                let mut t = self.next_after(anchor, since)?;
                if t > at {
                    return None;
                }
                for _ in 0..10_000 {
                    match self.next_after(anchor, t) {
                        Some(n) if n <= at => t = n,
                        _ => return Some(t),
                    }
                }
                Some(t)
            }
        }
    }
}

/// What a timer does when orca starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rearm {
    /// A tick that fell while orca was down, to wake on now (`run_once`).
    pub catch_up: Option<Timestamp>,
    /// Ticks that fell while orca was down and are skipped.
    pub skipped: bool,
    /// The next tick to arm.
    pub next: Option<Timestamp>,
}

/// A timer at start. `armed`: the tick it was armed for before (journaled),
/// if any; `fired`: whether that tick's wake was journaled.
pub fn rearm(
    rule: &TimerRule,
    anchor: Timestamp,
    armed: Option<Timestamp>,
    fired: bool,
    missed: Missed,
    now: Timestamp,
) -> Rearm {
    let next = rule.next_after(anchor, now);
    let Some(due) = armed else {
        return Rearm {
            catch_up: None,
            skipped: false,
            next,
        };
    };
    if due > now {
        // Not due yet: the same tick stays armed.
        return Rearm {
            catch_up: None,
            skipped: false,
            next: Some(due),
        };
    }
    // At least one tick fell while orca was down: the armed one (unless
    // its wake was journaled) and any after it.
    let since = if fired { due } else { due.minus_millis(1) };
    let missed_tick = rule.last_at_or_before(anchor, since, now);
    match (missed, missed_tick) {
        (_, None) => Rearm {
            catch_up: None,
            skipped: false,
            next,
        },
        (Missed::Skip, Some(_)) => Rearm {
            catch_up: None,
            skipped: true,
            next,
        },
        (Missed::RunOnce, Some(t)) => Rearm {
            catch_up: Some(t),
            skipped: false,
            next,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_800_000_000_000_000_000);

    fn every(s: &str) -> TimerRule {
        TimerRule::Every(Interval::parse(s).unwrap())
    }

    fn at(ms: u64) -> Timestamp {
        T0.plus_millis(ms)
    }

    #[test]
    fn every_ticks_from_its_anchor_whatever_the_restarts() {
        let r = every("10s");
        assert_eq!(r.next_after(T0, T0), Some(at(10_000)));
        assert_eq!(r.next_after(T0, at(9_999)), Some(at(10_000)));
        assert_eq!(r.next_after(T0, at(10_000)), Some(at(20_000)));
        // A clock far ahead: computed, not iterated.
        let far = at(1_000 * 86_400_000);
        assert_eq!(r.next_after(T0, far), Some(far.plus_millis(10_000)));
    }

    #[test]
    fn cron_ticks_in_utc_and_refuses_other_shapes() {
        // 2027-01-15T06:30:00Z → the next 07:00 is the same day.
        let t = Timestamp::from_datetime(
            chrono::DateTime::parse_from_rfc3339("2027-01-15T06:30:00Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
        );
        let r = TimerRule::Cron(Box::new(parse_cron("0 7 * * *").unwrap()));
        // Expressions that can never fire are refused when parsed (found
        // by the `cron` fuzz target: each search for one scanned to year
        // 5000), leap days are not.
        for never in ["0 0 5 2 +", "0 0 31 2 *", "0 0 30 2 *", "9 , 5 * 1-6"] {
            let e = parse_cron(never).unwrap_err();
            assert!(e.contains("never fires"), "{never}: {e}");
        }
        assert!(parse_cron("0 0 29 2 *").is_ok());
        // A leap day on a given weekday, in AND mode: once in 28 years.
        assert!(parse_cron("0 0 29 2 +1").is_ok());
        let next = r.next_after(T0, t).unwrap();
        assert_eq!(next.rfc3339(), "2027-01-15T07:00:00.000Z");
        assert_eq!(
            r.next_after(T0, next).unwrap().rfc3339(),
            "2027-01-16T07:00:00.000Z"
        );
        assert!(parse_cron("0 7 * *").unwrap_err().contains("5 fields"));
        assert!(parse_cron("0 7 * * * *").is_err());
        assert!(parse_cron("61 7 * * *").is_err());
    }

    #[test]
    fn start_rearms_skips_or_runs_once() {
        let r = every("10s");
        // Armed for 20s; orca restarts at 15s: the same tick stays armed.
        let a = rearm(&r, T0, Some(at(20_000)), false, Missed::Skip, at(15_000));
        assert_eq!(
            a,
            Rearm {
                catch_up: None,
                skipped: false,
                next: Some(at(20_000))
            }
        );
        // Restarted at 55s: ticks 20..50 fell while down.
        let a = rearm(&r, T0, Some(at(20_000)), false, Missed::Skip, at(55_000));
        assert_eq!(
            a,
            Rearm {
                catch_up: None,
                skipped: true,
                next: Some(at(60_000))
            }
        );
        let a = rearm(&r, T0, Some(at(20_000)), false, Missed::RunOnce, at(55_000));
        assert_eq!(
            a.catch_up,
            Some(at(50_000)),
            "one wake for all, the latest tick's id"
        );
        assert_eq!(a.next, Some(at(60_000)));
        // The armed tick fired (its wake journaled) and nothing else fell:
        // nothing to catch up.
        let a = rearm(&r, T0, Some(at(20_000)), true, Missed::RunOnce, at(25_000));
        assert_eq!(
            a,
            Rearm {
                catch_up: None,
                skipped: false,
                next: Some(at(30_000))
            }
        );
        // Killed between the deadline and the wake: run_once wakes for
        // that tick (same id: a second crash cannot make it twice).
        let a = rearm(&r, T0, Some(at(20_000)), false, Missed::RunOnce, at(20_500));
        assert_eq!(a.catch_up, Some(at(20_000)));
        // Never armed: just the next tick.
        let a = rearm(&r, T0, None, false, Missed::RunOnce, at(5_000));
        assert_eq!(
            a,
            Rearm {
                catch_up: None,
                skipped: false,
                next: Some(at(10_000))
            }
        );
    }

    #[test]
    fn intervals_parse_with_units() {
        assert_eq!(Interval::parse("1s"), Some(Interval(1_000)));
        assert_eq!(Interval::parse("90"), Some(Interval(90_000)));
        assert_eq!(Interval::parse("5m"), Some(Interval(300_000)));
        assert_eq!(Interval::parse("1.5h"), Some(Interval(5_400_000)));
        assert_eq!(Interval::parse("250ms"), Some(Interval(250)));
        assert_eq!(Interval::parse("2d").unwrap().to_string(), "2d");
        assert_eq!(Interval::parse("5 fortnights"), None);
        assert_eq!(Interval::parse("-1s"), None);
    }
}
