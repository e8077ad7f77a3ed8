//! Attempts with real processes: grace and SIGKILL, leftover groups, log
//! caps, stale heartbeats, timeouts, budgets, environments, secrets and the
//! agent runtime template.

mod common;

use common::*;
use orca_actors::journal::event::{BudgetLimit, LogStream, WorkerEvent};
use orca_actors::journal::Event;
use orca_actors::model::{AlertClass, AttemptResult, FailureClass, FailureSource, RunStatus};

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_ignoring_sigterm_is_killed_after_the_grace() {
    let ws = TestWs::new("[run]\ngrace_seconds = 0.3\n[journal]\nsync = \"never\"\n");
    let (run, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "stubborn"
command = "trap '' TERM; echo ready; while true; do sleep 0.05; done"
timeout_seconds = 0.3
retry_policy = { max_attempts = 1 }
"#,
    )
    .await;
    let r = receipt(&st, "stubborn");
    assert_eq!(r.result, AttemptResult::Timeout);
    assert_eq!(
        r.signal,
        Some(libc::SIGKILL),
        "SIGTERM was ignored, so SIGKILL ended it"
    );
    assert!(r.duration_ms < 5_000);
    assert_gone(&run, "nothing survives");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grandchild_holding_stdout_goes_with_its_group() {
    let ws = TestWs::fast();
    let (run, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "leaky"
command = "(sleep 30 &); echo parent-done"
"#,
    )
    .await;
    let r = receipt(&st, "leaky");
    assert_eq!(r.result, AttemptResult::Pass, "{}", r.summary);
    assert!(r.summary.contains("left in the group"), "{}", r.summary);
    assert_gone(&run, "the grandchild is gone");
    let out =
        std::fs::read_to_string(ws.ws.attempt_dir(&run, "leaky", 1).join("stdout.log")).unwrap();
    assert_eq!(out, "parent-done\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loud_worker_is_capped_while_it_writes() {
    let ws = TestWs::new("[run]\nlog_cap_bytes = 1048576\n[journal]\nsync = \"never\"\n");
    let (run, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "loud"
command = "yes 'a line of output' | head -c 104857600; echo done >&2"
"#,
    )
    .await;
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
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_worker_goes_stale() {
    let ws = TestWs::fast();
    let (_, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "silent"
command = "echo hello; exec sleep 30"
stale_after_seconds = 0.4
retry_policy = { max_attempts = 1 }
"#,
    )
    .await;
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
    assert!(st.alerts.iter().any(|a| a.class == AlertClass::Stale));
    // restart_exhausted too: transient failures are retried, but no attempt was left.
    assert!(st
        .alerts
        .iter()
        .any(|a| a.class == AlertClass::RestartExhausted));
}

#[tokio::test(flavor = "multi_thread")]
async fn output_keeps_a_worker_fresh() {
    let ws = TestWs::fast();
    let (_, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "chatty"
command = "for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.1; done"
stale_after_seconds = 0.4
"#,
    )
    .await;
    assert_eq!(receipt(&st, "chatty").result, AttemptResult::Pass);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sleeping_worker_times_out() {
    let ws = TestWs::fast();
    let (_, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "sleepy"
command = ["sleep", "30"]
timeout_seconds = 0.3
retry_policy = { max_attempts = 2, initial_backoff_seconds = 0 }
"#,
    )
    .await;
    let t = st.task("sleepy").unwrap();
    assert_eq!(t.attempts.len(), 2, "timeouts are retried by default");
    let r = t.final_receipt().unwrap();
    assert_eq!(
        (r.result, r.class),
        (AttemptResult::Timeout, Some(FailureClass::Timeout))
    );
    assert_eq!(st.status(), RunStatus::Failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_json_worker_over_its_tool_budget_is_stopped() {
    let ws = TestWs::fast();
    let (run, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "tools"
command = '''
for i in 1 2 3; do printf '{"type":"tool_use","name":"bash","id":"t%s","input":{}}\n' "$i"; done
printf '{"type":"turn_usage","input_tokens":10,"output_tokens":5}\n'
exec sleep 30'''
budget = { max_tool_calls = 2 }
"#,
    )
    .await;
    let r = receipt(&st, "tools");
    assert_eq!(
        (r.result, r.failure_source),
        (AttemptResult::Fail, Some(FailureSource::Task))
    );
    assert!(r.summary.contains("max_tool_calls"), "{}", r.summary);
    assert!(st
        .alerts
        .iter()
        .any(|a| a.class == AlertClass::BudgetExceeded));
    let all = ws.journal();
    let ev = of_run(&all, &run);
    let reported: Vec<&WorkerEvent> = ev
        .iter()
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
    // Content lines are not journaled one by one: a handful of reports only.
    assert!(reported.len() <= 10, "{reported:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_and_seconds_budgets() {
    let ws = TestWs::fast();
    let (_, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "tokens"
command = '''printf '{"type":"turn_usage","input_tokens":600,"output_tokens":500}\n'; exec sleep 30'''
budget = { max_tokens = 1000 }
[[tasks]]
id = "seconds"
command = "exec sleep 30"
budget = { max_seconds = 0.3 }
"#,
    )
    .await;
    assert!(receipt(&st, "tokens").summary.contains("max_tokens"));
    assert!(receipt(&st, "seconds").summary.contains("max_seconds"));
    for t in ["tokens", "seconds"] {
        assert_eq!(
            st.task(t).unwrap().attempts.len(),
            1,
            "budget failures are task failures: not retried"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_json_error_and_needs_human_end_the_attempt() {
    let ws = TestWs::fast();
    let (_, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "errs"
command = '''printf '{"type":"error","error":"provider refused"}\n' '''
[[tasks]]
id = "human"
command = '''printf '{"type":"metadata","needs_human":{"reason":"needs a deploy key"}}\n{"type":"done"}\n' '''
retry_policy = { retry_on = ["transient", "timeout", "task"] }
[[tasks]]
id = "human-then-exit"
command = '''printf '{"type":"metadata","needs_human":{"reason":"which branch?"}}\n'; exit 1'''
retry_policy = { retry_on = ["transient", "timeout", "task"] }
"#,
    )
    .await;
    let r = receipt(&st, "errs");
    assert_eq!(r.result, AttemptResult::Fail);
    assert!(r.summary.contains("provider refused"));
    let h = st.task("human").unwrap();
    assert_eq!(h.attempts.len(), 1, "needs_human is never retried");
    assert_eq!(
        h.final_receipt().unwrap().class,
        Some(FailureClass::NeedsHuman)
    );
    assert!(st.alerts.iter().any(|a| a.class == AlertClass::NeedsHuman));
    // Asking for a human, then exiting non-zero, still needs the human.
    let h = st.task("human-then-exit").unwrap();
    assert_eq!(h.attempts.len(), 1, "not retried as a task failure");
    let r = h.final_receipt().unwrap();
    assert_eq!(r.class, Some(FailureClass::NeedsHuman));
    assert!(r.summary.contains("which branch?"), "{}", r.summary);
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_before_start_fail_the_task_without_a_process() {
    let ws = TestWs::fast();
    let (run, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "needs-file"
command = "true"
workspace = { required_files = ["missing.txt"] }
[[tasks]]
id = "needs-env"
command = "true"
workspace = { environment = { required = ["ORCA_TEST_SURELY_UNSET_VAR"] } }
[[tasks]]
id = "needs-runtime"
instructions = "Summarize the repository."
"#,
    )
    .await;
    assert!(receipt(&st, "needs-file").summary.contains("missing.txt"));
    assert!(receipt(&st, "needs-env")
        .summary
        .contains("ORCA_TEST_SURELY_UNSET_VAR"));
    assert!(receipt(&st, "needs-runtime").summary.contains("[runtime]"));
    let all = ws.journal();
    assert!(!of_run(&all, &run)
        .iter()
        .any(|e| matches!(e.event, Event::AttemptStarted { .. })));
}

/// Symlinks inside the workspace that lead out of it: a task's
/// `workspace.root` through one does not start; a required file through one
/// is reported as leading outside, not as missing.
#[tokio::test(flavor = "multi_thread")]
async fn symlinks_out_of_the_workspace_stop_a_task_before_it_starts() {
    let ws = TestWs::fast();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("file.txt"), "x").unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.path("linkdir")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("file.txt"), ws.path("linkfile")).unwrap();
    let (run, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "root-out"
command = "pwd -P > escaped"
workspace = { root = "linkdir" }
[[tasks]]
id = "file-out"
command = "true"
workspace = { required_files = ["linkfile"] }
"#,
    )
    .await;
    for task in ["root-out", "file-out"] {
        let r = receipt(&st, task);
        assert_eq!(r.result, AttemptResult::Fail, "{task}");
        assert!(
            r.summary.contains("outside the workspace"),
            "{task}: {}",
            r.summary
        );
    }
    assert!(
        !outside.path().join("escaped").exists(),
        "nothing ran outside"
    );
    let all = ws.journal();
    assert!(!of_run(&all, &run)
        .iter()
        .any(|e| matches!(e.event, Event::AttemptStarted { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_environment_is_exactly_the_documented_one() {
    let ws = TestWs::fast();
    std::env::set_var("ORCA_TEST_ALLOWED", "yes");
    std::env::set_var("ORCA_TEST_NOT_ALLOWED", "no");
    let (run, _) = run_one(
        &ws,
        r#"
[[tasks]]
id = "env"
command = ["env"]
workspace = { environment = { allowlist = ["ORCA_TEST_ALLOWED"] } }
"#,
    )
    .await;
    let out =
        std::fs::read_to_string(ws.ws.attempt_dir(&run, "env", 1).join("stdout.log")).unwrap();
    let mut names: Vec<&str> = out.lines().filter_map(|l| l.split('=').next()).collect();
    names.sort();
    let mut want = vec![
        "HOME",
        "ORCA_ATTEMPT",
        "ORCA_ATTEMPT_DIR",
        "ORCA_ATTEMPT_ID",
        "ORCA_RUN_ID",
        "ORCA_SPAWN_DEPTH",
        "ORCA_TASK_ID",
        "ORCA_TEST_ALLOWED",
        "ORCA_WORKSPACE",
        "PATH",
    ];
    if std::env::var("HOME").is_err() {
        want.retain(|n| *n != "HOME");
    }
    assert_eq!(names, want);
    assert!(out.contains(&format!(
        "ORCA_ATTEMPT_DIR={}",
        ws.ws.attempt_dir(&run, "env", 1).display()
    )));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runtime_template_gets_the_prompt_and_secrets_stay_out_of_journal_and_logs() {
    let secret = "sk-orca-test-0123456789";
    std::env::set_var("ORCA_TEST_PROVIDER_KEY", secret);
    let ws = TestWs::new(
        r#"
[runtime]
command = ["sh", "-c", "printf '%s' \"$1\" > \"$ORCA_ATTEMPT_DIR/seen-prompt\"; env > \"$ORCA_ATTEMPT_DIR/seen-env\"; printf '{\"type\":\"error\",\"error\":\"bad key %s\"}\\n' \"$ORCA_TEST_PROVIDER_KEY\"", "sh", "{prompt}"]
secret_env = ["ORCA_TEST_PROVIDER_KEY"]
[journal]
sync = "never"
"#,
    );
    let (run, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "agent"
objective = "Check the build."
instructions = "Run cargo check."
retry_policy = { max_attempts = 1 }
[[tasks]]
id = "plain"
command = "env"
"#,
    )
    .await;
    let dir = ws.ws.attempt_dir(&run, "agent", 1);
    let prompt = std::fs::read_to_string(dir.join("seen-prompt")).unwrap();
    assert_eq!(prompt, "Objective: Check the build.\n\nRun cargo check.");
    assert!(
        std::fs::read_to_string(dir.join("seen-env"))
            .unwrap()
            .contains(secret),
        "runtimes get secret_env"
    );
    let plain =
        std::fs::read_to_string(ws.ws.attempt_dir(&run, "plain", 1).join("stdout.log")).unwrap();
    assert!(!plain.contains(secret), "plain commands never do");
    // The runtime echoed its key in an error: redacted everywhere orca writes.
    let r = receipt(&st, "agent");
    assert!(r.summary.contains("bad key <redacted>"), "{}", r.summary);
    let journal_bytes: Vec<u8> = std::fs::read_dir(ws.ws.journal_dir())
        .unwrap()
        .flat_map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(!String::from_utf8_lossy(&journal_bytes).contains(secret));
    let receipt_json = std::fs::read_to_string(dir.join("receipt.json")).unwrap();
    assert!(!receipt_json.contains(secret));
    // The log holds the line, with the key replaced.
    let log = std::fs::read_to_string(dir.join("stdout.log")).unwrap();
    assert!(log.contains("bad key <redacted>"), "{log}");
    assert!(!log.contains(secret), "{log}");
}
