//! From a resolved runtime and a prompt to what is started: the argv, the
//! bytes for stdin, and how stdout is read. One function for every agent
//! process orca starts (an attempt's, a `verifier_prompt` scorer's).

use super::preset::{stdin_from_file, InvocationInput, Preset, PromptChannel, StreamFormat};
use super::profile::profile_args;
use super::resolve::ResolvedRuntime;
use crate::spec::config::RUNTIME_HINT;
use crate::spec::template::runtime_argv;

/// What an agent-runtime process is started with.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentLaunch {
    pub argv: Vec<String>,
    /// Written to stdin, which is then closed (the prompt, for CLIs that
    /// read it there); `None`: stdin is closed.
    pub stdin: Option<Vec<u8>>,
    /// How its stdout is read.
    pub format: StreamFormat,
    /// The preset, when one runs (its exit codes mean what it documents).
    pub preset: Option<Preset>,
}

impl std::fmt::Debug for AgentLaunch {
    // The prompt is in argv (templates) or stdin: show sizes only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentLaunch")
            .field("program", &self.argv.first())
            .field("args", &self.argv.len().saturating_sub(1))
            .field("stdin_bytes", &self.stdin.as_ref().map(Vec::len))
            .field("format", &self.format)
            .field("preset", &self.preset)
            .finish()
    }
}

/// Where the prompt and the attempt are on the worker's host.
#[derive(Clone, Copy, Debug)]
pub struct LaunchInput<'a> {
    /// The whole prompt (also written to `prompt_file` before the start).
    pub prompt: &'a str,
    pub prompt_file: &'a str,
    pub attempt_dir: &'a str,
    pub task_id: &'a str,
    /// The host's own program path for the runtime (an ssh host's
    /// `binary`): it replaces the program.
    pub program_override: Option<&'a str>,
    /// Whether the host can write to the child's stdin; when it cannot, a
    /// CLI that reads its prompt there gets it redirected from the prompt
    /// file.
    pub stdin_supported: bool,
    /// The task's `worker.tool_profile` and `worker.tools`
    /// ([`super::profile`]).
    pub tool_profile: Option<&'a str>,
    pub tools: &'a [String],
}

/// The process for `rt`. `Err`: the task has no agent runtime to run (a
/// plain `command` never comes here), or its template is invalid.
pub fn agent_launch(
    rt: &ResolvedRuntime<'_>,
    input: &LaunchInput<'_>,
) -> Result<AgentLaunch, String> {
    let mut launch = match rt {
        ResolvedRuntime::Preset {
            preset,
            program,
            model,
            args,
        } => {
            // The profile's flags come first, then the spec's own args.
            let mut all_args = profile_args(Some(*preset), input.tool_profile, input.tools)
                .map_err(|e| e.to_string())?;
            all_args.extend(args.iter().cloned());
            let inv = preset.invocation(&InvocationInput {
                program: *program,
                model: *model,
                prompt: input.prompt,
                prompt_file: input.prompt_file,
                attempt_dir: input.attempt_dir,
                task_id: input.task_id,
                args: &all_args,
            });
            let stdin = inv.stdin_bytes(input.prompt).map(<[u8]>::to_vec);
            AgentLaunch {
                argv: inv.argv,
                stdin,
                format: preset.format(),
                preset: Some(*preset),
            }
        }
        ResolvedRuntime::Template {
            command, format, ..
        } => AgentLaunch {
            argv: {
                profile_args(None, input.tool_profile, input.tools).map_err(|e| e.to_string())?;
                runtime_argv(
                    command,
                    input.prompt,
                    input.prompt_file,
                    input.attempt_dir,
                    input.task_id,
                )?
            },
            stdin: None,
            format: *format,
            preset: None,
        },
        ResolvedRuntime::Command { .. } | ResolvedRuntime::Missing => {
            return Err(format!(
                "this task has only instructions and no agent runtime is configured: {RUNTIME_HINT}"
            ))
        }
    };
    if let (Some(program), Some(first)) = (input.program_override, launch.argv.first_mut()) {
        *first = program.to_string();
    }
    if launch.stdin.is_some() && !input.stdin_supported {
        launch.argv = stdin_from_file(&launch.argv, input.prompt_file);
        launch.stdin = None;
    }
    Ok(launch)
}

/// Whether `rt` reads its prompt on stdin.
pub fn reads_stdin(rt: &ResolvedRuntime<'_>) -> bool {
    rt.preset()
        .is_some_and(|p| p.prompt_channel() == PromptChannel::Stdin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(stdin_supported: bool) -> LaunchInput<'static> {
        LaunchInput {
            prompt: "fix the bug",
            prompt_file: "/w/.orca/a/prompt.md",
            attempt_dir: "/w/.orca/a",
            task_id: "fix",
            program_override: None,
            stdin_supported,
            tool_profile: None,
            tools: &[],
        }
    }

    #[test]
    fn a_preset_gets_its_prompt_on_stdin_or_from_the_file() {
        let rt = ResolvedRuntime::Preset {
            preset: Preset::Claude,
            program: None,
            model: Some("claude-sonnet-4-5"),
            args: &[],
        };
        let l = agent_launch(&rt, &input(true)).unwrap();
        assert_eq!(l.argv[0], "claude");
        assert!(l.argv.contains(&"stream-json".to_string()));
        assert_eq!(l.stdin.as_deref(), Some(&b"fix the bug"[..]));
        assert_eq!(
            (l.format, l.preset),
            (StreamFormat::Claude, Some(Preset::Claude))
        );
        assert!(!l.argv.iter().any(|a| a.contains("fix the bug")));
        // A host that cannot write stdin: redirected from the prompt file.
        let l = agent_launch(&rt, &input(false)).unwrap();
        assert_eq!(&l.argv[..2], ["sh", "-c"]);
        assert_eq!(l.argv[3], "/w/.orca/a/prompt.md");
        assert_eq!(l.stdin, None);
        assert!(reads_stdin(&rt));
    }

    #[test]
    fn a_template_and_the_hosts_program() {
        let cmd = [
            "agent".to_string(),
            "--prompt-file".into(),
            "{prompt_file}".into(),
        ];
        let rt = ResolvedRuntime::Template {
            command: &cmd,
            format: StreamFormat::Auto,
            model: None,
        };
        let mut i = input(true);
        i.program_override = Some("/opt/bin/agent");
        let l = agent_launch(&rt, &i).unwrap();
        assert_eq!(
            l.argv,
            ["/opt/bin/agent", "--prompt-file", "/w/.orca/a/prompt.md"]
        );
        assert_eq!((l.stdin, l.preset), (None, None));
        assert!(agent_launch(&ResolvedRuntime::Missing, &i).is_err());
    }
}
