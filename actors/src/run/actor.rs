//! The run supervisor's implementation (see the module docs).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::task::AbortHandle;

use super::lease::{Inbox, Slot, Slots};
use super::state::{status_from_results, AttemptPhase, RunState, TaskPhase};
use super::RunMsg;
use crate::attempt::{AttemptActor, AttemptArgs, AttemptEnd, AttemptMsg, StopCause};
use crate::journal::event::{Event, InterruptCause};
use crate::journal::NewEvent;
use crate::model::{
    paths, AlertClass, AttemptRef, AttemptResult, FailureClass, FailureSource, NodeKind, Receipt,
    RunStatus, Surface, Timestamp,
};
use crate::runs::RunsMsg;
use crate::scorer::actor::ScorerArgs;
use crate::scorer::{ScorerActor, ScorerMsg};
use crate::services::Services;
use crate::spec::{RunSpec, TaskSpec};
use crate::supervision::{
    decide, ChildExit, ChildPolicy, Decision, RestartWindow, Siblings, SupervisorPolicy,
};

/// How the supervisor starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// A new run (its submission is already journaled).
    New,
    /// A run rebuilt from the journal (`orca run --resume`, daemon start,
    /// or `runs` restarting a failed supervisor).
    Resume,
}

/// What the run supervisor is given.
#[derive(Clone)]
pub struct RunArgs {
    /// The run folded so far.
    pub state: RunState,
    pub spec: Arc<RunSpec>,
    pub services: Services,
    pub mode: RunMode,
    /// `--stale-after`: overrides the run's `stale_after_seconds`.
    pub stale_after: Option<Duration>,
    /// Where to report the run's end.
    pub parent: Option<ActorRef<RunsMsg>>,
}

/// An effect of a journaled decision, carried out once it is durable.
pub enum Effect {
    /// Spawn attempt `n` of a task in its reserved slot.
    Launch { task: usize, n: u32, counted: bool },
    /// Arm a backoff timer.
    Backoff {
        task: usize,
        attempt: u32,
        deadline: Timestamp,
    },
    /// Stop these tasks' running attempts.
    StopAttempts { tasks: Vec<usize>, cause: StopCause },
    /// Answer a caller.
    Reply(RpcReplyPort<()>),
    /// Answer an interrupt.
    ReplyInterrupt(RpcReplyPort<Result<String, String>>, String),
    /// The run ended.
    Ended(RunStatus),
}

impl fmt::Debug for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Launch { task, n, counted } => {
                write!(f, "Launch({task}:{n}, counted: {counted})")
            }
            Effect::Backoff { task, attempt, .. } => write!(f, "Backoff({task}:{attempt})"),
            Effect::StopAttempts { tasks, cause } => {
                write!(f, "StopAttempts({tasks:?}, {cause:?})")
            }
            Effect::Reply(_) => f.write_str("Reply"),
            Effect::ReplyInterrupt(_, a) => write!(f, "ReplyInterrupt({a})"),
            Effect::Ended(s) => write!(f, "Ended({s})"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Normal,
    Stopping,
    Escalated,
    Suspending,
    Failed,
}

struct Live {
    n: u32,
    slot: Slot,
    actor: Option<ActorRef<AttemptMsg>>,
    pending_stop: Option<StopCause>,
}

/// The run supervisor.
#[derive(Debug, Default)]
pub struct RunSupervisor;

/// Its state.
pub struct Sup {
    run: String,
    path: String,
    spec: Arc<RunSpec>,
    /// Task specs, aligned with `state.tasks`.
    tasks: Vec<Arc<TaskSpec>>,
    index: HashMap<String, usize>,
    state: RunState,
    policy: SupervisorPolicy,
    services: Services,
    slots: Slots,
    inbox: Inbox,
    running: HashMap<usize, Live>,
    by_actor: HashMap<ActorId, usize>,
    backoffs: HashMap<usize, AbortHandle>,
    mode: Mode,
    boot_mode: RunMode,
    suspend_replies: Vec<RpcReplyPort<()>>,
    parent: Option<ActorRef<RunsMsg>>,
    stale_after: Option<Duration>,
    ended: bool,
    scorer: Option<ActorRef<ScorerMsg>>,
    scorer_window: RestartWindow,
}

impl Actor for RunSupervisor {
    type Msg = RunMsg;
    type State = Sup;
    type Arguments = RunArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RunMsg>,
        args: RunArgs,
    ) -> Result<Sup, ActorProcessingErr> {
        let run = args.state.run.clone();
        let path = paths::run(&run);
        args.services
            .registry
            .register(path.clone(), NodeKind::Run, myself.get_cell());
        let by_id: HashMap<&str, &TaskSpec> =
            args.spec.tasks.iter().map(|t| (t.id.as_str(), t)).collect();
        let mut tasks = Vec::with_capacity(args.state.tasks.len());
        for t in &args.state.tasks {
            let spec = by_id.get(t.id.as_str()).ok_or_else(|| {
                format!("task {} is in the journal but not in the run's spec", t.id)
            })?;
            tasks.push(Arc::new((*spec).clone()));
        }
        let index = args
            .state
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        let policy =
            SupervisorPolicy::for_run(&args.spec, args.services.settings.grace.as_millis() as u64);
        let slots = Slots::new(&args.spec, args.state.max_workers);
        myself.cast(RunMsg::Boot)?;
        Ok(Sup {
            run,
            path,
            spec: args.spec,
            tasks,
            index,
            state: args.state,
            policy,
            services: args.services,
            slots,
            inbox: Inbox::default(),
            running: HashMap::new(),
            by_actor: HashMap::new(),
            backoffs: HashMap::new(),
            mode: Mode::Normal,
            boot_mode: args.mode,
            suspend_replies: Vec::new(),
            parent: args.parent,
            stale_after: args.stale_after,
            ended: false,
            scorer: None,
            scorer_window: RestartWindow::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RunMsg>,
        msg: RunMsg,
        s: &mut Sup,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RunMsg::Boot => s.boot(&myself).await?,
            RunMsg::AttemptEnded(end) => {
                let Some(&t) = s.index.get(&end.attempt.task) else {
                    return Ok(());
                };
                match s.running.get(&t) {
                    Some(live) if live.n == end.attempt.attempt => {}
                    _ => return Ok(()),
                }
                s.release(t);
                s.on_end(&myself, t, end, Vec::new());
            }
            RunMsg::Persisted(effects) => {
                for e in effects {
                    s.effect(&myself, e).await;
                }
            }
            RunMsg::BackoffDue { task, attempt } => {
                if let Some(&t) = s.index.get(&task) {
                    s.backoffs.remove(&t);
                    let ts = &s.state.tasks[t];
                    if s.mode == Mode::Normal
                        && ts.phase == TaskPhase::Backoff
                        && ts.next_attempt == attempt
                    {
                        s.enqueue(t);
                        s.lease(&myself);
                    }
                }
            }
            RunMsg::Stop {
                surface,
                reason,
                reply,
            } => s.stop(&myself, surface, reason, reply),
            RunMsg::Pause { surface, reply } => {
                let mut effects = Vec::new();
                if let Some(r) = reply {
                    effects.push(Effect::Reply(r));
                }
                if !s.state.paused && !s.ended {
                    s.persist(
                        &myself,
                        vec![Event::RunPaused {
                            run: s.run.clone(),
                            surface,
                        }],
                        effects,
                    );
                } else {
                    s.persist(&myself, Vec::new(), effects);
                }
            }
            RunMsg::Resume { surface, reply } => {
                let mut effects = Vec::new();
                if let Some(r) = reply {
                    effects.push(Effect::Reply(r));
                }
                if s.state.paused && !s.ended {
                    s.persist(
                        &myself,
                        vec![Event::RunResumed {
                            run: s.run.clone(),
                            surface,
                        }],
                        effects,
                    );
                    s.lease(&myself);
                } else {
                    s.persist(&myself, Vec::new(), effects);
                }
            }
            RunMsg::Interrupt {
                task,
                surface,
                restart,
                reply,
            } => s.interrupt(&myself, &task, surface, restart, reply),
            RunMsg::Suspend { reply } => {
                s.mode = Mode::Suspending;
                for (_, h) in s.backoffs.drain() {
                    h.abort();
                }
                s.inbox.clear();
                if let Some(r) = reply {
                    s.suspend_replies.push(r);
                }
                for live in s.running.values() {
                    if let Some(a) = &live.actor {
                        let _ = a.cast(AttemptMsg::Stop(StopCause::Shutdown));
                    }
                }
                s.maybe_suspended(&myself);
            }
            RunMsg::Get(reply) => {
                let _ = reply.send(s.state.clone());
            }
            RunMsg::JournalFailed(reason) => {
                if s.mode != Mode::Failed {
                    tracing::error!(run = %s.run, %reason, "journal append failed: stopping the run's attempts");
                    s.mode = Mode::Failed;
                    s.inbox.clear();
                    for (_, h) in s.backoffs.drain() {
                        h.abort();
                    }
                    for live in s.running.values() {
                        if let Some(a) = &live.actor {
                            let _ = a.cast(AttemptMsg::Stop(StopCause::Shutdown));
                        }
                    }
                    if let Some(p) = &s.parent {
                        let _ = p.cast(RunsMsg::RunFailed {
                            run: s.run.clone(),
                            reason,
                        });
                    }
                    if s.running.is_empty() {
                        myself.stop(Some("journal failed".into()));
                    }
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RunMsg>,
        evt: SupervisionEvent,
        s: &mut Sup,
    ) -> Result<(), ActorProcessingErr> {
        let is_scorer = |cell: &ractor::ActorCell| {
            s.scorer
                .as_ref()
                .is_some_and(|sc| sc.get_id() == cell.get_id())
        };
        match evt {
            SupervisionEvent::ActorFailed(cell, err) if is_scorer(&cell) => {
                s.scorer_failed(&myself, err.to_string()).await;
            }
            SupervisionEvent::ActorTerminated(cell, _, why) if is_scorer(&cell) => {
                // The scorer stops only with its run.
                if !s.ended && !matches!(s.mode, Mode::Suspending | Mode::Failed) {
                    s.scorer_failed(&myself, why.unwrap_or_else(|| "stopped".into()))
                        .await;
                }
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(t) = s.by_actor.remove(&cell.get_id()) {
                    s.attempt_crashed(&myself, t, err.to_string()).await;
                }
            }
            // A clean stop follows the attempt's AttemptEnded message.
            SupervisionEvent::ActorTerminated(..)
            | SupervisionEvent::ActorStarted(_)
            | SupervisionEvent::ProcessGroupChanged(_) => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RunMsg>,
        s: &mut Sup,
    ) -> Result<(), ActorProcessingErr> {
        for (_, h) in s.backoffs.drain() {
            h.abort();
        }
        s.services.registry.unregister(&s.path);
        for r in s.suspend_replies.drain(..) {
            let _ = r.send(());
        }
        Ok(())
    }
}

impl Sup {
    /// Journals `events` (folded into the state now: appends are ordered)
    /// and carries out `effects` once they are durable.
    fn persist(&mut self, myself: &ActorRef<RunMsg>, events: Vec<Event>, effects: Vec<Effect>) {
        if events.is_empty() {
            if !effects.is_empty() {
                let _ = myself.cast(RunMsg::Persisted(effects));
            }
            return;
        }
        let now = Timestamp::now();
        for e in &events {
            let seq = self.state.last_seq;
            self.state.apply(seq, now, e);
        }
        self.append_then(myself, events, effects);
    }

    /// Appends events already folded into the state; their effects come
    /// back as `Persisted` once durable (or `JournalFailed`).
    fn append_then(&self, myself: &ActorRef<RunMsg>, events: Vec<Event>, effects: Vec<Effect>) {
        let batch = events
            .into_iter()
            .map(|e| NewEvent::new(self.path.clone(), e))
            .collect();
        let pending = self.services.journal.append(batch);
        let me = myself.clone();
        tokio::spawn(async move {
            let msg = match pending.await {
                Ok(_) => RunMsg::Persisted(effects),
                Err(e) => RunMsg::JournalFailed(e.to_string()),
            };
            let _ = me.cast(msg);
        });
    }

    fn enqueue(&mut self, t: usize) {
        let ts = &self.state.tasks[t];
        let caps = self.tasks[t].required_capabilities().to_vec();
        self.inbox.push(t, ts.priority, ts.order, &caps);
    }

    fn release(&mut self, t: usize) {
        if let Some(live) = self.running.remove(&t) {
            self.slots.release(&live.slot);
            if let Some(a) = live.actor {
                self.by_actor.remove(&a.get_id());
            }
        }
    }

    /// Leases queued tasks to free slots.
    fn lease(&mut self, myself: &ActorRef<RunMsg>) {
        if self.mode != Mode::Normal || self.state.paused || self.ended {
            return;
        }
        let mut events = Vec::new();
        let mut effects = Vec::new();
        while let Some((t, slot)) = self.inbox.next(&mut self.slots) {
            let ts = &self.state.tasks[t];
            let (n, counted) = (ts.next_attempt, ts.next_counted);
            let path = paths::attempt(&self.run, &ts.id, n);
            events.push(if ts.attempts.is_empty() {
                Event::ChildStarted {
                    path,
                    kind: NodeKind::Attempt,
                    restart: self.tasks[t].effective_restart(),
                }
            } else {
                Event::ChildRestarted { path, attempt: n }
            });
            self.running.insert(
                t,
                Live {
                    n,
                    slot,
                    actor: None,
                    pending_stop: None,
                },
            );
            effects.push(Effect::Launch {
                task: t,
                n,
                counted,
            });
            // Fold the start now so the next lease of the same task (none
            // while this one runs) and views see it.
            let last = events.len() - 1;
            let e = events[last].clone();
            let seq = self.state.last_seq;
            self.state.apply(seq, Timestamp::now(), &e);
        }
        if !events.is_empty() {
            // Already folded above.
            self.append_then(myself, events, effects);
        }
    }

    async fn effect(&mut self, myself: &ActorRef<RunMsg>, e: Effect) {
        match e {
            Effect::Launch { task, n, counted } => self.launch(myself, task, n, counted).await,
            Effect::Backoff {
                task,
                attempt,
                deadline,
            } => {
                if self.mode != Mode::Normal {
                    return;
                }
                let id = self.state.tasks[task].id.clone();
                let delay = Duration::from_millis(deadline.millis_since(Timestamp::now()));
                let h = myself.send_after(delay, move || RunMsg::BackoffDue { task: id, attempt });
                if let Some(old) = self.backoffs.insert(task, h.abort_handle()) {
                    old.abort();
                }
            }
            Effect::StopAttempts { tasks, cause } => {
                for t in tasks {
                    if let Some(live) = self.running.get_mut(&t) {
                        match &live.actor {
                            Some(a) => {
                                let _ = a.cast(AttemptMsg::Stop(cause.clone()));
                            }
                            None => live.pending_stop = Some(cause.clone()),
                        }
                    }
                }
            }
            Effect::Reply(r) => {
                let _ = r.send(());
            }
            Effect::ReplyInterrupt(r, attempt) => {
                let _ = r.send(Ok(attempt));
            }
            Effect::Ended(status) => {
                if let Some(p) = &self.parent {
                    let _ = p.cast(RunsMsg::RunEnded {
                        run: self.run.clone(),
                        status,
                    });
                }
                myself.stop(None);
            }
        }
    }

    async fn launch(&mut self, myself: &ActorRef<RunMsg>, t: usize, n: u32, counted: bool) {
        let Some(live) = self.running.get(&t) else {
            return;
        };
        if live.n != n {
            return;
        }
        match self.mode {
            Mode::Normal | Mode::Stopping | Mode::Escalated => {}
            Mode::Suspending | Mode::Failed => {
                // Never started: a later resume restarts it.
                self.release(t);
                self.maybe_suspended(myself);
                return;
            }
        }
        let slot = live.slot.clone();
        let worker_spec = match &slot {
            Slot::Declared(i) => self.spec.workers.get(*i),
            Slot::Local(_) => None,
        };
        let host = self.services.host_for(worker_spec);
        let task = self.tasks[t].clone();
        let stale_after = task
            .stale_after_seconds
            .map(|s| s.as_duration())
            .or(self.stale_after)
            .unwrap_or_else(|| self.spec.effective_stale_after(&task).as_duration());
        let attempt = AttemptRef::new(&self.run, &task.id, n);
        let args = AttemptArgs {
            attempt: attempt.clone(),
            worker: self.slots.name(&slot),
            counted,
            task,
            spec: self.spec.clone(),
            stale_after,
            spawn_depth: self.state.depth,
            host_allowlist: worker_spec
                .map(|w| w.host.env_allowlist().to_vec())
                .unwrap_or_default(),
            host,
            services: self.services.clone(),
            supervisor: myself.clone(),
            scorer: self.scorer.clone(),
        };
        match Actor::spawn_linked(None, AttemptActor, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                self.by_actor.insert(actor.get_id(), t);
                if let Some(live) = self.running.get_mut(&t) {
                    if let Some(cause) = live.pending_stop.take() {
                        let _ = actor.cast(AttemptMsg::Stop(cause));
                    }
                    live.actor = Some(actor);
                }
                if matches!(self.mode, Mode::Stopping | Mode::Escalated) {
                    if let Some(a) = self.running.get(&t).and_then(|l| l.actor.as_ref()) {
                        let _ = a.cast(AttemptMsg::Stop(StopCause::RunStopped));
                    }
                }
            }
            Err(e) => {
                tracing::error!(%attempt, error = %e, "cannot spawn the attempt actor");
                self.release(t);
                let end = AttemptEnd {
                    attempt: attempt.clone(),
                    worker: self.slots.name(&slot),
                    result: AttemptResult::Fail,
                    class: Some(FailureClass::Transient),
                    stop: None,
                    reason: format!("orca could not start the attempt: {e}"),
                };
                let terminal = self.terminal_events(&end, FailureSource::Transport);
                self.on_end(myself, t, end, terminal);
            }
        }
    }

    /// The terminal events for an attempt that orca ends itself (its actor
    /// could not report).
    fn terminal_events(&self, end: &AttemptEnd, source: FailureSource) -> Vec<Event> {
        let started = self.state.tasks[self.index[&end.attempt.task]]
            .attempt(end.attempt.attempt)
            .map(|a| (a.started, a.worker.clone()))
            .unwrap_or((Timestamp::now(), None));
        let now = Timestamp::now();
        let receipt = Receipt {
            run: end.attempt.run.clone(),
            task: end.attempt.task.clone(),
            worker: started.1.unwrap_or_else(|| end.worker.clone()),
            attempt: end.attempt.attempt,
            result: end.result,
            failure_source: Some(source),
            class: end.class,
            score: None,
            exit_code: None,
            signal: None,
            started: started.0,
            finished: now,
            duration_ms: now.millis_since(started.0),
            artifacts: Vec::new(),
            summary: end.reason.clone(),
            verdict: None,
        };
        crate::attempt::actor::write_receipt_file(
            &self
                .services
                .ws
                .attempt_dir(&end.attempt.run, &end.attempt.task, end.attempt.attempt),
            &receipt,
        );
        vec![
            Event::AttemptFinished {
                attempt: end.attempt.clone(),
                result: end.result,
                source: Some(source),
                class: end.class,
                reason: end.reason.clone(),
            },
            Event::ReceiptRecorded(receipt),
        ]
    }

    /// Classifies an attempt's end as its supervisor sees it.
    fn classify(&self, end: &AttemptEnd) -> ChildExit {
        let exit = match &end.stop {
            Some(StopCause::Shutdown) => ChildExit::InterruptedByOrca,
            Some(StopCause::Sibling { .. }) | Some(StopCause::Operator { restart: true, .. }) => {
                ChildExit::StoppedForSibling
            }
            Some(StopCause::Operator { restart: false, .. }) | Some(StopCause::RunStopped) => {
                ChildExit::Cancelled
            }
            _ => match end.result {
                AttemptResult::Pass | AttemptResult::Partial => ChildExit::Normal,
                AttemptResult::Skip => ChildExit::Cancelled,
                AttemptResult::Fail | AttemptResult::Timeout => {
                    ChildExit::Failed(end.class.unwrap_or(FailureClass::Task))
                }
            },
        };
        match (self.mode, exit) {
            (Mode::Normal, e) => e,
            (_, ChildExit::Normal) => ChildExit::Normal,
            (_, _) => ChildExit::Cancelled,
        }
    }

    /// Decides about an ended attempt (whose slot is already released) and
    /// journals the decision after `prefix` (terminal events orca wrote for
    /// the attempt itself, if any).
    fn on_end(&mut self, myself: &ActorRef<RunMsg>, t: usize, end: AttemptEnd, prefix: Vec<Event>) {
        if matches!(self.mode, Mode::Suspending | Mode::Failed) {
            if !prefix.is_empty() {
                self.persist(myself, prefix, Vec::new());
            }
            self.maybe_suspended(myself);
            return;
        }
        let mut events = prefix;
        let mut effects = Vec::new();
        let exit = self.classify(&end);
        let task = self.tasks[t].clone();
        let child = ChildPolicy {
            restart: task.effective_restart(),
            retry: task.effective_retry(),
        };
        let now = Timestamp::now();
        let counted = self.state.tasks[t].counted;
        let attempt_path = end.attempt.actor_path();
        let decision = if self.mode == Mode::Normal {
            decide(
                &self.policy,
                &self.state.window,
                now,
                &child,
                counted,
                exit,
                rand::random::<f64>(),
            )
        } else {
            Decision::Finish { alert: None }
        };
        let failed = |events: &mut Vec<Event>| {
            if let ChildExit::Failed(class) = exit {
                events.push(Event::ChildFailed {
                    path: attempt_path.clone(),
                    class,
                    reason: end.reason.clone(),
                });
            }
        };
        match decision {
            Decision::Finish { alert } => {
                // A failure is journaled as one whatever follows from it.
                failed(&mut events);
                let result = if exit == ChildExit::Cancelled && end.result != AttemptResult::Pass {
                    AttemptResult::Skip
                } else {
                    end.result
                };
                events.push(Event::TaskFinished {
                    run: self.run.clone(),
                    task: task.id.clone(),
                    result,
                    final_attempt: end.attempt.attempt,
                });
                if let Some(class) = alert {
                    events.push(Event::AlertRaised {
                        class,
                        run: self.run.clone(),
                        task: Some(task.id.clone()),
                        attempt: Some(end.attempt.attempt),
                        reason: match class {
                            AlertClass::RestartExhausted => format!(
                                "{} failed {} time{}; no attempts left: {}",
                                task.id,
                                counted,
                                if counted == 1 { "" } else { "s" },
                                end.reason
                            ),
                            _ => end.reason.clone(),
                        },
                    });
                }
            }
            Decision::Restart {
                delay_ms,
                counts_attempt,
                counts_intensity,
                siblings,
            } => {
                failed(&mut events);
                let next = self.state.tasks[t].next_attempt;
                let deadline = now.plus_millis(delay_ms);
                events.push(Event::RestartScheduled {
                    supervisor: self.path.clone(),
                    child: task.id.clone(),
                    attempt: next,
                    delay_ms,
                    deadline,
                    counted: counts_attempt,
                    counts_intensity,
                });
                let order = self.state.tasks[t].order;
                let others: Vec<usize> = match siblings {
                    Siblings::None => Vec::new(),
                    Siblings::All => self.running.keys().copied().collect(),
                    Siblings::Later => self
                        .running
                        .keys()
                        .copied()
                        .filter(|o| self.state.tasks[*o].order > order)
                        .collect(),
                };
                if !others.is_empty() {
                    effects.push(Effect::StopAttempts {
                        tasks: others,
                        cause: StopCause::Sibling {
                            sibling: task.id.clone(),
                        },
                    });
                }
                if delay_ms > 0 {
                    effects.push(Effect::Backoff {
                        task: t,
                        attempt: next,
                        deadline,
                    });
                }
            }
            Decision::Escalate {
                restarts,
                within_ms,
            } => {
                failed(&mut events);
                events.push(Event::TaskFinished {
                    run: self.run.clone(),
                    task: task.id.clone(),
                    result: end.result,
                    final_attempt: end.attempt.attempt,
                });
                let reason = format!(
                    "{restarts} restarts within {}s exceed the run's intensity ({} in {}s)",
                    within_ms / 1000,
                    self.policy.intensity.max_restarts,
                    self.policy.intensity.within_ms / 1000
                );
                let (e, f) = self.escalate(reason, restarts, within_ms);
                events.extend(e);
                effects.extend(f);
            }
        }
        let requeue = matches!(
            events.last(),
            Some(Event::RestartScheduled { delay_ms: 0, .. })
        );
        self.persist(myself, events, effects);
        if requeue {
            self.enqueue(t);
        }
        self.lease(myself);
        self.check_done(myself);
    }

    /// Past an intensity: the events that end the run escalated and the
    /// effect that stops its attempts.
    fn escalate(
        &mut self,
        reason: String,
        restarts: u32,
        within_ms: u64,
    ) -> (Vec<Event>, Vec<Effect>) {
        let mut events = vec![
            Event::IntensityExceeded {
                supervisor: self.path.clone(),
                restarts,
                within_ms,
            },
            Event::Escalated {
                from: self.path.clone(),
                to: paths::RUNS.to_string(),
                reason: reason.clone(),
            },
            Event::AlertRaised {
                class: AlertClass::NeedsHuman,
                run: self.run.clone(),
                task: None,
                attempt: None,
                reason: format!("run escalated: {reason}"),
            },
        ];
        self.mode = Mode::Escalated;
        events.extend(self.finish_waiting_tasks());
        let effects = vec![Effect::StopAttempts {
            tasks: self.running.keys().copied().collect(),
            cause: StopCause::RunStopped,
        }];
        (events, effects)
    }

    /// `TaskFinished` (skip) for every task that waits (queued or in
    /// backoff); clears the inbox and timers.
    fn finish_waiting_tasks(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        self.inbox.clear();
        for (_, h) in self.backoffs.drain() {
            h.abort();
        }
        for ts in &self.state.tasks {
            if matches!(ts.phase, TaskPhase::Queued | TaskPhase::Backoff)
                && !self.running.contains_key(&self.index[&ts.id])
            {
                events.push(Event::TaskFinished {
                    run: self.run.clone(),
                    task: ts.id.clone(),
                    result: AttemptResult::Skip,
                    final_attempt: ts.current().map(|a| a.n).unwrap_or(0),
                });
            }
        }
        events
    }

    fn check_done(&mut self, myself: &ActorRef<RunMsg>) {
        if self.ended
            || matches!(self.mode, Mode::Suspending | Mode::Failed)
            || !self.running.is_empty()
            || !self.inbox.is_empty()
        {
            return;
        }
        if self.state.unfinished > 0 {
            return;
        }
        let status = match self.mode {
            Mode::Escalated => RunStatus::Escalated,
            Mode::Stopping => RunStatus::Cancelled,
            _ => status_from_results(self.state.tasks.iter().map(|t| t.result)),
        };
        self.ended = true;
        let c = self.state.counts();
        self.persist(
            myself,
            vec![
                Event::RunFinished {
                    run: self.run.clone(),
                    status,
                },
                Event::AlertRaised {
                    class: AlertClass::RunCompleted,
                    run: self.run.clone(),
                    task: None,
                    attempt: None,
                    reason: format!(
                        "run {} {status}: {} passed, {} failed, {} timed out, {} awaiting a verdict, {} skipped",
                        self.run, c.passed, c.failed, c.timed_out, c.partial, c.cancelled
                    ),
                },
            ],
            vec![Effect::Ended(status)],
        );
    }

    fn stop(
        &mut self,
        myself: &ActorRef<RunMsg>,
        surface: Surface,
        reason: String,
        reply: Option<RpcReplyPort<()>>,
    ) {
        let mut effects = Vec::new();
        if let Some(r) = reply {
            effects.push(Effect::Reply(r));
        }
        if self.ended || self.mode != Mode::Normal {
            self.persist(myself, Vec::new(), effects);
            return;
        }
        self.mode = Mode::Stopping;
        let mut events = vec![Event::RunStopRequested {
            run: self.run.clone(),
            surface,
            reason,
        }];
        events.extend(self.finish_waiting_tasks());
        effects.push(Effect::StopAttempts {
            tasks: self.running.keys().copied().collect(),
            cause: StopCause::RunStopped,
        });
        self.persist(myself, events, effects);
        self.check_done(myself);
    }

    fn interrupt(
        &mut self,
        myself: &ActorRef<RunMsg>,
        task: &str,
        surface: Surface,
        restart: bool,
        reply: Option<RpcReplyPort<Result<String, String>>>,
    ) {
        let Some(&t) = self.index.get(task) else {
            if let Some(r) = reply {
                let _ = r.send(Err(format!("run {} has no task {task}", self.run)));
            }
            return;
        };
        let Some(live) = self.running.get(&t) else {
            if let Some(r) = reply {
                let phase = self.state.tasks[t].phase;
                let _ = r.send(Err(format!(
                    "task {task} has no running attempt (it is {})",
                    match phase {
                        TaskPhase::Queued => "queued",
                        TaskPhase::Backoff => "waiting to retry",
                        TaskPhase::Finished => "finished",
                        TaskPhase::Running => "starting",
                    }
                )));
            }
            return;
        };
        let attempt = AttemptRef::new(&self.run, task, live.n);
        let mut effects = vec![Effect::StopAttempts {
            tasks: vec![t],
            cause: StopCause::Operator { surface, restart },
        }];
        if let Some(r) = reply {
            effects.push(Effect::ReplyInterrupt(r, attempt.to_string()));
        }
        self.persist(
            myself,
            vec![Event::ControlRequested {
                path: attempt.actor_path(),
                message: if restart { "restart" } else { "interrupt" }.into(),
                surface,
            }],
            effects,
        );
    }

    fn maybe_suspended(&mut self, myself: &ActorRef<RunMsg>) {
        if matches!(self.mode, Mode::Suspending | Mode::Failed) && self.running.is_empty() {
            for r in self.suspend_replies.drain(..) {
                let _ = r.send(());
            }
            myself.stop(Some("suspended".into()));
        }
    }

    async fn attempt_crashed(&mut self, myself: &ActorRef<RunMsg>, t: usize, err: String) {
        let Some(live) = self.running.get(&t) else {
            return;
        };
        let n = live.n;
        let worker = self.slots.name(&live.slot);
        let attempt = AttemptRef::new(&self.run, &self.state.tasks[t].id, n);
        tracing::error!(%attempt, error = %err, "attempt actor failed");
        self.kill_if_ours(&attempt, t).await;
        self.release(t);
        let finished = self.state.tasks[t]
            .attempt(n)
            .is_some_and(|a| a.phase == AttemptPhase::Finished);
        let end = AttemptEnd {
            attempt: attempt.clone(),
            worker,
            result: AttemptResult::Fail,
            class: Some(FailureClass::Transient),
            stop: None,
            reason: format!("orca's attempt actor failed: {err}"),
        };
        let prefix = if finished {
            Vec::new()
        } else {
            self.terminal_events(&end, FailureSource::Transport)
        };
        self.on_end(myself, t, end, prefix);
    }

    /// Kills an attempt's process group if it is still alive and ours.
    async fn kill_if_ours(&self, attempt: &AttemptRef, t: usize) {
        let a = self.state.tasks[t].attempt(attempt.attempt);
        let rec = super::state::recorded_proc(attempt, a);
        let slot = a
            .and_then(|a| a.worker.as_deref())
            .and_then(|w| self.slots.by_name(w));
        let worker_spec = match &slot {
            Some(Slot::Declared(i)) => self.spec.workers.get(*i),
            _ => None,
        };
        let host = self.services.host_for(worker_spec);
        match host
            .kill_orphan(&rec, self.services.settings.grace.as_millis() as u64)
            .await
        {
            Ok(true) => {
                tracing::warn!(%attempt, "killed the process group of an interrupted attempt")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(%attempt, error = %e, "cannot check an interrupted attempt's processes")
            }
        }
    }

    /// Starts the run's scorer (journaled first).
    async fn start_scorer(
        &mut self,
        myself: &ActorRef<RunMsg>,
        restart: bool,
    ) -> Result<(), ActorProcessingErr> {
        let path = paths::scorer(&self.run);
        let event = if restart {
            Event::ChildRestarted {
                path: path.clone(),
                attempt: 0,
            }
        } else {
            Event::ChildStarted {
                path: path.clone(),
                kind: NodeKind::Scorer,
                restart: crate::model::RestartType::Permanent,
            }
        };
        let batch = vec![NewEvent::new(self.path.clone(), event.clone())];
        self.services.journal.append(batch).await?;
        let seq = self.state.last_seq;
        self.state.apply(seq, Timestamp::now(), &event);
        let (scorer, _) = Actor::spawn_linked(
            None,
            ScorerActor,
            ScorerArgs {
                path,
                registry: self.services.registry.clone(),
            },
            myself.get_cell(),
        )
        .await?;
        self.scorer = Some(scorer);
        Ok(())
    }

    /// The scorer failed: attempts waiting on it already got a verifier
    /// failure; restart it (3 in 5 s), past that escalate the run.
    async fn scorer_failed(&mut self, myself: &ActorRef<RunMsg>, reason: String) {
        self.scorer = None;
        let now = Timestamp::now();
        let policy = SupervisorPolicy::internal();
        let path = paths::scorer(&self.run);
        tracing::error!(run = %self.run, %reason, "the run's scorer failed");
        let failed = Event::ChildFailed {
            path,
            class: FailureClass::Verifier,
            reason: crate::model::bounded(&reason, 500),
        };
        if self.scorer_window.would_exceed(now, policy.intensity) {
            let (mut events, effects) = self.escalate(
                format!("its scorer kept failing: {reason}"),
                self.scorer_window
                    .count_within(now, policy.intensity.within_ms)
                    + 1,
                policy.intensity.within_ms,
            );
            events.insert(0, failed);
            self.persist(myself, events, effects);
            self.check_done(myself);
            return;
        }
        self.scorer_window.record(now, policy.intensity.within_ms);
        self.persist(myself, vec![failed], Vec::new());
        if let Err(e) = self.start_scorer(myself, true).await {
            tracing::error!(run = %self.run, error = %e, "cannot restart the run's scorer");
        }
    }

    async fn boot(&mut self, myself: &ActorRef<RunMsg>) -> Result<(), ActorProcessingErr> {
        if self.state.ended_as.is_none() {
            let restart = self.state.scorer_started;
            self.start_scorer(myself, restart).await?;
        }
        if self.state.ended_as.is_some() {
            self.ended = true;
            let _ = myself.cast(RunMsg::Persisted(vec![Effect::Ended(self.state.status())]));
            return Ok(());
        }
        if self.boot_mode == RunMode::New {
            for t in 0..self.state.tasks.len() {
                if self.state.tasks[t].phase == TaskPhase::Queued {
                    self.enqueue(t);
                }
            }
            self.lease(myself);
            self.check_done(myself);
            return Ok(());
        }
        // Resume.
        if self.state.escalated {
            self.mode = Mode::Escalated;
        } else if self.state.stopping {
            self.mode = Mode::Stopping;
        }
        let mut ends = Vec::new();
        for t in 0..self.state.tasks.len() {
            let ts = &self.state.tasks[t];
            match ts.phase {
                TaskPhase::Finished => {}
                TaskPhase::Queued | TaskPhase::Backoff if self.mode != Mode::Normal => {}
                TaskPhase::Queued => self.enqueue(t),
                TaskPhase::Backoff => {
                    let deadline = ts.deadline.unwrap_or_else(Timestamp::now);
                    let attempt = ts.next_attempt;
                    self.effect(
                        myself,
                        Effect::Backoff {
                            task: t,
                            attempt,
                            deadline,
                        },
                    )
                    .await;
                }
                TaskPhase::Running => {
                    let Some(a) = ts.current().cloned() else {
                        continue;
                    };
                    let attempt = AttemptRef::new(&self.run, &ts.id, a.n);
                    let worker = a.worker.clone().unwrap_or_else(|| "?".into());
                    if a.is_live() {
                        // orca died while this attempt ran.
                        self.kill_if_ours(&attempt, t).await;
                        let end = AttemptEnd {
                            attempt: attempt.clone(),
                            worker,
                            result: AttemptResult::Skip,
                            class: Some(FailureClass::Transient),
                            stop: Some(StopCause::Shutdown),
                            reason: "interrupted: orca stopped while it ran; resumed without using up an attempt"
                                .into(),
                        };
                        let mut prefix = vec![Event::AttemptInterrupted {
                            attempt: attempt.clone(),
                            cause: InterruptCause::OrcaCrash,
                        }];
                        prefix.extend(self.terminal_events(&end, FailureSource::Transport));
                        ends.push((t, end, prefix));
                    } else {
                        // It ended, but its supervisor's decision was lost.
                        let stop = match &a.interrupted {
                            Some(InterruptCause::OrcaCrash | InterruptCause::OrcaShutdown) => {
                                Some(StopCause::Shutdown)
                            }
                            Some(InterruptCause::SiblingRestart { sibling }) => {
                                Some(StopCause::Sibling {
                                    sibling: sibling.clone(),
                                })
                            }
                            Some(InterruptCause::Operator { surface, restart }) => {
                                Some(StopCause::Operator {
                                    surface: *surface,
                                    restart: *restart,
                                })
                            }
                            Some(InterruptCause::RunStopped) => Some(StopCause::RunStopped),
                            None => None,
                        };
                        ends.push((
                            t,
                            AttemptEnd {
                                attempt,
                                worker,
                                result: a.result.unwrap_or(AttemptResult::Fail),
                                class: a.class,
                                stop,
                                reason: a.reason.clone().unwrap_or_default(),
                            },
                            Vec::new(),
                        ));
                    }
                }
            }
        }
        if self.mode != Mode::Normal {
            let events = self.finish_waiting_tasks();
            self.persist(myself, events, Vec::new());
        }
        for (t, end, prefix) in ends {
            self.on_end(myself, t, end, prefix);
        }
        self.lease(myself);
        self.check_done(myself);
        Ok(())
    }
}
