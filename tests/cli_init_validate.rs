//! `orca init` and `orca validate` through the real binary.

use std::path::Path;

use assert_cmd::Command;

fn orca(ws: &Path) -> Command {
    let mut cmd = Command::cargo_bin("orca").expect("the orca binary is built");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--workspace")
        .arg(ws)
        .env_remove("ORCA_WORKSPACE")
        .env("NO_COLOR", "1");
    cmd
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn validate_smoke_summary() {
    let ws = tempfile::tempdir().unwrap();
    let out = orca(ws.path())
        .args(["validate", "examples/smoke.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    insta::assert_snapshot!("validate_smoke", stdout(&out));
}

#[test]
fn validate_seed_example_shows_not_enforced_fields() {
    let ws = tempfile::tempdir().unwrap();
    let out = orca(ws.path())
        .args(["validate", "examples/release-triage.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    insta::assert_snapshot!("validate_release_triage", stdout(&out));
}

#[test]
fn validate_reports_every_error() {
    let ws = tempfile::tempdir().unwrap();
    let spec = ws.path().join("bad.json");
    std::fs::write(
        &spec,
        r#"{
  "tasks": [
    {"id": ".hidden", "command": [], "timeout_second": 5},
    {"id": "b", "command": "true",
     "retry_policy": {"max_attempts": 0, "backoff_multiplier": 0.5},
     "scorer": {"kind": "regex_match", "path": "../outside.log", "pattern": "(["}},
    {"id": "b", "instructions": "review",
     "workspace": {"environment": {"allowlist": ["GITHUB_TOKEN"]}},
     "scorer": {"kind": "json_path", "path": "r.json", "expression": "$..[?"}}
  ]
}
"#,
    )
    .unwrap();
    let out = orca(ws.path())
        .current_dir(ws.path())
        .args(["validate", "bad.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "invalid input exits 2");
    insta::assert_snapshot!("validate_errors", stdout(&out));
}

#[test]
fn validate_json_output_parses() {
    let ws = tempfile::tempdir().unwrap();
    let out = orca(ws.path())
        .args(["validate", "examples/code-review-swarm.toml", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["shape"], "run");
    assert_eq!(
        v["effective"]["tasks"][0]["scorer"]["kind"],
        "verifier_prompt"
    );
    assert_eq!(v["effective"]["tasks"][0]["runs"], "runtime");
    assert_eq!(
        v["not_enforced"]["tasks[1].worker.tool_profile"],
        "read-only"
    );
    assert_eq!(v["diagnostics"][0]["severity"], "warning");
    assert!(v["diagnostics"][0]["line"].as_u64().is_some());
}

#[test]
fn validate_missing_file_is_invalid_input() {
    let ws = tempfile::tempdir().unwrap();
    let out = orca(ws.path())
        .args(["validate", "does-not-exist.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("cannot read the spec"));
}

#[test]
fn init_creates_workspace_and_keeps_existing_files() {
    let ws = tempfile::tempdir().unwrap();
    let dir = ws.path().join("project");
    let out = orca(&dir).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out).replace(&dir.display().to_string(), "<DIR>");
    insta::assert_snapshot!("init_fresh", text);

    let orca_dir = dir.join(".orca");
    let gitignore = std::fs::read_to_string(orca_dir.join(".gitignore")).unwrap();
    for kept_out in ["journal/", "runs/", "token"] {
        assert!(gitignore.lines().any(|l| l == kept_out), "{kept_out}");
    }
    // The config it writes parses cleanly, and so does the example spec.
    let config = std::fs::read_to_string(orca_dir.join("config.toml")).unwrap();
    let (_, warnings) = orca_actors::spec::OrcaConfig::parse(&config).unwrap();
    assert!(warnings.is_empty());
    let out = orca(&dir)
        .current_dir(&dir)
        .args(["validate", ".orca/example.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // A second init keeps what is there.
    std::fs::write(orca_dir.join("config.toml"), "# mine\n").unwrap();
    let out = orca(&dir).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("kept    .orca/config.toml"));
    assert_eq!(
        std::fs::read_to_string(orca_dir.join("config.toml")).unwrap(),
        "# mine\n"
    );
}

#[test]
fn workspace_is_discovered_from_subdirectories() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join(".orca")).unwrap();
    std::fs::write(
        ws.path().join(".orca/config.toml"),
        "[runtime]\ncommand = [\"cw\", \"{prompt}\"]\n",
    )
    .unwrap();
    let deep = ws.path().join("a/b");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("t.json"), r#"{"id": "t", "instructions": "x"}"#).unwrap();
    // Without --workspace: discovery finds the configured runtime, so no
    // warning about a missing runtime.
    let out = Command::cargo_bin("orca")
        .unwrap()
        .current_dir(&deep)
        .env_remove("ORCA_WORKSPACE")
        .args(["validate", "t.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("0 warnings"), "{}", stdout(&out));
}

#[test]
fn every_command_help_has_an_example() {
    let out = Command::cargo_bin("orca")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    let help = stdout(&out);
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   ")) // wrapped description lines
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 2, "{help}");
    for c in commands {
        let out = Command::cargo_bin("orca")
            .unwrap()
            .args([&c, "--help"])
            .output()
            .unwrap();
        assert!(
            stdout(&out).contains("Examples:"),
            "`orca {c} --help` has no example"
        );
    }
}

/// A command whose reader went away (`orca validate … | head -1`) ends by
/// SIGPIPE, quietly, as Unix filters do — not with a panic.
#[test]
fn a_closed_output_pipe_ends_quietly() {
    use std::os::fd::FromRawFd as _;
    use std::os::unix::process::ExitStatusExt as _;
    let mut fds = [0; 2];
    // Close-on-exec: a process another test spawns meanwhile must not
    // inherit the reader end (holding it open, the pipe never breaks).
    // SAFETY: pipe2(2) fills the two descriptors we own from here on.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors are fresh and owned by nobody else.
    let (reader, writer) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    drop(reader);
    let ws = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orca"))
        .arg("--workspace")
        .arg(ws.path())
        .args(["validate", "examples/smoke.toml", "--json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Runs the binary with `dir` as its current directory (the workspace is
/// found from there, as a user in it would).
fn orca_in(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("orca").expect("the orca binary is built");
    cmd.current_dir(dir)
        .env_remove("ORCA_WORKSPACE")
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn every_template_writes_its_files_and_validates_in_a_fresh_workspace() {
    let out = orca_in(Path::new("/"))
        .args(["init", "--list-templates"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let list = stdout(&out);
    for (template, files) in [
        ("review-swarm", &["review-swarm.toml"][..]),
        ("code-review-swarm", &["review-swarm.toml"][..]),
        ("release-triage", &["release-triage.toml"][..]),
        ("ci-matrix", &["ci-matrix.toml"][..]),
        (
            "nightly-agent",
            &["nightly-agent.toml", "nightly-agent.agent.toml"][..],
        ),
    ] {
        assert!(list.contains(template), "{template} not listed: {list}");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("fresh");
        let out = orca_in(dir.path())
            .args(["init"])
            .arg(&root)
            .args(["--template", template])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{template}: {out:?}");
        assert!(root.join(".orca/config.toml").is_file());
        for f in files {
            assert!(root.join(f).is_file(), "{template} wrote no {f}");
            let out = orca_in(&root).args(["validate", f]).output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{template}/{f}: {out:?}");
        }
        // Never over an existing file.
        std::fs::write(root.join(files[0]), "# mine\n").unwrap();
        let out = orca_in(dir.path())
            .args(["init"])
            .arg(&root)
            .args(["--template", template])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(stdout(&out).contains("kept"), "{out:?}");
        assert_eq!(
            std::fs::read_to_string(root.join(files[0])).unwrap(),
            "# mine\n"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = orca_in(dir.path())
        .args(["init", "--template", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("review-swarm"));
}

#[test]
fn validate_checks_an_agent_spec_with_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".orca")).unwrap();
    std::fs::write(
        root.join("watch.agent.toml"),
        "id = \"w\"\n[[subscriptions]]\nid = \"t\"\nkind = \"timer\"\ncron = \"not a cron\"\n",
    )
    .unwrap();
    let out = orca_in(root)
        .args(["validate", "watch.agent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("watch.agent.toml:5") && err.contains("subscriptions[0].cron"),
        "{err}"
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_orca()"),
        ("zsh", "#compdef orca"),
        ("fish", "complete -c orca"),
    ] {
        let out = orca_in(Path::new("/"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = stdout(&out);
        assert!(text.contains(marker), "{shell}");
        // Subcommands and their flags are in it.
        assert!(
            text.contains("agent") && text.contains("list-templates"),
            "{shell}"
        );
    }
}

/// A stub agent CLI for `orca draft`: its first answer does not validate;
/// given the errors back, it answers a valid spec in a fenced block.
const DRAFT_STUB: &str = r#"#!/bin/sh
if grep -q "does not validate" "$1"; then
  grep -q "tasks\[0\]" "$1" || { echo "no located error in the repair prompt" >&2; exit 9; }
  printf 'Here is the corrected spec:\n```toml\nname = "greet"\n[[tasks]]\nid = "hello"\ncommand = "echo hello"\n```\n'
else
  printf '```toml\nname = "greet"\n[[tasks]]\ncommand = "echo hello"\n```\n'
fi
"#;

#[test]
fn draft_repairs_the_runtimes_spec_writes_it_and_can_run_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".orca")).unwrap();
    // No runtime configured: it says how to configure one.
    let out = orca_in(root).args(["draft", "say hello"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("preset = \"claude\""));

    let stub = root.join("stub.sh");
    std::fs::write(&stub, DRAFT_STUB).unwrap();
    std::fs::write(
        root.join(".orca/config.toml"),
        format!(
            "[journal]\nsync = \"never\"\n[runtime]\ncommand = [\"sh\", {:?}, \"{{prompt_file}}\"]\n",
            stub.display().to_string()
        ),
    )
    .unwrap();
    let out = orca_in(root)
        .args(["draft", "say hello", "--run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("after 1 repair(s)"), "{text}");
    let written = std::fs::read_to_string(root.join("say-hello.toml")).unwrap();
    assert!(written.contains("id = \"hello\""), "{written}");
    // It ran: the run passed.
    let out = orca_in(root).args(["status", "--json"]).output().unwrap();
    assert!(stdout(&out).contains("passed"), "{out:?}");
    // Never over a file.
    let out = orca_in(root).args(["draft", "say hello"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
