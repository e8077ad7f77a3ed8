//! `orca validate <spec> [--json]`.

use std::path::{Path, PathBuf};

use clap::Args;
use orca_actors::alert::config::AlertPlan;
use orca_actors::alert::secret::ProcessEnv;
use orca_actors::spec::{self, OrcaConfig, ValidateContext};

use crate::exit;
use crate::render;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The spec file (.json or .toml).
    pub spec: PathBuf,
    /// Print the report as JSON (normalized spec, effective values,
    /// diagnostics).
    #[arg(long)]
    pub json: bool,
}

pub fn run(ws_flag: Option<&Path>, args: ValidateArgs) -> anyhow::Result<i32> {
    let ws = super::workspace_or_cwd(ws_flag)?;
    let config_path = ws.config_path();
    let (config, config_diags) = match OrcaConfig::load(&config_path) {
        Ok(c) => c,
        Err(diags) => {
            let origin = config_path.display().to_string();
            for d in &diags {
                eprintln!("{}", d.display(&origin));
            }
            return Ok(exit::INVALID);
        }
    };
    if is_agent_spec(&args.spec) {
        return validate_agent(ws.root(), &args);
    }
    let ctx = ValidateContext::workspace(ws.root(), &config);
    let report = spec::check_file(&args.spec, &ctx);
    let plan = report
        .spec
        .as_ref()
        .map(|s| AlertPlan::of(s, config.alerts.as_ref(), &ProcessEnv));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&render::validate::report_json(
                &report,
                &config,
                plan.as_ref()
            ))?
        );
    } else {
        let origin = config_path.display().to_string();
        for d in &config_diags {
            eprintln!("{}", d.display(&origin));
        }
        print!(
            "{}",
            render::validate::report_text(&report, &config, plan.as_ref())
        );
    }
    Ok(if report.is_ok() {
        exit::OK
    } else {
        exit::INVALID
    })
}

/// Whether a file is an agent spec: named `*.agent.toml` / `*.agent.json`,
/// or a document with `subscriptions` or `routes` and no `tasks`.
fn is_agent_spec(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".agent.toml") || name.ends_with(".agent.json") {
        return true;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let format = spec::Format::detect(&path.to_string_lossy(), &text);
    match spec::Document::parse(&text, format) {
        Ok(doc) => {
            let has = |k: &str| doc.value.get(k).is_some();
            !has("tasks") && (has("subscriptions") || has("routes"))
        }
        Err(_) => false,
    }
}

/// `orca validate` of an agent spec: the checks `orca agent create` makes
/// (its run specs captured and checked too), without a daemon.
fn validate_agent(root: &Path, args: &ValidateArgs) -> anyhow::Result<i32> {
    let abs = if args.spec.is_absolute() {
        args.spec.clone()
    } else {
        std::env::current_dir()?.join(&args.spec)
    };
    let abs = abs.canonicalize().unwrap_or(abs);
    let origin = abs.display().to_string();
    let text = match std::fs::read_to_string(&abs) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {origin}: cannot read the agent spec: {e}");
            return Ok(exit::INVALID);
        }
    };
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    match orca_actors::agent::spec::prepare_agent(&root, &text, &origin) {
        Ok(p) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "ok": true,
                        "kind": "agent",
                        "agent": p.spec,
                        "run_specs": p.run_specs.iter().map(|(path, _)| path).collect::<Vec<_>>(),
                        "warnings": p.warnings.iter().map(|d| d.display(&origin).to_string()).collect::<Vec<_>>(),
                    }))?
                );
            } else {
                for w in &p.warnings {
                    eprintln!("{}", w.display(&origin));
                }
                println!(
                    "agent spec {} is valid: agent {}, {} subscription(s), {} route(s), {} run spec(s) captured",
                    args.spec.display(),
                    p.spec.id,
                    p.spec.subscriptions.len(),
                    p.spec.routes.len(),
                    p.run_specs.len()
                );
                println!(
                    "create it with a daemon running: orca agent create {}",
                    args.spec.display()
                );
            }
            Ok(exit::OK)
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "ok": false,
                        "kind": "agent",
                        "errors": e.diagnostics.iter().map(|d| d.display(&origin).to_string()).collect::<Vec<_>>(),
                    }))?
                );
            } else {
                eprint!("{e}");
            }
            Ok(exit::INVALID)
        }
    }
}
