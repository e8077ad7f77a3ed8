//! `orca` (`/`): the root supervisor, one_for_one, 3 restarts in 5 s.
//!
//! Its children are the rows of [`Root::children`]: the journal writer
//! (adopted: it is opened before the tree), `runs`, the alert router and,
//! in the daemon, `agents`. A child's end goes through the
//! [`ChildTable`]: decide, journal, then act.
//!
//! - `runs` failing is orca's own bug: its row restarts it (journaled
//!   `ChildFailed` + `ChildRestarted`) and resumes the runs that had not
//!   ended; past the intensity the root gives up and the process reports
//!   the failure.
//! - The journal writer failing (an `fdatasync` error) makes orca
//!   *degraded*: appends are refused, so runs stop, and every surface shows
//!   why. A supervision decision that cannot be journaled is never acted on
//!   and degrades orca the same way.
//!
//! # Messages ([`RootMsg`])
//!
//! | variant | what it does | reply | journals |
//! |---|---|---|---|
//! | `Runs(reply)` | the `runs` supervisor | `Option<ActorRef<RunsMsg>>` (none while it restarts) | — |
//! | `Health(reply)` | ok, or degraded with the reason | [`Health`] | — |
//! | `Shutdown(reply)` | suspend every run (attempts interrupted by orca, resumed by the next start), then stop | `()` | — (attempts' ends and their restarts are journaled by their runs) |

use std::sync::Arc;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::journal::JournalHealth;
use crate::path::ActorPath;
use crate::runs::{Runs, RunsMsg};
use crate::services::Services;
use crate::supervision::{ChildSpec, ChildTable, Outcome, SupervisorPolicy};

/// Whether orca can work.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Health {
    Ok,
    /// The journal refuses appends (a failed sync), or a supervision
    /// decision could not be journaled; nothing new can start.
    Degraded {
        reason: String,
    },
}

/// Messages of the root (see the table above).
#[derive(Debug)]
pub enum RootMsg {
    Runs(RpcReplyPort<Option<ActorRef<RunsMsg>>>),
    Health(RpcReplyPort<Health>),
    Shutdown(RpcReplyPort<()>),
}

/// The root supervisor.
#[derive(Debug, Default)]
pub struct Root;

impl Root {
    /// The root's permanent children, in start order: one row each.
    pub fn children(services: &Services) -> Vec<ChildSpec> {
        let s = services.clone();
        vec![
            ChildSpec::adopted(ActorPath::Journal),
            ChildSpec::permanent(
                ActorPath::Runs,
                Arc::new(move |sup: ActorCell, restarts: u32| {
                    let s = s.clone();
                    let fut: futures::future::BoxFuture<'static, _> = Box::pin(async move {
                        let (runs, _) = Actor::spawn_linked(None, Runs, s.clone(), sup).await?;
                        if restarts > 0 {
                            // The runs it supervised went with it.
                            crate::resume::resume_unfinished(&s, &runs).await;
                        }
                        Ok(runs.get_cell())
                    });
                    fut
                }),
            ),
            ChildSpec::permanent(ActorPath::AlertRouter, {
                let s = services.clone();
                Arc::new(move |sup: ActorCell, _restarts: u32| {
                    let s = s.clone();
                    let fut: futures::future::BoxFuture<'static, _> = Box::pin(async move {
                        let (router, _) =
                            Actor::spawn_linked(None, crate::alert::actor::AlertRouter, s, sup)
                                .await?;
                        Ok(router.get_cell())
                    });
                    fut
                })
            }),
        ]
        .into_iter()
        .chain(services.settings.agents.then(|| {
            // Agents live in the daemon (`orca up`), after `runs`: their
            // pending intents start runs.
            let s = services.clone();
            ChildSpec::permanent(
                ActorPath::Agents,
                Arc::new(move |sup: ActorCell, _restarts: u32| {
                    let s = s.clone();
                    let fut: futures::future::BoxFuture<'static, _> = Box::pin(async move {
                        let (agents, _) =
                            Actor::spawn_linked(None, crate::agents::Agents, s, sup).await?;
                        Ok(agents.get_cell())
                    });
                    fut
                }),
            )
        }))
        .collect()
    }
}

/// Its state.
pub struct RootState {
    services: Services,
    children: ChildTable,
    degraded: Option<String>,
}

impl Actor for Root {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = Services;

    async fn pre_start(
        &self,
        myself: ActorRef<RootMsg>,
        services: Services,
    ) -> Result<RootState, ActorProcessingErr> {
        let reg = &services.registry;
        reg.register(ActorPath::Root, myself.get_cell());
        let journal = services.journal.actor();
        journal.link(myself.get_cell());
        reg.register(ActorPath::Journal, journal.clone());
        let mut children = ChildTable::new(ActorPath::Root, SupervisorPolicy::internal());
        for row in Root::children(&services) {
            if row.starter.is_none() {
                let cell = (row.path == ActorPath::Journal).then(|| journal.clone());
                children.insert(row, cell);
            } else {
                children.start(row, myself.get_cell()).await?;
            }
        }
        Ok(RootState {
            services,
            children,
            degraded: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        msg: RootMsg,
        s: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Runs(reply) => {
                let _ = reply.send(
                    s.children
                        .cell(&ActorPath::Runs)
                        .cloned()
                        .map(ActorRef::from),
                );
            }
            RootMsg::Health(reply) => {
                let _ = reply.send(s.health());
            }
            RootMsg::Shutdown(reply) => {
                s.children.stop_restarting();
                let runs: Option<ActorRef<RunsMsg>> = s
                    .children
                    .cell(&ActorPath::Runs)
                    .cloned()
                    .map(ActorRef::from);
                let journal = s.services.journal.clone();
                let me = myself.clone();
                tokio::spawn(async move {
                    if let Some(runs) = runs {
                        let _ = runs.call(RunsMsg::Suspend, None).await;
                    }
                    journal.actor().unlink(me.get_cell());
                    journal.stop().await;
                    me.stop(Some("shutdown".into()));
                    let _ = reply.send(());
                });
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        evt: SupervisionEvent,
        s: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let journal = s.services.journal.clone();
        match s
            .children
            .handle(evt, &journal, &myself.get_cell(), |_| Vec::new())
            .await
        {
            Outcome::Lost { path, reason } => {
                if path == ActorPath::Journal && s.degraded.is_none() {
                    let why = match s.services.journal.health() {
                        JournalHealth::Failed(r) => r,
                        JournalHealth::Ok | JournalHealth::Stopped => reason,
                    };
                    tracing::error!(reason = %why, "orca is degraded: the journal refuses appends");
                    s.degraded = Some(why);
                }
            }
            Outcome::Degraded(e) => {
                if s.degraded.is_none() {
                    s.degraded = Some(format!("cannot journal a supervision decision: {e}"));
                }
            }
            Outcome::Escalate { path, reason } => {
                return Err(format!("{path} kept failing: {reason}").into());
            }
            Outcome::Restarted(path) => tracing::error!(%path, "restarted a failed child"),
            Outcome::NotMine | Outcome::Ignored | Outcome::Removed(_) => {}
        }
        Ok(())
    }
}

impl RootState {
    fn health(&self) -> Health {
        match (&self.degraded, self.services.journal.health()) {
            (Some(r), _) => Health::Degraded { reason: r.clone() },
            (None, JournalHealth::Failed(r)) => Health::Degraded { reason: r },
            (None, _) => Health::Ok,
        }
    }
}
