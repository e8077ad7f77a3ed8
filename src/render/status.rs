//! `orca status`: every run, or one run's counts.

use orca_actors::view::RunSummary;

use super::{seconds, table};

/// One line per run (newest first, as given).
pub fn runs(runs: &[RunSummary]) -> String {
    if runs.is_empty() {
        return "no runs yet: start one with `orca run <spec>`\n".into();
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let c = r.counts;
            vec![
                r.run.clone(),
                super::ellipsize(&r.name, 30),
                if r.unattended {
                    format!("{} (no orca)", r.status)
                } else {
                    r.status.to_string()
                },
                c.total().to_string(),
                c.passed.to_string(),
                (c.failed + c.timed_out).to_string(),
                c.partial.to_string(),
                c.running.to_string(),
                (c.queued + c.retrying).to_string(),
                r.submitted.rfc3339(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "RUN",
            "NAME",
            "STATUS",
            "TASKS",
            "PASSED",
            "FAILED",
            "PARTIAL",
            "RUNNING",
            "QUEUED",
            "SUBMITTED",
        ],
        &rows,
    );
    let unattended: Vec<&str> = runs
        .iter()
        .filter(|r| r.unattended)
        .map(|r| r.run.as_str())
        .collect();
    if let Some(first) = unattended.first() {
        out.push_str(&format!(
            "\nno orca process is running {}: `orca run --resume {first}` carries one on here, `orca up` every one in a daemon\n",
            match unattended.as_slice() {
                [one] => format!("run {one}"),
                many => format!("runs {}", many.join(", ")),
            }
        ));
    }
    out
}

/// One run's counts.
pub fn run(r: &RunSummary) -> String {
    let c = r.counts;
    let mut out = format!("run {}  {:?}  {}\n", r.run, r.name, r.status);
    if r.unattended {
        out.push_str(&format!(
            "orca         no orca process is running this run (orca crashed or was suspended): `orca run --resume {}` or `orca up` carries it on\n",
            r.run
        ));
    }
    out.push_str(&format!(
        "supervision  {}, {} restarts in {}; {} restart{} so far\n",
        r.strategy,
        r.max_restarts,
        seconds(r.within_ms as f64 / 1000.0),
        r.restarts,
        if r.restarts == 1 { "" } else { "s" }
    ));
    if let Some(p) = &r.parent {
        out.push_str(&format!("parent       {p} (depth {})\n", r.depth));
    }
    out.push_str(&format!("submitted    {}\n", r.submitted.rfc3339()));
    if let Some(f) = r.finished {
        out.push_str(&format!("finished     {}\n", f.rfc3339()));
    }
    out.push_str(&format!(
        "tasks        {}: queued {} · running {} · retrying {} · passed {} · partial {} · failed {} · timed out {} · cancelled {}\n",
        c.total(), c.queued, c.running, c.retrying, c.passed, c.partial, c.failed, c.timed_out, c.cancelled
    ));
    out.push_str(&format!(
        "attempts     restarted {} · stale {} · interrupted {} · escalated {}\n",
        c.restarted,
        c.stale,
        c.interrupted,
        if c.escalated > 0 { "yes" } else { "no" }
    ));
    out.push_str(&format!(
        "failures     transport {} · task {} · verifier {}\n",
        c.source_transport, c.source_task, c.source_verifier
    ));
    if r.spend.tokens > 0 || r.spend.cost_usd > 0.0 {
        out.push_str(&format!("usage        {}\n", spend_text(&r.spend)));
    }
    if let Some(why) = &r.budget_exceeded {
        out.push_str(&format!(
            "budget       exceeded: {why}; no new attempt is started\n"
        ));
    }
    if !r.alerts.is_empty() {
        let mut classes: Vec<&str> = r.alerts.iter().map(|a| a.class.as_str()).collect();
        classes.dedup();
        out.push_str(&format!("alerts       {}\n", classes.join(", ")));
    }
    out
}

/// A run's tokens and cost in a few words.
pub fn spend_text(s: &orca_actors::runtime::budget::RunSpend) -> String {
    let mut text = format!("{} tokens", s.tokens);
    if s.usage.tool_calls > 0 {
        text.push_str(&format!(" · {} tool calls", s.usage.tool_calls));
    }
    if s.cost_usd > 0.0 {
        text.push_str(&format!(" · ${:.4} (orca's prices)", s.cost_usd));
    }
    text
}
