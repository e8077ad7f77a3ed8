//! `orca status [<run>]`, `orca tree [<run>] [--watch]`, `orca events`:
//! through the daemon when one runs, from the journal when not.

use std::io::Write as _;
use std::path::Path;

use clap::Args;
use futures::StreamExt as _;
use orca_actors::view::RunSummary;

use super::source::Reader;
use crate::client::Client;
use crate::exit;
use crate::render;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A run id or a unique prefix (default: every run).
    pub run: Option<String>,
    /// Print JSON (`RunSummary` objects).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TreeArgs {
    /// A run id or a unique prefix (default: every run).
    pub run: Option<String>,
    /// Print the tree as JSON (nodes with path, kind, state, restarts,
    /// strategy, intensity, children).
    #[arg(long)]
    pub json: bool,
    /// Redraw whenever the journal records a change (needs a running orca).
    #[arg(long, conflicts_with = "json")]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// First sequence number to print.
    #[arg(long, value_name = "SEQ", default_value_t = 1)]
    pub from: u64,
    /// Keep printing new events as they are journaled (needs a running
    /// orca; without one, use `orca journal export --follow`).
    #[arg(long)]
    pub follow: bool,
    /// Accepted for symmetry: events are always JSON lines (with it, an
    /// error is a JSON object too).
    #[arg(long)]
    pub json: bool,
}

pub fn status(ws_flag: Option<&Path>, args: StatusArgs) -> anyhow::Result<i32> {
    let ws = super::read::workspace(ws_flag)?;
    let reader = Reader::open(&ws)?;
    super::runtime()?.block_on(async {
        match &args.run {
            Some(name) => {
                let r = reader.run(name, !args.json).await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    print!("{}", render::status::run(&r));
                }
            }
            None => {
                let all: Vec<RunSummary> = reader.runs(!args.json).await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&all)?);
                } else {
                    print!("{}", render::status::runs(&all));
                }
            }
        }
        if let Reader::Daemon(c) = &reader {
            let health: serde_json::Value = c.get("/healthz").await.unwrap_or_default();
            if health["status"] == "degraded" {
                eprintln!(
                    "orca is DEGRADED: {} (the journal refuses appends; see {})",
                    health["reason"].as_str().unwrap_or("unknown"),
                    ws.daemon_log_path().display()
                );
            }
        }
        Ok(exit::OK)
    })
}

pub fn tree(ws_flag: Option<&Path>, args: TreeArgs) -> anyhow::Result<i32> {
    let ws = super::read::workspace(ws_flag)?;
    let reader = Reader::open(&ws)?;
    super::runtime()?.block_on(async {
        if args.watch {
            let Reader::Daemon(client) = &reader else {
                return Err(exit::InvalidInput::new(
                    "`orca tree --watch` follows a running orca, and none runs here; start one with `orca up`",
                )
                .into());
            };
            return watch_tree(client, args.run.as_deref()).await;
        }
        let t = reader.tree(args.run.as_deref()).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&t)?);
        } else {
            print!("{}", render::tree::tree(&t));
        }
        Ok(exit::OK)
    })
}

/// The journal's last durable seq, as the daemon reports it.
async fn last_seq(client: &Client) -> anyhow::Result<u64> {
    let h: serde_json::Value = client.get("/healthz").await?;
    Ok(h["last_seq"].as_u64().unwrap_or(0))
}

/// Redraws the tree on every journaled change (from the event stream; no
/// timer).
async fn watch_tree(client: &Client, run: Option<&str>) -> anyhow::Result<i32> {
    let path = match run {
        Some(r) => format!("/v1/tree?run={}", super::source::seg(r)),
        None => "/v1/tree".into(),
    };
    let draw = |t: &orca_actors::view::TreeNode| {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\x1b[H\x1b[2J{}", render::tree::tree(t));
        let _ = out.flush();
    };
    // Only new events: the tree already shows everything before.
    let from = last_seq(client).await? + 1;
    draw(&client.get(&path).await?);
    let mut events = Box::pin(client.events(from).await?);
    while let Some(ev) = events.next().await {
        ev?;
        draw(&client.get(&path).await?);
    }
    Ok(exit::OK)
}

pub fn events(ws_flag: Option<&Path>, args: EventsArgs) -> anyhow::Result<i32> {
    let ws = super::read::workspace(ws_flag)?;
    super::runtime()?.block_on(async {
        let Some(client) = Client::find(&ws)? else {
            if args.follow {
                return Err(exit::InvalidInput::new(
                    "no orca runs in this workspace; `orca events --follow` needs one (`orca up`), or use `orca journal export --follow`",
                )
                .into());
            }
            // Offline: the journal's export.
            let it = orca_actors::journal::read(
                &ws.journal_dir(),
                orca_actors::journal::ReadRange::from(args.from.max(1)),
            )?;
            let mut out = std::io::stdout().lock();
            for env in it {
                writeln!(out, "{}", env?.export_json())?;
            }
            return Ok(exit::OK);
        };
        let mut events = Box::pin(client.events(args.from.max(1)).await?);
        let last = if args.follow {
            None
        } else {
            // Without --follow: what is journaled now, then stop.
            Some(last_seq(&client).await?)
        };
        if last.is_some_and(|l| l < args.from) {
            return Ok(exit::OK);
        }
        while let Some(ev) = events.next().await {
            let env = ev?;
            {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", env.export_json())?;
                out.flush()?;
            }
            if last.is_some_and(|last| env.seq >= last) {
                break;
            }
        }
        Ok(exit::OK)
    })
}
