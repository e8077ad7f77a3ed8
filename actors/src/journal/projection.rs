//! Projections: state as a fold of events. The same `apply` serves the
//! daemon (fed live from [`super::JournalHandle::subscribe`]) and the CLI
//! (fed offline by [`replay`]).

use std::path::Path;

use super::envelope::Envelope;
use super::error::JournalError;
use super::reader::Cursor;
use super::segment::list_segments;

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
    // Each envelope goes straight from the decoder to `apply`, without
    // passing through the reader's queue (an envelope is a few hundred
    // bytes: copying it around costs more than the fold).
    let mut sink = Apply {
        p,
        from,
        last: from - 1,
    };
    let mut cursor = Cursor::new(dir, from, from);
    while cursor.next_frame(&mut sink)?.is_some() {}
    Ok(sink.last)
}

/// Applies decoded envelopes at or above `from`.
struct Apply<'a, P: ?Sized> {
    p: &'a mut P,
    from: u64,
    last: u64,
}

impl<P: Projection + ?Sized> Extend<Envelope> for Apply<'_, P> {
    fn extend<I: IntoIterator<Item = Envelope>>(&mut self, iter: I) {
        for env in iter {
            if env.seq >= self.from {
                self.p.apply(&env);
                self.last = env.seq;
            }
        }
    }
}
