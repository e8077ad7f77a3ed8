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
