//! Scanning a journal, recovering it on open, verifying it, repairing it.
//!
//! The rules (docs/journal.md, "Recovery"):
//! - every segment's header must be valid, its first seq must match its file
//!   name and follow the previous segment's last seq, and every frame's
//!   first seq must follow the previous frame's last;
//! - a problem in the **last** segment after which no valid frame follows
//!   (a partial frame, a bad checksum in the very last frame, garbage or
//!   zeros at the end) is a *torn tail*: opening for write truncates it to
//!   the last good frame and warns with the number of bytes dropped; a last
//!   segment whose header itself is torn (creation interrupted) is removed;
//! - any other problem is *corruption*: opening fails naming the segment
//!   and byte offset, and nothing is rewritten. `repair
//!   --truncate-at-corruption` is the explicit operator action; it keeps a
//!   backup of everything it cuts.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{IoContext as _, JournalError};
use super::lock::WriterLock;
use super::segment::{
    decode_frame, decode_head, list_segments, sync_dir, HeaderProblem, SegmentFile, SegmentScan,
    Step, FORMAT_VERSION, HEADER_LEN,
};
use super::writer::{SyncKind, Syncer};
use crate::model::Timestamp;

/// One segment as a scan found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SegmentSummary {
    pub path: PathBuf,
    pub first_seq: u64,
    /// Seq of its last good event; `None` when it holds no frame yet.
    pub last_seq: Option<u64>,
    pub frames: u64,
    pub events: u64,
    /// File length.
    pub bytes: u64,
}

/// A torn tail: what opening for write will drop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TornTail {
    pub segment: PathBuf,
    /// Where the last complete frame ends (the file is truncated here).
    pub offset: u64,
    /// Bytes after `offset`.
    pub bytes: u64,
    pub reason: String,
    /// The segment's header itself is torn: the whole file goes.
    pub whole_segment: bool,
}

impl TornTail {
    /// The warning recovery reports.
    pub fn warning(&self) -> String {
        if self.whole_segment {
            format!(
                "torn tail: removed {} ({} bytes; its creation was interrupted: {})",
                self.segment.display(),
                self.bytes,
                self.reason
            )
        } else {
            format!(
                "torn tail: dropped {} bytes of {} at byte {} ({}); the journal ends with the last complete frame",
                self.bytes,
                self.segment.display(),
                self.offset,
                self.reason
            )
        }
    }
}

/// Corruption: a damaged frame or header with good data after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Corruption {
    pub segment: PathBuf,
    pub offset: u64,
    pub reason: String,
}

impl Corruption {
    pub fn to_error(&self) -> JournalError {
        JournalError::Corrupt {
            segment: self.segment.clone(),
            offset: self.offset,
            reason: self.reason.clone(),
        }
    }
}

/// What a scan of the whole journal found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    pub segments: Vec<SegmentSummary>,
    /// Seq of the first event still in the journal (`None`: no events).
    pub first_seq: Option<u64>,
    /// Seq of the last good event (0: none).
    pub last_seq: u64,
    pub frames: u64,
    pub events: u64,
    /// Total bytes of the segment files.
    pub bytes: u64,
    pub torn_tail: Option<TornTail>,
    /// Set when the scan stopped at corruption (nothing after it was read).
    pub corruption: Option<Corruption>,
    /// Timestamp of the last good frame.
    #[serde(skip)]
    pub last_at: Option<Timestamp>,
}

impl ScanReport {
    /// No corruption (a torn tail is normal after a crash).
    pub fn is_ok(&self) -> bool {
        self.corruption.is_none()
    }
}

/// Scans every segment. `deep` also decodes every record (verify); without
/// it only frame heads are decoded (open, stats). Errors are things a scan
/// cannot classify: I/O errors and data from a newer orca.
pub fn scan(dir: &Path, deep: bool) -> Result<ScanReport, JournalError> {
    let segments = list_segments(dir)?;
    let mut report = ScanReport::default();
    let mut expected: Option<u64> = None;
    let count = segments.len();
    'segments: for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == count;
        let len = std::fs::metadata(&seg.path).ctx("stat", &seg.path)?.len();
        report.bytes += len;
        let corrupt = |offset: u64, reason: String| Corruption {
            segment: seg.path.clone(),
            offset,
            reason,
        };
        let (mut scan, header) = match SegmentScan::open(&seg.path)? {
            Ok(ok) => ok,
            Err(HeaderProblem::Newer(found)) => {
                return Err(JournalError::NewerFormat {
                    segment: seg.path.clone(),
                    found,
                    supported: FORMAT_VERSION,
                })
            }
            Err(problem) => {
                if last && len <= HEADER_LEN as u64 {
                    report.torn_tail = Some(TornTail {
                        segment: seg.path.clone(),
                        offset: 0,
                        bytes: len,
                        reason: problem.to_string(),
                        whole_segment: true,
                    });
                } else {
                    report.corruption = Some(corrupt(0, problem.to_string()));
                }
                break;
            }
        };
        if header.first_seq != seg.first_seq {
            report.corruption = Some(corrupt(
                0,
                format!(
                    "header says the segment starts at seq {}, its name says {}",
                    header.first_seq, seg.first_seq
                ),
            ));
            break;
        }
        if let Some(e) = expected {
            if header.first_seq != e {
                report.corruption = Some(corrupt(
                    0,
                    format!("segment starts at seq {}, expected {e}", header.first_seq),
                ));
                break;
            }
        }
        let mut summary = SegmentSummary {
            path: seg.path.clone(),
            first_seq: header.first_seq,
            last_seq: None,
            frames: 0,
            events: 0,
            bytes: len,
        };
        let mut next = header.first_seq;
        loop {
            let (offset, reason) = match scan.next_step()? {
                Step::Frame { offset, payload } => {
                    let head = if deep {
                        decode_frame(payload, &seg.path, offset)?.0
                    } else {
                        decode_head(payload, &seg.path, offset)?
                    };
                    if head.first_seq != next {
                        report.corruption = Some(corrupt(
                            offset,
                            format!("frame starts at seq {}, expected {next}", head.first_seq),
                        ));
                        report.segments.push(summary);
                        break 'segments;
                    }
                    next = head.last_seq() + 1;
                    summary.last_seq = Some(head.last_seq());
                    summary.frames += 1;
                    summary.events += u64::from(head.count);
                    report.last_at = Some(head.at);
                    continue;
                }
                Step::End => break,
                Step::Incomplete { offset, bytes } => {
                    (offset, format!("incomplete frame ({bytes} bytes)"))
                }
                Step::Bad { offset, problem } => (offset, problem.to_string()),
            };
            if !last {
                report.corruption = Some(corrupt(
                    offset,
                    format!("{reason} in a finished segment (a later segment exists)"),
                ));
                report.segments.push(summary);
                break 'segments;
            }
            if let Some(at) = scan.valid_frame_after(offset, next)? {
                report.corruption = Some(corrupt(
                    offset,
                    format!("{reason}, and a valid frame follows at byte {at}"),
                ));
                report.segments.push(summary);
                break 'segments;
            }
            report.torn_tail = Some(TornTail {
                segment: seg.path.clone(),
                offset,
                bytes: len.saturating_sub(offset),
                reason,
                whole_segment: false,
            });
            break;
        }
        expected = Some(next);
        report.segments.push(summary);
    }
    for s in &report.segments {
        if s.events > 0 {
            report.first_seq.get_or_insert(s.first_seq);
        }
        if let Some(l) = s.last_seq {
            report.last_seq = l;
        }
        report.frames += s.frames;
        report.events += s.events;
    }
    Ok(report)
}

/// What the writer found and fixed when it opened the journal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The last durable seq: the next append gets `last_seq + 1`.
    pub last_seq: u64,
    /// e.g. `torn tail: dropped N bytes of <file> at byte <offset> (…)`.
    pub warnings: Vec<String>,
    /// Segments in the journal after recovery.
    pub segments: usize,
    /// Bytes dropped from a torn tail.
    pub dropped_bytes: u64,
}

/// The recovered state the writer continues from.
pub(crate) struct Recovered {
    pub report: RecoveryReport,
    pub last_at: Timestamp,
    /// The segment appends continue in (`None`: create the first one).
    pub active: Option<(SegmentFile, u64)>,
}

/// Recovers `dir` for writing (the caller holds the lock): fails on
/// corruption, truncates a torn tail.
pub(crate) fn recover(dir: &Path, syncer: &Syncer) -> Result<Recovered, JournalError> {
    let report = scan(dir, false)?;
    if let Some(c) = &report.corruption {
        return Err(c.to_error());
    }
    let mut warnings = Vec::new();
    let mut dropped = 0;
    let mut segments: Vec<&SegmentSummary> = report.segments.iter().collect();
    if let Some(t) = &report.torn_tail {
        if t.whole_segment {
            std::fs::remove_file(&t.segment).ctx("remove the torn segment", &t.segment)?;
            syncer.sync_dir(dir)?;
            segments.retain(|s| s.path != t.segment);
        } else {
            let f = OpenOptions::new()
                .write(true)
                .open(&t.segment)
                .ctx("open for truncation", &t.segment)?;
            f.set_len(t.offset)
                .ctx("truncate the torn tail of", &t.segment)?;
            syncer
                .sync(SyncKind::Truncate, &f, &t.segment)
                .ctx("fsync", &t.segment)?;
        }
        dropped = t.bytes;
        let w = t.warning();
        tracing::warn!(journal = %dir.display(), "{w}");
        warnings.push(w);
    }
    let active = match segments.last() {
        Some(s) => {
            let len = if report
                .torn_tail
                .as_ref()
                .is_some_and(|t| t.segment == s.path)
            {
                report.torn_tail.as_ref().map_or(s.bytes, |t| t.offset)
            } else {
                s.bytes
            };
            Some((
                SegmentFile {
                    path: s.path.clone(),
                    first_seq: s.first_seq,
                },
                len,
            ))
        }
        None => None,
    };
    // The next seq follows the last good event, or the (empty) active
    // segment's first seq.
    let last_seq = match segments.last() {
        Some(s) => s.last_seq.unwrap_or(s.first_seq - 1).max(report.last_seq),
        None => report.last_seq,
    };
    Ok(Recovered {
        report: RecoveryReport {
            last_seq,
            warnings,
            segments: segments.len(),
            dropped_bytes: dropped,
        },
        last_at: report.last_at.unwrap_or(Timestamp(i64::MIN)),
        active,
    })
}

/// `orca journal verify`: a deep scan without opening for write (no lock,
/// nothing changed).
pub fn verify(dir: &Path) -> Result<ScanReport, JournalError> {
    scan(dir, true)
}

/// `orca journal stats`: a shallow scan (frame heads only).
pub fn stats(dir: &Path) -> Result<ScanReport, JournalError> {
    scan(dir, false)
}

/// What `repair --truncate-at-corruption` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RepairReport {
    /// The segment cut and where (`None`: nothing to repair).
    pub cut_segment: Option<PathBuf>,
    pub cut_offset: u64,
    /// Bytes removed from the cut segment (all of it when cut at 0).
    pub cut_bytes: u64,
    /// Later segments moved out of the journal.
    pub moved_segments: Vec<PathBuf>,
    /// Where everything cut was saved.
    pub backup_dir: Option<PathBuf>,
    /// Why it was cut.
    pub reason: String,
    /// The journal's last seq after the repair.
    pub last_seq: u64,
}

/// Cuts the journal at its first corruption (or torn tail), keeping a
/// backup of every byte removed under `<dir>/backup/<time>/`. Takes the
/// writer lock, so it refuses to run while a writer is open. Data from a
/// newer orca is never cut.
pub fn repair_truncate_at_corruption(dir: &Path) -> Result<RepairReport, JournalError> {
    let _lock = WriterLock::acquire(dir)?;
    let report = scan(dir, true)?;
    let (segment, offset, reason, whole) = match (&report.corruption, &report.torn_tail) {
        (Some(c), _) => (c.segment.clone(), c.offset, c.reason.clone(), c.offset == 0),
        (None, Some(t)) => (
            t.segment.clone(),
            t.offset,
            t.reason.clone(),
            t.whole_segment,
        ),
        (None, None) => {
            return Ok(RepairReport {
                last_seq: report.last_seq,
                ..RepairReport::default()
            })
        }
    };
    let backup = dir.join("backup").join(
        Timestamp::now()
            .to_datetime()
            .format("%Y%m%dT%H%M%S%.9fZ")
            .to_string(),
    );
    std::fs::create_dir_all(&backup).ctx("create the backup directory", &backup)?;
    let name = segment
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let len = std::fs::metadata(&segment).ctx("stat", &segment)?.len();
    if whole {
        std::fs::rename(&segment, backup.join(&name)).ctx("move to the backup", &segment)?;
    } else {
        let mut tail = vec![0u8; len.saturating_sub(offset) as usize];
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&segment)
            .ctx("open", &segment)?;
        let n = super::segment::read_full_at(&f, &mut tail, offset).ctx("read", &segment)?;
        tail.truncate(n);
        let cut_path = backup.join(format!("{name}.from-byte-{offset}"));
        let mut out = File::create(&cut_path).ctx("create", &cut_path)?;
        out.write_all(&tail).ctx("write", &cut_path)?;
        out.sync_all().ctx("fsync", &cut_path)?;
        f.set_len(offset).ctx("truncate", &segment)?;
        f.sync_all().ctx("fsync", &segment)?;
    }
    let mut moved = Vec::new();
    let cut_first = super::segment::parse_segment_name(&name).unwrap_or(0);
    for later in list_segments(dir)?
        .into_iter()
        .filter(|s| s.first_seq > cut_first)
    {
        let to = backup.join(later.path.file_name().unwrap_or_default());
        std::fs::rename(&later.path, &to).ctx("move to the backup", &later.path)?;
        moved.push(later.path);
    }
    sync_dir(&backup)?;
    sync_dir(dir)?;
    let after = scan(dir, false)?;
    Ok(RepairReport {
        cut_segment: Some(segment),
        cut_offset: offset,
        cut_bytes: if whole {
            len
        } else {
            len.saturating_sub(offset)
        },
        moved_segments: moved,
        backup_dir: Some(backup),
        reason,
        last_seq: after.last_seq,
    })
}

/// Reopening after a failure (the caller holds the lock): removes every
/// frame after seq `acknowledged`, the last one whose caller was answered
/// `Ok`. Their callers were answered with an error, so whatever of them
/// reached the disk must not come back: "refused" stays "absent". Later
/// segments are removed; the segment holding the first dropped frame is
/// truncated before it. A frame that straddles `acknowledged` is kept
/// (acknowledgements are whole batches, so it cannot happen). Returns a
/// warning when something was dropped.
pub(crate) fn drop_unacknowledged(
    dir: &Path,
    acknowledged: u64,
    syncer: &Syncer,
) -> Result<Option<String>, JournalError> {
    let segments = list_segments(dir)?;
    let mut dropped_bytes = 0u64;
    let mut dropped_files = 0u32;
    let mut truncated = false;
    for seg in segments.iter().rev() {
        let len = std::fs::metadata(&seg.path).ctx("stat", &seg.path)?.len();
        if seg.first_seq > acknowledged.saturating_add(1) {
            std::fs::remove_file(&seg.path).ctx("remove the unacknowledged segment", &seg.path)?;
            dropped_bytes += len;
            dropped_files += 1;
            continue;
        }
        // The segment that holds the boundary: cut before the first frame
        // past `acknowledged` (a torn tail is left to `recover`).
        let Ok((mut scan, _header)) = SegmentScan::open(&seg.path)? else {
            break;
        };
        let mut cut = None;
        while let Step::Frame { offset, payload } = scan.next_step()? {
            let head = decode_head(payload, &seg.path, offset)?;
            if head.first_seq > acknowledged {
                cut = Some(offset);
                break;
            }
        }
        if let Some(offset) = cut {
            let f = OpenOptions::new()
                .write(true)
                .open(&seg.path)
                .ctx("open for truncation", &seg.path)?;
            f.set_len(offset)
                .ctx("truncate the unacknowledged tail of", &seg.path)?;
            syncer
                .sync(SyncKind::Truncate, &f, &seg.path)
                .ctx("fsync", &seg.path)?;
            dropped_bytes += len - offset;
            truncated = true;
        }
        break;
    }
    if dropped_files > 0 {
        syncer.sync_dir(dir)?;
    }
    if dropped_files == 0 && !truncated {
        return Ok(None);
    }
    let w = format!(
        "reopening after a failure: dropped {dropped_bytes} bytes after seq {acknowledged} \
         (batches whose appends were refused; {dropped_files} whole segment(s))"
    );
    tracing::warn!(journal = %dir.display(), "{w}");
    Ok(Some(w))
}
