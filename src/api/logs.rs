//! `GET /v1/fleet/runs/{run}/tasks/{task}/logs?attempt=&stream=&tail=&from=`:
//! an attempt's log, bounded, as `orca logs --json` prints it (the same
//! excerpt type, read the same way). `from` asks only for what was written
//! after a byte offset (a console's live tail), still at most `tail` bytes.

use axum::extract::State;
use axum::Json;
use orca_actors::journal::event::LogStream;
use orca_actors::view::find_task;
use serde::Deserialize;

use super::{ApiError, ApiState, Path, Query};
use crate::render::inspect::{strip_ansi, LogExcerpt};

/// The default and the largest excerpt, in bytes.
const DEFAULT_TAIL: u64 = 64 * 1024;
const MAX_TAIL: u64 = 1024 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct LogsQuery {
    /// The attempt (default: the task's latest).
    pub attempt: Option<u32>,
    /// `stdout` (default) or `stderr`.
    pub stream: Option<String>,
    /// At most this many bytes (the file's end).
    pub tail: Option<u64>,
    /// Only bytes from this offset on.
    pub from: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/v1/fleet/runs/{run_id}/tasks/{task_id}/logs",
    tag = "fleet",
    summary = "An attempt's log, bounded",
    params(
        ("run_id" = String, Path, description = "A run id or a unique prefix"),
        ("task_id" = String, Path, description = "A task id or a unique prefix"),
        ("attempt" = Option<u32>, Query, description = "The attempt (default: the latest)"),
        ("stream" = Option<String>, Query, description = "stdout (default) or stderr"),
        ("tail" = Option<u64>, Query, description = "At most this many bytes, from the end"),
        ("from" = Option<u64>, Query, description = "Only bytes from this offset on"),
    ),
    responses((status = 200, description = "The excerpt, as `orca logs --json` prints it", body = Object), (status = "default", description = "An error (docs/api.md, \"Errors\")", body = crate::api::openapi::ErrorBody)),
)]
pub async fn logs(
    State(s): State<ApiState>,
    Path((run_id, task_id)): Path<(String, String)>,
    Query(q): Query<LogsQuery>,
) -> Result<Json<LogExcerpt>, ApiError> {
    let stream = match q.stream.as_deref().unwrap_or("stdout") {
        "stdout" => LogStream::Stdout,
        "stderr" => LogStream::Stderr,
        other => {
            return Err(ApiError::bad_request(format!(
                "stream: expected stdout or stderr, got {other:?}"
            )))
        }
    };
    let (run, task, n, live, capped) = s.view.read(|v| {
        let r = v.find_run(&run_id)?;
        let t = find_task(r, &task_id)?;
        let a = match q.attempt {
            Some(n) => t.attempt(n),
            None => t.current(),
        }
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "task {} has no attempt {}",
                t.id,
                q.attempt
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "yet".into())
            ))
        })?;
        Ok::<_, ApiError>((
            r.run.clone(),
            t.id.clone(),
            a.n,
            a.is_live(),
            a.logs_capped.contains(&stream),
        ))
    })?;
    let name = match stream {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
    };
    let ws = s.services.ws.clone();
    let file = ws.attempt_dir(&run, &task, n).join(format!("{name}.log"));
    let tail = q.tail.unwrap_or(DEFAULT_TAIL).clamp(1, MAX_TAIL);
    let f = file.clone();
    let (offset, size, bytes) =
        tokio::task::spawn_blocking(move || crate::cli::read::read_tail(&f, tail))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    // Only what follows `from` (the caller has the rest).
    let (offset, bytes) = match q.from {
        Some(from) if from > offset => {
            let skip = usize::try_from(from - offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            (offset + skip as u64, bytes[skip..].to_vec())
        }
        _ => (offset, bytes),
    };
    Ok(Json(LogExcerpt {
        run,
        task,
        attempt: n,
        stream: name.into(),
        path: file
            .strip_prefix(ws.root())
            .unwrap_or(&file)
            .display()
            .to_string(),
        size,
        offset,
        capped,
        live,
        text: strip_ansi(&String::from_utf8_lossy(&bytes)),
    }))
}
