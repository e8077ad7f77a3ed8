//! Where spec paths resolve (DESIGN.md "Shared contracts: Paths").
//!
//! A task's working directory is the workspace root, or its `workspace.root`
//! inside the workspace. Relative paths (required files, input files, scorer
//! paths) resolve against it; `$ORCA_ATTEMPT_DIR/…` resolves against the
//! attempt directory. Nothing may escape the workspace: validation checks
//! lexically ([`resolve_lexically`]); at run time [`resolve_existing`] also
//! follows symlinks.

use std::path::{Component, Path, PathBuf};

/// The prefixes that name the attempt directory in a scorer path.
pub const ATTEMPT_DIR_VARS: &[&str] = &["$ORCA_ATTEMPT_DIR", "${ORCA_ATTEMPT_DIR}"];

/// Why a path was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("`{0}` escapes the workspace (paths must stay inside it)")]
    Escapes(String),
    #[error("`{0}` is empty")]
    Empty(String),
    #[error("`{path}` resolves through a symlink to {target}, outside the workspace")]
    SymlinkOut { path: String, target: String },
    #[error("cannot resolve `{path}`: {reason}")]
    Io { path: String, reason: String },
}

/// Splits `$ORCA_ATTEMPT_DIR/rest` into `Some(rest)`.
pub fn attempt_relative(p: &str) -> Option<&str> {
    ATTEMPT_DIR_VARS.iter().find_map(|var| {
        let rest = p.strip_prefix(var)?;
        if rest.is_empty() {
            Some("")
        } else {
            rest.strip_prefix('/')
        }
    })
}

/// Normalizes `.` and `..` without touching the filesystem. `None` when
/// `..` climbs above the start.
fn normalize(rel: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The task's working directory relative to the workspace root.
pub fn task_dir_relative(task_root: Option<&str>) -> Result<PathBuf, PathError> {
    match task_root {
        None => Ok(PathBuf::new()),
        Some(r) => {
            let p = Path::new(r);
            if p.is_absolute() {
                return Err(PathError::Escapes(r.to_string()));
            }
            normalize(p).ok_or_else(|| PathError::Escapes(r.to_string()))
        }
    }
}

/// Resolves `p` lexically. Returns the path relative to the workspace root
/// (`attempt_dir_rel` stands for `$ORCA_ATTEMPT_DIR` when given, else a
/// placeholder inside `.orca/`).
///
/// `workspace_root` is needed to accept absolute paths inside the
/// workspace; without it every absolute path is refused.
pub fn resolve_lexically(
    workspace_root: Option<&Path>,
    task_root: Option<&str>,
    attempt_dir_rel: Option<&Path>,
    p: &str,
) -> Result<PathBuf, PathError> {
    if p.trim().is_empty() {
        return Err(PathError::Empty(p.to_string()));
    }
    if let Some(rest) = attempt_relative(p) {
        let base = attempt_dir_rel
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".orca/runs/RUN/TASK/N"));
        let inner = normalize(Path::new(rest)).ok_or_else(|| PathError::Escapes(p.to_string()))?;
        return Ok(base.join(inner));
    }
    let path = Path::new(p);
    if path.is_absolute() {
        let root = workspace_root.ok_or_else(|| PathError::Escapes(p.to_string()))?;
        let rel = path
            .strip_prefix(root)
            .map_err(|_| PathError::Escapes(p.to_string()))?;
        return normalize(rel).ok_or_else(|| PathError::Escapes(p.to_string()));
    }
    let base = task_dir_relative(task_root)?;
    normalize(&base.join(path)).ok_or_else(|| PathError::Escapes(p.to_string()))
}

/// Resolves `p` for use at run time: lexically first, then, for the part
/// that exists, through symlinks, refusing anything that lands outside the
/// workspace. Returns the absolute path (which may not exist).
pub fn resolve_existing(
    workspace_root: &Path,
    task_root: Option<&str>,
    attempt_dir_rel: Option<&Path>,
    p: &str,
) -> Result<PathBuf, PathError> {
    let rel = resolve_lexically(Some(workspace_root), task_root, attempt_dir_rel, p)?;
    let root = workspace_root.canonicalize().map_err(|e| PathError::Io {
        path: workspace_root.display().to_string(),
        reason: e.to_string(),
    })?;
    let full = root.join(&rel);
    // Canonicalize the longest existing prefix: symlinks anywhere along the
    // way must stay inside.
    let mut existing = full.clone();
    let mut tail = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let canonical = existing.canonicalize().map_err(|e| PathError::Io {
        path: p.to_string(),
        reason: e.to_string(),
    })?;
    if !canonical.starts_with(&root) {
        return Err(PathError::SymlinkOut {
            path: p.to_string(),
            target: canonical.display().to_string(),
        });
    }
    let mut out = canonical;
    for name in tail.into_iter().rev() {
        out.push(name);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_rules() {
        let root = Path::new("/ws");
        let ok = |p: &str, task: Option<&str>| resolve_lexically(Some(root), task, None, p);
        assert_eq!(ok("a/b.txt", None).unwrap(), PathBuf::from("a/b.txt"));
        assert_eq!(ok("../x", Some("sub")).unwrap(), PathBuf::from("x"));
        assert_eq!(ok("/ws/a/../b", None).unwrap(), PathBuf::from("b"));
        assert!(matches!(ok("../x", None), Err(PathError::Escapes(_))));
        assert!(matches!(
            ok("../../x", Some("sub")),
            Err(PathError::Escapes(_))
        ));
        assert!(matches!(
            ok("/etc/passwd", None),
            Err(PathError::Escapes(_))
        ));
        assert!(matches!(
            ok("a", Some("../out")),
            Err(PathError::Escapes(_))
        ));
        assert!(matches!(ok("", None), Err(PathError::Empty(_))));
        assert_eq!(
            resolve_lexically(
                None,
                None,
                Some(Path::new(".orca/runs/r/t/1")),
                "$ORCA_ATTEMPT_DIR/artifacts/x"
            )
            .unwrap(),
            PathBuf::from(".orca/runs/r/t/1/artifacts/x")
        );
        assert!(
            resolve_lexically(None, None, None, "${ORCA_ATTEMPT_DIR}/../../../../../x").is_err()
        );
    }

    #[test]
    fn symlinks_out_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        std::fs::create_dir_all(ws.join("d")).unwrap();
        let outside = tmp.path().join("secret");
        std::fs::write(&outside, "x").unwrap();
        std::os::unix::fs::symlink(&outside, ws.join("link")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), ws.join("d/up")).unwrap();
        let err = resolve_existing(&ws, None, None, "link").unwrap_err();
        assert!(matches!(err, PathError::SymlinkOut { .. }), "{err}");
        let err = resolve_existing(&ws, None, None, "d/up/secret").unwrap_err();
        assert!(matches!(err, PathError::SymlinkOut { .. }), "{err}");
        let ok = resolve_existing(&ws, None, None, "d/new.txt").unwrap();
        assert!(ok.ends_with("ws/d/new.txt"));
    }
}
