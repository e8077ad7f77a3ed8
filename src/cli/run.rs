//! `orca run <spec>`: runs the supervision tree in-process until the run
//! ends, with a live line of counts, and exits with a code that reflects
//! the receipts. `--resume <run>` rebuilds a run from the journal.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use futures::StreamExt as _;
use orca_actors::model::{RunStatus, Surface};
use orca_actors::run::state::RunState;
use orca_actors::run::RunMsg;
use orca_actors::runs::{fold_run, RunsMsg, Submission};
use orca_actors::services::Settings;
use orca_actors::spec::{self, OrcaConfig, ValidateContext};
use orca_actors::view::RunSummary;
use orca_actors::workspace::Workspace;
use ractor::rpc::CallResult;
use tokio::signal::unix::{Signal, SignalKind};
use tokio::sync::broadcast::error::RecvError;

use crate::client::Client;
use crate::daemon::info::Mode;
use crate::daemon::server::serve;
use crate::daemon::Orca;
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
            for d in &diags {
                eprintln!("{}", d.display(&config_path.display().to_string()));
            }
            return Ok(exit::INVALID);
        }
    };
    let stale_after = match args.stale_after {
        None => None,
        Some(s) => Some(orca_actors::model::positive_seconds(s).ok_or_else(|| {
            exit::InvalidInput(format!(
                "--stale-after must be a positive number of seconds, got {s}"
            ))
        })?),
    };

    // Check the spec before taking the workspace.
    let submission = match &args.spec {
        Some(path) => {
            let ctx = ValidateContext {
                workspace_root: Some(ws.root()),
                runtime: config.runtime(),
            };
            let report = spec::check_file(path, &ctx);
            let origin = report.origin.clone();
            match report.into_result() {
                Ok(valid) => {
                    for w in &valid.warnings {
                        eprintln!("{}", w.display(&origin));
                    }
                    let settings = Settings::from_config(&config);
                    let max_workers = args
                        .max_workers
                        .or(valid.spec.max_workers)
                        .unwrap_or(settings.default_max_workers);
                    Some(Submission {
                        spec: valid.spec,
                        source: origin,
                        max_workers,
                        stale_after,
                        surface: Surface::Cli,
                        parent: None,
                        depth: 0,
                    })
                }
                Err(e) => {
                    eprint!("{e}");
                    return Ok(exit::INVALID);
                }
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
        let Some(sub) = submission else {
            anyhow::bail!(
                "the daemon (pid {}) resumes interrupted runs itself; follow them with `orca status`",
                client.info.pid
            );
        };
        let text = std::fs::read_to_string(args.spec.as_deref().unwrap_or(Path::new("")))?;
        return through_daemon(&client, sub, text, args.detach, args.json).await;
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
        &served.orca,
        &ws,
        submission,
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
    let tty = std::io::stderr().is_terminal() && !json;
    let started = Instant::now();
    let mut sigint = interrupts()?;
    let mut events = Box::pin(client.events(from).await?);
    let mut last_draw: Option<Instant> = None;
    loop {
        tokio::select! {
            ev = events.next() => {
                let Some(ev) = ev else { anyhow::bail!("the daemon's event stream ended") };
                let ev = ev?;
                let ours = ev["run"].as_str() == Some(run.as_str())
                    || ev["attempt"]["run"].as_str() == Some(run.as_str())
                    || ev["actor"].as_str().is_some_and(|a| a.starts_with(&format!("/runs/{run}")));
                if !ours {
                    continue;
                }
                if ev["type"] == "RunFinished" {
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

async fn drive(
    orca: &Orca,
    ws: &Workspace,
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
    let runs = orca.runs().await?;
    // Subscribe before submitting so no event of the run is missed.
    let mut feed = orca.services.journal.subscribe();
    let mut state: Option<RunState> = None;
    let run_id = match (submission, resume) {
        (Some(sub), _) => {
            let tasks = sub.spec.tasks.len();
            let workers = sub.max_workers;
            match runs
                .call(|tx| RunsMsg::Submit(Box::new(sub), tx), None)
                .await
            {
                Ok(CallResult::Success(Ok(id))) => {
                    eprintln!(
                        "orca: run {id}: {tasks} task{}, up to {workers} at once",
                        if tasks == 1 { "" } else { "s" }
                    );
                    id
                }
                Ok(CallResult::Success(Err(e))) => anyhow::bail!("cannot start the run: {e}"),
                _ => anyhow::bail!("cannot start the run: the supervision tree did not answer"),
            }
        }
        (None, Some(name)) => {
            let w = ws.clone();
            let view = tokio::task::spawn_blocking(move || orca_actors::view::FleetView::load(&w))
                .await
                .context("cannot read the journal")??;
            let found = view.find_run(name).map_err(exit::InvalidInput)?.clone();
            if found.ended_as.is_some() {
                eprintln!("orca: run {} already ended ({})", found.run, found.status());
                print_final(&found, json)?;
                return Ok(exit_code(found.status()));
            }
            let id = found.run.clone();
            // The fleet view holds the whole run as folded.
            let folded = found;
            state = Some(folded.clone());
            match runs
                .call(
                    |tx| RunsMsg::Resume {
                        state: Box::new(folded),
                        stale_after,
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
            batch = feed.recv() => match batch {
                Ok(envs) => {
                    for env in envs.iter() {
                        if env.event.run_id() != Some(run_id.as_str()) {
                            continue;
                        }
                        match (&env.event, state.as_mut()) {
                            (orca_actors::journal::Event::RunSubmitted(s), None) => {
                                let mut st = RunState::submitted(s, env.at);
                                st.apply(env.seq, env.at, &env.event);
                                state = Some(st);
                            }
                            (_, Some(st)) if env.seq > st.last_seq => st.apply(env.seq, env.at, &env.event),
                            _ => {}
                        }
                    }
                    if let Some(st) = &state {
                        if tty && last_draw.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                            draw(st, started.elapsed());
                            last_draw = Some(Instant::now());
                        }
                        if st.ended_as.is_some() {
                            break st.clone();
                        }
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // Fell behind the feed: catch up from the files.
                    let w = ws.clone();
                    let id = run_id.clone();
                    if let Ok(Ok(st)) = tokio::task::spawn_blocking(move || fold_run(&w, &id)).await {
                        if st.ended_as.is_some() {
                            break st;
                        }
                        state = Some(st);
                    }
                }
                Err(RecvError::Closed) => {
                    anyhow::bail!("the journal stopped before run {run_id} ended");
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
                    if let Some(r) = orca_actors::runs::lookup(&runs, &run_id).await {
                        let _ = r.cast(RunMsg::Stop { surface: Surface::Cli, reason: "Ctrl-C".into(), reply: None });
                    }
                } else {
                    eprintln!("orca: killing the run's attempts");
                    if let Some(st) = &state {
                        kill_live_groups(st);
                        kill_remote_groups(orca, st).await;
                    }
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
                if let Some(st) = &state {
                    kill_live_groups(st);
                    kill_remote_groups(orca, st).await;
                }
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

/// Second Ctrl-C, remote attempts: over the host's pooled connection, kill
/// each live remote group that is still the attempt's (checked by its
/// `ORCA_ATTEMPT_ID`), with no grace, hosts in parallel, at most
/// [`REMOTE_KILL_LIMIT`] each. An attempt that could not be confirmed killed
/// is named on stderr; `orca run --resume` kills it later.
async fn kill_remote_groups(orca: &Orca, st: &RunState) {
    use orca_actors::model::AttemptRef;
    let remote: Vec<_> = st
        .tasks
        .iter()
        .flat_map(|t| t.attempts.iter().map(move |a| (t, a)))
        .filter(|(_, a)| a.is_live() && a.host.as_deref().is_some_and(|h| h != "local"))
        .collect();
    if remote.is_empty() {
        return;
    }
    let Some(spec) = st.spec() else { return };
    let kills = remote.into_iter().filter_map(|(t, a)| {
        let worker = spec
            .workers
            .iter()
            .find(|w| Some(w.id.as_str()) == a.worker.as_deref())?;
        let host = orca.services.host_for(Some(worker));
        let rec =
            orca_actors::run::state::recorded_proc(&AttemptRef::new(&st.run, &t.id, a.n), Some(a));
        Some(async move {
            let r = tokio::time::timeout(REMOTE_KILL_LIMIT, host.kill_orphan(&rec, 0)).await;
            (rec.attempt_id, host.name(), r)
        })
    });
    // Say which could not be confirmed: the operator must know what may
    // still run on a host.
    for (attempt, host, r) in futures::future::join_all(kills).await {
        let why = match r {
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {}s", REMOTE_KILL_LIMIT.as_secs()),
        };
        let _ = writeln!(
            std::io::stderr(),
            "orca: could not kill attempt {attempt} on {host} ({why}); `orca run --resume {}` kills what is left",
            st.run
        );
    }
}

/// How long the second Ctrl-C waits for each remote host to kill.
const REMOTE_KILL_LIMIT: Duration = Duration::from_secs(5);

fn draw(st: &RunState, elapsed: Duration) {
    let line = render::run::progress_line(
        &st.run,
        &st.counts(),
        st.status(),
        elapsed,
        terminal_width(),
    );
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K{line}");
    let _ = err.flush();
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

/// Second Ctrl-C: SIGKILL every live local attempt's process group at once,
/// and wait (at most 2 s) until no member of them is left, so that when orca
/// exits its workers are gone. Remote groups: [`kill_remote_groups`].
fn kill_live_groups(st: &RunState) {
    use orca_actors::host::procfs;
    let groups: Vec<i32> = st
        .tasks
        .iter()
        .flat_map(|t| t.attempts.iter())
        .filter(|a| a.is_live() && a.host.as_deref().is_none_or(|h| h == "local"))
        .filter_map(|a| a.pgid.filter(|p| *p > 1))
        .collect();
    for &pgid in &groups {
        // A group orca started and has not reaped: its id cannot be reused.
        let _ = procfs::signal_group(pgid, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while groups.iter().any(|&g| procfs::group_alive(g)) && Instant::now() < deadline {
        // SIGKILL is delivered asynchronously; nothing signals the end of a
        // group orca does not parent, so look again shortly.
        std::thread::sleep(Duration::from_millis(5));
    }
}
