//! The fold, without actors.

use super::*;
use crate::journal::event::{InterruptCause, RunSubmitted};
use crate::model::{AttemptRef, Receipt, VerdictRecord};

const T0: Timestamp = Timestamp(1_700_000_000_000_000_000);

fn run() -> RunState {
    let s = RunSubmitted {
        run: "r-1".into(),
        name: "demo".into(),
        spec_json: r#"{"tasks":[{"id":"a","command":"true"},{"id":"b","command":"true"}]}"#.into(),
        source: "spec.json".into(),
        max_workers: 2,
        stale_after_ms: None,
        depth: 0,
        parent: None,
        surface: Surface::Cli,
    };
    let mut r = RunState::submitted(&s, T0);
    let mut seq = 0;
    for (i, t) in ["a", "b"].iter().enumerate() {
        seq += 1;
        r.apply(
            seq,
            T0,
            &Event::TaskEnqueued {
                run: "r-1".into(),
                task: t.to_string(),
                priority: 0,
                order: i as u32,
            },
        );
    }
    r
}

fn at(ms: u64) -> Timestamp {
    T0.plus_millis(ms)
}

fn aref(task: &str, n: u32) -> AttemptRef {
    AttemptRef::new("r-1", task, n)
}

fn receipt(task: &str, n: u32, result: AttemptResult) -> Receipt {
    Receipt {
        run: "r-1".into(),
        task: task.into(),
        worker: "local-1".into(),
        attempt: n,
        result,
        failure_source: None,
        class: None,
        score: None,
        exit_code: Some(0),
        signal: None,
        started: T0,
        finished: T0,
        duration_ms: 0,
        artifacts: vec![],
        summary: String::new(),
        verdict: None,
    }
}

/// Events of one attempt from start to its receipt.
fn attempt_events(task: &str, n: u32, counted: bool, result: AttemptResult) -> Vec<Event> {
    let a = aref(task, n);
    vec![
        Event::ChildStarted {
            path: a.actor_path().to_string(),
            kind: crate::model::NodeKind::Attempt,
            restart: crate::model::RestartType::Transient,
        },
        Event::AttemptStarted {
            attempt: a.clone(),
            worker: "local-1".into(),
            host: "local".into(),
            pid: 100,
            pgid: 100,
            proc_start: 7,
            counted,
        },
        Event::WorkerReported {
            attempt: a.clone(),
            event: WorkerEvent::Usage {
                tokens: 5,
                tool_calls: 1,
            },
        },
        Event::AttemptExited {
            attempt: a.clone(),
            exit_code: Some(0),
            signal: None,
        },
        Event::AttemptFinished {
            attempt: a.clone(),
            result,
            source: None,
            class: None,
            reason: String::new(),
        },
        Event::ReceiptRecorded(receipt(task, n, result)),
    ]
}

fn apply_all(r: &mut RunState, events: &[Event], ms: u64) {
    for e in events {
        let seq = r.last_seq + 1;
        r.apply(seq, at(ms), e);
    }
}

#[test]
fn a_task_from_queue_to_final_receipt() {
    let mut r = run();
    assert_eq!(r.status(), RunStatus::Queued);
    assert_eq!(r.counts().queued, 2);
    let evs = attempt_events("a", 1, true, AttemptResult::Pass);
    apply_all(&mut r, &evs[..2], 10);
    let t = r.task("a").unwrap();
    assert_eq!((t.phase, t.counted), (TaskPhase::Running, 1));
    assert_eq!(t.current().unwrap().pgid, Some(100));
    assert_eq!(r.status(), RunStatus::Running);
    apply_all(&mut r, &evs[2..], 20);
    apply_all(
        &mut r,
        &[Event::TaskFinished {
            run: "r-1".into(),
            task: "a".into(),
            result: AttemptResult::Pass,
            final_attempt: 1,
        }],
        30,
    );
    let t = r.task("a").unwrap();
    assert_eq!(
        (t.phase, t.result),
        (TaskPhase::Finished, Some(AttemptResult::Pass))
    );
    assert_eq!(t.final_receipt().unwrap().attempt, 1);
    assert_eq!(t.current().unwrap().tool_calls, 1);
    let c = r.counts();
    assert_eq!((c.passed, c.queued, c.running), (1, 1, 0));
}

#[test]
fn restarts_backoff_and_intensity_window() {
    let mut r = run();
    apply_all(
        &mut r,
        &attempt_events("a", 1, true, AttemptResult::Fail),
        0,
    );
    apply_all(
        &mut r,
        &[Event::RestartScheduled {
            supervisor: "/runs/r-1".into(),
            child: "a".into(),
            attempt: 2,
            delay_ms: 5000,
            deadline: at(5000),
            counted: true,
            counts_intensity: true,
        }],
        0,
    );
    let t = r.task("a").unwrap();
    assert_eq!(
        (t.phase, t.deadline, t.next_attempt, t.restarts),
        (TaskPhase::Backoff, Some(at(5000)), 2, 1)
    );
    assert_eq!(r.counts().retrying, 1);
    assert_eq!(r.window.count_within(at(1000), 60_000), 1);
    // A transparent restart (orca interruption) counts toward nothing.
    apply_all(
        &mut r,
        &attempt_events("a", 2, true, AttemptResult::Skip),
        5000,
    );
    apply_all(
        &mut r,
        &[
            Event::AttemptInterrupted {
                attempt: aref("a", 2),
                cause: InterruptCause::OrcaCrash,
            },
            Event::RestartScheduled {
                supervisor: "/runs/r-1".into(),
                child: "a".into(),
                attempt: 3,
                delay_ms: 0,
                deadline: at(6000),
                counted: false,
                counts_intensity: false,
            },
        ],
        6000,
    );
    let t = r.task("a").unwrap();
    assert_eq!(
        (t.phase, t.restarts, t.next_counted),
        (TaskPhase::Queued, 1, false)
    );
    assert_eq!(r.restart_count, 1);
    assert_eq!(r.counts().interrupted, 1);
}

#[test]
fn verdicts_amend_receipts_and_status() {
    let mut r = run();
    for task in ["a", "b"] {
        apply_all(
            &mut r,
            &attempt_events(task, 1, true, AttemptResult::Partial),
            0,
        );
        apply_all(
            &mut r,
            &[Event::TaskFinished {
                run: "r-1".into(),
                task: task.into(),
                result: AttemptResult::Partial,
                final_attempt: 1,
            }],
            0,
        );
    }
    apply_all(
        &mut r,
        &[Event::RunFinished {
            run: "r-1".into(),
            status: RunStatus::AwaitingVerdict,
        }],
        0,
    );
    assert_eq!(r.status(), RunStatus::AwaitingVerdict);
    let verdict = |v| Event::VerdictRecorded {
        attempt: aref("a", 1),
        verdict: VerdictRecord {
            verdict: v,
            who: "op".into(),
            at: T0,
            note: "looked".into(),
        },
        surface: Surface::Cli,
    };
    apply_all(&mut r, &[verdict(Verdict::Pass)], 0);
    assert_eq!(r.status(), RunStatus::AwaitingVerdict, "b still awaits");
    let receipt = r.task("a").unwrap().final_receipt().unwrap();
    assert_eq!(receipt.result, AttemptResult::Pass);
    assert_eq!(receipt.verdict.as_ref().unwrap().note, "looked");
    apply_all(
        &mut r,
        &[Event::VerdictRecorded {
            attempt: aref("b", 1),
            verdict: VerdictRecord {
                verdict: Verdict::Fail,
                who: "op".into(),
                at: T0,
                note: String::new(),
            },
            surface: Surface::Api,
        }],
        0,
    );
    assert_eq!(r.status(), RunStatus::Failed);
    assert_eq!(r.counts().source_verifier, 1);
}

#[test]
fn run_end_states() {
    let mut r = run();
    apply_all(
        &mut r,
        &[Event::RunPaused {
            run: "r-1".into(),
            surface: Surface::Cli,
        }],
        0,
    );
    assert_eq!(r.status(), RunStatus::Paused);
    apply_all(
        &mut r,
        &[
            Event::RunResumed {
                run: "r-1".into(),
                surface: Surface::Cli,
            },
            Event::Escalated {
                from: "/runs/r-1".into(),
                to: "/runs".into(),
                reason: "x".into(),
            },
            Event::RunFinished {
                run: "r-1".into(),
                status: RunStatus::Escalated,
            },
        ],
        0,
    );
    assert_eq!(r.status(), RunStatus::Escalated);
    assert_eq!(r.counts().escalated, 1);
}

#[test]
fn status_from_results_order() {
    use AttemptResult::*;
    assert_eq!(
        status_from_results([Some(Pass), Some(Pass)].into_iter()),
        RunStatus::Passed
    );
    assert_eq!(
        status_from_results([Some(Pass), Some(Partial)].into_iter()),
        RunStatus::AwaitingVerdict
    );
    assert_eq!(
        status_from_results([Some(Partial), Some(Timeout)].into_iter()),
        RunStatus::Failed
    );
    assert_eq!(
        status_from_results([Some(Skip), Some(Pass)].into_iter()),
        RunStatus::Cancelled
    );
}

#[test]
fn state_round_trips_through_bincode() {
    let mut r = run();
    apply_all(
        &mut r,
        &attempt_events("a", 1, true, AttemptResult::Pass),
        0,
    );
    let cfg = bincode::config::standard();
    let bytes = bincode::serde::encode_to_vec(&r, cfg).unwrap();
    let (back, _): (RunState, usize) = bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
    assert_eq!(back, r);
}

#[test]
fn enqueue_uses_the_index_and_rebuilds_it_after_a_snapshot() {
    let enqueue = |r: &mut RunState, seq: u64, task: &str| {
        r.apply(
            seq,
            T0,
            &Event::TaskEnqueued {
                run: "r-1".into(),
                task: task.into(),
                priority: 0,
                order: seq as u32,
            },
        )
    };
    let mut r = run();
    enqueue(&mut r, 3, "c");
    enqueue(&mut r, 4, "a"); // already there: not twice
    assert_eq!(
        r.tasks.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!((r.position("c"), r.position("zz")), (Some(2), None));
    // A snapshot does not carry the index: lookups and enqueues still see
    // every task.
    let mut back: RunState = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back.position("b"), Some(1));
    enqueue(&mut back, 5, "b");
    enqueue(&mut back, 6, "d");
    assert_eq!(
        back.tasks.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c", "d"]
    );
    assert_eq!((back.position("d"), back.unfinished), (Some(3), 4));
}
