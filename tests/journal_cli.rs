//! `orca journal …` end to end: the real binary on a copy of the committed
//! v1 fixture.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use assert_cmd::prelude::*;
use orca_actors::journal::{open_writer, Event, JournalOptions, NewEvent};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journal-v1")
}

/// A workspace whose journal and snapshots are a copy of the fixture.
fn workspace() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for sub in ["journal", "snapshots"] {
        let to = tmp.path().join(".orca").join(sub);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(fixture().join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    tmp
}

fn orca(ws: &Path) -> Command {
    let mut c = Command::cargo_bin("orca").unwrap();
    c.arg("--workspace").arg(ws).env_remove("ORCA_WORKSPACE");
    c
}

fn segment(ws: &Path, first: u64) -> PathBuf {
    ws.join(".orca/journal").join(format!("{first:020}.seg"))
}

#[test]
fn export_prints_the_fixture_as_committed() {
    let ws = workspace();
    let out = orca(ws.path())
        .args(["journal", "export"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let expected = std::fs::read_to_string(fixture().join("export.jsonl")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);

    let out = orca(ws.path())
        .args(["journal", "export", "--from", "3", "--to", "5"])
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|l| l["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert_eq!(lines[0]["type"], "RunPaused");
    assert_eq!(lines[0]["surface"], "api");
}

#[test]
fn stats_and_verify() {
    let ws = workspace();
    let out = orca(ws.path())
        .args(["journal", "stats", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            v["events"].as_u64(),
            v["last_seq"].as_u64(),
            v["first_seq"].as_u64()
        ),
        (Some(36), Some(36), Some(1))
    );
    assert_eq!(v["segments"].as_array().unwrap().len(), 2);
    let out = orca(ws.path()).args(["journal", "stats"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("events    36 (seq 1..36)"), "{text}");
    orca(ws.path())
        .args(["journal", "verify"])
        .assert()
        .success();

    // A torn tail is a warning, not a failure.
    let last = segment(ws.path(), 20);
    let len = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let out = orca(ws.path())
        .args(["journal", "verify"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("torn tail"), "{text}");
}

#[test]
fn corruption_verify_fails_and_repair_cuts_with_a_backup() {
    let ws = workspace();
    let first = segment(ws.path(), 1);
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[200] ^= 0x08;
    std::fs::write(&first, &bytes).unwrap();

    let out = orca(ws.path())
        .args(["journal", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("00000000000000000001.seg at byte") && text.contains("CORRUPT"),
        "{text}"
    );
    // Readers stop with the error, after printing what precedes it.
    let out = orca(ws.path())
        .args(["journal", "export"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("corrupt journal"));
    // repair without the flag only shows the plan.
    let out = orca(ws.path())
        .args(["journal", "repair"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("repair would cut"));
    assert_eq!(std::fs::read(&first).unwrap(), bytes, "nothing changed");

    let out = orca(ws.path())
        .args(["journal", "repair", "--truncate-at-corruption"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("backup: ") && text.contains("moved"),
        "{text}"
    );
    let backup = ws.path().join(".orca/journal/backup");
    let saved: Vec<_> = std::fs::read_dir(
        std::fs::read_dir(&backup)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap()
    .map(|e| e.unwrap().file_name().into_string().unwrap())
    .collect();
    assert!(
        saved
            .iter()
            .any(|n| n.starts_with("00000000000000000001.seg.from-byte-")),
        "{saved:?}"
    );
    assert!(
        saved.contains(&"00000000000000000020.seg".to_string()),
        "{saved:?}"
    );
    orca(ws.path())
        .args(["journal", "verify"])
        .assert()
        .success();
}

#[test]
fn compact_keeps_what_the_snapshot_does_not_cover() {
    let ws = workspace();
    // The fixture's snapshot covers seq 1..20; segment 1 holds 1..19.
    let out = orca(ws.path())
        .args(["journal", "compact"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("0 segments removed"),
        "keep 2 by default"
    );
    let out = orca(ws.path())
        .args(["journal", "compact", "--keep", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!segment(ws.path(), 1).exists());
    let out = orca(ws.path())
        .args(["journal", "export"])
        .output()
        .unwrap();
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["seq"], 20);
}

#[test]
fn export_follow_prints_new_events_as_they_are_appended() {
    let ws = workspace();
    let mut child = Command::new(env!("CARGO_BIN_EXE_orca"))
        .arg("--workspace")
        .arg(ws.path())
        .args(["journal", "export", "--follow", "--from", "35"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let seq = |line: Option<std::io::Result<String>>| -> u64 {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap().unwrap()).unwrap();
        v["seq"].as_u64().unwrap()
    };
    assert_eq!(seq(lines.next()), 35);
    assert_eq!(seq(lines.next()), 36);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (h, report) = open_writer(&ws.path().join(".orca/journal"), JournalOptions::default())
            .await
            .unwrap();
        assert_eq!(report.last_seq, 36);
        let ev = |n: u32| {
            NewEvent::new(
                "/",
                Event::DaemonStarted {
                    pid: n,
                    version: "test".into(),
                    address: String::new(),
                    embedded: false,
                },
            )
        };
        h.append(vec![ev(1), ev(2)]).await.unwrap();
        h.append(vec![ev(3)]).await.unwrap();
        h.stop().await;
    });
    assert_eq!(seq(lines.next()), 37);
    assert_eq!(seq(lines.next()), 38);
    assert_eq!(seq(lines.next()), 39);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn without_a_workspace_it_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("orca")
        .unwrap()
        .current_dir(tmp.path())
        .env_remove("ORCA_WORKSPACE")
        .args(["journal", "stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("no orca workspace"));
}
