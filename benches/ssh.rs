//! SSH workers: 200 trivial tasks on one loopback ssh host with 8 sessions
//! beside the same 200 on 8 local workers, in one run (wall times and the
//! ratio); and the median cost of one exec on a reused connection (target
//! under 10 ms), raw (`true`) and through orca's task wrapper.
//!
//! Run: `cargo bench --bench ssh` (needs /usr/sbin/sshd; `-- --quick` for
//! 50 tasks). The server is a real OpenSSH sshd started for the bench
//! (tests/sshd/mod.rs), with `SetEnv SHLVL=1` as docs/ssh.md recommends;
//! one line shows the exec cost without it, where root's ~/.bashrc runs
//! for every command.

mod common;
#[path = "../tests/sshd/mod.rs"]
mod sshd;

use std::path::Path;
use std::time::{Duration, Instant};

use orca_actors::host::ssh::{exec, Need, Pool, SshAdapter};
use orca_actors::host::{EnvVar, HostAdapter, HostPaths, Launch};
use orca_actors::model::RunStatus;
use orca_actors::spec::{HostSpec, OrcaConfig, RunSpec, SshHost, WorkerSpec};
use orca_actors::workspace::Workspace;
use tokio::io::AsyncReadExt;

fn ssh_host(s: &sshd::Sshd, sessions: u32) -> SshHost {
    SshHost {
        host: Some("127.0.0.1".into()),
        port: Some(s.port),
        user: Some(s.user.clone()),
        identity: Some(s.client_key.display().to_string()),
        known_hosts: Some(s.known_hosts.display().to_string()),
        working_directory: Some(s.remote_wd.display().to_string()),
        max_sessions: Some(sessions),
        ..Default::default()
    }
}

/// One run of `n` tasks of `true`; `worker` is the one declared worker,
/// or `None` for local slots.
async fn run(n: usize, workers: u32, worker: Option<WorkerSpec>) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = Workspace::at(dir.path());
    std::fs::create_dir_all(ws.orca_dir()).expect("mkdir");
    let config = OrcaConfig::parse("[journal]\nsync = \"always\"\n")
        .expect("config")
        .0;
    let spec = RunSpec {
        name: Some("ssh-bench".into()),
        tasks: common::true_tasks(n),
        workers: worker.into_iter().collect(),
        ..Default::default()
    };
    let end = common::run_to_end(&ws, &config, spec, workers).await;
    assert_eq!(end.status, RunStatus::Passed, "the bench run failed");
    end.took
}

fn median_ms(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(v[v.len() * 9 / 10]))
}

/// Exec costs on one reused connection: (connect, raw `true`, a task
/// through the wrapper with the ORCA_* env requests).
async fn exec_costs(s: &sshd::Sshd, n: usize) -> (Duration, Vec<Duration>, Vec<Duration>) {
    let pool = Pool::default();
    let adapter = SshAdapter::new(
        &pool,
        &ssh_host(s, 8),
        Path::new("/"),
        Duration::from_secs(1),
    )
    .expect("adapter");
    let conn = adapter.connection().clone();
    let t0 = Instant::now();
    conn.session(Need::Wait).await.expect("connect");
    let connect = t0.elapsed();
    let mut raw = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (ch, permit) = conn.control_channel(Need::Wait).await.expect("channel");
        let out = exec::run(ch, "true", Duration::from_secs(30), conn.target())
            .await
            .expect("exec");
        drop(permit);
        assert_eq!(out.code, Some(0));
        raw.push(t.elapsed());
    }
    let wd = s.remote_wd.display().to_string();
    let paths = HostPaths {
        workspace: wd.clone(),
        cwd: wd.clone(),
        attempt_dir: format!("{wd}/.orca/runs/bench/t/1"),
    };
    let env: Vec<EnvVar> = [
        ("ORCA_RUN_ID", "bench"),
        ("ORCA_TASK_ID", "t"),
        ("ORCA_ATTEMPT", "1"),
        ("ORCA_ATTEMPT_ID", "bench:t:1"),
        ("ORCA_ATTEMPT_DIR", paths.attempt_dir.as_str()),
        ("ORCA_WORKSPACE", wd.as_str()),
        ("ORCA_SPAWN_DEPTH", "0"),
    ]
    .iter()
    .map(|(k, v)| EnvVar::plain(*k, *v))
    .collect();
    let mut task = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut r = adapter
            .start(Launch {
                argv: vec!["true".into()],
                env: env.clone(),
                paths: paths.clone(),
                attempt_id: "bench:t:1".into(),
                stdin: None,
                confine: Default::default(),
            })
            .await
            .expect("start");
        let mut sink = Vec::new();
        let _ = r.stdout.read_to_end(&mut sink).await;
        let _ = r.stderr.read_to_end(&mut sink).await;
        let exit = r.exit.await.expect("exit");
        assert_eq!(exit.code, Some(0));
        task.push(t.elapsed());
    }
    (connect, raw, task)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 50 } else { 200 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let s = sshd::Sshd::start();
    rt.block_on(async {
        let worker = WorkerSpec {
            id: "remote".into(),
            host: HostSpec::Ssh(ssh_host(&s, 8)),
            max_concurrent_tasks: Some(8),
            ..Default::default()
        };
        // Warm up both paths (page cache, binaries, the first connect).
        let _ = run(16, 8, None).await;
        let _ = run(16, 8, Some(worker.clone())).await;
        let local = run(n, 8, None).await;
        let ssh = run(n, 8, Some(worker)).await;
        println!("ssh workers: {n} tasks of `true`, journal sync always");
        println!(
            "  local, 8 workers:             {:>7.3} s ({:.2} ms/task)",
            local.as_secs_f64(),
            local.as_secs_f64() * 1000.0 / n as f64
        );
        println!(
            "  ssh loopback, 8 sessions:     {:>7.3} s ({:.2} ms/task)",
            ssh.as_secs_f64(),
            ssh.as_secs_f64() * 1000.0 / n as f64
        );
        println!(
            "  ratio ssh / local:            {:>7.2}",
            ssh.as_secs_f64() / local.as_secs_f64()
        );
        let (connect, raw, task) = exec_costs(&s, n).await;
        let (raw_med, raw_p90) = median_ms(raw);
        let (task_med, task_p90) = median_ms(task);
        println!("exec on a reused connection ({n} sequential, target median < 10 ms):");
        println!("  connect + auth (once):        {:>7.2} ms", connect.as_secs_f64() * 1000.0);
        println!("  raw exec `true`:              median {raw_med:>6.2} ms  p90 {raw_p90:>6.2} ms");
        println!(
            "  task `true` via the wrapper:  median {task_med:>6.2} ms  p90 {task_p90:>6.2} ms  (7 env requests, setsid, pgid report)"
        );
    });
    drop(s);
    // The same exec without SetEnv SHLVL=1: the login shell reads the
    // user's ~/.bashrc for every command sshd runs.
    let s = sshd::Sshd::start_with(sshd::Options { skip_bashrc: false });
    rt.block_on(async {
        let (_, raw, _) = exec_costs(&s, 20).await;
        let (med, _) = median_ms(raw);
        println!("  raw exec, ~/.bashrc read (no SetEnv SHLVL=1): median {med:>6.2} ms");
    });
}
