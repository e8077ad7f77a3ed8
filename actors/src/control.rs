//! The control vocabulary: typed messages an operator (CLI, HTTP API) or an
//! agent sends to a running actor by its path. One vocabulary and one
//! delivery path for every surface; each delivery is journaled with the
//! surface that asked.
//!
//! | actor kind | messages it accepts |
//! |---|---|
//! | `attempt` (`/runs/<run>/attempts/<task>:<n>`) | `interrupt`, `restart` |
//! | `run` (`/runs/<run>`) | `stop {reason?}`, `pause`, `resume` |
//! | `runs`, `root`, `journal`, `scorer`, … | none |

use std::time::Duration;

use ractor::rpc::CallResult;
use serde::{Deserialize, Serialize};

use crate::model::{AttemptRef, NodeKind, Surface};
use crate::path::ActorPath;
use crate::run::{Answer, RunError, RunMsg, RunRequest};
use crate::runs::RunsMsg;
use crate::services::Registry;

/// A control message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlMessage {
    /// Stop an attempt; its task ends `skip` (cancelled by the operator).
    Interrupt,
    /// Stop an attempt and start a new one that uses up no attempt.
    Restart,
    /// Cancel a run: queued tasks end `skip`, attempts get their grace.
    Stop {
        #[serde(default)]
        reason: Option<String>,
    },
    /// Stop leasing new tasks (running attempts and timers go on); an
    /// agent takes no wake (they queue).
    Pause,
    /// Lease again; an agent takes its queued wakes.
    Resume,
    /// An agent: a message in its inbox (it wakes on `inbox` routes).
    Tell { text: String },
    /// An agent: grant a pending approval.
    Approve { request: String },
    /// An agent: refuse a pending approval.
    Deny { request: String },
    /// An agent: end it (its history stays; its id is never reused).
    Retire,
}

/// The name of a control message, without its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlKind {
    Interrupt,
    Restart,
    Stop,
    Pause,
    Resume,
    Tell,
    Approve,
    Deny,
    Retire,
}

impl ControlKind {
    /// Every message, in the order help texts list them.
    pub const ALL: [ControlKind; 9] = [
        ControlKind::Interrupt,
        ControlKind::Restart,
        ControlKind::Stop,
        ControlKind::Pause,
        ControlKind::Resume,
        ControlKind::Tell,
        ControlKind::Approve,
        ControlKind::Deny,
        ControlKind::Retire,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ControlKind::Interrupt => "interrupt",
            ControlKind::Restart => "restart",
            ControlKind::Stop => "stop",
            ControlKind::Pause => "pause",
            ControlKind::Resume => "resume",
            ControlKind::Tell => "tell",
            ControlKind::Approve => "approve",
            ControlKind::Deny => "deny",
            ControlKind::Retire => "retire",
        }
    }

    /// The messages an actor kind accepts.
    pub fn accepted_by(kind: NodeKind) -> &'static [ControlKind] {
        match kind {
            NodeKind::Attempt => &[ControlKind::Interrupt, ControlKind::Restart],
            NodeKind::Run => &[ControlKind::Stop, ControlKind::Pause, ControlKind::Resume],
            NodeKind::Agent => &[
                ControlKind::Pause,
                ControlKind::Resume,
                ControlKind::Tell,
                ControlKind::Approve,
                ControlKind::Deny,
                ControlKind::Retire,
            ],
            NodeKind::Root
            | NodeKind::Journal
            | NodeKind::AlertRouter
            | NodeKind::Agents
            | NodeKind::Runs
            | NodeKind::Scorer => &[],
        }
    }

    /// Every message name (for help and errors).
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.name()).collect()
    }
}

impl std::fmt::Display for ControlKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ControlMessage {
    pub fn kind(&self) -> ControlKind {
        match self {
            ControlMessage::Interrupt => ControlKind::Interrupt,
            ControlMessage::Restart => ControlKind::Restart,
            ControlMessage::Stop { .. } => ControlKind::Stop,
            ControlMessage::Pause => ControlKind::Pause,
            ControlMessage::Resume => ControlKind::Resume,
            ControlMessage::Tell { .. } => ControlKind::Tell,
            ControlMessage::Approve { .. } => ControlKind::Approve,
            ControlMessage::Deny { .. } => ControlKind::Deny,
            ControlMessage::Retire => ControlKind::Retire,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// From a name and `key=value` arguments (the CLI's `orca send`).
    pub fn parse(name: &str, args: &[(String, String)]) -> Result<Self, ControlError> {
        let mut obj = serde_json::Map::new();
        obj.insert("type".into(), serde_json::Value::String(name.to_string()));
        for (k, v) in args {
            obj.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        Self::from_json(serde_json::Value::Object(obj))
    }

    /// From JSON: a bare name (`"interrupt"`) or an object with `type`.
    pub fn from_json(v: serde_json::Value) -> Result<Self, ControlError> {
        let v = match v {
            serde_json::Value::String(name) => serde_json::json!({ "type": name }),
            other => other,
        };
        let name = v
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_string();
        serde_json::from_value(v).map_err(|e| ControlError::Unknown {
            message: name,
            reason: e.to_string(),
        })
    }
}

/// Why a message was not delivered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("{0:?} is not an actor path")]
    BadPath(String),
    #[error("no running actor at {0}")]
    NotFound(ActorPath),
    #[error("not a control message ({reason}); messages: {}", ControlKind::names().join(", "))]
    Unknown { message: String, reason: String },
    #[error("{path} ({}) does not accept `{message}`; it accepts: {}", .path.kind(), if .accepted.is_empty() { "nothing".to_string() } else { .accepted.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ") })]
    NotAccepted {
        path: ActorPath,
        message: ControlKind,
        accepted: Vec<ControlKind>,
    },
    #[error(transparent)]
    Refused(#[from] RunError),
    #[error("{0} did not answer")]
    NoAnswer(ActorPath),
    /// No agent with that id (or agents do not run here: no daemon).
    #[error("no agent {0:?} runs here")]
    NoAgent(String),
    /// The agent is retired: it takes no message.
    #[error("agent {0:?} is retired")]
    AgentRetired(String),
    /// The agent refused the message (no such approval, …).
    #[error("{0}")]
    AgentRefused(String),
}

impl ControlError {
    /// The control error of a refused agent operation.
    pub fn of_agents(e: crate::agents::AgentsError) -> Self {
        use crate::agent::decide::AgentError;
        use crate::agents::AgentsError;
        match e {
            AgentsError::NotFound(id) => ControlError::NoAgent(id),
            AgentsError::RetiredId(id) | AgentsError::Agent(AgentError::Retired { agent: id }) => {
                ControlError::AgentRetired(id)
            }
            AgentsError::NoAnswer(id) => ControlError::NoAnswer(ActorPath::Agent(id)),
            AgentsError::NotRunning => {
                ControlError::AgentRefused(AgentsError::NotRunning.to_string())
            }
            e @ (AgentsError::Exists(_)
            | AgentsError::Journal(_)
            | AgentsError::Agent(AgentError::NoSubscription { .. })
            | AgentsError::Agent(AgentError::NoApproval { .. })
            | AgentsError::Agent(AgentError::NotThinking { .. })) => {
                ControlError::AgentRefused(e.to_string())
            }
        }
    }
}

/// What a delivered message did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivered {
    /// One line for people (`interrupting r-1:lint:2`).
    pub result: String,
    pub path: ActorPath,
    /// The attempt an interrupt or restart went to.
    pub attempt: Option<AttemptRef>,
    /// The child runs a stop, pause or resume reached too.
    pub children: Vec<String>,
}

/// A control message for an agent, through the `agents` supervisor.
async fn to_agent(
    registry: &Registry,
    id: &str,
    msg: &ControlMessage,
    surface: Surface,
) -> Result<Delivered, ControlError> {
    use crate::agent::decide::{AgentAnswer, AgentCommand};
    let cmd = match msg {
        ControlMessage::Pause => AgentCommand::Pause { by: surface },
        ControlMessage::Resume => AgentCommand::Resume { by: surface },
        ControlMessage::Retire => AgentCommand::Retire { by: surface },
        ControlMessage::Approve { request } => AgentCommand::Approve {
            request: request.clone(),
            by: surface,
        },
        ControlMessage::Deny { request } => AgentCommand::Deny {
            request: request.clone(),
            by: surface,
        },
        ControlMessage::Tell { text } => AgentCommand::Event {
            source: "inbox".into(),
            event_id: format!("tell-{}", crate::model::Timestamp::now().nanos()),
            event_json: serde_json::json!({"event": "tell", "text": text, "by": surface.as_str()})
                .to_string(),
        },
        ControlMessage::Interrupt | ControlMessage::Restart | ControlMessage::Stop { .. } => {
            return Err(ControlError::NotAccepted {
                path: ActorPath::Agent(id.to_string()),
                message: msg.kind(),
                accepted: ControlKind::accepted_by(NodeKind::Agent).to_vec(),
            })
        }
    };
    let Some(cell) = registry.get(&ActorPath::Agents) else {
        return Err(ControlError::NoAgent(id.to_string()));
    };
    let agents: ractor::ActorRef<crate::agents::AgentsMsg> = cell.into();
    let answer = match agents
        .call(
            |reply| crate::agents::AgentsMsg::Command {
                agent: id.to_string(),
                cmd,
                reply,
            },
            Some(ANSWER_LIMIT),
        )
        .await
    {
        Ok(CallResult::Success(r)) => r.map_err(ControlError::of_agents)?,
        _ => return Err(ControlError::NoAnswer(ActorPath::Agent(id.to_string()))),
    };
    let result = match (msg, answer) {
        (ControlMessage::Tell { .. }, AgentAnswer::Accepted { wake }) => {
            format!("told agent {id} (wake {wake})")
        }
        (ControlMessage::Pause, _) => format!("paused agent {id}"),
        (ControlMessage::Resume, _) => format!("resumed agent {id}"),
        (ControlMessage::Retire, _) => format!("retired agent {id}"),
        (ControlMessage::Approve { request }, _) => format!("approved {request} for agent {id}"),
        (ControlMessage::Deny { request }, _) => format!("denied {request} for agent {id}"),
        (m, _) => format!("{} agent {id}", m.name()),
    };
    Ok(Delivered {
        result,
        path: ActorPath::Agent(id.to_string()),
        attempt: None,
        children: Vec::new(),
    })
}

/// How long a control message may take to be journaled.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);

/// Delivers `msg` to the actor at `path`; answers what it did once it is
/// journaled.
pub async fn deliver(
    registry: &Registry,
    runs: &ractor::ActorRef<RunsMsg>,
    path: &ActorPath,
    msg: &ControlMessage,
    surface: Surface,
) -> Result<Delivered, ControlError> {
    let accepted = ControlKind::accepted_by(path.kind());
    if !accepted.contains(&msg.kind()) {
        return Err(ControlError::NotAccepted {
            path: path.clone(),
            message: msg.kind(),
            accepted: accepted.to_vec(),
        });
    }
    if let ActorPath::Agent(id) = path {
        return to_agent(registry, id, msg, surface).await;
    }
    let run = path
        .run_id()
        .ok_or_else(|| ControlError::NotFound(path.clone()))?
        .to_string();
    let live = match registry.get(path) {
        Some(_) => crate::runs::lookup(runs, &run).await,
        None => None,
    };
    // A run's tree goes whole: stop, pause and resume reach the runs its
    // attempts submitted (and theirs), each journaled by its own run.
    let family = match (msg, path) {
        (
            ControlMessage::Stop { .. } | ControlMessage::Pause | ControlMessage::Resume,
            ActorPath::Run(_),
        ) => descendants(runs, &run).await,
        _ => Vec::new(),
    };
    let run_ref = match live {
        Some(r) => Some(r),
        None if family.is_empty() => return Err(ControlError::NotFound(path.clone())),
        None => None,
    };
    let req = match (msg, path) {
        (ControlMessage::Interrupt | ControlMessage::Restart, ActorPath::Attempt(a)) => {
            RunRequest::Interrupt {
                task: a.task.clone(),
                surface,
                restart: *msg == ControlMessage::Restart,
            }
        }
        (ControlMessage::Stop { reason }, _) => RunRequest::Stop {
            surface,
            reason: reason
                .clone()
                .unwrap_or_else(|| format!("stopped from the {surface}")),
        },
        (ControlMessage::Pause, _) => RunRequest::Pause { surface },
        (ControlMessage::Resume, _) => RunRequest::Resume { surface },
        (
            ControlMessage::Interrupt
            | ControlMessage::Restart
            | ControlMessage::Tell { .. }
            | ControlMessage::Approve { .. }
            | ControlMessage::Deny { .. }
            | ControlMessage::Retire,
            _,
        ) => {
            return Err(ControlError::NotAccepted {
                path: path.clone(),
                message: msg.kind(),
                accepted: accepted.to_vec(),
            })
        }
    };
    let mut children = Vec::new();
    for (child, actor) in &family {
        let req = match &req {
            RunRequest::Stop { surface, reason } => RunRequest::Stop {
                surface: *surface,
                reason: format!("stopped with run {run}, which it descends from: {reason}"),
            },
            other => other.clone(),
        };
        // A child that ended meanwhile has nothing left to stop.
        if let Ok(CallResult::Success(Ok(_))) = actor
            .call(|tx| RunMsg::Request(req, Some(tx)), Some(ANSWER_LIMIT))
            .await
        {
            children.push(child.clone());
        }
    }
    let answer = match run_ref {
        None => Answer::Done,
        Some(run_ref) => match run_ref
            .call(|tx| RunMsg::Request(req, Some(tx)), Some(ANSWER_LIMIT))
            .await
        {
            Ok(CallResult::Success(r)) => r?,
            _ => return Err(ControlError::NoAnswer(path.clone())),
        },
    };
    let and_children = if children.is_empty() {
        String::new()
    } else {
        format!(
            " and its child run{} {}",
            if children.len() == 1 { "" } else { "s" },
            children.join(", ")
        )
    };
    let result = match (msg, &answer) {
        (ControlMessage::Interrupt | ControlMessage::Restart, Answer::Attempt(a)) => {
            let verb = if *msg == ControlMessage::Restart {
                "restarting"
            } else {
                "interrupting"
            };
            if ActorPath::Attempt(a.clone()) == *path {
                format!("{verb} {a}")
            } else {
                format!("{verb} {a} (the task's current attempt)")
            }
        }
        (ControlMessage::Stop { .. }, _) => format!("stopping run {run}{and_children}"),
        (ControlMessage::Pause, _) => format!("paused run {run}{and_children}"),
        (ControlMessage::Resume, _) => format!("resumed run {run}{and_children}"),
        (ControlMessage::Interrupt | ControlMessage::Restart, _)
        | (
            ControlMessage::Tell { .. }
            | ControlMessage::Approve { .. }
            | ControlMessage::Deny { .. }
            | ControlMessage::Retire,
            _,
        ) => format!("{} {path}", msg.name()),
    };
    Ok(Delivered {
        result,
        children,
        path: path.clone(),
        attempt: match answer {
            Answer::Attempt(a) => Some(a),
            Answer::Done | Answer::Verdict(_) => None,
        },
    })
}

/// The running runs below `run`.
async fn descendants(
    runs: &ractor::ActorRef<RunsMsg>,
    run: &str,
) -> Vec<(String, ractor::ActorRef<RunMsg>)> {
    match runs
        .call(
            |tx| RunsMsg::Descendants {
                run: run.to_string(),
                reply: tx,
            },
            Some(ANSWER_LIMIT),
        )
        .await
    {
        Ok(CallResult::Success(v)) => v,
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_serialize() {
        assert_eq!(
            ControlMessage::parse("interrupt", &[]).unwrap(),
            ControlMessage::Interrupt
        );
        assert_eq!(
            ControlMessage::parse("stop", &[("reason".into(), "done".into())]).unwrap(),
            ControlMessage::Stop {
                reason: Some("done".into())
            }
        );
        let err = ControlMessage::parse("explode", &[]).unwrap_err();
        assert!(err.to_string().contains("interrupt, restart"), "{err}");
        let v: ControlMessage = serde_json::from_str(r#"{"type":"pause"}"#).unwrap();
        assert_eq!(v, ControlMessage::Pause);
        assert_eq!(
            ControlMessage::from_json(serde_json::json!("resume")).unwrap(),
            ControlMessage::Resume
        );
    }

    #[test]
    fn kinds_accept_their_messages_and_names_come_from_the_enum() {
        assert_eq!(
            ControlKind::accepted_by(NodeKind::Attempt),
            [ControlKind::Interrupt, ControlKind::Restart]
        );
        // A message that needs an argument says which one is missing.
        let e = ControlMessage::parse("tell", &[]).unwrap_err();
        assert!(e.to_string().contains("text"), "{e}");
        assert!(ControlKind::accepted_by(NodeKind::Scorer).is_empty());
        for k in ControlKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
            let args: Vec<(String, String)> = match k {
                ControlKind::Tell => vec![("text".into(), "hello".into())],
                ControlKind::Approve | ControlKind::Deny => vec![("request".into(), "r1".into())],
                _ => vec![],
            };
            let m = ControlMessage::parse(k.name(), &args).unwrap();
            assert_eq!(m.kind(), k);
        }
    }
}
