//! Boot and wiring: opens the journal, builds the root supervision tree and
//! plugs the concrete adapters in; serves the API (`server`). `orca up`
//! and `orca run` (embedded) boot the same way.

pub mod info;
pub mod live;
pub mod server;
pub mod tokens;

use std::sync::Arc;

use anyhow::Context as _;
use orca_actors::journal::{open_writer, JournalError, JournalOptions};
use orca_actors::root::{Root, RootMsg};
use orca_actors::runs::RunsMsg;
use orca_actors::services::{DefaultHosts, HostFactory, Registry, Services, Settings, TokenIssuer};
use orca_actors::spec::OrcaConfig;
use orca_actors::workspace::Workspace;
use ractor::{Actor, ActorRef};

/// A booted orca: the shared services and the root of the tree.
pub struct Orca {
    pub services: Services,
    pub root: ActorRef<RootMsg>,
    /// What journal recovery reported (torn tails dropped, …).
    pub recovery_warnings: Vec<String>,
}

/// What can be plugged in at boot.
#[derive(Default)]
pub struct BootOptions {
    /// Host adapters per worker (default: local and ssh).
    pub hosts: Option<Arc<dyn HostFactory>>,
    /// Per-attempt API tokens (when an API is served).
    pub tokens: Option<Arc<dyn TokenIssuer>>,
    /// Journal options instead of the config's (tests inject sync failures).
    pub journal: Option<JournalOptions>,
    /// Run the agent identities (the daemon; an embedded `orca run` does
    /// not).
    pub agents: bool,
}

/// Opens the workspace's journal (taking the writer lock) and starts the
/// root supervisor.
pub async fn boot(
    ws: &Workspace,
    config: &OrcaConfig,
    hosts: Option<Arc<dyn HostFactory>>,
) -> anyhow::Result<Orca> {
    boot_with(
        ws,
        config,
        BootOptions {
            hosts,
            ..BootOptions::default()
        },
    )
    .await
}

/// [`boot`] with every option.
pub async fn boot_with(
    ws: &Workspace,
    config: &OrcaConfig,
    opts: BootOptions,
) -> anyhow::Result<Orca> {
    let BootOptions {
        hosts,
        tokens,
        journal,
        agents,
    } = opts;
    let journal_opts =
        journal.unwrap_or_else(|| JournalOptions::from_config(config.journal.as_ref()));
    let (journal, report) = match open_writer(&ws.journal_dir(), journal_opts).await {
        Ok(x) => x,
        Err(JournalError::Locked { pid, .. }) => {
            anyhow::bail!(
                "another orca process{} is using the workspace {}; only one may run it at a time",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                ws.root().display()
            )
        }
        Err(e) => return Err(e).context("cannot open the journal"),
    };
    let mut recovery_warnings = report.warnings.clone();
    let discarded =
        match orca_actors::journal::snapshot::discard_ahead(&ws.snapshot_dir(), report.last_seq) {
            Ok(d) => d,
            Err(e) => {
                journal.stop().await;
                return Err(e).context("cannot check the snapshots against the journal");
            }
        };
    for p in discarded {
        recovery_warnings.push(format!(
            "removed snapshot {}: it is ahead of the journal",
            p.display()
        ));
    }
    let mut settings = Settings::from_config(config);
    settings.agents = agents;
    let services = Services {
        ws: ws.clone(),
        journal,
        hosts: hosts.unwrap_or_else(|| Arc::new(DefaultHosts::new(ws, &settings))),
        settings: Arc::new(settings),
        registry: Registry::default(),
        tokens,
    };
    let (root, _) = Actor::spawn(None, Root, services.clone())
        .await
        .context("cannot start the supervision tree")?;
    Ok(Orca {
        services,
        root,
        recovery_warnings,
    })
}

impl Orca {
    /// The `runs` supervisor.
    pub async fn runs(&self) -> anyhow::Result<ActorRef<RunsMsg>> {
        match self.root.call(RootMsg::Runs, None).await {
            Ok(ractor::rpc::CallResult::Success(Some(r))) => Ok(r),
            _ => anyhow::bail!("the supervision tree is not running"),
        }
    }

    /// Suspends every run (attempts interrupted by orca, resumed later),
    /// flushes and closes the journal.
    pub async fn shutdown(&self) {
        let _ = self.root.call(RootMsg::Shutdown, None).await;
    }
}
