//! Supervision through real actors and processes, driven from specs:
//! strategies, restart types, intensity and escalation, retries with
//! backoff, and "every decision is journaled before its effect".

mod common;

use std::time::Duration;

use common::*;
use orca_actors::journal::event::InterruptCause;
use orca_actors::journal::Event;
use orca_actors::model::{AlertClass, AttemptResult, FailureClass, RunStatus};

const LIMIT: Duration = Duration::from_secs(60);

/// Attempt `n` of `task` was interrupted for a sibling's restart.
fn interrupted_for(
    events: &[&orca_actors::journal::Envelope],
    task: &str,
    n: u32,
    sibling: &str,
) -> bool {
    events.iter().any(|e| {
        matches!(&e.event, Event::AttemptInterrupted { attempt, cause: InterruptCause::SiblingRestart { sibling: s } }
            if attempt.task == task && attempt.attempt == n && s == sibling)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn one_for_all_restarts_the_siblings() {
    let ws = TestWs::fast();
    let spec = spec_toml(
        &ws,
        r#"
supervision = { strategy = "one_for_all", max_restarts = 5, within_seconds = 60 }
[[tasks]]
id = "a"
command = '''if [ "$ORCA_ATTEMPT" = 1 ]; then
  while [ ! -e "$ORCA_WORKSPACE/b.started" ] || [ ! -e "$ORCA_WORKSPACE/c.started" ]; do sleep 0.02; done
  exit 1
fi'''
retry_policy = { max_attempts = 3, initial_backoff_seconds = 0.05, retry_on = ["task"], jitter = false }
[[tasks]]
id = "b"
command = 'if [ "$ORCA_ATTEMPT" = 1 ]; then touch "$ORCA_WORKSPACE/b.started"; exec sleep 30; fi'
[[tasks]]
id = "c"
command = 'if [ "$ORCA_ATTEMPT" = 1 ]; then touch "$ORCA_WORKSPACE/c.started"; exec sleep 30; fi'
"#,
    );
    let tree = Tree::boot(&ws).await;
    let (run, status) = tree.run(submission(spec, 3), LIMIT).await;
    tree.shutdown().await;
    assert_eq!(status, RunStatus::Passed);
    let all = ws.journal();
    let ev = of_run(&all, &run);
    assert!(
        interrupted_for(&ev, "b", 1, "a"),
        "b:1 stopped for a: {:?}",
        types(&ev)
    );
    assert!(interrupted_for(&ev, "c", 1, "a"), "c:1 stopped for a");
    let st = ws.fold(&run);
    assert_eq!(
        st.restart_count, 1,
        "only a's restart counts toward intensity"
    );
    for sib in ["b", "c"] {
        let t = st.task(sib).unwrap();
        assert_eq!(
            (t.attempts.len(), t.counted),
            (2, 1),
            "{sib}: the restart used up no attempt"
        );
    }
    // The decision (a's RestartScheduled) precedes its effect on b.
    let (decided, _) = find(
        &ev,
        |e| matches!(e, Event::RestartScheduled { child, .. } if child == "a"),
    )
    .unwrap();
    let (stopped, _) = find(
        &ev,
        |e| matches!(e, Event::AttemptInterrupted { attempt, .. } if attempt.task == "b"),
    )
    .unwrap();
    assert!(decided < stopped);
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_for_one_restarts_only_later_siblings() {
    let ws = TestWs::fast();
    let spec = spec_toml(
        &ws,
        r#"
supervision = { strategy = "rest_for_one" }
[[tasks]]
id = "a"
command = 'touch "$ORCA_WORKSPACE/a.started"; while [ ! -e "$ORCA_WORKSPACE/b.done" ]; do sleep 0.02; done'
[[tasks]]
id = "b"
command = '''if [ "$ORCA_ATTEMPT" = 1 ]; then
  while [ ! -e "$ORCA_WORKSPACE/a.started" ] || [ ! -e "$ORCA_WORKSPACE/c.started" ]; do sleep 0.02; done
  exit 1
fi
touch "$ORCA_WORKSPACE/b.done"'''
retry_policy = { max_attempts = 2, initial_backoff_seconds = 0.05, retry_on = ["task"] }
[[tasks]]
id = "c"
command = 'if [ "$ORCA_ATTEMPT" = 1 ]; then touch "$ORCA_WORKSPACE/c.started"; exec sleep 30; fi'
"#,
    );
    let tree = Tree::boot(&ws).await;
    let (run, status) = tree.run(submission(spec, 3), LIMIT).await;
    tree.shutdown().await;
    assert_eq!(status, RunStatus::Passed);
    let st = ws.fold(&run);
    assert_eq!(
        st.task("a").unwrap().attempts.len(),
        1,
        "an earlier sibling is untouched"
    );
    assert_eq!(st.task("b").unwrap().attempts.len(), 2);
    assert_eq!(st.task("c").unwrap().attempts.len(), 2);
    let all = ws.journal();
    assert!(interrupted_for(&of_run(&all, &run), "c", 1, "b"));
}

#[tokio::test(flavor = "multi_thread")]
async fn temporary_children_never_restart() {
    let ws = TestWs::fast();
    let spec = spec_toml(
        &ws,
        r#"
[[tasks]]
id = "temp"
restart = "temporary"
command = "exit 1"
retry_policy = { max_attempts = 3, initial_backoff_seconds = 0, retry_on = ["task"] }
[[tasks]]
id = "trans"
command = 'test "$ORCA_ATTEMPT" -ge 2'
retry_policy = { max_attempts = 3, initial_backoff_seconds = 0, retry_on = ["task"] }
"#,
    );
    let tree = Tree::boot(&ws).await;
    let (run, status) = tree.run(submission(spec, 2), LIMIT).await;
    tree.shutdown().await;
    assert_eq!(status, RunStatus::Failed);
    let st = ws.fold(&run);
    let temp = st.task("temp").unwrap();
    assert_eq!(
        (temp.attempts.len(), temp.result),
        (1, Some(AttemptResult::Fail))
    );
    let trans = st.task("trans").unwrap();
    assert_eq!(
        (trans.attempts.len(), trans.result),
        (2, Some(AttemptResult::Pass))
    );
    let all = ws.journal();
    assert!(!of_run(&all, &run)
        .iter()
        .any(|e| matches!(&e.event, Event::RestartScheduled { child, .. } if child == "temp")));
}

#[tokio::test(flavor = "multi_thread")]
async fn intensity_exceeded_escalates_to_runs_and_spares_other_runs() {
    let ws = TestWs::fast();
    let bystander = spec_toml(
        &ws,
        r#"
[[tasks]]
id = "waits"
command = 'while [ ! -e "$ORCA_WORKSPACE/escalated" ]; do sleep 0.02; done'
"#,
    );
    let flaky = spec_toml(
        &ws,
        r#"
supervision = { max_restarts = 2, within_seconds = 60 }
[[tasks]]
id = "always-fails"
command = "exit 3"
retry_policy = { max_attempts = 10, initial_backoff_seconds = 0.01, retry_on = ["task"] }
[[tasks]]
id = "slow"
command = "exec sleep 30"
"#,
    );
    let tree = Tree::boot(&ws).await;
    let mut watch = tree.watch().await;
    let other = tree.submit(submission(bystander, 1)).await;
    let (run, status) = tree.run(submission(flaky, 2), LIMIT).await;
    assert_eq!(status, RunStatus::Escalated);
    std::fs::write(ws.path("escalated"), "").unwrap();
    assert_eq!(
        wait_end(&mut watch, &other, LIMIT).await,
        RunStatus::Passed,
        "the other run goes on"
    );
    tree.shutdown().await;

    let all = ws.journal();
    let ev = of_run(&all, &run);
    let (i, e) =
        find(&ev, |e| matches!(e, Event::IntensityExceeded { .. })).expect("IntensityExceeded");
    match &e.event {
        Event::IntensityExceeded {
            supervisor,
            restarts,
            ..
        } => {
            assert_eq!(supervisor, &format!("/runs/{run}"));
            assert_eq!(*restarts, 3);
        }
        _ => unreachable!(),
    }
    let (j, e) = find(&ev, |e| matches!(e, Event::Escalated { .. })).expect("Escalated");
    assert!(matches!(&e.event, Event::Escalated { to, .. } if to == "/runs"));
    assert!(i < j);
    assert!(ev.iter().any(|e| matches!(
        &e.event,
        Event::Alert(orca_actors::alert::AlertEvent::Raised(a)) if a.class == AlertClass::NeedsHuman
    )));
    // The run stopped its other attempts.
    let st = ws.fold(&run);
    assert_eq!(st.task("slow").unwrap().result, Some(AttemptResult::Skip));
    assert_eq!(st.status(), RunStatus::Escalated);
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_with_backoff_then_pass_and_decisions_precede_effects() {
    let ws = TestWs::fast();
    let spec = spec_toml(
        &ws,
        r#"
[[tasks]]
id = "twice"
command = 'echo "attempt $ORCA_ATTEMPT"; test "$ORCA_ATTEMPT" -ge 3'
retry_policy = { max_attempts = 3, initial_backoff_seconds = 0.1, max_backoff_seconds = 10, backoff_multiplier = 2, jitter = 0.5, retry_on = ["task"] }
"#,
    );
    let tree = Tree::boot(&ws).await;
    let (run, status) = tree.run(submission(spec, 1), LIMIT).await;
    tree.shutdown().await;
    assert_eq!(status, RunStatus::Passed);
    let all = ws.journal();
    let ev = of_run(&all, &run);
    let scheduled: Vec<(u32, u64, &orca_actors::journal::Envelope)> = ev
        .iter()
        .filter_map(|e| match &e.event {
            Event::RestartScheduled {
                attempt,
                delay_ms,
                counted,
                counts_intensity,
                ..
            } => {
                assert!(*counted && *counts_intensity);
                Some((*attempt, *delay_ms, *e))
            }
            _ => None,
        })
        .collect();
    assert_eq!(scheduled.iter().map(|s| s.0).collect::<Vec<_>>(), [2, 3]);
    let (d1, d2) = (scheduled[0].1, scheduled[1].1);
    assert!(
        (50..=100).contains(&d1),
        "first delay {d1} ms not in 50..=100"
    );
    assert!(
        (100..=200).contains(&d2),
        "second delay {d2} ms not in 100..=200"
    );
    for (attempt, delay, sched) in &scheduled {
        // The restart happened after its journaled deadline…
        let (_, restarted) = find(
            &ev,
            |e| matches!(e, Event::ChildRestarted { attempt: a, .. } if a == attempt),
        )
        .unwrap();
        assert!(restarted.seq > sched.seq);
        assert!(
            restarted.at.millis_since(sched.at) + 5 >= *delay,
            "restart before its deadline"
        );
        // …and the process started only after its start was journaled.
        let (_, started) = find(
            &ev,
            |e| matches!(e, Event::AttemptStarted { attempt: a, .. } if a.attempt == *attempt),
        )
        .unwrap();
        assert!(started.seq > restarted.seq);
    }
    let st = ws.fold(&run);
    let t = st.task("twice").unwrap();
    assert_eq!(
        (t.result, t.final_attempt, t.counted),
        (Some(AttemptResult::Pass), Some(3), 3)
    );
    // Each failed attempt has its receipt, classified as a task failure.
    for n in [1, 2] {
        let r = t.attempt(n).unwrap().receipt.as_ref().unwrap();
        assert_eq!(
            (r.result, r.class),
            (AttemptResult::Fail, Some(FailureClass::Task))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exhausted_retries_raise_restart_exhausted() {
    let ws = TestWs::fast();
    let spec = spec_toml(
        &ws,
        r#"
[[tasks]]
id = "never"
command = "exit 2"
retry_policy = { max_attempts = 2, initial_backoff_seconds = 0, retry_on = ["task"] }
"#,
    );
    let tree = Tree::boot(&ws).await;
    let (run, status) = tree.run(submission(spec, 1), LIMIT).await;
    tree.shutdown().await;
    assert_eq!(status, RunStatus::Failed);
    let st = ws.fold(&run);
    assert_eq!(st.task("never").unwrap().attempts.len(), 2);
    assert!(st
        .alerts
        .iter()
        .any(|a| a.class == AlertClass::RestartExhausted));
    let finished = ws
        .journal()
        .iter()
        .filter(|e| matches!(&e.event, Event::TaskFinished { .. }))
        .count();
    assert_eq!(finished, 1);
    // Each failure is journaled as one, the last (no restart) too, before
    // what the supervisor decided.
    let all = ws.journal();
    let decisions: Vec<&str> = of_run(&all, &run)
        .into_iter()
        .filter(|e| {
            matches!(
                &e.event,
                Event::ChildFailed {
                    class: FailureClass::Task,
                    ..
                } | Event::RestartScheduled { .. }
                    | Event::TaskFinished { .. }
            )
        })
        .map(|e| e.event.type_name())
        .collect();
    assert_eq!(
        decisions,
        [
            "ChildFailed",
            "RestartScheduled",
            "ChildFailed",
            "TaskFinished"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn leasing_respects_capabilities_concurrency_and_priority() {
    let ws = TestWs::fast();
    let spec = spec_toml(
        &ws,
        r#"
[[workers]]
id = "gpu-box"
capabilities = ["gpu"]
max_concurrent_tasks = 1
[[workers]]
id = "cpu-box"
capabilities = ["cpu"]
max_concurrent_tasks = 2

[[tasks]]
id = "late"
command = "true"
worker = { capabilities = ["cpu"] }
metadata = { priority = 5 }
[[tasks]]
id = "early"
command = "true"
worker = { capabilities = ["cpu"] }
metadata = { priority = -5 }
[[tasks]]
id = "g1"
command = "true"
worker = { capabilities = ["gpu"] }
[[tasks]]
id = "g2"
command = "true"
worker = { capabilities = ["gpu"] }
"#,
    );
    let tree = Tree::boot(&ws).await;
    let (run, status) = tree.run(submission(spec, 10), LIMIT).await;
    tree.shutdown().await;
    assert_eq!(status, RunStatus::Passed);
    let all = ws.journal();
    let ev = of_run(&all, &run);
    let mut starts = Vec::new();
    let mut running: std::collections::HashMap<String, i32> = Default::default();
    let mut max_gpu = 0;
    for e in &ev {
        match &e.event {
            Event::AttemptStarted {
                attempt, worker, ..
            } => {
                starts.push((attempt.task.clone(), worker.clone()));
                *running.entry(worker.clone()).or_default() += 1;
                max_gpu = max_gpu.max(running.get("gpu-box").copied().unwrap_or(0));
            }
            Event::AttemptFinished { attempt, .. } => {
                let w = starts
                    .iter()
                    .find(|s| s.0 == attempt.task)
                    .map(|s| s.1.clone())
                    .unwrap();
                *running.entry(w).or_default() -= 1;
            }
            _ => {}
        }
    }
    for (task, worker) in &starts {
        let want = if task.starts_with('g') {
            "gpu-box"
        } else {
            "cpu-box"
        };
        assert_eq!(worker, want, "{task}");
    }
    assert_eq!(max_gpu, 1, "gpu-box runs one task at a time");
    let order: Vec<&str> = ev
        .iter()
        .filter_map(|e| match &e.event {
            Event::ChildStarted { path, .. } if path.contains("/attempts/") => {
                path.rsplit('/').next()
            }
            _ => None,
        })
        .collect();
    let pos = |t: &str| order.iter().position(|p| p.starts_with(t)).unwrap();
    assert!(
        pos("early") < pos("late"),
        "priority orders leasing: {order:?}"
    );
}

/// Boots a tree whose journal's syncs fail once `failing` is set (sync
/// `always`, so the failure reaches every append).
async fn tree_with_failing_disk(
    ws: &TestWs,
) -> (Tree, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let failing = Arc::new(AtomicBool::new(false));
    let f2 = failing.clone();
    let hook: orca_actors::journal::SyncHook = Arc::new(move |_| {
        if f2.load(Ordering::SeqCst) {
            Err(std::io::Error::other("simulated EIO"))
        } else {
            Ok(())
        }
    });
    let tree = Tree::boot_with_sync_hook(ws, hook).await;
    (tree, failing)
}

async fn health(tree: &Tree) -> orca_actors::root::Health {
    match tree
        .orca
        .root
        .call(orca_actors::root::RootMsg::Health, None)
        .await
    {
        Ok(ractor::rpc::CallResult::Success(h)) => h,
        other => panic!("health: {other:?}"),
    }
}

/// Waits (bounded) until `f` holds, woken by the journal's feed.
async fn until(tree: &Tree, mut f: impl FnMut() -> bool) {
    let mut feed = tree.orca.services.journal.subscribe();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        let _ = tokio::time::timeout(Duration::from_millis(200), feed.recv()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_root_restarts_runs_and_journals_it() {
    use orca_actors::path::ActorPath;
    let ws = TestWs::new("[run]\ngrace_seconds = 0.5\n");
    let (tree, _) = tree_with_failing_disk(&ws).await;
    let first = tree.runs().await;
    first.get_cell().kill();
    until(&tree, || {
        ws.journal().iter().any(
            |e| matches!(&e.event, Event::ChildRestarted { path, attempt: 1 } if path == "/runs"),
        )
    })
    .await;
    let all = ws.journal();
    let failed = all.iter().position(|e| {
        matches!(&e.event, Event::ChildFailed { path, class: FailureClass::Transient, .. } if path == "/runs")
    });
    let restarted = all
        .iter()
        .position(|e| matches!(&e.event, Event::ChildRestarted { path, .. } if path == "/runs"));
    assert!(failed.is_some() && failed < restarted, "{all:?}");
    // The new `runs` takes work.
    until(&tree, || {
        tree.orca
            .services
            .registry
            .get(&ActorPath::Runs)
            .is_some_and(|c| c.get_id() != first.get_id())
    })
    .await;
    let spec = spec_toml(&ws, "[[tasks]]\nid = \"t\"\ncommand = \"true\"\n");
    let (_, status) = tree.run(submission(spec, 1), LIMIT).await;
    assert_eq!(status, RunStatus::Passed);
    assert_eq!(health(&tree).await, orca_actors::root::Health::Ok);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_that_cannot_be_journaled_is_not_carried_out() {
    use std::sync::atomic::Ordering;
    let ws = TestWs::new("[run]\ngrace_seconds = 0.5\n");
    let (tree, failing) = tree_with_failing_disk(&ws).await;
    let first = tree.runs().await;
    failing.store(true, Ordering::SeqCst);
    let mut feed = tree.orca.services.journal.subscribe();
    first.get_cell().kill();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while health(&tree).await == orca_actors::root::Health::Ok {
        assert!(tokio::time::Instant::now() < deadline, "never degraded");
        // The failed append wakes nothing on the feed: look again shortly.
        let _ = tokio::time::timeout(Duration::from_millis(20), feed.recv()).await;
    }
    // Nothing was acted on: `runs` was not restarted.
    let now = match tree
        .orca
        .root
        .call(orca_actors::root::RootMsg::Runs, None)
        .await
    {
        Ok(ractor::rpc::CallResult::Success(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(now.map(|r| r.get_id()), Some(first.get_id()));
    assert_eq!(first.get_status(), ractor::ActorStatus::Stopped);
    let orca_actors::root::Health::Degraded { reason } = health(&tree).await else {
        unreachable!()
    };
    assert!(reason.contains("simulated EIO"), "{reason}");
    // (The decision's bytes may be in the file: written, never
    // acknowledged as durable, and so never acted on.)
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scorer_that_keeps_failing_escalates_its_run() {
    use orca_actors::path::ActorPath;
    let ws = TestWs::fast();
    let spec = spec_toml(
        &ws,
        "[[tasks]]\nid = \"long\"\ncommand = \"exec sleep 30\"\n",
    );
    let tree = Tree::boot(&ws).await;
    let mut watch = tree.watch().await;
    let run = tree.submit(submission(spec, 1)).await;
    let _reap = ReapRun(run.clone());
    let scorer = ActorPath::scorer(&run);
    // The scorer row allows 3 restarts in 5 s: the fourth failure escalates.
    for n in 1..=4u32 {
        let mut cell = None;
        until(&tree, || {
            cell = tree.orca.services.registry.get(&scorer);
            cell.is_some()
                && (n == 1
                    || ws.journal().iter().any(|e| {
                        matches!(&e.event, Event::ChildRestarted { path, attempt } if *path == scorer.to_string() && *attempt == n - 1)
                    }))
        })
        .await;
        let Some(c) = cell else { unreachable!() };
        c.kill();
        if n < 4 {
            until(&tree, || {
                tree.orca
                    .services
                    .registry
                    .get(&scorer)
                    .is_some_and(|now| now.get_id() != c.get_id())
            })
            .await;
        }
    }
    let status = wait_end(&mut watch, &run, LIMIT).await;
    tree.shutdown().await;
    assert_eq!(status, RunStatus::Escalated);
    let all = ws.journal();
    let ev = of_run(&all, &run);
    let failures = ev
        .iter()
        .filter(|e| matches!(&e.event, Event::ChildFailed { path, class: FailureClass::Verifier, .. } if *path == scorer.to_string()))
        .count();
    assert_eq!(failures, 4);
    assert!(ev.iter().any(|e| matches!(&e.event, Event::IntensityExceeded { supervisor, restarts: 4, .. } if *supervisor == format!("/runs/{run}"))));
    assert!(ev.iter().any(|e| matches!(&e.event, Event::Alert(orca_actors::alert::AlertEvent::Raised(a)) if a.class == AlertClass::NeedsHuman && a.reason.contains("its scorer kept failing"))));
    let st = ws.fold(&run);
    assert_eq!(receipt(&st, "long").result, AttemptResult::Skip);
}
