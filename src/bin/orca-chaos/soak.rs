//! The soak itself: a workspace with runs (retries, timeouts, manual
//! verdicts, nested runs, an SSH worker on a loopback sshd), three agents
//! (a timer, a fleet subscription, a thinking agent with a stub CLI) and
//! alerts to a loopback capture server; the real `orca up`, SIGKILLed at
//! seeded-random points while requests are in flight, restarted, again and
//! again; then a drain, and the evidence for [`crate::invariants`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use orca_actors::agent::events::AgentEvent;
use orca_actors::alert::events::AlertEvent;
use orca_actors::journal::{read, Envelope, Event, ReadRange};
use orca_actors::model::{AttemptRef, AttemptResult, RunStatus};
use orca_actors::workspace::Workspace;
use serde::Serialize;
use serde_json::{json, Value};

use crate::capture::Capture;
use crate::invariants::{self, AlertCounts, Check};
use crate::sshd::Sshd;

/// What the soak is asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    pub kills: usize,
    pub seed: u64,
    /// The `orca` binary.
    pub orca: PathBuf,
    /// Where the soak's files go (a fresh directory under it).
    pub dir: PathBuf,
    /// Keep the directory after a passing soak (a failing one is kept).
    pub keep: bool,
    /// Kill points are drawn in [0, max_delay_ms) after the daemon serves.
    pub max_delay_ms: u64,
    /// How long the capture server takes to answer each alert.
    pub hook_delay: Duration,
    /// How long the drain after the last kill may take.
    pub drain_limit: Duration,
    /// Progress on stderr.
    pub verbose: bool,
}

/// The soak's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Figures {
    pub kills: usize,
    pub wall_seconds: f64,
    pub runs: usize,
    pub nested_runs: usize,
    pub agent_runs: usize,
    pub tasks: usize,
    pub attempts: usize,
    pub attempts_on_the_ssh_worker: usize,
    pub attempts_interrupted_by_crash: usize,
    pub receipts: usize,
    pub verdicts: usize,
    pub effects: usize,
    pub tasks_redone_inside_window: usize,
    pub alerts: AlertCounts,
    pub agent_actions: usize,
    pub submissions_acknowledged: usize,
    pub requests_cut_by_a_kill: usize,
    pub journal_events: usize,
    pub daemon_starts: usize,
}

/// The soak's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub dir: String,
    pub figures: Figures,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.ok).collect()
    }
}

/// A small deterministic generator (the seed is printed and re-usable).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

const HOOK_SECRET: &str = "whsec_Y2hhb3Mtc29hay1zaWduaW5nLXNlY3JldC0wMQ==";

/// The thinking agent's stub CLI: on a `tell` it starts a run and writes a
/// note, through `orca agent act` (argv: orca's binary, the prompt file).
const STUB: &str = r#"#!/bin/bash
set -u
ORCA="$1"
ev=$(cat "$ORCA_EVENT_FILE")
case "$ev" in
*'"event":"tell"'*)
  "$ORCA" agent act start_run '{"spec_path":"agents/specs/thought.toml"}' > /dev/null || exit 4
  "$ORCA" agent act note '{"text":"chaos thought"}' > /dev/null || exit 5
  ;;
esac
exit 0
"#;

const TICKER: &str = r#"id = "ticker"
[[subscriptions]]
id = "tick"
kind = "timer"
every = "2s"
missed = "run_once"
[[routes]]
on = "tick"
action = "start_run"
spec = "specs/tick.toml"
[[routes]]
on = "tick"
action = "remember"
after = "1h"
text = "tick {{event.due}}"
"#;

const WATCH: &str = r#"id = "watch"
[[subscriptions]]
id = "failures"
kind = "fleet"
events = ["receipt.fail"]
[[routes]]
on = "failures"
action = "start_run"
spec = "specs/fix.toml"
vars = { target = "{{event.task}}" }
"#;

const THINKER: &str = r#"id = "thinker"
persona = "Thinks under chaos."
[[routes]]
on = "inbox"
action = "think"
timeout_seconds = 60
"#;

struct Soak {
    opts: Options,
    rng: Lcg,
    root: PathBuf,
    ws: Workspace,
    sshd: Sshd,
    capture: Capture,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    daemon: Option<Child>,
    address: String,
    token: String,
    acked: Vec<String>,
    cut: usize,
    starts: usize,
    wave: String,
}

/// Runs the soak and gathers its report. `Err` only when the soak itself
/// could not be set up or driven (not for a broken invariant).
pub fn run(opts: Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let root = opts
        .dir
        .join(format!("orca-chaos-{}-{}", opts.seed, std::process::id()));
    std::fs::create_dir_all(&root).with_context(|| format!("mkdir {}", root.display()))?;
    let root = root.canonicalize()?;
    let mut soak = Soak::set_up(opts.clone(), &root)?;
    let outcome = soak.drive().and_then(|()| soak.finish(started));
    soak.stop_daemon();
    let report = outcome?;
    drop(soak);
    if report.failed().is_empty() && !opts.keep {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(report)
}

impl Soak {
    fn set_up(opts: Options, root: &Path) -> anyhow::Result<Soak> {
        let sshd = Sshd::start(&root.join("sshd"))?;
        let capture = Capture::start(opts.hook_delay)?;
        let ws_root = root.join("ws");
        std::fs::create_dir_all(ws_root.join(".orca"))?;
        let ws = Workspace::at(ws_root.clone());
        let orca = opts.orca.display().to_string();
        let stub = ws_root.join("stub.sh").display().to_string();
        std::fs::write(
            ws.config_path(),
            format!(
                r#"[run]
grace_seconds = 0.5
[runtime]
command = ["bash", {stub:?}, {orca:?}, "{{prompt_file}}"]
[alerts]
enabled = true
routes = [{{ events = ["stale", "restart_exhausted", "needs_human", "budget_exceeded", "verifier_failed", "run_completed"], adapter = "hook" }}]
[alerts.adapters.hook]
kind = "webhook"
url_env = "CHAOS_HOOK_URL"
secret_env = "CHAOS_HOOK_SECRET"
rate_limit = 100
"#
            ),
        )?;
        std::fs::write(&stub, STUB)?;
        let effects = root.join("effects.log");
        let done = format!("echo \"$ORCA_ATTEMPT_ID\" >> {}", effects.display());
        let write = |rel: &str, text: &str| -> anyhow::Result<()> {
            let p = ws_root.join(rel);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(p, text)?;
            Ok(())
        };
        write("agents/ticker.toml", TICKER)?;
        write("agents/watch.toml", WATCH)?;
        write("agents/thinker.toml", THINKER)?;
        for (name, file) in [
            ("tick", "tick"),
            ("fix {{vars.target}}", "fix"),
            ("thought", "thought"),
        ] {
            write(
                &format!("agents/specs/{file}.toml"),
                &format!("name = \"{name}\"\n[[tasks]]\nid = \"{file}\"\ncommand = '{done}'\n"),
            )?;
        }
        // A worker's child run, submitted through the API with its own
        // token (nested, depth 1).
        write(
            "child.toml",
            &format!("name = \"child\"\n[[tasks]]\nid = \"child\"\ncommand = '{done}'\n"),
        )?;
        write(
            "nest.sh",
            &format!(
                "#!/bin/sh\nset -e\ncode=$(curl -s -o /dev/null -w '%{{http_code}}' -X POST -H \"Authorization: Bearer $ORCA_TOKEN\" -H 'Content-Type: application/toml' --data-binary @{child} \"$ORCA_API/v1/fleet/runs\")\n[ \"$code\" = 201 ] || exit 1\n{done}\n",
                child = ws_root.join("child.toml").display()
            ),
        )?;
        let nest = ws_root.join("nest.sh").display().to_string();
        let mut wave = String::from(
            "name = \"wave\"\nmax_workers = 5\n[[workers]]\nid = \"local\"\nmax_concurrent_tasks = 3\ncapabilities = [\"local\"]\n",
        );
        wave.push_str(&sshd.worker_toml(2));
        for i in 1..=3 {
            wave.push_str(&format!(
                "[[tasks]]\nid = \"ok-{i}\"\ncommand = 'sleep 0.{i}; {done}'\n"
            ));
        }
        for i in 1..=2 {
            wave.push_str(&format!(
                "[[tasks]]\nid = \"remote-{i}\"\nworker = {{ capabilities = [\"remote\"] }}\ncommand = 'sleep 0.{i}; {done}'\n"
            ));
        }
        wave.push_str(&format!(
            "[[tasks]]\nid = \"retry\"\ncommand = 'test \"$ORCA_ATTEMPT\" -ge 2 || exit 1; {done}'\nretry_policy = {{ max_attempts = 3, initial_backoff_seconds = 0.2, retry_on = [\"task\"] }}\n"
        ));
        wave.push_str(
            "[[tasks]]\nid = \"timeout\"\ncommand = 'sleep 5'\ntimeout_seconds = 1\nretry_policy = { max_attempts = 2, initial_backoff_seconds = 0.1 }\n",
        );
        wave.push_str(&format!(
            "[[tasks]]\nid = \"review\"\ncommand = '{done}'\nscorer = {{ kind = \"manual\" }}\n"
        ));
        wave.push_str(&format!(
            "[[tasks]]\nid = \"nest\"\nworker = {{ capabilities = [\"local\"] }}\ncommand = [\"sh\", \"{nest}\"]\nretry_policy = {{ max_attempts = 4, initial_backoff_seconds = 0.2, retry_on = [\"task\"] }}\n"
        ));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .build()?;
        Ok(Soak {
            rng: Lcg::new(opts.seed),
            opts,
            root: root.to_path_buf(),
            ws,
            sshd,
            capture,
            rt,
            http,
            daemon: None,
            address: String::new(),
            token: String::new(),
            acked: Vec::new(),
            cut: 0,
            starts: 0,
            wave,
        })
    }

    fn say(&self, what: &str) {
        if self.opts.verbose {
            eprintln!("orca-chaos: {what}");
        }
    }

    fn orca(&self) -> Command {
        let mut c = Command::new(&self.opts.orca);
        c.arg("--workspace")
            .arg(self.ws.root())
            .current_dir(self.ws.root())
            .env_remove("ORCA_WORKSPACE")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env("CHAOS_HOOK_URL", self.capture.url("/hook"))
            .env("CHAOS_HOOK_SECRET", HOOK_SECRET)
            .stdin(Stdio::null());
        c
    }

    /// `orca up`, once it serves (daemon.json names its pid).
    fn start_daemon(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("daemon.log"))?;
        let child = self
            .orca()
            .arg("up")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("orca up")?;
        self.starts += 1;
        let pid = child.id();
        // Owned at once: whatever fails below, `stop_daemon` (or the drop)
        // ends this daemon.
        self.daemon = Some(child);
        let changes = Changes::watch(&self.ws.orca_dir(), false);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(info) =
                orca::daemon::info::DaemonInfo::read(&self.ws).filter(|i| i.pid == pid)
            {
                self.address = info.address;
                break;
            }
            if let Some(Ok(Some(st))) = self.daemon.as_mut().map(Child::try_wait) {
                self.daemon = None;
                bail!(
                    "orca up exited before serving ({st}); see {}",
                    self.root.join("daemon.log").display()
                );
            }
            if Instant::now() > deadline {
                self.kill_daemon();
                bail!("orca up did not serve within 120 s");
            }
            // inotify wakes this; the bound only covers an exit.
            changes.wait(Duration::from_millis(200));
        }
        if self.token.is_empty() {
            self.token = std::fs::read_to_string(self.ws.token_path())?
                .trim()
                .to_string();
        }
        Ok(())
    }

    fn kill_daemon(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill(); // SIGKILL
            let _ = d.wait();
        }
    }

    fn stop_daemon(&mut self) {
        if self.daemon.is_some() {
            let _ = self.orca().arg("down").output();
            if let Some(mut d) = self.daemon.take() {
                let deadline = Instant::now() + Duration::from_secs(30);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = d.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = d.kill();
                let _ = d.wait();
            }
        }
    }

    fn journal(&self) -> Vec<Envelope> {
        read(&self.ws.journal_dir(), ReadRange::all())
            .map(|it| it.filter_map(Result::ok).collect())
            .unwrap_or_default()
    }

    /// A request to the daemon, sent at once; its status and body later.
    fn send(&self, method: reqwest::Method, path: &str, body: Body) -> Answer {
        let mut r = self
            .http
            .request(method, format!("http://{}{path}", self.address))
            .bearer_auth(&self.token);
        r = match body {
            Body::None => r,
            Body::Json(v) => r.json(&v),
            Body::Toml(t) => r.header("content-type", "application/toml").body(t),
        };
        self.rt.spawn(async move {
            let resp = r.send().await.ok()?;
            let code = resp.status().as_u16();
            Some((code, resp.json().await.unwrap_or(Value::Null)))
        })
    }

    fn create_agents(&mut self) -> anyhow::Result<()> {
        for a in ["ticker", "watch", "thinker"] {
            let out = self
                .orca()
                .args(["agent", "create"])
                .arg(self.ws.root().join(format!("agents/{a}.toml")))
                .output()?;
            if !out.status.success() {
                bail!(
                    "orca agent create {a}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        Ok(())
    }

    fn drive(&mut self) -> anyhow::Result<()> {
        self.start_daemon()?;
        self.create_agents()?;
        for i in 0..self.opts.kills {
            // A quarter of the kills land at once: requests, resumes and
            // deliveries in flight. The round's requests go out at a point
            // inside the wait, so some are cut by the kill.
            let delay = if self.rng.below(4) == 0 {
                self.rng.below(50)
            } else {
                self.rng.below(self.opts.max_delay_ms)
            };
            let send_at = self.rng.below(delay + 1);
            std::thread::sleep(Duration::from_millis(send_at));
            let events = self.journal();
            let mut pending = Vec::new();
            // New work while little is open: a wave of every kind of task.
            if open_runs(&events) < 4 || self.rng.below(4) == 0 {
                pending.push((
                    Kind::Submit,
                    self.send(
                        reqwest::Method::POST,
                        "/v1/fleet/runs",
                        Body::Toml(self.wave.clone()),
                    ),
                ));
            }
            for a in awaiting_verdicts(&events).into_iter().take(3) {
                let verdict = if self.rng.below(4) == 0 {
                    "fail"
                } else {
                    "pass"
                };
                pending.push((
                    Kind::Other,
                    self.send(
                        reqwest::Method::POST,
                        &format!("/v1/fleet/runs/{}/tasks/{}/verdict", a.run, a.task),
                        Body::Json(
                            json!({"verdict": verdict, "note": "chaos", "attempt": a.attempt}),
                        ),
                    ),
                ));
            }
            if self.rng.below(5) == 0 {
                pending.push((
                    Kind::Other,
                    self.send(
                        reqwest::Method::POST,
                        "/v1/agents/thinker/tell",
                        Body::Json(json!({"text": format!("round {i}")})),
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(delay - send_at));
            self.kill_daemon();
            self.settle(pending);
            self.say(&format!(
                "kill {}/{} after {delay} ms ({} journal events)",
                i + 1,
                self.opts.kills,
                events.len()
            ));
            self.start_daemon()?;
        }
        Ok(())
    }

    /// Collects answers of requests (those cut by the kill count as cut).
    fn settle(&mut self, pending: Vec<(Kind, Answer)>) {
        for (kind, h) in pending {
            let got = self.rt.block_on(h).ok().flatten();
            match (kind, got) {
                (Kind::Submit, Some((201, v))) => {
                    if let Some(r) = v["run"].as_str() {
                        self.acked.push(r.to_string());
                    }
                }
                (_, None) => self.cut += 1,
                _ => {}
            }
        }
    }

    /// After the last kill: retire the timer, give every awaited verdict,
    /// wait until everything settled; then compare views, stop, scan.
    fn finish(&mut self, started: Instant) -> anyhow::Result<Report> {
        let deadline = Instant::now() + self.opts.drain_limit;
        let retire = self.send(
            reqwest::Method::POST,
            "/v1/agents/ticker/retire",
            Body::None,
        );
        let _ = self.rt.block_on(retire);
        let dir = self.ws.journal_dir();
        loop {
            let events = self.journal();
            let awaiting = awaiting_verdicts(&events);
            let mut pending = Vec::new();
            for a in awaiting.iter() {
                pending.push((
                    Kind::Other,
                    self.send(
                        reqwest::Method::POST,
                        &format!("/v1/fleet/runs/{}/tasks/{}/verdict", a.run, a.task),
                        Body::Json(
                            json!({"verdict": "pass", "note": "drain", "attempt": a.attempt}),
                        ),
                    ),
                ));
            }
            self.settle(pending);
            let open = unsettled(&events);
            if open.is_empty() && awaiting.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                self.say(&format!("the drain did not settle: {open:?}"));
                break;
            }
            wait_change(&dir, Duration::from_secs(1));
        }
        self.say("drained; comparing views");
        let views = self.views_to_compare();
        let live: Vec<Value> = views.iter().map(|v| self.view(v)).collect();
        self.stop_daemon();
        let offline: Vec<Value> = views.iter().map(|v| self.view(v)).collect();
        let pairs: Vec<(String, Value, Value)> = views
            .iter()
            .zip(live.into_iter().zip(offline))
            .map(|(v, (l, o))| {
                (
                    v.join(" "),
                    invariants::normalize_view(l),
                    invariants::normalize_view(o),
                )
            })
            .collect();
        let verify = self.orca().args(["journal", "verify"]).output()?;
        let verify_text = format!(
            "{}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
        let events = self.journal();
        let runs: BTreeSet<String> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::RunSubmitted(s) => Some(s.run.clone()),
                _ => None,
            })
            .collect();
        let mut leftovers = crate::procs::local_leftovers(&runs);
        let mut scans = vec!["local"];
        match self
            .sshd
            .exec(crate::procs::REMOTE_SCAN)
            .map(|out| crate::procs::parse_remote(&out, &runs))
        {
            Ok(Some(found)) => {
                leftovers.extend(found);
                scans.push("ssh host");
            }
            Ok(None) => leftovers.push(crate::invariants::Leftover {
                scan: "ssh",
                pid: 0,
                attempt_id: "(the scan on the SSH host did not finish)".into(),
                run_id: String::new(),
            }),
            Err(e) => leftovers.push(crate::invariants::Leftover {
                scan: "ssh",
                pid: 0,
                attempt_id: format!("(the scan on the SSH host failed: {e})"),
                run_id: String::new(),
            }),
        }
        let effects: Vec<String> = std::fs::read_to_string(self.root.join("effects.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect();
        let captured = self.capture.received();

        let (window, redone) = invariants::at_least_once_window(&events, &effects);
        let (alerts, alert_counts) = invariants::alerts_delivered(&events, &captured);
        let (agents, agent_actions) = invariants::agent_actions_once(&events);
        let checks = vec![
            invariants::one_final_receipt(&events),
            invariants::no_task_lost(&events, &self.acked),
            window,
            invariants::no_orphan(&leftovers, &scans),
            alerts,
            agents,
            invariants::journal_verify(verify.status.code(), &verify_text),
            invariants::views_equal(&pairs),
        ];
        let figures = self.figures(
            &events,
            started,
            effects.len(),
            redone,
            alert_counts,
            agent_actions,
        );
        Ok(Report {
            seed: self.opts.seed,
            dir: self.root.display().to_string(),
            figures,
            checks,
        })
    }

    /// The read commands compared through the daemon and offline: the
    /// fleet, the tree, alerts, agents, and the receipts and an inspection
    /// of the first and the last wave.
    fn views_to_compare(&self) -> Vec<Vec<String>> {
        let words = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let mut v: Vec<Vec<String>> = [
            "status --json",
            "tree --json",
            "alerts --json",
            "agent list --json",
            "agent show thinker --json",
        ]
        .iter()
        .map(|s| words(s))
        .collect();
        for a in ["ticker", "watch", "thinker"] {
            v.push(words(&format!("agent explain {a} --json")));
        }
        let events = self.journal();
        let waves: Vec<String> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::RunSubmitted(s) if s.name == "wave" => Some(s.run.clone()),
                _ => None,
            })
            .collect();
        let mut picked: Vec<&String> = waves.first().into_iter().collect();
        if let Some(last) = waves.last().filter(|l| waves.first() != Some(*l)) {
            picked.push(last);
        }
        for run in picked {
            v.push(words(&format!("receipts {run} --json")));
            v.push(words(&format!("inspect {run} review --json")));
            v.push(words(&format!("inspect {run} timeout --json")));
        }
        v
    }

    /// A read command's JSON (`null` with the error when it fails).
    fn view(&self, args: &[String]) -> Value {
        match self.orca().args(args).output() {
            Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout)
                .unwrap_or_else(|e| json!({"unparsable": e.to_string()})),
            Ok(o) => {
                json!({"failed": o.status.code(), "stderr": String::from_utf8_lossy(&o.stderr)})
            }
            Err(e) => json!({"failed": e.to_string()}),
        }
    }

    fn figures(
        &self,
        events: &[Envelope],
        started: Instant,
        effects: usize,
        redone: usize,
        alerts: AlertCounts,
        agent_actions: usize,
    ) -> Figures {
        let mut f = Figures {
            kills: self.opts.kills,
            effects,
            tasks_redone_inside_window: redone,
            alerts,
            agent_actions,
            submissions_acknowledged: self.acked.len(),
            requests_cut_by_a_kill: self.cut,
            journal_events: events.len(),
            daemon_starts: self.starts,
            ..Figures::default()
        };
        let mut agent_runs = BTreeSet::new();
        for e in events {
            match &e.event {
                Event::RunSubmitted(s) => {
                    f.runs += 1;
                    if s.parent.is_some() && s.name == "child" {
                        f.nested_runs += 1;
                    }
                }
                Event::TaskEnqueued { .. } => f.tasks += 1,
                Event::AttemptStarted { worker, .. } => {
                    f.attempts += 1;
                    if worker == "remote" {
                        f.attempts_on_the_ssh_worker += 1;
                    }
                }
                Event::AttemptInterrupted {
                    cause: orca_actors::journal::event::InterruptCause::OrcaCrash,
                    ..
                } => f.attempts_interrupted_by_crash += 1,
                Event::ReceiptRecorded(_) => f.receipts += 1,
                Event::VerdictRecorded { .. } => f.verdicts += 1,
                Event::Agent(AgentEvent::Done {
                    outcome: orca_actors::agent::events::IntentOutcome::RunStarted { run },
                    ..
                }) => {
                    agent_runs.insert(run.clone());
                }
                _ => {}
            }
        }
        f.agent_runs = agent_runs.len();
        f.wall_seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
        f
    }
}

impl Drop for Soak {
    /// A soak that ends early (an error, a panic) leaves no daemon behind.
    fn drop(&mut self) {
        self.kill_daemon();
    }
}

/// A request on its way: its status and JSON body once answered, `None`
/// when it got no answer (a kill cut it).
type Answer = tokio::task::JoinHandle<Option<(u16, Value)>>;

enum Body {
    None,
    Json(Value),
    Toml(String),
}

#[derive(Clone, Copy)]
enum Kind {
    Submit,
    Other,
}

/// Runs submitted and not ended.
fn open_runs(events: &[Envelope]) -> usize {
    let mut open = BTreeSet::new();
    for e in events {
        match &e.event {
            Event::RunSubmitted(s) if s.name == "wave" => {
                open.insert(s.run.as_str());
            }
            Event::RunFinished { run, .. } => {
                open.remove(run.as_str());
            }
            _ => {}
        }
    }
    open.len()
}

/// Final attempts whose receipt awaits a manual verdict.
fn awaiting_verdicts(events: &[Envelope]) -> Vec<AttemptRef> {
    let mut partial: BTreeSet<AttemptRef> = BTreeSet::new();
    let mut finals: BTreeSet<AttemptRef> = BTreeSet::new();
    for e in events {
        match &e.event {
            Event::ReceiptRecorded(r) if r.result == AttemptResult::Partial => {
                partial.insert(AttemptRef::new(&r.run, &r.task, r.attempt));
            }
            Event::TaskFinished {
                run,
                task,
                final_attempt,
                ..
            } => {
                finals.insert(AttemptRef::new(run, task, *final_attempt));
            }
            Event::VerdictRecorded { attempt, .. } => {
                partial.remove(attempt);
            }
            _ => {}
        }
    }
    partial.intersection(&finals).cloned().collect()
}

/// What has not settled yet: runs not ended, agent wakes or intents open,
/// alerts raised and not yet delivered or suppressed.
fn unsettled(events: &[Envelope]) -> Vec<String> {
    let mut open: BTreeMap<String, String> = BTreeMap::new();
    let mut planned: BTreeMap<String, (Vec<String>, usize)> = BTreeMap::new();
    let mut delivered: BTreeMap<String, usize> = BTreeMap::new();
    let mut raised: Vec<String> = Vec::new();
    let mut suppressed: BTreeSet<String> = BTreeSet::new();
    for e in events {
        match &e.event {
            Event::RunSubmitted(s) => {
                open.insert(format!("run {}", s.run), String::new());
            }
            Event::RunFinished { run, status } if *status != RunStatus::Running => {
                open.remove(&format!("run {run}"));
            }
            Event::Agent(a) => match a {
                AgentEvent::Woke { wake, .. } => {
                    open.insert(format!("wake {wake}"), String::new());
                }
                AgentEvent::WakeDone { wake, .. } | AgentEvent::WakeDropped { wake, .. } => {
                    open.remove(&format!("wake {wake}"));
                }
                AgentEvent::Intended { intent, .. } => {
                    open.insert(format!("intent {intent}"), String::new());
                }
                AgentEvent::Done { intent, .. } | AgentEvent::Refused { intent, .. } => {
                    open.remove(&format!("intent {intent}"));
                }
                _ => {}
            },
            Event::Alert(a) => match a {
                AlertEvent::Raised(r) => raised.push(r.id.clone()),
                AlertEvent::Suppressed { alert, .. } => {
                    suppressed.insert(alert.clone());
                }
                AlertEvent::Planned(p) => {
                    planned.insert(p.id.to_string(), (p.members.clone(), p.adapters.len()));
                }
                AlertEvent::Delivered(d) => *delivered.entry(d.id.to_string()).or_default() += 1,
                AlertEvent::Failed(f) if f.is_final() => {
                    *delivered.entry(f.id.to_string()).or_default() += 1;
                }
                _ => {}
            },
            _ => {}
        }
    }
    let mut covered = BTreeSet::new();
    for (id, (members, adapters)) in &planned {
        if delivered.get(id).copied().unwrap_or(0) >= *adapters {
            covered.extend(members.iter().cloned());
        } else {
            open.insert(format!("notification {id}"), String::new());
        }
    }
    for r in raised {
        if !covered.contains(&r) && !suppressed.contains(&r) {
            open.insert(format!("alert {r}"), String::new());
        }
    }
    open.into_keys().collect()
}

/// Changes under a directory, through inotify. When no watcher can be
/// had (the machine's `fs.inotify.max_user_instances` is shared, and other
/// processes may hold them all), waits end at their bound instead: a
/// bounded re-check, never a failed soak.
struct Changes {
    rx: std::sync::mpsc::Receiver<()>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Changes {
    fn watch(dir: &Path, recursive: bool) -> Changes {
        use notify::Watcher as _;
        let (tx, rx) = std::sync::mpsc::channel();
        let mode = if recursive {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        let watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
            let _ = tx.send(());
        })
        .ok()
        .and_then(|mut w| w.watch(dir, mode).ok().map(|()| w));
        Changes {
            rx,
            _watcher: watcher,
        }
    }

    /// Returns on the next change, or after `limit`.
    fn wait(&self, limit: Duration) {
        let _ = self.rx.recv_timeout(limit);
    }
}

/// Waits (at most `limit`) for any change under `dir`.
fn wait_change(dir: &Path, limit: Duration) {
    Changes::watch(dir, true).wait(limit);
}

/// Prints the report as a table.
pub fn print_table(r: &Report, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let f = &r.figures;
    writeln!(
        out,
        "orca-chaos: seed {} · {} kills · {:.1} s",
        r.seed, f.kills, f.wall_seconds
    )?;
    writeln!(
        out,
        "  runs {} (nested {}, by agents {}) · tasks {} · attempts {} ({} over SSH, {} interrupted by a crash) · receipts {} · verdicts {}",
        f.runs, f.nested_runs, f.agent_runs, f.tasks, f.attempts, f.attempts_on_the_ssh_worker, f.attempts_interrupted_by_crash, f.receipts, f.verdicts
    )?;
    writeln!(
        out,
        "  alerts raised {} · notifications {} · requests received {} · redelivered {} · agent actions {} · effects {} · requests cut by a kill {} · daemon starts {} · journal events {}",
        f.alerts.raised, f.alerts.notifications, f.alerts.requests, f.alerts.redelivered, f.agent_actions, f.effects, f.requests_cut_by_a_kill, f.daemon_starts, f.journal_events
    )?;
    let width = r.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &r.checks {
        writeln!(
            out,
            "  {:<width$}  {}  {}",
            c.name,
            if c.ok { "ok  " } else { "FAIL" },
            c.detail
        )?;
    }
    out.flush()
}
