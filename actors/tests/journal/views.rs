//! Projections, snapshots, compaction, following, export, and the committed
//! compatibility fixture.

use std::collections::BTreeMap;

use orca_actors::journal::fixture::{sample_events, sample_worker_events, EVENT_VARIANTS};
use orca_actors::journal::snapshot::{list_snapshots, snapshot_file_name};
use orca_actors::journal::{
    compact, first_seq, follow, load_projection, open_writer, read, replay, write_snapshot,
    JournalError, Projection, ReadRange, Snapshotter,
};
use serde::{Deserialize, Serialize};

use super::*;

/// A projection with some shape: counts per type, per actor, a digest of the
/// seqs, and a marker to tell a loaded snapshot from a replay.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Counts {
    by_type: BTreeMap<String, u64>,
    by_actor: BTreeMap<String, u64>,
    seq_sum: u64,
    last: u64,
    marker: Option<String>,
}

impl Projection for Counts {
    fn apply(&mut self, env: &Envelope) {
        assert_eq!(env.seq, self.last + 1, "in order, no gaps");
        *self
            .by_type
            .entry(env.event.type_name().into())
            .or_default() += 1;
        *self.by_actor.entry(env.actor.clone()).or_default() += 1;
        self.seq_sum += env.seq;
        self.last = env.seq;
    }
}

/// `n_batches` batches of 1, 2, 3, 1, 2, 3, … events; returns the event count.
async fn journal_of(dir: &Path, n_batches: u64, segment_bytes: u64) -> u64 {
    let (h, _) = open_writer(dir, never().with_segment_bytes(segment_bytes))
        .await
        .unwrap();
    let mut next = 1;
    for i in 0..n_batches {
        let n = 1 + (i % 3) as usize;
        h.append(batch(next, n)).await.unwrap();
        next += n as u64;
    }
    h.stop().await;
    next - 1
}

fn from_zero(dir: &Path) -> Counts {
    let mut p = Counts::default();
    replay(dir, 1, &mut p).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_from_a_snapshot_equals_replay_from_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, snaps) = (tmp.path().join("journal"), tmp.path().join("snapshots"));
    let n = journal_of(&dir, 50, 1 << 20).await;
    assert_eq!(n, 99);
    let full = from_zero(&dir);
    assert_eq!(full.last, n);

    // A Snapshotter fed by a replay writes one every 30 events (2 kept).
    let mut s = Snapshotter::new(&snaps, "counts", 30, Counts::default(), 0).unwrap();
    replay(&dir, 1, &mut s).unwrap();
    assert_eq!(s.projection(), &full);
    let seqs: Vec<u64> = list_snapshots(&snaps)
        .unwrap()
        .iter()
        .map(|s| s.last_seq)
        .collect();
    assert_eq!(seqs, vec![90, 60], "newest two kept");

    let (p, last, warnings) = load_projection::<Counts>(&dir, &snaps, "counts").unwrap();
    assert_eq!((&p, last), (&full, n));
    assert!(warnings.is_empty(), "{warnings:?}");

    // The loaded state really came from the snapshot: mark it.
    let mut at90 = Counts::default();
    replay(&dir, 1, &mut TakeUntil(&mut at90, 90)).unwrap();
    at90.marker = Some("from the snapshot".into());
    write_snapshot(&snaps, "counts", &at90, 90).unwrap();
    let (p, _, _) = load_projection::<Counts>(&dir, &snaps, "counts").unwrap();
    assert_eq!(p.marker.as_deref(), Some("from the snapshot"));
    assert_eq!(Counts { marker: None, ..p }, full);

    // Live: the Snapshotter ignores envelopes it already reflects.
    let mut live = Snapshotter::new(&snaps, "live", 1000, full.clone(), n).unwrap();
    for e in all(&dir) {
        assert_eq!(live.feed(&e).unwrap(), None);
    }
    assert_eq!(live.projection(), &full);
}

/// Applies envelopes up to a seq.
struct TakeUntil<'a>(&'a mut Counts, u64);
impl Projection for TakeUntil<'_> {
    fn apply(&mut self, env: &Envelope) {
        if env.seq <= self.1 {
            self.0.apply(env);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_or_damaged_snapshots_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, snaps) = (tmp.path().join("journal"), tmp.path().join("snapshots"));
    assert_eq!(journal_of(&dir, 20, 1 << 20).await, 39);
    let full = from_zero(&dir);
    let at = |seq: u64| {
        let mut p = Counts::default();
        replay(&dir, 1, &mut TakeUntil(&mut p, seq)).unwrap();
        p
    };
    let (s10, s30) = (at(10), at(30));
    write_snapshot(&snaps, "counts", &s10, 10).unwrap();
    write_snapshot(&snaps, "counts", &s30, 30).unwrap();

    // Ahead of the journal (e.g. the journal was repaired back): ignored.
    let ahead = snaps.join(snapshot_file_name("counts", 500));
    std::fs::copy(snaps.join(snapshot_file_name("counts", 30)), &ahead).unwrap();
    let (p, last, w) = load_projection::<Counts>(&dir, &snaps, "counts").unwrap();
    assert_eq!((&p, last), (&full, 39));
    assert!(
        w.len() == 1 && w[0].contains("ahead of the journal"),
        "{w:?}"
    );
    // A writer opening at seq 39 removes it (new events would reuse its
    // seqs), and only it.
    assert_eq!(
        orca_actors::journal::snapshot::discard_ahead(&snaps, 39).unwrap(),
        std::slice::from_ref(&ahead)
    );
    assert!(!ahead.exists());
    assert!(snaps.join(snapshot_file_name("counts", 30)).exists());

    // Damaged: the newest is discarded, the older one used.
    let newest = snaps.join(snapshot_file_name("counts", 30));
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&newest, &bytes).unwrap();
    let (p, last, w) = load_projection::<Counts>(&dir, &snaps, "counts").unwrap();
    assert_eq!((&p, last), (&full, 39));
    assert!(w.len() == 1 && w[0].contains("unreadable"), "{w:?}");

    // Every snapshot unreadable (truncated, or not even a snapshot): the fold
    // starts from the beginning.
    std::fs::write(snaps.join(snapshot_file_name("counts", 10)), b"ORCASNAP").unwrap();
    let (p, last, w) = load_projection::<Counts>(&dir, &snaps, "counts").unwrap();
    assert_eq!((&p, last, w.len()), (&full, 39, 2));

    // A snapshot of another type fails to decode: discarded too.
    write_snapshot(&snaps, "counts", &("not", "counts", 7u8), 20).unwrap();
    let (p, _, w) = load_projection::<Counts>(&dir, &snaps, "counts").unwrap();
    assert_eq!(p, full);
    assert!(w.iter().any(|w| w.contains("unreadable")), "{w:?}");

    // Leftover temporary files and no snapshot dir at all are fine.
    std::fs::write(snaps.join(".counts-00000000000000000035.snap.tmp-1"), b"x").unwrap();
    let (p, _, _) = load_projection::<Counts>(&dir, &tmp.path().join("none"), "counts").unwrap();
    assert_eq!(p, full);
    assert!(matches!(
        write_snapshot(&snaps, "../evil", &full, 1),
        Err(JournalError::InvalidName { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_removes_covered_segments_and_keeps_recent_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, snaps) = (tmp.path().join("journal"), tmp.path().join("snapshots"));
    // 120 events in many small segments.
    assert_eq!(journal_of(&dir, 60, 256).await, 120);
    let full = from_zero(&dir);
    let mut at119 = Counts::default();
    replay(&dir, 1, &mut TakeUntil(&mut at119, 119)).unwrap();
    let before = segments(&dir);
    assert!(before.len() > 8, "{} segments", before.len());

    // No snapshot: nothing may go.
    assert!(compact(&dir, &snaps, 2).unwrap().removed.is_empty());

    let mut s = Snapshotter::new(&snaps, "counts", 1000, Counts::default(), 0).unwrap();
    replay(&dir, 1, &mut TakeUntil2(&mut s, 70)).unwrap();
    s.snapshot_now().unwrap();
    // A second projection with an older snapshot bounds compaction.
    let mut other = Counts::default();
    replay(&dir, 1, &mut TakeUntil(&mut other, 40)).unwrap();
    write_snapshot(&snaps, "other", &other, 40).unwrap();

    let r = compact(&dir, &snaps, 2).unwrap();
    assert_eq!(r.covered_seq, 40);
    assert!(!r.removed.is_empty());
    let first = first_seq(&dir).unwrap();
    assert!(first > 1 && first <= 41, "first seq {first}");
    // Both projections still load, equal to the full fold.
    let (p, last, _) = load_projection::<Counts>(&dir, &snaps, "counts").unwrap();
    assert_eq!((&p, last), (&full, 120));
    let (p, _, _) = load_projection::<Counts>(&dir, &snaps, "other").unwrap();
    assert_eq!(p, full);
    // A fold from zero now fails loudly instead of starting in the middle.
    let mut p = Counts::default();
    assert!(matches!(
        replay(&dir, 1, &mut p),
        Err(JournalError::Compacted { .. })
    ));
    assert!(matches!(
        load_projection::<Counts>(&dir, &snaps, "never-snapshotted"),
        Err(JournalError::Compacted { .. })
    ));
    // Reads start at the first event left.
    assert_eq!(
        read(&dir, ReadRange::all())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .seq,
        first
    );

    // Once every name's two newest snapshots catch up, more goes (the older
    // of the two bounds it, so a damaged newest one can fall back); the
    // last `keep` segments always stay.
    for name in ["other", "counts"] {
        write_snapshot(&snaps, name, &at119, 119).unwrap();
        write_snapshot(&snaps, name, &full, 120).unwrap();
    }
    let r = compact(&dir, &snaps, 3).unwrap();
    assert_eq!(r.covered_seq, 119);
    assert_eq!(r.kept, 3);
    let newest = snaps.join("counts-00000000000000000120.snap");
    let mut bytes = std::fs::read(&newest).unwrap();
    let end = bytes.len() - 1;
    bytes[end] ^= 0xff;
    std::fs::write(&newest, bytes).unwrap();
    let (p, last, warnings) = load_projection::<Counts>(&dir, &snaps, "counts").unwrap();
    assert_eq!(
        (&p, last),
        (&full, 120),
        "fell back to seq 119: {warnings:?}"
    );
    write_snapshot(&snaps, "counts", &full, 120).unwrap();
    assert_eq!(segments(&dir), before[before.len() - 3..].to_vec());
    let r = compact(&dir, &snaps, 0).unwrap();
    assert_eq!(r.kept, 1, "the active segment always stays");
    // The writer continues after compaction.
    let (h, report) = open_writer(&dir, never()).await.unwrap();
    assert_eq!(report.last_seq, 120);
    h.append(batch(121, 1)).await.unwrap();
    h.stop().await;
    let (p, last, _) = load_projection::<Counts>(&dir, &snaps, "counts").unwrap();
    assert_eq!((p.last, last), (121, 121));
}

struct TakeUntil2<'a>(&'a mut Snapshotter<Counts>, u64);
impl Projection for TakeUntil2<'_> {
    fn apply(&mut self, env: &Envelope) {
        if env.seq <= self.1 {
            self.0.apply(env);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_tails_appends_across_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let (h, _) = open_writer(&dir, never().with_segment_bytes(512))
        .await
        .unwrap();
    let mut from_start = follow(&dir, 1).unwrap();
    let mut from_middle = follow(&dir, 150).unwrap();
    let writer = {
        let h = h.clone();
        tokio::spawn(async move {
            let mut next = 1;
            for i in 0..150u64 {
                let n = 1 + (i % 3) as usize;
                h.append(batch(next, n)).await.unwrap();
                next += n as u64;
            }
            next - 1
        })
    };
    let mut got = Vec::new();
    while got.len() < 300 {
        got.push(from_start.next().await.unwrap());
    }
    assert_eq!(writer.await.unwrap(), 300);
    assert_contiguous(&got, 300);
    let mut mid = Vec::new();
    while mid.len() < 151 {
        mid.push(from_middle.next().await.unwrap().seq);
    }
    assert_eq!(mid, (150..=300).collect::<Vec<_>>());
    assert!(from_start.try_next().unwrap().is_none(), "nothing more yet");
    h.append(batch(301, 2)).await.unwrap();
    assert_eq!(from_start.next().await.unwrap().seq, 301);
    assert_eq!(from_start.next().await.unwrap().seq, 302);
    h.stop().await;
    assert!(segments(&dir).len() > 5);
}

#[test]
fn every_event_type_exports_flat_json() {
    let events = sample_events();
    let variants: std::collections::HashSet<_> = events
        .iter()
        .map(|e| std::mem::discriminant(&e.event))
        .collect();
    assert_eq!(
        variants.len(),
        EVENT_VARIANTS,
        "sample_events covers every variant"
    );
    for (i, e) in events
        .iter()
        .chain(sample_worker_events().iter())
        .chain(orca_actors::journal::fixture::sample_alert_events().iter())
        .enumerate()
    {
        let env = Envelope {
            seq: i as u64 + 1,
            at: orca_actors::model::Timestamp(1_795_000_000_123_000_000),
            actor: e.actor.clone(),
            event: e.event.clone(),
        };
        let v = env.export_json();
        let obj = v.as_object().unwrap();
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(&keys[..4], ["seq", "at", "actor", "type"]);
        assert_eq!(obj["type"], e.event.type_name());
        assert_eq!(obj["at"], env.at.rfc3339());
        assert!(obj["at"].as_str().unwrap().ends_with(".123Z"));
        assert!(
            !keys.iter().any(|k| k.starts_with("event.")),
            "{} has a field named like an envelope field",
            e.event.type_name()
        );
    }
}

// ----- the committed compatibility fixture -----------------------------------

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/journal-v1")
}

/// The projection snapshotted in the fixture (its shape is frozen with it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct FixtureCounts {
    by_type: BTreeMap<String, u64>,
    last: u64,
}

impl Projection for FixtureCounts {
    fn apply(&mut self, env: &Envelope) {
        *self
            .by_type
            .entry(env.event.type_name().into())
            .or_default() += 1;
        self.last = env.seq;
    }
}

/// A journal written by format version 1 keeps reading: every record decodes
/// to what was exported when it was written, and its snapshot loads.
#[test]
fn the_committed_v1_fixture_still_reads() {
    let root = fixture_dir();
    let journal = root.join("journal");
    let expected = std::fs::read_to_string(root.join("export.jsonl")).unwrap();
    let expected: Vec<serde_json::Value> = expected
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let envs = all(&journal);
    assert_eq!(envs.len(), expected.len());
    assert!(segments(&journal).len() >= 2);
    for (env, want) in envs.iter().zip(&expected) {
        assert_eq!(&env.export_json(), want, "seq {}", env.seq);
    }
    // The events themselves are the fixture samples, in order (those
    // written before alert events existed).
    let samples: Vec<_> = sample_events()
        .into_iter()
        .filter(|e| orca_actors::journal::fixture::in_v1_fixture(&e.event))
        .chain(sample_worker_events())
        .collect();
    for (env, s) in envs.iter().zip(&samples) {
        assert_eq!(
            (&env.actor, &env.event),
            (&s.actor, &s.event),
            "seq {}",
            env.seq
        );
    }
    let v = orca_actors::journal::verify(&journal).unwrap();
    assert!(v.is_ok() && v.torn_tail.is_none());
    let (p, last, warnings) =
        load_projection::<FixtureCounts>(&journal, &root.join("snapshots"), "fixture-counts")
            .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut full = FixtureCounts::default();
    replay(&journal, 1, &mut full).unwrap();
    assert_eq!((p, last), (full, envs.len() as u64));
}

/// Writes the fixture. Run once per format version, never to overwrite:
/// `ORCA_WRITE_FIXTURE=1 cargo test -p orca-actors --test journal write_compat_fixture -- --ignored`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/journal-v1 (run once per format version)"]
async fn write_compat_fixture() {
    if std::env::var("ORCA_WRITE_FIXTURE").is_err() {
        return;
    }
    let root = fixture_dir();
    assert!(
        !root.exists(),
        "{} exists: fixtures are never rewritten",
        root.display()
    );
    let journal = root.join("journal");
    let (h, _) = open_writer(&journal, JournalOptions::default().with_segment_bytes(2048))
        .await
        .unwrap();
    let samples: Vec<_> = sample_events()
        .into_iter()
        .chain(sample_worker_events())
        .collect();
    let mut sizes = [1usize, 2, 3, 1, 4, 2, 5].iter().cycle();
    let mut rest = &samples[..];
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).min(rest.len());
        h.append(rest[..n].to_vec()).await.unwrap();
        rest = &rest[n..];
    }
    h.stop().await;
    let mut p = FixtureCounts::default();
    let mut upto = TakeFixture(&mut p, 20);
    replay(&journal, 1, &mut upto).unwrap();
    write_snapshot(&root.join("snapshots"), "fixture-counts", &p, 20).unwrap();
    let mut out = String::new();
    for env in all(&journal) {
        out.push_str(&serde_json::to_string(&env.export_json()).unwrap());
        out.push('\n');
    }
    std::fs::write(root.join("export.jsonl"), out).unwrap();
    std::fs::remove_file(journal.join("LOCK")).unwrap();
}

struct TakeFixture<'a>(&'a mut FixtureCounts, u64);
impl Projection for TakeFixture<'_> {
    fn apply(&mut self, env: &Envelope) {
        if env.seq <= self.1 {
            self.0.apply(env);
        }
    }
}
