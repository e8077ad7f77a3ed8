//! `GET /v1/events?from=SEQ`: journal envelopes as server-sent events
//! (`id` = seq, `event` = type, `data` = the export JSON), resumable with
//! `Last-Event-ID`, with keep-alives. Events already written are read from
//! the files; new ones come from the [`EventFeed`] (subscribed first, so
//! nothing falls between the two), which encodes each journal event once
//! for every subscriber. Streams end when the server stops.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use orca_actors::journal::{read, Envelope, JournalHandle, ReadRange};
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;

use super::{ApiState, Query};

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    pub from: Option<u64>,
}

/// Batches the encoded feed holds for a slow subscriber (as the journal's).
const FEED_CAPACITY: usize = 4096;

/// One journal envelope encoded for the event stream: its seq, type and
/// export JSON.
#[derive(Clone, Debug)]
pub struct Encoded {
    seq: u64,
    kind: &'static str,
    data: Arc<str>,
}

impl Encoded {
    fn of(env: &Envelope) -> Self {
        Self {
            seq: env.seq,
            kind: env.event.type_name(),
            data: env.export_json().to_string().into(),
        }
    }

    fn to_sse(&self) -> SseEvent {
        SseEvent::default()
            .id(self.seq.to_string())
            .event(self.kind)
            .data(&*self.data)
    }
}

/// The journal's feed encoded once for every event-stream subscriber (100
/// subscribers no longer serialize each event 100 times). One task follows
/// the journal's feed, in seq order with no gap — what it missed by
/// falling behind it reads from the files — and encodes each batch only
/// while someone listens: a subscriber reads the files up to their end
/// before taking batches from here, so a batch nobody heard is never
/// missed.
#[derive(Clone, Debug)]
pub struct EventFeed {
    tx: broadcast::Sender<Arc<[Encoded]>>,
}

impl EventFeed {
    /// Starts following `journal` (the task ends when the journal's feed
    /// closes).
    pub fn start(journal: &JournalHandle) -> Self {
        let (tx, _) = broadcast::channel(FEED_CAPACITY);
        let mut feed = journal.subscribe();
        let dir = journal.dir().to_path_buf();
        let out = tx.clone();
        // Everything up to here is in the files, where subscribers start.
        let mut next = journal.last_seq() + 1;
        tokio::spawn(async move {
            loop {
                let batch: Vec<Envelope> = match feed.recv().await {
                    Ok(batch) => {
                        if out.receiver_count() == 0 {
                            if let Some(last) = batch.last() {
                                next = last.seq + 1;
                            }
                            continue;
                        }
                        batch.iter().filter(|e| e.seq >= next).cloned().collect()
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Fell behind: what was missed is in the files.
                        let mut missed = Vec::new();
                        loop {
                            let chunk = read_chunk(&dir, next, Some(4096)).await;
                            let Some(last) = chunk.last() else { break };
                            next = last.seq + 1;
                            missed.extend(chunk);
                        }
                        missed
                    }
                    Err(RecvError::Closed) => return,
                };
                if let Some(last) = batch.last() {
                    next = last.seq + 1;
                    let encoded: Arc<[Encoded]> = batch.iter().map(Encoded::of).collect();
                    let _ = out.send(encoded);
                }
            }
        });
        Self { tx }
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<[Encoded]>> {
        self.tx.subscribe()
    }
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
    let feed = s.events.subscribe();
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

/// Sends the files' events from `next` on, in bounded chunks, until their
/// end; `None` once the client went away.
async fn from_files(
    dir: &std::path::Path,
    mut next: u64,
    tx: &mpsc::Sender<SseEvent>,
) -> Option<u64> {
    loop {
        let chunk = read_chunk(dir, next, Some(4096)).await;
        if chunk.is_empty() {
            return Some(next);
        }
        for env in &chunk {
            tx.send(Encoded::of(env).to_sse()).await.ok()?;
            next = env.seq + 1;
        }
    }
}

/// Sends the files' events from `from`, then the feed's, until the client
/// goes away (a send fails) or the journal stops.
async fn pump(
    dir: PathBuf,
    from: u64,
    mut feed: broadcast::Receiver<Arc<[Encoded]>>,
    tx: mpsc::Sender<SseEvent>,
) {
    let Some(mut next) = from_files(&dir, from, &tx).await else {
        return;
    };
    loop {
        match feed.recv().await {
            Ok(batch) => {
                for e in batch.iter() {
                    if e.seq < next {
                        continue;
                    }
                    if tx.send(e.to_sse()).await.is_err() {
                        return;
                    }
                    next = e.seq + 1;
                }
            }
            // Fell behind: read what was missed from the files.
            Err(RecvError::Lagged(_)) => match from_files(&dir, next, &tx).await {
                Some(n) => next = n,
                None => return,
            },
            Err(RecvError::Closed) => return,
        }
    }
}
