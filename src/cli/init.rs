//! `orca init`: create `.orca/` with a commented config, an example spec and
//! a .gitignore. Existing files are kept.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use orca_actors::spec::config::DEFAULT_CONFIG_TOML;
use orca_actors::workspace::Workspace;

use crate::exit;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to initialize (default: the current directory, or
    /// --workspace).
    pub dir: Option<PathBuf>,
}

/// What `.orca/.gitignore` keeps out of git.
pub const GITIGNORE: &str = "# Written by `orca init`: orca's state stays out of git.
journal/
snapshots/
runs/
token
daemon.json
daemon.log
*.lock
";

/// The example spec `orca init` writes.
pub const EXAMPLE_SPEC: &str = r#"# An example run: `orca run .orca/example.toml`.
# Reference: docs/spec.md.
name = "example"

[[tasks]]
id = "hello"
command = ["echo", "hello from orca"]
scorer = { kind = "regex_match", path = "stdout", pattern = "hello" }

[[tasks]]
id = "write-report"
command = "mkdir -p \"$ORCA_ATTEMPT_DIR/artifacts\" && echo '# Report' > \"$ORCA_ATTEMPT_DIR/artifacts/report.md\""
expected_artifacts = ["log", "report"]
timeout_seconds = 30
"#;

pub fn run(ws_flag: Option<&Path>, args: InitArgs) -> anyhow::Result<i32> {
    let root = match (args.dir, ws_flag) {
        (Some(d), _) => d,
        (None, Some(w)) => w.to_path_buf(),
        (None, None) => std::env::current_dir().context("cannot read the current directory")?,
    };
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let ws = Workspace::at(&root);
    let orca = ws.orca_dir();
    let existed = orca.is_dir();
    std::fs::create_dir_all(&orca).with_context(|| format!("cannot create {}", orca.display()))?;

    let mut out = std::io::stdout().lock();
    for (path, contents) in [
        (ws.config_path(), DEFAULT_CONFIG_TOML),
        (orca.join(".gitignore"), GITIGNORE),
        (orca.join("example.toml"), EXAMPLE_SPEC),
    ] {
        let shown = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        if write_new(&path, contents)? {
            writeln!(out, "created {shown}")?;
        } else {
            writeln!(out, "kept    {shown} (already exists)")?;
        }
    }
    if existed {
        writeln!(out, "{} was already initialized", root.display())?;
    } else {
        writeln!(out, "initialized orca workspace in {}", root.display())?;
    }
    writeln!(out, "next: orca run .orca/example.toml")?;
    Ok(exit::OK)
}

/// Makes `root` a workspace (`.orca/` with a config and a .gitignore),
/// keeping what exists.
pub fn ensure(root: &Path) -> anyhow::Result<()> {
    let ws = Workspace::at(root);
    let orca = ws.orca_dir();
    std::fs::create_dir_all(&orca).with_context(|| format!("cannot create {}", orca.display()))?;
    write_new(&ws.config_path(), DEFAULT_CONFIG_TOML)?;
    write_new(&orca.join(".gitignore"), GITIGNORE)?;
    Ok(())
}

/// Writes `contents` to `path` unless it exists; true when written.
fn write_new(path: &Path, contents: &str) -> anyhow::Result<bool> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => {
            f.write_all(contents.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}
