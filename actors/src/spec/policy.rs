//! Policy shapes: a worker's `trust_level`, a run's (or a task's)
//! `security_policy = {network, enforcement, grants}` (docs/spec.md,
//! docs/security.md). `workspace.writable_paths` lives with the task's
//! workspace requirements: absent means unrestricted, present (even empty)
//! means confined.

use serde::{Deserialize, Serialize};

use super::types::Extra;

/// How far orca trusts a worker (default `trusted`: today's behaviour).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustLevel {
    /// No API token, no `secret_env`, the workspace read-only (only its
    /// `writable_paths`), network `deny` — unless granted.
    Untrusted,
    /// No `secret_env` and network `loopback`, unless granted.
    Restricted,
    #[default]
    Trusted,
}

impl TrustLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustLevel::Untrusted => "untrusted",
            TrustLevel::Restricted => "restricted",
            TrustLevel::Trusted => "trusted",
        }
    }
}

/// What network an attempt gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkPolicy {
    /// A network namespace with no interface at all.
    Deny,
    /// A network namespace with only `lo` (up).
    Loopback,
    /// The host's network.
    Allow,
}

impl NetworkPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkPolicy::Deny => "deny",
            NetworkPolicy::Loopback => "loopback",
            NetworkPolicy::Allow => "allow",
        }
    }
}

/// What happens when the host cannot enforce a declared restriction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// The attempt does not start (a clear error, source task).
    #[default]
    Strict,
    /// The attempt runs; `orca run` warns and the receipt names what was
    /// not enforced.
    BestEffort,
}

/// A capability grant: explicitly widens what a worker's trust level
/// withholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// `ORCA_API` and a per-attempt `ORCA_TOKEN` (untrusted workers).
    Api,
    /// `[runtime]` and task `secret_env` values (untrusted and restricted).
    SecretEnv,
    /// The policy's `network` as declared, not the trust level's default.
    Network,
}

impl Grant {
    pub const ALL: &'static [&'static str] = &["api", "secret_env", "network"];
}

/// `security_policy` on a run (every task) or a task (each field it sets
/// wins over the run's).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SecurityPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Grant>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl SecurityPolicy {
    /// The task's policy over the run's: each field the task sets wins;
    /// grants are the union.
    pub fn merged(run: Option<&SecurityPolicy>, task: Option<&SecurityPolicy>) -> SecurityPolicy {
        let mut out = run.cloned().unwrap_or_default();
        if let Some(t) = task {
            out.network = t.network.or(out.network);
            out.enforcement = t.enforcement.or(out.enforcement);
            for g in &t.grants {
                if !out.grants.contains(g) {
                    out.grants.push(*g);
                }
            }
        }
        out
    }

    pub fn grants(&self, g: Grant) -> bool {
        self.grants.contains(&g)
    }
}
