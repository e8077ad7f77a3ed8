//! `GET /v1/tree` (the live supervision tree) and `POST /v1/actors/messages`
//! (a typed control message to the actor at a path).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use orca_actors::control::{ControlError, ControlKind, ControlMessage};
use orca_actors::journal::JournalHealth;
use orca_actors::ops;
use orca_actors::path::ActorPath;
use orca_actors::view::{tree as build_tree, JournalFacts, TreeNode};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiState, Body, Principal, Query};

#[derive(Debug, Deserialize)]
pub struct TreeQuery {
    /// Only this run (id or unique prefix).
    pub run: Option<String>,
}

/// The journal node's facts, live.
pub fn journal_facts(s: &ApiState, last_seq: u64) -> JournalFacts {
    JournalFacts {
        state: match s.services.journal.health() {
            JournalHealth::Ok => "ok".into(),
            JournalHealth::Failed(reason) => format!("degraded: {reason}"),
            JournalHealth::Stopped => "stopped".into(),
        },
        detail: format!("last seq {last_seq}"),
    }
}

#[utoipa::path(
    get,
    path = "/v1/tree",
    tag = "actors",
    summary = "The live supervision tree",
    params(("run" = Option<String>, Query, description = "Only this run (id or unique prefix)")),
    responses((status = 200, description = "The tree", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn tree(
    State(s): State<ApiState>,
    Query(q): Query<TreeQuery>,
) -> Result<Json<TreeNode>, ApiError> {
    s.view.read(|v| {
        let only = match &q.run {
            Some(name) => Some(v.find_run(name)?.run.clone()),
            None => None,
        };
        Ok(Json(build_tree(
            v,
            &journal_facts(&s, v.last_seq),
            only.as_deref(),
        )))
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MessageBody {
    /// Actor path (`/runs/r-1/attempts/lint:2`): paths hold `/`, so the path
    /// travels in the body.
    pub path: String,
    /// `"interrupt"` or `{"type": "stop", "reason": "…"}`.
    pub message: serde_json::Value,
}

/// A control message's body (`message` is read by
/// [`ControlMessage::from_json`]).
pub fn message_body(body: &[u8]) -> Result<MessageBody, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"path\", \"message\"}}: {e}")))
}

#[utoipa::path(
    post,
    path = "/v1/actors/messages",
    tag = "actors",
    summary = "A typed control message to the actor at a path",
    request_body(content = crate::api::actors::MessageBody, content_type = "application/json"),
    responses((status = 200, description = "`{result, path, attempt?}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn message(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    Body(body): Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b = message_body(&body)?;
    let msg = match ControlMessage::from_json(b.message) {
        Ok(m) => m,
        // Not a message orca knows at all: say what this actor takes.
        Err(ControlError::Unknown { message, reason }) => {
            let path: ActorPath = b
                .path
                .parse()
                .map_err(|_| ControlError::BadPath(b.path.clone()))?;
            if s.services.registry.get(&path).is_none() {
                return Err(ControlError::NotFound(path).into());
            }
            let accepted = ControlKind::accepted_by(path.kind());
            let names: Vec<&str> = accepted.iter().map(|k| k.name()).collect();
            return Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "not_accepted",
                format!(
                    "{path} does not accept `{message}` ({reason}); it accepts: {}",
                    if names.is_empty() {
                        "nothing".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            )
            .with_details(json!({ "accepted": names })));
        }
        Err(e) => return Err(e.into()),
    };
    // Runs (and an attempt's task) may be named by a unique prefix, as
    // everywhere else.
    let path = match b.path.parse::<ActorPath>() {
        Ok(path) => s.view.read(|v| full_path(v, path))?.to_string(),
        Err(_) => b.path.clone(),
    };
    let r = ops::control(
        &s.services.registry,
        &s.runs()?,
        &path,
        &msg,
        p.surface(&headers),
    )
    .await?;
    Ok(Json(
        json!({ "result": r.result, "path": path, "attempt": r.attempt.map(|a| a.to_string()) }),
    ))
}

/// `path` with its run (and an attempt's task) named in full, when given
/// by a unique prefix; a name that matches nothing is left as it is (the
/// delivery then says no actor is there).
fn full_path(v: &orca_actors::view::FleetView, path: ActorPath) -> Result<ActorPath, ApiError> {
    let Some(name) = path.run_id() else {
        return Ok(path);
    };
    let run = match v.find_run(name) {
        Ok(r) => r,
        Err(orca_actors::view::LookupError::NotFound { .. }) => return Ok(path),
        Err(e) => return Err(e.into()),
    };
    Ok(match path {
        ActorPath::Run(_) => ActorPath::run(&run.run),
        ActorPath::Scorer(_) => ActorPath::scorer(&run.run),
        ActorPath::Attempt(a) => match orca_actors::view::find_task(run, &a.task) {
            Ok(t) => ActorPath::attempt(&run.run, &t.id, a.attempt),
            Err(_) => ActorPath::attempt(&run.run, a.task, a.attempt),
        },
        other => other,
    })
}
