//! Spec parsing and validation tests: the seed's examples, one case per
//! validation rule, round trips and no-panic on garbage.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn ctx() -> ValidateContext<'static> {
    ValidateContext {
        workspace_root: Some(Path::new("/ws")),
        runtime: None,
        alerts: None,
    }
}

fn check_json(v: &Value) -> SpecReport {
    check_str(&v.to_string(), Format::Json, "spec.json", &ctx())
}

#[test]
fn seed_examples_parse_and_json_equals_toml() {
    for name in ["minimal", "release-triage", "code-review-swarm"] {
        let json = check_file(&examples_dir().join(format!("{name}.json")), &ctx());
        let toml = check_file(&examples_dir().join(format!("{name}.toml")), &ctx());
        assert!(json.is_ok(), "{name}.json: {:?}", json.diagnostics);
        assert!(toml.is_ok(), "{name}.toml: {:?}", toml.diagnostics);
        assert_eq!(json.spec, toml.spec, "{name}: JSON and TOML differ");
        // Only instructions and no runtime: a warning, never an error.
        assert!(json.warnings().all(|d| d.message.contains("agent runtime")));
    }
}

#[test]
fn seed_fields_are_typed_not_extra() {
    let report = check_file(&examples_dir().join("release-triage.json"), &ctx());
    let spec = report.spec.unwrap();
    assert!(spec.extra.is_empty());
    let t = &spec.tasks[0];
    assert!(t.extra.is_empty(), "{:?}", t.extra);
    assert_eq!(t.budget.as_ref().unwrap().max_tool_calls, Some(24));
    assert_eq!(t.effective_retry().max_attempts, 2);
    assert_eq!(t.effective_retry().initial_backoff.get(), 10.0);
    assert_eq!(t.required_capabilities(), ["github", "release"]);
    assert_eq!(spec.labels["milestone"], "v0.8.60");
    let swarm = check_file(&examples_dir().join("code-review-swarm.json"), &ctx())
        .spec
        .unwrap();
    assert_eq!(
        swarm.tasks[0].scorer.as_ref().unwrap().kind,
        ScorerKind::VerifierPrompt
    );
    assert_eq!(
        swarm.tasks[1].scorer.as_ref().unwrap().kind,
        ScorerKind::Manual
    );
}

#[test]
fn smoke_example_is_clean() {
    let report = check_file(&examples_dir().join("smoke.toml"), &ctx());
    assert!(report.is_ok(), "{:?}", report.diagnostics);
    assert_eq!(report.diagnostics, []);
    let spec = report.spec.unwrap();
    assert!(spec.tasks.len() >= 6);
    let kinds: Vec<ScorerKind> = spec
        .tasks
        .iter()
        .filter_map(|t| t.scorer.as_ref().map(|s| s.kind))
        .collect();
    for k in [
        ScorerKind::ExitCode,
        ScorerKind::FileExists,
        ScorerKind::RegexMatch,
        ScorerKind::JsonPath,
    ] {
        assert!(kinds.contains(&k), "smoke lacks {k}");
    }
    assert!(spec.tasks.iter().any(|t| t.retry_policy.is_some()));
    assert!(spec.tasks.iter().any(|t| t.timeout_seconds.is_some()));
}

#[test]
fn single_task_and_bare_list_shapes() {
    let single = check_json(&json!({"id": "a", "command": "true", "timeout_second": 1}));
    assert_eq!(single.shape, Some(Shape::SingleTask));
    // Paths are in the document's own shape.
    assert_eq!(single.diagnostics[0].path, "timeout_second");
    assert_eq!(single.spec.unwrap().tasks[0].id, "a");

    let list = check_json(&json!([{"id": "a", "command": "true"}, {"id": "a", "command": "true"}]));
    assert_eq!(list.shape, Some(Shape::TaskList));
    assert_eq!(list.diagnostics[0].path, "[1].id");
    assert!(list.diagnostics[0].message.contains("duplicate"));

    let toml_single = check_str(
        "id = \"a\"\ncommand = \"true\"\n",
        Format::Toml,
        "t.toml",
        &ctx(),
    );
    assert_eq!(toml_single.shape, Some(Shape::SingleTask));
    assert!(toml_single.is_ok());

    let scalar = check_json(&json!(42));
    assert!(scalar.diagnostics[0].message.contains("expected a run"));
}

#[test]
fn sparse_specs_get_documented_defaults() {
    let spec = check_json(&json!({"tasks": [{"id": "a", "command": ["true"]}]}))
        .spec
        .unwrap();
    let t = &spec.tasks[0];
    let r = t.effective_retry();
    assert_eq!(r.max_attempts, DEFAULT_MAX_ATTEMPTS);
    assert_eq!(r.initial_backoff.get(), 5.0);
    assert_eq!(r.max_backoff.get(), 300.0);
    assert_eq!(r.multiplier, 2.0);
    assert_eq!(r.jitter, DEFAULT_JITTER);
    assert_eq!(r.retry_on, EffectiveRetry::default_retry_on());
    assert_eq!(spec.effective_stale_after(t).get(), 300.0);
    // The heartbeat an attempt runs with: the task's, else --stale-after,
    // else the run's.
    let secs = std::time::Duration::from_secs;
    assert_eq!(spec.stale_after_for(t, None), secs(300));
    assert_eq!(spec.stale_after_for(t, Some(secs(7))), secs(7));
    let mut own = t.clone();
    own.stale_after_seconds = Some(Seconds::new(9.0).unwrap());
    assert_eq!(spec.stale_after_for(&own, Some(secs(7))), secs(9));
    assert_eq!(
        spec.effective_intensity(),
        (20, Seconds::new(60.0).unwrap())
    );
    assert_eq!(spec.effective_strategy(), crate::model::Strategy::OneForOne);
    assert_eq!(spec.effective_max_spawn_depth(), 3);
    assert_eq!(t.effective_restart(), crate::model::RestartType::Transient);
    assert_eq!(t.priority(), 0);
}

/// One case per validation rule: (spec, severity, field path, message part).
#[test]
fn every_validation_rule() {
    use Severity::{Error as E, Warning as W};
    let task = |extra: Value| {
        let mut t = json!({"id": "t", "command": "true"});
        if let (Value::Object(t), Value::Object(e)) = (&mut t, extra) {
            t.extend(e);
        }
        t
    };
    let ssh = |host: Value| json!({"id": "w", "host": host});
    let cases: Vec<(&str, Value, Severity, &str, &str)> = vec![
        (
            "duplicate task id",
            json!({"tasks": [task(json!({})), task(json!({}))]}),
            E,
            "tasks[1].id",
            "duplicate task id \"t\"",
        ),
        (
            "duplicate worker id",
            json!({"tasks": [task(json!({}))], "workers": [{"id": "w"}, {"id": "w"}]}),
            E,
            "workers[1].id",
            "duplicate worker id",
        ),
        (
            "id with a leading dot",
            json!({"tasks": [task(json!({"id": ".t"}))]}),
            E,
            "tasks[0].id",
            "not starting with '.'",
        ),
        (
            "id with a slash",
            json!({"tasks": [task(json!({"id": "a/b"}))]}),
            E,
            "tasks[0].id",
            "invalid task id",
        ),
        (
            "id too long",
            json!({"tasks": [task(json!({"id": "a".repeat(129)}))]}),
            E,
            "tasks[0].id",
            "1-128 characters",
        ),
        (
            "missing id",
            json!({"tasks": [{"command": "true"}]}),
            E,
            "tasks[0].id",
            "missing required field `id`",
        ),
        (
            "name with control characters",
            json!({"tasks": [task(json!({"name": "a\u{1b}[31mred"}))]}),
            E,
            "tasks[0].name",
            "control characters",
        ),
        (
            "run name with a newline",
            json!({"name": "a\nb", "tasks": [task(json!({}))]}),
            E,
            "name",
            "control characters",
        ),
        (
            "invalid regex",
            json!({"tasks": [task(json!({"scorer": {"kind": "regex_match", "path": "stdout", "pattern": "(["}}))]}),
            E,
            "tasks[0].scorer.pattern",
            "invalid regex",
        ),
        (
            "invalid JSONPath",
            json!({"tasks": [task(json!({"scorer": {"kind": "json_path", "path": "r.json", "expression": "$.a[?"}}))]}),
            E,
            "tasks[0].scorer.expression",
            "invalid JSONPath",
        ),
        (
            "JSONPath without the root",
            json!({"tasks": [task(json!({"scorer": {"kind": "json_path", "path": "r.json", "expression": "a.b"}}))]}),
            E,
            "tasks[0].scorer.expression",
            "RFC 9535",
        ),
        (
            "max_attempts = 0",
            json!({"tasks": [task(json!({"retry_policy": {"max_attempts": 0}}))]}),
            E,
            "tasks[0].retry_policy.max_attempts",
            "at least 1",
        ),
        (
            "backoff_multiplier < 1",
            json!({"tasks": [task(json!({"retry_policy": {"backoff_multiplier": 0.5}}))]}),
            E,
            "tasks[0].retry_policy.backoff_multiplier",
            "at least 1",
        ),
        (
            "initial backoff > max backoff",
            json!({"tasks": [task(json!({"retry_policy": {"initial_backoff_seconds": 60, "max_backoff_seconds": 10}}))]}),
            E,
            "tasks[0].retry_policy.initial_backoff_seconds",
            "greater than max_backoff_seconds",
        ),
        (
            "initial default > explicit max",
            json!({"tasks": [task(json!({"retry_policy": {"max_backoff_seconds": 1}}))]}),
            E,
            "tasks[0].retry_policy.max_backoff_seconds",
            "greater than",
        ),
        (
            "needs_human in retry_on",
            json!({"tasks": [task(json!({"retry_policy": {"retry_on": ["needs_human"]}}))]}),
            W,
            "tasks[0].retry_policy.retry_on[0]",
            "never retried",
        ),
        (
            "unknown retry class",
            json!({"tasks": [task(json!({"retry_policy": {"retry_on": ["transent"]}}))]}),
            E,
            "tasks[0].retry_policy.retry_on[0]",
            "unknown variant `transent`",
        ),
        (
            "ssh without working_directory",
            json!({"tasks": [task(json!({}))], "workers": [ssh(json!({"kind": "ssh", "host": "h", "identity": "k"}))]}),
            E,
            "workers[0].host",
            "requires `working_directory`",
        ),
        (
            "ssh working_directory not absolute",
            json!({"tasks": [task(json!({}))], "workers": [ssh(json!({"kind": "ssh", "host": "h", "identity": "k", "working_directory": "rel"}))]}),
            E,
            "workers[0].host.working_directory",
            "absolute",
        ),
        (
            "ssh without host",
            json!({"tasks": [task(json!({}))], "workers": [ssh(json!({"kind": "ssh", "working_directory": "/w", "identity": "k"}))]}),
            E,
            "workers[0].host",
            "requires `host`",
        ),
        (
            "ssh without binary for a runtime task",
            json!({"tasks": [{"id": "t", "instructions": "x"}], "workers": [ssh(json!({"kind": "ssh", "host": "h", "working_directory": "/w", "identity": "k"}))]}),
            E,
            "workers[0].host",
            "requires `binary`",
        ),
        (
            "ssh bad fingerprint",
            json!({"tasks": [task(json!({}))], "workers": [ssh(json!({"kind": "ssh", "host": "h", "working_directory": "/w", "identity": "k", "host_key_fingerprint": "MD5:aa"}))]}),
            E,
            "workers[0].host.host_key_fingerprint",
            "SHA256:",
        ),
        (
            "ssh insecure host key",
            json!({"tasks": [task(json!({}))], "workers": [ssh(json!({"kind": "ssh", "host": "h", "working_directory": "/w", "identity": "k", "insecure_accept_any_host_key": true}))]}),
            W,
            "workers[0].host.insecure_accept_any_host_key",
            "man-in-the-middle",
        ),
        (
            "ssh too many sessions",
            json!({"tasks": [task(json!({}))], "workers": [ssh(json!({"kind": "ssh", "host": "h", "working_directory": "/w", "identity": "k", "max_sessions": 12}))]}),
            W,
            "workers[0].host.max_sessions",
            "MaxSessions",
        ),
        (
            "unknown host kind",
            json!({"tasks": [task(json!({}))], "workers": [ssh(json!({"kind": "shh"}))]}),
            E,
            "workers[0].host.kind",
            "unknown kind `shh`",
        ),
        (
            "secret-like name in a task allowlist",
            json!({"tasks": [task(json!({"workspace": {"environment": {"allowlist": ["GITHUB_TOKEN"]}}}))]}),
            E,
            "tasks[0].workspace.environment.allowlist[0]",
            "looks like a secret",
        ),
        (
            "secret-like name in required env",
            json!({"tasks": [task(json!({"workspace": {"environment": {"required": ["db_password"]}}}))]}),
            E,
            "tasks[0].workspace.environment.required[0]",
            "looks like a secret",
        ),
        (
            "secret-like name in a host allowlist",
            json!({"tasks": [task(json!({}))], "workers": [ssh(json!({"kind": "ssh", "host": "h", "working_directory": "/w", "identity": "k", "env_allowlist": ["AWS_Credentials"]}))]}),
            E,
            "workers[0].host.env_allowlist[0]",
            "looks like a secret",
        ),
        (
            "invalid env name",
            json!({"tasks": [task(json!({"workspace": {"environment": {"allowlist": ["A-B"]}}}))]}),
            E,
            "tasks[0].workspace.environment.allowlist[0]",
            "not an environment variable name",
        ),
        (
            "capabilities no worker has",
            json!({"tasks": [task(json!({"worker": {"capabilities": ["gpu"]}}))], "workers": [{"id": "w", "capabilities": ["linux"]}]}),
            E,
            "tasks[0].worker.capabilities",
            "no declared worker has all of [gpu]",
        ),
        (
            "scorer path escaping with ..",
            json!({"tasks": [task(json!({"scorer": {"kind": "file_exists", "path": "../secret"}}))]}),
            E,
            "tasks[0].scorer.path",
            "escapes the workspace",
        ),
        (
            "scorer path escaping from the task root",
            json!({"tasks": [task(json!({"workspace": {"root": "sub"}, "scorer": {"kind": "file_exists", "path": "../../x"}}))]}),
            E,
            "tasks[0].scorer.path",
            "escapes the workspace",
        ),
        (
            "attempt dir path escaping",
            json!({"tasks": [task(json!({"scorer": {"kind": "file_exists", "path": "$ORCA_ATTEMPT_DIR/../../../../../../etc/passwd"}}))]}),
            E,
            "tasks[0].scorer.path",
            "escapes the workspace",
        ),
        (
            "absolute input path outside",
            json!({"tasks": [task(json!({"input_files": ["/etc/passwd"]}))]}),
            E,
            "tasks[0].input_files[0]",
            "escapes the workspace",
        ),
        (
            "required file escaping",
            json!({"tasks": [task(json!({"workspace": {"required_files": ["../x"]}}))]}),
            E,
            "tasks[0].workspace.required_files[0]",
            "escapes the workspace",
        ),
        (
            "workspace root escaping",
            json!({"tasks": [task(json!({"workspace": {"root": "../elsewhere"}}))]}),
            E,
            "tasks[0].workspace.root",
            "escapes the workspace",
        ),
        (
            "neither command nor instructions",
            json!({"tasks": [{"id": "t", "objective": "x"}]}),
            E,
            "tasks[0]",
            "needs `command`",
        ),
        (
            "empty argv",
            json!({"tasks": [task(json!({"command": []}))]}),
            E,
            "tasks[0].command",
            "must name a program",
        ),
        (
            "command of the wrong type",
            json!({"tasks": [task(json!({"command": 5}))]}),
            E,
            "tasks[0].command",
            "an argv array of strings, or a shell command string",
        ),
        (
            "instructions without a runtime",
            json!({"tasks": [{"id": "t", "instructions": "do it"}]}),
            W,
            "tasks[0]",
            "no agent runtime is configured",
        ),
        (
            "unknown field with a suggestion",
            json!({"tasks": [task(json!({"timeout_second": 5}))]}),
            W,
            "tasks[0].timeout_second",
            "unknown field",
        ),
        (
            "wrong type names the field",
            json!({"tasks": [task(json!({"budget": {"max_tokens": "lots"}}))]}),
            E,
            "tasks[0].budget.max_tokens",
            "invalid type: string \"lots\", expected u64",
        ),
        (
            "negative seconds",
            json!({"tasks": [task(json!({"timeout_seconds": -1}))]}),
            E,
            "tasks[0].timeout_seconds",
            "non-negative number of seconds",
        ),
        (
            "zero timeout",
            json!({"tasks": [task(json!({"timeout_seconds": 0}))]}),
            E,
            "tasks[0].timeout_seconds",
            "greater than 0",
        ),
        (
            "priority not an integer",
            json!({"tasks": [task(json!({"metadata": {"priority": "high"}}))]}),
            E,
            "tasks[0].metadata.priority",
            "must be an integer",
        ),
        (
            "scorer missing its field",
            json!({"tasks": [task(json!({"scorer": {"kind": "regex_match", "path": "stdout"}}))]}),
            E,
            "tasks[0].scorer",
            "requires `pattern`",
        ),
        (
            "scorer field of another kind",
            json!({"tasks": [task(json!({"scorer": {"kind": "exit_code", "pattern": "x"}}))]}),
            W,
            "tasks[0].scorer.pattern",
            "ignored by kind exit_code",
        ),
        (
            "unknown scorer kind",
            json!({"tasks": [task(json!({"scorer": {"kind": "regex"}}))]}),
            E,
            "tasks[0].scorer.kind",
            "unknown variant `regex`",
        ),
        (
            "artifact kind with a slash",
            json!({"tasks": [task(json!({"expected_artifacts": ["a/b"]}))]}),
            E,
            "tasks[0].expected_artifacts[0]",
            "plain name",
        ),
        (
            "alert route to an unknown adapter",
            json!({"tasks": [task(json!({}))], "alerts": {"enabled": true, "routes": [{"events": ["stale"], "adapter": "nope"}]}}),
            E,
            "alerts.routes[0].adapter",
            "no adapter named \"nope\"",
        ),
        (
            "unknown alert class",
            json!({"tasks": [task(json!({}))], "alerts": {"routes": [{"events": ["stael"], "adapter": "a"}], "adapters": {"a": {"kind": "slack", "webhook_env": "X"}}}}),
            E,
            "alerts.routes[0].events[0]",
            "unknown variant `stael`",
        ),
        (
            "alert adapter without its env name",
            json!({"tasks": [task(json!({}))], "alerts": {"adapters": {"a": {"kind": "slack"}}}}),
            E,
            "alerts.adapters.a.webhook_env",
            "missing required field",
        ),
        (
            "a webhook URL where an env name belongs",
            json!({"tasks": [task(json!({}))], "alerts": {"routes": [{"events": ["stale"], "adapter": "a"}], "adapters": {"a": {"kind": "slack", "webhook_env": "https://hooks.slack.com/services/T/B/X"}}}}),
            E,
            "alerts.adapters.a.webhook_env",
            "looks like a URL or a secret",
        ),
        (
            "a routing key where an env name belongs",
            json!({"tasks": [task(json!({}))], "alerts": {"routes": [{"events": ["stale"], "adapter": "p"}], "adapters": {"p": {"kind": "pager_duty", "routing_key_env": "e93facc04764012d7bfb002500d5d1a6"}}}}),
            E,
            "alerts.adapters.p.routing_key_env",
            "looks like a URL or a secret",
        ),
        (
            "a signing secret where an env name belongs",
            json!({"tasks": [task(json!({}))], "alerts": {"routes": [{"events": ["stale"], "adapter": "h"}], "adapters": {"h": {"kind": "webhook", "url_env": "HOOK", "secret_env": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}}),
            E,
            "alerts.adapters.h.secret_env",
            "looks like a URL or a secret",
        ),
        (
            "a URL in an unknown adapter field",
            json!({"tasks": [task(json!({}))], "alerts": {"routes": [{"events": ["stale"], "adapter": "h"}], "adapters": {"h": {"kind": "webhook", "url_env": "HOOK", "url": "https://example.com/hook"}}}}),
            E,
            "alerts.adapters.h.url",
            "looks like a URL or a secret",
        ),
        (
            "an env name that is not one",
            json!({"tasks": [task(json!({}))], "alerts": {"routes": [{"events": ["stale"], "adapter": "h"}], "adapters": {"h": {"kind": "webhook", "url_env": "ORCA-HOOK"}}}}),
            E,
            "alerts.adapters.h.url_env",
            "is not an environment variable name",
        ),
        (
            "a zero rate limit",
            json!({"tasks": [task(json!({}))], "alerts": {"routes": [{"events": ["stale"], "adapter": "a"}], "adapters": {"a": {"kind": "slack", "webhook_env": "HOOK", "rate_limit": 0}}}}),
            E,
            "alerts.adapters.a.rate_limit",
            "positive number of messages a second",
        ),
        (
            "a plain-http PagerDuty endpoint",
            json!({"tasks": [task(json!({}))], "alerts": {"routes": [{"events": ["stale"], "adapter": "p"}], "adapters": {"p": {"kind": "pager_duty", "routing_key_env": "PD", "endpoint": "http://events.example.com/v2/enqueue"}}}}),
            E,
            "alerts.adapters.p.endpoint",
            "adapter `p`: plain http:// is accepted only to a loopback address",
        ),
        (
            "an unknown PagerDuty severity",
            json!({"tasks": [task(json!({}))], "alerts": {"routes": [{"events": ["stale"], "adapter": "p"}], "adapters": {"p": {"kind": "pager_duty", "routing_key_env": "PD", "severity": "urgent"}}}}),
            E,
            "alerts.adapters.p.severity",
            "unknown variant `urgent`",
        ),
        (
            "a negative group_wait",
            json!({"tasks": [task(json!({}))], "alerts": {"group_wait": -1}}),
            E,
            "alerts.group_wait",
            "non-negative number of seconds",
        ),
        (
            "an unknown adapter kind",
            json!({"tasks": [task(json!({}))], "alerts": {"adapters": {"a": {"kind": "teams", "url_env": "X"}}}}),
            E,
            "alerts.adapters.a.kind",
            "unknown kind `teams`",
        ),
        (
            "an alert_policy route to an undeclared adapter",
            json!({"tasks": [task(json!({"alert_policy": {"routes": [{"events": ["stale"], "adapter": "nope"}]}}))],
                   "alerts": {"enabled": true, "routes": [{"events": ["stale"], "adapter": "a"}], "adapters": {"a": {"kind": "slack", "webhook_env": "X"}}}}),
            E,
            "tasks[0].alert_policy.routes[0].adapter",
            "no adapter named \"nope\"",
        ),
        (
            "an unknown class in an alert_policy",
            json!({"tasks": [task(json!({"alert_policy": {"routes": [{"events": ["stael"], "adapter": "a"}]}}))]}),
            E,
            "tasks[0].alert_policy.routes[0].events[0]",
            "unknown variant `stael`",
        ),
        (
            "an unknown severity in an alert_policy",
            json!({"tasks": [task(json!({"alert_policy": {"severity": "high"}}))]}),
            E,
            "tasks[0].alert_policy.severity",
            "unknown variant `high`",
        ),
        (
            "a misspelled alert_policy field",
            json!({"tasks": [task(json!({"alert_policy": {"replace_route": true}}))]}),
            W,
            "tasks[0].alert_policy.replace_route",
            "unknown field",
        ),
        (
            "max_workers = 0",
            json!({"max_workers": 0, "tasks": [task(json!({}))]}),
            E,
            "max_workers",
            "at least 1",
        ),
        (
            "max_spawn_depth above the ceiling",
            json!({"max_spawn_depth": 7, "tasks": [task(json!({}))]}),
            W,
            "max_spawn_depth",
            "clamped to 3",
        ),
        (
            "unknown strategy",
            json!({"supervision": {"strategy": "one_for_none"}, "tasks": [task(json!({}))]}),
            E,
            "supervision.strategy",
            "unknown variant",
        ),
        (
            "no tasks",
            json!({"name": "empty"}),
            E,
            "tasks",
            "at least one task",
        ),
        (
            "worker concurrency 0",
            json!({"tasks": [task(json!({}))], "workers": [{"id": "w", "max_concurrent_tasks": 0}]}),
            E,
            "workers[0].max_concurrent_tasks",
            "at least 1",
        ),
        (
            "unknown preset",
            json!({"tasks": [{"id": "t", "instructions": "x", "runtime": {"preset": "codx"}}]}),
            E,
            "tasks[0].runtime.preset",
            "unknown variant `codx`",
        ),
        (
            "preset beside a command",
            json!({"tasks": [task(json!({"runtime": {"preset": "claude"}}))]}),
            E,
            "tasks[0].runtime.preset",
            "has a `command`",
        ),
        (
            "args beside a command",
            json!({"tasks": [task(json!({"runtime": {"args": ["-v"]}}))]}),
            W,
            "tasks[0].runtime.args",
            "ignored",
        ),
        (
            "format with a preset",
            json!({"tasks": [{"id": "t", "instructions": "x", "runtime": {"preset": "codex", "format": "claude"}}]}),
            W,
            "tasks[0].runtime.format",
            "the preset knows its format",
        ),
        (
            "unknown format",
            json!({"tasks": [task(json!({"runtime": {"format": "jsonl"}}))]}),
            E,
            "tasks[0].runtime.format",
            "unknown variant `jsonl`",
        ),
        (
            "the prompt in a preset's args",
            json!({"tasks": [{"id": "t", "instructions": "x", "runtime": {"preset": "codex", "args": ["--full-auto", "{prompt}"]}}]}),
            E,
            "tasks[0].runtime.args[1]",
            "`{prompt}` is not allowed",
        ),
        (
            "an empty model",
            json!({"tasks": [{"id": "t", "instructions": "x", "runtime": {"preset": "gemini", "model": " "}}]}),
            E,
            "tasks[0].runtime.model",
            "must not be empty",
        ),
        (
            "secret_env name",
            json!({"tasks": [task(json!({"secret_env": ["GH_TOKEN", "GH-TOKEN"]}))]}),
            E,
            "tasks[0].secret_env[1]",
            "not an environment variable name",
        ),
        (
            "a zero cost budget",
            json!({"tasks": [task(json!({"budget": {"max_cost_usd": 0}}))]}),
            E,
            "tasks[0].budget.max_cost_usd",
            "positive number of US dollars",
        ),
        (
            "a cost budget that is not a number",
            json!({"tasks": [task(json!({"budget": {"max_cost_usd": "5"}}))]}),
            E,
            "tasks[0].budget.max_cost_usd",
            "expected f64",
        ),
        (
            "a negative run cost budget",
            json!({"tasks": [task(json!({}))], "budget": {"max_cost_usd": -1.5}}),
            E,
            "budget.max_cost_usd",
            "positive number of US dollars",
        ),
        (
            "a zero run wall time",
            json!({"tasks": [task(json!({}))], "budget": {"max_seconds": 0}}),
            E,
            "budget.max_seconds",
            "greater than 0",
        ),
        (
            "a zero run token budget",
            json!({"tasks": [task(json!({}))], "budget": {"max_tokens": 0}}),
            E,
            "budget.max_tokens",
            "at least 1",
        ),
        (
            "a typo in the run budget",
            json!({"tasks": [task(json!({}))], "budget": {"max_cost": 3}}),
            W,
            "budget.max_cost",
            "unknown field",
        ),
    ];
    for (name, spec, severity, path, part) in cases {
        let report = check_json(&spec);
        let found = report
            .diagnostics
            .iter()
            .find(|d| d.path == path && d.message.contains(part));
        let Some(d) = found else {
            panic!(
                "{name}: no {severity:?} at `{path}` containing {part:?}; got {:#?}",
                report.diagnostics
            );
        };
        assert_eq!(d.severity, severity, "{name}");
        assert!(
            d.line.is_some() && d.column.is_some(),
            "{name}: no location"
        );
        if severity == Severity::Error {
            assert!(!report.is_ok(), "{name}: errors must fail the spec");
        }
    }
}

#[test]
fn errors_are_all_collected_and_located() {
    let text = r#"{
  "tasks": [
    {"id": "a", "command": "true", "retry_policy": {"max_attempts": 0}},
    {"id": "b", "command": "true", "timeout_seconds": "x"},
    {"id": "a", "instructions": "y", "scorer": {"kind": "json_path", "path": "r.json", "expression": "$["}}
  ]
}"#;
    let report = check_str(text, Format::Json, "s.json", &ctx());
    let located: Vec<(String, u32, u32)> = report
        .errors()
        .map(|d| (d.path.clone(), d.line.unwrap(), d.column.unwrap()))
        .collect();
    assert_eq!(
        located,
        [
            ("tasks[0].retry_policy.max_attempts".to_string(), 3, 69),
            ("tasks[1].timeout_seconds".to_string(), 4, 55),
            ("tasks[2].id".to_string(), 5, 12),
            ("tasks[2].scorer.expression".to_string(), 5, 102),
        ]
    );
    let toml = "[[tasks]]\nid = \"a\"\ncommand = \"true\"\n[tasks.retry_policy]\nbackoff_multiplier = 0.1\n";
    let report = check_str(toml, Format::Toml, "s.toml", &ctx());
    let d = report.errors().next().unwrap();
    assert_eq!((d.line, d.column), (Some(5), Some(22)));
}

#[test]
fn syntax_errors_name_line_and_column() {
    let report = check_str(
        "{\n  \"tasks\": [\n    {\"id\": \"a\",}\n  ]\n}",
        Format::Json,
        "s.json",
        &ctx(),
    );
    let d = &report.diagnostics[0];
    assert_eq!((d.line, d.column), (Some(3), Some(16)));
    assert!(d.message.contains("invalid JSON"), "{}", d.message);
    let report = check_str("[[tasks]]\nid = \"a\nb\"\n", Format::Toml, "s.toml", &ctx());
    let d = &report.diagnostics[0];
    assert_eq!(d.line, Some(2));
    assert!(d.message.contains("invalid TOML"), "{}", d.message);
    let report = check_str("{\"tasks\": [", Format::Json, "s.json", &ctx());
    assert!(report.diagnostics[0]
        .message
        .contains("unexpected end of file"));
}

#[test]
fn runtime_configured_silences_the_warning() {
    let rt = RuntimeConfig {
        command: vec!["cw".into(), "{prompt}".into()],
        ..Default::default()
    };
    let ctx = ValidateContext {
        workspace_root: None,
        runtime: Some(&rt),
        alerts: None,
    };
    let r = check_str(
        r#"{"id": "t", "instructions": "x"}"#,
        Format::Json,
        "s",
        &ctx,
    );
    assert_eq!(r.diagnostics, []);
    // A verifier_prompt scorer needs the runtime too: a warning without it.
    let spec =
        r#"{"id": "t", "command": "true", "scorer": {"kind": "verifier_prompt", "prompt": "ok?"}}"#;
    assert_eq!(check_str(spec, Format::Json, "s", &ctx).diagnostics, []);
    let none = self::ctx();
    let r = check_str(spec, Format::Json, "s", &none);
    assert_eq!(r.diagnostics.len(), 1, "{:?}", r.diagnostics);
    assert_eq!(r.diagnostics[0].path, "scorer");
    assert!(r.diagnostics[0].message.contains("verifier_prompt"));
    assert!(r.diagnostics[0]
        .hint
        .as_deref()
        .is_some_and(|h| h.contains("[runtime]")));
}

#[test]
fn runtimes_budgets_and_secrets_in_toml() {
    let text = r#"
name = "triage"
budget = { max_tokens = 200000, max_cost_usd = 5.0, max_seconds = 3600 }

[[tasks]]
id = "plan"
instructions = "Plan the release."
runtime = { preset = "codex", model = "gpt-5-codex", args = ["--sandbox", "read-only"] }
budget = { max_tokens = 1000, max_tool_calls = 2, max_cost_usd = 0.25 }

[[tasks]]
id = "issues"
command = ["gh", "issue", "list"]
secret_env = ["GH_TOKEN"]
runtime = { format = "auto" }
"#;
    // No [runtime] in the config: the task's own preset silences the
    // "no agent runtime" warning (until presets run, one warning says so).
    let r = check_str(text, Format::Toml, "s.toml", &ctx());
    if crate::runtime::PRESETS_WIRED {
        assert_eq!(r.diagnostics, [], "{:?}", r.diagnostics);
    } else {
        assert_eq!(r.diagnostics.len(), 1, "{:?}", r.diagnostics);
        let d = &r.diagnostics[0];
        assert_eq!(d.path, "tasks[0].runtime.preset");
        assert!(!d.is_error() && d.message.contains("does not run presets yet"));
        assert_eq!(d.line, Some(8));
    }
    let spec = r.spec.unwrap();
    let b = spec.budget.as_ref().unwrap();
    assert_eq!(
        (
            b.max_tokens,
            b.max_cost_usd,
            b.max_seconds.map(Seconds::get)
        ),
        (Some(200_000), Some(5.0), Some(3600.0))
    );
    let plan = &spec.tasks[0];
    let rt = plan.runtime.as_ref().unwrap();
    assert_eq!(rt.preset, Some(crate::runtime::Preset::Codex));
    assert_eq!(rt.model.as_deref(), Some("gpt-5-codex"));
    assert_eq!(rt.args.as_deref().map(<[String]>::len), Some(2));
    assert_eq!(plan.budget.as_ref().unwrap().max_cost_usd, Some(0.25));
    assert!(plan.needs_runtime());
    assert_eq!(spec.tasks[1].secret_env, ["GH_TOKEN"]);
    // The journal's JSON keeps every new field.
    let back = from_journal_json(&serde_json::to_string(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);
    let v = serde_json::to_value(&spec).unwrap();
    assert_eq!(v["tasks"][0]["runtime"]["preset"], "codex");
    assert_eq!(v["tasks"][1]["runtime"]["format"], "auto");
    assert_eq!(v["budget"]["max_cost_usd"], 5.0);
}

#[test]
fn unknown_fields_round_trip_at_every_level() {
    let spec = json!({
        "name": "r", "x_run": 1,
        "supervision": {"strategy": "rest_for_one", "x_sup": true},
        "tasks": [{
            "id": "t", "command": ["true"], "x_task": {"nested": [1, 2]},
            "retry_policy": {"max_attempts": 2, "x_retry": "r"},
            "scorer": {"kind": "exit_code", "x_scorer": 0},
            "worker": {"role": "r", "x_worker": "w"},
            "workspace": {"x_ws": 1, "environment": {"x_env": 2}},
            "budget": {"x_budget": 3},
        }],
        "workers": [{"id": "w", "x_w": 1, "host": {"kind": "ssh", "host": "h", "working_directory": "/w", "identity": "k", "x_host": 2}}],
        "alerts": {"x_alerts": 1, "routes": [{"events": ["stale"], "adapter": "s", "x_route": 1}],
                   "adapters": {"s": {"kind": "slack", "webhook_env": "HOOK", "x_adapter": 1}}},
    });
    let report = check_json(&spec);
    assert!(report.is_ok(), "{:?}", report.diagnostics);
    let unknown: Vec<&str> = report
        .diagnostics
        .iter()
        .filter(|d| d.message.starts_with("unknown field"))
        .map(|d| d.path.as_str())
        .collect();
    assert_eq!(unknown.len(), 14, "{unknown:?}");
    let back = serde_json::to_value(report.spec.as_ref().unwrap()).unwrap();
    assert_eq!(back["x_run"], 1);
    assert_eq!(back["tasks"][0]["x_task"]["nested"][1], 2);
    assert_eq!(back["tasks"][0]["workspace"]["environment"]["x_env"], 2);
    assert_eq!(back["workers"][0]["host"]["x_host"], 2);
    assert_eq!(back["alerts"]["adapters"]["s"]["x_adapter"], 1);
    // And parsing the written form gives the same spec.
    let again = check_json(&back);
    assert_eq!(again.spec, report.spec);
}

#[test]
fn journal_json_reads_back() {
    let spec = check_file(&examples_dir().join("release-triage.json"), &ctx())
        .spec
        .unwrap();
    let text = serde_json::to_string(&spec).unwrap();
    assert_eq!(from_journal_json(&text).unwrap(), spec);
}

#[test]
fn json_path_equals_null_is_a_value_not_an_absent_field() {
    let spec = check_json(&serde_json::json!({"tasks": [{
        "id": "t",
        "command": "true",
        "scorer": {"kind": "json_path", "path": "r.json", "expression": "$.a", "equals": null}
    }]}))
    .spec
    .unwrap();
    let scorer = spec.tasks[0].scorer.as_ref().unwrap();
    assert_eq!(scorer.equals, Some(Value::Null));
    assert!(matches!(
        scorer.typed(),
        Ok(crate::spec::Scorer::JsonPath {
            equals: Some(Value::Null),
            ..
        })
    ));
    // Written back and read from the journal, it stays a null to compare.
    let text = serde_json::to_string(&spec).unwrap();
    assert!(text.contains(r#""equals":null"#), "{text}");
    assert_eq!(from_journal_json(&text).unwrap(), spec);
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-][A-Za-z0-9._-]{0,12}"
}

fn seconds() -> impl Strategy<Value = Option<Seconds>> {
    prop_oneof![
        Just(None),
        (1u32..100_000).prop_map(|n| Seconds::new(n as f64)),
        (1u32..10_000).prop_map(|n| Seconds::new(n as f64 / 8.0)),
    ]
}

fn extra() -> impl Strategy<Value = Extra> {
    proptest::collection::btree_map(
        "x_[a-z]{1,6}",
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            "[ -~]{0,10}".prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            proptest::collection::vec(any::<i32>().prop_map(Value::from), 0..3)
                .prop_map(Value::from),
        ],
        0..3,
    )
    .prop_map(|m| m.into_iter().collect())
}

fn scorer() -> impl Strategy<Value = Option<ScorerSpec>> {
    let kind = proptest::sample::select(ScorerKind::ALL.to_vec());
    proptest::option::of(
        (
            kind,
            any::<Option<i32>>(),
            proptest::option::of("[a-z]{1,8}\\.txt"),
            any::<Option<bool>>(),
            seconds(),
            extra(),
        )
            .prop_map(|(kind, expected, path, fresh, timeout, extra)| ScorerSpec {
                expected,
                path,
                fresh,
                timeout_seconds: timeout,
                extra,
                ..ScorerSpec::of_kind(kind)
            }),
    )
}

fn retry() -> impl Strategy<Value = Option<RetryPolicy>> {
    proptest::option::of(
        (
            proptest::option::of(1u32..10),
            seconds(),
            seconds(),
            proptest::option::of((1u32..40).prop_map(|n| n as f64 / 4.0)),
            proptest::option::of(prop_oneof![
                any::<bool>().prop_map(Jitter::Enabled),
                (0u32..=4).prop_map(|n| Jitter::Fraction(n as f64 / 4.0)),
            ]),
            proptest::option::of(proptest::collection::vec(
                proptest::sample::select(crate::model::FailureClass::ALL.to_vec()),
                0..3,
            )),
            extra(),
        )
            .prop_map(
                |(max_attempts, i, m, mult, jitter, retry_on, extra)| RetryPolicy {
                    max_attempts,
                    initial_backoff_seconds: i,
                    max_backoff_seconds: m,
                    backoff_multiplier: mult,
                    jitter,
                    retry_on,
                    extra,
                },
            ),
    )
}

fn task() -> impl Strategy<Value = TaskSpec> {
    (
        id(),
        proptest::option::of("[ -~]{0,16}"),
        prop_oneof![
            Just(None),
            "[ -~]{1,20}".prop_map(|s| Some(CommandSpec::Shell(s))),
            proptest::collection::vec("[ -~]{1,8}", 1..4).prop_map(|v| Some(CommandSpec::Argv(v))),
        ],
        proptest::option::of("[ -~\n]{0,30}"),
        (seconds(), seconds(), retry(), scorer()),
        proptest::collection::vec("[a-z]{1,6}", 0..3),
        proptest::option::of(any::<i32>()),
        extra(),
    )
        .prop_map(
            |(
                id,
                name,
                command,
                instructions,
                (timeout, stale, retry, scorer),
                tags,
                priority,
                extra,
            )| {
                let mut metadata = Extra::new();
                if let Some(p) = priority {
                    metadata.insert("priority".into(), Value::from(p));
                }
                TaskSpec {
                    id,
                    name,
                    command,
                    instructions,
                    timeout_seconds: timeout,
                    stale_after_seconds: stale,
                    retry_policy: retry,
                    scorer,
                    tags,
                    metadata,
                    extra,
                    ..TaskSpec::default()
                }
            },
        )
}

fn worker() -> impl Strategy<Value = WorkerSpec> {
    (
        id(),
        prop_oneof![
            Just(HostSpec::default()),
            (
                "[a-z]{1,8}",
                proptest::option::of(1u16..),
                "/[a-z]{1,8}",
                any::<bool>(),
                extra()
            )
                .prop_map(|(host, port, wd, insecure, extra)| HostSpec::Ssh(SshHost {
                    host: Some(host),
                    port,
                    working_directory: Some(wd),
                    insecure_accept_any_host_key: insecure,
                    extra,
                    ..SshHost::default()
                })),
        ],
        proptest::collection::vec("[a-z]{1,6}", 0..3),
        proptest::option::of(1u32..8),
        extra(),
    )
        .prop_map(|(id, host, capabilities, max, extra)| WorkerSpec {
            id,
            host,
            capabilities,
            max_concurrent_tasks: max,
            extra,
            ..WorkerSpec::default()
        })
}

fn run_spec() -> impl Strategy<Value = RunSpec> {
    (
        proptest::option::of("[ -~]{0,16}"),
        proptest::collection::vec(task(), 1..4),
        proptest::collection::vec(worker(), 0..3),
        proptest::option::of(1u32..64),
        seconds(),
        extra(),
    )
        .prop_map(
            |(name, tasks, workers, max_workers, stale, extra)| RunSpec {
                name,
                tasks,
                workers,
                max_workers,
                stale_after_seconds: stale,
                extra,
                ..RunSpec::default()
            },
        )
}

/// Parses without validating (a random spec need not be valid to
/// round-trip).
fn parse_only(text: &str, format: Format) -> RunSpec {
    let doc = Document::parse(text, format).expect("syntax");
    let mut diags = parse::Diags::default();
    let spec = RunSpec::from_spec(doc.value, "", &mut diags).expect("object");
    assert!(!diags.has_errors(), "{:?}", diags.items);
    spec
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn serialize_then_parse_is_identity(spec in run_spec()) {
        let json = serde_json::to_string_pretty(&spec).unwrap();
        prop_assert_eq!(&parse_only(&json, Format::Json), &spec);
        let toml = toml::to_string(&spec).unwrap();
        prop_assert_eq!(&parse_only(&toml, Format::Toml), &spec);
        // The serde derive (used to read specs back from the journal) agrees.
        prop_assert_eq!(&from_journal_json(&json).unwrap(), &spec);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = check_str(&text, Format::Json, "f", &ctx());
        let _ = check_str(&text, Format::Toml, "f", &ctx());
    }

    #[test]
    fn truncated_specs_never_panic(cut in 0usize..4000, which in 0usize..4) {
        let name = ["release-triage.json", "code-review-swarm.toml", "smoke.toml", "code-review-swarm.json"][which];
        let text = std::fs::read_to_string(examples_dir().join(name)).unwrap();
        let mut end = cut.min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        let report = check_str(&text[..end], Format::detect(name, ""), name, &ctx());
        // Every diagnostic names a location or a field.
        for d in &report.diagnostics {
            prop_assert!(d.line.is_some() || !d.path.is_empty(), "{:?}", d);
        }
    }

    #[test]
    fn mutated_values_never_panic(spec in run_spec(), path_pick in any::<u32>(), junk in prop_oneof![
        Just(Value::Null), Just(json!(-1)), Just(json!("x")), Just(json!([])), Just(json!({})), Just(json!(1e300)), Just(json!(true))
    ]) {
        let mut v = serde_json::to_value(&spec).unwrap();
        mutate(&mut v, path_pick, junk);
        let _ = check_json(&v);
    }
}

/// Replaces one value somewhere in `v` (picked by `pick`) with `junk`.
fn mutate(v: &mut Value, mut pick: u32, junk: Value) {
    fn count(v: &Value) -> u32 {
        1 + match v {
            Value::Array(a) => a.iter().map(count).sum(),
            Value::Object(o) => o.values().map(count).sum(),
            _ => 0,
        }
    }
    pick %= count(v);
    fn go(v: &mut Value, pick: &mut u32, junk: &Value) -> bool {
        if *pick == 0 {
            *v = junk.clone();
            return true;
        }
        *pick -= 1;
        match v {
            Value::Array(a) => a.iter_mut().any(|x| go(x, pick, junk)),
            Value::Object(o) => o.values_mut().any(|x| go(x, pick, junk)),
            _ => false,
        }
    }
    go(v, &mut pick, &junk);
}
