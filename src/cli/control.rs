//! Messages to running actors: `interrupt`, `restart`, `stop`, `pause`,
//! `resume`, `send`. They need a running orca (`orca up`, or an `orca run`
//! in another terminal) and say so clearly when there is none.

use std::path::Path;

use clap::Args;
use orca_actors::model::RunStatus;
use orca_actors::view::RunSummary;
use serde_json::{json, Value};

use super::source::seg;
use crate::client::Client;
use crate::exit;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// A worker: `<run>:<worker>` (run by prefix), or a worker id unique
    /// among active runs (`local-2`).
    pub worker: String,
    /// Print the answer as JSON (errors too, as `{"error": …}`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["run", "all"])))]
pub struct StopArgs {
    /// A run id or unique prefix.
    pub run: Option<String>,
    /// Every run that has not ended.
    #[arg(long)]
    pub all: bool,
    /// Why (journaled).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print the answers as JSON (errors too, as `{"error": …}`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArg {
    /// A run id or unique prefix.
    pub run: String,
    /// Print the answer as JSON (errors too, as `{"error": …}`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The actor's path (`/runs/r-1/attempts/lint:2`, `/runs/r-1`).
    pub path: String,
    /// The message: interrupt, restart, stop, pause, resume.
    pub message: String,
    /// Message arguments (`--arg reason="done"`).
    #[arg(long = "arg", value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub args: Vec<(String, String)>,
    /// Print the answer as JSON (errors too, as `{"error": …}`).
    #[arg(long)]
    pub json: bool,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// The running orca, or a clear error saying nothing runs.
pub fn client(ws_flag: Option<&Path>) -> anyhow::Result<Client> {
    let ws = super::read::workspace(ws_flag)?;
    Client::find(&ws)?.ok_or_else(|| {
        anyhow::anyhow!(
            "nothing is running in {}: start the daemon with `orca up` (or run a spec with `orca run <spec>`)",
            ws.root().display()
        )
    })
}

/// The answer: its one line for people, or the whole JSON object.
fn say(v: &Value, json: bool) {
    match v["result"].as_str() {
        Some(r) if !json => println!("{r}"),
        _ => println!("{v}"),
    }
}

pub fn interrupt(ws_flag: Option<&Path>, args: WorkerArgs, restart: bool) -> anyhow::Result<i32> {
    let c = client(ws_flag)?;
    let verb = if restart { "restart" } else { "interrupt" };
    super::runtime()?.block_on(async {
        let v: Value = c
            .post(
                &format!("/v1/fleet/workers/{}/{verb}", seg(&args.worker)),
                json!({}),
            )
            .await?;
        say(&v, args.json);
        Ok(exit::OK)
    })
}

pub fn stop(ws_flag: Option<&Path>, args: StopArgs) -> anyhow::Result<i32> {
    let c = client(ws_flag)?;
    super::runtime()?.block_on(async {
        let runs: Vec<String> = match &args.run {
            Some(r) => vec![r.clone()],
            None => {
                let all: Vec<RunSummary> = c.get("/v1/fleet/runs?brief=true").await?;
                all.into_iter()
                    .filter(|r| {
                        matches!(
                            r.status,
                            RunStatus::Queued | RunStatus::Running | RunStatus::Paused
                        )
                    })
                    .map(|r| r.run)
                    .collect()
            }
        };
        if runs.is_empty() && !args.json {
            println!("no run is going");
        }
        let mut answers = Vec::new();
        for run in runs {
            let v: Value = c
                .post(
                    &format!("/v1/fleet/runs/{}/stop", seg(&run)),
                    json!({ "reason": args.reason }),
                )
                .await?;
            if args.json {
                answers.push(v);
            } else {
                say(&v, false);
            }
        }
        if args.json {
            // One object, whether one run or every run was stopped.
            println!("{}", json!({ "stopped": answers }));
        }
        Ok(exit::OK)
    })
}

pub fn pause(ws_flag: Option<&Path>, args: RunArg, resume: bool) -> anyhow::Result<i32> {
    let c = client(ws_flag)?;
    let verb = if resume { "resume" } else { "pause" };
    super::runtime()?.block_on(async {
        let v: Value = c
            .post(
                &format!("/v1/fleet/runs/{}/{verb}", seg(&args.run)),
                json!({}),
            )
            .await?;
        say(&v, args.json);
        Ok(exit::OK)
    })
}

pub fn send(ws_flag: Option<&Path>, args: SendArgs) -> anyhow::Result<i32> {
    let c = client(ws_flag)?;
    let mut message = serde_json::Map::new();
    message.insert("type".into(), Value::String(args.message.clone()));
    for (k, v) in &args.args {
        message.insert(k.clone(), Value::String(v.clone()));
    }
    super::runtime()?.block_on(async {
        let v: Value = c
            .post(
                "/v1/actors/messages",
                json!({ "path": args.path, "message": message }),
            )
            .await?;
        say(&v, args.json);
        Ok(exit::OK)
    })
}
