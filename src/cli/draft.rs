//! `orca draft "<what you want done>"`: the configured agent runtime
//! writes a run spec for the request; orca validates it, feeds the located
//! errors back for a bounded number of repairs, prints a summary and
//! writes the file (never over another); `--run` launches it and follows.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use orca_actors::runtime::launch::{agent_launch, LaunchInput};
use orca_actors::runtime::resolve::{resolve, ResolvedRuntime};
use orca_actors::runtime::StreamFormat;
use orca_actors::spec::{self, Format, OrcaConfig, TaskSpec, ValidateContext};
use serde_json::Value;

use crate::exit;
use crate::render;

#[derive(Debug, Args)]
pub struct DraftArgs {
    /// What you want done, in your words.
    pub request: String,
    /// Where to write the spec (default: a name from the request, in the
    /// workspace root).
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Repairs allowed after the first draft (each feeds the validation
    /// errors back).
    #[arg(long, default_value_t = 2)]
    pub repairs: u32,
    /// Seconds the runtime may take per draft.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Launch the spec once written, and follow it.
    #[arg(long)]
    pub run: bool,
    #[arg(long)]
    pub json: bool,
}

/// What orca tells the runtime about specs (docs/spec.md, condensed).
const GUIDE: &str = r#"You write run specs for orca, a supervisor of agent and command workers.
Answer with ONE run spec in TOML inside a ```toml fenced block, and nothing else.

A run spec:
  name = "short name"
  max_workers = 4                      # optional
  [labels]                             # optional, free
  [[tasks]]
  id = "kebab-case-id"                 # unique, [a-z0-9-_]
  name = "Human name"                  # optional
  # EITHER a plain process:
  command = "shell text"               # or an argv array ["prog", "arg"]
  # OR an agent task (run by the configured agent CLI):
  objective = "one sentence"
  instructions = "what to do, concretely"
  input_files = ["paths", "to", "read"] # optional
  timeout_seconds = 900                # optional
  retry_policy = { max_attempts = 2 }  # optional
  budget = { max_tokens = 100000, max_seconds = 900 }   # optional, agent tasks
  expected_artifacts = ["log", "report"]  # optional; a report goes to $ORCA_ATTEMPT_DIR/artifacts/report.md
  scorer = { kind = "exit_code" }      # default; or { kind = "regex_match", path = "stdout", pattern = "..." }
                                       # or { kind = "manual" } (a human decides)
                                       # or { kind = "verifier_prompt", prompt = "..." }
  tags = ["free"]

Split the work into independent tasks that can run in parallel. Use plain
commands for deterministic steps (builds, tests) and agent tasks for
judgement (reviews, fixes, reports). Do not invent fields."#;

pub fn run(ws_flag: Option<&Path>, args: DraftArgs) -> anyhow::Result<i32> {
    let ws = super::workspace_or_cwd(ws_flag)?;
    let (config, _) = OrcaConfig::load(&ws.config_path()).map_err(|diags| {
        let origin = ws.config_path().display().to_string();
        let text: Vec<String> = diags
            .iter()
            .map(|d| d.display(&origin).to_string())
            .collect();
        anyhow::Error::from(exit::InvalidInput {
            message: text.join("\n"),
            code: "invalid_config".into(),
            details: None,
        })
    })?;
    let probe = TaskSpec {
        id: "draft".into(),
        instructions: Some("draft".into()),
        ..TaskSpec::default()
    };
    let rt = resolve(&probe, config.runtime());
    if matches!(
        rt,
        ResolvedRuntime::Missing | ResolvedRuntime::Command { .. }
    ) {
        return Err(exit::Failure {
            code: "no_runtime",
            exit: exit::FAILED,
            message: format!(
                "orca draft asks your agent CLI to write the spec, and none is configured: add to {}\n  [runtime]\n  preset = \"claude\"   # or \"codex\", \"gemini\", \"codewhale\"\nor a [runtime] command template (docs/runtimes.md)",
                ws.config_path().display()
            ),
        }
        .into());
    }
    let out_path = match &args.out {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => std::env::current_dir()?.join(p),
        None => ws.root().join(format!("{}.toml", slug(&args.request))),
    };
    if out_path.exists() {
        return Err(exit::InvalidInput {
            message: format!(
                "{} exists: orca draft never writes over a file (choose another with --out)",
                out_path.display()
            ),
            code: "exists".into(),
            details: None,
        }
        .into());
    }
    let dir = ws
        .orca_dir()
        .join("drafts")
        .join(orca_actors::model::Timestamp::now().nanos().to_string());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ctx = ValidateContext::workspace(ws.root(), &config);
    let origin = out_path.display().to_string();
    let mut prompt = format!("{GUIDE}\n\nThe request:\n{}\n", args.request);
    let mut tries = Vec::new();
    for round in 0..=args.repairs {
        eprintln!(
            "orca draft: asking the runtime{}",
            if round == 0 {
                String::new()
            } else {
                format!(" to repair it ({round} of {})", args.repairs)
            }
        );
        let answer = ask(&rt, &prompt, &dir, round, Duration::from_secs(args.timeout))?;
        let text = extract_spec(&answer);
        let report = spec::check_str(&text, Format::Toml, &origin, &ctx);
        if report.is_ok() {
            write_new(&out_path, &text)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "written": out_path,
                        "repairs": round,
                        "report": render::validate::report_json(&report, &config, None),
                    }))?
                );
            } else {
                print!("{}", render::validate::report_text(&report, &config, None));
                println!(
                    "wrote {} after {round} repair(s); next: orca run {}",
                    out_path.display(),
                    out_path.display()
                );
            }
            if args.run {
                let status = Command::new(std::env::current_exe()?)
                    .arg("--workspace")
                    .arg(ws.root())
                    .arg("run")
                    .arg(&out_path)
                    .status()
                    .context("cannot start orca run")?;
                return Ok(status.code().unwrap_or(exit::FAILED));
            }
            return Ok(exit::OK);
        }
        let errors: Vec<String> = report
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.display(&origin).to_string())
            .collect();
        tries.push(errors.clone());
        prompt = format!(
            "{GUIDE}\n\nThe request:\n{}\n\nYour previous spec:\n```toml\n{text}\n```\n\nIt does not validate:\n{}\n\nAnswer with the corrected spec only.\n",
            args.request,
            errors.join("\n")
        );
    }
    let last = tries.last().cloned().unwrap_or_default();
    Err(exit::Failure {
        code: "draft_invalid",
        exit: exit::FAILED,
        message: format!(
            "the runtime's spec still does not validate after {} repair(s); its last errors:\n{}\n(the drafts are in {})",
            args.repairs,
            last.join("\n"),
            dir.display()
        ),
    }
    .into())
}

/// Runs the runtime once on `prompt`; answers its final message.
fn ask(
    rt: &ResolvedRuntime<'_>,
    prompt: &str,
    dir: &Path,
    round: u32,
    timeout: Duration,
) -> anyhow::Result<String> {
    let prompt_file = dir.join(format!("prompt-{round}.md"));
    std::fs::write(&prompt_file, prompt)
        .with_context(|| format!("cannot write {}", prompt_file.display()))?;
    let pf = prompt_file.to_string_lossy().into_owned();
    let dir_s = dir.to_string_lossy().into_owned();
    let launch = agent_launch(
        rt,
        &LaunchInput {
            prompt,
            prompt_file: &pf,
            attempt_dir: &dir_s,
            task_id: "draft",
            program_override: None,
            stdin_supported: true,
            tool_profile: None,
            tools: &[],
        },
    )
    .map_err(|e| anyhow::anyhow!("cannot build the runtime's command: {e}"))?;
    let Some((program, rest)) = launch.argv.split_first() else {
        anyhow::bail!("the runtime's command is empty");
    };
    let out_file = dir.join(format!("answer-{round}.log"));
    let mut child = Command::new(program)
        .args(rest)
        .current_dir(dir)
        .stdin(if launch.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::from(std::fs::File::create(&out_file).with_context(
            || format!("cannot write {}", out_file.display()),
        )?))
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start the runtime ({program})"))?;
    if let (Some(bytes), Some(mut stdin)) = (launch.stdin.as_ref(), child.stdin.take()) {
        // A runtime that stops reading early is its own business.
        let _ = stdin.write_all(bytes);
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!(
                "the runtime took more than {} s (--timeout)",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let raw = std::fs::read_to_string(&out_file).unwrap_or_default();
    if !status.success() {
        anyhow::bail!(
            "the runtime exited with {status}; its output is in {}",
            out_file.display()
        );
    }
    Ok(final_text(launch.format, &raw))
}

/// The final message of a CLI's stream (the whole output for plain text).
fn final_text(format: StreamFormat, raw: &str) -> String {
    let events = || {
        raw.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    };
    let text = match format {
        StreamFormat::Claude => events()
            .filter(|e| e["type"] == "result")
            .filter_map(|e| e["result"].as_str().map(str::to_string))
            .next_back(),
        StreamFormat::Codex => events()
            .filter(|e| e["type"] == "item.completed" && e["item"]["type"] == "agent_message")
            .filter_map(|e| e["item"]["text"].as_str().map(str::to_string))
            .next_back(),
        StreamFormat::Gemini => {
            let parts: Vec<String> = events()
                .filter(|e| e["type"] == "message" && e["role"] == "assistant")
                .filter_map(|e| e["content"].as_str().map(str::to_string))
                .collect();
            (!parts.is_empty()).then(|| parts.concat())
        }
        StreamFormat::Codewhale | StreamFormat::Auto => None,
    };
    text.unwrap_or_else(|| raw.to_string())
}

/// The spec in an answer: its first ```toml block (or any fenced block),
/// else the whole text.
fn extract_spec(answer: &str) -> String {
    for opener in ["```toml", "```"] {
        if let Some(start) = answer.find(opener) {
            let body = &answer[start + opener.len()..];
            let body = body.strip_prefix('\n').unwrap_or(body);
            if let Some(end) = body.find("```") {
                return body[..end].trim_end().to_string() + "\n";
            }
        }
    }
    answer.trim().to_string() + "\n"
}

/// A file name from the request: lowercase words joined by `-`.
fn slug(request: &str) -> String {
    let words: Vec<String> = request
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(6)
        .map(str::to_ascii_lowercase)
        .collect();
    if words.is_empty() {
        "draft".into()
    } else {
        words.join("-")
    }
}

fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_is_the_fenced_block() {
        assert_eq!(
            extract_spec("Here:\n```toml\nname = \"x\"\n```\nbye"),
            "name = \"x\"\n"
        );
        assert_eq!(extract_spec("name = \"y\""), "name = \"y\"\n");
    }

    #[test]
    fn final_text_per_format() {
        let claude = "{\"type\":\"system\"}\n{\"type\":\"result\",\"result\":\"done\"}\n";
        assert_eq!(final_text(StreamFormat::Claude, claude), "done");
        let codex =
            "{\"type\":\"item.completed\",\"item\":{\"type\":\"agent_message\",\"text\":\"a\"}}\n";
        assert_eq!(final_text(StreamFormat::Codex, codex), "a");
        assert_eq!(final_text(StreamFormat::Auto, "plain"), "plain");
    }

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("Run the tests, then lint!"), "run-the-tests-then-lint");
        assert_eq!(slug("!!!"), "draft");
    }
}
