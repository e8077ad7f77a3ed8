//! `GET /v1/alerts` (alerts and their delivery state) and
//! `POST /v1/alerts/test` (one test notification, sent by the daemon with
//! the daemon's environment).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use orca_actors::alert::dry_run::DryRunError;
use orca_actors::alert::probe::{probe, ProbeReport, ProbeRequest};
use orca_actors::alert::send::Sender;
use orca_actors::alert::view::AlertList;
use orca_actors::alert::ProcessEnv;
use serde::Deserialize;

use super::{ApiError, ApiState, Body, Query};

#[derive(Debug, Default, Deserialize)]
pub struct AlertQuery {
    /// A run id or a unique prefix: only that run's alerts.
    pub run: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/alerts",
    tag = "alerts",
    summary = "Every alert raised and its delivery",
    params(("run" = Option<String>, Query, description = "Only this run's (id or unique prefix)")),
    responses((status = 200, description = "The alert list", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn list(
    State(s): State<ApiState>,
    Query(q): Query<AlertQuery>,
) -> Result<Json<AlertList>, ApiError> {
    s.view.read(|v| {
        let run = match &q.run {
            Some(name) => Some(v.find_run(name)?.run.clone()),
            None => None,
        };
        Ok(Json(v.alerts.list(run.as_deref())))
    })
}

#[utoipa::path(
    post,
    path = "/v1/alerts/test",
    tag = "alerts",
    summary = "Send one test notification through an adapter",
    request_body(content = crate::api::openapi::AlertTestBody, content_type = "application/json"),
    responses((status = 200, description = "The probe report (`delivered` says whether it was)", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn test(
    State(s): State<ApiState>,
    Body(body): Body,
) -> Result<Json<ProbeReport>, ApiError> {
    let req = probe_body(&body)?;
    let sender = Sender::new().map_err(|e| ApiError::internal(e.to_string()))?;
    let report = probe(
        &req,
        s.services.settings.alerts.as_ref(),
        &ProcessEnv,
        &sender,
    )
    .await
    .map_err(|e| match e {
        DryRunError::UnknownAdapter { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_adapter", e.to_string())
        }
        DryRunError::Build(_) => ApiError::internal(e.to_string()),
    })?;
    Ok(Json(report))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseBody {
    #[schema(value_type = crate::api::openapi::AlertClass)]
    pub class: orca_actors::model::AlertClass,
    /// Not empty (nor only spaces).
    #[schema(min_length = 1, pattern = r"\S")]
    pub reason: String,
}

/// `POST /v1/alerts`'s body (a non-empty reason).
pub fn raise_body(body: &[u8]) -> Result<RaiseBody, ApiError> {
    let req: RaiseBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
    if req.reason.trim().is_empty() {
        return Err(ApiError::bad_request("`reason` must not be empty"));
    }
    Ok(req)
}

/// `POST /v1/alerts/test`'s body.
pub fn probe_body(body: &[u8]) -> Result<ProbeRequest, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
}

/// `POST /v1/alerts` `{class, reason}`: raises an alert under the
/// workspace's own authority (an operator, or `orca mcp`'s `raise_alert`
/// without an agent's token); the alert router delivers it like any other.
#[utoipa::path(
    post,
    path = "/v1/alerts",
    tag = "alerts",
    summary = "Raise an alert as the operator",
    request_body(content = crate::api::alerts::RaiseBody, content_type = "application/json"),
    responses((status = 201, description = "`{alert}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn raise(
    State(s): State<ApiState>,
    axum::Extension(p): axum::Extension<super::Principal>,
    headers: axum::http::HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let req = raise_body(&body)?;
    let by = p.surface(&headers);
    let raised = orca_actors::alert::AlertRaised::new(
        req.class,
        orca_actors::alert::AlertSource::Operator {
            by: by.as_str().to_string(),
        },
        None,
        None,
        None,
        req.reason,
        orca_actors::model::Timestamp::now(),
    );
    let id = raised.id.clone();
    s.services
        .journal
        .append(vec![orca_actors::journal::NewEvent::new(
            orca_actors::path::ActorPath::Root.to_string(),
            raised.event(),
        )])
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "degraded", e.to_string()))?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"alert": id}))))
}
