//! The soak's invariants: pure functions over what the soak gathered (the
//! journal's events, the workers' own effect log, a /proc scan, what the
//! capture server received, the output of `orca journal verify` and of the
//! read commands). Each returns a [`Check`]; none touches a process or a
//! file, so each is unit-tested with made-up evidence below.

use std::collections::{BTreeMap, BTreeSet};

use orca_actors::agent::events::{AgentEvent, IntentAction, IntentOutcome};
use orca_actors::alert::events::AlertEvent;
use orca_actors::journal::event::InterruptCause;
use orca_actors::journal::{Envelope, Event};
use orca_actors::model::{AttemptRef, AttemptResult, RunStatus};
use serde::Serialize;

/// One invariant's verdict.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// What was counted, and on failure what broke (bounded).
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, problems: &[String], counted: String) -> Check {
        let ok = problems.is_empty();
        let detail = if ok {
            counted
        } else {
            let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
            let more = problems.len().saturating_sub(shown.len());
            let tail = if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            };
            format!("{}; {}{tail}", counted, shown.join("; "))
        };
        Check { name, ok, detail }
    }
}

/// A line a worker appended to the effect log when its work was done:
/// its `ORCA_ATTEMPT_ID` (`run:task:n`).
pub type Effect = String;

/// A live process carrying `ORCA_ATTEMPT_ID`, where it was seen.
#[derive(Clone, Debug, PartialEq)]
pub struct Leftover {
    /// `local` or `ssh`.
    pub scan: &'static str,
    pub pid: i32,
    pub attempt_id: String,
    pub run_id: String,
}

/// One request the capture server received: its `webhook-id` and the ids of
/// the alerts its body carried.
#[derive(Clone, Debug, PartialEq)]
pub struct Captured {
    pub webhook_id: String,
    pub alerts: Vec<String>,
}

fn task_key(run: &str, task: &str) -> (String, String) {
    (run.to_string(), task.to_string())
}

/// Every enqueued task has exactly one `TaskFinished`, a receipt for its
/// final attempt, and (a manual scorer's) no verdict still awaited.
pub fn one_final_receipt(events: &[Envelope]) -> Check {
    let mut enqueued: BTreeSet<(String, String)> = BTreeSet::new();
    let mut finished: BTreeMap<(String, String), Vec<u32>> = BTreeMap::new();
    let mut receipts: BTreeMap<AttemptRef, AttemptResult> = BTreeMap::new();
    let mut verdicts: BTreeSet<AttemptRef> = BTreeSet::new();
    for e in events {
        match &e.event {
            Event::TaskEnqueued { run, task, .. } => {
                enqueued.insert(task_key(run, task));
            }
            Event::TaskFinished {
                run,
                task,
                final_attempt,
                ..
            } => finished
                .entry(task_key(run, task))
                .or_default()
                .push(*final_attempt),
            Event::ReceiptRecorded(r) => {
                receipts.insert(AttemptRef::new(&r.run, &r.task, r.attempt), r.result);
            }
            Event::VerdictRecorded { attempt, .. } => {
                verdicts.insert(attempt.clone());
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    let mut awaiting = 0;
    for (run, task) in &enqueued {
        let f = finished
            .get(&(run.clone(), task.clone()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        match f {
            [] => problems.push(format!("{run}/{task}: no final receipt")),
            [n] => {
                let a = AttemptRef::new(run, task, *n);
                match receipts.get(&a) {
                    None => problems.push(format!("{a}: finished without a receipt")),
                    Some(AttemptResult::Partial) if !verdicts.contains(&a) => {
                        awaiting += 1;
                        problems.push(format!("{a}: still awaits its verdict"));
                    }
                    Some(_) => {}
                }
            }
            more => problems.push(format!(
                "{run}/{task}: {} final receipts (attempts {more:?})",
                more.len()
            )),
        }
    }
    for (run, task) in finished.keys() {
        if !enqueued.contains(&(run.clone(), task.clone())) {
            problems.push(format!("{run}/{task}: finished but never enqueued"));
        }
    }
    let counted = format!(
        "{} tasks, {} final receipts, {} verdicts, {awaiting} awaiting",
        enqueued.len(),
        finished.values().map(Vec::len).sum::<usize>(),
        verdicts.len()
    );
    Check::new("one final receipt per task", &problems, counted)
}

/// Every run the soak was given an id for is journaled, and every
/// journaled run ended (with every task finished: see
/// [`one_final_receipt`]).
pub fn no_task_lost(events: &[Envelope], acked_runs: &[String]) -> Check {
    let mut submitted: BTreeSet<&str> = BTreeSet::new();
    let mut last: BTreeMap<&str, RunStatus> = BTreeMap::new();
    for e in events {
        match &e.event {
            Event::RunSubmitted(s) => {
                submitted.insert(s.run.as_str());
            }
            Event::RunFinished { run, status } => {
                last.insert(run.as_str(), *status);
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    for r in acked_runs {
        if !submitted.contains(r.as_str()) {
            problems.push(format!(
                "run {r} was acknowledged but is not in the journal"
            ));
        }
    }
    for r in &submitted {
        match last.get(r) {
            None => problems.push(format!("run {r} never ended")),
            Some(RunStatus::AwaitingVerdict) => {}
            Some(s) if !s.is_terminal() => problems.push(format!("run {r} ended {s}")),
            Some(_) => {}
        }
    }
    let counted = format!(
        "{} runs acknowledged, {} journaled, {} ended",
        acked_runs.len(),
        submitted.len(),
        last.len()
    );
    Check::new("no task lost", &problems, counted)
}

/// What the at-least-once window allows: an attempt's work may be done
/// again only when the attempt that did it first was interrupted by
/// orca's crash before its end was journaled (docs/architecture.md,
/// "Crash resume"). So every effect comes from a journaled attempt, each
/// attempt does its work at most once, and an effect by an attempt other
/// than the task's final one belongs to an attempt journaled
/// `AttemptInterrupted { OrcaCrash }`. No attempt is started twice.
pub fn at_least_once_window(events: &[Envelope], effects: &[Effect]) -> (Check, usize) {
    let mut started: BTreeMap<String, usize> = BTreeMap::new();
    // Attempts the journal knows of: started, or ended by orca (an attempt
    // spawned just before a kill may have no `AttemptStarted`: its end is
    // journaled after the restart, and its processes are found by
    // `ORCA_ATTEMPT_ID`).
    let mut known: BTreeSet<String> = BTreeSet::new();
    let mut crashed: BTreeSet<String> = BTreeSet::new();
    let mut final_of: BTreeMap<(String, String), u32> = BTreeMap::new();
    for e in events {
        match &e.event {
            Event::AttemptStarted { attempt, .. } => {
                *started.entry(attempt.to_string()).or_default() += 1;
                known.insert(attempt.to_string());
            }
            Event::AttemptFinished { attempt, .. } => {
                known.insert(attempt.to_string());
            }
            Event::AttemptInterrupted { attempt, cause } => {
                known.insert(attempt.to_string());
                if *cause == InterruptCause::OrcaCrash {
                    crashed.insert(attempt.to_string());
                }
            }
            Event::TaskFinished {
                run,
                task,
                final_attempt,
                ..
            } => {
                final_of.insert(task_key(run, task), *final_attempt);
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    for (a, n) in &started {
        if *n > 1 {
            problems.push(format!("attempt {a} started {n} times"));
        }
    }
    let mut per_attempt: BTreeMap<&str, usize> = BTreeMap::new();
    for e in effects {
        *per_attempt.entry(e.as_str()).or_default() += 1;
    }
    let mut per_task: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (a, n) in &per_attempt {
        if *n > 1 {
            problems.push(format!("attempt {a} did its work {n} times"));
        }
        let Some((run, task, num)) = split_attempt_id(a) else {
            problems.push(format!("effect from a malformed attempt id {a:?}"));
            continue;
        };
        if !known.contains(*a) {
            problems.push(format!(
                "effect from attempt {a}, of which the journal has no trace"
            ));
            continue;
        }
        *per_task.entry(task_key(run, task)).or_default() += 1;
        let is_final = final_of.get(&task_key(run, task)) == Some(&num);
        if !is_final && !crashed.contains(*a) {
            problems.push(format!(
                "attempt {a} did its work but is neither the final attempt nor interrupted by a crash"
            ));
        }
    }
    let again = per_task.values().filter(|n| **n > 1).count();
    let counted = format!(
        "{} attempts started, {} effects, {} attempts interrupted by a crash, {again} tasks redone inside the window",
        started.len(),
        effects.len(),
        crashed.len()
    );
    (
        Check::new(
            "none run twice beyond the at-least-once window",
            &problems,
            counted,
        ),
        again,
    )
}

/// `run:task:n` → its parts (task ids hold no colon; run ids neither).
pub fn split_attempt_id(id: &str) -> Option<(&str, &str, u32)> {
    let (rest, n) = id.rsplit_once(':')?;
    let (run, task) = rest.split_once(':')?;
    Some((run, task, n.parse().ok()?))
}

/// No process of the soak's runs outlives the end (scanned locally and on
/// the SSH host).
pub fn no_orphan(leftovers: &[Leftover], scans: &[&str]) -> Check {
    let problems: Vec<String> = leftovers
        .iter()
        .map(|l| {
            format!(
                "{} pid {}: attempt {} still runs",
                l.scan, l.pid, l.attempt_id
            )
        })
        .collect();
    Check::new(
        "no orphan process",
        &problems,
        format!(
            "/proc scanned for ORCA_ATTEMPT_ID: {}; {} left",
            scans.join(", "),
            leftovers.len()
        ),
    )
}

/// Every raised alert is settled — delivered to every adapter it was
/// planned for, or suppressed by a rule — and reached the receiver; every
/// request sharing a `webhook-id` carries the same alerts.
pub fn alerts_delivered(events: &[Envelope], captured: &[Captured]) -> (Check, AlertCounts) {
    let mut raised: Vec<&str> = Vec::new();
    let mut suppressed: BTreeSet<&str> = BTreeSet::new();
    // notification id → (members, adapters planned)
    let mut planned: BTreeMap<String, (Vec<String>, usize)> = BTreeMap::new();
    let mut delivered: BTreeMap<String, usize> = BTreeMap::new();
    for e in events {
        if let Event::Alert(a) = &e.event {
            match a {
                AlertEvent::Raised(r) => raised.push(r.id.as_str()),
                AlertEvent::Suppressed { alert, .. } => {
                    suppressed.insert(alert.as_str());
                }
                AlertEvent::Planned(p) => {
                    planned.insert(p.id.to_string(), (p.members.clone(), p.adapters.len()));
                }
                AlertEvent::Delivered(d) => {
                    *delivered.entry(d.id.to_string()).or_default() += 1;
                }
                _ => {}
            }
        }
    }
    let mut by_hook: BTreeMap<&str, Vec<&Vec<String>>> = BTreeMap::new();
    for c in captured {
        by_hook
            .entry(c.webhook_id.as_str())
            .or_default()
            .push(&c.alerts);
    }
    let mut problems = Vec::new();
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    for (id, (members, adapters)) in &planned {
        let got = delivered.get(id).copied().unwrap_or(0);
        if got < *adapters {
            problems.push(format!(
                "notification {id}: delivered to {got} of {adapters} adapters"
            ));
            continue;
        }
        match by_hook.get(id.as_str()) {
            None => problems.push(format!(
                "notification {id} journaled delivered, never received"
            )),
            Some(bodies) => {
                if bodies.iter().any(|b| *b != members) {
                    problems.push(format!(
                        "redeliveries of {id} carried different alerts: {bodies:?} (planned {members:?})"
                    ));
                }
            }
        }
        for m in members {
            covered.insert(m.as_str());
        }
    }
    for id in by_hook.keys() {
        if !planned.contains_key(*id) {
            problems.push(format!("received {id}, which was never planned"));
        }
    }
    for r in &raised {
        if !covered.contains(r) && !suppressed.contains(r) {
            problems.push(format!("alert {r} raised, never delivered"));
        }
    }
    let counts = AlertCounts {
        raised: raised.len(),
        suppressed: suppressed.len(),
        notifications: planned.len(),
        requests: captured.len(),
        redelivered: by_hook.values().filter(|v| v.len() > 1).count(),
    };
    let counted = format!(
        "{} raised, {} suppressed by rule, {} notifications, {} requests received, {} redelivered under the same id",
        counts.raised, counts.suppressed, counts.notifications, counts.requests, counts.redelivered
    );
    (
        Check::new("every raised alert delivered", &problems, counted),
        counts,
    )
}

/// Figures of [`alerts_delivered`].
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct AlertCounts {
    pub raised: usize,
    pub suppressed: usize,
    pub notifications: usize,
    pub requests: usize,
    pub redelivered: usize,
}

/// No wake is taken twice, no intent is carried out twice, no intent's run
/// is submitted twice, and every intent is settled (done or refused).
pub fn agent_actions_once(events: &[Envelope]) -> (Check, usize) {
    let mut woke: BTreeMap<&str, usize> = BTreeMap::new();
    let mut intended: BTreeMap<&str, usize> = BTreeMap::new();
    let mut done: BTreeMap<&str, usize> = BTreeMap::new();
    let mut refused: BTreeSet<&str> = BTreeSet::new();
    let mut intent_runs: Vec<(&str, &str)> = Vec::new();
    let mut submitted: BTreeMap<&str, usize> = BTreeMap::new();
    for e in events {
        match &e.event {
            Event::RunSubmitted(s) => *submitted.entry(s.run.as_str()).or_default() += 1,
            Event::Agent(a) => match a {
                AgentEvent::Woke { wake, .. } => *woke.entry(wake.as_str()).or_default() += 1,
                AgentEvent::Intended { intent, action, .. } => {
                    *intended.entry(intent.as_str()).or_default() += 1;
                    if let IntentAction::StartRun { run, .. } = action {
                        intent_runs.push((intent.as_str(), run.as_str()));
                    }
                }
                AgentEvent::Done {
                    intent, outcome, ..
                } => {
                    *done.entry(intent.as_str()).or_default() += 1;
                    if let IntentOutcome::RunStarted { run } = outcome {
                        if !intent_runs.iter().any(|(i, r)| i == intent && r == run) {
                            intent_runs.push((intent.as_str(), run.as_str()));
                        }
                    }
                }
                AgentEvent::Refused { intent, .. } => {
                    refused.insert(intent.as_str());
                }
                _ => {}
            },
            _ => {}
        }
    }
    let mut problems = Vec::new();
    for (w, n) in &woke {
        if *n > 1 {
            problems.push(format!("wake {w} taken {n} times"));
        }
    }
    for (i, n) in &intended {
        if *n > 1 {
            problems.push(format!("intent {i} journaled {n} times"));
        }
        if !done.contains_key(i) && !refused.contains(i) {
            problems.push(format!("intent {i} never settled"));
        }
    }
    for (i, n) in &done {
        if *n > 1 {
            problems.push(format!("intent {i} carried out {n} times"));
        }
    }
    for (i, r) in &intent_runs {
        let n = submitted.get(r).copied().unwrap_or(0);
        if n > 1 {
            problems.push(format!("intent {i}: run {r} submitted {n} times"));
        }
        if n == 0 && done.contains_key(i) {
            problems.push(format!("intent {i}: done, but run {r} was never submitted"));
        }
    }
    let actions = done.values().sum::<usize>();
    let counted = format!(
        "{} wakes, {} intents, {actions} done, {} refused, {} runs started by agents",
        woke.len(),
        intended.len(),
        refused.len(),
        intent_runs.len()
    );
    (
        Check::new("no agent action done twice", &problems, counted),
        actions,
    )
}

/// `orca journal verify` exited 0.
pub fn journal_verify(code: Option<i32>, output: &str) -> Check {
    let line = output.lines().last().unwrap_or("").trim().to_string();
    let problems = if code == Some(0) {
        Vec::new()
    } else {
        vec![format!("exit {code:?}: {}", output.trim())]
    };
    Check::new("orca journal verify clean", &problems, line)
}

/// Each read command printed the same JSON from the daemon as offline.
pub fn views_equal(pairs: &[(String, serde_json::Value, serde_json::Value)]) -> Check {
    let mut problems = Vec::new();
    for (what, live, offline) in pairs {
        if live != offline {
            problems.push(format!(
                "`orca {what}` differs: {}",
                first_difference(live, offline, "")
            ));
        }
    }
    let names: Vec<&str> = pairs.iter().map(|(w, _, _)| w.as_str()).collect();
    Check::new(
        "offline views equal the daemon's",
        &problems,
        format!("compared: {}", names.join(", ")),
    )
}

/// A view as compared: the journal's `last seq N` (the tree's journal
/// node) is left out, since starting and stopping a daemon journal events
/// of their own between the two reads.
pub fn normalize_view(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) if s.starts_with("last seq ") => Value::String("last seq N".into()),
        Value::Array(a) => Value::Array(a.into_iter().map(normalize_view).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, normalize_view(v))).collect())
        }
        other => other,
    }
}

/// Where two JSON values first differ (a path and both sides, short).
pub fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> String {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    None => return format!("{path}/{k} only in the daemon's"),
                    Some(w) if w != v => return first_difference(v, w, &format!("{path}/{k}")),
                    _ => {}
                }
            }
            for k in y.keys() {
                if !x.contains_key(k) {
                    return format!("{path}/{k} only offline");
                }
            }
            format!("{path}: equal")
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if v != w {
                    return first_difference(v, w, &format!("{path}/{i}"));
                }
            }
            format!("{path}: equal")
        }
        _ => {
            let mut s = format!("{path}: daemon {a} vs offline {b}");
            if s.len() > 300 {
                let mut end = 300;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
                s.push('…');
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orca_actors::alert::events::{
        AdapterKind, AdapterRef, AlertDelivered, AlertRaised, AlertSource, NotificationId,
        NotificationKind, NotificationPlanned,
    };
    use orca_actors::model::{AlertClass, Receipt, Timestamp};

    fn env(events: Vec<Event>) -> Vec<Envelope> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Envelope {
                seq: i as u64 + 1,
                at: Timestamp(0),
                actor: String::new(),
                event,
            })
            .collect()
    }

    fn enq(task: &str) -> Event {
        Event::TaskEnqueued {
            run: "r1".into(),
            task: task.into(),
            priority: 0,
            order: 0,
        }
    }

    fn fin(task: &str, n: u32) -> Event {
        Event::TaskFinished {
            run: "r1".into(),
            task: task.into(),
            result: AttemptResult::Pass,
            final_attempt: n,
        }
    }

    fn receipt(task: &str, n: u32, result: AttemptResult) -> Event {
        Event::ReceiptRecorded(Receipt {
            run: "r1".into(),
            task: task.into(),
            worker: "local-1".into(),
            attempt: n,
            result,
            failure_source: None,
            class: None,
            score: None,
            exit_code: Some(0),
            signal: None,
            started: Timestamp(0),
            finished: Timestamp(0),
            duration_ms: 0,
            artifacts: Vec::new(),
            summary: String::new(),
            verdict: None,
        })
    }

    fn started(task: &str, n: u32) -> Event {
        Event::AttemptStarted {
            attempt: AttemptRef::new("r1", task, n),
            worker: "local-1".into(),
            host: "local".into(),
            pid: 1,
            pgid: 1,
            proc_start: 0,
            counted: true,
        }
    }

    #[test]
    fn one_receipt_each_passes_and_a_second_or_missing_one_fails() {
        let ok = env(vec![
            enq("a"),
            enq("b"),
            receipt("a", 1, AttemptResult::Pass),
            fin("a", 1),
            receipt("b", 2, AttemptResult::Pass),
            fin("b", 2),
        ]);
        assert!(one_final_receipt(&ok).ok);
        let twice = env(vec![
            enq("a"),
            receipt("a", 1, AttemptResult::Pass),
            fin("a", 1),
            fin("a", 1),
        ]);
        let c = one_final_receipt(&twice);
        assert!(!c.ok && c.detail.contains("2 final receipts"), "{c:?}");
        let lost = env(vec![
            enq("a"),
            enq("b"),
            receipt("a", 1, AttemptResult::Pass),
            fin("a", 1),
        ]);
        let c = one_final_receipt(&lost);
        assert!(
            !c.ok && c.detail.contains("r1/b: no final receipt"),
            "{c:?}"
        );
        let awaiting = env(vec![
            enq("a"),
            receipt("a", 1, AttemptResult::Partial),
            fin("a", 1),
        ]);
        assert!(!one_final_receipt(&awaiting).ok);
    }

    #[test]
    fn an_acknowledged_run_missing_or_unfinished_is_lost() {
        let sub = |run: &str| {
            Event::RunSubmitted(orca_actors::journal::event::RunSubmitted {
                run: run.into(),
                name: "n".into(),
                spec_json: "{}".into(),
                source: "api".into(),
                max_workers: 1,
                stale_after_ms: None,
                depth: 0,
                parent: None,
                surface: orca_actors::model::Surface::Api,
            })
        };
        let ev = env(vec![
            sub("r1"),
            Event::RunFinished {
                run: "r1".into(),
                status: RunStatus::Passed,
            },
            sub("r2"),
        ]);
        assert!(no_task_lost(&ev[..2], &["r1".into()]).ok);
        let c = no_task_lost(&ev, &["r1".into(), "r3".into()]);
        assert!(!c.ok);
        assert!(c.detail.contains("r3 was acknowledged"), "{c:?}");
        assert!(c.detail.contains("r2 never ended"), "{c:?}");
    }

    #[test]
    fn work_redone_only_after_a_crash_is_inside_the_window() {
        let crash = Event::AttemptInterrupted {
            attempt: AttemptRef::new("r1", "a", 1),
            cause: InterruptCause::OrcaCrash,
        };
        let ev = env(vec![started("a", 1), crash, started("a", 2), fin("a", 2)]);
        let (c, again) = at_least_once_window(&ev, &["r1:a:1".into(), "r1:a:2".into()]);
        assert!(c.ok, "{c:?}");
        assert_eq!(again, 1);
        // Without the crash, the first attempt's work is a second run.
        let ev = env(vec![started("a", 1), started("a", 2), fin("a", 2)]);
        let (c, _) = at_least_once_window(&ev, &["r1:a:1".into(), "r1:a:2".into()]);
        assert!(!c.ok && c.detail.contains("neither the final"), "{c:?}");
        // An attempt doing its work twice, or one the journal never started.
        let ev = env(vec![started("a", 1), fin("a", 1)]);
        let (c, _) = at_least_once_window(&ev, &["r1:a:1".into(), "r1:a:1".into()]);
        assert!(!c.ok && c.detail.contains("2 times"), "{c:?}");
        let (c, _) = at_least_once_window(&ev, &["r1:zz:1".into()]);
        assert!(!c.ok && c.detail.contains("no trace"), "{c:?}");
        // One attempt started twice.
        let ev = env(vec![started("a", 1), started("a", 1), fin("a", 1)]);
        assert!(!at_least_once_window(&ev, &[]).0.ok);
    }

    #[test]
    fn attempt_ids_split_at_the_colons() {
        assert_eq!(split_attempt_id("r-1:t:3"), Some(("r-1", "t", 3)));
        assert_eq!(split_attempt_id("r-1:t"), None);
        assert_eq!(split_attempt_id("nope"), None);
    }

    #[test]
    fn a_leftover_process_fails_naming_it() {
        assert!(no_orphan(&[], &["local"]).ok);
        let c = no_orphan(
            &[Leftover {
                scan: "ssh",
                pid: 42,
                attempt_id: "r1:a:1".into(),
                run_id: "r1".into(),
            }],
            &["local", "ssh"],
        );
        assert!(!c.ok && c.detail.contains("ssh pid 42"), "{c:?}");
    }

    fn alert_events(delivered: bool) -> Vec<Envelope> {
        let adapter = AdapterRef {
            name: "hook".into(),
            kind: AdapterKind::Webhook,
        };
        let id = NotificationId::new("al-1", 1);
        let mut v = vec![
            Event::Alert(AlertEvent::Raised(AlertRaised {
                id: "al-1".into(),
                class: AlertClass::RunCompleted,
                source: AlertSource::Run { run: "r1".into() },
                task: None,
                attempt: None,
                worker: None,
                reason: String::new(),
                at: Timestamp(0),
            })),
            Event::Alert(AlertEvent::Planned(NotificationPlanned {
                id: id.clone(),
                kind: NotificationKind::Trigger,
                at: Timestamp(0),
                members: vec!["al-1".into()],
                adapters: vec![adapter.clone()],
            })),
        ];
        if delivered {
            v.push(Event::Alert(AlertEvent::Delivered(AlertDelivered {
                id,
                adapter,
                status: 200,
                attempts: 1,
            })));
        }
        env(v)
    }

    #[test]
    fn alerts_must_be_delivered_and_redeliveries_carry_the_same_alerts() {
        let got = |alerts: &[&str]| Captured {
            webhook_id: "al-1:1".into(),
            alerts: alerts.iter().map(|s| s.to_string()).collect(),
        };
        let (c, n) = alerts_delivered(&alert_events(true), &[got(&["al-1"]), got(&["al-1"])]);
        assert!(c.ok, "{c:?}");
        assert_eq!(n.redelivered, 1);
        let (c, _) = alerts_delivered(&alert_events(false), &[]);
        assert!(!c.ok && c.detail.contains("delivered to 0 of 1"), "{c:?}");
        let (c, _) = alerts_delivered(&alert_events(true), &[]);
        assert!(!c.ok && c.detail.contains("never received"), "{c:?}");
        let (c, _) = alerts_delivered(&alert_events(true), &[got(&["al-1"]), got(&["al-2"])]);
        assert!(!c.ok && c.detail.contains("different alerts"), "{c:?}");
    }

    #[test]
    fn an_intent_done_twice_or_never_fails() {
        let intended = Event::Agent(AgentEvent::Intended {
            agent: "a".into(),
            intent: "w/0".into(),
            wake: "w".into(),
            route: 0,
            action: IntentAction::Note { text: "x".into() },
        });
        let done = Event::Agent(AgentEvent::Done {
            agent: "a".into(),
            intent: "w/0".into(),
            outcome: IntentOutcome::Noted,
        });
        let woke = Event::Agent(AgentEvent::Woke {
            agent: "a".into(),
            wake: "w".into(),
            source: "inbox".into(),
            event_json: "{}".into(),
        });
        let (c, n) = agent_actions_once(&env(vec![woke.clone(), intended.clone(), done.clone()]));
        assert!(c.ok, "{c:?}");
        assert_eq!(n, 1);
        let (c, _) = agent_actions_once(&env(vec![intended.clone(), done.clone(), done]));
        assert!(!c.ok && c.detail.contains("carried out 2 times"), "{c:?}");
        let (c, _) = agent_actions_once(&env(vec![intended]));
        assert!(!c.ok && c.detail.contains("never settled"), "{c:?}");
        let (c, _) = agent_actions_once(&env(vec![woke.clone(), woke]));
        assert!(!c.ok && c.detail.contains("taken 2 times"), "{c:?}");
    }

    #[test]
    fn views_compare_and_name_the_first_difference() {
        let a = serde_json::json!({"runs": [{"run": "r1", "status": "passed"}]});
        let b = serde_json::json!({"runs": [{"run": "r1", "status": "running"}]});
        assert!(views_equal(&[("status --json".into(), a.clone(), a.clone())]).ok);
        let c = views_equal(&[("status --json".into(), a, b)]);
        assert!(!c.ok && c.detail.contains("/runs/0/status"), "{c:?}");
        let tree = |n: u64| serde_json::json!({"children": [{"name": "journal", "detail": format!("last seq {n}")}]});
        assert_eq!(normalize_view(tree(7)), normalize_view(tree(9)));
        assert_ne!(
            normalize_view(serde_json::json!({"detail": "ok"})),
            normalize_view(serde_json::json!({"detail": "degraded"}))
        );
        assert!(journal_verify(Some(0), "ok\n").ok);
        assert!(!journal_verify(Some(1), "bad frame").ok);
    }
}
