//! Fan-out: N tasks of `true` through orca's whole path (journal with sync
//! `always`, attempt actors, capped logs, receipts) against the raw
//! baseline — spawning and reaping the same N processes with
//! `tokio::process` and a semaphore, stdout and stderr piped and drained as
//! orca does — measured in the same run.
//!
//! Each round runs, alternated: raw; orca as before containment
//! (`ORCA_CGROUPS=off`: process group only, no cgroup); orca's default
//! (a cgroup per attempt, entered between fork and exec, `cgroup.kill` at
//! the end); and orca confined (the default plus Landlock with
//! `writable_paths = []` and a network namespace with `network = "deny"`).
//!
//! Run: `cargo bench --bench fanout` (`-- --quick` for 1,000 / 100 tasks;
//! `FANOUT_DIR=<dir>` puts the workspaces there instead of the temp dir).
//! Anchor: on this machine the raw baseline is ~0.43 ms a process; the
//! target is orca / raw ≤ 1.5 for 10,000 tasks on 64 workers, and the
//! default path within 1.3× raw there.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orca_actors::model::RunStatus;
use orca_actors::spec::{
    NetworkPolicy, OrcaConfig, RunSpec, SecurityPolicy, WorkspaceRequirements,
};
use orca_actors::workspace::Workspace;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

async fn raw(n: usize, workers: usize) -> Duration {
    let sem = Arc::new(Semaphore::new(workers));
    let start = Instant::now();
    let mut joins = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        joins.push(tokio::spawn(async move {
            let mut child = tokio::process::Command::new("true")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn()
                .expect("spawn true");
            let mut out = child.stdout.take().expect("stdout");
            let mut err = child.stderr.take().expect("stderr");
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf).await;
            let _ = err.read_to_end(&mut buf).await;
            let _ = child.wait().await;
            drop(permit);
        }));
    }
    for j in joins {
        let _ = j.await;
    }
    start.elapsed()
}

/// Which orca path a run takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// No cgroup: the process group only (the path before containment).
    Before,
    /// The default: a cgroup per attempt.
    Default,
    /// The default plus Landlock (`writable_paths = []`) and a network
    /// namespace (`network = "deny"`).
    Confined,
}

/// Runs `n` tasks through orca in a fresh workspace inside `dir`.
async fn orca(
    dir: &tempfile::TempDir,
    n: usize,
    workers: u32,
    variant: Variant,
) -> (Duration, RunStatus) {
    // Read by orca at every start: set while nothing runs.
    std::env::set_var(
        "ORCA_CGROUPS",
        if variant == Variant::Before {
            "off"
        } else {
            "on"
        },
    );
    let ws = Workspace::at(dir.path());
    std::fs::create_dir_all(ws.orca_dir()).expect("mkdir");
    let config = OrcaConfig::parse(&format!(
        "[journal]\nsync = \"{}\"\n",
        std::env::var("FANOUT_SYNC").unwrap_or_else(|_| "always".into())
    ))
    .expect("config")
    .0;
    let mut tasks = common::true_tasks(n);
    let mut security_policy = None;
    if variant == Variant::Confined {
        for t in &mut tasks {
            t.workspace = Some(WorkspaceRequirements {
                writable_paths: Some(Vec::new()),
                ..Default::default()
            });
        }
        security_policy = Some(SecurityPolicy {
            network: Some(NetworkPolicy::Deny),
            ..Default::default()
        });
    }
    let spec = RunSpec {
        name: Some("fanout".into()),
        tasks,
        security_policy,
        ..Default::default()
    };
    let end = common::run_to_end(&ws, &config, spec, workers).await;
    (end.took, end.status)
}

/// With `FANOUT_CPU=1`: the CPU a phase used per task, this process's
/// (orca's actors, tokio, the journal) and its children's (the `true`s).
fn cpu_since(before: (Duration, Duration), n: usize) -> String {
    if std::env::var_os("FANOUT_CPU").is_none() {
        return String::new();
    }
    let now = common::cpu_times();
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / n as f64;
    format!(
        "; cpu {:.3} self + {:.3} children",
        per(now.0.saturating_sub(before.0)),
        per(now.1.saturating_sub(before.1))
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cases: &[(usize, usize)] = if quick {
        &[(1_000, 64), (100, 4)]
    } else {
        &[(10_000, 64), (1_000, 4)]
    };
    // Raw and orca alternate, so a slow spell of this shared machine hits
    // both; the ratio reported is the median of the rounds' ratios.
    let rounds = if quick { 1 } else { 3 };
    println!(
        "fan-out: orca (journal sync always, receipts) vs raw tokio::process + semaphore; {rounds} round(s) each"
    );
    // Workspaces are removed only when every case has run: ext4 skips
    // inodes freed in the last minute when it allocates new ones, so
    // deleting one round's ~30,000 files would slow the next round's mkdirs
    // (docs/architecture.md, "Performance").
    let mut dirs = Vec::new();
    // FANOUT_DIR: where the workspaces go (default: the temp dir). This
    // machine's root filesystem is ext4 without a journal, where a new inode
    // skips every one deleted in the last 1-5 minutes: after a test suite
    // or an earlier run that deleted tens of thousands of files, orca's
    // mkdirs slow down and the ratio with them (docs/performance.md).
    let base = std::env::var_os("FANOUT_DIR").map_or_else(std::env::temp_dir, Into::into);
    println!("workspaces under {}", base.display());
    let confine = orca_actors::host::sandbox::local_caps();
    let variants: Vec<Variant> = if confine.landlock && confine.netns {
        vec![Variant::Before, Variant::Default, Variant::Confined]
    } else {
        println!("(no Landlock or network namespaces here: the confined variant is skipped)");
        vec![Variant::Before, Variant::Default]
    };
    // FANOUT_VARIANTS=before,default (a subset, for profiling one path).
    let variants: Vec<Variant> = match std::env::var("FANOUT_VARIANTS") {
        Ok(list) => variants
            .into_iter()
            .filter(|v| {
                list.split(',')
                    .any(|w| w.trim().eq_ignore_ascii_case(&format!("{v:?}")))
            })
            .collect(),
        Err(_) => variants,
    };
    for &(n, workers) in cases {
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        let mut per_task: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        for round in 1..=rounds {
            rt.block_on(async {
                // Warm up both paths once (page cache, binaries).
                let _ = raw(50, workers).await;
                let cpu0 = common::cpu_times();
                let raw_t = raw(n, workers).await;
                let mut line = format!(
                    "{n:>6} tasks on {workers:>2} workers, round {round}: raw {:>7.3} s ({:.3} ms/process{})",
                    raw_t.as_secs_f64(),
                    raw_t.as_secs_f64() * 1000.0 / n as f64,
                    cpu_since(cpu0, n),
                );
                for (i, v) in variants.iter().enumerate() {
                    let dir = tempfile::tempdir_in(&base).expect("tempdir");
                    let cpu0 = common::cpu_times();
                    let (orca_t, status) = orca(&dir, n, workers as u32, *v).await;
                    assert_eq!(status, RunStatus::Passed, "{v:?}");
                    let ratio = orca_t.as_secs_f64() / raw_t.as_secs_f64();
                    ratios[i].push(ratio);
                    per_task[i].push(orca_t.as_secs_f64() * 1000.0 / n as f64);
                    line.push_str(&format!(
                        "  {v:?} {:>7.3} s ({:.3} ms/task{}, {ratio:.2})",
                        orca_t.as_secs_f64(),
                        orca_t.as_secs_f64() * 1000.0 / n as f64,
                        cpu_since(cpu0, n),
                    ));
                    dirs.push(dir);
                }
                println!("{line}");
            });
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let mut summary = format!("{n:>6} tasks on {workers:>2} workers, median ratio to raw:");
        let mut ms = Vec::new();
        for (i, v) in variants.iter().enumerate() {
            summary.push_str(&format!(" {v:?} {:.2}", median(&mut ratios[i])));
            ms.push(median(&mut per_task[i]));
        }
        println!("{summary} (target: Default <= 1.3 at 10,000 on 64)");
        if ms.len() >= 2 {
            let mut cost = format!(
                "{n:>6} tasks on {workers:>2} workers, cost per attempt over Before: Default {:+.3} ms",
                ms[1] - ms[0]
            );
            if ms.len() == 3 {
                cost.push_str(&format!(", Confined {:+.3} ms", ms[2] - ms[0]));
            }
            println!("{cost}");
        }
    }
}
