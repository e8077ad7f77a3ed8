//! `orca mcp`: a Model Context Protocol server over stdio (the `rmcp`
//! crate). A `think` attempt's agent CLI loads it (the presets pass the
//! flags, `agent::think::mcp_args`); users can add it to their own CLI.
//!
//! Authority comes from the environment it starts in:
//! - inside a think attempt (`ORCA_API` and the attempt's `ORCA_TOKEN`):
//!   the agent's tools (`commit`, `complete`, `note`, `ask_human`) and the
//!   fleet tools, every action going through the agent
//!   (`POST /v1/agents/{id}/tools/{tool}`) — checked against its
//!   workspaces, trust and policy, journaled as an intent of its wake;
//! - in a workspace with a running orca (`orca up`): the fleet tools
//!   (`fleet_status`, `inspect`, `logs`, `start_run`, `stop_run`,
//!   `raise_alert`) under the workspace's own token.
//!
//! Every tool has a JSON Schema (`agent::think::input_schema`); a call
//! whose input does not fit, or that orca refuses, answers a tool error
//! the model can read (`isError: true` with the reason), never a crash.

use std::sync::Arc;

#[cfg(feature = "mcp")]
use anyhow::Context as _;
#[cfg(feature = "mcp")]
use orca_actors::agent::think::input_schema;
use orca_actors::agent::think::AGENT_TOOLS;
use orca_actors::workspace::Workspace;
#[cfg(feature = "mcp")]
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    InitializeResult, ListToolsResult, PaginatedRequestParams, ServerCapabilities, Tool,
};
#[cfg(feature = "mcp")]
use rmcp::service::{RequestContext, RoleServer};
#[cfg(feature = "mcp")]
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt as _};
use serde_json::{json, Value};

use crate::client::Client;
use crate::daemon::info::{DaemonInfo, Mode};

/// The fleet tools (offered under either authority).
const FLEET_TOOLS: &[(&str, &str)] = &[
    (
        "fleet_status",
        "The runs orca knows: id, name, status, task counts (as `orca status`).",
    ),
    (
        "inspect",
        "One run (`r-…`) or one task (`r-…/task`): its status, attempts, receipts, usage.",
    ),
    (
        "logs",
        "The end of an attempt's stdout or stderr (bounded: at most 64 KiB).",
    ),
];

/// Bytes of a tool's answer (the rest is cut, with a note).
const MAX_ANSWER: usize = 64 * 1024;

/// Who this server acts for.
#[derive(Clone, Debug)]
enum Authority {
    /// A think attempt of agent `agent`.
    Agent { agent: String },
    /// The workspace's own token.
    Workspace,
    /// No orca to talk to: every tool answers how to start one.
    None { why: String },
}

/// The server.
#[derive(Clone)]
pub struct OrcaMcp {
    client: Option<Client>,
    ws: Workspace,
    authority: Authority,
    tools: Arc<Vec<ToolInfo>>,
}

impl OrcaMcp {
    /// From the environment: an attempt's `ORCA_API` / `ORCA_TOKEN`, else
    /// the workspace's running orca.
    pub async fn from_env(ws: Workspace) -> OrcaMcp {
        let (client, authority) = match attempt_client() {
            Some(c) => {
                let who: Result<Value, _> = c.get("/v1/whoami").await;
                match who {
                    Ok(w) => match w["agent"].as_str() {
                        Some(a) => (
                            Some(c),
                            Authority::Agent {
                                agent: a.to_string(),
                            },
                        ),
                        None => (Some(c), Authority::Workspace),
                    },
                    Err(e) => (
                        None,
                        Authority::None {
                            why: format!("orca at $ORCA_API did not answer: {e}"),
                        },
                    ),
                }
            }
            None => match Client::find(&ws) {
                Ok(Some(c)) => (Some(c), Authority::Workspace),
                Ok(None) => (
                    None,
                    Authority::None {
                        why: format!(
                            "no orca is running in {}: start one with `orca up`",
                            ws.root().display()
                        ),
                    },
                ),
                Err(e) => (
                    None,
                    Authority::None {
                        why: format!("cannot reach orca: {e}"),
                    },
                ),
            },
        };
        let tools = tools_for(&authority);
        OrcaMcp {
            client,
            ws,
            authority,
            tools: Arc::new(tools),
        }
    }

    /// Calls one tool: its answer, or an error the model can read.
    pub async fn call(&self, name: &str, args: Value) -> Result<Value, String> {
        if !self.tools.iter().any(|t| t.name == name) {
            let names: Vec<&str> = self.tools.iter().map(|t| t.name).collect();
            let more = match self.authority {
                Authority::Agent { .. } => "",
                _ if AGENT_TOOLS.iter().any(|t| t.name == name && t.agent_only) => {
                    " (an agent tool: it needs a think attempt's token)"
                }
                _ => "",
            };
            return Err(format!(
                "no tool {name:?}{more}; the tools are {}",
                names.join(", ")
            ));
        }
        let client = match (&self.client, &self.authority) {
            (Some(c), _) => c,
            (None, Authority::None { why }) => return Err(why.clone()),
            (None, _) => return Err("no orca to talk to".into()),
        };
        let obj = tool_args(&args)?;
        let str_arg = |k: &str| -> Result<String, String> {
            obj.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("{name}: `{k}` (a non-empty string) is required"))
        };
        let api = |e: anyhow::Error| prefixed(name, e);
        match name {
            "fleet_status" => client.get("/v1/fleet/runs").await.map_err(api),
            "inspect" => {
                let target = str_arg("target")?;
                let path = match target.split_once('/') {
                    Some((run, task)) => format!("/v1/fleet/runs/{run}/tasks/{task}"),
                    None => format!("/v1/fleet/runs/{target}?brief=true"),
                };
                client.get(&path).await.map_err(api)
            }
            "logs" => self.logs(&obj, name),
            _ => match &self.authority {
                Authority::Agent { agent } => client
                    .post(&format!("/v1/agents/{agent}/tools/{name}"), args)
                    .await
                    .map_err(api),
                Authority::Workspace | Authority::None { .. } => {
                    self.workspace_action(client, name, &obj).await
                }
            },
        }
    }

    /// start_run, stop_run and raise_alert under the workspace's token.
    async fn workspace_action(
        &self,
        client: &Client,
        name: &str,
        obj: &serde_json::Map<String, Value>,
    ) -> Result<Value, String> {
        let api = |e: anyhow::Error| prefixed(name, e);
        let get = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        match name {
            "start_run" => {
                let (text, source) = match (get("spec_path"), get("spec")) {
                    (Some(p), None) => {
                        let full = self.ws.root().join(&p);
                        let text = std::fs::read_to_string(&full)
                            .map_err(|e| format!("start_run: cannot read {p}: {e}"))?;
                        (text, p)
                    }
                    (None, Some(inline)) => (inline, "inline.toml".to_string()),
                    _ => return Err("start_run: give exactly one of spec_path and spec".into()),
                };
                let format = orca_actors::spec::Format::detect(&source, &text);
                let ct = match format {
                    orca_actors::spec::Format::Json => "application/json",
                    orca_actors::spec::Format::Toml => "application/toml",
                };
                client
                    .post_text("/v1/fleet/runs", text, ct)
                    .await
                    .map_err(api)
            }
            "stop_run" => {
                let run = get("run").ok_or("stop_run: `run` is required")?;
                client
                    .post(&format!("/v1/fleet/runs/{run}/stop"), json!({}))
                    .await
                    .map_err(api)
            }
            "raise_alert" => client
                .post("/v1/alerts", Value::Object(obj.clone()))
                .await
                .map_err(api),
            other => Err(format!("no tool {other:?}")),
        }
    }

    /// The end of an attempt's log, read from the workspace.
    fn logs(&self, obj: &serde_json::Map<String, Value>, name: &str) -> Result<Value, String> {
        let get = |k: &str| {
            obj.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("{name}: `{k}` (a string) is required"))
        };
        let run = get("run")?;
        let task = get("task")?;
        let stream = obj
            .get("stream")
            .and_then(Value::as_str)
            .unwrap_or("stdout");
        if !matches!(stream, "stdout" | "stderr") {
            return Err(format!("{name}: `stream` is stdout or stderr"));
        }
        let max = obj
            .get("max_bytes")
            .and_then(Value::as_u64)
            .unwrap_or(16 * 1024)
            .clamp(1, MAX_ANSWER as u64) as usize;
        let safe =
            |s: &str| !s.is_empty() && !s.contains('/') && !s.contains("..") && !s.starts_with('.');
        if !safe(&run) || !safe(&task) {
            return Err(format!("{name}: `run` and `task` are ids, not paths"));
        }
        let attempt = match obj.get("attempt").and_then(Value::as_u64) {
            Some(n) => n as u32,
            None => last_attempt(&self.ws, &run, &task)
                .ok_or_else(|| format!("{name}: no attempt of {run}/{task} has logs"))?,
        };
        let path = self
            .ws
            .attempt_dir(&run, &task, attempt)
            .join(format!("{stream}.log"));
        let bytes =
            std::fs::read(&path).map_err(|e| format!("{name}: cannot read {stream}: {e}"))?;
        let start = bytes.len().saturating_sub(max);
        Ok(json!({
            "run": run,
            "task": task,
            "attempt": attempt,
            "stream": stream,
            "bytes": bytes.len(),
            "truncated": start > 0,
            "text": String::from_utf8_lossy(&bytes[start..]),
        }))
    }
}

/// A tool's arguments: an object (absent = empty).
fn tool_args(args: &Value) -> Result<serde_json::Map<String, Value>, String> {
    match args {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(serde_json::Map::new()),
        other => Err(format!("the arguments must be an object, not {other}")),
    }
}

/// Fuzz entry point (docs/fuzzing.md): the input as a JSON-RPC message
/// the way rmcp's stdio transport reads one, then, for a `tools/call`
/// (or, when the input is not one, its first line as the tool's name and
/// the rest as its JSON arguments), what orca does with the arguments
/// without a daemon: the object check, `logs` against an empty workspace,
/// an agent tool's `ToolCall::from_args`, and the bounded answer text.
#[cfg(feature = "mcp")]
pub fn fuzz_tool_input(data: &[u8]) {
    use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage};
    let call = match serde_json::from_slice::<ClientJsonRpcMessage>(data) {
        Ok(JsonRpcMessage::Request(r)) => match r.request {
            ClientRequest::CallToolRequest(c) => Some((
                c.params.name.to_string(),
                c.params.arguments.map(Value::Object).unwrap_or(Value::Null),
            )),
            _ => return,
        },
        Ok(_) => return,
        Err(_) => None,
    };
    let (name, args) = match call {
        Some(c) => c,
        None => {
            let (name, rest) = orca_actors::fuzzing::split_line(data);
            let args = if rest.is_empty() {
                Value::Null
            } else {
                match serde_json::from_slice(rest) {
                    Ok(v) => v,
                    Err(_) => return,
                }
            };
            (String::from_utf8_lossy(name).into_owned(), args)
        }
    };
    let Ok(obj) = tool_args(&args) else {
        return;
    };
    let Ok(scratch) = orca_actors::fuzzing::Scratch::new("mcp") else {
        return;
    };
    let server = OrcaMcp {
        client: None,
        ws: Workspace::at(scratch.path()),
        authority: Authority::None {
            why: "fuzzing".into(),
        },
        tools: Arc::new(tools_for(&Authority::Agent {
            agent: "fuzz".into(),
        })),
    };
    if name == "logs" {
        // Nothing was logged: an error, whatever the arguments.
        assert!(server.logs(&obj, &name).is_err());
    }
    if AGENT_TOOLS.iter().any(|t| t.name == name) {
        let _ = orca_actors::agent::think::ToolCall::from_args(&name, args.clone());
    }
    let text = answer_text(&args);
    assert!(text.len() <= MAX_ANSWER + 32);
}

/// An error for the model, naming the tool once.
fn prefixed(name: &str, e: anyhow::Error) -> String {
    let m = e.to_string();
    if m.starts_with(name) {
        m
    } else {
        format!("{name}: {m}")
    }
}

/// The newest attempt directory of a task.
fn last_attempt(ws: &Workspace, run: &str, task: &str) -> Option<u32> {
    let dir = ws.run_dir(run).join(task);
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .max()
}

/// A client from an attempt's environment.
fn attempt_client() -> Option<Client> {
    let api = std::env::var("ORCA_API").ok()?;
    let token = std::env::var("ORCA_TOKEN").ok()?;
    let address = api
        .trim_end_matches('/')
        .strip_prefix("http://")?
        .to_string();
    let info = DaemonInfo {
        pid: 0,
        address,
        version: String::new(),
        started_at: orca_actors::model::Timestamp::now(),
        mode: Mode::Daemon,
    };
    Client::new(info, token).ok()
}

/// One tool an authority offers (its input schema is
/// `agent::think::input_schema(name)`).
#[derive(Clone, Copy, Debug)]
struct ToolInfo {
    name: &'static str,
    #[cfg_attr(not(feature = "mcp"), allow(dead_code))]
    description: &'static str,
}

/// The tools an authority offers.
fn tools_for(authority: &Authority) -> Vec<ToolInfo> {
    let mut tools: Vec<ToolInfo> = FLEET_TOOLS
        .iter()
        .map(|&(name, description)| ToolInfo { name, description })
        .collect();
    let agent = matches!(authority, Authority::Agent { .. });
    for t in AGENT_TOOLS {
        if !t.agent_only || agent {
            tools.push(ToolInfo {
                name: t.name,
                description: t.description,
            });
        }
    }
    tools
}

/// A tool as MCP lists it, with its JSON Schema.
#[cfg(feature = "mcp")]
fn mcp_tool(t: &ToolInfo) -> Tool {
    let schema = match input_schema(t.name) {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    Tool::new(t.name, t.description, schema)
}

/// A tool's answer as text, bounded.
#[cfg(feature = "mcp")]
fn answer_text(v: &Value) -> String {
    let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
    if text.len() > MAX_ANSWER {
        let mut cut = MAX_ANSWER;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n… (cut at 64 KiB)");
    }
    text
}

#[cfg(feature = "mcp")]
impl ServerHandler for OrcaMcp {
    fn get_info(&self) -> InitializeResult {
        let who = match &self.authority {
            Authority::Agent { agent } => format!("agent {agent}'s think attempt"),
            Authority::Workspace => "the workspace's operator".to_string(),
            Authority::None { why } => format!("nobody ({why})"),
        };
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("orca", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "orca's fleet: read runs, logs and receipts; start and stop runs; raise alerts; \
                 as an agent, remember commitments, write notes and ask a human. Acting for {who}."
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(
            self.tools.iter().map(mcp_tool).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let result = match self.call(&request.name, args).await {
            Ok(v) => CallToolResult::success(vec![ContentBlock::text(answer_text(&v))]),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e)]),
        };
        Ok(result.into())
    }
}

/// `orca mcp` in a build without the `mcp` feature: says so.
#[cfg(not(feature = "mcp"))]
pub async fn serve(_: Workspace) -> anyhow::Result<()> {
    anyhow::bail!(
        "this orca was built without the MCP server (the `mcp` feature); build it with the default features, e.g. `cargo install --path .`"
    )
}

/// `orca mcp`: serves until stdin closes.
#[cfg(feature = "mcp")]
pub async fn serve(ws: Workspace) -> anyhow::Result<()> {
    let server = OrcaMcp::from_env(ws).await;
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP handshake failed")?;
    running.waiting().await.context("the MCP server stopped")?;
    Ok(())
}
