//! Enforced policy: from a task's declarations and its worker's trust level
//! to what the attempt gets ([`effective`]), and from that and what the
//! host can enforce to what is applied — or a refusal ([`plan`]). Both are
//! pure functions; the attempt applies the plan (docs/security.md).
//!
//! | trust | API token | secret_env | network | writes |
//! |---|---|---|---|---|
//! | `trusted` (default) | yes | yes | as declared (default allow) | `writable_paths` if present, else anywhere |
//! | `restricted` | yes | grant `secret_env` | `loopback` at most, unless grant `network` | as trusted |
//! | `untrusted` | grant `api` | grant `secret_env` | `deny`, unless grant `network` | `writable_paths` (absent: none) |
//!
//! Writes, when confined, are also allowed in the attempt directory, its
//! private `TMPDIR` and `/dev/null`, `/dev/zero`, `/dev/tty`.

use crate::spec::{
    Enforcement, Grant, NetworkPolicy, RunSpec, SecurityPolicy, TaskSpec, TrustLevel,
};

/// What an attempt is allowed, before asking the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    pub trust: TrustLevel,
    /// `ORCA_API` / `ORCA_TOKEN`.
    pub api_token: bool,
    /// `secret_env` values (the runtime's and the task's).
    pub secrets: bool,
    pub network: NetworkPolicy,
    /// `None`: writes anywhere; `Some(paths)`: only there (relative to the
    /// task's working directory) and the attempt's own places.
    pub writable: Option<Vec<String>>,
    pub enforcement: Enforcement,
}

impl Effective {
    /// Whether anything is restricted that a host must enforce.
    pub fn confines(&self) -> bool {
        self.network != NetworkPolicy::Allow || self.writable.is_some()
    }
}

/// The stricter of two network policies.
fn stricter(a: NetworkPolicy, b: NetworkPolicy) -> NetworkPolicy {
    a.min(b)
}

/// What `task`, run by a worker of `trust`, under `policy` (the run's and
/// the task's merged), is allowed.
pub fn effective(task: &TaskSpec, trust: TrustLevel, policy: &SecurityPolicy) -> Effective {
    let declared = policy.network.unwrap_or(NetworkPolicy::Allow);
    let writable_paths = task
        .workspace
        .as_ref()
        .and_then(|w| w.writable_paths.clone());
    let granted = |g| policy.grants(g);
    let (api_token, secrets, network, writable) = match trust {
        TrustLevel::Trusted => (true, true, declared, writable_paths),
        TrustLevel::Restricted => (
            true,
            granted(Grant::SecretEnv),
            if granted(Grant::Network) {
                declared
            } else {
                stricter(declared, NetworkPolicy::Loopback)
            },
            writable_paths,
        ),
        TrustLevel::Untrusted => (
            granted(Grant::Api),
            granted(Grant::SecretEnv),
            if granted(Grant::Network) {
                declared
            } else {
                NetworkPolicy::Deny
            },
            Some(writable_paths.unwrap_or_default()),
        ),
    };
    Effective {
        trust,
        api_token,
        secrets,
        network,
        writable,
        enforcement: policy.enforcement.unwrap_or_default(),
    }
}

/// What a host can enforce for a process it starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostCaps {
    /// Landlock (writable paths).
    pub landlock: bool,
    /// New network namespaces (deny, loopback).
    pub netns: bool,
}

/// What the host applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Confine writes to these (relative to the task's working directory,
    /// plus the attempt's own places).
    pub writable: Option<Vec<String>>,
    pub network: Option<NetworkPolicy>,
    /// What was declared but is not enforced (`best_effort`), for the
    /// receipt and `orca run`.
    pub unenforced: Vec<String>,
}

/// A restriction the host cannot enforce under `strict`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} cannot be enforced on host {host}: {}; set security_policy.enforcement = \"best_effort\" to run without {}", .missing.join(" and "), .why.join("; "), if .missing.len() == 1 { "it" } else { "them" })]
pub struct Unenforceable {
    pub host: String,
    pub missing: Vec<String>,
    pub why: Vec<String>,
}

/// Decides what `host` (named for messages) applies for `eff`.
pub fn plan(eff: &Effective, host: &str, caps: HostCaps) -> Result<Plan, Unenforceable> {
    let mut p = Plan::default();
    let mut missing = Vec::new();
    let mut why = Vec::new();
    if let Some(w) = &eff.writable {
        if caps.landlock {
            p.writable = Some(w.clone());
        } else {
            missing.push(format!(
                "writable_paths ({})",
                if w.is_empty() {
                    "read-only".to_string()
                } else {
                    w.join(", ")
                }
            ));
            why.push(if host == "local" {
                "this kernel has no Landlock".to_string()
            } else {
                "orca confines writes with Landlock on local hosts only".to_string()
            });
        }
    }
    if eff.network != NetworkPolicy::Allow {
        if caps.netns {
            p.network = Some(eff.network);
        } else {
            missing.push(format!("network = \"{}\"", eff.network.as_str()));
            why.push(if host == "local" {
                "orca cannot create network namespaces here (needs CAP_SYS_ADMIN)".to_string()
            } else {
                "orca isolates networks with namespaces on local hosts only".to_string()
            });
        }
    }
    if missing.is_empty() {
        return Ok(p);
    }
    match eff.enforcement {
        Enforcement::Strict => Err(Unenforceable {
            host: host.to_string(),
            missing,
            why,
        }),
        Enforcement::BestEffort => {
            p.unenforced = missing
                .iter()
                .zip(&why)
                .map(|(m, w)| format!("not enforced (best_effort): {m} on host {host}: {w}"))
                .collect();
            Ok(p)
        }
    }
}

/// The effective policy and the host's plan for an attempt of `task` in
/// worker slot `worker` of `spec` (an implicit `local-N` slot is trusted),
/// on a host named `host` that can enforce `caps`.
pub fn for_attempt(
    spec: &RunSpec,
    task: &TaskSpec,
    worker: &str,
    host: &str,
    caps: HostCaps,
) -> Result<(Effective, Plan), Unenforceable> {
    let trust = spec
        .workers
        .iter()
        .find(|w| w.id == worker)
        .and_then(|w| w.trust_level)
        .unwrap_or_default();
    let policy =
        SecurityPolicy::merged(spec.security_policy.as_ref(), task.security_policy.as_ref());
    let eff = effective(task, trust, &policy);
    let p = plan(&eff, host, caps)?;
    Ok((eff, p))
}

/// For the receipt of a confined attempt that failed: the write its
/// confinement denied (EACCES from Landlock reads "Permission denied"), if
/// its stderr shows one.
pub fn denial_note(
    writable: &[String],
    exit_code: Option<i32>,
    stderr_tail: &str,
) -> Option<String> {
    if exit_code == Some(0) {
        return None;
    }
    let line = stderr_tail
        .lines()
        .rev()
        .find(|l| l.contains("Permission denied") || l.contains("Operation not permitted"))?;
    let allowed = if writable.is_empty() {
        "nowhere in the workspace".to_string()
    } else {
        writable.join(", ")
    };
    Some(format!(
        "write denied by the Landlock confinement (writable_paths: {allowed}; plus the attempt \
         directory and TMPDIR): {}",
        crate::model::bounded(line.trim(), 200)
    ))
}

impl Plan {
    /// What the host is asked to enforce.
    pub fn confine(&self) -> crate::host::sandbox::Confine {
        crate::host::sandbox::Confine {
            writable: self.writable.clone(),
            network: self.network,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::WorkspaceRequirements;

    fn task(writable: Option<&[&str]>) -> TaskSpec {
        TaskSpec {
            id: "t".into(),
            workspace: Some(WorkspaceRequirements {
                writable_paths: writable.map(|w| w.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn policy(network: Option<NetworkPolicy>, grants: &[Grant]) -> SecurityPolicy {
        SecurityPolicy {
            network,
            grants: grants.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn trusted_is_todays_behaviour_unless_declared() {
        let e = effective(&task(None), TrustLevel::Trusted, &policy(None, &[]));
        assert!(e.api_token && e.secrets);
        assert_eq!(
            (e.network, e.writable.clone()),
            (NetworkPolicy::Allow, None)
        );
        assert!(!e.confines());
        let e = effective(&task(Some(&[])), TrustLevel::Trusted, &policy(None, &[]));
        assert_eq!(e.writable, Some(vec![]), "present, even empty, confines");
    }

    #[test]
    fn restricted_and_untrusted_withhold_unless_granted() {
        let r = effective(&task(None), TrustLevel::Restricted, &policy(None, &[]));
        assert!(r.api_token && !r.secrets);
        assert_eq!(
            (r.network, r.writable.clone()),
            (NetworkPolicy::Loopback, None)
        );
        let r = effective(
            &task(None),
            TrustLevel::Restricted,
            &policy(Some(NetworkPolicy::Deny), &[]),
        );
        assert_eq!(
            r.network,
            NetworkPolicy::Deny,
            "a stricter declaration holds"
        );
        let u = effective(
            &task(Some(&["out"])),
            TrustLevel::Untrusted,
            &policy(None, &[]),
        );
        assert!(!u.api_token && !u.secrets);
        assert_eq!(u.network, NetworkPolicy::Deny);
        assert_eq!(u.writable, Some(vec!["out".to_string()]));
        let u = effective(&task(None), TrustLevel::Untrusted, &policy(None, &[]));
        assert_eq!(u.writable, Some(vec![]), "read-only workspace");
        let g = effective(
            &task(None),
            TrustLevel::Untrusted,
            &policy(
                Some(NetworkPolicy::Loopback),
                &[Grant::Api, Grant::SecretEnv, Grant::Network],
            ),
        );
        assert!(g.api_token && g.secrets);
        assert_eq!(g.network, NetworkPolicy::Loopback);
    }

    #[test]
    fn a_host_that_cannot_enforce_refuses_unless_best_effort() {
        let full = HostCaps {
            landlock: true,
            netns: true,
        };
        let mut e = effective(
            &task(Some(&["out"])),
            TrustLevel::Untrusted,
            &policy(None, &[]),
        );
        let p = plan(&e, "local", full).unwrap();
        assert_eq!(p.writable, Some(vec!["out".to_string()]));
        assert_eq!(p.network, Some(NetworkPolicy::Deny));
        assert!(p.unenforced.is_empty());
        let err = plan(&e, "build-1", HostCaps::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "writable_paths (out) and network = \"deny\" cannot be enforced on host build-1"
            ),
            "{text}"
        );
        assert!(text.contains("best_effort"), "{text}");
        e.enforcement = Enforcement::BestEffort;
        let p = plan(&e, "build-1", HostCaps::default()).unwrap();
        assert_eq!((p.writable.clone(), p.network), (None, None));
        assert_eq!(p.unenforced.len(), 2, "{:?}", p.unenforced);
        // Nothing declared: nothing to enforce anywhere.
        let t = effective(&task(None), TrustLevel::Trusted, &policy(None, &[]));
        assert_eq!(
            plan(&t, "build-1", HostCaps::default()).unwrap(),
            Plan::default()
        );
    }

    #[test]
    fn a_denied_write_is_named_for_the_receipt() {
        let tail = "starting\nsh: 1: cannot create /tmp/x: Permission denied\n";
        let n = denial_note(&["out".into()], Some(2), tail).unwrap();
        assert!(
            n.contains("writable_paths: out") && n.ends_with("/tmp/x: Permission denied"),
            "{n}"
        );
        assert_eq!(denial_note(&[], Some(0), tail), None);
        assert_eq!(denial_note(&[], Some(1), "no such file"), None);
    }

    #[test]
    fn task_policy_wins_field_by_field() {
        let run = policy(Some(NetworkPolicy::Deny), &[Grant::Api]);
        let task = SecurityPolicy {
            network: Some(NetworkPolicy::Loopback),
            enforcement: Some(Enforcement::BestEffort),
            grants: vec![Grant::SecretEnv],
            ..Default::default()
        };
        let m = SecurityPolicy::merged(Some(&run), Some(&task));
        assert_eq!(m.network, Some(NetworkPolicy::Loopback));
        assert_eq!(m.enforcement, Some(Enforcement::BestEffort));
        assert_eq!(m.grants, [Grant::Api, Grant::SecretEnv]);
    }
}
