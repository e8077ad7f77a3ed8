//! `GET /v1/events?from=SEQ`: journal envelopes as server-sent events
//! (`id` = seq, `event` = type, `data` = the export JSON), resumable with
//! `Last-Event-ID`, with keep-alives. Events already written are read from
//! the files; new ones come from the journal's feed (subscribed first, so
//! nothing falls between the two).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use orca_actors::journal::{read, Envelope, ReadRange};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::ApiState;

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
    let mut feed = s.services.journal.subscribe();
    let dir = s.services.journal.dir().to_path_buf();
    tokio::spawn(async move {
        // Catch up from the files (in bounded chunks), then follow the feed.
        let mut next = from;
        loop {
            let d = dir.clone();
            let chunk = tokio::task::spawn_blocking(move || -> Vec<Envelope> {
                match read(&d, ReadRange::from(next).max(4096)) {
                    Ok(it) => it.filter_map(Result::ok).collect(),
                    Err(_) => Vec::new(),
                }
            })
            .await
            .unwrap_or_default();
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
            match feed.recv().await {
                Ok(batch) => {
                    for env in batch.iter() {
                        if env.seq < next {
                            continue;
                        }
                        if tx.send(to_sse(env)).await.is_err() {
                            return;
                        }
                        next = env.seq + 1;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // Fell behind: read what was missed from the files.
                    let d = dir.clone();
                    let from = next;
                    let missed = tokio::task::spawn_blocking(move || -> Vec<Envelope> {
                        match read(&d, ReadRange::from(from)) {
                            Ok(it) => it.filter_map(Result::ok).collect(),
                            Err(_) => Vec::new(),
                        }
                    })
                    .await
                    .unwrap_or_default();
                    for env in &missed {
                        if tx.send(to_sse(env)).await.is_err() {
                            return;
                        }
                        next = env.seq + 1;
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    let stream =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
