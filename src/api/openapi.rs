//! The OpenAPI 3.1 document of this API, generated (utoipa) from the
//! handlers' `#[utoipa::path]` annotations and the request bodies' types;
//! served at `GET /v1/openapi.json` and kept in `docs/openapi.json`
//! (`tests/openapi.rs` checks the two are equal; `ORCA_UPDATE_OPENAPI=1`
//! rewrites the file). Response bodies of the large views (runs, tasks,
//! trees, agents, alerts) are described as objects: their fields are
//! documented in docs/api.md.

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::{actors, agents, alerts, events, fleet, health};

/// Every error: `{"error": {"code", "message", "details"?}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The error's machine-readable `code` (docs/api.md, "Errors"), its
/// message, and structured details for some codes.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[schema(required = false)]
    pub details: Option<serde_json::Value>,
}

/// A snake_case enum of orca's domain as a string enum, from its `ALL`.
macro_rules! enum_schema {
    ($name:ident, $ty:ty, $doc:literal) => {
        #[doc = $doc]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(<$ty>::ALL.iter().map(|v| v.as_str())))
                    .description(Some($doc))
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}

enum_schema!(
    AlertClass,
    orca_actors::model::AlertClass,
    "An alert's class."
);
enum_schema!(Verdict, orca_actors::model::Verdict, "A manual verdict.");

/// `POST /v1/alerts/test`'s body (`orca_actors::alert::probe::ProbeRequest`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AlertTestBody {
    /// An adapter's name in `[alerts]`, or a bare kind (`slack`, `webhook`,
    /// `pager_duty`).
    pub adapter: String,
    /// Default `run_completed`.
    #[schema(required = false)]
    pub class: AlertClass,
}

/// The agents' steering verbs.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SteerVerb {
    Pause,
    Resume,
    Retire,
    Tell,
    Approve,
    Deny,
}

/// The bearer token every route but `/healthz` and the agents' signed
/// webhooks needs.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`.orca/token` (the workspace's operator) or an attempt's `$ORCA_TOKEN`",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orca Runtime API",
        description = "The HTTP API of an orca daemon (`orca up`) or embedded run. See docs/api.md.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    paths(
        health::healthz,
        health::shutdown,
        fleet::list_runs,
        fleet::submit,
        fleet::get_run,
        fleet::run_workers,
        fleet::receipts,
        fleet::stop_run,
        fleet::pause_run,
        fleet::resume_run,
        fleet::get_task,
        super::logs::logs,
        fleet::verdict,
        fleet::get_worker,
        fleet::interrupt_worker,
        fleet::restart_worker,
        agents::list,
        agents::create,
        agents::show,
        agents::update,
        agents::explain,
        agents::journal,
        agents::steer,
        agents::tool,
        agents::whoami,
        agents::webhook,
        alerts::list,
        alerts::raise,
        alerts::test,
        actors::tree,
        actors::message,
        events::events,
        crate::console::mint_code,
        serve,
    ),
    components(schemas(ErrorBody, ErrorDetail, SteerVerb)),
    modifiers(&Security),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// The document, as served.
pub fn document() -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    serde_json::to_value(&doc).unwrap_or_default()
}

/// `GET /v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API", body = Object),
        (status = "default", description = "An error", body = ErrorBody),
    ),
)]
pub async fn serve() -> Json<serde_json::Value> {
    Json(document())
}
