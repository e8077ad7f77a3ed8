//! `orca status [<run>]` and `orca tree [<run>]`: offline reads of the
//! journal (they work while a run is going and after it ended).

use std::path::Path;

use clap::Args;
use orca_actors::journal::JournalHealth;
use orca_actors::view::{self, FleetView, JournalFacts, RunSummary};
use orca_actors::workspace::Workspace;

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
}

fn workspace(ws_flag: Option<&Path>) -> anyhow::Result<Workspace> {
    match super::find_workspace(ws_flag)? {
        Some(ws) if ws.orca_dir().is_dir() => Ok(ws),
        _ => Err(exit::InvalidInput(
            "no orca workspace here (no .orca/ in this directory or above); run `orca init` or `orca run <spec>`".into(),
        )
        .into()),
    }
}

/// Folds the workspace's journal.
pub fn load_view(ws: &Workspace) -> anyhow::Result<FleetView> {
    Ok(FleetView::load(&ws.journal_dir())?)
}

pub fn status(ws_flag: Option<&Path>, args: StatusArgs) -> anyhow::Result<i32> {
    let ws = workspace(ws_flag)?;
    let v = load_view(&ws)?;
    match &args.run {
        Some(name) => {
            let r = v.find_run(name).map_err(exit::InvalidInput)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&RunSummary::of(r))?);
            } else {
                print!("{}", render::status::run(r));
            }
        }
        None => {
            if args.json {
                let all: Vec<RunSummary> = v.runs.values().rev().map(RunSummary::of).collect();
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print!("{}", render::status::runs(&v));
            }
        }
    }
    Ok(exit::OK)
}

pub fn tree(ws_flag: Option<&Path>, args: TreeArgs) -> anyhow::Result<i32> {
    let ws = workspace(ws_flag)?;
    let v = load_view(&ws)?;
    let only = match &args.run {
        Some(name) => Some(v.find_run(name).map_err(exit::InvalidInput)?.run.clone()),
        None => None,
    };
    let facts = JournalFacts {
        state: match health_offline(&ws) {
            JournalHealth::Ok => "ok".into(),
            other => format!("{other:?}").to_lowercase(),
        },
        detail: format!("last seq {}", v.last_seq),
    };
    let t = view::tree(&v, &facts, only.as_deref());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        print!("{}", render::tree::tree(&t));
    }
    Ok(exit::OK)
}

/// Offline, the journal is "ok" when it reads; a writer's health is only
/// known to the process that holds it.
fn health_offline(_ws: &Workspace) -> JournalHealth {
    JournalHealth::Ok
}
