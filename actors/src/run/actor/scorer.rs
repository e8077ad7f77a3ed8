//! The run's scorer: one row of the run's child table (permanent; 3
//! restarts in 5 s; past that the run ends escalated).

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::{Act, Sup};
use crate::journal::event::Event;
use crate::journal::NewEvent;
use crate::model::{NodeKind, RestartType, Timestamp};
use crate::path::ActorPath;
use crate::run::decide::RunCommand;
use crate::run::RunMsg;
use crate::scorer::actor::ScorerArgs;
use crate::scorer::{ScorerActor, ScorerMsg};
use crate::supervision::{Action, ChildSpec, Outcome};

impl Sup {
    pub(super) fn scorer(&self) -> Option<ActorRef<ScorerMsg>> {
        self.children
            .cell(&ActorPath::scorer(&self.run))
            .cloned()
            .map(ActorRef::from)
    }

    /// The scorer's row: permanent, restarted by the run's child table.
    pub(super) fn scorer_row(&self) -> ChildSpec {
        let path = ActorPath::scorer(&self.run);
        let registry = self.services.registry.clone();
        let p = path.clone();
        ChildSpec::permanent(
            path,
            Arc::new(move |sup: ractor::ActorCell, _restarts: u32| {
                let args = ScorerArgs {
                    path: p.clone(),
                    registry: registry.clone(),
                };
                let fut: futures::future::BoxFuture<'static, _> = Box::pin(async move {
                    let (a, _) = Actor::spawn_linked(None, ScorerActor, args, sup).await?;
                    Ok(a.get_cell())
                });
                fut
            }),
        )
        .failing_as(crate::model::FailureClass::Verifier)
    }

    /// Starts the run's scorer (journaled first).
    pub(super) async fn start_scorer(
        &mut self,
        myself: &ActorRef<RunMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let path = ActorPath::scorer(&self.run).to_string();
        let event = if self.state.scorer_started {
            Event::ChildRestarted { path, attempt: 0 }
        } else {
            Event::ChildStarted {
                path,
                kind: NodeKind::Scorer,
                restart: RestartType::Permanent,
            }
        };
        let batch = vec![NewEvent::new(self.path.to_string(), event.clone())];
        self.services.journal.append(batch).await?;
        let seq = self.state.last_seq;
        self.state.apply(seq, Timestamp::now(), &event);
        let row = self.scorer_row();
        self.children.start(row, myself.get_cell()).await?;
        Ok(())
    }

    /// The scorer ended: its row decides (restart, or past the intensity the
    /// run ends escalated), in one batch with what escalation means for the
    /// run; nothing is acted on unless that batch is durable.
    pub(super) async fn scorer_ended(
        &mut self,
        myself: &ActorRef<RunMsg>,
        path: ActorPath,
        exit: crate::supervision::ChildExit,
        reason: String,
    ) {
        tracing::error!(run = %self.run, %reason, "the run's scorer ended");
        let plan = self.children.plan(&path, exit, &reason, Timestamp::now());
        let mut events = plan.events.clone();
        let mut effects = Vec::new();
        if plan.action == Action::Escalate {
            if let Ok(d) = self.decide(RunCommand::Escalate {
                reason: format!("its scorer kept failing: {reason}"),
            }) {
                events.extend(d.events);
                effects = d.effects;
            }
        }
        let now = Timestamp::now();
        let batch: Vec<NewEvent> = events
            .iter()
            .map(|e| NewEvent::new(self.path.to_string(), e.clone()))
            .collect();
        if !batch.is_empty() {
            if let Err(e) = self.services.journal.append(batch).await {
                let _ = myself.cast(RunMsg::JournalFailed(e.to_string()));
                return;
            }
            for e in &events {
                let seq = self.state.last_seq;
                self.state.apply(seq, now, e);
            }
        }
        if let Outcome::Escalate { .. } = self.children.carry_out(plan, &myself.get_cell()).await {
            for e in effects {
                self.act(myself, Act::Effect(e)).await;
            }
        }
        self.lease(myself);
        self.settle(myself);
    }
}
