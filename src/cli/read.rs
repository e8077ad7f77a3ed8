//! The operator's read commands: `inspect`, `logs`, `artifacts`,
//! `receipts`. All read the journal (offline; they work while a run is
//! going), name runs and tasks by unique prefix, and have `--json`.

use std::io::{Read, Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use orca_actors::journal::{follow, Event};
use orca_actors::model::Receipt;
use orca_actors::run::state::TaskState;
use orca_actors::workspace::Workspace;

use super::source::Reader;
use crate::exit;
use crate::render;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A run id or unique prefix.
    pub run: String,
    /// A task id or unique prefix (default: the whole run).
    pub task: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub run: String,
    pub task: String,
    /// Attempt number (default: the latest).
    #[arg(long)]
    pub attempt: Option<u32>,
    /// stderr instead of stdout.
    #[arg(long)]
    pub stderr: bool,
    /// Show at most this many bytes from the end.
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    pub tail: u64,
    /// Keep printing as the attempt writes, until it ends.
    #[arg(long)]
    pub follow: bool,
    /// Keep ANSI escape sequences.
    #[arg(long)]
    pub raw: bool,
    /// The shown part and what is known about the log, as JSON.
    #[arg(long, conflicts_with = "follow")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ArtifactsArgs {
    pub run: String,
    pub task: String,
    /// Attempt number (default: the task's final or latest).
    #[arg(long)]
    pub attempt: Option<u32>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReceiptsArgs {
    pub run: String,
    /// Every attempt's full receipt as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn workspace(ws_flag: Option<&Path>) -> anyhow::Result<Workspace> {
    match super::find_workspace(ws_flag)? {
        Some(ws) if ws.orca_dir().is_dir() => Ok(ws),
        _ => Err(exit::InvalidInput::new(
            "no orca workspace here (no .orca/ in this directory or above); run `orca init` or `orca run <spec>`",
        )
        .into()),
    }
}

fn attempt_n(t: &TaskState, n: Option<u32>) -> anyhow::Result<u32> {
    match n {
        Some(n) if t.attempt(n).is_some() => Ok(n),
        Some(n) => Err(exit::InvalidInput::new(format!(
            "task {} has no attempt {n} (it has {})",
            t.id,
            t.attempts.len()
        ))
        .into()),
        None => t.current().map(|a| a.n).ok_or_else(|| {
            exit::InvalidInput::new(format!("task {} has not started yet", t.id)).into()
        }),
    }
}

pub fn inspect(ws_flag: Option<&Path>, args: InspectArgs) -> anyhow::Result<i32> {
    let ws = workspace(ws_flag)?;
    let reader = Reader::open(&ws)?;
    super::runtime()?.block_on(async {
        match &args.task {
            None => {
                let r = reader.run(&args.run, false).await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    print!("{}", render::status::run(&r));
                    println!();
                    print!("{}", render::run::results(&r));
                }
            }
            Some(name) => {
                let i = reader.task(&args.run, name).await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&i)?);
                } else {
                    print!("{}", render::inspect::task(&i));
                }
            }
        }
        Ok(exit::OK)
    })
}

pub fn artifacts(ws_flag: Option<&Path>, args: ArtifactsArgs) -> anyhow::Result<i32> {
    let ws = workspace(ws_flag)?;
    let reader = Reader::open(&ws)?;
    super::runtime()?.block_on(async {
        let i = reader.task(&args.run, &args.task).await?;
        let t = &i.task;
        let receipt: Option<&Receipt> = match args.attempt {
            Some(n) => t
                .attempt(attempt_n(t, Some(n))?)
                .and_then(|a| a.receipt.as_ref()),
            None => t
                .final_receipt()
                .or_else(|| t.attempts.iter().rev().find_map(|a| a.receipt.as_ref())),
        };
        let refs = receipt.map(|r| r.artifacts.clone()).unwrap_or_default();
        if args.json {
            println!("{}", serde_json::to_string_pretty(&refs)?);
        } else {
            print!("{}", render::inspect::artifacts(&refs));
        }
        Ok(exit::OK)
    })
}

pub fn receipts(ws_flag: Option<&Path>, args: ReceiptsArgs) -> anyhow::Result<i32> {
    let ws = workspace(ws_flag)?;
    let reader = Reader::open(&ws)?;
    super::runtime()?.block_on(async {
        if args.json {
            let all = reader.receipts(&args.run).await?;
            println!("{}", serde_json::to_string_pretty(&all)?);
        } else {
            let r = reader.run(&args.run, false).await?;
            print!("{}", render::inspect::receipts(&r));
        }
        Ok(exit::OK)
    })
}

pub fn logs(ws_flag: Option<&Path>, args: LogsArgs) -> anyhow::Result<i32> {
    let ws = workspace(ws_flag)?;
    let reader = Reader::open(&ws)?;
    let rt = super::runtime()?;
    // The journal's end before the read: an attempt that ends later is
    // seen by the follower, one that ended earlier is not live in the read.
    let from = orca_actors::journal::highest_seq(&ws.journal_dir()).unwrap_or(0);
    let i = rt.block_on(reader.task(&args.run, &args.task))?;
    let t = &i.task;
    let n = attempt_n(t, args.attempt)?;
    let live = t.attempt(n).is_some_and(|a| a.is_live());
    let file = ws.attempt_dir(&i.run, &t.id, n).join(if args.stderr {
        "stderr.log"
    } else {
        "stdout.log"
    });
    if args.json {
        let (offset, size, bytes) = read_tail(&file, args.tail)?;
        let stream = if args.stderr {
            orca_actors::journal::event::LogStream::Stderr
        } else {
            orca_actors::journal::event::LogStream::Stdout
        };
        let text = String::from_utf8_lossy(&bytes);
        let excerpt = render::inspect::LogExcerpt {
            run: i.run.clone(),
            task: t.id.clone(),
            attempt: n,
            stream: if args.stderr { "stderr" } else { "stdout" }.into(),
            path: file
                .strip_prefix(ws.root())
                .unwrap_or(&file)
                .display()
                .to_string(),
            size,
            offset,
            capped: t
                .attempt(n)
                .is_some_and(|a| a.logs_capped.contains(&stream)),
            live,
            text: if args.raw {
                text.into_owned()
            } else {
                render::inspect::strip_ansi(&text)
            },
        };
        println!("{}", serde_json::to_string_pretty(&excerpt)?);
        return Ok(exit::OK);
    }
    let mut offset = print_tail(&file, args.tail, args.raw)?;
    if args.follow && live {
        rt.block_on(follow_log(
            &ws,
            &file,
            &i.run,
            &t.id,
            n,
            from,
            &mut offset,
            args.raw,
        ))?;
    }
    Ok(exit::OK)
}

fn emit(bytes: &[u8], raw: bool) -> anyhow::Result<()> {
    let text = String::from_utf8_lossy(bytes);
    let shown = if raw {
        text.into_owned()
    } else {
        render::inspect::strip_ansi(&text)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(shown.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The last `max` bytes of `file`: (where they start, the file's size,
/// the bytes). A missing file is a silent stream: (0, 0, nothing).
pub(crate) fn read_tail(file: &Path, max: u64) -> anyhow::Result<(u64, u64, Vec<u8>)> {
    let mut f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0, Vec::new())),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let len = f.metadata()?.len();
    let start = len.saturating_sub(max);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf)?;
    Ok((start, len, buf))
}

/// Prints the last `max` bytes of `file` (a missing file is a silent
/// stream); returns the offset read up to.
fn print_tail(file: &Path, max: u64, raw: bool) -> anyhow::Result<u64> {
    let (start, len, buf) = read_tail(file, max)?;
    if start > 0 {
        eprintln!("[orca: {start} earlier bytes not shown; --tail {len} shows them all]");
    }
    emit(&buf, raw)?;
    Ok(start + buf.len() as u64)
}

/// Prints what the attempt writes until it ends: woken by the journal
/// (the attempt's end) and by the log file growing (inotify), never a
/// polling tick.
#[allow(clippy::too_many_arguments)]
async fn follow_log(
    ws: &Workspace,
    file: &Path,
    run: &str,
    task: &str,
    n: u32,
    from_seq: u64,
    offset: &mut u64,
    raw: bool,
) -> anyhow::Result<()> {
    use notify::Watcher as _;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let followed = file.to_path_buf();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Only a change to the followed file: our own opens and reads of
        // it are access events, and waking on them would read again, and
        // again — a busy loop on a quiet attempt.
        let wake = match res {
            Ok(ev) => {
                !matches!(ev.kind, notify::EventKind::Access(_))
                    && (ev.paths.is_empty() || ev.paths.iter().any(|p| p == &followed))
            }
            Err(_) => true,
        };
        if wake {
            let _ = tx.send(());
        }
    })
    .context("cannot watch the log")?;
    let dir: PathBuf = file.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(&dir).ok();
    watcher
        .watch(&dir, notify::RecursiveMode::NonRecursive)
        .context("cannot watch the attempt directory")?;
    let mut journal = follow(&ws.journal_dir(), from_seq + 1)?;
    // What was written before the watch began.
    *offset = copy_from(file, *offset, raw)?;
    loop {
        tokio::select! {
            env = journal.next() => {
                let env = env?;
                if let Event::AttemptFinished { attempt, .. } = &env.event {
                    if attempt.run == run && attempt.task == task && attempt.attempt == n {
                        *offset = copy_from(file, *offset, raw)?;
                        return Ok(());
                    }
                }
            }
            Some(()) = rx.recv() => {
                *offset = copy_from(file, *offset, raw)?;
            }
        }
    }
}

/// Prints the file from `offset` on; returns the new offset. A file that
/// shrank (rewritten when its capped tail is appended) restarts at 0.
fn copy_from(file: &Path, offset: u64, raw: bool) -> anyhow::Result<u64> {
    let Ok(mut f) = std::fs::File::open(file) else {
        return Ok(offset);
    };
    let len = f.metadata()?.len();
    let from = if len < offset { 0 } else { offset };
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    emit(&buf, raw)?;
    Ok(from + buf.len() as u64)
}
