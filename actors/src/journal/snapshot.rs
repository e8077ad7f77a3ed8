//! Snapshots: a projection's state plus the last seq it reflects, so a fold
//! replays only what came after.
//!
//! A snapshot file is `<snapshot_dir>/<name>-<last_seq:020>.snap`:
//!
//! ```text
//! 0..8   "ORCASNAP"
//! 8..10  u16 format version (1)
//! 10..12 u16 reserved (0)
//! 12..20 u64 last_seq
//! 20..28 u64 payload length
//! 28..32 u32 crc32c(bytes 0..28 ++ payload)
//! 32..   payload: the projection, bincode 2 (serde, standard config)
//! ```
//!
//! It is written atomically: a temporary file, `fsync`, `rename`, directory
//! `fsync`. The projection type follows the journal's bincode rules (plain
//! structs, externally tagged enums, no flatten / untagged / skip). When a
//! projection's shape changes, change its snapshot name (`runs-v2`): old
//! snapshots are then simply not found and the fold replays the journal.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::envelope::Envelope;
use super::error::{IoContext as _, JournalError};
use super::projection::{replay, Projection};
use super::reader::{first_seq, highest_seq};
use super::schema;
use super::segment::sync_dir;

/// The first 8 bytes of every snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"ORCASNAP";
/// The snapshot format this build writes and reads.
pub const SNAPSHOT_VERSION: u16 = 1;
const SNAPSHOT_HEADER_LEN: usize = 32;
const SNAPSHOT_EXT: &str = "snap";
/// Snapshots kept per name (the newest ones).
pub const KEEP_SNAPSHOTS: usize = 2;

/// Whether `name` may name a snapshot: `[A-Za-z0-9_-]{1,64}`.
pub fn is_valid_snapshot_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_name(name: &str) -> Result<(), JournalError> {
    if is_valid_snapshot_name(name) {
        Ok(())
    } else {
        Err(JournalError::InvalidName {
            name: name.to_string(),
        })
    }
}

/// A snapshot file on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFile {
    pub path: PathBuf,
    pub name: String,
    pub last_seq: u64,
}

/// The snapshot file name for `name` at `last_seq`.
pub fn snapshot_file_name(name: &str, last_seq: u64) -> String {
    format!("{name}-{last_seq:020}.{SNAPSHOT_EXT}")
}

fn parse_snapshot_name(file: &str) -> Option<(String, u64)> {
    let stem = file.strip_suffix(SNAPSHOT_EXT)?.strip_suffix('.')?;
    let (name, seq) = stem.rsplit_once('-')?;
    if seq.len() != 20 || !seq.bytes().all(|b| b.is_ascii_digit()) || !is_valid_snapshot_name(name)
    {
        return None;
    }
    Some((name.to_string(), seq.parse().ok()?))
}

/// Every snapshot in `dir` (of every name), newest first within a name.
pub fn list_snapshots(dir: &Path) -> Result<Vec<SnapshotFile>, JournalError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(JournalError::io("list", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.ctx("list", dir)?;
        if let Some((name, last_seq)) = entry.file_name().to_str().and_then(parse_snapshot_name) {
            out.push(SnapshotFile {
                path: entry.path(),
                name,
                last_seq,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then(b.last_seq.cmp(&a.last_seq)));
    Ok(out)
}

fn encode_snapshot<P: Serialize>(
    p: &P,
    last_seq: u64,
    path: &Path,
) -> Result<Vec<u8>, JournalError> {
    let payload = schema::encode(p).map_err(|e| JournalError::Snapshot {
        path: path.to_path_buf(),
        reason: format!("cannot encode the projection: {e}"),
    })?;
    Ok(wrap(last_seq, &payload))
}

/// A snapshot file's bytes: the header (with its checksum) and `payload`.
pub(crate) fn wrap(last_seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + payload.len());
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&last_seq.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out[0..28]), payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks a snapshot's header and checksum: `(last_seq, payload)`.
pub(crate) fn check_snapshot(bytes: &[u8]) -> Result<(u64, &[u8]), String> {
    if bytes.len() < SNAPSHOT_HEADER_LEN {
        return Err(format!("{} bytes, shorter than the header", bytes.len()));
    }
    if bytes[0..8] != SNAPSHOT_MAGIC {
        return Err("not an orca snapshot (bad magic)".into());
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != SNAPSHOT_VERSION {
        return Err(format!(
            "snapshot format version {version}, this build reads {SNAPSHOT_VERSION}"
        ));
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[12..20]);
    let last_seq = u64::from_le_bytes(n);
    n.copy_from_slice(&bytes[20..28]);
    let len = u64::from_le_bytes(n);
    let payload = &bytes[SNAPSHOT_HEADER_LEN..];
    if payload.len() as u64 != len {
        return Err(format!(
            "payload is {} bytes, the header says {len}",
            payload.len()
        ));
    }
    let crc = u32::from_le_bytes([bytes[28], bytes[29], bytes[30], bytes[31]]);
    if crc32c::crc32c_append(crc32c::crc32c(&bytes[0..28]), payload) != crc {
        return Err("checksum mismatch".into());
    }
    Ok((last_seq, payload))
}

/// Reads and checks a snapshot file's header and checksum (not its
/// payload's type): its last seq.
pub fn check_snapshot_file(path: &Path) -> Result<u64, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    check_snapshot(&bytes).map(|(seq, _)| seq)
}

/// Writes a snapshot of `p` reflecting the journal up to `last_seq`,
/// atomically; then removes this name's snapshots ahead of `last_seq`
/// (stale: the journal was cut back) and all but the newest
/// [`KEEP_SNAPSHOTS`].
pub fn write_snapshot<P: Serialize>(
    snapshot_dir: &Path,
    name: &str,
    p: &P,
    last_seq: u64,
) -> Result<(), JournalError> {
    check_name(name)?;
    if !snapshot_dir.is_dir() {
        std::fs::create_dir_all(snapshot_dir).ctx("create the snapshot directory", snapshot_dir)?;
        if let Some(parent) = snapshot_dir.parent() {
            sync_dir(parent)?;
        }
    }
    let path = snapshot_dir.join(snapshot_file_name(name, last_seq));
    let bytes = encode_snapshot(p, last_seq, &path)?;
    let tmp = snapshot_dir.join(format!(
        ".{}.tmp-{}",
        snapshot_file_name(name, last_seq),
        std::process::id()
    ));
    let written = (|| {
        let mut f = File::create(&tmp).ctx("create", &tmp)?;
        f.write_all(&bytes).ctx("write", &tmp)?;
        f.sync_all().ctx("fsync", &tmp)?;
        std::fs::rename(&tmp, &path).ctx("rename into place", &tmp)?;
        sync_dir(snapshot_dir)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    let mine: Vec<SnapshotFile> = list_snapshots(snapshot_dir)?
        .into_iter()
        .filter(|s| s.name == name)
        .collect();
    let mut kept = 0;
    let mut removed = false;
    for s in mine {
        let keep = s.last_seq <= last_seq && kept < KEEP_SNAPSHOTS;
        if keep {
            kept += 1;
        } else {
            std::fs::remove_file(&s.path).ctx("remove an old snapshot", &s.path)?;
            removed = true;
        }
    }
    if removed {
        sync_dir(snapshot_dir)?;
    }
    Ok(())
}

/// Removes every snapshot (of any name) ahead of `last_seq`, the journal's
/// last seq as a writer recovered it. Such a snapshot holds events the
/// journal lost (a torn or unsynced tail after a crash, a repair): left in
/// place, it would be taken for valid as soon as new events reused those
/// seqs. Returns what was removed. Call it whenever a writer opens, before
/// it appends.
pub fn discard_ahead(snapshot_dir: &Path, last_seq: u64) -> Result<Vec<PathBuf>, JournalError> {
    let mut removed = Vec::new();
    for s in list_snapshots(snapshot_dir)? {
        if s.last_seq > last_seq {
            std::fs::remove_file(&s.path).ctx("remove a snapshot ahead of the journal", &s.path)?;
            tracing::warn!(path = %s.path.display(), last_seq, "removed a snapshot ahead of the journal");
            removed.push(s.path);
        }
    }
    if !removed.is_empty() {
        sync_dir(snapshot_dir)?;
    }
    Ok(removed)
}

/// Loads the projection `name`: the newest valid snapshot, then a replay of
/// the events after it. A snapshot ahead of the journal, or unreadable, is
/// discarded with a warning (and the next older one tried); with none, the
/// fold starts from `P::default()` at the beginning of the journal.
///
/// Returns the projection, the last seq it reflects, and the warnings.
pub fn load_projection<P>(
    journal_dir: &Path,
    snapshot_dir: &Path,
    name: &str,
) -> Result<(P, u64, Vec<String>), JournalError>
where
    P: Projection + DeserializeOwned + Default,
{
    check_name(name)?;
    let highest = highest_seq(journal_dir)?;
    let mut warnings = Vec::new();
    let mut base: Option<(P, u64)> = None;
    for snap in list_snapshots(snapshot_dir)?
        .into_iter()
        .filter(|s| s.name == name)
    {
        if snap.last_seq > highest {
            warnings.push(format!(
                "snapshot {} is ahead of the journal (seq {} > last seq {highest}); discarded",
                snap.path.display(),
                snap.last_seq
            ));
            continue;
        }
        let loaded = std::fs::read(&snap.path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let (seq, payload) = check_snapshot(&bytes)?;
                if seq != snap.last_seq {
                    return Err(format!(
                        "header says seq {seq}, the file name {}",
                        snap.last_seq
                    ));
                }
                let (p, used) = schema::decode_snapshot::<P>(payload).map_err(|e| e.to_string())?;
                if used != payload.len() {
                    return Err(format!("{} trailing bytes", payload.len() - used));
                }
                Ok(p)
            });
        match loaded {
            Ok(p) => {
                base = Some((p, snap.last_seq));
                break;
            }
            Err(reason) => warnings.push(format!(
                "snapshot {} is unreadable ({reason}); discarded",
                snap.path.display()
            )),
        }
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let (mut p, seq) = base.unwrap_or_default();
    let first = first_seq(journal_dir)?;
    if first > seq + 1 {
        return Err(JournalError::Compacted {
            dir: journal_dir.to_path_buf(),
            first_available: first,
            needed: seq + 1,
        });
    }
    let last = replay(journal_dir, seq + 1, &mut p)?;
    Ok((p, last, warnings))
}

/// Wraps a projection and writes a snapshot of it every `every` events.
/// Feed it every envelope, in order (live from the writer's feed, or from a
/// replay).
#[derive(Debug)]
pub struct Snapshotter<P> {
    dir: PathBuf,
    name: String,
    every: u64,
    since: u64,
    last_seq: u64,
    projection: P,
}

impl<P: Projection + Serialize> Snapshotter<P> {
    /// `projection` reflects the journal up to `last_seq` (as returned by
    /// [`load_projection`]).
    pub fn new(
        snapshot_dir: &Path,
        name: &str,
        every: u64,
        projection: P,
        last_seq: u64,
    ) -> Result<Self, JournalError> {
        check_name(name)?;
        Ok(Self {
            dir: snapshot_dir.to_path_buf(),
            name: name.to_string(),
            every: every.max(1),
            since: 0,
            last_seq,
            projection,
        })
    }

    /// Applies `env` (envelopes at or below the last seq are ignored, so a
    /// live feed may overlap a replay) and writes a snapshot when `every`
    /// events have been applied since the last one. `Ok(Some(seq))`: a
    /// snapshot at `seq` was written.
    pub fn feed(&mut self, env: &Envelope) -> Result<Option<u64>, JournalError> {
        if env.seq <= self.last_seq {
            return Ok(None);
        }
        self.projection.apply(env);
        self.last_seq = env.seq;
        self.since += 1;
        if self.since >= self.every {
            self.snapshot_now()?;
            return Ok(Some(self.last_seq));
        }
        Ok(None)
    }

    /// Writes a snapshot now.
    pub fn snapshot_now(&mut self) -> Result<(), JournalError> {
        write_snapshot(&self.dir, &self.name, &self.projection, self.last_seq)?;
        self.since = 0;
        Ok(())
    }

    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// The last seq the projection reflects.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn into_inner(self) -> P {
        self.projection
    }
}

impl<P: Projection + Serialize> Projection for Snapshotter<P> {
    /// As [`Snapshotter::feed`]; a failed snapshot is logged (the fold goes
    /// on, the next interval tries again).
    fn apply(&mut self, env: &Envelope) {
        if let Err(e) = self.feed(env) {
            tracing::warn!(snapshot = %self.name, error = %e, "cannot write a snapshot");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_snapshot_name(&snapshot_file_name("runs-v1", 42)),
            Some(("runs-v1".into(), 42))
        );
        assert_eq!(parse_snapshot_name("runs-42.snap"), None);
        assert_eq!(
            parse_snapshot_name(".runs-00000000000000000042.snap.tmp-1"),
            None
        );
        assert!(!is_valid_snapshot_name("a/b"));
        assert!(!is_valid_snapshot_name(""));
    }

    #[test]
    fn header_checks() {
        let bytes = encode_snapshot(&(1u32, "x".to_string()), 9, Path::new("x")).unwrap();
        assert_eq!(check_snapshot(&bytes).map(|(s, _)| s), Ok(9));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(check_snapshot(&bad).is_err(), "flip at {i} accepted");
        }
        assert!(check_snapshot(&bytes[..bytes.len() - 1]).is_err());
    }

    #[derive(Default, Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Big(String);
    impl Projection for Big {
        fn apply(&mut self, _: &Envelope) {}
    }

    #[test]
    fn snapshots_larger_than_a_frame_load() {
        let tmp = tempfile::tempdir().unwrap();
        let big = Big("x".repeat(20 << 20));
        write_snapshot(tmp.path(), "big", &big, 0).unwrap();
        let (p, seq, warnings) =
            load_projection::<Big>(&tmp.path().join("journal"), tmp.path(), "big").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!((p.0.len(), seq), (20 << 20, 0));
    }
}
