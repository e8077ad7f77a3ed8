//! Compaction: removing segments the snapshots make unnecessary, so a
//! long-lived workspace's journal does not grow without bound.
//!
//! A segment is removed only if every event in it is covered by the newest
//! valid snapshot of *every* snapshot name in the snapshot directory (the
//! oldest of those newest snapshots decides), it is not among the
//! `keep_segments` most recent segments, and it is not the last (active)
//! segment. Segments are removed oldest first, so an interrupted compaction
//! leaves a contiguous journal. A projection that never wrote a snapshot
//! cannot be rebuilt from the beginning after compaction: its fold fails
//! with [`JournalError::Compacted`] rather than starting in the middle.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{IoContext as _, JournalError};
use super::reader::highest_seq;
use super::segment::{list_segments, sync_dir};
use super::snapshot::{check_snapshot_file, list_snapshots};

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
    // The newest valid snapshot per name; the oldest of those bounds what
    // may go.
    let mut covered: Option<u64> = None;
    let mut current: Option<String> = None;
    let mut found_for_current = false;
    for snap in list_snapshots(snapshot_dir)? {
        if current.as_deref() != Some(snap.name.as_str()) {
            if current.is_some() && !found_for_current {
                covered = Some(0);
            }
            current = Some(snap.name.clone());
            found_for_current = false;
        }
        if found_for_current {
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
            Ok(seq) if seq == snap.last_seq => {
                found_for_current = true;
                covered = Some(covered.map_or(seq, |c| c.min(seq)));
            }
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
    if current.is_some() && !found_for_current {
        covered = Some(0);
    }
    report.covered_seq = covered.unwrap_or(0);

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
