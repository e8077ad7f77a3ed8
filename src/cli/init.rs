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
    /// Also write a template's spec(s) in the workspace root (never over
    /// an existing file): review-swarm (or code-review-swarm),
    /// release-triage, ci-matrix, nightly-agent.
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,
    /// List the templates and exit.
    #[arg(long)]
    pub list_templates: bool,
}

/// A template: its name, what it is, and the files it writes.
pub struct Template {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub about: &'static str,
    pub files: &'static [(&'static str, &'static str)],
}

/// The templates `orca init --template` knows.
pub const TEMPLATES: &[Template] = &[
    Template {
        name: "review-swarm",
        aliases: &["code-review-swarm"],
        about: "reviewers look at one change from different angles (agent runtime)",
        files: &[(
            "review-swarm.toml",
            include_str!("../../templates/review-swarm.toml"),
        )],
    },
    Template {
        name: "release-triage",
        aliases: &[],
        about: "sweep a milestone's blockers and check the changelog (agent runtime)",
        files: &[(
            "release-triage.toml",
            include_str!("../../templates/release-triage.toml"),
        )],
    },
    Template {
        name: "ci-matrix",
        aliases: &[],
        about: "build, test, lint and docs in parallel, plain commands",
        files: &[(
            "ci-matrix.toml",
            include_str!("../../templates/ci-matrix.toml"),
        )],
    },
    Template {
        name: "nightly-agent",
        aliases: &[],
        about: "a nightly run and an always-on agent that starts and watches it",
        files: &[
            (
                "nightly-agent.toml",
                include_str!("../../templates/nightly-agent.toml"),
            ),
            (
                "nightly-agent.agent.toml",
                include_str!("../../templates/nightly-agent.agent.toml"),
            ),
        ],
    },
];

/// A template by name or alias.
pub fn template(name: &str) -> Option<&'static Template> {
    TEMPLATES
        .iter()
        .find(|t| t.name == name || t.aliases.contains(&name))
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
    if args.list_templates {
        let mut out = std::io::stdout().lock();
        for t in TEMPLATES {
            let aka = if t.aliases.is_empty() {
                String::new()
            } else {
                format!(" (also {})", t.aliases.join(", "))
            };
            writeln!(out, "{:<16} {}{aka}", t.name, t.about)?;
        }
        return Ok(exit::OK);
    }
    let chosen = match args.template.as_deref() {
        None => None,
        Some(name) => match template(name) {
            Some(t) => Some(t),
            None => {
                let names: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
                return Err(exit::InvalidInput {
                    message: format!(
                        "no template {name:?}; the templates are {} (orca init --list-templates)",
                        names.join(", ")
                    ),
                    code: "unknown_template".into(),
                    details: None,
                }
                .into());
            }
        },
    };
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
    let mut files = vec![
        (ws.config_path(), DEFAULT_CONFIG_TOML),
        (orca.join(".gitignore"), GITIGNORE),
        (orca.join("example.toml"), EXAMPLE_SPEC),
    ];
    if let Some(t) = chosen {
        files.extend(t.files.iter().map(|(name, text)| (root.join(name), *text)));
    }
    for (path, contents) in files {
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
    match chosen {
        Some(t) => {
            let (first, _) = t.files[0];
            writeln!(out, "next: orca validate {first}, then orca run {first}")?;
            if t.files.len() > 1 {
                writeln!(
                    out,
                    "      its agent: orca up, then orca agent create {}",
                    t.files[1].0
                )?;
            }
        }
        None => writeln!(out, "next: orca run .orca/example.toml")?,
    }
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
