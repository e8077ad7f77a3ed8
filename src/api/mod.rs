//! The HTTP Runtime API (axum): the seed's `/v1/fleet/...` routes, the
//! live tree, typed control messages, and the journal as server-sent
//! events. Every route but `GET /healthz` needs `Authorization: Bearer`;
//! errors are `{"error": {"code", "message"}}` (codes in [`ApiError`] and
//! docs/api.md). One file per resource.

mod actors;
mod agents;
mod alerts;
mod events;
mod fleet;
pub mod fuzzing;
mod health;
mod logs;
pub mod openapi;

pub use events::EventFeed;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orca_actors::control::{ControlError, ControlKind};
use orca_actors::model::{Surface, Timestamp};
use orca_actors::ops::SubmitRejected;
use orca_actors::path::ActorPath;
use orca_actors::root::RootMsg;
use orca_actors::run::RunError;
use orca_actors::runs::{RunsMsg, SubmitError};
use orca_actors::services::Services;
use orca_actors::spec::OrcaConfig;
use orca_actors::spec::SpecError;
use orca_actors::view::{LookupError, VerdictError};
use ractor::ActorRef;
use serde_json::json;

use crate::daemon::info::{constant_time_eq, Mode};
use crate::daemon::live::LiveView;
use crate::daemon::tokens::{AttemptTokens, Grant};

/// Request bodies are capped at this many bytes (more → 413).
pub const MAX_BODY: usize = 1 << 20;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub services: Services,
    pub root: ActorRef<RootMsg>,
    pub view: LiveView,
    pub token: Arc<String>,
    pub attempts: Arc<AttemptTokens>,
    pub config: Arc<OrcaConfig>,
    pub shutdown: Arc<tokio::sync::Notify>,
    pub started: Timestamp,
    pub mode: Mode,
    /// Set when the server is stopping: long-lived streams end.
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// The web console's login codes and sessions.
    pub console: Arc<crate::console::ConsoleAuth>,
    /// The journal's feed, encoded once for every `/v1/events` stream.
    pub events: events::EventFeed,
}

impl ApiState {
    /// The `runs` supervisor as it is now (its row may have restarted it).
    pub fn runs(&self) -> Result<ActorRef<RunsMsg>, ApiError> {
        self.services
            .registry
            .get(&ActorPath::Runs)
            .map(ActorRef::from)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "degraded",
                    "the runs supervisor is not running",
                )
            })
    }

    /// Waits until the live view holds everything written to the journal
    /// files when the request arrived (durable, or one group commit away),
    /// so an answer never lags what `orca journal export` already shows.
    /// (A failed journal publishes nothing more: wait only for the durable.)
    pub async fn fresh(&self) {
        let j = &self.services.journal;
        let seq = match j.health() {
            orca_actors::journal::JournalHealth::Ok => j.written_seq(),
            _ => j.last_seq(),
        };
        self.view.caught_up(seq).await;
    }
}

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// Holds the workspace token: everything.
    Operator,
    /// Holds a per-attempt token: read, and submit child runs of it.
    Attempt(Grant),
}

impl Principal {
    /// The surface journaled for this request's actions: the CLI says so
    /// with `x-orca-surface: cli`.
    pub fn surface(&self, headers: &HeaderMap) -> Surface {
        match self {
            Principal::Attempt(_) => Surface::Worker,
            Principal::Operator => {
                match headers.get("x-orca-surface").and_then(|v| v.to_str().ok()) {
                    Some("cli") => Surface::Cli,
                    Some("web") => Surface::Web,
                    _ => Surface::Api,
                }
            }
        }
    }
}

/// An error answer. Codes: `unauthorized` 401, `forbidden` 403,
/// `not_found` 404, `method_not_allowed` 405, `ambiguous` 400,
/// `bad_request` 400,
/// `payload_too_large` 413, `invalid_spec` 422, `not_accepted` 422,
/// `spawn_depth` 422, `not_awaiting_verdict` 409, `conflict` 409,
/// `degraded` 503, `internal` 500.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(d) = self.details {
            error["details"] = d;
        }
        let mut resp = (self.status, Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was not read: this connection cannot
            // carry another request.
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

// Typed errors from the domain, each mapped to its status with a `match`
// (never by the text of a message).

impl From<LookupError> for ApiError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::NotFound { .. } => ApiError::not_found(e.to_string()),
            LookupError::Ambiguous { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "ambiguous", e.to_string())
            }
        }
    }
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> Self {
        let lines: Vec<String> = e
            .diagnostics
            .iter()
            .map(|d| d.display(&e.origin).to_string())
            .collect();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_spec",
            lines.join("\n"),
        )
        .with_details(json!({ "diagnostics": e.diagnostics }))
    }
}

impl From<SubmitRejected> for ApiError {
    fn from(e: SubmitRejected) -> Self {
        match e {
            SubmitRejected::Invalid(spec) => spec.into(),
            SubmitRejected::Refused(refused) => {
                let message = refused.to_string();
                match refused {
                    SubmitError::SpawnDepth { .. } => {
                        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "spawn_depth", message)
                    }
                    SubmitError::NoParent { .. } | SubmitError::AlreadyRunning(_) => {
                        ApiError::new(StatusCode::CONFLICT, "conflict", message)
                    }
                    SubmitError::Journal(_) => {
                        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "degraded", message)
                    }
                    SubmitError::BadJournal { .. } | SubmitError::Start { .. } => {
                        ApiError::internal(message)
                    }
                }
            }
            SubmitRejected::NoAnswer => ApiError::internal(e.to_string()),
        }
    }
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        let message = e.to_string();
        match e {
            RunError::NoSuchTask { .. } => ApiError::not_found(message),
            RunError::NotRunning { .. } | RunError::Ended { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            RunError::Halted { .. } | RunError::Unavailable { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "degraded", message)
            }
            RunError::Verdict(v) => match v {
                VerdictError::Lookup(l) => l.into(),
                VerdictError::NoSuchAttempt { .. } => ApiError::not_found(message),
                VerdictError::NoReceipt { .. }
                | VerdictError::AlreadyGiven { .. }
                | VerdictError::NotAwaiting { .. } => {
                    ApiError::new(StatusCode::CONFLICT, "not_awaiting_verdict", message)
                }
            },
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let message = e.to_string();
        match e {
            // Not a path orca could have: no actor is there.
            ControlError::BadPath(_) => ApiError::not_found(message),
            ControlError::NotFound(_) => ApiError::not_found(message),
            ControlError::Unknown { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_accepted", message)
                    .with_details(json!({ "accepted": ControlKind::names() }))
            }
            ControlError::NotAccepted { accepted, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_accepted", message)
                    .with_details(json!({
                        "accepted": accepted.iter().map(|k| k.name()).collect::<Vec<_>>()
                    }))
            }
            ControlError::Refused(r) => r.into(),
            ControlError::NoAnswer(_) => ApiError::internal(message),
            ControlError::NoAgent(_) => ApiError::not_found(message),
            ControlError::AgentRetired(_) => {
                ApiError::new(StatusCode::CONFLICT, "retired", message)
            }
            ControlError::AgentRefused(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_accepted", message)
            }
        }
    }
}

impl From<orca_actors::agents::AgentsError> for ApiError {
    fn from(e: orca_actors::agents::AgentsError) -> Self {
        use orca_actors::agent::decide::AgentError;
        use orca_actors::agents::AgentsError;
        let message = e.to_string();
        match e {
            AgentsError::NotFound(_)
            | AgentsError::Agent(AgentError::NoSubscription { .. })
            | AgentsError::Agent(AgentError::NoApproval { .. }) => ApiError::not_found(message),
            AgentsError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            AgentsError::Agent(AgentError::NotThinking { .. }) => {
                ApiError::new(StatusCode::CONFLICT, "not_thinking", message)
            }
            AgentsError::RetiredId(_) | AgentsError::Agent(AgentError::Retired { .. }) => {
                ApiError::new(StatusCode::CONFLICT, "retired", message)
            }
            AgentsError::Journal(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "degraded", message)
            }
            AgentsError::NotRunning => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "agents_not_running",
                message,
            ),
            AgentsError::NoAnswer(_) => ApiError::internal(message),
        }
    }
}

impl From<orca_actors::agent::spec::AgentSpecError> for ApiError {
    fn from(e: orca_actors::agent::spec::AgentSpecError) -> Self {
        let lines: Vec<String> = e
            .diagnostics
            .iter()
            .map(|d| d.display(&e.origin).to_string())
            .collect();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_spec",
            lines.join("\n"),
        )
        .with_details(json!({ "diagnostics": e.diagnostics }))
    }
}

/// An axum extractor whose rejection becomes a JSON `bad_request` error,
/// like every other error of this API (axum's own are plain text).
macro_rules! json_rejecting {
    ($(#[$doc:meta])* $name:ident => $inner:ident) => {
        $(#[$doc])*
        pub struct $name<T>(pub T);

        impl<T, S> axum::extract::FromRequestParts<S> for $name<T>
        where
            T: serde::de::DeserializeOwned + Send,
            S: Send + Sync,
        {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                state: &S,
            ) -> Result<Self, ApiError> {
                axum::extract::$inner::<T>::from_request_parts(parts, state)
                    .await
                    .map(|x| $name(x.0))
                    .map_err(|e| ApiError::bad_request(e.body_text()))
            }
        }
    };
}

json_rejecting!(
    /// A query string parsed into `T`.
    Query => Query
);
json_rejecting!(
    /// Path parameters parsed into `T` (a malformed one: say,
    /// percent-encoded bytes that are not UTF-8).
    Path => Path
);

/// A request body of at most [`MAX_BODY`] bytes (413 otherwise).
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map(Body)
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("request bodies are limited to {MAX_BODY} bytes"),
                )
            })
    }
}

/// Checks the bearer token before anything else — before routing, so an
/// unknown route or a wrong method tells nothing without it either; a
/// missing or wrong token gets 401 and nothing more. Only `GET /healthz`
/// is open (and the console's `/login`, which checks its code); a console
/// session cookie stands for the token (see [`crate::console`]).
async fn auth(State(s): State<ApiState>, mut req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" || is_agent_webhook(&req) {
        return next.run(req).await;
    }
    // The web console's pages (their own session check, 401 without).
    if crate::console::owns(req.uri().path()) {
        return crate::console::serve(&s, req).await;
    }
    let presented = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .unwrap_or_default()
        .to_string();
    let principal = if constant_time_eq(presented.as_bytes(), s.token.as_bytes()) {
        Some(Principal::Operator)
    } else if !presented.is_empty() {
        s.attempts.lookup(&presented).map(Principal::Attempt)
    } else {
        // No token: a console session cookie (CSRF-checked for changes)?
        match crate::console::session_principal(&s.console, &mut req) {
            Ok(p) => p,
            Err(refused) => return refused.into_response(),
        }
    };
    let Some(principal) = principal else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unauthorized")
            .into_response();
    };
    if let Principal::Attempt(_) = &principal {
        let post = req.method() == axum::http::Method::POST;
        let submit = post && req.uri().path() == "/v1/fleet/runs";
        // A think attempt's tool calls (the handler checks the agent).
        let tool = post && is_agent_tool(req.uri().path());
        if req.method() != axum::http::Method::GET && !submit && !tool {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "an attempt's token may only read, submit child runs of its attempt, and call its agent's tools (a think attempt)",
            )
            .into_response();
        }
    }
    req.extensions_mut().insert(principal);
    s.fresh().await;
    next.run(req).await
}

/// `/v1/agents/{id}/tools/{tool}`.
fn is_agent_tool(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    matches!(parts.as_slice(), ["", "v1", "agents", _, "tools", _])
}

/// `POST /v1/agents/{id}/events/{subscription}`: open to senders without
/// orca's token, verified by its Standard Webhooks signature instead.
fn is_agent_webhook(req: &Request) -> bool {
    if req.method() != axum::http::Method::POST {
        return false;
    }
    let parts: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    matches!(parts.as_slice(), ["v1", "agents", _, "events", _])
}

/// The credentials of an `Authorization: Bearer <token>` value (the scheme
/// name is case-insensitive, RFC 9110).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The router: [`auth`] wraps the whole of it as its fallback service, so
/// the token is checked before any routing (a layer on the routes would
/// run only once a route and method matched).
pub fn router(state: ApiState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/v1/fleet/runs", get(fleet::list_runs).post(fleet::submit))
        .route("/v1/fleet/runs/{run_id}", get(fleet::get_run))
        .route("/v1/fleet/runs/{run_id}/workers", get(fleet::run_workers))
        .route("/v1/fleet/runs/{run_id}/receipts", get(fleet::receipts))
        .route("/v1/fleet/runs/{run_id}/stop", post(fleet::stop_run))
        .route("/v1/fleet/runs/{run_id}/pause", post(fleet::pause_run))
        .route("/v1/fleet/runs/{run_id}/resume", post(fleet::resume_run))
        .route(
            "/v1/fleet/runs/{run_id}/tasks/{task_id}",
            get(fleet::get_task),
        )
        .route(
            "/v1/fleet/runs/{run_id}/tasks/{task_id}/logs",
            get(logs::logs),
        )
        .route(
            "/v1/fleet/runs/{run_id}/tasks/{task_id}/verdict",
            post(fleet::verdict),
        )
        .route("/v1/fleet/workers/{worker_id}", get(fleet::get_worker))
        .route(
            "/v1/fleet/workers/{worker_id}/interrupt",
            post(fleet::interrupt_worker),
        )
        .route(
            "/v1/fleet/workers/{worker_id}/restart",
            post(fleet::restart_worker),
        )
        .route("/v1/agents", get(agents::list).post(agents::create))
        .route(
            "/v1/agents/{agent_id}",
            get(agents::show).put(agents::update),
        )
        .route("/v1/agents/{agent_id}/explain", get(agents::explain))
        .route("/v1/agents/{agent_id}/journal", get(agents::journal))
        .route("/v1/agents/{agent_id}/{verb}", post(agents::steer))
        .route("/v1/agents/{agent_id}/tools/{tool}", post(agents::tool))
        .route("/v1/whoami", get(agents::whoami))
        .route(
            "/v1/agents/{agent_id}/events/{subscription}",
            post(agents::webhook),
        )
        .route("/v1/alerts", get(alerts::list).post(alerts::raise))
        .route("/v1/alerts/test", post(alerts::test))
        .route("/v1/tree", get(actors::tree))
        .route("/v1/actors/messages", post(actors::message))
        .route("/v1/events", get(events::events))
        .route("/v1/daemon/shutdown", post(health::shutdown))
        .route("/v1/console/codes", post(crate::console::mint_code))
        .route("/v1/openapi.json", get(openapi::serve))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .with_state(state.clone());
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn_with_state(state, auth))
        .layer(axum::middleware::from_fn(crate::console::headers))
}
