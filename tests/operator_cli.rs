//! The operator's CLI, corrected: each test here failed on the build before
//! the fix it pins (quiet log following, run trees stopped whole, honest
//! status after a crash, the heartbeat as the last sign of life, a daemon
//! that goes away under `orca run`, `--json` everywhere, names by prefix,
//! `regex_match` over lines, SSH configuration errors).

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// utime + stime of a process, in clock ticks (`/proc/<pid>/stat`).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at ")".
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15: 12 and 13 after the name.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_is_idle_while_nothing_is_written() {
    let ws = TestWs::fast();
    let ready = ws.path("ready.fifo");
    fifo(&ready);
    let spec = spec_toml(
        &ws,
        r#"
[[tasks]]
id = "t"
command = '''echo first; echo up > "$ORCA_WORKSPACE/ready.fifo"
while [ ! -e "$ORCA_WORKSPACE/go" ]; do sleep 0.05; done; echo second'''
"#,
    );
    let tree = Tree::boot(&ws).await;
    let mut watch = tree.watch().await;
    let run = tree.submit(submission(spec, 1)).await;
    let _reap = ReapRun(run.clone());
    wait_fifo(&ready).await;
    let mut follower = KillOnDrop(
        orca_cmd(&ws)
            .args(["logs", &run, "t", "--follow"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = follower.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    assert_eq!(rx.recv_timeout(WAIT_LIMIT).unwrap(), "first");
    // A quiet attempt: the follower should cost next to nothing. (Before,
    // its own reads woke its watch: a core busy for as long as it ran.)
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_ticks(pid) - before;
    assert!(
        used <= 20,
        "the follower used {used} ticks of CPU in 2 s of quiet"
    );
    // Output still appears at once, and the follow ends with the attempt.
    std::fs::write(ws.path("go"), "").unwrap();
    assert_eq!(rx.recv_timeout(WAIT_LIMIT).unwrap(), "second");
    let status = tokio::task::spawn_blocking(move || follower.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    wait_end(&mut watch, &run, WAIT_LIMIT).await;
    tree.shutdown().await;
}
