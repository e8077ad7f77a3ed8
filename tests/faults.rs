//! Disk faults (docs/runbook.md, "A full disk or a failing disk"): a full disk
//! under the real binary and a failing `fdatasync` under load. The journal
//! fails, orca is degraded with a clear message, appends are refused (503),
//! the journal's row reopens it through recovery with backoff, and orca
//! carries on by itself with nothing acknowledged lost.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use orca_actors::journal::{Envelope, Event, NewEvent, ReadRange};
use orca_actors::model::{FailureClass, RunStatus};
use orca_actors::root::Health;
use orca_actors::workspace::Workspace;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(90);

fn read_all(ws: &Workspace) -> Vec<Envelope> {
    orca_actors::journal::read(&ws.journal_dir(), ReadRange::all())
        .map(|it| it.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// The `/journal` row's failure and restart, journaled by the reopened
/// writer.
fn journal_restarted(all: &[Envelope], reason_has: &str) -> bool {
    let failed = all.iter().position(|e| {
        matches!(&e.event, Event::ChildFailed { path, class: FailureClass::Transient, reason }
            if path == "/journal" && reason.contains(reason_has))
    });
    let restarted = all
        .iter()
        .position(|e| matches!(&e.event, Event::ChildRestarted { path, .. } if path == "/journal"));
    matches!((failed, restarted), (Some(f), Some(r)) if f < r)
}

/// The daemon, in its own mount namespace (`unshare -m`) with a small
/// tmpfs on the workspace's `.orca/`. The test reaches that tmpfs through
/// `/proc/<pid>/root`, and runs CLI commands there with `nsenter -m`.
struct Confined {
    _child: KillOnDrop,
    pid: u32,
    /// The workspace as the daemon sees it.
    view: Workspace,
    root: std::path::PathBuf,
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Drop for Confined {
    fn drop(&mut self) {
        // Killing unshare would leave its child, the daemon, running.
        // SAFETY: a plain kill(2) of the daemon this test started.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGKILL);
        }
    }
}

impl Confined {
    fn start(ws: &TestWs, size: &str) -> Option<Confined> {
        let probe = std::process::Command::new("unshare")
            .args(["-m", "sh", "-c", "mount -t tmpfs -o size=1m probe /mnt"])
            .output();
        match probe {
            Ok(o) if o.status.success() => {}
            other => {
                eprintln!(
                    "SKIPPED: `unshare -m` with a tmpfs mount does not work here (needs root): {other:?}"
                );
                return None;
            }
        }
        let root = ws.root().to_path_buf();
        let script = r#"set -e
S=$(mktemp -d)
cp -a "$R/.orca/." "$S/"
mount -t tmpfs -o "size=$SIZE" orca-faults "$R/.orca"
cp -a "$S/." "$R/.orca/"
rm -rf "$S"
exec "$ORCA" --workspace "$R" up"#;
        let mut child = std::process::Command::new("unshare")
            .args(["-m", "sh", "-c", script])
            .env("R", &root)
            .env("SIZE", size)
            .env("ORCA", env!("CARGO_BIN_EXE_orca"))
            .env_remove("ORCA_WORKSPACE")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(root.join("daemon.stderr")).expect("stderr file"))
            .spawn()
            .expect("unshare");
        // unshare execs the shell, which execs orca: one pid throughout.
        let pid = child.id();
        let deadline = Instant::now() + LIMIT;
        let view = Workspace::at(format!("/proc/{pid}/root{}", root.display()));
        let info = loop {
            // The tmpfs is mounted before orca starts: a daemon.json seen
            // through /proc/<pid>/root with this pid is on it.
            if let Some(i) = orca::daemon::info::DaemonInfo::read(&view).filter(|i| i.pid == pid) {
                break i;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the confined daemon exited before serving: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "the confined daemon never served"
            );
            let _ = wait_any_change(&view.orca_dir(), Duration::from_millis(200));
        };
        let token = std::fs::read_to_string(view.token_path()).expect("token");
        Some(Confined {
            _child: KillOnDrop(child),
            pid,
            view,
            root,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            url: format!("http://{}", info.address),
            token,
        })
    }

    async fn health(&self) -> Value {
        self.http
            .get(format!("{}/healthz", self.url))
            .send()
            .await
            .expect("healthz")
            .json()
            .await
            .expect("healthz json")
    }

    /// Polls /healthz (bounded) until its status is `want`.
    async fn wait_health(&self, want: &str) -> Value {
        let deadline = Instant::now() + LIMIT;
        loop {
            let h = self.health().await;
            if h["status"] == want {
                return h;
            }
            assert!(Instant::now() < deadline, "/healthz never said {want}: {h}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn submit(&self, toml: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/fleet/runs", self.url))
            .header("content-type", "application/toml")
            .bearer_auth(&self.token)
            .body(toml.to_string())
            .send()
            .await
            .expect("submit");
        let code = resp.status().as_u16();
        (code, resp.json().await.unwrap_or(Value::Null))
    }

    /// `orca <args>` inside the daemon's mount namespace.
    fn orca(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-m", "--"])
            .arg(env!("CARGO_BIN_EXE_orca"))
            .arg("--workspace")
            .arg(&self.root)
            .args(args)
            .env_remove("ORCA_WORKSPACE")
            .output()
            .expect("nsenter orca")
    }

    /// Waits (bounded, woken by the journal's files) until `pred` holds.
    fn wait_journal(&self, what: &str, pred: impl Fn(&[Envelope]) -> bool) -> Vec<Envelope> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let all = read_all(&self.view);
            if pred(&all) {
                return all;
            }
            if Instant::now() > deadline {
                let tail: Vec<String> = all
                    .iter()
                    .rev()
                    .take(40)
                    .map(|e| format!("{} {} {:?}", e.seq, e.actor, e.event))
                    .map(|t| t.chars().take(300).collect())
                    .collect();
                let log =
                    std::fs::read_to_string(self.root.join("daemon.stderr")).unwrap_or_default();
                let log: Vec<&str> = log.lines().rev().take(40).collect();
                panic!(
                    "the journal never showed {what}; last events (newest first):\n{}\nlog (newest first):\n{}",
                    tail.join("\n"),
                    log.join("\n")
                );
            }
            let _ = wait_any_change(&self.view.journal_dir(), Duration::from_millis(500));
        }
    }
}

/// Fills the file system of `path` (a tmpfs) but `headroom` bytes.
fn fill(path: &std::path::Path, headroom: u64) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).expect("filler");
    let chunk = vec![0x5a_u8; 64 << 10];
    let mut len = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => len += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    f.set_len(len.saturating_sub(headroom))
        .expect("trim the filler");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_degrades_orca_and_it_recovers_by_itself_once_space_returns() {
    let ws = TestWs::new("[run]\ngrace_seconds = 0.5\n");
    let Some(d) = Confined::start(&ws, "4m") else {
        return;
    };
    // Acknowledged before the disk fills.
    let (code, v) = d
        .submit("[[tasks]]\nid = \"early\"\ncommand = \"true\"\n")
        .await;
    assert_eq!(code, 201, "{v}");
    let early = v["run"].as_str().unwrap().to_string();
    d.wait_journal("the early run's end", |all| {
        all.iter()
            .any(|e| matches!(&e.event, Event::RunFinished { run, .. } if *run == early))
    });

    // Leave 96 KiB, then a run of many small tasks writes past it.
    let filler = d.view.orca_dir().join("filler");
    fill(&filler, 96 << 10);
    let mut spec = String::from("max_workers = 4\n");
    for i in 0..150 {
        spec.push_str(&format!(
            "[[tasks]]\nid = \"t{i}\"\ncommand = \"echo {i}\"\n"
        ));
    }
    let (code, v) = d.submit(&spec).await;
    assert_eq!(code, 201, "{v}");
    let big = v["run"].as_str().unwrap().to_string();

    // Degraded, with the reason, on every surface.
    let h = d.wait_health("degraded").await;
    let reason = h["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        reason.contains("No space left on device") && reason.contains("appends are refused"),
        "{h}"
    );
    let status = d.orca(&["status"]);
    let text = String::from_utf8_lossy(&status.stderr).to_string()
        + &String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("DEGRADED") && text.contains("No space left"),
        "{status:?}"
    );
    let tree = d.orca(&["tree"]);
    let text =
        String::from_utf8_lossy(&tree.stdout).to_string() + &String::from_utf8_lossy(&tree.stderr);
    assert!(text.contains("degraded"), "{tree:?}");
    // Refused, never acknowledged-then-lost.
    let (code, v) = d
        .submit("[[tasks]]\nid = \"refused\"\ncommand = \"true\"\n")
        .await;
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["error"]["code"], "degraded", "{v}");

    // Space returns: orca carries on by itself.
    std::fs::remove_file(&filler).expect("free the space");
    let started = Instant::now();
    d.wait_health("ok").await;
    eprintln!(
        "healthy again {:?} after the space returned",
        started.elapsed()
    );
    let all = d.wait_journal("the big run's end", |all| {
        all.iter()
            .any(|e| matches!(&e.event, Event::RunFinished { run, .. } if *run == big))
    });
    assert!(
        journal_restarted(&all, "No space left on device"),
        "no journaled restart of /journal"
    );
    let (code, v) = d
        .submit("[[tasks]]\nid = \"late\"\ncommand = \"true\"\n")
        .await;
    assert_eq!(code, 201, "{v}");
    let late = v["run"].as_str().unwrap().to_string();
    let all = d.wait_journal("the late run's end", |all| {
        all.iter()
            .any(|e| matches!(&e.event, Event::RunFinished { run, .. } if *run == late))
    });
    // Every acknowledged submission is there, the refused one is not.
    let submitted: Vec<String> = all
        .iter()
        .filter_map(|e| match &e.event {
            Event::RunSubmitted(s) => Some(s.run.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(submitted, vec![early.clone(), big.clone(), late.clone()]);
    for run in [&early, &late] {
        assert!(all.iter().any(|e| matches!(&e.event, Event::RunFinished { run: r, status: RunStatus::Passed } if r == run)));
    }
    let verify = d.orca(&["journal", "verify"]);
    assert!(verify.status.success(), "{verify:?}");
}

/// Many concurrent appends while the group-commit `fdatasync` fails now
/// and then: every append answered `Ok` is in the journal, at its seq,
/// after each reopen; none answered `Err` is there at all; and a run that
/// was going on finishes.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_fdatasync_under_load_loses_nothing_acknowledged() {
    let ws = TestWs::new("[run]\ngrace_seconds = 0.5\n");
    let failing = Arc::new(AtomicBool::new(false));
    let syncs = Arc::new(AtomicU64::new(0));
    let (f2, s2) = (failing.clone(), syncs.clone());
    let hook: orca_actors::journal::SyncHook = Arc::new(move |e| {
        // While switched on, one group commit in 5 fails like a flaky disk.
        if e.kind == orca_actors::journal::SyncKind::Data
            && f2.load(Ordering::SeqCst)
            && s2.fetch_add(1, Ordering::SeqCst) % 5 == 4
        {
            Err(std::io::Error::other("simulated EIO"))
        } else {
            Ok(())
        }
    });
    let tree = Tree::boot_with_sync_hook(&ws, hook).await;
    let journal = tree.orca.services.journal.clone();
    let health = || async {
        match tree
            .orca
            .root
            .call(orca_actors::root::RootMsg::Health, None)
            .await
        {
            Ok(ractor::rpc::CallResult::Success(h)) => h,
            other => panic!("health: {other:?}"),
        }
    };
    // A run going on meanwhile: it waits for a file, then passes.
    let gate = ws.path("gate");
    let spec = spec_toml(
        &ws,
        &format!(
            "[[tasks]]\nid = \"waits\"\ncommand = 'while [ ! -e {} ]; do sleep 0.05; done'\n",
            gate.display()
        ),
    );
    let mut watch = tree.watch().await;
    let run = tree.submit(submission(spec, 1)).await;

    failing.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let producers = 32;
    let per = 60;
    let mut tasks = Vec::new();
    for p in 0..producers {
        let journal = journal.clone();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..per {
                let tag = format!("/load/{p}/{i}");
                let ev = NewEvent::new(
                    "/load",
                    Event::ChildStopped {
                        path: tag.clone(),
                        reason: "load".into(),
                    },
                );
                let r = journal.append(vec![ev]).await;
                let refused = r.is_err();
                answers.push((tag, r.map(|a| a.first_seq).ok()));
                if refused {
                    // Appends are refused until the journal reopens; wait
                    // on the live feed (which resumes after the reopen)
                    // rather than spin.
                    let mut feed = journal.subscribe();
                    while journal.health() != orca_actors::journal::JournalHealth::Ok {
                        let _ = tokio::time::timeout(Duration::from_millis(20), feed.recv()).await;
                    }
                }
            }
            answers
        }));
    }
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut refused: BTreeSet<String> = BTreeSet::new();
    for t in tasks {
        for (tag, seq) in t.await.unwrap() {
            match seq {
                Some(s) => {
                    acked.insert(tag, s);
                }
                None => {
                    refused.insert(tag);
                }
            }
        }
    }
    failing.store(false, Ordering::SeqCst);
    let load_time = started.elapsed();
    assert!(
        !refused.is_empty(),
        "no append was ever refused: the hook never failed"
    );
    // Healthy again by itself (bounded).
    let deadline = Instant::now() + LIMIT;
    while health().await != Health::Ok {
        assert!(Instant::now() < deadline, "never healthy again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::fs::write(&gate, "").unwrap();
    let status = wait_end(&mut watch, &run, LIMIT).await;
    journal.flush().await.expect("flush");
    let all = ws.journal();
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    for e in &all {
        if let Event::ChildStopped { path, .. } = &e.event {
            if path.starts_with("/load/") {
                assert!(found.insert(path.clone(), e.seq).is_none(), "{path} twice");
            }
        }
    }
    for (tag, seq) in &acked {
        assert_eq!(
            found.get(tag),
            Some(seq),
            "acknowledged {tag} at seq {seq} is not there"
        );
    }
    for tag in &refused {
        assert!(!found.contains_key(tag), "refused {tag} is in the journal");
    }
    assert!(journal_restarted(&all, "simulated EIO"));
    let reopens = all
        .iter()
        .filter(|e| matches!(&e.event, Event::ChildRestarted { path, .. } if path == "/journal"))
        .count();
    eprintln!(
        "{} acknowledged, {} refused, {reopens} reopens, load {load_time:?}",
        acked.len(),
        refused.len()
    );
    assert_eq!(
        status,
        RunStatus::Passed,
        "the run going on did not finish well"
    );
    let report = orca_actors::journal::verify(&ws.ws.journal_dir()).expect("verify");
    assert!(report.is_ok(), "{report:?}");
    tree.shutdown().await;
}
