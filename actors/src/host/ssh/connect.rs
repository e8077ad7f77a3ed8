//! Opening one authenticated SSH connection: TCP with TCP_NODELAY, the
//! host key check, key authentication, all within the connect timeout.
//!
//! known_hosts files and the insecure lab switch go through
//! async-ssh2-tokio's client and its own key checks; a pinned SHA256
//! fingerprint needs a russh [`Handler`](russh::client::Handler) of orca's
//! own ([`PinCheck`]). Either way the result is a [`Session`] that hands
//! out russh channels, on which orca sends env requests and streams output.
//! An unknown or changed key fails the connect before authentication, so
//! no command ever runs on a host that was not recognised.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_ssh2_tokio::client::{AuthMethod, Client, ServerCheckMethod};
use russh::client::{Handle, Msg};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::Channel;

use super::target::{normalize_fingerprint, HostKeyCheck, Target};

/// Why a connect failed. Every one is a transport failure for the attempt.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("connecting to {target} timed out after {after:?}")]
    Timeout { target: String, after: Duration },
    #[error(
        "unknown host key: {target} has no entry in {file}, so its key cannot be checked \
         (no command ran); verify the host's fingerprint out of band, then add it \
         (`ssh-keyscan -p {port} {host} >> {file}`) or pin it with `host_key_fingerprint`"
    )]
    UnknownHost {
        target: String,
        host: String,
        port: u16,
        file: String,
    },
    #[error(
        "host key mismatch: the key {target} offered does not match {file}{lines} — the host \
         key changed or someone is in the middle (no command ran); if the change is expected, \
         replace the entry"
    )]
    HostKeyChanged {
        target: String,
        file: String,
        lines: String,
    },
    #[error(
        "host key mismatch: {target} offered {offered}, but the worker pins {pinned} \
         (no command ran)"
    )]
    FingerprintMismatch {
        target: String,
        pinned: String,
        offered: String,
    },
    #[error("cannot use the identity {path}: {reason}")]
    Identity { path: String, reason: String },
    #[error("authentication failed: {target} refused the key {identity} (wrong user or key?)")]
    Auth { target: String, identity: String },
    #[error("ssh connection to {target} failed: {reason}")]
    Ssh { target: String, reason: String },
}

/// A channel the server did not open.
#[derive(Debug)]
pub struct OpenError {
    /// The server answered with an open failure (as opposed to a broken
    /// connection).
    pub refused: bool,
    pub reason: String,
}

/// The pinned-fingerprint check. Records what the host offered, for the
/// error message.
pub struct PinCheck {
    pinned: String,
    offered: Arc<Mutex<Option<String>>>,
}

impl russh::client::Handler for PinCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, Self::Error> {
        let offered = key.fingerprint(HashAlg::Sha256).to_string();
        let ok = normalize_fingerprint(&offered) == self.pinned;
        if let Ok(mut slot) = self.offered.lock() {
            *slot = Some(offered);
        }
        Ok(ok)
    }
}

/// An authenticated connection.
pub enum Session {
    /// Through async-ssh2-tokio (known_hosts, or no check).
    Lib(Client),
    /// Through orca's own handler (pinned fingerprint).
    Pinned(Handle<PinCheck>),
}

impl Session {
    /// Opens a session channel.
    pub async fn channel(&self) -> Result<Channel<Msg>, OpenError> {
        let r = match self {
            Session::Lib(c) => c.get_channel().await.map_err(|e| match e {
                async_ssh2_tokio::Error::SshError(e) => e,
                other => russh::Error::from(std::io::Error::other(other.to_string())),
            }),
            Session::Pinned(h) => h.channel_open_session().await,
        };
        r.map_err(|e| OpenError {
            refused: matches!(e, russh::Error::ChannelOpenFailure(_)),
            reason: e.to_string(),
        })
    }

    pub fn is_closed(&self) -> bool {
        match self {
            Session::Lib(c) => c.is_closed(),
            Session::Pinned(h) => h.is_closed(),
        }
    }

    /// Closes the connection (channels on it end).
    pub async fn disconnect(&self) {
        match self {
            Session::Lib(c) => {
                let _ = c.disconnect().await;
            }
            Session::Pinned(h) => {
                let _ = h.disconnect(russh::Disconnect::ByApplication, "", "").await;
            }
        }
    }
}

/// Resolved addresses, with the name the host was given by (known_hosts
/// entries are looked up by that name).
struct Resolved {
    addrs: Vec<SocketAddr>,
    host: String,
}

impl async_ssh2_tokio::ToSocketAddrsWithHostname for Resolved {
    fn to_socket_addrs(&self) -> std::io::Result<Vec<SocketAddr>> {
        Ok(self.addrs.clone())
    }
    fn hostname(&self) -> String {
        self.host.clone()
    }
}

fn config() -> russh::client::Config {
    russh::client::Config {
        // Without it every exec on loopback costs ~45 ms more (Nagle +
        // delayed ACKs).
        nodelay: true,
        // Notices a dead peer that never closed the TCP connection.
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        ..Default::default()
    }
}

/// Connects and authenticates, within `timeout`.
pub async fn connect(t: &Target, timeout: Duration) -> Result<Session, ConnectError> {
    match tokio::time::timeout(timeout, connect_inner(t)).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Timeout {
            target: t.display(),
            after: timeout,
        }),
    }
}

async fn connect_inner(t: &Target) -> Result<Session, ConnectError> {
    // The key first: a missing or encrypted key fails without touching the
    // network, and nothing can ever prompt for a passphrase.
    let (key_text, key) = load_identity(&t.identity).await?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((t.host.as_str(), t.port))
        .await
        .map_err(|e| ConnectError::Resolve {
            host: t.host.clone(),
            reason: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(ConnectError::Resolve {
            host: t.host.clone(),
            reason: "no addresses".into(),
        });
    }
    match &t.check {
        HostKeyCheck::Fingerprint(pinned) => connect_pinned(t, &addrs, pinned, key).await,
        HostKeyCheck::KnownHosts(file) => {
            let check = ServerCheckMethod::with_known_hosts_file(&file.to_string_lossy());
            connect_lib(t, addrs, check, &key_text, Some(file)).await
        }
        HostKeyCheck::Insecure => {
            tracing::warn!(
                host = %t.display(),
                "connecting without checking the host key (insecure_accept_any_host_key): \
                 a man-in-the-middle would go unnoticed"
            );
            connect_lib(t, addrs, ServerCheckMethod::NoCheck, &key_text, None).await
        }
    }
}

async fn load_identity(path: &Path) -> Result<(String, PrivateKey), ConnectError> {
    let err = |reason: String| ConnectError::Identity {
        path: path.display().to_string(),
        reason,
    };
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| err(e.to_string()))?;
    let key = russh::keys::decode_secret_key(&text, None).map_err(|e| {
        err(format!(
            "{e} (orca never prompts: use a key without a passphrase, readable by orca)"
        ))
    })?;
    Ok((text, key))
}

async fn connect_lib(
    t: &Target,
    addrs: Vec<SocketAddr>,
    check: ServerCheckMethod,
    key_text: &str,
    known_hosts: Option<&PathBuf>,
) -> Result<Session, ConnectError> {
    let addr = Resolved {
        addrs,
        host: t.host.clone(),
    };
    let auth = AuthMethod::with_key(key_text, None);
    match Client::connect_with_config(addr, &t.user, auth, check, config()).await {
        Ok(c) => Ok(Session::Lib(c)),
        Err(e) => Err(lib_error(t, e, known_hosts)),
    }
}

fn lib_error(
    t: &Target,
    e: async_ssh2_tokio::Error,
    known_hosts: Option<&PathBuf>,
) -> ConnectError {
    use async_ssh2_tokio::Error as E;
    let target = t.display();
    let file = known_hosts
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    // The entries for this host, to tell an unknown host from a changed key.
    let entries = || -> Vec<usize> {
        known_hosts
            .and_then(|p| russh::keys::known_hosts::known_host_keys_path(&t.host, t.port, p).ok())
            .map(|v| v.into_iter().map(|(line, _)| line).collect())
            .unwrap_or_default()
    };
    match e {
        E::SshError(russh::Error::UnknownKey) | E::ServerCheckFailed => {
            let lines = entries();
            if lines.is_empty() {
                ConnectError::UnknownHost {
                    target,
                    host: t.host.clone(),
                    port: t.port,
                    file,
                }
            } else {
                ConnectError::HostKeyChanged {
                    target,
                    file,
                    lines: format!(
                        " (line{} {})",
                        if lines.len() == 1 { "" } else { "s" },
                        lines
                            .iter()
                            .map(usize::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            }
        }
        E::KeyAuthFailed => ConnectError::Auth {
            target,
            identity: t.identity.display().to_string(),
        },
        E::KeyInvalid(e) => ConnectError::Identity {
            path: t.identity.display().to_string(),
            reason: e.to_string(),
        },
        E::SshError(russh::Error::IO(e)) => ConnectError::Connect {
            target,
            reason: e.to_string(),
        },
        E::AddressInvalid(e) => ConnectError::Resolve {
            host: t.host.clone(),
            reason: e.to_string(),
        },
        other => ConnectError::Ssh {
            target,
            reason: other.to_string(),
        },
    }
}

async fn connect_pinned(
    t: &Target,
    addrs: &[SocketAddr],
    pinned: &str,
    key: PrivateKey,
) -> Result<Session, ConnectError> {
    let target = t.display();
    let mut last = None;
    let mut stream = None;
    for a in addrs {
        match tokio::net::TcpStream::connect(a).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(stream) = stream else {
        return Err(ConnectError::Connect {
            target,
            reason: last.map(|e| e.to_string()).unwrap_or_default(),
        });
    };
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    let offered = Arc::new(Mutex::new(None));
    let handler = PinCheck {
        pinned: pinned.to_string(),
        offered: offered.clone(),
    };
    let mut handle = match russh::client::connect_stream(Arc::new(config()), stream, handler).await
    {
        Ok(h) => h,
        Err(russh::Error::UnknownKey) => {
            return Err(ConnectError::FingerprintMismatch {
                target,
                pinned: pinned.to_string(),
                offered: offered
                    .lock()
                    .ok()
                    .and_then(|o| o.clone())
                    .unwrap_or_else(|| "an unreadable key".into()),
            })
        }
        Err(e) => {
            return Err(ConnectError::Ssh {
                target,
                reason: e.to_string(),
            })
        }
    };
    let ssh_err = |e: russh::Error| ConnectError::Ssh {
        target: t.display(),
        reason: e.to_string(),
    };
    let hash = handle
        .best_supported_rsa_hash()
        .await
        .map_err(ssh_err)?
        .flatten();
    let res = handle
        .authenticate_publickey(&t.user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
        .await
        .map_err(ssh_err)?;
    if !res.success() {
        return Err(ConnectError::Auth {
            target: t.display(),
            identity: t.identity.display().to_string(),
        });
    }
    Ok(Session::Pinned(handle))
}
