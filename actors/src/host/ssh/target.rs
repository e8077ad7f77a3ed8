//! Where and how to reach an ssh host: the worker spec's fields with their
//! defaults filled in and paths resolved.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::spec::{SshHost, DEFAULT_SSH_MAX_SESSIONS, DEFAULT_SSH_PORT};

/// Connects give up after this long (TCP, key exchange and authentication).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Channels kept beside the task channels for control commands (kills,
/// liveness checks, SFTP, cleanup): OpenSSH's default MaxSessions is 10.
pub const CONTROL_CHANNELS: u32 = 2;

/// How the host's key is checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostKeyCheck {
    /// Against a known_hosts file.
    KnownHosts(PathBuf),
    /// Against a pinned `SHA256:…` fingerprint.
    Fingerprint(String),
    /// Not at all (`insecure_accept_any_host_key`, labs only).
    Insecure,
}

/// One ssh host as orca connects to it. Equal targets share a connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Private key file.
    pub identity: PathBuf,
    pub check: HostKeyCheck,
}

impl Target {
    /// Fills the defaults in: the local user, `~/.ssh/id_ed25519` (else
    /// `~/.ssh/id_rsa`), `~/.ssh/known_hosts`. `~/` is the local home;
    /// relative paths are relative to the workspace root.
    pub fn from_spec(spec: &SshHost, workspace_root: &Path) -> Result<Self, String> {
        let host = spec
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .ok_or("an ssh host requires `host`")?;
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let resolve = |p: &str| -> PathBuf {
            match (p.strip_prefix("~/"), &home) {
                (Some(rest), Some(h)) => h.join(rest),
                _ if Path::new(p).is_absolute() => PathBuf::from(p),
                _ => workspace_root.join(p),
            }
        };
        let identity = match &spec.identity {
            Some(p) => resolve(p),
            None => {
                let ssh = home
                    .as_ref()
                    .map(|h| h.join(".ssh"))
                    .ok_or("no `identity` and no HOME to look for ~/.ssh/id_ed25519 in")?;
                let ed = ssh.join("id_ed25519");
                if ed.exists() {
                    ed
                } else {
                    ssh.join("id_rsa")
                }
            }
        };
        let check = if let Some(fp) = &spec.host_key_fingerprint {
            HostKeyCheck::Fingerprint(normalize_fingerprint(fp))
        } else if spec.insecure_accept_any_host_key {
            HostKeyCheck::Insecure
        } else {
            match &spec.known_hosts {
                Some(p) => HostKeyCheck::KnownHosts(resolve(p)),
                None => HostKeyCheck::KnownHosts(
                    home.map(|h| h.join(".ssh/known_hosts"))
                        .ok_or("no `known_hosts` and no HOME to find ~/.ssh/known_hosts in")?,
                ),
            }
        };
        let user = match &spec.user {
            Some(u) if !u.is_empty() => u.clone(),
            _ => std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .map_err(|_| "no `user` and no USER in orca's environment")?,
        };
        Ok(Self {
            host,
            port: spec.port.unwrap_or(DEFAULT_SSH_PORT),
            user,
            identity,
            check,
        })
    }

    /// `user@host:port`.
    pub fn display(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

/// Task channels of a host spec (default 8, at least 1).
pub fn max_sessions(spec: &SshHost) -> u32 {
    spec.max_sessions.unwrap_or(DEFAULT_SSH_MAX_SESSIONS).max(1)
}

/// `SHA256:abc=` and ` SHA256:abc ` are the same pin (ssh-keygen prints no
/// padding).
pub fn normalize_fingerprint(fp: &str) -> String {
    fp.trim().trim_end_matches('=').to_string()
}

/// Joins POSIX paths on the host (`rel` may be empty).
pub fn join(base: &str, rel: &Path) -> String {
    let rel = rel.to_string_lossy();
    let rel = rel.trim_start_matches("./").trim_matches('/');
    let base = base.trim_end_matches('/');
    match (base.is_empty(), rel.is_empty() || rel == ".") {
        (_, true) if base.is_empty() => "/".into(),
        (_, true) => base.to_string(),
        (true, false) => format!("/{rel}"),
        (false, false) => format!("{base}/{rel}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_paths() {
        let spec = SshHost {
            host: Some("build-1".into()),
            user: Some("ci".into()),
            identity: Some("keys/id".into()),
            known_hosts: Some("/etc/orca/known_hosts".into()),
            ..Default::default()
        };
        let t = Target::from_spec(&spec, Path::new("/ws")).unwrap();
        assert_eq!(t.display(), "ci@build-1:22");
        assert_eq!(t.identity, PathBuf::from("/ws/keys/id"));
        assert_eq!(
            t.check,
            HostKeyCheck::KnownHosts("/etc/orca/known_hosts".into())
        );
        let pinned = SshHost {
            host_key_fingerprint: Some(" SHA256:abc= ".into()),
            insecure_accept_any_host_key: true,
            ..spec.clone()
        };
        assert_eq!(
            Target::from_spec(&pinned, Path::new("/ws")).unwrap().check,
            HostKeyCheck::Fingerprint("SHA256:abc".into()),
            "a pin wins over the insecure switch"
        );
        let none = SshHost { host: None, ..spec };
        assert!(Target::from_spec(&none, Path::new("/ws")).is_err());
    }

    #[test]
    fn the_seeds_codewhale_binary_is_the_binary() {
        use crate::spec::{check_str, Format, HostSpec, ValidateContext};
        let text = r#"
[[tasks]]
id = "t"
instructions = "Summarize."
[[workers]]
id = "w"
[workers.host]
kind = "ssh"
host = "h"
identity = "k"
working_directory = "/w"
codewhale_binary = "/opt/cw"
keep_remote_attempt_dirs = true
"#;
        let ctx = ValidateContext::default();
        let spec = match check_str(text, Format::Toml, "t.toml", &ctx).into_result() {
            Ok(v) => v.spec,
            Err(e) => panic!("{e}"),
        };
        let HostSpec::Ssh(h) = &spec.workers[0].host else {
            panic!("not ssh")
        };
        assert_eq!(h.binary.as_deref(), Some("/opt/cw"));
        assert!(h.keep_remote_attempt_dirs);
        // Without it, validation names the field.
        let err = match check_str(
            &text.replace("codewhale_binary = \"/opt/cw\"\n", ""),
            Format::Toml,
            "t.toml",
            &ctx,
        )
        .into_result()
        {
            Ok(_) => panic!("accepted without binary"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("workers[0].host") && err.contains("`binary`"),
            "{err}"
        );
    }

    #[test]
    fn posix_joins() {
        assert_eq!(join("/srv/repo", Path::new("")), "/srv/repo");
        assert_eq!(
            join("/srv/repo/", Path::new("sub/dir")),
            "/srv/repo/sub/dir"
        );
        assert_eq!(
            join("/srv/repo", Path::new(".orca/runs/r/t/1")),
            "/srv/repo/.orca/runs/r/t/1"
        );
        assert_eq!(join("/", Path::new("x")), "/x");
    }
}
