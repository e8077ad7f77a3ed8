//! `orca up [--detach] [--bind ADDR]` and `orca down`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use orca_actors::spec::OrcaConfig;
use orca_actors::workspace::Workspace;

use crate::client::Client;
use crate::daemon::info::{self, DaemonInfo, Mode};
use crate::daemon::server::{is_loopback, serve};
use crate::exit;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Run in the background (a new session), logging to .orca/daemon.log;
    /// returns once the daemon serves.
    #[arg(long)]
    pub detach: bool,
    /// Listen here instead of 127.0.0.1 on a free port. A non-loopback
    /// address exposes the API beyond this machine: orca warns.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct DownArgs {}

pub fn up(ws_flag: Option<&Path>, args: UpArgs) -> anyhow::Result<i32> {
    let ws = super::run::workspace_or_create(ws_flag)?;
    if let Some(d) = info::live(&ws) {
        // Started right after a crash: the lock may outlive the dead daemon
        // by the moment a child it was starting takes to reach execve.
        let dead = !info::pid_alive(d.pid);
        if dead {
            eprintln!(
                "orca: the daemon (pid {}) is gone but its journal lock is still held (by a process it was starting); waiting for it",
                d.pid
            );
            if !info::wait_for_a_dead_daemons_lock(&ws, &d, std::time::Duration::from_secs(10)) {
                anyhow::bail!(
                    "the journal of {} is still locked 10 s after its daemon (pid {}) died: another process holds {}",
                    ws.root().display(),
                    d.pid,
                    ws.journal_dir()
                        .join(orca_actors::journal::lock::LOCK_FILE)
                        .display()
                );
            }
        } else {
            anyhow::bail!(
                "{} (pid {}) already serves {} at {}",
                match d.mode {
                    Mode::Daemon => "a daemon",
                    Mode::Embedded => "an `orca run`",
                },
                d.pid,
                ws.root().display(),
                d.url()
            );
        }
        DaemonInfo::remove(&ws);
    }
    let bind = args
        .bind
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    if !is_loopback(&bind) {
        eprintln!(
            "orca: WARNING: serving on {bind}, which is reachable beyond this machine; the bearer token is the only protection (no TLS)"
        );
    }
    if args.detach {
        return detach(&ws, args.bind);
    }
    let config = match OrcaConfig::load(&ws.config_path()) {
        Ok((c, _)) => c,
        Err(diags) => {
            for d in &diags {
                eprintln!("{}", d.display(&ws.config_path().display().to_string()));
            }
            return Ok(exit::INVALID);
        }
    };
    super::runtime()?.block_on(run_daemon(&ws, &config, bind))
}

async fn run_daemon(ws: &Workspace, config: &OrcaConfig, bind: SocketAddr) -> anyhow::Result<i32> {
    let served = serve(ws, config, Mode::Daemon, bind).await?;
    for w in &served.orca.recovery_warnings {
        tracing::warn!("journal recovery: {w}");
        eprintln!("orca: journal recovery: {w}");
    }
    let runs = served.orca.runs().await?;
    let resumed = orca_actors::resume::resume_unfinished(&served.orca.services, &runs).await;
    if !resumed.is_empty() {
        eprintln!(
            "orca: resumed {} run(s): {}",
            resumed.len(),
            resumed.join(", ")
        );
    }
    eprintln!(
        "orca: daemon (pid {}) serving {} at {}",
        served.info.pid,
        ws.root().display(),
        served.info.url()
    );
    tracing::info!(pid = served.info.pid, address = %served.info.address, "daemon serving");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot handle SIGTERM")?;
    // A foreground daemon whose terminal goes away suspends too.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot handle SIGHUP")?;
    let reason = tokio::select! {
        _ = served.shutdown_requested() => "orca down",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    };
    // After a hangup stderr may be gone: a failed write is not a panic.
    let _ = writeln!(
        std::io::stderr(),
        "orca: {reason}: suspending runs (attempts get their grace; the next `orca up` resumes them)"
    );
    tracing::info!(%reason, "daemon stopping");
    served.shutdown(reason).await;
    Ok(exit::OK)
}

/// Re-executes `orca up` in a new session (no fork after the tokio runtime
/// started: this process has none), then waits until it serves or fails.
fn detach(ws: &Workspace, bind: Option<SocketAddr>) -> anyhow::Result<i32> {
    let exe = std::env::current_exe().context("cannot find the orca executable")?;
    let log_path = ws.daemon_log_path();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let log_err = log.try_clone()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--workspace").arg(ws.root()).arg("up");
    if let Some(b) = bind {
        cmd.arg("--bind").arg(b.to_string());
    }
    if std::env::var_os("ORCA_LOG").is_none() && std::env::var_os("RUST_LOG").is_none() {
        cmd.env("ORCA_LOG", "info");
    }
    cmd.stdin(Stdio::null()).stdout(log).stderr(log_err);
    // SAFETY: setsid(2) is async-signal-safe; it runs in the child between
    // fork and exec and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the daemon")?;
    let pid = child.id();
    // Wait for daemon.json naming the child (inotify on .orca/), or for the
    // child to exit with an error.
    let (tx, rx) = std::sync::mpsc::channel();
    use notify::Watcher as _;
    let mut watcher = notify::recommended_watcher(move |r: notify::Result<notify::Event>| {
        if r.is_ok() {
            let _ = tx.send(());
        }
    })
    .context("cannot watch .orca/")?;
    watcher
        .watch(&ws.orca_dir(), notify::RecursiveMode::NonRecursive)
        .context("cannot watch .orca/")?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(d) = DaemonInfo::read(ws).filter(|d| d.pid == pid) {
            println!(
                "orca: daemon (pid {pid}) serving {} at {}",
                ws.root().display(),
                d.url()
            );
            println!("orca: logs in {}", log_path.display());
            return Ok(exit::OK);
        }
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            anyhow::bail!(
                "the daemon exited ({status}) before serving; the end of {}:\n{}",
                log_path.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            anyhow::bail!(
                "the daemon (pid {pid}) did not start serving within 60 s; see {}",
                log_path.display()
            );
        }
        // Woken by .orca/ changing; a short bound also notices the child's
        // exit (which changes no file).
        let _ = rx.recv_timeout(left.min(Duration::from_millis(200)));
    }
}

pub fn down(ws_flag: Option<&Path>, _args: DownArgs) -> anyhow::Result<i32> {
    let ws = super::read::workspace(ws_flag)?;
    let Some(client) = Client::find(&ws)? else {
        eprintln!(
            "orca: no daemon runs in {}; nothing to stop",
            ws.root().display()
        );
        return Ok(exit::FAILED);
    };
    if client.info.mode == Mode::Embedded {
        anyhow::bail!(
            "an `orca run` (pid {}) holds this workspace, not a daemon; stop it with Ctrl-C in its terminal or `orca stop <run>`",
            client.info.pid
        );
    }
    let pid = client.info.pid as i32;
    super::runtime()?.block_on(async {
        let _: serde_json::Value = client
            .post("/v1/daemon/shutdown", serde_json::json!({}))
            .await?;
        eprintln!("orca: daemon (pid {pid}) is suspending its runs");
        // Wait for it to exit (a pidfd: no polling).
        if !orca_actors::host::procfs::wait_gone(&[pid], Duration::from_secs(120)).await {
            anyhow::bail!("the daemon (pid {pid}) has not exited after 120 s");
        }
        eprintln!("orca: daemon stopped; `orca up` resumes its runs");
        Ok(exit::OK)
    })
}
