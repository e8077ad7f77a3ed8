//! `orca-chaos`: the chaos soak (docs/reliability.md). A daemon with runs,
//! agents and alerts in flight is SIGKILLed at seeded-random points and
//! restarted, again and again; then every invariant is checked and printed.
//! Exits 0 when all hold, 1 naming the failed ones and the seed, 2 when the
//! soak could not be set up or driven.

mod capture;
mod invariants;
mod procs;
mod soak;
mod sshd;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// SIGKILL a busy orca daemon at random points, restart it, repeat; then
/// check that nothing was lost or done twice.
#[derive(Debug, Parser)]
#[command(name = "orca-chaos", version)]
struct Args {
    /// How many times the daemon is killed.
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// The seed of the kill points and actions (default: the clock). Printed,
    /// so a soak can be replayed.
    #[arg(long)]
    seed: Option<u64>,
    /// The `orca` binary (default: the one beside this binary).
    #[arg(long)]
    orca: Option<PathBuf>,
    /// Where the soak's directory is made (default: the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the soak's directory even when every invariant holds.
    #[arg(long)]
    keep: bool,
    /// Kill points are drawn in [0, N) milliseconds after the daemon serves.
    #[arg(long, default_value_t = 1500)]
    max_delay_ms: u64,
    /// How long the capture server takes to answer each alert, in
    /// milliseconds (deliveries in flight when a kill lands).
    #[arg(long, default_value_t = 150)]
    hook_delay_ms: u64,
    /// How long the drain after the last kill may take, in seconds.
    #[arg(long, default_value_t = 300)]
    drain_seconds: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Progress on stderr, one line per kill.
    #[arg(long, short)]
    verbose: bool,
}

fn main() {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let orca = match args
        .orca
        .clone()
        .map(Ok)
        .unwrap_or_else(|| std::env::current_exe().map(|p| p.with_file_name("orca")))
    {
        // Absolute: the daemon is started from the workspace's directory.
        Ok(p) if p.is_file() => p.canonicalize().unwrap_or(p),
        Ok(p) => {
            eprintln!(
                "orca-chaos: no orca binary at {} (give --orca PATH)",
                p.display()
            );
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("orca-chaos: cannot find the orca binary: {e} (give --orca PATH)");
            std::process::exit(2);
        }
    };
    eprintln!("orca-chaos: {} kills, --seed {seed}", args.kills);
    let opts = soak::Options {
        kills: args.kills,
        seed,
        orca,
        dir: args.dir.unwrap_or_else(std::env::temp_dir),
        keep: args.keep,
        max_delay_ms: args.max_delay_ms.max(1),
        hook_delay: Duration::from_millis(args.hook_delay_ms),
        drain_limit: Duration::from_secs(args.drain_seconds),
        verbose: args.verbose,
    };
    let report = match soak::run(opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("orca-chaos: the soak could not run (seed {seed}): {e:#}");
            std::process::exit(2);
        }
    };
    let mut out = std::io::stdout();
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("orca-chaos: {e}"),
        }
    } else if let Err(e) = soak::print_table(&report, &mut out) {
        eprintln!("orca-chaos: {e}");
    }
    let failed = report.failed();
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|c| c.name).collect();
        eprintln!(
            "orca-chaos: FAILED {} (replay: --seed {seed} --kills {}; files kept in {})",
            names.join(", "),
            report.figures.kills,
            report.dir
        );
        std::process::exit(1);
    }
}
