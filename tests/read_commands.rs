//! Every read command through the real binary: text snapshots (run ids,
//! timestamps and durations redacted) and --json parsed back into the
//! public types.

mod common;

use common::*;
use orca_actors::model::{ArtifactRef, Receipt};
use orca_actors::view::{RunSummary, TreeNode};

const SPEC: &str = r#"
name = "read views"
[[tasks]]
id = "build"
command = "echo compiling; echo 'warning: unused' >&2"
[[tasks]]
id = "report"
objective = "Write the report."
worker = { role = "writer" }
command = '''mkdir -p "$ORCA_ATTEMPT_DIR/artifacts"; printf '# Report\nall good\n' > "$ORCA_ATTEMPT_DIR/artifacts/report.md"; printf '\033[32mgreen\033[0m done\n' '''
expected_artifacts = ["log", "report"]
[[tasks]]
id = "flaky"
command = 'test "$ORCA_ATTEMPT" -ge 2 || { echo "first attempt fails" >&2; exit 1; }'
retry_policy = { max_attempts = 2, initial_backoff_seconds = 0, retry_on = ["task"] }
[[tasks]]
id = "broken"
command = "exit 4"
retry_policy = { max_attempts = 1 }
"#;

struct Fixture {
    ws: TestWs,
    run: String,
}

fn fixture() -> Fixture {
    let ws = TestWs::fast();
    let spec = ws.path("read.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let out = orca_cmd(&ws)
        .args(["run", "--max-workers", "1"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_exit(&out, 1);
    let run = orca_actors::view::FleetView::load(&ws.ws)
        .unwrap()
        .latest()
        .unwrap()
        .run
        .clone();
    Fixture { ws, run }
}

impl Fixture {
    fn out(&self, args: &[&str]) -> String {
        let out = orca_cmd(&self.ws).args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "orca {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json<T: serde::de::DeserializeOwned>(&self, args: &[&str]) -> T {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.out(&a)).unwrap_or_else(|e| panic!("orca {a:?}: {e}"))
    }
}

macro_rules! snap {
    ($name:expr, $text:expr) => {
        insta::with_settings!({filters => vec![
            (r"r-\d{12}-[0-9a-f]{4}", "[RUN]"),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
            (r"\b\d+(\.\d+)?s\b", "[DUR]"),
            (r"\b\d+ ms\b", "[DUR]"),
            (r"\b\d+m\d\ds\b", "[DUR]"),
            (r"last seq \d+", "last seq [SEQ]"),
        ]}, {
            insta::assert_snapshot!($name, $text);
        });
    };
}

#[test]
fn read_commands_render_and_round_trip() {
    let f = fixture();
    let run = f.run.as_str();
    let prefix = &run[..12];

    snap!("status_all", f.out(&["status"]));
    snap!("status_run", f.out(&["status", prefix]));
    snap!("inspect_run", f.out(&["inspect", prefix]));
    snap!("inspect_task", f.out(&["inspect", prefix, "rep"]));
    snap!("inspect_failed_task", f.out(&["inspect", prefix, "broken"]));
    snap!("receipts", f.out(&["receipts", prefix]));
    snap!("artifacts", f.out(&["artifacts", prefix, "report"]));
    snap!("tree", f.out(&["tree", prefix]));
    // Logs: bounded, ANSI stripped unless --raw.
    assert_eq!(f.out(&["logs", prefix, "report"]), "green done\n");
    assert_eq!(
        f.out(&["logs", prefix, "report", "--raw"]),
        "\x1b[32mgreen\x1b[0m done\n"
    );
    assert_eq!(
        f.out(&["logs", prefix, "build", "--stderr"]),
        "warning: unused\n"
    );
    assert_eq!(
        f.out(&["logs", prefix, "flaky", "--attempt", "1", "--stderr"]),
        "first attempt fails\n"
    );
    assert_eq!(f.out(&["logs", prefix, "build", "--tail", "4"]), "ing\n");
    let log: orca::render::inspect::LogExcerpt = f.json(&["logs", prefix, "report"]);
    assert_eq!(
        (log.text.as_str(), log.stream.as_str(), log.offset, log.size),
        (
            "green done\n",
            "stdout",
            0,
            "\x1b[32mgreen\x1b[0m done\n".len() as u64
        )
    );
    assert!(!log.capped && !log.live && log.path.ends_with("report/1/stdout.log"));
    let log: orca::render::inspect::LogExcerpt = f.json(&["logs", prefix, "build", "--tail", "4"]);
    assert_eq!((log.text.as_str(), log.offset), ("ing\n", log.size - 4));

    // --json parses back into the public types.
    let all: Vec<RunSummary> = f.json(&["status"]);
    assert_eq!(all[0].run, run);
    let one: RunSummary = f.json(&["status", prefix]);
    assert_eq!(one.counts.failed, 1);
    let inspected: RunSummary = f.json(&["inspect", prefix]);
    assert_eq!(inspected, one);
    let task: orca::render::inspect::TaskInspection = f.json(&["inspect", prefix, "report"]);
    assert_eq!(
        (task.objective.as_deref(), task.role.as_deref()),
        (Some("Write the report."), Some("writer"))
    );
    let receipts: Vec<Receipt> = f.json(&["receipts", prefix]);
    assert_eq!(receipts.len(), 5, "one per attempt: flaky had two");
    let refs: Vec<ArtifactRef> = f.json(&["artifacts", prefix, "report"]);
    assert!(refs.iter().any(|r| r.kind == "report" && r.size == 18));
    let tree: TreeNode = f.json(&["tree", prefix]);
    assert_eq!(
        orca_actors::view::runs_node(&tree).unwrap().children[0].name,
        format!("run:{run}")
    );
}

#[test]
fn unknown_and_ambiguous_names_list_the_candidates() {
    let f = fixture();
    let out = orca_cmd(&f.ws).args(["inspect", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no run \"nope\"") && err.contains(&f.run),
        "{err}"
    );
    let out = orca_cmd(&f.ws)
        .args(["inspect", &f.run, "b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("matches 2 tasks") && err.contains("build") && err.contains("broken"),
        "{err}"
    );
}
