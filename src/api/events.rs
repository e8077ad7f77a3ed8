//! `GET /v1/events?from=SEQ`: journal envelopes as server-sent events
//! (`id` = seq, `event` = type, `data` = the export JSON), resumable with
//! `Last-Event-ID`, with keep-alives. Events already written are read from
//! the files; new ones come from the journal's feed (subscribed first, so
//! nothing falls between the two). Streams end when the server stops.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use orca_actors::journal::{read, Envelope, ReadRange};
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;

use super::{ApiState, Query};

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    pub from: Option<u64>,
}

fn to_sse(env: &Envelope) -> SseEvent {
    SseEvent::default()
        .id(env.seq.to_string())
        .event(env.event.type_name())
        .data(env.export_json().to_string())
}

#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    summary = "Journal envelopes as server-sent events",
    params(("from" = Option<u64>, Query, description = "The first seq"), ("Last-Event-ID" = Option<String>, Header, description = "Resume after this seq")),
    responses((status = 200, description = "An event stream", body = String, content_type = "text/event-stream"), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn events(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|seq| seq + 1)
        .or(q.from)
        .unwrap_or(1)
        .max(1);
    let (tx, rx) = mpsc::channel::<SseEvent>(1024);
    let feed = s.services.journal.subscribe();
    let dir = s.services.journal.dir().to_path_buf();
    let mut closing = s.closing.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = closing.wait_for(|c| *c) => {}
            _ = pump(dir, from, feed, tx) => {}
        }
    });
    let stream =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Events from the files in `[from, …]`, in bounded chunks.
async fn read_chunk(dir: &std::path::Path, from: u64, max: Option<u64>) -> Vec<Envelope> {
    let d = dir.to_path_buf();
    tokio::task::spawn_blocking(move || -> Vec<Envelope> {
        let mut range = ReadRange::from(from);
        if let Some(m) = max {
            range = range.max(m);
        }
        match read(&d, range) {
            Ok(it) => it.filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        }
    })
    .await
    .unwrap_or_default()
}

/// Sends the files' events from `from`, then the feed's, until the client
/// goes away (a send fails) or the journal stops.
async fn pump(
    dir: PathBuf,
    from: u64,
    mut feed: broadcast::Receiver<Arc<[Envelope]>>,
    tx: mpsc::Sender<SseEvent>,
) {
    let mut next = from;
    loop {
        let chunk = read_chunk(&dir, next, Some(4096)).await;
        if chunk.is_empty() {
            break;
        }
        for env in &chunk {
            if tx.send(to_sse(env)).await.is_err() {
                return;
            }
            next = env.seq + 1;
        }
    }
    loop {
        let batch: Vec<Envelope> = match feed.recv().await {
            Ok(batch) => batch.iter().cloned().collect(),
            // Fell behind: read what was missed from the files.
            Err(RecvError::Lagged(_)) => read_chunk(&dir, next, None).await,
            Err(RecvError::Closed) => return,
        };
        for env in &batch {
            if env.seq < next {
                continue;
            }
            if tx.send(to_sse(env)).await.is_err() {
                return;
            }
            next = env.seq + 1;
        }
    }
}
