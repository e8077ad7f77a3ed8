//! The deterministic scorers, as plain functions: `exit_code`,
//! `file_exists`, `regex_match` and `json_path`.
//!
//! Paths resolve against the task's working directory (`$ORCA_ATTEMPT_DIR/…`
//! against the attempt directory) and may not escape the workspace, symlinks
//! included. File-based scorers accept only files written after the attempt
//! started unless `fresh: false`, so a file left by an earlier run cannot make
//! a task pass. A scorer *error* (unreadable file, invalid JSON, a path that
//! escapes) is different from a scorer saying no: both fail the attempt with
//! source `verifier`, but an error also raises `verifier_failed`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

use crate::model::Score;
use crate::spec::paths::{self, PathError};
use crate::spec::Scorer;

/// The most a scorer reads of one file.
pub const MAX_SCORED_BYTES: u64 = 64 << 20;

/// Everything a deterministic scorer looks at.
#[derive(Clone, Debug)]
pub struct CheckInput<'a> {
    pub workspace_root: &'a Path,
    /// `workspace.root` of the task.
    pub task_root: Option<&'a str>,
    /// The attempt directory, relative to the workspace.
    pub attempt_dir_rel: &'a Path,
    /// When the attempt started (freshness).
    pub started: SystemTime,
    pub exit_code: Option<i32>,
}

/// What a scorer said.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    pub pass: bool,
    pub score: Option<Score>,
    pub notes: String,
}

impl Checked {
    fn yes(notes: impl Into<String>) -> Self {
        Self {
            pass: true,
            score: Some(Score {
                value: 1.0,
                max: 1.0,
                notes: String::new(),
            }),
            notes: notes.into(),
        }
    }

    fn no(notes: impl Into<String>) -> Self {
        Self {
            pass: false,
            score: Some(Score {
                value: 0.0,
                max: 1.0,
                notes: String::new(),
            }),
            notes: notes.into(),
        }
    }
}

/// A scorer that could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is not valid JSON: {reason}")]
    Json { path: String, reason: String },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("this scorer kind is not deterministic")]
    NotDeterministic,
}

/// Runs a deterministic scorer.
pub fn check(scorer: &Scorer, input: &CheckInput<'_>) -> Result<Checked, CheckError> {
    match scorer {
        Scorer::ExitCode { expected } => Ok(if input.exit_code == Some(*expected) {
            Checked::yes(format!("exit code {expected}"))
        } else {
            Checked::no(format!(
                "exit code {} (expected {expected})",
                input
                    .exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "none".into())
            ))
        }),
        Scorer::FileExists { path, fresh } => {
            let full = resolve(input, path)?;
            match std::fs::metadata(&full) {
                Err(_) => Ok(Checked::no(format!("{path} does not exist"))),
                Ok(meta) => {
                    if *fresh && !is_fresh(&meta, input.started) {
                        Ok(Checked::no(stale_note(path)))
                    } else {
                        Ok(Checked::yes(format!("{path} exists")))
                    }
                }
            }
        }
        Scorer::RegexMatch {
            path,
            pattern,
            multiline,
            fresh,
        } => {
            let re = regex::bytes::RegexBuilder::new(pattern)
                .multi_line(*multiline)
                .build()
                .map_err(|e| CheckError::Invalid {
                    what: "regex",
                    reason: e.to_string(),
                })?;
            let (text, shown) = match path.as_str() {
                "stdout" | "stderr" => {
                    let p = input
                        .workspace_root
                        .join(input.attempt_dir_rel)
                        .join(format!("{path}.log"));
                    // No log file: the stream was silent.
                    let text = if p.exists() {
                        read_capped(&p, path)?
                    } else {
                        Vec::new()
                    };
                    (text, format!("the attempt's {path}"))
                }
                _ => {
                    let full = resolve(input, path)?;
                    match fresh_file(&full, path, *fresh, input.started)? {
                        Some(text) => (text, path.clone()),
                        None => return Ok(Checked::no(missing_or_stale(&full, path))),
                    }
                }
            };
            Ok(if re.is_match(&text) {
                Checked::yes(format!("/{pattern}/ matches {shown}"))
            } else {
                Checked::no(format!("/{pattern}/ does not match {shown}"))
            })
        }
        Scorer::JsonPath {
            path,
            expression,
            equals,
            fresh,
        } => {
            let query =
                serde_json_path::JsonPath::parse(expression).map_err(|e| CheckError::Invalid {
                    what: "JSONPath",
                    reason: e.to_string(),
                })?;
            let full = resolve(input, path)?;
            let Some(bytes) = fresh_file(&full, path, *fresh, input.started)? else {
                return Ok(Checked::no(missing_or_stale(&full, path)));
            };
            let doc: Value = serde_json::from_slice(&bytes).map_err(|e| CheckError::Json {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let nodes = query.query(&doc).all();
            Ok(match equals {
                None if nodes.is_empty() => {
                    Checked::no(format!("{expression} selects nothing in {path}"))
                }
                None => Checked::yes(format!(
                    "{expression} selects {} node{} in {path}",
                    nodes.len(),
                    if nodes.len() == 1 { "" } else { "s" }
                )),
                Some(want) if nodes.iter().any(|n| json_equal(n, want)) => {
                    Checked::yes(format!("{expression} = {want} in {path}"))
                }
                Some(want) => Checked::no(format!(
                    "{expression} selects {} in {path}, none equal to {want}",
                    describe_nodes(&nodes)
                )),
            })
        }
        Scorer::Command { .. } | Scorer::VerifierPrompt { .. } | Scorer::Manual => {
            Err(CheckError::NotDeterministic)
        }
    }
}

/// JSON equality where `1` equals `1.0`.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn describe_nodes(nodes: &[&Value]) -> String {
    let shown: Vec<String> = nodes.iter().take(3).map(|n| n.to_string()).collect();
    let mut s = format!("[{}]", shown.join(", "));
    if nodes.len() > 3 {
        s.push_str(&format!(" and {} more", nodes.len() - 3));
    }
    crate::model::bounded(&s, 200)
}

fn resolve(input: &CheckInput<'_>, p: &str) -> Result<PathBuf, CheckError> {
    Ok(paths::resolve_existing(
        input.workspace_root,
        input.task_root,
        Some(input.attempt_dir_rel),
        p,
    )?)
}

/// Now, on the clock the kernel stamps file times with. Linux takes mtimes
/// from the coarse realtime clock, up to one tick (4–10 ms) behind
/// `SystemTime::now()`: a file written right after an attempt starts can
/// carry an mtime *before* a fine-grained start time, and would be judged
/// stale. Freshness baselines come from here instead.
pub fn file_clock_now() -> SystemTime {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec through a valid pointer.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
        if rc == 0 && ts.tv_sec >= 0 {
            return SystemTime::UNIX_EPOCH
                + std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
    }
    SystemTime::now()
}

fn is_fresh(meta: &std::fs::Metadata, started: SystemTime) -> bool {
    meta.modified().map(|m| m >= started).unwrap_or(false)
}

fn stale_note(path: &str) -> String {
    format!(
        "{path} was not written by this attempt (it predates it; set `fresh: false` to accept it)"
    )
}

fn missing_or_stale(full: &Path, path: &str) -> String {
    if full.exists() {
        stale_note(path)
    } else {
        format!("{path} does not exist")
    }
}

/// The file's bytes, or `None` when it is missing or (when `fresh`) older
/// than the attempt.
fn fresh_file(
    full: &Path,
    shown: &str,
    fresh: bool,
    started: SystemTime,
) -> Result<Option<Vec<u8>>, CheckError> {
    match std::fs::metadata(full) {
        Err(_) => Ok(None),
        Ok(meta) if fresh && !is_fresh(&meta, started) => Ok(None),
        Ok(_) => read_capped(full, shown).map(Some),
    }
}

fn read_capped(p: &Path, shown: &str) -> Result<Vec<u8>, CheckError> {
    let err = |e: std::io::Error| CheckError::Read {
        path: shown.to_string(),
        reason: e.to_string(),
    };
    let mut buf = Vec::new();
    File::open(p)
        .map_err(err)?
        .take(MAX_SCORED_BYTES)
        .read_to_end(&mut buf)
        .map_err(err)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A file written right after the baseline is taken is fresh, every
    /// time (against `SystemTime::now()` this fails within the first few
    /// writes: mtimes come from the coarse clock).
    #[test]
    fn a_file_written_after_the_baseline_is_always_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("out");
        for i in 0..300 {
            let started = file_clock_now();
            std::fs::write(&f, i.to_string()).unwrap();
            let meta = std::fs::metadata(&f).unwrap();
            assert!(is_fresh(&meta, started), "write {i}");
        }
        assert!(file_clock_now() <= SystemTime::now());
    }

    struct Fx {
        _dir: tempfile::TempDir,
        root: PathBuf,
        attempt_rel: PathBuf,
        started: SystemTime,
    }

    fn fx() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let attempt_rel = PathBuf::from(".orca/runs/r/t/1");
        std::fs::create_dir_all(root.join(&attempt_rel)).unwrap();
        Fx {
            _dir: dir,
            root,
            attempt_rel,
            started: SystemTime::now() - Duration::from_secs(1),
        }
    }

    impl Fx {
        fn input(&self) -> CheckInput<'_> {
            CheckInput {
                workspace_root: &self.root,
                task_root: None,
                attempt_dir_rel: &self.attempt_rel,
                started: self.started,
                exit_code: Some(0),
            }
        }
        fn write(&self, rel: &str, text: &str) {
            let p = self.root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    fn run(s: Scorer, f: &Fx) -> Checked {
        check(&s, &f.input()).unwrap()
    }

    #[test]
    fn exit_code() {
        let f = fx();
        assert!(run(Scorer::ExitCode { expected: 0 }, &f).pass);
        assert!(!run(Scorer::ExitCode { expected: 3 }, &f).pass);
    }

    #[test]
    fn file_exists_and_freshness() {
        let f = fx();
        let s = |p: &str, fresh| Scorer::FileExists {
            path: p.into(),
            fresh,
        };
        assert!(!run(s("out.txt", true), &f).pass);
        f.write("out.txt", "x");
        assert!(run(s("out.txt", true), &f).pass);
        // A file older than the attempt does not count unless fresh: false.
        let old = f.root.join("out.txt");
        let t = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(t)
            .unwrap();
        let c = run(s("out.txt", true), &f);
        assert!(!c.pass && c.notes.contains("predates"), "{}", c.notes);
        assert!(run(s("out.txt", false), &f).pass);
        // $ORCA_ATTEMPT_DIR resolves to the attempt directory.
        f.write(".orca/runs/r/t/1/artifacts/report.md", "# r");
        assert!(run(s("$ORCA_ATTEMPT_DIR/artifacts/report.md", true), &f).pass);
    }

    #[test]
    fn regex_over_files_and_stdout() {
        let f = fx();
        f.write(
            ".orca/runs/r/t/1/stdout.log",
            "tests: 42 passed, 0 failed\n",
        );
        let on = |p: &str, pat: &str| Scorer::RegexMatch {
            path: p.into(),
            pattern: pat.into(),
            multiline: false,
            fresh: true,
        };
        assert!(run(on("stdout", r"\b0 failed"), &f).pass);
        assert!(!run(on("stdout", r"\b1 failed"), &f).pass);
        f.write("log.txt", "ERROR: nope");
        assert!(run(on("log.txt", "^ERROR"), &f).pass);
        assert!(!run(on("missing.txt", "x"), &f).pass);
        // `^…$` is the whole text unless `multiline` asks for lines.
        f.write("two.txt", "starting\nRESULT: ok\ndone\n");
        assert!(!run(on("two.txt", "^RESULT: ok$"), &f).pass);
        let lines = Scorer::RegexMatch {
            path: "two.txt".into(),
            pattern: "^RESULT: ok$".into(),
            multiline: true,
            fresh: true,
        };
        assert!(run(lines, &f).pass);
    }

    #[test]
    fn json_path_arrays_wildcards_filters() {
        let f = fx();
        f.write(
            "r.json",
            r#"{"tests":[{"name":"a","ok":true,"ms":3},{"name":"b","ok":false,"ms":9}],"summary":{"failed":1}}"#,
        );
        let q = |e: &str, eq: Option<Value>| Scorer::JsonPath {
            path: "r.json".into(),
            expression: e.into(),
            equals: eq,
            fresh: true,
        };
        assert!(run(q("$.tests[1].name", Some(Value::from("b"))), &f).pass);
        assert!(run(q("$.tests[-1].ok", Some(Value::from(false))), &f).pass);
        assert!(run(q("$.tests[*].name", Some(Value::from("a"))), &f).pass);
        assert!(run(q("$.tests[?@.ms > 5].name", Some(Value::from("b"))), &f).pass);
        assert!(!run(q("$.tests[?@.ms > 50]", None), &f).pass);
        assert!(run(q("$.summary.failed", Some(serde_json::json!(1.0))), &f).pass);
        let c = run(q("$.summary.failed", Some(Value::from(0))), &f);
        assert!(
            !c.pass && c.notes.contains("none equal to 0"),
            "{}",
            c.notes
        );
        assert!(run(q("$..ok", None), &f).pass);
    }

    #[test]
    fn errors_are_errors_not_verdicts() {
        let f = fx();
        f.write("bad.json", "{not json");
        let e = check(
            &Scorer::JsonPath {
                path: "bad.json".into(),
                expression: "$.a".into(),
                equals: None,
                fresh: true,
            },
            &f.input(),
        )
        .unwrap_err();
        assert!(matches!(e, CheckError::Json { .. }), "{e}");
        for p in ["../x", "/etc/passwd"] {
            let e = check(
                &Scorer::FileExists {
                    path: p.into(),
                    fresh: false,
                },
                &f.input(),
            )
            .unwrap_err();
            assert!(
                matches!(e, CheckError::Path(PathError::Escapes(_))),
                "{p}: {e}"
            );
        }
    }

    #[test]
    fn symlinks_out_of_the_workspace_are_refused() {
        let f = fx();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::os::unix::fs::symlink(outside.path(), f.root.join("link")).unwrap();
        let e = check(
            &Scorer::FileExists {
                path: "link".into(),
                fresh: false,
            },
            &f.input(),
        )
        .unwrap_err();
        assert!(
            matches!(e, CheckError::Path(PathError::SymlinkOut { .. })),
            "{e}"
        );
    }
}
