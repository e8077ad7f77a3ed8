//! `orca` (`/`): the root supervisor, one_for_one over the journal writer
//! and `runs` (the alert router and `agents` join it as they land).
//!
//! `runs` failing is orca's own bug: the root restarts it (3 in 5 s) and
//! resumes the runs that had not ended; past that intensity the root stops
//! and the process reports the failure. The journal writer failing (an
//! `fdatasync` error) makes orca *degraded*: appends are refused, so runs
//! stop, and every surface shows why.
//!
//! # Messages ([`RootMsg`])
//!
//! | variant | what it does | reply | journals |
//! |---|---|---|---|
//! | `Runs(reply)` | the `runs` supervisor | `ActorRef<RunsMsg>` | — |
//! | `Health(reply)` | ok, or degraded with the reason | [`Health`] | — |
//! | `Shutdown(reply)` | suspend every run (attempts interrupted by orca, resumed by the next start), then stop | `()` | — (attempts journal their interruption) |

use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::journal::JournalHealth;
use crate::model::{paths, NodeKind, Timestamp};
use crate::runs::{Runs, RunsMsg};
use crate::services::Services;
use crate::supervision::{
    decide, ChildExit, ChildPolicy, Decision, RestartWindow, SupervisorPolicy,
};

/// Whether orca can work.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Health {
    Ok,
    /// The journal refuses appends (a failed sync); nothing new can start.
    Degraded {
        reason: String,
    },
}

/// Messages of the root (see the table above).
#[derive(Debug)]
pub enum RootMsg {
    Runs(RpcReplyPort<ActorRef<RunsMsg>>),
    Health(RpcReplyPort<Health>),
    Shutdown(RpcReplyPort<()>),
}

/// The root supervisor.
#[derive(Debug, Default)]
pub struct Root;

/// Its state.
pub struct RootState {
    services: Services,
    runs: ActorRef<RunsMsg>,
    journal: ActorId,
    window: RestartWindow,
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
        reg.register(paths::ROOT, NodeKind::Root, myself.get_cell());
        let journal = services.journal.actor();
        journal.link(myself.get_cell());
        reg.register(paths::JOURNAL, NodeKind::Journal, journal.clone());
        let (runs, _) =
            Actor::spawn_linked(None, Runs, services.clone(), myself.get_cell()).await?;
        Ok(RootState {
            journal: journal.get_id(),
            services,
            runs,
            window: RestartWindow::default(),
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
                let _ = reply.send(s.runs.clone());
            }
            RootMsg::Health(reply) => {
                let _ = reply.send(s.health());
            }
            RootMsg::Shutdown(reply) => {
                let runs = s.runs.clone();
                let journal = s.services.journal.clone();
                let me = myself.clone();
                tokio::spawn(async move {
                    let _ = runs.call(RunsMsg::Suspend, None).await;
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
        let (cell, reason) = match &evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell.clone(), Some(err.to_string())),
            SupervisionEvent::ActorTerminated(cell, _, why) => (cell.clone(), why.clone()),
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {
                return Ok(())
            }
        };
        if cell.get_id() == s.journal {
            if s.degraded.is_none() && s.services.journal.health() != JournalHealth::Ok {
                let why = match s.services.journal.health() {
                    JournalHealth::Failed(r) => r,
                    _ => reason.unwrap_or_else(|| "the journal writer stopped".into()),
                };
                tracing::error!(reason = %why, "orca is degraded: the journal refuses appends");
                s.degraded = Some(why);
            }
            return Ok(());
        }
        if cell.get_id() == s.runs.get_id() {
            let Some(reason) = (match evt {
                SupervisionEvent::ActorFailed(..) => reason,
                _ => None,
            }) else {
                return Ok(());
            };
            let now = Timestamp::now();
            let policy = SupervisorPolicy::internal();
            match decide(
                &policy,
                &s.window,
                now,
                &ChildPolicy::internal(),
                1,
                ChildExit::Failed(crate::model::FailureClass::Transient),
                0.0,
            ) {
                Decision::Restart { .. } => {
                    s.window.record(now, policy.intensity.within_ms);
                    tracing::error!(%reason, "`runs` failed: restarting it and resuming its runs");
                    cell.stop_children_and_wait(
                        Some("runs failed".into()),
                        Some(Duration::from_secs(30)),
                    )
                    .await;
                    let (runs, _) =
                        Actor::spawn_linked(None, Runs, s.services.clone(), myself.get_cell())
                            .await?;
                    crate::resume::resume_unfinished(&s.services, &runs).await;
                    s.runs = runs;
                }
                Decision::Escalate { .. } | Decision::Finish { .. } => {
                    return Err(format!("`runs` kept failing: {reason}").into());
                }
            }
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
