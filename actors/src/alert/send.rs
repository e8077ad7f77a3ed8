//! The HTTP side: POSTs a built [`Request`] with reqwest (rustls), a 10 s
//! timeout, no proxies and no redirects, and reports a typed
//! [`DeliveryOutcome`] whose text is scrubbed of the URL and every secret.
//!
//! A URL must be `https://`, or `http://` to a loopback address; anything
//! else is refused before a connection is made, naming the adapter and the
//! env var (never the URL).

use std::time::Duration;

use super::config::ResolvedAdapter;
use super::endpoint::{self, EndpointProblem};
use super::payload::{self, Notification, Request, CLIENT};
use super::router::{DeliveryOutcome, NetworkErrorKind};
use super::secret::{scrub, Credentials, EnvLookup};
use crate::model::Timestamp;

/// Every request gives up after this long.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of a response body read (for the journaled error).
pub const BODY_READ_MAX: usize = 4096;
/// Characters of a response body kept in the outcome.
pub const BODY_EXCERPT_MAX: usize = 200;

/// The sender could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Sends requests. Cheap to clone (one connection pool).
#[derive(Clone, Debug)]
pub struct Sender {
    client: reqwest::Client,
}

impl Sender {
    /// A sender with the 10 s timeout.
    pub fn new() -> Result<Self, SendError> {
        Self::with_timeout(TIMEOUT)
    }

    /// A sender with another timeout (tests).
    pub fn with_timeout(timeout: Duration) -> Result<Self, SendError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(format!("{CLIENT}/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Client(scrub(&e.to_string(), &[])))?;
        Ok(Self { client })
    }

    /// POSTs `req`. Never fails: every problem is an outcome.
    pub async fn post(&self, req: &Request) -> DeliveryOutcome {
        if let Err(problem) = endpoint::check(req.url()) {
            return DeliveryOutcome::Refused {
                error: refused_url(req, problem),
            };
        }
        let mut builder = self.client.post(req.url()).body(req.body.clone());
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let secrets = req.secrets();
        match builder.send().await {
            Ok(mut resp) => {
                let code = resp.status().as_u16();
                let retry_after_ms = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, Timestamp::now()));
                let mut bytes = Vec::new();
                while bytes.len() < BODY_READ_MAX {
                    match resp.chunk().await {
                        Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                bytes.truncate(BODY_READ_MAX);
                let text = String::from_utf8_lossy(&bytes);
                let one_line: String = text
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                DeliveryOutcome::Status {
                    code,
                    retry_after_ms,
                    body: payload::truncate_chars(
                        scrub(one_line.trim(), &secrets).as_str(),
                        BODY_EXCERPT_MAX,
                    ),
                }
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    NetworkErrorKind::Timeout
                } else if e.is_connect() {
                    NetworkErrorKind::Connect
                } else {
                    NetworkErrorKind::Transport
                };
                DeliveryOutcome::Network {
                    kind,
                    error: scrub(&error_chain(e.without_url()), &secrets),
                }
            }
        }
    }
}

fn refused_url(req: &Request, problem: EndpointProblem) -> String {
    match req.url_env() {
        Some(env) => format!(
            "adapter `{}`: the URL in {env} is refused: {problem}",
            req.adapter
        ),
        None => format!(
            "adapter `{}`: the endpoint is refused: {problem}",
            req.adapter
        ),
    }
}

/// An error and its sources, `: `-joined (reqwest's own text is terse).
fn error_chain(e: reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// `Retry-After` as milliseconds from `now`: delay-seconds, or an
/// HTTP-date (a date in the past is 0).
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<u64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let at = Timestamp::from_datetime(at.with_timezone(&chrono::Utc));
    Some(at.millis_since(now))
}

/// Everything a `Send` effect needs: reads the adapter's secrets from
/// `env`, builds the request (signing webhooks), checks the URL and POSTs.
pub async fn deliver(
    sender: &Sender,
    adapter: &ResolvedAdapter,
    notification: &Notification,
    env: &dyn EnvLookup,
    now: Timestamp,
) -> DeliveryOutcome {
    let creds = match Credentials::resolve(&adapter.name, &adapter.spec, env) {
        Ok(c) => c,
        Err(errors) => {
            return DeliveryOutcome::Refused {
                error: errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        }
    };
    match payload::request(&adapter.name, &adapter.spec, &creds, notification, now) {
        Ok(req) => sender.post(&req).await,
        Err(e) => DeliveryOutcome::Refused {
            error: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
