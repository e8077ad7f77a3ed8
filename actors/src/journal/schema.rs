//! Records inside a frame: `schema version | actor | event`, and the
//! version dispatch that upcasts older event shapes and refuses newer ones.
//!
//! bincode is not self-describing, so a record's bytes only mean something
//! together with the schema version written in front of them. A record is
//! decoded with exactly the shape its version names:
//! - the current version decodes straight into [`Event`];
//! - an older version decodes into that version's frozen shape and is
//!   upcast ([`upcast_event`]);
//! - a newer version is refused ([`RecordError::Newer`]), never guessed at.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::event::{Event, EVENT_SCHEMA_VERSION};
use super::segment::MAX_FRAME_BYTES;

/// bincode 2's standard configuration (little endian, varint integers) with
/// a decode limit, so damaged bytes can never ask for a huge allocation.
pub(crate) type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_FRAME_BYTES>,
>;

/// The configuration every journal payload uses.
pub(crate) const CONFIG: Config = bincode::config::standard().with_limit::<MAX_FRAME_BYTES>();

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordError {
    /// Written by a newer orca.
    Newer { found: u16, supported: u16 },
    /// An older version this build has no upcast for (should not happen:
    /// every version ever written keeps its upcast).
    Unknown { found: u16 },
    /// The bytes do not decode.
    Malformed(String),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Newer { found, supported } => write!(
                f,
                "event schema version {found} is newer than this build's {supported}"
            ),
            RecordError::Unknown { found } => {
                write!(f, "unknown event schema version {found}")
            }
            RecordError::Malformed(m) => write!(f, "undecodable record: {m}"),
        }
    }
}

/// Appends one record (`schema version | actor | event`) to `out`.
pub(crate) fn encode_record(
    out: &mut Vec<u8>,
    actor: &str,
    event: &Event,
) -> Result<(), bincode::error::EncodeError> {
    bincode::encode_into_writer(EVENT_SCHEMA_VERSION, Append(out), CONFIG)?;
    bincode::encode_into_writer(actor, Append(out), CONFIG)?;
    bincode::serde::encode_into_writer(event, Append(out), CONFIG)?;
    Ok(())
}

/// bincode's writer for appending to a `Vec`: the same bytes as through
/// `std::io::Write`, without its adapter on every field.
pub(crate) struct Append<'a>(pub(crate) &'a mut Vec<u8>);

impl bincode::enc::write::Writer for Append<'_> {
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Decodes the record at the start of `bytes`: `(actor, event, bytes used)`.
#[cfg(test)]
pub(crate) fn decode_record(bytes: &[u8]) -> Result<(String, Event, usize), RecordError> {
    let mut event = Event::placeholder();
    let (actor, used) = decode_record_into(bytes, &mut event)?;
    Ok((actor.to_owned(), event, used))
}

/// Decodes the record at the start of `bytes`, its event into `event`
/// (replacing it): `(actor, bytes used)`. The actor path stays borrowed from
/// `bytes` (a fold copies it into one reused buffer), and the event is
/// decoded where it is used: an [`Event`] is a few hundred bytes, and every
/// `Result` it would be returned through can cost a copy of it.
#[inline]
pub(crate) fn decode_record_into<'a>(
    bytes: &'a [u8],
    event: &mut Event,
) -> Result<(&'a str, usize), RecordError> {
    let malformed = |e: bincode::error::DecodeError| RecordError::Malformed(e.to_string());
    let (version, a): (u16, usize) =
        bincode::decode_from_slice(bytes, CONFIG).map_err(malformed)?;
    let rest = bytes.get(a..).unwrap_or_default();
    // Borrowed: see `decode.rs` for why not `String` directly.
    let (actor, b): (&str, usize) =
        bincode::borrow_decode_from_slice(rest, CONFIG).map_err(malformed)?;
    let rest = rest.get(b..).unwrap_or_default();
    let c = if version == EVENT_SCHEMA_VERSION {
        super::decode::decode_owned_into(rest, CONFIG, event).map_err(malformed)?
    } else {
        let (older, c) = decode_event(version, rest)?;
        *event = older;
        c
    };
    Ok((actor, a + b + c))
}

/// Decodes an event written under schema `version`.
pub(crate) fn decode_event(version: u16, bytes: &[u8]) -> Result<(Event, usize), RecordError> {
    decode_versioned(version, EVENT_SCHEMA_VERSION, bytes, upcast_event)
}

/// Older shapes of [`Event`] this build still reads, each decoded into its
/// frozen type and converted to the current one.
///
/// Version 1 is the first schema, so there is nothing to upcast yet. When
/// [`EVENT_SCHEMA_VERSION`] becomes 2 (docs/journal.md, "Changing an event"):
/// copy today's `Event` (and the types it uses that change) into
/// `journal/schema/v1.rs` unchanged, implement `From<v1::Event> for Event`,
/// and add the arm `1 => Some(decode::<v1::Event>(bytes).map(|(e, n)|
/// (e.into(), n)))`.
fn upcast_event(
    version: u16,
    bytes: &[u8],
) -> Option<Result<(Event, usize), bincode::error::DecodeError>> {
    let _ = (version, bytes);
    None
}

/// Version dispatch shared by every versioned journal type: the current
/// version decodes as `T`; a newer one is refused; an older one goes through
/// `upcast`, which returns `None` for versions it does not know.
pub(crate) fn decode_versioned<T, U>(
    version: u16,
    current: u16,
    bytes: &[u8],
    upcast: U,
) -> Result<(T, usize), RecordError>
where
    T: DeserializeOwned,
    U: FnOnce(u16, &[u8]) -> Option<Result<(T, usize), bincode::error::DecodeError>>,
{
    let malformed = |e: bincode::error::DecodeError| RecordError::Malformed(e.to_string());
    if version == current {
        return decode::<T>(bytes).map_err(malformed);
    }
    if version > current {
        return Err(RecordError::Newer {
            found: version,
            supported: current,
        });
    }
    match upcast(version, bytes) {
        Some(r) => r.map_err(malformed),
        None => Err(RecordError::Unknown { found: version }),
    }
}

/// Decodes a serde type with the journal's configuration.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    super::decode::decode_owned(bytes, CONFIG)
}

/// Snapshots may be far larger than a frame: their decode limit is 1 GiB
/// (they are checksummed before they are decoded).
pub(crate) type SnapshotConfig = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<{ 1 << 30 }>,
>;

/// The configuration snapshots are decoded with.
pub(crate) const SNAPSHOT_CONFIG: SnapshotConfig =
    bincode::config::standard().with_limit::<{ 1 << 30 }>();

/// Decodes a snapshot payload.
pub(crate) fn decode_snapshot<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    super::decode::decode_owned(bytes, SNAPSHOT_CONFIG)
}

/// Encodes a serde type with the journal's configuration.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, bincode::error::EncodeError> {
    bincode::serde::encode_to_vec(value, CONFIG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttemptRef;
    use serde::Deserialize;

    #[test]
    fn record_round_trips() {
        let event = Event::ChildRestarted {
            path: AttemptRef::new("r-1", "lint", 2).actor_path().to_string(),
            attempt: 2,
        };
        let mut out = Vec::new();
        encode_record(&mut out, "/runs/r-1", &event).unwrap();
        out.extend_from_slice(b"next");
        let (actor, back, used) = decode_record(&out).unwrap();
        assert_eq!((actor.as_str(), &back), ("/runs/r-1", &event));
        assert_eq!(&out[used..], b"next");
    }

    #[test]
    fn newer_schema_is_refused_not_misread() {
        let event = Event::DaemonStopped {
            pid: 7,
            reason: "x".into(),
        };
        let mut out = Vec::new();
        bincode::encode_into_std_write(EVENT_SCHEMA_VERSION + 1, &mut out, CONFIG).unwrap();
        bincode::encode_into_std_write("/", &mut out, CONFIG).unwrap();
        bincode::serde::encode_into_std_write(&event, &mut out, CONFIG).unwrap();
        assert_eq!(
            decode_record(&out).unwrap_err(),
            RecordError::Newer {
                found: EVENT_SCHEMA_VERSION + 1,
                supported: EVENT_SCHEMA_VERSION
            }
        );
    }

    #[test]
    fn unknown_older_schema_is_refused() {
        let err = decode_event(0, &[0, 0, 0]).unwrap_err();
        assert_eq!(err, RecordError::Unknown { found: 0 });
    }

    // The upcast path, exercised with a toy vocabulary in two versions (the
    // real `Event` has only version 1 so far).
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum ToyV1 {
        Started { id: String },
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum ToyV2 {
        Started { id: String, attempt: u32 },
    }
    impl From<ToyV1> for ToyV2 {
        fn from(v: ToyV1) -> Self {
            match v {
                ToyV1::Started { id } => ToyV2::Started { id, attempt: 1 },
            }
        }
    }
    fn toy_upcast(
        version: u16,
        bytes: &[u8],
    ) -> Option<Result<(ToyV2, usize), bincode::error::DecodeError>> {
        match version {
            1 => Some(decode::<ToyV1>(bytes).map(|(old, n)| (old.into(), n))),
            _ => None,
        }
    }

    #[test]
    fn older_version_is_upcast() {
        let old = encode(&ToyV1::Started { id: "a".into() }).unwrap();
        let (v, n): (ToyV2, usize) = decode_versioned(1, 2, &old, toy_upcast).unwrap();
        assert_eq!(
            v,
            ToyV2::Started {
                id: "a".into(),
                attempt: 1
            }
        );
        assert_eq!(n, old.len());
        let cur = encode(&ToyV2::Started {
            id: "b".into(),
            attempt: 3,
        })
        .unwrap();
        let (v, _): (ToyV2, usize) = decode_versioned(2, 2, &cur, toy_upcast).unwrap();
        assert_eq!(
            v,
            ToyV2::Started {
                id: "b".into(),
                attempt: 3
            }
        );
        assert!(matches!(
            decode_versioned::<ToyV2, _>(3, 2, &cur, toy_upcast),
            Err(RecordError::Newer {
                found: 3,
                supported: 2
            })
        ));
        assert!(matches!(
            decode_versioned::<ToyV2, _>(0, 2, &cur, toy_upcast),
            Err(RecordError::Unknown { found: 0 })
        ));
    }
}
