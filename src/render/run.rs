//! `orca run`: the live line of counts and the final table of results.

use std::time::Duration;

use orca_actors::view::RunSummary;

use super::{ellipsize, table};

/// `1.2s`, `3m04s`, `1h02m`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// One line of counts, like a progress bar (no card per worker).
pub fn progress_line(
    run: &str,
    c: &orca_actors::run::state::Counts,
    status: orca_actors::model::RunStatus,
    elapsed: Duration,
    width: usize,
) -> String {
    let total = c.total().max(1);
    let done = c.finished();
    let bar_w = 20usize;
    let filled = (done as usize * bar_w) / total as usize;
    let mut parts = vec![format!(
        "{run}  [{}{}]  {done}/{}",
        "#".repeat(filled),
        ".".repeat(bar_w - filled),
        c.total()
    )];
    for (n, label) in [
        (c.running, "running"),
        (c.queued, "queued"),
        (c.retrying, "retrying"),
        (c.passed, "passed"),
        (c.partial, "partial"),
        (c.failed, "failed"),
        (c.timed_out, "timed out"),
        (c.cancelled, "skipped"),
    ] {
        if n > 0 {
            parts.push(format!("{label} {n}"));
        }
    }
    if status == orca_actors::model::RunStatus::Paused {
        parts.push("PAUSED".into());
    }
    parts.push(duration(elapsed));
    ellipsize(&parts.join("  "), width.max(20))
}

/// The final table of task results and a closing line.
pub fn results(r: &RunSummary) -> String {
    let rows: Vec<Vec<String>> = r
        .tasks
        .iter()
        .map(|t| {
            let receipt = t.receipt.as_ref();
            vec![
                t.id.clone(),
                match (t.phase.as_str(), t.result) {
                    ("finished", Some(res)) => res.as_str().to_string(),
                    ("finished", None) => "skip".into(),
                    ("backoff", _) => "retrying".into(),
                    (phase, _) => phase.to_string(),
                },
                t.attempts.to_string(),
                receipt
                    .map(|r| duration(Duration::from_millis(r.duration_ms)))
                    .unwrap_or_else(|| "-".into()),
                receipt
                    .map(|r| r.worker.clone())
                    .unwrap_or_else(|| "-".into()),
                receipt
                    .map(|r| ellipsize(&r.summary, 70))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "TASK", "RESULT", "ATTEMPTS", "DURATION", "WORKER", "SUMMARY",
        ],
        &rows,
    );
    let c = r.counts;
    let took = match r.finished {
        Some(f) => format!(
            " in {}",
            duration(Duration::from_millis(f.millis_since(r.submitted)))
        ),
        None => String::new(),
    };
    out.push_str(&format!(
        "\nrun {} {}: {} passed, {} failed, {} timed out, {} awaiting a verdict, {} skipped; {} restart{}{took}\n",
        r.run,
        r.status,
        c.passed,
        c.failed,
        c.timed_out,
        c.partial,
        c.cancelled,
        r.restarts,
        if r.restarts == 1 { "" } else { "s" }
    ));
    out
}
