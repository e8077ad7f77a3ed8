//! `orca agent create | update | list | show | explain | tell | approve |
//! deny | pause | resume | retire | events`. Agents live in the daemon:
//! commands that change one need it (`orca up`) and say so when it is not
//! there; reads go through it when it runs and fold the journal when not.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use futures::StreamExt as _;
use orca_actors::agent::explain::{explain, AgentSummary, Explanation};
use orca_actors::agent::state::AgentState;
use orca_actors::model::Timestamp;
use orca_actors::view::FleetView;
use serde_json::{json, Value};

use super::source::seg;
use crate::client::Client;
use crate::exit;
use crate::render;

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(Debug, Args)]
pub struct SpecArg {
    /// The agent spec (TOML or JSON), inside the workspace.
    pub spec: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// The agent's id.
    pub id: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArg {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TellArgs {
    pub id: String,
    /// The message (its routes on `inbox` see it as `{{event.text}}`).
    pub text: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    pub id: String,
    /// The request's id (`orca agent explain` lists them).
    pub request: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    pub id: String,
    /// Keep printing the agent's events as they are journaled (needs the
    /// daemon).
    #[arg(long)]
    pub follow: bool,
    /// Accepted for symmetry: events are JSON lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create an identity from a spec (its run specs are captured).
    #[command(after_help = "Examples:\n  orca agent create agents/nightly-watch.toml")]
    Create(SpecArg),
    /// Apply a new spec to an identity; its state (inbox, commitments,
    /// runs, timers' schedules) stays.
    Update(SpecArg),
    /// Every identity, one line each.
    List(ListArg),
    /// An identity's whole state.
    Show(IdArg),
    /// What it watches, is doing, is blocked on and needs approval for.
    #[command(
        after_help = "Examples:\n  orca agent explain nightly-watch\n  orca agent explain nightly-watch --json | jq .blocked_on"
    )]
    Explain(IdArg),
    /// A message in its inbox (it wakes on routes `on = \"inbox\"`).
    Tell(TellArgs),
    /// Grant a pending approval.
    Approve(RequestArgs),
    /// Refuse a pending approval.
    Deny(RequestArgs),
    /// Take no wake (events queue) until resumed.
    Pause(IdArg),
    /// Take wakes again (an escalated agent too).
    Resume(IdArg),
    /// End an identity; its history stays readable, its id is never reused.
    Retire(IdArg),
    /// The identity's journal events (JSON lines).
    Events(EventsArgs),
    /// Inside a think attempt: call one of the agent's tools, as `orca mcp`
    /// would (for agent CLIs without MCP). Uses the attempt's `ORCA_API` and
    /// `ORCA_TOKEN`; without them, the fleet tools under the workspace's
    /// token.
    #[command(after_help = "Examples:
  orca agent act commit '{\"what\": \"re-check lint\", \"due\": \"30m\"}'
  orca agent act note '{\"text\": \"lint fixed by r-2611\"}'
  orca agent act fleet_status")]
    Act(ActArgs),
}

#[derive(Debug, Args)]
pub struct ActArgs {
    /// The tool (commit, complete, note, ask_human, raise_alert, start_run,
    /// stop_run, fleet_status, inspect, logs).
    pub tool: String,
    /// Its input, a JSON object (see `orca mcp`'s schemas).
    pub input: Option<String>,
    #[arg(long)]
    pub json: bool,
}

impl AgentArgs {
    pub fn json(&self) -> bool {
        match &self.command {
            AgentCommand::Create(a) | AgentCommand::Update(a) => a.json,
            AgentCommand::List(a) => a.json,
            AgentCommand::Show(a)
            | AgentCommand::Explain(a)
            | AgentCommand::Pause(a)
            | AgentCommand::Resume(a)
            | AgentCommand::Retire(a) => a.json,
            AgentCommand::Tell(a) => a.json,
            AgentCommand::Approve(a) | AgentCommand::Deny(a) => a.json,
            AgentCommand::Events(a) => a.json,
            AgentCommand::Act(a) => a.json,
        }
    }
}

/// The daemon, or why a change needs it (exit 1).
fn daemon(ws: &orca_actors::workspace::Workspace) -> anyhow::Result<Client> {
    match Client::find(ws)? {
        Some(c) if c.info.mode == crate::daemon::info::Mode::Daemon => Ok(c),
        _ => Err(exit::Failure {
            code: "no_daemon",
            exit: exit::FAILED,
            message: format!(
                "agents live in the daemon, and none runs in {}: start it with `orca up`",
                ws.root().display()
            ),
        }
        .into()),
    }
}

pub fn run(ws_flag: Option<&Path>, args: AgentArgs) -> anyhow::Result<i32> {
    let ws = super::read::workspace(ws_flag)?;
    let rt = super::runtime()?;
    match args.command {
        AgentCommand::Create(a) => rt.block_on(send_spec(&ws, a, None)),
        AgentCommand::Update(a) => {
            let id = spec_id(&a.spec)?;
            rt.block_on(send_spec(&ws, a, Some(id)))
        }
        AgentCommand::List(a) => {
            let list: Vec<AgentSummary> = match daemon(&ws) {
                Ok(c) => rt.block_on(c.get("/v1/agents"))?,
                Err(_) => offline(&ws)?
                    .agents
                    .agents
                    .values()
                    .map(AgentSummary::of)
                    .collect(),
            };
            if a.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", render::agents::list(&list));
            }
            Ok(exit::OK)
        }
        AgentCommand::Show(a) => {
            let st = rt.block_on(state(&ws, &a.id))?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                print!(
                    "{}",
                    render::agents::explain(&explain(&st, Timestamp::now()))
                );
                println!(
                    "\nwakes taken {}, dropped {}; created {}",
                    st.wakes_taken,
                    st.dropped,
                    st.created.rfc3339()
                );
                for r in st.runs.values() {
                    println!(
                        "run {} ({}) {}",
                        r.run,
                        r.started.rfc3339(),
                        r.status
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "running".into())
                    );
                }
            }
            Ok(exit::OK)
        }
        AgentCommand::Explain(a) => {
            let e: Explanation = match daemon(&ws) {
                Ok(c) => rt.block_on(c.get(&format!("/v1/agents/{}/explain", seg(&a.id))))?,
                Err(_) => explain(&rt.block_on(state(&ws, &a.id))?, Timestamp::now()),
            };
            if a.json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                print!("{}", render::agents::explain(&e));
            }
            Ok(exit::OK)
        }
        AgentCommand::Tell(a) => steer(&ws, &a.id, "tell", json!({"text": a.text}), a.json),
        AgentCommand::Approve(a) => {
            steer(&ws, &a.id, "approve", json!({"request": a.request}), a.json)
        }
        AgentCommand::Deny(a) => steer(&ws, &a.id, "deny", json!({"request": a.request}), a.json),
        AgentCommand::Pause(a) => steer(&ws, &a.id, "pause", json!({}), a.json),
        AgentCommand::Resume(a) => steer(&ws, &a.id, "resume", json!({}), a.json),
        AgentCommand::Retire(a) => steer(&ws, &a.id, "retire", json!({}), a.json),
        AgentCommand::Events(a) => rt.block_on(events(&ws, a)),
        AgentCommand::Act(a) => rt.block_on(act(ws, a)),
    }
}

/// The id a spec file declares (for `update`).
fn spec_id(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| exit::InvalidInput::new(format!("cannot read {}: {e}", path.display())))?;
    let origin = path.display().to_string();
    let (spec, _) = orca_actors::agent::spec::check_agent_str(
        &text,
        orca_actors::spec::Format::detect(&origin, &text),
        &origin,
    )
    .map_err(|e| exit::InvalidInput::new(e.to_string()))?;
    Ok(spec.id)
}

/// Create or update: the spec is checked here (errors located, exit 2),
/// then the daemon checks it again and captures its run specs.
async fn send_spec(
    ws: &orca_actors::workspace::Workspace,
    a: SpecArg,
    update: Option<String>,
) -> anyhow::Result<i32> {
    let path = if a.spec.is_absolute() {
        a.spec.clone()
    } else {
        std::env::current_dir()?.join(&a.spec)
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| exit::InvalidInput::new(format!("cannot read {}: {e}", path.display())))?;
    let prepared =
        orca_actors::agent::spec::prepare_agent(ws.root(), &text, &path.display().to_string())
            .map_err(|e| exit::InvalidInput {
                message: e.to_string(),
                code: "invalid_spec".into(),
                details: Some(json!({ "diagnostics": e.diagnostics })),
            })?;
    for w in &prepared.warnings {
        eprintln!("{}", w.display(&path.display().to_string()));
    }
    let c = daemon(ws)?;
    let rel = path
        .strip_prefix(ws.root())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string());
    let content_type = if rel.ends_with(".json") {
        "application/json"
    } else {
        "application/toml"
    };
    let updating = update.is_some();
    let v: Value = match update {
        None => {
            c.post_text(
                &format!("/v1/agents?source={}", seg(&rel)),
                text,
                content_type,
            )
            .await?
        }
        Some(id) => {
            c.put_text(
                &format!("/v1/agents/{}?source={}", seg(&id), seg(&rel)),
                text,
                content_type,
            )
            .await?
        }
    };
    if a.json {
        println!("{v}");
    } else {
        println!(
            "{} agent {}",
            if updating { "updated" } else { "created" },
            v["agent"].as_str().unwrap_or_default()
        );
    }
    Ok(exit::OK)
}

fn steer(
    ws: &orca_actors::workspace::Workspace,
    id: &str,
    verb: &str,
    body: Value,
    json_out: bool,
) -> anyhow::Result<i32> {
    let c = daemon(ws)?;
    super::runtime()?.block_on(async {
        let v: Value = c
            .post(&format!("/v1/agents/{}/{verb}", seg(id)), body)
            .await?;
        match v["result"].as_str() {
            Some(r) if !json_out => println!("{r}"),
            _ => println!("{v}"),
        }
        Ok(exit::OK)
    })
}

fn offline(ws: &orca_actors::workspace::Workspace) -> anyhow::Result<FleetView> {
    Ok(FleetView::load(ws)?)
}

/// An agent's state: the daemon's, else the journal's fold.
async fn state(ws: &orca_actors::workspace::Workspace, id: &str) -> anyhow::Result<AgentState> {
    if let Ok(c) = daemon(ws) {
        return c.get(&format!("/v1/agents/{}", seg(id))).await;
    }
    offline(ws)?
        .agents
        .agents
        .get(id)
        .cloned()
        .ok_or_else(|| exit::InvalidInput::new(format!("no agent {id:?}")).into())
}

async fn events(ws: &orca_actors::workspace::Workspace, a: EventsArgs) -> anyhow::Result<i32> {
    // What is journaled so far.
    let from = match daemon(ws) {
        Ok(c) => {
            let list: Vec<Value> = c.get(&format!("/v1/agents/{}/journal", seg(&a.id))).await?;
            for e in &list {
                println!("{e}");
            }
            let last = list.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
            if !a.follow {
                return Ok(exit::OK);
            }
            let mut stream = Box::pin(c.events(last.max(1) + u64::from(last > 0)).await?);
            while let Some(env) = stream.next().await {
                let env = env?;
                if render::agents::is_agents_event(&env, &a.id) {
                    println!("{}", env.export_json());
                }
            }
            return Ok(exit::OK);
        }
        Err(e) if a.follow => return Err(e),
        Err(_) => 1,
    };
    let view = offline(ws)?;
    if !view.agents.agents.contains_key(&a.id) {
        return Err(exit::InvalidInput::new(format!("no agent {:?}", a.id)).into());
    }
    let dir = ws.journal_dir();
    for env in orca_actors::journal::read(&dir, orca_actors::journal::ReadRange::from(from))? {
        let env = env?;
        if render::agents::is_agents_event(&env, &a.id) {
            println!("{}", env.export_json());
        }
    }
    Ok(exit::OK)
}

/// `orca agent act`: the same call `orca mcp` makes for a tool.
async fn act(ws: orca_actors::workspace::Workspace, a: ActArgs) -> anyhow::Result<i32> {
    let input: Value = match a.input.as_deref() {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).map_err(|e| exit::InvalidInput {
            message: format!("the input is not JSON: {e}"),
            code: "invalid_tool_input".into(),
            details: None,
        })?,
    };
    let server = crate::mcp::OrcaMcp::from_env(ws).await;
    match server.call(&a.tool, input).await {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(0)
        }
        Err(message) => Err(exit::Failure {
            code: "tool_error",
            exit: exit::FAILED,
            message,
        }
        .into()),
    }
}
