//! Finding an attempt's artifacts and turning them into refs
//! (DESIGN.md "Shared contracts: Expected artifacts").
//!
//! `log` is the attempt's logs (always present); `receipt` is the receipt
//! orca writes; any other kind is a file in `$ORCA_ATTEMPT_DIR/artifacts/`
//! whose name starts with the kind (`report.md`), or a stream-json
//! `{"artifact": {"kind", "path"}}` line. Each becomes a ref {kind, path
//! relative to the workspace, sha256, MIME type, size}; only refs are
//! journaled. Files over the cap, or that lead outside the workspace, are
//! refused with a note.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::ArtifactRef;
use crate::spec::paths;

/// Default cap per artifact file.
pub const DEFAULT_ARTIFACT_CAP: u64 = 64 << 20;

/// At most this many files are taken from `artifacts/`.
const MAX_FILES: usize = 1_000;

/// The artifacts of an attempt.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scan {
    pub refs: Vec<ArtifactRef>,
    /// Expected kinds with no artifact.
    pub missing: Vec<String>,
    /// Refused files and other remarks, for the receipt.
    pub notes: Vec<String>,
}

/// What to scan.
#[derive(Clone, Debug)]
pub struct ScanInput<'a> {
    pub workspace_root: &'a Path,
    pub task_root: Option<&'a str>,
    pub attempt_dir_rel: &'a Path,
    /// The logs orca wrote in the attempt directory (`stdout.log`,
    /// `stderr.log`; a silent stream leaves none).
    pub logs: &'a [&'a str],
    pub expected: &'a [String],
    /// (kind, path) from stream-json `artifact` lines.
    pub declared: &'a [(String, String)],
    pub cap: u64,
}

/// Whether [`scan`] has files to read in `attempt_dir` — `logs`, an
/// `artifacts/` directory, `declared` artifacts — which takes a blocking
/// thread; when not, it only works out the missing kinds. One `stat`.
pub fn has_files(attempt_dir: &Path, logs: &[&str], declared: &[(String, String)]) -> bool {
    !logs.is_empty()
        || !declared.is_empty()
        || std::fs::symlink_metadata(attempt_dir.join("artifacts")).is_ok()
}

/// Scans an attempt's artifacts.
pub fn scan(input: &ScanInput<'_>) -> Scan {
    let mut out = Scan::default();
    let root = input.workspace_root;
    let attempt_dir = root.join(input.attempt_dir_rel);
    for log in input.logs {
        let p = attempt_dir.join(log);
        if p.is_file() {
            add(&mut out, root, &p, "log", input.cap);
        }
    }
    let mut files = Vec::new();
    collect_files(
        &attempt_dir.join("artifacts"),
        0,
        &mut files,
        &mut out.notes,
    );
    files.sort();
    for p in files.into_iter().take(MAX_FILES) {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let kind = input
            .expected
            .iter()
            .filter(|k| name.starts_with(k.as_str()))
            .max_by_key(|k| k.len())
            .cloned()
            .unwrap_or_else(|| name.split('.').next().unwrap_or(name).to_string());
        match p.canonicalize() {
            Ok(real)
                if real.starts_with(root.canonicalize().unwrap_or_else(|_| root.to_path_buf())) =>
            {
                add(&mut out, root, &real, &kind, input.cap)
            }
            _ => out.notes.push(format!(
                "artifact {} leads outside the workspace; refused",
                rel(root, &p)
            )),
        }
    }
    for (kind, path) in input.declared {
        match paths::resolve_existing(root, input.task_root, Some(input.attempt_dir_rel), path) {
            Ok(full) if full.is_file() => {
                if !out.refs.iter().any(|r| r.path == rel(root, &full)) {
                    add(&mut out, root, &full, kind, input.cap);
                }
            }
            Ok(_) => out
                .notes
                .push(format!("declared artifact {kind} at {path} does not exist")),
            Err(e) => out.notes.push(format!("declared artifact {kind}: {e}")),
        }
    }
    for kind in input.expected {
        let present = match kind.as_str() {
            "log" | "receipt" => true,
            k => out.refs.iter().any(|r| r.kind == k),
        };
        if !present && !out.missing.contains(kind) {
            out.missing.push(kind.clone());
        }
    }
    out
}

fn collect_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>, notes: &mut Vec<String>) {
    if depth > 8 || out.len() > MAX_FILES {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => collect_files(&p, depth + 1, out, notes),
            Ok(t) if t.is_file() || t.is_symlink() => out.push(p),
            _ => {}
        }
    }
    if out.len() > MAX_FILES {
        notes.push(format!(
            "more than {MAX_FILES} artifact files; the rest are ignored"
        ));
    }
}

fn rel(root: &Path, p: &Path) -> String {
    let root_c = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    p.strip_prefix(&root_c)
        .or_else(|_| p.strip_prefix(root))
        .unwrap_or(p)
        .display()
        .to_string()
}

fn add(out: &mut Scan, root: &Path, p: &Path, kind: &str, cap: u64) {
    let shown = rel(root, p);
    match hash_file(p, cap) {
        Ok(Some((sha256, size))) => out.refs.push(ArtifactRef {
            kind: kind.to_string(),
            path: shown,
            sha256,
            mime: mime_for(p).to_string(),
            size,
        }),
        Ok(None) => out.notes.push(format!(
            "artifact {shown} is over the {} cap; refused",
            cap_text(cap)
        )),
        Err(e) => out.notes.push(format!("cannot read artifact {shown}: {e}")),
    }
}

/// A cap in the largest unit that shows it exactly (`64 MiB`, `1500
/// bytes`).
pub(crate) fn cap_text(cap: u64) -> String {
    match cap {
        c if c >= 1 << 20 && c % (1 << 20) == 0 => format!("{} MiB", c >> 20),
        c if c >= 1 << 10 && c % (1 << 10) == 0 => format!("{} KiB", c >> 10),
        c => format!("{c}-byte"),
    }
}

/// SHA-256 and size of a file, or `None` when it is over `cap`.
pub fn hash_file(p: &Path, cap: u64) -> std::io::Result<Option<(String, u64)>> {
    let mut f = File::open(p)?;
    let size = f.metadata()?.len();
    if size > cap {
        return Ok(None);
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Some((hex(&h.finalize()), size)))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A MIME type by file extension.
pub fn mime_for(p: &Path) -> &'static str {
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "log" | "txt" | "out" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "json" => "application/json",
        "jsonl" | "ndjson" => "application/x-ndjson",
        "diff" | "patch" => "text/x-diff",
        "html" | "htm" => "text/html",
        "xml" | "junit" => "application/xml",
        "csv" => "text/csv",
        "toml" => "application/toml",
        "yaml" | "yml" => "application/yaml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_shown_exactly() {
        assert_eq!(cap_text(64 << 20), "64 MiB");
        assert_eq!(cap_text(512 << 10), "512 KiB");
        assert_eq!(cap_text(1500), "1500-byte");
    }

    #[test]
    fn finds_refs_and_missing_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let rel_dir = PathBuf::from(".orca/runs/r/t/1");
        let a = root.join(&rel_dir);
        std::fs::create_dir_all(a.join("artifacts/sub")).unwrap();
        std::fs::write(a.join("stdout.log"), "out").unwrap();
        std::fs::write(a.join("stderr.log"), "").unwrap();
        std::fs::write(a.join("artifacts/report.md"), "# hi\n").unwrap();
        std::fs::write(a.join("artifacts/sub/patch-1.diff"), "--- a\n").unwrap();
        std::fs::write(a.join("artifacts/huge.bin"), vec![0u8; 2048]).unwrap();
        std::fs::write(root.join("notes.txt"), "declared").unwrap();
        let expected: Vec<String> = ["log", "report", "patch", "test_result", "receipt"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let declared = vec![("notes".to_string(), "notes.txt".to_string())];
        let s = scan(&ScanInput {
            workspace_root: root,
            task_root: None,
            attempt_dir_rel: &rel_dir,
            logs: &["stdout.log", "stderr.log"],
            expected: &expected,
            declared: &declared,
            cap: 1024,
        });
        let kinds: Vec<(&str, &str)> = s
            .refs
            .iter()
            .map(|r| (r.kind.as_str(), r.path.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("log", ".orca/runs/r/t/1/stdout.log"),
                ("log", ".orca/runs/r/t/1/stderr.log"),
                ("report", ".orca/runs/r/t/1/artifacts/report.md"),
                ("patch", ".orca/runs/r/t/1/artifacts/sub/patch-1.diff"),
                ("notes", "notes.txt"),
            ]
        );
        assert_eq!(s.missing, ["test_result"]);
        assert!(s.notes[0].contains("huge.bin is over"), "{:?}", s.notes);
        let report = &s.refs[2];
        // sha256("# hi\n")
        assert_eq!(
            report.sha256,
            "045d2d07c2db3b9e6cef022457ee89434045a508c2dadccf9abe182ad633c273"
        );
        assert_eq!((report.size, report.mime.as_str()), (5, "text/markdown"));
    }

    #[test]
    fn symlinked_artifacts_out_of_the_workspace_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        let rel_dir = PathBuf::from(".orca/runs/r/t/1");
        std::fs::create_dir_all(root.join(&rel_dir).join("artifacts")).unwrap();
        let outside = dir.path().join("secret.txt");
        std::fs::write(&outside, "s").unwrap();
        std::os::unix::fs::symlink(&outside, root.join(&rel_dir).join("artifacts/report.txt"))
            .unwrap();
        let s = scan(&ScanInput {
            workspace_root: &root,
            task_root: None,
            attempt_dir_rel: &rel_dir,
            logs: &[],
            expected: &["report".to_string()],
            declared: &[],
            cap: 1 << 20,
        });
        assert!(s.refs.is_empty());
        assert_eq!(s.missing, ["report"]);
        assert!(s.notes[0].contains("outside the workspace"));
    }
}
