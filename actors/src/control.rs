//! The control vocabulary: typed messages an operator (CLI, HTTP API) or an
//! agent sends to a running actor by its path. One vocabulary for every
//! surface; each delivery is journaled with the surface that asked.
//!
//! | actor kind | messages it accepts |
//! |---|---|
//! | `attempt` (`/runs/<run>/attempts/<task>:<n>`) | `interrupt`, `restart` |
//! | `run` (`/runs/<run>`) | `stop {reason?}`, `pause`, `resume` |
//! | `runs`, `root`, `journal`, `scorer` | none |

use ractor::rpc::CallResult;
use serde::{Deserialize, Serialize};

use crate::model::{NodeKind, Surface};
use crate::run::RunMsg;
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
    /// Stop leasing new tasks (running attempts and timers go on).
    Pause,
    /// Lease again.
    Resume,
}

impl ControlMessage {
    pub fn name(&self) -> &'static str {
        match self {
            ControlMessage::Interrupt => "interrupt",
            ControlMessage::Restart => "restart",
            ControlMessage::Stop { .. } => "stop",
            ControlMessage::Pause => "pause",
            ControlMessage::Resume => "resume",
        }
    }

    /// From a name and `key=value` arguments (the CLI's `orca send`).
    pub fn parse(name: &str, args: &[(String, String)]) -> Result<Self, String> {
        let mut obj = serde_json::Map::new();
        obj.insert("type".into(), serde_json::Value::String(name.to_string()));
        for (k, v) in args {
            obj.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        serde_json::from_value(serde_json::Value::Object(obj))
            .map_err(|e| format!("not a control message ({e}); messages: {}", ALL.join(", ")))
    }
}

/// Every message name.
pub const ALL: &[&str] = &["interrupt", "restart", "stop", "pause", "resume"];

/// The messages an actor kind accepts.
pub fn accepted(kind: NodeKind) -> &'static [&'static str] {
    match kind {
        NodeKind::Attempt => &["interrupt", "restart"],
        NodeKind::Run => &["stop", "pause", "resume"],
        NodeKind::Root
        | NodeKind::Journal
        | NodeKind::AlertRouter
        | NodeKind::Agents
        | NodeKind::Agent
        | NodeKind::Runs
        | NodeKind::Scorer => &[],
    }
}

/// Why a message was not delivered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no running actor at {0}")]
    NotFound(String),
    #[error("{path} ({kind}) does not accept `{message}`; it accepts: {}", if .accepted.is_empty() { "nothing".to_string() } else { .accepted.join(", ") })]
    NotAccepted {
        path: String,
        kind: NodeKind,
        message: String,
        accepted: Vec<String>,
    },
    #[error("{0}")]
    Failed(String),
}

/// Delivers `msg` to the actor at `path`; answers what it did.
pub async fn deliver(
    registry: &Registry,
    runs: &ractor::ActorRef<RunsMsg>,
    path: &str,
    msg: &ControlMessage,
    surface: Surface,
) -> Result<String, ControlError> {
    let entry = registry
        .get(path)
        .ok_or_else(|| ControlError::NotFound(path.to_string()))?;
    if !accepted(entry.kind).contains(&msg.name()) {
        return Err(ControlError::NotAccepted {
            path: path.to_string(),
            kind: entry.kind,
            message: msg.name().to_string(),
            accepted: accepted(entry.kind).iter().map(|s| s.to_string()).collect(),
        });
    }
    let run = crate::journal::event::run_of_path(path)
        .ok_or_else(|| ControlError::NotFound(path.to_string()))?
        .to_string();
    let Some(run_ref) = crate::runs::lookup(runs, &run).await else {
        return Err(ControlError::NotFound(path.to_string()));
    };
    match msg {
        ControlMessage::Interrupt | ControlMessage::Restart => {
            let (task, n) = crate::run::state::attempt_of_path(path)
                .ok_or_else(|| ControlError::NotFound(path.to_string()))?;
            let restart = *msg == ControlMessage::Restart;
            let task = task.to_string();
            match run_ref
                .call(
                    |tx| RunMsg::Interrupt {
                        task: task.clone(),
                        surface,
                        restart,
                        reply: Some(tx),
                    },
                    None,
                )
                .await
            {
                Ok(CallResult::Success(Ok(attempt))) if attempt.ends_with(&format!(":{n}")) => {
                    Ok(format!(
                        "{} {attempt}",
                        if restart {
                            "restarting"
                        } else {
                            "interrupting"
                        }
                    ))
                }
                Ok(CallResult::Success(Ok(attempt))) => Ok(format!(
                    "{} {attempt} (the task's current attempt)",
                    if restart {
                        "restarting"
                    } else {
                        "interrupting"
                    }
                )),
                Ok(CallResult::Success(Err(e))) => Err(ControlError::Failed(e)),
                _ => Err(ControlError::NotFound(path.to_string())),
            }
        }
        ControlMessage::Stop { reason } => {
            let reason = reason
                .clone()
                .unwrap_or_else(|| format!("stopped from the {surface}"));
            call_unit(&run_ref, |tx| RunMsg::Stop {
                surface,
                reason,
                reply: Some(tx),
            })
            .await
            .map(|_| format!("stopping run {run}"))
        }
        ControlMessage::Pause => call_unit(&run_ref, |tx| RunMsg::Pause {
            surface,
            reply: Some(tx),
        })
        .await
        .map(|_| format!("paused run {run}")),
        ControlMessage::Resume => call_unit(&run_ref, |tx| RunMsg::Resume {
            surface,
            reply: Some(tx),
        })
        .await
        .map(|_| format!("resumed run {run}")),
    }
}

async fn call_unit(
    r: &ractor::ActorRef<RunMsg>,
    f: impl FnOnce(ractor::RpcReplyPort<()>) -> RunMsg,
) -> Result<(), ControlError> {
    match r.call(f, None).await {
        Ok(CallResult::Success(())) => Ok(()),
        _ => Err(ControlError::Failed("the run did not answer".into())),
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
        assert!(ControlMessage::parse("explode", &[])
            .unwrap_err()
            .contains("interrupt, restart"));
        let v: ControlMessage = serde_json::from_str(r#"{"type":"pause"}"#).unwrap();
        assert_eq!(v, ControlMessage::Pause);
    }

    #[test]
    fn kinds_accept_their_messages() {
        assert_eq!(accepted(NodeKind::Attempt), ["interrupt", "restart"]);
        assert!(accepted(NodeKind::Scorer).is_empty());
    }
}
