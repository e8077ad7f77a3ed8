//! Tool profiles: a task's `worker.tool_profile` and `worker.tools` mapped
//! onto each agent CLI's own flags (docs/runtimes.md). A runtime that
//! cannot express what the task asks for is refused at validation (and,
//! should it get that far, when the attempt starts): orca never runs an
//! agent with more tools than the spec says while claiming otherwise.
//!
//! | profile | Claude Code | Codex | Gemini CLI |
//! |---|---|---|---|
//! | `read-only` | `--permission-mode default --disallowedTools Edit,MultiEdit,Write,NotebookEdit` | `--sandbox read-only` | `--approval-mode default` |
//! | `workspace-write` | `--permission-mode acceptEdits` | `--sandbox workspace-write` | `--approval-mode auto_edit` |
//! | `full` | `--permission-mode bypassPermissions` | `--sandbox danger-full-access` | `--approval-mode yolo` |
//! | `tools = ["git", …]` | `--allowedTools Bash(git:*),…` | refused | `--allowed-tools run_shell_command(git),…` |
//!
//! CodeWhale and `[runtime] command` templates express neither: a task
//! with a profile or tools is refused there.

use super::preset::Preset;

/// The profiles orca knows (the seed's `read-only` and two wider ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolProfile {
    ReadOnly,
    WorkspaceWrite,
    Full,
}

impl ToolProfile {
    pub const NAMES: &'static [&'static str] = &["read-only", "workspace-write", "full"];

    /// `read-only` (also `read_only`), `workspace-write`, `full`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().replace('_', "-").as_str() {
            "read-only" => Some(ToolProfile::ReadOnly),
            "workspace-write" => Some(ToolProfile::WorkspaceWrite),
            "full" => Some(ToolProfile::Full),
            _ => None,
        }
    }
}

/// Why a profile cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown tool_profile `{0}` (expected one of: read-only, workspace-write, full)")]
    Unknown(String),
    #[error(
        "{runtime} cannot express {what}: orca would run it with more tools than the spec says"
    )]
    Inexpressible { runtime: String, what: String },
}

fn what(profile: Option<&str>, tools: &[String]) -> String {
    match (profile, tools.is_empty()) {
        (Some(p), true) => format!("tool_profile = \"{p}\""),
        (Some(p), false) => format!("tool_profile = \"{p}\" and tools"),
        (None, _) => "a tools list".into(),
    }
}

/// The flags that give `preset` the profile and tools (`None` and empty:
/// no flags, the CLI's own defaults). `preset` `None` is a `[runtime]
/// command` template.
pub fn profile_args(
    preset: Option<Preset>,
    profile: Option<&str>,
    tools: &[String],
) -> Result<Vec<String>, ProfileError> {
    let parsed = match profile {
        None => None,
        Some(p) => Some(ToolProfile::parse(p).ok_or_else(|| ProfileError::Unknown(p.into()))?),
    };
    if parsed.is_none() && tools.is_empty() {
        return Ok(Vec::new());
    }
    let refuse = |runtime: &str| ProfileError::Inexpressible {
        runtime: runtime.to_string(),
        what: what(profile, tools),
    };
    let mut out: Vec<String> = Vec::new();
    let mut push = |a: &[&str]| out.extend(a.iter().map(|s| s.to_string()));
    match preset {
        None => return Err(refuse("a [runtime] command template")),
        Some(Preset::Codewhale) => return Err(refuse("the codewhale preset")),
        Some(Preset::Claude) => {
            match parsed {
                Some(ToolProfile::ReadOnly) => push(&[
                    "--permission-mode",
                    "default",
                    "--disallowedTools",
                    "Edit,MultiEdit,Write,NotebookEdit",
                ]),
                Some(ToolProfile::WorkspaceWrite) => push(&["--permission-mode", "acceptEdits"]),
                Some(ToolProfile::Full) => push(&["--permission-mode", "bypassPermissions"]),
                None => {}
            }
            if !tools.is_empty() {
                let list: Vec<String> = tools.iter().map(|t| format!("Bash({t}:*)")).collect();
                out.extend(["--allowedTools".to_string(), list.join(",")]);
            }
        }
        Some(Preset::Codex) => {
            if !tools.is_empty() {
                return Err(ProfileError::Inexpressible {
                    runtime: "the codex preset".into(),
                    what: "a tools list (only --sandbox levels)".into(),
                });
            }
            match parsed {
                Some(ToolProfile::ReadOnly) => push(&["--sandbox", "read-only"]),
                Some(ToolProfile::WorkspaceWrite) => push(&["--sandbox", "workspace-write"]),
                Some(ToolProfile::Full) => push(&["--sandbox", "danger-full-access"]),
                None => {}
            }
        }
        Some(Preset::Gemini) => {
            match parsed {
                Some(ToolProfile::ReadOnly) => push(&["--approval-mode", "default"]),
                Some(ToolProfile::WorkspaceWrite) => push(&["--approval-mode", "auto_edit"]),
                Some(ToolProfile::Full) => push(&["--approval-mode", "yolo"]),
                None => {}
            }
            if !tools.is_empty() {
                let list: Vec<String> = tools
                    .iter()
                    .map(|t| format!("run_shell_command({t})"))
                    .collect();
                out.extend(["--allowed-tools".to_string(), list.join(",")]);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn profiles_map_onto_each_clis_flags() {
        let tools = s(&["git", "gh"]);
        assert_eq!(
            profile_args(Some(Preset::Claude), Some("read-only"), &tools).unwrap(),
            s(&[
                "--permission-mode",
                "default",
                "--disallowedTools",
                "Edit,MultiEdit,Write,NotebookEdit",
                "--allowedTools",
                "Bash(git:*),Bash(gh:*)"
            ])
        );
        assert_eq!(
            profile_args(Some(Preset::Codex), Some("workspace-write"), &[]).unwrap(),
            s(&["--sandbox", "workspace-write"])
        );
        assert_eq!(
            profile_args(Some(Preset::Codex), Some("read_only"), &[]).unwrap(),
            s(&["--sandbox", "read-only"])
        );
        assert_eq!(
            profile_args(Some(Preset::Gemini), Some("read-only"), &s(&["git"])).unwrap(),
            s(&[
                "--approval-mode",
                "default",
                "--allowed-tools",
                "run_shell_command(git)"
            ])
        );
        assert!(profile_args(Some(Preset::Codewhale), None, &[])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn what_a_runtime_cannot_express_is_refused() {
        for (preset, profile, tools) in [
            (Some(Preset::Codewhale), Some("read-only"), vec![]),
            (None, Some("read-only"), vec![]),
            (Some(Preset::Codex), None, s(&["git"])),
        ] {
            let e = profile_args(preset, profile, &tools).unwrap_err();
            assert!(matches!(e, ProfileError::Inexpressible { .. }), "{e}");
        }
        assert_eq!(
            profile_args(Some(Preset::Claude), Some("admin"), &[]).unwrap_err(),
            ProfileError::Unknown("admin".into())
        );
    }
}
