//! docs/tutorial.md is a script: this test runs it and checks that every
//! command still prints what the page shows.
//!
//! - a fence ```` ```toml file=PATH ```` (any language) writes PATH in the
//!   tutorial's workspace;
//! - a ```` ```console ```` fence holds `$ command` lines, each followed by
//!   its output; the command runs with `bash -c` in the workspace, with the
//!   `orca` under test first in PATH (`export …` lines are the reader's:
//!   the test sets those variables itself);
//! - `<!-- tutorial: wait EVENT -->` waits (bounded) until the journal has
//!   an event of that type (what happens in the daemon after a command).
//!
//! Outputs are compared after normalizing what changes between runs: run
//! ids (by order of appearance), times, durations, ports, the workspace's
//! path, alert ids and column padding. `ORCA_UPDATE_TUTORIAL=1 cargo test
//! --test tutorial` rewrites the page's outputs from a fresh run.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use regex::Regex;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tutorial.md");

/// One piece of the page.
enum Step {
    Text(String),
    File {
        fence: String,
        path: String,
        body: String,
    },
    Console(Vec<(String, String)>),
    Wait(String),
}

fn parse(doc: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut lines = doc.lines().peekable();
    let mut text = String::new();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed
            .strip_prefix("<!-- tutorial: wait ")
            .and_then(|r| r.strip_suffix("-->"))
        {
            text.push_str(line);
            text.push('\n');
            steps.push(Step::Text(std::mem::take(&mut text)));
            steps.push(Step::Wait(rest.trim().to_string()));
            continue;
        }
        if let Some(info) = trimmed.strip_prefix("```") {
            let info = info.trim();
            let file = info
                .split_whitespace()
                .find_map(|w| w.strip_prefix("file="))
                .map(str::to_string);
            if info == "console" || file.is_some() {
                steps.push(Step::Text(std::mem::take(&mut text)));
                let mut body = Vec::new();
                for l in lines.by_ref() {
                    if l.trim_start() == "```" {
                        break;
                    }
                    body.push(l.to_string());
                }
                if let Some(path) = file {
                    steps.push(Step::File {
                        fence: line.to_string(),
                        path,
                        body: body.join("\n") + "\n",
                    });
                } else {
                    let mut cmds: Vec<(String, String)> = Vec::new();
                    for l in body {
                        if let Some(cmd) = l.strip_prefix("$ ") {
                            cmds.push((cmd.to_string(), String::new()));
                        } else if let Some(last) = cmds.last_mut() {
                            last.1.push_str(&l);
                            last.1.push('\n');
                        }
                    }
                    steps.push(Step::Console(cmds));
                }
                continue;
            }
        }
        text.push_str(line);
        text.push('\n');
    }
    steps.push(Step::Text(text));
    steps
}

/// What varies between runs, made the same.
struct Normalizer {
    root: String,
    res: Vec<(Regex, &'static str)>,
    run_id: Regex,
}

impl Normalizer {
    fn new(root: &Path) -> Self {
        let r = |p: &str| Regex::new(p).unwrap();
        Normalizer {
            root: root.display().to_string(),
            res: vec![
                (r(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z"), "<time>"),
                (r(r"\d{2}-\d{2} \d{2}:\d{2}:\d{2}"), "<time>"),
                (r(r"\b\d+(\.\d+)?\s?(ms|s|m)\b"), "<dur>"),
                (r(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
                (r(r"\bal-[0-9a-f-]{6,}\b"), "<alert>"),
                (r(r"code=[A-Za-z0-9_-]+"), "code=<code>"),
                (r(r"pid \d+"), "pid <pid>"),
                (r(r"tell-\d+"), "tell-<n>"),
                (r(r"test-\d+"), "test-<n>"),
                (r(r"[ \t]+"), " "),
            ],
            run_id: r(r"\br-\d{12}-[0-9a-f]{4,8}\b"),
        }
    }

    /// The workspace path as the page shows it.
    fn show(&self, s: &str) -> String {
        s.replace(&self.root, "~/tutorial")
    }

    fn norm(&self, s: &str, ids: &mut HashMap<String, usize>) -> String {
        let s = self.show(s);
        let s = self
            .run_id
            .replace_all(&s, |c: &regex::Captures<'_>| {
                let n = ids.len();
                let k = *ids.entry(c[0].to_string()).or_insert(n);
                format!("r-<{k}>")
            })
            .into_owned();
        let mut s = s;
        for (re, to) in &self.res {
            s = re.replace_all(&s, *to).into_owned();
        }
        s.lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string()
    }
}

fn orca_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_orca"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn journal_has(root: &Path, event: &str) -> bool {
    orca_actors::journal::read(
        &root.join(".orca/journal"),
        orca_actors::journal::ReadRange::all(),
    )
    .map(|it| {
        it.filter_map(Result::ok)
            .any(|e| e.event.type_name() == event)
    })
    .unwrap_or(false)
}

#[test]
fn the_tutorial_runs_as_written() {
    let update = std::env::var_os("ORCA_UPDATE_TUTORIAL").is_some();
    let doc = std::fs::read_to_string(DOC).expect("docs/tutorial.md");
    let steps = parse(&doc);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap().join("tutorial");
    std::fs::create_dir_all(&root).unwrap();
    let hook = common::capture::Capture::start();
    let norm = Normalizer::new(&root);
    let path = format!(
        "{}:{}",
        orca_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Run ids: the page's (in order of appearance) and this run's.
    let mut doc_ids: Vec<String> = Vec::new();
    let mut real_ids: Vec<String> = Vec::new();
    let mut out_doc = String::new();
    let mut failures = Vec::new();
    let mut daemon_pid: Option<String> = None;
    let placeholder = Regex::new(r"\bRUN(\d+)\b").unwrap();
    for step in &steps {
        match step {
            Step::Text(t) => out_doc.push_str(t),
            Step::Wait(event) => {
                let deadline = Instant::now() + Duration::from_secs(60);
                while !journal_has(&root, event) {
                    assert!(Instant::now() < deadline, "the journal never had {event}");
                    let _ = common::wait_any_change(
                        &root.join(".orca/journal"),
                        Duration::from_millis(500),
                    );
                }
            }
            Step::File { fence, path, body } => {
                let p = root.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, body).unwrap();
                out_doc.push_str(&format!("{fence}\n{body}```\n"));
            }
            Step::Console(cmds) => {
                out_doc.push_str("```console\n");
                for (cmd, expected) in cmds {
                    // The page's run ids stand for this run's, in order.
                    for id in norm.run_id.find_iter(expected) {
                        if !doc_ids.contains(&id.as_str().to_string()) {
                            doc_ids.push(id.as_str().to_string());
                        }
                    }
                    // `RUN<n>`: the n-th run this tutorial started (how the
                    // page is first written).
                    let mut real_cmd = placeholder
                        .replace_all(cmd, |c: &regex::Captures<'_>| {
                            let n: usize = c[1].parse().unwrap_or(0);
                            real_ids
                                .get(n.saturating_sub(1))
                                .cloned()
                                .unwrap_or_else(|| c[0].to_string())
                        })
                        .into_owned();
                    for (i, d) in doc_ids.iter().enumerate() {
                        if let Some(r) = real_ids.get(i) {
                            real_cmd = real_cmd.replace(d.as_str(), r);
                        }
                    }
                    let output = if cmd.starts_with("export ") {
                        String::new()
                    } else {
                        let o = std::process::Command::new("bash")
                            .arg("-c")
                            .arg(format!("{real_cmd} 2>&1"))
                            .current_dir(&root)
                            .env("PATH", &path)
                            .env("NO_COLOR", "1")
                            .env("TUTORIAL_HOOK_URL", hook.url("/hook"))
                            .env_remove("ORCA_WORKSPACE")
                            .env_remove("ORCA_API")
                            .env_remove("ORCA_TOKEN")
                            .output()
                            .unwrap();
                        String::from_utf8_lossy(&o.stdout).into_owned()
                    };
                    for id in norm.run_id.find_iter(&output) {
                        if !real_ids.contains(&id.as_str().to_string()) {
                            real_ids.push(id.as_str().to_string());
                        }
                    }
                    if real_cmd.contains("orca up") {
                        daemon_pid = Some(String::new());
                    }
                    let mut a = HashMap::new();
                    let mut b = HashMap::new();
                    let (want, got) = (norm.norm(expected, &mut a), norm.norm(&output, &mut b));
                    if want != got {
                        failures.push(format!(
                            "$ {cmd}\n--- the page shows\n{want}\n--- it printed\n{got}\n"
                        ));
                    }
                    // The page keeps this run's ids in its commands.
                    let shown_cmd = if update {
                        real_cmd.clone()
                    } else {
                        cmd.clone()
                    };
                    out_doc.push_str(&format!("$ {shown_cmd}\n{}", norm.show(&output)));
                }
                out_doc.push_str("```\n");
            }
        }
    }
    if daemon_pid.is_some() {
        let _ = std::process::Command::new(orca_dir().join("orca"))
            .arg("down")
            .current_dir(&root)
            .env_remove("ORCA_WORKSPACE")
            .output();
    }
    if update {
        std::fs::write(DOC, out_doc.trim_end().to_string() + "\n").unwrap();
        return;
    }
    assert!(
        failures.is_empty(),
        "docs/tutorial.md is out of date (ORCA_UPDATE_TUTORIAL=1 rewrites it):\n{}",
        failures.join("\n")
    );
}
