//! The journal against raw baselines measured in the same run, on the same
//! data (`cargo bench --bench journal`; `-- --quick` for a smaller run).
//!
//! (a) 1,000,000 ~100-byte events appended in batches of 1-5 (as actors
//!     append them) by 64 concurrent callers through the writer actor with
//!     sync `never`, vs one thread that encodes, checksums and writes the
//!     same frames through a `BufWriter`. Target: orca time <= 1.5x raw.
//! (b) Durable appends (sync `always`) from 64 concurrent callers through
//!     the actor, vs 64 threads feeding a raw thread that does group-commit
//!     `fdatasync`. Target: orca throughput >= 0.8x raw.
//! (c) Replaying the 1,000,000 events of (a) through a projection, vs a raw
//!     read + CRC check of the same file. Target: >= 3,000,000 events/s.
//!
//! Both sides build each batch right before handing it over (clones of
//! 1,000 template events) and free it afterwards, as actors do; the
//! callers are tokio tasks on a 2-worker runtime (`ORCA_BENCH_WORKERS`), the
//! raw producers OS threads. `ORCA_BENCH_VERBOSE=1` also prints each round
//! and the CPU time each side used; `ORCA_BENCH_ONLY=a|b|c` (or `ac`, …) and
//! `ORCA_BENCH_ROUNDS=N` help profiling.
//!
//! Anchors: NOTES.md's baselines on this machine (BufWriter of 93-byte
//! frames 3.4-5.1 M records/s; group commit with 64 producers 65-86 k
//! durable records/s; replay with CRC + decode ~9.4 M records/s).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read as _, Write as _};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use orca_actors::journal::{
    open_writer, replay, Envelope, Event, JournalOptions, NewEvent, Projection,
};
use orca_actors::model::AttemptRef;
use orca_actors::spec::config::SyncMode;

const CALLERS: usize = 64;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n_events: usize = if quick { 200_000 } else { 1_000_000 };
    let n_durable: usize = if quick { 6_400 } else { 32_000 };
    let rounds: usize = std::env::var("ORCA_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { 2 } else { 3 });
    let tmp = tempfile::Builder::new()
        .prefix("orca-journal-bench")
        .tempdir_in(std::env::var_os("ORCA_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into))
        .expect("temp dir");
    // ORCA_BENCH_WORKERS=N: tokio worker threads (default 2, one per core
    // here); 0 for a current-thread runtime.
    let workers: usize = std::env::var("ORCA_BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    let rt = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .expect("runtime");

    let t = templates();
    let bounds_a = batch_bounds(n_events, false);
    let bounds_b = batch_bounds(n_durable, true);
    let record_bytes: usize = (0..n_events).map(|i| record_len(&t[i % t.len()])).sum();
    println!(
        "journal bench: {} events, {:.0} bytes per record on average, batches of 1-5 ({} batches), {} callers, {} CPUs",
        n_events,
        record_bytes as f64 / n_events as f64,
        bounds_a.len(),
        CALLERS,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // ORCA_BENCH_ONLY=a|b|c runs one part, `ac` two (for profiling).
    let only = std::env::var("ORCA_BENCH_ONLY").unwrap_or_default();
    let run = |part: &str| only.is_empty() || only.contains(part);

    // ----- (a) ---------------------------------------------------------------
    if run("a") {
        let mut raw_a = Vec::new();
        let mut orca_a = Vec::new();
        for r in 0..rounds {
            let path = tmp.path().join(format!("raw-a-{r}"));
            let cpu = cpu_time();
            let wall = raw_buffered(&path, &bounds_a, &t);
            raw_a.push((wall, cpu_time() - cpu));
            if verbose() {
                eprintln!(
                    "    raw {:.3} s, cpu {:.3} s",
                    wall.as_secs_f64(),
                    raw_a[r].1.as_secs_f64()
                );
            }
            std::fs::remove_file(&path).ok();
            let dir = tmp.path().join(format!("orca-a-{r}"));
            orca_a.push(rt.block_on(orca_append(&dir, &bounds_a, &t, SyncMode::Never)));
            if r + 1 < rounds {
                std::fs::remove_dir_all(&dir).ok();
            }
        }
        let walls = |v: &[(Duration, Duration)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
        let cpus = |v: &[(Duration, Duration)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
        let (raw_t, orca_t) = (best(&walls(&raw_a)), best(&walls(&orca_a)));
        let ratio_a = orca_t.as_secs_f64() / raw_t.as_secs_f64();
        let median_ratio =
            median(&walls(&orca_a)).as_secs_f64() / median(&walls(&raw_a)).as_secs_f64();
        let cpu_ratio = median(&cpus(&orca_a)).as_secs_f64() / median(&cpus(&raw_a)).as_secs_f64();
        println!(
            "(a) append, sync never:  raw BufWriter {:.3} s ({:.2} M ev/s) | orca actor {:.3} s ({:.2} M ev/s) | orca/raw time = {:.2}x, best of {rounds} (target <= 1.5x) {} [median {:.2}x; CPU time {:.2}x]",
            raw_t.as_secs_f64(),
            n_events as f64 / raw_t.as_secs_f64() / 1e6,
            orca_t.as_secs_f64(),
            n_events as f64 / orca_t.as_secs_f64() / 1e6,
            ratio_a,
            verdict(ratio_a <= 1.5),
            median_ratio,
            cpu_ratio,
        );
    }

    // ----- (b) ---------------------------------------------------------------
    if run("b") {
        let mut raw_b = Vec::new();
        let mut orca_b = Vec::new();
        for r in 0..rounds {
            let path = tmp.path().join(format!("raw-b-{r}"));
            raw_b.push(raw_group_commit(&path, &bounds_b, &t));
            if std::env::var_os("ORCA_BENCH_VERBOSE").is_some() {
                eprintln!("    raw {:.3} s", raw_b[r].as_secs_f64());
            }
            std::fs::remove_file(&path).ok();
            let dir = tmp.path().join(format!("orca-b-{r}"));
            orca_b.push(
                rt.block_on(orca_append(&dir, &bounds_b, &t, SyncMode::Always))
                    .0,
            );
            std::fs::remove_dir_all(&dir).ok();
        }
        let raw_tp = n_durable as f64 / median(&raw_b).as_secs_f64();
        let orca_tp = n_durable as f64 / median(&orca_b).as_secs_f64();
        let ratio_b = orca_tp / raw_tp;
        println!(
        "(b) durable, 64 callers: raw group commit {:.1} k ev/s | orca actor {:.1} k ev/s | orca/raw throughput = {:.2}x, medians of {rounds} (target >= 0.8x) {}",
        raw_tp / 1e3,
        orca_tp / 1e3,
        ratio_b,
        verdict(ratio_b >= 0.8)
    );
    }

    // ----- (c) ---------------------------------------------------------------
    if !run("c") {
        return;
    }
    let dir = tmp.path().join(format!("orca-a-{}", rounds - 1));
    if !dir.exists() {
        rt.block_on(orca_append(&dir, &bounds_a, &t, SyncMode::Never));
    }
    let mut raw_c = Vec::new();
    let mut orca_c = Vec::new();
    let skip_raw = std::env::var_os("ORCA_BENCH_SKIP_RAW").is_some();
    for _ in 0..rounds {
        if !skip_raw || raw_c.is_empty() {
            raw_c.push(raw_read_crc(&dir, n_events));
        }
        let t = Instant::now();
        let mut p = TypeCounts::default();
        let last = replay(&dir, 1, &mut p).expect("replay");
        orca_c.push(t.elapsed());
        assert_eq!((last, p.n), (n_events as u64, n_events as u64));
    }
    let raw_rate = n_events as f64 / best(&raw_c).as_secs_f64();
    let orca_rate = n_events as f64 / best(&orca_c).as_secs_f64();
    println!(
        "(c) replay:              raw read+CRC {:.1} M ev/s | orca projection {:.2} M ev/s ({:.3} s), best of {rounds} | orca/raw = {:.2}x; target >= 3 M ev/s {}",
        raw_rate / 1e6,
        orca_rate / 1e6,
        best(&orca_c).as_secs_f64(),
        orca_rate / raw_rate,
        verdict(orca_rate >= 3e6)
    );
}

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we pass it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn verbose() -> bool {
    std::env::var_os("ORCA_BENCH_VERBOSE").is_some()
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

fn best(v: &[Duration]) -> Duration {
    v.iter().copied().min().unwrap_or_default()
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

/// Where each batch starts and how many events it has: 1-5 (or all 1).
fn batch_bounds(n: usize, single: bool) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(n / 2 + 1);
    let mut i = 0usize;
    while i < n {
        let size = if single {
            1
        } else {
            (1 + (i * 7 + 3) % 5).min(n - i)
        };
        out.push((i, size));
        i += size;
    }
    out
}

/// 1,000 distinct ~100-byte events of the kinds a run journals.
fn templates() -> Arc<Vec<NewEvent>> {
    Arc::new((0..1000).map(event).collect())
}

/// The batch at `start`: clones of templates, made right before it is
/// handed over — as an actor builds the events it appends — so both sides
/// allocate and free events the way a running orca does (building every
/// event up front and freeing them in bulk measured glibc's chunk
/// coalescing more than the journal).
fn batch(t: &[NewEvent], (start, size): (usize, usize)) -> Vec<NewEvent> {
    (start..start + size)
        .map(|i| t[i % t.len()].clone())
        .collect()
}

fn event(i: usize) -> NewEvent {
    let attempt = AttemptRef::new(
        "r-261121073500-a1b2",
        format!("task-{:04}", i % 1000),
        1 + (i % 3) as u32,
    );
    let actor = attempt.actor_path();
    let event = match i % 4 {
        0 => Event::WorkerReported {
            attempt,
            event: orca_actors::journal::event::WorkerEvent::RunningTool {
                tool: "bash -lc 'cargo test'".into(),
            },
        },
        1 => Event::WorkerReported {
            attempt,
            event: orca_actors::journal::event::WorkerEvent::Usage {
                tokens: 12_345 + i as u64,
                tool_calls: 17,
            },
        },
        2 => Event::AttemptStarted {
            attempt,
            worker: "local-3".into(),
            host: "local".into(),
            pid: 40_000 + i as u32 % 20_000,
            pgid: 40_000 + i as i32 % 20_000,
            proc_start: 1_234_567 + i as u64,
            counted: true,
        },
        _ => Event::AttemptExited {
            attempt,
            exit_code: Some(0),
            signal: None,
        },
    };
    NewEvent::new(actor, event)
}

fn record_len(e: &NewEvent) -> usize {
    let mut v = Vec::new();
    encode_record(&mut v, e);
    v.len()
}

/// The journal's record encoding, written independently for the baseline.
fn encode_record(out: &mut Vec<u8>, e: &NewEvent) {
    let cfg = bincode::config::standard();
    bincode::encode_into_std_write(orca_actors::journal::EVENT_SCHEMA_VERSION, out, cfg).unwrap();
    bincode::encode_into_std_write(e.actor.as_str(), out, cfg).unwrap();
    bincode::serde::encode_into_std_write(&e.event, out, cfg).unwrap();
}

/// Appends one frame (`len | crc32c | head | records`) for `batch` to `out`.
fn encode_frame(out: &mut Vec<u8>, first_seq: u64, batch: &[NewEvent]) {
    let cfg = bincode::config::standard();
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    bincode::encode_into_std_write(first_seq, out, cfg).unwrap();
    bincode::encode_into_std_write(orca_actors::model::Timestamp::now().nanos(), out, cfg).unwrap();
    bincode::encode_into_std_write(batch.len() as u32, out, cfg).unwrap();
    for e in batch {
        encode_record(out, e);
    }
    let len = ((out.len() - start - 8) as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// (a) raw: build, encode, checksum and write every frame through a
/// BufWriter.
fn raw_buffered(path: &Path, bounds: &[(usize, usize)], t: &[NewEvent]) -> Duration {
    let t0 = Instant::now();
    let mut w = BufWriter::with_capacity(64 << 10, File::create(path).unwrap());
    let mut frame = Vec::with_capacity(1024);
    let mut seq = 1;
    for &b in bounds {
        let events = batch(t, b);
        frame.clear();
        encode_frame(&mut frame, seq, &events);
        seq += events.len() as u64;
        w.write_all(&frame).unwrap();
    }
    w.flush().unwrap();
    t0.elapsed()
}

/// orca: `CALLERS` tasks, each appending its share of the batches one after
/// another (building each right before appending it), each waiting for its
/// answer.
async fn orca_append(
    dir: &Path,
    bounds: &[(usize, usize)],
    templates: &Arc<Vec<NewEvent>>,
    sync: SyncMode,
) -> (Duration, Duration) {
    let opts = JournalOptions::default().with_sync(sync);
    let (h, _) = open_writer(dir, opts).await.unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(CALLERS + 1));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|k| {
            let h = h.clone();
            let start = start.clone();
            let t = templates.clone();
            let mine: Vec<_> = bounds.iter().copied().skip(k).step_by(CALLERS).collect();
            tokio::spawn(async move {
                start.wait().await;
                for b in mine {
                    h.append(batch(&t, b)).await.unwrap();
                }
            })
        })
        .collect();
    start.wait().await;
    let t = Instant::now();
    let cpu = cpu_time();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = t.elapsed();
    let cpu = cpu_time() - cpu;
    if verbose() {
        let s = h.status().await.unwrap();
        eprintln!(
            "    orca {:?} {:.3} s, cpu {:.3} s: {} batches in {} rounds ({:.1} per round; {} committed by callers), {} data syncs",
            sync,
            elapsed.as_secs_f64(),
            cpu.as_secs_f64(),
            s.batches,
            s.rounds,
            s.batches as f64 / s.rounds.max(1) as f64,
            s.caller_rounds,
            s.data_syncs
        );
    }
    h.stop().await;
    (elapsed, cpu)
}

/// (b) raw: 64 producer threads hand events to one writer thread that
/// encodes them, writes and `fdatasync`s once per group, then unparks
/// exactly the producers of that group (no thundering herd).
fn raw_group_commit(path: &Path, bounds: &[(usize, usize)], t: &Arc<Vec<NewEvent>>) -> Duration {
    type Waiter = (std::thread::Thread, Arc<std::sync::atomic::AtomicBool>);
    type Pending = Vec<(Vec<NewEvent>, Waiter)>;
    struct Shared {
        queue: Mutex<(Pending, bool)>, // pending, done
        more: Condvar,
    }
    let shared = Arc::new(Shared {
        queue: Mutex::new((Vec::new(), false)),
        more: Condvar::new(),
    });
    let file = File::create(path).unwrap();
    let writer = {
        let shared = shared.clone();
        std::thread::spawn(move || {
            let mut file = file;
            let mut buf = Vec::new();
            let mut seq = 1;
            let mut group = Vec::new();
            loop {
                {
                    let mut q = shared.queue.lock().unwrap();
                    while q.0.is_empty() && !q.1 {
                        q = shared.more.wait(q).unwrap();
                    }
                    if q.0.is_empty() {
                        return;
                    }
                    std::mem::swap(&mut q.0, &mut group);
                }
                buf.clear();
                for (b, _) in &group {
                    encode_frame(&mut buf, seq, b);
                    seq += b.len() as u64;
                }
                file.write_all(&buf).unwrap();
                file.sync_data().unwrap();
                for (_, (thread, done)) in group.drain(..) {
                    done.store(true, std::sync::atomic::Ordering::Release);
                    thread.unpark();
                }
            }
        })
    };
    let start = Arc::new(std::sync::Barrier::new(CALLERS + 1));
    let producers: Vec<_> = (0..CALLERS)
        .map(|k| {
            let shared = shared.clone();
            let start = start.clone();
            let t = t.clone();
            let mine: Vec<_> = bounds.iter().copied().skip(k).step_by(CALLERS).collect();
            std::thread::spawn(move || {
                start.wait();
                for bounds in mine {
                    let b = batch(&t, bounds);
                    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    {
                        let mut q = shared.queue.lock().unwrap();
                        q.0.push((b, (std::thread::current(), done.clone())));
                    }
                    shared.more.notify_one();
                    while !done.load(std::sync::atomic::Ordering::Acquire) {
                        std::thread::park();
                    }
                }
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    for p in producers {
        p.join().unwrap();
    }
    let elapsed = t.elapsed();
    shared.queue.lock().unwrap().1 = true;
    shared.more.notify_one();
    writer.join().unwrap();
    elapsed
}

/// (c) raw: read the segments and check every frame's CRC (no decoding).
fn raw_read_crc(dir: &Path, expected_frames_at_least: usize) -> Duration {
    let t = Instant::now();
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    let mut frames = 0usize;
    let mut events = 0usize;
    for seg in segments {
        let mut bytes = Vec::new();
        File::open(&seg).unwrap().read_to_end(&mut bytes).unwrap();
        let mut i = 32;
        while i + 8 <= bytes.len() {
            let len_b = [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
            let len = u32::from_le_bytes(len_b) as usize;
            let crc = u32::from_le_bytes([bytes[i + 4], bytes[i + 5], bytes[i + 6], bytes[i + 7]]);
            let payload = &bytes[i + 8..i + 8 + len];
            assert_eq!(crc32c::crc32c_append(crc32c::crc32c(&len_b), payload), crc);
            // The event count is the third varint of the head.
            let (_, a): (u64, usize) =
                bincode::decode_from_slice(payload, bincode::config::standard()).unwrap();
            let (_, b): (i64, usize) =
                bincode::decode_from_slice(&payload[a..], bincode::config::standard()).unwrap();
            let (count, _): (u32, usize) =
                bincode::decode_from_slice(&payload[a + b..], bincode::config::standard()).unwrap();
            events += count as usize;
            frames += 1;
            i += 8 + len;
        }
    }
    assert!(frames > 0 && events == expected_frames_at_least);
    t.elapsed()
}

/// A small projection: counts per event type.
#[derive(Default)]
struct TypeCounts {
    by_type: HashMap<&'static str, u64>,
    n: u64,
}

impl Projection for TypeCounts {
    fn apply(&mut self, env: &Envelope) {
        *self.by_type.entry(env.event.type_name()).or_default() += 1;
        self.n += 1;
    }
}
