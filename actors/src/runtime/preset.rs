//! Runtime presets: each agent CLI's argv, stream format and exit codes.
//!
//! A preset builds the invocation from a few inputs (the model, the prompt,
//! extra arguments) so a spec never spells out a CLI's flags by hand, and
//! never puts a long prompt in argv: Claude Code (`claude -p`), Codex
//! (`codex exec -`) and Gemini CLI read the prompt on stdin; CodeWhale takes
//! it as its last argument, so a prompt over [`MAX_INLINE_PROMPT_BYTES`]
//! goes into the prompt file and argv carries a short instruction naming that
//! file (docs/runtimes.md says what each choice rests on).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{AlertClass, FailureClass};
use crate::spec::config::MAX_INLINE_PROMPT_BYTES;

/// The agent CLIs orca knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Claude Code: `claude -p --output-format stream-json --verbose`.
    Claude,
    /// OpenAI Codex CLI: `codex exec --json -`.
    Codex,
    /// Gemini CLI: `gemini --output-format stream-json`.
    Gemini,
    /// CodeWhale: `codewhale exec --output-format stream-json <prompt>`.
    Codewhale,
}

/// How a worker's stdout is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamFormat {
    /// orca's detection of old: CodeWhale and Claude lines by their `type`,
    /// everything else log ([`crate::stream_json::parse_line`]).
    #[default]
    Auto,
    /// CodeWhale `exec --output-format stream-json`.
    Codewhale,
    /// Claude Code `-p --output-format stream-json --verbose`.
    Claude,
    /// Codex `exec --json`.
    Codex,
    /// Gemini CLI `--output-format stream-json`.
    Gemini,
}

impl Preset {
    pub const ALL: &'static [Preset] = &[
        Preset::Claude,
        Preset::Codex,
        Preset::Gemini,
        Preset::Codewhale,
    ];

    /// The name used in specs and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Claude => "claude",
            Preset::Codex => "codex",
            Preset::Gemini => "gemini",
            Preset::Codewhale => "codewhale",
        }
    }

    /// The program a preset runs when no `program` is configured (resolved
    /// in the worker's PATH).
    pub fn default_program(self) -> &'static str {
        self.as_str()
    }

    /// The stream format the preset's argv asks for.
    pub fn format(self) -> StreamFormat {
        match self {
            Preset::Claude => StreamFormat::Claude,
            Preset::Codex => StreamFormat::Codex,
            Preset::Gemini => StreamFormat::Gemini,
            Preset::Codewhale => StreamFormat::Codewhale,
        }
    }

    /// How the CLI receives its prompt.
    pub fn prompt_channel(self) -> PromptChannel {
        match self {
            Preset::Claude | Preset::Codex | Preset::Gemini => PromptChannel::Stdin,
            Preset::Codewhale => PromptChannel::LastArgument,
        }
    }

    /// Builds the invocation: the streaming flags, the model, the extra
    /// arguments (with `{prompt_file}`, `{attempt_dir}` and `{task_id}`
    /// substituted; `{prompt}` is refused at validation), and the prompt on
    /// stdin or, for CodeWhale, as the last argument when it is short.
    pub fn invocation(self, input: &InvocationInput<'_>) -> Invocation {
        let program = input
            .program
            .filter(|p| !p.is_empty())
            .unwrap_or(self.default_program())
            .to_string();
        let model = input.model.map(str::trim).filter(|m| !m.is_empty());
        let extra = input.args.iter().map(|a| input.substitute(a));
        let mut argv = vec![program];
        match self {
            Preset::Claude => {
                argv.extend(
                    ["-p", "--output-format", "stream-json", "--verbose"].map(String::from),
                );
                if let Some(m) = model {
                    argv.extend(["--model".to_string(), m.to_string()]);
                }
                argv.extend(extra);
            }
            Preset::Codex => {
                argv.extend(["exec", "--json"].map(String::from));
                if let Some(m) = model {
                    argv.extend(["--model".to_string(), m.to_string()]);
                }
                argv.extend(extra);
                // `-` makes `codex exec` read the prompt from stdin.
                argv.push("-".into());
            }
            Preset::Gemini => {
                argv.extend(["--output-format", "stream-json"].map(String::from));
                if let Some(m) = model {
                    argv.extend(["--model".to_string(), m.to_string()]);
                }
                argv.extend(extra);
            }
            Preset::Codewhale => {
                // CodeWhale's dispatcher takes `--model` before `exec` and
                // rejects it after.
                if let Some(m) = model {
                    argv.extend(["--model".to_string(), m.to_string()]);
                }
                argv.extend(["exec", "--output-format", "stream-json"].map(String::from));
                argv.extend(extra);
                // `--`: a prompt starting with `-` stays the prompt.
                argv.push("--".into());
                argv.push(codewhale_prompt_arg(input.prompt, input.prompt_file));
            }
        }
        Invocation {
            argv,
            stdin: match self.prompt_channel() {
                PromptChannel::Stdin => Stdin::Prompt,
                PromptChannel::LastArgument => Stdin::Closed,
            },
            prompt_file: true,
        }
    }

    /// What an exit code means for this CLI. 0 always passes; the rest are
    /// the codes each CLI documents, every other code a task failure.
    pub fn classify_exit(self, code: i32) -> ExitMeaning {
        let (class, reason) = match (self, code) {
            (_, 0) => (ExitClass::Success, "exited 0"),
            (Preset::Codewhale, 75) => (
                ExitClass::Transient,
                "CodeWhale exited 75 (EX_TEMPFAIL): a network or timeout failure after its own retries",
            ),
            (Preset::Gemini, 53) => (
                ExitClass::Budget,
                "Gemini CLI exited 53: its turn limit was exceeded",
            ),
            (Preset::Gemini, 42) => (
                ExitClass::Task,
                "Gemini CLI exited 42: input error (invalid prompt or arguments)",
            ),
            (Preset::Gemini, 1) => (
                ExitClass::Task,
                "Gemini CLI exited 1: general error or API failure",
            ),
            (Preset::Codewhale, 1) => (ExitClass::Task, "CodeWhale exited 1: the task failed"),
            (_, _) => (ExitClass::Task, "the agent CLI exited non-zero"),
        };
        ExitMeaning {
            code,
            class,
            reason,
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StreamFormat {
    pub const ALL: &'static [StreamFormat] = &[
        StreamFormat::Auto,
        StreamFormat::Codewhale,
        StreamFormat::Claude,
        StreamFormat::Codex,
        StreamFormat::Gemini,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StreamFormat::Auto => "auto",
            StreamFormat::Codewhale => "codewhale",
            StreamFormat::Claude => "claude",
            StreamFormat::Codex => "codex",
            StreamFormat::Gemini => "gemini",
        }
    }

    /// Whether the format carries token usage, so a token budget can be
    /// promised (`auto` may or may not: a plain command usually prints none).
    pub fn reports_usage(self) -> bool {
        self != StreamFormat::Auto
    }

    /// Whether token usage arrives only in the final event (Gemini's
    /// `result.stats`), so a token or cost budget is checked at the end.
    pub fn usage_only_at_end(self) -> bool {
        self == StreamFormat::Gemini
    }
}

impl fmt::Display for StreamFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a CLI receives its prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptChannel {
    /// On stdin, any length.
    Stdin,
    /// As the last argument (a long prompt is referred to by its file).
    LastArgument,
}

/// What [`Preset::invocation`] needs.
#[derive(Clone, Copy, Debug)]
pub struct InvocationInput<'a> {
    /// The program (default: the preset's name, resolved in PATH; an ssh
    /// host's `binary` replaces it later as for templates).
    pub program: Option<&'a str>,
    pub model: Option<&'a str>,
    /// The whole prompt.
    pub prompt: &'a str,
    /// Where the prompt file is (on the worker's host).
    pub prompt_file: &'a str,
    /// `$ORCA_ATTEMPT_DIR` on the worker's host.
    pub attempt_dir: &'a str,
    pub task_id: &'a str,
    /// Extra arguments (`[runtime] args` or the task's `runtime.args`),
    /// after the preset's own flags.
    pub args: &'a [String],
}

impl InvocationInput<'_> {
    /// Substitutes `{prompt_file}`, `{attempt_dir}`, `{task_id}` and
    /// `{orca}` (orca's own executable: a think attempt's runtime loads
    /// `{orca} mcp`) in an extra argument (never `{prompt}`: the prompt does
    /// not go in argv).
    fn substitute(&self, arg: &str) -> String {
        arg.replace("{prompt_file}", self.prompt_file)
            .replace("{attempt_dir}", self.attempt_dir)
            .replace("{task_id}", self.task_id)
            .replace("{orca}", orca_exe())
    }
}

/// orca's own executable (`orca` from PATH when it cannot be found).
pub fn orca_exe() -> &'static str {
    static EXE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    EXE.get_or_init(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.to_str().map(str::to_string))
            .unwrap_or_else(|| "orca".into())
    })
}

/// What the process reads on stdin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdin {
    /// Nothing: stdin is closed (`/dev/null`), as for plain commands.
    Closed,
    /// The whole prompt, then end of file. The prompt is also in the prompt
    /// file, so a host that cannot write to a child's stdin may redirect
    /// from that file instead ([`stdin_from_file`]).
    Prompt,
}

/// A process to start for an agent-runtime attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub argv: Vec<String>,
    pub stdin: Stdin,
    /// Whether the prompt file must be written before the start (always for
    /// presets: it is the record of what was asked, and CodeWhale's argv
    /// refers to it for long prompts).
    pub prompt_file: bool,
}

impl Invocation {
    /// The bytes to write to the child's stdin (then close it), if any.
    pub fn stdin_bytes<'p>(&self, prompt: &'p str) -> Option<&'p [u8]> {
        match self.stdin {
            Stdin::Closed => None,
            Stdin::Prompt => Some(prompt.as_bytes()),
        }
    }
}

/// An argv that runs `argv` with its stdin read from `file`: `sh -c 'exec
/// "$@" < "$0"' <file> <argv…>`. For hosts that start processes with stdin
/// closed (the ssh wrapper): the prompt file is already in the attempt
/// directory. Nothing is interpolated into the script, so no quoting can
/// break.
pub fn stdin_from_file(argv: &[String], file: &str) -> Vec<String> {
    let mut out = vec![
        "sh".to_string(),
        "-c".to_string(),
        "exec \"$@\" < \"$0\"".to_string(),
        file.to_string(),
    ];
    out.extend(argv.iter().cloned());
    out
}

/// CodeWhale's prompt argument: the prompt itself when short; otherwise an
/// instruction to read the prompt file (argv is no place for long text:
/// `ps` shows it, and one argument is capped at 128 KiB on Linux).
fn codewhale_prompt_arg(prompt: &str, prompt_file: &str) -> String {
    if prompt.len() <= MAX_INLINE_PROMPT_BYTES {
        prompt.to_string()
    } else {
        format!(
            "Your task is written in the file {prompt_file} ({} bytes). Read that whole file \
             first, then carry out the task exactly as it says.",
            prompt.len()
        )
    }
}

/// What an exit code means, in orca's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitClass {
    /// Exit 0.
    Success,
    /// A retryable infrastructure failure (CodeWhale 75).
    Transient,
    /// The CLI stopped at one of its own limits (Gemini 53): a budget
    /// failure — class task, alert `budget_exceeded`.
    Budget,
    /// The task failed (any other non-zero code).
    Task,
}

impl ExitClass {
    /// The failure class (DESIGN.md's retry table); `None` for success.
    pub fn failure_class(self) -> Option<FailureClass> {
        match self {
            ExitClass::Success => None,
            ExitClass::Transient => Some(FailureClass::Transient),
            ExitClass::Budget | ExitClass::Task => Some(FailureClass::Task),
        }
    }

    /// The alert raised with the failure, if any.
    pub fn alert(self) -> Option<AlertClass> {
        match self {
            ExitClass::Budget => Some(AlertClass::BudgetExceeded),
            _ => None,
        }
    }
}

/// An exit code with its class and a reason for the receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitMeaning {
    pub code: i32,
    pub class: ExitClass,
    pub reason: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(prompt: &'a str, args: &'a [String]) -> InvocationInput<'a> {
        InvocationInput {
            program: None,
            model: Some("m-1"),
            prompt,
            prompt_file: "/a/prompt.md",
            attempt_dir: "/a",
            task_id: "t1",
            args,
        }
    }

    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn argv_of_each_preset() {
        let args = vec!["--x={attempt_dir}/out".to_string()];
        let c = Preset::Claude.invocation(&input("do it", &args));
        assert_eq!(
            strs(&c.argv),
            [
                "claude",
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--model",
                "m-1",
                "--x=/a/out"
            ]
        );
        assert_eq!(c.stdin, Stdin::Prompt);
        assert_eq!(c.stdin_bytes("do it"), Some(&b"do it"[..]));

        let x = Preset::Codex.invocation(&input("do it", &args));
        assert_eq!(
            strs(&x.argv),
            [
                "codex",
                "exec",
                "--json",
                "--model",
                "m-1",
                "--x=/a/out",
                "-"
            ]
        );
        assert_eq!(x.stdin, Stdin::Prompt);

        let g = Preset::Gemini.invocation(&input("do it", &[]));
        assert_eq!(
            strs(&g.argv),
            ["gemini", "--output-format", "stream-json", "--model", "m-1"]
        );
        assert_eq!(g.stdin, Stdin::Prompt);

        let w = Preset::Codewhale.invocation(&input("-do it", &args));
        assert_eq!(
            strs(&w.argv),
            [
                "codewhale",
                "--model",
                "m-1",
                "exec",
                "--output-format",
                "stream-json",
                "--x=/a/out",
                "--",
                "-do it"
            ]
        );
        assert_eq!(w.stdin, Stdin::Closed);
        assert_eq!(w.stdin_bytes("x"), None);
    }

    #[test]
    fn no_model_and_a_program() {
        let i = InvocationInput {
            program: Some("/opt/bin/claude"),
            model: Some("  "),
            ..input("p", &[])
        };
        let c = Preset::Claude.invocation(&i);
        assert_eq!(c.argv[0], "/opt/bin/claude");
        assert!(!c.argv.contains(&"--model".to_string()), "{:?}", c.argv);
    }

    #[test]
    fn a_long_prompt_never_reaches_argv() {
        let long = "é".repeat(60 * 1024); // 120 KiB
        for p in Preset::ALL {
            let inv = p.invocation(&input(&long, &[]));
            let argv_bytes: usize = inv.argv.iter().map(String::len).sum();
            assert!(argv_bytes < 1024, "{p}: {argv_bytes} bytes of argv");
            assert!(inv.prompt_file);
            match p.prompt_channel() {
                PromptChannel::Stdin => assert_eq!(inv.stdin_bytes(&long), Some(long.as_bytes())),
                PromptChannel::LastArgument => {
                    let last = inv.argv.last().unwrap();
                    assert!(last.contains("/a/prompt.md"), "{last}");
                    assert!(last.contains(&long.len().to_string()), "{last}");
                }
            }
        }
        // At the limit CodeWhale still takes the prompt inline.
        let edge = "x".repeat(MAX_INLINE_PROMPT_BYTES);
        let w = Preset::Codewhale.invocation(&input(&edge, &[]));
        assert_eq!(w.argv.last(), Some(&edge));
    }

    #[test]
    fn stdin_from_file_keeps_argv_verbatim() {
        let argv = vec!["codex".to_string(), "a b".to_string(), "$(x)".to_string()];
        let w = stdin_from_file(&argv, "/d/prompt.md");
        assert_eq!(
            strs(&w),
            [
                "sh",
                "-c",
                "exec \"$@\" < \"$0\"",
                "/d/prompt.md",
                "codex",
                "a b",
                "$(x)"
            ]
        );
    }

    #[test]
    fn exit_codes() {
        use ExitClass::*;
        let cases = [
            (Preset::Codewhale, 0, Success),
            (Preset::Codewhale, 75, Transient),
            (Preset::Codewhale, 1, Task),
            (Preset::Gemini, 53, Budget),
            (Preset::Gemini, 42, Task),
            (Preset::Gemini, 1, Task),
            (Preset::Claude, 75, Task),
            (Preset::Codex, 53, Task),
            (Preset::Claude, 1, Task),
        ];
        for (p, code, class) in cases {
            let m = p.classify_exit(code);
            assert_eq!((m.code, m.class), (code, class), "{p} {code}");
        }
        assert_eq!(Transient.failure_class(), Some(FailureClass::Transient));
        assert_eq!(Budget.failure_class(), Some(FailureClass::Task));
        assert_eq!(Budget.alert(), Some(AlertClass::BudgetExceeded));
        assert_eq!(Task.alert(), None);
        assert_eq!(Success.failure_class(), None);
    }

    #[test]
    fn names_round_trip_through_serde() {
        for p in Preset::ALL {
            let s = serde_json::to_string(p).unwrap();
            assert_eq!(s, format!("\"{p}\""));
            assert_eq!(serde_json::from_str::<Preset>(&s).unwrap(), *p);
            assert_eq!(p.format().as_str(), p.as_str());
        }
        for f in StreamFormat::ALL {
            let s = serde_json::to_string(f).unwrap();
            assert_eq!(serde_json::from_str::<StreamFormat>(&s).unwrap(), *f);
        }
        assert!(!StreamFormat::Auto.reports_usage());
        assert!(StreamFormat::Gemini.usage_only_at_end());
    }
}
