//! Files over SFTP: the prompt file up into the remote attempt directory,
//! `artifacts/` back down into the local one (per-file cap, at most
//! [`MAX_FILES`] files, [`MAX_DEPTH`] levels; symlinks are not followed).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, FileType, OpenFlags, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;

use super::pool::{Connection, Need};
use crate::host::HostError;

/// At most this many files are fetched from `artifacts/` (as the local
/// scan takes).
pub const MAX_FILES: usize = 1_000;
/// Directory levels under `artifacts/`.
pub const MAX_DEPTH: usize = 8;
/// Entries read from one directory at most.
const MAX_ENTRIES: usize = 10_000;
/// Bytes per SFTP read or write request.
const CHUNK: u32 = 32 << 10;
/// Seconds an SFTP request may take.
const REQUEST_TIMEOUT_SECS: u64 = 30;

/// An SFTP session on a control channel (held until the server has
/// closed the channel, so the next channel never exceeds MaxSessions).
pub struct Sftp {
    raw: RawSftpSession,
    host: String,
}

fn status_code(e: &SftpError) -> Option<StatusCode> {
    match e {
        SftpError::Status(s) => Some(s.status_code),
        _ => None,
    }
}

impl Sftp {
    /// Opens the `sftp` subsystem.
    pub async fn open(conn: &Arc<Connection>, need: Need) -> Result<Self, HostError> {
        let host = conn.target().display();
        let (mut ch, permit) = conn.control_channel(need).await?;
        request_sftp(&mut ch, &host).await?;
        let raw = RawSftpSession::new_with_config(
            pump(ch, permit),
            russh_sftp::client::Config {
                request_timeout_secs: REQUEST_TIMEOUT_SECS,
                ..Default::default()
            },
        );
        raw.init()
            .await
            .map_err(|e| HostError::Transport(format!("{host}: cannot start SFTP: {e}")))?;
        Ok(Self { raw, host })
    }

    /// A failure of the session itself (transient) or of one operation.
    fn err(&self, what: String, e: SftpError) -> HostError {
        match e {
            SftpError::Status(s) => HostError::io(
                format!("{}: {what}", self.host),
                std::io::Error::other(format!("{}: {}", s.status_code, s.error_message)),
            ),
            other => HostError::Transport(format!("{}: {what}: {other}", self.host)),
        }
    }

    async fn is_dir(&self, path: &str) -> Result<Option<bool>, SftpError> {
        match self.raw.stat(path).await {
            Ok(a) => Ok(Some(a.attrs.file_type() == FileType::Dir)),
            Err(e) if status_code(&e) == Some(StatusCode::NoSuchFile) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `mkdir -p`, but never creating `floor` (the host's working
    /// directory) or anything above it. Tried twice: a cleanup of the
    /// run's last other attempt may remove the empty run directory midway.
    pub async fn mkdir_p(&self, path: &str, floor: &str) -> Result<(), HostError> {
        match self.mkdir_p_once(path, floor).await {
            Err(HostError::Io { .. }) => self.mkdir_p_once(path, floor).await,
            r => r,
        }
    }

    async fn mkdir_p_once(&self, path: &str, floor: &str) -> Result<(), HostError> {
        // Usually only the leaf is new.
        if self.raw.mkdir(path, FileAttributes::empty()).await.is_ok() {
            return Ok(());
        }
        let mut missing = Vec::new();
        let mut p = path.trim_end_matches('/').to_string();
        loop {
            match self
                .is_dir(&p)
                .await
                .map_err(|e| self.err(format!("cannot look at {p}"), e))?
            {
                Some(true) => break,
                Some(false) => {
                    return Err(self.err(
                        format!("cannot create {path}"),
                        SftpError::UnexpectedBehavior(format!("{p} is not a directory")),
                    ))
                }
                None => {
                    if p == floor.trim_end_matches('/') || !p.starts_with(floor) {
                        return Err(HostError::Spawn {
                            program: "prepare".into(),
                            reason: format!(
                                "the working directory {floor} does not exist on {}",
                                self.host
                            ),
                        });
                    }
                    missing.push(p.clone());
                    match p.rfind('/') {
                        Some(i) if i > 0 => p.truncate(i),
                        _ => break,
                    }
                }
            }
        }
        for d in missing.iter().rev() {
            if let Err(e) = self.raw.mkdir(d.as_str(), FileAttributes::empty()).await {
                // Someone else (another attempt of the run) made it first.
                if self.is_dir(d).await.ok().flatten() != Some(true) {
                    return Err(self.err(format!("cannot create {d}"), e));
                }
            }
        }
        Ok(())
    }

    /// Writes `data` to `path` (created or truncated).
    pub async fn write_file(&self, path: &str, data: &[u8]) -> Result<(), HostError> {
        let h = self
            .raw
            .open(
                path,
                OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
                FileAttributes::empty(),
            )
            .await
            .map_err(|e| self.err(format!("cannot create {path}"), e))?
            .handle;
        let mut offset = 0usize;
        let mut result = Ok(());
        for chunk in data.chunks(CHUNK as usize) {
            if let Err(e) = self
                .raw
                .write(h.as_str(), offset as u64, chunk.to_vec())
                .await
            {
                result = Err(self.err(format!("cannot write {path}"), e));
                break;
            }
            offset += chunk.len();
        }
        let closed = self.raw.close(h.as_str()).await;
        result?;
        closed.map_err(|e| self.err(format!("cannot write {path}"), e))?;
        Ok(())
    }

    /// Fetches `remote_dir` (recursively) into `local_dir`. Returns notes
    /// about what was left behind.
    pub async fn fetch_dir(
        &self,
        remote_dir: &str,
        local_dir: &Path,
        cap: u64,
    ) -> Result<Vec<String>, HostError> {
        let mut notes = Vec::new();
        let mut count = 0usize;
        // (remote dir, local dir, depth, shown prefix)
        let mut stack: Vec<(String, PathBuf, usize, String)> = vec![(
            remote_dir.to_string(),
            local_dir.to_path_buf(),
            0,
            "artifacts".into(),
        )];
        let mut over = false;
        while let Some((dir, local, depth, shown)) = stack.pop() {
            let entries = match self.list(&dir).await {
                Ok(e) => e,
                Err(e) if status_code(&e) == Some(StatusCode::NoSuchFile) && depth == 0 => {
                    return Ok(notes)
                }
                Err(e) => return Err(self.err(format!("cannot list {dir}"), e)),
            };
            for (name, attrs) in entries {
                if name == "." || name == ".." {
                    continue;
                }
                if name.contains('/') || name.contains('\0') || name.is_empty() {
                    notes.push(format!("{shown}/{name:?}: odd file name; not fetched"));
                    continue;
                }
                let remote = format!("{dir}/{name}");
                let shown_path = format!("{shown}/{name}");
                match attrs.file_type() {
                    FileType::Dir if depth < MAX_DEPTH => {
                        stack.push((remote, local.join(&name), depth + 1, shown_path))
                    }
                    FileType::Dir => {
                        notes.push(format!("{shown_path}: nested too deep; not fetched"))
                    }
                    FileType::File => {
                        if count >= MAX_FILES {
                            over = true;
                            continue;
                        }
                        count += 1;
                        if attrs.len() > cap {
                            notes.push(format!(
                                "artifact {shown_path} is over the {} cap; not fetched",
                                crate::attempt::artifacts::cap_text(cap)
                            ));
                            continue;
                        }
                        if let Some(n) = self.fetch_file(&remote, &local.join(&name), cap).await? {
                            notes.push(format!("artifact {shown_path}: {n}"));
                        }
                    }
                    FileType::Symlink => notes.push(format!(
                        "{shown_path} is a symlink on the host; not fetched"
                    )),
                    FileType::Other => {}
                }
            }
        }
        if over {
            notes.push(format!(
                "more than {MAX_FILES} artifact files on the host; the rest were not fetched"
            ));
        }
        Ok(notes)
    }

    async fn list(&self, dir: &str) -> Result<Vec<(String, FileAttributes)>, SftpError> {
        let h = self.raw.opendir(dir).await?.handle;
        let mut out = Vec::new();
        let r = loop {
            match self.raw.readdir(h.as_str()).await {
                Ok(name) => {
                    out.extend(name.files.into_iter().map(|f| (f.filename, f.attrs)));
                    if out.len() >= MAX_ENTRIES {
                        break Ok(());
                    }
                }
                Err(e) if status_code(&e) == Some(StatusCode::Eof) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let _ = self.raw.close(h.as_str()).await;
        r?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Copies one file, at most `cap` bytes; a note when it was not kept.
    async fn fetch_file(
        &self,
        remote: &str,
        local: &Path,
        cap: u64,
    ) -> Result<Option<String>, HostError> {
        let local_io = |what: &str, e: std::io::Error| {
            HostError::io(format!("cannot {what} {}", local.display()), e)
        };
        if let Some(parent) = local.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| local_io("create the directory of", e))?;
        }
        let h = match self
            .raw
            .open(remote, OpenFlags::READ, FileAttributes::empty())
            .await
        {
            Ok(h) => h.handle,
            Err(e @ SftpError::Status(_)) => return Ok(Some(format!("cannot open it: {e}"))),
            Err(e) => return Err(self.err(format!("cannot open {remote}"), e)),
        };
        let mut file = tokio::fs::File::create(local)
            .await
            .map_err(|e| local_io("create", e))?;
        let mut offset = 0u64;
        let mut note = None;
        let mut failed = None;
        loop {
            match self.raw.read(h.as_str(), offset, CHUNK).await {
                Ok(d) => {
                    if d.data.is_empty() {
                        break;
                    }
                    offset += d.data.len() as u64;
                    if offset > cap {
                        note = Some(format!(
                            "grew over the {} cap while it was fetched; not kept",
                            crate::attempt::artifacts::cap_text(cap)
                        ));
                        break;
                    }
                    if let Err(e) = file.write_all(&d.data).await {
                        failed = Some(local_io("write", e));
                        break;
                    }
                }
                Err(e) if status_code(&e) == Some(StatusCode::Eof) => break,
                Err(e) => {
                    failed = Some(self.err(format!("cannot read {remote}"), e));
                    break;
                }
            }
        }
        let _ = self.raw.close(h.as_str()).await;
        if let Err(e) = file.flush().await {
            failed.get_or_insert(local_io("write", e));
        }
        drop(file);
        if note.is_some() || failed.is_some() {
            let _ = tokio::fs::remove_file(local).await;
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(note),
        }
    }
}

/// Carries the SFTP byte stream between an in-memory pipe and the channel.
/// When the SFTP session is dropped (the pipe ends), sends EOF and keeps
/// the control permit until the server closes the channel, bounded.
fn pump(ch: Channel<Msg>, permit: OwnedSemaphorePermit) -> tokio::io::DuplexStream {
    let (ours, theirs) = tokio::io::duplex(256 << 10);
    tokio::spawn(async move {
        let (mut from_ch, to_ch) = ch.split();
        let (mut rd, mut wr) = tokio::io::split(ours);
        let mut buf = vec![0u8; CHUNK as usize + 1024];
        let mut writing = true;
        let mut wr_open = true;
        // Once the session is done, the server gets this long to close.
        let deadline = tokio::time::sleep(Duration::from_secs(REQUEST_TIMEOUT_SECS));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = rd.read(&mut buf), if writing => match r {
                    Ok(n) if n > 0 => {
                        if to_ch.data(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    _ => {
                        writing = false;
                        deadline
                            .as_mut()
                            .reset(tokio::time::Instant::now() + Duration::from_secs(10));
                        let _ = to_ch.eof().await;
                    }
                },
                msg = from_ch.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        if wr_open && wr.write_all(&data).await.is_err() {
                            wr_open = false;
                        }
                    }
                    Some(ChannelMsg::Eof) => {
                        let _ = wr.shutdown().await;
                        wr_open = false;
                    }
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
                _ = &mut deadline, if !writing => break,
            }
        }
        let _ = to_ch.close().await;
        drop(permit);
    });
    theirs
}

/// Asks for the `sftp` subsystem and waits for the answer.
async fn request_sftp(ch: &mut Channel<Msg>, host: &str) -> Result<(), HostError> {
    ch.request_subsystem(true, "sftp")
        .await
        .map_err(|e| HostError::Transport(format!("{host}: cannot start SFTP: {e}")))?;
    let answer = tokio::time::timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS), async {
        loop {
            match ch.wait().await {
                Some(ChannelMsg::Success) => return Ok(()),
                Some(ChannelMsg::Failure) | Some(ChannelMsg::Close) => {
                    return Err(HostError::Spawn {
                        program: "sftp".into(),
                        reason: format!(
                            "{host} has no SFTP subsystem: add `Subsystem sftp internal-sftp` \
                             to its sshd_config"
                        ),
                    })
                }
                Some(_) => {}
                None => {
                    return Err(HostError::Transport(format!(
                        "{host}: the connection dropped while starting SFTP"
                    )))
                }
            }
        }
    })
    .await;
    answer.unwrap_or_else(|_| {
        Err(HostError::Transport(format!(
            "{host}: SFTP did not start within {REQUEST_TIMEOUT_SECS} s"
        )))
    })
}
