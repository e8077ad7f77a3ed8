//! The short chaos soak: the real `orca-chaos` binary drives the real
//! daemon (runs with retries, timeouts, manual verdicts, nested runs and an
//! SSH worker on a loopback sshd; a timer agent, a fleet subscription, a
//! thinking agent with a stub CLI; alerts to a loopback capture server),
//! SIGKILLs it `ORCA_CHAOS_KILLS` times (default 10) at points drawn from
//! `ORCA_CHAOS_SEED` (default: the clock; printed), and every invariant
//! must hold. The long soak is `orca-chaos --kills 200` (docs/reliability.md).

use std::process::Command;

use serde_json::Value;

#[test]
fn the_daemon_killed_again_and_again_loses_nothing_and_does_nothing_twice() {
    let kills: usize = std::env::var("ORCA_CHAOS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("ORCA_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("chaos soak: {kills} kill(s), ORCA_CHAOS_SEED={seed}");
    let out = Command::new(env!("CARGO_BIN_EXE_orca-chaos"))
        .args(["--json", "--drain-seconds", "120"])
        .arg("--kills")
        .arg(kills.to_string())
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--orca")
        .arg(env!("CARGO_BIN_EXE_orca"))
        .env_remove("ORCA_WORKSPACE")
        .output()
        .expect("orca-chaos runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ORCA_CHAOS_SEED={seed}: no JSON report ({e}): {stderr}"));
    let failed: Vec<String> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] != true)
        .map(|c| format!("{}: {}", c["name"], c["detail"]))
        .collect();
    assert!(
        failed.is_empty() && out.status.success(),
        "ORCA_CHAOS_SEED={seed} ORCA_CHAOS_KILLS={kills}: {failed:#?}\n{stderr}"
    );
    let names: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "one final receipt per task",
            "no task lost",
            "none run twice beyond the at-least-once window",
            "no orphan process",
            "every raised alert delivered",
            "no agent action done twice",
            "orca journal verify clean",
            "offline views equal the daemon's",
        ]
    );
    let f = &report["figures"];
    assert_eq!(f["kills"], kills);
    assert_eq!(f["daemon_starts"], kills + 1, "one restart per kill");
    // The soak had something in flight: work of every kind was done.
    for key in [
        "runs",
        "tasks",
        "attempts",
        "receipts",
        "effects",
        "agent_actions",
    ] {
        assert!(f[key].as_u64().unwrap_or(0) > 0, "{key}: {f}");
    }
    assert!(f["alerts"]["raised"].as_u64().unwrap_or(0) > 0, "{f}");
    assert!(f["alerts"]["requests"].as_u64().unwrap_or(0) > 0, "{f}");
}
