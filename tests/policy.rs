//! Containment and enforced policy end to end, with real processes: nothing
//! an attempt starts outlives it (also what detached with `setsid`), a
//! verifier without a verdict does not pass, secrets never reach a file
//! under `.orca/` or the journal, and the kernel's own confinement
//! (Landlock writable paths, network namespaces, trust levels) does what a
//! spec declares — or the run says what it could not enforce.

mod common;

use std::path::Path;

use common::{orca_cmd, receipt, run_one, ReapRun, TestWs};
use orca_actors::model::{AttemptResult, FailureSource};

/// Whether `pid` is gone (or a zombie nobody reaped yet: it runs nothing).
fn gone(pid: i32) -> bool {
    orca_actors::host::procfs::stat(pid).is_none_or(|s| s.state == 'Z')
}

fn read_pid(ws: &TestWs, file: &str) -> i32 {
    let text = std::fs::read_to_string(ws.path(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn script(ws: &TestWs, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(ws.path("bin")).unwrap();
    let p = ws.path(&format!("bin/{name}"));
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_detached_grandchild_is_gone_after_the_end_and_after_a_timeout() {
    if let Some(why) = orca_actors::host::cgroup::unavailable() {
        // The process-group fallback cannot catch a setsid escapee.
        eprintln!("{why}: skipped");
        return;
    }
    let ws = TestWs::fast();
    let spec = r#"
[[tasks]]
id = "ends"
command = "setsid sleep 1000 >/dev/null 2>&1 </dev/null & echo $! > ends.pid"
[[tasks]]
id = "hangs"
command = "setsid sleep 1000 >/dev/null 2>&1 </dev/null & echo $! > hangs.pid; exec sleep 1000"
timeout_seconds = 1
retry_policy = { max_attempts = 1 }
"#;
    let (run, st) = run_one(&ws, spec).await;
    let _reap = ReapRun(run.clone());
    assert_eq!(receipt(&st, "ends").result, AttemptResult::Pass);
    assert_eq!(receipt(&st, "hangs").result, AttemptResult::Timeout);
    for file in ["ends.pid", "hangs.pid"] {
        let pid = read_pid(&ws, file);
        assert!(
            gone(pid),
            "{file}: the detached grandchild {pid} outlived its attempt"
        );
    }
    common::assert_gone(&run, "nothing of the run is left");
}

/// A workspace whose agent runtime prints a secret it was given on both
/// streams and, as a verifier, exits 0 without a verdict.
fn leaky_runtime_ws(secret_name: &str) -> TestWs {
    let ws = TestWs::fast();
    let agent = script(
        &ws,
        "leaky-agent",
        &format!(
            "echo \"stderr says ${secret_name}\" >&2\n\
             echo \"stdout says ${secret_name}\"\n\
             mkdir -p \"$ORCA_ATTEMPT_DIR/artifacts\"; echo done > \"$ORCA_ATTEMPT_DIR/artifacts/report.md\"\n\
             exit 0\n"
        ),
    );
    std::fs::write(
        ws.ws.config_path(),
        format!(
            "[runtime]\ncommand = [\"{agent}\", \"{{prompt_file}}\"]\nsecret_env = [\"{secret_name}\"]\n\
             [run]\ngrace_seconds = 0.5\n[journal]\nsync = \"never\"\n"
        ),
    )
    .unwrap();
    ws
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verdictless_verifier_does_not_pass_and_no_secret_reaches_any_file() {
    const NAME: &str = "ORCA_TEST_POLICY_PROVIDER_KEY_91c2";
    const VALUE: &str = "sk-policy-Zx81qPw0secret";
    std::env::set_var(NAME, VALUE);
    let ws = leaky_runtime_ws(NAME);
    let (run, st) = run_one(
        &ws,
        r#"
[[tasks]]
id = "judged"
instructions = "Write a report."
scorer = { kind = "verifier_prompt", prompt = "Check the report." }
retry_policy = { max_attempts = 1 }
"#,
    )
    .await;
    let r = receipt(&st, "judged");
    assert_eq!(
        (r.result, r.failure_source),
        (AttemptResult::Fail, Some(FailureSource::Verifier)),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("without a verdict"), "{}", r.summary);
    // The verifier did run and print (redacted) on stderr.
    let dir = ws.ws.attempt_dir(&run, "judged", 1);
    let vlog = std::fs::read_to_string(dir.join("verifier/stderr.log")).unwrap();
    assert_eq!(vlog.trim(), "stderr says <redacted>");
    // Nothing under .orca/, nor the journal's export, holds the value.
    let mut files = Vec::new();
    files_under(&ws.path(".orca"), &mut files);
    assert!(files.len() > 5, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(VALUE),
            "{} holds the secret",
            f.display()
        );
    }
    let export = orca_cmd(&ws).args(["journal", "export"]).output().unwrap();
    assert!(export.status.success());
    assert!(!String::from_utf8_lossy(&export.stdout).contains(VALUE));
}

#[tokio::test(flavor = "multi_thread")]
async fn landlock_confines_writes_to_the_writable_paths() {
    if orca_actors::host::sandbox::landlock_abi().is_none() {
        eprintln!("no Landlock on this kernel: skipped");
        return;
    }
    let ws = TestWs::fast();
    let outside = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
[[tasks]]
id = "inside"
command = "echo ok > out/result.txt && echo tmp > \"$TMPDIR/t\" && mkdir -p \"$ORCA_ATTEMPT_DIR/artifacts\" && echo r > \"$ORCA_ATTEMPT_DIR/artifacts/report.md\" && echo x > /dev/null"
workspace = {{ writable_paths = ["out"] }}
[[tasks]]
id = "outside"
command = "echo leak > {o}/leak.txt"
workspace = {{ writable_paths = ["out"] }}
retry_policy = {{ max_attempts = 1 }}
[[tasks]]
id = "workspace-file"
command = "echo edit > README.md"
workspace = {{ writable_paths = [] }}
retry_policy = {{ max_attempts = 1 }}
[[tasks]]
id = "unconfined"
command = "echo free > {o}/free.txt"
"#,
        o = outside.path().display()
    );
    let (_, st) = run_one(&ws, &spec).await;
    let r = receipt(&st, "inside");
    assert_eq!(r.result, AttemptResult::Pass, "{}", r.summary);
    assert_eq!(
        std::fs::read_to_string(ws.path("out/result.txt")).unwrap(),
        "ok\n"
    );
    for task in ["outside", "workspace-file"] {
        let r = receipt(&st, task);
        assert_eq!(r.result, AttemptResult::Fail, "{task}: {}", r.summary);
        assert!(
            r.summary
                .contains("write denied by the Landlock confinement")
                && r.summary.contains("Permission denied"),
            "{task}: {}",
            r.summary
        );
    }
    assert!(!outside.path().join("leak.txt").exists());
    assert!(!ws.path("README.md").exists());
    // No writable_paths: unrestricted, as before.
    assert_eq!(receipt(&st, "unconfined").result, AttemptResult::Pass);
    assert!(outside.path().join("free.txt").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn network_deny_has_no_interface_and_loopback_only_its_own() {
    if !orca_actors::host::sandbox::can_unshare_net() {
        eprintln!("cannot create network namespaces here: skipped");
        return;
    }
    // A server the test runs on the host's loopback.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let ws = TestWs::fast();
    // Each task reports: can it reach the test's server, can it listen on
    // and reach its own loopback.
    let probe = format!(
        "import socket\\n\
try:\\n    socket.create_connection(('127.0.0.1', {port}), timeout=2).close(); print('host:reached')\\n\
except OSError as e: print('host:', e)\\n\
try:\\n    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); socket.create_connection(s.getsockname(), timeout=2).close(); print('own:reached')\\n\
except OSError as e: print('own:', e)\\n"
    );
    std::fs::write(ws.path("probe.py"), probe.replace("\\n", "\n")).unwrap();
    let spec = r#"
[[tasks]]
id = "allow"
command = "python3 probe.py"
[[tasks]]
id = "deny"
command = "python3 probe.py"
security_policy = { network = "deny" }
[[tasks]]
id = "loopback"
command = "python3 probe.py"
security_policy = { network = "loopback" }
"#;
    let (run, st) = run_one(&ws, spec).await;
    let out = |task: &str| {
        assert_eq!(receipt(&st, task).result, AttemptResult::Pass, "{task}");
        std::fs::read_to_string(ws.ws.attempt_dir(&run, task, 1).join("stdout.log")).unwrap()
    };
    let allow = out("allow");
    assert!(
        allow.contains("host:reached") && allow.contains("own:reached"),
        "{allow}"
    );
    let deny = out("deny");
    assert!(!deny.contains("reached"), "deny reached something: {deny}");
    let lo = out("loopback");
    assert!(lo.contains("own:reached"), "{lo}");
    assert!(
        !lo.contains("host:reached"),
        "a loopback namespace's lo is its own, not the host's: {lo}"
    );
    drop(server);
}

#[test]
fn an_untrusted_worker_sees_no_token_no_secret_and_cannot_write() {
    const NAME: &str = "ORCA_TEST_POLICY_GH_TOKEN_4d2e";
    let caps = orca_actors::host::sandbox::local_caps();
    if !(caps.landlock && caps.netns) {
        // Under `strict`, untrusted work would (rightly) refuse to start.
        eprintln!("no Landlock or network namespaces here: skipped");
        return;
    }
    let ws = TestWs::fast();
    let report = "for v in ORCA_API ORCA_TOKEN ORCA_TEST_POLICY_GH_TOKEN_4d2e; do if [ -n \"$(printenv $v)\" ]; then echo \"$v=set\"; else echo \"$v=unset\"; fi; done";
    std::fs::write(
        ws.path("spec.toml"),
        format!(
            r#"
[[workers]]
id = "trusted"
capabilities = ["t"]
[[workers]]
id = "sandboxed"
trust_level = "untrusted"
capabilities = ["u"]

[[tasks]]
id = "trusted-task"
command = '{report}'
secret_env = ["{NAME}"]
worker = {{ capabilities = ["t"] }}
[[tasks]]
id = "untrusted-task"
command = '{report}; touch written-by-untrusted || echo write-denied'
secret_env = ["{NAME}"]
worker = {{ capabilities = ["u"] }}
"#
        ),
    )
    .unwrap();
    let out = orca_cmd(&ws)
        .env(NAME, "ghp_untrusted_Secret_55")
        .arg("run")
        .arg(ws.path("spec.toml"))
        .output()
        .unwrap();
    common::assert_exit(&out, 0);
    let log = |task: &str| {
        let dir = ws.path(".orca/runs");
        let run = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path();
        std::fs::read_to_string(run.join(task).join("1/stdout.log")).unwrap()
    };
    let trusted = log("trusted-task");
    assert!(
        trusted.contains("ORCA_TOKEN=set") && trusted.contains(&format!("{NAME}=set")),
        "{trusted}"
    );
    let untrusted = log("untrusted-task");
    for v in ["ORCA_API", "ORCA_TOKEN", NAME] {
        assert!(untrusted.contains(&format!("{v}=unset")), "{untrusted}");
    }
    assert!(untrusted.contains("write-denied"), "{untrusted}");
    assert!(!ws.path("written-by-untrusted").exists());
}

#[test]
fn a_host_that_cannot_enforce_refuses_strict_and_notes_best_effort() {
    let ws = TestWs::fast();
    std::fs::write(
        ws.path("spec.toml"),
        r#"
[[tasks]]
id = "strict"
command = "true"
security_policy = { network = "deny" }
[[tasks]]
id = "lenient"
command = "true"
workspace = { writable_paths = ["out"] }
security_policy = { network = "deny", enforcement = "best_effort" }
"#,
    )
    .unwrap();
    // ORCA_CONFINE=off: this host is treated as one without Landlock or
    // network namespaces (as an ssh host is).
    let out = orca_cmd(&ws)
        .env("ORCA_CONFINE", "off")
        .arg("run")
        .arg(ws.path("spec.toml"))
        .output()
        .unwrap();
    common::assert_exit(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: policy: tasks[1] on worker local-N: not enforced (best_effort)"),
        "{stderr}"
    );
    let run = std::fs::read_dir(ws.path(".orca/runs"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    let st = ws.fold(&run);
    let strict = receipt(&st, "strict");
    assert_eq!(strict.result, AttemptResult::Fail);
    assert!(
        strict
            .summary
            .contains("network = \"deny\" cannot be enforced on host local"),
        "{}",
        strict.summary
    );
    let lenient = receipt(&st, "lenient");
    assert_eq!(lenient.result, AttemptResult::Pass, "{}", lenient.summary);
    assert!(
        lenient
            .summary
            .contains("not enforced (best_effort): writable_paths (out)")
            && lenient
                .summary
                .contains("not enforced (best_effort): network = \"deny\""),
        "{}",
        lenient.summary
    );
}
