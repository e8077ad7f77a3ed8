//! `GET /healthz` and `POST /v1/daemon/shutdown`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use orca_actors::root::{Health, RootMsg};
use ractor::rpc::CallResult;
use serde_json::json;

use super::{ApiError, ApiState, Principal};

/// `ok`, or `degraded` with the reason (a journal sync failure). 200 either
/// way: the daemon answers; the body says whether it can work.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "daemon",
    summary = "Liveness and journal health (no token)",
    responses((status = 200, description = "ok or degraded, with the reason", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
    security(()),
)]
pub async fn healthz(State(s): State<ApiState>) -> impl IntoResponse {
    let health = match s.root.call(RootMsg::Health, None).await {
        Ok(CallResult::Success(h)) => h,
        _ => Health::Degraded {
            reason: "the supervision tree does not answer".into(),
        },
    };
    let (status, reason) = match health {
        Health::Ok => ("ok", None),
        Health::Degraded { reason } => ("degraded", Some(reason)),
    };
    Json(json!({
        "status": status,
        "reason": reason,
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "mode": s.mode,
        "started_at": s.started,
        "last_seq": s.services.journal.last_seq(),
    }))
}

/// Suspends every run and stops the daemon (`orca down`).
#[utoipa::path(
    post,
    path = "/v1/daemon/shutdown",
    tag = "daemon",
    summary = "Suspend every run and stop the daemon (`orca down`)",
    responses((status = 202, description = "Stopping", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn shutdown(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> Result<impl IntoResponse, ApiError> {
    if p != Principal::Operator {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "operators only",
        ));
    }
    s.shutdown.notify_one();
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "stopping"}))))
}
