//! `orca run <spec>`: runs the supervision tree in-process until the run
//! ends, with a live line of counts, and exits with a code that reflects
//! the receipts. `--resume <run>` rebuilds a run from the journal.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use futures::StreamExt as _;
use orca_actors::control::ControlMessage;
use orca_actors::model::{RunStatus, Surface};
use orca_actors::ops::{self, SubmitRequest};
use orca_actors::path::ActorPath;
use orca_actors::run::state::RunState;
use orca_actors::run::RunMsg;
use orca_actors::runs::{RunsMsg, Submission};
use orca_actors::services::Settings;
use orca_actors::spec::{self, Format, OrcaConfig, ValidateContext};
use orca_actors::view::RunSummary;
use orca_actors::workspace::Workspace;
use ractor::rpc::CallResult;
use tokio::signal::unix::{Signal, SignalKind};

use crate::client::Client;
use crate::daemon::info::Mode;
use crate::daemon::server::{serve, Served};
use crate::exit;
use crate::render;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The spec (JSON or TOML). Not needed with --resume.
    #[arg(required_unless_present = "resume")]
    pub spec: Option<PathBuf>,
    /// Attempts at once (overrides the spec's max_workers; default: the
    /// number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_workers: Option<u32>,
    /// Silence (no output, no event) after which an attempt is stale,
    /// overriding the spec's run-level stale_after_seconds.
    #[arg(long, value_name = "SECONDS")]
    pub stale_after: Option<f64>,
    /// Print the final run view as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Rebuild a run from the journal and carry it on: finished tasks stay
    /// finished; attempts that were running are interrupted (their process
    /// groups killed if still ours) and retried without using up an attempt.
    #[arg(long, value_name = "RUN", conflicts_with = "spec")]
    pub resume: Option<String>,
    /// With a daemon: submit, print the run id and return at once.
    #[arg(long)]
    pub detach: bool,
}

/// The exit code for a run's final status.
pub fn exit_code(status: RunStatus) -> i32 {
    match status {
        RunStatus::Passed => exit::OK,
        RunStatus::AwaitingVerdict => exit::AWAITING_VERDICT,
        RunStatus::Cancelled => exit::CANCELLED,
        RunStatus::Escalated => exit::ESCALATED,
        RunStatus::Failed | RunStatus::Queued | RunStatus::Running | RunStatus::Paused => {
            exit::FAILED
        }
    }
}

pub fn run(ws_flag: Option<&Path>, args: RunArgs) -> anyhow::Result<i32> {
    super::runtime()?.block_on(run_async(ws_flag, args))
}

/// The workspace, creating `.orca/` in the current directory when none is
/// found.
pub(crate) fn workspace_or_create(ws_flag: Option<&Path>) -> anyhow::Result<Workspace> {
    if let Some(ws) = super::find_workspace(ws_flag)? {
        if ws.orca_dir().is_dir() {
            return Ok(ws);
        }
        super::init::ensure(ws.root())?;
        eprintln!("orca: created .orca/ in {}", ws.root().display());
        return Ok(ws);
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    super::init::ensure(&cwd)?;
    eprintln!(
        "orca: no workspace found; created .orca/ in {} (see .orca/config.toml)",
        cwd.display()
    );
    Ok(Workspace::at(cwd))
}

async fn run_async(ws_flag: Option<&Path>, args: RunArgs) -> anyhow::Result<i32> {
    let ws = workspace_or_create(ws_flag)?;
    let config_path = ws.config_path();
    let config = match OrcaConfig::load(&config_path) {
        Ok((c, warnings)) => {
            for w in &warnings {
                eprintln!("{}", w.display(&config_path.display().to_string()));
            }
            c
        }
        Err(diags) => {
            let e = orca_actors::spec::SpecError {
                origin: config_path.display().to_string(),
                diagnostics: diags,
            };
            return invalid(e, args.json);
        }
    };
    let stale_after = match args.stale_after {
        None => None,
        Some(s) => Some(orca_actors::model::positive_seconds(s).ok_or_else(|| {
            exit::InvalidInput::new(format!(
                "--stale-after must be a positive number of seconds, got {s}"
            ))
        })?),
    };

    // Check the spec before taking the workspace: read once, and what was
    // validated is what runs (here or in the daemon).
    let submission = match &args.spec {
        Some(path) => {
            let origin = path.display().to_string();
            let text = match std::fs::read(path).map(String::from_utf8) {
                Ok(Ok(text)) => text,
                // Say why as `orca validate` does.
                _ => {
                    let ctx = ValidateContext::default();
                    return match spec::check_file(path, &ctx).into_result() {
                        Err(e) => invalid(e, args.json),
                        Ok(_) => Ok(exit::INVALID),
                    };
                }
            };
            let ctx = ValidateContext::workspace(ws.root(), &config);
            let prepared = ops::prepare(
                SubmitRequest {
                    text: &text,
                    format: Format::detect(&origin, &text),
                    source: origin.clone(),
                    max_workers: args.max_workers,
                    stale_after,
                    surface: Surface::Cli,
                    parent: None,
                },
                &ctx,
                &Settings::from_config(&config),
            );
            match prepared {
                Ok((sub, warnings)) => {
                    for w in &warnings {
                        eprintln!("{}", w.display(&origin));
                    }
                    // Before anything runs: what orca will not hold a task to.
                    for gap in crate::render::validate::budget_gaps(&sub.spec, &config) {
                        eprintln!("orca: budget not enforced: {gap}");
                    }
                    for gap in crate::render::validate::policy_gaps(
                        &sub.spec,
                        orca_actors::host::sandbox::local_caps(),
                    ) {
                        eprintln!("orca: warning: policy: {gap}");
                    }
                    Some((sub, text))
                }
                Err(e) => return invalid(e, args.json),
            }
        }
        None => None,
    };

    // A running orca takes the run; an embedded one refuses a second.
    if let Some(client) = Client::find(&ws)? {
        if client.info.mode == Mode::Embedded {
            anyhow::bail!(
                "an `orca run` (pid {}) is using this workspace; to run several runs at once, start the daemon with `orca up`",
                client.info.pid
            );
        }
        let Some((sub, text)) = submission else {
            anyhow::bail!(
                "the daemon (pid {}) resumes interrupted runs itself; follow them with `orca status`",
                client.info.pid
            );
        };
        return through_daemon(&ws, &client, sub, text, args.detach, args.json).await;
    }

    let served = serve(
        &ws,
        &config,
        Mode::Embedded,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?;
    for w in &served.orca.recovery_warnings {
        eprintln!("orca: journal recovery: {w}");
    }
    let mut suspended_by = None;
    let result = drive(
        &served,
        submission.map(|(sub, _)| sub),
        args.resume.as_deref(),
        stale_after,
        args.json,
        &mut suspended_by,
    )
    .await;
    let reason = match suspended_by {
        Some(sig) => format!("{sig}: the run was suspended"),
        None => "the embedded run ended".to_string(),
    };
    served.shutdown(&reason).await;
    result
}

/// Submits to the running daemon and follows the run's counts until it
/// ends (Ctrl-C detaches: the run goes on).
async fn through_daemon(
    ws: &Workspace,
    client: &Client,
    sub: Submission,
    text: String,
    detach: bool,
    json: bool,
) -> anyhow::Result<i32> {
    let content_type = if sub.source.to_ascii_lowercase().ends_with(".json") {
        "application/json"
    } else {
        "application/toml"
    };
    let mut path = format!(
        "/v1/fleet/runs?max_workers={}&source={}",
        sub.max_workers,
        super::source::seg(&sub.source)
    );
    if let Some(s) = sub.stale_after {
        path.push_str(&format!("&stale_after={}", s.as_secs_f64()));
    }
    let from = client
        .get::<serde_json::Value>("/healthz")
        .await?
        .get("last_seq")
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
        + 1;
    let answer: serde_json::Value = client.post_text(&path, text, content_type).await?;
    let run = answer["run"].as_str().unwrap_or_default().to_string();
    eprintln!(
        "orca: run {run} submitted to the daemon (pid {})",
        client.info.pid
    );
    if detach {
        println!("{run}");
        return Ok(exit::OK);
    }
    // Whatever breaks from here on may be the daemon going away.
    match follow_in_daemon(client, &run, from, json).await {
        Ok(code) => Ok(code),
        Err(e) => daemon_gone(ws, client, &run, json, e).await,
    }
}

/// Follows the run's counts through the daemon until it ends (Ctrl-C
/// detaches: the run goes on).
async fn follow_in_daemon(
    client: &Client,
    run: &str,
    from: u64,
    json: bool,
) -> anyhow::Result<i32> {
    let tty = std::io::stderr().is_terminal() && !json;
    let started = Instant::now();
    let mut sigint = interrupts()?;
    let mut events = Box::pin(client.events(from).await?);
    let mut last_draw: Option<Instant> = None;
    loop {
        tokio::select! {
            ev = events.next() => {
                let env = match ev {
                    Some(env) => env?,
                    None => anyhow::bail!("the daemon's event stream ended"),
                };
                if env.event.run_id() != Some(run) {
                    continue;
                }
                if matches!(env.event, orca_actors::journal::Event::RunFinished { .. }) {
                    break;
                }
                if tty && last_draw.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                    let s: RunSummary = client.get(&format!("/v1/fleet/runs/{run}?brief=true")).await?;
                    let line = render::run::progress_line(&s.run, &s.counts, s.status, started.elapsed(), terminal_width());
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{line}");
                    let _ = err.flush();
                    last_draw = Some(Instant::now());
                }
            }
            _ = sigint.recv() => {
                if tty {
                    eprintln!();
                }
                eprintln!("orca: detached; run {run} goes on in the daemon (`orca status {run}`, `orca stop {run}`)");
                return Ok(exit::OK);
            }
        }
    }
    if tty {
        eprint!("\r\x1b[2K");
    }
    let s: RunSummary = client.get(&format!("/v1/fleet/runs/{run}")).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", render::run::results(&s));
    }
    Ok(exit_code(s.status))
}

/// A spec or config with errors: every finding on stderr (exit 2); under
/// `--json`, the error object on stdout too.
fn invalid(e: orca_actors::spec::SpecError, json: bool) -> anyhow::Result<i32> {
    if json {
        return Err(e.into());
    }
    eprint!("{e}");
    Ok(exit::INVALID)
}

/// The daemon's event stream broke or ended under a following `orca run`:
/// if the daemon went away, say so, what became of the run (from the
/// journal) and how to carry it on; else it is an error of the stream.
async fn daemon_gone(
    ws: &Workspace,
    client: &Client,
    run: &str,
    json: bool,
    err: anyhow::Error,
) -> anyhow::Result<i32> {
    // A daemon that still holds the workspace and answers is not gone (its
    // lock goes with its last open file, which may close a moment after
    // the connection did).
    if crate::daemon::info::live(ws).is_some()
        && (client.get::<serde_json::Value>("/healthz").await.is_ok()
            || crate::daemon::info::live(ws).is_some())
    {
        return Err(err);
    }
    let pid = client.info.pid;
    let st = orca_actors::runs::fold_run(ws, run).ok();
    match st {
        Some(st) if st.ended_as.is_some() => {
            print_final(&st, json)?;
            Ok(exit_code(st.status()))
        }
        Some(st) => {
            let c = st.counts();
            Err(gone(format!(
                "the daemon (pid {pid}) went away while run {run} was going \
                 ({} passed, {} failed, {} running, {} waiting when it went): \
                 nothing supervises the run now; `orca up` resumes it in a new daemon, \
                 or `orca run --resume {run}` here",
                c.passed,
                c.failed + c.timed_out,
                c.running,
                c.queued + c.retrying
            )))
        }
        None => Err(gone(format!(
            "the daemon (pid {pid}) went away while run {run} was going; \
             `orca up` resumes it in a new daemon, or `orca run --resume {run}` here"
        ))),
    }
}

fn gone(message: String) -> anyhow::Error {
    exit::Failure {
        code: "daemon_gone",
        exit: exit::FAILED,
        message,
    }
    .into()
}

async fn drive(
    served: &Served,
    submission: Option<Submission>,
    resume: Option<&str>,
    stale_after: Option<Duration>,
    json: bool,
    suspended_by: &mut Option<&'static str>,
) -> anyhow::Result<i32> {
    // Before anything starts: a Ctrl-C from here on stops the run (one
    // handler for the whole drive; a `ctrl_c()` future made per loop turn
    // loses a signal that lands while a batch is being applied). SIGTERM
    // and SIGHUP (the terminal went away) suspend it instead, as they do
    // the daemon: the caller's shutdown interrupts the attempts with their
    // grace, and `--resume` carries the run on.
    let mut sigint = interrupts()?;
    let mut sigterm = signal(SignalKind::terminate(), "SIGTERM")?;
    let mut sighup = signal(SignalKind::hangup(), "SIGHUP")?;
    let orca = &served.orca;
    // The run is followed in the live view the API serves (the fleet as
    // the journal holds it): no fold of its own.
    let view = &served.state.view;
    let mut changes = view.watch();
    let runs = orca.runs().await?;
    let run_id = match (submission, resume) {
        (Some(sub), _) => {
            let tasks = sub.spec.tasks.len();
            let workers = sub.max_workers;
            let done = ops::submit(&runs, sub)
                .await
                .map_err(|e| anyhow::anyhow!("cannot start the run: {e}"))?;
            eprintln!(
                "orca: run {}: {tasks} task{}, up to {workers} at once",
                done.run,
                if tasks == 1 { "" } else { "s" }
            );
            done.run
        }
        (None, Some(name)) => {
            let w = orca.services.ws.clone();
            let fleet = tokio::task::spawn_blocking(move || orca_actors::view::FleetView::load(&w))
                .await
                .context("cannot read the journal")??;
            let found = fleet
                .find_run(name)
                .map_err(|e| exit::InvalidInput::new(e.to_string()))?
                .clone();
            if found.ended_as.is_some() {
                eprintln!("orca: run {} already ended ({})", found.run, found.status());
                print_final(&found, json)?;
                return Ok(exit_code(found.status()));
            }
            let id = found.run.clone();
            let limit = orca_actors::view::spawn_limit(&fleet, &found);
            match runs
                .call(
                    |tx| RunsMsg::Resume {
                        state: Box::new(found),
                        stale_after,
                        limit,
                        reply: Some(tx),
                    },
                    None,
                )
                .await
            {
                Ok(CallResult::Success(Ok(()))) => eprintln!("orca: resuming run {id}"),
                Ok(CallResult::Success(Err(e))) => anyhow::bail!("cannot resume run {id}: {e}"),
                _ => anyhow::bail!("cannot resume run {id}: the supervision tree did not answer"),
            }
            id
        }
        (None, None) => anyhow::bail!("nothing to run"),
    };

    let tty = std::io::stderr().is_terminal() && !json;
    let started = Instant::now();
    let mut last_draw: Option<Instant> = None;
    let mut interrupts = 0u32;
    // Set once the run's attempts are all suspended after SIGTERM/SIGHUP.
    let (suspended_tx, mut suspended) = tokio::sync::watch::channel(false);
    let end = loop {
        let mut stop_signal = None;
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    anyhow::bail!("the journal stopped before run {run_id} ended");
                }
                let ended = view.read(|v| match v.runs.get(&run_id) {
                    Some(r) if r.ended_as.is_some() => Some(Some(r.clone())),
                    Some(_) => Some(None),
                    None => None,
                });
                match ended {
                    Some(Some(r)) => break r,
                    Some(None) if tty && last_draw.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) => {
                        if let Some(line) = view.read(|v| {
                            v.runs.get(&run_id).map(|r| {
                                render::run::progress_line(&r.run, &r.counts(), r.status(), started.elapsed(), terminal_width())
                            })
                        }) {
                            let mut err = std::io::stderr().lock();
                            let _ = write!(err, "\r\x1b[2K{line}");
                            let _ = err.flush();
                        }
                        last_draw = Some(Instant::now());
                    }
                    Some(None) | None => {}
                }
            },
            _ = sigterm.recv() => stop_signal = Some("SIGTERM"),
            _ = sighup.recv() => stop_signal = Some("SIGHUP"),
            Ok(()) = suspended.changed(), if suspended_by.is_some() => return Ok(exit::SUSPENDED),
            _ = sigint.recv() => {
                interrupts += 1;
                if suspended_by.is_some() {
                    stop_signal = Some("SIGINT");
                } else if interrupts == 1 {
                    if tty {
                        eprintln!();
                    }
                    eprintln!("orca: stopping run {run_id}: attempts get their grace period; press Ctrl-C again to kill them now");
                    let (registry, runs) = (orca.services.registry.clone(), runs.clone());
                    let path = ActorPath::run(&run_id).to_string();
                    tokio::spawn(async move {
                        let stop = ControlMessage::Stop { reason: Some("Ctrl-C".into()) };
                        if let Err(e) = ops::control(&registry, &runs, &path, &stop, Surface::Cli).await {
                            tracing::warn!(error = %e, "cannot stop the run");
                        }
                    });
                } else {
                    eprintln!("orca: killing the run's attempts");
                    kill_attempts(&runs, &run_id).await;
                    orca_actors::host::cgroup::drain_pool();
                    std::process::exit(exit::CANCELLED);
                }
            }
        }
        if let Some(sig) = stop_signal {
            if suspended_by.is_none() {
                // Suspend the run as `orca down` does; the loop goes on
                // (following the journal, listening for signals) until its
                // attempts are all suspended.
                *suspended_by = Some(sig);
                suspending(&run_id, sig, tty);
                let tx = suspended_tx.clone();
                let runs = runs.clone();
                tokio::spawn(async move {
                    let _ = runs.call(RunsMsg::Suspend, None).await;
                    let _ = tx.send(true);
                });
            } else if sig == "SIGHUP" {
                // A closing terminal sends SIGHUP more than once (the
                // shell to its jobs, the kernel to the foreground group):
                // no one asked to skip the grace.
            } else {
                // Another signal while attempts take their grace: now.
                let _ = writeln!(
                    std::io::stderr(),
                    "orca: {sig} while suspending: killing the run's attempts now; `orca run --resume {run_id}` carries the run on"
                );
                kill_attempts(&runs, &run_id).await;
                orca_actors::host::cgroup::drain_pool();
                std::process::exit(exit::SUSPENDED);
            }
        }
    };
    // The run ended after all (maybe while suspending: then the journal
    // says it ended, not that it was suspended).
    *suspended_by = None;
    if tty {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
    print_final(&end, json)?;
    Ok(exit_code(end.status()))
}

/// Second Ctrl-C: the run's attempts kill their process groups at once
/// (locally and over SSH) and answer once they are gone. An attempt that
/// could not be confirmed killed is named on stderr; `orca run --resume`
/// kills what is left.
async fn kill_attempts(runs: &ractor::ActorRef<RunsMsg>, run: &str) {
    let Some(r) = orca_actors::runs::lookup(runs, run).await else {
        return;
    };
    let failed = match r
        .call(|tx| RunMsg::Kill { reply: tx }, Some(KILL_LIMIT))
        .await
    {
        Ok(CallResult::Success(f)) => f,
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "orca: the run did not confirm its attempts were killed within {}s; `orca run --resume {run}` kills what is left",
                KILL_LIMIT.as_secs()
            );
            return;
        }
    };
    for (attempt, why) in failed {
        let _ = writeln!(
            std::io::stderr(),
            "orca: could not kill attempt {attempt} ({why}); `orca run --resume {run}` kills what is left"
        );
    }
}

/// How long a second Ctrl-C waits for the attempts to be killed.
const KILL_LIMIT: Duration = Duration::from_secs(7);

/// SIGINT as a stream: signals that arrive between polls wait for the next.
fn interrupts() -> anyhow::Result<Signal> {
    signal(SignalKind::interrupt(), "Ctrl-C")
}

fn signal(kind: SignalKind, name: &str) -> anyhow::Result<Signal> {
    tokio::signal::unix::signal(kind).with_context(|| format!("cannot handle {name}"))
}

/// Says that the run is being suspended and how to carry it on. After a
/// hangup stderr may be gone: a failed write is ignored, never a panic.
fn suspending(run_id: &str, signal: &str, tty: bool) {
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "{}orca: {signal}: suspending run {run_id} (attempts get their grace; a second signal kills them now); `orca run --resume {run_id}` carries it on",
        if tty { "\r\x1b[2K" } else { "" }
    );
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

/// Prints the run's final view. A closed stdout (the terminal went away,
/// the reader of a pipe left) is an error, never a panic: orca run must
/// still shut down cleanly.
fn print_final(st: &RunState, json: bool) -> anyhow::Result<()> {
    let text = if json {
        format!("{}\n", serde_json::to_string_pretty(&RunSummary::of(st))?)
    } else {
        render::run::results(&RunSummary::of(st))
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot print the run's results")?;
    Ok(())
}
