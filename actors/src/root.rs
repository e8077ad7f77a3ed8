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
//! - The journal writer failing (a failed `write`, e.g. ENOSPC, or
//!   `fdatasync`, e.g. EIO) makes orca *degraded*: appends are refused (a
//!   typed error, HTTP 503), runs that tried to journal halt, and every
//!   surface shows why. The writer stops; its row ([`ChildSpec::journal`])
//!   restarts it after a backoff (250 ms doubling to 15 s, by consecutive
//!   failures, never escalating): the restart reopens the journal through
//!   recovery, dropping what was written but never acknowledged and a torn
//!   tail. The restart decision (`ChildFailed` + `ChildRestarted` for
//!   `/journal`) cannot be journaled before the journal exists again: it is
//!   the reopened writer's first batch, and only once that batch is
//!   acknowledged is orca healthy again. Then the alert router and `agents`
//!   are restarted (their state is rebuilt from the journal) and the runs
//!   that halted are resumed. While the journal is down nothing is
//!   journaled at all: a supervision decision that cannot be journaled is
//!   never acted on.
//!
//! # Messages ([`RootMsg`])
//!
//! | variant | what it does | reply | journals |
//! |---|---|---|---|
//! | `Runs(reply)` | the `runs` supervisor | `Option<ActorRef<RunsMsg>>` (none while it restarts) | — |
//! | `Health(reply)` | ok, or degraded with the reason | [`Health`] | — |
//! | `Shutdown(reply)` | suspend every run (attempts interrupted by orca, resumed by the next start), then stop | `()` | — (attempts' ends and their restarts are journaled by their runs) |
//! | `ReopenJournal` | (sent to itself after the backoff) reopen the journal; on success append the held restart decision, then restart the journal's dependents and resume halted runs; on failure schedule the next try | — | `ChildFailed` + `ChildRestarted` `/journal` (once it works), `ChildRestarted` for each dependent |

use std::sync::Arc;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::journal::JournalHealth;
use crate::journal::{Event, NewEvent};
use crate::path::ActorPath;
use crate::runs::{Runs, RunsMsg};
use crate::services::Services;
use crate::supervision::{Backoff, ChildSpec, ChildTable, Outcome, SupervisorPolicy};

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
    ReopenJournal,
}

/// The journal's restart backoff: 250 ms, doubling, at most 15 s, by
/// consecutive failures (no jitter: one journal, nothing to spread).
pub const JOURNAL_BACKOFF: Backoff = Backoff {
    initial_ms: 250,
    max_ms: 15_000,
    multiplier: 2.0,
    jitter: 0.0,
};

/// What orca says while the journal is down.
pub fn journal_down_message(reason: &str, failures: u32, next_ms: u64) -> String {
    format!(
        "the journal cannot be written ({reason}); appends are refused and runs that tried to \
         journal are halted; reopening it (try {failures}) in {:.1} s",
        next_ms as f64 / 1000.0
    )
}

/// The root supervisor.
#[derive(Debug, Default)]
pub struct Root;

impl Root {
    /// The root's permanent children, in start order: one row each.
    pub fn children(services: &Services) -> Vec<ChildSpec> {
        let s = services.clone();
        let journal = services.clone();
        vec![
            ChildSpec::journal(
                ActorPath::Journal,
                Arc::new(move |sup: ActorCell, _restarts: u32| {
                    let s = journal.clone();
                    let fut: futures::future::BoxFuture<'static, _> = Box::pin(async move {
                        let reopened = s
                            .journal
                            .reopen()
                            .await
                            .map_err(|e| -> ActorProcessingErr { e.to_string().into() })?;
                        let (cell, report) = reopened.unwrap_or_else(|| {
                            (s.journal.actor(), crate::journal::RecoveryReport::default())
                        });
                        for w in &report.warnings {
                            tracing::warn!(warning = %w, "journal reopened");
                        }
                        cell.link(sup);
                        s.registry.register(ActorPath::Journal, cell.clone());
                        Ok(cell)
                    });
                    fut
                }),
                JOURNAL_BACKOFF,
            ),
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
    /// The journal's restart decision, held until the reopened journal can
    /// take it (see [`crate::supervision::Action::RestartLater`]).
    held: Vec<Event>,
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
            if row.path == ActorPath::Journal {
                // Opened before the tree: its first cell is adopted.
                children.insert(row, Some(journal.clone()));
            } else {
                children.start(row, myself.get_cell()).await?;
            }
        }
        Ok(RootState {
            services,
            children,
            degraded: None,
            held: Vec::new(),
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
            RootMsg::ReopenJournal => s.reopen_journal(&myself).await,
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
            Outcome::RestartLater {
                path: _,
                reason,
                delay_ms,
                failures,
                events,
            } => {
                let why = match s.services.journal.health() {
                    JournalHealth::Failed(r) => r,
                    JournalHealth::Ok | JournalHealth::Stopped => reason,
                };
                let msg = journal_down_message(&why, failures, delay_ms);
                tracing::error!("orca is degraded: {msg}");
                s.degraded = Some(msg);
                if s.held.is_empty() {
                    s.held = events;
                } else {
                    // Failed again before the first decision could be
                    // journaled: keep the first failure, count the restart.
                    s.held
                        .retain(|e| !matches!(e, Event::ChildRestarted { .. }));
                    s.held.extend(
                        events
                            .into_iter()
                            .filter(|e| matches!(e, Event::ChildRestarted { .. })),
                    );
                }
                myself.send_after(std::time::Duration::from_millis(delay_ms), || {
                    RootMsg::ReopenJournal
                });
            }
            Outcome::NotMine | Outcome::Ignored | Outcome::Removed(_) => {}
        }
        Ok(())
    }
}

impl RootState {
    /// The journal's backoff is over: reopen it, journal the held decision,
    /// then bring back what depended on it.
    async fn reopen_journal(&mut self, myself: &ActorRef<RootMsg>) {
        if self.children.is_stopping() || self.held.is_empty() {
            return;
        }
        let me = myself.get_cell();
        if let Err((e, next)) = self.children.restart_now(&ActorPath::Journal, &me).await {
            let failures = self.children.failures(&ActorPath::Journal);
            let delay_ms = next.unwrap_or(JOURNAL_BACKOFF.max_ms);
            let msg = journal_down_message(&format!("cannot reopen it: {e}"), failures, delay_ms);
            tracing::error!("orca is degraded: {msg}");
            self.degraded = Some(msg);
            myself.send_after(std::time::Duration::from_millis(delay_ms), || {
                RootMsg::ReopenJournal
            });
            return;
        }
        let batch: Vec<NewEvent> = self
            .held
            .iter()
            .cloned()
            .map(|e| NewEvent::new(ActorPath::Root.to_string(), e))
            .collect();
        if let Err(e) = self.services.journal.append(batch).await {
            // The new writer failed too: its end arrives as a supervision
            // event and schedules the next try (the held decision stays).
            tracing::error!(error = %e, "the reopened journal refused its first batch");
            return;
        }
        self.held.clear();
        self.children.healthy(&ActorPath::Journal);
        self.degraded = None;
        tracing::warn!("the journal was reopened: orca is healthy again");
        for path in [ActorPath::AlertRouter, ActorPath::Agents] {
            if !self.children.contains(&path) {
                continue;
            }
            match self
                .children
                .restart_for_dependency(
                    &path,
                    &self.services.journal,
                    &me,
                    "the journal was reopened",
                )
                .await
            {
                Outcome::Restarted(_) | Outcome::NotMine | Outcome::Ignored => {}
                other => {
                    tracing::error!(%path, outcome = ?other, "cannot restart after the journal reopened")
                }
            }
        }
        // Runs whose appends were refused halted (their attempts stopped,
        // unjournaled); the journal says they have not ended: resume them.
        if let Some(runs) = self.children.cell(&ActorPath::Runs).cloned() {
            let services = self.services.clone();
            tokio::spawn(async move {
                let resumed = crate::resume::resume_unfinished(&services, &runs.into()).await;
                if !resumed.is_empty() {
                    tracing::warn!(runs = ?resumed, "resumed the runs the journal failure halted");
                }
            });
        }
    }

    fn health(&self) -> Health {
        match (&self.degraded, self.services.journal.health()) {
            (Some(r), _) => Health::Degraded { reason: r.clone() },
            (None, JournalHealth::Failed(r)) => Health::Degraded { reason: r },
            (None, _) => Health::Ok,
        }
    }
}
