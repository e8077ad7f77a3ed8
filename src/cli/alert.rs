//! `orca alert dry-run | list | test` (and the seed's `orca alert-dry-run`,
//! and `orca alerts` for `orca alert list`).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use orca_actors::alert::dry_run::{dry_run, DryRunError, DryRunRequest};
use orca_actors::alert::probe::{probe, ProbeReport, ProbeRequest};
use orca_actors::alert::send::Sender;
use orca_actors::alert::{AlertSource, NotificationKind, ProcessEnv};
use orca_actors::model::{AlertClass, Timestamp};
use orca_actors::spec::{AlertConfig, OrcaConfig, ValidateContext};
use serde_json::json;

use super::source::Reader;
use crate::exit;
use crate::render;

#[derive(Debug, Args)]
pub struct AlertArgs {
    #[command(subcommand)]
    pub command: AlertCommand,
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Print the exact request an adapter would get for an alert, secrets
    /// shown as <redacted:env:NAME>. Sends nothing; needs no alert config
    /// and no run.
    #[command(after_help = "Examples:
  orca alert dry-run --event stale --run r-2611 --worker local-1 --task lint \\
      --reason \"no output for 5m\" --adapter slack
  orca alert dry-run --event needs_human --adapter ops-pager --spec fleet.toml --json")]
    DryRun(DryRunArgs),

    /// Alerts raised and where their delivery stands (from the journal).
    #[command(after_help = "Examples:
  orca alert list
  orca alert list --run r-2611 --json")]
    List(ListArgs),

    /// Send one test notification through an adapter (by the daemon when
    /// one runs, with its environment). Exit code 1 when it is not
    /// delivered.
    #[command(after_help = "Examples:
  orca alert test ops-slack
  orca alert test webhook --event needs_human --json")]
    Test(TestArgs),
}

impl AlertArgs {
    pub fn json(&self) -> bool {
        match &self.command {
            AlertCommand::DryRun(a) => a.json,
            AlertCommand::List(a) => a.json,
            AlertCommand::Test(a) => a.json,
        }
    }
}

fn parse_class(s: &str) -> Result<AlertClass, String> {
    AlertClass::parse(s).ok_or_else(|| {
        let known: Vec<&str> = AlertClass::ALL.iter().map(|c| c.as_str()).collect();
        format!("unknown alert class {s:?} (one of: {})", known.join(", "))
    })
}

#[derive(Debug, Args)]
pub struct DryRunArgs {
    /// The alert class.
    #[arg(long, value_name = "CLASS", value_parser = parse_class)]
    pub event: AlertClass,
    /// An adapter's name (in --spec's alerts, else the workspace's
    /// [alerts]), or a kind: slack, webhook, pager_duty (default env names
    /// ORCA_SLACK_WEBHOOK; ORCA_WEBHOOK_URL and ORCA_WEBHOOK_SECRET;
    /// ORCA_PAGERDUTY_ROUTING_KEY).
    #[arg(long, value_name = "ADAPTER")]
    pub adapter: String,
    /// The run (it need not exist).
    #[arg(long, alias = "run-id", value_name = "RUN", conflicts_with = "agent")]
    pub run: Option<String>,
    /// An agent, for an alert raised by an agent (it has no run).
    #[arg(long, value_name = "AGENT")]
    pub agent: Option<String>,
    #[arg(long, alias = "worker-id", value_name = "WORKER")]
    pub worker: Option<String>,
    #[arg(long, alias = "task-id", value_name = "TASK")]
    pub task: Option<String>,
    #[arg(long, value_name = "N")]
    pub attempt: Option<u32>,
    /// One sentence on why (no secrets).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
    /// Render the resolve sent when the condition clears.
    #[arg(long)]
    pub resolve: bool,
    /// A run spec whose `alerts` declares the adapter.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Print `{adapter, kind, method, url, headers, body}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this run's alerts (an id or a unique prefix).
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// Print `{alerts, queue, last_delivery, failures}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// An adapter's name in the workspace's [alerts], or a kind: slack,
    /// webhook, pager_duty (with the default env names).
    pub adapter: String,
    /// The class the test notification claims.
    #[arg(long, value_name = "CLASS", value_parser = parse_class, default_value = "run_completed")]
    pub event: AlertClass,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ws_flag: Option<&Path>, args: AlertArgs) -> anyhow::Result<i32> {
    match args.command {
        AlertCommand::DryRun(a) => dry_run_cmd(ws_flag, a),
        AlertCommand::List(a) => list(ws_flag, a),
        AlertCommand::Test(a) => test(ws_flag, a),
    }
}

/// The workspace's `[alerts]` (none without a workspace or a config).
fn workspace_alerts(ws_flag: Option<&Path>) -> anyhow::Result<Option<AlertConfig>> {
    let ws = super::workspace_or_cwd(ws_flag)?;
    let path = ws.config_path();
    match OrcaConfig::load(&path) {
        Ok((config, _)) => Ok(config.alerts),
        Err(diags) => {
            let origin = path.display().to_string();
            let text: Vec<String> = diags
                .iter()
                .map(|d| d.display(&origin).to_string())
                .collect();
            Err(exit::InvalidInput::new(text.join("\n")).into())
        }
    }
}

fn unknown(e: DryRunError) -> anyhow::Error {
    match e {
        DryRunError::UnknownAdapter { .. } => exit::InvalidInput {
            message: e.to_string(),
            code: "unknown_adapter".into(),
            details: None,
        }
        .into(),
        DryRunError::Build(_) => anyhow::Error::new(e),
    }
}

pub fn dry_run_cmd(ws_flag: Option<&Path>, args: DryRunArgs) -> anyhow::Result<i32> {
    let config = match &args.spec {
        Some(path) => {
            let ws = super::workspace_or_cwd(ws_flag)?;
            let ctx = ValidateContext {
                workspace_root: Some(ws.root()),
                ..ValidateContext::default()
            };
            orca_actors::spec::check_file(path, &ctx)
                .into_result()?
                .spec
                .alerts
        }
        None => workspace_alerts(ws_flag)?,
    };
    let source = match (&args.agent, &args.run) {
        (Some(agent), _) => AlertSource::agent(agent),
        (None, Some(run)) => AlertSource::run(run),
        (None, None) => AlertSource::run("dry-run"),
    };
    let req = DryRunRequest {
        class: args.event,
        source,
        worker: args.worker,
        task: args.task,
        attempt: args.attempt,
        reason: args.reason,
        adapter: args.adapter,
        kind: if args.resolve {
            NotificationKind::Resolve
        } else {
            NotificationKind::Trigger
        },
    };
    let out = dry_run(&req, config.as_ref(), Timestamp::now()).map_err(unknown)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "adapter": out.adapter,
                "kind": out.kind.as_str(),
                "method": out.method,
                "url": out.url,
                "headers": out.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                "body": out.body,
            }))?
        );
    } else {
        print!("{}", out.to_text());
    }
    Ok(exit::OK)
}

pub fn list(ws_flag: Option<&Path>, args: ListArgs) -> anyhow::Result<i32> {
    let ws = super::read::workspace(ws_flag)?;
    let reader = Reader::open(&ws)?;
    super::runtime()?.block_on(async {
        let list = reader.alerts(args.run.as_deref()).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&list)?);
        } else {
            print!("{}", render::alerts::list(&list));
        }
        Ok(exit::OK)
    })
}

pub fn test(ws_flag: Option<&Path>, args: TestArgs) -> anyhow::Result<i32> {
    let ws = super::workspace_or_cwd(ws_flag)?;
    let req = ProbeRequest {
        adapter: args.adapter.clone(),
        class: args.event,
    };
    let client = crate::client::Client::find(&ws)?;
    let report: ProbeReport = super::runtime()?.block_on(async {
        match &client {
            // The daemon sends: its environment is the one that matters.
            Some(c) => c.post("/v1/alerts/test", serde_json::to_value(&req)?).await,
            None => {
                let config = workspace_alerts(ws_flag)?;
                let sender = Sender::new()?;
                probe(&req, config.as_ref(), &ProcessEnv, &sender)
                    .await
                    .map_err(unknown)
            }
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!(
            "{}",
            render::alerts::probe(
                &report,
                if client.is_some() {
                    "the daemon"
                } else {
                    "this shell"
                }
            )
        );
    }
    Ok(if report.delivered {
        exit::OK
    } else {
        exit::FAILED
    })
}
