//! The seed's `/v1/fleet/...` routes: runs, workers, receipts, submit,
//! stop/pause/resume, interrupt/restart, manual verdicts.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use orca_actors::control::{ControlError, ControlMessage};
use orca_actors::model::{AttemptRef, Timestamp, Verdict, VerdictRecord};
use orca_actors::ops::{self, SubmitRequest};
use orca_actors::path::ActorPath;
use orca_actors::run::state::RunState;
use orca_actors::run::VerdictRequest;
use orca_actors::spec::{Format, ValidateContext};
use orca_actors::view::{find_task, LookupError, Named, ReceiptView, RunSummary};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, ApiState, Body, Path, Principal, Query};
use crate::render::inspect::TaskInspection;

/// A worker slot of a run, with its current attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerView {
    /// Global id: `<run>:<worker>`.
    pub id: String,
    pub run: String,
    pub worker: String,
    /// `busy` or `idle`.
    pub state: String,
    pub task: Option<String>,
    pub attempt: Option<u32>,
    pub pid: Option<u32>,
    pub heartbeat: Option<Timestamp>,
    pub tool: Option<String>,
    pub tokens: u64,
    pub tool_calls: u64,
}

#[derive(Debug, Deserialize)]
pub struct RunQuery {
    /// Leave out the per-task list (counts only).
    #[serde(default)]
    pub brief: bool,
}

fn summary(s: &ApiState, r: &RunState, brief: bool) -> RunSummary {
    let supervised = s.services.registry.get(&ActorPath::run(&r.run)).is_some();
    let mut s = if brief {
        RunSummary::brief(r)
    } else {
        RunSummary::of(r)
    };
    s.unattended = r.ended_as.is_none() && !supervised;
    s
}

fn find_run<'a>(v: &'a orca_actors::view::FleetView, name: &str) -> Result<&'a RunState, ApiError> {
    Ok(v.find_run(name)?)
}

#[utoipa::path(
    get,
    path = "/v1/fleet/runs",
    tag = "fleet",
    summary = "Every run, newest first",
    params(("brief" = Option<bool>, Query, description = "Leave out the per-task list")),
    responses((status = 200, description = "RunSummary objects", body = [Object]), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn list_runs(
    State(s): State<ApiState>,
    Query(q): Query<RunQuery>,
) -> Json<Vec<RunSummary>> {
    Json(s.view.read(|v| {
        v.runs_newest_first()
            .into_iter()
            .map(|r| summary(&s, r, q.brief))
            .collect()
    }))
}

#[utoipa::path(
    get,
    path = "/v1/fleet/runs/{run_id}",
    tag = "fleet",
    summary = "One run",
    params(("run_id" = String, Path, description = "A run id or a unique prefix"), ("brief" = Option<bool>, Query, description = "Leave out the per-task list")),
    responses((status = 200, description = "A RunSummary", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn get_run(
    State(s): State<ApiState>,
    Path(run_id): Path<String>,
    Query(q): Query<RunQuery>,
) -> Result<Json<RunSummary>, ApiError> {
    s.view
        .read(|v| find_run(v, &run_id).map(|r| Json(summary(&s, r, q.brief))))
}

#[utoipa::path(
    get,
    path = "/v1/fleet/runs/{run_id}/tasks/{task_id}",
    tag = "fleet",
    summary = "One task in detail",
    params(("run_id" = String, Path, description = "A run id or a unique prefix"), ("task_id" = String, Path, description = "A task id")),
    responses((status = 200, description = "A task inspection", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn get_task(
    State(s): State<ApiState>,
    Path((run_id, task_id)): Path<(String, String)>,
) -> Result<Json<TaskInspection>, ApiError> {
    let i = s.view.read(|v| {
        let r = find_run(v, &run_id)?;
        let t = find_task(r, &task_id)?;
        Ok::<_, ApiError>(TaskInspection::of(r, t, r.parsed_spec().as_deref()))
    })?;
    let live: Vec<AttemptRef> = i
        .task
        .attempts
        .iter()
        .filter(|a| a.is_live())
        .map(|a| AttemptRef::new(&i.run, &i.task.id, a.n))
        .collect();
    let last = last_output(&s, live).await;
    Ok(Json(i.with_last_output(|n| {
        last.iter().find(|(a, _)| a.attempt == n).map(|(_, t)| *t)
    })))
}

/// When each running attempt last wrote output, as its actor saw it (the
/// journal records events, not every line a plain command prints).
async fn last_output(s: &ApiState, attempts: Vec<AttemptRef>) -> Vec<(AttemptRef, Timestamp)> {
    let mut out = Vec::new();
    for a in attempts {
        let Some(cell) = s.services.registry.get(&ActorPath::Attempt(a.clone())) else {
            continue;
        };
        let actor: ractor::ActorRef<orca_actors::attempt::AttemptMsg> = cell.into();
        if let Ok(ractor::rpc::CallResult::Success(st)) = actor
            .call(
                orca_actors::attempt::AttemptMsg::Status,
                Some(std::time::Duration::from_millis(500)),
            )
            .await
        {
            out.push((a, st.last_output));
        }
    }
    out
}

#[utoipa::path(
    get,
    path = "/v1/fleet/runs/{run_id}/receipts",
    tag = "fleet",
    summary = "Every attempt's receipt",
    params(("run_id" = String, Path, description = "A run id or a unique prefix")),
    responses((status = 200, description = "Receipts", body = [Object]), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn receipts(
    State(s): State<ApiState>,
    Path(run_id): Path<String>,
) -> Result<Json<Vec<ReceiptView>>, ApiError> {
    s.view
        .read(|v| Ok(Json(ReceiptView::all(find_run(v, &run_id)?))))
}

/// The slots of a run: declared workers, or `local-1..N`.
pub fn workers_of(r: &RunState) -> Vec<WorkerView> {
    let names: Vec<String> = match r.parsed_spec() {
        Some(spec) if !spec.workers.is_empty() => {
            spec.workers.iter().map(|w| w.id.clone()).collect()
        }
        _ => (1..=r.max_workers).map(|n| format!("local-{n}")).collect(),
    };
    names
        .into_iter()
        .map(|w| {
            let live = r.tasks.iter().find_map(|t| {
                t.current()
                    .filter(|a| a.is_live() && a.worker.as_deref() == Some(w.as_str()))
                    .map(|a| (t.id.clone(), a))
            });
            WorkerView {
                id: format!("{}:{w}", r.run),
                run: r.run.clone(),
                state: if live.is_some() { "busy" } else { "idle" }.into(),
                task: live.as_ref().map(|(t, _)| t.clone()),
                attempt: live.as_ref().map(|(_, a)| a.n),
                pid: live.as_ref().and_then(|(_, a)| a.pid),
                heartbeat: live.as_ref().map(|(_, a)| a.heartbeat),
                tool: live.as_ref().and_then(|(_, a)| a.tool.clone()),
                tokens: live.as_ref().map(|(_, a)| a.tokens).unwrap_or(0),
                tool_calls: live.as_ref().map(|(_, a)| a.tool_calls).unwrap_or(0),
                worker: w,
            }
        })
        .collect()
}

#[utoipa::path(
    get,
    path = "/v1/fleet/runs/{run_id}/workers",
    tag = "fleet",
    summary = "A run's worker slots",
    params(("run_id" = String, Path, description = "A run id or a unique prefix")),
    responses((status = 200, description = "Worker views", body = [Object]), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn run_workers(
    State(s): State<ApiState>,
    Path(run_id): Path<String>,
) -> Result<Json<Vec<WorkerView>>, ApiError> {
    let workers = s.view.read(|v| find_run(v, &run_id).map(workers_of))?;
    Ok(Json(with_last_output(&s, workers).await))
}

/// Busy workers' heartbeats brought up to their attempt's last output.
async fn with_last_output(s: &ApiState, mut workers: Vec<WorkerView>) -> Vec<WorkerView> {
    let busy: Vec<AttemptRef> = workers
        .iter()
        .filter_map(|w| Some(AttemptRef::new(&w.run, w.task.as_ref()?, w.attempt?)))
        .collect();
    let last = last_output(s, busy).await;
    for w in &mut workers {
        if let Some((_, t)) = last
            .iter()
            .find(|(a, _)| Some(&a.task) == w.task.as_ref() && Some(a.attempt) == w.attempt)
        {
            w.heartbeat = w.heartbeat.map(|h| h.max(*t));
        }
    }
    workers
}

/// A worker by global id (`<run>:<worker>`, run by prefix) or by a bare
/// worker id unique among active runs.
fn find_worker(v: &orca_actors::view::FleetView, id: &str) -> Result<WorkerView, ApiError> {
    if let Some((run, worker)) = id.rsplit_once(':') {
        let r = find_run(v, run)?;
        let workers = workers_of(r);
        let names: Vec<String> = workers.iter().map(|w| w.worker.clone()).collect();
        return workers
            .into_iter()
            .find(|w| w.worker == worker)
            .ok_or_else(|| {
                LookupError::NotFound {
                    what: Named::Worker,
                    name: worker.to_string(),
                    within: Some(r.run.clone()),
                    candidates: names,
                }
                .into()
            });
    }
    let mut candidates: Vec<WorkerView> = v
        .runs
        .values()
        .filter(|r| r.ended_as.is_none())
        .flat_map(workers_of)
        .filter(|w| w.worker == id)
        .collect();
    match candidates.len() {
        1 => Ok(candidates.remove(0)),
        0 => Err(ApiError::not_found(format!(
            "no active run has a worker {id:?}; use <run>:<worker>"
        ))),
        n => Err(LookupError::Ambiguous {
            what: Named::Worker,
            name: id.to_string(),
            within: None,
            count: n,
            candidates: candidates.iter().map(|w| w.id.clone()).collect(),
        }
        .into()),
    }
}

#[utoipa::path(
    get,
    path = "/v1/fleet/workers/{worker_id}",
    tag = "fleet",
    summary = "One worker",
    params(("worker_id" = String, Path, description = "`<run>:<worker>` (run by prefix), or a worker id unique among active runs")),
    responses((status = 200, description = "A worker view", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn get_worker(
    State(s): State<ApiState>,
    Path(worker_id): Path<String>,
) -> Result<Json<WorkerView>, ApiError> {
    let w = s.view.read(|v| find_worker(v, &worker_id))?;
    let mut one = with_last_output(&s, vec![w]).await;
    one.pop()
        .map(Json)
        .ok_or_else(|| ApiError::internal("the worker went missing"))
}

async fn worker_control(
    s: &ApiState,
    headers: &HeaderMap,
    p: &Principal,
    worker_id: &str,
    msg: ControlMessage,
) -> Result<Json<serde_json::Value>, ApiError> {
    let w = s.view.read(|v| find_worker(v, worker_id))?;
    let (Some(task), Some(n)) = (w.task.clone(), w.attempt) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("worker {} is idle", w.id),
        ));
    };
    let path = AttemptRef::new(&w.run, task, n).actor_path();
    let r = orca_actors::control::deliver(
        &s.services.registry,
        &s.runs()?,
        &path,
        &msg,
        p.surface(headers),
    )
    .await?;
    Ok(Json(
        json!({ "result": r.result, "worker": w.id, "path": path, "attempt": r.attempt.map(|a| a.to_string()) }),
    ))
}

#[utoipa::path(
    post,
    path = "/v1/fleet/workers/{worker_id}/interrupt",
    tag = "fleet",
    summary = "Stop the worker's current attempt",
    params(("worker_id" = String, Path, description = "`<run>:<worker>` (run by prefix), or a worker id unique among active runs")),
    responses((status = 200, description = "`{result, …}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn interrupt_worker(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    Path(worker_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    worker_control(&s, &headers, &p, &worker_id, ControlMessage::Interrupt).await
}

#[utoipa::path(
    post,
    path = "/v1/fleet/workers/{worker_id}/restart",
    tag = "fleet",
    summary = "Restart the worker's current attempt",
    params(("worker_id" = String, Path, description = "`<run>:<worker>` (run by prefix), or a worker id unique among active runs")),
    responses((status = 200, description = "`{result, …}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn restart_worker(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    Path(worker_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    worker_control(&s, &headers, &p, &worker_id, ControlMessage::Restart).await
}

async fn run_control(
    s: &ApiState,
    headers: &HeaderMap,
    p: &Principal,
    run_id: &str,
    msg: ControlMessage,
) -> Result<Json<serde_json::Value>, ApiError> {
    let run = s
        .view
        .read(|v| find_run(v, run_id).map(|r| r.run.clone()))?;
    let path = ActorPath::run(&run);
    let r = orca_actors::control::deliver(
        &s.services.registry,
        &s.runs()?,
        &path,
        &msg,
        p.surface(headers),
    )
    .await
    .map_err(|e| match e {
        // The run exists (it was found) but no supervisor runs it.
        ControlError::NotFound(_) => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("run {run} is not running"),
        ),
        e => e.into(),
    })?;
    Ok(Json(json!({ "result": r.result, "run": run })))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct StopBody {
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST …/stop`'s optional body.
pub fn stop_body(body: &[u8]) -> Result<StopBody, ApiError> {
    if body.is_empty() {
        return Ok(StopBody::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
}

#[utoipa::path(
    post,
    path = "/v1/fleet/runs/{run_id}/stop",
    tag = "fleet",
    summary = "Cancel a run and every run below it",
    params(("run_id" = String, Path, description = "A run id or a unique prefix")),
    request_body(content = Option<crate::api::fleet::StopBody>, description = "Optional: `{\"reason\"}`", content_type = "application/json"),
    responses((status = 200, description = "`{result, run}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn stop_run(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    Path(run_id): Path<String>,
    Body(body): Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b = stop_body(&body)?;
    run_control(
        &s,
        &headers,
        &p,
        &run_id,
        ControlMessage::Stop { reason: b.reason },
    )
    .await
}

#[utoipa::path(
    post,
    path = "/v1/fleet/runs/{run_id}/pause",
    tag = "fleet",
    summary = "Stop leasing new tasks",
    params(("run_id" = String, Path, description = "A run id or a unique prefix")),
    responses((status = 200, description = "`{result, run}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn pause_run(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    Path(run_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    run_control(&s, &headers, &p, &run_id, ControlMessage::Pause).await
}

#[utoipa::path(
    post,
    path = "/v1/fleet/runs/{run_id}/resume",
    tag = "fleet",
    summary = "Lease new tasks again",
    params(("run_id" = String, Path, description = "A run id or a unique prefix")),
    responses((status = 200, description = "`{result, run}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn resume_run(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    Path(run_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    run_control(&s, &headers, &p, &run_id, ControlMessage::Resume).await
}

#[derive(Debug, Deserialize)]
pub struct SubmitQuery {
    pub max_workers: Option<u32>,
    pub stale_after: Option<f64>,
    /// A name for error messages (and the format: `.json` / `.toml`).
    pub source: Option<String>,
}

/// A submitted spec's text and format: by `Content-Type`, else by the
/// `source`'s extension, else by content.
pub fn spec_text(
    content_type: &str,
    source: &str,
    body: &[u8],
) -> Result<(String, Format), ApiError> {
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("the spec is not UTF-8 text"))?;
    let format = if content_type.contains("toml") {
        Format::Toml
    } else if content_type.contains("json") {
        Format::Json
    } else {
        Format::detect(source, &text)
    };
    Ok((text, format))
}

/// Submits a spec (JSON or TOML body). An attempt's token submits a child
/// run of its attempt, one level deeper, refused past the strictest
/// `max_spawn_depth` above it (`runs` checks it).
#[utoipa::path(
    post,
    path = "/v1/fleet/runs",
    tag = "fleet",
    summary = "Submit a run spec (TOML or JSON text)",
    params(("max_workers" = Option<u32>, Query, description = "Worker slots"), ("stale_after" = Option<f64>, Query, description = "Seconds without output before an attempt is stale"), ("source" = Option<String>, Query, description = "A name for messages; its extension gives the format")),
    request_body(content((String = "application/toml"), (Object = "application/json")), description = "The spec's text"),
    responses((status = 201, description = "`{run, depth, warnings}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn submit(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    Query(q): Query<SubmitQuery>,
    Body(body): Body,
) -> Result<impl IntoResponse, ApiError> {
    let source = q.source.clone().unwrap_or_else(|| "api".into());
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (text, format) = spec_text(content_type, &source, &body)?;
    let stale_after = match q.stale_after {
        None => None,
        Some(secs) => Some(orca_actors::model::positive_seconds(secs).ok_or_else(|| {
            ApiError::bad_request(format!(
                "stale_after: expected a positive number of seconds, got {secs}"
            ))
        })?),
    };
    let ctx = ValidateContext::workspace(s.services.ws.root(), &s.config);
    let (sub, warnings) = ops::prepare(
        SubmitRequest {
            text: &text,
            format,
            source,
            max_workers: q.max_workers,
            stale_after,
            surface: p.surface(&headers),
            parent: match &p {
                Principal::Operator => None,
                Principal::Attempt(g) => Some(g.attempt.clone()),
            },
        },
        &ctx,
        &s.services.settings,
    )?;
    let done = ops::submit(&s.runs()?, sub).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "run": done.run, "depth": done.depth, "warnings": warnings })),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct VerdictBody {
    #[schema(value_type = crate::api::openapi::Verdict)]
    pub verdict: Verdict,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub who: Option<String>,
    #[serde(default)]
    pub attempt: Option<u32>,
}

/// A verdict's body.
pub fn verdict_body(body: &[u8]) -> Result<VerdictBody, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"verdict\": \"pass\" | \"fail\", \"note\"?, \"who\"?, \"attempt\"?}}: {e}"
        ))
    })
}

/// A manual verdict (the verification issue's `orca verify`): checked and
/// recorded by the actor that writes it, which rewrites `receipt.json`.
#[utoipa::path(
    post,
    path = "/v1/fleet/runs/{run_id}/tasks/{task_id}/verdict",
    tag = "fleet",
    summary = "A manual verdict",
    params(("run_id" = String, Path, description = "A run id or a unique prefix"), ("task_id" = String, Path, description = "A task id")),
    request_body(content = crate::api::fleet::VerdictBody, content_type = "application/json"),
    responses((status = 200, description = "`{attempt, verdict}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn verdict(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    Path((run_id, task_id)): Path<(String, String)>,
    Body(body): Body,
) -> Result<impl IntoResponse, ApiError> {
    let b = verdict_body(&body)?;
    let run = s
        .view
        .read(|v| find_run(v, &run_id).map(|r| r.run.clone()))?;
    let surface = p.surface(&headers);
    let record = VerdictRecord {
        verdict: b.verdict,
        who: b.who.unwrap_or_else(|| surface.to_string()),
        at: Timestamp::now(),
        note: orca_actors::model::bounded(&b.note, 2000),
    };
    let attempt = ops::verdict(
        &s.runs()?,
        &run,
        VerdictRequest {
            task: task_id,
            attempt: b.attempt,
            verdict: record.clone(),
            surface,
        },
    )
    .await?;
    Ok(Json(json!({
        "attempt": attempt.to_string(),
        "verdict": record,
    })))
}
