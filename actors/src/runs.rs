//! `runs` (`/runs`): the dynamic supervisor of run supervisors.
//!
//! It accepts submissions (journaling the run's submission, its tasks and
//! its supervision policy in one batch before the run supervisor exists),
//! applies the spawn-depth policy to nested runs, resumes runs from the
//! journal, routes to running runs, records manual verdicts, and
//! supervises run supervisors — one row each in its
//! [`ChildTable`], one_for_one, 3 restarts in 5 s. A run supervisor that
//! fails (orca's bug) is restarted from the journal, as at resume; past the
//! intensity that run alone ends `escalated`. A run that escalates on its
//! own (past its spec's intensity) stops there: `runs` records its end and
//! never touches other runs or the root.
//!
//! # Messages ([`RunsMsg`])
//!
//! | variant | what it does | reply | journals |
//! |---|---|---|---|
//! | `Submit(sub, reply)` | checks the spawn depth of a nested run, assigns a run id, journals the run, starts its supervisor | `Result<Submitted, SubmitError>` | `RunSubmitted`, `ChildStarted` (the run), `SupervisorConfigured`, `TaskEnqueued` × tasks — one batch |
//! | `Resume{state, stale_after, limit, reply}` | starts a supervisor for a run folded from the journal (it reconciles interrupted attempts) | `Result<(), SubmitError>` | `ChildRestarted` (the run) |
//! | `Lookup{run, reply}` | the run's supervisor, if it runs | `Option<ActorRef<RunMsg>>` | — |
//! | `List(reply)` | the runs that run | `Vec<(String, ActorRef<RunMsg>)>` | — |
//! | `Report(report)` | a run supervisor says it ended or cannot go on | — | — (its row journals `ChildStopped` when it stops) |
//! | `Verdict{run, req, reply}` | a manual verdict: the running run decides it; an ended run is folded from the journal and decided here, with the same function — one at a time, so two verdicts never both pass the check | `Result<AttemptRef, RunError>` | `VerdictRecorded` (and `receipt.json` is rewritten) |
//! | `Suspend(reply)` | orca shuts down: suspend every run (attempts interrupted by orca, resumed later) | `()` once all are suspended | — |
//! | `Watch(reply)` | a receiver told of every run's end | `broadcast::Receiver<(String, RunStatus)>` | — |
//!
//! Supervision events go through the table: a run supervisor's end is
//! decided, journaled (`ChildStopped`; or `ChildFailed` + `ChildRestarted`;
//! or `ChildFailed` + `IntensityExceeded` + `Escalated` + `AlertRaised`
//! needs_human + `RunFinished` escalated), and only then acted on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::broadcast;

use crate::journal::event::{Event, RunSubmitted};
use crate::journal::{JournalError, NewEvent};
use crate::model::{
    new_run_id, AlertClass, AttemptRef, NodeKind, RestartType, RunStatus, Surface, Timestamp,
};
use crate::path::ActorPath;
use crate::run::decide::{decide, Answer, RunCommand, RunCtx, RunError, VerdictRequest};
use crate::run::state::RunState;
use crate::run::{RunArgs, RunMode, RunMsg, RunReport, RunRequest, RunSupervisor};
use crate::services::Services;
use crate::spec::RunSpec;
use crate::supervision::{ChildSpec, ChildTable, Escalation, Outcome, SupervisorPolicy};

/// A run to start.
#[derive(Clone, Debug)]
pub struct Submission {
    pub spec: RunSpec,
    /// Where the spec came from (a path, `api`, …).
    pub source: String,
    /// Effective concurrency (flag > spec > config > CPUs).
    pub max_workers: u32,
    /// `--stale-after`.
    pub stale_after: Option<Duration>,
    pub surface: Surface,
    /// A nested run: the attempt that submits it (its depth and limit are
    /// the submitting run's business, checked by `runs`).
    pub parent: Option<AttemptRef>,
    /// The run's id, when the submitter fixed it (an agent's intent, so a
    /// redone wake starts the same run); `None`: a new id.
    pub run_id: Option<String>,
}

/// A run that was accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    pub run: String,
    pub depth: u32,
}

/// Why a run could not be started or resumed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("attempt {attempt} runs at depth {depth}, the maximum (max_spawn_depth {max}): it may not submit child runs")]
    SpawnDepth {
        attempt: AttemptRef,
        depth: u32,
        max: u32,
    },
    #[error("the submitting attempt's run {run} is not running")]
    NoParent { run: String },
    #[error("run {0} is already running")]
    AlreadyRunning(String),
    #[error("run {run}: its journaled spec does not parse")]
    BadJournal { run: String },
    #[error("cannot journal the run: {0}")]
    Journal(#[from] JournalError),
    #[error("cannot start run {run}: {reason}")]
    Start { run: String, reason: String },
}

/// Messages of `runs` (see the table above).
#[derive(Debug)]
pub enum RunsMsg {
    Submit(
        Box<Submission>,
        RpcReplyPort<Result<Submitted, SubmitError>>,
    ),
    Resume {
        state: Box<RunState>,
        stale_after: Option<Duration>,
        /// The strictest `max_spawn_depth` of its ancestors
        /// ([`crate::view::spawn_limit`]).
        limit: u32,
        reply: Option<RpcReplyPort<Result<(), SubmitError>>>,
    },
    Lookup {
        run: String,
        reply: RpcReplyPort<Option<ActorRef<RunMsg>>>,
    },
    List(RpcReplyPort<Vec<(String, ActorRef<RunMsg>)>>),
    /// The running runs below `run` (submitted by its attempts, and theirs),
    /// parents before children.
    Descendants {
        run: String,
        reply: RpcReplyPort<Vec<(String, ActorRef<RunMsg>)>>,
    },
    Report(RunReport),
    Verdict {
        run: String,
        req: VerdictRequest,
        reply: RpcReplyPort<Result<AttemptRef, RunError>>,
    },
    Suspend(RpcReplyPort<()>),
    Watch(RpcReplyPort<broadcast::Receiver<(String, RunStatus)>>),
}

impl From<RunReport> for RunsMsg {
    fn from(r: RunReport) -> Self {
        RunsMsg::Report(r)
    }
}

impl TryFrom<RunsMsg> for RunReport {
    type Error = ();

    fn try_from(m: RunsMsg) -> Result<Self, ()> {
        match m {
            RunsMsg::Report(r) => Ok(r),
            _ => Err(()),
        }
    }
}

/// The `runs` supervisor.
#[derive(Debug, Default)]
pub struct Runs;

/// Where a run sits in the tree of runs.
#[derive(Clone, Debug)]
struct Depth {
    depth: u32,
    /// The strictest `max_spawn_depth` along its chain.
    limit: u32,
    /// The run whose attempt submitted it.
    parent: Option<String>,
}

/// Its state.
/// How long a halted run's leftovers get to stop before it is resumed.
const HALTED_GRACE: Duration = Duration::from_secs(5);

pub struct RunsState {
    services: Services,
    children: ChildTable,
    depths: HashMap<String, Depth>,
    /// Every run this incarnation started (submitted or resumed). A resume
    /// pass folds the journal while the daemon already serves: a run
    /// submitted, run and ended meanwhile can look unfinished in that fold,
    /// and must not be started again from it (the chaos soak, seed 777).
    started: HashSet<String>,
    ended: broadcast::Sender<(String, RunStatus)>,
    /// Runs whose supervisor halted because the journal refused an append:
    /// resumed once the journal works again (here, if its end arrives
    /// after the journal reopened; by the root's reopen otherwise).
    halted: std::collections::HashSet<String>,
}

impl Actor for Runs {
    type Msg = RunsMsg;
    type State = RunsState;
    type Arguments = Services;

    async fn pre_start(
        &self,
        myself: ActorRef<RunsMsg>,
        services: Services,
    ) -> Result<RunsState, ActorProcessingErr> {
        services
            .registry
            .register(ActorPath::Runs, myself.get_cell());
        Ok(RunsState {
            services,
            children: ChildTable::new(ActorPath::Runs, SupervisorPolicy::internal()),
            depths: HashMap::new(),
            started: HashSet::new(),
            ended: broadcast::channel(1024).0,
            halted: Default::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RunsMsg>,
        msg: RunsMsg,
        s: &mut RunsState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RunsMsg::Submit(sub, reply) => {
                let r = s.submit(&myself, *sub).await;
                let _ = reply.send(r);
            }
            RunsMsg::Resume {
                state,
                stale_after,
                limit,
                reply,
            } => {
                let r = s.resume(&myself, *state, stale_after, limit).await;
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                }
            }
            RunsMsg::Lookup { run, reply } => {
                let _ = reply.send(s.run(&run));
            }
            RunsMsg::List(reply) => {
                let v = s
                    .children
                    .children()
                    .filter_map(|(p, c)| match (p, c) {
                        (ActorPath::Run(id), Some(c)) => Some((id.clone(), c.clone().into())),
                        _ => None,
                    })
                    .collect();
                let _ = reply.send(v);
            }
            RunsMsg::Descendants { run, reply } => {
                let _ = reply.send(s.descendants(&run));
            }
            RunsMsg::Report(RunReport::Ended { run, status }) => {
                let _ = s.ended.send((run, status));
            }
            RunsMsg::Report(RunReport::Failed { run, reason }) => {
                // The journal refused one of its appends: it halted, and is
                // resumed once the journal works again. It has not ended, so
                // its watchers keep waiting.
                tracing::error!(%run, %reason, "run halted until the journal works again");
                s.halted.insert(run);
            }
            RunsMsg::Verdict { run, req, reply } => {
                let r = s.verdict(&run, req).await;
                let _ = reply.send(r);
            }
            RunsMsg::Suspend(reply) => {
                s.children.stop_restarting();
                let runs: Vec<ActorRef<RunMsg>> = s
                    .children
                    .children()
                    .filter_map(|(_, c)| c.cloned().map(ActorRef::from))
                    .collect();
                tokio::spawn(async move {
                    let waits = runs.into_iter().map(|r| async move {
                        let _ = r.call(|tx| RunMsg::Suspend { reply: Some(tx) }, None).await;
                    });
                    futures::future::join_all(waits).await;
                    let _ = reply.send(());
                });
            }
            RunsMsg::Watch(reply) => {
                let _ = reply.send(s.ended.subscribe());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RunsMsg>,
        evt: SupervisionEvent,
        s: &mut RunsState,
    ) -> Result<(), ActorProcessingErr> {
        let journal = s.services.journal.clone();
        let outcome = s
            .children
            .handle(evt, &journal, &myself.get_cell(), |plan| {
                // Past the intensity: that run alone ends escalated.
                let run = plan.path.run_id().unwrap_or_default().to_string();
                vec![
                    crate::alert::AlertRaised::new(
                        AlertClass::NeedsHuman,
                        crate::alert::AlertSource::run(&run),
                        None,
                        None,
                        None,
                        format!("run {run} escalated: its supervisor kept failing"),
                        Timestamp::now(),
                    )
                    .event(),
                    Event::RunFinished {
                        run,
                        status: RunStatus::Escalated,
                    },
                ]
            })
            .await;
        match outcome {
            Outcome::Escalate { path, .. } => {
                if let Some(run) = path.run_id() {
                    s.depths.remove(run);
                    s.halted.remove(run);
                    let _ = s.ended.send((run.to_string(), RunStatus::Escalated));
                }
            }
            Outcome::Removed(path) => {
                if let Some(run) = path.run_id() {
                    s.depths.remove(run);
                    if s.halted.contains(run) {
                        // Its end was journaled, so the journal works again:
                        // rebuild it from there (it stays halted until its
                        // restart is journaled, or the resume would take it
                        // for a run this daemon started and still runs).
                        let (services, me) = (s.services.clone(), myself.clone());
                        tokio::spawn(async move {
                            crate::resume::resume_unfinished(&services, &me).await;
                        });
                    }
                }
            }
            Outcome::Degraded(e) => {
                tracing::error!(error = %e, "runs cannot journal a supervision decision");
            }
            Outcome::NotMine
            | Outcome::Ignored
            | Outcome::Restarted(_)
            | Outcome::Lost { .. }
            | Outcome::RestartLater { .. } => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RunsMsg>,
        s: &mut RunsState,
    ) -> Result<(), ActorProcessingErr> {
        s.services.registry.unregister(&ActorPath::Runs);
        Ok(())
    }
}

/// The events that submit a run (one batch), and its folded state.
pub fn submission_events(
    run: &str,
    sub: &Submission,
    depth: u32,
    spec_json: String,
    now: Timestamp,
) -> (Vec<Event>, RunState) {
    let submitted = RunSubmitted {
        run: run.to_string(),
        name: sub.spec.display_name(),
        spec_json,
        source: sub.source.clone(),
        max_workers: sub.max_workers,
        stale_after_ms: sub.stale_after.map(|d| d.as_millis() as u64),
        depth,
        parent: sub.parent.clone(),
        surface: sub.surface,
    };
    let (max_restarts, within) = sub.spec.effective_intensity();
    let path = ActorPath::run(run).to_string();
    let mut events = vec![
        Event::RunSubmitted(submitted.clone()),
        Event::ChildStarted {
            path: path.clone(),
            kind: NodeKind::Run,
            restart: RestartType::Transient,
        },
        Event::SupervisorConfigured {
            path,
            strategy: sub.spec.effective_strategy(),
            max_restarts,
            within_ms: within.as_millis(),
        },
    ];
    for (i, t) in sub.spec.tasks.iter().enumerate() {
        events.push(Event::TaskEnqueued {
            run: run.to_string(),
            task: t.id.clone(),
            priority: t.priority(),
            order: i as u32,
        });
    }
    let mut state = RunState::submitted(&submitted, now);
    for e in &events {
        state.apply(0, now, e);
    }
    (events, state)
}

impl RunsState {
    fn run(&self, id: &str) -> Option<ActorRef<RunMsg>> {
        self.children
            .cell(&ActorPath::run(id))
            .cloned()
            .map(ActorRef::from)
    }

    /// Appends events as `/runs` and waits until they are durable.
    async fn journal(&self, events: Vec<Event>) -> Result<(), JournalError> {
        let batch = events
            .into_iter()
            .map(|e| NewEvent::new(ActorPath::Runs.to_string(), e))
            .collect();
        self.services.journal.append(batch).await.map(|_| ())
    }

    async fn submit(
        &mut self,
        myself: &ActorRef<RunsMsg>,
        sub: Submission,
    ) -> Result<Submitted, SubmitError> {
        // Nested runs: one level deeper than their parent, within the
        // strictest limit of every run above them.
        let (depth, chain_limit) = match &sub.parent {
            None => (0, u32::MAX),
            Some(p) => {
                let d = self
                    .depths
                    .get(&p.run)
                    .cloned()
                    .ok_or_else(|| SubmitError::NoParent { run: p.run.clone() })?;
                if d.depth + 1 > d.limit {
                    return Err(SubmitError::SpawnDepth {
                        attempt: p.clone(),
                        depth: d.depth,
                        max: d.limit,
                    });
                }
                (d.depth + 1, d.limit)
            }
        };
        let limit = sub.spec.effective_max_spawn_depth().min(chain_limit);
        let spec_json = serde_json::to_string(&sub.spec).map_err(|e| SubmitError::Start {
            run: String::new(),
            reason: e.to_string(),
        })?;
        let run = match &sub.run_id {
            Some(id) => {
                if self.children.contains(&ActorPath::run(id)) {
                    return Err(SubmitError::AlreadyRunning(id.clone()));
                }
                id.clone()
            }
            None => {
                let mut run = new_run_id(Timestamp::now());
                while self.children.contains(&ActorPath::run(&run))
                    || self.services.ws.run_dir(&run).exists()
                {
                    run = new_run_id(Timestamp::now());
                }
                run
            }
        };
        let now = Timestamp::now();
        let (events, state) = submission_events(&run, &sub, depth, spec_json, now);
        self.journal(events).await?;
        self.start(
            myself,
            state,
            Arc::new(sub.spec),
            RunMode::New,
            sub.stale_after,
            limit,
        )
        .await?;
        Ok(Submitted { run, depth })
    }

    async fn resume(
        &mut self,
        myself: &ActorRef<RunsMsg>,
        state: RunState,
        stale_after: Option<Duration>,
        limit: u32,
    ) -> Result<(), SubmitError> {
        let path = ActorPath::run(&state.run);
        if self.children.contains(&path) {
            let cell = self.children.cell(&path).cloned();
            let gone = cell
                .as_ref()
                .is_none_or(|c| c.get_status() == ractor::ActorStatus::Stopped);
            if !gone && !self.halted.contains(&state.run) {
                return Err(SubmitError::AlreadyRunning(state.run.clone()));
            }
            // Its supervisor halted because the journal refused an append:
            // its state in memory is not the journal's any more. Whatever
            // is left of it stops (its attempts' processes with it), and
            // the run is rebuilt from the journal.
            self.children.remove(&path);
            if let (Some(c), false) = (cell, gone) {
                let why = "resumed from the journal after it was reopened";
                c.stop_children_and_wait(Some(why.into()), Some(HALTED_GRACE))
                    .await;
                let _ = c.stop_and_wait(Some(why.into()), Some(HALTED_GRACE)).await;
            }
        } else if self.started.contains(&state.run) && !self.halted.contains(&state.run) {
            // Started (and ended) by this daemon while its resume pass
            // was still folding the journal: not to be run again.
            return Err(SubmitError::AlreadyRunning(state.run.clone()));
        }
        let spec = state.spec().ok_or_else(|| SubmitError::BadJournal {
            run: state.run.clone(),
        })?;
        self.journal(vec![Event::ChildRestarted {
            path: ActorPath::run(&state.run).to_string(),
            attempt: 0,
        }])
        .await?;
        // Halted no more only once its restart is journaled: a refused
        // append leaves it halted, so the next resume pass (after the next
        // reopen) takes it again instead of counting it as running.
        self.halted.remove(&state.run);
        let stale = stale_after.or(state.stale_after_ms.map(Duration::from_millis));
        self.start(myself, state, Arc::new(spec), RunMode::Resume, stale, limit)
            .await
    }

    /// Adds the run's row and starts its supervisor. A restart of the row
    /// (the supervisor failed) rebuilds the run from the journal.
    async fn start(
        &mut self,
        myself: &ActorRef<RunsMsg>,
        state: RunState,
        spec: Arc<RunSpec>,
        mode: RunMode,
        stale_after: Option<Duration>,
        limit: u32,
    ) -> Result<(), SubmitError> {
        let run = state.run.clone();
        self.started.insert(run.clone());
        self.depths.insert(
            run.clone(),
            Depth {
                depth: state.depth,
                limit,
                parent: state.parent.as_ref().map(|p| p.run.clone()),
            },
        );
        let first = Arc::new(Mutex::new(Some((state, mode))));
        let services = self.services.clone();
        let parent = myself.get_derived::<RunReport>();
        let id = run.clone();
        let starter = move |sup: ActorCell, _restarts: u32| {
            let first = first.lock().ok().and_then(|mut f| f.take());
            let (services, spec, parent, id) =
                (services.clone(), spec.clone(), parent.clone(), id.clone());
            let fut: futures::future::BoxFuture<'static, _> = Box::pin(async move {
                let (state, mode) = match first {
                    Some(f) => f,
                    None => {
                        let ws = services.ws.clone();
                        let st = tokio::task::spawn_blocking(move || fold_run(&ws, &id))
                            .await
                            .map_err(|e| e.to_string())??;
                        (st, RunMode::Resume)
                    }
                };
                let args = RunArgs {
                    state,
                    spec,
                    services,
                    mode,
                    stale_after,
                    parent: Some(parent),
                };
                let (actor, _) = Actor::spawn_linked(None, RunSupervisor, args, sup).await?;
                Ok(actor.get_cell())
            });
            fut
        };
        let row = ChildSpec::transient(ActorPath::run(&run), Arc::new(starter))
            .escalating(Escalation::ChildAlone);
        self.children
            .start(row, myself.get_cell())
            .await
            .map_err(|e| SubmitError::Start {
                run,
                reason: e.to_string(),
            })?;
        Ok(())
    }

    /// The running runs below `run`, parents before children.
    fn descendants(&self, run: &str) -> Vec<(String, ActorRef<RunMsg>)> {
        let mut out = Vec::new();
        let mut frontier = vec![run.to_string()];
        while let Some(parent) = frontier.pop() {
            let mut children: Vec<&String> = self
                .depths
                .iter()
                .filter(|(_, d)| d.parent.as_deref() == Some(parent.as_str()))
                .map(|(id, _)| id)
                .collect();
            children.sort();
            for id in children {
                if let Some(actor) = self.run(id) {
                    out.push((id.clone(), actor));
                }
                frontier.push(id.clone());
            }
        }
        out
    }

    /// A manual verdict (see the table above).
    async fn verdict(&mut self, run: &str, req: VerdictRequest) -> Result<AttemptRef, RunError> {
        if let Some(actor) = self.run(run) {
            let asked = actor
                .call(
                    |tx| RunMsg::Request(RunRequest::Verdict(req.clone()), Some(tx)),
                    Some(Duration::from_secs(30)),
                )
                .await;
            match asked {
                Ok(ractor::rpc::CallResult::Success(Ok(Answer::Verdict(a)))) => return Ok(a),
                Ok(ractor::rpc::CallResult::Success(Ok(_))) => {
                    return Err(RunError::Ended {
                        run: run.to_string(),
                    })
                }
                Ok(ractor::rpc::CallResult::Success(Err(
                    RunError::Ended { .. } | RunError::Halted { .. },
                ))) => {}
                Ok(ractor::rpc::CallResult::Success(Err(e))) => return Err(e),
                // The run stopped meanwhile: decided here below.
                Ok(_) | Err(_) => {}
            }
        }
        // Every earlier append (the run's own last decisions) is in the
        // files before the run is folded from them.
        let unavailable = |e: String| RunError::Unavailable {
            run: run.to_string(),
            reason: e,
        };
        self.services
            .journal
            .flush()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let ws = self.services.ws.clone();
        let id = run.to_string();
        let mut state = tokio::task::spawn_blocking(move || fold_run(&ws, &id))
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .map_err(unavailable)?;
        let spec = state
            .spec()
            .ok_or_else(|| unavailable("its journaled spec does not parse".into()))?;
        let tasks: Vec<Arc<crate::spec::TaskSpec>> = state
            .tasks
            .iter()
            .filter_map(|t| {
                spec.tasks
                    .iter()
                    .find(|s| s.id == t.id)
                    .cloned()
                    .map(Arc::new)
            })
            .collect();
        let policy = SupervisorPolicy::for_run(&spec, 0);
        let ctx = RunCtx {
            tasks: &tasks,
            policy: &policy,
            budget: spec.budget.as_ref(),
        };
        let d = decide(
            &state,
            &ctx,
            RunCommand::Verdict(req),
            Timestamp::now(),
            &mut || 0.0,
        )?;
        let Answer::Verdict(attempt) = d.answer else {
            return Err(unavailable("no verdict was decided".into()));
        };
        let batch = d
            .events
            .iter()
            .map(|e| NewEvent::new(ActorPath::run(run).to_string(), e.clone()))
            .collect();
        self.services
            .journal
            .append(batch)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let now = Timestamp::now();
        for e in &d.events {
            let seq = state.last_seq;
            state.apply(seq, now, e);
        }
        if let Some(r) = state
            .task(&attempt.task)
            .and_then(|t| t.attempt(attempt.attempt))
        {
            if let Some(receipt) = &r.receipt {
                crate::outcome::write_receipt(&self.services.ws, receipt, r.usage.as_ref());
            }
        }
        Ok(attempt)
    }
}

/// The supervisor of a running run, if `runs` knows it (`RunsMsg::Lookup`;
/// `None` also when `runs` does not answer).
pub async fn lookup(runs: &ActorRef<RunsMsg>, run: &str) -> Option<ActorRef<RunMsg>> {
    match runs
        .call(
            |tx| RunsMsg::Lookup {
                run: run.to_string(),
                reply: tx,
            },
            None,
        )
        .await
    {
        Ok(ractor::rpc::CallResult::Success(found)) => found,
        _ => None,
    }
}

/// Folds one run: the fleet snapshot, if any, then the journal after it
/// (so a run whose first events were compacted away still folds).
pub fn fold_run(ws: &crate::workspace::Workspace, run: &str) -> Result<RunState, String> {
    let mut fleet = crate::view::FleetView::load(ws).map_err(|e| e.to_string())?;
    fleet
        .runs
        .remove(run)
        .ok_or_else(|| format!("no run {run} in the journal"))
}
