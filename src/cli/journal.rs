//! `orca journal export|stats|verify|repair|compact`: offline journal
//! tools. None needs a running daemon; only `repair` takes the writer lock
//! (so it refuses to run while a daemon writes).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use orca_actors::journal::lock::WriterLock;
use orca_actors::journal::{self, Envelope, JournalError, JournalOptions, ReadRange, ScanReport};
use orca_actors::spec::OrcaConfig;
use orca_actors::view::FleetView;
use orca_actors::workspace::Workspace;

use crate::exit::{self, InvalidInput};

#[derive(Debug, Args)]
pub struct JournalArgs {
    #[command(subcommand)]
    pub command: JournalCommand,
}

impl JournalArgs {
    /// Whether the subcommand prints JSON (its report, or `export`'s lines).
    pub fn json(&self) -> bool {
        match &self.command {
            JournalCommand::Stats(a) | JournalCommand::Verify(a) => a.json,
            JournalCommand::Export(_) | JournalCommand::Repair(_) | JournalCommand::Compact(_) => {
                false
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Print events as JSON lines: seq, at (RFC 3339), actor, type and the
    /// event's fields.
    #[command(after_help = "Examples:
  orca journal export
  orca journal export --from 120 --to 180
  orca journal export | jq -c 'select(.type == \"AttemptFinished\") | {seq, task: .attempt.task, result}'
  orca journal export --follow")]
    Export(ExportArgs),

    /// Segments, events, bytes, first and last seq.
    #[command(after_help = "Examples:
  orca journal stats
  orca journal stats --json | jq .last_seq")]
    Stats(ReportArgs),

    /// Check every segment, frame and record without opening the journal for
    /// write (exit 1 on corruption; a torn tail is only a warning).
    #[command(after_help = "Examples:
  orca journal verify
  orca journal verify --json")]
    Verify(ReportArgs),

    /// Cut the journal at its first corruption (or torn tail), keeping a
    /// backup of every byte cut under .orca/journal/backup/.
    #[command(after_help = "Examples:
  orca journal repair                            # show what would be cut
  orca journal repair --truncate-at-corruption   # cut it (refused while a daemon writes)")]
    Repair(RepairArgs),

    /// Remove segments wholly covered by the newest snapshots, keeping the
    /// most recent ones.
    #[command(after_help = "Examples:
  orca journal compact
  orca journal compact --keep 4")]
    Compact(CompactArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// First seq to print (inclusive).
    #[arg(long, value_name = "SEQ", default_value_t = 1)]
    pub from: u64,
    /// Last seq to print (inclusive).
    #[arg(long, value_name = "SEQ")]
    pub to: Option<u64>,
    /// Keep printing new events as they are appended (until interrupted).
    #[arg(long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Really cut the journal at its first corruption.
    #[arg(long)]
    pub truncate_at_corruption: bool,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Recent segments to keep besides those the snapshots need (default:
    /// `[journal] keep_segments` in .orca/config.toml, else 2).
    #[arg(long, value_name = "N")]
    pub keep: Option<u32>,
}

pub fn run(ws_flag: Option<&Path>, args: JournalArgs) -> anyhow::Result<i32> {
    let ws = super::find_workspace(ws_flag)?.ok_or_else(|| {
        InvalidInput::new(
            "no orca workspace here (no .orca/ in this directory or above); use --workspace DIR or run `orca init`",
        )
    })?;
    let dir = ws.journal_dir();
    match args.command {
        JournalCommand::Export(a) => export(&dir, a),
        JournalCommand::Stats(a) => stats(&dir, a),
        JournalCommand::Verify(a) => verify(&dir, a),
        JournalCommand::Repair(a) => repair(&dir, a),
        JournalCommand::Compact(a) => compact(&ws, a),
    }
}

/// Writes one JSON line; `Ok(false)` when the reader went away (EPIPE).
fn write_line(out: &mut impl Write, env: &Envelope) -> anyhow::Result<bool> {
    let line = serde_json::to_string(&env.export_json())?;
    match writeln!(out, "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

fn flush(out: &mut impl Write) -> anyhow::Result<bool> {
    match out.flush() {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

fn export(dir: &Path, args: ExportArgs) -> anyhow::Result<i32> {
    if args.to.is_some_and(|to| to < args.from) {
        return Ok(exit::OK);
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if !args.follow {
        let mut range = ReadRange::from(args.from);
        range.to = args.to;
        for env in journal::read(dir, range)? {
            let env = match env {
                Ok(env) => env,
                Err(e) => {
                    flush(&mut out)?;
                    return Err(e.into());
                }
            };
            if !write_line(&mut out, &env)? {
                return Ok(exit::OK);
            }
        }
        flush(&mut out)?;
        return Ok(exit::OK);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let mut follower = journal::follow(dir, args.from)?;
        loop {
            // Print what is there, flush once, then wait for more.
            while let Some(env) = follower.try_next()? {
                if args.to.is_some_and(|to| env.seq > to) || !write_line(&mut out, &env)? {
                    flush(&mut out)?;
                    return Ok(exit::OK);
                }
            }
            if !flush(&mut out)? {
                return Ok(exit::OK);
            }
            let env = follower.next().await?;
            if args.to.is_some_and(|to| env.seq > to) || !write_line(&mut out, &env)? {
                flush(&mut out)?;
                return Ok(exit::OK);
            }
        }
    })
}

fn stats(dir: &Path, args: ReportArgs) -> anyhow::Result<i32> {
    let report = journal::stats(dir)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report_json(dir, &report))?
        );
    } else {
        print!("{}", report_text(dir, &report));
    }
    Ok(exit::OK)
}

fn verify(dir: &Path, args: ReportArgs) -> anyhow::Result<i32> {
    let report = match journal::verify(dir) {
        Ok(r) => r,
        Err(e) => {
            if args.json {
                let v = serde_json::json!({ "journal": dir, "ok": false, "error": e.to_string() });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                eprintln!("error: {e}");
            }
            return Ok(exit::FAILED);
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report_json(dir, &report))?
        );
    } else {
        print!("{}", report_text(dir, &report));
        match &report.corruption {
            Some(_) => {
                println!("verify: CORRUPT (nothing was changed); `orca journal repair --truncate-at-corruption` cuts the journal there, keeping a backup")
            }
            None if report.torn_tail.is_some() => {
                println!("verify: ok, with a torn tail (the next writer truncates it)")
            }
            None => println!("verify: ok"),
        }
    }
    Ok(if report.is_ok() {
        exit::OK
    } else {
        exit::FAILED
    })
}

fn repair(dir: &Path, args: RepairArgs) -> anyhow::Result<i32> {
    if !args.truncate_at_corruption {
        let report = journal::verify(dir)?;
        print!("{}", report_text(dir, &report));
        match (&report.corruption, &report.torn_tail) {
            (Some(c), _) => println!(
                "repair would cut {} at byte {} and move every later segment to a backup",
                c.segment.display(),
                c.offset
            ),
            (None, Some(t)) => println!(
                "repair would cut the torn tail of {} at byte {} ({} bytes)",
                t.segment.display(),
                t.offset,
                t.bytes
            ),
            (None, None) => {
                println!("nothing to repair");
                return Ok(exit::OK);
            }
        }
        return Err(InvalidInput::new(
            "pass --truncate-at-corruption to cut the journal (a backup of what is cut is kept)",
        )
        .into());
    }
    let r = match journal::repair_truncate_at_corruption(dir) {
        Ok(r) => r,
        Err(e @ JournalError::Locked { .. }) => {
            return Err(anyhow::Error::new(e)
                .context("cannot repair while a writer is open (stop the daemon first)"))
        }
        Err(e) => return Err(e.into()),
    };
    match (&r.cut_segment, &r.backup_dir) {
        (Some(seg), Some(backup)) => {
            println!(
                "cut {} at byte {} ({} bytes: {})",
                seg.display(),
                r.cut_offset,
                r.cut_bytes,
                r.reason
            );
            for m in &r.moved_segments {
                println!("moved {} to the backup", m.display());
            }
            println!("backup: {}", backup.display());
            println!("the journal now ends at seq {}", r.last_seq);
        }
        _ => println!("nothing to repair (last seq {})", r.last_seq),
    }
    Ok(exit::OK)
}

fn compact(ws: &Workspace, args: CompactArgs) -> anyhow::Result<i32> {
    let keep = match args.keep {
        Some(k) => k,
        None => {
            let config = OrcaConfig::load(&ws.config_path())
                .map(|(c, _)| c)
                .unwrap_or_default();
            JournalOptions::from_config(config.journal.as_ref()).keep_segments
        }
    };
    let dir = ws.journal_dir();
    // With the writer lock (no orca is writing), bring the fleet snapshot up
    // to the last event first: every view folds from it. (Compaction keeps
    // what the previous snapshot needs too, so a later compact, after the
    // next snapshot, removes more.) A running orca writes that snapshot itself
    // every `snapshot_every` events; its events may not all be durable yet,
    // so then compaction uses what it wrote.
    let lock = if dir.is_dir() {
        match WriterLock::acquire(&dir) {
            Ok(lock) => {
                // What a writer left may be written but not yet synced (it
                // died, or ran with sync = "never", which syncs neither
                // segments nor the directory): make it durable before a
                // snapshot depends on it.
                for seg in journal::segment::list_segments(&dir)? {
                    std::fs::File::open(&seg.path)
                        .and_then(|f| f.sync_data())
                        .with_context(|| format!("cannot sync {}", seg.path.display()))?;
                }
                std::fs::File::open(&dir)
                    .and_then(|d| d.sync_all())
                    .with_context(|| format!("cannot sync {}", dir.display()))?;
                let view = FleetView::load(ws)?;
                if view.last_seq > 0 {
                    view.write_snapshot(&ws.snapshot_dir())?;
                    println!("snapshot {} at seq {}", FleetView::SNAPSHOT, view.last_seq);
                }
                Some(lock)
            }
            Err(JournalError::Locked { pid, .. }) => {
                eprintln!(
                    "orca: {} is writing the journal; compacting up to the snapshot it wrote last",
                    pid.map_or("another orca".to_string(), |p| format!("orca (pid {p})"))
                );
                None
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    let r = journal::compact(&dir, &ws.snapshot_dir(), keep)?;
    drop(lock);
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    for p in &r.removed {
        println!("removed {}", p.display());
    }
    println!(
        "compacted: {} segments removed ({} bytes), {} kept; snapshots cover seq {}",
        r.removed.len(),
        r.removed_bytes,
        r.kept,
        r.covered_seq
    );
    Ok(exit::OK)
}

fn seq_range(first: Option<u64>, last: Option<u64>) -> String {
    match (first, last) {
        (Some(f), Some(l)) => format!("seq {f}..{l}"),
        _ => "no events".into(),
    }
}

fn report_text(dir: &Path, r: &ScanReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "journal   {}", dir.display());
    let _ = writeln!(s, "segments  {}", r.segments.len());
    let _ = writeln!(
        s,
        "events    {} ({})",
        r.events,
        seq_range(r.first_seq, (r.events > 0).then_some(r.last_seq))
    );
    let _ = writeln!(s, "frames    {}", r.frames);
    let _ = writeln!(s, "bytes     {}", r.bytes);
    for seg in &r.segments {
        let name = seg
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {name}  {:>10} events  {:>12} bytes  {}",
            seg.events,
            seg.bytes,
            seq_range(Some(seg.first_seq), seg.last_seq)
        );
    }
    if let Some(t) = &r.torn_tail {
        let _ = writeln!(s, "warning: {}", t.warning());
    }
    if let Some(c) = &r.corruption {
        let _ = writeln!(s, "error: {}", c.to_error());
    }
    s
}

fn report_json(dir: &Path, r: &ScanReport) -> serde_json::Value {
    let dir: PathBuf = dir.to_path_buf();
    serde_json::json!({
        "journal": dir,
        "ok": r.is_ok(),
        "segments": r.segments,
        "events": r.events,
        "frames": r.frames,
        "bytes": r.bytes,
        "first_seq": r.first_seq,
        "last_seq": r.last_seq,
        "torn_tail": r.torn_tail,
        "corruption": r.corruption,
    })
}
