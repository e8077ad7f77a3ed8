//! A real OpenSSH server on 127.0.0.1 for the soak's SSH worker: its own
//! host key and client key under the soak's directory, `AcceptEnv ORCA_*`,
//! `SetEnv SHLVL=1` (no `~/.bashrc` per command). Ready when sshd says it
//! listens; stopped (with its per-connection processes) when dropped.
//! The same recipe as the test suite's `tests/sshd` (which the binary
//! cannot share: it lives in the tests' crate).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};

pub struct Sshd {
    pub port: u16,
    pub client_key: PathBuf,
    pub known_hosts: PathBuf,
    pub remote_wd: PathBuf,
    pub user: String,
    child: Child,
}

fn keygen(path: &Path) -> anyhow::Result<()> {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "orca-chaos", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .context("ssh-keygen (install openssh-client)")?;
    if !st.success() {
        bail!("ssh-keygen failed: {st}");
    }
    Ok(())
}

impl Sshd {
    /// Starts sshd under `dir` (created) on a free port.
    pub fn start(dir: &Path) -> anyhow::Result<Sshd> {
        if !Path::new("/usr/sbin/sshd").exists() {
            bail!("/usr/sbin/sshd is missing: install openssh-server (scripts/test.sh does)");
        }
        std::fs::create_dir_all("/run/sshd").context("mkdir /run/sshd")?;
        std::fs::create_dir_all(dir)?;
        let host_key = dir.join("host_key");
        let client_key = dir.join("client_key");
        keygen(&host_key)?;
        keygen(&client_key)?;
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        std::fs::copy(
            dir.join("client_key.pub"),
            dir.join(format!("authorized_keys_{user}")),
        )?;
        let remote_wd = dir.join("remote-wd");
        std::fs::create_dir_all(&remote_wd)?;
        let config = dir.join("sshd_config");
        let mut last = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())?;
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
                     AuthorizedKeysFile {d}/authorized_keys_%u\nPidFile {d}/sshd.pid\n\
                     StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     AcceptEnv ORCA_*\nSubsystem sftp internal-sftp\nLogLevel INFO\n\
                     MaxSessions 20\nMaxStartups 50\nSetEnv SHLVL=1\n",
                    d = dir.display()
                ),
            )?;
            let mut child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .context("spawn sshd")?;
            let Some(stderr) = child.stderr.take() else {
                bail!("no sshd stderr");
            };
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut ready = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(tx) = ready.as_ref() {
                        let listening = line.contains("Server listening on");
                        let _ = tx.send((listening, line));
                        if listening {
                            ready = None;
                        }
                    }
                }
            });
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let mut up = false;
            while let Ok((listening, line)) =
                rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            {
                last = line;
                if listening {
                    up = true;
                    break;
                }
            }
            if up && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let pubkey = std::fs::read_to_string(dir.join("host_key.pub"))?;
                let mut it = pubkey.split_whitespace();
                let (alg, key) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
                let known_hosts = dir.join("known_hosts");
                std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {alg} {key}\n"))?;
                return Ok(Sshd {
                    port,
                    client_key,
                    known_hosts,
                    remote_wd,
                    user,
                    child,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        bail!("sshd did not start: {last}")
    }

    /// A `[[workers]]` entry: worker `remote` on this server.
    pub fn worker_toml(&self, concurrency: u32) -> String {
        format!(
            "[[workers]]\nid = \"remote\"\nmax_concurrent_tasks = {concurrency}\ncapabilities = [\"remote\"]\n[workers.host]\nkind = \"ssh\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\nworking_directory = \"{}\"\n",
            self.port,
            self.user,
            self.client_key.display(),
            self.known_hosts.display(),
            self.remote_wd.display()
        )
    }

    /// Runs `script` on the host through the OpenSSH client (a second,
    /// independent path to the host); its stdout.
    pub fn exec(&self, script: &str) -> anyhow::Result<String> {
        let out = Command::new("ssh")
            .arg("-i")
            .arg(&self.client_key)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
                "-p",
            ])
            .arg(self.port.to_string())
            .arg(format!("{}@127.0.0.1", self.user))
            .arg(script)
            .stdin(Stdio::null())
            .output()
            .context("ssh (install openssh-client)")?;
        if !out.status.success() {
            bail!(
                "ssh {script:?}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // The listener and the per-connection sshd processes it forked.
        let root = self.child.id() as i32;
        let mut victims = vec![root];
        let mut frontier = vec![root];
        while let Some(p) = frontier.pop() {
            for c in crate::procs::children(p) {
                let sshd = std::fs::read_link(format!("/proc/{c}/exe"))
                    .ok()
                    .and_then(|p| {
                        p.file_name()
                            .map(|n| n.to_string_lossy().starts_with("sshd"))
                    })
                    .unwrap_or(false);
                if sshd {
                    victims.push(c);
                    frontier.push(c);
                }
            }
        }
        for v in victims {
            // SAFETY: kill(2) on sshd processes this soak started.
            unsafe {
                libc::kill(v, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}
