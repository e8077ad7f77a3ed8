//! Actor paths: where an actor sits in orca's supervision tree.
//!
//! The journal stores paths as text (`/runs/r-1/attempts/lint:2`), and so
//! do the CLI and the API; inside orca a path is an [`ActorPath`], whose
//! `Display` writes exactly the bytes the journal has always held and whose
//! `FromStr` reads them back (a test checks the round trip for every
//! kind). Code decides on the variant, never on a suffix of the text.
//!
//! | path | actor |
//! |---|---|
//! | `/` | the root |
//! | `/journal` | the journal writer |
//! | `/alert-router` | the alert router |
//! | `/agents`, `/agents/<id>` | the agents supervisor, one agent |
//! | `/runs`, `/runs/<run>` | the runs supervisor, one run supervisor |
//! | `/runs/<run>/scorer` | a run's scorer |
//! | `/runs/<run>/attempts/<task>:<n>` | one attempt |
//!
//! Ids never hold `/` or `:` (the id rule in [`crate::model::is_valid_id`]),
//! so the parse is unambiguous.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::{AttemptRef, NodeKind};

/// An actor's place in the tree (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActorPath {
    Root,
    Journal,
    AlertRouter,
    Agents,
    Agent(String),
    Runs,
    Run(String),
    Scorer(String),
    Attempt(AttemptRef),
}

/// A path that is not one of orca's actors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path:?} is not an actor path (expected /, /journal, /alert-router, /agents[/<id>], /runs[/<run>[/scorer | /attempts/<task>:<n>]])")]
pub struct PathError {
    pub path: String,
}

/// A parsed path that borrows from the text (no allocation): the fold
/// reads the run of every path-carrying event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathRef<'a> {
    Root,
    Journal,
    AlertRouter,
    Agents,
    Agent(&'a str),
    Runs,
    Run(&'a str),
    Scorer(&'a str),
    Attempt { run: &'a str, task: &'a str, n: u32 },
}

impl<'a> PathRef<'a> {
    /// Parses `text`; `None` when it is not an actor path.
    pub fn parse(text: &'a str) -> Option<PathRef<'a>> {
        let ok = |s: &str| !s.is_empty() && !s.contains('/');
        Some(match text {
            "/" => PathRef::Root,
            "/journal" => PathRef::Journal,
            "/alert-router" => PathRef::AlertRouter,
            "/agents" => PathRef::Agents,
            "/runs" => PathRef::Runs,
            _ => {
                if let Some(id) = text.strip_prefix("/agents/") {
                    return ok(id).then_some(PathRef::Agent(id));
                }
                let rest = text.strip_prefix("/runs/")?;
                let (run, tail) = match rest.split_once('/') {
                    None => return ok(rest).then_some(PathRef::Run(rest)),
                    Some(x) => x,
                };
                if !ok(run) {
                    return None;
                }
                if tail == "scorer" {
                    return Some(PathRef::Scorer(run));
                }
                let attempt = tail.strip_prefix("attempts/")?;
                let (task, n) = attempt.rsplit_once(':')?;
                if !ok(task) || task.contains(':') || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                PathRef::Attempt {
                    run,
                    task,
                    n: n.parse().ok()?,
                }
            }
        })
    }

    /// The run the actor belongs to, if any.
    pub fn run(self) -> Option<&'a str> {
        match self {
            PathRef::Run(r) | PathRef::Scorer(r) | PathRef::Attempt { run: r, .. } => Some(r),
            PathRef::Root
            | PathRef::Journal
            | PathRef::AlertRouter
            | PathRef::Agents
            | PathRef::Agent(_)
            | PathRef::Runs => None,
        }
    }

    pub fn to_owned(self) -> ActorPath {
        match self {
            PathRef::Root => ActorPath::Root,
            PathRef::Journal => ActorPath::Journal,
            PathRef::AlertRouter => ActorPath::AlertRouter,
            PathRef::Agents => ActorPath::Agents,
            PathRef::Agent(id) => ActorPath::Agent(id.to_string()),
            PathRef::Runs => ActorPath::Runs,
            PathRef::Run(r) => ActorPath::Run(r.to_string()),
            PathRef::Scorer(r) => ActorPath::Scorer(r.to_string()),
            PathRef::Attempt { run, task, n } => ActorPath::Attempt(AttemptRef::new(run, task, n)),
        }
    }
}

impl ActorPath {
    pub fn run(id: impl Into<String>) -> Self {
        ActorPath::Run(id.into())
    }

    pub fn scorer(run: impl Into<String>) -> Self {
        ActorPath::Scorer(run.into())
    }

    pub fn attempt(run: impl Into<String>, task: impl Into<String>, n: u32) -> Self {
        ActorPath::Attempt(AttemptRef::new(run, task, n))
    }

    /// The kind of actor at this path.
    pub fn kind(&self) -> NodeKind {
        match self {
            ActorPath::Root => NodeKind::Root,
            ActorPath::Journal => NodeKind::Journal,
            ActorPath::AlertRouter => NodeKind::AlertRouter,
            ActorPath::Agents => NodeKind::Agents,
            ActorPath::Agent(_) => NodeKind::Agent,
            ActorPath::Runs => NodeKind::Runs,
            ActorPath::Run(_) => NodeKind::Run,
            ActorPath::Scorer(_) => NodeKind::Scorer,
            ActorPath::Attempt(_) => NodeKind::Attempt,
        }
    }

    /// The run the actor belongs to, if any.
    pub fn run_id(&self) -> Option<&str> {
        match self {
            ActorPath::Run(r) | ActorPath::Scorer(r) => Some(r),
            ActorPath::Attempt(a) => Some(&a.run),
            ActorPath::Root
            | ActorPath::Journal
            | ActorPath::AlertRouter
            | ActorPath::Agents
            | ActorPath::Agent(_)
            | ActorPath::Runs => None,
        }
    }

    /// The supervisor of this actor (`None` for the root).
    pub fn parent(&self) -> Option<ActorPath> {
        Some(match self {
            ActorPath::Root => return None,
            ActorPath::Journal | ActorPath::AlertRouter | ActorPath::Agents | ActorPath::Runs => {
                ActorPath::Root
            }
            ActorPath::Agent(_) => ActorPath::Agents,
            ActorPath::Run(_) => ActorPath::Runs,
            ActorPath::Scorer(r) => ActorPath::Run(r.clone()),
            ActorPath::Attempt(a) => ActorPath::Run(a.run.clone()),
        })
    }
}

impl fmt::Display for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActorPath::Root => f.write_str("/"),
            ActorPath::Journal => f.write_str("/journal"),
            ActorPath::AlertRouter => f.write_str("/alert-router"),
            ActorPath::Agents => f.write_str("/agents"),
            ActorPath::Agent(id) => write!(f, "/agents/{id}"),
            ActorPath::Runs => f.write_str("/runs"),
            ActorPath::Run(r) => write!(f, "/runs/{r}"),
            ActorPath::Scorer(r) => write!(f, "/runs/{r}/scorer"),
            ActorPath::Attempt(a) => {
                write!(f, "/runs/{}/attempts/{}:{}", a.run, a.task, a.attempt)
            }
        }
    }
}

impl FromStr for ActorPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, PathError> {
        PathRef::parse(s)
            .map(PathRef::to_owned)
            .ok_or_else(|| PathError {
                path: s.to_string(),
            })
    }
}

impl From<AttemptRef> for ActorPath {
    fn from(a: AttemptRef) -> Self {
        ActorPath::Attempt(a)
    }
}

impl From<ActorPath> for String {
    fn from(p: ActorPath) -> String {
        p.to_string()
    }
}

impl Serialize for ActorPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ActorPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The run id inside an actor path, if any (no allocation).
pub fn run_of_path(path: &str) -> Option<&str> {
    PathRef::parse(path).and_then(PathRef::run)
}

/// `(task, n)` from an attempt's path, if it is one (no allocation).
pub fn attempt_of_path(path: &str) -> Option<(&str, u32)> {
    match PathRef::parse(path)? {
        PathRef::Attempt { task, n, .. } => Some((task, n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<ActorPath> {
        vec![
            ActorPath::Root,
            ActorPath::Journal,
            ActorPath::AlertRouter,
            ActorPath::Agents,
            ActorPath::Agent("nightly-watch".into()),
            ActorPath::Runs,
            ActorPath::run("r-261205101010-ab12"),
            ActorPath::scorer("r-1"),
            ActorPath::attempt("r-1", "lint.v2", 12),
        ]
    }

    #[test]
    fn display_and_parse_keep_the_journals_bytes() {
        let texts = [
            "/",
            "/journal",
            "/alert-router",
            "/agents",
            "/agents/nightly-watch",
            "/runs",
            "/runs/r-261205101010-ab12",
            "/runs/r-1/scorer",
            "/runs/r-1/attempts/lint.v2:12",
        ];
        for (p, text) in all().iter().zip(texts) {
            assert_eq!(p.to_string(), text);
            assert_eq!(text.parse::<ActorPath>().as_ref(), Ok(p));
            let json = serde_json::to_string(p).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<ActorPath>(&json).unwrap(), *p);
        }
    }

    #[test]
    fn kinds_parents_and_runs() {
        for p in all() {
            if let Some(parent) = p.parent() {
                assert!(p.to_string().starts_with(&parent.to_string()));
            }
            assert_eq!(p.run_id(), run_of_path(&p.to_string()));
        }
        assert_eq!(ActorPath::scorer("r").kind(), NodeKind::Scorer);
        assert_eq!(attempt_of_path("/runs/r-1/attempts/a:3"), Some(("a", 3)));
        assert_eq!(attempt_of_path("/runs/r-1/scorer"), None);
        assert_eq!(run_of_path("/runs/r-1/attempts/a:1"), Some("r-1"));
        assert_eq!(run_of_path("/runs"), None);
        assert_eq!(run_of_path("/journal"), None);
    }

    #[test]
    fn not_paths() {
        for bad in [
            "",
            "runs",
            "/runs/",
            "/runs//scorer",
            "/runs/r-1/scorers",
            "/runs/r-1/attempts/a",
            "/runs/r-1/attempts/a:",
            "/runs/r-1/attempts/a:x",
            "/runs/r-1/attempts/a:1/more",
            "/runs/r-1/attempts/:1",
            "/runs/r-1/attempts/a:b:1",
            "/agents/",
            "/agents/a/b",
            "/journal/x",
        ] {
            assert!(bad.parse::<ActorPath>().is_err(), "{bad:?}");
        }
    }
}
