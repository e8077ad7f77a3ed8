//! `.orca/config.toml`: the agent runtime (a preset or an argv template),
//! secrets passed only to runtime processes, price overrides, run defaults
//! and journal settings.

use serde::{Deserialize, Serialize};

use super::diag::Diagnostic;
use super::parse::{Diags, FromSpec};
use super::source::{join_index, join_key, Document, Format};
use super::types::{AlertConfig, Extra, Seconds};
use super::validate::{alert_config_findings, is_valid_env_name};
use crate::from_spec;
use crate::runtime::prices::{PriceEntry, PriceTable};
use crate::runtime::{Preset, StreamFormat};

/// The placeholders a runtime command template may use.
pub const PLACEHOLDERS: &[&str] = &["{prompt}", "{prompt_file}", "{attempt_dir}", "{task_id}"];

/// Prompts longer than this must go through `{prompt_file}`, never argv.
pub const MAX_INLINE_PROMPT_BYTES: usize = 4096;

/// How to configure the runtime, for messages.
pub const RUNTIME_HINT: &str =
    "name an agent CLI in .orca/config.toml: [runtime] preset = \"claude\" \
(or \"codex\", \"gemini\", \"codewhale\"), or a [runtime] command template; or give the task \
a `runtime = { preset = … }` or a `command`";

/// The whole config file. Every section is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrcaConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunDefaults>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalConfig>,
    /// Price table entries that replace or add to orca's
    /// (`actors/src/runtime/prices.toml`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<PriceEntry>,
    /// The workspace's default alert config: applies to every run whose
    /// spec has no `alerts`, and to alerts raised by agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertConfig>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The agent runtime that runs tasks which only have instructions: a
/// `preset` (orca builds the argv) or a `command` template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    /// argv template; placeholders `{prompt}`, `{prompt_file}`,
    /// `{attempt_dir}`, `{task_id}`. Not with `preset`.
    #[serde(default)]
    pub command: Vec<String>,
    /// Names of env vars (provider API keys) passed only to runtime
    /// processes; their values are never journaled, logged or shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<String>,
    /// The agent CLI whose argv, stream format and exit codes orca knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// The model: passed to the preset's CLI; with a `command`, only the
    /// model orca prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// With `preset`: extra arguments after the preset's own; placeholders
    /// `{prompt_file}`, `{attempt_dir}`, `{task_id}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// With `preset`: the CLI's program (default: the preset's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// With `command`: the format of its stdout (default `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<StreamFormat>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Defaults for runs in this workspace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunDefaults {
    /// Concurrent attempts (default: the number of CPUs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<u32>,
    /// SIGTERM → SIGKILL grace (default 5 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_seconds: Option<Seconds>,
    /// Cap per attempt log file (default 8 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_cap_bytes: Option<u64>,
    /// Cap per artifact file (default 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_cap_bytes: Option<u64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// When the journal syncs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Every append is durable before it is acknowledged (group commit).
    #[default]
    Always,
    /// Never fsync (tests and benches only).
    Never,
}

/// Journal settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JournalConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncMode>,
    /// Segment roll-over size (default 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_bytes: Option<u64>,
    /// Snapshot a projection every N events (default 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_every: Option<u64>,
    /// Segments `orca journal compact` keeps besides those the snapshot
    /// needs (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_segments: Option<u32>,
    #[serde(flatten)]
    pub extra: Extra,
}

from_spec!(OrcaConfig {
    runtime: nested,
    run: nested,
    journal: nested,
    prices: nested,
    alerts: nested,
});

from_spec!(RuntimeConfig {
    command: leaf,
    secret_env: leaf,
    preset: leaf,
    model: leaf,
    args: leaf,
    program: leaf,
    format: leaf,
});

from_spec!(RunDefaults {
    max_workers: leaf,
    grace_seconds: leaf,
    log_cap_bytes: leaf,
    artifact_cap_bytes: leaf,
});

from_spec!(JournalConfig {
    sync: leaf,
    segment_bytes: leaf,
    snapshot_every: leaf,
    keep_segments: leaf,
});

impl OrcaConfig {
    /// The `[runtime]` section when it names a preset or a command
    /// template (the agent runtime of tasks with only instructions).
    pub fn runtime(&self) -> Option<&RuntimeConfig> {
        self.runtime
            .as_ref()
            .filter(|r| !r.command.is_empty() || r.preset.is_some())
    }

    /// orca's price table with this workspace's `[[prices]]` applied.
    pub fn price_table(&self) -> PriceTable {
        PriceTable::builtin().with_overrides(&self.prices)
    }

    /// Parses a config file's text; warnings (unknown fields) come back with
    /// the config; errors fail.
    pub fn parse(text: &str) -> Result<(OrcaConfig, Vec<Diagnostic>), Vec<Diagnostic>> {
        let doc = Document::parse(text, Format::Toml).map_err(|d| vec![d])?;
        let mut diags = Diags::default();
        let config = OrcaConfig::from_spec(doc.value.clone(), "", &mut diags).unwrap_or_default();
        config.check(&mut diags);
        let located: Vec<Diagnostic> = diags
            .items
            .into_iter()
            .map(|(mut d, at_key)| {
                if let Some((l, c)) = doc.locate(&d.path, at_key) {
                    d = d.at(l, c);
                }
                d
            })
            .collect();
        if located.iter().any(Diagnostic::is_error) {
            Err(located)
        } else {
            Ok((config, located))
        }
    }

    /// Loads `.orca/config.toml`; a missing file is the default config.
    pub fn load(path: &std::path::Path) -> Result<(OrcaConfig, Vec<Diagnostic>), Vec<Diagnostic>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok((OrcaConfig::default(), vec![]))
            }
            Err(e) => Err(vec![Diagnostic::error("", format!("cannot read: {e}"))]),
        }
    }

    fn check(&self, diags: &mut Diags) {
        if let Some(rt) = &self.runtime {
            match (rt.command.is_empty(), rt.preset) {
                (true, None) => diags.push(
                    Diagnostic::error("runtime", "needs a `preset` or a `command`")
                        .with_hint(RUNTIME_HINT),
                ),
                (false, Some(p)) => diags.push(
                    Diagnostic::error(
                        "runtime.command",
                        format!("`command` and `preset = \"{p}\"` exclude each other: the preset builds the argv"),
                    )
                    .with_hint("keep `preset` (extra flags go in `args`, another binary in `program`), or keep `command`"),
                ),
                _ => {}
            }
            if rt.preset.is_some() {
                if rt.format.is_some() {
                    diags.push(Diagnostic::warning(
                        "runtime.format",
                        "ignored with `preset`: the preset knows its format",
                    ));
                }
                for (i, arg) in rt.args.iter().enumerate() {
                    if arg.contains("{prompt}") {
                        diags.error(
                            join_index("runtime.args", i),
                            "`{prompt}` is not allowed in args: the preset passes the prompt itself (on stdin, or as a file for long prompts)",
                        );
                    }
                }
            } else {
                if !rt.args.is_empty() {
                    diags.push(Diagnostic::warning(
                        "runtime.args",
                        "ignored without `preset`: put the arguments in `command`",
                    ));
                }
                if rt.program.is_some() {
                    diags.push(Diagnostic::warning(
                        "runtime.program",
                        "ignored without `preset`: `command` names its program",
                    ));
                }
            }
            if matches!(rt.model.as_deref(), Some(m) if m.trim().is_empty()) {
                diags.error("runtime.model", "must not be empty");
            }
            if matches!(rt.program.as_deref(), Some(p) if p.trim().is_empty()) {
                diags.error("runtime.program", "must not be empty");
            }
            for (i, arg) in rt.command.iter().enumerate() {
                for p in placeholders_in(arg) {
                    if !PLACEHOLDERS.contains(&p) {
                        diags.push(
                            Diagnostic::error(
                                join_index("runtime.command", i),
                                format!("unknown placeholder `{p}`"),
                            )
                            .with_hint(format!("placeholders: {}", PLACEHOLDERS.join(", "))),
                        );
                    }
                }
            }
            for (i, name) in rt.secret_env.iter().enumerate() {
                if !is_valid_env_name(name) {
                    diags.error(
                        join_index("runtime.secret_env", i),
                        format!(
                            "`{name}` is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
                        ),
                    );
                }
            }
        }
        if let Some(run) = &self.run {
            if run.max_workers == Some(0) {
                diags.error(join_key("run", "max_workers"), "must be at least 1");
            }
        }
        for (i, entry) in self.prices.iter().enumerate() {
            let path = join_index("prices", i);
            for (field, message) in entry.problems() {
                diags.error(join_key(&path, field), message);
            }
        }
        if let Some(j) = &self.journal {
            if matches!(j.segment_bytes, Some(n) if n < 4096) {
                diags.error("journal.segment_bytes", "must be at least 4096");
            }
            if j.snapshot_every == Some(0) {
                diags.error("journal.snapshot_every", "must be at least 1");
            }
        }
        if let Some(a) = &self.alerts {
            for d in alert_config_findings("alerts", a) {
                diags.push(d);
            }
        }
    }
}

/// The `{name}` placeholders in an argument (`name` of `[a-z_]`; other
/// braces, such as inline JSON, are left alone).
pub fn placeholders_in(arg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = arg;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(after.len());
        if len > 0 && after[len..].starts_with('}') {
            out.push(&rest[start..start + len + 2]);
            rest = &after[len + 1..];
        } else {
            rest = after;
        }
    }
    out
}

/// The commented config `orca init` writes.
pub const DEFAULT_CONFIG_TOML: &str = r##"# orca workspace configuration. Every section is optional.
# Reference: docs/spec.md ("Workspace config").

# The agent runtime runs tasks that give `instructions` but no `command`.
# Name the agent CLI (orca builds its argv, reads its event stream, counts
# its usage and cost; docs/runtimes.md):
# [runtime]
# preset = "claude"         # or "codex", "gemini", "codewhale"
# model = "claude-sonnet-4-5"
# args = ["--max-turns", "30"]
# Or an argv template. Placeholders: {prompt}, {prompt_file},
# {attempt_dir}, {task_id}; a prompt over 4 KiB must use {prompt_file}.
# command = ["codewhale", "exec", "--auto", "--output-format", "stream-json", "{prompt}"]
# Names (never values) of secrets passed only to runtime processes:
# secret_env = ["ANTHROPIC_API_KEY"]

[run]
# Concurrent attempts (default: the number of CPUs; `--max-workers` overrides).
# max_workers = 4
# SIGTERM -> SIGKILL grace when stopping an attempt.
grace_seconds = 5
# Cap per attempt log file, kept while written (head + rolling tail).
log_cap_bytes = 8388608
# Cap per artifact file; a bigger one is refused with a note in the receipt.
# artifact_cap_bytes = 67108864

[journal]
# "always": every append is durable before it is acknowledged (group commit).
sync = "always"
# segment_bytes = 67108864
# snapshot_every = 10000
# Segments `orca journal compact` keeps besides those the snapshot needs.
# keep_segments = 2

# Alerts for every run whose spec has no `alerts` (and for agents).
# Disabled unless enabled = true. Adapters name env vars, never values.
# Reference: docs/alerts.md.
# [alerts]
# enabled = true
# dry_run = false
# group_wait = 0            # seconds; >0: one message per run and window
# repeat_interval = 14400   # seconds; a condition still firing is re-sent
# routes = [
#   { events = ["needs_human", "restart_exhausted", "stale"], adapter = "ops-slack" },
#   { events = ["needs_human"], adapter = "pager" },
# ]
# [alerts.adapters.ops-slack]
# kind = "slack"
# webhook_env = "ORCA_SLACK_WEBHOOK"
# channel = "#fleet"
# [alerts.adapters.pager]
# kind = "pager_duty"
# routing_key_env = "ORCA_PAGERDUTY_ROUTING_KEY"
# severity = "critical"
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses_clean() {
        let (cfg, warnings) = OrcaConfig::parse(DEFAULT_CONFIG_TOML).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(cfg.runtime().is_none());
        assert_eq!(cfg.journal.unwrap().sync, Some(SyncMode::Always));
    }

    #[test]
    fn bad_placeholder_and_unknown_field() {
        let errs =
            OrcaConfig::parse("[runtime]\ncommand = [\"cw\", \"{promt}\"]\nsecret_evn = [\"X\"]\n")
                .unwrap_err();
        let e = errs.iter().find(|d| d.is_error()).unwrap();
        assert_eq!(e.path, "runtime.command[1]");
        assert_eq!((e.line, e.column), (Some(2), Some(18)));
        let w = errs.iter().find(|d| !d.is_error()).unwrap();
        assert_eq!(w.path, "runtime.secret_evn");
        assert_eq!(w.hint.as_deref(), Some("did you mean `secret_env`?"));
    }

    #[test]
    fn a_preset_runtime() {
        let (cfg, warnings) = OrcaConfig::parse(
            "[runtime]\npreset = \"codex\"\nmodel = \"gpt-5-codex\"\nargs = [\"--full-auto\"]\nsecret_env = [\"OPENAI_API_KEY\"]\n",
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let rt = cfg.runtime().unwrap();
        assert_eq!(rt.preset, Some(Preset::Codex));
        assert_eq!(rt.args, ["--full-auto"]);
    }

    #[test]
    fn runtime_shapes_that_are_refused_or_ignored() {
        let first = |text: &str| {
            let diags = match OrcaConfig::parse(text) {
                Ok((_, w)) => w,
                Err(e) => e,
            };
            let d = diags.into_iter().next().expect("a diagnostic");
            (d.is_error(), d.path, d.message)
        };
        let (err, path, msg) = first("[runtime]\nsecret_env = [\"K\"]\n");
        assert!(err && path == "runtime" && msg.contains("`preset` or a `command`"));
        let (err, path, msg) = first("[runtime]\npreset = \"claude\"\ncommand = [\"claude\"]\n");
        assert!(
            err && path == "runtime.command" && msg.contains("exclude each other"),
            "{msg}"
        );
        let (err, path, _) = first("[runtime]\npreset = \"claud\"\n");
        assert!(err && path == "runtime.preset");
        let (err, path, _) =
            first("[runtime]\ncommand = [\"cw\", \"{prompt}\"]\nargs = [\"-v\"]\n");
        assert!(!err && path == "runtime.args");
        let (err, path, _) = first("[runtime]\npreset = \"gemini\"\nargs = [\"{prompt}\"]\n");
        assert!(err && path == "runtime.args[0]");
        let (err, path, _) = first("[runtime]\npreset = \"gemini\"\nformat = \"codex\"\n");
        assert!(!err && path == "runtime.format");
    }

    #[test]
    fn price_overrides() {
        let (cfg, w) = OrcaConfig::parse(
            "[[prices]]\nmodel = \"claude-sonnet-4-5\"\ninput = 1\noutput = 2\n\n[[prices]]\nmodel = \"local-llm\"\ninput = 0\noutput = 0\nsource = \"ours\"\n",
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        let t = cfg.price_table();
        assert_eq!(t.lookup("claude-sonnet-4-5-20250929").unwrap().input, 1.0);
        assert!(t.knows("local-llm"));
        let errs =
            OrcaConfig::parse("[[prices]]\nmodel = \"m\"\ninput = -3\noutput = 1\nimput = 2\n")
                .unwrap_err();
        let e = errs.iter().find(|d| d.is_error()).unwrap();
        assert_eq!(e.path, "prices[0].input");
        assert_eq!(e.line, Some(3));
        let w = errs.iter().find(|d| !d.is_error()).unwrap();
        assert_eq!(w.path, "prices[0].imput");
        let errs = OrcaConfig::parse("[[prices]]\ninput = 1\n").unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|d| d.path.as_str()).collect();
        assert!(
            paths.contains(&"prices[0].model") && paths.contains(&"prices[0].output"),
            "{paths:?}"
        );
    }

    #[test]
    fn workspace_alerts_are_parsed_and_checked() {
        let (cfg, warnings) = OrcaConfig::parse(
            "[alerts]\nenabled = true\ngroup_wait = 30\nroutes = [{ events = [\"stale\"], adapter = \"chat\" }]\n\
             [alerts.adapters.chat]\nkind = \"slack\"\nwebhook_env = \"ORCA_SLACK_WEBHOOK\"\n",
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let alerts = cfg.alerts.unwrap();
        assert!(alerts.enabled);
        assert_eq!(alerts.effective_group_wait().get(), 30.0);
        assert_eq!(alerts.effective_repeat_interval().get(), 4.0 * 3600.0);

        let errs = OrcaConfig::parse(
            "[alerts.adapters.chat]\nkind = \"slack\"\nwebhook_env = \"https://hooks.slack.com/services/T/B/s3cr3t\"\n",
        )
        .unwrap_err();
        let e = errs.iter().find(|d| d.is_error()).unwrap();
        assert_eq!(e.path, "alerts.adapters.chat.webhook_env");
        assert_eq!((e.line, e.column), (Some(3), Some(15)));
        assert!(
            !e.message.contains("s3cr3t") && !e.hint.as_deref().unwrap_or("").contains("s3cr3t")
        );
    }

    #[test]
    fn placeholders_found() {
        assert_eq!(
            placeholders_in("--p={prompt}x{task_id}"),
            ["{prompt}", "{task_id}"]
        );
        assert!(placeholders_in("{unclosed").is_empty());
        assert!(placeholders_in(r#"{"a": 1}"#).is_empty());
    }
}
