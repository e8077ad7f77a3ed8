//! The end of an attempt, in one place.
//!
//! However an attempt ends — its process exited and was judged, orca
//! stopped it, its actor failed, it could not start, or orca died while it
//! ran — the end is one [`AttemptOutcome`]: the [`Judgement`] (from
//! [`judge`] in DESIGN.md's order, or the scorer), the [`StopCause`] if it
//! was stopped, and its one receipt, built by [`ReceiptDraft`]. Its run
//! journals [`AttemptOutcome::terminal_events`] in the same batch as its
//! decision about the task (`crate::run::decide`), and writes the
//! receipt's copy in the attempt directory with [`write_receipt`] once that
//! batch is durable. A manual verdict later rewrites that copy the same
//! way.

pub mod judge;
pub mod receipt;

pub use judge::{interrupted, judge, Evidence, Judgement, StopCause, EX_TEMPFAIL};
pub use receipt::{write_receipt, write_receipt_file, ReceiptDraft, SUMMARY_MAX};

use crate::alert::events::{AlertRaised, AlertSource};
use crate::journal::event::{Event, InterruptCause};
use crate::model::{AttemptRef, Receipt, Timestamp};
use crate::redact::Secrets;
use crate::runtime::UsageRecord;

/// How an attempt ended, as its run journals it.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptOutcome {
    pub attempt: AttemptRef,
    pub judgement: Judgement,
    /// Why it was stopped, if it was.
    pub stop: Option<StopCause>,
    /// Its one receipt (the summary already redacted and bounded).
    pub receipt: Receipt,
    /// What it used, when its runtime reported usage.
    pub usage: Option<UsageRecord>,
}

impl AttemptOutcome {
    /// The end of an attempt whose draft (what is known of it) is `draft`.
    pub fn new(
        draft: &ReceiptDraft,
        judgement: Judgement,
        stop: Option<StopCause>,
        secrets: &Secrets,
        finished: Timestamp,
    ) -> Self {
        let receipt = draft.receipt(&judgement, secrets, finished);
        Self {
            attempt: draft.attempt.clone(),
            judgement,
            stop,
            receipt,
            usage: None,
        }
    }

    /// An attempt orca ends itself: it was interrupted by `cause`
    /// (orca's crash, found at recovery), its actor failed, or it could not
    /// start.
    pub fn by_orca(
        attempt: AttemptRef,
        worker: String,
        started: Timestamp,
        judgement: Judgement,
        stop: Option<StopCause>,
        finished: Timestamp,
    ) -> Self {
        let draft = ReceiptDraft::new(attempt, worker, started);
        Self::new(&draft, judgement, stop, &Secrets::default(), finished)
    }

    /// The interruption that ended it, if one did.
    pub fn interruption(&self) -> Option<&InterruptCause> {
        self.stop.as_ref().and_then(StopCause::interruption)
    }

    /// What the journal records of this end, in order: the interruption
    /// (one stop cause, whatever it was), the terminal event, its usage,
    /// its receipt, and the alerts the end raises.
    pub fn terminal_events(&self) -> Vec<Event> {
        let mut events = Vec::with_capacity(4);
        if let Some(cause) = self.interruption() {
            events.push(Event::AttemptInterrupted {
                attempt: self.attempt.clone(),
                cause: cause.clone(),
            });
        }
        events.push(Event::AttemptFinished {
            attempt: self.attempt.clone(),
            result: self.judgement.result,
            source: self.judgement.source,
            class: self.judgement.class,
            reason: self.receipt.summary.clone(),
        });
        if let Some(record) = self.usage.as_ref().filter(|u| !u.is_empty()) {
            events.push(Event::AttemptUsage {
                attempt: self.attempt.clone(),
                record: record.clone(),
            });
        }
        events.push(Event::ReceiptRecorded(self.receipt.clone()));
        for class in &self.judgement.alerts {
            events.push(
                AlertRaised::new(
                    *class,
                    AlertSource::run(&self.attempt.run),
                    Some(self.attempt.task.clone()),
                    Some(self.attempt.attempt),
                    Some(self.receipt.worker.clone()),
                    self.receipt.summary.clone(),
                    self.receipt.finished,
                )
                .event(),
            );
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertClass, AttemptResult};

    #[test]
    fn terminal_events_hold_one_stop_cause_and_the_receipt() {
        let a = AttemptRef::new("r-1", "lint", 2);
        let t0 = Timestamp(1_000_000_000);
        let mut draft = ReceiptDraft::new(a.clone(), "local-1".into(), t0);
        draft.notes.push("key sk-secret-9 leaked".into());
        let secrets = Secrets::new(["sk-secret-9"]);
        let stopped = AttemptOutcome::new(
            &draft,
            interrupted(&InterruptCause::RunStopped),
            Some(StopCause::Interrupted(InterruptCause::RunStopped)),
            &secrets,
            Timestamp(3_000_000_000),
        );
        let ev = stopped.terminal_events();
        assert_eq!(
            ev.iter().map(Event::type_name).collect::<Vec<_>>(),
            ["AttemptInterrupted", "AttemptFinished", "ReceiptRecorded"]
        );
        assert_eq!(stopped.receipt.result, AttemptResult::Skip);
        assert_eq!(stopped.receipt.duration_ms, 2_000);
        assert_eq!(
            stopped.receipt.summary,
            "the run was stopped; key <redacted> leaked"
        );
        let budget = StopCause::Budget(crate::journal::event::BudgetLimit::Tokens);
        let over = AttemptOutcome::by_orca(
            a,
            "local-1".into(),
            t0,
            judge(&Evidence {
                stop: Some(&budget),
                ..Evidence::exited(crate::host::ExitInfo {
                    code: None,
                    signal: Some(15),
                })
            })
            .unwrap(),
            Some(budget.clone()),
            t0,
        );
        let ev = over.terminal_events();
        assert_eq!(
            ev.iter().map(Event::type_name).collect::<Vec<_>>(),
            ["AttemptFinished", "ReceiptRecorded", "AlertRaised"]
        );
        assert!(matches!(
            &ev[2],
            Event::Alert(crate::alert::AlertEvent::Raised(r))
                if r.class == AlertClass::BudgetExceeded && r.worker.as_deref() == Some("local-1")
        ));
    }
}
