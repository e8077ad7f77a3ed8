//! One supervision mechanism: a supervisor's children are rows of a table.
//!
//! Every supervisor of orca's own actors — the root (journal, `runs`, and
//! the permanent children that join it), `runs` (one row per run
//! supervisor) and each run (its scorer) — keeps a [`ChildTable`]. A row is
//! a [`ChildSpec`]: the child's path, restart type, shutdown grace, how it
//! escalates, and how to start it. When a child ends, the table takes the
//! one path every supervisor shares:
//!
//! 1. **decide** (pure, [`ChildTable::plan`]): classify the end, call
//!    [`decide`](super::decide) with the supervisor's policy and restart
//!    window, and write the events the decision means (`ChildFailed` /
//!    `ChildStopped`, `ChildRestarted`, `IntensityExceeded` + `Escalated`);
//! 2. **journal** them (the owner may add its own events to the same
//!    batch: `runs` ends an escalated run with them);
//! 3. **act** ([`ChildTable::carry_out`]) only once the append is durable:
//!    restart the child, forget it, or tell the owner to escalate. An
//!    append that fails is never acted on: the owner reports orca
//!    degraded.
//!
//! Adding a permanent child under a supervisor is one more row.
//! (The run's *attempts* are not rows: their restarts follow the task's
//! retry policy, backoff deadlines and the run's strategy, decided by
//! [`crate::run::decide`], which calls the same [`decide`](super::decide).)
//!
//! orca's internal supervisors are one_for_one (DESIGN.md): a restart
//! never takes siblings along.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{ActorCell, ActorId, ActorProcessingErr, SupervisionEvent};

use super::{decide, ChildExit, ChildPolicy, Decision, RestartWindow, SupervisorPolicy};
use crate::journal::event::Event;
use crate::journal::{JournalError, JournalHandle, NewEvent};
use crate::model::{bounded, FailureClass, RestartType, Timestamp};
use crate::path::ActorPath;

/// Starts (or restarts) a row's child, linked to its supervisor.
pub trait Starter: Send + Sync {
    /// `restarts`: how many times the child was restarted so far (0 at the
    /// first start).
    fn start(
        &self,
        supervisor: ActorCell,
        restarts: u32,
    ) -> BoxFuture<'static, Result<ActorCell, ActorProcessingErr>>;
}

impl<F> Starter for F
where
    F: Fn(ActorCell, u32) -> BoxFuture<'static, Result<ActorCell, ActorProcessingErr>>
        + Send
        + Sync,
{
    fn start(
        &self,
        supervisor: ActorCell,
        restarts: u32,
    ) -> BoxFuture<'static, Result<ActorCell, ActorProcessingErr>> {
        self(supervisor, restarts)
    }
}

/// Who gives up when a child keeps failing past the intensity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escalation {
    /// Erlang's rule: the supervisor itself gives up and escalates to its
    /// parent (the root: the process fails; a run: it ends escalated).
    Supervisor,
    /// Only that child ends (`runs`: the run ends escalated, other runs and
    /// the root go on).
    ChildAlone,
}

/// One row: a child and how it is supervised.
#[derive(Clone)]
pub struct ChildSpec {
    pub path: ActorPath,
    pub restart: RestartType,
    /// Between asking the child (and its own children) to stop and giving
    /// up on them.
    pub shutdown_grace: Duration,
    pub escalation: Escalation,
    /// The class its failures are journaled with (`verifier` for a run's
    /// scorer, `transient` for orca's own actors).
    pub class: FailureClass,
    /// `None`: an adopted child started elsewhere: its end is reported as
    /// [`Outcome::Lost`], never restarted or journaled here.
    pub starter: Option<Arc<dyn Starter>>,
    /// `Some` only for the journal writer's own row
    /// ([`ChildSpec::journal`]): see [`Action::RestartLater`].
    pub backoff: Option<super::Backoff>,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("path", &self.path)
            .field("restart", &self.restart)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("escalation", &self.escalation)
            .field("adopted", &self.starter.is_none())
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl ChildSpec {
    /// A child the supervisor starts, restarts after any end (orca's
    /// permanent internal children).
    pub fn permanent(path: ActorPath, starter: Arc<dyn Starter>) -> Self {
        Self {
            path,
            restart: RestartType::Permanent,
            shutdown_grace: Duration::from_secs(30),
            escalation: Escalation::Supervisor,
            class: FailureClass::Transient,
            starter: Some(starter),
            backoff: None,
        }
    }

    /// The journal writer's row: opened before the tree (the first cell is
    /// inserted, not started), restarted by `starter` (which reopens the
    /// journal through recovery) after `backoff`, counted in consecutive
    /// failures, and never escalated: a disk that stays full keeps orca
    /// degraded, not dead. See [`Action::RestartLater`].
    pub fn journal(path: ActorPath, starter: Arc<dyn Starter>, backoff: super::Backoff) -> Self {
        Self {
            backoff: Some(backoff),
            ..Self::permanent(path, starter)
        }
    }

    /// A child restarted only after a failure (a run supervisor).
    pub fn transient(path: ActorPath, starter: Arc<dyn Starter>) -> Self {
        Self {
            restart: RestartType::Transient,
            ..Self::permanent(path, starter)
        }
    }

    /// A child started elsewhere and linked here.
    pub fn adopted(path: ActorPath) -> Self {
        Self {
            path,
            restart: RestartType::Temporary,
            shutdown_grace: Duration::from_secs(30),
            escalation: Escalation::Supervisor,
            class: FailureClass::Transient,
            starter: None,
            backoff: None,
        }
    }

    pub fn escalating(mut self, escalation: Escalation) -> Self {
        self.escalation = escalation;
        self
    }

    pub fn failing_as(mut self, class: FailureClass) -> Self {
        self.class = class;
        self
    }
}

struct Row {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    restarts: u32,
    /// Failures since the child last proved healthy ([`ChildTable::healthy`]);
    /// the backoff of a [`ChildSpec::journal`] row grows with it.
    failures: u32,
}

/// What to do once a plan's events are durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start the child again (its restart number).
    Restart { restarts: u32 },
    /// The child is done: forget its row.
    Remove,
    /// Past the intensity: the owner escalates (see [`Escalation`]).
    Escalate,
    /// An adopted child ended: the owner decides what that means.
    Lost,
    /// Nothing (the supervisor is stopping its children).
    Nothing,
    /// The journal's own row failed: restart it after `delay_ms`. Its
    /// decision cannot be journaled first — the journal is what failed —
    /// so the plan's events are held by the owner and appended by the new
    /// writer, as its first batch, once [`ChildTable::restart_now`] has
    /// reopened it. Nothing else is acted on meanwhile (every append is
    /// refused).
    RestartLater {
        restarts: u32,
        failures: u32,
        delay_ms: u64,
    },
}

/// A decision about a child that ended, before it is journaled.
#[derive(Debug)]
pub struct ExitPlan {
    pub path: ActorPath,
    pub reason: String,
    /// Journal these (with whatever the owner adds) before acting.
    pub events: Vec<Event>,
    pub action: Action,
    /// When the decision was taken (counted in the restart window).
    pub at: Timestamp,
}

/// What happened, for the owner.
#[derive(Debug)]
pub enum Outcome {
    /// The event was not about one of this table's children.
    NotMine,
    /// The supervisor is stopping its children: nothing to do.
    Ignored,
    /// The child was restarted.
    Restarted(ActorPath),
    /// The child ended for good; its row is gone.
    Removed(ActorPath),
    /// Past the intensity: the owner escalates.
    Escalate { path: ActorPath, reason: String },
    /// An adopted child ended.
    Lost { path: ActorPath, reason: String },
    /// The journal's row failed: the owner calls [`ChildTable::restart_now`]
    /// after `delay_ms`, then appends `events` (the decision) through the
    /// reopened journal. Nothing was journaled or started yet.
    RestartLater {
        path: ActorPath,
        reason: String,
        delay_ms: u64,
        failures: u32,
        events: Vec<Event>,
    },
    /// The journal refused the decision: nothing was acted on, orca is
    /// degraded.
    Degraded(JournalError),
}

/// A supervisor's children and the restarts it counted.
pub struct ChildTable {
    supervisor: ActorPath,
    policy: SupervisorPolicy,
    window: RestartWindow,
    rows: BTreeMap<ActorPath, Row>,
    by_cell: HashMap<ActorId, ActorPath>,
    stopping: bool,
}

impl ChildTable {
    pub fn new(supervisor: ActorPath, policy: SupervisorPolicy) -> Self {
        Self {
            supervisor,
            policy,
            window: RestartWindow::default(),
            rows: BTreeMap::new(),
            by_cell: HashMap::new(),
            stopping: false,
        }
    }

    pub fn supervisor(&self) -> &ActorPath {
        &self.supervisor
    }

    pub fn policy(&self) -> &SupervisorPolicy {
        &self.policy
    }

    /// Adds a row whose child already runs (started by [`Self::start`] or
    /// adopted).
    pub fn insert(&mut self, spec: ChildSpec, cell: Option<ActorCell>) {
        if let Some(c) = &cell {
            self.by_cell.insert(c.get_id(), spec.path.clone());
        }
        self.rows.insert(
            spec.path.clone(),
            Row {
                spec,
                cell,
                restarts: 0,
                failures: 0,
            },
        );
    }

    /// Adds a row and starts its child (the first start; journaling it is
    /// the owner's business, as a submission or boot batch).
    pub async fn start(
        &mut self,
        spec: ChildSpec,
        supervisor: ActorCell,
    ) -> Result<ActorCell, ActorProcessingErr> {
        let starter = spec
            .starter
            .clone()
            .ok_or_else(|| format!("{} has no starter", spec.path))?;
        let cell = starter.start(supervisor, 0).await?;
        self.insert(spec, Some(cell.clone()));
        Ok(cell)
    }

    /// Starts the child of a row added with none: a passive row (an agent
    /// kept unspawned until something wakes it, docs/agents.md). Its
    /// restart count is kept; a row whose child runs answers that child.
    pub async fn wake(
        &mut self,
        path: &ActorPath,
        supervisor: ActorCell,
    ) -> Result<ActorCell, ActorProcessingErr> {
        let row = self
            .rows
            .get(path)
            .ok_or_else(|| format!("{path} has no row"))?;
        if let Some(c) = &row.cell {
            return Ok(c.clone());
        }
        let starter = row
            .spec
            .starter
            .clone()
            .ok_or_else(|| format!("{path} has no starter"))?;
        let cell = starter.start(supervisor, row.restarts).await?;
        self.by_cell.insert(cell.get_id(), path.clone());
        if let Some(row) = self.rows.get_mut(path) {
            row.cell = Some(cell.clone());
        }
        Ok(cell)
    }

    /// Forgets a row's child that stopped on purpose to leave its row
    /// passive (an agent at rest): the row stays, nothing is decided.
    pub fn park(&mut self, path: &ActorPath) {
        if let Some(row) = self.rows.get_mut(path) {
            if let Some(c) = row.cell.take() {
                self.by_cell.remove(&c.get_id());
            }
        }
    }

    /// The running child at `path`.
    pub fn cell(&self, path: &ActorPath) -> Option<&ActorCell> {
        self.rows.get(path).and_then(|r| r.cell.as_ref())
    }

    /// Every row's path and running child.
    pub fn children(&self) -> impl Iterator<Item = (&ActorPath, Option<&ActorCell>)> {
        self.rows.iter().map(|(p, r)| (p, r.cell.as_ref()))
    }

    pub fn contains(&self, path: &ActorPath) -> bool {
        self.rows.contains_key(path)
    }

    /// How often the child at `path` was restarted.
    pub fn restarts(&self, path: &ActorPath) -> u32 {
        self.rows.get(path).map(|r| r.restarts).unwrap_or(0)
    }

    /// Forgets a row without deciding anything (its child ended and the
    /// owner recorded it).
    pub fn remove(&mut self, path: &ActorPath) -> Option<ActorCell> {
        let row = self.rows.remove(path)?;
        if let Some(c) = &row.cell {
            self.by_cell.remove(&c.get_id());
        }
        row.cell
    }

    /// From now on children that end are not restarted (the supervisor is
    /// stopping them).
    pub fn stop_restarting(&mut self) {
        self.stopping = true;
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Which child a supervision event is about, and how it ended
    /// (`None`: not a child of this table, or not an end). A permanent
    /// child has no normal end: stopping without being asked is a failure.
    pub fn exit_of(&self, evt: &SupervisionEvent) -> Option<(ActorPath, ChildExit, String)> {
        let (cell, failed, reason) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, true, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, why) => {
                (cell, false, why.clone().unwrap_or_else(|| "stopped".into()))
            }
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {
                return None
            }
        };
        let path = self.by_cell.get(&cell.get_id())?;
        let row = self.rows.get(path)?;
        let exit = if failed || row.spec.restart == RestartType::Permanent {
            ChildExit::Failed(row.spec.class)
        } else {
            ChildExit::Normal
        };
        Some((path.clone(), exit, reason))
    }

    /// Decides (pure: reads the table, changes nothing) what to do about the
    /// child at `path` that ended with `exit`.
    pub fn plan(
        &self,
        path: &ActorPath,
        exit: ChildExit,
        reason: &str,
        now: Timestamp,
    ) -> ExitPlan {
        let reason = bounded(reason, 500);
        let nothing = |events| ExitPlan {
            path: path.clone(),
            reason: reason.clone(),
            events,
            action: Action::Nothing,
            at: now,
        };
        let Some(row) = self.rows.get(path) else {
            return nothing(Vec::new());
        };
        if self.stopping {
            return nothing(Vec::new());
        }
        if row.spec.starter.is_none() {
            return ExitPlan {
                action: Action::Lost,
                ..nothing(Vec::new())
            };
        }
        if let Some(backoff) = row.spec.backoff {
            let failures = row.failures.saturating_add(1);
            let restarts = row.restarts.saturating_add(1);
            let class = match exit {
                ChildExit::Failed(c) => c,
                _ => row.spec.class,
            };
            return ExitPlan {
                events: vec![
                    Event::ChildFailed {
                        path: path.to_string(),
                        class,
                        reason: reason.clone(),
                    },
                    Event::ChildRestarted {
                        path: path.to_string(),
                        attempt: restarts,
                    },
                ],
                action: Action::RestartLater {
                    restarts,
                    failures,
                    delay_ms: backoff.delay_ms(failures, 0.0),
                },
                ..nothing(Vec::new())
            };
        }
        let child = ChildPolicy {
            restart: row.spec.restart,
            ..ChildPolicy::internal()
        };
        let decision = decide(&self.policy, &self.window, now, &child, 1, exit, 0.0);
        let mut events = Vec::new();
        if let ChildExit::Failed(class) = exit {
            events.push(Event::ChildFailed {
                path: path.to_string(),
                class,
                reason: reason.clone(),
            });
        }
        let action = match decision {
            Decision::Restart { .. } => {
                let restarts = row.restarts + 1;
                events.push(Event::ChildRestarted {
                    path: path.to_string(),
                    attempt: restarts,
                });
                Action::Restart { restarts }
            }
            Decision::Finish { .. } => {
                if exit == ChildExit::Normal {
                    events.push(Event::ChildStopped {
                        path: path.to_string(),
                        reason: reason.clone(),
                    });
                }
                Action::Remove
            }
            Decision::Escalate {
                restarts,
                within_ms,
            } => {
                let (from, to) = match row.spec.escalation {
                    Escalation::Supervisor => (
                        self.supervisor.to_string(),
                        self.supervisor
                            .parent()
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "orca".into()),
                    ),
                    Escalation::ChildAlone => (path.to_string(), self.supervisor.to_string()),
                };
                events.extend(escalation_events(
                    &self.supervisor,
                    restarts,
                    within_ms,
                    from,
                    to,
                    format!("{path} kept failing: {reason}"),
                ));
                Action::Escalate
            }
        };
        ExitPlan {
            path: path.clone(),
            reason,
            events,
            action,
            at: now,
        }
    }

    /// Carries out a plan whose events are durable.
    pub async fn carry_out(&mut self, plan: ExitPlan, supervisor: &ActorCell) -> Outcome {
        let path = plan.path;
        match plan.action {
            Action::Nothing => {
                if let Some(row) = self.rows.get_mut(&path) {
                    if let Some(c) = row.cell.take() {
                        self.by_cell.remove(&c.get_id());
                    }
                }
                Outcome::Ignored
            }
            Action::Lost => {
                if let Some(row) = self.rows.get_mut(&path) {
                    if let Some(c) = row.cell.take() {
                        self.by_cell.remove(&c.get_id());
                    }
                }
                Outcome::Lost {
                    path,
                    reason: plan.reason,
                }
            }
            Action::Remove => {
                self.remove(&path);
                Outcome::Removed(path)
            }
            Action::RestartLater {
                restarts: _,
                failures,
                delay_ms,
            } => {
                if let Some(row) = self.rows.get_mut(&path) {
                    row.failures = failures;
                    if let Some(c) = row.cell.take() {
                        self.by_cell.remove(&c.get_id());
                    }
                }
                Outcome::RestartLater {
                    path,
                    reason: plan.reason,
                    delay_ms,
                    failures,
                    events: plan.events,
                }
            }
            Action::Escalate => {
                if let Some(c) = self.remove(&path) {
                    // What the child started must not outlive it.
                    c.stop_children_and_wait(Some("escalated".into()), Some(self.grace(&path)))
                        .await;
                }
                Outcome::Escalate {
                    path,
                    reason: plan.reason,
                }
            }
            Action::Restart { restarts } => {
                self.window.record(plan.at, self.policy.intensity.within_ms);
                let Some(row) = self.rows.get_mut(&path) else {
                    return Outcome::Ignored;
                };
                if let Some(old) = row.cell.take() {
                    self.by_cell.remove(&old.get_id());
                    // A failed child's own children (a run's attempts) must
                    // not outlive it.
                    old.stop_children_and_wait(
                        Some("its supervisor restarts it".into()),
                        Some(row.spec.shutdown_grace),
                    )
                    .await;
                }
                row.restarts = restarts;
                let Some(starter) = row.spec.starter.clone() else {
                    return Outcome::Ignored;
                };
                match starter.start(supervisor.clone(), restarts).await {
                    Ok(cell) => {
                        self.by_cell.insert(cell.get_id(), path.clone());
                        if let Some(row) = self.rows.get_mut(&path) {
                            row.cell = Some(cell);
                        }
                        Outcome::Restarted(path)
                    }
                    Err(e) => {
                        // The restart was journaled; that it could not
                        // happen is one more failure, counted like any.
                        tracing::error!(%path, error = %e, "cannot restart a supervised child");
                        Outcome::Escalate {
                            path,
                            reason: format!("cannot restart it: {e}"),
                        }
                    }
                }
            }
        }
    }

    /// The one path for a child's end: decide → journal → act. `extra`
    /// adds the owner's events to the decision's batch when it escalates.
    pub async fn handle(
        &mut self,
        evt: SupervisionEvent,
        journal: &JournalHandle,
        supervisor: &ActorCell,
        extra: impl FnOnce(&ExitPlan) -> Vec<Event>,
    ) -> Outcome {
        let exit = self.exit_of(&evt);
        drop(evt);
        let Some((path, exit, reason)) = exit else {
            return Outcome::NotMine;
        };
        let mut plan = self.plan(&path, exit, &reason, Timestamp::now());
        if plan.action == Action::Escalate {
            let more = extra(&plan);
            plan.events.extend(more);
        }
        if !plan.events.is_empty() && !matches!(plan.action, Action::RestartLater { .. }) {
            let batch = plan
                .events
                .iter()
                .cloned()
                .map(|e| NewEvent::new(self.supervisor.to_string(), e))
                .collect();
            if let Err(e) = journal.append(batch).await {
                tracing::error!(%path, error = %e, "cannot journal a supervision decision: nothing is acted on");
                return Outcome::Degraded(e);
            }
        }
        self.carry_out(plan, supervisor).await
    }

    /// Starts the child of a row whose [`Outcome::RestartLater`] delay is
    /// over (the journal: reopens it). `Err`: it could not start; the
    /// failure is counted and the answer is the next delay (or `None` for
    /// a row without backoff, or gone).
    pub async fn restart_now(
        &mut self,
        path: &ActorPath,
        supervisor: &ActorCell,
    ) -> Result<ActorCell, (String, Option<u64>)> {
        let Some(row) = self.rows.get_mut(path) else {
            return Err(("no such child".into(), None));
        };
        let Some(starter) = row.spec.starter.clone() else {
            return Err(("it has no starter".into(), None));
        };
        let restarts = row.restarts.saturating_add(1);
        match starter.start(supervisor.clone(), restarts).await {
            Ok(cell) => {
                row.restarts = restarts;
                if let Some(old) = row.cell.replace(cell.clone()) {
                    self.by_cell.remove(&old.get_id());
                }
                self.by_cell.insert(cell.get_id(), path.clone());
                Ok(cell)
            }
            Err(e) => {
                row.failures = row.failures.saturating_add(1);
                let next = row.spec.backoff.map(|b| b.delay_ms(row.failures, 0.0));
                Err((e.to_string(), next))
            }
        }
    }

    /// The child at `path` proved healthy (the journal: its first append
    /// after a reopen was acknowledged): its backoff starts over.
    pub fn healthy(&mut self, path: &ActorPath) {
        if let Some(row) = self.rows.get_mut(path) {
            row.failures = 0;
        }
    }

    /// Failures of the child at `path` since it last proved healthy.
    pub fn failures(&self, path: &ActorPath) -> u32 {
        self.rows.get(path).map(|r| r.failures).unwrap_or(0)
    }

    /// Restarts a running child because one it depends on was restarted
    /// (the alert router after the journal reopened: its in-memory state
    /// may hold what the journal refused). Decide (`ChildRestarted`),
    /// journal, act; counts toward neither attempts nor intensity (a
    /// sibling restart is transparent, like `StoppedForSibling`).
    pub async fn restart_for_dependency(
        &mut self,
        path: &ActorPath,
        journal: &JournalHandle,
        supervisor: &ActorCell,
        why: &str,
    ) -> Outcome {
        if self.stopping {
            return Outcome::Ignored;
        }
        let Some(row) = self.rows.get(path) else {
            return Outcome::NotMine;
        };
        let Some(starter) = row.spec.starter.clone() else {
            return Outcome::Ignored;
        };
        let restarts = row.restarts.saturating_add(1);
        let grace = row.spec.shutdown_grace;
        let batch = vec![NewEvent::new(
            self.supervisor.to_string(),
            Event::ChildRestarted {
                path: path.to_string(),
                attempt: restarts,
            },
        )];
        if let Err(e) = journal.append(batch).await {
            return Outcome::Degraded(e);
        }
        let Some(row) = self.rows.get_mut(path) else {
            return Outcome::Ignored;
        };
        row.restarts = restarts;
        if let Some(old) = row.cell.take() {
            self.by_cell.remove(&old.get_id());
            old.stop_children_and_wait(Some(why.to_string()), Some(grace))
                .await;
            let _ = old.stop_and_wait(Some(why.to_string()), Some(grace)).await;
        }
        match starter.start(supervisor.clone(), restarts).await {
            Ok(cell) => {
                self.by_cell.insert(cell.get_id(), path.clone());
                if let Some(row) = self.rows.get_mut(path) {
                    row.cell = Some(cell);
                }
                Outcome::Restarted(path.clone())
            }
            Err(e) => Outcome::Escalate {
                path: path.clone(),
                reason: format!("cannot restart it: {e}"),
            },
        }
    }

    fn grace(&self, path: &ActorPath) -> Duration {
        self.rows
            .get(path)
            .map(|r| r.spec.shutdown_grace)
            .unwrap_or(Duration::from_secs(30))
    }
}

/// The events that record a supervisor giving up: `IntensityExceeded`
/// (by `supervisor`) then `Escalated` (`from` → `to`). Written once, for
/// every supervisor (the run's attempts, its scorer, `runs`, the root).
pub fn escalation_events(
    supervisor: &ActorPath,
    restarts: u32,
    within_ms: u64,
    from: String,
    to: String,
    reason: String,
) -> Vec<Event> {
    vec![
        Event::IntensityExceeded {
            supervisor: supervisor.to_string(),
            restarts,
            within_ms,
        },
        Event::Escalated { from, to, reason },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervision::Backoff;

    fn journal_table() -> ChildTable {
        let starter: Arc<dyn Starter> = Arc::new(|_sup: ActorCell, _n: u32| {
            let fut: BoxFuture<'static, Result<ActorCell, ActorProcessingErr>> =
                Box::pin(async { Err("never started in a pure test".into()) });
            fut
        });
        let mut t = ChildTable::new(ActorPath::Root, SupervisorPolicy::internal());
        let backoff = Backoff {
            initial_ms: 250,
            max_ms: 15_000,
            multiplier: 2.0,
            jitter: 0.0,
        };
        t.insert(
            ChildSpec::journal(ActorPath::Journal, starter, backoff),
            None,
        );
        t
    }

    /// Given a clock: the journal's row backs off by consecutive failures,
    /// caps, never escalates however many restarts fall within the
    /// intensity period, holds its decision for the reopened journal, and
    /// starts over once healthy.
    #[test]
    fn the_journal_row_backs_off_and_never_escalates() {
        let mut t = journal_table();
        let now = Timestamp(1_700_000_000_000_000_000);
        let exit = ChildExit::Failed(FailureClass::Transient);
        let mut delays = Vec::new();
        for n in 0..10u64 {
            // Far past the internal intensity (3 in 5 s), all at `now`.
            t.window.record(Timestamp(now.0 + n as i64), 5_000);
            let plan = t.plan(&ActorPath::Journal, exit, "ENOSPC", now);
            let Action::RestartLater {
                failures, delay_ms, ..
            } = plan.action
            else {
                panic!("{plan:?}");
            };
            assert_eq!(failures as u64, n + 1);
            assert_eq!(
                types(&plan.events),
                vec!["ChildFailed", "ChildRestarted"],
                "the decision is held, not dropped"
            );
            delays.push(delay_ms);
            if let Some(row) = t.rows.get_mut(&ActorPath::Journal) {
                row.failures = failures;
            }
        }
        assert_eq!(
            delays,
            vec![250, 500, 1_000, 2_000, 4_000, 8_000, 15_000, 15_000, 15_000, 15_000]
        );
        t.healthy(&ActorPath::Journal);
        let plan = t.plan(&ActorPath::Journal, exit, "EIO", now);
        assert!(matches!(
            plan.action,
            Action::RestartLater { delay_ms: 250, .. }
        ));
    }

    fn types(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| e.type_name()).collect()
    }
}
