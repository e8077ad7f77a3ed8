//! Projections: state as a fold of events. The same `apply` serves the
//! daemon (fed live from [`super::JournalHandle::subscribe`]) and the CLI
//! (fed offline by [`replay`]).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use super::envelope::Envelope;
use super::error::JournalError;
use super::event::Event;
use super::reader::Cursor;
use super::segment::{list_segments, FrameHead, FrameRef, FrameSink, RecordSink};
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
///
/// A journal larger than one chunk (256 KiB of frames) is decoded by one
/// thread per core (at most four) while this thread reads and applies;
/// `p` still sees every event once, in seq order, on this thread.
pub fn replay<P: Projection + ?Sized>(
    dir: &Path,
    from: u64,
    p: &mut P,
) -> Result<u64, JournalError> {
    let decoders = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_DECODERS));
    replay_with(dir, from, p, decoders, CHUNK_BYTES)
}

/// At most this many decoding threads: a bound on threads and on memory
/// (each holds up to four chunks).
const MAX_DECODERS: usize = 4;

/// Frames are handed to decoders in chunks of about this many bytes (a
/// few thousand events); a journal smaller than one chunk is decoded on the
/// calling thread and starts no thread at all.
const CHUNK_BYTES: usize = 256 << 10;

/// [`replay`] with `decoders` decoding threads (1: none, everything on the
/// calling thread) and chunks of `chunk_bytes`.
///
/// The calling thread walks the journal with the one [`Cursor`] (reads,
/// checksums, checks the seqs follow on), copies whole frames into chunks
/// and deals the chunks round-robin to the decoders; it takes the decoded
/// chunks back in the same order and applies them, so `p` sees exactly the
/// sequence a single-threaded fold sees, and an error stops it at the same
/// event: a chunk that failed to decode is applied up to the record that
/// failed, then its error is returned; an error of the cursor's is returned
/// after everything before it is applied. Chunks go back to their decoder
/// to be refilled, so events are allocated and freed on the same thread.
pub(crate) fn replay_with<P: Projection + ?Sized>(
    dir: &Path,
    from: u64,
    p: &mut P,
    decoders: usize,
    chunk_bytes: usize,
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
    let mut fold = Fold {
        p,
        from,
        last: from - 1,
    };
    let mut cursor = Cursor::new(dir, from, from);
    let mut chunk = Chunk::default();
    let mut walked = walk(&mut cursor, &mut chunk, chunk_bytes);
    if decoders <= 1 || !matches!(walked, Ok(Walk::Full)) {
        // One decoder, or a journal smaller than a chunk: no thread.
        loop {
            chunk.decode();
            fold.apply(&mut chunk)?;
            match walked {
                Ok(Walk::Full) => {
                    chunk.clear();
                    walked = walk(&mut cursor, &mut chunk, chunk_bytes);
                }
                Ok(Walk::End) => return Ok(fold.last),
                Err(e) => return Err(e),
            }
        }
    }
    std::thread::scope(|scope| {
        let mut lanes = Vec::with_capacity(decoders);
        for _ in 0..decoders {
            // Per decoder, at most two chunks queued each way.
            let (to_tx, to_rx) = mpsc::sync_channel::<Chunk>(2);
            let (back_tx, back_rx) = mpsc::sync_channel::<Chunk>(2);
            scope.spawn(move || {
                for mut chunk in to_rx {
                    chunk.decode();
                    if back_tx.send(chunk).is_err() {
                        return;
                    }
                }
            });
            lanes.push((to_tx, back_rx));
        }
        let mut in_flight: VecDeque<usize> = VecDeque::new();
        // Chunks each decoder has given back: a chunk stays with its
        // decoder, so the events in it are allocated and freed by one
        // thread (frees across threads cost more).
        let mut spare: Vec<Vec<Chunk>> = (0..decoders).map(|_| Vec::new()).collect();
        let mut next_lane = 0;
        let mut full = Some(chunk);
        // How the cursor ended, once it has: applied after every chunk.
        let mut ended: Option<Result<(), JournalError>> = None;
        loop {
            if let Some(chunk) = full.take() {
                let lane = next_lane % decoders;
                next_lane += 1;
                // A decoder hangs up only by panicking, and the scope
                // re-raises that panic when it joins.
                if lanes[lane].0.send(chunk).is_err() {
                    break;
                }
                in_flight.push_back(lane);
            }
            if ended.is_some() || in_flight.len() >= 2 * decoders {
                // Apply the oldest chunk before reading on. Returning early
                // drops the channels, which ends the decoders.
                let Some(lane) = in_flight.pop_front() else {
                    break;
                };
                let Ok(mut done) = lanes[lane].1.recv() else {
                    break;
                };
                fold.apply(&mut done)?;
                done.clear();
                if let Some(s) = spare.get_mut(lane) {
                    s.push(done);
                }
                continue;
            }
            let mut chunk = spare
                .get_mut(next_lane % decoders)
                .and_then(Vec::pop)
                .unwrap_or_default();
            let walked = walk(&mut cursor, &mut chunk, chunk_bytes);
            if !chunk.frames.is_empty() {
                full = Some(chunk);
            }
            match walked {
                Ok(Walk::Full) => {}
                Ok(Walk::End) => ended = Some(Ok(())),
                Err(e) => ended = Some(Err(e)),
            }
        }
        ended.unwrap_or(Ok(())).map(|()| fold.last)
    })
}

/// Whether [`walk`] filled its chunk or reached the end of what is written.
enum Walk {
    Full,
    End,
}

/// Copies frames from the cursor into `chunk` until it holds at least
/// `chunk_bytes` (or the journal ends).
fn walk(cursor: &mut Cursor, chunk: &mut Chunk, chunk_bytes: usize) -> Result<Walk, JournalError> {
    while chunk.bytes.len() < chunk_bytes {
        if cursor.next_frame(chunk)?.is_none() {
            return Ok(Walk::End);
        }
    }
    Ok(Walk::Full)
}

/// Whole frames copied from the journal, then the events decoded from them.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    frames: Vec<FrameAt>,
    /// The segments the frames come from (named in errors).
    segments: Vec<PathBuf>,
    /// Decoded events: the first `decoded`; the slots after them are kept
    /// for the next fill (their strings' buffers are reused or freed by
    /// the thread that decodes).
    envs: Vec<Envelope>,
    decoded: usize,
    /// Why decoding stopped after `decoded` events.
    error: Option<JournalError>,
}

/// Where one frame lies in [`Chunk::bytes`].
struct FrameAt {
    head: FrameHead,
    records_at: usize,
    start: usize,
    end: usize,
    /// Its byte offset in its segment, `Chunk::segments[segment]`.
    offset: u64,
    segment: usize,
}

impl Chunk {
    fn clear(&mut self) {
        self.bytes.clear();
        self.frames.clear();
        self.segments.clear();
        self.decoded = 0;
        self.error = None;
    }

    /// Decodes every frame (up to the first record that fails).
    fn decode(&mut self) {
        let mut slots = Slots {
            envs: &mut self.envs,
            n: 0,
        };
        for f in &self.frames {
            let frame = FrameRef {
                payload: self.bytes.get(f.start..f.end).unwrap_or_default(),
                head: f.head,
                records_at: f.records_at,
                segment: self.segments.get(f.segment).map_or(Path::new(""), |p| p),
                offset: f.offset,
            };
            if let Err(e) = frame.decode_into(&mut slots) {
                self.error = Some(e);
                break;
            }
        }
        self.decoded = slots.n;
    }
}

impl FrameSink for Chunk {
    fn frame(&mut self, f: FrameRef<'_>) -> Result<(), JournalError> {
        if self.segments.last().map(PathBuf::as_path) != Some(f.segment) {
            self.segments.push(f.segment.to_path_buf());
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(f.payload);
        self.frames.push(FrameAt {
            head: f.head,
            records_at: f.records_at,
            start,
            end: self.bytes.len(),
            offset: f.offset,
            segment: self.segments.len() - 1,
        });
        Ok(())
    }
}

/// Decodes records into a chunk's envelopes, reusing them.
struct Slots<'a> {
    envs: &'a mut Vec<Envelope>,
    n: usize,
}

impl RecordSink for Slots<'_> {
    fn slot(&mut self) -> &mut Event {
        if self.n == self.envs.len() {
            self.envs.push(Envelope {
                seq: 0,
                at: Timestamp(0),
                actor: String::new(),
                event: Event::placeholder(),
            });
        }
        &mut self.envs[self.n].event
    }

    #[inline]
    fn record(&mut self, seq: u64, at: Timestamp, actor: &str) {
        // `slot` made the envelope before the record was decoded into it.
        if let Some(env) = self.envs.get_mut(self.n) {
            env.seq = seq;
            env.at = at;
            env.actor.clear();
            env.actor.push_str(actor);
            self.n += 1;
        }
    }
}

/// Applies decoded events at or above `from`, in order.
struct Fold<'a, P: ?Sized> {
    p: &'a mut P,
    from: u64,
    last: u64,
}

impl<P: Projection + ?Sized> Fold<'_, P> {
    /// Applies a decoded chunk; its decoding error, if any, after the
    /// events before it.
    fn apply(&mut self, chunk: &mut Chunk) -> Result<(), JournalError> {
        for env in chunk.envs.iter().take(chunk.decoded) {
            if env.seq >= self.from {
                self.p.apply(env);
                self.last = env.seq;
            }
        }
        chunk.error.take().map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::fixture::sample_events;
    use crate::journal::schema::{encode_record, Append};
    use crate::journal::segment::{encode_frame, segment_file_name, Collect, SegmentHeader};

    /// What went wrong in a handmade journal.
    #[derive(Clone, Copy)]
    enum Flaw {
        None,
        /// The second record of the frame holding this seq does not decode.
        Undecodable(u64),
        /// The frame holding this seq has a wrong checksum (its segment is
        /// not the last, so it is corruption).
        Checksum(u64),
    }

    /// Three segments of frames of 1 to 4 sample events (every variant,
    /// over and over): 600 events.
    fn journal(dir: &Path, flaw: Flaw) {
        std::fs::create_dir_all(dir).unwrap();
        let events = sample_events();
        let mut seq = 1;
        for _ in 0..3 {
            let mut bytes = SegmentHeader::new(seq, Timestamp(1)).encode().to_vec();
            let first = seq;
            while seq < first + 200 {
                let count = (1 + seq % 4).min(first + 200 - seq);
                let mut records = Vec::new();
                for i in 0..count {
                    let e = &events[((seq + i) % events.len() as u64) as usize];
                    if i == 1
                        && matches!(flaw, Flaw::Undecodable(s) if (seq..seq + count).contains(&s))
                    {
                        // Schema version, actor, then variant 200: unknown.
                        bincode::encode_into_writer(
                            crate::journal::EVENT_SCHEMA_VERSION,
                            Append(&mut records),
                            bincode::config::standard(),
                        )
                        .unwrap();
                        bincode::encode_into_writer(
                            "/x",
                            Append(&mut records),
                            bincode::config::standard(),
                        )
                        .unwrap();
                        records.push(200);
                    } else {
                        encode_record(&mut records, &e.actor, &e.event).unwrap();
                    }
                }
                let head = FrameHead {
                    first_seq: seq,
                    at: Timestamp(i64::try_from(seq).unwrap()),
                    count: u32::try_from(count).unwrap(),
                };
                let at = bytes.len();
                encode_frame(&mut bytes, &head, &records);
                if matches!(flaw, Flaw::Checksum(s) if (seq..seq + count).contains(&s)) {
                    bytes[at + 4] ^= 0xff;
                }
                seq += count;
            }
            std::fs::write(dir.join(segment_file_name(first)), bytes).unwrap();
        }
    }

    /// Every envelope it is given, in order.
    #[derive(Default)]
    struct Seen(Vec<Envelope>);

    impl Projection for Seen {
        fn apply(&mut self, env: &Envelope) {
            self.0.push(env.clone());
        }
    }

    /// The error's kind and place, comparable across runs.
    fn place(e: &JournalError) -> String {
        match e {
            JournalError::Undecodable {
                segment, offset, ..
            } => format!("undecodable {} {offset}", segment.display()),
            JournalError::Corrupt {
                segment, offset, ..
            } => format!("corrupt {} {offset}", segment.display()),
            other => format!("other: {other}"),
        }
    }

    #[test]
    fn parallel_replay_applies_exactly_what_one_thread_applies() {
        let tmp = tempfile::tempdir().unwrap();
        for (name, flaw) in [
            ("sound", Flaw::None),
            ("undecodable", Flaw::Undecodable(333)),
            ("checksum", Flaw::Checksum(150)),
        ] {
            let dir = tmp.path().join(name);
            journal(&dir, flaw);
            // The reference: the cursor decoding each frame on the spot, as
            // replay did before it had decoders.
            let reference = |from: u64| {
                let mut all: Vec<Envelope> = Vec::new();
                let mut cursor = Cursor::new(&dir, from.max(1), from.max(1));
                let err = loop {
                    match cursor.next_frame(&mut Collect::new(&mut all)) {
                        Ok(Some(_)) => {}
                        Ok(None) => break None,
                        Err(e) => break Some(place(&e)),
                    }
                };
                all.retain(|e| e.seq >= from.max(1));
                (all, err)
            };
            let (all, err) = reference(1);
            match flaw {
                Flaw::None => assert_eq!((all.len(), err), (600, None)),
                Flaw::Undecodable(_) | Flaw::Checksum(_) => assert!(err.is_some()),
            }
            for from in [0, 2, 37, 333, 600, 601] {
                let (expected, reference_err) = reference(from);
                for decoders in [1, 2, 3] {
                    for chunk_bytes in [1, 100, 2_000, 1 << 20] {
                        let mut seen = Seen::default();
                        let got = replay_with(&dir, from, &mut seen, decoders, chunk_bytes);
                        let case = format!("{name}, {decoders} decoders, chunks of {chunk_bytes} bytes, from {from}");
                        assert_eq!(seen.0.len(), expected.len(), "{case}");
                        assert!(seen.0 == expected, "{case}");
                        match (&got, &reference_err) {
                            (Ok(last), None) => {
                                assert_eq!(*last, 600.max(from.max(1) - 1), "{case}");
                            }
                            (Err(e), Some(r)) => assert_eq!(&place(e), r, "{case}"),
                            (got, r) => {
                                panic!("{case}: {:?} vs {r:?}", got.as_ref().map_err(place))
                            }
                        }
                    }
                }
            }
        }
    }
}
