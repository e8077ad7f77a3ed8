//! `/v1/agents`: agent identities — list, create, show, update, explain,
//! their journal, steering (pause, resume, retire, tell, approve, deny) and
//! signed webhooks (`POST /v1/agents/{id}/events/{subscription}`, open to
//! senders without orca's token).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use orca_actors::agent::decide::{AgentAnswer, AgentCommand};
use orca_actors::agent::explain::{self, AgentSummary, Explanation};
use orca_actors::agent::spec::{prepare_agent, SubscriptionKind, DEFAULT_WEBHOOK_TOLERANCE_MS};
use orca_actors::agent::state::AgentState;
use orca_actors::agent::think::ToolCall;
use orca_actors::agent::webhook::{verify, WebhookHeaders};
use orca_actors::alert::secret::Secret;
use orca_actors::control::ControlMessage;
use orca_actors::model::{Surface, Timestamp};
use orca_actors::ops;
use orca_actors::path::ActorPath;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiState, Body, Path, Principal, Query};

#[derive(Debug, Default, Deserialize)]
pub struct SourceQuery {
    /// The agent spec's path in the workspace (its directory anchors the
    /// run specs its routes name; its extension the format).
    pub source: Option<String>,
}

fn found(s: &ApiState, id: &str) -> Result<AgentState, ApiError> {
    s.view
        .read(|v| v.agents.agents.get(id).cloned())
        .ok_or_else(|| ApiError::not_found(format!("no agent {id:?}")))
}

#[utoipa::path(
    get,
    path = "/v1/agents",
    tag = "agents",
    summary = "Every agent",
    responses((status = 200, description = "Agent summaries", body = [Object]), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn list(State(s): State<ApiState>) -> Json<Vec<AgentSummary>> {
    Json(
        s.view
            .read(|v| v.agents.agents.values().map(AgentSummary::of).collect()),
    )
}

#[utoipa::path(
    get,
    path = "/v1/agents/{agent_id}",
    tag = "agents",
    summary = "One agent",
    params(("agent_id" = String, Path, description = "An agent id")),
    responses((status = 200, description = "The agent's state", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn show(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<AgentState>, ApiError> {
    Ok(Json(found(&s, &id)?))
}

#[utoipa::path(
    get,
    path = "/v1/agents/{agent_id}/explain",
    tag = "agents",
    summary = "Why the agent does what it does",
    params(("agent_id" = String, Path, description = "An agent id")),
    responses((status = 200, description = "The explanation", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn explain(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Explanation>, ApiError> {
    Ok(Json(explain::explain(&found(&s, &id)?, Timestamp::now())))
}

/// The agent's events, from the journal (`?from=SEQ`).
#[derive(Debug, Default, Deserialize)]
pub struct FromQuery {
    #[serde(default)]
    pub from: u64,
}

#[utoipa::path(
    get,
    path = "/v1/agents/{agent_id}/journal",
    tag = "agents",
    summary = "The agent's journaled events",
    params(("agent_id" = String, Path, description = "An agent id"), ("from" = Option<u64>, Query, description = "From this seq")),
    responses((status = 200, description = "Events", body = [Object]), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn journal(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<FromQuery>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    found(&s, &id)?;
    let dir = s.services.ws.journal_dir();
    let id2 = id.clone();
    let events = tokio::task::spawn_blocking(move || {
        orca_actors::journal::read(&dir, orca_actors::journal::ReadRange::from(q.from.max(1)))
            .map(|it| {
                it.filter_map(Result::ok)
                    .filter(|e| crate::render::agents::is_agents_event(e, &id2))
                    .map(|e| e.export_json())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(events))
}

#[utoipa::path(
    post,
    path = "/v1/agents",
    tag = "agents",
    summary = "Create an agent from its spec (TOML or JSON text)",
    params(("source" = Option<String>, Query, description = "The spec's path in the workspace")),
    request_body(content((String = "application/toml"), (Object = "application/json"))),
    responses((status = 201, description = "`{agent, warnings}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn create(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    Query(q): Query<SourceQuery>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("the agent spec is not UTF-8 text"))?;
    let source = q.source.unwrap_or_else(|| "agent.toml".into());
    let prepared = prepare_agent(s.services.ws.root(), &text, &source)?;
    let id = prepared.spec.id.clone();
    let warnings = prepared.warnings.clone();
    ops::agent_create(&s.services.registry, prepared, surface(&p, &headers)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"agent": id, "warnings": warnings})),
    )
        .into_response())
}

#[utoipa::path(
    put,
    path = "/v1/agents/{agent_id}",
    tag = "agents",
    summary = "Replace an agent's spec",
    params(("agent_id" = String, Path, description = "An agent id"), ("source" = Option<String>, Query, description = "The spec's path in the workspace")),
    request_body(content((String = "application/toml"), (Object = "application/json"))),
    responses((status = 200, description = "`{agent, warnings}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn update(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<SourceQuery>,
    Body(body): Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("the agent spec is not UTF-8 text"))?;
    let source = q.source.unwrap_or_else(|| "agent.toml".into());
    let prepared = prepare_agent(s.services.ws.root(), &text, &source)?;
    if prepared.spec.id != id {
        return Err(ApiError::bad_request(format!(
            "the spec is agent {:?}, not {id:?}",
            prepared.spec.id
        )));
    }
    let warnings = prepared.warnings.clone();
    ops::agent_update(&s.services.registry, prepared, surface(&p, &headers)).await?;
    Ok(Json(json!({"agent": id, "warnings": warnings})))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct SteerBody {
    pub text: Option<String>,
    pub request: Option<String>,
}

/// The control message of a steering verb and its body.
pub fn steer_message(verb: &str, body: &[u8]) -> Result<ControlMessage, ApiError> {
    let b: SteerBody = if body.is_empty() {
        SteerBody::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?
    };
    let need = |v: Option<String>, what: &str| {
        v.ok_or_else(|| ApiError::bad_request(format!("`{verb}` needs `{what}` in the body")))
    };
    Ok(match verb {
        "pause" => ControlMessage::Pause,
        "resume" => ControlMessage::Resume,
        "retire" => ControlMessage::Retire,
        "tell" => ControlMessage::Tell {
            text: need(b.text, "text")?,
        },
        "approve" => ControlMessage::Approve {
            request: need(b.request, "request")?,
        },
        "deny" => ControlMessage::Deny {
            request: need(b.request, "request")?,
        },
        _ => return Err(ApiError::not_found("no such route")),
    })
}

/// `POST /v1/agents/{id}/{pause|resume|retire|tell|approve|deny}`: the
/// same control messages `orca send /agents/<id> …` sends.
#[utoipa::path(
    post,
    path = "/v1/agents/{agent_id}/{verb}",
    tag = "agents",
    summary = "Pause, resume, retire, tell, approve or deny",
    params(("agent_id" = String, Path, description = "An agent id"), ("verb" = crate::api::openapi::SteerVerb, Path, description = "The steering verb")),
    request_body(content = Option<crate::api::agents::SteerBody>, content_type = "application/json"),
    responses((status = 200, description = "`{result, path}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn steer(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    Path((id, verb)): Path<(String, String)>,
    Body(body): Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let msg = steer_message(&verb, &body)?;
    let runs = s.runs()?;
    let d = ops::control(
        &s.services.registry,
        &runs,
        &ActorPath::Agent(id).to_string(),
        &msg,
        surface(&p, &headers),
    )
    .await?;
    Ok(Json(
        json!({"result": d.result, "path": d.path.to_string()}),
    ))
}

/// Agent changes are journaled as `api` (the CLI's too) or `web` (the
/// console, whose session sets the header itself).
fn surface(p: &Principal, headers: &HeaderMap) -> Surface {
    match p {
        Principal::Operator if p.surface(headers) == Surface::Web => Surface::Web,
        Principal::Operator => Surface::Api,
        Principal::Attempt(_) => Surface::Worker,
    }
}

/// A signed webhook for a subscription: 202 accepted, 200 `{"duplicate":
/// true}` for a `webhook-id` seen within the window, 401 for a bad
/// signature or a timestamp outside the tolerance.
#[utoipa::path(
    post,
    path = "/v1/agents/{agent_id}/events/{subscription}",
    tag = "agents",
    summary = "A signed webhook for an agent's subscription (Standard Webhooks; no bearer token)",
    params(("agent_id" = String, Path, description = "An agent id"), ("subscription" = String, Path, description = "The webhook subscription's id"), ("webhook-id" = String, Header, description = "Idempotency key"), ("webhook-timestamp" = String, Header, description = "Unix seconds"), ("webhook-signature" = String, Header, description = "`v1,<base64 HMAC-SHA256>` entries")),
    request_body(content = Object, description = "Any body (JSON, else kept as text)"),
    responses((status = 202, description = "Accepted", body = Object), (status = 200, description = "A duplicate `webhook-id`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
    security(()),
)]
pub async fn webhook(
    State(s): State<ApiState>,
    Path((id, sub)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let state = found(&s, &id)?;
    let spec = state
        .spec()
        .ok_or_else(|| ApiError::internal("the agent's spec does not parse"))?;
    let Some(subscription) = spec
        .subscription(&sub)
        .filter(|x| x.kind == SubscriptionKind::Webhook)
    else {
        return Err(ApiError::not_found(format!(
            "agent {id} has no webhook subscription {sub:?}"
        )));
    };
    let env = subscription.secret_env.clone().unwrap_or_default();
    let secret = std::env::var(&env)
        .ok()
        .map(|v| Secret::new(env.clone(), v));
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let webhook_id = verify(
        WebhookHeaders {
            id: h("webhook-id"),
            timestamp: h("webhook-timestamp"),
            signature: h("webhook-signature"),
        },
        &body,
        secret.as_ref(),
        &env,
        subscription
            .tolerance
            .map(|t| t.millis())
            .unwrap_or(DEFAULT_WEBHOOK_TOLERANCE_MS),
        Timestamp::now(),
    )
    .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()))?;
    let event = webhook_event(&sub, &webhook_id, &body);
    let answer = ops::agent_event(
        &s.services.registry,
        &id,
        AgentCommand::Event {
            source: sub,
            event_id: webhook_id,
            event_json: event.to_string(),
        },
    )
    .await?;
    Ok(match answer {
        AgentAnswer::Duplicate { wake } => (
            StatusCode::OK,
            Json(json!({"duplicate": true, "wake": wake})),
        )
            .into_response(),
        AgentAnswer::Accepted { wake } => (
            StatusCode::ACCEPTED,
            Json(json!({"accepted": true, "wake": wake})),
        )
            .into_response(),
        AgentAnswer::Done | AgentAnswer::Tool { .. } | AgentAnswer::Refused { .. } => {
            (StatusCode::ACCEPTED, Json(json!({"accepted": true}))).into_response()
        }
    })
}

/// The event a verified webhook becomes: its body as JSON, or as text
/// when it is not JSON.
pub fn webhook_event(sub: &str, webhook_id: &str, body: &[u8]) -> serde_json::Value {
    let payload: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()));
    json!({
        "event": "webhook",
        "subscription": sub,
        "webhook_id": webhook_id,
        "payload": payload,
    })
}

/// The agent whose think run `run` is (from the journal's fold).
fn think_owner(s: &ApiState, run: &str) -> Option<String> {
    s.view.read(|v| {
        let agent = v.agents.run_owner.get(run)?;
        let state = v.agents.agents.get(agent)?;
        let r = state.runs.get(run)?;
        let intent = state.intents.get(&r.intent)?;
        matches!(
            intent.action,
            orca_actors::agent::events::IntentAction::Think { .. }
        )
        .then(|| agent.clone())
    })
}

/// `GET /v1/whoami`: who the presented token is — the workspace's
/// operator, or an attempt (its run, task, attempt, and the agent whose
/// think run it is, if any). `orca mcp` asks it to know which tools to
/// offer.
#[utoipa::path(
    get,
    path = "/v1/whoami",
    tag = "agents",
    summary = "Who the presented token is",
    responses((status = 200, description = "`{principal, …}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn whoami(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> Json<serde_json::Value> {
    Json(match &p {
        Principal::Operator => json!({"principal": "operator"}),
        Principal::Attempt(g) => json!({
            "principal": "attempt",
            "run": g.attempt.run,
            "task": g.attempt.task,
            "attempt": g.attempt.attempt,
            "agent": think_owner(&s, &g.attempt.run),
        }),
    })
}

/// `POST /v1/agents/{id}/tools/{tool}`: a tool call of one of the agent's
/// think attempts (its token only), journaled as an intent of the wake:
/// 200 `{intent, repeated, result}`; 422 `refused` (journaled, shown at the
/// next wake) or `invalid_tool_input`; 403 for any other token.
#[utoipa::path(
    post,
    path = "/v1/agents/{agent_id}/tools/{tool}",
    tag = "agents",
    summary = "A think attempt's tool call (its own token only)",
    params(("agent_id" = String, Path, description = "An agent id"), ("tool" = String, Path, description = "commit, complete, note, ask_human, raise_alert, start_run, stop_run")),
    request_body(content = Object, description = "The tool's input", content_type = "application/json"),
    responses((status = 200, description = "`{intent, repeated, result}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn tool(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path((id, tool)): Path<(String, String)>,
    Body(body): Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Principal::Attempt(grant) = &p else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "agent tools take the token of one of the agent's think attempts ($ORCA_TOKEN in its environment)",
        ));
    };
    let run = grant.attempt.run.clone();
    if think_owner(&s, &run).as_deref() != Some(id.as_str()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token's run {run} is no think run of agent {id}"),
        ));
    }
    let mut call = tool_call(&tool, &body)?;
    if let ToolCall::StartRun {
        spec_path: Some(rel),
        spec_text,
        ..
    } = &mut call
    {
        *spec_text = read_spec(&s, rel);
    }
    let answer =
        ops::agent_event(&s.services.registry, &id, AgentCommand::Tool { run, call }).await?;
    match answer {
        AgentAnswer::Tool {
            intent,
            repeated,
            result,
        } => Ok(Json(
            json!({"intent": intent, "repeated": repeated, "result": result}),
        )),
        AgentAnswer::Refused { intent, reason } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "refused",
            format!("{reason} (journaled as {intent}; shown at your next wake)"),
        )),
        AgentAnswer::Done | AgentAnswer::Accepted { .. } | AgentAnswer::Duplicate { .. } => {
            Err(ApiError::internal("the agent gave no tool answer"))
        }
    }
}

/// A tool call from its name and body (`invalid_tool_input` when the
/// input does not fit).
pub fn tool_call(tool: &str, body: &[u8]) -> Result<ToolCall, ApiError> {
    let args: serde_json::Value = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?
    };
    ToolCall::from_args(tool, args)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_tool_input", e))
}

/// A run spec's text by its workspace-relative path (never outside the
/// workspace: `..`, absolute paths and symlinks out are not read; the
/// agent's decision checks its workspaces).
fn read_spec(s: &ApiState, rel: &str) -> Option<String> {
    let p = std::path::Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return None;
    }
    let root = s.services.ws.root().canonicalize().ok()?;
    let full = root.join(p).canonicalize().ok()?;
    if !full.starts_with(&root) {
        return None;
    }
    std::fs::read_to_string(full).ok()
}
