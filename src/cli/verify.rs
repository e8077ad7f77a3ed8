//! `orca verify <run> <task> --pass|--fail [--note TEXT]`: a manual
//! verdict, journaled as `VerdictRecorded`, amending the attempt's receipt
//! (still one receipt per attempt).

use std::path::Path;

use clap::Args;
use orca_actors::model::{Surface, Timestamp, Verdict, VerdictRecord};
use orca_actors::ops;
use orca_actors::run::{RunError, VerdictRequest};
use orca_actors::runs::fold_run;
use orca_actors::spec::OrcaConfig;
use orca_actors::view::FleetView;

use crate::exit;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("verdict").required(true).args(["pass", "fail"])))]
pub struct VerifyArgs {
    /// A run id or unique prefix.
    pub run: String,
    /// A task id or unique prefix.
    pub task: String,
    /// The attempt passes.
    #[arg(long)]
    pub pass: bool,
    /// The attempt fails (source verifier).
    #[arg(long)]
    pub fail: bool,
    /// Why (kept in the receipt).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub note: String,
    /// The attempt (default: the task's final attempt awaiting a verdict).
    #[arg(long)]
    pub attempt: Option<u32>,
    /// Print the recorded verdict as JSON (errors too, as `{"error": …}`).
    #[arg(long)]
    pub json: bool,
}

/// Who gives a verdict from this terminal.
pub fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "operator".into())
}

pub fn run(ws_flag: Option<&Path>, args: VerifyArgs) -> anyhow::Result<i32> {
    let ws = super::read::workspace(ws_flag)?;
    // With a running orca, the verdict goes through it.
    if let Some(client) = crate::client::Client::find(&ws)? {
        return super::runtime()?.block_on(async {
            let v: serde_json::Value = client
                .post(
                    &format!(
                        "/v1/fleet/runs/{}/tasks/{}/verdict",
                        super::source::seg(&args.run),
                        super::source::seg(&args.task)
                    ),
                    serde_json::json!({
                        "verdict": if args.pass { "pass" } else { "fail" },
                        "note": args.note,
                        "who": operator(),
                        "attempt": args.attempt,
                    }),
                )
                .await?;
            if args.json {
                println!("{v}");
            } else {
                println!(
                    "{}: {} (verdict by {}, through orca pid {})",
                    v["attempt"].as_str().unwrap_or_default(),
                    if args.pass { "pass" } else { "fail" },
                    operator(),
                    client.info.pid
                );
            }
            Ok(exit::OK)
        });
    }
    // Without a running orca, the same `runs` actor decides and records
    // the verdict, in a tree booted for this command (it resumes nothing).
    let view = FleetView::load(&ws)?;
    let run = view
        .find_run(&args.run)
        .map_err(|e| exit::InvalidInput::new(e.to_string()))?
        .run
        .clone();
    let verdict = VerdictRecord {
        verdict: if args.pass {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        who: operator(),
        at: Timestamp::now(),
        note: orca_actors::model::bounded(&args.note, 2000),
    };
    let config = OrcaConfig::load(&ws.config_path())
        .map(|c| c.0)
        .unwrap_or_default();
    let target = super::runtime()?.block_on(async {
        let orca = crate::daemon::boot(&ws, &config, None).await?;
        let r = match orca.runs().await {
            Ok(runs) => {
                ops::verdict(
                    &runs,
                    &run,
                    VerdictRequest {
                        task: args.task.clone(),
                        attempt: args.attempt,
                        verdict: verdict.clone(),
                        surface: Surface::Cli,
                    },
                )
                .await
            }
            Err(e) => {
                orca.shutdown().await;
                return Err(e);
            }
        };
        orca.shutdown().await;
        r.map_err(|e| match e {
            RunError::NoSuchTask { .. } | RunError::Verdict(_) => {
                exit::InvalidInput::new(e.to_string()).into()
            }
            RunError::NotRunning { .. }
            | RunError::Ended { .. }
            | RunError::Halted { .. }
            | RunError::Unavailable { .. } => anyhow::Error::from(e),
        })
    })?;
    if args.json {
        // The same object the API answers.
        println!(
            "{}",
            serde_json::json!({ "attempt": target.to_string(), "verdict": verdict })
        );
        return Ok(exit::OK);
    }
    if let Ok(st) = fold_run(&ws, &target.run) {
        println!(
            "{target}: {} (verdict by {}{}); run {} is {}",
            verdict.verdict,
            verdict.who,
            if verdict.note.is_empty() {
                String::new()
            } else {
                format!(": {}", verdict.note)
            },
            st.run,
            st.status()
        );
    }
    Ok(exit::OK)
}
