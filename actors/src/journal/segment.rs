//! The on-disk format: segment files, their header, frames and frame
//! payloads (docs/journal.md, "On-disk format", is the byte-by-byte
//! description; keep the two in step).
//!
//! ```text
//! segment  = header frame*
//! header   = "ORCAJRNL" u16 version u16 header_len u64 first_seq i64 created u32 crc32c   (32 bytes, LE)
//! frame    = u32 len | u32 crc32c(len bytes ++ payload) | payload[len]                   (LE)
//! payload  = bincode2(varint first_seq, zigzag at, varint count) record{count}
//! record   = bincode2(varint schema_version, string actor, event)
//! ```

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use super::envelope::Envelope;
use super::error::{IoContext as _, JournalError};
use super::event::Event;
use super::schema::{self, Append, RecordError, CONFIG};
use crate::model::Timestamp;

/// The first 8 bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"ORCAJRNL";
/// The segment format this build writes and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;
/// Length of the segment header in format version 1.
pub const HEADER_LEN: usize = 32;
/// `u32 length | u32 crc32c` in front of every payload.
pub const FRAME_HEADER_LEN: usize = 8;
/// The largest payload a frame may have (also bincode's decode limit).
pub const MAX_FRAME_BYTES: usize = 16 << 20;
/// Segment file extension.
pub const SEGMENT_EXT: &str = "seg";

/// The file name of the segment whose first event is `first_seq`.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{SEGMENT_EXT}")
}

/// The first seq in a segment file name, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_EXT)?.strip_suffix('.')?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A segment file found in the journal directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFile {
    pub path: PathBuf,
    /// From the file name (the header must agree).
    pub first_seq: u64,
}

/// The segments in `dir`, oldest first. A missing directory has none.
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>, JournalError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(JournalError::io("list", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.ctx("list", dir)?;
        let name = entry.file_name();
        let Some(first_seq) = name.to_str().and_then(parse_segment_name) else {
            continue;
        };
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if is_file {
            out.push(SegmentFile {
                path: entry.path(),
                first_seq,
            });
        }
    }
    out.sort_by_key(|s| s.first_seq);
    Ok(out)
}

/// A segment's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub version: u16,
    pub first_seq: u64,
    pub created: Timestamp,
}

/// Why a header is not valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Fewer than [`HEADER_LEN`] bytes: the segment's creation was torn.
    Short(usize),
    BadMagic,
    BadChecksum,
    /// A newer format: refuse, never guess.
    Newer(u16),
    /// An impossible header length or version 0.
    Invalid(String),
}

impl std::fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderProblem::Short(n) => {
                write!(f, "segment header is {n} bytes, expected {HEADER_LEN}")
            }
            HeaderProblem::BadMagic => f.write_str("not an orca journal segment (bad magic)"),
            HeaderProblem::BadChecksum => f.write_str("segment header checksum mismatch"),
            HeaderProblem::Newer(v) => write!(
                f,
                "segment format version {v} is newer than this build's {FORMAT_VERSION}"
            ),
            HeaderProblem::Invalid(m) => f.write_str(m),
        }
    }
}

impl SegmentHeader {
    pub fn new(first_seq: u64, created: Timestamp) -> Self {
        Self {
            version: FORMAT_VERSION,
            first_seq,
            created,
        }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        b[12..20].copy_from_slice(&self.first_seq.to_le_bytes());
        b[20..28].copy_from_slice(&self.created.nanos().to_le_bytes());
        let crc = crc32c::crc32c(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self, HeaderProblem> {
        if b.len() < HEADER_LEN {
            return Err(HeaderProblem::Short(b.len()));
        }
        if b[0..8] != SEGMENT_MAGIC {
            return Err(HeaderProblem::BadMagic);
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        // The version is checked before the checksum: a newer format may
        // have a longer header with its checksum elsewhere.
        if version > FORMAT_VERSION {
            return Err(HeaderProblem::Newer(version));
        }
        let crc = u32::from_le_bytes([b[28], b[29], b[30], b[31]]);
        if crc32c::crc32c(&b[0..28]) != crc {
            return Err(HeaderProblem::BadChecksum);
        }
        if version == 0 {
            return Err(HeaderProblem::Invalid("segment format version 0".into()));
        }
        let header_len = u16::from_le_bytes([b[10], b[11]]);
        if usize::from(header_len) != HEADER_LEN {
            return Err(HeaderProblem::Invalid(format!(
                "segment header length {header_len}, expected {HEADER_LEN}"
            )));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[12..20]);
        let mut created = [0u8; 8];
        created.copy_from_slice(&b[20..28]);
        Ok(Self {
            version,
            first_seq: u64::from_le_bytes(seq),
            created: Timestamp(i64::from_le_bytes(created)),
        })
    }
}

/// The CRC32C a frame carries: over the 4 length bytes, then the payload.
pub fn frame_crc(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload)
}

/// The start of every frame payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHead {
    pub first_seq: u64,
    pub at: Timestamp,
    /// Number of records (events); at least 1.
    pub count: u32,
}

impl FrameHead {
    /// Seq of the frame's last event.
    pub fn last_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count).saturating_sub(1)
    }

    /// Appends the encoded head to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // Encoding integers into a Vec cannot fail.
        let _ = bincode::encode_into_writer(self.first_seq, Append(out), CONFIG);
        let _ = bincode::encode_into_writer(self.at.nanos(), Append(out), CONFIG);
        let _ = bincode::encode_into_writer(self.count, Append(out), CONFIG);
    }

    /// Decodes the head at the start of a payload: `(head, bytes used)`.
    pub fn decode(payload: &[u8]) -> Result<(Self, usize), String> {
        let err = |e: bincode::error::DecodeError| format!("undecodable frame head: {e}");
        let (first_seq, a): (u64, usize) =
            bincode::decode_from_slice(payload, CONFIG).map_err(err)?;
        let rest = payload.get(a..).unwrap_or_default();
        let (at, b): (i64, usize) = bincode::decode_from_slice(rest, CONFIG).map_err(err)?;
        let rest = rest.get(b..).unwrap_or_default();
        let (count, c): (u32, usize) = bincode::decode_from_slice(rest, CONFIG).map_err(err)?;
        if count == 0 {
            return Err("frame with no events".into());
        }
        // Every record takes at least 3 bytes (schema, actor length, event
        // variant): a larger count cannot be real, and must not size an
        // allocation.
        if count as usize > payload.len() / 3 {
            return Err(format!(
                "frame claims {count} events in a {}-byte payload",
                payload.len()
            ));
        }
        if first_seq == 0 || first_seq.checked_add(u64::from(count)).is_none() {
            return Err(format!("frame seq {first_seq} out of range"));
        }
        Ok((
            Self {
                first_seq,
                at: Timestamp(at),
                count,
            },
            a + b + c,
        ))
    }
}

/// Encodes a whole frame (length, CRC, head, pre-encoded records) onto `out`.
pub fn encode_frame(out: &mut Vec<u8>, head: &FrameHead, records: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    head.encode_into(out);
    out.extend_from_slice(records);
    let payload_len = out.len() - start - FRAME_HEADER_LEN;
    // Callers bound batches well below MAX_FRAME_BYTES.
    let len_bytes = u32::try_from(payload_len).unwrap_or(u32::MAX).to_le_bytes();
    let crc = frame_crc(len_bytes, &out[start + FRAME_HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes every record of a CRC-checked frame payload into envelopes.
pub fn decode_frame(
    payload: &[u8],
    segment: &Path,
    offset: u64,
) -> Result<(FrameHead, Vec<Envelope>), JournalError> {
    let (head, pos) = decode_head_len(payload, segment, offset)?;
    let mut out = Vec::with_capacity(head.count as usize);
    decode_records_at(
        payload,
        &head,
        pos,
        segment,
        offset,
        &mut Collect::new(&mut out),
    )?;
    Ok((head, out))
}

/// Decodes the records of a frame whose head is `head` onto `out`.
pub fn decode_records(
    payload: &[u8],
    head: &FrameHead,
    segment: &Path,
    offset: u64,
    out: &mut impl Extend<Envelope>,
) -> Result<(), JournalError> {
    let pos = decode_head_len(payload, segment, offset)?.1;
    decode_records_at(payload, head, pos, segment, offset, &mut Collect::new(out))
}

/// Where a frame's records go, one by one, as they are decoded.
pub(crate) trait RecordSink {
    /// Where to decode the next record's event (its old value is replaced).
    fn slot(&mut self) -> &mut Event;
    /// The record with seq `seq`, whose event [`Self::slot`] now holds;
    /// `actor` is borrowed from the frame, so a sink that does not keep it
    /// needs no copy.
    fn record(&mut self, seq: u64, at: Timestamp, actor: &str);
}

/// A checked frame as a [`super::reader::Cursor`] hands it over.
pub(crate) struct FrameRef<'a> {
    pub(crate) payload: &'a [u8],
    pub(crate) head: FrameHead,
    /// Where the records start in `payload` (after the head).
    pub(crate) records_at: usize,
    /// The segment it is in, and its byte offset there (named in errors).
    pub(crate) segment: &'a Path,
    pub(crate) offset: u64,
}

impl FrameRef<'_> {
    /// Decodes the frame's records into `sink`.
    pub(crate) fn decode_into(&self, sink: &mut impl RecordSink) -> Result<(), JournalError> {
        decode_records_at(
            self.payload,
            &self.head,
            self.records_at,
            self.segment,
            self.offset,
            sink,
        )
    }
}

/// Where a [`super::reader::Cursor`] hands each checked frame in its range:
/// decoded on the spot (every [`RecordSink`]), or kept whole to be decoded
/// elsewhere (a parallel replay's chunks).
pub(crate) trait FrameSink {
    fn frame(&mut self, frame: FrameRef<'_>) -> Result<(), JournalError>;
}

impl<S: RecordSink> FrameSink for S {
    #[inline]
    fn frame(&mut self, frame: FrameRef<'_>) -> Result<(), JournalError> {
        frame.decode_into(self)
    }
}

/// Collects envelopes into any `Extend<Envelope>` (a reader's queue).
pub(crate) struct Collect<'a, E: ?Sized> {
    out: &'a mut E,
    event: Event,
}

impl<'a, E: Extend<Envelope> + ?Sized> Collect<'a, E> {
    pub(crate) fn new(out: &'a mut E) -> Self {
        Self {
            out,
            event: Event::placeholder(),
        }
    }
}

impl<E: Extend<Envelope> + ?Sized> RecordSink for Collect<'_, E> {
    fn slot(&mut self) -> &mut Event {
        &mut self.event
    }

    #[inline]
    fn record(&mut self, seq: u64, at: Timestamp, actor: &str) {
        let event = std::mem::replace(&mut self.event, Event::placeholder());
        self.out.extend(std::iter::once(Envelope {
            seq,
            at,
            actor: actor.to_owned(),
            event,
        }));
    }
}

/// Decodes the records of a frame whose head is `head` and takes `pos`
/// bytes (see [`decode_head_len`]) into `sink`.
pub(crate) fn decode_records_at(
    payload: &[u8],
    head: &FrameHead,
    mut pos: usize,
    segment: &Path,
    offset: u64,
    sink: &mut impl RecordSink,
) -> Result<(), JournalError> {
    let undecodable = |reason: String| JournalError::Undecodable {
        segment: segment.to_path_buf(),
        offset,
        reason,
    };
    for i in 0..u64::from(head.count) {
        let rest = payload.get(pos..).unwrap_or_default();
        let (actor, used) = schema::decode_record_into(rest, sink.slot()).map_err(|e| match e {
            RecordError::Newer { found, supported } => JournalError::NewerSchema {
                segment: segment.to_path_buf(),
                offset,
                found,
                supported,
            },
            other => undecodable(format!("record {} of the frame: {other}", i + 1)),
        })?;
        pos += used;
        sink.record(head.first_seq + i, head.at, actor);
    }
    if pos != payload.len() {
        return Err(undecodable(format!(
            "{} trailing bytes after the frame's {} records",
            payload.len() - pos,
            head.count
        )));
    }
    Ok(())
}

/// Decodes only a frame's head (shallow scans: recovery, stats).
pub fn decode_head(payload: &[u8], segment: &Path, offset: u64) -> Result<FrameHead, JournalError> {
    decode_head_len(payload, segment, offset).map(|(h, _)| h)
}

/// A frame's head and the bytes it takes (where the records start).
pub(crate) fn decode_head_len(
    payload: &[u8],
    segment: &Path,
    offset: u64,
) -> Result<(FrameHead, usize), JournalError> {
    FrameHead::decode(payload).map_err(|reason| JournalError::Undecodable {
        segment: segment.to_path_buf(),
        offset,
        reason,
    })
}

/// One step of a [`SegmentScan`].
#[derive(Debug)]
pub enum Step<'a> {
    /// A complete frame whose checksum matches.
    Frame { offset: u64, payload: &'a [u8] },
    /// The file ends exactly after the last frame.
    End,
    /// The bytes from `offset` to the end of the file are not a whole frame
    /// (a writer is writing it, or a crash tore it).
    Incomplete { offset: u64, bytes: u64 },
    /// A whole frame by its length, but its checksum does not match (or its
    /// length is impossible).
    Bad { offset: u64, problem: BadFrame },
}

/// What is wrong with a frame. `Copy`, so a [`Step`] holds no owned data and
/// its borrow of the scan ends with its last use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadFrame {
    Length(usize),
    Checksum,
}

impl std::fmt::Display for BadFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadFrame::Length(n) => write!(f, "impossible frame length {n}"),
            BadFrame::Checksum => f.write_str("frame checksum mismatch"),
        }
    }
}

/// Reads one segment's frames sequentially, in chunks, from any offset.
/// It never writes and never trusts a length it cannot check.
pub struct SegmentScan {
    pub path: PathBuf,
    file: File,
    /// Bytes read from the file (`buf[..end]`), starting at file offset
    /// `buf_pos`. The buffer is kept (zeroed once) across reads and
    /// rewinds: zeroing a fresh chunk before every read cost as much as
    /// checksumming it.
    buf: Vec<u8>,
    /// Index in `buf` of the next frame.
    start: usize,
    /// End of the bytes read into `buf`.
    end: usize,
    /// File offset of `buf[0]`.
    buf_pos: u64,
    eof: bool,
}

const CHUNK: usize = 1 << 20;

impl SegmentScan {
    /// Opens a segment and reads its header. `Ok(Err(problem))` is a header
    /// problem the caller classifies (torn creation or corruption).
    pub fn open(
        path: &Path,
    ) -> Result<Result<(SegmentScan, SegmentHeader), HeaderProblem>, JournalError> {
        let file = File::open(path).ctx("open", path)?;
        let mut head = [0u8; HEADER_LEN];
        let n = read_full_at(&file, &mut head, 0).ctx("read", path)?;
        match SegmentHeader::decode(&head[..n]) {
            Ok(h) => Ok(Ok((
                SegmentScan {
                    path: path.to_path_buf(),
                    file,
                    buf: Vec::new(),
                    start: 0,
                    end: 0,
                    buf_pos: HEADER_LEN as u64,
                    eof: false,
                },
                h,
            ))),
            Err(p) => Ok(Err(p)),
        }
    }

    /// File offset of the next frame.
    pub fn offset(&self) -> u64 {
        self.buf_pos + self.start as u64
    }

    /// Forgets buffered bytes after the last complete frame, so the next
    /// step re-reads the file from there (for tailing a live segment, which
    /// a recovering writer may have truncated and rewritten).
    pub fn rewind(&mut self) {
        self.buf_pos = self.offset();
        self.start = 0;
        self.end = 0;
        self.eof = false;
    }

    /// Continues at `offset` (a frame boundary the caller knows).
    pub fn seek(&mut self, offset: u64) {
        self.buf_pos = offset;
        self.start = 0;
        self.end = 0;
        self.eof = false;
    }

    /// The next frame, or how the segment ends.
    pub fn next_step(&mut self) -> Result<Step<'_>, JournalError> {
        loop {
            let avail = self.end - self.start;
            let need = if avail >= FRAME_HEADER_LEN {
                let s = self.start;
                let len_bytes = [
                    self.buf[s],
                    self.buf[s + 1],
                    self.buf[s + 2],
                    self.buf[s + 3],
                ];
                let len = u32::from_le_bytes(len_bytes) as usize;
                if len == 0 || len > MAX_FRAME_BYTES {
                    return Ok(Step::Bad {
                        offset: self.offset(),
                        problem: BadFrame::Length(len),
                    });
                }
                let total = FRAME_HEADER_LEN + len;
                if avail >= total {
                    let offset = self.offset();
                    let crc = u32::from_le_bytes([
                        self.buf[s + 4],
                        self.buf[s + 5],
                        self.buf[s + 6],
                        self.buf[s + 7],
                    ]);
                    let payload = &self.buf[s + FRAME_HEADER_LEN..s + total];
                    if frame_crc(len_bytes, payload) != crc {
                        return Ok(Step::Bad {
                            offset,
                            problem: BadFrame::Checksum,
                        });
                    }
                    self.start += total;
                    return Ok(Step::Frame {
                        offset,
                        payload: &self.buf[s + FRAME_HEADER_LEN..s + total],
                    });
                }
                total
            } else {
                FRAME_HEADER_LEN
            };
            if self.eof {
                return Ok(if avail == 0 {
                    Step::End
                } else {
                    Step::Incomplete {
                        offset: self.offset(),
                        bytes: avail as u64,
                    }
                });
            }
            self.fill(need)?;
        }
    }

    /// Reads until `need` bytes are buffered past `start`, or end of file.
    fn fill(&mut self, need: usize) -> Result<(), JournalError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.buf_pos += self.start as u64;
            self.start = 0;
        }
        while self.end < need {
            // Room for the frame and at least a chunk more.
            let room = need.max(self.end + CHUNK);
            if self.buf.len() < room {
                self.buf.resize(room, 0);
            }
            let at = self.buf_pos + self.end as u64;
            let n = loop {
                match self.file.read_at(&mut self.buf[self.end..], at) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(JournalError::io("read", &self.path, e)),
                }
            };
            self.end += n;
            if n == 0 {
                self.eof = true;
                break;
            }
        }
        Ok(())
    }

    /// Whether any checksum-valid frame with a seq at least `min_seq` starts
    /// after `offset`: it tells a torn tail (nothing valid follows) from
    /// corruption in the middle (good frames follow a bad one). Reads the
    /// rest of the file.
    pub fn valid_frame_after(
        &self,
        offset: u64,
        min_seq: u64,
    ) -> Result<Option<u64>, JournalError> {
        let len = self.file.metadata().ctx("stat", &self.path)?.len();
        if len <= offset + 1 {
            return Ok(None);
        }
        let mut rest = vec![0u8; (len - offset - 1) as usize];
        let n = read_full_at(&self.file, &mut rest, offset + 1).ctx("read", &self.path)?;
        rest.truncate(n);
        Ok(find_frame(&rest, min_seq).map(|i| offset + 1 + i as u64))
    }
}

/// The first index in `bytes` where a checksum-valid frame with a plausible
/// head (seq at least `min_seq`) starts.
pub fn find_frame(bytes: &[u8], min_seq: u64) -> Option<usize> {
    let n = bytes.len();
    let mut i = 0;
    while i + FRAME_HEADER_LEN < n {
        let len_bytes = [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
        let len = u32::from_le_bytes(len_bytes) as usize;
        if len > 0 && len <= MAX_FRAME_BYTES && i + FRAME_HEADER_LEN + len <= n {
            let payload = &bytes[i + FRAME_HEADER_LEN..i + FRAME_HEADER_LEN + len];
            // Cheap checks first: a plausible head, then the checksum.
            if let Ok((head, _)) = FrameHead::decode(payload) {
                let crc =
                    u32::from_le_bytes([bytes[i + 4], bytes[i + 5], bytes[i + 6], bytes[i + 7]]);
                if head.first_seq >= min_seq && frame_crc(len_bytes, payload) == crc {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

/// `read_at` until `buf` is full or end of file; the number of bytes read.
pub fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// fsyncs a directory (after creating, renaming or removing entries in it).
pub fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("fsync directory", dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_segment_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_segment_name("0000000000000000042.seg"), None);
        assert_eq!(parse_segment_name("00000000000000000042.seg.tmp"), None);
        assert_eq!(parse_segment_name("LOCK"), None);
    }

    #[test]
    fn header_round_trips_and_rejects() {
        let h = SegmentHeader::new(7, Timestamp(123));
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        assert_eq!(
            SegmentHeader::decode(&b[..10]),
            Err(HeaderProblem::Short(10))
        );
        let mut bad = b;
        bad[13] ^= 1;
        assert_eq!(SegmentHeader::decode(&bad), Err(HeaderProblem::BadChecksum));
        let mut newer = b;
        newer[8] = 2;
        assert_eq!(SegmentHeader::decode(&newer), Err(HeaderProblem::Newer(2)));
        let mut magic = b;
        magic[0] = b'X';
        assert_eq!(SegmentHeader::decode(&magic), Err(HeaderProblem::BadMagic));
    }

    #[test]
    fn frame_head_round_trips() {
        let head = FrameHead {
            first_seq: 1 << 40,
            at: Timestamp(-5),
            count: 3,
        };
        let mut out = Vec::new();
        head.encode_into(&mut out);
        assert_eq!(FrameHead::decode(&out), Ok((head, out.len())));
        assert_eq!(head.last_seq(), (1 << 40) + 2);
    }

    #[test]
    fn find_frame_skips_garbage() {
        let mut bytes = vec![0xAB; 13];
        let head = FrameHead {
            first_seq: 5,
            at: Timestamp(1),
            count: 1,
        };
        encode_frame(&mut bytes, &head, &[1, 2, 3]);
        assert_eq!(find_frame(&bytes, 5), Some(13));
        assert_eq!(find_frame(&bytes, 6), None);
        assert_eq!(find_frame(&[0u8; 64], 1), None);
    }
}
