//! orca's shared vocabulary: ids, timestamps, results, failure classes,
//! artifact refs and receipts.
//!
//! These types travel in journal events (bincode, not self-describing) and in
//! JSON views, so they follow the journal's rules: plain structs and
//! externally tagged enums, no `#[serde(flatten)]`, no untagged enums, no
//! `skip_serializing_if`. They import neither ractor nor tokio.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest spec id orca accepts (ids become directory names).
pub const MAX_ID_LEN: usize = 128;

/// Human description of the id rule, used in validation messages.
pub const ID_RULE: &str =
    "1-128 characters from [A-Za-z0-9._-], not starting with '.' (ids become directory names)";

/// Whether `s` is a valid task / worker / agent id:
/// `[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}`.
pub fn is_valid_id(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_ID_LEN || bytes[0] == b'.' {
        return false;
    }
    bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A new run id: `r-` plus a time-ordered suffix (`r-YYMMDDHHMMSS-xxxx`,
/// UTC, with 16 random bits so two runs in the same second differ).
pub fn new_run_id(now: Timestamp) -> String {
    let dt = now.to_datetime();
    let random = (uuid::Uuid::new_v4().as_u128() & 0xffff) as u16;
    format!("r-{}-{random:04x}", dt.format("%y%m%d%H%M%S"))
}

/// A point in time, stored as i64 Unix nanoseconds (UTC).
///
/// Serializes as the integer in binary formats (the journal) and as an
/// RFC 3339 string in human-readable ones (JSON views, receipts on disk).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(chrono::Utc::now())
    }

    pub fn from_datetime(dt: chrono::DateTime<chrono::Utc>) -> Self {
        // Out of range only after the year 2262.
        Self(dt.timestamp_nanos_opt().unwrap_or(i64::MAX))
    }

    pub fn to_datetime(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_nanos(self.0)
    }

    pub fn nanos(self) -> i64 {
        self.0
    }

    /// RFC 3339 with millisecond precision (`2026-11-21T07:24:00.123Z`).
    pub fn rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// `self + ms` milliseconds, saturating.
    pub fn plus_millis(self, ms: u64) -> Self {
        Self(
            self.0.saturating_add(
                i64::try_from(ms)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000),
            ),
        )
    }

    /// `self - ms` milliseconds, saturating.
    pub fn minus_millis(self, ms: u64) -> Self {
        Self(
            self.0.saturating_sub(
                i64::try_from(ms)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000),
            ),
        )
    }

    /// Milliseconds from `earlier` to `self` (0 when `earlier` is later).
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0) / 1_000_000).unwrap_or(0)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            // Exact (AutoSi keeps only the digits needed), so JSON views
            // parse back to the same value.
            s.serialize_str(
                &self
                    .to_datetime()
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            )
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Timestamp;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an RFC 3339 timestamp or Unix nanoseconds")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                    chrono::DateTime::parse_from_rfc3339(v)
                        .map(|dt| Timestamp::from_datetime(dt.with_timezone(&chrono::Utc)))
                        .map_err(|e| E::custom(format!("invalid RFC 3339 timestamp {v:?}: {e}")))
                }
                fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                    Ok(Timestamp(v))
                }
                fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                    i64::try_from(v)
                        .map(Timestamp)
                        .map_err(|_| E::custom("timestamp out of range"))
                }
            }
            d.deserialize_any(V)
        } else {
            i64::deserialize(d).map(Timestamp)
        }
    }
}

macro_rules! snake_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case name used in specs, JSON and the CLI.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the snake_case name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

snake_enum! {
    /// How an attempt failed, which decides whether it is retried
    /// (DESIGN.md's retry table).
    FailureClass {
        /// Transport error, lost connection, stale heartbeat, an agent runtime
        /// exiting 75, or an interruption by orca itself.
        Transient => "transient",
        /// `timeout_seconds` reached.
        Timeout => "timeout",
        /// Non-zero exit, error event, missing artifact, budget exceeded.
        Task => "task",
        /// The scorer failed, errored or timed out.
        Verifier => "verifier",
        /// A needs_human signal, or run intensity exceeded: never retried.
        NeedsHuman => "needs_human",
    }
}

snake_enum! {
    /// The result recorded in a receipt.
    AttemptResult {
        Pass => "pass",
        /// Awaiting a manual verdict (or a partial score).
        Partial => "partial",
        Fail => "fail",
        /// Not run to an end: cancelled by the operator.
        Skip => "skip",
        Timeout => "timeout",
    }
}

snake_enum! {
    /// Where a failure came from, as the seed's receipts say it.
    FailureSource {
        Transport => "transport",
        Task => "task",
        Verifier => "verifier",
    }
}

snake_enum! {
    /// Typed alert event classes (the seed's routes match these, never log
    /// strings).
    AlertClass {
        Stale => "stale",
        RestartExhausted => "restart_exhausted",
        NeedsHuman => "needs_human",
        BudgetExceeded => "budget_exceeded",
        VerifierFailed => "verifier_failed",
        RunCompleted => "run_completed",
    }
}

impl AlertClass {
    /// Whether the class is a *condition*: it stays firing until something
    /// answers it (and is then resolved), rather than a one-shot event.
    /// `stale` clears when the attempt speaks again or ends; `needs_human`
    /// when a verdict, restart or stop answers it; `budget_exceeded` and
    /// `restart_exhausted` when the task is restarted. `verifier_failed`
    /// and `run_completed` are one-shot.
    pub fn is_condition(self) -> bool {
        !matches!(self, AlertClass::VerifierFailed | AlertClass::RunCompleted)
    }

    /// The severity an alert of this class has unless the adapter or the
    /// task's `alert_policy` says otherwise.
    pub fn default_severity(self) -> AlertSeverity {
        match self {
            AlertClass::NeedsHuman | AlertClass::RestartExhausted => AlertSeverity::Error,
            AlertClass::Stale | AlertClass::BudgetExceeded | AlertClass::VerifierFailed => {
                AlertSeverity::Warning
            }
            AlertClass::RunCompleted => AlertSeverity::Info,
        }
    }
}

snake_enum! {
    /// How urgent an alert is: PagerDuty Events API v2's severities, also
    /// shown in Slack and webhook payloads.
    AlertSeverity {
        Critical => "critical",
        Error => "error",
        Warning => "warning",
        Info => "info",
    }
}

snake_enum! {
    /// Which surface asked for an action; journaled with every operator action.
    Surface {
        Cli => "cli",
        Api => "api",
        /// orca itself (recovery, policy).
        Orca => "orca",
        /// A worker through its per-attempt token.
        Worker => "worker",
        /// An always-on agent identity.
        Agent => "agent",
        /// The web console (`orca ui`), through its session cookie.
        Web => "web",
    }
}

snake_enum! {
    /// The state of a run.
    RunStatus {
        Queued => "queued",
        Running => "running",
        /// Leasing stopped by the operator; running attempts go on.
        Paused => "paused",
        /// Every task passed.
        Passed => "passed",
        /// Some task failed or timed out.
        Failed => "failed",
        /// No failures, but some receipt awaits a manual verdict.
        AwaitingVerdict => "awaiting_verdict",
        /// Cancelled by the operator.
        Cancelled => "cancelled",
        /// Past its supervision intensity.
        Escalated => "escalated",
    }
}

impl RunStatus {
    /// Whether the run has ended (no more attempts will start on their own).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Passed
                | RunStatus::Failed
                | RunStatus::AwaitingVerdict
                | RunStatus::Cancelled
                | RunStatus::Escalated
        )
    }
}

snake_enum! {
    /// A supervisor's restart strategy (Erlang/OTP's).
    Strategy {
        OneForOne => "one_for_one",
        OneForAll => "one_for_all",
        RestForOne => "rest_for_one",
    }
}

snake_enum! {
    /// A child's restart type (Erlang/OTP's).
    RestartType {
        /// Always restarted, even after a normal end.
        Permanent => "permanent",
        /// Restarted only after an abnormal end.
        Transient => "transient",
        /// Never restarted.
        Temporary => "temporary",
    }
}

snake_enum! {
    /// The kind of a node in the supervision tree.
    NodeKind {
        Root => "root",
        Journal => "journal",
        AlertRouter => "alert_router",
        Agents => "agents",
        Agent => "agent",
        Runs => "runs",
        Run => "run",
        Attempt => "attempt",
        Scorer => "scorer",
    }
}

snake_enum! {
    /// A manual verdict.
    Verdict {
        Pass => "pass",
        Fail => "fail",
    }
}

/// Identifies one attempt of one task of one run. Displayed as
/// `<run>:<task>:<n>`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct AttemptRef {
    pub run: String,
    pub task: String,
    /// Numbered from 1 per task.
    pub attempt: u32,
}

impl AttemptRef {
    pub fn new(run: impl Into<String>, task: impl Into<String>, attempt: u32) -> Self {
        Self {
            run: run.into(),
            task: task.into(),
            attempt,
        }
    }

    /// The attempt actor's path: `/runs/<run>/attempts/<task>:<n>`.
    pub fn actor_path(&self) -> crate::path::ActorPath {
        crate::path::ActorPath::Attempt(self.clone())
    }
}

impl fmt::Display for AttemptRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.run, self.task, self.attempt)
    }
}

/// A reference to an artifact: the journal records refs, never contents.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// `log`, `receipt`, `report`, `patch`, … (any string).
    pub kind: String,
    /// Relative to the workspace root.
    pub path: String,
    /// Lowercase hex SHA-256 of the contents.
    pub sha256: String,
    pub mime: String,
    pub size: u64,
}

/// A score given by a scorer.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Score {
    pub value: f64,
    pub max: f64,
    pub notes: String,
}

/// A manual verdict that amends a receipt.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct VerdictRecord {
    pub verdict: Verdict,
    /// Who gave it (user name, or the surface's identity).
    pub who: String,
    pub at: Timestamp,
    pub note: String,
}

/// The record of one finished attempt. There is exactly one receipt per
/// attempt; a manual verdict amends it.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Receipt {
    pub run: String,
    pub task: String,
    /// The worker slot (`local-1`, a declared worker id).
    pub worker: String,
    pub attempt: u32,
    pub result: AttemptResult,
    /// Set when the result is not `pass`.
    pub failure_source: Option<FailureSource>,
    /// The class that decided retrying, when the attempt failed.
    pub class: Option<FailureClass>,
    pub score: Option<Score>,
    pub exit_code: Option<i32>,
    /// The signal that ended the process, if any.
    pub signal: Option<i32>,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub duration_ms: u64,
    pub artifacts: Vec<ArtifactRef>,
    /// Short, bounded, secrets redacted.
    pub summary: String,
    /// A manual verdict, once given.
    pub verdict: Option<VerdictRecord>,
}

/// A positive number of seconds as a `Duration`; `None` for zero, a
/// negative number, NaN, or more than a `Duration` holds (input from a flag
/// or a query string, never a panic).
pub fn positive_seconds(secs: f64) -> Option<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
}

/// Bounds a free-text summary to `max` bytes on a char boundary, marking the
/// cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(3);
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rule() {
        for ok in ["a", "lint", "A-b_c.d", "-x", "_", &"a".repeat(128)] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "a/b",
            "a b",
            "ü",
            &"a".repeat(129),
            "..",
            "a\n",
        ] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn run_ids_are_time_ordered_and_valid() {
        let a = new_run_id(Timestamp(1_700_000_000_000_000_000));
        let b = new_run_id(Timestamp(1_700_000_001_000_000_000));
        assert!(a.starts_with("r-") && is_valid_id(&a), "{a}");
        assert!(a[..15] < b[..15], "{a} {b}");
    }

    #[test]
    fn timestamp_serializes_per_format() {
        let t = Timestamp(1_700_000_000_123_000_000);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2023-11-14T22:13:20.123Z\"");
        let exact = Timestamp(1_700_000_000_123_456_789);
        let json = serde_json::to_string(&exact).unwrap();
        assert_eq!(json, "\"2023-11-14T22:13:20.123456789Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), exact);
        let bin = bincode::serde::encode_to_vec(t, bincode::config::standard()).unwrap();
        let (back, _): (Timestamp, _) =
            bincode::serde::decode_from_slice(&bin, bincode::config::standard()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn enums_round_trip_names() {
        for c in FailureClass::ALL {
            assert_eq!(FailureClass::parse(c.as_str()), Some(*c));
            assert_eq!(serde_json::to_string(c).unwrap(), format!("\"{c}\""));
        }
        assert_eq!(Strategy::parse("rest_for_one"), Some(Strategy::RestForOne));
    }

    #[test]
    fn bounded_cuts_on_char_boundary() {
        assert_eq!(bounded("hello", 10), "hello");
        let cut = bounded("ééééé", 6);
        assert!(cut.len() <= 6 && cut.ends_with("..."), "{cut}");
    }
}
