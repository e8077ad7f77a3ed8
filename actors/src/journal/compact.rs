//! Compaction: removing segments the snapshots make unnecessary, so a
//! long-lived workspace's journal does not grow without bound.
//!
//! A segment is removed only if every event in it is covered, for *every*
//! snapshot name in the snapshot directory, by the older of that name's two
//! newest valid snapshots (or its only one) — so a damaged newest snapshot
//! can still fall back to the previous one — it is not among the
//! `keep_segments` most recent segments, and it is not the last (active)
//! segment. Segments are removed oldest first, so an interrupted compaction
//! leaves a contiguous journal. A projection that never wrote a snapshot
//! cannot be rebuilt from the beginning after compaction: its fold fails
//! with [`JournalError::Compacted`] rather than starting in the middle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{IoContext as _, JournalError};
use super::reader::highest_seq;
use super::segment::{list_segments, sync_dir};
use super::snapshot::{check_snapshot_file, list_snapshots, KEEP_SNAPSHOTS};

/// What `compact` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// The seq every snapshot name covers (0: no usable snapshot).
    pub covered_seq: u64,
    pub removed: Vec<PathBuf>,
    pub removed_bytes: u64,
    /// Segments left.
    pub kept: usize,
    /// Snapshots that were ignored, and why.
    pub warnings: Vec<String>,
}

/// Removes segments wholly covered by the snapshots in `snapshot_dir`,
/// keeping the `keep_segments` most recent ones (and always the last). Safe
/// while a writer appends (it only ever touches the last segment) and while
/// readers read (an open segment stays readable after removal).
pub fn compact(
    journal_dir: &Path,
    snapshot_dir: &Path,
    keep_segments: u32,
) -> Result<CompactReport, JournalError> {
    let mut report = CompactReport::default();
    let highest = highest_seq(journal_dir)?;
    // Per name, the older of its two newest valid snapshots (or its only
    // one): if the newest is damaged later, or a reader loaded the previous
    // one just before this compaction, the events after that one are still
    // here. The lowest of those over every name bounds what may go; a name
    // with no valid snapshot keeps everything.
    // Every name, with its valid snapshots' seqs, newest first (at most
    // KEEP_SNAPSHOTS of them).
    let mut valid: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for snap in list_snapshots(snapshot_dir)? {
        let seqs = valid.entry(snap.name.clone()).or_default();
        if seqs.len() >= KEEP_SNAPSHOTS {
            continue;
        }
        if snap.last_seq > highest {
            report.warnings.push(format!(
                "snapshot {} is ahead of the journal (seq {} > last seq {highest}); ignored",
                snap.path.display(),
                snap.last_seq
            ));
            continue;
        }
        match check_snapshot_file(&snap.path) {
            Ok(seq) if seq == snap.last_seq => seqs.push(seq),
            Ok(seq) => report.warnings.push(format!(
                "snapshot {} says seq {seq}, its name {}; ignored",
                snap.path.display(),
                snap.last_seq
            )),
            Err(reason) => report.warnings.push(format!(
                "snapshot {} is unreadable ({reason}); ignored",
                snap.path.display()
            )),
        }
    }
    report.covered_seq = valid
        .values()
        .map(|seqs| seqs.last().copied().unwrap_or(0))
        .min()
        .unwrap_or(0);

    let segments = list_segments(journal_dir)?;
    let keep = (keep_segments as usize).max(1);
    let removable = segments.len().saturating_sub(keep);
    for (i, seg) in segments.iter().enumerate().take(removable) {
        // Every event of segment i is below the next segment's first seq.
        let last_in_segment = segments[i + 1].first_seq - 1;
        if last_in_segment > report.covered_seq {
            break;
        }
        let len = std::fs::metadata(&seg.path).map(|m| m.len()).unwrap_or(0);
        std::fs::remove_file(&seg.path).ctx("remove", &seg.path)?;
        report.removed.push(seg.path.clone());
        report.removed_bytes += len;
    }
    if !report.removed.is_empty() {
        sync_dir(journal_dir)?;
    }
    report.kept = segments.len() - report.removed.len();
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    Ok(report)
}
