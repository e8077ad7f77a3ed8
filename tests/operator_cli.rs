//! The operator's CLI, corrected: each test here failed on the build before
//! the fix it pins (quiet log following, run trees stopped whole, honest
//! status after a crash, the heartbeat as the last sign of life, a daemon
//! that goes away under `orca run`, `--json` everywhere, names by prefix,
//! `regex_match` over lines, SSH configuration errors).

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// utime + stime of a process, in clock ticks (`/proc/<pid>/stat`).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at ")".
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15: 12 and 13 after the name.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_is_idle_while_nothing_is_written() {
    let ws = TestWs::fast();
    let ready = ws.path("ready.fifo");
    fifo(&ready);
    let spec = spec_toml(
        &ws,
        r#"
[[tasks]]
id = "t"
command = '''echo first; echo up > "$ORCA_WORKSPACE/ready.fifo"
while [ ! -e "$ORCA_WORKSPACE/go" ]; do sleep 0.05; done; echo second'''
"#,
    );
    let tree = Tree::boot(&ws).await;
    let mut watch = tree.watch().await;
    let run = tree.submit(submission(spec, 1)).await;
    let _reap = ReapRun(run.clone());
    wait_fifo(&ready).await;
    let mut follower = KillOnDrop(
        orca_cmd(&ws)
            .args(["logs", &run, "t", "--follow"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = follower.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    assert_eq!(rx.recv_timeout(WAIT_LIMIT).unwrap(), "first");
    // A quiet attempt: the follower should cost next to nothing. (Before,
    // its own reads woke its watch: a core busy for as long as it ran.)
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_ticks(pid) - before;
    assert!(
        used <= 20,
        "the follower used {used} ticks of CPU in 2 s of quiet"
    );
    // Output still appears at once, and the follow ends with the attempt.
    std::fs::write(ws.path("go"), "").unwrap();
    assert_eq!(rx.recv_timeout(WAIT_LIMIT).unwrap(), "second");
    let status = tokio::task::spawn_blocking(move || follower.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    wait_end(&mut watch, &run, WAIT_LIMIT).await;
    tree.shutdown().await;
}

/// A run with one task that runs until `<name>.go` exists.
fn blocking(ws: &TestWs, name: &str) -> orca_actors::spec::RunSpec {
    spec_toml(
        ws,
        &format!(
            "[[tasks]]\nid = \"{name}\"\ncommand = 'while [ ! -e \"$ORCA_WORKSPACE/{name}.go\" ]; do sleep 0.05; done'\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runs_tree_is_paused_resumed_and_stopped_whole() {
    use orca_actors::control::ControlMessage;
    use orca_actors::model::{AttemptRef, RunStatus, Surface};
    let ws = TestWs::fast();
    let tree = Tree::boot(&ws).await;
    let mut watch = tree.watch().await;
    let mut f = orca_actors::journal::follow(&ws.ws.journal_dir(), 1).unwrap();
    let parent = tree.submit(submission(blocking(&ws, "p"), 1)).await;
    wait_event(&mut f, |e| matches!(e, orca_actors::journal::Event::AttemptStarted { attempt, .. } if attempt.run == parent)).await;
    // Its attempt submits a child run (as a worker does through its token),
    // and the child's attempt a grandchild.
    let mut child_sub = submission(blocking(&ws, "c"), 1);
    child_sub.parent = Some(AttemptRef::new(&parent, "p", 1));
    let child = tree.submit(child_sub).await;
    wait_event(&mut f, |e| matches!(e, orca_actors::journal::Event::AttemptStarted { attempt, .. } if attempt.run == child)).await;
    let mut grand_sub = submission(blocking(&ws, "g"), 1);
    grand_sub.parent = Some(AttemptRef::new(&child, "c", 1));
    let grand = tree.submit(grand_sub).await;
    let _reap = [
        ReapRun(parent.clone()),
        ReapRun(child.clone()),
        ReapRun(grand.clone()),
    ];
    let runs = tree.runs().await;
    let registry = tree.orca.services.registry.clone();
    let path = format!("/runs/{parent}");
    let send = |msg: ControlMessage| {
        let (registry, runs, path) = (registry.clone(), runs.clone(), path.clone());
        async move {
            orca_actors::ops::control(&registry, &runs, &path, &msg, Surface::Cli)
                .await
                .unwrap()
        }
    };
    let paused = send(ControlMessage::Pause).await;
    assert_eq!(paused.children, [child.clone(), grand.clone()]);
    assert!(paused.result.contains(&child), "{}", paused.result);
    send(ControlMessage::Resume).await;
    let stopped = send(ControlMessage::Stop {
        reason: Some("enough".into()),
    })
    .await;
    assert_eq!(stopped.children, [child.clone(), grand.clone()]);
    let mut ended = std::collections::HashMap::new();
    while ended.len() < 3 {
        let (run, status) = tokio::time::timeout(WAIT_LIMIT, watch.recv())
            .await
            .unwrap()
            .unwrap();
        ended.insert(run, status);
    }
    tree.shutdown().await;
    for run in [&parent, &child, &grand] {
        assert_eq!(ended[run], RunStatus::Cancelled, "{run}");
    }
    // Each run journaled its own pause, resume and stop.
    let all = ws.journal();
    for run in [&parent, &child, &grand] {
        let ev = of_run(&all, run);
        let t = types(&ev);
        for want in ["RunPaused", "RunResumed", "RunStopRequested"] {
            assert!(t.contains(&want), "{run}: {want} in {t:?}");
        }
    }
    assert!(all.iter().any(|e| matches!(&e.event,
        orca_actors::journal::Event::RunStopRequested { run, reason, .. }
            if *run == grand && reason.contains(&format!("stopped with run {parent}")))));
}

#[tokio::test(flavor = "multi_thread")]
async fn status_after_a_crash_says_no_orca_runs_the_run() {
    let ws = TestWs::fast();
    let spec = ws.path("spec.toml");
    std::fs::write(
        &spec,
        "[[tasks]]\nid = \"slow\"\ncommand = 'while [ ! -e \"$ORCA_WORKSPACE/go\" ]; do sleep 0.05; done'\n",
    )
    .unwrap();
    std::fs::create_dir_all(ws.ws.journal_dir()).unwrap();
    let mut f = orca_actors::journal::follow(&ws.ws.journal_dir(), 1).unwrap();
    let mut orca = KillOnDrop(
        orca_cmd(&ws)
            .arg("run")
            .arg(&spec)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = wait_event(&mut f, |e| {
        matches!(e, orca_actors::journal::Event::AttemptStarted { .. })
    })
    .await;
    let run = started.event.run_id().unwrap().to_string();
    let _reap = ReapRun(run.clone());
    // orca dies (kill -9): its run has not ended, and nothing runs it.
    orca.kill().unwrap();
    orca.wait().unwrap();
    let out = orca_cmd(&ws).arg("status").output().unwrap();
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("running (no orca)"), "{text}");
    assert!(
        text.contains(&format!(
            "no orca process is running run {run}: `orca run --resume {run}`"
        )),
        "{text}"
    );
    let out = orca_cmd(&ws).args(["status", &run]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("no orca process is running this run"),
        "{text}"
    );
    let out = orca_cmd(&ws)
        .args(["status", &run, "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["unattended"], true, "{v}");
    assert_eq!(v["status"], "running");
}

/// The heartbeat of attempt 1 of `task` in `orca inspect --json`.
fn heartbeat(ws: &TestWs, run: &str, task: &str) -> orca_actors::model::Timestamp {
    let out = orca_cmd(ws)
        .args(["inspect", run, task, "--json"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    serde_json::from_value(v["task"]["attempts"][0]["heartbeat"].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_heartbeat_shown_is_the_last_output() {
    let ws = TestWs::fast();
    for f in ["one.fifo", "two.fifo"] {
        fifo(&ws.path(f));
    }
    let spec = ws.path("spec.toml");
    std::fs::write(
        &spec,
        r#"[[tasks]]
id = "talker"
command = '''echo hello; echo up > "$ORCA_WORKSPACE/one.fifo"
while [ ! -e "$ORCA_WORKSPACE/go" ]; do sleep 0.05; done
echo again; echo up > "$ORCA_WORKSPACE/two.fifo"
while [ ! -e "$ORCA_WORKSPACE/end" ]; do sleep 0.05; done'''
"#,
    )
    .unwrap();
    std::fs::create_dir_all(ws.ws.journal_dir()).unwrap();
    let mut f = orca_actors::journal::follow(&ws.ws.journal_dir(), 1).unwrap();
    // An embedded `orca run`: its API answers inspect.
    let mut orca = KillOnDrop(
        orca_cmd(&ws)
            .arg("run")
            .arg(&spec)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = wait_event(&mut f, |e| {
        matches!(e, orca_actors::journal::Event::AttemptStarted { .. })
    })
    .await;
    let run = started.event.run_id().unwrap().to_string();
    let _reap = ReapRun(run.clone());
    wait_fifo(&ws.path("one.fifo")).await;
    // Let time pass, so that the start and the last output differ clearly.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_go = orca_actors::model::Timestamp::now();
    std::fs::write(ws.path("go"), "").unwrap();
    wait_fifo(&ws.path("two.fifo")).await;
    // The command printed again after `go`: through orca's API, its
    // heartbeat is that output, not its start.
    let shown = heartbeat(&ws, &run, "talker");
    assert!(shown >= before_go, "{shown} < {before_go}");
    // Without orca (killed), the files tell the same.
    orca.kill().unwrap();
    orca.wait().unwrap();
    // (A file's mtime comes from the kernel's coarse clock: a few ms
    // behind.)
    let shown = heartbeat(&ws, &run, "talker");
    assert!(
        shown.plus_millis(50) >= before_go,
        "offline: {shown} long before {before_go}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_that_dies_under_orca_run_is_named_with_the_way_on() {
    let ws = TestWs::fast();
    std::fs::create_dir_all(ws.ws.journal_dir()).unwrap();
    let (mut daemon, info) = up(&ws);
    let spec = ws.path("spec.toml");
    std::fs::write(
        &spec,
        "[[tasks]]\nid = \"slow\"\ncommand = 'while [ ! -e \"$ORCA_WORKSPACE/go\" ]; do sleep 0.05; done'\n",
    )
    .unwrap();
    let mut f = orca_actors::journal::follow(&ws.ws.journal_dir(), 1).unwrap();
    let follower = orca_cmd(&ws)
        .arg("run")
        .arg(&spec)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = wait_event(&mut f, |e| {
        matches!(e, orca_actors::journal::Event::AttemptStarted { .. })
    })
    .await;
    let run = started.event.run_id().unwrap().to_string();
    let _reap = ReapRun(run.clone());
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let out = tokio::task::spawn_blocking(move || follower.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "the daemon (pid {}) went away while run {run} was going",
            info.pid
        )),
        "{err}"
    );
    assert!(err.contains("1 running"), "{err}");
    assert!(
        err.contains(&format!(
            "`orca up` resumes it in a new daemon, or `orca run --resume {run}` here"
        )),
        "{err}"
    );
    assert!(!err.contains("error decoding response body"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_ssh_identity_is_a_configuration_error_not_retried() {
    use orca_actors::model::{AttemptResult, FailureSource};
    let ws = TestWs::fast();
    std::fs::write(ws.path("known_hosts"), "").unwrap();
    let key = ws.path("no-such-key");
    let (run, st) = run_one(
        &ws,
        &format!(
            r#"
[[workers]]
id = "builder"
[workers.host]
kind = "ssh"
host = "127.0.0.1"
port = 1
user = "nobody"
identity = "{}"
known_hosts = "{}"
working_directory = "/tmp"

[[tasks]]
id = "t"
command = "true"
retry_policy = {{ max_attempts = 3, retry_on = ["transient"] }}
"#,
            key.display(),
            ws.path("known_hosts").display()
        ),
    )
    .await;
    let t = st.task("t").unwrap();
    assert_eq!(t.attempts.len(), 1, "a configuration error is not retried");
    let r = receipt(&st, "t");
    assert_eq!(r.result, AttemptResult::Fail);
    assert_eq!(r.failure_source, Some(FailureSource::Task));
    assert!(
        r.summary.contains("worker builder is misconfigured"),
        "{}",
        r.summary
    );
    assert!(
        r.summary.contains(&key.display().to_string()),
        "{}",
        r.summary
    );
    let _ = run;
}

/// Runs `orca <args>` and parses its stdout as exactly one JSON object.
fn json_of(ws: &TestWs, args: &[&str], code: i32) -> serde_json::Value {
    let out = orca_cmd(ws).args(args).output().unwrap();
    assert_exit(&out, code);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut objects = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    let v = objects
        .next()
        .unwrap_or_else(|| panic!("{args:?}: no JSON in {text:?}"))
        .unwrap();
    assert!(
        objects.next().is_none(),
        "{args:?}: more than one JSON value: {text}"
    );
    assert!(v.is_object(), "{v}");
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_that_prints_a_result_speaks_json_errors_too() {
    let ws = TestWs::fast();
    std::fs::create_dir_all(ws.ws.journal_dir()).unwrap();
    let (_daemon, _) = up(&ws);
    let spec = ws.path("spec.toml");
    std::fs::write(
        &spec,
        "[[tasks]]\nid = \"slow\"\ncommand = 'while [ ! -e \"$ORCA_WORKSPACE/go\" ]; do sleep 0.05; done'\n[[tasks]]\nid = \"after\"\ncommand = \"true\"\n",
    )
    .unwrap();
    let mut f = orca_actors::journal::follow(&ws.ws.journal_dir(), 1).unwrap();
    let out = orca_cmd(&ws)
        .args(["run", "--detach", "--max-workers", "1"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let run = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let _reap = ReapRun(run.clone());
    wait_event(&mut f, |e| {
        matches!(e, orca_actors::journal::Event::AttemptStarted { .. })
    })
    .await;
    let prefix = &run[..run.len() - 2];
    // orca send names the run by a unique prefix, like every command.
    let v = json_of(
        &ws,
        &["send", &format!("/runs/{prefix}"), "pause", "--json"],
        0,
    );
    assert_eq!(v["path"], format!("/runs/{run}"));
    assert_eq!(v["result"], format!("paused run {run}"));
    let v = json_of(&ws, &["resume", prefix, "--json"], 0);
    assert_eq!(v["result"], format!("resumed run {run}"));
    let v = json_of(&ws, &["pause", prefix, "--json"], 0);
    assert_eq!(v["run"], run.as_str());
    let v = json_of(&ws, &["restart", &format!("{run}:local-1"), "--json"], 0);
    assert_eq!(v["attempt"], format!("{run}:slow:1"));
    // Errors: one JSON object on stdout, the exit code unchanged.
    let v = json_of(&ws, &["stop", "no-such-run", "--json"], 2);
    assert_eq!(v["error"]["code"], "not_found");
    assert_eq!(v["error"]["exit"], 2);
    let v = json_of(&ws, &["verify", &run, "after", "--pass", "--json"], 2);
    assert_eq!(v["error"]["code"], "not_awaiting_verdict", "{v}");
    let v = json_of(&ws, &["interrupt", "no-such-worker", "--json"], 2);
    assert_eq!(v["error"]["code"], "not_found", "{v}");
    let bad = ws.path("bad.toml");
    std::fs::write(&bad, "[[tasks]]\nid = \"\"\n").unwrap();
    let v = json_of(&ws, &["run", bad.to_str().unwrap(), "--json"], 2);
    assert_eq!(v["error"]["code"], "invalid_spec");
    assert!(
        v["error"]["details"]["diagnostics"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{v}"
    );
    // `events` takes the flag.
    let out = orca_cmd(&ws)
        .args(["events", "--json", "--from", "1"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let v = json_of(&ws, &["stop", prefix, "--json"], 0);
    assert_eq!(v["stopped"][0]["run"], run.as_str());
}
