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
//! An idle agent is a *passive row* (docs/agents.md): its boot, decided
//! here with the pure [`decide`], only arms deadlines
//! ([`stays_passive`]), so its row holds no actor: its state is this
//! supervisor's view, its next deadline one entry under this supervisor's
//! one timer. Its actor starts ([`ChildTable::wake`]) on a deadline, an
//! event for it, a command or an update.
//!
//! # Messages ([`AgentsMsg`])
//!
//! | variant | what it does | reply | journals |
//! |---|---|---|---|
//! | `Create{…}` | a new identity: refuses an id in use or retired, journals it, adds its row (passive when its boot only arms deadlines) | `Result<(), AgentsError>` | `AgentCreated`, `ChildStarted`, `AgentTimerArmed` |
//! | `Update{…}` | a new spec for an identity (its state stays) | `Result<(), AgentsError>` | `AgentUpdated` (by the agent) |
//! | `Command{agent, cmd, reply}` | an [`AgentCommand`] for one agent (tell, pause, resume, retire, approve, deny, a webhook's event); resuming an escalated agent restarts its row | `Result<AgentAnswer, AgentsError>` | the agent's |
//! | `Get{agent, reply}` | the agent's state (live) | `Option<AgentState>` | — |
//! | `Feed(batch)` / `Reload` | journal events: fleet events to subscribers, run ends to their agents | — | `AgentCursor` |
//! | `Due` | (its one timer) passive rows whose deadline came: their actors start | — | the agents' |
//! | `Wake{agent, cmd}` | a command with no one to answer (a `files` change, debounced): a passive row is woken for it | — | the agent's `AgentWoke` |
//! | `Rows(reply)` | how many rows run an actor, how many are passive | [`RowCount`] | — |

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::agent::actor::{AgentActor, AgentArgs, AgentMsg, REST};
use crate::agent::decide::{
    armed_deadlines, decide, next_deadline, stays_passive, AgentAnswer, AgentCommand, AgentEffect,
    AgentError,
};
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
    /// Its one timer for passive rows: wake those whose deadline came.
    Due,
    /// A command for an agent with no one to answer (a `files`
    /// subscription's change): a passive row is woken for it.
    Wake {
        agent: String,
        cmd: AgentCommand,
    },
    /// How many rows run an actor, and how many are passive.
    Rows(RpcReplyPort<RowCount>),
    /// (From an agent) it is at rest, its state journaled up to `seq`.
    AtRest {
        agent: String,
        seq: u64,
    },
    /// (From an agent asked to rest) something came in: it goes on.
    Busy {
        agent: String,
    },
}

/// The `agents` table's rows: agents whose actor runs, and passive ones
/// (state only, until a deadline or a wake).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowCount {
    pub running: usize,
    pub passive: usize,
}

/// What a row's starter hands its actor: the state, and for a passive row
/// woken, the deadlines its boot armed (`None`: the actor boots itself).
type Handoff = Arc<Mutex<HashMap<String, (AgentState, Option<Vec<AgentEffect>>)>>>;

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
    /// Passive rows: in the table, no actor — the deadlines their boot
    /// armed (their state is the view's).
    passive: HashMap<String, Vec<AgentEffect>>,
    /// Passive rows by their next deadline, under one timer (`alarm`).
    deadlines: BTreeSet<(Timestamp, String)>,
    alarm: Option<(Timestamp, tokio::task::AbortHandle)>,
    /// The state (and deadlines) a row's starter takes.
    handoff: Handoff,
    /// Seq ranges this supervisor journaled for passive rows and folded
    /// into the view itself: the feed does not fold them twice.
    folded: VecDeque<(u64, u64)>,
    /// Agents at rest whose state this view has not folded up to the
    /// seq they reached yet: asked to rest once it has.
    rest_after: HashMap<String, u64>,
    /// Agents asked to rest: what comes for them meanwhile waits here
    /// (delivered to the actor if it goes on, or to the one woken again).
    resting: HashMap<String, Vec<AgentMsg>>,
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
            passive: HashMap::new(),
            deadlines: BTreeSet::new(),
            alarm: None,
            handoff: Arc::new(Mutex::new(HashMap::new())),
            folded: VecDeque::new(),
            rest_after: HashMap::new(),
            resting: HashMap::new(),
            services,
        };
        let last = st.load().await?;
        st.boot_rows(&myself).await?;
        // Catch up on the fleet events after the cursor.
        st.catch_up(&myself, last).await;
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
                if !st.live(&id) {
                    let _ = reply.send(Err(st.missing(&id)));
                    return Ok(());
                }
                st.reindex_agent(&spec);
                let (tx, rx) = ractor::concurrency::oneshot();
                let msg = AgentMsg::Update {
                    spec,
                    dir,
                    run_specs,
                    by,
                    reply: tx.into(),
                };
                st.deliver(&myself, vec![(id.clone(), msg)]).await;
                tokio::spawn(async move {
                    let r = tokio::time::timeout(Duration::from_secs(30), rx).await;
                    let _ = reply.send(match r {
                        Ok(Ok(r)) => r.map_err(AgentsError::from),
                        _ => Err(AgentsError::NoAnswer(id)),
                    });
                });
            }
            AgentsMsg::Command { agent, cmd, reply } => {
                st.command(&myself, agent, cmd, reply).await;
            }
            // A running agent answers with its live state; a passive row's
            // (or one going to rest) is the view's.
            AgentsMsg::Get { agent, reply } => match st.agent(&agent) {
                Some(a) if !st.resting.contains_key(&agent) => {
                    let (tx, rx) = ractor::concurrency::oneshot();
                    let _ = a.cast(AgentMsg::Get(tx.into()));
                    tokio::spawn(async move {
                        let r = tokio::time::timeout(Duration::from_secs(5), rx).await;
                        let _ = reply.send(r.ok().and_then(Result::ok));
                    });
                }
                _ => {
                    let _ = reply.send(st.view.agents.get(&agent).cloned());
                }
            },
            AgentsMsg::Feed(batch) => {
                let mut out = Vec::new();
                for env in batch.iter() {
                    if env.seq > st.seen {
                        st.observe(env, &mut out);
                    }
                }
                st.deliver(&myself, out).await;
                st.arm_cursor(&myself);
                if !st.rest_after.is_empty() {
                    let seen = st.seen;
                    let ready: Vec<String> = st
                        .rest_after
                        .iter()
                        .filter(|(_, seq)| **seq <= seen)
                        .map(|(a, _)| a.clone())
                        .collect();
                    for agent in ready {
                        st.rest_after.remove(&agent);
                        st.ask_to_rest(&agent);
                    }
                }
            }
            AgentsMsg::AtRest { agent, seq } => {
                if seq <= st.seen {
                    st.ask_to_rest(&agent);
                } else {
                    st.rest_after.insert(agent, seq);
                }
            }
            AgentsMsg::Busy { agent } => {
                let held = st.resting.remove(&agent).unwrap_or_default();
                st.deliver(
                    &myself,
                    held.into_iter().map(|m| (agent.clone(), m)).collect(),
                )
                .await;
            }
            AgentsMsg::Reload => {
                let from = st.seen;
                st.catch_up(&myself, from).await;
            }
            AgentsMsg::Due => {
                st.alarm = None;
                let now = Timestamp::now();
                let due: Vec<String> = st
                    .deadlines
                    .iter()
                    .take_while(|(at, _)| *at <= now)
                    .map(|(_, id)| id.clone())
                    .collect();
                for id in due {
                    // Its actor arms the deadlines again; those due fire.
                    st.wake(&myself, &id).await;
                }
                st.arm_alarm(&myself);
            }
            AgentsMsg::Wake { agent, cmd } => {
                st.deliver(&myself, vec![(agent, AgentMsg::Decide(cmd, None))])
                    .await;
            }
            AgentsMsg::Rows(reply) => {
                let running = st.children.children().filter(|(_, c)| c.is_some()).count();
                let _ = reply.send(RowCount {
                    running,
                    passive: st.passive.len(),
                });
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
        // An agent that stopped at rest is not a failure: its row goes
        // passive.
        if let Some((path, _, reason)) = st.children.exit_of(&evt) {
            let rested = matches!(&evt, SupervisionEvent::ActorTerminated(..))
                && reason == REST
                && matches!(&path, ActorPath::Agent(id) if st.resting.contains_key(id));
            if rested {
                st.rested(&myself, &path).await;
                return Ok(());
            }
        }
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
                    st.resting.remove(&id);
                    st.rest_after.remove(&id);
                    if let Some(a) = st.view.agents.get_mut(&id) {
                        a.escalated = Some(reason);
                    }
                }
            }
            Outcome::Degraded(e) => {
                tracing::error!(error = %e, "agents cannot journal a supervision decision");
            }
            Outcome::Restarted(ActorPath::Agent(id)) => {
                // It failed while asked to rest: what was held goes to
                // the restarted actor.
                if let Some(held) = st.resting.remove(&id) {
                    let out = held.into_iter().map(|m| (id.clone(), m)).collect();
                    st.deliver(&myself, out).await;
                }
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
        if let Some((_, t)) = st.alarm.take() {
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
    async fn catch_up(&mut self, myself: &ActorRef<AgentsMsg>, from: u64) {
        let dir = self.services.ws.journal_dir();
        let events = tokio::task::spawn_blocking(move || {
            crate::journal::read(&dir, crate::journal::ReadRange::from(from + 1))
                .map(|it| it.filter_map(Result::ok).collect::<Vec<Envelope>>())
                .unwrap_or_default()
        })
        .await
        .unwrap_or_default();
        let mut out = Vec::new();
        for env in &events {
            if env.seq > self.seen {
                self.observe(env, &mut out);
            }
        }
        self.deliver(myself, out).await;
    }

    /// Hands each message to its agent, waking a passive row first.
    async fn deliver(&mut self, myself: &ActorRef<AgentsMsg>, out: Vec<(String, AgentMsg)>) {
        for (agent, msg) in out {
            if let Some(held) = self.resting.get_mut(&agent) {
                held.push(msg);
                continue;
            }
            if let Some(a) = self.wake(myself, &agent).await {
                let _ = a.cast(msg);
            }
        }
    }

    /// Asks a running agent at rest to stop, its row going passive; what
    /// comes for it meanwhile is held.
    fn ask_to_rest(&mut self, agent: &str) {
        if self.resting.contains_key(agent) {
            return;
        }
        if let Some(a) = self.agent(agent) {
            if a.cast(AgentMsg::Rest).is_ok() {
                self.resting.insert(agent.to_string(), Vec::new());
            }
        }
    }

    /// An agent stopped at rest: its row goes passive, with the deadlines
    /// its state (this view's fold) holds; what was held for it wakes it
    /// again.
    async fn rested(&mut self, myself: &ActorRef<AgentsMsg>, path: &ActorPath) {
        let ActorPath::Agent(id) = path else { return };
        self.children.park(path);
        let held = self.resting.remove(id).unwrap_or_default();
        let arms = self
            .view
            .agents
            .get(id)
            .and_then(|a| Some(armed_deadlines(a, &a.spec()?)))
            .unwrap_or_default();
        self.set_passive(id, arms);
        self.arm_alarm(myself);
        let out = held.into_iter().map(|m| (id.clone(), m)).collect();
        self.deliver(myself, out).await;
    }

    /// Every live identity gets its row at start. One whose boot only arms
    /// deadlines ([`stays_passive`]) stays passive — its timer bookkeeping
    /// journaled for all such rows in one batch —; the others' actors start
    /// and boot (a tick to catch up, an intent to redo, a wake to take).
    async fn boot_rows(&mut self, myself: &ActorRef<AgentsMsg>) -> Result<(), ActorProcessingErr> {
        let now = Timestamp::now();
        let mut events = Vec::new();
        let mut passive = Vec::new();
        let mut active = Vec::new();
        for a in self
            .view
            .agents
            .values()
            .filter(|a| !a.retired && a.escalated.is_none())
        {
            let d = a
                .spec()
                .and_then(|spec| decide(a, &spec, AgentCommand::Boot, now).ok());
            match d {
                Some(d) if stays_passive(&d) => {
                    let path = ActorPath::Agent(a.id.clone()).to_string();
                    events.extend(d.events.into_iter().map(|e| NewEvent::new(path.clone(), e)));
                    passive.push((a.id.clone(), d.effects));
                }
                _ => active.push(a.id.clone()),
            }
        }
        if !events.is_empty() {
            self.journal_folded(events).await?;
        }
        for (id, arms) in passive {
            self.add_row(&id);
            self.set_passive(&id, arms);
        }
        for id in active {
            if let Err(e) = self.start_row(myself, &id).await {
                tracing::error!(agent = %id, error = %e, "cannot start an agent");
            }
        }
        self.arm_alarm(myself);
        Ok(())
    }

    /// Journals events of passive rows and folds them into the view at
    /// once (the feed will not fold them again).
    async fn journal_folded(&mut self, batch: Vec<NewEvent>) -> Result<(), AgentsError> {
        let agent_events: Vec<AgentEvent> = batch
            .iter()
            .filter_map(|e| match &e.event {
                Event::Agent(a) => Some(a.clone()),
                _ => None,
            })
            .collect();
        let ack = self
            .services
            .journal
            .append(batch)
            .await
            .map_err(|e| AgentsError::Journal(e.to_string()))?;
        for e in &agent_events {
            self.view.apply(ack.at, e);
        }
        self.folded.push_back((ack.first_seq, ack.last_seq));
        Ok(())
    }

    /// Whether the feed's `seq` was folded already (and forgets ranges
    /// behind it).
    fn folded_already(&mut self, seq: u64) -> bool {
        while let Some(&(_, last)) = self.folded.front() {
            if last < seq {
                self.folded.pop_front();
            } else {
                break;
            }
        }
        self.folded
            .front()
            .is_some_and(|&(first, last)| first <= seq && seq <= last)
    }

    /// Makes `id` a passive row with these deadlines.
    fn set_passive(&mut self, id: &str, arms: Vec<AgentEffect>) {
        if let Some(at) = next_deadline(&arms) {
            self.deadlines.insert((at, id.to_string()));
        }
        self.passive.insert(id.to_string(), arms);
    }

    /// Sets the one timer for the earliest passive deadline.
    fn arm_alarm(&mut self, myself: &ActorRef<AgentsMsg>) {
        let first = self.deadlines.first().map(|(at, _)| *at);
        if first.is_some() && first == self.alarm.as_ref().map(|(at, _)| *at) {
            return;
        }
        if let Some((_, h)) = self.alarm.take() {
            h.abort();
        }
        if let Some(at) = first {
            let delay = Duration::from_millis(at.millis_since(Timestamp::now()));
            let h = myself.send_after(delay, || AgentsMsg::Due);
            self.alarm = Some((at, h.abort_handle()));
        }
    }

    /// The agent's actor: the running one, or its passive row's, started
    /// now with its state and deadlines (`None`: no such live row, or it
    /// cannot start).
    async fn wake(&mut self, myself: &ActorRef<AgentsMsg>, id: &str) -> Option<ActorRef<AgentMsg>> {
        if let Some(a) = self.agent(id) {
            return Some(a);
        }
        let arms = self.passive.remove(id)?;
        if let Some(at) = next_deadline(&arms) {
            self.deadlines.remove(&(at, id.to_string()));
        }
        let state = self.view.agents.get(id).cloned()?;
        if let Ok(mut h) = self.handoff.lock() {
            h.insert(id.to_string(), (state, Some(arms.clone())));
        }
        let path = ActorPath::Agent(id.to_string());
        match self.children.wake(&path, myself.get_cell()).await {
            Ok(cell) => Some(cell.into()),
            Err(e) => {
                tracing::error!(agent = %id, error = %e, "cannot wake an agent");
                if let Ok(mut h) = self.handoff.lock() {
                    h.remove(id);
                }
                // Still passive, but off the timer (a deadline that cannot
                // start its actor must not fire again at once, forever):
                // the next event or command for it tries again.
                self.passive.insert(id.to_string(), arms);
                None
            }
        }
    }

    fn arm_cursor(&mut self, myself: &ActorRef<AgentsMsg>) {
        if !self.cursor_armed && self.dirty && self.seen > self.saved {
            self.cursor_armed = true;
            myself.send_after(CURSOR_EVERY, || AgentsMsg::SaveCursor);
        }
    }

    /// Re-indexes an agent whose spec changed: its old entries go first
    /// (a scan of the whole index: only for an update).
    fn reindex_agent(&mut self, spec: &AgentSpec) {
        for subs in self.index.values_mut() {
            subs.retain(|(a, _)| a != &spec.id);
        }
        self.watchers.retain(|(a, _), _| a != &spec.id);
        self.index_agent(spec);
    }

    /// Indexes a new agent's fleet subscriptions and starts the watchers
    /// of its `files` subscriptions (at load and creation: nothing of it
    /// is indexed yet, so nothing is scanned — 10,000 agents cost 10,000
    /// inserts, not 10,000 scans of the index).
    fn index_agent(&mut self, spec: &AgentSpec) {
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
    fn observe(&mut self, env: &Envelope, out: &mut Vec<(String, AgentMsg)>) {
        self.seen = env.seq;
        if !matches!(env.event, Event::Agent(AgentEvent::Cursor { .. })) {
            self.dirty = true;
        }
        if let Event::Agent(e) = &env.event {
            if !self.folded_already(env.seq) {
                self.view.apply(env.at, e);
            }
            if let AgentEvent::Retired { agent, .. } = e {
                let agent = agent.clone();
                self.forget(&agent);
            }
            return;
        }
        if let Event::RunFinished { run, status } = &env.event {
            if let Some(agent) = self.view.run_owner.get(run).cloned() {
                out.push((
                    agent,
                    AgentMsg::Tick(AgentCommand::RunEnded {
                        run: run.clone(),
                        status: *status,
                    }),
                ));
            }
        }
        let Some(ev) = self.classifier.observe(env) else {
            return;
        };
        self.dispatch(&ev, out);
    }

    fn dispatch(&self, ev: &FleetEvent, out: &mut Vec<(String, AgentMsg)>) {
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
            if self.live(agent) {
                out.push((
                    agent.clone(),
                    AgentMsg::Decide(
                        AgentCommand::Event {
                            source: sub.clone(),
                            event_id: ev.seq.to_string(),
                            event_json: ev.json.to_string(),
                        },
                        None,
                    ),
                ));
            }
        }
    }

    /// Stops feeding a retired agent.
    fn forget(&mut self, id: &str) {
        for subs in self.index.values_mut() {
            subs.retain(|(a, _)| a != id);
        }
        self.rest_after.remove(id);
        if let Some(arms) = self.passive.remove(id) {
            if let Some(at) = next_deadline(&arms) {
                self.deadlines.remove(&(at, id.to_string()));
            }
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
        let mut batch = vec![
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
        // Its boot decided now: if it only arms deadlines, the row stays
        // passive and that bookkeeping joins the creation's batch.
        let now = Timestamp::now();
        let mut first = AgentState::default();
        first.apply(now, &created);
        let boot = decide(&first, &spec, AgentCommand::Boot, now)
            .ok()
            .filter(stays_passive);
        if let Some(d) = &boot {
            batch.extend(
                d.events
                    .iter()
                    .map(|e| NewEvent::new(path.to_string(), e.clone())),
            );
        }
        self.journal_folded(batch).await?;
        self.index_agent(&spec);
        match boot {
            Some(d) => {
                self.add_row(&id);
                self.set_passive(&id, d.effects);
                self.arm_alarm(myself);
                Ok(())
            }
            None => self
                .start_row(myself, &id)
                .await
                .map_err(|e| AgentsError::Journal(e.to_string())),
        }
    }

    /// Adds the agent's row with no actor (a passive row, or one about to
    /// start). Its starter takes the state (and deadlines) handed to it;
    /// with none — a restart after a failure — it folds the agent again
    /// from the journal and boots.
    fn add_row(&mut self, id: &str) {
        let row = ChildSpec::permanent(ActorPath::Agent(id.to_string()), self.starter(id))
            .escalating(Escalation::ChildAlone);
        self.children.insert(row, None);
    }

    /// Adds the agent's row and starts its actor; a restart folds it again
    /// from the journal.
    async fn start_row(
        &mut self,
        myself: &ActorRef<AgentsMsg>,
        id: &str,
    ) -> Result<(), ActorProcessingErr> {
        let path = ActorPath::Agent(id.to_string());
        if let (Some(first), Ok(mut h)) = (self.view.agents.get(id).cloned(), self.handoff.lock()) {
            h.insert(id.to_string(), (first, None));
        }
        self.add_row(id);
        self.children.wake(&path, myself.get_cell()).await?;
        Ok(())
    }

    /// A row's starter (see [`Self::add_row`]).
    fn starter(&self, id: &str) -> Arc<dyn crate::supervision::Starter> {
        let handoff = self.handoff.clone();
        let services = self.services.clone();
        let known = self.known_runs.clone();
        let agent = id.to_string();
        let starter = move |sup: ActorCell, _restarts: u32| {
            let first = handoff.lock().ok().and_then(|mut h| h.remove(&agent));
            let (services, known, agent) = (services.clone(), known.clone(), agent.clone());
            let fut: futures::future::BoxFuture<'static, _> = Box::pin(async move {
                let (state, woken) = match first {
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
                            .map(|s| (s, None))
                            .ok_or_else(|| format!("agent {agent} is not in the journal"))?
                    }
                };
                let args = AgentArgs {
                    services,
                    state,
                    known_runs: known,
                    woken,
                };
                let (actor, _) = Actor::spawn_linked(None, AgentActor, args, sup).await?;
                Ok(actor.get_cell())
            });
            fut
        };
        Arc::new(starter)
    }

    async fn command(
        &mut self,
        myself: &ActorRef<AgentsMsg>,
        agent: String,
        cmd: AgentCommand,
        reply: RpcReplyPort<Result<AgentAnswer, AgentsError>>,
    ) {
        // An escalated agent's row is gone: resuming starts it again.
        if !self.live(&agent) {
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
        // Sent now, in order with what this supervisor hands the agent (a
        // passive row is woken; one going to rest gets it once it goes on
        // or is woken again).
        let (tx, rx) = ractor::concurrency::oneshot();
        let msg = AgentMsg::Decide(cmd, Some(tx.into()));
        self.deliver(myself, vec![(agent.clone(), msg)]).await;
        tokio::spawn(async move {
            let r = tokio::time::timeout(Duration::from_secs(30), rx).await;
            let _ = reply.send(match r {
                Ok(Ok(r)) => r.map_err(AgentsError::from),
                _ => Err(AgentsError::NoAnswer(agent)),
            });
        });
    }

    /// Whether the agent has a row: its actor running, passive, or going
    /// to rest.
    fn live(&self, id: &str) -> bool {
        self.agent(id).is_some() || self.passive.contains_key(id) || self.resting.contains_key(id)
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
    // Through the supervisor: a passive row is woken for it.
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
            if let Some(cell) = registry.get(&ActorPath::Agents) {
                let a: ActorRef<AgentsMsg> = cell.into();
                let _ = a.cast(AgentsMsg::Wake {
                    agent: agent.clone(),
                    cmd: AgentCommand::Event {
                        source: source.clone(),
                        event_id: started.nanos().to_string(),
                        event_json: event.to_string(),
                    },
                });
            }
        }
    })
    .abort_handle();
    Ok(FilesWatch {
        _watcher: watcher,
        task,
    })
}
