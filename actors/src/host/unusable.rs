//! A host that cannot be used: every operation fails with the reason (an
//! ssh worker whose settings are wrong, or an orca built without SSH).

use std::path::Path;

use async_trait::async_trait;

use super::{HostAdapter, HostError, HostPaths, Launch, ProcHandle, RecordedProc, Running, Sig};

/// A worker whose ssh settings cannot be used (validation normally stops
/// these first): every operation fails with the reason.
#[derive(Debug, Clone)]
pub struct Unusable {
    pub name: String,
    pub reason: String,
}

impl Unusable {
    fn err(&self) -> HostError {
        HostError::Spawn {
            program: "ssh".into(),
            reason: format!("{}: {}", self.name, self.reason),
        }
    }
}

#[async_trait]
impl HostAdapter for Unusable {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn paths(&self, task_root_rel: &Path, attempt_dir_rel: &Path) -> HostPaths {
        HostPaths {
            workspace: String::new(),
            cwd: task_root_rel.display().to_string(),
            attempt_dir: attempt_dir_rel.display().to_string(),
        }
    }
    async fn missing_files(&self, _: &HostPaths, _: &[String]) -> Result<Vec<String>, HostError> {
        Err(self.err())
    }
    async fn prepare(&self, _: &HostPaths, _: &[(String, Vec<u8>)]) -> Result<(), HostError> {
        Err(self.err())
    }
    async fn start(&self, _: Launch) -> Result<Running, HostError> {
        Err(self.err())
    }
    async fn signal(&self, _: &ProcHandle, _: Sig) -> Result<(), HostError> {
        Err(self.err())
    }
    async fn alive(&self, _: &ProcHandle) -> Result<bool, HostError> {
        Ok(false)
    }
    async fn collect(&self, _: &HostPaths, _: &Path, _: u64) -> Result<Vec<String>, HostError> {
        Ok(Vec::new())
    }
    async fn cleanup(&self, _: &HostPaths) -> Result<(), HostError> {
        Ok(())
    }
    async fn kill_orphan(&self, _: &RecordedProc, _: u64) -> Result<bool, HostError> {
        Err(self.err())
    }
}
