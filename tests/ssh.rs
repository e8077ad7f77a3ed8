//! SSH workers against a real OpenSSH server on loopback (see
//! tests/sshd/mod.rs): runs, environment, interrupt, a server dying
//! mid-attempt, artifacts, host keys, authentication, and the local
//! fixtures (timeout, stale, stream-json, log cap) replayed over SSH.

mod common;
mod sshd;

use std::time::Duration;

use common::*;
use orca_actors::journal::event::{BudgetLimit, LogStream, WorkerEvent};
use orca_actors::journal::{follow, Envelope, Event};
use orca_actors::model::{AttemptResult, FailureClass, FailureSource, RunStatus, Surface};
use orca_actors::run::state::RunState;
use orca_actors::run::RunMsg;
use ractor::rpc::CallResult;
use sshd::{Sshd, ACCEPTED_VAR};

const LIMIT: Duration = Duration::from_secs(60);

async fn run_spec(ws: &TestWs, spec: &str, max_workers: u32) -> (String, RunState) {
    let spec = spec_toml(ws, spec);
    let tree = Tree::boot(ws).await;
    let (run, _) = tree.run(submission(spec, max_workers), LIMIT).await;
    tree.shutdown().await;
    let st = ws.fold(&run);
    (run, st)
}

fn receipt<'a>(st: &'a RunState, task: &str) -> &'a orca_actors::model::Receipt {
    st.task(task)
        .unwrap()
        .final_receipt()
        .expect("final receipt")
}

fn stdout_of(ws: &TestWs, run: &str, task: &str, n: u32) -> String {
    std::fs::read_to_string(ws.ws.attempt_dir(run, task, n).join("stdout.log")).unwrap_or_default()
}

fn stderr_of(ws: &TestWs, run: &str, task: &str, n: u32) -> String {
    std::fs::read_to_string(ws.ws.attempt_dir(run, task, n).join("stderr.log")).unwrap_or_default()
}

/// Whether process group `pgid` still has a live member on the host (this
/// machine). Zombies do not count: reaping orphans is PID 1's job, and
/// this container's PID 1 is slow at it.
fn group_exists(pgid: i32) -> bool {
    orca_actors::host::procfs::group_alive(pgid)
}

/// Waits (bounded) until the journal shows an event matching `f`.
async fn wait_for(
    follower: &mut orca_actors::journal::Follower,
    f: impl Fn(&Event) -> bool,
) -> Envelope {
    tokio::time::timeout(LIMIT, async {
        loop {
            let env = follower.next().await.unwrap();
            if f(&env.event) {
                return env;
            }
        }
    })
    .await
    .expect("the journal event came")
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_tasks_on_four_sessions_get_exactly_their_environment() {
    let sshd = Sshd::start();
    let ws = TestWs::fast();
    std::env::set_var(ACCEPTED_VAR, "yes-allowed");
    std::env::set_var("SSH_TEST_REFUSED", "refused-value");
    // Matches the server's AcceptEnv ORCA_*, but no allowlist names it.
    std::env::set_var("ORCA_SSH_TEST_NOT_ALLOWED", "must-not-arrive");
    let mut spec = String::new();
    for i in 0..20 {
        spec.push_str(&format!("[[tasks]]\nid = \"t{i}\"\ncommand = [\"env\"]\n"));
    }
    spec.push_str(&sshd.worker_toml(
        4,
        &format!("max_sessions = 4\nenv_allowlist = [\"{ACCEPTED_VAR}\", \"SSH_TEST_REFUSED\"]"),
    ));
    let (run, st) = run_spec(&ws, &spec, 4).await;
    assert_eq!(st.status(), RunStatus::Passed, "{:#?}", st.tasks);
    let remote_wd = sshd.remote_wd.display().to_string();
    for i in 0..20 {
        let task = format!("t{i}");
        let out = stdout_of(&ws, &run, &task, 1);
        let mut names: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split_once('=').map(|(n, _)| n))
            .filter(|n| !["PWD", "SHLVL", "_", "OLDPWD"].contains(n))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "HOME",
                "ORCA_ATTEMPT",
                "ORCA_ATTEMPT_DIR",
                "ORCA_ATTEMPT_ID",
                "ORCA_RUN_ID",
                "ORCA_SPAWN_DEPTH",
                "ORCA_TASK_ID",
                "ORCA_WORKSPACE",
                "PATH",
                ACCEPTED_VAR,
            ],
            "{out}"
        );
        assert!(
            out.contains(&format!("{ACCEPTED_VAR}=yes-allowed\n")),
            "{out}"
        );
        assert!(out.contains(&format!(
            "ORCA_ATTEMPT_DIR={remote_wd}/.orca/runs/{run}/{task}/1\n"
        )));
        assert!(out.contains(&format!("ORCA_WORKSPACE={remote_wd}\n")));
        assert!(!out.contains("must-not-arrive"));
        let err = stderr_of(&ws, &run, &task, 1);
        assert!(
            err.contains("refused the environment variable SSH_TEST_REFUSED"),
            "{err}"
        );
        assert!(!err.contains("refused-value"));
    }
    // The host was named in the journal, and nothing is left on it.
    let all = ws.journal();
    assert!(of_run(&all, &run).iter().any(|e| matches!(
        &e.event,
        Event::AttemptStarted { host, .. } if host == &format!("{}@127.0.0.1:{}", sshd.user, sshd.port)
    )));
    let runs_dir = sshd.remote_wd.join(".orca/runs");
    let left: Vec<_> = std::fs::read_dir(&runs_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "remote attempt dirs left: {left:?}");
}

/// The ssh host of `sshd.worker_toml`, parsed.
fn spec_workers_host(ws: &TestWs, sshd: &Sshd) -> orca_actors::spec::HostSpec {
    let spec = spec_toml(
        ws,
        &format!(
            "[[tasks]]\nid = \"x\"\ncommand = \"true\"\n{}",
            sshd.worker_toml(1, "")
        ),
    );
    spec.workers[0].host.clone()
}

/// The pgid an attempt journaled.
fn started_pgid(e: &Envelope) -> i32 {
    match &e.event {
        Event::AttemptStarted { pgid, .. } => *pgid,
        other => panic!("not AttemptStarted: {other:?}"),
    }
}

/// A worker `id` (with capability `id`) on the test server, the host table
/// changed by `extra` lines (which replace the keys they set).
fn worker(sshd: &Sshd, id: &str, extra: &str) -> String {
    let replaced: Vec<&str> = extra
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    let host: Vec<String> = sshd
        .host_toml("")
        .lines()
        .filter(|l| {
            !replaced
                .iter()
                .any(|k| l.split_once('=').is_some_and(|(lk, _)| lk.trim() == *k))
        })
        .map(str::to_string)
        .collect();
    format!(
        "[[workers]]\nid = \"{id}\"\ncapabilities = [\"{id}\"]\n[workers.host]\n{}\n{extra}\n",
        host.join("\n")
    )
}

/// A task `id` that only worker `id` takes.
fn task_for(id: &str, command: &str) -> String {
    format!(
        "[[tasks]]\nid = \"{id}\"\ncommand = \"{command}\"\nretry_policy = {{ max_attempts = 1 }}\nworker = {{ capabilities = [\"{id}\"] }}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_kills_the_remote_process_group() {
    let sshd = Sshd::start();
    let ws = TestWs::fast();
    let spec = spec_toml(
        &ws,
        &format!(
            "[[tasks]]\nid = \"long\"\ncommand = \"echo started; sleep 30 & sleep 30; wait\"\n{}",
            sshd.worker_toml(1, "")
        ),
    );
    let tree = Tree::boot(&ws).await;
    let mut follower = follow(&ws.ws.journal_dir(), 1).unwrap();
    let mut watch = tree.watch().await;
    let run = tree.submit(submission(spec, 1)).await;
    let started = wait_for(&mut follower, |e| matches!(e, Event::AttemptStarted { .. })).await;
    let pgid = started_pgid(&started);
    assert!(group_exists(pgid), "the remote group runs");
    let actor = orca_actors::runs::lookup(&tree.runs().await, &run)
        .await
        .expect("the run is running");
    let r = actor
        .call(
            |tx| {
                RunMsg::Request(
                    orca_actors::run::RunRequest::Interrupt {
                        task: "long".into(),
                        surface: Surface::Cli,
                        restart: false,
                    },
                    Some(tx),
                )
            },
            None,
        )
        .await;
    assert!(matches!(r, Ok(CallResult::Success(Ok(_)))), "{r:?}");
    wait_end(&mut watch, &run, LIMIT).await;
    tree.shutdown().await;
    let st = ws.fold(&run);
    let r = receipt(&st, "long");
    // The host is this machine: the group has no live process left …
    assert!(!group_exists(pgid), "the remote group {pgid} is gone");
    // … and the host says so too, asked over a fresh connection.
    let pool = orca_actors::host::ssh::Pool::default();
    let orca_actors::spec::HostSpec::Ssh(host) = &spec_workers_host(&ws, &sshd) else {
        unreachable!()
    };
    let adapter =
        orca_actors::host::ssh::SshAdapter::new(&pool, host, ws.root(), Duration::from_secs(1))
            .unwrap();
    let proc = orca_actors::host::ProcHandle {
        pid: pgid as u32,
        pgid,
        proc_start: 0,
    };
    use orca_actors::host::HostAdapter as _;
    assert!(
        !adapter.alive(&proc).await.unwrap(),
        "remote liveness check"
    );
    assert_eq!(r.result, AttemptResult::Skip, "{}", r.summary);
    assert_eq!(r.signal, Some(libc::SIGTERM), "the real signal came back");
}

#[tokio::test(flavor = "multi_thread")]
async fn sshd_dying_mid_attempt_is_transport_and_the_retry_runs_alone() {
    let mut sshd = Sshd::start();
    let ws = TestWs::fast();
    // Two tasks hang in attempt 1; a later attempt fails if anything of its
    // attempt 1 is still alive on the host.
    let mut spec = String::new();
    for id in ["flaky-a", "flaky-b"] {
        spec.push_str(&format!(
            r#"[[tasks]]
id = "{id}"
command = '''if [ "$ORCA_ATTEMPT" = 1 ]; then echo started; exec sleep 30; fi
if grep -lzx "ORCA_ATTEMPT_ID=$ORCA_RUN_ID:$ORCA_TASK_ID:1" /proc/[0-9]*/environ 2>/dev/null; then echo "attempt 1 still runs"; exit 1; fi
echo second'''
retry_policy = {{ max_attempts = 4, initial_backoff_seconds = 0.2, jitter = false }}
"#
        ));
    }
    spec.push_str(&sshd.worker_toml(2, ""));
    let spec = spec_toml(&ws, &spec);
    let tree = Tree::boot(&ws).await;
    let mut follower = follow(&ws.ws.journal_dir(), 1).unwrap();
    let mut watch = tree.watch().await;
    let run = tree.submit(submission(spec, 2)).await;
    let mut pgids = Vec::new();
    for _ in 0..2 {
        let started = wait_for(&mut follower, |e| matches!(e, Event::AttemptStarted { .. })).await;
        pgids.push(started_pgid(&started));
    }
    // Both have written (a write after sshd died would end them by
    // SIGPIPE before they reach `sleep`).
    for id in ["flaky-a", "flaky-b"] {
        let log = ws.ws.attempt_dir(&run, id, 1).join("stdout.log");
        wait_file_contains(&log, "started").await;
    }
    sshd.kill_all();
    for pgid in &pgids {
        assert!(
            group_exists(*pgid),
            "without a pty the remote work outlives sshd"
        );
    }
    for _ in 0..2 {
        let finished = wait_for(
            &mut follower,
            |e| matches!(e, Event::AttemptFinished { attempt, .. } if attempt.attempt == 1),
        )
        .await;
        let Event::AttemptFinished {
            result,
            source,
            class,
            reason,
            ..
        } = &finished.event
        else {
            unreachable!()
        };
        assert_eq!(
            (*result, *source, *class),
            (
                AttemptResult::Fail,
                Some(FailureSource::Transport),
                Some(FailureClass::Transient)
            ),
            "{reason}"
        );
        assert!(reason.contains("connection"), "{reason}");
    }
    sshd.restart();
    let status = wait_end(&mut watch, &run, LIMIT).await;
    tree.shutdown().await;
    let st = ws.fold(&run);
    assert_eq!(status, RunStatus::Passed, "{:#?}", st.tasks);
    for pgid in &pgids {
        assert!(!group_exists(*pgid), "the old remote group was killed");
    }
    for id in ["flaky-a", "flaky-b"] {
        let last = st.task(id).unwrap().attempts.len() as u32;
        assert!(stdout_of(&ws, &run, id, last).contains("second"));
    }
    assert!(
        !sshd.remote_wd.join(".orca/runs").join(&run).exists(),
        "the lost attempts' directories were removed once the host was back"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn artifacts_and_the_prompt_file_travel_over_sftp() {
    let sshd = Sshd::start();
    let ws = TestWs::new(
        r#"
[run]
grace_seconds = 0.5
artifact_cap_bytes = 4096
[runtime]
command = ["the-local-agent", "-c", "mkdir -p \"$ORCA_ATTEMPT_DIR/artifacts/sub\" && cp \"$1\" \"$ORCA_ATTEMPT_DIR/artifacts/prompt-copy.md\" && echo nested > \"$ORCA_ATTEMPT_DIR/artifacts/sub/notes.txt\"", "sh", "{prompt_file}"]
[journal]
sync = "never"
"#,
    );
    let spec = format!(
        r#"[[tasks]]
id = "report"
command = '''mkdir -p "$ORCA_ATTEMPT_DIR/artifacts" && printf '# Report\nall good\n' > "$ORCA_ATTEMPT_DIR/artifacts/report.md" && head -c 10000 /dev/zero > "$ORCA_ATTEMPT_DIR/artifacts/big.bin" && ln -s /etc/passwd "$ORCA_ATTEMPT_DIR/artifacts/link"'''
expected_artifacts = ["report"]
[[tasks]]
id = "agent"
objective = "Write the prompt back."
instructions = "Copy it."
{}"#,
        sshd.worker_toml(2, "binary = \"/bin/sh\"")
    );
    let (run, st) = run_spec(&ws, &spec, 2).await;
    let r = receipt(&st, "report");
    assert_eq!(r.result, AttemptResult::Pass, "{}", r.summary);
    let dir = ws.ws.attempt_dir(&run, "report", 1);
    let body = std::fs::read(dir.join("artifacts/report.md")).expect("fetched report.md");
    assert_eq!(body, b"# Report\nall good\n");
    use sha2::Digest as _;
    let sha: String = sha2::Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let a = r
        .artifacts
        .iter()
        .find(|a| a.kind == "report")
        .expect("report ref");
    assert_eq!(a.sha256, sha);
    assert!(r.summary.contains("big.bin is over the"), "{}", r.summary);
    assert!(r.summary.contains("symlink"), "{}", r.summary);
    assert!(!dir.join("artifacts/big.bin").exists());
    // The runtime ran as the host's `binary`, on the uploaded prompt file.
    let g = receipt(&st, "agent");
    assert_eq!(g.result, AttemptResult::Pass, "{}", g.summary);
    let dir = ws.ws.attempt_dir(&run, "agent", 1);
    assert_eq!(
        std::fs::read_to_string(dir.join("artifacts/prompt-copy.md")).unwrap(),
        "Objective: Write the prompt back.\n\nCopy it."
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("artifacts/sub/notes.txt")).unwrap(),
        "nested\n"
    );
    assert!(
        !sshd.remote_wd.join(".orca/runs").join(&run).exists(),
        "cleanup removed the remote attempt directories"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn required_files_are_checked_on_the_host_and_dirs_can_be_kept() {
    let sshd = Sshd::start();
    let ws = TestWs::fast();
    std::fs::write(sshd.remote_wd.join("present.txt"), "x").unwrap();
    // Only on orca's side: the remote check must not see it.
    std::fs::write(ws.path("local-only.txt"), "x").unwrap();
    let spec = format!(
        r#"[[tasks]]
id = "has"
command = "cat present.txt"
workspace = {{ required_files = ["present.txt"] }}
[[tasks]]
id = "lacks"
command = "true"
workspace = {{ required_files = ["local-only.txt"] }}
{}"#,
        sshd.worker_toml(2, "keep_remote_attempt_dirs = true")
    );
    let (run, st) = run_spec(&ws, &spec, 2).await;
    assert_eq!(receipt(&st, "has").result, AttemptResult::Pass);
    let lacks = receipt(&st, "lacks");
    assert_eq!(lacks.result, AttemptResult::Fail);
    assert!(
        lacks.summary.contains("local-only.txt"),
        "{}",
        lacks.summary
    );
    assert!(sshd
        .remote_wd
        .join(format!(".orca/runs/{run}/has/1"))
        .is_dir());
}

#[tokio::test(flavor = "multi_thread")]
async fn host_key_problems_are_transport_failures_and_nothing_runs() {
    let sshd = Sshd::start();
    let ws = TestWs::fast();
    let empty = sshd.dir.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    // Another key for the same host and port.
    let other = sshd.dir.path().join("other_host_key");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(st.success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let changed = sshd.dir.path().join("changed_known_hosts");
    std::fs::write(&changed, format!("[127.0.0.1]:{} {other_pub}", sshd.port)).unwrap();
    let wd = sshd.remote_wd.display().to_string();
    let cases = [
        (
            "pinned-wrong",
            "host_key_fingerprint = \"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\""
                .to_string(),
        ),
        ("unknown", format!("known_hosts = \"{}\"", empty.display())),
        (
            "changed",
            format!("known_hosts = \"{}\"", changed.display()),
        ),
        (
            "pinned-right",
            format!("host_key_fingerprint = \"{}\"", sshd.fingerprint),
        ),
        (
            "insecure",
            format!(
                "known_hosts = \"{}\"\ninsecure_accept_any_host_key = true",
                empty.display()
            ),
        ),
    ];
    let mut spec = String::new();
    for (id, extra) in &cases {
        spec.push_str(&task_for(id, &format!("touch {wd}/ran-{id}")));
        spec.push_str(&worker(&sshd, id, extra));
    }
    let (run, st) = run_spec(&ws, &spec, 5).await;
    for (id, want) in [
        ("pinned-wrong", "host key mismatch"),
        ("unknown", "unknown host key"),
        ("changed", "host key mismatch"),
    ] {
        let r = receipt(&st, id);
        assert_eq!(
            (r.result, r.failure_source),
            (AttemptResult::Fail, Some(FailureSource::Transport)),
            "{id}: {}",
            r.summary
        );
        assert!(r.summary.contains(want), "{id}: {}", r.summary);
        assert!(
            !sshd.remote_wd.join(format!("ran-{id}")).exists(),
            "{id}: no command ran"
        );
    }
    let ok = receipt(&st, "pinned-right");
    assert_eq!(ok.result, AttemptResult::Pass, "{}", ok.summary);
    assert!(sshd.remote_wd.join("ran-pinned-right").exists());
    // The lab switch connects to an unknown host, and says so in the log.
    let lab = receipt(&st, "insecure");
    assert_eq!(lab.result, AttemptResult::Pass, "{}", lab.summary);
    let err = stderr_of(&ws, &run, "insecure", 1);
    assert!(
        err.contains("orca: warning: the host key of") && err.contains("was not checked"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_user_or_key_fails_authentication() {
    let sshd = Sshd::start();
    let ws = TestWs::fast();
    let other_key = sshd.dir.path().join("other_key");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .status()
        .unwrap();
    assert!(st.success());
    let mut spec = String::new();
    for (id, extra) in [
        ("key", format!("identity = \"{}\"", other_key.display())),
        ("user", "user = \"no-such-orca-user\"".to_string()),
        (
            "pinned-key",
            format!(
                "identity = \"{}\"\nhost_key_fingerprint = \"{}\"",
                other_key.display(),
                sshd.fingerprint
            ),
        ),
    ] {
        spec.push_str(&task_for(id, "true"));
        spec.push_str(&worker(&sshd, id, &extra));
    }
    let (_, st) = run_spec(&ws, &spec, 3).await;
    for id in ["key", "user", "pinned-key"] {
        let r = receipt(&st, id);
        assert_eq!(
            (r.result, r.failure_source),
            (AttemptResult::Fail, Some(FailureSource::Transport)),
            "{id}: {}",
            r.summary
        );
        assert!(
            r.summary.contains("authentication failed"),
            "{id}: {}",
            r.summary
        );
    }
}

// --- the local fixtures (tests/attempts.rs), over SSH ----------------------

#[tokio::test(flavor = "multi_thread")]
async fn over_ssh_timeouts_and_the_grace_behave_as_locally() {
    let sshd = Sshd::start();
    let ws = TestWs::new("[run]\ngrace_seconds = 0.3\n[journal]\nsync = \"never\"\n");
    let spec = format!(
        r#"[[tasks]]
id = "sleepy"
command = ["sleep", "30"]
timeout_seconds = 0.3
retry_policy = {{ max_attempts = 2, initial_backoff_seconds = 0 }}
[[tasks]]
id = "stubborn"
command = "trap '' TERM; echo ready; while true; do sleep 0.05; done"
timeout_seconds = 0.3
retry_policy = {{ max_attempts = 1 }}
{}"#,
        sshd.worker_toml(2, "")
    );
    let (run, st) = run_spec(&ws, &spec, 2).await;
    let t = st.task("sleepy").unwrap();
    assert_eq!(t.attempts.len(), 2, "timeouts are retried by default");
    let r = t.final_receipt().unwrap();
    assert_eq!(
        (r.result, r.class, r.signal),
        (
            AttemptResult::Timeout,
            Some(FailureClass::Timeout),
            Some(libc::SIGTERM)
        )
    );
    let s = receipt(&st, "stubborn");
    assert_eq!(s.result, AttemptResult::Timeout);
    assert_eq!(
        s.signal,
        Some(libc::SIGKILL),
        "SIGTERM was ignored, so SIGKILL ended it"
    );
    assert!(s.duration_ms < 5_000);
    assert_gone(&run, "nothing survives on the host");
}

#[tokio::test(flavor = "multi_thread")]
async fn over_ssh_silence_goes_stale_and_output_keeps_fresh() {
    let sshd = Sshd::start();
    let ws = TestWs::fast();
    let spec = format!(
        r#"[[tasks]]
id = "silent"
command = "echo hello; exec sleep 30"
stale_after_seconds = 0.4
retry_policy = {{ max_attempts = 1 }}
[[tasks]]
id = "chatty"
command = "for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.1; done"
stale_after_seconds = 0.4
{}"#,
        sshd.worker_toml(2, "")
    );
    let (run, st) = run_spec(&ws, &spec, 2).await;
    let r = receipt(&st, "silent");
    assert_eq!(
        (r.result, r.failure_source, r.class),
        (
            AttemptResult::Fail,
            Some(FailureSource::Transport),
            Some(FailureClass::Transient)
        )
    );
    assert!(r.summary.starts_with("stale"), "{}", r.summary);
    assert!(st.task("silent").unwrap().attempts[0].stale);
    assert_eq!(receipt(&st, "chatty").result, AttemptResult::Pass);
    assert!(stdout_of(&ws, &run, "chatty", 1).ends_with("tick 8\n"));
    assert_gone(&run, "nothing of the run is left");
}

#[tokio::test(flavor = "multi_thread")]
async fn over_ssh_stream_json_events_drive_the_attempt() {
    let sshd = Sshd::start();
    let ws = TestWs::fast();
    let spec = format!(
        r#"[[tasks]]
id = "tools"
command = '''
for i in 1 2 3; do printf '{{"type":"tool_use","name":"bash","id":"t%s","input":{{}}}}\n' "$i"; done
printf '{{"type":"turn_usage","input_tokens":10,"output_tokens":5}}\n'
exec sleep 30'''
budget = {{ max_tool_calls = 2 }}
[[tasks]]
id = "errs"
command = '''printf '{{"type":"error","error":"provider refused"}}\n' '''
{}"#,
        sshd.worker_toml(2, "")
    );
    let (run, st) = run_spec(&ws, &spec, 2).await;
    let r = receipt(&st, "tools");
    assert_eq!(
        (r.result, r.failure_source),
        (AttemptResult::Fail, Some(FailureSource::Task))
    );
    assert!(r.summary.contains("max_tool_calls"), "{}", r.summary);
    let all = ws.journal();
    let reported: Vec<&WorkerEvent> = of_run(&all, &run)
        .into_iter()
        .filter_map(|e| match &e.event {
            Event::WorkerReported { event, .. } => Some(event),
            _ => None,
        })
        .collect();
    assert!(reported.contains(&&WorkerEvent::RunningTool {
        tool: "bash".into()
    }));
    assert!(reported.contains(&&WorkerEvent::BudgetExceeded {
        limit: BudgetLimit::ToolCalls
    }));
    let e = receipt(&st, "errs");
    assert_eq!(e.result, AttemptResult::Fail);
    assert!(e.summary.contains("provider refused"), "{}", e.summary);
}

#[tokio::test(flavor = "multi_thread")]
async fn over_ssh_a_loud_worker_is_capped_while_it_writes() {
    let sshd = Sshd::start();
    let ws = TestWs::new("[run]\nlog_cap_bytes = 1048576\n[journal]\nsync = \"never\"\n");
    let spec = format!(
        r#"[[tasks]]
id = "loud"
command = "yes 'a line of output' | head -c 104857600; echo done >&2"
{}"#,
        sshd.worker_toml(1, "")
    );
    let (run, st) = run_spec(&ws, &spec, 1).await;
    assert_eq!(receipt(&st, "loud").result, AttemptResult::Pass);
    let log = ws.ws.attempt_dir(&run, "loud", 1).join("stdout.log");
    let len = std::fs::metadata(&log).unwrap().len();
    assert!(len <= 1_048_576, "stdout.log is {len} bytes");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("[orca: log capped: "));
    let tail = &text[text.len() - 200..];
    assert!(
        tail.contains("a line of output\na line of output"),
        "the tail is kept: {tail:?}"
    );
    assert!(st.task("loud").unwrap().attempts[0]
        .logs_capped
        .contains(&LogStream::Stdout));
    assert_eq!(stderr_of(&ws, &run, "loud", 1), "done\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn over_ssh_a_grandchild_holding_stdout_goes_with_its_group() {
    let sshd = Sshd::start();
    let ws = TestWs::fast();
    let spec = format!(
        "[[tasks]]\nid = \"leaky\"\ncommand = \"(sleep 30 &); echo parent-done\"\n{}",
        sshd.worker_toml(1, "")
    );
    let (run, st) = run_spec(&ws, &spec, 1).await;
    let r = receipt(&st, "leaky");
    assert_eq!(r.result, AttemptResult::Pass, "{}", r.summary);
    assert!(r.summary.contains("left in the group"), "{}", r.summary);
    assert_gone(&run, "the grandchild is gone");
    assert_eq!(stdout_of(&ws, &run, "leaky", 1), "parent-done\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_times_the_connect_out() {
    let sshd = Sshd::start();
    let ws = TestWs::fast();
    // Accepts TCP connections (the kernel does) but never speaks SSH.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let spec = format!(
        "{}{}",
        task_for("mute", "true"),
        worker(
            &sshd,
            "mute",
            &format!("port = {port}\nconnect_timeout_seconds = 0.3")
        )
    );
    let started = std::time::Instant::now();
    let (_, st) = run_spec(&ws, &spec, 1).await;
    let r = receipt(&st, "mute");
    assert_eq!(
        (r.result, r.failure_source),
        (AttemptResult::Fail, Some(FailureSource::Transport)),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("timed out after 300ms"), "{}", r.summary);
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(silent);
}

/// A second Ctrl-C to `orca run` kills remote groups too (with no grace,
/// over the pooled connection), not only local ones.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_twice_kills_the_remote_group_too() {
    let sshd = Sshd::start();
    let ws = TestWs::new("[run]\ngrace_seconds = 30\n[journal]\nsync = \"never\"\n");
    let ready = sshd.remote_wd.join("ready");
    fifo(&ready);
    std::fs::write(
        ws.path("stubborn.toml"),
        format!(
            "[[tasks]]\nid = \"stubborn\"\ncommand = \"trap '' TERM; echo trapped > \\\"$ORCA_WORKSPACE/ready\\\"; while true; do sleep 0.05; done\"\n{}",
            sshd.worker_toml(1, "")
        ),
    )
    .unwrap();
    std::fs::create_dir_all(ws.ws.journal_dir()).unwrap();
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();
    let mut child = KillOnDrop(
        orca_cmd(&ws)
            .arg("run")
            .arg(ws.path("stubborn.toml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = wait_for(&mut f, |e| matches!(e, Event::AttemptStarted { .. })).await;
    let run = started.event.run_id().unwrap().to_string();
    let _reap = ReapRun(run.clone());
    let pgid = started_pgid(&started);
    assert_eq!(wait_fifo(&ready).await, "trapped\n");
    let sigint = |c: &std::process::Child| {
        // SAFETY: signals our own child.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGINT);
        }
    };
    sigint(&child);
    wait_for(&mut f, |e| matches!(e, Event::RunStopRequested { .. })).await;
    sigint(&child);
    let t0 = std::time::Instant::now();
    assert_eq!(child.wait().unwrap().code(), Some(4));
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "did not wait out the 30 s grace"
    );
    // The host is this machine: the remote group is gone once orca exits.
    assert!(!group_exists(pgid), "the remote group {pgid} is gone");
    assert_gone(&run, "nothing of the run is left, here or on the host");
}

/// An `orca run` serves the API: local workers get `ORCA_API` and a
/// per-attempt `ORCA_TOKEN`; remote workers, which cannot reach a loopback
/// API, get neither (a token is not sent where it is useless).
#[tokio::test(flavor = "multi_thread")]
async fn api_tokens_stay_on_this_machine() {
    let sshd = Sshd::start();
    let ws = TestWs::fast();
    let names = "env | grep ^ORCA_ | cut -d= -f1 | sort | tr '\\\\n' ' '";
    std::fs::write(
        ws.path("env.toml"),
        format!(
            "[[tasks]]\nid = \"here\"\ncommand = \"{names}\"\nworker = {{ capabilities = [\"here\"] }}\n\
             [[workers]]\nid = \"local\"\ncapabilities = [\"here\"]\n\
             {}{}",
            task_for("remote", names),
            worker(&sshd, "remote", "")
        ),
    )
    .unwrap();
    let out = orca_cmd(&ws)
        .args(["run", "env.toml", "--json"])
        .current_dir(ws.root())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let summary: orca_actors::view::RunSummary = serde_json::from_slice(&out.stdout).unwrap();
    let here = stdout_of(&ws, &summary.run, "here", 1);
    let remote = stdout_of(&ws, &summary.run, "remote", 1);
    assert!(
        here.contains("ORCA_API ") && here.contains("ORCA_TOKEN "),
        "{here}"
    );
    assert!(remote.contains("ORCA_ATTEMPT_ID "), "{remote}");
    assert!(
        !remote.contains("ORCA_API") && !remote.contains("ORCA_TOKEN"),
        "{remote}"
    );
}
