//! Rebuilding runs from the journal after orca stopped.

use ractor::ActorRef;

use crate::runs::RunsMsg;
use crate::services::Services;
use crate::view::FleetView;

/// Resumes every run the journal shows as not ended. Returns the run ids.
pub async fn resume_unfinished(services: &Services, runs: &ActorRef<RunsMsg>) -> Vec<String> {
    let ws = services.ws.clone();
    let view = match tokio::task::spawn_blocking(move || FleetView::load(&ws)).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot read the journal to resume runs");
            return Vec::new();
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the journal to resume runs");
            return Vec::new();
        }
    };
    let mut resumed = Vec::new();
    let limits: Vec<u32> = view
        .runs
        .values()
        .map(|r| crate::view::spawn_limit(&view, r))
        .collect();
    for (state, limit) in view
        .runs
        .into_values()
        .zip(limits)
        .filter(|(r, _)| r.ended_as.is_none())
    {
        let run = state.run.clone();
        match runs
            .call(
                |tx| RunsMsg::Resume {
                    state: Box::new(state),
                    stale_after: None,
                    limit,
                    reply: Some(tx),
                },
                None,
            )
            .await
        {
            Ok(ractor::rpc::CallResult::Success(Ok(()))) => resumed.push(run),
            // Still running (a resume after the journal reopened covers
            // every unfinished run, most of which never stopped), or
            // started by this daemon while the fold ran: not to be redone.
            Ok(ractor::rpc::CallResult::Success(Err(
                crate::runs::SubmitError::AlreadyRunning(_),
            ))) => {
                tracing::debug!(%run, "not resumed: running, or started by this daemon meanwhile")
            }
            Ok(ractor::rpc::CallResult::Success(Err(e))) => {
                tracing::error!(%run, error = %e, "cannot resume run")
            }
            _ => tracing::error!(%run, "cannot resume run: `runs` did not answer"),
        }
    }
    resumed
}
