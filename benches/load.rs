//! orca under API load (issue 19, item 4): a real daemon (`orca up`) runs a
//! 10,000-task run of `true` twice, each time in a fresh workspace — once
//! with no API clients (the baseline), once with 100 concurrent clients:
//!
//! - *status* clients: `GET /v1/fleet/runs/{run}?brief=true` and
//!   `GET /v1/fleet/runs?brief=true` in turn (what `orca status` asks);
//! - *inspect* clients: `GET /v1/fleet/runs/{run}/tasks/{task}` of a random
//!   task (what `orca inspect` asks);
//! - *SSE* subscribers: `GET /v1/events?from=1`, each of which must receive
//!   every journaled event exactly once and in order.
//!
//! Each request client sends a request, reads the whole answer, waits the
//! think time and sends the next, until the run has ended. Reported: p50 /
//! p99 / max latency per kind, the error count (must be 0), SSE events
//! received against the journal's last seq, and the run's throughput
//! (tasks/s, from its `RunSubmitted` to its `RunFinished` in the journal's
//! own timestamps) with clients over without: the ratio is the anchor.
//!
//! Run: `cargo bench --bench load`. Scale: ORCA_LOAD_TASKS (default
//! 10000), ORCA_LOAD_CLIENTS (default 100: 40 % status, 40 % inspect, 20 %
//! SSE), ORCA_LOAD_THINK_MS (default 100), ORCA_LOAD_WORKERS (default 64).
//! Quick check: `ORCA_LOAD_TASKS=1000 ORCA_LOAD_CLIENTS=20 cargo bench
//! --bench load`. The bench exits non-zero on any error or dropped event.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// A daemon in a fresh workspace, stopped (and reaped) on drop.
struct Daemon {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    child: Child,
    base: String,
    token: String,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let orca = root.join(".orca");
        std::fs::create_dir_all(&orca).expect("mkdir .orca");
        // The default journal (sync always): the run as an operator's would.
        std::fs::write(orca.join("config.toml"), "[run]\ngrace_seconds = 0.5\n").expect("config");
        let child = Command::new(env!("CARGO_BIN_EXE_orca"))
            .arg("--workspace")
            .arg(&root)
            .arg("up")
            .env_remove("ORCA_WORKSPACE")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("orca up");
        let mut d = Daemon {
            _dir: dir,
            root,
            child,
            base: String::new(),
            token: String::new(),
        };
        // Ready when daemon.json names this process (woken by inotify).
        let (tx, rx) = std::sync::mpsc::channel();
        use notify::Watcher as _;
        let mut watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
            let _ = tx.send(());
        })
        .expect("watcher");
        watcher
            .watch(&orca, notify::RecursiveMode::NonRecursive)
            .expect("watch .orca");
        let pid = d.child.id();
        let deadline = Instant::now() + Duration::from_secs(120);
        let address = loop {
            let info = std::fs::read_to_string(orca.join("daemon.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .filter(|v| v["pid"].as_u64() == Some(u64::from(pid)));
            if let Some(a) = info.as_ref().and_then(|v| v["address"].as_str()) {
                break a.to_string();
            }
            if let Ok(Some(s)) = d.child.try_wait() {
                panic!("the daemon exited: {s}");
            }
            assert!(Instant::now() < deadline, "the daemon did not start");
            let _ = rx.recv_timeout(Duration::from_millis(500));
        };
        d.base = format!("http://{address}");
        d.token = std::fs::read_to_string(orca.join("token"))
            .expect("token")
            .trim()
            .to_string();
        d
    }

    fn journal_dir(&self) -> std::path::PathBuf {
        self.root.join(".orca/journal")
    }

    fn stop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_orca"))
            .arg("--workspace")
            .arg(&self.root)
            .arg("down")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spec(tasks: u64) -> String {
    let mut s = String::from("name = \"load\"\n");
    for i in 0..tasks {
        s.push_str(&format!("[[tasks]]\nid = \"t{i}\"\ncommand = \"true\"\n"));
    }
    s
}

/// One server-sent event: its id (the seq), type and data.
struct Sse {
    seq: u64,
    kind: String,
    data: String,
}

/// Splits a stream of SSE bytes into events (comments and keep-alives
/// skipped).
#[derive(Default)]
struct SseParser {
    buf: Vec<u8>,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<Sse>) {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(i) = find_blank_line(&self.buf[start..]) {
            let block = &self.buf[start..start + i];
            start += i + 2;
            let text = String::from_utf8_lossy(block);
            let (mut seq, mut kind, mut data) = (None, String::new(), String::new());
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    seq = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if let Some(seq) = seq {
                out.push(Sse { seq, kind, data });
            }
        }
        self.buf.drain(..start);
    }
}

fn find_blank_line(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\n\n")
}

/// What one SSE subscriber saw.
#[derive(Default)]
struct SubscriberReport {
    received: u64,
    /// Events out of order, missing before a later one, or repeated.
    gaps: u64,
    last: u64,
    error: Option<String>,
}

/// Reads `/v1/events?from=1` until it has seen `until` (once known) or the
/// stream fails. Checks the seqs run 1, 2, 3, … with nothing missing or
/// repeated. `on_event` sees each event (the monitor uses it).
async fn subscribe(
    http: reqwest::Client,
    base: String,
    token: String,
    mut until: watch::Receiver<Option<u64>>,
    mut on_event: impl FnMut(&Sse),
) -> SubscriberReport {
    let mut rep = SubscriberReport::default();
    let resp = match http
        .get(format!("{base}/v1/events?from=1"))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            rep.error = Some(format!("HTTP {}", r.status()));
            return rep;
        }
        Err(e) => {
            rep.error = Some(e.to_string());
            return rep;
        }
    };
    let mut body = resp.bytes_stream();
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    loop {
        if let Some(end) = *until.borrow() {
            if rep.last >= end {
                return rep;
            }
        }
        let chunk = tokio::select! {
            c = body.next() => c,
            _ = until.changed() => continue,
        };
        match chunk {
            Some(Ok(bytes)) => {
                parser.push(&bytes, &mut events);
                for ev in events.drain(..) {
                    if ev.seq != rep.last + 1 {
                        rep.gaps += 1;
                    }
                    rep.last = rep.last.max(ev.seq);
                    rep.received += 1;
                    on_event(&ev);
                }
            }
            Some(Err(e)) => {
                rep.error = Some(e.to_string());
                return rep;
            }
            None => {
                rep.error = Some(format!("the stream ended at seq {}", rep.last));
                return rep;
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Status,
    Inspect,
}

/// What one request client measured.
#[derive(Default)]
struct ClientReport {
    status_ms: Vec<f64>,
    inspect_ms: Vec<f64>,
    errors: Vec<String>,
}

/// Where the request clients send (one connection pool for all).
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

async fn request_client(
    api: Api,
    run: String,
    kind: Kind,
    tasks: u64,
    think: Duration,
    done: Arc<AtomicBool>,
) -> ClientReport {
    let Api { http, base, token } = api;
    let mut rep = ClientReport::default();
    let mut turn = 0u64;
    while !done.load(Ordering::Relaxed) {
        turn += 1;
        let path = match kind {
            Kind::Status if turn % 2 == 0 => "/v1/fleet/runs?brief=true".to_string(),
            Kind::Status => format!("/v1/fleet/runs/{run}?brief=true"),
            Kind::Inspect => format!(
                "/v1/fleet/runs/{run}/tasks/t{}",
                rand::random::<u64>() % tasks
            ),
        };
        let t = Instant::now();
        let res = async {
            let r = http
                .get(format!("{base}{path}"))
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|e| format!("{path}: {e}"))?;
            let status = r.status();
            let body = r.bytes().await.map_err(|e| format!("{path}: body: {e}"))?;
            if !status.is_success() {
                return Err(format!(
                    "{path}: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
            serde_json::from_slice::<Value>(&body).map_err(|e| format!("{path}: JSON: {e}"))?;
            Ok(())
        }
        .await;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        match res {
            Ok(()) => match kind {
                Kind::Status => rep.status_ms.push(ms),
                Kind::Inspect => rep.inspect_ms.push(ms),
            },
            Err(e) => rep.errors.push(e),
        }
        if !think.is_zero() {
            tokio::time::sleep(think).await;
        }
    }
    rep
}

/// The run as the journal timed it.
struct RunTiming {
    run: String,
    status: String,
    /// RunSubmitted → RunFinished, journal timestamps.
    took: Duration,
    /// The journal's last seq once the run had ended.
    last_seq: u64,
    /// For each event the monitor received: its arrival minus its journal
    /// timestamp (ms; the journal → SSE client delay), sorted.
    sse_lag_ms: Vec<f64>,
}

/// Submits the run and follows it through one SSE stream (the monitor:
/// present in both phases, so both pay for it) to its `RunFinished`.
async fn run_once(
    d: &Daemon,
    http: &reqwest::Client,
    tasks: u64,
    workers: u64,
    run_tx: watch::Sender<Option<String>>,
) -> RunTiming {
    let (until_tx, until) = watch::channel(None::<u64>);
    let (fin_tx, mut fin) = watch::channel(None::<(String, String, Duration, u64)>);
    let (id_tx, id_rx) = watch::channel(None::<String>);
    let lags = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
    let monitor = {
        let mut submitted = None;
        let lags = lags.clone();
        let id_rx = id_rx.clone();
        tokio::spawn(subscribe(
            http.clone(),
            d.base.clone(),
            d.token.clone(),
            until,
            move |ev| {
                if let Some(t) = at_fast(&ev.data) {
                    let lag = (chrono::Utc::now() - t).num_microseconds().unwrap_or(0);
                    if let Ok(mut l) = lags.lock() {
                        l.push(lag as f64 / 1e3);
                    }
                }
                // One run per daemon: its submission is the only one.
                if ev.kind == "RunSubmitted" {
                    submitted = at(&ev.data);
                }
                let Some(run) = id_rx.borrow().clone() else {
                    return;
                };
                if ev.kind == "RunFinished" && ev.data.contains(&format!("\"run\":\"{run}\"")) {
                    let v: Value = serde_json::from_str(&ev.data).unwrap_or_default();
                    let end = at(&ev.data);
                    let took = match (submitted, end) {
                        (Some(s), Some(e)) => (e - s).to_std().unwrap_or_default(),
                        _ => Duration::ZERO,
                    };
                    let status = v["status"].as_str().unwrap_or("?").to_string();
                    let _ = fin_tx.send(Some((run, status, took, ev.seq)));
                }
            },
        ))
    };
    let r = http
        .post(format!(
            "{}/v1/fleet/runs?source=load.toml&max_workers={workers}",
            d.base
        ))
        .bearer_auth(&d.token)
        .body(spec(tasks))
        .send()
        .await
        .expect("submit");
    assert!(r.status().is_success(), "submit: HTTP {}", r.status());
    let v: Value = r.json().await.expect("submit answer");
    let run = v["run"].as_str().expect("a run id").to_string();
    let _ = id_tx.send(Some(run.clone()));
    let _ = run_tx.send(Some(run.clone()));
    let (_, status, took, _) = fin
        .wait_for(|f| f.is_some())
        .await
        .expect("the monitor saw the run's end")
        .clone()
        .expect("some");
    let last_seq = orca_actors::journal::highest_seq(&d.journal_dir()).unwrap_or(0);
    let _ = until_tx.send(Some(last_seq));
    let rep = monitor.await.expect("monitor");
    assert!(
        rep.error.is_none() && rep.gaps == 0,
        "the monitor's stream: {:?}, {} gaps",
        rep.error,
        rep.gaps
    );
    let mut sse_lag_ms = lags.lock().map(|l| l.clone()).unwrap_or_default();
    sse_lag_ms.sort_by(f64::total_cmp);
    RunTiming {
        run,
        status,
        took,
        last_seq,
        sse_lag_ms,
    }
}

/// The `at` of an event's data without parsing the rest (it comes second:
/// `{"seq":N,"at":"…",`).
fn at_fast(data: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let i = data.find("\"at\":\"")? + 6;
    let j = data[i..].find('"')? + i;
    chrono::DateTime::parse_from_rfc3339(&data[i..j])
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn at(data: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let v: Value = serde_json::from_str(data).ok()?;
    chrono::DateTime::parse_from_rfc3339(v["at"].as_str()?)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn journal_dir_events(dir: &Path) -> u64 {
    orca_actors::journal::highest_seq(dir).unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let tasks = env_or("ORCA_LOAD_TASKS", 10_000).max(1);
    let clients = env_or("ORCA_LOAD_CLIENTS", 100);
    let think = Duration::from_millis(env_or("ORCA_LOAD_THINK_MS", 100));
    let workers = env_or("ORCA_LOAD_WORKERS", 64).max(1);
    let n_sse = clients / 5;
    let n_status = (clients - n_sse) / 2;
    let n_inspect = clients - n_sse - n_status;
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(clients as usize + 4)
        .build()
        .expect("client");

    // Baseline: the same run, no clients.
    let mut base_d = Daemon::start();
    let (tx, _) = watch::channel(None);
    let base = run_once(&base_d, &http, tasks, workers, tx).await;
    // The same requests, one at a time, against the idle daemon holding
    // the finished run: the latency anchor.
    let mut idle = ClientReport::default();
    for kind in [Kind::Status, Kind::Inspect] {
        let stop = Arc::new(AtomicBool::new(false));
        let (http, b, t, r, s) = (
            http.clone(),
            base_d.base.clone(),
            base_d.token.clone(),
            base.run.clone(),
            stop.clone(),
        );
        let c = tokio::spawn(async move {
            let api = Api {
                http,
                base: b,
                token: t,
            };
            request_client(api, r, kind, tasks, Duration::ZERO, s).await
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
        let r = c.await.expect("idle client");
        idle.status_ms.extend(r.status_ms);
        idle.inspect_ms.extend(r.inspect_ms);
        idle.errors.extend(r.errors);
    }
    idle.status_ms.sort_by(f64::total_cmp);
    idle.inspect_ms.sort_by(f64::total_cmp);
    base_d.stop();
    assert_eq!(base.status, "passed", "the baseline run {}", base.run);
    let base_tps = tasks as f64 / base.took.as_secs_f64();
    eprintln!("load bench: baseline {} in {:?}", base.run, base.took);

    // Loaded: the clients start with the run and stop at its end.
    let mut d = Daemon::start();
    let done = Arc::new(AtomicBool::new(false));
    let (until_tx, until) = watch::channel(None::<u64>);
    let subscribers: Vec<_> = (0..n_sse)
        .map(|_| {
            tokio::spawn(subscribe(
                http.clone(),
                d.base.clone(),
                d.token.clone(),
                until.clone(),
                |_| {},
            ))
        })
        .collect();
    let (run_tx, mut run_rx) = watch::channel(None::<String>);
    let spawner = {
        let (http, base, token, done) =
            (http.clone(), d.base.clone(), d.token.clone(), done.clone());
        tokio::spawn(async move {
            let run = run_rx
                .wait_for(|r| r.is_some())
                .await
                .expect("run id")
                .clone()
                .expect("some");
            let mut joins = Vec::new();
            for i in 0..(n_status + n_inspect) {
                let kind = if i < n_status {
                    Kind::Status
                } else {
                    Kind::Inspect
                };
                let api = Api {
                    http: http.clone(),
                    base: base.clone(),
                    token: token.clone(),
                };
                joins.push(tokio::spawn(request_client(
                    api,
                    run.clone(),
                    kind,
                    tasks,
                    think,
                    done.clone(),
                )));
            }
            let mut all = ClientReport::default();
            for j in joins {
                let r = j.await.expect("client");
                all.status_ms.extend(r.status_ms);
                all.inspect_ms.extend(r.inspect_ms);
                all.errors.extend(r.errors);
            }
            all
        })
    };
    let wall = Instant::now();
    let loaded = run_once(&d, &http, tasks, workers, run_tx).await;
    done.store(true, Ordering::Relaxed);
    let wall = wall.elapsed();
    let mut reqs = spawner.await.expect("clients");
    // Every subscriber must reach the journal's last seq.
    let last = journal_dir_events(&d.journal_dir()).max(loaded.last_seq);
    let _ = until_tx.send(Some(last));
    let drain = Instant::now();
    let mut subs = Vec::new();
    for s in subscribers {
        match tokio::time::timeout(Duration::from_secs(120), s).await {
            Ok(Ok(r)) => subs.push(r),
            Ok(Err(e)) => subs.push(SubscriberReport {
                error: Some(e.to_string()),
                ..Default::default()
            }),
            Err(_) => subs.push(SubscriberReport {
                error: Some("did not reach the last seq within 120 s".into()),
                ..Default::default()
            }),
        }
    }
    let drain = drain.elapsed();
    d.stop();

    let loaded_tps = tasks as f64 / loaded.took.as_secs_f64();
    reqs.status_ms.sort_by(f64::total_cmp);
    reqs.inspect_ms.sort_by(f64::total_cmp);
    let sse_errors: Vec<String> = subs
        .iter()
        .filter_map(|s| {
            s.error
                .clone()
                .or_else(|| (s.gaps > 0).then(|| format!("{} gaps", s.gaps)))
                .or_else(|| (s.received != last).then(|| format!("{} of {last}", s.received)))
        })
        .collect();
    let received: u64 = subs.iter().map(|s| s.received).sum();
    let n_req = reqs.status_ms.len() + reqs.inspect_ms.len();
    println!(
        "load bench: {tasks} tasks of `true`, {workers} workers, journal sync always; \
         {clients} clients ({n_status} status, {n_inspect} inspect, {n_sse} SSE), think {} ms",
        think.as_millis()
    );
    println!(
        "  without clients: {} in {:.2} s = {base_tps:.0} tasks/s ({} journal events)",
        base.run,
        base.took.as_secs_f64(),
        base.last_seq
    );
    println!(
        "  with clients:    {} in {:.2} s = {loaded_tps:.0} tasks/s ({} journal events); status {}",
        loaded.run,
        loaded.took.as_secs_f64(),
        loaded.last_seq,
        loaded.status
    );
    for (label, v, i) in [
        (
            "status  (GET /v1/fleet/runs[/{id}]?brief=true)",
            &reqs.status_ms,
            &idle.status_ms,
        ),
        (
            "inspect (GET /v1/fleet/runs/{id}/tasks/{task})",
            &reqs.inspect_ms,
            &idle.inspect_ms,
        ),
    ] {
        println!(
            "  {label}: idle, one client: p50 {:6.2} ms  p99 {:6.2} ms",
            percentile(i, 0.5),
            percentile(i, 0.99)
        );
        println!(
            "  {label}: under load:       p50 {:6.2} ms  p99 {:6.2} ms  max {:7.2} ms  n = {}",
            percentile(v, 0.5),
            percentile(v, 0.99),
            v.last().copied().unwrap_or(f64::NAN),
            v.len(),
        );
    }
    println!(
        "  requests: {n_req} in {:.1} s = {:.0} req/s; errors: {}",
        wall.as_secs_f64(),
        n_req as f64 / wall.as_secs_f64(),
        reqs.errors.len()
    );
    println!(
        "  SSE: {n_sse} subscribers from seq 1, journal last seq {last}: received {received} of {} \
         (every subscriber caught up {:.2} s after the run's end); failed subscribers: {}",
        last * n_sse,
        drain.as_secs_f64(),
        sse_errors.len()
    );
    for (label, l) in [
        ("without clients", &base.sse_lag_ms),
        ("with clients", &loaded.sse_lag_ms),
    ] {
        println!(
            "  journal event -> SSE client (the monitor's stream), {label}: p50 {:.1} ms  p99 {:.1} ms",
            percentile(l, 0.5),
            percentile(l, 0.99)
        );
    }
    println!(
        "  throughput with clients / without: {:.2}",
        loaded_tps / base_tps
    );
    let mut failed = false;
    for e in idle.errors.iter().chain(&reqs.errors).take(10) {
        println!("  error: {e}");
        failed = true;
    }
    for e in sse_errors.iter().take(10) {
        println!("  SSE error: {e}");
        failed = true;
    }
    if loaded.status != "passed" {
        println!("  the loaded run ended {}", loaded.status);
        failed = true;
    }
    if failed {
        std::process::exit(1);
    }
}
