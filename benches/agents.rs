//! 10,000 idle agents in one daemon tree, each with a timer (every hour)
//! and a fleet subscription (`receipt.fail` of runs named `storm`):
//! - resident memory above the tree's own (target < 150 MB, under 15 KB
//!   an agent);
//! - start-up: rebuilding them from the journal and a fleet snapshot,
//!   until every agent's row is up — an idle agent is a passive row (state
//!   and deadlines, no actor) until a deadline or a wake — (target < 2 s);
//! - one fleet event fanned out to all of them (until every wake is
//!   journaled);
//! - event → wake and action journaled, p50 and p99, for one agent, with
//!   journal sync `always` (target p99 < 20 ms), beside the floors: one
//!   durable append of the same size, and two in a row (the chain's own:
//!   the fleet fact's append, then the agent's decision's).
//!
//! Run: `cargo bench --bench agents` (`-- --quick`: 1,000 agents).
mod common;

use std::time::{Duration, Instant};

use orca::daemon::{boot_with, BootOptions, Orca};
use orca_actors::agent::events::AgentEvent;
use orca_actors::agent::spec::{check_agent_str, PreparedAgent};
use orca_actors::agents::{AgentsMsg, RowCount};
use orca_actors::journal::event::RunSubmitted;
use orca_actors::journal::{Event, NewEvent};
use orca_actors::model::{AttemptResult, Surface};
use orca_actors::path::ActorPath;
use orca_actors::spec::{Format, OrcaConfig};
use orca_actors::view::FleetView;
use orca_actors::workspace::Workspace;
use ractor::ActorRef;

const CONFIG: &str = "[journal]\nsync = \"always\"\n";

fn idle_agent(i: usize) -> PreparedAgent {
    let text = format!(
        r#"
id = "idle-{i}"
[[subscriptions]]
id = "hourly"
kind = "timer"
every = "1h"
[[subscriptions]]
id = "storms"
kind = "fleet"
events = ["receipt.fail"]
filter = {{ run_name = "storm" }}
[[routes]]
on = "storms"
action = "note"
text = "storm: {{{{event.task}}}}"
"#
    );
    let (spec, _) = check_agent_str(&text, Format::Toml, "bench").expect("agent spec");
    PreparedAgent {
        spec,
        dir: String::new(),
        run_specs: Vec::new(),
        warnings: Vec::new(),
    }
}

fn latency_agent() -> PreparedAgent {
    let text = r#"
id = "latency"
[[subscriptions]]
id = "timeouts"
kind = "fleet"
events = ["receipt.timeout"]
[[routes]]
on = "timeouts"
action = "note"
text = "timed out: {{event.task}}"
"#;
    let (spec, _) = check_agent_str(text, Format::Toml, "bench").expect("agent spec");
    PreparedAgent {
        spec,
        dir: String::new(),
        run_specs: Vec::new(),
        warnings: Vec::new(),
    }
}

async fn boot(ws: &Workspace) -> Orca {
    let cfg = OrcaConfig::parse(CONFIG).expect("config").0;
    boot_with(
        ws,
        &cfg,
        BootOptions {
            agents: true,
            ..BootOptions::default()
        },
    )
    .await
    .expect("boot")
}

/// The `agents` table's rows: running actors and passive rows.
async fn rows(orca: &Orca) -> RowCount {
    let Some(cell) = orca.services.registry.get(&ActorPath::Agents) else {
        return RowCount::default();
    };
    let agents: ActorRef<AgentsMsg> = cell.into();
    agents
        .call(AgentsMsg::Rows, Some(Duration::from_secs(30)))
        .await
        .ok()
        .and_then(|r| match r {
            ractor::rpc::CallResult::Success(c) => Some(c),
            _ => None,
        })
        .unwrap_or_default()
}

/// How many agents have their row (running, or passive until a wake).
async fn agents_up(orca: &Orca) -> usize {
    let r = rows(orca).await;
    r.running + r.passive
}

fn submitted(run: &str, name: &str) -> Event {
    Event::RunSubmitted(RunSubmitted {
        run: run.into(),
        name: name.into(),
        spec_json: "{}".into(),
        source: "bench".into(),
        max_workers: 1,
        stale_after_ms: None,
        depth: 0,
        parent: None,
        surface: Surface::Cli,
    })
}

fn finished(run: &str, task: &str, result: AttemptResult) -> Event {
    Event::TaskFinished {
        run: run.into(),
        task: task.into(),
        result,
        final_attempt: 1,
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[(((v.len() as f64) * p).ceil() as usize).clamp(1, v.len()) - 1]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 1_000 } else { 10_000 };
    let samples = if quick { 50 } else { 200 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let ws = Workspace::at(dir.path());
        std::fs::create_dir_all(ws.orca_dir()).expect("mkdir");
        std::fs::write(ws.config_path(), CONFIG).expect("config");
        let orca = boot(&ws).await;
        let base = common::rss_kib();

        // --- n idle agents ---------------------------------------------
        let t = Instant::now();
        for i in 0..n {
            orca_actors::ops::agent_create(&orca.services.registry, idle_agent(i), Surface::Cli)
                .await
                .expect("create");
        }
        orca_actors::ops::agent_create(&orca.services.registry, latency_agent(), Surface::Cli)
            .await
            .expect("create");
        while agents_up(&orca).await < n + 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let created_in = t.elapsed();
        let after_create = rows(&orca).await;
        // Settle, then measure.
        orca.services.journal.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let with_agents = common::rss_kib();
        let grown_mib = with_agents.saturating_sub(base) as f64 / 1024.0;
        println!("agents: {n} idle agents (a timer each, a fleet subscription each), journal sync always");
        println!(
            "  created in {:.2} s; RSS {:.1} MiB before, {:.1} MiB after: +{grown_mib:.1} MiB, {:.1} KiB an agent (target < 150 MB, < 15 KB an agent)",
            created_in.as_secs_f64(),
            base as f64 / 1024.0,
            with_agents as f64 / 1024.0,
            with_agents.saturating_sub(base) as f64 / n as f64
        );
        println!(
            "  rows: {} running an actor, {} passive (state only until a deadline or a wake)",
            after_create.running, after_create.passive
        );

        // --- one fleet event to every subscriber --------------------------
        let mut feed = orca.services.journal.subscribe();
        orca.services
            .journal
            .append(vec![NewEvent::new("/bench", submitted("r-storm", "storm"))])
            .await
            .expect("append");
        let t = Instant::now();
        orca.services
            .journal
            .append(vec![NewEvent::new(
                "/bench",
                finished("r-storm", "t", AttemptResult::Fail),
            )])
            .await
            .expect("append");
        let mut woke = 0usize;
        while woke < n {
            let batch = tokio::time::timeout(Duration::from_secs(120), feed.recv())
                .await
                .expect("wakes in time")
                .expect("feed");
            woke += batch
                .iter()
                .filter(|e| matches!(e.event, Event::Agent(AgentEvent::Woke { .. })))
                .count();
        }
        let fanned = t.elapsed();
        println!(
            "  one fleet event to {n} subscribers: every wake journaled after {:.2} s ({:.0} wakes/s), {} actors running after it",
            fanned.as_secs_f64(),
            n as f64 / fanned.as_secs_f64(),
            rows(&orca).await.running
        );

        // Back to rest: every woken agent's row goes passive again.
        let t = Instant::now();
        let mut running = rows(&orca).await.running;
        while running > 1 && t.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(10)).await;
            running = rows(&orca).await.running;
        }
        println!(
            "  back to rest: {running} actors running {:.2} s after the last wake; RSS now {:.1} MiB (freed memory is not always given back to the OS)",
            t.elapsed().as_secs_f64(),
            common::rss_kib() as f64 / 1024.0
        );

        // --- event -> wake and action journaled, one agent -------------------
        orca.services
            .journal
            .append(vec![NewEvent::new("/bench", submitted("r-lat", "latency"))])
            .await
            .expect("append");
        let mut lat = Vec::new();
        let mut floor = Vec::new();
        let mut floor2 = Vec::new();
        for i in 0..samples {
            // The chain's own floor: two durable appends one after the
            // other (the fleet fact, then the agent's decision).
            let t = Instant::now();
            for _ in 0..2 {
                orca.services
                    .journal
                    .append(vec![NewEvent::new(
                        "/bench",
                        Event::Agent(AgentEvent::Cursor { seq: 0 }),
                    )])
                    .await
                    .expect("append");
            }
            floor2.push(t.elapsed().as_secs_f64() * 1000.0);
            // Floor: one durable append of an agent event's size.
            let t = Instant::now();
            orca.services
                .journal
                .append(vec![NewEvent::new(
                    "/bench",
                    Event::Agent(AgentEvent::Cursor { seq: 0 }),
                )])
                .await
                .expect("append");
            floor.push(t.elapsed().as_secs_f64() * 1000.0);
            let task = format!("t{i}");
            let t = Instant::now();
            orca.services
                .journal
                .append(vec![NewEvent::new(
                    "/bench",
                    finished("r-lat", &task, AttemptResult::Timeout),
                )])
                .await
                .expect("append");
            loop {
                let batch = tokio::time::timeout(Duration::from_secs(30), feed.recv())
                    .await
                    .expect("the wake in time")
                    .expect("feed");
                let acted = batch.iter().any(|e| {
                    matches!(&e.event, Event::Agent(AgentEvent::Intended { agent, .. }) if agent == "latency")
                });
                if acted {
                    break;
                }
            }
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let (l50, l99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
        let (f50, f99) = (pct(&mut floor, 0.5), pct(&mut floor, 0.99));
        let (g50, g99) = (pct(&mut floor2, 0.5), pct(&mut floor2, 0.99));
        println!("  event -> wake + action journaled ({samples} samples): p50 {l50:.2} ms  p99 {l99:.2} ms (target p99 < 20 ms)");
        println!("  floor (one durable append):                       p50 {f50:.2} ms  p99 {f99:.2} ms; ratio p50 {:.2}", l50 / f50);
        println!("  floor (two durable appends in a row):             p50 {g50:.2} ms  p99 {g99:.2} ms; orca above it: p50 {:+.2} ms, p99 {:+.2} ms", l50 - g50, l99 - g99);

        // --- start-up from the journal and a snapshot ----------------------
        let fleet = FleetView::load(&ws).expect("load");
        fleet.write_snapshot(&ws.snapshot_dir()).expect("snapshot");
        orca.shutdown().await;
        // Where start-up goes: one fold of the fleet (the snapshot and the
        // journal after it), as each of the daemon's folds at start does.
        let t = Instant::now();
        let again = FleetView::load(&ws).expect("load");
        let fold = t.elapsed();
        assert_eq!(again.agents.agents.len(), fleet.agents.agents.len());
        let t = Instant::now();
        let orca = boot(&ws).await;
        let booted = t.elapsed();
        while agents_up(&orca).await < n + 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let up = rows(&orca).await;
        println!(
            "  start-up with {n} agents (journal {} events, a fleet snapshot): every agent's row up after {:.2} s ({} running, {} passive) (target < 2 s)",
            fleet.last_seq,
            t.elapsed().as_secs_f64(),
            up.running,
            up.passive
        );
        println!(
            "    of which: boot() returned after {:.2} s; one fold of the fleet from the snapshot takes {:.2} s",
            booted.as_secs_f64(),
            fold.as_secs_f64()
        );
        orca.shutdown().await;
    });
}
