//! The web console with a 10,000-task run loaded, in headless Chromium:
//! how long from a journal event to the page showing it (p50, p99; target
//! p50 < 100 ms), how long the run's page takes to load, and the bytes of a
//! first load. Anchor: the same events as `orca events --follow` sees them
//! (the journal's own timestamps), on this machine.
//!
//! `cargo bench --bench console` (needs Debian's chromium and
//! chromium-driver, as the tests do). ORCA_CONSOLE_BENCH_SECS sets how long
//! events are measured (default 10).

#[path = "../tests/common/webdriver.rs"]
#[allow(dead_code)]
mod webdriver;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::var("ORCA_CONSOLE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let tasks: usize = std::env::var("ORCA_CONSOLE_BENCH_TASKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical");
    std::fs::create_dir_all(root.join(".orca")).unwrap();
    std::fs::write(
        root.join(".orca/config.toml"),
        "[run]\ngrace_seconds = 0.5\n[journal]\nsync = \"never\"\n",
    )
    .unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_orca"))
        .arg("--workspace")
        .arg(&root)
        .arg("up")
        .env_remove("ORCA_WORKSPACE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("orca up");
    let info_path = root.join(".orca/daemon.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let address = loop {
        if let Ok(v) = std::fs::read_to_string(&info_path)
            .map_err(|_| ())
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|_| ()))
        {
            if let Some(a) = v["address"].as_str() {
                break a.to_string();
            }
        }
        assert!(Instant::now() < deadline, "the daemon did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let base = format!("http://{address}");
    let token = std::fs::read_to_string(root.join(".orca/token")).unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    // 10,000 short tasks on 2 workers: a steady stream of events while the
    // page holds the whole run.
    let mut spec = String::from("name = \"ten-thousand\"\n");
    for i in 0..tasks {
        spec.push_str(&format!(
            "[[tasks]]\nid = \"t{i:05}\"\ncommand = \"true\"\n"
        ));
    }
    let r: Value = http
        .post(format!(
            "{base}/v1/fleet/runs?source=big.toml&max_workers=2"
        ))
        .bearer_auth(token.trim())
        .body(spec)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run = r["run"].as_str().expect("submitted").to_string();
    eprintln!("bench: submitted {run}");

    let out = Command::new(env!("CARGO_BIN_EXE_orca"))
        .arg("--workspace")
        .arg(&root)
        .args(["ui", "--no-open", "--json"])
        .output()
        .unwrap();
    let url = serde_json::from_slice::<Value>(&out.stdout).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();

    eprintln!("bench: logging in");
    // First-load bytes, as a browser fetches them.
    let b = webdriver::Browser::start().await;
    b.goto(&url).await;
    b.wait(
        "the console",
        "return document.getElementById('runs') !== null",
        vec![],
    )
    .await;
    let bytes = b
        .js(
            "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))\
             .filter(e => !e.name.includes('/v1/')).reduce((s, e) => s + (e.transferSize || e.encodedBodySize || 0), 0)",
            vec![],
        )
        .await;

    eprintln!("bench: first load {bytes} bytes; opening the run");
    // The run's page with every task loaded.
    let t0 = Instant::now();
    b.goto(&format!("{base}/#/run/{run}")).await;
    b.wait(
        "10,000 tasks loaded",
        "const c = document.getElementById('task-count'); return c && c.textContent.endsWith('of ' + arguments[0]);",
        vec![json!(tasks)],
    )
    .await;
    let load = t0.elapsed();
    let rows = b
        .js(
            "return document.querySelectorAll('#tasks .vrow').length",
            vec![],
        )
        .await;
    eprintln!("bench: run page loaded in {load:?}; measuring");
    b.js("window.orcaLatency = []", vec![]).await;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let lat = b
        .js(
            "const l = window.orcaLatency; window.orcaLatency = null; return l",
            vec![],
        )
        .await;
    // Still responsive: a scroll to the end paints the last rows.
    let t1 = Instant::now();
    b.js(
        "const l = document.getElementById('tasks'); l.scrollTop = l.scrollHeight;",
        vec![],
    )
    .await;
    b.wait(
        "the last row painted",
        "return document.querySelector(`#tasks .vrow[data-task=t${String(arguments[0] - 1).padStart(5, '0')}]`) !== null",
        vec![json!(tasks)],
    )
    .await;
    let scroll = t1.elapsed();
    // Each task event: [journal -> DOM, journal -> browser] in ms.
    let pairs: Vec<(f64, f64)> = lat
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    let sorted = |f: &dyn Fn(&(f64, f64)) -> f64| {
        let mut v: Vec<f64> = pairs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let ms = sorted(&|p| p.0);
    let to_browser = sorted(&|p| p.1);
    let in_browser = sorted(&|p| p.0 - p.1);
    println!("console bench: {tasks}-task run, 2 workers, {secs}s of events");
    println!("  first load (HTML + JS + CSS): {bytes} bytes");
    println!(
        "  run page load with {tasks} tasks: {:.0} ms; rows in the DOM: {rows}",
        load.as_secs_f64() * 1e3
    );
    println!(
        "  journal event -> task patched in the page: n = {}, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "    of which journal -> SSE chunk in the browser: p50 {:.1} ms, p99 {:.1} ms; \
         browser -> DOM patched: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&to_browser, 0.5),
        percentile(&to_browser, 0.99),
        percentile(&in_browser, 0.5),
        percentile(&in_browser, 0.99)
    );
    println!(
        "  scroll to the last row painted: {:.0} ms",
        scroll.as_secs_f64() * 1e3
    );
    b.quit().await;
    let _ = http
        .post(format!("{base}/v1/fleet/runs/{run}/stop"))
        .bearer_auth(token.trim())
        .json(&json!({}))
        .send()
        .await;
    let _ = http
        .post(format!("{base}/v1/daemon/shutdown"))
        .bearer_auth(token.trim())
        .send()
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while daemon.try_wait().ok().flatten().is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let _ = daemon.kill();
    let _ = daemon.wait();
}
