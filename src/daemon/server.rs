//! Serving a workspace: the API on a listener, the supervision tree, the
//! live view, per-attempt tokens, `daemon.json`. `orca up` (mode daemon)
//! and `orca run` without a daemon (mode embedded) serve the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use orca_actors::journal::{Event, NewEvent};
use orca_actors::model::Timestamp;
use orca_actors::path::ActorPath;
use orca_actors::runs::RunsMsg;
use orca_actors::spec::OrcaConfig;
use orca_actors::workspace::Workspace;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::info::{self, DaemonInfo, Mode};
use super::live::LiveView;
use super::tokens::AttemptTokens;
use super::{boot_with, BootOptions, Orca};
use crate::api::{self, ApiState};

/// How long an embedded `orca run` waits for its alerts to be delivered.
const ALERT_DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

/// A served workspace.
pub struct Served {
    pub orca: Orca,
    pub info: DaemonInfo,
    pub state: ApiState,
    server: tokio::task::JoinHandle<()>,
    stop_server: Arc<Notify>,
    closing: tokio::sync::watch::Sender<bool>,
    ws: Workspace,
}

/// Whether an address is loopback (the default); others need `--bind` and
/// get a warning.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Boots the tree and serves the API on `bind` (port 0: a free port).
pub async fn serve(
    ws: &Workspace,
    config: &OrcaConfig,
    mode: Mode,
    bind: SocketAddr,
) -> anyhow::Result<Served> {
    serve_with(ws, config, mode, bind, None).await
}

/// [`serve`] with journal options of the caller's (tests inject sync
/// failures through them).
pub async fn serve_with(
    ws: &Workspace,
    config: &OrcaConfig,
    mode: Mode,
    bind: SocketAddr,
    journal: Option<orca_actors::journal::JournalOptions>,
) -> anyhow::Result<Served> {
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    let token = info::token(ws)?;
    let attempts = AttemptTokens::new(format!("http://{addr}"));
    let journal_opts = journal.unwrap_or_else(|| {
        orca_actors::journal::JournalOptions::from_config(config.journal.as_ref())
    });
    let orca = boot_with(
        ws,
        config,
        BootOptions {
            hosts: None,
            tokens: Some(attempts.clone()),
            journal: Some(journal_opts.clone()),
            agents: mode == Mode::Daemon,
        },
    )
    .await?;
    let snapshot_every = journal_opts.snapshot_every;
    let view = LiveView::start(&orca.services.journal, ws, snapshot_every).await?;
    let shutdown = Arc::new(Notify::new());
    let started = Timestamp::now();
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let state = ApiState {
        services: orca.services.clone(),
        root: orca.root.clone(),
        view,
        token: Arc::new(token),
        attempts,
        config: Arc::new(config.clone()),
        shutdown: shutdown.clone(),
        started,
        mode,
        closing,
        console: Arc::new(crate::console::ConsoleAuth::new(addr)),
        events: api::EventFeed::start(&orca.services.journal),
    };
    let app = api::router(state.clone());
    let stop_server = Arc::new(Notify::new());
    let stop = stop_server.clone();
    let server = tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.notified().await })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "the API server stopped");
        }
    });
    let info = DaemonInfo {
        pid: std::process::id(),
        address: addr.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: started,
        mode,
    };
    orca.services
        .journal
        .append(vec![NewEvent::new(
            ActorPath::Root.to_string(),
            Event::DaemonStarted {
                pid: info.pid,
                version: info.version.clone(),
                address: info.address.clone(),
                embedded: mode == Mode::Embedded,
            },
        )])
        .await
        .context("cannot journal the start")?;
    info.write(ws)?;
    Ok(Served {
        orca,
        info,
        state,
        server,
        stop_server,
        closing: closing_tx,
        ws: ws.clone(),
    })
}

impl Served {
    /// Waits until `orca down` (the shutdown route) asks to stop.
    pub async fn shutdown_requested(&self) {
        self.state.shutdown.notified().await;
    }

    /// Suspends every run (running attempts get their grace and are
    /// journaled as interrupted by orca; the next start resumes them),
    /// stops serving and closes the journal.
    pub async fn shutdown(self, reason: &str) {
        DaemonInfo::remove(&self.ws);
        if let Ok(runs) = self.state.runs() {
            let _ = runs.call(RunsMsg::Suspend, None).await;
        }
        // An embedded `orca run` delivers what its run raised before it
        // exits (a daemon's next start would, but there may be none).
        if self.info.mode == Mode::Embedded
            && !orca_actors::alert::actor::drain(&self.orca.services, ALERT_DRAIN).await
        {
            eprintln!(
                "orca: some alerts are not delivered yet (after {}s); the next orca start delivers them",
                ALERT_DRAIN.as_secs()
            );
        }
        let _ = self
            .orca
            .services
            .journal
            .append(vec![NewEvent::new(
                ActorPath::Root.to_string(),
                Event::DaemonStopped {
                    pid: self.info.pid,
                    reason: reason.to_string(),
                },
            )])
            .await;
        // Long-lived streams (events, tree --watch) end first, or the
        // graceful shutdown would wait for them forever.
        let _ = self.closing.send(true);
        self.stop_server.notify_one();
        let mut server = self.server;
        if tokio::time::timeout(std::time::Duration::from_secs(10), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        self.orca.shutdown().await;
    }
}
