//! The run supervisor's decisions, as a pure function.
//!
//! [`decide`] turns the run's state (the fold of its journal, see
//! [`RunState::apply`]) and a [`RunCommand`] into the events to journal and
//! the [`Effect`]s to carry out once they are durable. It reads no clock
//! (`now` is given), draws no randomness of its own (`unit_random` is
//! given) and touches no process, actor or file: the run supervisor actor
//! journals the events, folds them into its state, and acts on the effects
//! (`super::actor`). Tests drive it as given (events) / when (command) /
//! then (events, effects) — see `decide/tests.rs`.
//!
//! The run's mode is derived from its state: *ended* once `RunFinished` is
//! folded, *escalated* after `IntensityExceeded`/`Escalated`, *stopping*
//! after `RunStopRequested`, otherwise *normal*. Outside the normal mode
//! nothing restarts and waiting tasks end `skip`.

use std::sync::Arc;

use crate::alert::events::{AlertRaised, AlertSource};
use crate::journal::event::{Event, InterruptCause};
use crate::model::{
    AlertClass, AttemptRef, AttemptResult, FailureClass, NodeKind, RunStatus, Surface, Timestamp,
    VerdictRecord,
};
use crate::outcome::{interrupted, AttemptOutcome, StopCause};
use crate::path::ActorPath;
use crate::spec::TaskSpec;
use crate::supervision::{
    decide as supervise, escalation_events, ChildExit, ChildPolicy, Decision as Supervised,
    RestartWindow, Siblings, SupervisorPolicy,
};
use crate::view::{verdict_target, VerdictError};

use super::state::{status_from_results, AttemptPhase, RunState, TaskPhase};

/// What the decisions need besides the state: the run's task specs
/// (aligned with `RunState::tasks`) and its supervision policy.
#[derive(Clone, Copy, Debug)]
pub struct RunCtx<'a> {
    pub tasks: &'a [Arc<TaskSpec>],
    pub policy: &'a SupervisorPolicy,
    /// The run-level `budget`, if the spec has one.
    pub budget: Option<&'a crate::spec::RunBudget>,
}

/// Something the run supervisor must decide about.
#[derive(Clone, Debug, PartialEq)]
pub enum RunCommand {
    /// A free worker slot takes queued task `task`: start its next attempt.
    Lease {
        task: usize,
    },
    /// An attempt ended (its actor reported, or orca ended it itself).
    AttemptEnded(Box<AttemptOutcome>),
    /// The run's wall-time budget may have run out (its timer fired):
    /// past any run budget, journal it, raise `budget_exceeded` and end the
    /// waiting tasks.
    CheckBudget,
    /// A restart deadline came.
    BackoffDue {
        task: usize,
        attempt: u32,
    },
    /// Cancel the run.
    Stop {
        surface: Surface,
        reason: String,
    },
    /// Stop a task's running attempt; `restart`: a new one follows, using
    /// up none.
    Interrupt {
        task: String,
        surface: Surface,
        restart: bool,
    },
    /// Stop / restart leasing.
    Pause {
        surface: Surface,
    },
    Resume {
        surface: Surface,
    },
    /// A manual verdict on a receipt awaiting one.
    Verdict(VerdictRequest),
    /// The run's scorer failed past its intensity (its `IntensityExceeded`
    /// and `Escalated` come from the run's child table): end the run
    /// escalated.
    Escalate {
        reason: String,
    },
    /// The run was rebuilt from the journal: attempts the journal shows
    /// running were interrupted by orca's end (their process groups are
    /// already killed); attempts that ended without a decision are decided
    /// now; waiting tasks go back to the inbox or their backoff.
    Reconcile,
    /// Nothing runs or waits any more: end the run.
    Settle,
}

/// A manual verdict to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictRequest {
    /// A task id or unique prefix.
    pub task: String,
    /// The attempt (default: the latest with a receipt).
    pub attempt: Option<u32>,
    pub verdict: VerdictRecord,
    pub surface: Surface,
}

/// An effect of a decision, carried out once its events are durable —
/// except [`Effect::Enqueue`] and [`Effect::DropWaiting`], which only touch
/// the supervisor's own inbox and timers and may happen at once (a lease
/// they lead to is journaled after the decision, so it cannot overtake it).
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Spawn attempt `n` of a task in the slot reserved for it.
    Launch { task: usize, n: u32, counted: bool },
    /// Put a task in the inbox.
    Enqueue { task: usize },
    /// Arm a restart timer for `delay_ms` of monotonic time from the
    /// decision (`deadline` is the journaled wall-clock instant, used only
    /// to re-arm after a restart: a wall-clock step between deciding and
    /// arming must not stretch or cut the delay).
    Backoff {
        task: usize,
        attempt: u32,
        deadline: Timestamp,
        delay_ms: u64,
    },
    /// Stop these tasks' running attempts.
    StopAttempts {
        tasks: Vec<usize>,
        cause: InterruptCause,
    },
    /// Nothing waits any more: clear the inbox and the restart timers.
    DropWaiting,
    /// Write this attempt's receipt (as folded) to its `receipt.json`.
    WriteReceipt(AttemptRef),
    /// The run ended.
    Ended(RunStatus),
}

impl Effect {
    /// Whether the effect only touches the supervisor's own bookkeeping.
    pub fn is_internal(&self) -> bool {
        matches!(self, Effect::Enqueue { .. } | Effect::DropWaiting)
    }
}

/// What a command answers its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Done,
    /// The attempt an interrupt or restart went to.
    Attempt(AttemptRef),
    /// The attempt a verdict amended.
    Verdict(AttemptRef),
}

/// A decision: journal `events`, then carry out `effects`.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub events: Vec<Event>,
    pub effects: Vec<Effect>,
    pub answer: Answer,
}

impl Decision {
    fn new() -> Self {
        Self {
            events: Vec::new(),
            effects: Vec::new(),
            answer: Answer::Done,
        }
    }
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("run {run} has no task {task:?}")]
    NoSuchTask { run: String, task: String },
    #[error("task {task} has no running attempt (it is {state})")]
    NotRunning { task: String, state: &'static str },
    #[error("run {run} has ended")]
    Ended { run: String },
    #[error("run {run} is being suspended or cannot journal any more")]
    Halted { run: String },
    #[error("run {run}: {reason}")]
    Unavailable { run: String, reason: String },
    #[error(transparent)]
    Verdict(#[from] VerdictError),
}

/// The run's mode, derived from its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Stopping,
    Escalated,
    Ended,
}

/// The mode a state is in.
pub fn mode(state: &RunState) -> Mode {
    if state.ended_as.is_some() {
        Mode::Ended
    } else if state.escalated {
        Mode::Escalated
    } else if state.stopping {
        Mode::Stopping
    } else {
        Mode::Normal
    }
}

/// Whether task `t`'s latest attempt is live (starting, running, being
/// judged).
pub fn has_live_attempt(state: &RunState, t: usize) -> bool {
    let ts = &state.tasks[t];
    ts.phase == TaskPhase::Running && ts.current().is_some_and(|a| a.is_live())
}

/// The tasks with a live attempt.
pub fn live_tasks(state: &RunState) -> Vec<usize> {
    (0..state.tasks.len())
        .filter(|&t| has_live_attempt(state, t))
        .collect()
}

/// Decides about `cmd` (see the module docs).
pub fn decide(
    state: &RunState,
    ctx: &RunCtx<'_>,
    cmd: RunCommand,
    now: Timestamp,
    unit_random: &mut dyn FnMut() -> f64,
) -> Result<Decision, RunError> {
    let mut d = Decision::new();
    let run = &state.run;
    match cmd {
        RunCommand::Lease { task } => {
            let Some(ts) = state.tasks.get(task) else {
                return Ok(d);
            };
            // Queued, or its backoff is over (the phase changes with the
            // restart this lease journals).
            let waiting = matches!(ts.phase, TaskPhase::Queued | TaskPhase::Backoff);
            if mode(state) != Mode::Normal || state.paused || !waiting {
                return Ok(d);
            }
            if over_budget(state, ctx, now, &mut d) {
                return Ok(d);
            }
            let n = ts.next_attempt;
            let path = ActorPath::attempt(run, &ts.id, n).to_string();
            d.events.push(if ts.attempts.is_empty() {
                Event::ChildStarted {
                    path,
                    kind: NodeKind::Attempt,
                    restart: ctx.tasks[task].effective_restart(),
                }
            } else {
                Event::ChildRestarted { path, attempt: n }
            });
            d.effects.push(Effect::Launch {
                task,
                n,
                counted: ts.next_counted,
            });
        }
        RunCommand::AttemptEnded(outcome) => {
            let t = position(state, &outcome.attempt.task)?;
            let n = outcome.attempt.attempt;
            match state.tasks[t].attempt(n) {
                Some(a) if a.phase != AttemptPhase::Finished => {}
                // Not this task's live attempt (a late report): nothing.
                _ => return Ok(d),
            }
            d.events.extend(outcome.terminal_events());
            d.effects
                .push(Effect::WriteReceipt(outcome.attempt.clone()));
            let exit = classify(
                mode(state),
                outcome.stop.as_ref(),
                outcome.judgement.result,
                outcome.judgement.class,
            );
            let mut window = state.window.clone();
            end_task(
                state,
                ctx,
                &mut window,
                true,
                Ended {
                    task: t,
                    n,
                    worker: Some(outcome.receipt.worker.clone()),
                    exit,
                    result: outcome.judgement.result,
                    reason: &outcome.receipt.summary,
                },
                now,
                unit_random,
                &mut d,
            );
        }
        RunCommand::BackoffDue { task, attempt } => {
            if let Some(ts) = state.tasks.get(task) {
                if mode(state) == Mode::Normal
                    && ts.phase == TaskPhase::Backoff
                    && ts.next_attempt == attempt
                {
                    d.effects.push(Effect::Enqueue { task });
                }
            }
        }
        RunCommand::CheckBudget => {
            over_budget(state, ctx, now, &mut d);
        }
        RunCommand::Stop { surface, reason } => {
            if mode(state) != Mode::Normal {
                return Ok(d);
            }
            d.events.push(Event::RunStopRequested {
                run: run.clone(),
                surface,
                reason,
            });
            finish_waiting(state, &mut d);
            d.effects.push(Effect::StopAttempts {
                tasks: live_tasks(state),
                cause: InterruptCause::RunStopped,
            });
        }
        RunCommand::Interrupt {
            task,
            surface,
            restart,
        } => {
            let t = position(state, &task)?;
            let ts = &state.tasks[t];
            if !has_live_attempt(state, t) {
                return Err(RunError::NotRunning {
                    task: ts.id.clone(),
                    state: match ts.phase {
                        TaskPhase::Queued => "queued",
                        TaskPhase::Backoff => "waiting to retry",
                        TaskPhase::Finished => "finished",
                        TaskPhase::Running => "ending",
                    },
                });
            }
            let n = ts.current().map(|a| a.n).unwrap_or(0);
            let attempt = AttemptRef::new(run, &ts.id, n);
            d.events.push(Event::ControlRequested {
                path: ActorPath::Attempt(attempt.clone()).to_string(),
                message: if restart { "restart" } else { "interrupt" }.into(),
                surface,
            });
            d.effects.push(Effect::StopAttempts {
                tasks: vec![t],
                cause: InterruptCause::Operator { surface, restart },
            });
            d.answer = Answer::Attempt(attempt);
        }
        RunCommand::Pause { surface } => {
            if !state.paused && state.ended_as.is_none() {
                d.events.push(Event::RunPaused {
                    run: run.clone(),
                    surface,
                });
            }
        }
        RunCommand::Resume { surface } => {
            if state.paused && state.ended_as.is_none() {
                d.events.push(Event::RunResumed {
                    run: run.clone(),
                    surface,
                });
            }
        }
        RunCommand::Verdict(req) => {
            let attempt = verdict_target(state, &req.task, req.attempt)?;
            d.events.push(Event::VerdictRecorded {
                attempt: attempt.clone(),
                verdict: req.verdict,
                surface: req.surface,
            });
            d.effects.push(Effect::WriteReceipt(attempt.clone()));
            d.answer = Answer::Verdict(attempt);
        }
        RunCommand::Escalate { reason } => {
            if matches!(mode(state), Mode::Normal | Mode::Stopping) {
                escalated(state, &reason, None, now, &mut d);
            }
        }
        RunCommand::Reconcile => reconcile(state, ctx, now, unit_random, &mut d),
        RunCommand::Settle => settle(state, now, &mut d),
    }
    Ok(d)
}

fn position(state: &RunState, task: &str) -> Result<usize, RunError> {
    state.position(task).ok_or_else(|| RunError::NoSuchTask {
        run: state.run.clone(),
        task: task.to_string(),
    })
}

/// How the supervisor sees an attempt's end.
pub fn classify(
    mode: Mode,
    stop: Option<&StopCause>,
    result: AttemptResult,
    class: Option<FailureClass>,
) -> ChildExit {
    let exit = match stop.and_then(StopCause::interruption) {
        Some(InterruptCause::OrcaCrash | InterruptCause::OrcaShutdown) => {
            ChildExit::InterruptedByOrca
        }
        Some(InterruptCause::SiblingRestart { .. })
        | Some(InterruptCause::Operator { restart: true, .. }) => ChildExit::StoppedForSibling,
        Some(InterruptCause::Operator { restart: false, .. })
        | Some(InterruptCause::RunStopped) => ChildExit::Cancelled,
        None => match result {
            AttemptResult::Pass | AttemptResult::Partial => ChildExit::Normal,
            AttemptResult::Skip => ChildExit::Cancelled,
            AttemptResult::Fail | AttemptResult::Timeout => {
                ChildExit::Failed(class.unwrap_or(FailureClass::Task))
            }
        },
    };
    match (mode, exit) {
        (Mode::Normal, e) => e,
        (_, ChildExit::Normal) => ChildExit::Normal,
        (_, _) => ChildExit::Cancelled,
    }
}

/// An attempt's end, for [`end_task`].
struct Ended<'a> {
    task: usize,
    n: u32,
    /// Its worker slot, when known.
    worker: Option<String>,
    exit: ChildExit,
    result: AttemptResult,
    reason: &'a str,
}

/// Decides what follows an attempt's end: finish the task, restart it
/// (after its backoff, with its siblings under one_for_all /
/// rest_for_one), or — past the run's intensity — end the run escalated.
/// `siblings_run`: the other tasks' live attempts are running (false at
/// boot, when nothing runs yet and a restart takes no sibling along).
#[allow(clippy::too_many_arguments)]
fn end_task(
    state: &RunState,
    ctx: &RunCtx<'_>,
    window: &mut RestartWindow,
    siblings_run: bool,
    e: Ended<'_>,
    now: Timestamp,
    unit_random: &mut dyn FnMut() -> f64,
    d: &mut Decision,
) {
    let ts = &state.tasks[e.task];
    let spec = &ctx.tasks[e.task];
    let run = &state.run;
    let attempt_path = ActorPath::attempt(run, &ts.id, e.n).to_string();
    let decision = if mode(state) == Mode::Normal {
        supervise(
            ctx.policy,
            window,
            now,
            &ChildPolicy {
                restart: spec.effective_restart(),
                retry: spec.effective_retry(),
            },
            ts.counted,
            e.exit,
            unit_random(),
        )
    } else {
        Supervised::Finish { alert: None }
    };
    // A failure is journaled as one whatever follows from it.
    if let ChildExit::Failed(class) = e.exit {
        d.events.push(Event::ChildFailed {
            path: attempt_path,
            class,
            reason: e.reason.to_string(),
        });
    }
    match decision {
        Supervised::Finish { alert } => {
            let result = if e.exit == ChildExit::Cancelled && e.result != AttemptResult::Pass {
                AttemptResult::Skip
            } else {
                e.result
            };
            d.events.push(Event::TaskFinished {
                run: run.clone(),
                task: ts.id.clone(),
                result,
                final_attempt: e.n,
            });
            if let Some(class) = alert {
                let counted = ts.counted;
                let reason = match class {
                    AlertClass::RestartExhausted => format!(
                        "{} failed {counted} time{}; no attempts left: {}",
                        ts.id,
                        if counted == 1 { "" } else { "s" },
                        e.reason
                    ),
                    _ => e.reason.to_string(),
                };
                d.events.push(
                    AlertRaised::new(
                        class,
                        AlertSource::run(run),
                        Some(ts.id.clone()),
                        Some(e.n),
                        e.worker.clone(),
                        reason,
                        now,
                    )
                    .event(),
                );
            }
        }
        Supervised::Restart {
            delay_ms,
            counts_attempt,
            counts_intensity,
            siblings,
        } => {
            let next = ts.next_attempt;
            let deadline = now.plus_millis(delay_ms);
            if counts_intensity {
                window.record(now, ctx.policy.intensity.within_ms);
            }
            d.events.push(Event::RestartScheduled {
                supervisor: ActorPath::run(run).to_string(),
                child: ts.id.clone(),
                attempt: next,
                delay_ms,
                deadline,
                counted: counts_attempt,
                counts_intensity,
            });
            // The other tasks whose attempts still run (looked for only
            // here: a scan of every task at every attempt's end made a
            // 10,000-task run quadratic).
            let others = || live_tasks(state).into_iter().filter(|o| *o != e.task);
            let stop: Vec<usize> = match siblings {
                _ if !siblings_run => Vec::new(),
                Siblings::None => Vec::new(),
                Siblings::All => others().collect(),
                Siblings::Later => others()
                    .filter(|o| state.tasks[*o].order > ts.order)
                    .collect(),
            };
            if !stop.is_empty() {
                d.effects.push(Effect::StopAttempts {
                    tasks: stop,
                    cause: InterruptCause::SiblingRestart {
                        sibling: ts.id.clone(),
                    },
                });
            }
            d.effects.push(if delay_ms > 0 {
                Effect::Backoff {
                    task: e.task,
                    attempt: next,
                    deadline,
                    delay_ms,
                }
            } else {
                Effect::Enqueue { task: e.task }
            });
        }
        Supervised::Escalate {
            restarts,
            within_ms,
        } => {
            d.events.push(Event::TaskFinished {
                run: run.clone(),
                task: ts.id.clone(),
                result: e.result,
                final_attempt: e.n,
            });
            let intensity = ctx.policy.intensity;
            let reason = format!(
                "{restarts} restarts within {}s exceed the run's intensity ({} in {}s)",
                within_ms / 1000,
                intensity.max_restarts,
                intensity.within_ms / 1000
            );
            let me = ActorPath::run(run);
            d.events.extend(escalation_events(
                &me,
                restarts,
                within_ms,
                me.to_string(),
                ActorPath::Runs.to_string(),
                reason.clone(),
            ));
            escalated(state, &reason, Some(e.task), now, d);
        }
    }
}

/// What ending the run escalated means, after its `IntensityExceeded` and
/// `Escalated`: needs_human is raised, waiting tasks end `skip`, running
/// attempts (but `except`, whose end is being decided) are stopped.
fn escalated(
    state: &RunState,
    reason: &str,
    except: Option<usize>,
    now: Timestamp,
    d: &mut Decision,
) {
    d.events.push(
        AlertRaised::new(
            AlertClass::NeedsHuman,
            AlertSource::run(&state.run),
            None,
            None,
            None,
            format!("run escalated: {reason}"),
            now,
        )
        .event(),
    );
    finish_waiting(state, d);
    d.effects.push(Effect::StopAttempts {
        tasks: live_tasks(state)
            .into_iter()
            .filter(|t| Some(*t) != except)
            .collect(),
        cause: InterruptCause::RunStopped,
    });
}

/// `TaskFinished` (skip) for every task that waits (queued or in backoff),
/// and the effect that drops them from the inbox and timers.
/// Whether the run is past its run-level budget (DESIGN: it leases no new
/// attempt). On the first breach it journals `RunBudgetExceeded` and raises
/// `budget_exceeded` (no task: the run's); either way its waiting tasks end
/// skip, and running attempts finish.
fn over_budget(state: &RunState, ctx: &RunCtx<'_>, now: Timestamp, d: &mut Decision) -> bool {
    if mode(state) != Mode::Normal {
        return false;
    }
    if state.budget_exceeded.is_none() {
        let Some(budget) = ctx.budget else {
            return false;
        };
        let elapsed = now.millis_since(state.submitted) as f64 / 1000.0;
        let Some(breach) = crate::runtime::budget::run_breach(budget, &state.spend(), elapsed)
        else {
            return false;
        };
        d.events.push(Event::RunBudgetExceeded {
            run: state.run.clone(),
            limit: breach.limit(),
            detail: breach.to_string(),
        });
        d.events.push(
            AlertRaised::new(
                AlertClass::BudgetExceeded,
                AlertSource::run(&state.run),
                None,
                None,
                None,
                format!("run budget exceeded: {breach}; no new attempt is started"),
                now,
            )
            .event(),
        );
    }
    finish_waiting(state, d);
    true
}

fn finish_waiting(state: &RunState, d: &mut Decision) {
    for ts in &state.tasks {
        if matches!(ts.phase, TaskPhase::Queued | TaskPhase::Backoff) {
            d.events.push(Event::TaskFinished {
                run: state.run.clone(),
                task: ts.id.clone(),
                result: AttemptResult::Skip,
                final_attempt: ts.current().map(|a| a.n).unwrap_or(0),
            });
        }
    }
    d.effects.push(Effect::DropWaiting);
}

fn reconcile(
    state: &RunState,
    ctx: &RunCtx<'_>,
    now: Timestamp,
    unit_random: &mut dyn FnMut() -> f64,
    d: &mut Decision,
) {
    let normal = mode(state) == Mode::Normal;
    let mut window = state.window.clone();
    for (t, ts) in state.tasks.iter().enumerate() {
        match ts.phase {
            TaskPhase::Finished => {}
            TaskPhase::Queued | TaskPhase::Backoff if !normal => {}
            TaskPhase::Queued => d.effects.push(Effect::Enqueue { task: t }),
            TaskPhase::Backoff => {
                let deadline = ts.deadline.unwrap_or(now);
                d.effects.push(Effect::Backoff {
                    task: t,
                    attempt: ts.next_attempt,
                    deadline,
                    delay_ms: deadline.millis_since(now),
                })
            }
            TaskPhase::Running => {
                let Some(a) = ts.current() else {
                    continue;
                };
                let attempt = AttemptRef::new(&state.run, &ts.id, a.n);
                let (exit, result, reason) = if a.is_live() {
                    // orca died while this attempt ran.
                    let cause = InterruptCause::OrcaCrash;
                    let outcome = AttemptOutcome::by_orca(
                        attempt.clone(),
                        a.worker.clone().unwrap_or_else(|| "?".into()),
                        a.started,
                        interrupted(&cause),
                        Some(StopCause::Interrupted(cause)),
                        now,
                    );
                    d.events.extend(outcome.terminal_events());
                    d.effects.push(Effect::WriteReceipt(attempt));
                    let exit = classify(
                        mode(state),
                        outcome.stop.as_ref(),
                        outcome.judgement.result,
                        outcome.judgement.class,
                    );
                    (exit, outcome.judgement.result, outcome.receipt.summary)
                } else {
                    // It ended, but the decision about it was lost.
                    let stop = a.interrupted.clone().map(StopCause::Interrupted);
                    let result = a.result.unwrap_or(AttemptResult::Fail);
                    let exit = classify(mode(state), stop.as_ref(), result, a.class);
                    (exit, result, a.reason.clone().unwrap_or_default())
                };
                // Nothing runs yet: a restart takes no sibling along.
                end_task(
                    state,
                    ctx,
                    &mut window,
                    false,
                    Ended {
                        task: t,
                        n: a.n,
                        worker: a.worker.clone(),
                        exit,
                        result,
                        reason: &reason,
                    },
                    now,
                    unit_random,
                    d,
                );
            }
        }
    }
    if !normal {
        finish_waiting(state, d);
    }
}

fn settle(state: &RunState, now: Timestamp, d: &mut Decision) {
    if state.ended_as.is_some()
        || state.unfinished > 0
        || (0..state.tasks.len()).any(|t| has_live_attempt(state, t))
    {
        return;
    }
    let status = match mode(state) {
        Mode::Escalated => RunStatus::Escalated,
        Mode::Stopping => RunStatus::Cancelled,
        Mode::Normal | Mode::Ended => status_from_results(state.tasks.iter().map(|t| t.result)),
    };
    let c = state.counts();
    d.events.push(Event::RunFinished {
        run: state.run.clone(),
        status,
    });
    d.events.push(
        AlertRaised::new(
            AlertClass::RunCompleted,
            AlertSource::run(&state.run),
            None,
            None,
            None,
            format!(
                "run {} {status}: {} passed, {} failed, {} timed out, {} awaiting a verdict, {} skipped",
                state.run, c.passed, c.failed, c.timed_out, c.partial, c.cancelled
            ),
            now,
        )
        .event(),
    );
    d.effects.push(Effect::Ended(status));
}

#[cfg(test)]
mod tests;
