//! `orca verify <run> <task> --pass|--fail [--note TEXT]`: a manual
//! verdict, journaled as `VerdictRecorded`, amending the attempt's receipt
//! (still one receipt per attempt).

use std::path::Path;

use clap::Args;
use orca_actors::journal::Event;
use orca_actors::journal::{open_writer, JournalError, JournalOptions, NewEvent};
use orca_actors::model::{paths, Surface, Timestamp, Verdict, VerdictRecord};
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
            println!(
                "{}: {} (verdict by {}, through orca pid {})",
                v["attempt"].as_str().unwrap_or_default(),
                if args.pass { "pass" } else { "fail" },
                operator(),
                client.info.pid
            );
            Ok(exit::OK)
        });
    }
    let view = FleetView::load(&ws)?;
    let r = view.find_run(&args.run).map_err(exit::InvalidInput)?;
    let target = orca_actors::view::verdict_target(r, &args.task, args.attempt)
        .map_err(exit::InvalidInput)?;
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
    super::runtime()?.block_on(async {
        // Without a daemon the CLI appends to the journal itself.
        let (journal, report) = match open_writer(&ws.journal_dir(), JournalOptions::from_config(config.journal.as_ref())).await {
            Ok(j) => j,
            Err(JournalError::Locked { pid, .. }) => {
                anyhow::bail!(
                    "an orca process{} holds this workspace; give the verdict through it (`orca up` serves the verdict route) or once it has stopped",
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                )
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(e) =
            orca_actors::journal::snapshot::discard_ahead(&ws.snapshot_dir(), report.last_seq)
        {
            journal.stop().await;
            return Err(e.into());
        }
        let event = Event::VerdictRecorded {
            attempt: target.clone(),
            verdict: verdict.clone(),
            surface: Surface::Cli,
        };
        let r = journal
            .append(vec![NewEvent::new(paths::run(&target.run), event)])
            .await;
        journal.stop().await;
        r?;
        anyhow::Ok(())
    })?;
    // Refresh the attempt directory's copy of the receipt.
    if let Ok(st) = fold_run(&ws, &target.run) {
        if let Some(rec) = st
            .task(&target.task)
            .and_then(|t| t.attempt(target.attempt))
            .and_then(|a| a.receipt.as_ref())
        {
            orca_actors::attempt::actor::write_receipt_file(
                &ws.attempt_dir(&target.run, &target.task, target.attempt),
                rec,
            );
        }
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
