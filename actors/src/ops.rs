//! One path per operation.
//!
//! Submitting a run, giving a manual verdict and sending a control message
//! each have exactly one way in, shared by the HTTP API, the CLI (through
//! the API when an orca runs, or through a tree booted for the command when
//! none does) and every later surface: the functions here, which check
//! input into typed errors and hand the operation to the actor that owns
//! it. The actor checks what depends on its state — a verdict's target, a
//! nested run's depth — because only it sees every request in order.
//!
//! Callers resolve names (a run's unique prefix) with
//! [`crate::view::FleetView::find_run`] on their view of the fleet and map
//! the typed errors to exit codes or HTTP statuses with a `match`.

use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::ActorRef;

use crate::control::{ControlError, ControlMessage, Delivered};
use crate::model::{AttemptRef, Surface};
use crate::path::ActorPath;
use crate::run::{RunError, VerdictRequest};
use crate::runs::{RunsMsg, Submission, SubmitError, Submitted};
use crate::services::{Registry, Settings};
use crate::spec::{check_str, Diagnostic, Format, SpecError, ValidateContext};

/// A spec's text and how to run it.
#[derive(Clone, Debug)]
pub struct SubmitRequest<'a> {
    pub text: &'a str,
    pub format: Format,
    /// Where it came from (a path, `api`, …): errors name it.
    pub source: String,
    /// `--max-workers` (over the spec's, over the config's).
    pub max_workers: Option<u32>,
    /// `--stale-after`.
    pub stale_after: Option<Duration>,
    pub surface: Surface,
    /// A nested run: the attempt submitting it.
    pub parent: Option<AttemptRef>,
}

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitRejected {
    /// The spec has errors (each with its location).
    #[error(transparent)]
    Invalid(#[from] SpecError),
    #[error(transparent)]
    Refused(#[from] SubmitError),
    #[error("the supervision tree did not answer")]
    NoAnswer,
}

/// Validates a spec's text into a submission; its warnings come along.
pub fn prepare(
    req: SubmitRequest<'_>,
    ctx: &ValidateContext<'_>,
    settings: &Settings,
) -> Result<(Submission, Vec<Diagnostic>), SpecError> {
    let valid = check_str(req.text, req.format, &req.source, ctx).into_result()?;
    let max_workers = req
        .max_workers
        .filter(|n| *n > 0)
        .or(valid.spec.max_workers)
        .unwrap_or(settings.default_max_workers);
    Ok((
        Submission {
            spec: valid.spec,
            source: req.source,
            max_workers,
            stale_after: req.stale_after,
            surface: req.surface,
            parent: req.parent,
            run_id: None,
        },
        valid.warnings,
    ))
}

/// Starts a run.
pub async fn submit(
    runs: &ActorRef<RunsMsg>,
    sub: Submission,
) -> Result<Submitted, SubmitRejected> {
    match runs
        .call(|tx| RunsMsg::Submit(Box::new(sub), tx), None)
        .await
    {
        Ok(CallResult::Success(r)) => Ok(r?),
        _ => Err(SubmitRejected::NoAnswer),
    }
}

/// Records a manual verdict on run `run` (an exact id); `runs` checks it
/// against the run's state and rewrites the receipt's copy.
pub async fn verdict(
    runs: &ActorRef<RunsMsg>,
    run: &str,
    req: VerdictRequest,
) -> Result<AttemptRef, RunError> {
    match runs
        .call(
            |tx| RunsMsg::Verdict {
                run: run.to_string(),
                req,
                reply: tx,
            },
            None,
        )
        .await
    {
        Ok(CallResult::Success(r)) => r,
        _ => Err(RunError::Unavailable {
            run: run.to_string(),
            reason: "the supervision tree did not answer".into(),
        }),
    }
}

/// Sends a control message to the actor at `path` (text, as the CLI and
/// the API take it).
pub async fn control(
    registry: &Registry,
    runs: &ActorRef<RunsMsg>,
    path: &str,
    msg: &ControlMessage,
    surface: Surface,
) -> Result<Delivered, ControlError> {
    let path: ActorPath = path
        .parse()
        .map_err(|_| ControlError::BadPath(path.to_string()))?;
    crate::control::deliver(registry, runs, &path, msg, surface).await
}

/// The `agents` supervisor, when agents run here (the daemon).
fn agents(
    registry: &Registry,
) -> Result<ActorRef<crate::agents::AgentsMsg>, crate::agents::AgentsError> {
    registry
        .get(&ActorPath::Agents)
        .map(ActorRef::from)
        .ok_or(crate::agents::AgentsError::NotRunning)
}

/// Creates an agent identity from a prepared spec
/// ([`crate::agent::spec::prepare_agent`]).
pub async fn agent_create(
    registry: &Registry,
    p: crate::agent::spec::PreparedAgent,
    by: Surface,
) -> Result<(), crate::agents::AgentsError> {
    agent_spec(registry, p, by, true).await
}

/// Applies a new spec to an agent (its state stays).
pub async fn agent_update(
    registry: &Registry,
    p: crate::agent::spec::PreparedAgent,
    by: Surface,
) -> Result<(), crate::agents::AgentsError> {
    agent_spec(registry, p, by, false).await
}

/// Hands a prepared spec to `agents`: a new identity (`create`) or a new
/// spec for one.
async fn agent_spec(
    registry: &Registry,
    p: crate::agent::spec::PreparedAgent,
    by: Surface,
    create: bool,
) -> Result<(), crate::agents::AgentsError> {
    use crate::agents::AgentsMsg;
    let id = p.spec.id.clone();
    let answer = agents(registry)?
        .call(
            |reply| {
                let (spec, dir, run_specs) = (Box::new(p.spec), p.dir, p.run_specs);
                if create {
                    AgentsMsg::Create {
                        spec,
                        dir,
                        run_specs,
                        by,
                        reply,
                    }
                } else {
                    AgentsMsg::Update {
                        spec,
                        dir,
                        run_specs,
                        by,
                        reply,
                    }
                }
            },
            Some(Duration::from_secs(30)),
        )
        .await;
    match answer {
        Ok(CallResult::Success(r)) => r,
        _ => Err(crate::agents::AgentsError::NoAnswer(id)),
    }
}

/// Hands an event to one of an agent's subscriptions (a verified webhook,
/// …); answers whether it was new or a duplicate.
pub async fn agent_event(
    registry: &Registry,
    agent: &str,
    cmd: crate::agent::decide::AgentCommand,
) -> Result<crate::agent::decide::AgentAnswer, crate::agents::AgentsError> {
    match agents(registry)?
        .call(
            |reply| crate::agents::AgentsMsg::Command {
                agent: agent.to_string(),
                cmd,
                reply,
            },
            Some(Duration::from_secs(30)),
        )
        .await
    {
        Ok(CallResult::Success(r)) => r,
        _ => Err(crate::agents::AgentsError::NoAnswer(agent.to_string())),
    }
}
