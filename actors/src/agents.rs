//! `agents` (`/agents`): the dynamic supervisor of agent identities, one
//! row each in its [`ChildTable`] (permanent; 3 restarts in 5 s; an agent
//! past that is escalated alone: journaled, alerted, not restarted until an
//! operator resumes it).
//!
//! It also feeds the agents: it follows the journal, turns facts into
//! fleet events ([`crate::agent::fleet`]) and hands each to the agents
//! whose fleet subscriptions take it, and tells an agent when a run it
//! started ended. Its cursor over the journal is journaled
//! (`AgentCursor`, at most once a second), so at start it catches up on
//! what happened while orca was down; a fleet wake's id is its event's
//! seq, so an event handed over twice wakes once.
//!
//! # Messages ([`AgentsMsg`])
//!
//! | variant | what it does | reply | journals |
//! |---|---|---|---|
//! | `Create{…}` | a new identity: refuses an id in use or retired, journals it, starts its row | `Result<(), AgentsError>` | `AgentCreated`, `ChildStarted` |
//! | `Update{…}` | a new spec for an identity (its state stays) | `Result<(), AgentsError>` | `AgentUpdated` (by the agent) |
//! | `Command{agent, cmd, reply}` | an [`AgentCommand`] for one agent (tell, pause, resume, retire, approve, deny, a webhook's event); resuming an escalated agent restarts its row | `Result<AgentAnswer, AgentsError>` | the agent's |
//! | `Get{agent, reply}` | the agent's state (live) | `Option<AgentState>` | — |
//! | `Feed(batch)` / `Reload` | journal events: fleet events to subscribers, run ends to their agents | — | `AgentCursor` |
//! | `FilesChanged{…}` | a watched path changed (debounced) | — | the agent's `AgentWoke` |

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::agent::actor::{AgentActor, AgentArgs, AgentMsg};
use crate::agent::decide::{AgentAnswer, AgentCommand, AgentError};
use crate::agent::events::AgentEvent;
use crate::agent::fleet::{subscription_takes, Classifier, FleetEvent, RunInfo};
use crate::agent::spec::{to_journal_json, AgentSpec, SubscriptionKind};
use crate::agent::state::{AgentState, AgentsView};
use crate::journal::{Envelope, Event, NewEvent};
use crate::model::{AlertClass, NodeKind, RestartType, Surface, Timestamp};
use crate::path::ActorPath;
use crate::services::Services;
use crate::supervision::{ChildSpec, ChildTable, Escalation, Outcome, SupervisorPolicy};
use crate::view::FleetView;

/// How often the cursor is journaled at most.
const CURSOR_EVERY: Duration = Duration::from_secs(1);

/// Messages of the agents supervisor (see the table above).
pub enum AgentsMsg {
    Create {
        spec: Box<AgentSpec>,
        dir: String,
        run_specs: Vec<(String, String)>,
        by: Surface,
        reply: RpcReplyPort<Result<(), AgentsError>>,
    },
    Update {
        spec: Box<AgentSpec>,
        dir: String,
        run_specs: Vec<(String, String)>,
        by: Surface,
        reply: RpcReplyPort<Result<(), AgentsError>>,
    },
    Command {
        agent: String,
        cmd: AgentCommand,
        reply: RpcReplyPort<Result<AgentAnswer, AgentsError>>,
    },
    Get {
        agent: String,
        reply: RpcReplyPort<Option<AgentState>>,
    },
    Feed(Arc<[Envelope]>),
    Reload,
    /// Journal the cursor (its timer).
    SaveCursor,
}

/// Why an agent operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    #[error("no agent {0:?}")]
    NotFound(String),
    #[error("agent {0:?} exists already (`orca agent update` changes its spec)")]
    Exists(String),
    #[error("agent id {0:?} was retired and cannot be used again")]
    RetiredId(String),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("the journal refused it: {0}")]
    Journal(String),
    #[error("agent {0:?} did not answer")]
    NoAnswer(String),
    #[error("agents run in the daemon, and none runs here: start it with `orca up`")]
    NotRunning,
}

/// The agents supervisor.
#[derive(Debug, Default)]
pub struct Agents;

/// Its state.
pub struct AgentsState {
    services: Services,
    children: ChildTable,
    /// Every identity as last folded (the live state is in each actor).
    view: AgentsView,
    classifier: Classifier,
    /// Fleet event name → (agent, subscription) that subscribe to it.
    index: HashMap<String, Vec<(String, String)>>,
    known_runs: Arc<HashSet<String>>,
    /// The last seq handed to the agents, and the last journaled.
    seen: u64,
    saved: u64,
    /// Whether an event other than a cursor was handed since the last
    /// save (a cursor's own event must not call for another cursor: an
    /// idle daemon journals nothing).
    dirty: bool,
    cursor_armed: bool,
    feed_task: Option<tokio::task::AbortHandle>,
    /// `files` subscriptions: (agent, subscription) → its watcher and its
    /// debounce task.
    watchers: HashMap<(String, String), FilesWatch>,
}

/// A `files` subscription's watcher (dropped: it stops).
struct FilesWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::AbortHandle,
}

impl Drop for FilesWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Actor for Agents {
    type Msg = AgentsMsg;
    type State = AgentsState;
    type Arguments = Services;

    async fn pre_start(
        &self,
        myself: ActorRef<AgentsMsg>,
        services: Services,
    ) -> Result<AgentsState, ActorProcessingErr> {
        services
            .registry
            .register(ActorPath::Agents, myself.get_cell());
        let mut feed = services.journal.subscribe();
        let me = myself.clone();
        let feed_task = tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let msg = match feed.recv().await {
                    Ok(batch) => AgentsMsg::Feed(batch),
                    Err(RecvError::Lagged(_)) => AgentsMsg::Reload,
                    Err(RecvError::Closed) => break,
                };
                if me.cast(msg).is_err() {
                    break;
                }
            }
        })
        .abort_handle();
        let mut st = AgentsState {
            children: ChildTable::new(ActorPath::Agents, SupervisorPolicy::internal()),
            view: AgentsView::default(),
            classifier: Classifier::default(),
            index: HashMap::new(),
            known_runs: Arc::new(HashSet::new()),
            seen: 0,
            dirty: false,
            saved: 0,
            cursor_armed: false,
            feed_task: Some(feed_task),
            watchers: HashMap::new(),
            services,
        };
        let last = st.load().await?;
        // Every live identity gets its row (it boots: timers re-armed,
        // pending intents redone).
        let ids: Vec<String> = st
            .view
            .agents
            .values()
            .filter(|a| !a.retired && a.escalated.is_none())
            .map(|a| a.id.clone())
            .collect();
        for id in ids {
            if let Err(e) = st.start_row(&myself, &id).await {
                tracing::error!(agent = %id, error = %e, "cannot start an agent");
            }
        }
        // Catch up on the fleet events after the cursor.
        st.catch_up(last).await;
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<AgentsMsg>,
        msg: AgentsMsg,
        st: &mut AgentsState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AgentsMsg::Create {
                spec,
                dir,
                run_specs,
                by,
                reply,
            } => {
                let r = st.create(&myself, *spec, dir, run_specs, by).await;
                let _ = reply.send(r);
            }
            AgentsMsg::Update {
                spec,
                dir,
                run_specs,
                by,
                reply,
            } => {
                let id = spec.id.clone();
                let Some(agent) = st.agent(&id) else {
                    let _ = reply.send(Err(st.missing(&id)));
                    return Ok(());
                };
                st.index_agent(&spec);
                tokio::spawn(async move {
                    let r = agent
                        .call(
                            |tx| AgentMsg::Update {
                                spec,
                                dir,
                                run_specs,
                                by,
                                reply: tx,
                            },
                            Some(Duration::from_secs(30)),
                        )
                        .await;
                    let _ = reply.send(match r {
                        Ok(ractor::rpc::CallResult::Success(r)) => r.map_err(AgentsError::from),
                        _ => Err(AgentsError::NoAnswer(id)),
                    });
                });
            }
            AgentsMsg::Command { agent, cmd, reply } => {
                st.command(&myself, agent, cmd, reply).await;
            }
            AgentsMsg::Get { agent, reply } => match st.agent(&agent) {
                Some(a) => {
                    tokio::spawn(async move {
                        let r = a.call(AgentMsg::Get, Some(Duration::from_secs(5))).await;
                        let _ = reply.send(match r {
                            Ok(ractor::rpc::CallResult::Success(s)) => Some(s),
                            _ => None,
                        });
                    });
                }
                None => {
                    let _ = reply.send(st.view.agents.get(&agent).cloned());
                }
            },
            AgentsMsg::Feed(batch) => {
                for env in batch.iter() {
                    if env.seq > st.seen {
                        st.observe(env);
                    }
                }
                st.arm_cursor(&myself);
            }
            AgentsMsg::Reload => {
                let from = st.seen;
                st.catch_up(from).await;
            }
            AgentsMsg::SaveCursor => {
                st.cursor_armed = false;
                if st.dirty && st.seen > st.saved {
                    let seq = st.seen;
                    st.dirty = false;
                    let batch = vec![NewEvent::new(
                        ActorPath::Agents.to_string(),
                        Event::Agent(AgentEvent::Cursor { seq }),
                    )];
                    if st.services.journal.append(batch).await.is_ok() {
                        st.saved = seq;
                    } else {
                        st.dirty = true;
                    }
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<AgentsMsg>,
        evt: SupervisionEvent,
        st: &mut AgentsState,
    ) -> Result<(), ActorProcessingErr> {
        let journal = st.services.journal.clone();
        let outcome = st
            .children
            .handle(evt, &journal, &myself.get_cell(), |plan| {
                let agent = match &plan.path {
                    ActorPath::Agent(id) => id.clone(),
                    _ => String::new(),
                };
                vec![
                    Event::Agent(AgentEvent::Escalated {
                        agent: agent.clone(),
                        reason: "it kept failing (3 restarts in 5 s): it takes no wakes until an operator resumes it".into(),
                    }),
                    crate::alert::AlertRaised::new(
                        AlertClass::NeedsHuman,
                        crate::alert::AlertSource::agent(&agent),
                        None,
                        None,
                        None,
                        format!("agent {agent} escalated: it kept failing; `orca agent resume {agent}` after a look at `orca agent events {agent}`"),
                        Timestamp::now(),
                    )
                    .event(),
                ]
            })
            .await;
        match outcome {
            Outcome::Escalate { path, reason } => {
                if let ActorPath::Agent(id) = path {
                    if let Some(a) = st.view.agents.get_mut(&id) {
                        a.escalated = Some(reason);
                    }
                }
            }
            Outcome::Degraded(e) => {
                tracing::error!(error = %e, "agents cannot journal a supervision decision");
            }
            Outcome::NotMine
            | Outcome::Ignored
            | Outcome::Restarted(_)
            | Outcome::Removed(_)
            | Outcome::Lost { .. }
            | Outcome::RestartLater { .. } => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<AgentsMsg>,
        st: &mut AgentsState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = st.feed_task.take() {
            t.abort();
        }
        // The cursor, so the next start does not replay what was handed.
        if st.dirty && st.seen > st.saved {
            let batch = vec![NewEvent::new(
                ActorPath::Agents.to_string(),
                Event::Agent(AgentEvent::Cursor { seq: st.seen }),
            )];
            let _ = st.services.journal.append(batch).await;
        }
        st.services.registry.unregister(&ActorPath::Agents);
        Ok(())
    }
}

impl AgentsState {
    /// Folds the fleet: every identity, the classifier's runs, the runs
    /// the journal holds. Returns the cursor to catch up from.
    async fn load(&mut self) -> Result<u64, ActorProcessingErr> {
        let ws = self.services.ws.clone();
        let fleet = tokio::task::spawn_blocking(move || FleetView::load(&ws)).await??;
        self.view = fleet.agents.clone();
        for r in fleet.runs.values() {
            self.classifier
                .runs
                .insert(r.run.clone(), RunInfo::of(&r.name, &r.spec_json));
        }
        self.known_runs = Arc::new(fleet.runs.keys().cloned().collect());
        self.index.clear();
        let specs: Vec<AgentSpec> = self
            .view
            .agents
            .values()
            .filter(|a| !a.retired)
            .filter_map(AgentState::spec)
            .collect();
        for s in &specs {
            self.index_agent(s);
        }
        self.seen = self.view.cursor;
        self.saved = self.view.cursor;
        Ok(self.view.cursor.min(fleet.last_seq))
    }

    /// Hands the journal's events after `from` to the agents (at start,
    /// and after the feed lagged).
    async fn catch_up(&mut self, from: u64) {
        let dir = self.services.ws.journal_dir();
        let events = tokio::task::spawn_blocking(move || {
            crate::journal::read(&dir, crate::journal::ReadRange::from(from + 1))
                .map(|it| it.filter_map(Result::ok).collect::<Vec<Envelope>>())
                .unwrap_or_default()
        })
        .await
        .unwrap_or_default();
        for env in &events {
            if env.seq > self.seen {
                self.observe(env);
            }
        }
    }

    fn arm_cursor(&mut self, myself: &ActorRef<AgentsMsg>) {
        if !self.cursor_armed && self.dirty && self.seen > self.saved {
            self.cursor_armed = true;
            myself.send_after(CURSOR_EVERY, || AgentsMsg::SaveCursor);
        }
    }

    /// (Re)indexes an agent's fleet subscriptions and (re)starts the
    /// watchers of its `files` subscriptions.
    fn index_agent(&mut self, spec: &AgentSpec) {
        for subs in self.index.values_mut() {
            subs.retain(|(a, _)| a != &spec.id);
        }
        self.watchers.retain(|(a, _), _| a != &spec.id);
        for s in spec
            .subscriptions
            .iter()
            .filter(|s| s.kind == SubscriptionKind::Files)
        {
            match watch_files(&self.services, &spec.id, s) {
                Ok(w) => {
                    self.watchers.insert((spec.id.clone(), s.id.clone()), w);
                }
                Err(e) => {
                    tracing::warn!(agent = %spec.id, subscription = %s.id, error = %e, "cannot watch the files subscription's path");
                }
            }
        }
        for s in spec
            .subscriptions
            .iter()
            .filter(|s| s.kind == SubscriptionKind::Fleet)
        {
            for e in &s.events {
                self.index
                    .entry(e.clone())
                    .or_default()
                    .push((spec.id.clone(), s.id.clone()));
            }
        }
    }

    /// One journal envelope: agent facts kept, run ends told to their
    /// agents, fleet events handed to subscribers.
    fn observe(&mut self, env: &Envelope) {
        self.seen = env.seq;
        if !matches!(env.event, Event::Agent(AgentEvent::Cursor { .. })) {
            self.dirty = true;
        }
        if let Event::Agent(e) = &env.event {
            self.view.apply(env.at, e);
            if let AgentEvent::Retired { agent, .. } = e {
                let agent = agent.clone();
                self.forget(&agent);
            }
            return;
        }
        if let Event::RunFinished { run, status } = &env.event {
            if let Some(agent) = self.view.run_owner.get(run).cloned() {
                if let Some(a) = self.agent(&agent) {
                    let _ = a.cast(AgentMsg::Tick(AgentCommand::RunEnded {
                        run: run.clone(),
                        status: *status,
                    }));
                }
            }
        }
        let Some(ev) = self.classifier.observe(env) else {
            return;
        };
        self.dispatch(&ev);
    }

    fn dispatch(&self, ev: &FleetEvent) {
        let owner = ev.run.as_ref().and_then(|r| self.view.run_owner.get(r));
        let mut targets: Vec<&(String, String)> = ev
            .names
            .iter()
            .filter_map(|n| self.index.get(n))
            .flatten()
            .collect();
        targets.sort();
        targets.dedup();
        for (agent, sub) in targets {
            let Some(state) = self.view.agents.get(agent) else {
                continue;
            };
            let Some(spec) = state.spec() else { continue };
            let Some(s) = spec.subscription(sub) else {
                continue;
            };
            let own = owner.is_some_and(|o| o == agent);
            if !subscription_takes(s, agent, ev, own) {
                continue;
            }
            if let Some(a) = self.agent(agent) {
                let _ = a.cast(AgentMsg::Decide(
                    AgentCommand::Event {
                        source: sub.clone(),
                        event_id: ev.seq.to_string(),
                        event_json: ev.json.to_string(),
                    },
                    None,
                ));
            }
        }
    }

    /// Stops feeding a retired agent.
    fn forget(&mut self, id: &str) {
        for subs in self.index.values_mut() {
            subs.retain(|(a, _)| a != id);
        }
        self.watchers.retain(|(a, _), _| a != id);
    }

    fn agent(&self, id: &str) -> Option<ActorRef<AgentMsg>> {
        self.children
            .cell(&ActorPath::Agent(id.to_string()))
            .cloned()
            .map(ActorRef::from)
    }

    fn missing(&self, id: &str) -> AgentsError {
        match self.view.agents.get(id) {
            Some(a) if a.retired => AgentsError::Agent(AgentError::Retired {
                agent: id.to_string(),
            }),
            _ => AgentsError::NotFound(id.to_string()),
        }
    }

    async fn create(
        &mut self,
        myself: &ActorRef<AgentsMsg>,
        spec: AgentSpec,
        dir: String,
        run_specs: Vec<(String, String)>,
        by: Surface,
    ) -> Result<(), AgentsError> {
        let id = spec.id.clone();
        match self.view.agents.get(&id) {
            Some(a) if a.retired => return Err(AgentsError::RetiredId(id)),
            Some(_) => return Err(AgentsError::Exists(id)),
            None => {}
        }
        let created = AgentEvent::Created {
            agent: id.clone(),
            spec_json: to_journal_json(&spec),
            dir,
            run_specs,
            by,
        };
        let path = ActorPath::Agent(id.clone());
        let batch = vec![
            NewEvent::new(ActorPath::Agents.to_string(), Event::Agent(created.clone())),
            NewEvent::new(
                ActorPath::Agents.to_string(),
                Event::ChildStarted {
                    path: path.to_string(),
                    kind: NodeKind::Agent,
                    restart: RestartType::Permanent,
                },
            ),
        ];
        self.services
            .journal
            .append(batch)
            .await
            .map_err(|e| AgentsError::Journal(e.to_string()))?;
        self.view.apply(Timestamp::now(), &created);
        self.index_agent(&spec);
        self.start_row(myself, &id)
            .await
            .map_err(|e| AgentsError::Journal(e.to_string()))
    }

    /// Adds the agent's row and starts its actor; a restart folds it again
    /// from the journal.
    async fn start_row(
        &mut self,
        myself: &ActorRef<AgentsMsg>,
        id: &str,
    ) -> Result<(), ActorProcessingErr> {
        let first = self.view.agents.get(id).cloned();
        let first = Arc::new(std::sync::Mutex::new(first));
        let services = self.services.clone();
        let known = self.known_runs.clone();
        let agent = id.to_string();
        let starter = move |sup: ActorCell, _restarts: u32| {
            let first = first.lock().ok().and_then(|mut f| f.take());
            let (services, known, agent) = (services.clone(), known.clone(), agent.clone());
            let fut: futures::future::BoxFuture<'static, _> = Box::pin(async move {
                let state = match first {
                    Some(s) => s,
                    None => {
                        let ws = services.ws.clone();
                        let fleet = tokio::task::spawn_blocking(move || FleetView::load(&ws))
                            .await
                            .map_err(|e| e.to_string())??;
                        fleet
                            .agents
                            .agents
                            .get(&agent)
                            .cloned()
                            .ok_or_else(|| format!("agent {agent} is not in the journal"))?
                    }
                };
                let args = AgentArgs {
                    services,
                    state,
                    known_runs: known,
                };
                let (actor, _) = Actor::spawn_linked(None, AgentActor, args, sup).await?;
                Ok(actor.get_cell())
            });
            fut
        };
        let row = ChildSpec::permanent(ActorPath::Agent(id.to_string()), Arc::new(starter))
            .escalating(Escalation::ChildAlone);
        self.children.start(row, myself.get_cell()).await?;
        Ok(())
    }

    async fn command(
        &mut self,
        myself: &ActorRef<AgentsMsg>,
        agent: String,
        cmd: AgentCommand,
        reply: RpcReplyPort<Result<AgentAnswer, AgentsError>>,
    ) {
        // An escalated agent's row is gone: resuming starts it again.
        if self.agent(&agent).is_none() {
            let escalated = self
                .view
                .agents
                .get(&agent)
                .is_some_and(|a| a.escalated.is_some() && !a.retired);
            if escalated && matches!(cmd, AgentCommand::Resume { .. }) {
                if let Some(a) = self.view.agents.get_mut(&agent) {
                    a.escalated = None;
                }
                if let Err(e) = self.start_row(myself, &agent).await {
                    let _ = reply.send(Err(AgentsError::Journal(e.to_string())));
                    return;
                }
            } else {
                let _ = reply.send(Err(self.missing(&agent)));
                return;
            }
        }
        let Some(a) = self.agent(&agent) else {
            let _ = reply.send(Err(self.missing(&agent)));
            return;
        };
        tokio::spawn(async move {
            let r = a
                .call(
                    |tx| AgentMsg::Decide(cmd, Some(tx)),
                    Some(Duration::from_secs(30)),
                )
                .await;
            let _ = reply.send(match r {
                Ok(ractor::rpc::CallResult::Success(r)) => r.map_err(AgentsError::from),
                _ => Err(AgentsError::NoAnswer(agent)),
            });
        });
    }
}

/// Watches a `files` subscription's path (recursively; never `.orca/`):
/// changes closer together than its `debounce` are one wake, whose event
/// lists the changed paths (relative to the workspace) and whose id is the
/// time of the first change.
fn watch_files(
    services: &Services,
    agent: &str,
    sub: &crate::agent::spec::Subscription,
) -> Result<FilesWatch, notify::Error> {
    use notify::Watcher as _;
    let root = services.ws.root().to_path_buf();
    let path = root.join(sub.path.as_deref().unwrap_or("."));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<std::path::PathBuf>();
    let orca_dir = services.ws.orca_dir();
    let mut watcher = notify::recommended_watcher(move |r: notify::Result<notify::Event>| {
        if let Ok(e) = r {
            if matches!(e.kind, notify::EventKind::Access(_)) {
                return;
            }
            for p in e.paths {
                if !p.starts_with(&orca_dir) {
                    let _ = tx.send(p);
                }
            }
        }
    })?;
    watcher.watch(&path, notify::RecursiveMode::Recursive)?;
    let debounce = Duration::from_millis(
        sub.debounce
            .map(|d| d.millis())
            .unwrap_or(crate::agent::spec::DEFAULT_DEBOUNCE_MS),
    );
    let registry = services.registry.clone();
    let (agent, source) = (agent.to_string(), sub.id.clone());
    let task = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let started = Timestamp::now();
            let mut paths = std::collections::BTreeSet::new();
            paths.insert(first);
            let deadline = tokio::time::Instant::now() + debounce;
            while let Ok(Some(p)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                paths.insert(p);
            }
            let rel: Vec<String> = paths
                .iter()
                .map(|p| {
                    p.strip_prefix(&root)
                        .unwrap_or(p)
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            let event = serde_json::json!({
                "event": "files",
                "subscription": source,
                "paths": rel,
                "at": started.rfc3339(),
            });
            if let Some(cell) = registry.get(&ActorPath::Agent(agent.clone())) {
                let a: ActorRef<AgentMsg> = cell.into();
                let _ = a.cast(AgentMsg::Decide(
                    AgentCommand::Event {
                        source: source.clone(),
                        event_id: started.nanos().to_string(),
                        event_json: event.to_string(),
                    },
                    None,
                ));
            }
        }
    })
    .abort_handle();
    Ok(FilesWatch {
        _watcher: watcher,
        task,
    })
}
