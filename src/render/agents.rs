//! `orca agent list | show | explain | events` output (pure; `--json`
//! prints the same structures).

use std::fmt::Write as _;

use orca_actors::agent::explain::{AgentSummary, Explanation};
use orca_actors::journal::{Envelope, Event};
use orca_actors::path::ActorPath;

use super::{ellipsize, table};

/// One line per agent.
pub fn list(agents: &[AgentSummary]) -> String {
    if agents.is_empty() {
        return "no agents (create one with `orca agent create <spec>`)\n".into();
    }
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                a.lifecycle.as_str().to_string(),
                a.inbox.to_string(),
                a.next_timer
                    .map(|t| t.rfc3339())
                    .unwrap_or_else(|| "-".into()),
                format!("{} / {}", a.runs_running, a.runs),
                a.approvals.to_string(),
                a.wakes.to_string(),
                ellipsize(a.display_name.as_deref().unwrap_or(""), 40),
            ]
        })
        .collect();
    table(
        &[
            "AGENT",
            "STATE",
            "INBOX",
            "NEXT TIMER",
            "RUNS",
            "APPROVALS",
            "WAKES",
            "NAME",
        ],
        &rows,
    )
}

/// `orca agent explain`: what it watches, is doing, is blocked on, needs
/// approval for.
pub fn explain(e: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "agent {}{} — {}",
        e.agent,
        e.display_name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
        e.lifecycle.as_str()
    );
    if let Some(p) = &e.persona {
        let _ = writeln!(out, "persona: {p}");
    }
    let _ = writeln!(out, "\nwatching");
    if e.watching.is_empty() {
        let _ = writeln!(out, "  nothing (it wakes on `orca agent tell` only)");
    }
    for w in &e.watching {
        let _ = writeln!(
            out,
            "  {} ({}): {}{}",
            w.subscription,
            w.kind.as_str(),
            w.what,
            w.next
                .map(|t| format!(" — next {}", t.rfc3339()))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "\ndoing");
    match &e.doing {
        None => {
            let _ = writeln!(out, "  nothing");
        }
        Some(d) => {
            let _ = writeln!(
                out,
                "  wake {} (from {}) since {}",
                d.wake,
                d.source,
                d.since.rfc3339()
            );
            for i in &d.intents {
                let _ = writeln!(out, "    {i}");
            }
        }
    }
    for r in &e.runs_running {
        let _ = writeln!(out, "  run {r} running");
    }
    let _ = writeln!(out, "\nblocked on");
    if e.blocked_on.is_empty() {
        let _ = writeln!(out, "  nothing");
    }
    for b in &e.blocked_on {
        let _ = writeln!(out, "  {b}");
    }
    if !e.needs_approval.is_empty() {
        let _ = writeln!(out, "\nneeds approval");
        for a in &e.needs_approval {
            let _ = writeln!(
                out,
                "  {}: {}  (orca agent approve {} {} | orca agent deny …)",
                a.request, a.what, e.agent, a.request
            );
        }
    }
    let _ = writeln!(out, "\ninbox {} wake(s) waiting", e.inbox);
    for (id, due, text) in &e.commitments {
        let _ = writeln!(out, "commitment {id} due {}: {text}", due.rfc3339());
    }
    if !e.notes.is_empty() {
        let _ = writeln!(out, "\nrecent notes");
        for (at, n) in &e.notes {
            let _ = writeln!(out, "  {} {}", at.rfc3339(), ellipsize(n, 100));
        }
    }
    out
}

/// Whether a journal event is about agent `id`: its own events, and what
/// it raised or journaled as its actor.
pub fn is_agents_event(e: &Envelope, id: &str) -> bool {
    match &e.event {
        Event::Agent(a) => a.agent() == Some(id),
        _ => e.actor == ActorPath::Agent(id.to_string()).to_string(),
    }
}
