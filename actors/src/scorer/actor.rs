//! The scorer actor's implementation (see the module docs).

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::Value;

use super::checks::{self, CheckInput};
use super::process::{self, VerifierError, VerifierProcess};
use super::{ScoreRequest, ScorerMsg};
use crate::host::EnvVar;
use crate::model::{bounded, Score};
use crate::outcome::{write_receipt_file, Judgement};
use crate::path::ActorPath;
use crate::runtime::launch::{agent_launch, LaunchInput};
use crate::runtime::StreamFormat;
use crate::services::Registry;
use crate::spec::Scorer;

/// Evidence given to a verifier: this much of each log's tail.
const EVIDENCE_TAIL: u64 = 4096;

/// The scorer actor.
#[derive(Debug, Default)]
pub struct ScorerActor;

/// What the scorer is given.
#[derive(Clone, Debug)]
pub struct ScorerArgs {
    pub path: ActorPath,
    pub registry: Registry,
}

impl Actor for ScorerActor {
    type Msg = ScorerMsg;
    type State = ScorerArgs;
    type Arguments = ScorerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ScorerMsg>,
        args: ScorerArgs,
    ) -> Result<ScorerArgs, ActorProcessingErr> {
        args.registry.register(args.path.clone(), myself.get_cell());
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<ScorerMsg>,
        msg: ScorerMsg,
        _state: &mut ScorerArgs,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ScorerMsg::Score(req, reply) => {
                // Each scoring runs on its own: a slow verifier never holds
                // up the next, and a panic inside one is an answer, not a
                // crash of the actor.
                tokio::spawn(async move {
                    let timeout = req.scorer.effective_timeout().as_duration();
                    // `score` enforces the scorer's timeout itself (and kills
                    // and reaps a verifier process first); this backstop
                    // only guarantees an answer should that ever hang.
                    let backstop = timeout + super::process::REAP_LIMIT + Duration::from_secs(1);
                    let job = tokio::spawn(score(*req));
                    let j = match tokio::time::timeout(backstop, job).await {
                        Ok(Ok(j)) => j,
                        Ok(Err(e)) => Judgement::verifier_error(format!("the scorer crashed: {e}")),
                        Err(_) => Judgement::verifier_error(format!(
                            "the scorer timed out after {}",
                            secs(timeout)
                        )),
                    };
                    let _ = reply.send(j);
                });
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ScorerMsg>,
        state: &mut ScorerArgs,
    ) -> Result<(), ActorProcessingErr> {
        state.registry.unregister(&state.path);
        Ok(())
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s:.1}s")
    }
}

/// Scores one attempt within the scorer's `timeout_seconds`.
pub async fn score(req: ScoreRequest) -> Judgement {
    let scorer = match req.scorer.typed() {
        Ok(s) => s,
        Err(field) => {
            return Judgement::verifier_error(format!(
                "scorer {} is missing `{field}`",
                req.scorer.kind
            ))
        }
    };
    match scorer {
        Scorer::Manual => Judgement::partial(format!(
            "awaiting a manual verdict: orca verify {} {} --pass|--fail",
            req.attempt.run, req.attempt.task
        )),
        Scorer::Command { command, args } => command_scorer(&req, command, args).await,
        Scorer::VerifierPrompt { prompt } => prompt_scorer(&req, &prompt).await,
        det => {
            let r = req.clone();
            let timeout = req.scorer.effective_timeout().as_duration();
            let check = tokio::task::spawn_blocking(move || {
                checks::check(
                    &det,
                    &CheckInput {
                        workspace_root: &r.workspace_root,
                        task_root: r.task_root.as_deref(),
                        attempt_dir_rel: &r.attempt_dir_rel,
                        started: r.started,
                        exit_code: r.exit.code,
                    },
                )
            });
            // A check stuck on a hung filesystem is abandoned, not awaited.
            let Ok(res) = tokio::time::timeout(timeout, check).await else {
                return Judgement::verifier_error(format!(
                    "the scorer timed out after {}",
                    secs(timeout)
                ));
            };
            match res {
                Ok(Ok(c)) => with_score(
                    if c.pass {
                        Judgement::pass(c.notes)
                    } else {
                        Judgement::verifier_fail(c.notes)
                    },
                    c.score,
                ),
                Ok(Err(e)) => Judgement::verifier_error(format!("scorer error: {e}")),
                Err(e) => Judgement::verifier_error(format!("the scorer crashed: {e}")),
            }
        }
    }
}

fn with_score(mut j: Judgement, score: Option<Score>) -> Judgement {
    j.score = score;
    j
}

/// PATH, HOME and the ORCA_* context of a verifier.
fn verifier_env(req: &ScoreRequest, draft_path: &str) -> Vec<EnvVar> {
    let mut env = Vec::new();
    for base in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(base) {
            env.push(EnvVar::plain(base, v));
        }
    }
    if !env.iter().any(|v| v.name == "PATH") {
        env.push(EnvVar::plain("PATH", "/usr/local/bin:/usr/bin:/bin"));
    }
    let a = &req.attempt;
    for (k, v) in [
        ("ORCA_RUN_ID", a.run.clone()),
        ("ORCA_TASK_ID", a.task.clone()),
        ("ORCA_ATTEMPT", a.attempt.to_string()),
        ("ORCA_ATTEMPT_ID", a.to_string()),
        ("ORCA_ATTEMPT_DIR", req.attempt_dir().display().to_string()),
        ("ORCA_WORKSPACE", req.workspace_root.display().to_string()),
        ("ORCA_RECEIPT_DRAFT", draft_path.to_string()),
        (
            "ORCA_EXIT_CODE",
            req.exit.code.map(|c| c.to_string()).unwrap_or_default(),
        ),
        ("ORCA_VERIFYING", "1".into()),
    ] {
        env.push(EnvVar::plain(k, v));
    }
    env
}

/// A `{"score": x, "max": y, "notes": "…"}` line.
fn parse_score(v: &Value) -> Option<Score> {
    let value = v.get("score")?.as_f64()?;
    Some(Score {
        value,
        max: v.get("max").and_then(Value::as_f64).unwrap_or(1.0),
        notes: bounded(
            v.get("notes").and_then(Value::as_str).unwrap_or_default(),
            500,
        ),
    })
}

async fn command_scorer(req: &ScoreRequest, command: String, args: Vec<String>) -> Judgement {
    let dir = req.attempt_dir();
    // The receipt so far, for the verifier to read.
    let draft_dir = dir.join("verifier");
    let _ = std::fs::create_dir_all(&draft_dir);
    write_receipt_file(&draft_dir, &req.draft, None);
    let draft = draft_dir.join("receipt.json").display().to_string();
    let mut argv = vec![command];
    argv.extend(args);
    let run = process::run(VerifierProcess {
        argv,
        env: verifier_env(req, &draft),
        cwd: req.task_dir(),
        stdout_log: draft_dir.join("stdout.log"),
        stderr_log: draft_dir.join("stderr.log"),
        log_cap: req.log_cap,
        timeout: req.scorer.effective_timeout().as_duration(),
        secrets: req.secrets.clone(),
        stdin: None,
        format: StreamFormat::Auto,
        confine: req.confine.clone(),
        workspace: req.workspace_root.clone(),
        task_root: req.task_root.clone(),
        attempt_dir: req.attempt_dir(),
    })
    .await;
    let out = match run {
        Ok(o) => o,
        Err(e @ VerifierError::TimedOut(_)) => {
            return Judgement::verifier_error(format!("the command scorer {e}"))
        }
        Err(e) => return Judgement::verifier_error(format!("command scorer: {e}")),
    };
    let score = out.last_json.as_ref().and_then(parse_score);
    let notes = score
        .as_ref()
        .map(|s| format!("score {}/{}: {}", s.value, s.max, s.notes))
        .unwrap_or_default();
    match out.exit.and_then(|e| e.code) {
        Some(0) => with_score(
            Judgement::pass(join("the command scorer passed", &notes)),
            score,
        ),
        Some(1) => with_score(
            Judgement::verifier_fail(join("the command scorer failed", &notes)),
            score,
        ),
        Some(code) => Judgement::verifier_error(format!(
            "the command scorer exited {code} (expected 0 pass or 1 fail)"
        )),
        None => Judgement::verifier_error("the command scorer was killed by a signal"),
    }
}

fn join(a: &str, b: &str) -> String {
    if b.is_empty() {
        a.to_string()
    } else {
        format!("{a}: {b}")
    }
}

/// The last `max` bytes of a file, lossily as text.
fn tail(path: &std::path::Path, max: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The prompt a verifier agent gets: the scorer's prompt, then the
/// evidence.
pub fn verifier_prompt(req: &ScoreRequest, prompt: &str) -> String {
    let dir = req.attempt_dir();
    let mut s = format!(
        "{prompt}\n\nEvidence for task {} (attempt {}):\n",
        req.attempt.task, req.attempt.attempt
    );
    if let Some(o) = &req.objective {
        s.push_str(&format!("Objective: {o}\n"));
    }
    s.push_str(&format!(
        "Exit code: {}\n",
        req.exit
            .code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "none".into())
    ));
    s.push_str("Artifacts:\n");
    if req.artifacts.is_empty() {
        s.push_str("- none\n");
    }
    for a in &req.artifacts {
        s.push_str(&format!(
            "- {} {} ({} bytes, sha256 {})\n",
            a.kind, a.path, a.size, a.sha256
        ));
    }
    for (name, file) in [("stdout", "stdout.log"), ("stderr", "stderr.log")] {
        let t = tail(&dir.join(file), EVIDENCE_TAIL);
        if !t.is_empty() {
            s.push_str(&format!(
                "\nLast {EVIDENCE_TAIL} bytes of {name}:\n```\n{t}\n```\n"
            ));
        }
    }
    s.push_str(
        "\nAnswer with a final stream-json metadata line {\"verdict\": \"pass\" | \"fail\", \"notes\": \"…\"}: \
         without it the verification fails, whatever the exit code.\n",
    );
    s
}

async fn prompt_scorer(req: &ScoreRequest, prompt: &str) -> Judgement {
    // The workspace's `[runtime]` (a preset or a template) runs the
    // verifier, as it runs a task with only instructions.
    let instructions_only = crate::spec::TaskSpec::default();
    let resolved = crate::runtime::resolve(&instructions_only, req.runtime.as_ref());
    if matches!(resolved, crate::runtime::ResolvedRuntime::Missing) {
        return Judgement::verifier_error(format!(
            "verifier_prompt needs an agent runtime: {}",
            crate::spec::config::RUNTIME_HINT
        ));
    }
    let vdir = req.attempt_dir().join("verifier");
    if let Err(e) = std::fs::create_dir_all(&vdir) {
        return Judgement::verifier_error(format!("cannot create {}: {e}", vdir.display()));
    }
    let text = verifier_prompt(req, prompt);
    let prompt_file = vdir.join("prompt.md");
    if let Err(e) = std::fs::write(&prompt_file, &text) {
        return Judgement::verifier_error(format!("cannot write {}: {e}", prompt_file.display()));
    }
    write_receipt_file(&vdir, &req.draft, None);
    let launch = match agent_launch(
        &resolved,
        &LaunchInput {
            prompt: &text,
            prompt_file: &prompt_file.display().to_string(),
            attempt_dir: &req.attempt_dir().display().to_string(),
            task_id: &req.attempt.task,
            program_override: None,
            stdin_supported: true,
            tool_profile: None,
            tools: &[],
        },
    ) {
        Ok(l) => l,
        Err(e) => return Judgement::verifier_error(e),
    };
    let rt = req.runtime.as_ref();
    let mut env = verifier_env(req, &vdir.join("receipt.json").display().to_string());
    let mut values = Vec::new();
    let names = rt
        .map(|r| r.secret_env.as_slice())
        .filter(|_| req.secrets_allowed)
        .unwrap_or_default();
    for name in names {
        if let Ok(v) = std::env::var(name) {
            values.push(v.clone());
            env.push(EnvVar {
                name: name.clone(),
                value: crate::host::EnvValue::secret(v),
            });
        }
    }
    // The attempt's own secret values too: a verifier that echoes the
    // evidence must not write them either.
    let secrets = req.secrets.with(values);
    let run = process::run(VerifierProcess {
        argv: launch.argv,
        env,
        cwd: req.task_dir(),
        stdout_log: vdir.join("stdout.log"),
        stderr_log: vdir.join("stderr.log"),
        log_cap: req.log_cap,
        timeout: req.scorer.effective_timeout().as_duration(),
        secrets: secrets.clone(),
        stdin: launch.stdin,
        format: launch.format,
        confine: req.confine.clone(),
        workspace: req.workspace_root.clone(),
        task_root: req.task_root.clone(),
        attempt_dir: req.attempt_dir(),
    })
    .await;
    let redact = |t: &str| secrets.redact(t);
    let out = match run {
        Ok(o) => o,
        Err(e) => return Judgement::verifier_error(redact(&format!("the verifier {e}"))),
    };
    if let Some((pass, score, max, notes)) = &out.stream.verdict {
        let s = score.map(|value| Score {
            value,
            max: max.unwrap_or(1.0),
            notes: bounded(&redact(notes), 500),
        });
        let notes = redact(notes);
        return with_score(
            if *pass {
                Judgement::pass(join("the verifier's verdict: pass", &notes))
            } else {
                Judgement::verifier_fail(join("the verifier's verdict: fail", &notes))
            },
            s,
        );
    }
    if let Some(err) = out.stream.final_error() {
        return Judgement::verifier_error(redact(&format!(
            "the verifier reported an error: {err}"
        )));
    }
    verdictless(out.exit.and_then(|e| e.code))
}

/// A verifier that gave no verdict line never passes: exiting 0 only says
/// the agent CLI ran, not that it judged the evidence (a verifier failure,
/// so `retry_on = ["verifier"]` can ask again).
fn verdictless(code: Option<i32>) -> Judgement {
    match code {
        Some(0) => Judgement::verifier_fail(
            "the verifier exited 0 without a verdict line: not a pass (it must end with a \
             metadata line {\"verdict\": \"pass\" | \"fail\"})",
        ),
        Some(code) => {
            Judgement::verifier_fail(format!("the verifier exited {code} (no verdict line)"))
        }
        None => Judgement::verifier_error("the verifier was killed by a signal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttemptResult, FailureSource};

    #[test]
    fn a_verifier_without_a_verdict_never_passes() {
        for code in [Some(0), Some(1), Some(3)] {
            let j = verdictless(code);
            assert_ne!(j.result, AttemptResult::Pass, "{code:?}");
            assert_eq!(j.source, Some(FailureSource::Verifier), "{code:?}");
        }
        assert!(verdictless(Some(0)).reason.contains("without a verdict"));
    }
}
