//! Offline reads: no lock, safe while a writer (in this or another process)
//! appends. A reader never writes; it treats an incomplete last frame as not
//! yet written, and anything else out of place as an error naming the
//! segment and offset — never a silent skip.
//!
//! Range semantics follow the persistence TCK: `from` and `to` are inclusive
//! seqs, `max` bounds the number of events; `from > to` or `max == 0` reads
//! nothing ([`highest_seq`] still reports the highest seq). Ranges cut
//! through batches: events are addressed one by one.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::envelope::Envelope;
use super::error::JournalError;
use super::segment::{
    decode_head_len, list_segments, Collect, FrameHead, FrameRef, FrameSink, HeaderProblem,
    SegmentScan, Step, FORMAT_VERSION, HEADER_LEN,
};

/// Which events to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRange {
    /// Lowest seq, inclusive (0 and 1 both mean "from the start").
    pub from: u64,
    /// Highest seq, inclusive (`None`: to the end).
    pub to: Option<u64>,
    /// At most this many events (`None`: no limit).
    pub max: Option<u64>,
}

impl Default for ReadRange {
    fn default() -> Self {
        Self::all()
    }
}

impl ReadRange {
    /// Every event.
    pub fn all() -> Self {
        Self {
            from: 1,
            to: None,
            max: None,
        }
    }

    /// From `seq` (inclusive) to the end.
    pub fn from(seq: u64) -> Self {
        Self {
            from: seq,
            ..Self::all()
        }
    }

    pub fn to(mut self, seq: u64) -> Self {
        self.to = Some(seq);
        self
    }

    pub fn max(mut self, n: u64) -> Self {
        self.max = Some(n);
        self
    }
}

/// Walks frames in seq order across segments: the shared engine of
/// [`read`], [`highest_seq`] and [`super::follow`]. It checks that seqs
/// follow one another across frames and segments, and it re-checks a
/// finished segment to its end before moving on (the writer finishes a
/// segment before it creates the next one).
pub(crate) struct Cursor {
    dir: PathBuf,
    /// Where to start when no segment is open yet.
    start_seq: u64,
    /// Frames entirely below this seq are not decoded (only their heads).
    skip_below: u64,
    /// The open segment, its first seq and its path.
    scan: Option<(SegmentScan, u64, PathBuf)>,
    /// The next seq the journal must contain.
    expected: Option<u64>,
    /// A newer segment exists: the current one is being read to its end a
    /// last time.
    final_pass: bool,
    /// The offset of a bad or incomplete frame with a valid one after it,
    /// seen once: corruption only if a fresh read sees it again (a reader
    /// racing a write, or a recovery that truncated and rewrote the tail,
    /// can see stale bytes once).
    suspect: Option<u64>,
}

impl Cursor {
    pub(crate) fn new(dir: &Path, start_seq: u64, skip_below: u64) -> Self {
        Self {
            dir: dir.to_path_buf(),
            start_seq,
            skip_below,
            scan: None,
            expected: None,
            final_pass: false,
            suspect: None,
        }
    }

    fn corrupt(path: &Path, offset: u64, reason: String) -> JournalError {
        JournalError::Corrupt {
            segment: path.to_path_buf(),
            offset,
            reason,
        }
    }

    /// Opens the segment to read next: the one holding `start_seq` at first,
    /// then the one after `after`. `Ok(false)`: none yet.
    fn open_next(&mut self, after: Option<u64>) -> Result<bool, JournalError> {
        let segs = list_segments(&self.dir)?;
        let pick = match after {
            None => segs
                .iter()
                .rposition(|s| s.first_seq <= self.start_seq)
                .or(if segs.is_empty() { None } else { Some(0) }),
            Some(cur) => segs.iter().position(|s| s.first_seq > cur),
        };
        let Some(i) = pick else { return Ok(false) };
        let seg = &segs[i];
        let is_last = i + 1 == segs.len();
        match SegmentScan::open(&seg.path)? {
            Ok((scan, header)) => {
                if header.first_seq != seg.first_seq {
                    return Err(Self::corrupt(
                        &seg.path,
                        0,
                        format!(
                            "header says the segment starts at seq {}, its name says {}",
                            header.first_seq, seg.first_seq
                        ),
                    ));
                }
                if let Some(e) = self.expected {
                    if header.first_seq != e {
                        return Err(Self::corrupt(
                            &seg.path,
                            0,
                            format!("segment starts at seq {}, expected {e}", header.first_seq),
                        ));
                    }
                }
                self.expected = Some(header.first_seq);
                self.scan = Some((scan, header.first_seq, seg.path.clone()));
                Ok(true)
            }
            Err(HeaderProblem::Newer(found)) => Err(JournalError::NewerFormat {
                segment: seg.path.clone(),
                found,
                supported: FORMAT_VERSION,
            }),
            Err(problem) => {
                let len = std::fs::metadata(&seg.path).map(|m| m.len()).unwrap_or(0);
                if is_last && len <= HEADER_LEN as u64 {
                    // Being created right now, or a torn creation the next
                    // writer will remove: nothing written yet.
                    Ok(false)
                } else {
                    Err(Self::corrupt(&seg.path, 0, problem.to_string()))
                }
            }
        }
    }

    /// The next frame's head, its events handed to `out` (unless the
    /// whole frame is below the cursor's range); `None` when nothing more is
    /// written yet.
    pub(crate) fn next_frame(
        &mut self,
        out: &mut impl FrameSink,
    ) -> Result<Option<FrameHead>, JournalError> {
        loop {
            let Some((mut scan, first, path)) = self.scan.take() else {
                if self.open_next(None)? {
                    continue;
                }
                return Ok(None);
            };
            let expected = self.expected.unwrap_or(first);
            let problem = match scan.next_step()? {
                Step::Frame { offset, payload } => {
                    let (head, records_at) = decode_head_len(payload, &path, offset)?;
                    if head.first_seq != expected {
                        return Err(Self::corrupt(
                            &path,
                            offset,
                            format!(
                                "frame starts at seq {}, expected {expected}",
                                head.first_seq
                            ),
                        ));
                    }
                    if head.last_seq() >= self.skip_below {
                        out.frame(FrameRef {
                            payload,
                            head,
                            records_at,
                            segment: &path,
                            offset,
                        })?;
                    }
                    self.expected = Some(head.last_seq() + 1);
                    self.suspect = None;
                    self.scan = Some((scan, first, path));
                    return Ok(Some(head));
                }
                Step::End => None,
                Step::Incomplete { offset, bytes } => {
                    Some((offset, format!("incomplete frame ({bytes} bytes)")))
                }
                Step::Bad { offset, problem } => Some((offset, problem.to_string())),
            };
            if self.final_pass {
                // A later segment exists, so this one is finished.
                if let Some((offset, reason)) = problem {
                    return Err(Self::corrupt(
                        &path,
                        offset,
                        format!("{reason} in a finished segment (a later segment exists)"),
                    ));
                }
                self.final_pass = false;
                if self.open_next(Some(first))? {
                    continue;
                }
                // The later segment vanished or is still being created.
                self.scan = Some((scan, first, path));
                return Ok(None);
            }
            let newer = list_segments(&self.dir)?
                .iter()
                .any(|s| s.first_seq > first);
            if newer {
                // Frames may have been added after our last read and before
                // the roll: read this segment to its end once more.
                self.final_pass = true;
                scan.rewind();
                self.scan = Some((scan, first, path));
                continue;
            }
            if let Some((offset, reason)) = problem {
                if let Some(at) = scan.valid_frame_after(offset, expected)? {
                    if self.suspect == Some(offset) {
                        return Err(Self::corrupt(
                            &path,
                            offset,
                            format!("{reason}, and a valid frame follows at byte {at}"),
                        ));
                    }
                    // Read it again from the file before calling it corrupt:
                    // the writer only appends, so whatever preceded the valid
                    // frame just seen is in place for a read starting now.
                    self.suspect = Some(offset);
                    scan.rewind();
                    self.scan = Some((scan, first, path));
                    continue;
                }
            }
            // Not written yet: next time, re-read from the last whole frame.
            scan.rewind();
            self.scan = Some((scan, first, path));
            return Ok(None);
        }
    }
}

/// An iterator over a range of the journal ([`read`]). It fuses after an
/// error.
pub struct JournalReader {
    cursor: Cursor,
    range: ReadRange,
    pending: VecDeque<Envelope>,
    emitted: u64,
    done: bool,
}

impl Iterator for JournalReader {
    type Item = Result<Envelope, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if let Some(env) = self.pending.pop_front() {
                if env.seq < self.range.from {
                    continue;
                }
                if self.range.to.is_some_and(|to| env.seq > to)
                    || self.range.max.is_some_and(|m| self.emitted >= m)
                {
                    self.done = true;
                    return None;
                }
                self.emitted += 1;
                return Some(Ok(env));
            }
            match self.cursor.next_frame(&mut Collect::new(&mut self.pending)) {
                Ok(Some(head)) => {
                    if self.range.to.is_some_and(|to| head.first_seq > to) {
                        self.done = true;
                        return None;
                    }
                }
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Reads a range of the journal in `dir` (no lock; a writer may be
/// appending). After compaction, events before the first remaining segment
/// are gone and reading starts at the first one left ([`first_seq`]).
pub fn read(dir: &Path, range: ReadRange) -> Result<JournalReader, JournalError> {
    let from = range.from.max(1);
    let empty = range.max == Some(0) || range.to.is_some_and(|to| to < from);
    Ok(JournalReader {
        cursor: Cursor::new(dir, from, from),
        range: ReadRange { from, ..range },
        pending: VecDeque::new(),
        emitted: 0,
        done: empty,
    })
}

/// The highest seq in the journal (0: empty). Reads only the last segment's
/// frame heads.
pub fn highest_seq(dir: &Path) -> Result<u64, JournalError> {
    let segs = list_segments(dir)?;
    let Some(last) = segs.last() else {
        return Ok(0);
    };
    let mut cursor = Cursor::new(dir, last.first_seq, u64::MAX);
    let mut highest = last.first_seq.saturating_sub(1);
    // Skipping every frame: the sink never sees a record.
    let mut none: VecDeque<Envelope> = VecDeque::new();
    while let Some(head) = cursor.next_frame(&mut Collect::new(&mut none))? {
        highest = head.last_seq();
    }
    Ok(highest)
}

/// The seq the journal starts at: 1, or later once compaction removed old
/// segments.
pub fn first_seq(dir: &Path) -> Result<u64, JournalError> {
    Ok(list_segments(dir)?.first().map_or(1, |s| s.first_seq))
}
