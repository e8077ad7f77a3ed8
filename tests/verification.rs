//! Verification: every scorer kind on fixtures, artifacts and their refs,
//! manual verdicts through the real binary, path confinement, a scorer
//! that hangs or crashes, and crash atomicity of terminal events and
//! receipts.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use orca_actors::journal::{follow, Event};
use orca_actors::model::{AlertClass, AttemptResult, FailureSource, RunStatus};
use sha2::Digest;

const LIMIT: Duration = Duration::from_secs(60);

fn fake_agent() -> String {
    format!(
        "{}/tests/fixtures/bin/fake-agent",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A workspace whose agent runtime is the fake agent.
fn agent_ws() -> TestWs {
    TestWs::new(&format!(
        "[runtime]\ncommand = [\"{}\", \"{{prompt_file}}\"]\n[run]\ngrace_seconds = 0.5\n[journal]\nsync = \"never\"\n",
        fake_agent()
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn command_scorers_pass_fail_score_and_error() {
    let ws = TestWs::fast();
    let (_, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "scored"
command = "echo 7 > out.txt"
scorer = { kind = "command", command = "sh", args = ["-c", 'test "$(cat out.txt)" = 7 && test -f "$ORCA_RECEIPT_DRAFT" && echo noise && echo "{\"score\": 3, \"max\": 4, \"notes\": \"3 of 4 checks\"}"'] }
[[tasks]]
id = "rejected"
command = "true"
scorer = { kind = "command", command = "sh", args = ["-c", "echo 'not good'; exit 1"] }
[[tasks]]
id = "broken"
command = "true"
scorer = { kind = "command", command = "sh", args = ["-c", "exit 2"] }
"#,
    )
    .await;
    let r = receipt(&st, "scored");
    assert_eq!(r.result, AttemptResult::Pass, "{}", r.summary);
    let score = r.score.as_ref().unwrap();
    assert_eq!(
        (score.value, score.max, score.notes.as_str()),
        (3.0, 4.0, "3 of 4 checks")
    );
    let r = receipt(&st, "rejected");
    assert_eq!(
        (r.result, r.failure_source),
        (AttemptResult::Fail, Some(FailureSource::Verifier))
    );
    let r = receipt(&st, "broken");
    assert_eq!(
        (r.result, r.failure_source),
        (AttemptResult::Fail, Some(FailureSource::Verifier))
    );
    assert!(r.summary.contains("exited 2"), "{}", r.summary);
    let verifier_failed: Vec<&str> = st
        .alerts
        .iter()
        .filter(|a| a.class == AlertClass::VerifierFailed)
        .filter_map(|a| a.task.as_deref())
        .collect();
    assert_eq!(
        verifier_failed,
        ["broken"],
        "an error raises verifier_failed; a no does not"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_scorer_times_out_into_fail_verifier() {
    let ws = TestWs::fast();
    let t0 = std::time::Instant::now();
    let (run, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "hangs"
command = "true"
scorer = { kind = "command", command = "sleep", args = ["30"], timeout_seconds = 0.5 }
"#,
    )
    .await;
    assert!(t0.elapsed() < Duration::from_secs(20));
    let r = receipt(&st, "hangs");
    assert_eq!(
        (r.result, r.failure_source),
        (AttemptResult::Fail, Some(FailureSource::Verifier))
    );
    assert!(r.summary.contains("timed out"), "{}", r.summary);
    assert!(st
        .alerts
        .iter()
        .any(|a| a.class == AlertClass::VerifierFailed));
    assert_gone(&run, "the hung scorer was killed");
}

#[tokio::test(flavor = "multi_thread")]
async fn verifier_prompt_scorers_use_the_runtime_and_the_evidence() {
    let ws = agent_ws();
    let (run, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "with-report"
instructions = "ACTION: report"
expected_artifacts = ["log", "report"]
scorer = { kind = "verifier_prompt", prompt = "Verify the review names a file:line finding." }
[[tasks]]
id = "without-report"
instructions = "ACTION: nothing"
scorer = { kind = "code_whale_verifier_prompt", prompt = "Verify the review names a file:line finding." }
"#,
    )
    .await;
    let r = receipt(&st, "with-report");
    assert_eq!(r.result, AttemptResult::Pass, "{}", r.summary);
    assert!(r.summary.contains("a report exists"));
    let r = receipt(&st, "without-report");
    assert_eq!(
        (r.result, r.failure_source),
        (AttemptResult::Fail, Some(FailureSource::Verifier))
    );
    let prompt = std::fs::read_to_string(
        ws.ws
            .attempt_dir(&run, "with-report", 1)
            .join("verifier/prompt.md"),
    )
    .unwrap();
    assert!(prompt.starts_with("Verify the review names a file:line finding."));
    assert!(prompt.contains("- report .orca/runs/"), "{prompt}");
    // The worker's usage was journaled from its stream-json.
    let a = &st.task("with-report").unwrap().attempts[0];
    assert_eq!((a.tokens, a.tool_calls), (160, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runtime_exiting_75_is_transient_and_retried() {
    let ws = agent_ws();
    let (_, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "flaky-provider"
instructions = "ACTION: tempfail"
retry_policy = { max_attempts = 2, initial_backoff_seconds = 0 }
"#,
    )
    .await;
    let t = st.task("flaky-provider").unwrap();
    assert_eq!(t.attempts.len(), 2);
    let r = t.final_receipt().unwrap();
    assert_eq!(r.failure_source, Some(FailureSource::Transport));
}

#[tokio::test(flavor = "multi_thread")]
async fn artifacts_are_found_hashed_and_required() {
    let ws = TestWs::fast();
    let (run, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "writes"
command = '''mkdir -p "$ORCA_ATTEMPT_DIR/artifacts"; printf 'diff --git a b\n' > "$ORCA_ATTEMPT_DIR/artifacts/patch-1.diff"; printf '{"type":"metadata","artifact":{"kind":"notes","path":"notes.txt"}}\n'; echo hi > notes.txt'''
expected_artifacts = ["log", "patch", "receipt"]
[[tasks]]
id = "forgets"
command = "echo no report"
expected_artifacts = ["report"]
"#,
    )
    .await;
    let r = receipt(&st, "writes");
    assert_eq!(r.result, AttemptResult::Pass, "{}", r.summary);
    let patch = r.artifacts.iter().find(|a| a.kind == "patch").unwrap();
    let bytes = std::fs::read(ws.root().join(&patch.path)).unwrap();
    assert_eq!(patch.sha256, format!("{:x}", sha2::Sha256::digest(&bytes)));
    assert_eq!(
        (patch.size, patch.mime.as_str()),
        (bytes.len() as u64, "text/x-diff")
    );
    assert_eq!(
        patch.path,
        format!(".orca/runs/{run}/writes/1/artifacts/patch-1.diff")
    );
    assert!(r
        .artifacts
        .iter()
        .any(|a| a.kind == "notes" && a.path == "notes.txt"));
    assert!(r.artifacts.iter().any(|a| a.kind == "log"));
    let r = receipt(&st, "forgets");
    assert_eq!(
        (r.result, r.failure_source),
        (AttemptResult::Fail, Some(FailureSource::Task))
    );
    assert!(r.summary.contains("missing expected artifact: report"));
    // The receipt is also in the attempt directory.
    let on_disk: orca_actors::model::Receipt = serde_json::from_slice(
        &std::fs::read(ws.ws.attempt_dir(&run, "writes", 1).join("receipt.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(&on_disk, receipt(&st, "writes"));
}

#[tokio::test(flavor = "multi_thread")]
async fn scorer_paths_that_escape_are_refused_at_run_time() {
    let ws = TestWs::fast();
    let outside = tempfile::NamedTempFile::new().unwrap();
    let spec = format!(
        r#"
[[tasks]]
id = "symlink"
command = 'ln -s {} "$ORCA_ATTEMPT_DIR/out.txt"'
scorer = {{ kind = "file_exists", path = "$ORCA_ATTEMPT_DIR/out.txt", fresh = false }}
"#,
        outside.path().display()
    );
    let (_, st) = run_one(&ws, &spec).await;
    let r = receipt(&st, "symlink");
    assert_eq!(
        (r.result, r.failure_source),
        (AttemptResult::Fail, Some(FailureSource::Verifier))
    );
    assert!(r.summary.contains("outside the workspace"), "{}", r.summary);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_files_from_an_earlier_run_do_not_count() {
    let ws = TestWs::fast();
    std::fs::write(ws.path("old.json"), r#"{"ok": true}"#).unwrap();
    let t = std::time::SystemTime::now() - Duration::from_secs(600);
    std::fs::File::options()
        .write(true)
        .open(ws.path("old.json"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    let (_, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "fresh"
command = "true"
scorer = { kind = "json_path", path = "old.json", expression = "$.ok", equals = true }
[[tasks]]
id = "not-fresh"
command = "true"
scorer = { kind = "json_path", path = "old.json", expression = "$.ok", equals = true, fresh = false }
"#,
    )
    .await;
    assert_eq!(receipt(&st, "fresh").result, AttemptResult::Fail);
    assert!(receipt(&st, "fresh").summary.contains("predates"));
    assert_eq!(receipt(&st, "not-fresh").result, AttemptResult::Pass);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scorer_crash_loses_no_receipt_and_the_scorer_restarts() {
    let ws = TestWs::fast();
    let spec = spec_toml(
        &ws,
        r#"
[[tasks]]
id = "first"
command = "true"
scorer = { kind = "command", command = "sh", args = ["-c", 'while [ ! -e "$ORCA_WORKSPACE/go" ]; do sleep 0.02; done'] }
[[tasks]]
id = "second"
command = "true"
scorer = { kind = "exit_code" }
metadata = { priority = 5 }
"#,
    );
    let tree = Tree::boot(&ws).await;
    let mut watch = tree.watch().await;
    let run = tree.submit(submission(spec, 1)).await;
    // Wait until `first` is being scored (its receipt draft exists).
    let draft = ws
        .ws
        .attempt_dir(&run, "first", 1)
        .join("verifier/receipt.json");
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();
    loop {
        let env = tokio::time::timeout(LIMIT, f.next())
            .await
            .unwrap()
            .unwrap();
        if matches!(&env.event, Event::AttemptExited { attempt, .. } if attempt.task == "first") {
            break;
        }
    }
    while !draft.exists() {
        tokio::task::yield_now().await;
    }
    let scorer = tree
        .orca
        .services
        .registry
        .get(&orca_actors::path::ActorPath::scorer(&run))
        .expect("scorer registered");
    scorer.kill();
    std::fs::write(ws.path("go"), "").unwrap();
    let status = wait_end(&mut watch, &run, LIMIT).await;
    tree.shutdown().await;
    assert_eq!(status, RunStatus::Passed);
    let st = ws.fold(&run);
    assert_eq!(
        receipt(&st, "first").result,
        AttemptResult::Pass,
        "the in-flight scoring still answered"
    );
    assert_eq!(
        receipt(&st, "second").result,
        AttemptResult::Pass,
        "the restarted scorer scores"
    );
    assert_eq!(st.scorer_restarts, 1);
    let all = ws.journal();
    assert!(of_run(&all, &run)
        .iter()
        .any(|e| matches!(&e.event, Event::ChildFailed { path, .. } if path.ends_with("/scorer"))));
}

#[test]
fn a_manual_task_stays_partial_until_orca_verify() {
    let ws = TestWs::fast();
    let spec = ws.path("manual.toml");
    std::fs::write(&spec, "[[tasks]]\nid = \"review\"\ncommand = \"echo reviewed\"\nscorer = { kind = \"manual\" }\n[[tasks]]\nid = \"other\"\ncommand = \"true\"\n").unwrap();
    let out = orca_cmd(&ws).arg("run").arg(&spec).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "awaiting a verdict");
    let view = orca_actors::view::FleetView::load(&ws.ws).unwrap();
    let run = view.latest().unwrap().run.clone();
    assert_eq!(
        receipt(&ws.fold(&run), "review").result,
        AttemptResult::Partial
    );

    // Not for a task that is not awaiting one.
    let out = orca_cmd(&ws)
        .args(["verify", &run, "other", "--pass"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not awaiting a verdict"));

    let out = orca_cmd(&ws)
        .args([
            "verify",
            &run[..10],
            "rev",
            "--fail",
            "--note",
            "misses the edge case",
        ])
        .env("USER", "alice")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    // The verdict is in the journal: it survives any restart (a fresh fold).
    let st = ws.fold(&run);
    let r = receipt(&st, "review");
    assert_eq!(
        (r.result, r.failure_source),
        (AttemptResult::Fail, Some(FailureSource::Verifier))
    );
    let v = r.verdict.as_ref().unwrap();
    assert_eq!(
        (v.who.as_str(), v.note.as_str()),
        ("alice", "misses the edge case")
    );
    assert_eq!(st.status(), RunStatus::Failed);
    assert_eq!(
        st.task("review").unwrap().attempts.len(),
        1,
        "still one receipt per attempt"
    );
    let receipts = ws
        .journal()
        .iter()
        .filter(|e| matches!(&e.event, Event::ReceiptRecorded(r) if r.task == "review"))
        .count();
    assert_eq!(receipts, 1);
    // The attempt directory's copy was amended too.
    let on_disk: orca_actors::model::Receipt = serde_json::from_slice(
        &std::fs::read(ws.ws.attempt_dir(&run, "review", 1).join("receipt.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(on_disk.verdict.unwrap().note, "misses the edge case");
    // The summary no longer says it awaits the verdict.
    for summary in [&r.summary, &on_disk.summary] {
        assert_eq!(
            summary.as_str(),
            "manual verdict: fail by alice: misses the edge case"
        );
    }
    // A second verdict is refused.
    let out = orca_cmd(&ws)
        .args(["verify", &run, "review", "--pass"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has a verdict"));
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_orca_never_splits_a_terminal_event_from_its_receipt() {
    let ws = TestWs::new("[run]\ngrace_seconds = 0.5\n");
    let mut spec = String::new();
    for i in 0..120 {
        spec.push_str(&format!(
            "[[tasks]]\nid = \"t{i}\"\ncommand = [\"sleep\", \"0.01\"]\nscorer = {{ kind = \"regex_match\", path = \"stdout\", pattern = \"^$\" }}\n"
        ));
    }
    let spec_path = ws.path("many.toml");
    std::fs::write(&spec_path, spec).unwrap();
    std::fs::create_dir_all(ws.ws.journal_dir()).unwrap();
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();
    let mut run: Option<String> = None;
    // Kill at random points: after a random number of terminal events, and
    // a random few milliseconds more, so the kill lands anywhere between
    // them. ORCA_TEST_SEED repeats a run's points.
    use rand::{Rng as _, SeedableRng as _};
    let seed: u64 = std::env::var("ORCA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("kill points from ORCA_TEST_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..5 {
        let kill_after = rng.random_range(1..=40usize);
        let later = Duration::from_millis(rng.random_range(0..15));
        // The run may have ended within that moment last round.
        if run
            .as_deref()
            .is_some_and(|r| ws.fold(r).ended_as.is_some())
        {
            break;
        }
        let mut cmd = orca_cmd(&ws);
        match &run {
            None => cmd.arg("run").arg(&spec_path),
            Some(r) => cmd.args(["run", "--resume", r]),
        };
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut seen = 0;
        let finished = tokio::time::timeout(LIMIT, async {
            loop {
                let env = f.next().await.unwrap();
                match &env.event {
                    Event::RunSubmitted(s) => run = Some(s.run.clone()),
                    Event::AttemptFinished { .. } => {
                        seen += 1;
                        if seen == kill_after {
                            // The random moment after it (not a wait for
                            // readiness).
                            tokio::time::sleep(later).await;
                            return false;
                        }
                    }
                    Event::RunFinished { .. } => return true,
                    _ => {}
                }
            }
        })
        .await
        .unwrap();
        if finished {
            child.wait().unwrap();
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let run = run.unwrap();
    let out = orca_cmd(&ws)
        .args(["run", "--resume", &run])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let all = ws.journal();
    for (i, e) in all.iter().enumerate() {
        match &e.event {
            Event::AttemptFinished { attempt, .. } => {
                let next = &all[i + 1];
                assert!(
                    matches!(&next.event, Event::ReceiptRecorded(r) if r.task == attempt.task && r.attempt == attempt.attempt)
                        && next.at == e.at,
                    "terminal event of {attempt} without its receipt in the same batch (ORCA_TEST_SEED={seed})"
                );
            }
            Event::ReceiptRecorded(r) => {
                assert!(
                    matches!(&all[i - 1].event, Event::AttemptFinished { attempt, .. } if attempt.task == r.task && attempt.attempt == r.attempt),
                    "receipt of {}:{} without its terminal event (ORCA_TEST_SEED={seed})",
                    r.task,
                    r.attempt
                );
            }
            _ => {}
        }
    }
    let st = ws.fold(&run);
    assert_eq!(st.status(), RunStatus::Passed);
}
