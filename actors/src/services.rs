//! What every actor of a workspace shares: the workspace, the journal
//! handle, settings, the hosts, and orca's own map from actor path to actor
//! (ractor's registry is global and flat; orca's paths are a tree).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::host::local::LocalHost;
use crate::host::HostAdapter;
use crate::journal::JournalHandle;
use crate::path::ActorPath;
use crate::spec::{HostSpec, OrcaConfig, RuntimeConfig, WorkerSpec};
use crate::workspace::Workspace;

/// Settings for attempts, from `.orca/config.toml` with defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// SIGTERM → SIGKILL grace.
    pub grace: Duration,
    pub log_cap: u64,
    pub artifact_cap: u64,
    /// `[runtime]`: a preset or an argv template (tasks may name their own).
    pub runtime: Option<RuntimeConfig>,
    /// The price table (the repository's, with `[[prices]]` over it).
    pub prices: std::sync::Arc<crate::runtime::PriceTable>,
    /// Default concurrency (config, else CPUs).
    pub default_max_workers: u32,
    /// The workspace's default alert config (`[alerts]`).
    pub alerts: Option<crate::spec::AlertConfig>,
    /// Whether agent identities run here (the daemon; not an embedded
    /// `orca run`).
    pub agents: bool,
}

impl Settings {
    pub fn from_config(config: &OrcaConfig) -> Self {
        let run = config.run.as_ref();
        Self {
            grace: run
                .and_then(|r| r.grace_seconds)
                .map(|s| s.as_duration())
                .unwrap_or(Duration::from_secs(5)),
            log_cap: run
                .and_then(|r| r.log_cap_bytes)
                .unwrap_or(crate::host::logcap::DEFAULT_LOG_CAP),
            artifact_cap: run
                .and_then(|r| r.artifact_cap_bytes)
                .unwrap_or(crate::attempt::artifacts::DEFAULT_ARTIFACT_CAP),
            runtime: config.runtime().cloned(),
            prices: std::sync::Arc::new(config.price_table()),
            default_max_workers: run.and_then(|r| r.max_workers).unwrap_or_else(cpus),
            alerts: config.alerts.clone(),
            agents: false,
        }
    }
}

/// The number of CPUs (at least 1).
pub fn cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// Issues per-attempt API tokens (the daemon plugs one in).
pub trait TokenIssuer: Send + Sync + fmt::Debug {
    /// The API address workers get as `ORCA_API`.
    fn api_url(&self) -> String;
    /// A token for this attempt (valid until [`TokenIssuer::revoke`]).
    fn issue(&self, attempt: &crate::model::AttemptRef, depth: u32) -> String;
    /// The attempt ended: its token stops working.
    fn revoke(&self, attempt: &crate::model::AttemptRef);
}

/// Builds the host adapter of a worker.
pub trait HostFactory: Send + Sync + fmt::Debug {
    fn host_for(&self, worker: &WorkerSpec) -> Arc<dyn HostAdapter>;
}

/// The default factory: local workers run here, ssh workers on their host
/// through one shared connection per host (the pool lives as long as the
/// factory, so connections are reused across attempts and runs).
#[derive(Debug)]
pub struct DefaultHosts {
    local: Arc<dyn HostAdapter>,
    ssh: crate::host::ssh::Pool,
    workspace_root: std::path::PathBuf,
    /// SIGTERM → SIGKILL grace for groups a dropped connection left behind.
    grace: Duration,
}

impl DefaultHosts {
    pub fn new(ws: &Workspace, settings: &Settings) -> Self {
        Self {
            local: Arc::new(LocalHost::new(ws.root())),
            ssh: crate::host::ssh::Pool::default(),
            workspace_root: ws.root().to_path_buf(),
            grace: settings.grace,
        }
    }
}

impl HostFactory for DefaultHosts {
    fn host_for(&self, worker: &WorkerSpec) -> Arc<dyn HostAdapter> {
        match &worker.host {
            HostSpec::Local(_) => self.local.clone(),
            HostSpec::Ssh(spec) => {
                match crate::host::ssh::SshAdapter::new(
                    &self.ssh,
                    spec,
                    &self.workspace_root,
                    self.grace,
                ) {
                    Ok(a) => Arc::new(a),
                    Err(reason) => Arc::new(crate::host::ssh::Unusable {
                        name: worker.host.display(),
                        reason,
                    }),
                }
            }
        }
    }
}

/// orca's path → actor map (ractor's registry is global and flat).
#[derive(Clone, Debug, Default)]
pub struct Registry {
    inner: Arc<RwLock<HashMap<ActorPath, ractor::ActorCell>>>,
}

impl Registry {
    pub fn register(&self, path: ActorPath, cell: ractor::ActorCell) {
        if let Ok(mut m) = self.inner.write() {
            m.insert(path, cell);
        }
    }

    pub fn unregister(&self, path: &ActorPath) {
        if let Ok(mut m) = self.inner.write() {
            m.remove(path);
        }
    }

    /// The running actor at `path`.
    pub fn get(&self, path: &ActorPath) -> Option<ractor::ActorCell> {
        self.inner.read().ok().and_then(|m| m.get(path).cloned())
    }

    /// Every registered path, sorted.
    pub fn paths(&self) -> Vec<ActorPath> {
        let mut v: Vec<ActorPath> = self
            .inner
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Shared by every actor of a workspace.
#[derive(Clone, Debug)]
pub struct Services {
    pub ws: Workspace,
    pub journal: JournalHandle,
    pub settings: Arc<Settings>,
    pub hosts: Arc<dyn HostFactory>,
    pub registry: Registry,
    pub tokens: Option<Arc<dyn TokenIssuer>>,
}

impl Services {
    /// The host adapter of a slot: a declared worker, or a local slot.
    pub fn host_for(&self, worker: Option<&WorkerSpec>) -> Arc<dyn HostAdapter> {
        match worker {
            Some(w) => self.hosts.host_for(w),
            None => self.hosts.host_for(&WorkerSpec {
                host: HostSpec::default(),
                ..WorkerSpec::default()
            }),
        }
    }
}
