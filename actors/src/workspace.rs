//! A workspace is the directory holding `.orca/`. This module finds it and
//! names every path orca keeps under it (DESIGN.md "Shared contracts: Paths").

use std::path::{Path, PathBuf};

/// The directory name orca keeps its state in.
pub const ORCA_DIR: &str = ".orca";

/// Environment variable that overrides workspace discovery.
pub const WORKSPACE_ENV: &str = "ORCA_WORKSPACE";

/// A workspace root and the paths under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// A workspace rooted at `root` (which need not have `.orca/` yet).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Walks up from `start` to the nearest directory holding `.orca/`.
    pub fn discover(start: &Path) -> Option<Self> {
        start
            .ancestors()
            .find(|dir| dir.join(ORCA_DIR).is_dir())
            .map(Self::at)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `.orca/`
    pub fn orca_dir(&self) -> PathBuf {
        self.root.join(ORCA_DIR)
    }

    /// `.orca/config.toml`
    pub fn config_path(&self) -> PathBuf {
        self.orca_dir().join("config.toml")
    }

    /// `.orca/journal/`
    pub fn journal_dir(&self) -> PathBuf {
        self.orca_dir().join("journal")
    }

    /// `.orca/snapshots/`
    pub fn snapshot_dir(&self) -> PathBuf {
        self.orca_dir().join("snapshots")
    }

    /// `.orca/runs/`
    pub fn runs_dir(&self) -> PathBuf {
        self.orca_dir().join("runs")
    }

    /// `.orca/runs/<run>/`
    pub fn run_dir(&self, run: &str) -> PathBuf {
        self.runs_dir().join(run)
    }

    /// `$ORCA_ATTEMPT_DIR`: `.orca/runs/<run>/<task>/<n>/`
    pub fn attempt_dir(&self, run: &str, task: &str, attempt: u32) -> PathBuf {
        self.run_dir(run).join(task).join(attempt.to_string())
    }

    /// When an attempt last wrote output (its logs' modification time),
    /// if it wrote any: the last sign of life of a plain command that
    /// reports no events, as far as the files tell.
    pub fn last_output(
        &self,
        run: &str,
        task: &str,
        attempt: u32,
    ) -> Option<crate::model::Timestamp> {
        let dir = self.attempt_dir(run, task, attempt);
        ["stdout.log", "stderr.log"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok()?.modified().ok())
            .max()
            .map(|t| crate::model::Timestamp::from_datetime(t.into()))
    }

    /// `.orca/token`
    pub fn token_path(&self) -> PathBuf {
        self.orca_dir().join("token")
    }

    /// `.orca/daemon.json`
    pub fn daemon_info_path(&self) -> PathBuf {
        self.orca_dir().join("daemon.json")
    }

    /// `.orca/daemon.log`
    pub fn daemon_log_path(&self) -> PathBuf {
        self.orca_dir().join("daemon.log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovers_nearest_orca_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("a");
        let deep = root.join("b/c");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(
            Workspace::discover(&deep),
            None.or(Workspace::discover(&deep))
        );
        std::fs::create_dir_all(root.join(ORCA_DIR)).unwrap();
        assert_eq!(Workspace::discover(&deep), Some(Workspace::at(&root)));
        std::fs::create_dir_all(deep.join(ORCA_DIR)).unwrap();
        assert_eq!(Workspace::discover(&deep), Some(Workspace::at(&deep)));
    }

    #[test]
    fn attempt_dir_layout() {
        let ws = Workspace::at("/w");
        assert_eq!(
            ws.attempt_dir("r-1", "lint", 2),
            PathBuf::from("/w/.orca/runs/r-1/lint/2")
        );
    }
}
