//! The end of an attempt, in DESIGN.md's order, as a pure function.
//!
//! The process exits (`AttemptExited`, not terminal). Then: a stop orca or
//! an operator asked for decides (timeout, stale, budget, cancel, …); else a
//! `needs_human` metadata line ends it as needs_human, whatever the exit
//! code (the "never retried" wins over DESIGN.md's order, which
//! checked the exit code first: a worker that asks for a human and then
//! exits non-zero must not be retried into asking again); else a non-zero
//! exit fails (source task) unless an `exit_code` scorer expects that code
//! — a preset's exit codes mean what its CLI documents (CodeWhale 75
//! transient, Gemini 53 its turn limit: budget), an agent CLI that stopped
//! at its own turn or cost limit fails with `budget_exceeded`, and an
//! argv-template runtime exiting 75 (EX_TEMPFAIL) is transient; a final
//! stream-json `error` fails; a missing expected artifact fails (task);
//! otherwise the scorer decides.

use crate::host::ExitInfo;
use crate::journal::event::{BudgetLimit, InterruptCause};
use crate::model::{AlertClass, AttemptResult, FailureClass, FailureSource, Score};
use crate::runtime::{ExitClass, Preset};
use crate::stream_json::RuntimeLimit;

/// EX_TEMPFAIL: an agent runtime's retryable infrastructure failure.
pub const EX_TEMPFAIL: i32 = 75;

/// Why orca stopped an attempt before it ended on its own: a limit it
/// reached, or an interruption (journaled as `AttemptInterrupted` with the
/// same [`InterruptCause`], so the cause is one thing from the stop to the
/// journal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopCause {
    Timeout {
        after_ms: u64,
    },
    Stale {
        silent_ms: u64,
    },
    Budget(BudgetLimit),
    /// An operator, a sibling's restart, the run's stop, or orca itself.
    Interrupted(InterruptCause),
}

impl StopCause {
    /// The interruption, if the stop was one.
    pub fn interruption(&self) -> Option<&InterruptCause> {
        match self {
            StopCause::Interrupted(c) => Some(c),
            StopCause::Timeout { .. } | StopCause::Stale { .. } | StopCause::Budget(_) => None,
        }
    }
}

/// The judged end of an attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub result: AttemptResult,
    pub source: Option<FailureSource>,
    /// The failure class (None for pass and for ends that are not failures).
    pub class: Option<FailureClass>,
    pub reason: String,
    /// Alert classes raised with the attempt's end.
    pub alerts: Vec<AlertClass>,
    /// A score given by the scorer.
    pub score: Option<Score>,
}

impl Judgement {
    fn new(
        result: AttemptResult,
        source: Option<FailureSource>,
        class: Option<FailureClass>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            result,
            source,
            class,
            reason: reason.into(),
            alerts: Vec::new(),
            score: None,
        }
    }

    pub fn pass(reason: impl Into<String>) -> Self {
        Self::new(AttemptResult::Pass, None, None, reason)
    }

    pub fn task_fail(reason: impl Into<String>) -> Self {
        Self::new(
            AttemptResult::Fail,
            Some(FailureSource::Task),
            Some(FailureClass::Task),
            reason,
        )
    }

    pub fn transport(reason: impl Into<String>) -> Self {
        Self::new(
            AttemptResult::Fail,
            Some(FailureSource::Transport),
            Some(FailureClass::Transient),
            reason,
        )
    }

    pub fn verifier_fail(reason: impl Into<String>) -> Self {
        Self::new(
            AttemptResult::Fail,
            Some(FailureSource::Verifier),
            Some(FailureClass::Verifier),
            reason,
        )
    }

    /// A scorer error or timeout: fail/verifier, alert `verifier_failed`.
    pub fn verifier_error(reason: impl Into<String>) -> Self {
        let mut j = Self::verifier_fail(reason);
        j.alerts.push(AlertClass::VerifierFailed);
        j
    }

    /// Awaiting a manual verdict.
    pub fn partial(reason: impl Into<String>) -> Self {
        Self::new(AttemptResult::Partial, None, None, reason)
    }

    /// Interrupted (skip): by an operator, a sibling, a stopped run, or orca.
    pub fn skipped(source: Option<FailureSource>, reason: impl Into<String>) -> Self {
        Self::new(AttemptResult::Skip, source, None, reason)
    }
}

/// What is known when the process has ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence<'a> {
    pub exit: ExitInfo,
    pub stop: Option<&'a StopCause>,
    /// The task ran the agent runtime (not a plain `command`).
    pub runtime: bool,
    /// The exit code an `exit_code` scorer expects, if the task has one.
    pub expected_code: Option<i32>,
    /// A final stream-json error.
    pub stream_error: Option<&'a str>,
    /// A needs_human metadata reason.
    pub needs_human: Option<&'a str>,
    /// Expected artifact kinds that were not found.
    pub missing_artifacts: &'a [String],
    /// The preset that ran, if one did: its exit codes mean what its CLI
    /// documents ([`Preset::classify_exit`]), instead of the generic rule.
    pub preset: Option<Preset>,
    /// A limit the agent CLI stopped at itself (its turn or cost limit).
    pub runtime_limit: Option<RuntimeLimit>,
}

impl Evidence<'_> {
    /// A process that exited with `exit`, and nothing else known yet.
    pub fn exited(exit: ExitInfo) -> Self {
        Evidence {
            exit,
            stop: None,
            runtime: false,
            expected_code: None,
            stream_error: None,
            needs_human: None,
            missing_artifacts: &[],
            preset: None,
            runtime_limit: None,
        }
    }
}

/// The judgement before the scorer: `Some` when the attempt's end is decided
/// without it, `None` when the scorer decides.
pub fn judge(e: &Evidence<'_>) -> Option<Judgement> {
    if let Some(stop) = e.stop {
        return Some(match stop {
            StopCause::Timeout { after_ms } => Judgement::new(
                AttemptResult::Timeout,
                Some(FailureSource::Task),
                Some(FailureClass::Timeout),
                format!("timed out after {}", secs(*after_ms)),
            ),
            // (The `stale` alert was raised when the silence was found,
            // and clears with the attempt's end.)
            StopCause::Stale { silent_ms } => Judgement::transport(format!(
                "stale: no output or event for {}",
                secs(*silent_ms)
            )),
            StopCause::Budget(limit) => {
                let mut j = Judgement::task_fail(format!("budget exceeded: {}", limit.field()));
                j.alerts.push(AlertClass::BudgetExceeded);
                j
            }
            StopCause::Interrupted(cause) => interrupted(cause),
        });
    }
    if let Some(reason) = e.needs_human {
        let how = match (e.exit.code, e.exit.signal) {
            (Some(0), _) | (None, None) => String::new(),
            (Some(code), _) => format!(" (then exited with code {code})"),
            (None, Some(sig)) => format!(" (then killed by signal {sig})"),
        };
        return Some(Judgement::new(
            AttemptResult::Fail,
            Some(FailureSource::Task),
            Some(FailureClass::NeedsHuman),
            format!("needs a human: {reason}{how}"),
        ));
    }
    if let Some(limit) = e.runtime_limit {
        if e.exit.code != Some(0) || e.stream_error.is_some() {
            let mut j = Judgement::task_fail(format!(
                "the agent CLI stopped at its own {} limit{}",
                match limit {
                    RuntimeLimit::Turns => "turn",
                    RuntimeLimit::CostUsd => "cost",
                },
                e.stream_error.map(|m| format!(": {m}")).unwrap_or_default()
            ));
            j.alerts.push(AlertClass::BudgetExceeded);
            return Some(j);
        }
    }
    if let (Some(preset), Some(code)) = (e.preset, e.exit.code) {
        let meaning = preset.classify_exit(code);
        let reason = format!("{} (exit code {code})", meaning.reason);
        match meaning.class {
            ExitClass::Success => {}
            ExitClass::Transient => return Some(Judgement::transport(reason)),
            ExitClass::Budget => {
                let mut j = Judgement::task_fail(reason);
                j.alerts.push(AlertClass::BudgetExceeded);
                return Some(j);
            }
            ExitClass::Task if e.expected_code != Some(code) => {
                // The CLI's own error says more than its exit code.
                return Some(Judgement::task_fail(match e.stream_error {
                    Some(err) => format!("the worker reported an error: {err} (exit code {code})"),
                    None => reason,
                }));
            }
            ExitClass::Task => {}
        }
    }
    match (e.exit.code, e.exit.signal) {
        (Some(EX_TEMPFAIL), _) if e.runtime && e.preset.is_none() => {
            return Some(Judgement::transport(
                "the agent runtime exited 75 (EX_TEMPFAIL: retryable infrastructure failure)",
            ))
        }
        (Some(code), _) if code != 0 && e.expected_code != Some(code) => {
            return Some(Judgement::task_fail(format!("exited with code {code}")))
        }
        (None, Some(sig)) => return Some(Judgement::task_fail(format!("killed by signal {sig}"))),
        _ => {}
    }
    if let Some(err) = e.stream_error {
        return Some(Judgement::task_fail(format!(
            "the worker reported an error: {err}"
        )));
    }
    if !e.missing_artifacts.is_empty() {
        return Some(Judgement::task_fail(format!(
            "missing expected artifact{}: {}",
            if e.missing_artifacts.len() == 1 {
                ""
            } else {
                "s"
            },
            e.missing_artifacts.join(", ")
        )));
    }
    None
}

/// The judgement of an interrupted attempt (result `skip`).
pub fn interrupted(cause: &InterruptCause) -> Judgement {
    match cause {
        InterruptCause::Operator { surface, restart } => Judgement::skipped(
            None,
            if *restart {
                format!("restarted by an operator ({surface})")
            } else {
                format!("interrupted by an operator ({surface})")
            },
        ),
        InterruptCause::SiblingRestart { sibling } => Judgement::skipped(
            None,
            format!("stopped to restart with {sibling} (supervision strategy)"),
        ),
        InterruptCause::RunStopped => Judgement::skipped(None, "the run was stopped"),
        InterruptCause::OrcaShutdown => Judgement::skipped(
            Some(FailureSource::Transport),
            "interrupted by orca's shutdown; resumed without using up an attempt",
        ),
        InterruptCause::OrcaCrash => Judgement::skipped(
            Some(FailureSource::Transport),
            "interrupted: orca stopped while it ran; resumed without using up an attempt",
        ),
    }
}

fn secs(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Surface;

    fn ev(code: Option<i32>) -> Evidence<'static> {
        Evidence {
            exit: ExitInfo { code, signal: None },
            stop: None,
            runtime: false,
            expected_code: None,
            stream_error: None,
            needs_human: None,
            missing_artifacts: &[],
            preset: None,
            runtime_limit: None,
        }
    }

    #[test]
    fn a_presets_exit_codes_mean_what_its_cli_documents() {
        let with = |preset, code| {
            judge(&Evidence {
                runtime: true,
                preset: Some(preset),
                ..ev(Some(code))
            })
            .unwrap()
        };
        let j = with(Preset::Codewhale, 75);
        assert_eq!(j.class, Some(FailureClass::Transient));
        // 75 means nothing special to Codex.
        let j = with(Preset::Codex, 75);
        assert_eq!(j.class, Some(FailureClass::Task));
        let j = with(Preset::Gemini, 53);
        assert_eq!(j.class, Some(FailureClass::Task));
        assert_eq!(j.alerts, [AlertClass::BudgetExceeded]);
        assert!(j.reason.contains("turn limit"), "{}", j.reason);
        let j = with(Preset::Gemini, 42);
        assert!(j.reason.contains("input error") && j.alerts.is_empty());
        // The CLI's own limit, reported in its stream, is a budget failure.
        let j = judge(&Evidence {
            runtime: true,
            preset: Some(Preset::Claude),
            runtime_limit: Some(RuntimeLimit::Turns),
            stream_error: Some("error_max_turns"),
            ..ev(Some(1))
        })
        .unwrap();
        assert_eq!(j.alerts, [AlertClass::BudgetExceeded]);
        assert!(j.reason.contains("own turn limit"), "{}", j.reason);
        // A cost budget orca enforced.
        let cost = StopCause::Budget(BudgetLimit::CostUsd);
        let j = judge(&Evidence {
            stop: Some(&cost),
            ..ev(None)
        })
        .unwrap();
        assert_eq!(j.reason, "budget exceeded: max_cost_usd");
    }

    #[test]
    fn order_of_checks() {
        // Clean exit: the scorer decides.
        assert_eq!(judge(&ev(Some(0))), None);
        // A worker that asked for a human needs one, whatever its exit.
        let j = judge(&Evidence {
            stream_error: Some("boom"),
            needs_human: Some("which branch?"),
            ..ev(Some(2))
        })
        .unwrap();
        assert_eq!(
            (j.result, j.class),
            (AttemptResult::Fail, Some(FailureClass::NeedsHuman))
        );
        assert_eq!(
            j.reason,
            "needs a human: which branch? (then exited with code 2)"
        );
        // Else a non-zero exit fails before anything else is looked at.
        let j = judge(&Evidence {
            stream_error: Some("boom"),
            ..ev(Some(2))
        })
        .unwrap();
        assert_eq!(
            (j.result, j.class),
            (AttemptResult::Fail, Some(FailureClass::Task))
        );
        assert_eq!(j.reason, "exited with code 2");
        // …unless an exit_code scorer expects that code.
        assert_eq!(
            judge(&Evidence {
                expected_code: Some(2),
                ..ev(Some(2))
            }),
            None
        );
        // Then a final stream error, then artifacts.
        let missing = vec!["report".to_string()];
        let j = judge(&Evidence {
            stream_error: Some("boom"),
            missing_artifacts: &missing,
            ..ev(Some(0))
        })
        .unwrap();
        assert!(j.reason.contains("boom"));
        let j = judge(&Evidence {
            needs_human: Some("a secret"),
            ..ev(Some(0))
        })
        .unwrap();
        assert_eq!(j.class, Some(FailureClass::NeedsHuman));
        let missing = vec!["report".to_string()];
        let j = judge(&Evidence {
            missing_artifacts: &missing,
            ..ev(Some(0))
        })
        .unwrap();
        assert_eq!(
            (j.source, j.reason.as_str()),
            (
                Some(FailureSource::Task),
                "missing expected artifact: report"
            )
        );
    }

    #[test]
    fn tempfail_is_transient_only_for_runtimes() {
        let j = judge(&Evidence {
            runtime: true,
            ..ev(Some(75))
        })
        .unwrap();
        assert_eq!(
            (j.source, j.class),
            (
                Some(FailureSource::Transport),
                Some(FailureClass::Transient)
            )
        );
        let j = judge(&ev(Some(75))).unwrap();
        assert_eq!(j.class, Some(FailureClass::Task));
    }

    #[test]
    fn stops_decide_first() {
        let exit = ExitInfo {
            code: None,
            signal: Some(15),
        };
        let cases = [
            (
                StopCause::Timeout { after_ms: 1500 },
                AttemptResult::Timeout,
                Some(FailureClass::Timeout),
                vec![],
            ),
            (
                StopCause::Stale { silent_ms: 300_000 },
                AttemptResult::Fail,
                Some(FailureClass::Transient),
                vec![],
            ),
            (
                StopCause::Budget(BudgetLimit::ToolCalls),
                AttemptResult::Fail,
                Some(FailureClass::Task),
                vec![AlertClass::BudgetExceeded],
            ),
            (
                StopCause::Interrupted(InterruptCause::Operator {
                    surface: Surface::Cli,
                    restart: false,
                }),
                AttemptResult::Skip,
                None,
                vec![],
            ),
            (
                StopCause::Interrupted(InterruptCause::RunStopped),
                AttemptResult::Skip,
                None,
                vec![],
            ),
            (
                StopCause::Interrupted(InterruptCause::OrcaShutdown),
                AttemptResult::Skip,
                None,
                vec![],
            ),
        ];
        for (stop, result, class, alerts) in cases {
            let j = judge(&Evidence {
                exit,
                stop: Some(&stop),
                ..ev(None)
            })
            .unwrap();
            assert_eq!(
                (j.result, j.class, j.alerts),
                (result, class, alerts),
                "{stop:?}"
            );
        }
    }

    #[test]
    fn killed_by_a_signal_fails() {
        let j = judge(&Evidence {
            exit: ExitInfo {
                code: None,
                signal: Some(9),
            },
            ..ev(None)
        })
        .unwrap();
        assert_eq!(j.reason, "killed by signal 9");
    }
}
