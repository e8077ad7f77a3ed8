//! The run supervisor's actor: the mailbox, worker slots, spawning and
//! timers around [`super::decide::decide`] (see the module docs).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort, SupervisionEvent,
};
use tokio::task::AbortHandle;

use super::decide::{decide, has_live_attempt, live_tasks, mode, Answer, Decision, Effect, Mode};
use super::decide::{RunCommand, RunCtx, RunError};
use super::lease::{Inbox, Slot, Slots};
use super::state::RunState;
use super::{RunMsg, RunReport};
use crate::attempt::{AttemptActor, AttemptArgs, AttemptMsg};
use crate::journal::event::{Event, InterruptCause};
use crate::journal::NewEvent;
use crate::model::{AttemptRef, Timestamp};
use crate::outcome::{Judgement, StopCause};
use crate::path::ActorPath;
use crate::persist::Persister;
use crate::services::Services;
use crate::spec::{RunSpec, TaskSpec};
use crate::supervision::{ChildTable, SupervisorPolicy};

mod orphans;
mod scorer;

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
    pub parent: Option<DerivedActorRef<RunReport>>,
}

/// What waits for an append to be durable.
pub enum Act {
    Effect(Effect),
    Reply(RpcReplyPort<Result<Answer, RunError>>, Answer),
}

impl fmt::Debug for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Act::Effect(e) => write!(f, "{e:?}"),
            Act::Reply(_, a) => write!(f, "Reply({a:?})"),
        }
    }
}

/// Why the supervisor stopped deciding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Halt {
    /// orca shuts down: attempts are interrupted, to be resumed later.
    Suspending,
    /// An append failed: nothing more may be acted on.
    JournalFailed,
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
    path: ActorPath,
    spec: Arc<RunSpec>,
    /// Task specs, aligned with `state.tasks`.
    tasks: Vec<Arc<TaskSpec>>,
    state: RunState,
    policy: SupervisorPolicy,
    services: Services,
    slots: Slots,
    inbox: Inbox,
    running: HashMap<usize, Live>,
    by_actor: HashMap<ActorId, usize>,
    backoffs: HashMap<usize, AbortHandle>,
    /// Other timers (the run's wall-time budget).
    backoffs_extra: Vec<AbortHandle>,
    halt: Option<Halt>,
    boot_mode: RunMode,
    suspend_replies: Vec<RpcReplyPort<()>>,
    parent: Option<DerivedActorRef<RunReport>>,
    stale_after: Option<Duration>,
    /// The scorer's row.
    children: ChildTable,
    persister: Persister<Vec<Act>>,
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
        let path = ActorPath::run(&run);
        args.services
            .registry
            .register(path.clone(), myself.get_cell());
        let by_id: HashMap<&str, &TaskSpec> =
            args.spec.tasks.iter().map(|t| (t.id.as_str(), t)).collect();
        let mut tasks = Vec::with_capacity(args.state.tasks.len());
        for t in &args.state.tasks {
            let spec = by_id.get(t.id.as_str()).ok_or_else(|| {
                format!("task {} is in the journal but not in the run's spec", t.id)
            })?;
            tasks.push(Arc::new((*spec).clone()));
        }
        let policy =
            SupervisorPolicy::for_run(&args.spec, args.services.settings.grace.as_millis() as u64);
        let slots = Slots::new(&args.spec, args.state.max_workers);
        let me = myself.clone();
        let persister = Persister::new(args.services.journal.clone(), move |r, acts| {
            let _ = me.cast(match r {
                Ok(_) => RunMsg::Persisted(acts),
                Err(e) => RunMsg::JournalFailed(e.to_string()),
            });
        });
        myself.cast(RunMsg::Boot)?;
        Ok(Sup {
            children: ChildTable::new(path.clone(), SupervisorPolicy::internal()),
            run,
            path,
            spec: args.spec,
            tasks,
            state: args.state,
            policy,
            services: args.services,
            slots,
            inbox: Inbox::default(),
            running: HashMap::new(),
            by_actor: HashMap::new(),
            backoffs: HashMap::new(),
            backoffs_extra: Vec::new(),
            halt: None,
            boot_mode: args.mode,
            suspend_replies: Vec::new(),
            parent: args.parent,
            stale_after: args.stale_after,
            persister,
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
            RunMsg::AttemptEnded(outcome) => {
                let Some(t) = s.state.position(&outcome.attempt.task) else {
                    return Ok(());
                };
                match s.running.get(&t) {
                    Some(live) if live.n == outcome.attempt.attempt => s.release(t),
                    _ => return Ok(()),
                }
                s.command(&myself, RunCommand::AttemptEnded(outcome), None);
                s.maybe_halted(&myself);
            }
            RunMsg::Persisted(acts) => {
                for act in acts {
                    s.act(&myself, act).await;
                }
            }
            RunMsg::BudgetDue => {
                if s.halt.is_none() {
                    s.command(&myself, RunCommand::CheckBudget, None);
                }
            }
            RunMsg::BackoffDue { task, attempt } => {
                if let Some(t) = s.state.position(&task) {
                    s.backoffs.remove(&t);
                    s.command(&myself, RunCommand::BackoffDue { task: t, attempt }, None);
                }
            }
            RunMsg::Request(req, reply) => {
                if s.halt.is_some() {
                    if let Some(r) = reply {
                        let _ = r.send(Err(RunError::Halted { run: s.run.clone() }));
                    }
                    return Ok(());
                }
                s.command(&myself, req.into(), reply);
            }
            RunMsg::Suspend { reply } => {
                s.halt(Halt::Suspending);
                if let Some(r) = reply {
                    s.suspend_replies.push(r);
                }
                s.stop_all(StopCause::Interrupted(InterruptCause::OrcaShutdown));
                s.maybe_halted(&myself);
            }
            RunMsg::Kill { reply } => s.kill(reply),
            RunMsg::Get(reply) => {
                let _ = reply.send(s.state.clone());
            }
            RunMsg::JournalFailed(reason) => {
                if s.halt != Some(Halt::JournalFailed) {
                    tracing::error!(run = %s.run, %reason, "journal append failed: stopping the run's attempts");
                    s.halt(Halt::JournalFailed);
                    s.stop_all(StopCause::Interrupted(InterruptCause::OrcaShutdown));
                    if let Some(p) = &s.parent {
                        let _ = p.send_message(RunReport::Failed {
                            run: s.run.clone(),
                            reason,
                        });
                    }
                    s.maybe_halted(&myself);
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
        if let Some((path, exit, reason)) = s.children.exit_of(&evt) {
            s.scorer_ended(&myself, path, exit, reason).await;
            return Ok(());
        }
        // A clean stop follows the attempt's report; a failure is orca's
        // own bug, decided like an attempt that ended transient.
        if let SupervisionEvent::ActorFailed(cell, err) = evt {
            if let Some(t) = s.by_actor.remove(&cell.get_id()) {
                s.attempt_crashed(&myself, t, err.to_string()).await;
            }
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
        for h in s.backoffs_extra.drain(..) {
            h.abort();
        }
        s.services.registry.unregister(&s.path);
        for r in s.suspend_replies.drain(..) {
            let _ = r.send(());
        }
        Ok(())
    }
}

/// How long a second Ctrl-C waits for each attempt's group to be gone.
const KILL_LIMIT: Duration = Duration::from_secs(5);

impl Sup {
    /// Decides `cmd`, journals the decision and queues its effects (a
    /// refusal goes straight back to the caller).
    fn command(
        &mut self,
        myself: &ActorRef<RunMsg>,
        cmd: RunCommand,
        reply: Option<RpcReplyPort<Result<Answer, RunError>>>,
    ) {
        match self.decide(cmd) {
            Ok(d) => self.commit(myself, d, reply),
            Err(e) => {
                if let Some(r) = reply {
                    let _ = r.send(Err(e));
                }
            }
        }
    }

    fn decide(&self, cmd: RunCommand) -> Result<Decision, RunError> {
        let ctx = RunCtx {
            tasks: &self.tasks,
            policy: &self.policy,
            budget: self.spec.budget.as_ref(),
        };
        decide(&self.state, &ctx, cmd, Timestamp::now(), &mut || {
            rand::random::<f64>()
        })
    }

    /// Journals a decision (folded into the state now), carries out its
    /// internal effects at once and the rest once durable; then leases and
    /// checks whether the run ended.
    fn commit(
        &mut self,
        myself: &ActorRef<RunMsg>,
        d: Decision,
        reply: Option<RpcReplyPort<Result<Answer, RunError>>>,
    ) {
        let (internal, later): (Vec<Effect>, Vec<Effect>) =
            d.effects.into_iter().partition(Effect::is_internal);
        let mut acts: Vec<Act> = later.into_iter().map(Act::Effect).collect();
        if let Some(r) = reply {
            acts.push(Act::Reply(r, d.answer));
        }
        self.persist(myself, d.events, acts);
        for e in internal {
            self.internal(e);
        }
        self.lease(myself);
        self.settle(myself);
    }

    /// Journals `events`, folding them into the state now; `acts` are
    /// carried out once they are durable.
    fn persist(&mut self, myself: &ActorRef<RunMsg>, events: Vec<Event>, acts: Vec<Act>) {
        if events.is_empty() {
            if !acts.is_empty() {
                let _ = myself.cast(RunMsg::Persisted(acts));
            }
            return;
        }
        let now = Timestamp::now();
        let actor = self.path.to_string();
        let mut batch = Vec::with_capacity(events.len());
        for e in events {
            let seq = self.state.last_seq;
            self.state.apply(seq, now, &e);
            // An attempt's own facts keep the attempt's path.
            let who = match &e {
                Event::AttemptInterrupted { attempt, .. }
                | Event::AttemptFinished { attempt, .. }
                | Event::AttemptUsage { attempt, .. } => {
                    ActorPath::Attempt(attempt.clone()).to_string()
                }
                Event::ReceiptRecorded(r) => {
                    ActorPath::attempt(&r.run, &r.task, r.attempt).to_string()
                }
                _ => actor.clone(),
            };
            batch.push(NewEvent::new(who, e));
        }
        self.persister.append(batch, acts);
    }

    fn internal(&mut self, e: Effect) {
        match e {
            Effect::Enqueue { task } => self.enqueue(task),
            Effect::DropWaiting => {
                self.inbox.clear();
                for (_, h) in self.backoffs.drain() {
                    h.abort();
                }
            }
            other => tracing::error!(?other, "not an internal effect"),
        }
    }

    /// Ends the run when nothing runs or waits any more.
    fn settle(&mut self, myself: &ActorRef<RunMsg>) {
        if self.halt.is_some() || !self.running.is_empty() || !self.inbox.is_empty() {
            return;
        }
        if let Ok(d) = self.decide(RunCommand::Settle) {
            if !d.events.is_empty() {
                let acts = d.effects.into_iter().map(Act::Effect).collect();
                self.persist(myself, d.events, acts);
            }
        }
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

    /// Leases queued tasks to free slots (one batch for all of them: the
    /// inbox holds a task once, so no lease depends on another).
    fn lease(&mut self, myself: &ActorRef<RunMsg>) {
        if self.halt.is_some() || mode(&self.state) != Mode::Normal || self.state.paused {
            return;
        }
        let (mut events, mut acts) = (Vec::new(), Vec::new());
        while let Some((t, slot)) = self.inbox.next(&mut self.slots) {
            let Ok(d) = self.decide(RunCommand::Lease { task: t }) else {
                self.slots.release(&slot);
                continue;
            };
            let launch = d.effects.iter().find_map(|e| match e {
                Effect::Launch { n, .. } => Some(*n),
                _ => None,
            });
            let Some(n) = launch else {
                self.slots.release(&slot);
                if !d.events.is_empty() {
                    // The lease ended tasks instead (the run's budget is
                    // spent): journal it now, with the leases before it,
                    // and let the waiting tasks leave the inbox.
                    let (internal, later): (Vec<Effect>, Vec<Effect>) =
                        d.effects.into_iter().partition(Effect::is_internal);
                    events.extend(d.events);
                    acts.extend(later.into_iter().map(Act::Effect));
                    self.persist(
                        myself,
                        std::mem::take(&mut events),
                        std::mem::take(&mut acts),
                    );
                    for e in internal {
                        self.internal(e);
                    }
                }
                continue;
            };
            let live = Live {
                n,
                slot,
                actor: None,
                pending_stop: None,
            };
            self.running.insert(t, live);
            events.extend(d.events);
            acts.extend(d.effects.into_iter().map(Act::Effect));
        }
        self.persist(myself, events, acts);
    }

    async fn act(&mut self, myself: &ActorRef<RunMsg>, act: Act) {
        let e = match act {
            Act::Reply(r, answer) => {
                let _ = r.send(Ok(answer));
                return;
            }
            Act::Effect(e) => e,
        };
        match e {
            Effect::Launch { task, n, counted } => self.launch(myself, task, n, counted).await,
            Effect::Enqueue { .. } | Effect::DropWaiting => self.internal(e),
            Effect::Backoff {
                task,
                attempt,
                deadline: _,
                delay_ms,
            } => {
                if self.halt.is_some() || mode(&self.state) != Mode::Normal {
                    return;
                }
                let id = self.state.tasks[task].id.clone();
                // Monotonic from the decision: the wall clock is read once,
                // by `decide`, never again here.
                let delay = Duration::from_millis(delay_ms);
                let h = myself.send_after(delay, move || RunMsg::BackoffDue { task: id, attempt });
                if let Some(old) = self.backoffs.insert(task, h.abort_handle()) {
                    old.abort();
                }
            }
            Effect::StopAttempts { tasks, cause } => {
                for t in tasks {
                    self.stop_attempt(t, StopCause::Interrupted(cause.clone()));
                }
            }
            Effect::WriteReceipt(attempt) => {
                if let Some(a) = self
                    .state
                    .task(&attempt.task)
                    .and_then(|t| t.attempt(attempt.attempt))
                {
                    if let Some(r) = &a.receipt {
                        crate::outcome::write_receipt(&self.services.ws, r, a.usage.as_ref());
                    }
                }
            }
            Effect::Ended(status) => {
                self.children.stop_restarting();
                if let Some(p) = &self.parent {
                    let _ = p.send_message(RunReport::Ended {
                        run: self.run.clone(),
                        status,
                    });
                }
                myself.stop(Some(format!("ended {status}")));
            }
        }
    }

    fn stop_attempt(&mut self, t: usize, cause: StopCause) {
        if let Some(live) = self.running.get_mut(&t) {
            match &live.actor {
                Some(a) => {
                    let _ = a.cast(AttemptMsg::Stop(cause));
                }
                None => live.pending_stop = Some(cause),
            }
        }
    }

    fn stop_all(&mut self, cause: StopCause) {
        let tasks: Vec<usize> = self.running.keys().copied().collect();
        for t in tasks {
            self.stop_attempt(t, cause.clone());
        }
    }

    fn halt(&mut self, why: Halt) {
        self.halt = Some(why);
        self.children.stop_restarting();
        self.inbox.clear();
        for (_, h) in self.backoffs.drain() {
            h.abort();
        }
    }

    /// Once halted and no attempt runs any more: answer and stop.
    fn maybe_halted(&mut self, myself: &ActorRef<RunMsg>) {
        if self.halt.is_some() && self.running.is_empty() {
            for r in self.suspend_replies.drain(..) {
                let _ = r.send(());
            }
            myself.stop(Some("suspended".into()));
        }
    }

    async fn launch(&mut self, myself: &ActorRef<RunMsg>, t: usize, n: u32, counted: bool) {
        let Some(live) = self.running.get(&t) else {
            return;
        };
        if live.n != n {
            return;
        }
        if self.halt.is_some() {
            // Never started: a later resume starts it.
            self.release(t);
            self.maybe_halted(myself);
            return;
        }
        let slot = live.slot.clone();
        let worker_spec = match &slot {
            Slot::Declared(i) => self.spec.workers.get(*i),
            Slot::Local(_) => None,
        };
        let task = self.tasks[t].clone();
        let stale_after = self.spec.stale_after_for(&task, self.stale_after);
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
            host: self.services.host_for(worker_spec),
            services: self.services.clone(),
            supervisor: myself.get_derived(),
            scorer: self.scorer(),
        };
        match Actor::spawn_linked(None, AttemptActor, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                self.by_actor.insert(actor.get_id(), t);
                if let Some(live) = self.running.get_mut(&t) {
                    if let Some(cause) = live.pending_stop.take() {
                        let _ = actor.cast(AttemptMsg::Stop(cause));
                    }
                    live.actor = Some(actor.clone());
                }
                if mode(&self.state) != Mode::Normal {
                    let _ = actor.cast(AttemptMsg::Stop(StopCause::Interrupted(
                        InterruptCause::RunStopped,
                    )));
                }
            }
            Err(e) => {
                tracing::error!(%attempt, error = %e, "cannot spawn the attempt actor");
                let worker = self.slots.name(&slot);
                self.release(t);
                let outcome = self.ended_by_orca(
                    &attempt,
                    worker,
                    Judgement::transport(format!("orca could not start the attempt: {e}")),
                );
                self.command(myself, RunCommand::AttemptEnded(Box::new(outcome)), None);
            }
        }
    }

    /// A second Ctrl-C: every running attempt kills its group now.
    fn kill(&self, reply: RpcReplyPort<Vec<(AttemptRef, String)>>) {
        let attempts = self.running.values().filter_map(|l| l.actor.clone());
        crate::attempt::kill_all(attempts.collect(), KILL_LIMIT, reply);
    }

    async fn boot(&mut self, myself: &ActorRef<RunMsg>) -> Result<(), ActorProcessingErr> {
        if self.state.ended_as.is_some() {
            let _ = myself.cast(RunMsg::Persisted(vec![Act::Effect(Effect::Ended(
                self.state.status(),
            ))]));
            return Ok(());
        }
        if let Err(e) = self.start_scorer(myself).await {
            // The journal refused the scorer's start (it failed again while
            // this run was being resumed): halt like after any refused
            // append, to be resumed once it is reopened. Failing here
            // instead left the run neither running nor halted: its end
            // could not be journaled either, so nothing resumed it.
            if let Some(j) = e.downcast_ref::<crate::journal::JournalError>() {
                let _ = myself.cast(RunMsg::JournalFailed(j.to_string()));
                return Ok(());
            }
            return Err(e);
        }
        // The run's wall-time budget: checked when it runs out (tokens and
        // cost are checked at each lease).
        if let Some(limit) = self.spec.budget.as_ref().and_then(|b| b.max_seconds) {
            let elapsed = Timestamp::now().millis_since(self.state.submitted);
            let left = (limit.as_millis()).saturating_sub(elapsed) + 1;
            let h = myself.send_after(Duration::from_millis(left), || RunMsg::BudgetDue);
            self.backoffs_extra.push(h.abort_handle());
        }
        if self.boot_mode == RunMode::New {
            for t in 0..self.state.tasks.len() {
                if self.state.tasks[t].phase == super::state::TaskPhase::Queued {
                    self.enqueue(t);
                }
            }
            self.lease(myself);
            self.settle(myself);
            return Ok(());
        }
        // Resume: what the journal shows running was interrupted by orca's
        // end; its process group goes first, if it is still provably ours.
        for t in live_tasks(&self.state) {
            if has_live_attempt(&self.state, t) {
                if let Some(n) = self.state.tasks[t].current().map(|a| a.n) {
                    let attempt = AttemptRef::new(&self.run, &self.state.tasks[t].id, n);
                    self.kill_if_ours(&attempt).await;
                }
            }
        }
        self.command(myself, RunCommand::Reconcile, None);
        Ok(())
    }
}
