//! `GET /v1/tree` (the live supervision tree) and `POST /v1/actors/messages`
//! (a typed control message to the actor at a path).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use orca_actors::control::{deliver, ControlMessage};
use orca_actors::journal::JournalHealth;
use orca_actors::view::{tree as build_tree, JournalFacts, TreeNode};
use serde::Deserialize;
use serde_json::json;

use super::fleet::control_error;
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

pub async fn tree(
    State(s): State<ApiState>,
    Query(q): Query<TreeQuery>,
) -> Result<Json<TreeNode>, ApiError> {
    s.view.read(|v| {
        let only = match &q.run {
            Some(name) => Some(v.find_run(name).map_err(ApiError::not_found)?.run.clone()),
            None => None,
        };
        Ok(Json(build_tree(
            v,
            &journal_facts(&s, v.last_seq),
            only.as_deref(),
        )))
    })
}

#[derive(Debug, Deserialize)]
pub struct MessageBody {
    /// Actor path (`/runs/r-1/attempts/lint:2`): paths hold `/`, so the path
    /// travels in the body.
    pub path: String,
    /// `"interrupt"` or `{"type": "stop", "reason": "…"}`.
    pub message: serde_json::Value,
}

pub async fn message(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    Body(body): Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b: MessageBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"path\", \"message\"}}: {e}")))?;
    let msg_value = match b.message {
        serde_json::Value::String(name) => json!({ "type": name }),
        other => other,
    };
    let name = msg_value
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or_default()
        .to_string();
    let msg: ControlMessage = match serde_json::from_value(msg_value) {
        Ok(m) => m,
        Err(e) => {
            // Not a message orca knows at all: list what the actor takes.
            let accepted: Vec<&str> = s
                .services
                .registry
                .get(&b.path)
                .map(|entry| orca_actors::control::accepted(entry.kind).to_vec())
                .ok_or_else(|| ApiError::not_found(format!("no running actor at {}", b.path)))?;
            return Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "not_accepted",
                format!(
                    "{} does not accept `{name}` ({e}); it accepts: {}",
                    b.path,
                    accepted.join(", ")
                ),
            )
            .with_details(json!({ "accepted": accepted })));
        }
    };
    let result = deliver(
        &s.services.registry,
        &s.runs,
        &b.path,
        &msg,
        p.surface(&headers),
    )
    .await
    .map_err(control_error)?;
    Ok(Json(json!({ "result": result, "path": b.path })))
}
