//! Task, run and worker specs: JSON and TOML parsing, seed compatibility,
//! validation with located diagnostics (docs/spec.md).
//!
//! A spec document may be a run (an object with `tasks`), a single task, or
//! (JSON only) a bare list of tasks; all three become a [`RunSpec`].
//! [`check_str`] / [`check_file`] parse and validate and return a
//! [`SpecReport`] holding every diagnostic, each with its field path in the
//! document's own shape and its line and column.

pub mod config;
pub mod diag;
pub mod parse;
pub mod paths;
pub mod policy;
pub mod source;
pub mod template;
pub mod types;
pub mod validate;

use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

pub use config::{OrcaConfig, RuntimeConfig};
pub use diag::{Diagnostic, Severity};
pub use parse::FromSpec;
pub use source::{Document, Format};
pub use types::*;
pub use validate::{validate, ValidateContext};

/// The shape a spec document had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// An object with `tasks`.
    Run,
    /// A single task object.
    SingleTask,
    /// A JSON array of tasks.
    TaskList,
}

/// Fields that mark an object without `tasks` as a single task.
const TASK_MARKERS: &[&str] = &["id", "command", "instructions", "objective"];

/// The result of checking a spec: the spec (when it has no errors) and
/// every diagnostic.
#[derive(Clone, Debug)]
pub struct SpecReport {
    /// File path, or `api`, `-`, …
    pub origin: String,
    pub format: Format,
    pub shape: Option<Shape>,
    /// `None` when there are errors.
    pub spec: Option<RunSpec>,
    /// Errors first, then warnings; each in document order.
    pub diagnostics: Vec<Diagnostic>,
}

/// A spec with errors.
#[derive(Clone, Debug, thiserror::Error)]
pub struct SpecError {
    pub origin: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.diagnostics.iter().filter(|d| d.is_error()).count();
        writeln!(f, "{}: {errors} error(s) in the spec", self.origin)?;
        for d in &self.diagnostics {
            writeln!(f, "{}", d.display(&self.origin))?;
        }
        Ok(())
    }
}

/// A spec without errors, with its warnings.
#[derive(Clone, Debug)]
pub struct ValidSpec {
    pub origin: String,
    pub spec: RunSpec,
    pub warnings: Vec<Diagnostic>,
}

impl SpecReport {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    pub fn is_ok(&self) -> bool {
        self.spec.is_some()
    }

    pub fn into_result(self) -> Result<ValidSpec, SpecError> {
        match self.spec {
            Some(spec) => Ok(ValidSpec {
                origin: self.origin,
                spec,
                warnings: self.diagnostics,
            }),
            None => Err(SpecError {
                origin: self.origin,
                diagnostics: self.diagnostics,
            }),
        }
    }
}

/// Reads, parses and validates a spec file.
pub fn check_file(path: &Path, ctx: &ValidateContext<'_>) -> SpecReport {
    let origin = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => check_str(&text, Format::detect(&origin, &text), &origin, ctx),
            Err(e) => failed(
                origin,
                Format::detect(&path.display().to_string(), ""),
                Diagnostic::error("", format!("not UTF-8 text: {e}")),
            ),
        },
        Err(e) => failed(
            origin.clone(),
            Format::detect(&origin, ""),
            Diagnostic::error("", format!("cannot read the spec: {e}")),
        ),
    }
}

fn failed(origin: String, format: Format, d: Diagnostic) -> SpecReport {
    SpecReport {
        origin,
        format,
        shape: None,
        spec: None,
        diagnostics: vec![d],
    }
}

/// Parses and validates spec text.
pub fn check_str(
    text: &str,
    format: Format,
    origin: &str,
    ctx: &ValidateContext<'_>,
) -> SpecReport {
    let doc = match Document::parse(text, format) {
        Ok(doc) => doc,
        Err(d) => return failed(origin.to_string(), format, d),
    };
    let mut diags = parse::Diags::default();
    let (shape, spec) =
        match shape_of(&doc.value) {
            Some(Shape::Run) => (
                Shape::Run,
                RunSpec::from_spec(doc.value.clone(), "", &mut diags),
            ),
            Some(Shape::SingleTask) => (
                Shape::SingleTask,
                TaskSpec::from_spec(doc.value.clone(), "tasks[0]", &mut diags).map(|t| RunSpec {
                    tasks: vec![t],
                    ..RunSpec::default()
                }),
            ),
            Some(Shape::TaskList) => (
                Shape::TaskList,
                Vec::<TaskSpec>::from_spec(doc.value.clone(), "tasks", &mut diags).map(|tasks| {
                    RunSpec {
                        tasks,
                        ..RunSpec::default()
                    }
                }),
            ),
            None => return failed(
                origin.to_string(),
                format,
                Diagnostic::error(
                    "",
                    "expected a run (an object with `tasks`), a single task, or a list of tasks",
                )
                .at(1, 1),
            ),
        };
    let parse_errors: Vec<String> = diags
        .items
        .iter()
        .filter(|(d, _)| d.is_error())
        .map(|(d, _)| d.path.clone())
        .collect();
    if let Some(spec) = &spec {
        // Semantic checks run on the partially parsed spec too, so one pass
        // reports everything; findings under a field that already failed to
        // parse would only echo that error and are dropped.
        for d in validate(spec, ctx) {
            let echoes = parse_errors.iter().any(|p| is_at_or_under(&d.path, p));
            if !echoes {
                diags.items.push((d, false));
            }
        }
    }
    let mut diagnostics: Vec<Diagnostic> = diags
        .items
        .into_iter()
        .map(|(mut d, at_key)| {
            d.path = doc_path(shape, &d.path);
            if d.line.is_none() {
                if let Some((l, c)) = doc.locate(&d.path, at_key) {
                    d = d.at(l, c);
                }
            }
            d
        })
        .collect();
    diagnostics.sort_by_key(|d| (d.severity, d.line.unwrap_or(0), d.column.unwrap_or(0)));
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    SpecReport {
        origin: origin.to_string(),
        format,
        shape: Some(shape),
        spec: if has_errors { None } else { spec },
        diagnostics,
    }
}

/// Whether `path` is `parent` or a field inside it.
fn is_at_or_under(path: &str, parent: &str) -> bool {
    match path.strip_prefix(parent) {
        Some(rest) => {
            rest.is_empty() || rest.starts_with('.') || rest.starts_with('[') || parent.is_empty()
        }
        None => false,
    }
}

/// Which shape a document has, if any.
fn shape_of(v: &Value) -> Option<Shape> {
    match v {
        Value::Array(_) => Some(Shape::TaskList),
        Value::Object(m) if m.contains_key("tasks") => Some(Shape::Run),
        Value::Object(m) if TASK_MARKERS.iter().any(|k| m.contains_key(*k)) => {
            Some(Shape::SingleTask)
        }
        Value::Object(_) => Some(Shape::Run),
        _ => None,
    }
}

/// Maps a run-shaped path (`tasks[0].x`) to the document's shape.
fn doc_path(shape: Shape, path: &str) -> String {
    match shape {
        Shape::Run => path.to_string(),
        Shape::SingleTask => {
            let rest = path.strip_prefix("tasks[0]").unwrap_or(path);
            rest.strip_prefix('.').unwrap_or(rest).to_string()
        }
        Shape::TaskList => path.strip_prefix("tasks").unwrap_or(path).to_string(),
    }
}

/// Reads a run spec back from the JSON text journaled in `RunSubmitted`.
pub fn from_journal_json(text: &str) -> Result<RunSpec, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests;
