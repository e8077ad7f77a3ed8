//! The run's decisions as given (events) / when (a command) / then
//! (events, effects), without actors, processes or clocks — in the manner
//! of cqrs-es's `TestFramework`. Each test names the row of DESIGN.md's
//! retry table (or the rule) it pins.

use std::sync::Arc;

use super::*;
use crate::journal::event::{BudgetLimit, WorkerEvent};
use crate::model::{FailureSource, Verdict};
use crate::outcome::{judge, Evidence, Judgement, ReceiptDraft};
use crate::redact::Secrets;
use crate::runs::{submission_events, Submission};
use crate::spec::{check_str, Format, RunSpec, ValidateContext};
use crate::supervision::SupervisorPolicy;

const T0: Timestamp = Timestamp(1_800_000_000_000_000_000);

/// A run under test: its spec and the state its given events fold to.
struct Given {
    spec: RunSpec,
    tasks: Vec<Arc<TaskSpec>>,
    policy: SupervisorPolicy,
    state: RunState,
    now: Timestamp,
}

/// A run submitted from `spec` (JSON) — the submission batch is given.
fn run(spec: &str) -> Given {
    let ctx = ValidateContext::default();
    let spec = check_str(spec, Format::Json, "spec.json", &ctx)
        .into_result()
        .unwrap_or_else(|e| panic!("test spec: {e}"))
        .spec;
    let sub = Submission {
        spec: spec.clone(),
        source: "spec.json".into(),
        max_workers: 4,
        stale_after: None,
        surface: Surface::Cli,
        parent: None,
        run_id: None,
    };
    let json = serde_json::to_string(&spec).unwrap();
    let (_, state) = submission_events("r-1", &sub, 0, json, T0);
    let tasks = state
        .tasks
        .iter()
        .map(|t| Arc::new(spec.tasks.iter().find(|s| s.id == t.id).unwrap().clone()))
        .collect();
    Given {
        policy: SupervisorPolicy::for_run(&spec, 5_000),
        spec,
        tasks,
        state,
        now: T0,
    }
}

impl Given {
    /// Folds `events` (each one millisecond after the last).
    fn given(mut self, events: impl IntoIterator<Item = Event>) -> Self {
        for e in events {
            self.now = self.now.plus_millis(1);
            let seq = self.state.last_seq + 1;
            self.state.apply(seq, self.now, &e);
        }
        self
    }

    /// The run decides `cmd`, with no jitter.
    fn when(&self, cmd: RunCommand) -> Result<Decision, RunError> {
        let ctx = RunCtx {
            tasks: &self.tasks,
            policy: &self.policy,
            budget: self.spec.budget.as_ref(),
        };
        decide(&self.state, &ctx, cmd, self.now, &mut || 0.0)
    }

    /// Decides `cmd` and folds what it journaled (the actor's commit).
    fn then_apply(self, cmd: RunCommand) -> (Self, Decision) {
        let d = self.when(cmd).expect("decided");
        let next = self.given(d.events.clone());
        (next, d)
    }

    fn t(&self, id: &str) -> usize {
        self.state.position(id).unwrap()
    }

    /// The attempt of `task` ends as judged; the decision is folded.
    fn end(self, task: &str, j: Judgement, stop: Option<StopCause>) -> (Self, Decision) {
        let cmd = self.ended(task, j, stop);
        self.then_apply(cmd)
    }

    /// Leases `task` (its next attempt starts).
    fn leased(self, task: &str) -> Self {
        let t = self.t(task);
        self.then_apply(RunCommand::Lease { task: t }).0
    }

    /// The attempt's end, as its actor would report it.
    fn ended(&self, task: &str, j: Judgement, stop: Option<StopCause>) -> RunCommand {
        let n = self.state.task(task).unwrap().current().unwrap().n;
        let draft = ReceiptDraft::new(AttemptRef::new("r-1", task, n), "local-1".into(), T0);
        RunCommand::AttemptEnded(Box::new(AttemptOutcome::new(
            &draft,
            j,
            stop,
            &Secrets::default(),
            self.now,
        )))
    }
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::type_name).collect()
}

fn restart_of(d: &Decision) -> (u64, bool, bool) {
    d.events
        .iter()
        .find_map(|e| match e {
            Event::RestartScheduled {
                delay_ms,
                counted,
                counts_intensity,
                ..
            } => Some((*delay_ms, *counted, *counts_intensity)),
            _ => None,
        })
        .expect("a restart")
}

fn finished_as(d: &Decision) -> AttemptResult {
    d.events
        .iter()
        .find_map(|e| match e {
            Event::TaskFinished { result, .. } => Some(*result),
            _ => None,
        })
        .expect("the task finished")
}

fn alerts(d: &Decision) -> Vec<AlertClass> {
    raised(d).iter().map(|a| a.class).collect()
}

fn raised(d: &Decision) -> Vec<&crate::alert::AlertRaised> {
    d.events
        .iter()
        .filter_map(|e| match e {
            Event::Alert(crate::alert::AlertEvent::Raised(a)) => Some(a),
            _ => None,
        })
        .collect()
}

const ONE: &str = r#"{"tasks": [{"id": "a", "command": "true",
  "retry_policy": {"max_attempts": 3, "initial_backoff_seconds": 2, "max_backoff_seconds": 60, "backoff_multiplier": 2}}]}"#;

fn exit(code: i32) -> Judgement {
    judge(&Evidence::exited(crate::host::ExitInfo {
        code: Some(code),
        signal: None,
    }))
    .unwrap_or_else(|| Judgement::pass("exited with code 0"))
}

fn stopped(stop: &StopCause) -> Judgement {
    judge(&Evidence {
        stop: Some(stop),
        ..Evidence::exited(crate::host::ExitInfo {
            code: None,
            signal: Some(15),
        })
    })
    .unwrap()
}

// ----- leasing -----------------------------------------------------------

#[test]
fn a_first_lease_starts_the_child_and_a_later_one_restarts_it() {
    let g = run(ONE);
    let t = g.t("a");
    let d = g.when(RunCommand::Lease { task: t }).unwrap();
    assert_eq!(names(&d.events), ["ChildStarted"]);
    assert_eq!(
        d.effects,
        [Effect::Launch {
            task: t,
            n: 1,
            counted: true
        }]
    );
    // Paused: nothing is leased.
    let paused = run(ONE).given([Event::RunPaused {
        run: "r-1".into(),
        surface: Surface::Cli,
    }]);
    assert!(paused
        .when(RunCommand::Lease { task: t })
        .unwrap()
        .events
        .is_empty());
    // After a restart the next attempt is a ChildRestarted with its number.
    let g = run(ONE).leased("a");
    let (g, _) = g.end("a", Judgement::transport("down"), None);
    let d = g
        .when(RunCommand::BackoffDue {
            task: t,
            attempt: 2,
        })
        .unwrap();
    assert_eq!(d.effects, [Effect::Enqueue { task: t }]);
    let d = g.when(RunCommand::Lease { task: t }).unwrap();
    assert_eq!(
        d.events,
        [Event::ChildRestarted {
            path: "/runs/r-1/attempts/a:2".into(),
            attempt: 2
        }]
    );
}

// ----- the retry table, row by row --------------------------------------

#[test]
fn transient_failures_are_retried_after_their_backoff() {
    // Stale heartbeat: transient, retried with backoff (its `stale` alert
    // was raised when the silence was found).
    let g = run(ONE).leased("a");
    let stale = StopCause::Stale { silent_ms: 300_000 };
    let d = g.when(g.ended("a", stopped(&stale), Some(stale))).unwrap();
    assert_eq!(
        names(&d.events),
        [
            "AttemptFinished",
            "ReceiptRecorded",
            "ChildFailed",
            "RestartScheduled"
        ]
    );
    assert_eq!(restart_of(&d), (2_000, true, true));
    assert!(d.effects.contains(&Effect::Backoff {
        task: g.t("a"),
        attempt: 2,
        deadline: g.now.plus_millis(2_000),
        delay_ms: 2_000
    }));
    assert!(d
        .effects
        .contains(&Effect::WriteReceipt(AttemptRef::new("r-1", "a", 1))));
    // A lost connection (transport) is the same row.
    let d = g
        .when(g.ended("a", Judgement::transport("connection lost"), None))
        .unwrap();
    assert_eq!(restart_of(&d), (2_000, true, true));
    // The backoff grows: the second failure waits twice as long.
    let g = g.given(d.events);
    let t = g.t("a");
    let g = g
        .then_apply(RunCommand::BackoffDue {
            task: t,
            attempt: 2,
        })
        .0;
    let g = g.leased("a");
    let d = g
        .when(g.ended("a", Judgement::transport("again"), None))
        .unwrap();
    assert_eq!(restart_of(&d), (4_000, true, true));
}

#[test]
fn a_runtime_exiting_75_is_transient() {
    let j = judge(&Evidence {
        runtime: true,
        ..Evidence::exited(crate::host::ExitInfo {
            code: Some(75),
            signal: None,
        })
    })
    .unwrap();
    let g = run(ONE).leased("a");
    let d = g.when(g.ended("a", j, None)).unwrap();
    assert_eq!(restart_of(&d), (2_000, true, true));
}

#[test]
fn orcas_own_interruptions_restart_at_once_using_up_nothing() {
    for cause in [InterruptCause::OrcaShutdown, InterruptCause::OrcaCrash] {
        let g = run(ONE).leased("a");
        let stop = StopCause::Interrupted(cause.clone());
        let d = g.when(g.ended("a", stopped(&stop), Some(stop))).unwrap();
        assert_eq!(
            names(&d.events),
            [
                "AttemptInterrupted",
                "AttemptFinished",
                "ReceiptRecorded",
                "RestartScheduled"
            ],
            "{cause:?}"
        );
        assert_eq!(restart_of(&d), (0, false, false), "{cause:?}");
        assert!(d.effects.contains(&Effect::Enqueue { task: g.t("a") }));
    }
}

#[test]
fn a_timeout_is_retried() {
    let g = run(ONE).leased("a");
    let stop = StopCause::Timeout { after_ms: 1_000 };
    let d = g.when(g.ended("a", stopped(&stop), Some(stop))).unwrap();
    assert!(d.events.contains(&Event::ChildFailed {
        path: "/runs/r-1/attempts/a:1".into(),
        class: FailureClass::Timeout,
        reason: "timed out after 1s".into()
    }));
    assert_eq!(restart_of(&d), (2_000, true, true));
}

#[test]
fn task_and_verifier_failures_finish_unless_retry_on_asks() {
    let g = run(ONE).leased("a");
    let d = g.when(g.ended("a", exit(2), None)).unwrap();
    assert_eq!(
        names(&d.events),
        [
            "AttemptFinished",
            "ReceiptRecorded",
            "ChildFailed",
            "TaskFinished"
        ]
    );
    assert_eq!(finished_as(&d), AttemptResult::Fail);
    let d = g
        .when(g.ended("a", Judgement::verifier_fail("no"), None))
        .unwrap();
    assert_eq!(finished_as(&d), AttemptResult::Fail);
    // Budget exceeded is a task failure too, with its alert.
    let budget = StopCause::Budget(crate::journal::event::BudgetLimit::Tokens);
    let d = g
        .when(g.ended("a", stopped(&budget), Some(budget)))
        .unwrap();
    assert_eq!(finished_as(&d), AttemptResult::Fail);
    assert_eq!(alerts(&d), [AlertClass::BudgetExceeded]);

    let g = run(r#"{"tasks": [{"id": "a", "command": "true",
        "retry_policy": {"max_attempts": 2, "retry_on": ["task", "verifier"]}}]}"#)
    .leased("a");
    let d = g.when(g.ended("a", exit(2), None)).unwrap();
    assert!(restart_of(&d).1);
    let d = g
        .when(g.ended("a", Judgement::verifier_fail("no"), None))
        .unwrap();
    assert!(restart_of(&d).1);
}

#[test]
fn needs_human_is_never_retried() {
    let g = run(r#"{"tasks": [{"id": "a", "command": "true",
        "retry_policy": {"max_attempts": 9, "retry_on": ["transient", "timeout", "task", "verifier", "needs_human"]}}]}"#)
    .leased("a");
    let j = judge(&Evidence {
        needs_human: Some("which branch?"),
        ..Evidence::exited(crate::host::ExitInfo {
            code: Some(1),
            signal: None,
        })
    })
    .unwrap();
    let d = g.when(g.ended("a", j, None)).unwrap();
    assert_eq!(finished_as(&d), AttemptResult::Fail);
    assert_eq!(alerts(&d), [AlertClass::NeedsHuman]);
    assert!(!names(&d.events).contains(&"RestartScheduled"));
}

#[test]
fn exhausted_attempts_finish_with_restart_exhausted() {
    let mut g = run(ONE);
    for n in 1..=3 {
        g = g.leased("a");
        let d = g
            .when(g.ended("a", Judgement::transport("down"), None))
            .unwrap();
        if n < 3 {
            assert_eq!(
                restart_of(&d),
                (2_000 << (n - 1), true, true),
                "attempt {n}"
            );
            g = g.given(d.events);
            let t = g.t("a");
            let next = g.state.tasks[t].next_attempt;
            let (g2, _) = g.then_apply(RunCommand::BackoffDue {
                task: t,
                attempt: next,
            });
            g = g2;
        } else {
            assert_eq!(finished_as(&d), AttemptResult::Fail);
            assert_eq!(alerts(&d), [AlertClass::RestartExhausted]);
            let reason = raised(&d)[0].reason.clone();
            assert_eq!(raised(&d)[0].worker.as_deref(), Some("local-1"));
            assert!(
                reason.starts_with("a failed 3 times; no attempts left"),
                "{reason}"
            );
        }
    }
}

#[test]
fn operators_cancel_or_restart_without_using_up_an_attempt() {
    let g = run(ONE).leased("a");
    let cancel = StopCause::Interrupted(InterruptCause::Operator {
        surface: Surface::Cli,
        restart: false,
    });
    let d = g
        .when(g.ended("a", stopped(&cancel), Some(cancel)))
        .unwrap();
    assert_eq!(finished_as(&d), AttemptResult::Skip);
    let restart = StopCause::Interrupted(InterruptCause::Operator {
        surface: Surface::Api,
        restart: true,
    });
    let d = g
        .when(g.ended("a", stopped(&restart), Some(restart)))
        .unwrap();
    assert_eq!(restart_of(&d), (0, false, false));
}

#[test]
fn a_pass_finishes_and_a_permanent_child_restarts_even_then() {
    let g = run(ONE).leased("a");
    let d = g.when(g.ended("a", exit(0), None)).unwrap();
    assert_eq!(finished_as(&d), AttemptResult::Pass);
    assert!(!names(&d.events).contains(&"ChildFailed"));
    let g =
        run(r#"{"tasks": [{"id": "a", "command": "true", "restart": "permanent"}]}"#).leased("a");
    let d = g.when(g.ended("a", exit(0), None)).unwrap();
    assert_eq!(restart_of(&d), (0, false, true));
    // A temporary child never restarts.
    let g =
        run(r#"{"tasks": [{"id": "a", "command": "true", "restart": "temporary"}]}"#).leased("a");
    let d = g
        .when(g.ended("a", Judgement::transport("down"), None))
        .unwrap();
    assert_eq!(finished_as(&d), AttemptResult::Fail);
}

// ----- strategies and intensity -----------------------------------------

const THREE: &str = r#"{"supervision": {"strategy": "STRATEGY", "max_restarts": 2, "within_seconds": 60},
  "tasks": [
    {"id": "a", "command": "true", "retry_policy": {"max_attempts": 9, "initial_backoff_seconds": 0}},
    {"id": "b", "command": "true"},
    {"id": "c", "command": "true"}]}"#;

fn three(strategy: &str) -> Given {
    run(&THREE.replace("STRATEGY", strategy))
        .leased("a")
        .leased("b")
        .leased("c")
}

fn stopped_siblings(d: &Decision) -> Vec<usize> {
    d.effects
        .iter()
        .find_map(|e| match e {
            Effect::StopAttempts {
                tasks,
                cause: InterruptCause::SiblingRestart { .. },
            } => Some(tasks.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn each_strategy_takes_its_siblings_along() {
    let g = three("one_for_one");
    let d = g
        .when(g.ended("a", Judgement::transport("x"), None))
        .unwrap();
    assert!(stopped_siblings(&d).is_empty());
    let g = three("one_for_all");
    let d = g
        .when(g.ended("a", Judgement::transport("x"), None))
        .unwrap();
    let mut s = stopped_siblings(&d);
    s.sort();
    assert_eq!(s, [g.t("b"), g.t("c")]);
    // rest_for_one: only the siblings after it in spec order.
    let g = three("rest_for_one");
    let d = g
        .when(g.ended("b", Judgement::transport("x"), None))
        .unwrap();
    assert_eq!(stopped_siblings(&d), [g.t("c")]);
    // A sibling stopped that way restarts at once, using up nothing.
    let sib = StopCause::Interrupted(InterruptCause::SiblingRestart {
        sibling: "b".into(),
    });
    let d = g.when(g.ended("c", stopped(&sib), Some(sib))).unwrap();
    assert_eq!(restart_of(&d), (0, false, false));
}

#[test]
fn past_the_intensity_the_run_escalates() {
    let mut g = three("one_for_one");
    for _ in 0..2 {
        let (next, d) = g.end("a", Judgement::transport("x"), None);
        assert!(restart_of(&d).2);
        g = next.leased("a");
    }
    // A queued task waits: it ends skip when the run escalates.
    let d = g
        .when(g.ended("a", Judgement::transport("x"), None))
        .unwrap();
    assert_eq!(
        names(&d.events),
        [
            "AttemptFinished",
            "ReceiptRecorded",
            "ChildFailed",
            "TaskFinished",
            "IntensityExceeded",
            "Escalated",
            "AlertRaised"
        ]
    );
    assert!(d.events.contains(&Event::Escalated {
        from: "/runs/r-1".into(),
        to: "/runs".into(),
        reason: "3 restarts within 60s exceed the run's intensity (2 in 60s)".into()
    }));
    assert_eq!(alerts(&d), [AlertClass::NeedsHuman]);
    let mut stop = d
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::StopAttempts {
                tasks,
                cause: InterruptCause::RunStopped,
            } => Some(tasks.clone()),
            _ => None,
        })
        .unwrap();
    stop.sort();
    assert_eq!(stop, [g.t("b"), g.t("c")]);
    // Once escalated, ends are not restarted and the run settles escalated.
    let (g, _) = g.end("a", Judgement::transport("x"), None);
    let stop = StopCause::Interrupted(InterruptCause::RunStopped);
    let (g, d) = g.end("b", stopped(&stop), Some(stop.clone()));
    assert_eq!(finished_as(&d), AttemptResult::Skip);
    let (g, _) = g.end("c", exit(0), None);
    let d = g.when(RunCommand::Settle).unwrap();
    assert!(d.events.contains(&Event::RunFinished {
        run: "r-1".into(),
        status: RunStatus::Escalated
    }));
    assert_eq!(d.effects, [Effect::Ended(RunStatus::Escalated)]);
}

#[test]
fn a_scorer_that_keeps_failing_escalates_the_run() {
    let g = run(ONE).leased("a");
    let d = g
        .when(RunCommand::Escalate {
            reason: "its scorer kept failing: boom".into(),
        })
        .unwrap();
    assert_eq!(names(&d.events), ["AlertRaised"]);
    assert!(d.effects.contains(&Effect::StopAttempts {
        tasks: vec![g.t("a")],
        cause: InterruptCause::RunStopped
    }));
}

// ----- stop, interrupt, pause, verdicts ---------------------------------

#[test]
fn stop_cancels_waiting_tasks_and_stops_running_ones() {
    let g = run(&THREE.replace("STRATEGY", "one_for_one")).leased("a");
    let d = g
        .when(RunCommand::Stop {
            surface: Surface::Cli,
            reason: "enough".into(),
        })
        .unwrap();
    assert_eq!(
        names(&d.events),
        ["RunStopRequested", "TaskFinished", "TaskFinished"]
    );
    assert!(d.effects.contains(&Effect::StopAttempts {
        tasks: vec![g.t("a")],
        cause: InterruptCause::RunStopped
    }));
    assert!(d.effects.contains(&Effect::DropWaiting));
    let g = g.given(d.events);
    // A second stop changes nothing.
    assert!(g
        .when(RunCommand::Stop {
            surface: Surface::Api,
            reason: "again".into()
        })
        .unwrap()
        .events
        .is_empty());
    // The stopped attempt ends skip (its interruption journaled), and the
    // run ends cancelled.
    let stop = StopCause::Interrupted(InterruptCause::RunStopped);
    let (g, d) = g.end("a", stopped(&stop), Some(stop.clone()));
    assert_eq!(
        d.events[0],
        Event::AttemptInterrupted {
            attempt: AttemptRef::new("r-1", "a", 1),
            cause: InterruptCause::RunStopped
        }
    );
    assert_eq!(finished_as(&d), AttemptResult::Skip);
    let d = g.when(RunCommand::Settle).unwrap();
    assert_eq!(d.effects, [Effect::Ended(RunStatus::Cancelled)]);
}

#[test]
fn interrupt_goes_to_the_running_attempt_or_says_why_not() {
    let g = run(ONE).leased("a");
    let d = g
        .when(RunCommand::Interrupt {
            task: "a".into(),
            surface: Surface::Api,
            restart: true,
        })
        .unwrap();
    assert_eq!(
        d.events,
        [Event::ControlRequested {
            path: "/runs/r-1/attempts/a:1".into(),
            message: "restart".into(),
            surface: Surface::Api
        }]
    );
    assert_eq!(d.answer, Answer::Attempt(AttemptRef::new("r-1", "a", 1)));
    assert_eq!(
        g.when(RunCommand::Interrupt {
            task: "zz".into(),
            surface: Surface::Api,
            restart: false
        }),
        Err(RunError::NoSuchTask {
            run: "r-1".into(),
            task: "zz".into()
        })
    );
    let queued = run(ONE);
    assert_eq!(
        queued.when(RunCommand::Interrupt {
            task: "a".into(),
            surface: Surface::Cli,
            restart: false
        }),
        Err(RunError::NotRunning {
            task: "a".into(),
            state: "queued"
        })
    );
}

#[test]
fn pause_and_resume_are_journaled_once() {
    let g = run(ONE);
    let (g, d) = g.then_apply(RunCommand::Pause {
        surface: Surface::Cli,
    });
    assert_eq!(names(&d.events), ["RunPaused"]);
    assert!(g
        .when(RunCommand::Pause {
            surface: Surface::Cli
        })
        .unwrap()
        .events
        .is_empty());
    let d = g
        .when(RunCommand::Resume {
            surface: Surface::Api,
        })
        .unwrap();
    assert_eq!(names(&d.events), ["RunResumed"]);
}

fn manual_partial() -> Given {
    let g = run(r#"{"tasks": [{"id": "a", "command": "true", "scorer": {"kind": "manual"}}]}"#)
        .leased("a");
    let (g, _) = g.end("a", Judgement::partial("awaiting a manual verdict"), None);
    g
}

fn verdict(v: Verdict) -> RunCommand {
    RunCommand::Verdict(VerdictRequest {
        task: "a".into(),
        attempt: None,
        verdict: VerdictRecord {
            verdict: v,
            who: "ops".into(),
            at: T0,
            note: String::new(),
        },
        surface: Surface::Cli,
    })
}

#[test]
fn a_verdict_amends_the_receipt_once() {
    let g = manual_partial();
    assert_eq!(
        g.when(RunCommand::Settle).unwrap().effects,
        [Effect::Ended(RunStatus::AwaitingVerdict)]
    );
    let (g, d) = g.then_apply(verdict(Verdict::Pass));
    assert_eq!(names(&d.events), ["VerdictRecorded"]);
    assert_eq!(
        d.effects,
        [Effect::WriteReceipt(AttemptRef::new("r-1", "a", 1))]
    );
    assert_eq!(d.answer, Answer::Verdict(AttemptRef::new("r-1", "a", 1)));
    // The second verdict is refused: the first is already recorded.
    assert!(matches!(
        g.when(verdict(Verdict::Fail)),
        Err(RunError::Verdict(VerdictError::AlreadyGiven { .. }))
    ));
    let receipt = g.state.tasks[0].final_receipt().unwrap();
    assert_eq!(receipt.result, AttemptResult::Pass);
    // A receipt that awaits nothing cannot take one.
    let g = run(ONE).leased("a");
    let (g, _) = g.end("a", exit(0), None);
    assert!(matches!(
        g.when(verdict(Verdict::Fail)),
        Err(RunError::Verdict(VerdictError::NotAwaiting { .. }))
    ));
}

// ----- resume: reconciliation -------------------------------------------

fn started(task: &str, n: u32) -> Event {
    Event::AttemptStarted {
        attempt: AttemptRef::new("r-1", task, n),
        worker: "local-1".into(),
        host: "local".into(),
        pid: 4242,
        pgid: 4242,
        proc_start: 7,
        counted: true,
    }
}

#[test]
fn resume_interrupts_what_ran_and_puts_back_what_waited() {
    let g = run(&THREE.replace("STRATEGY", "one_for_one"))
        .leased("a")
        .given([
            started("a", 1),
            Event::WorkerReported {
                attempt: AttemptRef::new("r-1", "a", 1),
                event: WorkerEvent::Running,
            },
        ])
        .leased("b");
    // b ended and its decision (a backoff) was journaled before the crash.
    let (g, _) = g.end("b", Judgement::transport("x"), None);
    let d = g.when(RunCommand::Reconcile).unwrap();
    assert_eq!(
        names(&d.events),
        [
            "AttemptInterrupted",
            "AttemptFinished",
            "ReceiptRecorded",
            "RestartScheduled"
        ]
    );
    assert_eq!(
        d.events[0],
        Event::AttemptInterrupted {
            attempt: AttemptRef::new("r-1", "a", 1),
            cause: InterruptCause::OrcaCrash
        }
    );
    match &d.events[2] {
        Event::ReceiptRecorded(r) => {
            assert_eq!(r.result, AttemptResult::Skip);
            assert_eq!(r.failure_source, Some(FailureSource::Transport));
            assert_eq!(r.worker, "local-1");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(restart_of(&d), (0, false, false));
    let (ta, tb, tc) = (g.t("a"), g.t("b"), g.t("c"));
    assert!(d.effects.contains(&Effect::Enqueue { task: ta }));
    assert!(d.effects.contains(&Effect::Enqueue { task: tc }));
    // b keeps its journaled deadline.
    let deadline = g.state.tasks[tb].deadline.unwrap();
    assert!(d.effects.contains(&Effect::Backoff {
        task: tb,
        attempt: 2,
        deadline,
        delay_ms: deadline.millis_since(g.now)
    }));
}

#[test]
fn resume_decides_an_end_whose_decision_was_lost() {
    // An older build journaled the attempt's end apart from its decision.
    let g = run(ONE).leased("a");
    let d = g
        .when(g.ended("a", Judgement::transport("down"), None))
        .unwrap();
    let terminal: Vec<Event> = d.events.iter().take(2).cloned().collect();
    let g = g.given(terminal);
    let d = g.when(RunCommand::Reconcile).unwrap();
    assert_eq!(names(&d.events), ["ChildFailed", "RestartScheduled"]);
    assert_eq!(restart_of(&d), (2_000, true, true));
}

#[test]
fn resume_of_a_stopping_run_finishes_what_waited() {
    let g = run(&THREE.replace("STRATEGY", "one_for_one"))
        .leased("a")
        .given([Event::RunStopRequested {
            run: "r-1".into(),
            surface: Surface::Cli,
            reason: "stop".into(),
        }]);
    let d = g.when(RunCommand::Reconcile).unwrap();
    assert_eq!(
        names(&d.events),
        [
            "AttemptInterrupted",
            "AttemptFinished",
            "ReceiptRecorded",
            "TaskFinished",
            "TaskFinished",
            "TaskFinished"
        ]
    );
    assert_eq!(finished_as(&d), AttemptResult::Skip);
}

// ----- the end of the run -----------------------------------------------

#[test]
fn the_run_ends_when_nothing_runs_or_waits() {
    let g = run(ONE).leased("a");
    assert!(g.when(RunCommand::Settle).unwrap().events.is_empty());
    let (g, _) = g.end("a", exit(0), None);
    let d = g.when(RunCommand::Settle).unwrap();
    assert_eq!(names(&d.events), ["RunFinished", "AlertRaised"]);
    assert_eq!(alerts(&d), [AlertClass::RunCompleted]);
    assert_eq!(d.effects, [Effect::Ended(RunStatus::Passed)]);
    let g = g.given(d.events);
    assert!(g.when(RunCommand::Settle).unwrap().events.is_empty());
    // Requests after the end change nothing.
    assert!(g
        .when(RunCommand::Stop {
            surface: Surface::Cli,
            reason: "late".into()
        })
        .unwrap()
        .events
        .is_empty());
    let _ = &g.spec;
}

// ----- the run's budget ------------------------------------------------------

#[test]
fn past_its_budget_a_run_leases_nothing_more_and_says_why_once() {
    let spec = r#"{"budget": {"max_tokens": 1000, "max_cost_usd": 1.0},
      "tasks": [{"id": "a", "command": "true"}, {"id": "b", "command": "true"},
                {"id": "c", "command": "true"}]}"#;
    let g = run(spec).leased("a");
    // a's attempt used 1,200 tokens (journaled with its end).
    let mut cmd = g.ended("a", exit(0), None);
    if let RunCommand::AttemptEnded(o) = &mut cmd {
        o.usage = Some(crate::runtime::UsageRecord {
            tokens: 1_200,
            cost_usd: Some(0.02),
            ..Default::default()
        });
    }
    let (g, d) = g.then_apply(cmd);
    assert!(names(&d.events).contains(&"AttemptUsage"));
    assert_eq!(g.state.spend().tokens, 1_200);
    // when b is leased: the breach is journaled, budget_exceeded raised
    // (the run's: no task), and every waiting task ends skip.
    let t = g.t("b");
    let (g, d) = g.then_apply(RunCommand::Lease { task: t });
    assert_eq!(
        names(&d.events),
        [
            "RunBudgetExceeded",
            "AlertRaised",
            "TaskFinished",
            "TaskFinished"
        ]
    );
    assert!(
        matches!(&d.events[0], Event::RunBudgetExceeded { limit: BudgetLimit::Tokens, detail, .. }
        if detail.contains("1200 tokens used, over budget.max_tokens = 1000"))
    );
    assert_eq!(alerts(&d), [AlertClass::BudgetExceeded]);
    assert_eq!(raised(&d)[0].task, None);
    assert!(d.effects.contains(&Effect::DropWaiting));
    assert!(!d.effects.iter().any(|e| matches!(e, Effect::Launch { .. })));
    assert!(g.state.budget_exceeded.is_some());
    // Said once: a later check journals nothing new.
    let d = g.when(RunCommand::CheckBudget).unwrap();
    assert!(!names(&d.events).contains(&"RunBudgetExceeded"));
}

#[test]
fn the_wall_time_budget_is_checked_when_its_timer_fires() {
    let spec = r#"{"budget": {"max_seconds": 60},
      "tasks": [{"id": "a", "command": "true"}, {"id": "b", "command": "true"}]}"#;
    let mut g = run(spec).leased("a");
    // Within the minute: nothing.
    assert!(g.when(RunCommand::CheckBudget).unwrap().events.is_empty());
    g.now = g.now.plus_millis(61_000);
    let d = g.when(RunCommand::CheckBudget).unwrap();
    assert_eq!(
        names(&d.events),
        ["RunBudgetExceeded", "AlertRaised", "TaskFinished"]
    );
    // a's running attempt is left to finish.
    assert!(!d
        .effects
        .iter()
        .any(|e| matches!(e, Effect::StopAttempts { .. })));
}
