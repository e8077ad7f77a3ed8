//! Thinking agents in the real daemon: a stub agent CLI (a shell script
//! that acts through `orca agent act`, and through `orca mcp` over stdio)
//! drives `think` wakes end to end; `orca mcp` answers a plain JSON-RPC
//! client; a think attempt killed with the daemon is finished once after
//! `orca up`, its tool calls not repeated.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_exit, orca_cmd, KillOnDrop, TestWs};
use orca_actors::agent::events::{AgentEvent, IntentAction};
use orca_actors::alert::{AlertEvent, AlertSource};
use orca_actors::journal::{Envelope, Event};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(60);

fn journal(ws: &TestWs) -> Vec<Envelope> {
    orca_actors::journal::read(&ws.ws.journal_dir(), orca_actors::journal::ReadRange::all())
        .map(|it| it.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// Waits (bounded) for a file the stub writes.
fn wait_file(ws: &TestWs, rel: &str) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Ok(t) = std::fs::read_to_string(ws.path(rel)) {
            if !t.is_empty() {
                return t;
            }
        }
        assert!(Instant::now() < deadline, "the stub never wrote {rel}");
        let _ = common::wait_any_change(ws.root(), Duration::from_millis(500));
    }
}

/// The stub agent CLI. argv: orca's binary, the prompt file. On a `tell`
/// it commits, starts a fix run (twice: the second is the same intent),
/// asks a human and tries to stop a run that is not its own; when the fix
/// run finishes it completes the commitment; on the human's answer it
/// writes a note through `orca mcp` over stdio (JSON-RPC by hand) and
/// records whether the refusal was shown in its prompt.
const STUB: &str = r#"#!/bin/bash
set -u
ORCA="$1"; PROMPT="$2"
ev=$(cat "$ORCA_EVENT_FILE")
act() { "$ORCA" agent act "$@"; }
case "$ev" in
*'"event":"tell"'*)
  grep -q "Keeps the fleet tidy" "$PROMPT" || exit 3
  act commit '{"what":"see the fix through","due":"1h"}' > commit.json || exit 4
  act start_run '{"spec_path":"agents/specs/fix.toml"}' > run.json || exit 5
  act start_run '{"spec_path":"agents/specs/fix.toml"}' > run2.json || exit 5
  act ask_human '{"question":"ship it?"}' > ask.json || exit 6
  if act stop_run '{"run":"r-not-mine"}' 2> refused.txt; then exit 7; fi
  if [ -e hold ]; then
    echo held > held.txt
    while [ ! -e release ]; do sleep 0.05; done
  fi
  ;;
*'"event":"run.finished"'*)
  c=$(sed -n 's/.*"commitment": "\([^"]*\)".*/\1/p' commit.json | head -1)
  act complete "{\"commitment\":\"$c\"}" > complete.json || exit 8
  ;;
*'"event":"approval"'*)
  grep -q 'r-not-mine' "$PROMPT" && echo yes > refusal-shown.txt
  coproc M { "$ORCA" mcp; }
  echo '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"stub","version":"0"}}}' >&"${M[1]}"
  read -r line <&"${M[0]}"
  echo '{"jsonrpc":"2.0","method":"notifications/initialized"}' >&"${M[1]}"
  echo '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"note","arguments":{"text":"the human answered"}}}' >&"${M[1]}"
  read -r line <&"${M[0]}"
  echo "$line" > mcp-note.json
  ;;
esac
exit 0
"#;

const AGENT: &str = r#"
id = "thinker"
display_name = "Thinker"
persona = "Keeps the fleet tidy."

[[subscriptions]]
id = "mine"
kind = "fleet"
events = ["run.finished"]
include_own = true
filter = { run_name = "fix" }

[[routes]]
on = "inbox"
action = "think"
timeout_seconds = 60

[[routes]]
on = "mine"
action = "think"

[[routes]]
on = "approval"
action = "think"
"#;

fn think_ws() -> TestWs {
    let orca = env!("CARGO_BIN_EXE_orca");
    let ws = TestWs::new("[run]\ngrace_seconds = 0.5\n[journal]\nsync = \"never\"\n");
    let stub = ws.path("stub.sh");
    let config = format!(
        "[run]\ngrace_seconds = 0.5\n[journal]\nsync = \"never\"\n[runtime]\ncommand = [\"bash\", {stub:?}, {orca:?}, \"{{prompt_file}}\"]\n",
        stub = stub.display().to_string(),
    );
    std::fs::write(ws.ws.config_path(), config).unwrap();
    common::write_rel(&ws, "stub.sh", STUB);
    common::write_rel(&ws, "agents/thinker.toml", AGENT);
    common::write_rel(
        &ws,
        "agents/specs/fix.toml",
        "name = \"fix\"\n[[tasks]]\nid = \"fix\"\ncommand = \"true\"\n",
    );
    ws
}

fn result_of(text: &str) -> Value {
    serde_json::from_str::<Value>(text).unwrap_or_else(|e| panic!("{e}: {text}"))["result"].clone()
}

#[test]
fn a_thinking_agent_commits_starts_a_run_asks_a_human_and_completes() {
    let ws = think_ws();
    let _d = common::up_env(&ws, &[]);
    let o = orca_cmd(&ws)
        .args(["agent", "create"])
        .arg(ws.path("agents/thinker.toml"))
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert_exit(
        &orca_cmd(&ws)
            .args(["agent", "tell", "thinker", "go"])
            .output()
            .unwrap(),
        0,
    );
    let ask = result_of(&wait_file(&ws, "ask.json"));
    let request = ask["request"].as_str().unwrap().to_string();
    // The two identical start_run calls were one intent, one run.
    let run = result_of(&wait_file(&ws, "run.json"))["run"]
        .as_str()
        .unwrap()
        .to_string();
    let again: Value = serde_json::from_str(&wait_file(&ws, "run2.json")).unwrap();
    assert_eq!(again["repeated"], true);
    assert_eq!(again["result"]["run"], run.as_str());
    let refused = wait_file(&ws, "refused.txt");
    assert!(
        refused.contains("not started by agent thinker"),
        "{refused}"
    );

    // The question is a pending approval and a needs_human alert.
    let events = common::wait_journal(&ws, "the ask_human alert", |ev| {
        ev.iter().any(|e| {
            matches!(&e.event, Event::Alert(AlertEvent::Raised(r))
                if r.source == AlertSource::agent("thinker") && r.reason.contains("ship it?"))
        })
    });
    let agent = common::agent_events(&events);
    assert!(agent.iter().any(|a| matches!(a,
        AgentEvent::Refused { reason, .. } if reason.contains("stop_run"))));
    let o = orca_cmd(&ws)
        .args(["agent", "explain", "thinker", "--json"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let e: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(e.to_string().contains("ship it?"), "{e}");

    // The fix run's end wakes it: the commitment is completed.
    let complete = result_of(&wait_file(&ws, "complete.json"));
    assert_eq!(complete["action"], "complete");
    // The human's answer wakes it; it acts through `orca mcp`, and its
    // prompt showed the refused action.
    assert_exit(
        &orca_cmd(&ws)
            .args(["agent", "approve", "thinker", &request])
            .output()
            .unwrap(),
        0,
    );
    let note: Value = serde_json::from_str(&wait_file(&ws, "mcp-note.json")).unwrap();
    assert_eq!(note["result"]["isError"], false, "{note}");
    assert_eq!(wait_file(&ws, "refusal-shown.txt").trim(), "yes");
    let events = common::wait_journal(&ws, "three think runs done", |ev| {
        common::agent_events(ev)
            .iter()
            .filter(|a| matches!(a, AgentEvent::WakeDone { .. }))
            .count()
            >= 3
    });
    let o = orca_cmd(&ws)
        .args(["agent", "show", "thinker", "--json"])
        .output()
        .unwrap();
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["commitments"], json!({}), "kept: {}", st["commitments"]);
    assert!(st["notes"].to_string().contains("the human answered"));
    // Each think run carries the agent's label; each ran once.
    let thinks: Vec<&AgentEvent> = common::agent_events(&events)
        .into_iter()
        .filter(|a| {
            matches!(
                a,
                AgentEvent::Intended {
                    action: IntentAction::Think { .. },
                    ..
                }
            )
        })
        .collect();
    assert_eq!(thinks.len(), 3, "tell, run.finished, approval");
    let o = orca_cmd(&ws).args(["status", "--json"]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("think:thinker"), "{text}");
}

/// One JSON-RPC line in, one out.
struct Rpc {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Rpc {
    fn start(ws: &TestWs) -> Rpc {
        let mut child = orca_cmd(ws)
            .arg("mcp")
            .env_remove("ORCA_API")
            .env_remove("ORCA_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Rpc { child, out }
    }

    fn send(&mut self, v: Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    }

    fn call(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert_eq!(v["id"], id, "{v}");
        v
    }

    fn tool(&mut self, id: u64, name: &str, args: Value) -> (bool, String) {
        let v = self.call(id, "tools/call", json!({"name": name, "arguments": args}));
        let r = &v["result"];
        (
            r["isError"].as_bool().unwrap_or(false),
            r["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }
}

impl Drop for Rpc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn orca_mcp_answers_a_plain_json_rpc_client() {
    let ws = TestWs::fast();
    common::write_rel(
        &ws,
        "ok.toml",
        "name = \"ok\"\n[[tasks]]\nid = \"a\"\ncommand = \"echo hello\"\n",
    );
    let _d = common::up_env(&ws, &[]);
    let o = orca_cmd(&ws)
        .args(["run", "--json"])
        .arg(ws.path("ok.toml"))
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let mut rpc = Rpc::start(&ws);
    let init = rpc.call(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "orca", "{init}");
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );
    rpc.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let list = rpc.call(2, "tools/list", json!({}));
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for t in [
        "fleet_status",
        "inspect",
        "logs",
        "start_run",
        "stop_run",
        "raise_alert",
    ] {
        assert!(names.contains(&t), "{t} missing from {names:?}");
    }
    // Agent tools need an agent's token.
    assert!(!names.contains(&"commit"), "{names:?}");
    let schema = &list["result"]["tools"][1]["inputSchema"];
    assert_eq!(schema["type"], "object", "{schema}");

    let (err, text) = rpc.tool(3, "fleet_status", json!({}));
    assert!(!err && text.contains("\"ok\""), "{text}");
    let (err, text) = rpc.tool(4, "inspect", json!({}));
    assert!(err && text.contains("`target`"), "{text}");
    let (err, text) = rpc.tool(5, "commit", json!({"what": "x", "due": "1m"}));
    assert!(err && text.contains("think attempt's token"), "{text}");
    let (err, text) = rpc.tool(6, "inspect", json!({"target": "r-no-such-run"}));
    assert!(err && text.contains("r-no-such-run"), "{text}");
    let run = {
        let runs: Value = serde_json::from_str(&rpc.tool(7, "fleet_status", json!({})).1).unwrap();
        runs.to_string()
    };
    assert!(run.contains("passed"), "{run}");
    let (err, text) = rpc.tool(
        8,
        "raise_alert",
        json!({"class": "needs_human", "reason": "from mcp"}),
    );
    assert!(!err, "{text}");
    let (err, text) = rpc.tool(9, "raise_alert", json!({"class": "loud", "reason": "x"}));
    assert!(err && text.contains("loud"), "{text}");
    // A request that is not a tool call at all: a JSON-RPC error, and the
    // server still answers.
    let bad = rpc.call(10, "tools/call", json!({"arguments": {}}));
    assert!(bad["error"].is_object(), "{bad}");
    let (err, _) = rpc.tool(11, "fleet_status", json!({}));
    assert!(!err);
    let events = journal(&ws);
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::Alert(AlertEvent::Raised(r)) if r.reason == "from mcp"
            && matches!(r.source, AlertSource::Operator { .. }))));
}

#[test]
fn orca_mcp_without_a_daemon_says_how_to_start_one() {
    let ws = TestWs::fast();
    let mut rpc = Rpc::start(&ws);
    let init = rpc.call(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "orca");
    rpc.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let (err, text) = rpc.tool(2, "fleet_status", json!({}));
    assert!(err && text.contains("orca up"), "{text}");
}

/// kill -9 the daemon while a think attempt holds (after its tool calls):
/// after `orca up` the wake finishes once, and no tool call made before
/// the kill is carried out again.
#[test]
fn a_think_attempt_killed_with_the_daemon_is_finished_once() {
    let ws = think_ws();
    std::fs::write(ws.path("hold"), "").unwrap();
    let mut d = orca_cmd(&ws)
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_daemon_json(&ws, d.id(), &mut d);
    let d = KillOnDrop(d);
    assert_exit(
        &orca_cmd(&ws)
            .args(["agent", "create"])
            .arg(ws.path("agents/thinker.toml"))
            .output()
            .unwrap(),
        0,
    );
    assert_exit(
        &orca_cmd(&ws)
            .args(["agent", "tell", "thinker", "go"])
            .output()
            .unwrap(),
        0,
    );
    wait_file(&ws, "held.txt");
    let before = journal(&ws);
    let intended = |ev: &[Envelope]| {
        common::agent_events(ev)
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    AgentEvent::Intended {
                        route: u32::MAX,
                        ..
                    }
                )
            })
            .count()
    };
    let n_before = intended(&before);
    assert!(
        n_before >= 3,
        "commit, start_run, ask_human journaled: {n_before}"
    );
    let pid = d.0.id();
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    drop(d);
    std::fs::remove_file(ws.path("hold")).unwrap();
    std::fs::write(ws.path("release"), "").unwrap();
    let _d2 = common::up_env(&ws, &[]);
    // The wake finishes once: one WakeDone for the tell wake.
    let events = common::wait_journal(&ws, "the tell wake done", |ev| {
        common::agent_events(ev)
            .iter()
            .any(|a| matches!(a, AgentEvent::WakeDone { wake, .. } if wake.starts_with("inbox:")))
    });
    let agent = common::agent_events(&events);
    let done = agent
        .iter()
        .filter(|a| matches!(a, AgentEvent::WakeDone { wake, .. } if wake.starts_with("inbox:")))
        .count();
    assert_eq!(done, 1);
    // Tool intents: none added for the calls made before the kill (the
    // redone attempt's calls were answered from the journal).
    assert_eq!(
        intended(&events),
        n_before,
        "a tool call was carried out twice"
    );
    let submitted = events
        .iter()
        .filter(|e| matches!(&e.event, Event::RunSubmitted(s) if s.name == "fix"))
        .count();
    assert!(
        submitted <= 1,
        "the fix run was submitted {submitted} times"
    );
    // The think attempt ran again after the crash and its calls were
    // answered from the journal.
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::AttemptInterrupted { attempt, .. } if attempt.task == "think")));
    let again: Value = serde_json::from_str(&wait_file(&ws, "commit.json")).unwrap();
    assert_eq!(again["repeated"], true, "{again}");
}
