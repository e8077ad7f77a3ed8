//! `orca validate` output: the normalized summary (tasks, workers, scorers,
//! defaults applied, fields not enforced yet) or every diagnostic.

use std::fmt::Write as _;

use orca_actors::alert::config::{AlertPlan, PlanSource, PlanState};
use orca_actors::runtime::{resolve, run_budget_gaps, unenforceable_budgets, ResolvedRuntime};
use orca_actors::spec::{
    CommandSpec, HostSpec, OrcaConfig, RunSpec, ScorerKind, SpecReport, TaskSpec,
};
use serde_json::{json, Value};

use super::{ellipsize, seconds, table, trim_float};

/// The effective values of one task, with the defaults that were applied.
pub fn task_view(spec: &RunSpec, t: &TaskSpec) -> Value {
    let retry = t.effective_retry();
    let mut defaults = Vec::new();
    if t.retry_policy.is_none() {
        defaults.push("retry_policy");
    }
    if t.scorer.is_none() {
        defaults.push("scorer (exit code 0 passes)");
    }
    if t.stale_after_seconds.is_none() && spec.stale_after_seconds.is_none() {
        defaults.push("stale_after_seconds");
    }
    if t.restart.is_none() {
        defaults.push("restart (transient)");
    }
    let scorer = t
        .scorer
        .as_ref()
        .map(|s| {
            json!({
                "kind": s.kind.as_str(),
                "timeout_seconds": s.effective_timeout().get(),
            })
        })
        .unwrap_or(json!({"kind": "exit_code", "timeout_seconds": null}));
    json!({
        "id": t.id,
        "name": t.name,
        "runs": if t.needs_runtime() { "runtime" } else { "command" },
        "command": t.command.as_ref().map(CommandSpec::argv),
        "scorer": scorer,
        "timeout_seconds": t.timeout_seconds.map(|s| s.get()),
        "stale_after_seconds": spec.effective_stale_after(t).get(),
        "retry": {
            "max_attempts": retry.max_attempts,
            "initial_backoff_seconds": retry.initial_backoff.get(),
            "max_backoff_seconds": retry.max_backoff.get(),
            "backoff_multiplier": retry.multiplier,
            "jitter": retry.jitter,
            "retry_on": retry.retry_on.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        },
        "restart": t.effective_restart().as_str(),
        "priority": t.priority(),
        "capabilities": t.required_capabilities(),
        "expected_artifacts": t.expected_artifacts,
        "defaults_applied": defaults,
    })
}

/// Each budget orca cannot enforce, as `tasks[i].budget.<field>: why` and
/// `budget.<field>: why` for the run's (what `orca validate` and the first
/// lines of `orca run` say).
pub fn budget_gaps(spec: &RunSpec, config: &OrcaConfig) -> Vec<String> {
    let mut out: Vec<String> = spec
        .tasks
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            unenforceable_budgets(t, config)
                .into_iter()
                .map(move |g| format!("tasks[{i}].{g}"))
        })
        .collect();
    out.extend(run_budget_gaps(spec, config));
    out
}

/// Fields orca parses and keeps but does not enforce, as `(path, value)`:
/// a `tool_profile` where no agent runtime runs the task (a plain command,
/// or no runtime configured). Trust levels, `security_policy` and
/// `writable_paths` are enforced: see [`policy_gaps`] for where they
/// cannot be.
pub fn not_enforced(spec: &RunSpec, config: &OrcaConfig) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (i, t) in spec.tasks.iter().enumerate() {
        if let Some(tp) = t.worker.as_ref().and_then(|w| w.tool_profile.as_ref()) {
            if matches!(
                resolve(t, config.runtime()),
                ResolvedRuntime::Command { .. } | ResolvedRuntime::Missing
            ) {
                out.push((format!("tasks[{i}].worker.tool_profile"), json!(tp)));
            }
        }
    }
    out
}

/// Each declared restriction a worker that may take the task cannot
/// enforce (an ssh host has no Landlock or network namespace of orca's;
/// `local` is what this machine can do), as `tasks[i] on <worker>: …` —
/// what `orca validate` and the first lines of `orca run` say. Under
/// `strict` such an attempt will not start.
pub fn policy_gaps(spec: &RunSpec, local: orca_actors::policy::HostCaps) -> Vec<String> {
    use orca_actors::policy::{effective, plan, HostCaps};
    use orca_actors::spec::{HostSpec, SecurityPolicy, TrustLevel};
    let mut out = Vec::new();
    for (i, t) in spec.tasks.iter().enumerate() {
        let policy =
            SecurityPolicy::merged(spec.security_policy.as_ref(), t.security_policy.as_ref());
        let mut hosts: Vec<(String, String, TrustLevel, HostCaps)> = spec
            .workers
            .iter()
            .filter(|w| w.can_take(t))
            .map(|w| {
                let trust = w.trust_level.unwrap_or_default();
                match &w.host {
                    HostSpec::Ssh(ssh) => (
                        w.id.clone(),
                        ssh.host.clone().unwrap_or_default(),
                        trust,
                        HostCaps::default(),
                    ),
                    _ => (w.id.clone(), "local".into(), trust, local),
                }
            })
            .collect();
        if spec.workers.is_empty() {
            hosts.push(("local-N".into(), "local".into(), TrustLevel::Trusted, local));
        }
        for (worker, host, trust, caps) in hosts {
            match plan(&effective(t, trust, &policy), &host, caps) {
                Ok(p) => out.extend(
                    p.unenforced
                        .into_iter()
                        .map(|u| format!("tasks[{i}] on worker {worker}: {u}")),
                ),
                Err(e) => out.push(format!(
                    "tasks[{i}] on worker {worker}: will not start: {e}"
                )),
            }
        }
    }
    out
}

/// `--json`: `{ok, origin, format, shape, spec, effective, not_enforced,
/// diagnostics}`; `effective.alerts` is `plan` (what the run's alerts will
/// do, checked against the caller's environment).
pub fn report_json(report: &SpecReport, config: &OrcaConfig, plan: Option<&AlertPlan>) -> Value {
    let mut v = json!({
        "ok": report.is_ok(),
        "origin": report.origin,
        "format": report.format,
        "shape": report.shape,
        "diagnostics": report.diagnostics,
    });
    if let Some(spec) = &report.spec {
        v["spec"] = serde_json::to_value(spec).unwrap_or(Value::Null);
        let (max_restarts, within) = spec.effective_intensity();
        v["effective"] = json!({
            "name": spec.display_name(),
            "max_workers": spec.max_workers.or(config.run.as_ref().and_then(|r| r.max_workers)),
            "max_spawn_depth": spec.effective_max_spawn_depth(),
            "supervision": {
                "strategy": spec.effective_strategy().as_str(),
                "max_restarts": max_restarts,
                "within_seconds": within.get(),
            },
            "runtime_configured": config.runtime().is_some(),
            "tasks": spec.tasks.iter().map(|t| task_view(spec, t)).collect::<Vec<_>>(),
            "alerts": plan.map(|p| {
                let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
                v["sends"] = json!(p.sends());
                v
            }),
        });
        v["not_enforced"] = Value::Object(not_enforced(spec, config).into_iter().collect());
        v["unenforceable_budgets"] = json!(budget_gaps(spec, config));
    }
    v
}

/// The text report (`plan`: see [`report_json`]).
pub fn report_text(report: &SpecReport, config: &OrcaConfig, plan: Option<&AlertPlan>) -> String {
    let mut out = String::new();
    let errors = report.errors().count();
    let warnings = report.warnings().count();
    let Some(spec) = &report.spec else {
        for d in report.errors() {
            let _ = writeln!(out, "{}", d.display(&report.origin));
        }
        for d in report.warnings() {
            let _ = writeln!(out, "{}", d.display(&report.origin));
        }
        let _ = writeln!(
            out,
            "\n{}: invalid: {} error{}, {} warning{}",
            report.origin,
            errors,
            plural(errors),
            warnings,
            plural(warnings)
        );
        return out;
    };

    let workers = if spec.workers.is_empty() {
        "no declared workers (local slots local-1..N)".to_string()
    } else {
        format!(
            "{} worker{}",
            spec.workers.len(),
            plural(spec.workers.len())
        )
    };
    let _ = writeln!(
        out,
        "{}: ok: run {:?} ({}), {} task{}, {}",
        report.origin,
        spec.display_name(),
        report.format,
        spec.tasks.len(),
        plural(spec.tasks.len()),
        workers
    );

    let (max_restarts, within) = spec.effective_intensity();
    let sup_default = spec.supervision.is_none();
    let max_workers = match (
        spec.max_workers,
        config.run.as_ref().and_then(|r| r.max_workers),
    ) {
        (Some(n), _) => n.to_string(),
        (None, Some(n)) => format!("{n} (from .orca/config.toml)"),
        (None, None) => "number of CPUs (default)".to_string(),
    };
    let run_rows = vec![
        vec!["max_workers".into(), max_workers],
        vec![
            "supervision".into(),
            format!(
                "{}, {} restarts in {}{}",
                spec.effective_strategy(),
                max_restarts,
                seconds(within.get()),
                if sup_default { " (default)" } else { "" }
            ),
        ],
        vec![
            "stale_after".into(),
            match spec.stale_after_seconds {
                Some(s) => seconds(s.get()),
                None => "5m (default)".into(),
            },
        ],
        vec![
            "max_spawn_depth".into(),
            format!(
                "{}{}",
                spec.effective_max_spawn_depth(),
                if spec.max_spawn_depth.is_none() {
                    " (default)"
                } else {
                    ""
                }
            ),
        ],
        vec![
            "alerts".into(),
            plan.map(alerts_row).unwrap_or_else(|| "-".into()),
        ],
        vec![
            "agent runtime".into(),
            match config.runtime() {
                Some(r) => match r.preset {
                    Some(p) => format!(
                        "preset {p}{}",
                        r.model
                            .as_deref()
                            .map(|m| format!(", model {m}"))
                            .unwrap_or_default()
                    ),
                    None => ellipsize(&r.command.join(" "), 60),
                },
                None => "not configured".into(),
            },
        ],
    ];
    let _ = writeln!(out, "\nrun");
    out.push_str(&super::indent(&table(&["SETTING", "VALUE"], &run_rows), 2));

    let rows: Vec<Vec<String>> = spec
        .tasks
        .iter()
        .map(|t| {
            let retry = t.effective_retry();
            let runs = match &t.command {
                Some(CommandSpec::Argv(v)) => ellipsize(&v.join(" "), 32),
                Some(CommandSpec::Shell(s)) => ellipsize(s, 32),
                None => match resolve(t, config.runtime()) {
                    ResolvedRuntime::Preset { preset, .. } => format!("preset {preset}"),
                    ResolvedRuntime::Template { .. } => "[runtime] template".into(),
                    _ => "no runtime (fails)".into(),
                },
            };
            let scorer = match &t.scorer {
                Some(s) if s.kind == ScorerKind::ExitCode => match s.expected {
                    Some(code) if code != 0 => format!("exit_code={code}"),
                    _ => "exit_code".into(),
                },
                Some(s) => s.kind.as_str().to_string(),
                None => "exit_code (default)".into(),
            };
            let retry_text = format!(
                "{}x {}..{} x{}{}",
                retry.max_attempts,
                seconds(retry.initial_backoff.get()),
                seconds(retry.max_backoff.get()),
                trim_float(retry.multiplier),
                if t.retry_policy.is_none() {
                    " (default)"
                } else {
                    ""
                }
            );
            vec![
                t.id.clone(),
                runs,
                scorer,
                t.timeout_seconds
                    .map(|s| seconds(s.get()))
                    .unwrap_or_else(|| "-".into()),
                retry_text,
                t.priority().to_string(),
            ]
        })
        .collect();
    let _ = writeln!(out, "\ntasks");
    out.push_str(&super::indent(
        &table(
            &["ID", "RUNS", "SCORER", "TIMEOUT", "RETRY", "PRIORITY"],
            &rows,
        ),
        2,
    ));

    if !spec.workers.is_empty() {
        let rows: Vec<Vec<String>> = spec
            .workers
            .iter()
            .map(|w| {
                vec![
                    w.id.clone(),
                    match &w.host {
                        HostSpec::Local(_) => "local".into(),
                        h @ HostSpec::Ssh(_) => format!("ssh {}", h.display()),
                    },
                    if w.capabilities.is_empty() {
                        "-".into()
                    } else {
                        w.capabilities.join(",")
                    },
                    w.effective_concurrency().to_string(),
                ]
            })
            .collect();
        let _ = writeln!(out, "\nworkers");
        out.push_str(&super::indent(
            &table(&["ID", "HOST", "CAPABILITIES", "CONCURRENCY"], &rows),
            2,
        ));
    }

    if let Some(p) = plan.filter(|p| p.state != PlanState::Disabled) {
        out.push_str(&alerts_section(p));
    }

    let gaps = budget_gaps(spec, config);
    if !gaps.is_empty() {
        let _ = writeln!(out, "\nbudgets orca cannot enforce");
        for g in &gaps {
            let _ = writeln!(out, "  {g}");
        }
    }

    let gaps = policy_gaps(spec, orca_actors::host::sandbox::local_caps());
    if !gaps.is_empty() {
        let _ = writeln!(out, "\npolicy orca cannot enforce (docs/security.md)");
        for g in &gaps {
            let _ = writeln!(out, "  {g}");
        }
    }

    let kept = not_enforced(spec, config);
    if !kept.is_empty() {
        let _ = writeln!(out, "\nnot enforced yet (kept and shown; see docs/spec.md)");
        for (path, value) in kept {
            let _ = writeln!(out, "  {path} = {}", ellipsize(&value.to_string(), 60));
        }
    }

    if warnings > 0 {
        let _ = writeln!(out);
        for d in report.warnings() {
            let _ = writeln!(out, "{}", d.display(&report.origin));
        }
    }
    let _ = writeln!(
        out,
        "\n{} task{}, 0 errors, {} warning{}",
        spec.tasks.len(),
        plural(spec.tasks.len()),
        warnings,
        plural(warnings)
    );
    out
}

/// The run table's one-line truth about alerts.
fn alerts_row(p: &AlertPlan) -> String {
    let from = match p.source {
        PlanSource::Run => "",
        PlanSource::Workspace => " (from .orca/config.toml)",
        PlanSource::None => return "disabled (default)".into(),
    };
    let state = match p.state {
        PlanState::Disabled => return format!("disabled{from}"),
        PlanState::DryRun => "dry run: routed and journaled, nothing is sent",
        PlanState::Enabled if p.sends() && p.env_problems.is_empty() => {
            "enabled: sent as routed below"
        }
        PlanState::Enabled if p.sends() => "enabled: some adapters cannot send (below)",
        PlanState::Enabled => "enabled, but nothing can be sent (below)",
    };
    format!("{state}{from}")
}

/// The alerts section: where each class goes, per-task changes, classes
/// with no route, grouping, and what the environment lacks.
fn alerts_section(p: &AlertPlan) -> String {
    let mut out = String::from("\nalerts\n");
    let kind = |name: &str| {
        p.adapters
            .get(name)
            .map(|a| format!("{name} ({})", a.kind.as_str()))
            .unwrap_or_else(|| name.to_string())
    };
    let targets = |names: &[String]| names.iter().map(|n| kind(n)).collect::<Vec<_>>().join(", ");
    let mut rows: Vec<Vec<String>> = p
        .routes
        .iter()
        .map(|(c, names)| vec![c.as_str().to_string(), "-".into(), targets(names)])
        .collect();
    for (task, classes) in &p.tasks {
        if classes.is_empty() {
            rows.push(vec![
                "(all)".into(),
                task.clone(),
                "none: its alert_policy silences it".into(),
            ]);
        }
        for (c, names) in classes {
            rows.push(vec![c.as_str().to_string(), task.clone(), targets(names)]);
        }
    }
    for c in &p.unrouted {
        rows.push(vec![
            c.as_str().to_string(),
            "-".into(),
            "no route: suppressed".into(),
        ]);
    }
    out.push_str(&super::indent(
        &table(&["CLASS", "TASK", "SENT TO"], &rows),
        2,
    ));
    let _ = writeln!(
        out,
        "  grouping: {}; a condition still firing is sent again {}",
        if p.group_wait_seconds > 0.0 {
            format!(
                "one message per run every {}",
                seconds(p.group_wait_seconds)
            )
        } else {
            "each alert on its own".to_string()
        },
        if p.repeat_interval_seconds > 0.0 {
            format!("every {}", seconds(p.repeat_interval_seconds))
        } else {
            "never".to_string()
        }
    );
    if p.state == PlanState::Enabled {
        if p.env_problems.is_empty() {
            let _ = writeln!(out, "  env: every adapter's variables are set here");
        }
        for e in &p.env_problems {
            let _ = writeln!(
                out,
                "  env: {} (nothing reaches `{}` until it is)",
                e.problem, e.adapter
            );
        }
        if !p.env_problems.is_empty() {
            let _ = writeln!(
                out,
                "  (checked in this shell; the daemon, or an embedded orca run, reads its own environment)"
            );
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
