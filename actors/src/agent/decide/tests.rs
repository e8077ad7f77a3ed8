//! An agent's decisions as given (events) / when (a command) / then
//! (events, effects), with a given clock: no actor, no process.

use super::*;
use crate::agent::spec::check_agent_str;
use crate::agent::state::AgentState;
use crate::agent::think::ToolCall;
use crate::spec::Format;

const T0: Timestamp = Timestamp(1_800_000_000_000_000_000);

struct Given {
    spec: AgentSpec,
    state: AgentState,
    now: Timestamp,
}

const FIX: &str = "[[tasks]]\nid = \"fix\"\ncommand = \"true\"\nobjective = \"fix {{event.task}} of {{vars.target}}\"\n";

/// An agent created from `toml` (its directory `agents/`, with the run
/// spec `agents/specs/fix.toml` captured).
fn agent(toml: &str) -> Given {
    let (spec, _) = check_agent_str(toml, Format::Toml, "agent.toml")
        .unwrap_or_else(|e| panic!("test spec: {e}"));
    let mut state = AgentState::default();
    state.apply(
        T0,
        &AgentEvent::Created {
            agent: spec.id.clone(),
            spec_json: crate::agent::spec::to_journal_json(&spec),
            dir: "agents".into(),
            run_specs: vec![("agents/specs/fix.toml".into(), FIX.into())],
            by: Surface::Cli,
        },
    );
    Given {
        spec,
        state,
        now: T0,
    }
}

impl Given {
    fn given(mut self, events: &[Event]) -> Self {
        for e in events {
            self.now = self.now.plus_millis(1);
            if let Event::Agent(a) = e {
                self.state.apply(self.now, a);
            }
        }
        self
    }

    fn when(&self, cmd: AgentCommand) -> Result<AgentDecision, AgentError> {
        decide(&self.state, &self.spec, cmd, self.now)
    }

    /// Decides and folds what it journaled.
    fn then_apply(self, cmd: AgentCommand) -> (Self, AgentDecision) {
        let d = self.when(cmd).expect("decided");
        let next = self.given(&d.events.clone());
        (next, d)
    }
}

fn names(d: &AgentDecision) -> Vec<&'static str> {
    d.events.iter().map(Event::type_name).collect()
}

fn fleet(seq: u64, task: &str) -> AgentCommand {
    AgentCommand::Event {
        source: "failures".into(),
        event_id: seq.to_string(),
        event_json: format!(
            r#"{{"event":"receipt.fail","run":"r-1","run_name":"nightly","task":"{task}"}}"#
        ),
    }
}

const WATCH: &str = r#"
id = "watch"
[[subscriptions]]
id = "failures"
kind = "fleet"
events = ["receipt.fail"]
[[routes]]
on = "failures"
action = "start_run"
spec = "specs/fix.toml"
vars = { target = "{{event.run_name}}" }
"#;

#[test]
fn a_fleet_event_wakes_it_and_its_route_starts_a_run_with_a_fixed_id() {
    let g = agent(WATCH);
    let (g, d) = g.then_apply(fleet(42, "lint"));
    assert_eq!(
        names(&d),
        ["AgentWoke", "AgentWakeStarted", "AgentIntended"]
    );
    assert_eq!(
        d.answer,
        AgentAnswer::Accepted {
            wake: "failures:42".into()
        }
    );
    let [AgentEffect::StartRun {
        intent,
        run,
        spec_text,
        ..
    }] = &d.effects[..]
    else {
        panic!("{:?}", d.effects)
    };
    assert_eq!(intent, "failures:42/0");
    assert_eq!(run, &run_id_of("watch", intent, T0.plus_millis(0)));
    // The event and vars went into the spec's string fields.
    assert!(spec_text.contains("fix lint of nightly"), "{spec_text}");
    assert_eq!(g.state.lifecycle(), crate::agent::state::Lifecycle::Working);
    // The run was submitted: the wake is done.
    let (g, d) = g.then_apply(AgentCommand::Carried {
        intent: intent.clone(),
        outcome: IntentOutcome::RunStarted { run: run.clone() },
    });
    assert_eq!(names(&d), ["AgentDone", "AgentWakeDone"]);
    assert_eq!(g.state.running_runs(), 1);
    // The same event again (a replay at start): a duplicate, nothing more.
    let d = g.when(fleet(42, "lint")).unwrap();
    assert!(d.events.is_empty());
    assert_eq!(
        d.answer,
        AgentAnswer::Duplicate {
            wake: "failures:42".into()
        }
    );
}

#[test]
fn a_wake_redone_after_a_crash_does_what_was_left_once() {
    // Killed after the intent was journaled, before the run was submitted.
    let (g, d) = agent(WATCH).then_apply(fleet(7, "lint"));
    let AgentEffect::StartRun { run, .. } = &d.effects[0] else {
        panic!()
    };
    let run = run.clone();
    let d = g.when(AgentCommand::Boot).unwrap();
    assert_eq!(names(&d), Vec::<&str>::new(), "nothing is journaled again");
    assert!(matches!(&d.effects[..], [AgentEffect::StartRun { run: r, .. }] if *r == run));
    // Killed after the intent was done: nothing is redone.
    let (g, _) = g.then_apply(AgentCommand::Carried {
        intent: "failures:7/0".into(),
        outcome: IntentOutcome::RunStarted { run },
    });
    let d = g.when(AgentCommand::Boot).unwrap();
    assert!(d.effects.is_empty() && d.events.is_empty());
}

#[test]
fn busy_routes_queue_drop_or_interrupt() {
    let drop = WATCH.replace(
        "action = \"start_run\"",
        "action = \"start_run\"\nbusy = \"drop\"",
    );
    let (g, _) = agent(&drop).then_apply(fleet(1, "a"));
    // Still handling wake 1 (its run not submitted yet): 2 is dropped.
    let d = g.when(fleet(2, "b")).unwrap();
    assert_eq!(names(&d), ["AgentWoke", "AgentWakeDropped"]);
    // Queue (the default): it waits, then goes once 1 is done.
    let (g, _) = agent(WATCH).then_apply(fleet(1, "a"));
    let (g, d) = g.then_apply(fleet(2, "b"));
    assert_eq!(names(&d), ["AgentWoke"]);
    let (_, d) = g.then_apply(AgentCommand::Carried {
        intent: "failures:1/0".into(),
        outcome: IntentOutcome::RunStarted { run: "r-a".into() },
    });
    assert_eq!(
        names(&d),
        [
            "AgentDone",
            "AgentWakeDone",
            "AgentWakeStarted",
            "AgentIntended"
        ]
    );
    // Interrupt: the route's running run is stopped for the new wake.
    let int = WATCH.replace(
        "action = \"start_run\"",
        "action = \"start_run\"\nbusy = \"interrupt\"",
    );
    let (g, _) = agent(&int).then_apply(fleet(1, "a"));
    let (g, _) = g.then_apply(AgentCommand::Carried {
        intent: "failures:1/0".into(),
        outcome: IntentOutcome::RunStarted { run: "r-a".into() },
    });
    let d = g.when(fleet(2, "b")).unwrap();
    assert!(d.effects.contains(&AgentEffect::StopRuns {
        runs: vec!["r-a".into()]
    }));
}

#[test]
fn pause_queues_wakes_and_resume_drains_them() {
    let (g, _) = agent(WATCH).then_apply(AgentCommand::Pause { by: Surface::Cli });
    let (g, d) = g.then_apply(fleet(3, "a"));
    assert_eq!(names(&d), ["AgentWoke"], "journaled, not taken");
    assert_eq!(g.state.lifecycle(), crate::agent::state::Lifecycle::Paused);
    let d = g.when(AgentCommand::Resume { by: Surface::Cli }).unwrap();
    assert_eq!(
        names(&d),
        ["AgentResumed", "AgentWakeStarted", "AgentIntended"]
    );
}

#[test]
fn actions_outside_workspaces_or_trust_are_refused_or_wait_for_approval() {
    // The spec climbs out of the agent's workspace.
    let out = WATCH
        .replace(
            "id = \"watch\"",
            "id = \"watch\"\nworkspaces = [\"agents/specs\"]",
        )
        .replace("specs/fix.toml", "../other/fix.toml");
    let d = agent(&out).when(fleet(1, "a")).unwrap();
    assert!(names(&d).contains(&"AgentRefused"));
    assert!(d.effects.is_empty());
    // Untrusted: no run.
    let untrusted = WATCH.replace(
        "id = \"watch\"",
        "id = \"watch\"\ntrust_level = \"untrusted\"",
    );
    let d = agent(&untrusted).when(fleet(1, "a")).unwrap();
    assert!(names(&d).contains(&"AgentRefused"));
    // Restricted: the run waits for an operator.
    let restricted = WATCH.replace(
        "id = \"watch\"",
        "id = \"watch\"\ntrust_level = \"restricted\"",
    );
    let (g, d) = agent(&restricted).then_apply(fleet(1, "a"));
    assert_eq!(
        names(&d),
        [
            "AgentWoke",
            "AgentWakeStarted",
            "AgentIntended",
            "AgentApprovalRequested"
        ]
    );
    assert!(d.effects.is_empty());
    assert_eq!(g.state.lifecycle(), crate::agent::state::Lifecycle::Waiting);
    let d = g
        .when(AgentCommand::Approve {
            request: "failures:1/0".into(),
            by: Surface::Cli,
        })
        .unwrap();
    assert_eq!(names(&d), ["AgentApproved"]);
    assert!(matches!(&d.effects[..], [AgentEffect::StartRun { .. }]));
    // Denied: refused, the wake ends.
    let (g, _) = agent(&restricted).then_apply(fleet(1, "a"));
    let d = g
        .when(AgentCommand::Deny {
            request: "failures:1/0".into(),
            by: Surface::Cli,
        })
        .unwrap();
    assert_eq!(names(&d), ["AgentDenied", "AgentWakeDone"]);
    assert!(g
        .when(AgentCommand::Approve {
            request: "nope".into(),
            by: Surface::Cli
        })
        .is_err());
}

const TIMED: &str = r#"
id = "clock"
[[subscriptions]]
id = "tick"
kind = "timer"
every = "10s"
missed = "run_once"
[[routes]]
on = "tick"
action = "note"
text = "tick at {{event.due}}"
"#;

#[test]
fn timers_arm_fire_once_and_rearm() {
    let (mut g, d) = agent(TIMED).then_apply(AgentCommand::Boot);
    assert_eq!(names(&d), ["AgentTimerArmed"]);
    let due = T0.plus_millis(10_000);
    assert_eq!(
        d.effects,
        [AgentEffect::ArmTimer {
            subscription: "tick".into(),
            at: due
        }]
    );
    g.now = due;
    let (g, d) = g.then_apply(AgentCommand::TimerDue {
        subscription: "tick".into(),
        due,
    });
    assert_eq!(
        names(&d),
        // Re-armed at once, before the wake's work: a crash mid-wake keeps
        // the schedule.
        [
            "AgentWoke",
            "AgentTimerArmed",
            "AgentWakeStarted",
            "AgentIntended",
            "AgentDone",
            "AgentWakeDone"
        ]
    );
    // A late duplicate of the same deadline: nothing.
    let d = g
        .when(AgentCommand::TimerDue {
            subscription: "tick".into(),
            due,
        })
        .unwrap();
    assert!(d.events.is_empty());
    // Down from 15s to 55s: one catch-up wake, the schedule kept.
    let mut g = g;
    g.now = T0.plus_millis(55_000);
    let d = g.when(AgentCommand::Boot).unwrap();
    assert_eq!(names(&d)[0], "AgentWoke");
    assert!(d.effects.contains(&AgentEffect::ArmTimer {
        subscription: "tick".into(),
        at: T0.plus_millis(60_000)
    }));
}

#[test]
fn the_wake_rate_and_budget_hold_wakes_back() {
    let limited = WATCH
        .replace(
            "id = \"watch\"",
            "id = \"watch\"\npolicy = { max_wakes_per_hour = 1 }",
        )
        .replace(
            "action = \"start_run\"\nspec = \"specs/fix.toml\"",
            "action = \"note\"",
        );
    let (g, _) = agent(&limited).then_apply(fleet(1, "a"));
    let d = g.when(fleet(2, "b")).unwrap();
    assert_eq!(names(&d), ["AgentWoke"]);
    let first = g.state.recent_wakes[0];
    assert_eq!(
        d.effects,
        [AgentEffect::ArmRetry {
            at: first.plus_millis(3_600_000)
        }]
    );
    let budget = limited.replace("max_wakes_per_hour = 1", "wake_budget = 1");
    let (g, _) = agent(&budget).then_apply(fleet(1, "a"));
    let (g, d) = g.then_apply(fleet(2, "b"));
    assert_eq!(names(&d), ["AgentWoke", "AgentApprovalRequested"]);
    let d = g
        .when(AgentCommand::Approve {
            request: WAKE_BUDGET_REQUEST.into(),
            by: Surface::Cli,
        })
        .unwrap();
    assert!(names(&d).contains(&"AgentWakeStarted"));
}

#[test]
fn a_commitment_wakes_it_when_due_and_tell_reaches_the_inbox() {
    let spec = r#"
id = "keeper"
[[routes]]
on = "inbox"
action = "remember"
after = "1h"
text = "follow up on {{event.text}}"
[[routes]]
on = "commitment"
action = "alert"
class = "needs_human"
text = "due: {{event.text}}"
"#;
    let tell = AgentCommand::Event {
        source: "inbox".into(),
        event_id: "m-1".into(),
        event_json: r#"{"event":"tell","text":"the release"}"#.into(),
    };
    let (g, d) = agent(spec).then_apply(tell);
    let [AgentEffect::ArmCommitment { commitment, at }] = &d.effects[..] else {
        panic!("{:?}", d.effects)
    };
    assert_eq!(*at, T0.plus_millis(3_600_000));
    let (_, d) = g.then_apply(AgentCommand::CommitmentDue {
        commitment: commitment.clone(),
    });
    assert!(names(&d).contains(&"AlertRaised"), "{:?}", names(&d));
    let raised = d.events.iter().find_map(|e| match e {
        Event::Alert(crate::alert::AlertEvent::Raised(r)) => Some(r),
        _ => None,
    });
    let raised = raised.unwrap();
    assert_eq!(raised.source, AlertSource::agent("keeper"));
    assert_eq!(raised.reason, "due: follow up on the release");
}

#[test]
fn a_retired_agent_takes_nothing() {
    let (g, d) = agent(WATCH).then_apply(AgentCommand::Retire { by: Surface::Cli });
    assert_eq!(d.effects, [AgentEffect::Stop]);
    assert!(matches!(
        g.when(fleet(1, "a")),
        Err(AgentError::Retired { .. })
    ));
    assert!(g.state.retired);
}

const THINKER: &str = r#"
id = "thinker"
persona = "Keeps the fleet tidy."
runtime = { preset = "claude" }
[[routes]]
on = "inbox"
action = "think"
[[routes]]
on = "approval"
action = "note"
text = "answered {{event.answer}}"
"#;

fn tell(n: u64) -> AgentCommand {
    AgentCommand::Event {
        source: "inbox".into(),
        event_id: format!("t{n}"),
        event_json: r#"{"event":"tell","text":"go"}"#.into(),
    }
}

/// Given a think wake whose run started: its state and the think run.
fn thinking() -> (Given, String) {
    let (g, d) = agent(THINKER).then_apply(tell(1));
    assert_eq!(
        names(&d),
        ["AgentWoke", "AgentWakeStarted", "AgentIntended"],
        "a think intent waits for its run"
    );
    let AgentEffect::StartRun {
        intent,
        run,
        spec,
        spec_text,
        ..
    } = d.effects[0].clone()
    else {
        panic!("{:?}", d.effects)
    };
    assert_eq!(spec, "think");
    // The think run: the persona in the prompt, the agent's label, the
    // preset told to load `orca mcp`.
    let v: Value = serde_json::from_str(&spec_text).unwrap();
    assert_eq!(v["labels"]["agent"], "thinker");
    let task = &v["tasks"][0];
    assert!(task["instructions"]
        .as_str()
        .unwrap()
        .contains("Keeps the fleet tidy."));
    assert!(task["runtime"]["args"].to_string().contains("mcp"));
    let (g, d) = g.then_apply(AgentCommand::Carried {
        intent,
        outcome: IntentOutcome::RunStarted { run: run.clone() },
    });
    assert!(
        !names(&d).contains(&"AgentWakeDone"),
        "the wake stays open while its think run runs"
    );
    (g, run)
}

#[test]
fn a_tool_call_is_an_intent_of_the_wake_and_a_repeat_is_answered_from_the_journal() {
    let (g, run) = thinking();
    let call = || AgentCommand::Tool {
        run: run.clone(),
        call: ToolCall::from_args("commit", serde_json::json!({"what": "w", "due": "10m"}))
            .unwrap(),
    };
    let t = g.now;
    let (g, d) = g.then_apply(call());
    assert_eq!(names(&d), ["AgentIntended", "AgentDone"]);
    assert_eq!(
        d.effects,
        [AgentEffect::ArmCommitment {
            commitment: match &d.answer {
                AgentAnswer::Tool { result, .. } => result["commitment"].as_str().unwrap().into(),
                a => panic!("{a:?}"),
            },
            at: t.plus_millis(600_000),
        }]
    );
    // The same call again (a think attempt redone after a crash): nothing
    // journaled, nothing carried out, the same answer.
    let d2 = g.when(call()).unwrap();
    assert!(d2.events.is_empty() && d2.effects.is_empty());
    assert!(matches!(
        d2.answer,
        AgentAnswer::Tool { repeated: true, .. }
    ));
    // The run ends: the wake is done.
    let (_, d) = g.then_apply(AgentCommand::RunEnded {
        run,
        status: RunStatus::Passed,
    });
    assert!(names(&d).contains(&"AgentWakeDone"), "{:?}", names(&d));
}

#[test]
fn a_refused_tool_call_is_journaled_and_shown_at_the_next_wake() {
    let (g, run) = thinking();
    let (g, d) = g.then_apply(AgentCommand::Tool {
        run: run.clone(),
        call: ToolCall::from_args("stop_run", serde_json::json!({"run": "r-other"})).unwrap(),
    });
    assert_eq!(names(&d), ["AgentRefused"]);
    assert!(
        matches!(&d.answer, AgentAnswer::Refused { reason, .. } if reason.contains("only its own runs"))
    );
    assert!(d.effects.is_empty());
    // A run outside the workspaces: refused too.
    let d = g
        .when(AgentCommand::Tool {
            run: run.clone(),
            call: ToolCall::StartRun {
                spec_path: Some("../elsewhere.toml".into()),
                spec: None,
                spec_text: Some("x".into()),
            },
        })
        .unwrap();
    assert_eq!(names(&d), ["AgentRefused"]);
    // The next think run's prompt shows the refusal.
    let (g, _) = g.then_apply(AgentCommand::RunEnded {
        run,
        status: RunStatus::Passed,
    });
    let (_, d) = g.then_apply(tell(2));
    let spec_text = d
        .effects
        .iter()
        .find_map(|e| match e {
            AgentEffect::StartRun { spec_text, .. } => Some(spec_text.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        spec_text.contains("r-other"),
        "the refusal is in the prompt"
    );
}

#[test]
fn a_call_from_a_run_that_is_not_thinking_is_an_error() {
    let (g, run) = thinking();
    let e = g
        .when(AgentCommand::Tool {
            run: "r-stranger".into(),
            call: ToolCall::Note { text: "x".into() },
        })
        .unwrap_err();
    assert!(matches!(e, AgentError::NotThinking { .. }));
    let (g, _) = g.then_apply(AgentCommand::RunEnded {
        run: run.clone(),
        status: RunStatus::Passed,
    });
    let e = g
        .when(AgentCommand::Tool {
            run,
            call: ToolCall::Note {
                text: "late".into(),
            },
        })
        .unwrap_err();
    assert!(
        matches!(e, AgentError::NotThinking { .. }),
        "its wake is over"
    );
}

#[test]
fn ask_human_is_an_approval_and_an_alert_and_the_answer_wakes_the_agent() {
    let (g, run) = thinking();
    let (g, d) = g.then_apply(AgentCommand::Tool {
        run: run.clone(),
        call: ToolCall::AskHuman {
            question: "ship it?".into(),
        },
    });
    assert_eq!(
        names(&d),
        [
            "AgentIntended",
            "AlertRaised",
            "AgentApprovalRequested",
            "AgentDone"
        ]
    );
    let AgentAnswer::Tool { result, .. } = &d.answer else {
        panic!("{:?}", d.answer)
    };
    let request = result["request"].as_str().unwrap().to_string();
    let (g, _) = g.then_apply(AgentCommand::RunEnded {
        run,
        status: RunStatus::Passed,
    });
    let (_, d) = g.then_apply(AgentCommand::Deny {
        request,
        by: Surface::Cli,
    });
    let n = names(&d);
    assert!(n.starts_with(&["AgentDenied", "AgentWoke"]), "{n:?}");
    assert!(
        n.contains(&"AgentDone"),
        "the approval route noted it: {n:?}"
    );
}

#[test]
fn an_idle_agent_boots_passive_and_a_due_timer_or_pending_work_needs_its_actor() {
    // Given a timer agent never armed, when it boots: it arms its timer and
    // nothing else, so it stays a passive row until that deadline.
    let g = agent(TIMED);
    let d = g.when(AgentCommand::Boot).unwrap();
    assert!(stays_passive(&d), "{:?}", names(&d));
    assert_eq!(next_deadline(&d.effects), Some(T0.plus_millis(10_000)));
    // Given it armed, when it boots again before the deadline: nothing to
    // journal, still passive, the same deadline.
    let (g, _) = g.then_apply(AgentCommand::Boot);
    let d = g.when(AgentCommand::Boot).unwrap();
    assert!(d.events.is_empty());
    assert!(stays_passive(&d));
    assert_eq!(next_deadline(&d.effects), Some(T0.plus_millis(10_000)));
    // Given a tick missed while orca was down (`run_once`): the catch-up
    // wake needs the actor.
    let mut g = g;
    g.now = T0.plus_millis(25_000);
    let d = g.when(AgentCommand::Boot).unwrap();
    assert!(!stays_passive(&d), "{:?}", names(&d));
    // Given an intent journaled but not carried out: its redo needs the
    // actor.
    let g = agent(WATCH);
    let (g, _) = g.then_apply(fleet(7, "lint"));
    let pending = g
        .state
        .intents
        .values()
        .any(|i| i.status == IntentStatus::Pending);
    assert!(pending);
    let d = g.when(AgentCommand::Boot).unwrap();
    assert!(!stays_passive(&d), "{:?}", d.effects);
    assert_eq!(next_deadline(&d.effects), None);
}

#[test]
fn an_agent_at_rest_goes_passive_with_the_deadlines_its_state_holds() {
    // Given a timer agent armed, then woken by its tick and done with it:
    // at rest, its next tick the one deadline.
    let (g, _) = agent(TIMED).then_apply(AgentCommand::Boot);
    assert!(at_rest(&g.state));
    let due = T0.plus_millis(10_000);
    let arms = |g: &Given| armed_deadlines(&g.state, &g.spec);
    assert_eq!(
        arms(&g),
        [AgentEffect::ArmTimer {
            subscription: "tick".into(),
            at: due
        }]
    );
    let mut g = g;
    g.now = due;
    let (g, _) = g.then_apply(AgentCommand::TimerDue {
        subscription: "tick".into(),
        due,
    });
    assert!(at_rest(&g.state), "its note was the whole wake");
    assert_eq!(next_deadline(&arms(&g)), Some(T0.plus_millis(20_000)));
    // Given a wake whose run is being started: not at rest.
    let (g, _) = agent(WATCH).then_apply(fleet(7, "lint"));
    assert!(!at_rest(&g.state));
    assert!(arms(&g).is_empty());
}
