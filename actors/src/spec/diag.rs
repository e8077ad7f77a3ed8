//! Diagnostics: an error or warning about one field of a document, with its
//! field path, line and column, and an optional hint.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Field path (`tasks[3].retry_policy.backoff_multiplier`); empty for
    /// the whole document.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column (characters), when known.
    pub column: Option<u32>,
    /// What is wrong and what was expected.
    pub message: String,
    /// How to fix it (`did you mean "timeout_seconds"?`).
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            path: path.into(),
            line: None,
            column: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(path, message)
        }
    }

    pub fn at(mut self, line: u32, column: u32) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `origin:line:col: severity: path: message` (compiler style), with the
    /// hint on a second line.
    pub fn display<'a>(&'a self, origin: &'a str) -> impl fmt::Display + 'a {
        DisplayDiag { d: self, origin }
    }
}

struct DisplayDiag<'a> {
    d: &'a Diagnostic,
    origin: &'a str,
}

impl fmt::Display for DisplayDiag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.d;
        let sev = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}", self.origin)?;
        if let (Some(l), Some(c)) = (d.line, d.column) {
            write!(f, ":{l}:{c}")?;
        }
        if d.path.is_empty() {
            write!(f, ": {}", d.message)?;
        } else {
            write!(f, ": {}: {}", d.path, d.message)?;
        }
        if let Some(h) = &d.hint {
            write!(f, "\n  help: {h}")?;
        }
        Ok(())
    }
}

/// The known name `unknown` most resembles, if any is close enough to be a
/// plausible typo.
pub fn did_you_mean<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    let u = unknown.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (k, strsim::jaro_winkler(&u, k)))
        .filter(|(k, score)| {
            *score >= 0.85 || strsim::damerau_levenshtein(&u, k) <= (k.len() / 4).max(1)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| *k)
}

/// A hint for an unknown field: the closest known field, else the list.
pub fn unknown_field_hint(unknown: &str, known: &[&str]) -> String {
    match did_you_mean(unknown, known) {
        Some(k) => format!("did you mean `{k}`?"),
        None => format!("known fields here: {}", known.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let known = ["timeout_seconds", "stale_after_seconds", "tags", "name"];
        assert_eq!(
            did_you_mean("timeout_second", &known),
            Some("timeout_seconds")
        );
        assert_eq!(
            did_you_mean("timout_seconds", &known),
            Some("timeout_seconds")
        );
        assert_eq!(did_you_mean("tag", &known), Some("tags"));
        assert_eq!(did_you_mean("Name", &known), Some("name"));
        assert_eq!(did_you_mean("completely_else", &known), None);
    }

    #[test]
    fn display_is_compiler_style() {
        let d = Diagnostic::error("tasks[0].id", "bad id")
            .at(3, 9)
            .with_hint("use letters");
        assert_eq!(
            d.display("spec.json").to_string(),
            "error: spec.json:3:9: tasks[0].id: bad id\n  help: use letters"
        );
    }
}
