//! Commands on a channel: short control commands with bounded output, and
//! attempts' processes with env requests, the wrapper's report, and output
//! streamed as it arrives.

use std::sync::Arc;
use std::time::Duration;

use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use super::pool::{Connection, Tracked};
use super::script::{ERR_MARK, PGID_MARK};
use super::target::Target;
use crate::host::{EnvVar, ExitInfo, HostError, ProcHandle, Running};

/// Control commands keep at most this much of each stream.
const CONTROL_OUTPUT_CAP: usize = 1 << 20;
/// Before the task starts: at most this much stderr (the login shell's
/// complaints) is kept, and this much stdout is skipped looking for the
/// wrapper's report.
const PREAMBLE_CAP: usize = 64 << 10;
/// The wrapper reports within this long, or the start fails.
const REPORT_TIMEOUT: Duration = Duration::from_secs(60);
/// In-memory pipe between the channel and the attempt's log readers.
const PIPE_BYTES: usize = 256 << 10;

/// What a control command left.
#[derive(Debug, Default)]
pub struct Output {
    pub code: Option<u32>,
    pub signal: Option<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

fn push_capped(buf: &mut Vec<u8>, data: &[u8], cap: usize) {
    let room = cap.saturating_sub(buf.len());
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

/// Runs `cmd` on `ch` (stdin closed) and waits for it, at most `limit`.
pub async fn run(
    mut ch: Channel<Msg>,
    cmd: &str,
    limit: Duration,
    target: &Target,
) -> Result<Output, HostError> {
    let lost = |what: &str| HostError::Transport(format!("{}: {what}", target.display()));
    ch.exec(true, cmd.as_bytes())
        .await
        .map_err(|e| lost(&format!("cannot run a command: {e}")))?;
    let _ = ch.eof().await;
    let mut out = Output::default();
    let mut closed = false;
    let res = tokio::time::timeout(limit, async {
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    push_capped(&mut out.stdout, &data, CONTROL_OUTPUT_CAP)
                }
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    push_capped(&mut out.stderr, &data, CONTROL_OUTPUT_CAP)
                }
                ChannelMsg::ExitStatus { exit_status } => out.code = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    out.signal = Some(format!("{signal_name:?}"))
                }
                ChannelMsg::Failure => return Err("the host refused to run the command"),
                ChannelMsg::Close => {
                    closed = true;
                    break;
                }
                _ => {}
            }
        }
        Ok(())
    })
    .await;
    match res {
        Err(_) => {
            // Hold the channel (and its permit) until the server let go of
            // it, briefly, so the next channel stays within MaxSessions.
            let _ = ch.close().await;
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(m) = ch.wait().await {
                    if matches!(m, ChannelMsg::Close) {
                        break;
                    }
                }
            })
            .await;
            Err(lost(&format!("a control command took over {limit:?}")))
        }
        Ok(Err(e)) => Err(HostError::Spawn {
            program: "sh".into(),
            reason: e.into(),
        }),
        Ok(Ok(())) if out.code.is_none() && out.signal.is_none() && !closed => {
            Err(lost("the connection dropped during a control command"))
        }
        Ok(Ok(())) => Ok(out),
    }
}

/// Maps an `exit-signal` name to its number on Linux.
pub fn signal_number(sig: &russh::Sig) -> Option<i32> {
    use russh::Sig as S;
    Some(match sig {
        S::ABRT => libc::SIGABRT,
        S::ALRM => libc::SIGALRM,
        S::FPE => libc::SIGFPE,
        S::HUP => libc::SIGHUP,
        S::ILL => libc::SIGILL,
        S::INT => libc::SIGINT,
        S::KILL => libc::SIGKILL,
        S::PIPE => libc::SIGPIPE,
        S::QUIT => libc::SIGQUIT,
        S::SEGV => libc::SIGSEGV,
        S::TERM => libc::SIGTERM,
        S::USR1 => libc::SIGUSR1,
        S::Custom(name) => match name.trim_start_matches("SIG") {
            "USR2" => libc::SIGUSR2,
            "BUS" => libc::SIGBUS,
            "TRAP" => libc::SIGTRAP,
            "SYS" => libc::SIGSYS,
            "XCPU" => libc::SIGXCPU,
            "XFSZ" => libc::SIGXFSZ,
            "VTALRM" => libc::SIGVTALRM,
            "PROF" => libc::SIGPROF,
            "STKFLT" => libc::SIGSTKFLT,
            "IO" | "POLL" => libc::SIGIO,
            "PWR" => libc::SIGPWR,
            _ => return None,
        },
    })
}

/// What the task wrapper reported before the task started.
enum Report {
    Started { pgid: i32, start: u64 },
    Refused(String),
}

fn parse_report(line: &str) -> Option<Report> {
    if let Some(rest) = line.strip_prefix(PGID_MARK) {
        let mut it = rest.split_whitespace();
        let pgid: i32 = it.next()?.parse().ok()?;
        let start: u64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        (pgid > 1).then_some(Report::Started { pgid, start })
    } else {
        line.strip_prefix(ERR_MARK)
            .map(|r| Report::Refused(r.trim().to_string()))
    }
}

/// Everything [`start`] needs.
pub struct StartArgs<'a> {
    pub conn: &'a Arc<Connection>,
    pub program: &'a str,
    pub cmd: String,
    /// Sent as env requests.
    pub env: &'a [EnvVar],
    pub attempt_id: &'a str,
    pub cwd: &'a str,
    pub attempt_dir: &'a str,
    /// Lines that open the attempt's stderr log (warnings).
    pub preface: Vec<String>,
}

/// Opens a task channel, sends the environment as env requests, runs the
/// wrapper, waits for its report and streams the rest.
pub async fn start(a: StartArgs<'_>) -> Result<Running, HostError> {
    let conn = a.conn;
    let target = conn.target().display();
    let lost = |what: String| HostError::Transport(format!("{target}: {what}"));
    let spawn_err = |reason: String| HostError::Spawn {
        program: a.program.to_string(),
        reason,
    };
    let (mut ch, permit, generation) = conn.task_channel().await?;
    // Pipelined: every request first, then the replies in order (one round
    // trip for all of them).
    for v in a.env {
        ch.set_env(true, v.name.as_str(), v.value.expose())
            .await
            .map_err(|e| lost(format!("cannot send the environment: {e}")))?;
    }
    ch.exec(true, a.cmd.as_bytes())
        .await
        .map_err(|e| lost(format!("cannot start the command: {e}")))?;
    let _ = ch.eof().await;

    let mut replies = 0usize;
    let mut refused: Vec<&str> = Vec::new();
    let mut out_buf: Vec<u8> = Vec::new();
    let mut err_buf: Vec<u8> = Vec::new();
    let mut exit: Option<ExitInfo> = None;
    let report = tokio::time::timeout(REPORT_TIMEOUT, async {
        loop {
            let Some(msg) = ch.wait().await else {
                return Err(lost(
                    "the connection dropped while starting the command".into(),
                ));
            };
            match msg {
                ChannelMsg::Success | ChannelMsg::Failure => {
                    let ok = matches!(msg, ChannelMsg::Success);
                    if replies < a.env.len() {
                        if !ok {
                            refused.push(a.env[replies].name.as_str());
                        }
                    } else if replies == a.env.len() && !ok {
                        return Err(spawn_err("the host refused to run the command".into()));
                    }
                    replies += 1;
                }
                ChannelMsg::Data { data } => {
                    out_buf.extend_from_slice(&data);
                    while let Some(nl) = out_buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = out_buf.drain(..=nl).collect();
                        let line = String::from_utf8_lossy(&line);
                        if let Some(r) = parse_report(line.trim_end()) {
                            return Ok(Some(r));
                        }
                        // The login shell's chatter: not the task's output.
                    }
                    if out_buf.len() > PREAMBLE_CAP {
                        out_buf.clear();
                    }
                }
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    push_capped(&mut err_buf, &data, PREAMBLE_CAP)
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    exit = Some(ExitInfo {
                        code: Some(exit_status as i32),
                        signal: None,
                    })
                }
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    exit = Some(ExitInfo {
                        code: None,
                        signal: signal_number(&signal_name),
                    })
                }
                ChannelMsg::Close => return Ok(None),
                _ => {}
            }
        }
    })
    .await;
    let stderr_text = || String::from_utf8_lossy(&err_buf).trim().to_string();
    let (pgid, start) = match report {
        Err(_) => {
            let _ = ch.close().await;
            // It may have started all the same: whatever carries the
            // attempt's id goes.
            conn.lost_unknown(a.attempt_id);
            return Err(lost(format!(
                "the command did not start within {REPORT_TIMEOUT:?}"
            )));
        }
        Ok(Err(e)) => {
            if e.is_transport() {
                conn.lost_unknown(a.attempt_id);
            }
            return Err(e);
        }
        Ok(Ok(Some(Report::Started { pgid, start }))) => (pgid, start),
        Ok(Ok(Some(Report::Refused(what)))) => {
            return Err(spawn_err(match what.as_str() {
                "cwd" => format!("working directory {} does not exist on the host", a.cwd),
                "program" => "not found in the PATH on the host".into(),
                "attempt-dir" => format!("cannot create {} on the host", a.attempt_dir),
                other => format!("the host wrapper failed ({other})"),
            }))
        }
        Ok(Ok(None)) => {
            let how = match exit {
                Some(ExitInfo { code: Some(c), .. }) => format!("exited with code {c}"),
                Some(ExitInfo {
                    signal: Some(s), ..
                }) => format!("was killed by signal {s}"),
                _ => "ended".into(),
            };
            let err = stderr_text();
            return Err(spawn_err(format!(
                "the remote wrapper {how} before the command started{}{}",
                if err.is_empty() { "" } else { ": " },
                crate::model::bounded(&err, 400)
            )));
        }
    };
    conn.track(
        Tracked {
            pgid,
            start,
            attempt_id: a.attempt_id.to_string(),
            generation,
        },
        a.attempt_dir,
    );

    let mut preface: Vec<u8> = Vec::new();
    for line in &a.preface {
        preface.extend_from_slice(format!("orca: warning: {line}\n").as_bytes());
    }
    for name in refused {
        preface.extend_from_slice(
            format!(
                "orca: warning: {target} refused the environment variable {name}; \
                 add it to AcceptEnv in the host's sshd_config\n"
            )
            .as_bytes(),
        );
    }
    preface.extend_from_slice(&err_buf);

    let (out_w, out_r) = tokio::io::duplex(PIPE_BYTES);
    let (err_w, err_r) = tokio::io::duplex(PIPE_BYTES);
    let (exit_tx, exit_rx) = oneshot::channel();
    let pump = Pump {
        ch,
        out: Some(out_w),
        err: Some(err_w),
        exit_tx: Some(exit_tx),
        _permit: permit,
        conn: conn.clone(),
        pgid,
    };
    tokio::spawn(pump.run(out_buf, preface, exit));
    let target2 = target.clone();
    let exit = Box::pin(async move {
        match exit_rx.await {
            Ok(r) => r,
            Err(_) => Err(HostError::Transport(format!(
                "{target2}: the connection dropped while the attempt ran"
            ))),
        }
    });
    Ok(Running {
        proc: ProcHandle {
            pid: pgid as u32,
            pgid,
            proc_start: start,
        },
        stdout: Box::new(out_r),
        stderr: Box::new(err_r),
        exit,
        notes: Vec::new(),
    })
}

/// Moves a task channel's messages into the attempt's pipes.
struct Pump {
    ch: Channel<Msg>,
    out: Option<DuplexStream>,
    err: Option<DuplexStream>,
    exit_tx: Option<oneshot::Sender<Result<ExitInfo, HostError>>>,
    /// Released when the channel is done.
    _permit: OwnedSemaphorePermit,
    conn: Arc<Connection>,
    pgid: i32,
}

async fn write_or_drop(w: &mut Option<DuplexStream>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    if let Some(s) = w.as_mut() {
        if s.write_all(data).await.is_err() {
            // The reader stopped (abandoned): drop the rest.
            *w = None;
        }
    }
}

impl Pump {
    async fn run(mut self, first_out: Vec<u8>, first_err: Vec<u8>, early: Option<ExitInfo>) {
        write_or_drop(&mut self.err, &first_err).await;
        write_or_drop(&mut self.out, &first_out).await;
        if let Some(e) = early {
            self.send_exit(Ok(e));
        }
        let mut clean = false;
        while let Some(msg) = self.ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => write_or_drop(&mut self.out, &data).await,
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    write_or_drop(&mut self.err, &data).await
                }
                ChannelMsg::ExitStatus { exit_status } => self.send_exit(Ok(ExitInfo {
                    code: Some(exit_status as i32),
                    signal: None,
                })),
                ChannelMsg::ExitSignal { signal_name, .. } => self.send_exit(Ok(ExitInfo {
                    code: None,
                    // The wrapper only dies of signals sshd can name; 0 (a
                    // failure all the same) for anything else.
                    signal: Some(signal_number(&signal_name).unwrap_or(0)),
                })),
                ChannelMsg::Eof => {
                    self.out = None;
                    self.err = None;
                }
                ChannelMsg::Close => {
                    clean = true;
                    break;
                }
                _ => {}
            }
        }
        self.out = None;
        self.err = None;
        if self.exit_tx.is_some() {
            // No exit status: the connection dropped under the process,
            // which (without a pty) keeps running on the host.
            self.conn.lost(self.pgid);
            let target = self.conn.target().display();
            self.send_exit(Err(HostError::Transport(format!(
                "{target}: the connection dropped while the attempt ran{}",
                if clean {
                    " (channel closed without an exit status)"
                } else {
                    ""
                }
            ))));
        } else {
            self.conn.untrack(self.pgid);
        }
    }

    fn send_exit(&mut self, r: Result<ExitInfo, HostError>) {
        if let Some(tx) = self.exit_tx.take() {
            let _ = tx.send(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_and_signals() {
        assert!(matches!(
            parse_report("ORCA-PGID 1234 5678"),
            Some(Report::Started {
                pgid: 1234,
                start: 5678
            })
        ));
        assert!(matches!(
            parse_report("ORCA-ERR cwd"),
            Some(Report::Refused(r)) if r == "cwd"
        ));
        assert!(
            parse_report("ORCA-PGID 1").is_none(),
            "group 1 is never ours"
        );
        assert!(parse_report("ORCA-PGID x 1").is_none());
        assert!(parse_report("Welcome to the host!").is_none());
        assert_eq!(signal_number(&russh::Sig::KILL), Some(libc::SIGKILL));
        assert_eq!(
            signal_number(&russh::Sig::Custom("USR2".into())),
            Some(libc::SIGUSR2)
        );
        assert_eq!(signal_number(&russh::Sig::Custom("NOPE".into())), None);
    }
}
