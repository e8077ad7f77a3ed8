//! Sample events, one of every [`Event`] variant: the content of the
//! committed compatibility fixture (`tests/fixtures/journal-v1/`), and data
//! for tests and benches. Changing these does not change the committed
//! fixture; the fixture test compares against the committed files.

use super::envelope::NewEvent;
use super::event::{BudgetLimit, Event, InterruptCause, LogStream, RunSubmitted, WorkerEvent};
use crate::alert::events::{
    AdapterKind, AdapterRef, AlertDelivered, AlertFailed, AlertRaised, AlertSource, ClearCause,
    ConditionKey, NotificationId, NotificationKind, NotificationPlanned, SuppressReason,
};
use crate::alert::AlertEvent;
use crate::model::{
    AlertClass, ArtifactRef, AttemptRef, AttemptResult, FailureClass, FailureSource, NodeKind,
    Receipt, RestartType, RunStatus, Score, Strategy, Surface, Timestamp, Verdict, VerdictRecord,
};

/// The number of [`Event`] variants (checked by a test against
/// [`sample_events`]).
pub const EVENT_VARIANTS: usize = 30;

/// One event of every variant, in declaration order, with plausible paths.
pub fn sample_events() -> Vec<NewEvent> {
    let run = "r-261121073500-a1b2";
    let a1 = AttemptRef::new(run, "lint", 1);
    let a2 = AttemptRef::new(run, "lint", 2);
    let t0 = Timestamp(1_795_000_000_000_000_000);
    let receipt = Receipt {
        run: run.into(),
        task: "lint".into(),
        worker: "local-1".into(),
        attempt: 2,
        result: AttemptResult::Pass,
        failure_source: None,
        class: None,
        score: Some(Score {
            value: 0.75,
            max: 1.0,
            notes: "3 of 4 checks".into(),
        }),
        exit_code: Some(0),
        signal: None,
        started: t0,
        finished: t0.plus_millis(1500),
        duration_ms: 1500,
        artifacts: vec![ArtifactRef {
            kind: "report".into(),
            path: format!(".orca/runs/{run}/lint/2/artifacts/report.md"),
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            mime: "text/markdown".into(),
            size: 4,
        }],
        summary: "lint passed — ünïcödé ok".into(),
        verdict: None,
    };
    let run_path = format!("/runs/{run}");
    let e = |actor: &str, event: Event| NewEvent::new(actor, event);
    vec![
        e(
            "/runs",
            Event::RunSubmitted(RunSubmitted {
                run: run.into(),
                name: "fixture".into(),
                spec_json: r#"{"name":"fixture","tasks":[{"id":"lint","command":["true"],"x-extra":{"a":[1,2]}}]}"#.into(),
                source: "examples/fixture.toml".into(),
                max_workers: 4,
                stale_after_ms: Some(30_000),
                depth: 0,
                parent: None,
                surface: Surface::Cli,
            }),
        ),
        e(
            &run_path,
            Event::TaskEnqueued {
                run: run.into(),
                task: "lint".into(),
                priority: -3,
                order: 0,
            },
        ),
        e(
            &run_path,
            Event::RunPaused {
                run: run.into(),
                surface: Surface::Api,
            },
        ),
        e(
            &run_path,
            Event::RunResumed {
                run: run.into(),
                surface: Surface::Cli,
            },
        ),
        e(
            &run_path,
            Event::RunStopRequested {
                run: run.into(),
                surface: Surface::Agent,
                reason: "operator asked".into(),
            },
        ),
        e(
            &run_path,
            Event::RunFinished {
                run: run.into(),
                status: RunStatus::AwaitingVerdict,
            },
        ),
        e(
            &run_path,
            Event::ChildStarted {
                path: a1.actor_path().to_string(),
                kind: NodeKind::Attempt,
                restart: RestartType::Transient,
            },
        ),
        e(
            &run_path,
            Event::ChildFailed {
                path: a1.actor_path().to_string(),
                class: FailureClass::Transient,
                reason: "exit 75".into(),
            },
        ),
        e(
            &run_path,
            Event::RestartScheduled {
                supervisor: run_path.clone(),
                child: "lint".into(),
                attempt: 2,
                delay_ms: 250,
                deadline: t0.plus_millis(250),
                counted: true,
                counts_intensity: true,
            },
        ),
        e(
            &run_path,
            Event::ChildRestarted {
                path: a2.actor_path().to_string(),
                attempt: 2,
            },
        ),
        e(
            &run_path,
            Event::IntensityExceeded {
                supervisor: run_path.clone(),
                restarts: 21,
                within_ms: 60_000,
            },
        ),
        e(
            &run_path,
            Event::Escalated {
                from: run_path.clone(),
                to: "/runs".into(),
                reason: "intensity exceeded".into(),
            },
        ),
        e(
            &run_path,
            Event::ChildStopped {
                path: a2.actor_path().to_string(),
                reason: "normal".into(),
            },
        ),
        e(
            &run_path,
            Event::SupervisorConfigured {
                path: run_path.clone(),
                strategy: Strategy::RestForOne,
                max_restarts: 20,
                within_ms: 60_000,
            },
        ),
        e(
            &a2.actor_path().to_string(),
            Event::AttemptStarted {
                attempt: a2.clone(),
                worker: "local-1".into(),
                host: "local".into(),
                pid: 4242,
                pgid: 4242,
                proc_start: 987_654,
                counted: false,
            },
        ),
        e(
            &a2.actor_path().to_string(),
            Event::WorkerReported {
                attempt: a2.clone(),
                event: WorkerEvent::Usage {
                    tokens: 1234,
                    tool_calls: 5,
                },
            },
        ),
        e(
            &a2.actor_path().to_string(),
            Event::AttemptExited {
                attempt: a2.clone(),
                exit_code: Some(0),
                signal: None,
            },
        ),
        e(
            &a1.actor_path().to_string(),
            Event::AttemptInterrupted {
                attempt: a1.clone(),
                cause: InterruptCause::Operator {
                    surface: Surface::Cli,
                    restart: true,
                },
            },
        ),
        e(
            &a2.actor_path().to_string(),
            Event::AttemptFinished {
                attempt: a2.clone(),
                result: AttemptResult::Fail,
                source: Some(FailureSource::Task),
                class: Some(FailureClass::Task),
                reason: "missing artifact: report".into(),
            },
        ),
        e(&a2.actor_path().to_string(), Event::ReceiptRecorded(receipt)),
        e(
            &run_path,
            Event::VerdictRecorded {
                attempt: a2.clone(),
                verdict: VerdictRecord {
                    verdict: Verdict::Pass,
                    who: "ada".into(),
                    at: t0.plus_millis(60_000),
                    note: "looks right".into(),
                },
                surface: Surface::Api,
            },
        ),
        e(
            &run_path,
            Event::TaskFinished {
                run: run.into(),
                task: "lint".into(),
                result: AttemptResult::Pass,
                final_attempt: 2,
            },
        ),
        e(
            "/alert-router",
            Event::AlertRaised {
                class: AlertClass::BudgetExceeded,
                run: run.into(),
                task: Some("lint".into()),
                attempt: Some(2),
                reason: "tokens".into(),
            },
        ),
        e(
            "/",
            Event::ControlRequested {
                path: a2.actor_path().to_string(),
                message: "interrupt".into(),
                surface: Surface::Worker,
            },
        ),
        e(
            "/",
            Event::DaemonStarted {
                pid: 777,
                version: "0.1.0".into(),
                address: "127.0.0.1:7878".into(),
                embedded: true,
            },
        ),
        e(
            "/",
            Event::DaemonStopped {
                pid: 777,
                reason: "SIGTERM".into(),
            },
        ),
        e(
            &a2.actor_path().to_string(),
            Event::Alert(AlertEvent::Raised(sample_alert())),
        ),
        e(
            &run_path,
            Event::AttemptUsage {
                attempt: a2.clone(),
                record: crate::runtime::UsageRecord {
                    usage: crate::runtime::Usage {
                        input_tokens: 12_000,
                        cached_input_tokens: 8_000,
                        cache_write_tokens: 500,
                        output_tokens: 900,
                        reasoning_tokens: 0,
                        tool_calls: 4,
                        turns: 3,
                    },
                    tokens: 12_900,
                    model: Some("claude-sonnet-4-5".into()),
                    cost_usd: Some(0.0216),
                    reported_cost_usd: Some(0.0231),
                },
            },
        ),
        e(
            &run_path,
            Event::RunBudgetExceeded {
                run: run.into(),
                limit: BudgetLimit::CostUsd,
                detail: "$5.0123 spent (orca's computation), over budget.max_cost_usd = $5".into(),
            },
        ),
        e(
            "/agents/nightly-watch",
            Event::Agent(crate::agent::events::AgentEvent::Woke {
                agent: "nightly-watch".into(),
                wake: "failures:4242".into(),
                source: "failures".into(),
                event_json: r#"{"event":"receipt.fail","run":"r-261121073500-a1b2","task":"lint"}"#.into(),
            }),
        ),
    ]
}

/// Whether a sample variant existed when the committed v1 fixture was
/// written (later variants were appended after it).
pub fn in_v1_fixture(e: &Event) -> bool {
    !matches!(
        e,
        Event::Alert(_)
            | Event::AttemptUsage { .. }
            | Event::RunBudgetExceeded { .. }
            | Event::Agent(_)
    )
}

fn sample_alert() -> AlertRaised {
    AlertRaised {
        id: "a-261121073510-9f3c01aa".into(),
        class: AlertClass::Stale,
        source: AlertSource::run("r-261121073500-a1b2"),
        task: Some("lint".into()),
        attempt: Some(2),
        worker: Some("local-1".into()),
        reason: "no output for 300s".into(),
        at: Timestamp(1_795_000_000_500_000_000),
    }
}

/// One alert event of every kind the router writes.
pub fn sample_alert_events() -> Vec<NewEvent> {
    let raised = sample_alert();
    let key = ConditionKey::of(&raised);
    let adapter = AdapterRef {
        name: "ops".into(),
        kind: AdapterKind::Slack,
    };
    let id = NotificationId::new(&raised.id, 1);
    let at = Timestamp(1_795_000_001_000_000_000);
    let r = |e: AlertEvent| NewEvent::new("/alert-router", Event::Alert(e));
    vec![
        r(AlertEvent::Suppressed {
            alert: raised.id.clone(),
            why: SuppressReason::DryRun {
                adapters: vec![adapter.clone()],
            },
        }),
        r(AlertEvent::Grouped {
            alert: raised.id.clone(),
            group: raised.id.clone(),
            flush_at: at,
            adapters: vec![adapter.clone()],
        }),
        r(AlertEvent::GroupFlushed {
            group: raised.id.clone(),
        }),
        r(AlertEvent::ConditionOpened {
            key: key.clone(),
            alert: raised.id.clone(),
        }),
        r(AlertEvent::RepeatScheduled {
            key: key.clone(),
            at: Some(at),
        }),
        r(AlertEvent::Planned(NotificationPlanned {
            id: id.clone(),
            kind: NotificationKind::Trigger,
            at,
            members: vec![raised.id.clone()],
            adapters: vec![adapter.clone()],
        })),
        r(AlertEvent::Failed(AlertFailed {
            id: id.clone(),
            adapter: adapter.clone(),
            status: Some(503),
            attempts: 1,
            error: "HTTP 503".into(),
            retry_at: Some(at),
        })),
        r(AlertEvent::Delivered(AlertDelivered {
            id,
            adapter,
            status: 200,
            attempts: 2,
        })),
        r(AlertEvent::ConditionCleared {
            key,
            cause: ClearCause::AttemptEnded,
        }),
    ]
}

/// More worker reports, covering every [`WorkerEvent`] and the other
/// nested enums.
pub fn sample_worker_events() -> Vec<NewEvent> {
    let a = AttemptRef::new("r-261121073500-a1b2", "build", 1);
    let path = a.actor_path().to_string();
    let w = |event: WorkerEvent| {
        NewEvent::new(
            &path,
            Event::WorkerReported {
                attempt: a.clone(),
                event,
            },
        )
    };
    vec![
        w(WorkerEvent::Running),
        w(WorkerEvent::RunningTool {
            tool: "bash".into(),
        }),
        w(WorkerEvent::Artifact {
            kind: "patch".into(),
            path: "artifacts/patch.diff".into(),
        }),
        w(WorkerEvent::NeedsHuman {
            reason: "ambiguous spec".into(),
        }),
        w(WorkerEvent::Completed),
        w(WorkerEvent::Failed {
            error: "boom".into(),
        }),
        w(WorkerEvent::Stale { silent_ms: 90_000 }),
        w(WorkerEvent::LogCapped {
            stream: LogStream::Stderr,
        }),
        w(WorkerEvent::BudgetExceeded {
            limit: BudgetLimit::ToolCalls,
        }),
        NewEvent::new(
            &path,
            Event::AttemptInterrupted {
                attempt: a.clone(),
                cause: InterruptCause::SiblingRestart {
                    sibling: "/runs/r/attempts/x:1".into(),
                },
            },
        ),
    ]
}
