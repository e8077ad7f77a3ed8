//! `orca alert list` and `orca alert test` output (pure; `--json` prints
//! the same structures).

use std::fmt::Write as _;

use orca_actors::alert::probe::ProbeReport;
use orca_actors::alert::view::{AlertEntry, AlertList, AlertState};
use orca_actors::alert::AlertSource;

use super::{ellipsize, table};

/// Where one alert's delivery stands, in a few words.
fn delivery(a: &AlertEntry) -> String {
    if a.state == AlertState::Suppressed {
        return format!("suppressed: {}", a.why.as_deref().unwrap_or("?"));
    }
    if a.deliveries.is_empty() {
        return match a.state {
            AlertState::Grouped => "waiting in its group window".into(),
            _ => "not routed yet".into(),
        };
    }
    a.deliveries
        .iter()
        .map(|d| {
            let status = d.status.map(|s| format!(" {s}")).unwrap_or_default();
            let tries = if d.attempts > 1 {
                format!(" ({} tries)", d.attempts)
            } else {
                String::new()
            };
            let kind = if d.kind.as_str() == "trigger" {
                String::new()
            } else {
                format!(" [{}]", d.kind.as_str())
            };
            format!("{} {}{status}{tries}{kind}", d.adapter, d.outcome)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The alerts table and the router's counters.
pub fn list(l: &AlertList) -> String {
    let mut out = String::new();
    if l.alerts.is_empty() {
        out.push_str("no alerts raised\n");
    } else {
        let rows: Vec<Vec<String>> = l
            .alerts
            .iter()
            .map(|a| {
                let r = &a.alert;
                vec![
                    r.at.to_datetime().format("%m-%d %H:%M:%S").to_string(),
                    r.class.as_str().to_string(),
                    match &r.source {
                        AlertSource::Run { run } => run.clone(),
                        AlertSource::Agent { agent } => format!("agent {agent}"),
                        AlertSource::Operator { by } => format!("operator ({by})"),
                    },
                    r.task.clone().unwrap_or_else(|| "-".into()),
                    match a.cleared {
                        Some(c) => format!("{} (cleared: {})", a.state.as_str(), c.as_str()),
                        None => a.state.as_str().to_string(),
                    },
                    ellipsize(&delivery(a), 70),
                ]
            })
            .collect();
        out.push_str(&table(
            &["RAISED", "CLASS", "RUN", "TASK", "STATE", "DELIVERY"],
            &rows,
        ));
    }
    let _ = writeln!(
        out,
        "\nqueue {} · last delivery {} · {} failed for good",
        l.queue,
        l.last_delivery
            .map(|t| t.rfc3339())
            .unwrap_or_else(|| "never".into()),
        l.failures
    );
    out
}

/// How `orca alert test` went; `sender` says which process sent it.
pub fn probe(r: &ProbeReport, sender: &str) -> String {
    let mut out = String::new();
    if r.delivered {
        let _ = writeln!(
            out,
            "delivered: adapter `{}` ({}) answered HTTP {} in {} ms (sent by {sender}; webhook-id {})",
            r.adapter,
            r.kind.as_str(),
            r.status.unwrap_or_default(),
            r.elapsed_ms,
            r.notification
        );
    } else {
        let _ = writeln!(
            out,
            "not delivered: adapter `{}` ({}): {} (sent by {sender})",
            r.adapter,
            r.kind.as_str(),
            r.error.as_deref().unwrap_or("unknown error")
        );
    }
    out
}
