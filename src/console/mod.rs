//! The web console: static pages embedded in the binary (no build step, no
//! internet), served at `/` on the API's own address. A browser gets in
//! with a one-use code from `orca ui` and then holds an HttpOnly,
//! SameSite=Strict session cookie; the workspace token never reaches the
//! browser. The pages read and act through the same `/v1/*` routes the CLI
//! uses (the cookie is accepted there, CSRF-checked for anything but
//! reads), so every action goes through the one control layer and is
//! journaled with surface `web`. See docs/console.md.

pub mod auth;

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

pub use auth::ConsoleAuth;

use crate::api::{ApiError, ApiState, Principal};
use crate::daemon::info::constant_time_eq;

/// The Content-Security-Policy of every response: only this origin's
/// scripts, styles and connections; no inline script, no frames, no
/// plugins, forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// The header a cookie-authenticated state-changing request must carry,
/// holding the session's CSRF token (the page reads it from its `<meta>`).
pub const CSRF_HEADER: &str = "x-orca-csrf";

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The embedded assets: (path, content type, body). Public for the tests
/// and the bench (first-load bytes).
pub const ASSETS: &[(&str, &str, &str)] = &[
    ("/assets/app.js", "text/javascript; charset=utf-8", APP_JS),
    ("/assets/app.css", "text/css; charset=utf-8", APP_CSS),
];

/// The console's pages: every path outside `/v1/` and `/healthz`.
pub fn owns(path: &str) -> bool {
    path != "/healthz" && path != "/v1" && !path.starts_with("/v1/")
}

/// Marks a request authenticated by a console session (not the token).
#[derive(Clone, Debug)]
pub struct WebSession;

/// Security headers on every response of the server (pages, assets,
/// errors and `/v1/*` alike).
pub async fn headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// Serves a console path (called by the API's auth middleware, before any
/// `/v1` check): `/login` is open (it checks its code), everything else
/// needs a live session and answers 401 without one.
pub async fn serve(s: &ApiState, req: Request) -> Response {
    let now = Instant::now();
    let path = req.uri().path().to_string();
    if path == "/login" {
        return login(&s.console, &req, now);
    }
    let Some((id, session)) = cookie_session(&s.console, req.headers(), now) else {
        return page(
            StatusCode::UNAUTHORIZED,
            "Not signed in",
            "Run <code>orca ui</code> in the workspace and open the link it prints.",
        );
    };
    match (req.method().clone(), path.as_str()) {
        (Method::GET | Method::HEAD, "/" | "/index.html") => {
            let body = INDEX.replace("{{csrf}}", &session.csrf);
            (
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body,
            )
                .into_response()
        }
        (Method::POST, "/logout") => {
            if let Err(e) = csrf_ok(req.headers(), &session) {
                return e.into_response();
            }
            s.console.end(&id);
            let mut resp = page(
                StatusCode::OK,
                "Signed out",
                "Run <code>orca ui</code> to sign in again.",
            );
            if let Ok(v) = HeaderValue::from_str(&s.console.clear_cookie()) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        (Method::GET | Method::HEAD, p) => match ASSETS.iter().find(|(a, _, _)| *a == p) {
            Some((_, ctype, body)) => (
                [
                    (header::CONTENT_TYPE, *ctype),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                *body,
            )
                .into_response(),
            None => page(StatusCode::NOT_FOUND, "Not found", "No such page."),
        },
        _ => page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Not allowed",
            "This page does not take that method.",
        ),
    }
}

/// `GET /login?code=…`: a valid code opens a session (303 to `/` with the
/// cookie); an unknown, used or expired one answers 401.
fn login(auth: &ConsoleAuth, req: &Request, now: Instant) -> Response {
    let code = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("code="))
        .unwrap_or_default();
    match auth.login(code, now) {
        Ok(opened) => {
            let mut resp = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, "/"), (header::CACHE_CONTROL, "no-store")],
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&auth.set_cookie(&opened.id)) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => {
            tracing::info!(reason = %e, "console login refused");
            page(
                StatusCode::UNAUTHORIZED,
                "This link does not work",
                "A login link works once, for 60 seconds. Run <code>orca ui</code> again for a new one.",
            )
        }
    }
}

/// The session a request's cookie names, if it is live: (id, session).
fn cookie_session(
    auth: &ConsoleAuth,
    headers: &HeaderMap,
    now: Instant,
) -> Option<(String, auth::Session)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let id = auth.session_id(v)?;
            auth.session(id, now).map(|s| (id.to_string(), s))
        })
}

/// A `/v1/*` request without a bearer token: authenticated by a console
/// session cookie? State-changing methods must also pass [`csrf_ok`]. The
/// request is then journaled with surface `web` (any surface header the
/// browser sent is replaced).
pub fn session_principal(
    auth: &ConsoleAuth,
    req: &mut Request,
) -> Result<Option<Principal>, ApiError> {
    let Some((_, session)) = cookie_session(auth, req.headers(), Instant::now()) else {
        return Ok(None);
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        csrf_ok(req.headers(), &session)?;
    }
    req.headers_mut()
        .insert("x-orca-surface", HeaderValue::from_static("web"));
    req.extensions_mut().insert(WebSession);
    Ok(Some(Principal::Operator))
}

/// A cookie-authenticated state change must carry the session's CSRF token
/// in [`CSRF_HEADER`] (a cross-site form cannot set headers, and a
/// cross-site script cannot read the token), and come from this origin
/// when the browser says where it comes from.
fn csrf_ok(headers: &HeaderMap, session: &auth::Session) -> Result<(), ApiError> {
    let refused = |why: &str| ApiError::new(StatusCode::FORBIDDEN, "csrf", why.to_string());
    let token = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !constant_time_eq(token.as_bytes(), session.csrf.as_bytes()) {
        return Err(refused(
            "a request made with the console's cookie must carry its x-orca-csrf token",
        ));
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return Err(refused("cross-site requests are refused"));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if origin != format!("http://{host}") {
            return Err(refused("the request's Origin is not this server"));
        }
    }
    Ok(())
}

/// `POST /v1/console/codes`: a one-use login code and the URL that uses
/// it, for `orca ui`. Needs the workspace token itself: neither a console
/// session nor an attempt's token may mint one.
#[utoipa::path(
    post,
    path = "/v1/console/codes",
    tag = "console",
    summary = "A one-use console login code (the workspace token only)",
    responses((status = 200, description = "`{url, expires_in_seconds}`", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn mint_code(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    session: Option<Extension<WebSession>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if p != Principal::Operator || session.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "login codes are minted with the workspace token (orca ui)",
        ));
    }
    let code = s.console.mint(Instant::now());
    Ok(Json(json!({
        "url": format!("{}/login?code={code}", s.console.base_url),
        "expires_in_seconds": auth::CODE_TTL.as_secs(),
    })))
}

/// A small HTML page (no script) for the console's answers outside the
/// app: sign in, sign out, errors.
fn page(status: StatusCode, title: &str, body_html: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>orca · {title}</title></head><body><h1>{title}</h1><p>{body_html}</p></body></html>"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}
