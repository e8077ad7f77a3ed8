//! Replay semantics, modelled on the persistence TCK.

use orca_actors::journal::{
    highest_seq, open_writer, read, replay, Envelope, JournalError, JournalMsg, JournalOptions,
    Projection, ReadRange,
};

use super::*;

/// Sizes of the batches the conformance journal is made of (25 events).
const SIZES: [usize; 10] = [1, 3, 2, 5, 1, 1, 4, 2, 3, 3];

async fn journal() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    // Small segments: reads cross segment boundaries.
    let (h, report) = open_writer(&dir, never().with_segment_bytes(300))
        .await
        .unwrap();
    assert_eq!(report.last_seq, 0);
    write_batches(&h, &SIZES).await;
    h.stop().await;
    assert!(segments(&dir).len() >= 3, "expected several segments");
    (tmp, dir)
}

fn seqs(dir: &Path, range: ReadRange) -> Vec<u64> {
    read(dir, range)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            assert_eq!(num(&e), e.seq);
            e.seq
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_ranges() {
    let (_tmp, dir) = journal().await;
    let r = ReadRange::all;
    assert_eq!(seqs(&dir, r()), (1..=25).collect::<Vec<_>>(), "replay all");
    assert_eq!(
        seqs(&dir, ReadRange::from(7)),
        (7..=25).collect::<Vec<_>>(),
        "lower bound"
    );
    assert_eq!(
        seqs(&dir, r().to(13)),
        (1..=13).collect::<Vec<_>>(),
        "upper bound"
    );
    assert_eq!(
        seqs(&dir, ReadRange::from(5).to(9)),
        (5..=9).collect::<Vec<_>>(),
        "inside batches"
    );
    assert_eq!(
        seqs(&dir, r().max(4)),
        (1..=4).collect::<Vec<_>>(),
        "count limit"
    );
    assert_eq!(
        seqs(&dir, ReadRange::from(3).max(5)),
        (3..=7).collect::<Vec<_>>(),
        "lower bound and count"
    );
    assert_eq!(
        seqs(&dir, ReadRange::from(20).to(30).max(100)),
        (20..=25).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(&dir, ReadRange::from(9).to(8)),
        Vec::<u64>::new(),
        "lower > upper"
    );
    assert_eq!(
        seqs(&dir, ReadRange::from(26)),
        Vec::<u64>::new(),
        "past the end"
    );
    assert_eq!(seqs(&dir, ReadRange::from(0).to(0)), Vec::<u64>::new());
    // Count 0 gives nothing but the highest seq is still reported.
    assert_eq!(seqs(&dir, r().max(0)), Vec::<u64>::new(), "count 0");
    assert_eq!(highest_seq(&dir).unwrap(), 25);
    // Every envelope of a batch shares its timestamp; timestamps never go back.
    let envs = all(&dir);
    assert!(envs.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(envs[1].at, envs[3].at, "seq 2..4 are one batch");
}

#[derive(Default)]
struct Seqs(Vec<u64>);
impl Projection for Seqs {
    fn apply(&mut self, env: &Envelope) {
        self.0.push(env.seq);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_through_a_projection() {
    let (_tmp, dir) = journal().await;
    let mut p = Seqs::default();
    assert_eq!(replay(&dir, 0, &mut p).unwrap(), 25);
    assert_eq!(p.0, (1..=25).collect::<Vec<_>>());
    let mut p = Seqs::default();
    assert_eq!(replay(&dir, 11, &mut p).unwrap(), 25);
    assert_eq!(p.0, (11..=25).collect::<Vec<_>>());
    let mut p = Seqs::default();
    assert_eq!(
        replay(&dir, 26, &mut p).unwrap(),
        25,
        "nothing applied: from - 1"
    );
    assert!(p.0.is_empty());
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(replay(empty.path(), 1, &mut p).unwrap(), 0);
    assert_eq!(highest_seq(empty.path()).unwrap(), 0);
    assert_eq!(
        read(&empty.path().join("missing"), ReadRange::all())
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_never_goes_backwards_after_reopen() {
    let (_tmp, dir) = journal().await;
    for round in 0..3u64 {
        let (h, report) = open_writer(&dir, never().with_segment_bytes(300))
            .await
            .unwrap();
        let before = 25 + round * 2;
        assert_eq!(report.last_seq, before);
        assert_eq!(h.last_seq(), before);
        let ack = h.append(batch(before + 1, 2)).await.unwrap();
        assert_eq!((ack.first_seq, ack.last_seq), (before + 1, before + 2));
        h.stop().await;
    }
    assert_contiguous(&all(&dir), 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_api_edges() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let (h, _) = open_writer(&dir, never()).await.unwrap();
    assert!(matches!(
        h.append(vec![]).await,
        Err(JournalError::EmptyBatch)
    ));
    // Appends are queued when called: seqs follow call order even when the
    // futures are awaited together, in reverse.
    let futs: Vec<_> = (1..=10u64).map(|i| h.append(batch(i, 1))).collect();
    let mut acks = Vec::new();
    for f in futs.into_iter().rev() {
        acks.push(f.await.unwrap().first_seq);
    }
    assert_eq!(acks, (1..=10).rev().collect::<Vec<_>>());
    // The actor's own Append message.
    let ack = ractor::call!(h.actor_ref(), JournalMsg::Append, batch(11, 2))
        .unwrap()
        .unwrap();
    assert_eq!((ack.first_seq, ack.last_seq), (11, 12));
    let status = h.status().await.unwrap();
    assert_eq!((status.last_seq, status.batches), (12, 11));
    // The live feed sees batches after they are written.
    let mut feed = h.subscribe();
    h.append(batch(13, 3)).await.unwrap();
    let got = feed.recv().await.unwrap();
    assert_eq!(
        got.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![13, 14, 15]
    );
    assert_eq!(got.iter().map(num).collect::<Vec<_>>(), vec![13, 14, 15]);
    assert_eq!(h.health(), orca_actors::journal::JournalHealth::Ok);
    h.stop().await;
    assert_eq!(h.health(), orca_actors::journal::JournalHealth::Stopped);
    assert!(matches!(
        h.append(batch(16, 1)).await,
        Err(JournalError::Stopped)
    ));
    assert_contiguous(&all(&dir), 15);
    // The lock was released: a new writer opens.
    let (h2, report) = open_writer(&dir, JournalOptions::default()).await.unwrap();
    assert_eq!(report.last_seq, 15);
    h2.stop().await;
}

/// Whatever a reader of the files sees, the handle already counts as
/// written (the daemon's views wait for `written_seq` so that they never lag
/// `orca journal export`). Rolls segments too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_past_written_seq() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let (h, _) = open_writer(&dir, never().with_segment_bytes(4096))
        .await
        .unwrap();
    let mut follower = orca_actors::journal::follow(&dir, 1).unwrap();
    let writer = {
        let h = h.clone();
        tokio::spawn(async move {
            for i in 0..400u64 {
                h.append(batch(1 + i * 2, 2)).await.unwrap();
            }
        })
    };
    for want in 1..=800u64 {
        let env = follower.next().await.unwrap();
        assert_eq!(env.seq, want);
        assert!(
            h.written_seq() >= env.seq,
            "read seq {} while written_seq was {}",
            env.seq,
            h.written_seq()
        );
    }
    writer.await.unwrap();
    assert!(h.written_seq() >= h.last_seq());
    assert_eq!(h.written_seq(), 800);
    assert!(segments(&dir).len() >= 2);
    h.stop().await;
}

/// 32 callers on two workers append concurrently while small segments
/// force a roll-over every few rounds, in both sync modes: callers commit
/// rounds for each other (flat combining) and hand roll-overs to the
/// actor, yet every caller's seqs increase in call order, the acks tile
/// 1..=N without a gap or an overlap, and the files hold exactly what was
/// acknowledged, in seq order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_commit_for_each_other_across_roll_overs() {
    const CALLERS: u64 = 32;
    for (sync, per_caller) in [(SyncMode::Never, 150u64), (SyncMode::Always, 20)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("journal");
        // Callers commit as soon as two batches wait (default: 32).
        let opts = JournalOptions::default()
            .with_sync(sync)
            .with_segment_bytes(2048)
            .with_combine_at(2);
        let (h, _) = open_writer(&dir, opts).await.unwrap();
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(CALLERS as usize));
        let tasks: Vec<_> = (0..CALLERS)
            .map(|c| {
                let (h, start) = (h.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let mut acks = Vec::new();
                    for k in 0..per_caller {
                        // Event numbers name the caller and its k-th batch.
                        let first = (c * per_caller + k) * 3 + 1;
                        let n = 1 + (k % 3) as usize;
                        acks.push((first, n, h.append(batch(first, n)).await.unwrap()));
                    }
                    acks
                })
            })
            .collect();
        let mut ranges = Vec::new();
        let mut want = std::collections::BTreeMap::new();
        for t in tasks {
            // A batch stranded in the queue would hang its caller: fail.
            let acks = tokio::time::timeout(std::time::Duration::from_secs(60), t)
                .await
                .expect("a caller was never answered")
                .unwrap();
            for w in acks.windows(2) {
                assert!(w[0].2.last_seq < w[1].2.first_seq, "{sync:?}: {w:?}");
            }
            for (first, n, ack) in acks {
                assert_eq!(ack.last_seq - ack.first_seq + 1, n as u64);
                ranges.push((ack.first_seq, ack.last_seq));
                for i in 0..n as u64 {
                    want.insert(ack.first_seq + i, first + i);
                }
            }
        }
        ranges.sort();
        let mut next = 1;
        for (a, b) in &ranges {
            assert_eq!(*a, next, "{sync:?}: gap or overlap at {a}");
            next = b + 1;
        }
        let status = h.status().await.unwrap();
        assert_eq!(status.batches, CALLERS * per_caller);
        assert!(
            status.caller_rounds > 0,
            "{sync:?}: no caller ever committed a round: {status:?}"
        );
        h.stop().await;
        let got: Vec<(u64, u64)> = read(&dir, ReadRange::all())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.seq, num(&e))
            })
            .collect();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{sync:?}");
        assert!(
            segments(&dir).len() > 10,
            "{sync:?}: expected many roll-overs"
        );
    }
}
