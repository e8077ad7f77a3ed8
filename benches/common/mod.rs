//! What the benches that run tasks through orca share: a run of `true`
//! tasks, submitted to a freshly booted tree and followed to its end.

// Each bench uses part of this module.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use orca::daemon::boot;
use orca_actors::model::{RunStatus, Surface};
use orca_actors::runs::{RunsMsg, Submission};
use orca_actors::spec::RunSpec;
use orca_actors::spec::{CommandSpec, OrcaConfig, TaskSpec};
use orca_actors::workspace::Workspace;
use ractor::rpc::CallResult;

/// `n` tasks `t0..t{n-1}` that each run `true`.
pub fn true_tasks(n: usize) -> Vec<TaskSpec> {
    (0..n)
        .map(|i| TaskSpec {
            id: format!("t{i}"),
            command: Some(CommandSpec::Argv(vec!["true".into()])),
            ..Default::default()
        })
        .collect()
}

/// What [`run_to_end`] measured.
pub struct Finished {
    pub run: String,
    pub status: RunStatus,
    /// From the submission to the run's end (boot and shutdown excluded).
    pub took: Duration,
}

/// Boots orca on `ws`, submits `spec` with `max_workers`, waits for the
/// run's end and shuts orca down.
pub async fn run_to_end(
    ws: &Workspace,
    config: &OrcaConfig,
    spec: RunSpec,
    max_workers: u32,
) -> Finished {
    let orca = boot(ws, config, None).await.expect("boot");
    let runs = orca.runs().await.expect("runs");
    let mut watch = match runs.call(RunsMsg::Watch, None).await {
        Ok(CallResult::Success(rx)) => rx,
        _ => panic!("watch"),
    };
    let start = Instant::now();
    let sub = Submission {
        spec,
        source: "bench".into(),
        max_workers,
        stale_after: None,
        surface: Surface::Cli,
        parent: None,
        run_id: None,
    };
    let run = match runs
        .call(|tx| RunsMsg::Submit(Box::new(sub), tx), None)
        .await
    {
        Ok(CallResult::Success(Ok(done))) => done.run,
        other => panic!("submit: {other:?}"),
    };
    let status = loop {
        match watch.recv().await {
            Ok((r, status)) if r == run => break status,
            Ok(_) => {}
            Err(e) => panic!("watch: {e}"),
        }
    };
    let took = start.elapsed();
    orca.shutdown().await;
    Finished { run, status, took }
}

/// Resident memory of this process, in KiB (VmRSS).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) used so far by this process and by its reaped
/// children, from `getrusage`.
pub fn cpu_times() -> (Duration, Duration) {
    let of = |who| {
        // SAFETY: getrusage only writes the struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut u) } != 0 {
            return Duration::ZERO;
        }
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        tv(u.ru_utime) + tv(u.ru_stime)
    };
    (of(libc::RUSAGE_SELF), of(libc::RUSAGE_CHILDREN))
}
