//! Always-on agents in the real daemon: a failed receipt wakes an agent
//! that starts one fix run; signed webhooks; policy, pause, resume and
//! retire; and a crash loop (SIGKILL during wakes and between a timer's
//! deadline and its action) after which nothing ran twice and nothing was
//! lost.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{assert_exit, orca_cmd, TestWs};
use orca_actors::agent::events::{AgentEvent, IntentAction, IntentOutcome};
use orca_actors::journal::Event;
use serde_json::Value;

const WATCH: &str = r#"
id = "watch"
display_name = "Nightly watch"
persona = "Keeps the nightly run green."

[[subscriptions]]
id = "failures"
kind = "fleet"
events = ["receipt.fail"]

[[routes]]
on = "failures"
action = "start_run"
spec = "specs/fix.toml"
vars = { target = "{{event.task}}" }
"#;

const FIX: &str = r#"
name = "fix {{vars.target}}"
[[tasks]]
id = "fix"
command = ["sh", "-c", "cp \"$ORCA_EVENT_FILE\" woke-by.json"]
"#;

#[test]
fn a_failed_receipt_wakes_the_agent_and_it_starts_one_fix_run() {
    let ws = TestWs::fast();
    common::write_rel(&ws, "agents/watch.toml", WATCH);
    common::write_rel(&ws, "agents/specs/fix.toml", FIX);
    common::write_rel(&ws, "broken.toml", "name = \"nightly\"\n[[tasks]]\nid = \"lint\"\ncommand = \"exit 1\"\nretry_policy = { max_attempts = 1 }\n");
    // Without the daemon, a change is refused (exit 1), saying so.
    let o = orca_cmd(&ws)
        .args(["agent", "create"])
        .arg(ws.path("agents/watch.toml"))
        .output()
        .unwrap();
    assert_exit(&o, 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("orca up"));

    let _daemon = common::up_env(&ws, &[]);
    let o = orca_cmd(&ws)
        .args(["agent", "create"])
        .arg(ws.path("agents/watch.toml"))
        .output()
        .unwrap();
    assert_exit(&o, 0);
    // The same id again: refused (exit 2).
    let o = orca_cmd(&ws)
        .args(["agent", "create"])
        .arg(ws.path("agents/watch.toml"))
        .output()
        .unwrap();
    assert_exit(&o, 2);

    let o = orca_cmd(&ws)
        .args(["run", "--detach"])
        .arg(ws.path("broken.toml"))
        .output()
        .unwrap();
    assert_exit(&o, 0);
    // The agent's run starts and ends.
    let events = common::wait_journal(&ws, "the fix run's end", |ev| {
        let runs: Vec<String> = common::agent_events(ev)
            .iter()
            .filter_map(|a| match a {
                AgentEvent::Done {
                    outcome: IntentOutcome::RunStarted { run },
                    ..
                } => Some(run.clone()),
                _ => None,
            })
            .collect();
        runs.len() == 1
            && ev
                .iter()
                .any(|e| matches!(&e.event, Event::RunFinished { run, .. } if *run == runs[0]))
    });
    let started: Vec<&AgentEvent> = common::agent_events(&events)
        .into_iter()
        .filter(|a| {
            matches!(
                a,
                AgentEvent::Intended {
                    action: IntentAction::StartRun { .. },
                    ..
                }
            )
        })
        .collect();
    assert_eq!(started.len(), 1, "one wake, one run");
    let AgentEvent::Intended {
        action: IntentAction::StartRun { run, .. },
        ..
    } = started[0]
    else {
        unreachable!()
    };
    // The run got the event that woke the agent, and the vars.
    let copied: Value =
        serde_json::from_slice(&std::fs::read(ws.path("woke-by.json")).unwrap()).unwrap();
    assert_eq!(copied["event"], "receipt.fail");
    assert_eq!(copied["task"], "lint");
    assert_eq!(copied["run_name"], "nightly");
    let submitted = events.iter().find_map(|e| match &e.event {
        Event::RunSubmitted(s) if s.run == *run => Some(s.name.clone()),
        _ => None,
    });
    assert_eq!(submitted.as_deref(), Some("fix lint"));

    // explain (text and JSON), list, the tree with the run under the agent.
    let o = orca_cmd(&ws)
        .args(["agent", "explain", "watch", "--json"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let e: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(e["watching"][0]["subscription"], "failures");
    assert_eq!(e["lifecycle"], "idle");
    let o = orca_cmd(&ws)
        .args(["agent", "explain", "watch"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("failures (fleet): receipt.fail") && text.contains("blocked on\n  nothing"),
        "{text}"
    );
    let o = orca_cmd(&ws).args(["tree", "--json"]).output().unwrap();
    let tree: Value = serde_json::from_slice(&o.stdout).unwrap();
    let agents = tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "agents")
        .expect("an agents node");
    let node = &agents["children"][0];
    assert_eq!(node["name"], "agent:watch");
    assert_eq!(node["children"][0]["path"], format!("/runs/{run}"));
}

#[test]
fn webhooks_are_verified_and_a_repeat_is_a_duplicate() {
    use base64::Engine as _;
    use hmac::Mac as _;
    let ws = TestWs::fast();
    let secret_raw = b"agent-webhook-secret-0123456789!!";
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(secret_raw)
    );
    common::write_rel(
        &ws,
        "agents/hooked.toml",
        "id = \"hooked\"\n[[subscriptions]]\nid = \"deploys\"\nkind = \"webhook\"\nsecret_env = \"T_AGENT_HOOK\"\n[[routes]]\non = \"deploys\"\naction = \"note\"\ntext = \"deploy {{event.payload.version}}\"\n",
    );
    let daemon = common::up_env(&ws, &[("T_AGENT_HOOK", &secret)]);
    let info = orca::daemon::info::DaemonInfo::read(&ws.ws).unwrap();
    assert_exit(
        &orca_cmd(&ws)
            .args(["agent", "create"])
            .arg(ws.path("agents/hooked.toml"))
            .output()
            .unwrap(),
        0,
    );
    let url = format!("http://{}/v1/agents/hooked/events/deploys", info.address);
    let post = |id: &str, ts: i64, body: &str, key: &[u8]| -> (u16, Value) {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(format!("{id}.{ts}.{body}").as_bytes());
        let sig = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let r = reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .post(&url)
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sig)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        })
    };
    let now = chrono::Utc::now().timestamp();
    let body = r#"{"version":"1.2.3"}"#;
    assert_eq!(
        post("msg_1", now, body, b"wrong key").0,
        401,
        "bad signature"
    );
    assert_eq!(
        post("msg_1", now - 3600, body, secret_raw).0,
        401,
        "stale timestamp"
    );
    let (code, v) = post("msg_1", now, body, secret_raw);
    assert_eq!(code, 202, "{v}");
    let (code, v) = post("msg_1", now, body, secret_raw);
    assert_eq!((code, &v["duplicate"]), (200, &Value::Bool(true)));
    drop(daemon);
    let woke: Vec<String> = common::agent_events(&ws.journal())
        .iter()
        .filter_map(|a| match a {
            AgentEvent::Woke { wake, .. } => Some(wake.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(woke, ["deploys:msg_1"], "acted on once");
    let noted = common::agent_events(&ws.journal()).iter().any(|a| {
        matches!(
            a,
            AgentEvent::Done {
                outcome: IntentOutcome::Noted,
                ..
            }
        )
    });
    assert!(noted);
}

#[test]
fn policy_refuses_pause_queues_resume_drains_retire_ends() {
    let ws = TestWs::fast();
    common::write_rel(&ws, "other/fix.toml", FIX);
    common::write_rel(
        &ws,
        "agents/narrow.toml",
        "id = \"narrow\"\nworkspaces = [\"agents\"]\n[[routes]]\non = \"inbox\"\naction = \"start_run\"\nspec = \"../other/fix.toml\"\n[[routes]]\non = \"inbox\"\naction = \"note\"\ntext = \"told: {{event.text}}\"\n",
    );
    let _daemon = common::up_env(&ws, &[]);
    assert_exit(
        &orca_cmd(&ws)
            .args(["agent", "create"])
            .arg(ws.path("agents/narrow.toml"))
            .output()
            .unwrap(),
        0,
    );
    let tell = |text: &str| {
        orca_cmd(&ws)
            .args(["agent", "tell", "narrow", text])
            .output()
            .unwrap()
    };
    assert_exit(&tell("first"), 0);
    let ev = common::wait_journal(&ws, "the refusal", |ev| {
        common::agent_events(ev)
            .iter()
            .any(|a| matches!(a, AgentEvent::Refused { .. }))
    });
    let reason = common::agent_events(&ev).iter().find_map(|a| match a {
        AgentEvent::Refused { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(reason.unwrap().contains("outside the agent's workspaces"));
    // Paused: a message is journaled, not taken.
    assert_exit(
        &orca_cmd(&ws)
            .args(["agent", "pause", "narrow"])
            .output()
            .unwrap(),
        0,
    );
    assert_exit(&tell("second"), 0);
    let o = orca_cmd(&ws)
        .args(["agent", "explain", "narrow", "--json"])
        .output()
        .unwrap();
    let e: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (e["lifecycle"].as_str(), e["inbox"].as_u64()),
        (Some("paused"), Some(1))
    );
    assert_exit(
        &orca_cmd(&ws)
            .args(["agent", "resume", "narrow"])
            .output()
            .unwrap(),
        0,
    );
    common::wait_journal(&ws, "the second wake taken", |ev| {
        common::agent_events(ev)
            .iter()
            .filter(|a| matches!(a, AgentEvent::WakeStarted { .. }))
            .count()
            == 2
    });
    // Retired: no more messages; the id is never reused; history reads.
    assert_exit(
        &orca_cmd(&ws)
            .args(["agent", "retire", "narrow"])
            .output()
            .unwrap(),
        0,
    );
    assert_exit(&tell("third"), 2);
    let o = orca_cmd(&ws)
        .args(["agent", "create"])
        .arg(ws.path("agents/narrow.toml"))
        .output()
        .unwrap();
    assert_exit(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("retired"));
    let o = orca_cmd(&ws)
        .args(["agent", "show", "narrow", "--json"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["retired"], true);
    // Unknown agent: exit 2.
    assert_exit(
        &orca_cmd(&ws)
            .args(["agent", "explain", "nobody"])
            .output()
            .unwrap(),
        2,
    );
}

/// SIGKILL the daemon at random points while a 1 s timer wakes the agent
/// and each wake starts a run: after `orca up` timers are re-armed, no
/// intent starts its run twice, every wake in flight is finished once.
/// `ORCA_AGENT_KILLS` sets the number of kills (default 2),
/// `ORCA_AGENT_SEED` replays one.
#[test]
fn a_daemon_killed_during_wakes_runs_nothing_twice_and_loses_nothing() {
    let (kills, seed, mut rng) = common::crash_loop("AGENT");
    let ws = TestWs::fast();
    common::write_rel(
        &ws,
        "agents/ticker.toml",
        "id = \"ticker\"\n[[subscriptions]]\nid = \"tick\"\nkind = \"timer\"\nevery = \"1s\"\nmissed = \"run_once\"\n[[routes]]\non = \"tick\"\naction = \"start_run\"\nspec = \"specs/quick.toml\"\n[[routes]]\non = \"tick\"\naction = \"remember\"\nafter = \"1h\"\ntext = \"check {{event.due}}\"\n",
    );
    common::write_rel(
        &ws,
        "agents/specs/quick.toml",
        "[[tasks]]\nid = \"q\"\ncommand = \"true\"\n",
    );
    let daemon = common::up_env(&ws, &[]);
    assert_exit(
        &orca_cmd(&ws)
            .args(["agent", "create"])
            .arg(ws.path("agents/ticker.toml"))
            .output()
            .unwrap(),
        0,
    );
    let mut daemon = Some(daemon);
    for i in 0..kills {
        // Let some ticks happen, then kill at a random point.
        let woke_before = common::agent_events(&ws.journal())
            .iter()
            .filter(|a| matches!(a, AgentEvent::Woke { .. }))
            .count();
        common::wait_journal(&ws, "a tick", |ev| {
            common::agent_events(ev)
                .iter()
                .filter(|a| matches!(a, AgentEvent::Woke { .. }))
                .count()
                > woke_before
        });
        std::thread::sleep(Duration::from_millis(rng.below(1_200)));
        if let Some(mut d) = daemon.take() {
            let _ = d.0.kill();
            let _ = d.0.wait();
        }
        eprintln!("round {i}: killed");
        daemon = Some(common::up_env(&ws, &[]));
    }
    // One more tick after the last restart: timers were re-armed.
    let armed_before = common::agent_events(&ws.journal())
        .iter()
        .filter(|a| matches!(a, AgentEvent::TimerArmed { .. }))
        .count();
    common::wait_journal(&ws, "a tick after the last restart", |ev| {
        common::agent_events(ev)
            .iter()
            .filter(|a| matches!(a, AgentEvent::TimerArmed { .. }))
            .count()
            > armed_before + 1
    });
    // Then every intent is done.
    let events = common::wait_journal(&ws, "every intent done", |ev| {
        let a = common::agent_events(ev);
        let intended: BTreeSet<&str> = a
            .iter()
            .filter_map(|e| match e {
                AgentEvent::Intended { intent, .. } => Some(intent.as_str()),
                _ => None,
            })
            .collect();
        let done: BTreeSet<&str> = a
            .iter()
            .filter_map(|e| match e {
                AgentEvent::Done { intent, .. } => Some(intent.as_str()),
                _ => None,
            })
            .collect();
        intended == done
    });
    drop(daemon);
    let a = common::agent_events(&events);
    // No wake twice.
    let mut woke: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &a {
        if let AgentEvent::Woke { wake, .. } = e {
            *woke.entry(wake.as_str()).or_default() += 1;
        }
    }
    assert!(
        woke.values().all(|n| *n == 1),
        "seed {seed}: a wake twice: {woke:?}"
    );
    // No intent's run submitted twice; each intent done once.
    let runs: Vec<&str> = a
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Intended {
                action: IntentAction::StartRun { run, .. },
                ..
            } => Some(run.as_str()),
            _ => None,
        })
        .collect();
    for run in &runs {
        let submitted = events
            .iter()
            .filter(|e| matches!(&e.event, Event::RunSubmitted(s) if s.run == *run))
            .count();
        assert_eq!(
            submitted, 1,
            "seed {seed}: run {run} submitted {submitted} times"
        );
    }
    let mut done: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &a {
        if let AgentEvent::Done { intent, .. } = e {
            *done.entry(intent.as_str()).or_default() += 1;
        }
    }
    assert!(
        done.values().all(|n| *n == 1),
        "seed {seed}: an intent done twice"
    );
    // Commitments are intact: one per wake that remembered.
    let view = orca_actors::view::FleetView::load(&ws.ws).unwrap();
    let st = &view.agents.agents["ticker"];
    let remembered = a
        .iter()
        .filter(|e| {
            matches!(
                e,
                AgentEvent::Done {
                    outcome: IntentOutcome::Remembered,
                    ..
                }
            )
        })
        .count();
    assert_eq!(st.commitments.len(), remembered, "seed {seed}");
    assert!(
        st.current.is_none()
            || st
                .intents
                .values()
                .all(|i| i.status != orca_actors::agent::state::IntentStatus::Pending)
    );
}
