//! Which runtime a task gets, and which of its budgets orca cannot enforce.
//!
//! A task's own `runtime` wins over `[runtime]` in `.orca/config.toml`,
//! field by field; when the task names a *different* preset than the
//! config, nothing of the config's model, args or program carries over (a
//! Claude model means nothing to Codex). A task with a `command` runs that
//! command: its `runtime` may only name the command's stream `format` and
//! the `model` orca prices.

use super::preset::{Preset, StreamFormat};
use super::prices::PriceTable;
use crate::spec::config::{OrcaConfig, RuntimeConfig};
use crate::spec::types::{RunSpec, TaskSpec};

/// How a task's process is chosen and its output read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolvedRuntime<'a> {
    /// The task's own `command`.
    Command {
        format: StreamFormat,
        model: Option<&'a str>,
    },
    /// A preset builds the argv ([`Preset::invocation`]).
    Preset {
        preset: Preset,
        program: Option<&'a str>,
        model: Option<&'a str>,
        args: &'a [String],
    },
    /// The `[runtime] command` template.
    Template {
        command: &'a [String],
        format: StreamFormat,
        model: Option<&'a str>,
    },
    /// Instructions only, and no runtime anywhere: the attempt fails.
    Missing,
}

impl<'a> ResolvedRuntime<'a> {
    /// How stdout is parsed.
    pub fn format(&self) -> StreamFormat {
        match self {
            ResolvedRuntime::Command { format, .. } | ResolvedRuntime::Template { format, .. } => {
                *format
            }
            ResolvedRuntime::Preset { preset, .. } => preset.format(),
            ResolvedRuntime::Missing => StreamFormat::Auto,
        }
    }

    /// The model orca prices (and a preset passes to its CLI).
    pub fn model(&self) -> Option<&'a str> {
        match self {
            ResolvedRuntime::Command { model, .. }
            | ResolvedRuntime::Preset { model, .. }
            | ResolvedRuntime::Template { model, .. } => *model,
            ResolvedRuntime::Missing => None,
        }
    }

    /// The preset, if one runs.
    pub fn preset(&self) -> Option<Preset> {
        match self {
            ResolvedRuntime::Preset { preset, .. } => Some(*preset),
            _ => None,
        }
    }

    /// Whether the process is an agent runtime (it gets `[runtime]
    /// secret_env`, exit 75 may be transient, …) rather than a plain command.
    pub fn is_agent_runtime(&self) -> bool {
        matches!(
            self,
            ResolvedRuntime::Preset { .. } | ResolvedRuntime::Template { .. }
        )
    }

    /// Words for messages: what runs.
    fn what(&self) -> String {
        match self {
            ResolvedRuntime::Command { .. } => "the task's `command`".into(),
            ResolvedRuntime::Preset { preset, .. } => format!("preset `{preset}`"),
            ResolvedRuntime::Template { .. } => "the [runtime] command template".into(),
            ResolvedRuntime::Missing => "the task (no runtime is configured)".into(),
        }
    }
}

/// The runtime of `task` given the config's `[runtime]` section (pass
/// [`OrcaConfig::runtime`]).
pub fn resolve<'a>(task: &'a TaskSpec, config: Option<&'a RuntimeConfig>) -> ResolvedRuntime<'a> {
    let own = task.runtime.as_ref();
    let own_model = own.and_then(|r| r.model.as_deref());
    if task.command.is_some() {
        return ResolvedRuntime::Command {
            format: own.and_then(|r| r.format).unwrap_or_default(),
            model: own_model,
        };
    }
    let own_program = own.and_then(|r| r.program.as_deref());
    let own_args = own.and_then(|r| r.args.as_deref());
    if let Some(preset) = own.and_then(|r| r.preset) {
        let inherit = config.filter(|c| c.preset == Some(preset));
        return ResolvedRuntime::Preset {
            preset,
            program: own_program.or(inherit.and_then(|c| c.program.as_deref())),
            model: own_model.or(inherit.and_then(|c| c.model.as_deref())),
            args: own_args.unwrap_or(inherit.map(|c| c.args.as_slice()).unwrap_or(&[])),
        };
    }
    if let Some(c) = config {
        if let Some(preset) = c.preset {
            return ResolvedRuntime::Preset {
                preset,
                program: own_program.or(c.program.as_deref()),
                model: own_model.or(c.model.as_deref()),
                args: own_args.unwrap_or(&c.args),
            };
        }
        if !c.command.is_empty() {
            return ResolvedRuntime::Template {
                command: &c.command,
                format: c.format.unwrap_or_default(),
                model: own_model.or(c.model.as_deref()),
            };
        }
    }
    ResolvedRuntime::Missing
}

/// Each budget of `task` that orca cannot enforce (or not while the
/// process runs), as `budget.<field>: why`. `orca validate` and the first
/// lines of `orca run` print them.
pub fn unenforceable_budgets(task: &TaskSpec, config: &OrcaConfig) -> Vec<String> {
    let Some(b) = &task.budget else {
        return Vec::new();
    };
    let rt = resolve(task, config.runtime());
    let what = rt.what();
    let mut out = Vec::new();
    let fix = "name its stream with `format` (claude, codex, gemini, codewhale) if it prints one";
    match rt {
        // No runtime at all: the task fails when it is about to run
        // (validation warns so); its budgets are beside the point.
        ResolvedRuntime::Missing => return out,
        // A plain command read with `auto` may print nothing orca reads.
        ResolvedRuntime::Command {
            format: StreamFormat::Auto,
            ..
        } => {
            if b.max_tokens.is_some() {
                out.push(format!(
                    "budget.max_tokens: {what} is read with format `auto` and may report no token usage; {fix}"
                ));
            }
            if b.max_tool_calls.is_some() {
                out.push(format!(
                    "budget.max_tool_calls: {what} is read with format `auto` and may report no tool calls; {fix}"
                ));
            }
            if b.max_cost_usd.is_some() {
                out.push(format!(
                    "budget.max_cost_usd: {what} is read with format `auto` and may report no token usage to price; {fix}"
                ));
            }
            return out;
        }
        // An agent template read with `auto`: CodeWhale and Claude lines
        // give token totals and tool calls, but no breakdown to price.
        ResolvedRuntime::Template {
            format: StreamFormat::Auto,
            ..
        } => {
            if b.max_cost_usd.is_some() {
                out.push(format!(
                    "budget.max_cost_usd: {what} is read with format `auto`, which counts tokens without the breakdown orca prices; {fix}"
                ));
            }
            return out;
        }
        _ => {}
    }
    if let Some(reason) = cost_gap(rt, &config.price_table()).filter(|_| b.max_cost_usd.is_some()) {
        out.push(format!("budget.max_cost_usd: {reason}"));
    }
    if rt.format().usage_only_at_end() {
        for (field, set) in [
            ("max_tokens", b.max_tokens.is_some()),
            ("max_cost_usd", b.max_cost_usd.is_some()),
        ] {
            let already = out
                .iter()
                .any(|o| o.starts_with(&format!("budget.{field}:")));
            if set && !already {
                out.push(format!(
                    "budget.{field}: cannot be enforced while {what} runs: Gemini CLI reports usage only in its final `result`, so the budget is checked at the end; a turn limit in `runtime.args` bounds the run itself"
                ));
            }
        }
    }
    out
}

/// Why a cost cannot be computed for this runtime, if it cannot.
fn cost_gap(rt: ResolvedRuntime<'_>, prices: &PriceTable) -> Option<String> {
    match rt.model() {
        None => Some(format!(
            "no model is named for {}, and orca cannot price the CLI's default model; set `runtime.model` (or `model` in [runtime])",
            rt.what()
        )),
        Some(m) if !prices.knows(m) => Some(format!(
            "model `{m}` is not in the price table; add it under [[prices]] in .orca/config.toml (docs/runtimes.md)"
        )),
        Some(_) => None,
    }
}

/// For a run-level `budget`: the tasks whose usage or cost cannot count
/// towards it, as `budget.<field>: why`.
pub fn run_budget_gaps(spec: &RunSpec, config: &OrcaConfig) -> Vec<String> {
    let Some(b) = &spec.budget else {
        return Vec::new();
    };
    let prices = config.price_table();
    let mut out = Vec::new();
    for t in &spec.tasks {
        let rt = resolve(t, config.runtime());
        let (tokens_count, priced) = match rt {
            ResolvedRuntime::Command {
                format: StreamFormat::Auto,
                ..
            }
            | ResolvedRuntime::Missing => (
                false,
                Err("may report no usage (format `auto`)".to_string()),
            ),
            ResolvedRuntime::Template {
                format: StreamFormat::Auto,
                ..
            } => (
                true,
                Err("reports tokens without the breakdown orca prices (format `auto`)".to_string()),
            ),
            _ => (true, cost_gap(rt, &prices).map_or(Ok(()), Err)),
        };
        if b.max_tokens.is_some() && !tokens_count {
            out.push(format!(
                "budget.max_tokens: task `{}` may report no usage (format `auto`); its tokens do not count",
                t.id
            ));
        }
        if let (Some(_), Err(reason)) = (b.max_cost_usd, priced) {
            out.push(format!(
                "budget.max_cost_usd: task `{}` {reason}; its cost does not count",
                t.id
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::types::{Budget, CommandSpec, RunBudget, TaskRuntime};

    fn task(command: Option<&str>, runtime: Option<TaskRuntime>, budget: Budget) -> TaskSpec {
        TaskSpec {
            id: "t".into(),
            instructions: Some("do".into()),
            command: command.map(|c| CommandSpec::Shell(c.into())),
            runtime,
            budget: Some(budget),
            ..TaskSpec::default()
        }
    }

    fn config(preset: Option<Preset>, model: Option<&str>, args: &[&str]) -> OrcaConfig {
        OrcaConfig {
            runtime: Some(RuntimeConfig {
                preset,
                model: model.map(String::from),
                args: args.iter().map(|a| a.to_string()).collect(),
                program: Some("/opt/cli".into()),
                ..RuntimeConfig::default()
            }),
            ..OrcaConfig::default()
        }
    }

    fn rt(preset: Option<Preset>, model: Option<&str>) -> TaskRuntime {
        TaskRuntime {
            preset,
            model: model.map(String::from),
            ..TaskRuntime::default()
        }
    }

    #[test]
    fn the_task_wins_and_other_presets_inherit_nothing() {
        let cfg = config(Some(Preset::Claude), Some("claude-sonnet-4-5"), &["--x"]);
        // Same preset: the task's model, the config's args and program.
        let t = task(
            None,
            Some(rt(Some(Preset::Claude), Some("claude-opus-4-5"))),
            Budget::default(),
        );
        assert_eq!(
            resolve(&t, cfg.runtime()),
            ResolvedRuntime::Preset {
                preset: Preset::Claude,
                program: Some("/opt/cli"),
                model: Some("claude-opus-4-5"),
                args: &["--x".to_string()],
            }
        );
        // Another preset: nothing of the config's.
        let t = task(None, Some(rt(Some(Preset::Codex), None)), Budget::default());
        assert_eq!(
            resolve(&t, cfg.runtime()),
            ResolvedRuntime::Preset {
                preset: Preset::Codex,
                program: None,
                model: None,
                args: &[],
            }
        );
        // No task runtime: the config's preset.
        let t = task(None, None, Budget::default());
        assert_eq!(resolve(&t, cfg.runtime()).preset(), Some(Preset::Claude));
        assert_eq!(
            resolve(&t, cfg.runtime()).model(),
            Some("claude-sonnet-4-5")
        );
        // No runtime anywhere.
        assert_eq!(resolve(&t, None), ResolvedRuntime::Missing);
        assert!(!ResolvedRuntime::Missing.is_agent_runtime());
    }

    #[test]
    fn a_command_keeps_its_process_and_names_its_format() {
        let cfg = config(Some(Preset::Claude), Some("claude-sonnet-4-5"), &[]);
        let t = task(
            Some("my-agent"),
            Some(TaskRuntime {
                format: Some(StreamFormat::Codex),
                model: Some("gpt-5".into()),
                ..TaskRuntime::default()
            }),
            Budget::default(),
        );
        let r = resolve(&t, cfg.runtime());
        assert_eq!(
            r,
            ResolvedRuntime::Command {
                format: StreamFormat::Codex,
                model: Some("gpt-5")
            }
        );
        assert!(!r.is_agent_runtime());
        let plain = task(Some("gh issue list"), None, Budget::default());
        assert_eq!(resolve(&plain, cfg.runtime()).format(), StreamFormat::Auto);
    }

    #[test]
    fn a_template_with_a_format_and_a_model() {
        let cfg = OrcaConfig {
            runtime: Some(RuntimeConfig {
                command: vec!["cw".into(), "{prompt}".into()],
                format: Some(StreamFormat::Codewhale),
                model: Some("deepseek-chat".into()),
                ..RuntimeConfig::default()
            }),
            ..OrcaConfig::default()
        };
        let t = task(None, None, Budget::default());
        let r = resolve(&t, cfg.runtime());
        assert_eq!(r.format(), StreamFormat::Codewhale);
        assert_eq!(r.model(), Some("deepseek-chat"));
        assert!(r.is_agent_runtime());
    }

    #[test]
    fn budgets_that_cannot_be_enforced_are_named() {
        let all = Budget {
            max_tokens: Some(1000),
            max_tool_calls: Some(2),
            max_cost_usd: Some(1.0),
            ..Budget::default()
        };
        let none = OrcaConfig::default();
        // A plain command: every usage budget.
        let plain = task(Some("gh issue list"), None, all.clone());
        let u = unenforceable_budgets(&plain, &none);
        assert_eq!(u.len(), 3, "{u:?}");
        assert!(u[0].starts_with("budget.max_tokens:") && u[0].contains("`auto`"));
        assert!(u[1].starts_with("budget.max_tool_calls:"));
        assert!(u[2].starts_with("budget.max_cost_usd:"));
        // A preset with a known model: everything enforceable.
        let codex = task(
            None,
            Some(rt(Some(Preset::Codex), Some("gpt-5-codex"))),
            all.clone(),
        );
        assert_eq!(unenforceable_budgets(&codex, &none), Vec::<String>::new());
        // No model: the cost budget.
        let codex = task(None, Some(rt(Some(Preset::Codex), None)), all.clone());
        let u = unenforceable_budgets(&codex, &none);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(u[0].starts_with("budget.max_cost_usd:") && u[0].contains("no model"));
        // An unknown model: the cost budget, naming the model.
        let odd = task(
            None,
            Some(rt(Some(Preset::Claude), Some("claude-next"))),
            all.clone(),
        );
        let u = unenforceable_budgets(&odd, &none);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(u[0].contains("`claude-next`") && u[0].contains("[[prices]]"));
        // ... which a [[prices]] entry fixes.
        let priced = OrcaConfig {
            prices: vec![crate::runtime::prices::PriceEntry {
                model: "claude-next".into(),
                input: 1.0,
                output: 2.0,
                ..Default::default()
            }],
            ..OrcaConfig::default()
        };
        assert_eq!(unenforceable_budgets(&odd, &priced), Vec::<String>::new());
        // Gemini: tokens and cost only at the end.
        let gem = task(
            None,
            Some(rt(Some(Preset::Gemini), Some("gemini-2.5-pro"))),
            all,
        );
        let u = unenforceable_budgets(&gem, &none);
        assert_eq!(u.len(), 2, "{u:?}");
        assert!(u.iter().all(|m| m.contains("while")), "{u:?}");
        // An agent template read with `auto`: tokens and tool calls count
        // (CodeWhale and Claude lines), a cost cannot be computed.
        let template = OrcaConfig {
            runtime: Some(RuntimeConfig {
                command: vec!["codewhale".into(), "exec".into(), "{prompt}".into()],
                model: Some("deepseek-chat".into()),
                ..RuntimeConfig::default()
            }),
            ..OrcaConfig::default()
        };
        let t = task(None, None, {
            let mut b = gem.budget.clone().unwrap();
            b.max_tool_calls = Some(3);
            b
        });
        let u = unenforceable_budgets(&t, &template);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(u[0].starts_with("budget.max_cost_usd:") && u[0].contains("breakdown"));
        // No budget, nothing to say.
        let mut nob = gem.clone();
        nob.budget = None;
        assert!(unenforceable_budgets(&nob, &none).is_empty());
    }

    #[test]
    fn run_budget_gaps_name_the_tasks() {
        let spec = RunSpec {
            tasks: vec![
                TaskSpec {
                    id: "plain".into(),
                    command: Some(CommandSpec::Shell("true".into())),
                    ..TaskSpec::default()
                },
                TaskSpec {
                    id: "agent".into(),
                    instructions: Some("x".into()),
                    runtime: Some(rt(Some(Preset::Claude), None)),
                    ..TaskSpec::default()
                },
            ],
            budget: Some(RunBudget {
                max_tokens: Some(10),
                max_cost_usd: Some(1.0),
                ..RunBudget::default()
            }),
            ..RunSpec::default()
        };
        let g = run_budget_gaps(&spec, &OrcaConfig::default());
        assert_eq!(g.len(), 3, "{g:?}");
        assert!(g[0].contains("`plain`") && g[0].starts_with("budget.max_tokens"));
        assert!(g[1].contains("`plain`") && g[1].starts_with("budget.max_cost_usd"));
        assert!(g[2].contains("`agent`") && g[2].contains("no model"));
    }
}
