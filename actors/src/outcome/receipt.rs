//! The one receipt builder and the one receipt-file writer.

use std::path::Path;

use crate::runtime::UsageRecord;

use super::judge::Judgement;
use crate::host::ExitInfo;
use crate::model::{bounded, ArtifactRef, AttemptRef, Receipt, Timestamp};
use crate::redact::Secrets;
use crate::workspace::Workspace;

/// Receipts' summaries are bounded to this many bytes.
pub const SUMMARY_MAX: usize = 600;

/// What is known of an attempt before its judgement: everything its
/// receipt holds but the result.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiptDraft {
    pub attempt: AttemptRef,
    /// The worker slot.
    pub worker: String,
    pub started: Timestamp,
    /// How its process ended (none: it never started).
    pub exit: Option<ExitInfo>,
    pub artifacts: Vec<ArtifactRef>,
    /// Notes appended to the summary (artifacts left behind, leftovers
    /// stopped, …).
    pub notes: Vec<String>,
}

impl ReceiptDraft {
    pub fn new(attempt: AttemptRef, worker: String, started: Timestamp) -> Self {
        Self {
            attempt,
            worker,
            started,
            exit: None,
            artifacts: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The receipt for `j`: its summary is the judgement's reason and the
    /// notes, secrets redacted, bounded to [`SUMMARY_MAX`].
    pub fn receipt(&self, j: &Judgement, secrets: &Secrets, finished: Timestamp) -> Receipt {
        let mut summary = secrets.redact(&j.reason);
        for n in &self.notes {
            summary.push_str("; ");
            summary.push_str(&secrets.redact(n));
        }
        Receipt {
            run: self.attempt.run.clone(),
            task: self.attempt.task.clone(),
            worker: self.worker.clone(),
            attempt: self.attempt.attempt,
            result: j.result,
            failure_source: j.source,
            class: j.class,
            score: j.score.clone(),
            exit_code: self.exit.and_then(|e| e.code),
            signal: self.exit.and_then(|e| e.signal),
            started: self.started,
            finished,
            duration_ms: finished.millis_since(self.started),
            artifacts: self.artifacts.clone(),
            summary: bounded(&summary, SUMMARY_MAX),
            verdict: None,
        }
    }
}

/// Writes `receipt.json` into `dir` (a convenience copy: the journal is the
/// record). A failure is logged, never fatal.
pub fn write_receipt_file(dir: &Path, receipt: &Receipt, usage: Option<&UsageRecord>) {
    let path = dir.join("receipt.json");
    match serde_json::to_vec_pretty(&ReceiptFile { receipt, usage }) {
        Ok(text) => {
            // Whole or not at all: a reader never sees half a receipt. The
            // directory is there but for an attempt that never started.
            let tmp = dir.join(".receipt.json.tmp");
            let written = match std::fs::write(&tmp, &text) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&tmp, &text))
                }
                r => r,
            };
            if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
                tracing::warn!(path = %path.display(), error = %e, "cannot write receipt.json");
            }
        }
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot encode receipt.json"),
    }
}

/// Writes a receipt's copy into its attempt directory, with the attempt's
/// usage and cost when it reported any.
pub fn write_receipt(ws: &Workspace, receipt: &Receipt, usage: Option<&UsageRecord>) {
    write_receipt_file(
        &ws.attempt_dir(&receipt.run, &receipt.task, receipt.attempt),
        receipt,
        usage,
    );
}

/// `receipt.json`: the receipt's fields, and `usage` beside them.
#[derive(serde::Serialize)]
struct ReceiptFile<'a> {
    #[serde(flatten)]
    receipt: &'a Receipt,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a UsageRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::judge::Judgement;

    #[test]
    fn the_receipt_file_is_written_whole_with_or_without_its_directory() {
        let ws = tempfile::tempdir().unwrap();
        let draft = ReceiptDraft::new(
            crate::model::AttemptRef::new("r-1", "lint", 1),
            "local-1".into(),
            Timestamp(1_000_000_000),
        );
        let receipt = |reason: &str| {
            draft.receipt(
                &Judgement::pass(reason),
                &Secrets::default(),
                Timestamp(2_000_000_000),
            )
        };
        let read = |dir: &Path| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(dir.join("receipt.json")).unwrap()).unwrap()
        };
        // An attempt that never started has no directory yet.
        let dir = ws.path().join("runs/r-1/lint/1");
        write_receipt_file(&dir, &receipt("first"), None);
        assert_eq!(read(&dir)["summary"], "first");
        // A verdict rewrites it in place; no temporary file is left.
        write_receipt_file(&dir, &receipt("second"), None);
        assert_eq!(read(&dir)["summary"], "second");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["receipt.json"]);
    }
}
