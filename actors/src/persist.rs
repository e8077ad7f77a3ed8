//! Persist, then act — without waiting in the mailbox.
//!
//! An actor that journals a decision must act on it only once the append
//! is durable, yet it should keep handling messages meanwhile (so
//! decisions group-commit). [`Persister`] appends a batch at once (the
//! journal queues it in call order) and hands the actor back what it
//! attached to the batch when that batch is durable — or the error — in
//! the order the batches were appended, through one task per actor. A
//! later batch's effects can therefore never be carried out before an
//! earlier one's.

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use crate::journal::{AppendAck, JournalError, JournalHandle, NewEvent};

type Pending<T> = (BoxFuture<'static, Result<AppendAck, JournalError>>, T);

/// Appends for one actor; see the module docs.
pub struct Persister<T: Send + 'static> {
    journal: JournalHandle,
    tx: mpsc::UnboundedSender<Pending<T>>,
}

impl<T: Send + 'static> Persister<T> {
    /// `deliver` gets each batch's answer with what was attached to it, in
    /// append order (it usually casts a message to the actor).
    pub fn new(
        journal: JournalHandle,
        deliver: impl Fn(Result<AppendAck, JournalError>, T) + Send + 'static,
    ) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Pending<T>>();
        tokio::spawn(async move {
            while let Some((pending, then)) = rx.recv().await {
                let answer = pending.await;
                deliver(answer, then);
            }
        });
        Self { journal, tx }
    }

    /// Appends `batch`; `then` comes back once it is durable.
    pub fn append(&self, batch: Vec<NewEvent>, then: T) {
        let pending = self.journal.append(batch);
        // The receiver lives as long as this persister's task, which only
        // ends once this sender is dropped.
        let _ = self.tx.send((Box::pin(pending), then));
    }

    pub fn journal(&self) -> &JournalHandle {
        &self.journal
    }
}
