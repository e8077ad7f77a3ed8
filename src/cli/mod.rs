//! The command line: clap derive, one file per command group.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use orca_actors::workspace::{Workspace, WORKSPACE_ENV};

use crate::exit;

mod agent;
mod alert;
mod control;
mod daemon;
mod draft;
mod init;
mod journal;
pub(crate) mod read;
mod run;
mod source;
mod status;
mod ui;
mod validate;
mod verify;

/// orca: local-first supervision for fleets of agent workers.
#[derive(Debug, Parser)]
#[command(name = "orca", version, about, long_about = None)]
#[command(after_help = "Examples:
  orca init
  orca validate examples/smoke.toml
  orca run examples/smoke.toml
  orca journal export | jq .type")]
pub struct Cli {
    /// The workspace (the directory holding .orca/); default: the nearest
    /// one above the current directory.
    #[arg(long, global = true, env = WORKSPACE_ENV, value_name = "DIR")]
    pub workspace: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create .orca/ with a commented config.toml, an example spec and a
    /// .gitignore.
    #[command(after_help = "Examples:
  orca init
  orca init path/to/project")]
    Init(init::InitArgs),

    /// Check a spec (JSON or TOML) and print a normalized summary, or every
    /// error with its file:line:column and field path.
    #[command(after_help = "Examples:
  orca validate examples/smoke.toml
  orca validate tasks.json --json | jq .diagnostics")]
    Validate(validate::ValidateArgs),

    /// Run a spec's tasks under supervision until the run ends. Exit code:
    /// 0 all passed, 1 failures, 2 invalid input, 3 awaiting a verdict,
    /// 4 cancelled, 5 escalated, 6 suspended. Ctrl-C once stops gracefully,
    /// twice kills; SIGTERM or SIGHUP suspend the run for `--resume`.
    #[command(after_help = "Examples:
  orca run examples/smoke.toml
  orca run tasks.json --max-workers 8 --stale-after 120
  orca run --resume r-261121")]
    Run(run::RunArgs),

    /// Counts of a run (or of every run), read from the journal.
    #[command(after_help = "Examples:
  orca status
  orca status r-2611 --json")]
    Status(status::StatusArgs),

    /// The supervision tree, with each node's state, restarts and policy.
    #[command(after_help = "Examples:
  orca tree
  orca tree r-2611 --json")]
    Tree(status::TreeArgs),
    /// Inspect and maintain the event journal (.orca/journal/): export,
    /// stats, verify, repair, compact. Works without a daemon.
    #[command(after_help = "Examples:
  orca journal export --from 1 | jq 'select(.type == \"TaskFinished\")'
  orca journal export --follow
  orca journal stats
  orca journal verify
  orca journal repair --truncate-at-corruption
  orca journal compact --keep 2")]
    Journal(journal::JournalArgs),

    /// One run in detail, or one task: objective, role, host, worker,
    /// attempts with their state and heartbeat, latest event and error,
    /// artifact refs, receipt, alerts.
    #[command(after_help = "Examples:
  orca inspect r-2611
  orca inspect r-2611 lint --json")]
    Inspect(read::InspectArgs),

    /// An attempt's stdout (or stderr), bounded, ANSI stripped.
    #[command(after_help = "Examples:
  orca logs r-2611 lint
  orca logs r-2611 lint --attempt 2 --stderr --tail 4096
  orca logs r-2611 lint --follow")]
    Logs(read::LogsArgs),

    /// A task's artifact refs (kind, path, size, MIME, sha256), never their
    /// contents.
    #[command(after_help = "Examples:
  orca artifacts r-2611 lint
  orca artifacts r-2611 lint --json")]
    Artifacts(read::ArtifactsArgs),

    /// One line per task with its receipt; --json for every receipt.
    #[command(after_help = "Examples:
  orca receipts r-2611
  orca receipts r-2611 --json | jq '.[] | select(.result != \"pass\")'")]
    Receipts(read::ReceiptsArgs),

    /// Run the daemon for this workspace: the supervision tree (resuming
    /// interrupted runs), the HTTP API, .orca/daemon.json and .orca/token.
    #[command(after_help = "Examples:
  orca up
  orca up --detach
  orca up --bind 0.0.0.0:7420")]
    Up(daemon::UpArgs),

    /// Stop the daemon: running attempts get their grace and are journaled as
    /// interrupted by orca; the next `orca up` resumes them.
    #[command(after_help = "Examples:
  orca down")]
    Down(daemon::DownArgs),

    /// Interrupt a worker's current attempt (its task ends skip).
    #[command(after_help = "Examples:
  orca interrupt r-2611:local-2
  orca interrupt local-2")]
    Interrupt(control::WorkerArgs),

    /// Restart a worker's current attempt (a new attempt, using up none).
    #[command(after_help = "Examples:
  orca restart r-2611:gpu-box")]
    Restart(control::WorkerArgs),

    /// Cancel a run (or every run): queued tasks end skip, attempts get
    /// their grace.
    #[command(after_help = "Examples:
  orca stop r-2611
  orca stop --all --reason \"maintenance\"")]
    Stop(control::StopArgs),

    /// Stop leasing new tasks of a run (running attempts go on).
    #[command(after_help = "Examples:
  orca pause r-2611")]
    Pause(control::RunArg),

    /// Lease a paused run's tasks again.
    #[command(after_help = "Examples:
  orca resume r-2611")]
    Resume(control::RunArg),

    /// Send a typed control message to the actor at a path.
    #[command(after_help = "Examples:
  orca send /runs/r-2611/attempts/lint:2 interrupt
  orca send /runs/r-2611 stop --arg reason=\"wrong branch\"")]
    Send(control::SendArgs),

    /// The journal's events as JSON lines (through the daemon when one runs).
    #[command(after_help = "Examples:
  orca events --from 100
  orca events --follow | jq 'select(.type == \"TaskFinished\")'")]
    Events(status::EventsArgs),

    /// Always-on agent identities (they live in the daemon): create,
    /// update, list, show, explain, tell, approve, deny, pause, resume,
    /// retire, events.
    #[command(after_help = "Examples:
  orca agent create agents/nightly-watch.toml
  orca agent explain nightly-watch
  orca agent tell nightly-watch \"look at the flaky lint task\"
  orca agent events nightly-watch --follow")]
    Agent(agent::AgentArgs),

    /// A Model Context Protocol server over stdio: orca's fleet as tools
    /// for an agent CLI (a think attempt's runtime loads it; add it to your
    /// own CLI with `orca mcp` as the command).
    #[command(after_help = "Examples:
  claude --mcp-config '{\"mcpServers\":{\"orca\":{\"command\":\"orca\",\"args\":[\"mcp\"]}}}'
  codex -c 'mcp_servers.orca.command=\"orca\"' -c 'mcp_servers.orca.args=[\"mcp\"]'")]
    Mcp,

    /// Ask the configured agent CLI to write a run spec for a request;
    /// orca validates it (feeding errors back for repairs) and writes it.
    #[command(after_help = "Examples:
  orca draft \"run the tests on every crate and review the diff\"
  orca draft \"nightly dependency audit\" --out audit.toml --run")]
    Draft(draft::DraftArgs),

    /// Print a shell completion script.
    #[command(after_help = "Examples:
  orca completions bash > ~/.local/share/bash-completion/completions/orca
  orca completions zsh > \"${fpath[1]}/_orca\"
  orca completions fish > ~/.config/fish/completions/orca.fish")]
    Completions {
        /// bash, zsh or fish (also elvish, powershell).
        shell: clap_complete::Shell,
    },

    /// Alerts: preview a payload (dry-run), list raised alerts and their
    /// delivery, send a test notification through an adapter.
    #[command(after_help = "Examples:
  orca alert dry-run --event stale --run r-2611 --task lint --adapter slack
  orca alert list --run r-2611
  orca alert test ops-slack")]
    Alert(alert::AlertArgs),

    /// `orca alert list`.
    #[command(after_help = "Examples:
  orca alerts --run r-2611 --json")]
    Alerts(alert::ListArgs),

    /// The seed's spelling of `orca alert dry-run` (its flags --run-id,
    /// --worker-id, --task-id work in both).
    #[command(name = "alert-dry-run", hide = true)]
    AlertDryRun(alert::DryRunArgs),

    /// Give a manual verdict on an attempt awaiting one (scorer `manual`).
    #[command(after_help = "Examples:
  orca verify r-2611 review --pass --note \"checked the diff\"
  orca verify r-2611 review --fail --note \"misses the edge case\"")]
    Verify(verify::VerifyArgs),

    /// A one-use link (60 s) to the web console of the running daemon or
    /// `orca run`; opened with $BROWSER (else xdg-open) on a terminal.
    #[command(after_help = "Examples:
  orca ui
  orca ui --no-open --json")]
    Ui(ui::UiArgs),
}

impl Command {
    /// Whether the command was asked for JSON: then its result, and any
    /// error, is JSON on stdout.
    pub fn json(&self) -> bool {
        match self {
            Command::Validate(a) => a.json,
            Command::Run(a) => a.json,
            Command::Status(a) => a.json,
            Command::Tree(a) => a.json,
            Command::Journal(a) => a.json(),
            Command::Inspect(a) => a.json,
            Command::Logs(a) => a.json,
            Command::Artifacts(a) => a.json,
            Command::Receipts(a) => a.json,
            Command::Interrupt(a) | Command::Restart(a) => a.json,
            Command::Stop(a) => a.json,
            Command::Pause(a) | Command::Resume(a) => a.json,
            Command::Send(a) => a.json,
            Command::Events(a) => a.json,
            Command::Verify(a) => a.json,
            Command::Alert(a) => a.json(),
            Command::Agent(a) => a.json(),
            Command::Mcp | Command::Completions { .. } => false,
            Command::Draft(a) => a.json,
            Command::Alerts(a) => a.json,
            Command::AlertDryRun(a) => a.json,
            Command::Ui(a) => a.json,
            Command::Init(_) | Command::Up(_) | Command::Down(_) => false,
        }
    }
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_) | Command::Up(_)) {
        end_quietly_on_a_closed_pipe();
    }
    init_tracing();
    let json = cli.command.json();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            // Under --json an error is one JSON object on stdout (and a
            // line for people on stderr); the exit code is the same.
            if json {
                println!("{}", exit::json_error(&err));
            }
            eprintln!("error: {err:#}");
            exit::code_for(&err)
        }
    }
}

/// Commands that print and end (`orca receipts <run> | head`) stop quietly
/// when their reader goes away, as Unix filters do, instead of failing on a
/// write to the closed pipe: SIGPIPE gets its default action back (Rust
/// ignores it). Sockets are unaffected (std sends with MSG_NOSIGNAL), and
/// `orca run` / `orca up` keep ignoring it: they supervise workers and
/// must not die because a terminal pipe closed.
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: sets a signal disposition before any thread is started; no
    // handler function is involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let ws = cli.workspace.as_deref();
    match cli.command {
        Command::Init(args) => init::run(ws, args),
        Command::Validate(args) => validate::run(ws, args),
        Command::Run(args) => run::run(ws, args),
        Command::Status(args) => status::status(ws, args),
        Command::Tree(args) => status::tree(ws, args),
        Command::Journal(args) => journal::run(ws, args),
        Command::Inspect(args) => read::inspect(ws, args),
        Command::Logs(args) => read::logs(ws, args),
        Command::Artifacts(args) => read::artifacts(ws, args),
        Command::Receipts(args) => read::receipts(ws, args),
        Command::Verify(args) => verify::run(ws, args),
        Command::Up(args) => daemon::up(ws, args),
        Command::Down(args) => daemon::down(ws, args),
        Command::Interrupt(args) => control::interrupt(ws, args, false),
        Command::Restart(args) => control::interrupt(ws, args, true),
        Command::Stop(args) => control::stop(ws, args),
        Command::Pause(args) => control::pause(ws, args, false),
        Command::Resume(args) => control::pause(ws, args, true),
        Command::Send(args) => control::send(ws, args),
        Command::Events(args) => status::events(ws, args),
        Command::Alert(args) => alert::run(ws, args),
        Command::Agent(args) => agent::run(ws, args),
        Command::Draft(args) => draft::run(ws, args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "orca", &mut std::io::stdout());
            Ok(0)
        }
        Command::Mcp => {
            let ws = read::workspace(ws)?;
            runtime()?.block_on(crate::mcp::serve(ws))?;
            Ok(0)
        }
        Command::Alerts(args) => alert::list(ws, args),
        Command::AlertDryRun(args) => alert::dry_run_cmd(ws, args),
        Command::Ui(args) => ui::run(ws, args),
    }
}

/// tracing to stderr, filtered by `ORCA_LOG` (or `RUST_LOG`); warnings by
/// default.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("ORCA_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// The workspace: `--workspace` / `ORCA_WORKSPACE`, else the nearest
/// `.orca/` above the current directory.
pub fn find_workspace(flag: Option<&Path>) -> anyhow::Result<Option<Workspace>> {
    if let Some(dir) = flag {
        let dir = absolute(dir)?;
        return Ok(Some(Workspace::at(dir)));
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(Workspace::discover(&cwd))
}

/// The workspace, or the current directory when there is none (for commands
/// that work without one).
pub fn workspace_or_cwd(flag: Option<&Path>) -> anyhow::Result<Workspace> {
    match find_workspace(flag)? {
        Some(ws) => Ok(ws),
        None => Ok(Workspace::at(
            std::env::current_dir().context("cannot read the current directory")?,
        )),
    }
}

/// A multi-threaded tokio runtime for commands that run actors.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .context("cannot read the current directory")?
            .join(p))
    }
}
