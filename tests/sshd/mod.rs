//! A real OpenSSH server for tests and benches: `/usr/sbin/sshd -D -e -f
//! <config>` on 127.0.0.1 at a free port, with its own host key, an
//! `authorized_keys` for a key it generates, `AcceptEnv ORCA_*` plus one
//! test variable, `Subsystem sftp internal-sftp`, all under a temporary
//! directory. Ready when sshd says it listens (no sleeps); stopped by pid.
//! One server per test, so tests run in parallel.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The one variable besides `ORCA_*` that the test server accepts.
pub const ACCEPTED_VAR: &str = "SSH_TEST_ALLOWED";

/// Options for the server.
#[derive(Clone, Debug)]
pub struct Options {
    /// `SetEnv SHLVL=1`: bash then skips `~/.bashrc` for commands run by
    /// sshd (root's runs `pyenv init` here, ~140 ms per exec). The setting
    /// docs/ssh.md recommends for worker hosts whose login shell is bash.
    pub skip_bashrc: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { skip_bashrc: true }
    }
}

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The key orca authenticates with.
    pub client_key: PathBuf,
    /// A known_hosts file holding the server's key.
    pub known_hosts: PathBuf,
    /// `SHA256:…` of the server's host key.
    pub fingerprint: String,
    /// A working directory for workers (the "remote" checkout).
    pub remote_wd: PathBuf,
    pub user: String,
    config: PathBuf,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "orca-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(st.success(), "ssh-keygen failed");
}

/// A free port on 127.0.0.1 (the listener is closed before sshd binds it;
/// a lost race is retried by [`Sshd::start`]).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Sshd {
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Self {
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "/usr/sbin/sshd is missing: install openssh-server (scripts/test.sh does)"
        );
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().canonicalize().expect("canonical");
        let host_key = d.join("host_key");
        let client_key = d.join("client_key");
        keygen(&host_key);
        keygen(&client_key);
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        std::fs::copy(
            d.join("client_key.pub"),
            d.join(format!("authorized_keys_{user}")),
        )
        .expect("authorized_keys");
        let remote_wd = d.join("remote-wd");
        std::fs::create_dir_all(&remote_wd).expect("remote wd");
        let fp = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(d.join("host_key.pub"))
            .output()
            .expect("ssh-keygen -l");
        let fingerprint = String::from_utf8_lossy(&fp.stdout)
            .split_whitespace()
            .nth(1)
            .expect("fingerprint")
            .to_string();
        let mut s = Self {
            port: 0,
            client_key,
            known_hosts: d.join("known_hosts"),
            fingerprint,
            remote_wd,
            user,
            config: d.join("sshd_config"),
            child: None,
            log: Arc::new(Mutex::new(String::new())),
            dir,
        };
        for _ in 0..5 {
            s.port = free_port();
            s.write_config(&opts);
            if s.spawn() {
                let pubkey = std::fs::read_to_string(d.join("host_key.pub")).expect("pub");
                let mut it = pubkey.split_whitespace();
                let (alg, key) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
                std::fs::write(
                    &s.known_hosts,
                    format!("[127.0.0.1]:{} {alg} {key}\n", s.port),
                )
                .expect("known_hosts");
                return s;
            }
        }
        panic!("sshd did not start:\n{}", s.log());
    }

    fn write_config(&self, opts: &Options) {
        let d = self.dir.path().canonicalize().expect("canonical");
        let mut c = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys_%u\n\
             PidFile {d}/sshd.pid\n\
             StrictModes no\n\
             UsePAM no\n\
             PermitRootLogin prohibit-password\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             AcceptEnv ORCA_* {ACCEPTED_VAR}\n\
             Subsystem sftp internal-sftp\n\
             LogLevel INFO\n",
            port = self.port,
            d = d.display()
        );
        if opts.skip_bashrc {
            c.push_str("SetEnv SHLVL=1\n");
        }
        std::fs::write(&self.config, c).expect("sshd_config");
    }

    /// Starts sshd and waits until it listens. False if the port was taken.
    fn spawn(&mut self) -> bool {
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sshd");
        let Some(stderr) = child.stderr.take() else {
            panic!("no sshd stderr");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            let mut ready = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                if line.contains("Server listening on") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(true);
                    }
                }
            }
            if let Some(tx) = ready.take() {
                let _ = tx.send(false);
            }
        });
        // sshd says when it listens; then the port must accept.
        let ok = rx.recv_timeout(Duration::from_secs(20)).unwrap_or(false)
            && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok();
        if ok {
            self.child = Some(child);
        } else {
            let _ = child.kill();
            let _ = child.wait();
        }
        ok
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The listener's pid.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Stops sshd the hard way: the listener *and* the per-connection
    /// sshd processes it forked (each connection is its own process;
    /// killing the listener alone keeps sessions alive). The commands they
    /// ran are left alone, as a crashed host-side sshd would leave them.
    pub fn kill_all(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let root = child.id() as i32;
        // sshd itself, or sshd-session in newer OpenSSH.
        let is_sshd = |pid: i32| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .ok()
                .and_then(|p| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().starts_with("sshd"))
                })
                .unwrap_or(false)
        };
        let mut victims = vec![root];
        let mut frontier = vec![root];
        while let Some(p) = frontier.pop() {
            for c in children(p) {
                if is_sshd(c) {
                    victims.push(c);
                    frontier.push(c);
                }
            }
        }
        for v in victims {
            // SAFETY: kill(2) on pids of sshd processes this harness started.
            unsafe {
                libc::kill(v, libc::SIGKILL);
            }
        }
        let _ = child.wait();
    }

    /// Starts sshd again on the same port, with the same keys.
    pub fn restart(&mut self) {
        self.kill_all();
        for _ in 0..50 {
            if self.spawn() {
                return;
            }
        }
        panic!("sshd did not restart:\n{}", self.log());
    }

    /// TOML for an ssh host table (`[workers.host]` body) with `extra`
    /// lines appended.
    pub fn host_toml(&self, extra: &str) -> String {
        format!(
            "kind = \"ssh\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\nworking_directory = \"{}\"\n{extra}\n",
            self.port,
            self.user,
            self.client_key.display(),
            self.known_hosts.display(),
            self.remote_wd.display()
        )
    }

    /// A spec fragment: one ssh worker `remote` taking `concurrency` tasks.
    pub fn worker_toml(&self, concurrency: u32, extra: &str) -> String {
        format!(
            "[[workers]]\nid = \"remote\"\nmax_concurrent_tasks = {concurrency}\n[workers.host]\n{}",
            self.host_toml(extra)
        )
    }
}

/// Children of `pid` (from /proc).
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        if rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) == Some(pid) {
            out.push(p);
        }
    }
    out
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill_all();
    }
}
