//! `runs` (`/runs`): the dynamic supervisor of run supervisors.
//!
//! It accepts submissions (journaling the run's submission, its tasks and
//! its supervision policy in one batch before the run supervisor exists),
//! resumes runs from the journal, routes to running runs, and supervises
//! them one_for_one with orca's internal intensity (3 restarts in 5 s). A run
//! supervisor that fails (orca's bug) is restarted from the journal, as at
//! resume; past the intensity that run alone ends `escalated`. A run that
//! escalates on its own (past its spec's intensity) stops there: `runs`
//! records the end and never touches other runs or the root.
//!
//! # Messages ([`RunsMsg`])
//!
//! | variant | what it does | reply | journals |
//! |---|---|---|---|
//! | `Submit(sub, reply)` | assigns a run id, journals the run, spawns its supervisor | `Result<run id, String>` | `RunSubmitted`, `ChildStarted` (the run), `SupervisorConfigured`, `TaskEnqueued` × tasks — one batch |
//! | `Resume{state, stale_after, reply}` | spawns a supervisor for a run folded from the journal (it reconciles interrupted attempts) | `Result<(), String>` | `ChildRestarted` (the run) |
//! | `Lookup{run, reply}` | the run's supervisor, if it runs | `Option<ActorRef<RunMsg>>` | — |
//! | `List(reply)` | the runs that run | `Vec<(String, ActorRef<RunMsg>)>` | — |
//! | `RunEnded{run, status}` | a run finished | — | `ChildStopped` (the run) |
//! | `RunFailed{run, reason}` | a run cannot go on (journal failure) | — | — |
//! | `Suspend(reply)` | orca shuts down: suspend every run (attempts interrupted by orca, resumed later) | `()` once all are suspended | — |
//! | `Watch(reply)` | a receiver told of every run's end | `broadcast::Receiver<(String, RunStatus)>` | — |
//! | `RecordVerdict{attempt, verdict, surface, reply}` | a manual verdict (checked by the caller against the view) | `Result<(), String>` | `VerdictRecorded` |

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::broadcast;

use crate::journal::event::{Event, RunSubmitted};
use crate::journal::NewEvent;
use crate::model::{
    new_run_id, paths, AttemptRef, NodeKind, RestartType, RunStatus, Surface, Timestamp,
};
use crate::run::state::RunState;
use crate::run::{RunArgs, RunMode, RunMsg, RunSupervisor};
use crate::services::Services;
use crate::spec::RunSpec;
use crate::supervision::{
    decide, ChildExit, ChildPolicy, Decision, RestartWindow, SupervisorPolicy,
};

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
    /// Nested runs: the submitting attempt and the new run's depth.
    pub parent: Option<AttemptRef>,
    pub depth: u32,
}

/// Messages of `runs` (see the table above).
#[derive(Debug)]
pub enum RunsMsg {
    Submit(Box<Submission>, RpcReplyPort<Result<String, String>>),
    Resume {
        state: Box<RunState>,
        stale_after: Option<Duration>,
        reply: Option<RpcReplyPort<Result<(), String>>>,
    },
    Lookup {
        run: String,
        reply: RpcReplyPort<Option<ActorRef<RunMsg>>>,
    },
    List(RpcReplyPort<Vec<(String, ActorRef<RunMsg>)>>),
    RunEnded {
        run: String,
        status: RunStatus,
    },
    RunFailed {
        run: String,
        reason: String,
    },
    Suspend(RpcReplyPort<()>),
    Watch(RpcReplyPort<broadcast::Receiver<(String, RunStatus)>>),
    RecordVerdict {
        attempt: AttemptRef,
        verdict: crate::model::VerdictRecord,
        surface: Surface,
        reply: RpcReplyPort<Result<(), String>>,
    },
}

/// The `runs` supervisor.
#[derive(Debug, Default)]
pub struct Runs;

struct Child {
    actor: ActorRef<RunMsg>,
    spec: Arc<RunSpec>,
    stale_after: Option<Duration>,
}

/// Its state.
pub struct RunsState {
    services: Services,
    children: HashMap<String, Child>,
    by_actor: HashMap<ActorId, String>,
    window: RestartWindow,
    policy: SupervisorPolicy,
    ended: broadcast::Sender<(String, RunStatus)>,
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
            .register(paths::RUNS, NodeKind::Runs, myself.get_cell());
        Ok(RunsState {
            services,
            children: HashMap::new(),
            by_actor: HashMap::new(),
            window: RestartWindow::default(),
            policy: SupervisorPolicy::internal(),
            ended: broadcast::channel(1024).0,
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
                reply,
            } => {
                let r = s.resume(&myself, *state, stale_after).await;
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                }
            }
            RunsMsg::Lookup { run, reply } => {
                let _ = reply.send(s.children.get(&run).map(|c| c.actor.clone()));
            }
            RunsMsg::List(reply) => {
                let mut v: Vec<(String, ActorRef<RunMsg>)> = s
                    .children
                    .iter()
                    .map(|(k, c)| (k.clone(), c.actor.clone()))
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                let _ = reply.send(v);
            }
            RunsMsg::RunEnded { run, status } => {
                if let Some(c) = s.children.remove(&run) {
                    s.by_actor.remove(&c.actor.get_id());
                    let _ = s
                        .services
                        .journal
                        .append(vec![NewEvent::new(
                            paths::RUNS,
                            Event::ChildStopped {
                                path: paths::run(&run),
                                reason: format!("ended {status}"),
                            },
                        )])
                        .await;
                }
                let _ = s.ended.send((run, status));
            }
            RunsMsg::RunFailed { run, reason } => {
                tracing::error!(%run, %reason, "run cannot go on");
                if let Some(c) = s.children.remove(&run) {
                    s.by_actor.remove(&c.actor.get_id());
                }
                let _ = s.ended.send((run, RunStatus::Failed));
            }
            RunsMsg::Suspend(reply) => {
                let runs: Vec<ActorRef<RunMsg>> =
                    s.children.values().map(|c| c.actor.clone()).collect();
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
            RunsMsg::RecordVerdict {
                attempt,
                verdict,
                surface,
                reply,
            } => {
                let path = paths::run(&attempt.run);
                let r = s
                    .services
                    .journal
                    .append(vec![NewEvent::new(
                        path,
                        Event::VerdictRecorded {
                            attempt,
                            verdict,
                            surface,
                        },
                    )])
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let _ = reply.send(r);
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
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                let Some(run) = s.by_actor.remove(&cell.get_id()) else {
                    return Ok(());
                };
                let Some(child) = s.children.remove(&run) else {
                    return Ok(());
                };
                tracing::error!(%run, error = %err, "run supervisor failed");
                // Its attempts must not outlive it: stop them first.
                cell.stop_children_and_wait(
                    Some("run supervisor failed".into()),
                    Some(Duration::from_secs(30)),
                )
                .await;
                s.restart_failed(&myself, &run, child, err.to_string())
                    .await;
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                // A clean stop after RunEnded; a run that stopped without
                // reporting (suspended) is forgotten.
                if let Some(run) = s.by_actor.remove(&cell.get_id()) {
                    s.children.remove(&run);
                }
            }
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RunsMsg>,
        s: &mut RunsState,
    ) -> Result<(), ActorProcessingErr> {
        s.services.registry.unregister(paths::RUNS);
        Ok(())
    }
}

/// The events that submit a run (one batch), and its folded state.
pub fn submission_events(
    run: &str,
    sub: &Submission,
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
        depth: sub.depth,
        parent: sub.parent.clone(),
        surface: sub.surface,
    };
    let (max_restarts, within) = sub.spec.effective_intensity();
    let mut events = vec![
        Event::RunSubmitted(submitted.clone()),
        Event::ChildStarted {
            path: paths::run(run),
            kind: NodeKind::Run,
            restart: RestartType::Transient,
        },
        Event::SupervisorConfigured {
            path: paths::run(run),
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
    /// Appends events as `/runs` and waits until they are durable.
    async fn journal(
        &self,
        events: Vec<Event>,
    ) -> Result<crate::journal::AppendAck, crate::journal::JournalError> {
        self.services
            .journal
            .append(
                events
                    .into_iter()
                    .map(|e| NewEvent::new(paths::RUNS, e))
                    .collect(),
            )
            .await
    }

    async fn submit(
        &mut self,
        myself: &ActorRef<RunsMsg>,
        sub: Submission,
    ) -> Result<String, String> {
        let spec_json = serde_json::to_string(&sub.spec).map_err(|e| e.to_string())?;
        let mut run = new_run_id(Timestamp::now());
        while self.children.contains_key(&run) || self.services.ws.run_dir(&run).exists() {
            run = new_run_id(Timestamp::now());
        }
        let now = Timestamp::now();
        let (events, state) = submission_events(&run, &sub, spec_json, now);
        self.journal(events)
            .await
            .map_err(|e| format!("cannot journal the run: {e}"))?;
        let spec = Arc::new(sub.spec);
        self.spawn(myself, state, spec, RunMode::New, sub.stale_after)
            .await?;
        Ok(run)
    }

    async fn resume(
        &mut self,
        myself: &ActorRef<RunsMsg>,
        state: RunState,
        stale_after: Option<Duration>,
    ) -> Result<(), String> {
        if self.children.contains_key(&state.run) {
            return Err(format!("run {} is already running", state.run));
        }
        let spec = state
            .spec()
            .ok_or_else(|| format!("run {}: its journaled spec does not parse", state.run))?;
        let ev = Event::ChildRestarted {
            path: paths::run(&state.run),
            attempt: 0,
        };
        self.services
            .journal
            .append(vec![NewEvent::new(paths::RUNS, ev)])
            .await
            .map_err(|e| format!("cannot journal the resume: {e}"))?;
        let stale = stale_after.or(state.stale_after_ms.map(Duration::from_millis));
        self.spawn(myself, state, Arc::new(spec), RunMode::Resume, stale)
            .await
    }

    async fn spawn(
        &mut self,
        myself: &ActorRef<RunsMsg>,
        state: RunState,
        spec: Arc<RunSpec>,
        mode: RunMode,
        stale_after: Option<Duration>,
    ) -> Result<(), String> {
        let run = state.run.clone();
        let args = RunArgs {
            state,
            spec: spec.clone(),
            services: self.services.clone(),
            mode,
            stale_after,
            parent: Some(myself.clone()),
        };
        let (actor, _) = Actor::spawn_linked(None, RunSupervisor, args, myself.get_cell())
            .await
            .map_err(|e| format!("cannot start run {run}: {e}"))?;
        self.by_actor.insert(actor.get_id(), run.clone());
        self.children.insert(
            run,
            Child {
                actor,
                spec,
                stale_after,
            },
        );
        Ok(())
    }

    /// A run supervisor failed: restart it from the journal, or — past the
    /// intensity — end that run escalated.
    async fn restart_failed(
        &mut self,
        myself: &ActorRef<RunsMsg>,
        run: &str,
        child: Child,
        err: String,
    ) {
        let now = Timestamp::now();
        let d = decide(
            &self.policy,
            &self.window,
            now,
            &ChildPolicy::internal(),
            1,
            ChildExit::Failed(crate::model::FailureClass::Transient),
            0.0,
        );
        let path = paths::run(run);
        let mut events = vec![Event::ChildFailed {
            path: path.clone(),
            class: crate::model::FailureClass::Transient,
            reason: crate::model::bounded(&err, 500),
        }];
        match d {
            Decision::Restart { .. } => {
                self.window.record(now, self.policy.intensity.within_ms);
                let _ = self.journal(events).await;
                match self.replay(run).await {
                    Ok(state) => {
                        if let Err(e) = self
                            .spawn(
                                myself,
                                state,
                                child.spec,
                                RunMode::Resume,
                                child.stale_after,
                            )
                            .await
                        {
                            tracing::error!(%run, error = %e, "cannot restart the run supervisor");
                        }
                    }
                    Err(e) => {
                        tracing::error!(%run, error = %e, "cannot rebuild the run from the journal")
                    }
                }
            }
            other => {
                let (restarts, within_ms) = match other {
                    Decision::Escalate {
                        restarts,
                        within_ms,
                    } => (restarts, within_ms),
                    _ => (0, self.policy.intensity.within_ms),
                };
                events.push(Event::IntensityExceeded {
                    supervisor: paths::RUNS.into(),
                    restarts,
                    within_ms,
                });
                events.push(Event::Escalated {
                    from: path,
                    to: paths::RUNS.into(),
                    reason: format!("its supervisor kept failing: {err}"),
                });
                events.push(Event::AlertRaised {
                    class: crate::model::AlertClass::NeedsHuman,
                    run: run.to_string(),
                    task: None,
                    attempt: None,
                    reason: format!("run {run} escalated: its supervisor kept failing"),
                });
                events.push(Event::RunFinished {
                    run: run.to_string(),
                    status: RunStatus::Escalated,
                });
                let _ = self.journal(events).await;
                let _ = self.ended.send((run.to_string(), RunStatus::Escalated));
            }
        }
    }

    /// Folds one run from the journal files (and the fleet snapshot).
    async fn replay(&self, run: &str) -> Result<RunState, String> {
        let ws = self.services.ws.clone();
        let run = run.to_string();
        tokio::task::spawn_blocking(move || fold_run(&ws, &run))
            .await
            .map_err(|e| e.to_string())?
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
