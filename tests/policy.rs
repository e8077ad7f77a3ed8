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
