//! Alert delivery: raise → request received on loopback (p50, p99) with
//! `group_wait` 0 and journal sync `always`; a burst of 1,000 alerts
//! through a webhook adapter rate-limited to 100 a second; the process's
//! memory during the burst.
//!
//! Baselines measured in the same run, on the same loopback server:
//! `raw POST` (reqwest straight to it) and `floor` (one journal append with
//! sync `always`, then the raw POST: what any outbox must pay). The ratio
//! printed is orca's p50 over the floor's.
//!
//! Run: `cargo bench --bench alerts` (`-- --quick`: 50 samples, a burst of
//! 200). Target: p50 under 20 ms.
mod common;

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use orca::daemon::{boot, Orca};
use orca_actors::alert::actor::RouterMsg;
use orca_actors::alert::AlertRaised;
use orca_actors::alert::AlertSource;
use orca_actors::journal::NewEvent;
use orca_actors::model::{AlertClass, Timestamp};
use orca_actors::path::ActorPath;
use orca_actors::spec::OrcaConfig;
use orca_actors::workspace::Workspace;
use tokio::sync::mpsc;

type Seen = mpsc::UnboundedSender<(String, Instant)>;

/// A loopback server recording when each request's webhook-id arrived.
async fn serve() -> (String, mpsc::UnboundedReceiver<(String, Instant)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .fallback(|State(tx): State<Seen>, headers: HeaderMap| async move {
            let at = Instant::now();
            let id = headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let _ = tx.send((id, at));
            "ok"
        })
        .with_state(tx);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), rx)
}

fn config(rate: u32) -> String {
    format!(
        r#"[journal]
sync = "always"
[alerts]
enabled = true
group_wait = 0
routes = [{{ events = ["verifier_failed"], adapter = "hook" }}]
[alerts.adapters.hook]
kind = "webhook"
url_env = "BENCH_HOOK_URL"
rate_limit = {rate}
"#
    )
}

async fn boot_ws(dir: &std::path::Path, rate: u32) -> (Workspace, Orca) {
    let ws = Workspace::at(dir);
    std::fs::create_dir_all(ws.orca_dir()).expect("mkdir");
    std::fs::write(ws.config_path(), config(rate)).expect("config");
    let cfg = OrcaConfig::parse(&config(rate)).expect("config").0;
    let orca = boot(&ws, &cfg, None).await.expect("boot");
    (ws, orca)
}

fn alert(i: usize) -> AlertRaised {
    AlertRaised::new(
        AlertClass::VerifierFailed,
        AlertSource::run("r-bench"),
        Some(format!("t{i}")),
        Some(1),
        Some("local-1".into()),
        format!("scorer timed out (bench alert {i})"),
        Timestamp::now(),
    )
}

fn raise(orca: &Orca, alerts: Vec<AlertRaised>) -> impl std::future::Future<Output = ()> {
    let batch = alerts
        .into_iter()
        .map(|a| NewEvent::new("/runs/r-bench", a.event()))
        .collect();
    let ack = orca.services.journal.append(batch);
    async move {
        ack.await.expect("append");
    }
}

/// Waits for the request carrying `id`.
async fn arrival(rx: &mut mpsc::UnboundedReceiver<(String, Instant)>, id: &str) -> Instant {
    loop {
        let (got, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("the request arrived in time")
            .expect("server");
        if got == id {
            return at;
        }
    }
}

/// One raw POST carrying `id` as its webhook-id.
async fn post(client: &reqwest::Client, url: &str, id: &str) {
    client
        .post(url)
        .header("webhook-id", id)
        .body("{}")
        .send()
        .await
        .expect("post");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[(((v.len() as f64) * p).ceil() as usize).clamp(1, v.len()) - 1]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let samples = if quick { 50 } else { 300 };
    let burst = if quick { 200 } else { 1_000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (url, mut rx) = serve().await;
        std::env::set_var("BENCH_HOOK_URL", &url);
        let client = reqwest::Client::builder().no_proxy().build().expect("client");

        // --- Latency -------------------------------------------------------
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let (ws, orca) = boot_ws(dir.path(), 10_000).await;
        let mut raw = Vec::new();
        let mut floor = Vec::new();
        let mut orca_ms = Vec::new();
        for i in 0..samples {
            // Raw: one POST.
            let id = format!("raw-{i}:1");
            let t = Instant::now();
            post(&client, &url, &id).await;
            raw.push(ms(arrival(&mut rx, &id).await - t));
            // Floor: a durable append, then one POST.
            let id = format!("floor-{i}:1");
            let t = Instant::now();
            orca.services
                .journal
                .append(vec![NewEvent::new(
                    "/bench",
                    orca_actors::journal::Event::DaemonStarted {
                        pid: 0,
                        version: "bench".into(),
                        address: String::new(),
                        embedded: true,
                    },
                )])
                .await
                .expect("append");
            post(&client, &url, &id).await;
            floor.push(ms(arrival(&mut rx, &id).await - t));
            // orca: journal the raised alert; the router sends it.
            let a = alert(i);
            let id = format!("{}:1", a.id);
            let t = Instant::now();
            raise(&orca, vec![a]).await;
            orca_ms.push(ms(arrival(&mut rx, &id).await - t));
        }
        let (raw50, raw99) = (pct(&mut raw, 0.5), pct(&mut raw, 0.99));
        let (fl50, fl99) = (pct(&mut floor, 0.5), pct(&mut floor, 0.99));
        let (o50, o99) = (pct(&mut orca_ms, 0.5), pct(&mut orca_ms, 0.99));
        println!("alerts: raise -> request received, {samples} samples, journal sync always, group_wait 0");
        println!("  raw POST                   p50 {raw50:7.2} ms  p99 {raw99:7.2} ms");
        println!("  floor (append + POST)      p50 {fl50:7.2} ms  p99 {fl99:7.2} ms");
        println!("  orca (raise -> delivered)  p50 {o50:7.2} ms  p99 {o99:7.2} ms");
        println!(
            "  ratio orca/floor p50 {:.2}  (target: orca p50 < 20 ms: {})",
            o50 / fl50,
            if o50 < 20.0 { "met" } else { "NOT met" }
        );
        orca.shutdown().await;
        drop(ws);

        // --- Burst ---------------------------------------------------------
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let (_ws, orca) = boot_ws(dir.path(), 100).await;
        let router: ractor::ActorRef<RouterMsg> = orca
            .services
            .registry
            .get(&ActorPath::AlertRouter)
            .expect("the router runs")
            .into();
        let rss_before = common::rss_kib();
        let alerts: Vec<AlertRaised> = (0..burst).map(|i| alert(100_000 + i)).collect();
        let ids: std::collections::HashSet<String> =
            alerts.iter().map(|a| format!("{}:1", a.id)).collect();
        let start = Instant::now();
        // 1,000 raised at once, in batches of 100 (as fast as the journal
        // takes them).
        for chunk in alerts.chunks(100) {
            raise(&orca, chunk.to_vec()).await;
        }
        let raised_in = start.elapsed();
        let mut seen = 0usize;
        let mut peak_rss = rss_before;
        let mut peak_queue = 0usize;
        let mut arrivals: Vec<Instant> = Vec::with_capacity(burst);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        while seen < ids.len() {
            tokio::select! {
                got = rx.recv() => {
                    let (id, at) = got.expect("server");
                    if ids.contains(&id) {
                        seen += 1;
                        arrivals.push(at);
                    }
                }
                _ = tick.tick() => {
                    peak_rss = peak_rss.max(common::rss_kib());
                    if let Ok(ractor::rpc::CallResult::Success(s)) =
                        router.call(RouterMsg::Status, Some(Duration::from_secs(1))).await
                    {
                        peak_queue = peak_queue.max(s.queue);
                    }
                    assert!(start.elapsed() < Duration::from_secs(120), "the burst stalled at {seen}");
                }
            }
        }
        let last = *arrivals.last().expect("arrivals");
        let took = last - start;
        // The bucket starts full (a burst of 100); after it, the limit.
        let after_burst = &arrivals[100.min(arrivals.len() - 1)..];
        let steady = (after_burst.len().saturating_sub(1)) as f64
            / (last - after_burst[0]).as_secs_f64().max(1e-9);
        println!(
            "burst: {burst} alerts raised in {:.0} ms through a webhook limited to 100/s",
            ms(raised_in)
        );
        println!(
            "  all delivered after {:.2} s: {:.1} requests/s overall; {steady:.1}/s after the bucket's first 100 (limit 100/s)",
            took.as_secs_f64(),
            burst as f64 / took.as_secs_f64(),
        );
        println!(
            "  memory: RSS {:.1} MiB before, peak {:.1} MiB during (+{:.1} MiB); router queue peak {peak_queue}",
            rss_before as f64 / 1024.0,
            peak_rss as f64 / 1024.0,
            (peak_rss.saturating_sub(rss_before)) as f64 / 1024.0
        );
        orca.shutdown().await;
    });
}
