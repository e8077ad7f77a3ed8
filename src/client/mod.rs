//! Finding the running daemon (or embedded `orca run`) of a workspace and
//! talking HTTP to it. Proxies are disabled: an `HTTP(S)_PROXY` in the
//! environment must never capture loopback calls.

use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use orca_actors::journal::Envelope;
use orca_actors::workspace::Workspace;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::daemon::info::{self, DaemonInfo};
use crate::exit;

/// A connection to a running orca.
#[derive(Clone, Debug)]
pub struct Client {
    pub info: DaemonInfo,
    token: String,
    http: reqwest::Client,
}

/// An error the API answered with.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

impl Client {
    /// The running orca of `ws`, if any (a stale `daemon.json` is
    /// recognised through the workspace lock and removed).
    pub fn find(ws: &Workspace) -> anyhow::Result<Option<Client>> {
        let Some(info) = info::live(ws) else {
            return Ok(None);
        };
        let token = info::read_token(&ws.token_path())?;
        Ok(Some(Self::new(info, token)?))
    }

    pub fn new(info: DaemonInfo, token: String) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client { info, token, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.info.url())
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let resp = req
            .bearer_auth(&self.token)
            .header("x-orca-surface", "cli")
            .send()
            .await
            .with_context(|| format!("cannot reach orca at {}", self.info.url()))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let e = &body["error"];
        let failure = ApiFailure {
            status,
            code: e["code"].as_str().unwrap_or("unknown").to_string(),
            message: e["message"]
                .as_str()
                .unwrap_or("the request failed")
                .to_string(),
            details: e.get("details").cloned(),
        };
        // Input problems (bad names, invalid specs, unaccepted messages)
        // exit 2, like the offline commands.
        if matches!(status, 400 | 404 | 409 | 422) {
            return Err(exit::InvalidInput {
                message: failure.message,
                code: failure.code,
                details: failure.details,
            }
            .into());
        }
        Err(failure.into())
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let resp = self.send(self.http.get(self.url(path))).await?;
        resp.json().await.context("unexpected answer from orca")
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: Value) -> anyhow::Result<T> {
        let resp = self
            .send(self.http.post(self.url(path)).json(&body))
            .await?;
        resp.json().await.context("unexpected answer from orca")
    }

    /// Posts raw text (a spec) with a content type.
    pub async fn post_text<T: DeserializeOwned>(
        &self,
        path: &str,
        text: String,
        content_type: &str,
    ) -> anyhow::Result<T> {
        let req = self.http.post(self.url(path));
        self.send_text(req, text, content_type).await
    }

    /// Puts raw text (an agent spec) with a content type.
    pub async fn put_text<T: DeserializeOwned>(
        &self,
        path: &str,
        text: String,
        content_type: &str,
    ) -> anyhow::Result<T> {
        let req = self.http.put(self.url(path));
        self.send_text(req, text, content_type).await
    }

    async fn send_text<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        text: String,
        content_type: &str,
    ) -> anyhow::Result<T> {
        let req = req
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(text);
        let resp = self.send(req).await?;
        resp.json().await.context("unexpected answer from orca")
    }

    /// The journal's events from `from` on, typed (the server sends the
    /// export JSON of each envelope), until the stream ends.
    pub async fn events(
        &self,
        from: u64,
    ) -> anyhow::Result<impl futures::Stream<Item = anyhow::Result<Envelope>> + use<>> {
        let resp = self
            .send(self.http.get(self.url(&format!("/v1/events?from={from}"))))
            .await?;
        let bytes = resp.bytes_stream();
        Ok(futures::stream::unfold(
            (bytes, Vec::<u8>::new()),
            |(mut bytes, mut buf)| async move {
                loop {
                    // One event ends at a blank line.
                    if let Some(end) = find_blank_line(&buf) {
                        let block: Vec<u8> = buf.drain(..end).collect();
                        if let Some(data) = sse_data(&block) {
                            let env = serde_json::from_str::<Value>(&data)
                                .map_err(|e| e.to_string())
                                .and_then(|v| Envelope::from_export_json(&v))
                                .map_err(|e| anyhow::anyhow!("a malformed event from orca: {e}"));
                            return Some((env, (bytes, buf)));
                        }
                        continue;
                    }
                    match bytes.next().await {
                        Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                        Some(Err(e)) => {
                            return Some((
                                Err(anyhow::anyhow!("the event stream broke: {e}")),
                                (bytes, buf),
                            ))
                        }
                        None => return None,
                    }
                }
            },
        ))
    }
}

/// The end of the first SSE block (after its blank line), if complete.
fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}

/// The `data:` lines of an SSE block, joined (keep-alive comments have
/// none).
fn sse_data(block: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(block);
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_blocks() {
        let buf = b"id: 3\nevent: TaskEnqueued\ndata: {\"seq\":3}\n\n: keep-alive\n\n";
        let end = find_blank_line(buf).unwrap();
        assert_eq!(sse_data(&buf[..end]).as_deref(), Some("{\"seq\":3}"));
        assert_eq!(sse_data(&buf[end..]), None);
    }
}
