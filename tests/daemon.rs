//! The daemon and its API through the real binary: readiness through
//! daemon.json (inotify, never a sleep), every route and its errors, the
//! CLI against it, kill -9 and restart, nested runs with per-attempt
//! tokens, and the live tree / event stream seeing a restart.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use orca::daemon::info::{DaemonInfo, Mode};
use orca_actors::journal::{follow, Event};
use orca_actors::model::{AttemptResult, RunStatus};
use orca_actors::view::{RunSummary, TreeNode};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(60);

struct Daemon {
    child: KillOnDrop,
    info: DaemonInfo,
    token: String,
    http: reqwest::Client,
}

impl Daemon {
    fn start(ws: &TestWs) -> Daemon {
        let mut child = orca_cmd(ws)
            .arg("up")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let info = wait_daemon_json(ws, child.id(), &mut child);
        let token = std::fs::read_to_string(ws.ws.token_path()).unwrap();
        Daemon {
            child: KillOnDrop(child),
            info,
            token,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.info.address)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.req(self.http.get(self.url(path))).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.req(self.http.post(self.url(path)).json(&body)).await
    }

    async fn submit(&self, toml: &str) -> String {
        let (code, v) = self
            .req(
                self.http
                    .post(self.url("/v1/fleet/runs"))
                    .header("content-type", "application/toml")
                    .body(toml.to_string()),
            )
            .await;
        assert_eq!(code, 201, "{v}");
        v["run"].as_str().unwrap().to_string()
    }

    async fn req(&self, r: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = r.bearer_auth(&self.token).send().await.unwrap();
        let code = resp.status().as_u16();
        (code, resp.json().await.unwrap_or(Value::Null))
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn down(mut self, ws: &TestWs) {
        let out = orca_cmd(ws).arg("down").output().unwrap();
        assert_exit(&out, 0);
        assert!(self.child.wait().unwrap().success());
    }
}

/// Returns once the journal holds an event matching `pred`: at once if it
/// is already written, else by following (so an earlier wait that read past
/// it does not make this one miss it).
async fn wait_seen(
    ws: &TestWs,
    f: &mut orca_actors::journal::Follower,
    pred: impl Fn(&Event) -> bool,
) {
    if ws.journal().iter().any(|e| pred(&e.event)) {
        return;
    }
    wait_event(f, pred).await;
}

fn blocking_task(name: &str) -> String {
    format!(
        "[[tasks]]\nid = \"{name}\"\ncommand = 'if [ \"$ORCA_ATTEMPT\" = 1 ]; then while [ ! -e \"$ORCA_WORKSPACE/{name}.go\" ]; do sleep 0.02; done; fi'\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_and_its_errors() {
    let ws = TestWs::fast();
    let d = Daemon::start(&ws);
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();

    // Health needs no token; everything else does.
    let h: Value = reqwest::get(d.url("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (h["status"].as_str(), h["mode"].as_str()),
        (Some("ok"), Some("daemon"))
    );
    for auth in [
        None,
        Some("wrong"),
        Some("0000000000000000000000000000000000000000000000000000000000000000"),
    ] {
        let mut r = d.http.get(d.url("/v1/fleet/runs"));
        if let Some(a) = auth {
            r = r.bearer_auth(a);
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            v,
            json!({"error": {"code": "unauthorized", "message": "unauthorized"}})
        );
    }
    let other = TestWs::fast();
    let other_token = orca::daemon::info::token(&other.ws).unwrap();
    let resp = d
        .http
        .get(d.url("/v1/tree"))
        .bearer_auth(&other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "another workspace's token");
    // Without the token, an unknown route or a wrong method tells nothing
    // more; with it, they are JSON errors like every other.
    let unauthorized = json!({"error": {"code": "unauthorized", "message": "unauthorized"}});
    for req in [
        d.http.get(d.url("/v1/no-such-route")),
        d.http.delete(d.url("/v1/fleet/runs")),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        assert!(resp.headers().get("allow").is_none());
        assert_eq!(resp.json::<Value>().await.unwrap(), unauthorized);
    }
    for (req, code, error) in [
        (d.http.get(d.url("/v1/no-such-route")), 404, "not_found"),
        (
            d.http.delete(d.url("/v1/fleet/runs")),
            405,
            "method_not_allowed",
        ),
        (d.http.get(d.url("/v1/events?from=abc")), 400, "bad_request"),
        (
            d.http.get(d.url("/v1/fleet/runs?brief=maybe")),
            400,
            "bad_request",
        ),
    ] {
        let (got, v) = d.req(req).await;
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (code, Some(error)),
            "{v}"
        );
    }
    // The scheme name is case-insensitive (RFC 9110).
    let resp = d
        .http
        .get(d.url("/v1/fleet/runs"))
        .header("authorization", format!("bearer {}", d.token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // Submit: invalid → 422 with the validator's messages; valid → 201.
    let resp = d
        .http
        .post(d.url("/v1/fleet/runs?source=bad.toml"))
        .bearer_auth(&d.token)
        .body("[[tasks]]\nid = \".x\"\ncommand = \"true\"\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_spec");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad.toml:2:6: tasks[0].id"),
        "{v}"
    );

    // `blocked` blocks on every attempt (its gate never opens).
    let spec = "name = \"api\"\n[[tasks]]\nid = \"blocked\"\ncommand = 'while [ ! -e \"$ORCA_WORKSPACE/never\" ]; do sleep 0.02; done'\n[[tasks]]\nid = \"manual\"\ncommand = \"true\"\nscorer = { kind = \"manual\" }\n";
    let run = d.submit(spec).await;
    wait_event(
        &mut f,
        |e| matches!(e, Event::AttemptStarted { attempt, .. } if attempt.task == "blocked"),
    )
    .await;

    let (code, runs) = d.get("/v1/fleet/runs").await;
    assert_eq!(code, 200);
    assert_eq!(runs[0]["run"], run.as_str());
    let (code, one) = d.get(&format!("/v1/fleet/runs/{}", &run[..10])).await;
    assert_eq!((code, one["name"].as_str()), (200, Some("api")));
    let (_, workers) = d.get(&format!("/v1/fleet/runs/{run}/workers")).await;
    let busy = workers
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["task"] == "blocked")
        .unwrap()
        .clone();
    let worker_id = busy["id"].as_str().unwrap().to_string();
    let (code, w) = d.get(&format!("/v1/fleet/workers/{worker_id}")).await;
    assert_eq!((code, w["state"].as_str()), (200, Some("busy")));
    let (code, _) = d.get("/v1/fleet/workers/nope:none").await;
    assert_eq!(code, 404);

    // Control messages: unknown path → 404; not accepted → 422 listing.
    let (code, v) = d
        .post(
            "/v1/actors/messages",
            json!({"path": "/runs/nope/attempts/x:1", "message": "interrupt"}),
        )
        .await;
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let attempt_path = format!("/runs/{run}/attempts/blocked:1");
    let (code, v) = d
        .post(
            "/v1/actors/messages",
            json!({"path": attempt_path, "message": "pause"}),
        )
        .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(
        v["error"]["details"]["accepted"],
        json!(["interrupt", "restart"])
    );
    let (code, v) = d
        .post(
            "/v1/actors/messages",
            json!({"path": attempt_path, "message": {"type": "explode"}}),
        )
        .await;
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (422, Some("not_accepted"))
    );

    // The tree is live.
    let (_, tree) = d.get(&format!("/v1/tree?run={run}")).await;
    let tree: TreeNode = serde_json::from_value(tree).unwrap();
    let run_node = &orca_actors::view::runs_node(&tree).unwrap().children[0];
    assert!(run_node
        .children
        .iter()
        .any(|c| c.name == "attempt:blocked:1" && c.state == "running"));

    // 2 MiB body → 413, as JSON.
    let resp = d
        .http
        .post(d.url("/v1/fleet/runs"))
        .bearer_auth(&d.token)
        .body(vec![b'#'; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");

    // Restart the worker through its route: a new attempt, using up none.
    let (code, v) = d
        .post(&format!("/v1/fleet/workers/{worker_id}/restart"), json!({}))
        .await;
    assert_eq!(code, 200, "{v}");
    wait_seen(&ws, &mut f, |e| matches!(e, Event::AttemptStarted { attempt, counted: false, .. } if attempt.task == "blocked" && attempt.attempt == 2)).await;

    // Pause and resume through their routes, journaled as the API's.
    for (route, status) in [("pause", "paused"), ("resume", "running")] {
        let (code, v) = d
            .post(&format!("/v1/fleet/runs/{run}/{route}"), json!({}))
            .await;
        assert_eq!(code, 200, "{route}: {v}");
        let (_, one) = d.get(&format!("/v1/fleet/runs/{run}?brief=true")).await;
        assert_eq!(one["status"], status, "after {route}");
    }
    let all = ws.journal();
    assert!(all.iter().any(|e| matches!(
        &e.event,
        Event::RunPaused {
            surface: orca_actors::model::Surface::Api,
            ..
        }
    )));
    assert!(all.iter().any(|e| matches!(
        &e.event,
        Event::RunResumed {
            surface: orca_actors::model::Surface::Api,
            ..
        }
    )));
    // One task, inspected through its route.
    let (code, v) = d.get(&format!("/v1/fleet/runs/{run}/tasks/blocked")).await;
    assert_eq!(code, 200, "{v}");
    let i: orca::render::inspect::TaskInspection = serde_json::from_value(v).unwrap();
    assert_eq!((i.task.id.as_str(), i.task.attempts.len()), ("blocked", 2));
    let (code, v) = d.get(&format!("/v1/fleet/runs/{run}/tasks/nope")).await;
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );

    // The manual task's verdict.
    wait_seen(
        &ws,
        &mut f,
        |e| matches!(e, Event::ReceiptRecorded(r) if r.task == "manual"),
    )
    .await;
    let (code, v) = d
        .post(
            &format!("/v1/fleet/runs/{run}/tasks/manual/verdict"),
            json!({"verdict": "pass", "note": "ok", "who": "bob"}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = d
        .post(
            &format!("/v1/fleet/runs/{run}/tasks/manual/verdict"),
            json!({"verdict": "pass"}),
        )
        .await;
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (409, Some("not_awaiting_verdict"))
    );
    let (_, receipts) = d.get(&format!("/v1/fleet/runs/{run}/receipts")).await;
    let manual = receipts
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["task"] == "manual")
        .unwrap();
    assert_eq!(manual["verdict"]["who"], "bob");

    // Stop the run: the blocked attempt gets its grace; the run is cancelled.
    let (code, _) = d
        .post(
            &format!("/v1/fleet/runs/{run}/stop"),
            json!({"reason": "test"}),
        )
        .await;
    assert_eq!(code, 200);
    wait_event(
        &mut f,
        |e| matches!(e, Event::RunFinished { run: r, .. } if *r == run),
    )
    .await;
    let (_, one) = d.get(&format!("/v1/fleet/runs/{run}")).await;
    let s: RunSummary = serde_json::from_value(one).unwrap();
    assert_eq!(s.status, RunStatus::Cancelled, "{s:#?}");
    let all = ws.journal();
    assert!(all.iter().any(|e| matches!(
        &e.event,
        Event::RunStopRequested {
            surface: orca_actors::model::Surface::Api,
            ..
        }
    )));
    assert!(all.iter().any(|e| matches!(&e.event, Event::ControlRequested { message, surface: orca_actors::model::Surface::Api, .. } if message == "restart")));

    // The event stream resumes after Last-Event-ID (and after ?from=).
    for (req, first) in [
        (
            d.http.get(d.url("/v1/events")).header("last-event-id", "5"),
            6,
        ),
        (d.http.get(d.url("/v1/events?from=9")), 9),
    ] {
        let mut resp = req.bearer_auth(&d.token).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let mut text = String::new();
        let id = tokio::time::timeout(LIMIT, async {
            loop {
                let chunk = resp.chunk().await.unwrap().expect("the stream goes on");
                text.push_str(&String::from_utf8_lossy(&chunk));
                if let Some(id) = text
                    .lines()
                    .find_map(|l| l.strip_prefix("id:").map(|v| v.trim().to_string()))
                {
                    break id;
                }
            }
        })
        .await
        .expect("an event within the limit");
        assert_eq!(id, first.to_string(), "{text}");
    }
    d.down(&ws);
    assert!(!ws.ws.daemon_info_path().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_talks_to_the_daemon() {
    let ws = TestWs::fast();
    // Without a daemon, mutating commands say so.
    let out = orca_cmd(&ws).args(["stop", "--all"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing is running"),
        "{out:?}"
    );

    let d = Daemon::start(&ws);
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();
    let spec = ws.path("cli.toml");
    std::fs::write(
        &spec,
        format!("{}{}", blocking_task("a"), blocking_task("b")),
    )
    .unwrap();
    let out = orca_cmd(&ws)
        .args(["run", "--detach"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let run = String::from_utf8(out.stdout).unwrap().trim().to_string();
    wait_event(
        &mut f,
        |e| matches!(e, Event::AttemptStarted { attempt, .. } if attempt.task == "b"),
    )
    .await;

    let out = orca_cmd(&ws).args(["pause", &run]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let st = orca_cmd(&ws)
        .args(["status", &run, "--json"])
        .output()
        .unwrap();
    let s: RunSummary = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(s.status, RunStatus::Paused);
    orca_cmd(&ws).args(["resume", &run]).output().unwrap();
    // Interrupt a by its global worker id; send restart to b by path.
    let (_, workers) = d.get(&format!("/v1/fleet/runs/{run}/workers")).await;
    let a_worker = workers
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["task"] == "a")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = orca_cmd(&ws)
        .args(["interrupt", &a_worker])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    // A run does not take `interrupt` (asked while b still blocks: once b
    // restarts, its second attempt passes and the run ends).
    let out = orca_cmd(&ws)
        .args(["send", &format!("/runs/{run}"), "interrupt"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("accepts: stop, pause, resume"), "{stderr}");
    let out = orca_cmd(&ws)
        .args(["send", &format!("/runs/{run}/attempts/b:1"), "restart"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    wait_event(
        &mut f,
        |e| matches!(e, Event::RunFinished { run: r, .. } if *r == run),
    )
    .await;

    let st = orca_cmd(&ws)
        .args(["status", &run, "--json"])
        .output()
        .unwrap();
    let s: RunSummary = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(s.status, RunStatus::Cancelled, "a was interrupted");
    let b = s.tasks.iter().find(|t| t.id == "b").unwrap();
    assert_eq!((b.result, b.attempts), (Some(AttemptResult::Pass), 2));
    // The journal says the CLI asked.
    let asked: Vec<(String, orca_actors::model::Surface)> = ws
        .journal()
        .iter()
        .filter_map(|e| match &e.event {
            Event::ControlRequested {
                message, surface, ..
            } => Some((message.clone(), *surface)),
            Event::RunPaused { surface, .. } => Some(("pause".into(), *surface)),
            _ => None,
        })
        .collect();
    assert!(
        asked
            .iter()
            .all(|(_, s)| *s == orca_actors::model::Surface::Cli),
        "{asked:?}"
    );
    assert_eq!(asked.len(), 3);
    // Read commands through the daemon equal the offline ones.
    let live = orca_cmd(&ws).args(["receipts", &run]).output().unwrap();
    d.down(&ws);
    let offline = orca_cmd(&ws).args(["receipts", &run]).output().unwrap();
    assert_eq!(live.stdout, offline.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_daemon_per_workspace_and_stale_files_are_recognised() {
    let ws = TestWs::fast();
    let d = Daemon::start(&ws);
    let out = orca_cmd(&ws).arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("pid {}", d.info.pid)), "{err}");
    let token = d.token.clone();
    let old_port = d.info.address.clone();
    d.kill9();
    // daemon.json is left behind; the lock says it is stale.
    assert!(ws.ws.daemon_info_path().exists());
    let out = orca_cmd(&ws).arg("status").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "offline read after a stale daemon.json"
    );
    assert!(
        !ws.ws.daemon_info_path().exists(),
        "the stale file was removed"
    );
    let d = Daemon::start(&ws);
    assert_eq!(d.token, token, "the token is reused");
    let (code, _) = d.get("/v1/fleet/runs").await;
    assert_eq!(code, 200);
    let _ = old_port;
    d.down(&ws);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_run_then_up_again_finishes_every_task_once() {
    let ws = TestWs::new("[run]\ngrace_seconds = 1\n");
    let d = Daemon::start(&ws);
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();
    let mut spec = String::from("max_workers = 6\n");
    for i in 0..3 {
        spec.push_str(&format!(
            "[[tasks]]\nid = \"long-{i}\"\ncommand = 'if [ \"$ORCA_ATTEMPT\" = 1 ]; then exec sleep 30; fi'\nmetadata = {{ priority = -1 }}\n"
        ));
    }
    for i in 0..197 {
        spec.push_str(&format!(
            "[[tasks]]\nid = \"t{i:03}\"\ncommand = [\"sleep\", \"0.02\"]\n"
        ));
    }
    let run = d.submit(&spec).await;
    let _reap = ReapRun(run.clone());
    for _ in 0..50 {
        wait_event(&mut f, |e| matches!(e, Event::TaskFinished { .. })).await;
    }
    let token = d.token.clone();
    d.kill9();
    assert!(
        !procs_with_env(&format!("ORCA_RUN_ID={run}")).is_empty(),
        "attempts outlived the daemon"
    );

    let d = Daemon::start(&ws);
    assert_eq!(d.token, token);
    wait_event(
        &mut f,
        |e| matches!(e, Event::RunFinished { run: r, .. } if *r == run),
    )
    .await;
    let (code, v) = d.get(&format!("/v1/fleet/runs/{run}")).await;
    assert_eq!(
        code, 200,
        "port discovery and the token work after the restart"
    );
    let s: RunSummary = serde_json::from_value(v).unwrap();
    assert_eq!(s.status, RunStatus::Passed);
    d.down(&ws);
    assert_gone(&run, "nothing of the run is left");
    let mut finals = std::collections::HashMap::new();
    for e in ws.journal() {
        if let Event::TaskFinished { task, run: r, .. } = &e.event {
            if *r == run {
                *finals.entry(task.clone()).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(finals.len(), 200);
    assert!(
        finals.values().all(|n| *n == 1),
        "exactly one final receipt per task"
    );
}

/// Right after a SIGKILL the journal lock can outlive the daemon for a
/// moment: a child it was starting (forked, not yet at execve) holds a copy
/// of its descriptors. `orca up` then waits for the lock instead of
/// refusing with "already serves" and the dead pid (the chaos soak hit
/// this: seed 777, kill 241). `flock` stands in for that child here.
#[test]
fn up_right_after_a_kill_waits_for_the_lock_a_dead_daemons_child_holds() {
    let ws = TestWs::fast();
    let d = Daemon::start(&ws);
    let dead = d.info.pid;
    d.kill9();
    let lock = ws.ws.journal_dir().join("LOCK");
    let (locked, gate) = (ws.path("locked"), ws.path("gate"));
    fifo(&locked);
    fifo(&gate);
    let _holder = KillOnDrop(
        std::process::Command::new("flock")
            // One process (no fork, then exec): killed when dropped.
            .args(["-x", "--no-fork"])
            .arg(&lock)
            .arg("-c")
            .arg(format!(
                "printf locked > '{}'; exec cat '{}' > /dev/null",
                locked.display(),
                gate.display()
            ))
            .spawn()
            .unwrap(),
    );
    assert_eq!(std::fs::read_to_string(&locked).unwrap(), "locked");
    let mut up = orca_cmd(&ws)
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stderr.take().unwrap()).lines();
    let said = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("is gone") || l.contains("already serves"));
    assert!(
        said.as_deref()
            .is_some_and(|l| l.contains(&format!("the daemon (pid {dead}) is gone"))),
        "orca up said {said:?}"
    );
    // The holder lets go; the new daemon serves.
    std::fs::write(&gate, "go").unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    let info = wait_daemon_json(&ws, up.id(), &mut up);
    assert_ne!(info.pid, dead);
    let up = KillOnDrop(up);
    let out = orca_cmd(&ws).arg("down").output().unwrap();
    assert_exit(&out, 0);
    drop(up);
}

/// A worker that submits a child run running itself, one level deeper,
/// until the server refuses; it also tries to stop another run.
fn nesting_script(ws: &TestWs) -> std::path::PathBuf {
    let p = ws.path("nest.sh");
    std::fs::write(
        &p,
        format!(
            r#"#!/bin/sh
d="$ORCA_SPAWN_DEPTH"
printf '%s' "$ORCA_TOKEN" > "$ORCA_WORKSPACE/token-$d"
spec='[[tasks]]
id = "nest"
command = ["sh", "{script}"]'
code=$(curl -s -o "$ORCA_ATTEMPT_DIR/submit.json" -w '%{{http_code}}' -X POST \
  -H "Authorization: Bearer $ORCA_TOKEN" -H 'Content-Type: application/toml' \
  --data-binary "$spec" "$ORCA_API/v1/fleet/runs")
echo "depth $d submit $code" >> "$ORCA_WORKSPACE/nesting.log"
stop=$(curl -s -o /dev/null -w '%{{http_code}}' -X POST -H "Authorization: Bearer $ORCA_TOKEN" \
  "$ORCA_API/v1/fleet/runs/$(cat "$ORCA_WORKSPACE/other-run")/stop")
echo "depth $d stop-other $stop" >> "$ORCA_WORKSPACE/nesting.log"
"#,
            script = p.display()
        ),
    )
    .unwrap();
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_runs_to_depth_three_with_per_attempt_tokens() {
    let ws = TestWs::fast();
    let d = Daemon::start(&ws);
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();
    let other = d.submit(&blocking_task("bystander")).await;
    std::fs::write(ws.path("other-run"), &other).unwrap();
    let script = nesting_script(&ws);
    let root = d
        .submit(&format!(
            "[[tasks]]\nid = \"nest\"\ncommand = [\"sh\", \"{}\"]\n",
            script.display()
        ))
        .await;
    // Runs at depths 0..=3 end; the depth-3 worker is refused.
    let mut ended = 0;
    while ended < 4 {
        let e = wait_event(
            &mut f,
            |e| matches!(e, Event::RunFinished { run, .. } if *run != other),
        )
        .await;
        let _ = e;
        ended += 1;
    }
    let log = std::fs::read_to_string(ws.path("nesting.log")).unwrap();
    for depth in 0..3 {
        assert!(log.contains(&format!("depth {depth} submit 201")), "{log}");
    }
    assert!(log.contains("depth 3 submit 422"), "{log}");
    for depth in 0..4 {
        assert!(
            log.contains(&format!("depth {depth} stop-other 403")),
            "{log}"
        );
    }
    let (_, runs) = d.get("/v1/fleet/runs?brief=true").await;
    let runs: Vec<RunSummary> = serde_json::from_value(runs).unwrap();
    let mut depths: Vec<u32> = runs
        .iter()
        .filter(|r| r.run != other)
        .map(|r| r.depth)
        .collect();
    depths.sort();
    assert_eq!(depths, [0, 1, 2, 3]);
    assert!(runs
        .iter()
        .filter(|r| r.depth > 0)
        .all(|r| r.parent.is_some()));
    // The tree nests each child run under the attempt that submitted it.
    let (_, tree) = d.get(&format!("/v1/tree?run={root}")).await;
    let tree: TreeNode = serde_json::from_value(tree).unwrap();
    let mut node = &orca_actors::view::runs_node(&tree).unwrap().children[0];
    for depth in 1..=3 {
        let attempt = node
            .children
            .iter()
            .find(|c| c.name == "attempt:nest:1")
            .expect("attempt node");
        node = attempt
            .children
            .first()
            .unwrap_or_else(|| panic!("no child run at depth {depth}"));
        assert!(node.name.starts_with("run:"));
    }
    // The other run is untouched, and a finished attempt's token is dead.
    let (_, o) = d.get(&format!("/v1/fleet/runs/{other}")).await;
    assert_eq!(o["status"], "running");
    let dead = std::fs::read_to_string(ws.path("token-0")).unwrap();
    let resp = d
        .http
        .get(d.url("/v1/fleet/runs"))
        .bearer_auth(dead)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    d.down(&ws);
}

/// Reads lines from a child's stdout until one satisfies `pred` (bounded).
fn read_until(child: &mut Child, pred: impl Fn(&str) -> bool) -> String {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + LIMIT;
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if pred(&line) {
                    return seen;
                }
            }
            Err(_) => panic!("never saw the line; output:\n{seen}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tree_watch_and_events_follow_see_a_restart() {
    let ws = TestWs::fast();
    let d = Daemon::start(&ws);
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();
    let run = d.submit(&blocking_task("w")).await;
    wait_event(&mut f, |e| matches!(e, Event::AttemptStarted { .. })).await;
    let mut events = orca_cmd(&ws)
        .args(["events", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut watch = orca_cmd(&ws)
        .args(["tree", &run, "--watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Both are up once they print what exists now.
    let mut events_out = events.stdout.take().unwrap();
    let first = {
        let mut r = BufReader::new(&mut events_out);
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        l
    };
    assert!(first.contains("\"seq\":1"), "{first}");
    events.stdout = Some(events_out);
    let restart = orca_cmd(&ws)
        .args(["restart", &format!("{run}:local-1")])
        .output()
        .unwrap();
    assert_eq!(
        restart.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&restart.stderr)
    );
    let seen = read_until(&mut events, |l| {
        l.contains("\"type\":\"ChildRestarted\"") && l.contains("w:2")
    });
    assert!(seen.contains("\"message\":\"restart\""));
    let seen = read_until(&mut watch, |l| l.contains("attempt:w:2"));
    assert!(seen.contains("run:"));
    drop((events, watch));
    d.down(&ws);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_embedded_run_serves_the_api_and_refuses_a_second_run() {
    let ws = TestWs::fast();
    let spec = ws.path("long.toml");
    std::fs::write(&spec, blocking_task("held")).unwrap();
    let mut f = {
        std::fs::create_dir_all(ws.ws.journal_dir()).unwrap();
        follow(&ws.ws.journal_dir(), 1).unwrap()
    };
    let mut first = orca_cmd(&ws)
        .arg("run")
        .arg(&spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let info = wait_daemon_json(&ws, first.id(), &mut first);
    assert_eq!(info.mode, Mode::Embedded);
    let started = wait_event(&mut f, |e| matches!(e, Event::AttemptStarted { .. })).await;
    let run = started.event.run_id().unwrap().to_string();
    let out = orca_cmd(&ws).arg("run").arg(&spec).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("orca up"),
        "{out:?}"
    );
    // Another terminal interrupts the embedded run's worker.
    let out = orca_cmd(&ws)
        .args(["interrupt", &format!("{run}:local-1")])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(
        first.wait().unwrap().code(),
        Some(4),
        "cancelled by the operator"
    );
    assert!(!ws.ws.daemon_info_path().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn detach_and_down() {
    let ws = TestWs::fast();
    let out = orca_cmd(&ws).args(["up", "--detach"]).output().unwrap();
    assert_exit(&out, 0);
    let info = DaemonInfo::read(&ws.ws).expect("daemon.json once --detach returns");
    assert_eq!(info.mode, Mode::Daemon);
    let h: Value = reqwest::get(format!("http://{}/healthz", info.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["pid"], info.pid);
    let out = orca_cmd(&ws).arg("down").output().unwrap();
    assert_exit(&out, 0);
    assert!(!orca_actors::host::procfs::group_alive(info.pid as i32));
    let log = std::fs::read_to_string(ws.ws.daemon_log_path()).unwrap();
    assert!(
        log.contains("daemon serving") && log.contains("daemon stopping"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_sync_failure_degrades_the_daemon() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let ws = TestWs::new("[run]\ngrace_seconds = 0.5\n");
    let failing = Arc::new(AtomicBool::new(false));
    let f2 = failing.clone();
    let hook: orca_actors::journal::SyncHook = Arc::new(move |_| {
        // Once switched on, every sync fails like a dying disk.
        if f2.load(Ordering::SeqCst) {
            Err(std::io::Error::other("simulated EIO"))
        } else {
            Ok(())
        }
    });
    let opts = orca_actors::journal::JournalOptions::from_config(None).with_sync_hook(hook);
    let served = orca::daemon::server::serve_with(
        &ws.ws,
        &ws.config(),
        Mode::Daemon,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(opts),
    )
    .await
    .unwrap();
    let url = served.info.url();
    let token = std::fs::read_to_string(ws.ws.token_path()).unwrap();
    failing.store(true, Ordering::SeqCst);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // Submitting appends: the sync fails.
    let resp = http
        .post(format!("{url}/v1/fleet/runs"))
        .bearer_auth(&token)
        .body("[[tasks]]\nid = \"t\"\ncommand = \"true\"\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503, "{:?}", resp.text().await);
    let h: Value = http
        .get(format!("{url}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "degraded");
    assert!(
        h["reason"].as_str().unwrap().contains("simulated EIO"),
        "{h}"
    );
    let out = orca_cmd(&ws).arg("status").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DEGRADED"),
        "{out:?}"
    );
    served.shutdown("test").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_prints_as_the_attempt_writes_and_stops_when_it_ends() {
    let ws = TestWs::fast();
    let d = Daemon::start(&ws);
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();
    let run = d
        .submit("[[tasks]]\nid = \"talker\"\ncommand = 'echo \"line 1\"; while [ ! -e \"$ORCA_WORKSPACE/go\" ]; do sleep 0.02; done; printf \"\\033[1mline 2\\033[0m\\n\"'\n")
        .await;
    wait_event(&mut f, |e| matches!(e, Event::AttemptStarted { .. })).await;
    let mut logs = KillOnDrop(
        orca_cmd(&ws)
            .args(["logs", &run, "talker", "--follow"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = logs.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), "line 1");
    std::fs::write(ws.path("go"), "").unwrap();
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), "line 2", "ANSI stripped");
    assert!(
        logs.wait().unwrap().success(),
        "follow ends with the attempt"
    );
    d.down(&ws);
}

/// `orca down`, SIGTERM and SIGHUP (a foreground daemon's terminal went
/// away) each suspend the daemon's runs: the attempt gets SIGTERM and its
/// grace and is journaled as interrupted by orca, nothing of the run is
/// left running, and the next `orca up` starts the task again without
/// using up an attempt.
#[tokio::test(flavor = "multi_thread")]
async fn down_sigterm_and_sighup_suspend_and_up_resumes() {
    use orca_actors::journal::event::InterruptCause;
    let ws = TestWs::fast();
    let mut d = Daemon::start(&ws);
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();
    let run = d
        .submit(
            "[[tasks]]\nid = \"hold\"\ncommand = 'while [ ! -e \"$ORCA_WORKSPACE/hold.go\" ]; do sleep 0.02; done'\n",
        )
        .await;
    let _reap = ReapRun(run.clone());
    for (n, how) in [(1, "down"), (2, "SIGTERM"), (3, "SIGHUP")] {
        wait_seen(&ws, &mut f, |e| {
            matches!(e, Event::AttemptStarted { attempt, .. } if attempt.run == run && attempt.attempt == n)
        })
        .await;
        match how {
            "down" => d.down(&ws),
            signal => {
                let sig = if signal == "SIGTERM" {
                    libc::SIGTERM
                } else {
                    libc::SIGHUP
                };
                // SAFETY: signals our own child.
                unsafe {
                    libc::kill(d.child.id() as i32, sig);
                }
                let status = d.child.wait().unwrap();
                assert!(status.success(), "{how}: {status}");
            }
        }
        assert_gone(&run, how);
        let st = ws.fold(&run);
        let t = st.task("hold").unwrap();
        assert_eq!(
            t.attempts[n as usize - 1].interrupted,
            Some(InterruptCause::OrcaShutdown),
            "{how}"
        );
        assert_eq!(st.ended_as, None, "{how}: the run is suspended, not ended");
        d = Daemon::start(&ws);
    }
    wait_seen(&ws, &mut f, |e| {
        matches!(e, Event::AttemptStarted { attempt, .. } if attempt.run == run && attempt.attempt == 4)
    })
    .await;
    std::fs::write(ws.path("hold.go"), "").unwrap();
    wait_seen(
        &ws,
        &mut f,
        |e| matches!(e, Event::RunFinished { run: r, .. } if *r == run),
    )
    .await;
    let st = ws.fold(&run);
    assert_eq!(st.status(), RunStatus::Passed);
    let t = st.task("hold").unwrap();
    assert_eq!(t.attempts.len(), 4);
    assert_eq!(t.counted, 1, "suspensions used up no attempt");
    d.down(&ws);
}

/// The four read commands' `--json` output for a run.
fn views(ws: &TestWs, run: &str) -> Vec<String> {
    [
        vec!["status", run, "--json"],
        vec!["receipts", run, "--json"],
        vec!["tree", run, "--json"],
        vec!["inspect", run, "t07", "--json"],
    ]
    .into_iter()
    .map(|args| {
        let out = orca_cmd(ws).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The journal's node shows its last seq, which moves on.
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("\"detail\": \"last seq"))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .collect()
}

/// Asserts two sets of [`views`] are equal, naming the first line that differs.
fn assert_same_views(got: &[String], want: &[String], why: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if let Some((n, (gl, wl))) = g
            .lines()
            .zip(w.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
        {
            panic!("{why}: view {i}, line {n}: got {gl:?}, want {wl:?}");
        }
        assert_eq!(g.lines().count(), w.lines().count(), "{why}: view {i}");
    }
}

fn fleet_snapshots(ws: &TestWs) -> Vec<u64> {
    orca_actors::journal::snapshot::list_snapshots(&ws.ws.snapshot_dir())
        .unwrap()
        .into_iter()
        .filter(|s| s.name == orca_actors::view::FleetView::SNAPSHOT)
        .map(|s| s.last_seq)
        .collect()
}

/// `orca journal compact` removes segments once the fleet snapshot covers
/// them, and nothing an operator reads changes: offline reads, `--resume`
/// and a daemon started afterwards all fold from the snapshot. The daemon
/// writes fleet snapshots itself as events arrive.
#[tokio::test(flavor = "multi_thread")]
async fn compaction_keeps_every_view_and_the_daemon_snapshots() {
    let ws =
        TestWs::new("[journal]\nsync = \"never\"\nsegment_bytes = 4096\nsnapshot_every = 25\n");
    let tasks = |prefix: &str| {
        (0..30)
            .map(|i| format!("[[tasks]]\nid = \"{prefix}{i:02}\"\ncommand = \"true\"\n"))
            .collect::<String>()
    };
    std::fs::write(ws.path("first.toml"), tasks("t")).unwrap();
    let out = orca_cmd(&ws)
        .args(["run", "first.toml", "--json"])
        .current_dir(ws.root())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let summary: RunSummary = serde_json::from_slice(&out.stdout).unwrap();
    let run = summary.run.clone();
    let before = views(&ws, &run);

    // Offline, compaction snapshots the fleet at the last event first.
    let out = orca_cmd(&ws).args(["journal", "compact"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let last = orca_actors::journal::highest_seq(&ws.ws.journal_dir()).unwrap();
    assert!(
        stdout.contains(&format!(
            "snapshot {} at seq {last}",
            orca_actors::view::FleetView::SNAPSHOT
        )),
        "{stdout}"
    );
    let first = orca_actors::journal::first_seq(&ws.ws.journal_dir()).unwrap();
    assert!(first > 1, "segments were removed: {stdout}");
    assert_same_views(&views(&ws, &run), &before, "offline reads after compaction");
    let out = orca_cmd(&ws)
        .args(["run", "--resume", &run])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already ended"));
    // A build whose fleet snapshots have a newer version, on this compacted
    // journal: it never decodes an older version of another shape (the
    // fold fails, saying why), and starts from one of the same shape.
    let rename_fleet = |to: &str| {
        for s in orca_actors::journal::snapshot::list_snapshots(&ws.ws.snapshot_dir()).unwrap() {
            let renamed = ws
                .ws
                .snapshot_dir()
                .join(format!("{to}-{:020}.snap", s.last_seq));
            std::fs::rename(&s.path, renamed).unwrap();
        }
    };
    rename_fleet("fleet-v0");
    assert!(fleet_snapshots(&ws).is_empty());
    let out = orca_cmd(&ws).args(["status", &run]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("compacted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An older version of the same shape, when this build declares one;
    // else the current name again.
    let current = orca_actors::view::FleetView::SNAPSHOT;
    let same = orca_actors::view::FleetView::SAME_SHAPE_AS
        .first()
        .copied()
        .unwrap_or(current);
    rename_fleet(same);
    assert_same_views(&views(&ws, &run), &before, "from an older snapshot version");
    rename_fleet(current);

    // A snapshot ahead of the journal (a tail a crash took back) is
    // removed when a writer opens, before new events reuse its seqs.
    let any = orca_actors::journal::snapshot::list_snapshots(&ws.ws.snapshot_dir()).unwrap();
    let ahead = ws
        .ws
        .snapshot_dir()
        .join(format!("{}-{:020}.snap", any[0].name, last + 1000));
    std::fs::copy(&any[0].path, &ahead).unwrap();
    // A daemon starts from the snapshot, answers the same, and snapshots
    // a new run as it goes.
    let d = Daemon::start(&ws);
    assert!(!ahead.exists(), "the snapshot ahead of the journal is gone");
    assert_same_views(&views(&ws, &run), &before, "reads through the daemon");
    let mut f = follow(&ws.ws.journal_dir(), last + 1).unwrap();
    let second = d.submit(&tasks("u")).await;
    wait_event(
        &mut f,
        |e| matches!(e, Event::RunFinished { run: r, .. } if *r == second),
    )
    .await;
    d.down(&ws);
    assert!(
        fleet_snapshots(&ws).iter().any(|seq| *seq > last),
        "the daemon wrote a fleet snapshot: {:?}",
        fleet_snapshots(&ws)
    );
    let names: Vec<String> = orca_actors::journal::snapshot::list_snapshots(&ws.ws.snapshot_dir())
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n == orca_actors::view::FleetView::SNAPSHOT),
        "older versions are gone once this version's exists: {names:?}"
    );
    let st = ws.fold(&second);
    assert_eq!(st.status(), RunStatus::Passed);
    assert_same_views(&views(&ws, &run), &before, "offline reads after the daemon");
}

/// A child spec cannot lift the spawn-depth limit a run above it set: the
/// strictest `max_spawn_depth` along the chain of ancestors holds.
#[tokio::test(flavor = "multi_thread")]
async fn a_child_run_cannot_raise_its_ancestors_depth_limit() {
    let ws = TestWs::fast();
    let d = Daemon::start(&ws);
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();
    let script = ws.path("nest.sh");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
spec='max_spawn_depth = 3
[[tasks]]
id = "nest"
command = ["sh", "{script}"]'
code=$(curl -s -o /dev/null -w '%{{http_code}}' -X POST \
  -H "Authorization: Bearer $ORCA_TOKEN" -H 'Content-Type: application/toml' \
  --data-binary "$spec" "$ORCA_API/v1/fleet/runs")
echo "depth $ORCA_SPAWN_DEPTH submit $code" >> "$ORCA_WORKSPACE/nesting.log"
"#,
            script = script.display()
        ),
    )
    .unwrap();
    d.submit(&format!(
        "max_spawn_depth = 1\n[[tasks]]\nid = \"nest\"\ncommand = [\"sh\", \"{}\"]\n",
        script.display()
    ))
    .await;
    for _ in 0..2 {
        wait_event(&mut f, |e| matches!(e, Event::RunFinished { .. })).await;
    }
    let log = std::fs::read_to_string(ws.path("nesting.log")).unwrap();
    assert!(log.contains("depth 0 submit 201"), "{log}");
    assert!(log.contains("depth 1 submit 422"), "{log}");
    assert!(!log.contains("depth 2"), "{log}");
    d.down(&ws);
}

/// A non-loopback `--bind` is allowed but warned about; the default is
/// loopback.
#[tokio::test(flavor = "multi_thread")]
async fn a_non_loopback_bind_prints_a_warning() {
    let ws = TestWs::fast();
    let mut child = orca_cmd(&ws)
        .args(["up", "--bind", "0.0.0.0:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let info = wait_daemon_json(&ws, child.id(), &mut child);
    assert!(info.address.starts_with("0.0.0.0:"), "{}", info.address);
    let out = orca_cmd(&ws).arg("down").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARNING") && stderr.contains("0.0.0.0"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verdicts_are_checked_where_they_are_written_and_unknown_runs_are_404() {
    let ws = TestWs::fast();
    let d = Daemon::start(&ws);
    let mut f = follow(&ws.ws.journal_dir(), 1).unwrap();
    // Whatever the name, a run that does not exist is 404, never a 400
    // (the word "matches" once made it look ambiguous).
    let names = [
        "matches",
        "ambiguous",
        "no-such-run",
        "x%20y",
        "%C3%A9t%C3%A9",
        "r-0",
    ];
    for name in names {
        let (code, v) = d.get(&format!("/v1/fleet/runs/{name}")).await;
        assert_eq!(
            (code, v["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{name}: {v}"
        );
    }
    let run = d
        .submit("[[tasks]]\nid = \"m\"\ncommand = \"true\"\nscorer = { kind = \"manual\" }\n")
        .await;
    wait_event(
        &mut f,
        |e| matches!(e, Event::RunFinished { run: r, .. } if *r == run),
    )
    .await;
    for name in names {
        let (code, _) = d.get(&format!("/v1/fleet/runs/{name}")).await;
        assert_eq!(code, 404, "{name}");
    }
    let file = ws.ws.attempt_dir(&run, "m", 1).join("receipt.json");
    let before: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(before["result"], "partial");
    // Two verdicts at once: the actor that writes them checks each, so
    // exactly one is recorded and the other is refused.
    let path = format!("/v1/fleet/runs/{run}/tasks/m/verdict");
    let (a, b) = tokio::join!(
        d.post(&path, json!({"verdict": "pass", "who": "ann"})),
        d.post(&path, json!({"verdict": "fail", "who": "bob"})),
    );
    let mut codes = [a.0, b.0];
    codes.sort();
    assert_eq!(codes, [200, 409], "{a:?} {b:?}");
    let refused = if a.0 == 409 { &a.1 } else { &b.1 };
    assert_eq!(refused["error"]["code"], "not_awaiting_verdict");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already has a verdict"),
        "{refused}"
    );
    let verdicts = ws
        .journal()
        .into_iter()
        .filter(
            |e| matches!(&e.event, Event::VerdictRecorded { attempt, .. } if attempt.run == run),
        )
        .count();
    assert_eq!(verdicts, 1);
    // The verdict given through the daemon rewrote receipt.json.
    let winner = if a.0 == 200 { "ann" } else { "bob" };
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(after["verdict"]["who"], winner);
    assert_eq!(
        after["result"],
        if winner == "ann" { "pass" } else { "fail" }
    );
    d.down(&ws);
}
