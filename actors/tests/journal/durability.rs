//! Durability: syncs per batch, group commit, a failing fdatasync, SIGKILL
//! at random moments, and the lock across processes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use orca_actors::journal::{
    follow, open_writer, JournalError, JournalHealth, JournalOptions, SyncEvent, SyncKind,
};

use super::*;

/// Records every sync: its kind and the file's length when it happened.
fn recording_hook(log: Arc<Mutex<Vec<(SyncKind, u64)>>>) -> orca_actors::journal::SyncHook {
    Arc::new(move |ev: &SyncEvent| {
        let len = std::fs::metadata(&ev.path).map(|m| m.len()).unwrap_or(0);
        log.lock().unwrap().push((ev.kind, len));
        Ok(())
    })
}

fn data_syncs(log: &Mutex<Vec<(SyncKind, u64)>>) -> Vec<u64> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k == SyncKind::Data)
        .map(|(_, len)| *len)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fdatasync_per_batch_before_the_ack_and_none_with_never() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("always");
    let log = Arc::new(Mutex::new(Vec::new()));
    let opts = JournalOptions::default().with_sync_hook(recording_hook(log.clone()));
    let (h, _) = open_writer(&dir, opts).await.unwrap();
    let seg = segments(&dir)[0].clone();
    // Creating the first segment synced its header and the directory.
    assert!(log
        .lock()
        .unwrap()
        .iter()
        .any(|(k, _)| *k == SyncKind::NewSegment));
    assert!(data_syncs(&log).is_empty());
    let mut next = 1;
    for i in 0..20u64 {
        let n = 1 + (i % 4) as usize;
        h.append(batch(next, n)).await.unwrap();
        next += n as u64;
        let syncs = data_syncs(&log);
        // Exactly one data sync per batch so far, and the last one happened
        // after this batch's bytes were written (the file had its final
        // length), i.e. before the ack.
        assert_eq!(syncs.len() as u64, i + 1, "syncs after batch {i}");
        assert_eq!(
            *syncs.last().unwrap(),
            file_len(&seg),
            "sync covered batch {i}"
        );
    }
    h.stop().await;

    let dir = tmp.path().join("never");
    let log = Arc::new(Mutex::new(Vec::new()));
    let opts = never().with_sync_hook(recording_hook(log.clone()));
    let (h, _) = open_writer(&dir, opts.with_segment_bytes(400))
        .await
        .unwrap();
    write_batches(&h, &[3; 30]).await;
    h.stop().await;
    assert!(segments(&dir).len() > 2, "rolled over");
    assert!(
        log.lock().unwrap().is_empty(),
        "no sync of any kind with `never`"
    );
    assert_contiguous(&all(&dir), 90);
}

/// A sync hook that blocks the `block_at`-th data sync until released, and
/// fails the `fail_at`-th.
struct Gate {
    count: AtomicUsize,
    entered: tokio::sync::Notify,
    release: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

fn gated_hook(
    gate: Arc<Gate>,
    block_at: usize,
    fail_at: Option<usize>,
) -> orca_actors::journal::SyncHook {
    Arc::new(move |ev: &SyncEvent| {
        if ev.kind != SyncKind::Data {
            return Ok(());
        }
        let n = gate.count.fetch_add(1, Ordering::SeqCst) + 1;
        if n == block_at {
            gate.entered.notify_one();
            if let Some(rx) = gate.release.lock().unwrap().take() {
                let _ = rx.recv();
            }
        }
        if Some(n) == fail_at {
            return Err(std::io::Error::other("injected EIO"));
        }
        Ok(())
    })
}

/// Waits until the actor has written `n` batches (each status request is a
/// round trip through its mailbox, behind the drains that write them).
async fn written(h: &orca_actors::journal::JournalHandle, n: u64) {
    while h.status().await.unwrap().batches < n {
        tokio::task::yield_now().await;
    }
}

fn gate() -> (Arc<Gate>, std::sync::mpsc::Sender<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    (
        Arc::new(Gate {
            count: AtomicUsize::new(0),
            entered: tokio::sync::Notify::new(),
            release: Mutex::new(Some(rx)),
        }),
        tx,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_arriving_during_a_sync_share_the_next_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let (g, release) = gate();
    let opts = JournalOptions::default().with_sync_hook(gated_hook(g.clone(), 1, None));
    let (h, _) = open_writer(&dir, opts).await.unwrap();
    let first = h.append(batch(1, 1));
    g.entered.notified().await; // the first sync is in flight
                                // 63 more callers arrive while it is: they are queued when called, and
                                // the actor writes them (in one or more rounds) while the sync blocks.
    let rest: Vec<_> = (2..=64u64).map(|i| h.append(batch(i, 1))).collect();
    written(&h, 64).await;
    release.send(()).unwrap();
    assert_eq!(first.await.unwrap().first_seq, 1);
    for (i, f) in rest.into_iter().enumerate() {
        assert_eq!(f.await.unwrap().first_seq, i as u64 + 2);
    }
    assert_eq!(
        g.count.load(Ordering::SeqCst),
        2,
        "one sync for the first, one for the other 63"
    );
    assert_eq!(h.status().await.unwrap().data_syncs, 2);
    h.stop().await;
    assert_contiguous(&all(&dir), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fdatasync_fails_its_callers_and_refuses_further_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    // Syncs 1-3 succeed (three batches); sync 4 blocks while ten callers
    // queue up, then succeeds; sync 5 (those ten, one group) fails.
    let (g, release) = gate();
    let opts = JournalOptions::default().with_sync_hook(gated_hook(g.clone(), 4, Some(5)));
    let (h, _) = open_writer(&dir, opts).await.unwrap();
    write_batches(&h, &[1, 1, 1]).await;
    let fourth = h.append(batch(4, 1));
    g.entered.notified().await;
    let group: Vec<_> = (5..15u64).map(|i| h.append(batch(i, 1))).collect();
    written(&h, 14).await;
    release.send(()).unwrap();
    assert_eq!(fourth.await.unwrap().last_seq, 4);
    for f in group {
        let err = f.await.unwrap_err();
        assert!(
            matches!(&err, JournalError::SyncFailed { reason, .. } if reason.contains("injected EIO")),
            "{err}"
        );
    }
    assert_eq!(
        g.count.load(Ordering::SeqCst),
        5,
        "the failed sync is not retried"
    );
    match h.health() {
        JournalHealth::Failed(reason) => assert!(reason.contains("injected EIO"), "{reason}"),
        other => panic!("health {other:?}"),
    }
    let err = h.append(batch(15, 1)).await.unwrap_err();
    assert!(matches!(err, JournalError::Failed { .. }), "{err}");
    assert_eq!(
        g.count.load(Ordering::SeqCst),
        5,
        "refused appends do not sync"
    );
    assert_eq!(
        h.last_seq(),
        4,
        "only acknowledged batches count as durable"
    );
    h.stop().await;
    // Reopening recovers from disk: every acknowledged batch is there.
    let (h, report) = open_writer(&dir, never()).await.unwrap();
    assert!(report.last_seq >= 4);
    h.stop().await;
    let envs = all(&dir);
    assert_contiguous(&envs[..4], 4);
}

#[test]
fn a_second_writer_process_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    // A child holds the writer; this process is refused, naming its pid.
    let mut holder = ChildProc::spawn("hold", &dir, 0);
    assert_eq!(holder.next_line().as_deref(), Some("READY"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt.block_on(open_writer(&dir, never())).unwrap_err();
    assert!(
        matches!(err, JournalError::Locked { pid: Some(p), .. } if p == holder.pid()),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!("pid {}", holder.pid())),
        "{err}"
    );
    // Closing its stdin makes it stop and release the lock.
    drop(holder.child.stdin.take());
    assert!(holder.child.wait().unwrap().success());
    // Now this process writes, and a child is refused naming our pid.
    let (h, _) = rt.block_on(open_writer(&dir, never())).unwrap();
    let mut second = ChildProc::spawn("try-open", &dir, 0);
    let line = second.next_line().unwrap();
    assert!(
        line.starts_with("ERR ") && line.contains(&format!("pid {}", std::process::id())),
        "{line}"
    );
    rt.block_on(h.stop());
    let mut third = ChildProc::spawn("try-open", &dir, 0);
    assert_eq!(third.next_line().as_deref(), Some("OK"));
}

/// The kill test: a child appends with sync `always` from 8 tasks and prints
/// every acknowledged batch; it is SIGKILLed at a random moment, 50 times.
/// After each kill the journal reopens with every acknowledged event present,
/// in order, with no gaps.
#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let (mut rng, seed) = Rng::from_time();
    eprintln!("kill test seed {seed}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // first seq -> (last seq, tag, counter) of every acknowledged batch.
    let mut acked: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new();
    let mut kills_mid_append = 0;
    for round in 0..50u64 {
        let mut child = ChildProc::spawn("append", &dir, round);
        let watchdog = watchdog(child.pid());
        let mut ready = None;
        while ready.is_none() {
            let line = child.next_line().expect("child output");
            if let Some(rest) = line.strip_prefix("READY ") {
                ready = Some(rest.parse::<u64>().unwrap());
            } else {
                assert!(line.starts_with("WARN torn tail"), "round {round}: {line}");
            }
        }
        // The recovered journal holds at least every batch acknowledged so far.
        let durable = acked.values().map(|v| v.0).max().unwrap_or(0);
        assert!(
            ready.unwrap() >= durable,
            "round {round}: reopened at {ready:?} < {durable}"
        );
        let kill_after = rng.below(25);
        let mut seen = 0;
        while seen < kill_after {
            let line = child.next_line().expect("child output");
            record_ack(&line, &mut acked, round);
            seen += 1;
        }
        child.kill();
        drop(watchdog);
        // Acks printed before the kill are still in the pipe: they count.
        while let Some(line) = child.next_line() {
            record_ack(&line, &mut acked, round);
            kills_mid_append += 1;
        }
        check_acked(&rt, &dir, &acked, round);
    }
    assert!(
        acked.len() > 100,
        "only {} batches acknowledged",
        acked.len()
    );
    eprintln!(
        "{} acknowledged batches; {kills_mid_append} acks raced the kill",
        acked.len()
    );
}

fn record_ack(line: &str, acked: &mut BTreeMap<u64, (u64, u64, u64)>, round: u64) {
    let Some(rest) = line.strip_prefix("ACK ") else {
        panic!("round {round}: unexpected line {line}");
    };
    let f: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
    assert_eq!(f[2], round);
    assert!(
        acked.insert(f[0], (f[1], f[2], f[3])).is_none(),
        "seq {} acked twice",
        f[0]
    );
}

/// Reopens the journal (recovery) and checks every acknowledged batch.
fn check_acked(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    acked: &BTreeMap<u64, (u64, u64, u64)>,
    round: u64,
) {
    let (h, report) = rt.block_on(open_writer(dir, never())).unwrap();
    rt.block_on(h.stop());
    let envs = all(dir);
    assert_eq!(envs.len() as u64, report.last_seq, "round {round}");
    assert!(
        envs.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1),
        "round {round}: seqs have a gap or go backwards"
    );
    for (&first, &(last, tag, counter)) in acked {
        assert!(
            last <= report.last_seq,
            "round {round}: acked seq {last} lost"
        );
        for seq in first..=last {
            match &envs[seq as usize - 1].event {
                Event::TaskEnqueued {
                    run,
                    priority,
                    order,
                    ..
                } => {
                    assert_eq!(run, &format!("kill-{tag}"), "seq {seq}");
                    assert_eq!(*priority as u64, counter, "seq {seq}");
                    assert_eq!(u64::from(*order), seq - first, "seq {seq}");
                }
                other => panic!("seq {seq}: {other:?}"),
            }
        }
    }
}

/// Kills `pid` if the test is still waiting on it after a minute (a hung
/// child would otherwise hang the test). Dropping the guard disarms it.
fn watchdog(pid: u32) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            rx.recv_timeout(std::time::Duration::from_secs(60))
        {
            // SAFETY: signalling a child process we spawned.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    tx
}

/// A reader in this process follows a writer in another one.
#[test]
fn follow_a_writer_in_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut follower = follow(&dir, 1).unwrap();
    let mut child = ChildProc::spawn("append", &dir, 7);
    let _watchdog = watchdog(child.pid());
    let got = rt.block_on(async {
        let mut got = Vec::new();
        while got.len() < 200 {
            got.push(follower.next().await.unwrap());
        }
        got
    });
    child.kill();
    assert!(got.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
    let on_disk = all(&dir);
    assert_eq!(&on_disk[..200], &got[..]);
}
