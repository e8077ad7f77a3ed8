//! Attempts orca ends itself: their actor failed, could not start, or orca
//! died while they ran (their process group is killed if still ours).

use ractor::ActorRef;

use super::Sup;
use crate::model::{AttemptRef, Timestamp};
use crate::outcome::{AttemptOutcome, Judgement};
use crate::run::decide::RunCommand;
use crate::run::lease::Slot;
use crate::run::RunMsg;

impl Sup {
    /// The end of an attempt orca ends itself (its actor could not report).
    pub(super) fn ended_by_orca(
        &self,
        attempt: &AttemptRef,
        worker: String,
        j: Judgement,
    ) -> AttemptOutcome {
        let a = self
            .state
            .task(&attempt.task)
            .and_then(|t| t.attempt(attempt.attempt));
        AttemptOutcome::by_orca(
            attempt.clone(),
            a.and_then(|a| a.worker.clone()).unwrap_or(worker),
            a.map(|a| a.started).unwrap_or_else(Timestamp::now),
            j,
            None,
            Timestamp::now(),
        )
    }

    pub(super) async fn attempt_crashed(
        &mut self,
        myself: &ActorRef<RunMsg>,
        t: usize,
        err: String,
    ) {
        let Some(live) = self.running.get(&t) else {
            return;
        };
        let attempt = AttemptRef::new(&self.run, &self.state.tasks[t].id, live.n);
        let worker = self.slots.name(&live.slot);
        tracing::error!(%attempt, error = %err, "attempt actor failed");
        self.kill_if_ours(&attempt).await;
        self.release(t);
        let outcome = self.ended_by_orca(
            &attempt,
            worker,
            Judgement::transport(format!("orca's attempt actor failed: {err}")),
        );
        self.command(myself, RunCommand::AttemptEnded(Box::new(outcome)), None);
        self.maybe_halted(myself);
    }

    /// Kills an attempt's process group if it is still alive and ours.
    pub(super) async fn kill_if_ours(&self, attempt: &AttemptRef) {
        let a = self
            .state
            .task(&attempt.task)
            .and_then(|t| t.attempt(attempt.attempt));
        let rec = crate::run::state::recorded_proc(attempt, a);
        let worker_spec = a
            .and_then(|a| a.worker.as_deref())
            .and_then(|w| self.slots.by_name(w))
            .and_then(|slot| match slot {
                Slot::Declared(i) => self.spec.workers.get(i),
                Slot::Local(_) => None,
            });
        let host = self.services.host_for(worker_spec);
        match host
            .kill_orphan(&rec, self.services.settings.grace.as_millis() as u64)
            .await
        {
            Ok(true) => {
                tracing::warn!(%attempt, "killed the process group of an interrupted attempt")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(%attempt, error = %e, "cannot check an interrupted attempt's processes")
            }
        }
    }
}
