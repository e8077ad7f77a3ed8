//! `orca run` end to end through the real binary: the smoke example, exit
//! codes, offline views, memory under a loud worker, and SIGKILL in the
//! middle of a 200-task run followed by `--resume`.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use orca_actors::journal::event::InterruptCause;
use orca_actors::journal::{follow, Event};
use orca_actors::model::{AttemptResult, RunStatus};
use orca_actors::view::{RunSummary, TreeNode};

fn orca_bin() -> &'static str {
    env!("CARGO_BIN_EXE_orca")
}

fn write(ws: &TestWs, name: &str, text: &str) -> std::path::PathBuf {
    let p = ws.path(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn the_smoke_example_passes_and_views_read_it() {
    let ws = TestWs::fast();
    let out = orca_cmd(&ws)
        .args(["run", "examples/smoke.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for task in [
        "build",
        "expected-exit",
        "write-file",
        "grep-output",
        "json-report",
        "flaky",
        "in-time",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(task) && l.contains(" pass ")),
            "{task} did not pass:\n{stdout}"
        );
    }
    let status = orca_cmd(&ws).args(["status", "--json"]).output().unwrap();
    let runs: Vec<RunSummary> = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Passed);
    assert_eq!(runs[0].counts.passed, 7);
    assert_eq!(runs[0].restarts, 1, "flaky was retried once");
    let text = orca_cmd(&ws)
        .args(["status", &runs[0].run[..8]])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("passed 7"));
    let tree = orca_cmd(&ws).args(["tree", "--json"]).output().unwrap();
    let root: TreeNode = serde_json::from_slice(&tree.stdout).unwrap();
    let run_node = &orca_actors::view::runs_node(&root).unwrap().children[0];
    assert_eq!(run_node.state, "passed");
    assert!(run_node
        .children
        .iter()
        .any(|c| c.name == "attempt:flaky:2" && c.restarts == 1));
    let text = orca_cmd(&ws).arg("tree").output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("└── runs"));
}

#[test]
fn exit_codes_reflect_the_receipts() {
    let ws = TestWs::fast();
    let cases = [
        ("fails.toml", "[[tasks]]\nid = \"f\"\ncommand = \"exit 1\"\n", 1),
        ("manual.toml", "[[tasks]]\nid = \"m\"\ncommand = \"true\"\nscorer = { kind = \"manual\" }\n", 3),
        (
            "escalates.toml",
            "supervision = { max_restarts = 0 }\n[[tasks]]\nid = \"e\"\ncommand = \"exit 1\"\nretry_policy = { retry_on = [\"task\"], initial_backoff_seconds = 0 }\n",
            5,
        ),
        ("invalid.toml", "[[tasks]]\nid = \".bad\"\ncommand = \"true\"\n", 2),
        ("passes.toml", "[[tasks]]\nid = \"p\"\ncommand = \"true\"\n", 0),
    ];
    for (name, text, code) in cases {
        let spec = write(&ws, name, text);
        let out = orca_cmd(&ws).arg("run").arg(&spec).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A duration no clock can hold is invalid input, not a panic.
    let spec = write(
        &ws,
        "passes.toml",
        "[[tasks]]\nid = \"p\"\ncommand = \"true\"\n",
    );
    for bad in ["1e300", "0", "-1", "NaN"] {
        let out = orca_cmd(&ws)
            .arg("run")
            .arg(&spec)
            .arg(format!("--stale-after={bad}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--stale-after {bad}: {stderr}");
        assert!(stderr.contains("--stale-after"), "{stderr}");
    }
}

#[test]
fn run_creates_a_workspace_where_there_is_none() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.toml"),
        "[[tasks]]\nid = \"t\"\ncommand = \"true\"\n",
    )
    .unwrap();
    let out = Command::new(orca_bin())
        .current_dir(dir.path())
        .env_remove("ORCA_WORKSPACE")
        .args(["run", "t.toml", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("created .orca/"));
    assert!(dir.path().join(".orca/config.toml").is_file());
    let summary: RunSummary = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary.tasks[0].result, Some(AttemptResult::Pass));
}

/// Peak RSS (KiB) of a child, from wait4(2).
fn wait_maxrss(child: &std::process::Child) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(r, child.id() as i32);
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

// The child is reaped by wait4(2), which std's wait() cannot replace: it
// reports the peak RSS.
#[allow(clippy::zombie_processes)]
#[test]
fn memory_stays_flat_under_a_loud_worker() {
    let ws = TestWs::new("[run]\nlog_cap_bytes = 8388608\n[journal]\nsync = \"never\"\n");
    let spec = write(
        &ws,
        "loud.toml",
        "[[tasks]]\nid = \"loud\"\ncommand = \"yes 'a line of output' | head -c 104857600\"\n",
    );
    let child = orca_cmd(&ws)
        .arg("run")
        .arg(&spec)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (code, maxrss_kib) = wait_maxrss(&child);
    assert_eq!(code, 0);
    assert!(
        maxrss_kib < 80 * 1024,
        "orca's peak RSS was {maxrss_kib} KiB for 100 MiB of output"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_run_then_resume_finishes_every_task_once() {
    let ws = TestWs::new("[run]\ngrace_seconds = 1\n");
    let mut spec = String::from("name = \"crashy\"\n");
    for i in 0..5 {
        // Leased first; still running when orca dies; fast once resumed.
        spec.push_str(&format!(
            "[[tasks]]\nid = \"long-{i}\"\ncommand = 'if [ \"$ORCA_ATTEMPT\" = 1 ]; then exec sleep 30; fi'\nmetadata = {{ priority = -1 }}\n"
        ));
    }
    for i in 0..195 {
        spec.push_str(&format!(
            "[[tasks]]\nid = \"t{i:03}\"\ncommand = [\"sleep\", \"0.02\"]\n"
        ));
    }
    let spec_path = write(&ws, "crashy.toml", &spec);
    std::fs::create_dir_all(ws.ws.journal_dir()).unwrap();
    let mut follower = follow(&ws.ws.journal_dir(), 1).unwrap();

    let mut child = KillOnDrop(
        orca_cmd(&ws)
            .arg("run")
            .arg(&spec_path)
            .args(["--max-workers", "8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut run = None;
    let mut finished = 0;
    tokio::time::timeout(Duration::from_secs(60), async {
        while finished < 60 {
            let env = follower.next().await.unwrap();
            match &env.event {
                Event::RunSubmitted(s) => run = Some(s.run.clone()),
                Event::TaskFinished { .. } => finished += 1,
                _ => {}
            }
        }
    })
    .await
    .expect("60 tasks finished");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let run = run.expect("run id");
    let _reap = ReapRun(run.clone());
    let long_alive = procs_with_env(&format!("ORCA_RUN_ID={run}"));
    assert!(
        !long_alive.is_empty(),
        "the long attempts outlived orca (that is the point)"
    );

    let out = orca_cmd(&ws)
        .args(["run", "--resume", &run[..10], "--json"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_gone(&run, "no process of the killed run survives");

    let all = ws.journal();
    let ev = of_run(&all, &run);
    let mut finished_per_task: HashMap<&str, u32> = HashMap::new();
    let mut spans: HashMap<(&str, u32), (u64, Option<u64>)> = HashMap::new();
    for e in &ev {
        match &e.event {
            Event::TaskFinished { task, result, .. } => {
                *finished_per_task.entry(task.as_str()).or_default() += 1;
                assert_eq!(*result, AttemptResult::Pass, "{task}");
            }
            Event::AttemptStarted { attempt, .. } => {
                spans.insert((attempt.task.as_str(), attempt.attempt), (e.seq, None));
            }
            Event::AttemptFinished { attempt, .. } => {
                if let Some(s) = spans.get_mut(&(attempt.task.as_str(), attempt.attempt)) {
                    s.1 = Some(e.seq);
                }
            }
            _ => {}
        }
    }
    assert_eq!(finished_per_task.len(), 200);
    assert!(
        finished_per_task.values().all(|n| *n == 1),
        "exactly one final receipt per task"
    );
    // No task ever had two attempts running at once.
    for ((task, n), (start, _)) in &spans {
        if let Some((_, Some(prev_end))) = spans.get(&(task, n - 1)) {
            assert!(
                start > prev_end,
                "{task}:{n} started before {task}:{} ended",
                n - 1
            );
        }
    }
    // The long attempts were interrupted by the crash and retried without
    // using up an attempt.
    let st = ws.fold(&run);
    for i in 0..5 {
        let t = st.task(&format!("long-{i}")).unwrap();
        assert_eq!(t.attempts.len(), 2);
        assert_eq!(t.attempts[0].interrupted, Some(InterruptCause::OrcaCrash));
        assert_eq!(t.counted, 1);
        assert!(t.final_receipt().is_some());
    }
    // Every final attempt has its receipt, and every receipt its terminal event.
    for t in &st.tasks {
        for a in &t.attempts {
            assert_eq!(a.receipt.is_some(), a.result.is_some(), "{}:{}", t.id, a.n);
        }
    }
}

fn send(child: &std::process::Child, sig: i32) {
    // SAFETY: signals our own child.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

fn sigint(child: &std::process::Child) {
    send(child, libc::SIGINT);
}

/// Reads `child`'s stderr until it has said `needle` (a signal to wait on,
/// not a sleep); returns the reader for the rest.
fn stderr_until(
    child: &mut std::process::Child,
    needle: &str,
) -> std::io::BufReader<std::process::ChildStderr> {
    use std::io::BufRead as _;
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains(needle) {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{said}");
        said.push_str(&line);
    }
    stderr
}

/// Waits for `child` to exit with `code`, well before a 30 s grace.
fn assert_exits_at_once(child: &mut std::process::Child, code: i32) {
    let t0 = std::time::Instant::now();
    assert_eq!(child.wait().unwrap().code(), Some(code));
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "did not wait out the 30 s grace"
    );
}

/// An `orca run --max-workers 1` of `spec`, once its first attempt wrote
/// `trapped` to the FIFO `$ORCA_WORKSPACE/ready` (its TERM trap is in
/// place). Returns the process (stderr piped), the journal follower and
/// the run id.
async fn run_until_trapped(
    ws: &TestWs,
    spec: &str,
) -> (KillOnDrop, orca_actors::journal::Follower, String) {
    let spec = write(ws, "trapped.toml", spec);
    fifo(&ws.path("ready"));
    std::fs::create_dir_all(ws.ws.journal_dir()).unwrap();
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();
    let child = KillOnDrop(
        orca_cmd(ws)
            .arg("run")
            .arg(&spec)
            .args(["--max-workers", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let started = wait_event(&mut f, |e| matches!(e, Event::AttemptStarted { .. })).await;
    let run = started.event.run_id().unwrap().to_string();
    assert_eq!(wait_fifo(&ws.path("ready")).await, "trapped\n");
    (child, f, run)
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_once_stops_gracefully() {
    let ws = TestWs::new("[run]\ngrace_seconds = 5\n[journal]\nsync = \"never\"\n");
    // The worker's trap is in place before the Ctrl-C.
    let (mut child, _f, run) = run_until_trapped(
        &ws,
        "[[tasks]]\nid = \"long\"\ncommand = \"trap 'echo got TERM; exit 0' TERM; echo trapped > \\\"$ORCA_WORKSPACE/ready\\\"; while true; do sleep 0.05; done\"\n[[tasks]]\nid = \"queued\"\ncommand = \"true\"\nmetadata = { priority = 9 }\n",
    )
    .await;
    let _reap = ReapRun(run.clone());
    sigint(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(4), "cancelled by the operator");
    let st = ws.fold(&run);
    assert_eq!(st.status(), RunStatus::Cancelled);
    for t in ["long", "queued"] {
        assert_eq!(st.task(t).unwrap().result, Some(AttemptResult::Skip), "{t}");
    }
    let out =
        std::fs::read_to_string(ws.ws.attempt_dir(&run, "long", 1).join("stdout.log")).unwrap();
    assert!(
        out.contains("got TERM"),
        "the worker got SIGTERM and its grace"
    );
    let all = ws.journal();
    assert!(all.iter().any(|e| matches!(
        &e.event,
        Event::RunStopRequested {
            surface: orca_actors::model::Surface::Cli,
            ..
        }
    )));
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_twice_kills_at_once() {
    let ws = TestWs::new("[run]\ngrace_seconds = 30\n[journal]\nsync = \"never\"\n");
    let (mut child, mut f, run) = run_until_trapped(
        &ws,
        "[[tasks]]\nid = \"stubborn\"\ncommand = \"trap '' TERM; echo trapped > \\\"$ORCA_WORKSPACE/ready\\\"; while true; do sleep 0.05; done\"\n",
    )
    .await;
    let _reap = ReapRun(run.clone());
    sigint(&child);
    wait_event(&mut f, |e| matches!(e, Event::RunStopRequested { .. })).await;
    sigint(&child);
    assert_exits_at_once(&mut child, 4);
    assert_gone(&run, "the group was killed");
}

#[tokio::test(flavor = "multi_thread")]
async fn backoff_deadlines_survive_a_crash() {
    let ws = TestWs::new("[run]\ngrace_seconds = 1\n");
    let spec = write(
        &ws,
        "backoff.toml",
        "[[tasks]]\nid = \"retry-later\"\ncommand = 'test \"$ORCA_ATTEMPT\" -ge 2'\nretry_policy = { max_attempts = 2, initial_backoff_seconds = 1.5, jitter = false, retry_on = [\"task\"] }\n",
    );
    std::fs::create_dir_all(ws.ws.journal_dir()).unwrap();
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();
    let mut child = KillOnDrop(
        orca_cmd(&ws)
            .arg("run")
            .arg(&spec)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let sched = wait_event(&mut f, |e| matches!(e, Event::RestartScheduled { .. })).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let run = sched.event.run_id().unwrap().to_string();
    let Event::RestartScheduled { deadline, .. } = sched.event else {
        unreachable!()
    };
    // Let the journaled deadline pass while orca is down (this waits on the
    // clock, which is what is under test, not on readiness).
    let wait = deadline.millis_since(orca_actors::model::Timestamp::now());
    std::thread::sleep(Duration::from_millis(wait + 100));
    let out = orca_cmd(&ws)
        .args(["run", "--resume", &run])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let all = ws.journal();
    let ev = of_run(&all, &run);
    let (_, resumed) = find(
        &ev,
        |e| matches!(e, Event::ChildRestarted { path, .. } if !path.contains("/attempts/")),
    )
    .unwrap();
    let (_, restarted) = find(
        &ev,
        |e| matches!(e, Event::ChildRestarted { path, .. } if path.contains("/attempts/")),
    )
    .unwrap();
    assert!(restarted.at >= deadline, "never before its deadline");
    assert!(
        restarted.at.millis_since(resumed.at) < 1_000,
        "a deadline that passed while orca was down fires at once, not after a fresh 1.5 s"
    );
}

/// SIGTERM or SIGHUP to `orca run` suspends the run as `orca down` does
/// the daemon's: the worker gets SIGTERM and its grace, the attempt is
/// interrupted by orca (using up no attempt), orca exits 6, and
/// `--resume` carries the run on.
async fn a_signal_suspends_the_run(signal: i32) {
    let ws = TestWs::new("[run]\ngrace_seconds = 5\n[journal]\nsync = \"never\"\n");
    let (mut child, _f, run) = run_until_trapped(
        &ws,
        "[[tasks]]\nid = \"long\"\ncommand = \"if [ \\\"$ORCA_ATTEMPT\\\" != 1 ]; then exit 0; fi; trap 'echo got TERM; exit 0' TERM; echo trapped > \\\"$ORCA_WORKSPACE/ready\\\"; while true; do sleep 0.05; done\"\n[[tasks]]\nid = \"queued\"\ncommand = \"true\"\nmetadata = { priority = 9 }\n",
    )
    .await;
    let _reap = ReapRun(run.clone());
    // SAFETY: signals our own child.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(6), "suspended: {stderr}");
    assert!(
        stderr.contains(&format!("orca run --resume {run}")),
        "says how to carry on: {stderr}"
    );
    assert_gone(&run, "the suspended run left no process");
    let log =
        std::fs::read_to_string(ws.ws.attempt_dir(&run, "long", 1).join("stdout.log")).unwrap();
    assert!(
        log.contains("got TERM"),
        "the worker got SIGTERM and its grace"
    );
    let st = ws.fold(&run);
    assert_eq!(st.ended_as, None, "a suspended run has not ended");
    let long = st.task("long").unwrap();
    assert_eq!(
        long.attempts[0].interrupted,
        Some(InterruptCause::OrcaShutdown)
    );
    assert!(st.task("queued").unwrap().attempts.is_empty());
    assert!(ws.journal().iter().any(|e| matches!(
        &e.event,
        Event::DaemonStopped { reason, .. } if reason.contains("suspended")
    )));

    let out = orca_cmd(&ws)
        .args(["run", "--resume", &run])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let st = ws.fold(&run);
    assert_eq!(st.status(), RunStatus::Passed);
    let long = st.task("long").unwrap();
    assert_eq!(long.attempts.len(), 2);
    assert_eq!(long.counted, 1, "the suspension used up no attempt");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_suspends_the_run() {
    a_signal_suspends_the_run(libc::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_suspends_the_run() {
    a_signal_suspends_the_run(libc::SIGHUP).await;
}

/// A second signal while a suspension waits out a long grace kills the
/// attempts at once (as a second Ctrl-C does), still exiting 6.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_while_suspending_kills_at_once() {
    let ws = TestWs::new("[run]\ngrace_seconds = 30\n[journal]\nsync = \"never\"\n");
    let (mut child, _f, run) = run_until_trapped(
        &ws,
        "[[tasks]]\nid = \"stubborn\"\ncommand = \"trap '' TERM; echo trapped > \\\"$ORCA_WORKSPACE/ready\\\"; while true; do sleep 0.05; done\"\n",
    )
    .await;
    let _reap = ReapRun(run.clone());
    send(&child, libc::SIGTERM);
    // Once orca says it is suspending, the second signal is a second one.
    stderr_until(&mut child, "suspending run");
    send(&child, libc::SIGTERM);
    assert_exits_at_once(&mut child, 6);
    assert_gone(&run, "the second signal killed the group");
}

/// A closing terminal sends SIGHUP more than once: a repeated SIGHUP does
/// not cut the grace short; the attempt is suspended as usual (journaled as
/// interrupted by orca), not killed.
#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_sighup_keeps_the_grace() {
    let ws = TestWs::new("[run]\ngrace_seconds = 1\n[journal]\nsync = \"never\"\n");
    let (mut child, _f, run) = run_until_trapped(
        &ws,
        "[[tasks]]\nid = \"stubborn\"\ncommand = \"if [ \\\"$ORCA_ATTEMPT\\\" != 1 ]; then exit 0; fi; trap '' TERM; echo trapped > \\\"$ORCA_WORKSPACE/ready\\\"; while true; do sleep 0.05; done\"\n",
    )
    .await;
    let _reap = ReapRun(run.clone());
    send(&child, libc::SIGHUP);
    let mut stderr = stderr_until(&mut child, "suspending run");
    send(&child, libc::SIGHUP);
    assert_eq!(child.wait().unwrap().code(), Some(6));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(
        !rest.contains("killing"),
        "the second SIGHUP killed: {rest}"
    );
    assert_gone(&run, "the grace ended with SIGKILL to the group");
    let st = ws.fold(&run);
    assert_eq!(
        st.task("stubborn").unwrap().attempts[0].interrupted,
        Some(InterruptCause::OrcaShutdown),
        "suspended through the grace, not killed by the second SIGHUP"
    );
}
