//! The event-sourced journal (docs/journal.md describes the format, the
//! durability promise and the recovery rules).
//!
//! - [`open_writer`] takes the workspace's exclusive writer lock, recovers
//!   the journal and spawns the writer actor; [`JournalHandle::append`]
//!   answers once a batch is durable (group commit).
//! - [`read`], [`replay`], [`follow()`] read without a lock, also while a
//!   writer appends, in this process or another.
//! - [`Projection`]s fold envelopes; [`write_snapshot`],
//!   [`load_projection`] and [`Snapshotter`] bound replay time; [`compact()`]
//!   removes segments the snapshots cover.
//! - [`verify`], [`stats`], [`repair_truncate_at_corruption`] back the
//!   `orca journal` commands.
//!
//! Module layout: one file per concern — `event` (the vocabulary),
//! `envelope`, `schema` (record versions and upcasts), `segment` (the
//! on-disk format), `lock`, `writer` (the actor), `recovery`, `reader`,
//! `follow`, `projection`, `snapshot`, `compact`, `error`.

pub mod compact;
pub(crate) mod decode;
pub mod envelope;
pub mod error;
pub mod event;
#[doc(hidden)]
pub mod fixture;
pub mod follow;
pub mod lock;
pub mod projection;
pub mod reader;
pub mod recovery;
pub(crate) mod schema;
pub mod segment;
pub mod snapshot;
pub mod writer;

pub use compact::{compact, CompactReport};
pub use envelope::{AppendAck, Envelope, NewEvent};
pub use error::JournalError;
pub use event::{Event, EVENT_SCHEMA_VERSION};
pub use follow::{follow, Follower};
pub use projection::{replay, Projection};
pub use reader::{first_seq, highest_seq, read, JournalReader, ReadRange};
pub use recovery::{
    repair_truncate_at_corruption, stats, verify, Corruption, RecoveryReport, RepairReport,
    ScanReport, SegmentSummary, TornTail,
};
pub use segment::FORMAT_VERSION;
pub use snapshot::{load_projection, write_snapshot, Snapshotter};
pub use writer::{
    open_writer, JournalHandle, JournalHealth, JournalMsg, JournalOptions, SyncEvent, SyncHook,
    SyncKind, WriterStatus,
};
