//! /proc scans: processes carrying `ORCA_ATTEMPT_ID` (here, and on the SSH
//! host through `ssh`), and a process's children.

use std::collections::BTreeSet;

use crate::invariants::Leftover;

fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// State letter and parent pid from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(") ")?.1;
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

pub fn children(pid: i32) -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|p| stat(*p).is_some_and(|(_, pp)| pp == pid))
        .collect()
}

/// Live (non-zombie) local processes of `runs` carrying `ORCA_ATTEMPT_ID`.
pub fn local_leftovers(runs: &BTreeSet<String>) -> Vec<Leftover> {
    let mut out = Vec::new();
    for pid in pids() {
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let (mut attempt, mut run) = (None, None);
        for var in env.split(|b| *b == 0) {
            let var = String::from_utf8_lossy(var);
            if let Some(v) = var.strip_prefix("ORCA_ATTEMPT_ID=") {
                attempt = Some(v.to_string());
            } else if let Some(v) = var.strip_prefix("ORCA_RUN_ID=") {
                run = Some(v.to_string());
            }
        }
        if let (Some(attempt_id), Some(run_id)) = (attempt, run) {
            let live = stat(pid).is_some_and(|(s, _)| s != 'Z');
            if live && runs.contains(&run_id) {
                out.push(Leftover {
                    scan: "local",
                    pid,
                    attempt_id,
                    run_id,
                });
            }
        }
    }
    out
}

/// The scan the SSH host runs: `pid state ORCA_ATTEMPT_ID=… ORCA_RUN_ID=…`
/// for every process carrying an attempt id.
pub const REMOTE_SCAN: &str = r#"for d in /proc/[0-9]*; do e=$(tr '\0' '\n' < "$d/environ" 2>/dev/null | grep -E '^ORCA_(ATTEMPT_ID|RUN_ID)=' | tr '\n' ' '); [ -n "$e" ] || continue; s=$(sed 's/.*) //' "$d/stat" 2>/dev/null | cut -d' ' -f1); echo "${d#/proc/} $s $e"; done; echo scan-done"#;

/// Parses [`REMOTE_SCAN`]'s output, keeping live processes of `runs`;
/// `None` if the scan did not finish.
pub fn parse_remote(out: &str, runs: &BTreeSet<String>) -> Option<Vec<Leftover>> {
    if !out.lines().any(|l| l.trim() == "scan-done") {
        return None;
    }
    let mut found = Vec::new();
    for line in out.lines() {
        let mut it = line.split_whitespace();
        let (Some(pid), Some(state)) = (it.next().and_then(|p| p.parse().ok()), it.next()) else {
            continue;
        };
        let (mut attempt, mut run) = (None, None);
        for kv in it {
            if let Some(v) = kv.strip_prefix("ORCA_ATTEMPT_ID=") {
                attempt = Some(v.to_string());
            } else if let Some(v) = kv.strip_prefix("ORCA_RUN_ID=") {
                run = Some(v.to_string());
            }
        }
        if let (Some(attempt_id), Some(run_id)) = (attempt, run) {
            if state != "Z" && runs.contains(&run_id) {
                found.push(Leftover {
                    scan: "ssh",
                    pid,
                    attempt_id,
                    run_id,
                });
            }
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remote_scan_keeps_live_processes_of_our_runs() {
        let runs: BTreeSet<String> = ["r-1".to_string()].into();
        let out = "12 S ORCA_ATTEMPT_ID=r-1:a:1 ORCA_RUN_ID=r-1 \n13 Z ORCA_ATTEMPT_ID=r-1:b:1 ORCA_RUN_ID=r-1 \n14 S ORCA_ATTEMPT_ID=r-9:a:1 ORCA_RUN_ID=r-9 \nscan-done\n";
        let got = parse_remote(out, &runs).expect("complete");
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].pid, got[0].attempt_id.as_str()), (12, "r-1:a:1"));
        assert!(parse_remote("12 S ORCA_ATTEMPT_ID=r-1:a:1 ORCA_RUN_ID=r-1", &runs).is_none());
    }

    #[test]
    fn the_local_scan_sees_a_process_of_ours_and_not_others() {
        // The scan reads /proc/<pid>/environ, which holds the variables
        // only once the child has exec'd: wait for its first line.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "echo ready; exec sleep 30"])
            .env("ORCA_ATTEMPT_ID", "r-chaos-scan:t:1")
            .env("ORCA_RUN_ID", "r-chaos-scan")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().expect("stdout")),
            &mut line,
        )
        .expect("ready line");
        assert_eq!(line.trim(), "ready");
        let ours: BTreeSet<String> = ["r-chaos-scan".to_string()].into();
        let found = local_leftovers(&ours);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            found.iter().any(|l| l.pid == child.id() as i32),
            "{found:?}"
        );
        assert!(local_leftovers(&["r-other".to_string()].into()).is_empty());
    }
}
