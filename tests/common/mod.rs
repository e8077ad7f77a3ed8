//! Shared test harness: temporary workspaces, a real supervision tree, the
//! journal, and the real binary. Waits are on signals (run ends, journal
//! events, files), never sleeps.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use orca::daemon::{boot, Orca};
use orca_actors::journal::{read, Envelope, Event, ReadRange};
use orca_actors::model::{RunStatus, Surface};
use orca_actors::run::state::RunState;
use orca_actors::runs::{fold_run, RunsMsg, Submission};
use orca_actors::spec::{self, Format, OrcaConfig, ValidateContext};
use orca_actors::workspace::Workspace;
use ractor::rpc::CallResult;

pub mod capture;
pub mod webdriver;

/// A temporary workspace with a config.
pub struct TestWs {
    pub dir: tempfile::TempDir,
    pub ws: Workspace,
}

impl TestWs {
    /// `config` is the body of `.orca/config.toml`.
    pub fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical tempdir");
        std::fs::create_dir_all(root.join(".orca")).expect("mkdir .orca");
        std::fs::write(root.join(".orca/config.toml"), config).expect("write config");
        Self {
            dir,
            ws: Workspace::at(root),
        }
    }

    /// Fast defaults for tests: no fsync, short grace.
    pub fn fast() -> Self {
        Self::new("[run]\ngrace_seconds = 0.5\n[journal]\nsync = \"never\"\n")
    }

    pub fn root(&self) -> &Path {
        self.ws.root()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn config(&self) -> OrcaConfig {
        OrcaConfig::load(&self.ws.config_path()).expect("config").0
    }

    /// Every journal event, in order.
    pub fn journal(&self) -> Vec<Envelope> {
        read(&self.ws.journal_dir(), ReadRange::all())
            .expect("journal")
            .map(|e| e.expect("event"))
            .collect()
    }

    pub fn fold(&self, run: &str) -> RunState {
        fold_run(&self.ws, run).expect("fold")
    }
}

/// Parses a TOML spec (panics with the diagnostics if invalid).
pub fn spec_toml(ws: &TestWs, text: &str) -> spec::RunSpec {
    let config = ws.config();
    let ctx = ValidateContext::workspace(ws.root(), &config);
    match spec::check_str(text, Format::Toml, "test.toml", &ctx).into_result() {
        Ok(v) => v.spec,
        Err(e) => panic!("invalid test spec:\n{e}"),
    }
}

pub fn submission(spec: spec::RunSpec, max_workers: u32) -> Submission {
    Submission {
        spec,
        source: "test.toml".into(),
        max_workers,
        stale_after: None,
        surface: Surface::Cli,
        parent: None,
        run_id: None,
    }
}

/// A booted tree in a test workspace.
pub struct Tree {
    pub orca: Orca,
}

impl Tree {
    pub async fn boot(ws: &TestWs) -> Self {
        let orca = boot(&ws.ws, &ws.config(), None).await.expect("boot");
        Self { orca }
    }

    /// Boots a tree whose journal calls `hook` before every sync (a
    /// simulated failing disk).
    pub async fn boot_with_sync_hook(ws: &TestWs, hook: orca_actors::journal::SyncHook) -> Self {
        let opts = orca_actors::journal::JournalOptions::from_config(None).with_sync_hook(hook);
        let orca = orca::daemon::boot_with(
            &ws.ws,
            &ws.config(),
            orca::daemon::BootOptions {
                journal: Some(opts),
                ..Default::default()
            },
        )
        .await
        .expect("boot");
        Self { orca }
    }

    pub async fn runs(&self) -> ractor::ActorRef<RunsMsg> {
        self.orca.runs().await.expect("runs")
    }

    /// Submits and returns the run id.
    pub async fn submit(&self, sub: Submission) -> String {
        match self
            .runs()
            .await
            .call(|tx| RunsMsg::Submit(Box::new(sub), tx), None)
            .await
        {
            Ok(CallResult::Success(Ok(done))) => done.run,
            other => panic!("submit failed: {other:?}"),
        }
    }

    /// A receiver of run ends (subscribe before submitting).
    pub async fn watch(&self) -> tokio::sync::broadcast::Receiver<(String, RunStatus)> {
        match self.runs().await.call(RunsMsg::Watch, None).await {
            Ok(CallResult::Success(rx)) => rx,
            other => panic!("watch failed: {other:?}"),
        }
    }

    /// Submits and waits for the run's end (bounded: a hung run fails the
    /// test instead of hanging it).
    pub async fn run(&self, sub: Submission, limit: Duration) -> (String, RunStatus) {
        let mut rx = self.watch().await;
        let id = self.submit(sub).await;
        let status = wait_end(&mut rx, &id, limit).await;
        (id, status)
    }

    pub async fn shutdown(self) {
        self.orca.shutdown().await;
    }
}

pub async fn wait_end(
    rx: &mut tokio::sync::broadcast::Receiver<(String, RunStatus)>,
    id: &str,
    limit: Duration,
) -> RunStatus {
    tokio::time::timeout(limit, async {
        loop {
            match rx.recv().await {
                Ok((run, status)) if run == id => return status,
                Ok(_) => {}
                Err(e) => panic!("run watch closed: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("run {id} did not end within {limit:?}"))
}

/// Events of one run, in order.
pub fn of_run<'a>(events: &'a [Envelope], run: &str) -> Vec<&'a Envelope> {
    events
        .iter()
        .filter(|e| e.event.run_id() == Some(run))
        .collect()
}

/// Processes whose environment holds `NAME=value`, excluding zombies.
pub fn procs_with_env(entry: &str) -> Vec<i32> {
    orca_actors::host::procfs::with_env(entry)
        .into_iter()
        .map(|s| s.pid)
        .collect()
}

/// Kills every process carrying the run's id (`ORCA_RUN_ID` in its
/// environment) when dropped, so a test that fails half-way leaves no
/// worker running (run ids are unique: nothing else is touched).
pub struct ReapRun(pub String);

impl Drop for ReapRun {
    fn drop(&mut self) {
        for s in orca_actors::host::procfs::with_env(&format!("ORCA_RUN_ID={}", self.0)) {
            // SAFETY: plain kill(2) of a process started for this test's run.
            unsafe {
                libc::kill(s.pid, libc::SIGKILL);
            }
        }
    }
}

/// Asserts no live process carries the run's id; names what is left.
pub fn assert_gone(run: &str, why: &str) {
    let left: Vec<String> = orca_actors::host::procfs::with_env(&format!("ORCA_RUN_ID={run}"))
        .into_iter()
        .map(|s| {
            let cmd = std::fs::read(format!("/proc/{}/cmdline", s.pid))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            format!(
                "pid {} state {} pgrp {}: {}",
                s.pid,
                s.state,
                s.pgrp,
                cmd.trim_end()
            )
        })
        .collect();
    assert!(left.is_empty(), "{why}; left: {left:#?}");
}

/// Type name of each event (for order assertions).
pub fn types(events: &[&Envelope]) -> Vec<&'static str> {
    events.iter().map(|e| e.event.type_name()).collect()
}

/// The first event matching `f`, with its index.
pub fn find<'a>(
    events: &[&'a Envelope],
    f: impl Fn(&Event) -> bool,
) -> Option<(usize, &'a Envelope)> {
    events
        .iter()
        .enumerate()
        .find(|(_, e)| f(&e.event))
        .map(|(i, e)| (i, *e))
}

/// Runs a TOML spec on a fresh tree (up to 4 attempts at once) and folds
/// the run from the journal.
pub async fn run_one(ws: &TestWs, spec: &str) -> (String, RunState) {
    let spec = spec_toml(ws, spec);
    let tree = Tree::boot(ws).await;
    let (run, _) = tree.run(submission(spec, 4), Duration::from_secs(60)).await;
    tree.shutdown().await;
    let st = ws.fold(&run);
    (run, st)
}

/// A task's final receipt (panics when it has none).
pub fn receipt<'a>(st: &'a RunState, task: &str) -> &'a orca_actors::model::Receipt {
    st.task(task)
        .unwrap_or_else(|| panic!("no task {task}"))
        .final_receipt()
        .expect("final receipt")
}

/// The real binary, on this workspace, with proxies and ORCA_WORKSPACE
/// cleared.
pub fn orca_cmd(ws: &TestWs) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_orca"));
    c.arg("--workspace")
        .arg(ws.root())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("ORCA_WORKSPACE")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy");
    c
}

/// Asserts a finished `orca` exited with `code`, showing its stderr if not.
#[track_caller]
pub fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How long a test waits for anything before failing.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Follows the journal until an event matches `pred` (bounded).
pub async fn wait_event(
    f: &mut orca_actors::journal::Follower,
    pred: impl Fn(&Event) -> bool,
) -> Envelope {
    tokio::time::timeout(WAIT_LIMIT, async {
        loop {
            let e = f.next().await.expect("journal follower");
            if pred(&e.event) {
                return e;
            }
        }
    })
    .await
    .expect("the journal event came")
}

/// A child process killed (and reaped) when dropped, so a failing test
/// leaves nothing running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

/// A named pipe at `path`: a worker writes to it once it is ready (say,
/// after installing a trap), and [`wait_fifo`] returns what it wrote.
pub fn fifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo reads one NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Blocks (off the async runtime) until a writer opened, wrote and closed
/// the pipe; returns what it wrote.
pub async fn wait_fifo(path: &Path) -> String {
    let p = path.to_path_buf();
    tokio::time::timeout(
        WAIT_LIMIT,
        tokio::task::spawn_blocking(move || std::fs::read_to_string(p).unwrap()),
    )
    .await
    .expect("the worker became ready in time")
    .unwrap()
}

/// Waits (bounded) until `daemon.json` names `pid`, woken by inotify.
pub fn wait_daemon_json(
    ws: &TestWs,
    pid: u32,
    child: &mut std::process::Child,
) -> orca::daemon::info::DaemonInfo {
    use notify::Watcher as _;
    use std::time::Instant;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut w = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
        let _ = tx.send(());
    })
    .unwrap();
    w.watch(&ws.ws.orca_dir(), notify::RecursiveMode::NonRecursive)
        .unwrap();
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        if let Some(info) = orca::daemon::info::DaemonInfo::read(&ws.ws).filter(|i| i.pid == pid) {
            return info;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the daemon exited before serving: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not serve within {WAIT_LIMIT:?}"
        );
        // inotify wakes us; the bound only covers an exit (no file event).
        let _ = rx.recv_timeout(Duration::from_millis(500));
    }
}

/// `orca up` on this workspace, once it serves (killed when dropped).
pub fn up(ws: &TestWs) -> (KillOnDrop, orca::daemon::info::DaemonInfo) {
    let mut child = orca_cmd(ws)
        .arg("up")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("orca up");
    let info = wait_daemon_json(ws, child.id(), &mut child);
    (KillOnDrop(child), info)
}

/// Waits (bounded) until the file at `path` contains `needle`, woken by
/// inotify on its directory.
pub async fn wait_file_contains(path: &Path, needle: &str) {
    use notify::Watcher as _;
    let dir = path.parent().expect("a file in a directory").to_path_buf();
    std::fs::create_dir_all(&dir).expect("mkdir");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut w = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
        let _ = tx.send(());
    })
    .expect("watcher");
    w.watch(&dir, notify::RecursiveMode::NonRecursive)
        .expect("watch");
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never held {needle:?}",
            path.display()
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await;
    }
}

/// Waits (at most `limit`) for any change under `dir` (inotify); whether
/// one came.
pub fn wait_any_change(dir: &Path, limit: Duration) -> bool {
    use notify::Watcher as _;
    let (tx, rx) = std::sync::mpsc::channel();
    let Ok(mut w) = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
        let _ = tx.send(());
    }) else {
        return false;
    };
    if w.watch(dir, notify::RecursiveMode::Recursive).is_err() {
        return false;
    }
    rx.recv_timeout(limit).is_ok()
}

/// `orca up` with extra environment, once it serves (killed when dropped).
pub fn up_env(ws: &TestWs, env: &[(&str, &str)]) -> KillOnDrop {
    let mut child = orca_cmd(ws)
        .arg("up")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("orca up");
    wait_daemon_json(ws, child.id(), &mut child);
    KillOnDrop(child)
}

/// Writes a file of the workspace (its directories too).
pub fn write_rel(ws: &TestWs, rel: &str, text: &str) {
    let p = ws.path(rel);
    std::fs::create_dir_all(p.parent().expect("a file in a directory")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

/// The agent events among journal envelopes.
pub fn agent_events(events: &[Envelope]) -> Vec<&orca_actors::agent::events::AgentEvent> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Agent(a) => Some(a),
            _ => None,
        })
        .collect()
}

/// Reads the journal's files (not the daemon) until `pred` holds, bounded
/// (60 s), woken by the files changing.
pub fn wait_journal(ws: &TestWs, what: &str, pred: impl Fn(&[Envelope]) -> bool) -> Vec<Envelope> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let dir = ws.ws.journal_dir();
    loop {
        let events: Vec<Envelope> = read(&dir, ReadRange::all())
            .map(|it| it.filter_map(Result::ok).collect())
            .unwrap_or_default();
        if pred(&events) {
            return events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the journal never showed {what}"
        );
        let _ = wait_any_change(&dir, Duration::from_millis(500));
    }
}

/// A small deterministic generator for crash loops (the seed is printed,
/// so a loop can be replayed).
pub struct Lcg(u64);

impl Lcg {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// A crash loop's kill count, seed and generator: `ORCA_<NAME>_KILLS` (default
/// 2) and `ORCA_<NAME>_SEED` (default: the clock), printed so it can be
/// replayed.
pub fn crash_loop(name: &str) -> (usize, u64, Lcg) {
    let var = |what: &str| std::env::var(format!("ORCA_{name}_{what}")).ok();
    let kills: usize = var("KILLS").and_then(|v| v.parse().ok()).unwrap_or(2);
    let seed: u64 = var("SEED").and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    eprintln!(
        "{} crash loop: {kills} kill(s), ORCA_{name}_SEED={seed}",
        name.to_ascii_lowercase()
    );
    (kills, seed, Lcg(seed))
}
