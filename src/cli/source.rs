//! Where read commands get their data: the daemon when one runs (it holds
//! the live view), the journal when not — the same public types either
//! way, so the output is the same.

use orca_actors::alert::view::AlertList;
use orca_actors::journal::JournalHealth;
use orca_actors::view::{
    self, find_task, FleetView, JournalFacts, ReceiptView, RunSummary, TreeNode,
};
use orca_actors::workspace::Workspace;

use crate::client::Client;
use crate::exit;
use crate::render::inspect::TaskInspection;

/// A source of views.
pub enum Reader {
    Daemon(Client),
    Offline(Box<FleetView>, Workspace),
}

fn invalid(e: impl ToString) -> anyhow::Error {
    exit::InvalidInput::new(e.to_string()).into()
}

/// Percent-encodes a path segment (ids are plain, but prefixes come from
/// the command line).
pub fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Reader {
    pub fn open(ws: &Workspace) -> anyhow::Result<Reader> {
        match Client::find(ws)? {
            Some(c) => Ok(Reader::Daemon(c)),
            None => Ok(Reader::Offline(Box::new(FleetView::load(ws)?), ws.clone())),
        }
    }

    pub async fn runs(&self, brief: bool) -> anyhow::Result<Vec<RunSummary>> {
        match self {
            Reader::Daemon(c) => c.get(&format!("/v1/fleet/runs?brief={brief}")).await,
            Reader::Offline(v, _) => Ok(v
                .runs_newest_first()
                .into_iter()
                .map(|r| {
                    let mut s = RunSummary::offline(r);
                    if brief {
                        s.tasks.clear();
                    }
                    s
                })
                .collect()),
        }
    }

    pub async fn run(&self, name: &str, brief: bool) -> anyhow::Result<RunSummary> {
        match self {
            Reader::Daemon(c) => {
                c.get(&format!("/v1/fleet/runs/{}?brief={brief}", seg(name)))
                    .await
            }
            Reader::Offline(v, _) => {
                let mut s = RunSummary::offline(v.find_run(name).map_err(invalid)?);
                if brief {
                    s.tasks.clear();
                }
                Ok(s)
            }
        }
    }

    pub async fn task(&self, run: &str, task: &str) -> anyhow::Result<TaskInspection> {
        match self {
            Reader::Daemon(c) => {
                c.get(&format!("/v1/fleet/runs/{}/tasks/{}", seg(run), seg(task)))
                    .await
            }
            Reader::Offline(v, ws) => {
                let r = v.find_run(run).map_err(invalid)?;
                let t = find_task(r, task).map_err(invalid)?;
                Ok(TaskInspection::of(r, t, r.parsed_spec().as_deref())
                    .with_last_output(|n| ws.last_output(&r.run, &t.id, n)))
            }
        }
    }

    pub async fn receipts(&self, run: &str) -> anyhow::Result<Vec<ReceiptView>> {
        match self {
            Reader::Daemon(c) => {
                c.get(&format!("/v1/fleet/runs/{}/receipts", seg(run)))
                    .await
            }
            Reader::Offline(v, _) => Ok(ReceiptView::all(v.find_run(run).map_err(invalid)?)),
        }
    }

    /// Alerts (of one run) and where their delivery stands.
    pub async fn alerts(&self, run: Option<&str>) -> anyhow::Result<AlertList> {
        match self {
            Reader::Daemon(c) => match run {
                Some(r) => c.get(&format!("/v1/alerts?run={}", seg(r))).await,
                None => c.get("/v1/alerts").await,
            },
            Reader::Offline(v, _) => {
                let run = match run {
                    Some(name) => Some(v.find_run(name).map_err(invalid)?.run.clone()),
                    None => None,
                };
                Ok(v.alerts.list(run.as_deref()))
            }
        }
    }

    pub async fn tree(&self, run: Option<&str>) -> anyhow::Result<TreeNode> {
        match self {
            Reader::Daemon(c) => match run {
                Some(r) => c.get(&format!("/v1/tree?run={}", seg(r))).await,
                None => c.get("/v1/tree").await,
            },
            Reader::Offline(v, _) => {
                let only = match run {
                    Some(name) => Some(v.find_run(name).map_err(invalid)?.run.clone()),
                    None => None,
                };
                let facts = JournalFacts {
                    state: match JournalHealth::Ok {
                        JournalHealth::Ok => "ok".into(),
                        other => format!("{other:?}").to_lowercase(),
                    },
                    detail: format!("last seq {}", v.last_seq),
                };
                Ok(view::tree(v, &facts, only.as_deref()))
            }
        }
    }
}
