//! Projections: state as a fold of events. The same `apply` serves the
//! daemon (fed live from [`super::JournalHandle::subscribe`]) and the CLI
//! (fed offline by [`replay`]).

use std::path::Path;

use super::envelope::Envelope;
use super::error::JournalError;
use super::event::Event;
use super::reader::Cursor;
use super::segment::{list_segments, RecordSink};
use crate::model::Timestamp;

/// A view folded from the journal. `apply` must be deterministic and must
/// not fail: it sees each event once, in seq order.
pub trait Projection {
    fn apply(&mut self, env: &Envelope);
}

impl<P: Projection + ?Sized> Projection for &mut P {
    fn apply(&mut self, env: &Envelope) {
        (**self).apply(env);
    }
}

impl<P: Projection + ?Sized> Projection for Box<P> {
    fn apply(&mut self, env: &Envelope) {
        (**self).apply(env);
    }
}

/// Feeds every event from seq `from` (inclusive) to the end of the journal
/// in `dir` to `p`. Returns the seq of the last event applied — or
/// `from - 1` when there was none, so the result is always "`p` now
/// reflects the journal up to this seq" given that it reflected `from - 1`.
///
/// Fails with [`JournalError::Compacted`] if compaction removed events
/// at or after `from`: a fold never silently starts in the middle.
pub fn replay<P: Projection + ?Sized>(
    dir: &Path,
    from: u64,
    p: &mut P,
) -> Result<u64, JournalError> {
    let from = from.max(1);
    if let Some(first) = list_segments(dir)?.first() {
        if first.first_seq > from {
            return Err(JournalError::Compacted {
                dir: dir.to_path_buf(),
                first_available: first.first_seq,
                needed: from,
            });
        }
    }
    // Each event is decoded straight into one reused envelope and applied
    // from there: an envelope is a few hundred bytes, and the actor path's
    // buffer is reused rather than allocated per event.
    let mut sink = Apply {
        p,
        from,
        last: from - 1,
        env: Envelope {
            seq: 0,
            at: Timestamp(0),
            actor: String::new(),
            event: Event::placeholder(),
        },
    };
    let mut cursor = Cursor::new(dir, from, from);
    while cursor.next_frame(&mut sink)?.is_some() {}
    Ok(sink.last)
}

/// Applies decoded events at or above `from`.
struct Apply<'a, P: ?Sized> {
    p: &'a mut P,
    from: u64,
    last: u64,
    /// Decoded into and applied from, record after record.
    env: Envelope,
}

impl<P: Projection + ?Sized> RecordSink for Apply<'_, P> {
    fn slot(&mut self) -> &mut Event {
        &mut self.env.event
    }

    #[inline]
    fn record(&mut self, seq: u64, at: Timestamp, actor: &str) {
        if seq < self.from {
            return;
        }
        self.env.seq = seq;
        self.env.at = at;
        self.env.actor.clear();
        self.env.actor.push_str(actor);
        self.p.apply(&self.env);
        self.last = seq;
    }
}
