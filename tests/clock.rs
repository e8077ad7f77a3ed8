//! Clock faults (docs/runbook.md, "Clock steps"): the real
//! binary under libfaketime with the wall clock stepped forwards and
//! backwards while a task timeout and a retry backoff are pending. Their
//! delays are monotonic: neither fires early nor an hour late. The machine's
//! clock is never touched: libfaketime changes only what orca's process
//! (and its children) read from `CLOCK_REALTIME`.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use orca_actors::journal::{follow, Event};
use orca_actors::model::AttemptResult;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Steps the wall clock orca reads: `offset` is libfaketime's relative
/// form (`+1h`, `-1h`, `+0`), re-read at every call (FAKETIME_NO_CACHE).
fn step(file: &Path, offset: &str) {
    std::fs::write(file, format!("{offset}\n")).expect("write the faketime file");
}

fn started(e: &Event, task: &str, n: u32) -> bool {
    matches!(e, Event::AttemptStarted { attempt, .. } if attempt.task == task && attempt.attempt == n)
}

fn finished(e: &Event, task: &str, n: u32) -> bool {
    matches!(e, Event::AttemptFinished { attempt, .. } if attempt.task == task && attempt.attempt == n)
}

#[tokio::test(flavor = "multi_thread")]
async fn timeouts_and_backoffs_keep_their_durations_when_the_wall_clock_steps() {
    if !Path::new(LIBFAKETIME).exists() {
        eprintln!(
            "SKIPPED: {LIBFAKETIME} is missing (Debian package `faketime`; scripts/test.sh installs it)"
        );
        return;
    }
    let ws = TestWs::fast();
    let clock = ws.path("faketime");
    step(&clock, "+0");
    let flag = ws.path("flaky-failed-once");
    // flaky's first attempt fails only once the test writes to this FIFO,
    // after the +1h step: its end is then stamped an hour ahead, whatever
    // the scheduling (without it the -1h step could follow the +1h one
    // before anything was journaled in between).
    let go = ws.path("flaky-go");
    let go_c = std::ffi::CString::new(go.display().to_string()).expect("path");
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(go_c.as_ptr(), 0o600) }, 0, "mkfifo");
    write_rel(
        &ws,
        "clock.toml",
        &format!(
            r#"max_workers = 2
[[tasks]]
id = "slow"
command = "exec sleep 30"
timeout_seconds = 3
retry_policy = {{ max_attempts = 1 }}

[[tasks]]
id = "flaky"
command = 'if [ -e "{flag}" ]; then exit 0; fi; read x < "{go}"; touch "{flag}"; exit 1'
retry_policy = {{ max_attempts = 2, initial_backoff_seconds = 3, jitter = false, retry_on = ["task"] }}
"#,
            flag = flag.display(),
            go = go.display()
        ),
    );
    std::fs::create_dir_all(ws.ws.journal_dir()).expect("mkdir journal");
    let mut f = follow(&ws.ws.journal_dir(), 1).expect("follow");
    let child = orca_cmd(&ws)
        .args(["run", "clock.toml"])
        .current_dir(ws.root())
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME_TIMESTAMP_FILE", &clock)
        .env("FAKETIME_NO_CACHE", "1")
        // NTP steps the wall clock only; the monotonic clock never jumps.
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("orca run");
    let mut child = KillOnDrop(child);

    // The timeout is armed when `slow` starts: the wall clock then jumps an
    // hour ahead. The backoff is decided when `flaky`'s first attempt
    // fails: the wall clock then jumps an hour back (behind the real time)
    // while it is pending. The events come in either order; each is timed
    // when the follower sees it.
    let mut slow_started = None;
    let mut flaky_failed = None;
    let mut backoff = None;
    let mut timeout = None;
    let mut timed_out = None;
    let deadline = Instant::now() + WAIT_LIMIT;
    while timeout.is_none() || backoff.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = tokio::time::timeout(left, f.next())
            .await
            .expect("the timeout and the retry came in time")
            .expect("journal follower");
        if started(&e.event, "slow", 1) {
            slow_started = Some(Instant::now());
            step(&clock, "+1h");
            // Opening a FIFO blocks until flaky reads it: a thread of its
            // own, never joined (a failed test must not wait on it).
            let go = go.clone();
            std::thread::spawn(move || std::fs::write(go, b"go\n"));
        } else if finished(&e.event, "flaky", 1) {
            flaky_failed = Some(Instant::now());
            step(&clock, "-1h");
        } else if started(&e.event, "flaky", 2) {
            backoff = flaky_failed.map(|t| t.elapsed());
        } else if finished(&e.event, "slow", 1) {
            timeout = slow_started.map(|t| t.elapsed());
            timed_out = Some(e);
        }
    }
    let (Some(timeout), Some(backoff), Some(timed_out)) = (timeout, backoff, timed_out) else {
        unreachable!()
    };
    let status = tokio::task::spawn_blocking(move || child.0.wait())
        .await
        .unwrap()
        .expect("orca run exits");
    eprintln!("timeout 3 s took {timeout:?}; backoff 3 s took {backoff:?}; orca run: {status}");
    assert!(
        matches!(
            &timed_out.event,
            Event::AttemptFinished {
                result: AttemptResult::Timeout,
                ..
            }
        ),
        "{timed_out:?}"
    );
    // Not early (a wall-clock deadline would have passed at once after
    // +1h) and not an hour late (after -1h).
    let ok = Duration::from_millis(2_500)..Duration::from_secs(20);
    assert!(ok.contains(&timeout), "the 3 s timeout took {timeout:?}");
    assert!(ok.contains(&backoff), "the 3 s backoff took {backoff:?}");
    // orca did read the stepped clock: a batch stamped an hour ahead, and
    // flaky's second attempt started an hour behind the real time...
    let all = ws.journal();
    let real = orca_actors::model::Timestamp::now();
    let half_hour = 30 * 60 * 1_000_000_000_i64;
    assert!(
        all.iter().any(|e| e.at.0 > real.0 + half_hour),
        "no timestamp from the +1h step"
    );
    assert!(
        all.iter()
            .any(|e| matches!(&e.event, Event::ReceiptRecorded(r)
            if r.task == "flaky" && r.attempt == 2 && r.started.0 < real.0 - half_hour)),
        "flaky's second attempt did not start under the -1h step"
    );
    // ...and the journal's timestamps never go back, whatever it did.
    assert!(all.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(all.iter().any(|e| matches!(&e.event, Event::AttemptFinished { attempt, result: AttemptResult::Pass, .. } if attempt.task == "flaky" && attempt.attempt == 2)));
    assert!(all
        .iter()
        .any(|e| matches!(&e.event, Event::RunFinished { .. })));
}
