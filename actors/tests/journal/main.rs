//! Journal tests: real files, real processes (this test binary re-executed
//! as a child writer), no sleeps to wait for readiness.

mod conformance;
mod durability;
mod recovery;
mod views;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use orca_actors::journal::{
    open_writer, read, AppendAck, Envelope, Event, JournalHandle, JournalOptions, NewEvent,
    ReadRange,
};
use orca_actors::spec::config::SyncMode;

/// The event a test appends for number `i`: its fields identify it.
pub fn ev(i: u64) -> NewEvent {
    NewEvent::new(
        format!("/runs/r-test/attempts/t{i}:1"),
        Event::TaskEnqueued {
            run: "r-test".into(),
            task: format!("t{i}"),
            priority: i as i64,
            order: i as u32,
        },
    )
}

/// `n` events numbered from `start`.
pub fn batch(start: u64, n: usize) -> Vec<NewEvent> {
    (start..start + n as u64).map(ev).collect()
}

/// The number an [`ev`] event carries.
pub fn num(env: &Envelope) -> u64 {
    match &env.event {
        Event::TaskEnqueued { priority, .. } => *priority as u64,
        other => panic!("unexpected event {other:?}"),
    }
}

pub fn never() -> JournalOptions {
    JournalOptions::default().with_sync(SyncMode::Never)
}

/// Appends batches of the given sizes, numbering events 1, 2, …; returns
/// the acks and the segment file length after each batch.
pub async fn write_batches(h: &JournalHandle, sizes: &[usize]) -> Vec<AppendAck> {
    let mut next = h.last_seq() + 1;
    let mut acks = Vec::new();
    for &n in sizes {
        let ack = h.append(batch(next, n)).await.expect("append");
        assert_eq!(ack.first_seq, next);
        assert_eq!(ack.last_seq, next + n as u64 - 1);
        next += n as u64;
        acks.push(ack);
    }
    acks
}

/// Every envelope in the journal (panics on an error).
pub fn all(dir: &Path) -> Vec<Envelope> {
    read(dir, ReadRange::all())
        .expect("read")
        .collect::<Result<Vec<_>, _>>()
        .expect("read all")
}

/// Asserts seqs are exactly `1..=n` and each event is `ev(seq)`.
pub fn assert_contiguous(envs: &[Envelope], n: u64) {
    let seqs: Vec<u64> = envs.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    for e in envs {
        assert_eq!(num(e), e.seq, "event content at seq {}", e.seq);
    }
}

/// The segment files, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    orca_actors::journal::segment::list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|s| s.path)
        .collect()
}

/// Copies a journal directory's files (not subdirectories).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

pub fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// A small deterministic PRNG (xorshift64*), seeded per test run.
pub struct Rng(u64);

impl Rng {
    pub fn from_time() -> (Self, u64) {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        (Rng(seed), seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

// ----- child processes -------------------------------------------------------

const CHILD_MODE: &str = "ORCA_JOURNAL_TEST_CHILD";
const CHILD_DIR: &str = "ORCA_JOURNAL_TEST_DIR";
const CHILD_TAG: &str = "ORCA_JOURNAL_TEST_TAG";
/// Marks a protocol line in a child's stdout.
const MARK: &str = "@@";

/// A child process running [`child_entry`] in some mode.
pub struct ChildProc {
    pub child: Child,
    pub lines: std::io::Lines<BufReader<ChildStdout>>,
}

impl ChildProc {
    pub fn spawn(mode: &str, dir: &Path, tag: u64) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
            .env(CHILD_MODE, mode)
            .env(CHILD_DIR, dir)
            .env(CHILD_TAG, tag.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        Self {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The next protocol line (`READY`, `ACK`, `ERR`, `OK`, `WARN`),
    /// skipping the test harness's own output (which may share the line:
    /// `test child_entry ... @@READY`); `None` at end of output.
    pub fn next_line(&mut self) -> Option<String> {
        for line in self.lines.by_ref() {
            let line = line.ok()?;
            if let Some(i) = line.find(MARK) {
                return Some(line[i + MARK.len()..].to_string());
            }
        }
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Not a test of its own: the entry point of child processes. Without the
/// environment variable it does nothing.
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(CHILD_DIR).unwrap());
    let tag: u64 = std::env::var(CHILD_TAG).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let out = |line: String| {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{MARK}{line}");
            let _ = o.flush();
        };
        match mode.as_str() {
            // Append forever with sync `always` from 8 concurrent tasks,
            // printing each acknowledged batch: `ACK first last tag counter`.
            "append" => {
                let (h, report) = match open_writer(&dir, JournalOptions::default()).await {
                    Ok(x) => x,
                    Err(e) => return out(format!("ERR {e}")),
                };
                for w in &report.warnings {
                    out(format!("WARN {w}"));
                }
                out(format!("READY {}", report.last_seq));
                let mut tasks = Vec::new();
                for t in 0..8u64 {
                    let h = h.clone();
                    tasks.push(tokio::spawn(async move {
                        let mut counter = t;
                        loop {
                            let n = 1 + (counter % 3) as usize;
                            let events = (0..n)
                                .map(|j| {
                                    NewEvent::new(
                                        "/child",
                                        Event::TaskEnqueued {
                                            run: format!("kill-{tag}"),
                                            task: format!("c{counter}"),
                                            priority: counter as i64,
                                            order: j as u32,
                                        },
                                    )
                                })
                                .collect();
                            match h.append(events).await {
                                Ok(ack) => out(format!(
                                    "ACK {} {} {tag} {counter}",
                                    ack.first_seq, ack.last_seq
                                )),
                                Err(e) => return out(format!("ERR {e}")),
                            }
                            counter += 8;
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            }
            // Hold the writer lock until stdin closes.
            "hold" => {
                let (h, _) = match open_writer(&dir, never()).await {
                    Ok(x) => x,
                    Err(e) => return out(format!("ERR {e}")),
                };
                out("READY".into());
                let _ = tokio::task::spawn_blocking(|| {
                    let mut s = String::new();
                    let _ = std::io::stdin().read_line(&mut s);
                })
                .await;
                h.stop().await;
            }
            // Try to open the writer once.
            "try-open" => match open_writer(&dir, never()).await {
                Ok((h, _)) => {
                    out("OK".into());
                    h.stop().await;
                }
                Err(e) => out(format!("ERR {e}")),
            },
            other => panic!("unknown child mode {other}"),
        }
    });
}
