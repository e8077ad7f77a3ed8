//! `orca status` against a daemon holding 10,000 finished tasks (the real
//! binary; median and p99 over 50 calls), beside the same command reading
//! the journal offline (replayed, then from a fleet snapshot), and
//! `GET /v1/fleet/runs/{id}` through reqwest.
//!
//! Run: `cargo bench --bench status` (`-- --quick` for 1,000 tasks).
//! Target: median under 20 ms for the CLI against the daemon.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orca::daemon::info::DaemonInfo;
use orca_actors::model::RunStatus;
use orca_actors::spec::{OrcaConfig, RunSpec};
use orca_actors::workspace::Workspace;

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(v[v.len() / 2]);
    let p99 = ms(v[((v.len() as f64 * 0.99).ceil() as usize).min(v.len()) - 1]);
    (median, p99)
}

fn time_cli(ws: &Workspace, args: &[&str], n: usize) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_orca"))
                .arg("--workspace")
                .arg(ws.root())
                .args(args)
                .stdout(Stdio::null())
                .output()
                .expect("orca runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            t.elapsed()
        })
        .collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n_tasks = if quick { 1_000 } else { 10_000 };
    let calls = 50;
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = Workspace::at(dir.path());
    std::fs::create_dir_all(ws.orca_dir()).expect("mkdir");
    std::fs::write(ws.config_path(), "[journal]\nsync = \"never\"\n").expect("config");
    let config = OrcaConfig::parse("[journal]\nsync = \"never\"\n")
        .expect("config")
        .0;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // A workspace with one finished run of n tasks.
    let run = rt.block_on(async {
        let spec = RunSpec {
            name: Some("status bench".into()),
            tasks: common::true_tasks(n_tasks),
            ..Default::default()
        };
        let end = common::run_to_end(&ws, &config, spec, 64).await;
        assert_eq!(end.status, RunStatus::Passed, "the bench run failed");
        end.run
    });
    let events = orca_actors::journal::highest_seq(&ws.journal_dir()).unwrap_or(0);
    println!("status: {n_tasks} finished tasks ({events} journal events); {calls} calls each");

    let offline = stats(time_cli(&ws, &["status", &run], calls));
    println!(
        "  orca status <run>, offline (journal replay): median {:6.2} ms  p99 {:6.2} ms",
        offline.0, offline.1
    );
    // With a fleet snapshot at the last event (what `orca journal compact`
    // writes first; a daemon writes one every snapshot_every events).
    let compact = Command::new(env!("CARGO_BIN_EXE_orca"))
        .arg("--workspace")
        .arg(ws.root())
        .args(["journal", "compact"])
        .stdout(Stdio::null())
        .status()
        .expect("orca journal compact");
    assert!(compact.success());
    let snap = stats(time_cli(&ws, &["status", &run], calls));
    println!(
        "  orca status <run>, offline (fleet snapshot): median {:6.2} ms  p99 {:6.2} ms",
        snap.0, snap.1
    );

    let mut daemon = Command::new(env!("CARGO_BIN_EXE_orca"))
        .arg("--workspace")
        .arg(ws.root())
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("orca up");
    // Ready when daemon.json names it (woken by inotify).
    let (tx, rx) = std::sync::mpsc::channel();
    use notify::Watcher as _;
    let mut watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
        let _ = tx.send(());
    })
    .expect("watcher");
    watcher
        .watch(&ws.orca_dir(), notify::RecursiveMode::NonRecursive)
        .expect("watch");
    let info = loop {
        if let Some(i) = DaemonInfo::read(&ws).filter(|i| i.pid == daemon.id()) {
            break i;
        }
        if let Ok(Some(s)) = daemon.try_wait() {
            panic!("the daemon exited: {s}");
        }
        let _ = rx.recv_timeout(Duration::from_millis(500));
    };
    let live = stats(time_cli(&ws, &["status", &run], calls));
    println!(
        "  orca status <run>, against the daemon:      median {:6.2} ms  p99 {:6.2} ms  (target: median < 20 ms)",
        live.0, live.1
    );
    let token = std::fs::read_to_string(ws.token_path()).expect("token");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for (label, path) in [
        (
            "GET /v1/fleet/runs/{id} (every task)",
            format!("/v1/fleet/runs/{run}"),
        ),
        (
            "GET /v1/fleet/runs/{id}?brief=true",
            format!("/v1/fleet/runs/{run}?brief=true"),
        ),
    ] {
        let times: Vec<Duration> = rt.block_on(async {
            let mut v = Vec::new();
            for _ in 0..calls {
                let t = Instant::now();
                let body = http
                    .get(format!("http://{}{path}", info.address))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("request")
                    .bytes()
                    .await
                    .expect("body");
                assert!(!body.is_empty());
                v.push(t.elapsed());
            }
            v
        });
        let (m, p) = stats(times);
        println!("  {label:<40} median {m:6.2} ms  p99 {p:6.2} ms");
    }
    println!("  daemon / offline (median): {:.2}", live.0 / offline.0);
    let _ = Command::new(env!("CARGO_BIN_EXE_orca"))
        .arg("--workspace")
        .arg(ws.root())
        .arg("down")
        .output();
    let _ = daemon.wait();
}
