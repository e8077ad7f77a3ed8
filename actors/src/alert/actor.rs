//! The `alert-router` actor (`/alert-router`, a permanent child of the
//! root): drives [`super::router::decide`] from the journal, its outbox.
//!
//! At start it loads the fleet (snapshot + journal: the same load as every
//! view), takes the router's folded state from it and decides `Start`:
//! alerts raised but never routed are routed, every notification without a
//! final outcome is sent again with the same id (`webhook-id`,
//! `dedup_key`), journaled deadlines are re-armed. It then follows the
//! journal's feed: an `AlertRaised` (written by a run, an attempt or an
//! agent) is routed; a fact that answers a condition clears it; a
//! `RunSubmitted` registers that run's alert config. Each decision is
//! journaled first and acted on (sends, the timer) only once durable.
//! Sends run beside the actor; each comes back as a `Result`.
//!
//! # Messages ([`RouterMsg`])
//!
//! | variant | what it does | reply | journals |
//! |---|---|---|---|
//! | `Feed(batch)` | events the journal made durable: route raised alerts, clear answered conditions, learn runs' configs | — | `AlertSuppressed`, `AlertConditionOpened`, `AlertRepeatScheduled`, `AlertGrouped`, `AlertNotificationPlanned`, `AlertResolved` |
//! | `Reload` | the feed lagged: fold again from the files | — | (as `Start`) |
//! | `Result{id, adapter, outcome}` | a send came back | — | `AlertDelivered` or `AlertFailed` (with its retry time, or final) |
//! | `Tick` | the timer fired: group windows, repeats, retries that are due | — | as `Feed` |
//! | `Persisted(effects)` | a decision is durable: send, arm the timer | — | — |
//! | `JournalFailed(reason)` | an append failed: nothing more is sent | — | — |
//! | `Drain{until, reply}` | send what waits in group windows now; answer once nothing is left to deliver, or at `until` | `bool` (idle) | `AlertNotificationPlanned`, `AlertGroupFlushed` |
//! | `Status(reply)` | queue depth, in flight, last delivery, failures | [`RouterStatus`] | — |

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::task::AbortHandle;

use super::config::{AlertConfigs, ResolvedAlerts};
use super::events::{AlertEvent, AlertSource, ClearCause, ConditionKey, NotificationId};
use super::router::{decide, Command, DeliveryOutcome, Effect, NetworkErrorKind, RouterState};
use super::secret::ProcessEnv;
use super::send::{deliver, Sender};
use crate::journal::event::{Event, WorkerEvent};
use crate::journal::{Envelope, NewEvent};
use crate::model::{AlertClass, Timestamp};
use crate::path::{ActorPath, PathRef};
use crate::persist::Persister;
use crate::services::Services;
use crate::view::FleetView;

/// Messages of the alert router (see the table above).
pub enum RouterMsg {
    Feed(Arc<[Envelope]>),
    Reload,
    Result {
        id: NotificationId,
        adapter: String,
        outcome: DeliveryOutcome,
    },
    Tick,
    Persisted(Vec<Effect>),
    JournalFailed(String),
    Drain {
        until: tokio::time::Instant,
        reply: RpcReplyPort<bool>,
    },
    Status(RpcReplyPort<RouterStatus>),
}

/// What the tree and `orca alert list` show of the router.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouterStatus {
    /// Notifications not yet delivered (or failed for good).
    pub queue: usize,
    /// Sends under way.
    pub inflight: usize,
    /// The journal refused the router's decisions: nothing is sent.
    pub degraded: bool,
}

/// The alert router.
#[derive(Debug, Default)]
pub struct AlertRouter;

/// Its state.
pub struct RouterActorState {
    services: Services,
    state: RouterState,
    configs: AlertConfigs,
    /// The last seq folded (the feed's earlier envelopes are skipped).
    applied: u64,
    sender: Option<Arc<Sender>>,
    timer: Option<AbortHandle>,
    persister: Persister<Vec<Effect>>,
    drains: Vec<(tokio::time::Instant, RpcReplyPort<bool>)>,
    degraded: bool,
    /// The task forwarding the journal's feed.
    feed_task: Option<AbortHandle>,
}

impl Actor for AlertRouter {
    type Msg = RouterMsg;
    type State = RouterActorState;
    type Arguments = Services;

    async fn pre_start(
        &self,
        myself: ActorRef<RouterMsg>,
        services: Services,
    ) -> Result<RouterActorState, ActorProcessingErr> {
        services
            .registry
            .register(ActorPath::AlertRouter, myself.get_cell());
        // Subscribe before loading: nothing falls between the two.
        let mut feed = services.journal.subscribe();
        let me = myself.clone();
        let feed_task = tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let msg = match feed.recv().await {
                    Ok(batch) => RouterMsg::Feed(batch),
                    Err(RecvError::Lagged(_)) => RouterMsg::Reload,
                    Err(RecvError::Closed) => break,
                };
                if me.cast(msg).is_err() {
                    break;
                }
            }
        })
        .abort_handle();
        let me = myself.clone();
        let persister = Persister::new(services.journal.clone(), move |r, effects| {
            let _ = me.cast(match r {
                Ok(_) => RouterMsg::Persisted(effects),
                Err(e) => RouterMsg::JournalFailed(e.to_string()),
            });
        });
        let sender = match Sender::new() {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                tracing::error!(error = %e, "the alert router cannot build its HTTP client; alerts stay queued");
                None
            }
        };
        let mut st = RouterActorState {
            state: RouterState::default(),
            configs: AlertConfigs {
                default: ResolvedAlerts::from_config(services.settings.alerts.as_ref()),
                runs: HashMap::new(),
                address: services.tokens.as_ref().map(|t| t.api_url()),
            },
            applied: 0,
            sender,
            timer: None,
            persister,
            drains: Vec::new(),
            degraded: false,
            feed_task: Some(feed_task),
            services,
        };
        st.load().await?;
        st.decide(&myself, Command::Start);
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<RouterMsg>,
        msg: RouterMsg,
        st: &mut RouterActorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RouterMsg::Feed(batch) => {
                for env in batch.iter() {
                    if env.seq > st.applied {
                        st.applied = env.seq;
                        st.observe(&myself, env);
                    }
                }
            }
            RouterMsg::Reload => {
                st.load().await?;
                st.decide(&myself, Command::Start);
            }
            RouterMsg::Result {
                id,
                adapter,
                outcome,
            } => st.decide(
                &myself,
                Command::Result {
                    id,
                    adapter,
                    outcome,
                },
            ),
            RouterMsg::Tick => {
                st.timer = None;
                st.decide(&myself, Command::Tick);
            }
            RouterMsg::Persisted(effects) => {
                for e in effects {
                    st.act(&myself, e);
                }
            }
            RouterMsg::JournalFailed(reason) => {
                if !st.degraded {
                    tracing::error!(%reason, "the alert router cannot journal: nothing more is sent");
                    st.degraded = true;
                }
            }
            RouterMsg::Drain { until, reply } => {
                st.decide(&myself, Command::FlushGroups);
                st.drains.push((until, reply));
                let me = myself.clone();
                let at = until;
                tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    let _ = me.cast(RouterMsg::Tick);
                });
            }
            RouterMsg::Status(reply) => {
                let _ = reply.send(RouterStatus {
                    queue: st.state.pending().count(),
                    inflight: st.state.inflight(),
                    degraded: st.degraded,
                });
            }
        }
        st.answer_drains();
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RouterMsg>,
        st: &mut RouterActorState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = st.timer.take() {
            t.abort();
        }
        if let Some(t) = st.feed_task.take() {
            t.abort();
        }
        for (_, r) in st.drains.drain(..) {
            let _ = r.send(st.state.is_idle());
        }
        st.services.registry.unregister(&ActorPath::AlertRouter);
        Ok(())
    }
}

impl RouterActorState {
    /// Folds the fleet (snapshot + journal): the router's state and every
    /// run's alert config.
    async fn load(&mut self) -> Result<(), ActorProcessingErr> {
        let ws = self.services.ws.clone();
        let fleet = tokio::task::spawn_blocking(move || FleetView::load(&ws)).await??;
        self.state = fleet.alerts.router.clone();
        self.applied = fleet.last_seq;
        self.configs.runs.clear();
        for r in fleet.runs.values() {
            if let Some(spec) = r.spec() {
                self.configs.runs.insert(r.run.clone(), self.resolve(&spec));
            }
        }
        Ok(())
    }

    fn resolve(&self, spec: &crate::spec::RunSpec) -> ResolvedAlerts {
        ResolvedAlerts::for_run(spec, self.services.settings.alerts.as_ref()).unwrap_or_else(
            |errors| {
                // Validation refuses such specs; one journaled earlier
                // falls back to its alerts without the broken policy.
                tracing::warn!(?errors, "a run's alert policy names an unknown adapter");
                ResolvedAlerts::from_config(
                    spec.alerts
                        .as_ref()
                        .or(self.services.settings.alerts.as_ref()),
                )
            },
        )
    }

    /// What one durable event means to the router.
    fn observe(&mut self, myself: &ActorRef<RouterMsg>, env: &Envelope) {
        match &env.event {
            // Its own decisions were applied when taken.
            Event::Alert(_) if env.actor == ActorPath::AlertRouter.to_string() => {}
            Event::Alert(e @ AlertEvent::Raised(r)) => {
                let id = r.id.clone();
                self.state.apply(e);
                self.decide(myself, Command::Route { alert: id });
            }
            Event::Alert(e) => self.state.apply(e),
            Event::RunSubmitted(s) => {
                if let Ok(spec) = crate::spec::from_journal_json(&s.spec_json) {
                    let resolved = self.resolve(&spec);
                    self.configs.runs.insert(s.run.clone(), resolved);
                }
            }
            Event::RunStopRequested { run, .. } => {
                // Every needs_human of the run, its tasks' too.
                let source = AlertSource::run(run);
                let keys: Vec<ConditionKey> = self
                    .state
                    .conditions()
                    .map(|(k, _)| k)
                    .filter(|k| k.source == source && k.class == AlertClass::NeedsHuman)
                    .cloned()
                    .collect();
                for key in keys {
                    let cause = ClearCause::Stopped;
                    self.decide(myself, Command::Clear { key, cause });
                }
            }
            other => {
                for (key, cause) in clears(other) {
                    if self.state.condition(&key).is_some() {
                        self.decide(myself, Command::Clear { key, cause });
                    }
                }
            }
        }
    }

    /// Decides, commits at once (so the next decision sees it), journals,
    /// and acts once durable.
    fn decide(&mut self, myself: &ActorRef<RouterMsg>, cmd: Command) {
        if self.degraded {
            return;
        }
        let now = Timestamp::now();
        let (events, effects) = decide(&self.state, &self.configs, cmd, now, rand::random());
        self.state.commit(&events, &effects, now);
        if events.is_empty() {
            for e in effects {
                self.act(myself, e);
            }
            return;
        }
        let actor = ActorPath::AlertRouter.to_string();
        let batch = events
            .into_iter()
            .map(|e| NewEvent::new(actor.clone(), Event::Alert(e)))
            .collect();
        self.persister.append(batch, effects);
    }

    fn act(&mut self, myself: &ActorRef<RouterMsg>, effect: Effect) {
        match effect {
            Effect::ArmTimer { at } => {
                if let Some(t) = self.timer.take() {
                    t.abort();
                }
                let delay = Duration::from_millis(at.millis_since(Timestamp::now()));
                self.timer = Some(myself.send_after(delay, || RouterMsg::Tick).abort_handle());
            }
            Effect::Send {
                notification,
                adapter,
            } => {
                let me = myself.clone();
                let Some(sender) = self.sender.clone() else {
                    let _ = me.cast(RouterMsg::Result {
                        id: notification.id.clone(),
                        adapter: adapter.name.clone(),
                        outcome: DeliveryOutcome::Refused {
                            error: "orca has no HTTP client".into(),
                        },
                    });
                    return;
                };
                let (id, name) = (notification.id.clone(), adapter.name.clone());
                tokio::spawn(async move {
                    // A send that panics still comes back, as a network
                    // error: a notification never stays in flight.
                    let job = tokio::spawn(async move {
                        deliver(
                            &sender,
                            &adapter,
                            &notification,
                            &ProcessEnv,
                            Timestamp::now(),
                        )
                        .await
                    });
                    let outcome = job.await.unwrap_or_else(|e| DeliveryOutcome::Network {
                        kind: NetworkErrorKind::Transport,
                        error: format!("the send failed: {e}"),
                    });
                    let _ = me.cast(RouterMsg::Result {
                        id,
                        adapter: name,
                        outcome,
                    });
                });
            }
        }
    }

    /// Answers drains that are done (nothing left) or due.
    fn answer_drains(&mut self) {
        if self.drains.is_empty() {
            return;
        }
        let idle = self.state.is_idle() && self.state.inflight() == 0;
        let now = tokio::time::Instant::now();
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.drains)
            .into_iter()
            .partition(|(until, _)| idle || *until <= now);
        self.drains = waiting;
        for (_, reply) in done {
            let _ = reply.send(idle);
        }
    }
}

/// The conditions a journal fact answers (docs/alerts.md): `stale` when
/// the attempt speaks again or ends; `needs_human` when a verdict, a
/// restart or a stop answers it; `budget_exceeded` and `restart_exhausted`
/// when the task is restarted.
fn clears(event: &Event) -> Vec<(ConditionKey, ClearCause)> {
    let key = |run: &str, task: Option<&str>, class| ConditionKey {
        source: AlertSource::run(run),
        task: task.map(str::to_string),
        class,
    };
    match event {
        Event::WorkerReported { attempt, event } => match event {
            WorkerEvent::Stale { .. } => Vec::new(),
            _ => vec![(
                key(&attempt.run, Some(&attempt.task), AlertClass::Stale),
                ClearCause::AttemptSpoke,
            )],
        },
        Event::AttemptFinished { attempt, .. } | Event::AttemptInterrupted { attempt, .. } => {
            vec![(
                key(&attempt.run, Some(&attempt.task), AlertClass::Stale),
                ClearCause::AttemptEnded,
            )]
        }
        Event::VerdictRecorded { attempt, .. } => vec![(
            key(&attempt.run, Some(&attempt.task), AlertClass::NeedsHuman),
            ClearCause::Verdict,
        )],
        Event::ChildRestarted { path, .. } => match PathRef::parse(path) {
            Some(PathRef::Attempt { run, task, .. }) => [
                AlertClass::NeedsHuman,
                AlertClass::BudgetExceeded,
                AlertClass::RestartExhausted,
            ]
            .into_iter()
            .map(|c| (key(run, Some(task), c), ClearCause::Restarted))
            .collect(),
            _ => Vec::new(),
        },
        Event::ControlRequested { path, message, .. } => match PathRef::parse(path) {
            Some(PathRef::Attempt { run, task, .. }) => vec![(
                key(run, Some(task), AlertClass::NeedsHuman),
                if message == "restart" {
                    ClearCause::Restarted
                } else {
                    ClearCause::Stopped
                },
            )],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Asks the router to deliver everything that waits, within `limit`;
/// answers whether nothing was left (false: it gave up, or no router).
pub async fn drain(services: &Services, limit: Duration) -> bool {
    let Some(cell) = services.registry.get(&ActorPath::AlertRouter) else {
        return true;
    };
    let router: ActorRef<RouterMsg> = cell.into();
    let until = tokio::time::Instant::now() + limit;
    matches!(
        router
            .call(
                |reply| RouterMsg::Drain { until, reply },
                Some(limit + Duration::from_secs(1))
            )
            .await,
        Ok(ractor::rpc::CallResult::Success(true))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttemptRef;

    fn key(class: AlertClass) -> ConditionKey {
        ConditionKey {
            source: AlertSource::run("r-1"),
            task: Some("lint".into()),
            class,
        }
    }

    #[test]
    fn journal_facts_clear_the_conditions_they_answer() {
        let attempt = AttemptRef::new("r-1", "lint", 2);
        let spoke = Event::WorkerReported {
            attempt: attempt.clone(),
            event: WorkerEvent::RunningTool {
                tool: "bash".into(),
            },
        };
        assert_eq!(
            clears(&spoke),
            [(key(AlertClass::Stale), ClearCause::AttemptSpoke)]
        );
        let verdict = Event::VerdictRecorded {
            attempt: attempt.clone(),
            verdict: crate::model::VerdictRecord {
                verdict: crate::model::Verdict::Pass,
                note: String::new(),
                who: "op".into(),
                at: Timestamp(1),
            },
            surface: crate::model::Surface::Cli,
        };
        assert_eq!(
            clears(&verdict),
            [(key(AlertClass::NeedsHuman), ClearCause::Verdict)]
        );
        let restarted = Event::ChildRestarted {
            path: ActorPath::Attempt(attempt.clone()).to_string(),
            attempt: 3,
        };
        let classes: Vec<AlertClass> = clears(&restarted)
            .into_iter()
            .map(|(k, _)| k.class)
            .collect();
        assert_eq!(
            classes,
            [
                AlertClass::NeedsHuman,
                AlertClass::BudgetExceeded,
                AlertClass::RestartExhausted
            ]
        );
        let ended = Event::AttemptInterrupted {
            attempt: attempt.clone(),
            cause: crate::journal::event::InterruptCause::OrcaShutdown,
        };
        assert_eq!(
            clears(&ended),
            [(key(AlertClass::Stale), ClearCause::AttemptEnded)]
        );
        // Going stale is not speaking.
        let stale = Event::WorkerReported {
            attempt,
            event: WorkerEvent::Stale { silent_ms: 5_000 },
        };
        assert!(clears(&stale).is_empty());
    }
}
