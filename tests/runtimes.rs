//! Agent runtimes end to end: each preset runs a stand-in CLI (a stub that
//! records its argv and stdin and prints a stream written from the CLI's
//! documented format), orca reads the stream with the preset's parser,
//! counts usage and cost, enforces budgets, and classifies exit codes.

mod common;

use std::path::{Path, PathBuf};

use common::{orca_cmd, receipt, run_one, TestWs};
use orca_actors::journal::event::{BudgetLimit, Event, WorkerEvent};
use orca_actors::model::{AlertClass, AttemptResult, FailureClass};
use orca_actors::run::state::RunState;
use orca_actors::runtime::UsageRecord;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("actors/tests/fixtures")
}

/// A program for `runtime.program`: runs the `cli` stub with `fixture`,
/// recording into `<ws>/rec-<name>/`, exiting with `exit`.
fn stub(ws: &TestWs, name: &str, cli: &str, fixture: &str, exit: i32) -> String {
    let rec = ws.path(&format!("rec-{name}"));
    std::fs::create_dir_all(&rec).unwrap();
    std::fs::create_dir_all(ws.path("bin")).unwrap();
    let script = ws.path(&format!("bin/{name}"));
    let fixture = fixtures().join("streams").join(cli).join(fixture);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nORCA_STUB_FIXTURE='{}' ORCA_STUB_RECORD='{}' ORCA_STUB_EXIT={exit} exec '{}' \"$@\"\n",
            fixture.display(),
            rec.display(),
            fixtures().join("stubs").join(cli).display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

/// What the stub `name` was called with: argv (its name first) and stdin.
fn recorded(ws: &TestWs, name: &str) -> (Vec<String>, Vec<u8>) {
    let rec = ws.path(&format!("rec-{name}"));
    let argv = std::fs::read(rec.join("argv")).unwrap();
    let argv = argv
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (argv, std::fs::read(rec.join("stdin")).unwrap_or_default())
}

fn usage(st: &RunState, task: &str) -> UsageRecord {
    let t = st.task(task).unwrap();
    t.attempts
        .last()
        .and_then(|a| a.usage.clone())
        .unwrap_or_else(|| panic!("{task} has no usage"))
}

fn task(id: &str, preset: &str, program: &str, model: &str, extra: &str) -> String {
    format!(
        "[[tasks]]\nid = \"{id}\"\ninstructions = \"Fix the flaky test in {id}.\"\nruntime = {{ preset = \"{preset}\", program = \"{program}\", model = \"{model}\" }}\nretry_policy = {{ max_attempts = 1 }}\n{extra}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn each_preset_runs_its_cli_reads_its_stream_and_prices_its_usage() {
    let ws = TestWs::fast();
    let spec = [
        task(
            "claude",
            "claude",
            &stub(&ws, "claude", "claude", "pass.jsonl", 0),
            "claude-sonnet-4-5",
            "",
        ),
        task(
            "codex",
            "codex",
            &stub(&ws, "codex", "codex", "pass.jsonl", 0),
            "gpt-5-codex",
            "",
        ),
        task(
            "gemini",
            "gemini",
            &stub(&ws, "gemini", "gemini", "pass.jsonl", 0),
            "gemini-2.5-pro",
            "",
        ),
        task(
            "codewhale",
            "codewhale",
            &stub(&ws, "codewhale", "codewhale", "pass.jsonl", 0),
            "deepseek-chat",
            "",
        ),
    ]
    .concat();
    let (run, st) = run_one(&ws, &spec).await;
    for t in ["claude", "codex", "gemini", "codewhale"] {
        let r = receipt(&st, t);
        assert_eq!(r.result, AttemptResult::Pass, "{t}: {}", r.summary);
    }
    // The argv each preset builds; the prompt on stdin (never in argv)
    // for the CLIs that read it there, as the last argument for CodeWhale.
    let prompt = std::fs::read(ws.ws.attempt_dir(&run, "claude", 1).join("prompt.md")).unwrap();
    let (argv, stdin) = recorded(&ws, "claude");
    assert_eq!(
        argv[..6],
        [
            "claude",
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model"
        ]
    );
    assert_eq!(stdin, prompt);
    let (argv, stdin) = recorded(&ws, "codex");
    assert_eq!(argv[..3], ["codex", "exec", "--json"]);
    assert_eq!(argv.last().map(String::as_str), Some("-"));
    assert!(String::from_utf8_lossy(&stdin).contains("Fix the flaky test in codex."));
    let (argv, _) = recorded(&ws, "gemini");
    assert_eq!(argv[..3], ["gemini", "--output-format", "stream-json"]);
    let (argv, stdin) = recorded(&ws, "codewhale");
    assert!(argv.contains(&"exec".to_string()) && stdin.is_empty());
    assert!(argv
        .last()
        .unwrap()
        .contains("Fix the flaky test in codewhale."));

    // Usage as each parser counts it; orca's cost beside the CLI's own.
    let claude = usage(&st, "claude");
    assert_eq!((claude.tokens, claude.usage.tool_calls), (37_405, 2));
    assert_eq!(claude.reported_cost_usd, Some(0.0529));
    let cost = claude.cost_usd.expect("claude-sonnet-4-5 is priced");
    assert!((cost - 0.036_405).abs() < 1e-6, "{cost}");
    assert_eq!(usage(&st, "codex").tokens, 18_700);
    assert_eq!(usage(&st, "gemini").tokens, 12_000);
    assert!(usage(&st, "codewhale").cost_usd.is_some());
    // Journaled with each attempt's end; in receipt.json too.
    let journaled = ws
        .journal()
        .iter()
        .filter(|e| matches!(e.event, Event::AttemptUsage { .. }))
        .count();
    assert_eq!(journaled, 4);
    let file: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ws.ws.attempt_dir(&run, "claude", 1).join("receipt.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(file["usage"]["tokens"], 37_405);
    assert_eq!(file["result"], "pass");

    // inspect and status show them (offline: the journal's fold).
    let out = orca_cmd(&ws)
        .args(["inspect", &run, "claude"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("37405 tokens") && text.contains("the CLI reported $0.0529"),
        "{text}"
    );
    let out = orca_cmd(&ws).args(["status", &run]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("usage ") && text.contains("orca's prices"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100_kib_prompt_reaches_the_cli_intact() {
    let ws = TestWs::fast();
    let mut big = String::from("-- Fix the parser.\n");
    let mut i = 0;
    while big.len() < 100 * 1024 {
        big.push_str(&format!(
            "line {i}: \"quotes\", 'single', $HOME, `ticks`, ünïcødé, {{braces}}\n"
        ));
        i += 1;
    }
    let instructions = toml_string(&big);
    let spec = format!(
        "[[tasks]]\nid = \"big\"\ninstructions = {instructions}\nruntime = {{ preset = \"codex\", program = \"{}\" }}\n\
         [[tasks]]\nid = \"bigcw\"\ninstructions = {instructions}\nruntime = {{ preset = \"codewhale\", program = \"{}\" }}\n",
        stub(&ws, "big", "codex", "pass.jsonl", 0),
        stub(&ws, "bigcw", "codewhale", "pass.jsonl", 0),
    );
    let (run, st) = run_one(&ws, &spec).await;
    assert_eq!(receipt(&st, "big").result, AttemptResult::Pass);
    let prompt = std::fs::read(ws.ws.attempt_dir(&run, "big", 1).join("prompt.md")).unwrap();
    assert!(prompt.len() > 100 * 1024);
    let (_, stdin) = recorded(&ws, "big");
    assert!(stdin == prompt, "the whole prompt came through stdin");
    // CodeWhale takes its prompt as an argument: a long one is referred to
    // by its file, never put in argv.
    let (argv, _) = recorded(&ws, "bigcw");
    let last = argv.last().unwrap();
    assert!(last.contains("prompt.md") && last.len() < 512, "{last}");
}

fn toml_string(s: &str) -> String {
    format!("'''\n{s}'''")
}

#[tokio::test(flavor = "multi_thread")]
async fn budgets_errors_and_exit_codes_end_attempts_as_each_cli_means() {
    let ws = TestWs::fast();
    let spec = [
        // Codex: 24,885 tokens and 4 tool calls against 1,000 / 2.
        task(
            "tokens",
            "codex",
            &stub(&ws, "tokens", "codex", "budget_exceeded.jsonl", 0),
            "gpt-5-codex",
            "budget = { max_tokens = 1000 }",
        ),
        task(
            "tools",
            "codex",
            &stub(&ws, "tools", "codex", "budget_exceeded.jsonl", 0),
            "gpt-5-codex",
            "budget = { max_tool_calls = 2 }",
        ),
        // Claude: $0.036 against $0.01.
        task(
            "cost",
            "claude",
            &stub(&ws, "cost", "claude", "pass.jsonl", 0),
            "claude-sonnet-4-5",
            "budget = { max_cost_usd = 0.01 }",
        ),
        // Claude's `error_*` result, and its own turn limit.
        task(
            "failed",
            "claude",
            &stub(&ws, "failed", "claude", "failure.jsonl", 1),
            "claude-sonnet-4-5",
            "",
        ),
        task(
            "turns",
            "claude",
            &stub(&ws, "turns", "claude", "error_max_turns.jsonl", 1),
            "claude-sonnet-4-5",
            "",
        ),
        // Repeated message ids count once; cumulative usage, as deltas.
        task(
            "repeated",
            "claude",
            &stub(&ws, "repeated", "claude", "repeated_message_id.jsonl", 0),
            "claude-sonnet-4-5",
            "",
        ),
        task(
            "cumulative",
            "codex",
            &stub(&ws, "cumulative", "codex", "cumulative_3_turns.jsonl", 0),
            "gpt-5-codex",
            "",
        ),
        // Exit codes: Gemini 53 is its turn limit (budget); CodeWhale 75
        // is transient (retried).
        task(
            "gemini53",
            "gemini",
            &stub(&ws, "gemini53", "gemini", "failure.jsonl", 53),
            "gemini-2.5-pro",
            "",
        ),
        "[[tasks]]\nid = \"cw75\"\ninstructions = \"x\"\nretry_policy = { max_attempts = 2, initial_backoff_seconds = 0 }\n"
            .to_string()
            + &format!(
                "runtime = {{ preset = \"codewhale\", program = \"{}\" }}\n",
                stub(&ws, "cw75", "codewhale", "failure.jsonl", 75)
            ),
    ]
    .concat();
    let (_, st) = run_one(&ws, &spec).await;
    let over = |t: &str, field: &str| {
        let r = receipt(&st, t);
        assert_eq!(
            (r.result, r.class),
            (AttemptResult::Fail, Some(FailureClass::Task)),
            "{t}: {}",
            r.summary
        );
        assert!(r.summary.contains(field), "{t}: {}", r.summary);
    };
    over("tokens", "max_tokens");
    over("tools", "max_tool_calls");
    over("cost", "max_cost_usd");
    over("turns", "own turn limit");
    over("gemini53", "turn limit");
    let r = receipt(&st, "failed");
    assert_eq!(r.result, AttemptResult::Fail);
    assert!(
        r.summary.contains("error_during_execution"),
        "{}",
        r.summary
    );
    let budget_alerts: Vec<&str> = st
        .alerts
        .iter()
        .filter(|a| a.class == AlertClass::BudgetExceeded)
        .filter_map(|a| a.task.as_deref())
        .collect();
    for t in ["tokens", "tools", "cost", "turns", "gemini53"] {
        assert!(budget_alerts.contains(&t), "{t}: {budget_alerts:?}");
    }
    let limits: Vec<BudgetLimit> = ws
        .journal()
        .iter()
        .filter_map(|e| match &e.event {
            Event::WorkerReported {
                event: WorkerEvent::BudgetExceeded { limit },
                ..
            } => Some(*limit),
            _ => None,
        })
        .collect();
    assert!(limits.contains(&BudgetLimit::CostUsd), "{limits:?}");
    assert_eq!(usage(&st, "repeated").tokens, 8_300);
    assert_eq!(usage(&st, "cumulative").tokens, 4_400);
    let cw = st.task("cw75").unwrap();
    assert_eq!(cw.attempts.len(), 2, "CodeWhale's 75 is retried");
    assert_eq!(
        cw.attempts[0].class,
        Some(FailureClass::Transient),
        "{:?}",
        cw.attempts[0].reason
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_commands_secret_env_reaches_it_and_is_redacted() {
    // The test process's own environment is the one orca reads.
    const NAME: &str = "ORCA_TEST_GH_TOKEN_7f3a";
    std::env::set_var(NAME, "ghp_S3cretTokenValue123");
    let ws = TestWs::fast();
    let (run, st) = run_one(
        &ws,
        &format!(
            "[[tasks]]\nid = \"gh\"\ncommand = 'test -n \"${NAME}\" && echo \"token: ${NAME}\"'\nsecret_env = [\"{NAME}\"]\n\
             [[tasks]]\nid = \"missing\"\ncommand = \"true\"\nsecret_env = [\"ORCA_TEST_UNSET_5b1e\"]\n"
        ),
    )
    .await;
    assert_eq!(receipt(&st, "gh").result, AttemptResult::Pass);
    let log = std::fs::read_to_string(ws.ws.attempt_dir(&run, "gh", 1).join("stdout.log")).unwrap();
    assert_eq!(log.trim(), "token: <redacted>");
    let r = receipt(&st, "missing");
    assert_eq!(r.result, AttemptResult::Fail);
    assert!(r.summary.contains("ORCA_TEST_UNSET_5b1e"), "{}", r.summary);
    let export = orca_cmd(&ws).args(["journal", "export"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&export.stdout).contains("S3cretTokenValue"));
}

#[tokio::test(flavor = "multi_thread")]
async fn past_its_budget_a_run_starts_nothing_more() {
    let ws = TestWs::fast();
    let first = stub(&ws, "first", "codex", "budget_exceeded.jsonl", 0);
    let text = format!(
        "budget = {{ max_tokens = 10000 }}\n{}[[tasks]]\nid = \"second\"\ncommand = \"true\"\n",
        task("first", "codex", &first, "gpt-5-codex", "")
    );
    // One slot: `second` waits for `first`, whose 24,885 tokens spend the
    // run's budget.
    let spec = common::spec_toml(&ws, &text);
    let tree = common::Tree::boot(&ws).await;
    let (run, _) = tree
        .run(
            common::submission(spec, 1),
            std::time::Duration::from_secs(60),
        )
        .await;
    tree.shutdown().await;
    let st = ws.fold(&run);
    assert_eq!(receipt(&st, "first").result, AttemptResult::Pass);
    let second = st.task("second").unwrap();
    assert!(second.attempts.is_empty(), "nothing more was started");
    assert_eq!(second.result, Some(AttemptResult::Skip));
    assert!(st
        .budget_exceeded
        .as_deref()
        .unwrap()
        .contains("24885 tokens"));
    assert!(st
        .alerts
        .iter()
        .any(|a| a.class == AlertClass::BudgetExceeded && a.task.is_none()));
}

#[test]
fn validate_and_run_name_the_budgets_orca_cannot_enforce() {
    let ws = TestWs::fast();
    std::fs::write(
        ws.path("spec.toml"),
        "[[tasks]]\nid = \"plain\"\ncommand = \"true\"\nbudget = { max_tokens = 100 }\n\
         [[tasks]]\nid = \"unpriced\"\ninstructions = \"x\"\nruntime = { preset = \"codex\", model = \"gpt-nonexistent-9\" }\nbudget = { max_cost_usd = 1.0 }\n",
    )
    .unwrap();
    let out = orca_cmd(&ws)
        .args(["validate"])
        .arg(ws.path("spec.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("budgets orca cannot enforce"), "{text}");
    assert!(text.contains("tasks[0].budget.max_tokens"), "{text}");
    assert!(
        text.contains(
            "tasks[1].budget.max_cost_usd: model `gpt-nonexistent-9` is not in the price table"
        ),
        "{text}"
    );
    // `orca run` says so before anything runs (the codex task then fails:
    // no such program here, which is fine).
    let out = orca_cmd(&ws)
        .args(["run"])
        .arg(ws.path("spec.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("orca: budget not enforced: tasks[0].budget.max_tokens"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_profiles_become_each_clis_flags_and_the_inexpressible_is_refused() {
    let ws = TestWs::fast();
    let profile = "worker = { tool_profile = \"read-only\", tools = [\"git\"] }";
    let spec = [
        task(
            "claude",
            "claude",
            &stub(&ws, "claude", "claude", "pass.jsonl", 0),
            "claude-sonnet-4-5",
            profile,
        ),
        task(
            "codex",
            "codex",
            &stub(&ws, "codex", "codex", "pass.jsonl", 0),
            "gpt-5-codex",
            "worker = { tool_profile = \"workspace-write\" }",
        ),
        task(
            "gemini",
            "gemini",
            &stub(&ws, "gemini", "gemini", "pass.jsonl", 0),
            "gemini-2.5-pro",
            profile,
        ),
    ]
    .concat();
    let (_, st) = run_one(&ws, &spec).await;
    for t in ["claude", "codex", "gemini"] {
        assert_eq!(receipt(&st, t).result, AttemptResult::Pass, "{t}");
    }
    let has = |argv: &[String], pair: [&str; 2]| {
        argv.windows(2).any(|w| w[0] == pair[0] && w[1] == pair[1])
    };
    let (argv, _) = recorded(&ws, "claude");
    assert!(has(&argv, ["--permission-mode", "default"]), "{argv:?}");
    assert!(
        has(
            &argv,
            ["--disallowedTools", "Edit,MultiEdit,Write,NotebookEdit"]
        ),
        "{argv:?}"
    );
    assert!(has(&argv, ["--allowedTools", "Bash(git:*)"]), "{argv:?}");
    let (argv, _) = recorded(&ws, "codex");
    assert!(has(&argv, ["--sandbox", "workspace-write"]), "{argv:?}");
    assert_eq!(
        argv.last().map(String::as_str),
        Some("-"),
        "the prompt stays on stdin"
    );
    let (argv, _) = recorded(&ws, "gemini");
    assert!(has(&argv, ["--approval-mode", "default"]), "{argv:?}");
    assert!(
        has(&argv, ["--allowed-tools", "run_shell_command(git)"]),
        "{argv:?}"
    );

    // A preset that cannot express the profile is refused at validation.
    std::fs::write(
        ws.path("cw.toml"),
        "[[tasks]]\nid = \"cw\"\ninstructions = \"review\"\nruntime = { preset = \"codewhale\" }\nworker = { tool_profile = \"read-only\" }\n",
    )
    .unwrap();
    let out = orca_cmd(&ws)
        .arg("validate")
        .arg(ws.path("cw.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tasks[0].worker.tool_profile: the codewhale preset cannot express tool_profile = \"read-only\""),
        "{text}"
    );
}
