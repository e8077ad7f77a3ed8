//! The journal's errors.
//!
//! [`JournalError`] is `Clone` because one failed `fdatasync` answers every
//! caller whose batch was in that group commit with the same error.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything that can go wrong in the journal. Messages name the file and,
/// for corruption, the byte offset.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// A file-system operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },

    /// Another process (or another writer in this process) holds the
    /// journal's writer lock.
    #[error(
        "the journal in {} is locked by another writer ({}); only one process may write a workspace's journal",
        dir.display(),
        pid.map(|p| format!("pid {p}")).unwrap_or_else(|| "pid unknown".into())
    )]
    Locked { dir: PathBuf, pid: Option<u32> },

    /// A frame or header is damaged, or sequence numbers do not follow.
    /// Nothing was rewritten; `orca journal repair --truncate-at-corruption`
    /// is the explicit way out.
    #[error("corrupt journal: {} at byte {offset}: {reason}", segment.display())]
    Corrupt {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },

    /// A frame whose checksum is valid does not decode. Damage would have
    /// failed the checksum, so this is a journal written by a newer orca
    /// (an event type this build does not know) or a bug: it is refused,
    /// and `repair` never cuts it.
    #[error(
        "{} at byte {offset}: a frame with a valid checksum cannot be decoded ({reason}); it was probably written by a newer orca that knows more event types: upgrade orca (nothing was changed)",
        segment.display()
    )]
    Undecodable {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },

    /// The segment was written by a newer orca, in a format this build does
    /// not know. It is refused, never guessed at.
    #[error(
        "{} was written by a newer orca (segment format version {found}; this build reads up to {supported}); upgrade orca to read it",
        segment.display()
    )]
    NewerFormat {
        segment: PathBuf,
        found: u16,
        supported: u16,
    },

    /// A record carries an event schema version newer than this build's.
    #[error(
        "{} at byte {offset}: an event has schema version {found}, newer than this build's {supported}; upgrade orca to read it",
        segment.display()
    )]
    NewerSchema {
        segment: PathBuf,
        offset: u64,
        found: u16,
        supported: u16,
    },

    /// `fdatasync` failed. The batches in that group commit may not be
    /// durable, the sync is not retried on the same file, and the writer
    /// refuses every later append.
    #[error(
        "journal fdatasync of {} failed: {reason}; the batch is not acknowledged and the journal refuses appends until its supervisor reopens it",
        path.display()
    )]
    SyncFailed { path: PathBuf, reason: String },

    /// The writer failed earlier (a failed sync or write) and refuses appends.
    #[error("the journal writer failed earlier and refuses appends: {reason}")]
    Failed { reason: String },

    /// The writer actor has stopped.
    #[error("the journal writer has stopped")]
    Stopped,

    /// `append` was given no events.
    #[error("cannot append an empty batch")]
    EmptyBatch,

    /// One batch is larger than a frame may be.
    #[error("a batch of {size} bytes exceeds the journal's {max}-byte frame limit")]
    BatchTooLarge { size: usize, max: usize },

    /// An event could not be encoded.
    #[error("cannot encode a {event_type} event: {reason}")]
    Encode {
        event_type: &'static str,
        reason: String,
    },

    /// The events a fold needs were removed by compaction.
    #[error(
        "the journal in {} starts at seq {first_available} (older segments were compacted), but seq {needed} is needed and no usable snapshot covers it",
        dir.display()
    )]
    Compacted {
        dir: PathBuf,
        first_available: u64,
        needed: u64,
    },

    /// A snapshot name that is not `[A-Za-z0-9_-]{1,64}`.
    #[error("invalid snapshot name {name:?}: use 1-64 characters from [A-Za-z0-9_-]")]
    InvalidName { name: String },

    /// A snapshot could not be written or encoded.
    #[error("snapshot {}: {reason}", path.display())]
    Snapshot { path: PathBuf, reason: String },

    /// The writer actor could not be spawned.
    #[error("cannot start the journal writer actor: {0}")]
    Spawn(String),
}

impl JournalError {
    /// An I/O error with the operation and the path it concerned.
    pub fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        JournalError::Io {
            op,
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }

    /// Whether this is corruption that `repair --truncate-at-corruption`
    /// can cut away.
    pub fn is_corruption(&self) -> bool {
        matches!(self, JournalError::Corrupt { .. })
    }
}

/// `?` on I/O results with the operation and path attached.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, JournalError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, JournalError> {
        self.map_err(|e| JournalError::io(op, path, e))
    }
}
