//! The `agent:<id>` actor (`/agents/<id>`): one identity, one message at a
//! time. It decides with [`super::decide::decide`] (pure), journals the
//! decision (folding it into its state at once), and carries out the
//! effects — timers, run submissions, stops — once the append is durable.
//!
//! # Messages ([`AgentMsg`])
//!
//! | variant | what it does | reply | journals |
//! |---|---|---|---|
//! | `Boot` | (to itself, unless its passive row was woken: then it arms the deadlines its supervisor hands it) arm timers (catching up or skipping missed ticks), re-arm commitments, redo intents journaled but not carried out, take the next wake | — | `AgentTimerArmed`, `AgentTimerSkipped`, `AgentWoke`… |
//! | `Decide(cmd, reply)` | any [`AgentCommand`]: an event for a subscription (fleet, webhook, files) or the inbox, pause, resume, retire, approve, deny | `Result<AgentAnswer, AgentError>`, once journaled | `AgentWoke`, `AgentWakeStarted`, `AgentIntended`, `AgentDone`, `AgentRefused`, `AgentWakeDone`, `AgentPaused`, … |
//! | `Update{…, reply}` | a new spec applies; the state stays; timers are re-armed | `Result<(), AgentError>` | `AgentUpdated`, `AgentTimerArmed` |
//! | `Tick(cmd)` | (its timers and effects) a timer or commitment came due, the wake rate has room, an effect came back, a run it started ended | — | as `Decide` |
//! | `Persisted(effects)` | a decision is durable: carry out its effects | — | — |
//! | `JournalFailed(reason)` | an append failed: nothing more is acted on; the actor fails (its supervisor decides) | — | — |
//! | `Get(reply)` | its state as folded | [`AgentState`] | — |

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::task::AbortHandle;

use super::decide::{decide, AgentAnswer, AgentCommand, AgentEffect, AgentError};
use super::events::{AgentEvent, IntentOutcome};
use super::spec::AgentSpec;
use super::state::AgentState;
use crate::journal::{Event, NewEvent};
use crate::model::{Surface, Timestamp};
use crate::path::ActorPath;
use crate::persist::Persister;
use crate::services::Services;

/// Messages of an agent (see the table above).
pub enum AgentMsg {
    Boot,
    Decide(
        AgentCommand,
        Option<RpcReplyPort<Result<AgentAnswer, AgentError>>>,
    ),
    Update {
        spec: Box<AgentSpec>,
        dir: String,
        run_specs: Vec<(String, String)>,
        by: Surface,
        reply: RpcReplyPort<Result<(), AgentError>>,
    },
    Tick(AgentCommand),
    Persisted(Durable),
    JournalFailed(String),
    Get(RpcReplyPort<AgentState>),
    /// (From its supervisor, after it said it is at rest) stop, the row
    /// going passive — unless something came in meanwhile.
    Rest,
}

/// The stop reason of an agent whose row goes passive (not a failure).
pub const REST: &str = "at rest: its row is passive until a deadline or a wake";

/// A decision made durable: its effects, and the caller to answer.
pub struct Durable {
    /// The batch's last seq, once durable.
    seq: u64,
    effects: Vec<AgentEffect>,
    reply: Option<(RpcReplyPort<Result<AgentAnswer, AgentError>>, AgentAnswer)>,
}

/// What an agent starts with.
pub struct AgentArgs {
    pub services: Services,
    pub state: AgentState,
    /// Runs the journal holds (a run an intent fixed the id of, submitted
    /// before orca died, is not submitted again).
    pub known_runs: Arc<HashSet<String>>,
    /// `None`: it boots (`Boot`: a first start, a restart after a crash).
    /// `Some(arms)`: a passive row woken by its supervisor, which decided
    /// its boot already: it arms these deadlines (one due already fires at
    /// once) and takes what woke it.
    pub woken: Option<Vec<AgentEffect>>,
}

/// The agent actor.
#[derive(Debug, Default)]
pub struct AgentActor;

/// Its state.
pub struct AgentActorState {
    services: Services,
    state: AgentState,
    spec: AgentSpec,
    path: ActorPath,
    known_runs: Arc<HashSet<String>>,
    timers: HashMap<String, AbortHandle>,
    persister: Persister<Durable>,
    halted: bool,
    /// Appends not durable yet; the last seq made durable; whether it told
    /// its supervisor it is at rest since its last decision.
    in_flight: usize,
    last_seq: u64,
    offered: bool,
}

impl Actor for AgentActor {
    type Msg = AgentMsg;
    type State = AgentActorState;
    type Arguments = AgentArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<AgentMsg>,
        args: AgentArgs,
    ) -> Result<AgentActorState, ActorProcessingErr> {
        let path = ActorPath::Agent(args.state.id.clone());
        let spec = args
            .state
            .spec()
            .ok_or_else(|| format!("agent {}: its journaled spec does not parse", args.state.id))?;
        args.services
            .registry
            .register(path.clone(), myself.get_cell());
        let me = myself.clone();
        let persister = Persister::new(args.services.journal.clone(), move |r, done| {
            let _ = me.cast(match r {
                Ok(ack) => AgentMsg::Persisted(Durable {
                    seq: ack.last_seq,
                    ..done
                }),
                Err(e) => AgentMsg::JournalFailed(e.to_string()),
            });
        });
        let mut st = AgentActorState {
            services: args.services,
            state: args.state,
            spec,
            path,
            known_runs: args.known_runs,
            timers: HashMap::new(),
            persister,
            halted: false,
            in_flight: 0,
            last_seq: 0,
            offered: false,
        };
        match args.woken {
            None => myself.cast(AgentMsg::Boot)?,
            Some(arms) => {
                for e in arms {
                    st.act(&myself, e);
                }
            }
        }
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<AgentMsg>,
        msg: AgentMsg,
        st: &mut AgentActorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AgentMsg::Boot => st.decide(&myself, AgentCommand::Boot, None),
            AgentMsg::Decide(cmd, reply) => st.decide(&myself, cmd, reply),
            AgentMsg::Tick(cmd) => st.decide(&myself, cmd, None),
            AgentMsg::Update {
                spec,
                dir,
                run_specs,
                by,
                reply,
            } => {
                if st.state.retired {
                    let _ = reply.send(Err(AgentError::Retired {
                        agent: st.state.id.clone(),
                    }));
                    return Ok(());
                }
                let e = AgentEvent::Updated {
                    agent: st.state.id.clone(),
                    spec_json: super::spec::to_journal_json(&spec),
                    dir,
                    run_specs,
                    by,
                };
                st.state.apply(Timestamp::now(), &e);
                st.spec = *spec;
                for (_, t) in st.timers.drain() {
                    t.abort();
                }
                st.in_flight += 1;
                st.offered = false;
                st.persister.append(
                    vec![NewEvent::new(st.path.to_string(), Event::Agent(e))],
                    Durable {
                        seq: 0,
                        effects: Vec::new(),
                        reply: None,
                    },
                );
                let _ = reply.send(Ok(()));
                // Timers and pending work under the new spec.
                st.decide(&myself, AgentCommand::Boot, None);
            }
            AgentMsg::Persisted(done) => {
                st.in_flight = st.in_flight.saturating_sub(1);
                st.last_seq = st.last_seq.max(done.seq);
                if let Some((reply, answer)) = done.reply {
                    let _ = reply.send(Ok(answer));
                }
                for e in done.effects {
                    st.act(&myself, e);
                }
            }
            AgentMsg::JournalFailed(reason) => {
                st.halted = true;
                return Err(
                    format!("agent {}: journal append failed: {reason}", st.state.id).into(),
                );
            }
            AgentMsg::Get(reply) => {
                let _ = reply.send(st.state.clone());
            }
            AgentMsg::Rest => {
                if st.resting() {
                    myself.stop(Some(REST.into()));
                } else if let Some(cell) = st.services.registry.get(&ActorPath::Agents) {
                    let sup: ActorRef<crate::agents::AgentsMsg> = cell.into();
                    let _ = sup.cast(crate::agents::AgentsMsg::Busy {
                        agent: st.state.id.clone(),
                    });
                }
                return Ok(());
            }
        }
        st.offer_rest();
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<AgentMsg>,
        st: &mut AgentActorState,
    ) -> Result<(), ActorProcessingErr> {
        for (_, t) in st.timers.drain() {
            t.abort();
        }
        st.services.registry.unregister(&st.path);
        Ok(())
    }
}

impl AgentActorState {
    /// Decides, folds at once, journals, and acts once durable; the reply
    /// goes once the decision is journaled.
    fn decide(
        &mut self,
        myself: &ActorRef<AgentMsg>,
        cmd: AgentCommand,
        reply: Option<RpcReplyPort<Result<AgentAnswer, AgentError>>>,
    ) {
        if self.halted {
            return;
        }
        let now = Timestamp::now();
        let d = match decide(&self.state, &self.spec, cmd, now) {
            Ok(d) => d,
            Err(e) => {
                if let Some(r) = reply {
                    let _ = r.send(Err(e));
                }
                return;
            }
        };
        for e in &d.events {
            if let Event::Agent(a) = e {
                self.state.apply(now, a);
            }
        }
        let actor = self.path.to_string();
        let batch: Vec<NewEvent> = d
            .events
            .into_iter()
            .map(|e| NewEvent::new(actor.clone(), e))
            .collect();
        let done = Durable {
            seq: 0,
            effects: d.effects,
            reply: reply.map(|r| (r, d.answer)),
        };
        if batch.is_empty() {
            // Nothing to journal: answer and act now.
            if let Some((r, answer)) = done.reply {
                let _ = r.send(Ok(answer));
            }
            for e in done.effects {
                self.act(myself, e);
            }
        } else {
            self.in_flight += 1;
            self.offered = false;
            self.persister.append(batch, done);
        }
    }

    /// At rest with nothing in flight: its row may go passive.
    fn resting(&self) -> bool {
        !self.halted && self.in_flight == 0 && super::decide::at_rest(&self.state)
    }

    /// Tells its supervisor once it is at rest, with the seq its state
    /// reaches (the supervisor's view must have folded that far before the
    /// row goes passive: the view is then the one copy of its state).
    fn offer_rest(&mut self) {
        if self.offered || !self.resting() {
            return;
        }
        if let Some(cell) = self.services.registry.get(&ActorPath::Agents) {
            self.offered = true;
            let sup: ActorRef<crate::agents::AgentsMsg> = cell.into();
            let _ = sup.cast(crate::agents::AgentsMsg::AtRest {
                agent: self.state.id.clone(),
                seq: self.last_seq,
            });
        }
    }

    fn arm(&mut self, myself: &ActorRef<AgentMsg>, key: String, at: Timestamp, cmd: AgentCommand) {
        if let Some(old) = self.timers.remove(&key) {
            old.abort();
        }
        let delay = Duration::from_millis(at.millis_since(Timestamp::now()));
        let h = myself.send_after(delay, move || AgentMsg::Tick(cmd));
        self.timers.insert(key, h.abort_handle());
    }

    fn act(&mut self, myself: &ActorRef<AgentMsg>, effect: AgentEffect) {
        match effect {
            AgentEffect::ArmTimer { subscription, at } => {
                let cmd = AgentCommand::TimerDue {
                    subscription: subscription.clone(),
                    due: at,
                };
                self.arm(myself, format!("timer:{subscription}"), at, cmd);
            }
            AgentEffect::ArmCommitment { commitment, at } => {
                let cmd = AgentCommand::CommitmentDue {
                    commitment: commitment.clone(),
                };
                self.arm(myself, format!("commitment:{commitment}"), at, cmd);
            }
            AgentEffect::ArmRetry { at } => {
                self.arm(myself, "retry".into(), at, AgentCommand::Retry);
            }
            AgentEffect::StartRun {
                intent,
                run,
                spec,
                spec_text,
                event_json,
            } => {
                let me = myself.clone();
                let services = self.services.clone();
                let agent = self.state.id.clone();
                let known = self.known_runs.contains(&run);
                tokio::spawn(async move {
                    let outcome = if known {
                        IntentOutcome::RunStarted { run }
                    } else {
                        start_run(&services, &agent, run, &spec, &spec_text, &event_json).await
                    };
                    let _ = me.cast(AgentMsg::Tick(AgentCommand::Carried { intent, outcome }));
                });
            }
            AgentEffect::StopRuns { runs } => {
                let services = self.services.clone();
                let agent = self.state.id.clone();
                tokio::spawn(async move {
                    let Some(cell) = services.registry.get(&ActorPath::Runs) else {
                        return;
                    };
                    let runs_ref: ActorRef<crate::runs::RunsMsg> = cell.into();
                    let msg = crate::control::ControlMessage::Stop {
                        reason: Some(format!("agent {agent}: a newer wake interrupts it")),
                    };
                    for run in runs {
                        let _ = crate::ops::control(
                            &services.registry,
                            &runs_ref,
                            &ActorPath::run(&run).to_string(),
                            &msg,
                            Surface::Agent,
                        )
                        .await;
                    }
                });
            }
            AgentEffect::Stop => myself.stop(Some("retired".into())),
        }
    }
}

/// Submits the run an intent fixed: its spec text (already substituted),
/// validated like any submission, the wake's event written for it as
/// `.orca/runs/<run>/event.json` (`$ORCA_EVENT_FILE` in its attempts).
async fn start_run(
    services: &Services,
    agent: &str,
    run: String,
    spec_path: &str,
    spec_text: &str,
    event_json: &str,
) -> IntentOutcome {
    let failed = |error: String| IntentOutcome::Failed { error };
    let config = services.settings.clone();
    let ws = services.ws.clone();
    let ctx = crate::spec::ValidateContext {
        workspace_root: Some(ws.root()),
        runtime: config.runtime.as_ref(),
        alerts: config.alerts.as_ref(),
    };
    let prepared = crate::ops::prepare(
        crate::ops::SubmitRequest {
            text: spec_text,
            format: crate::spec::Format::Json,
            source: format!("agent {agent}: {spec_path}"),
            max_workers: None,
            stale_after: None,
            surface: Surface::Agent,
            parent: None,
        },
        &ctx,
        &config,
    );
    let mut sub = match prepared {
        Ok((sub, _)) => sub,
        Err(e) => return failed(e.to_string()),
    };
    sub.run_id = Some(run.clone());
    let dir = ws.run_dir(&run);
    if let Err(e) = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("event.json"), event_json))
    {
        return failed(format!(
            "cannot write {}: {e}",
            dir.join("event.json").display()
        ));
    }
    let Some(cell) = services.registry.get(&ActorPath::Runs) else {
        return failed("the runs supervisor is not running".into());
    };
    match crate::ops::submit(&cell.into(), sub).await {
        Ok(s) => IntentOutcome::RunStarted { run: s.run },
        Err(crate::ops::SubmitRejected::Refused(crate::runs::SubmitError::AlreadyRunning(r))) => {
            IntentOutcome::RunStarted { run: r }
        }
        Err(e) => failed(e.to_string()),
    }
}
