//! Attempt logs, capped while they are written (not only on read).
//!
//! Up to the cap, bytes go straight to the file. Past it orca keeps the
//! head already on disk and a rolling tail in memory (at most
//! [`MAX_TAIL`] bytes, allocated only once the cap is reached, so memory
//! stays flat however much a worker prints); when the log is finished the
//! tail is appended after a marker saying how much was left out.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Default cap per log file.
pub const DEFAULT_LOG_CAP: u64 = 8 << 20;

/// The most tail orca keeps in memory per capped log.
pub const MAX_TAIL: usize = 1 << 20;

/// Bytes reserved for the marker line.
const MARKER_RESERVE: u64 = 160;

/// How a finished log came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSummary {
    /// Bytes the worker wrote.
    pub total: u64,
    /// Bytes in the file.
    pub kept: u64,
    pub capped: bool,
}

/// A log file that never grows past its cap.
#[derive(Debug)]
pub struct CappedLog {
    file: File,
    head_limit: u64,
    tail_cap: usize,
    written: u64,
    total: u64,
    tail: Option<VecDeque<u8>>,
}

impl CappedLog {
    /// Creates (truncates) `path` with `cap` bytes at most.
    pub fn create(path: &Path, cap: u64) -> io::Result<Self> {
        let file = File::create(path)?;
        let cap = cap.max(2 * MARKER_RESERVE);
        let tail_cap = ((cap / 4) as usize).min(MAX_TAIL);
        Ok(Self {
            file,
            head_limit: cap - tail_cap as u64 - MARKER_RESERVE,
            tail_cap,
            written: 0,
            total: 0,
            tail: None,
        })
    }

    /// Appends `data`. Returns true the first time the cap is reached.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<bool> {
        self.total += data.len() as u64;
        let room = self.head_limit.saturating_sub(self.written) as usize;
        if room > 0 {
            let n = room.min(data.len());
            self.file.write_all(&data[..n])?;
            self.written += n as u64;
            data = &data[n..];
        }
        if data.is_empty() {
            return Ok(false);
        }
        let first = self.tail.is_none();
        let cap = self.tail_cap;
        let tail = self
            .tail
            .get_or_insert_with(|| VecDeque::with_capacity(cap));
        if data.len() >= cap {
            tail.clear();
            tail.extend(&data[data.len() - cap..]);
        } else {
            let overflow = (tail.len() + data.len()).saturating_sub(cap);
            tail.drain(..overflow);
            tail.extend(data);
        }
        Ok(first)
    }

    /// Whether the cap was reached.
    pub fn is_capped(&self) -> bool {
        self.tail.is_some()
    }

    /// Writes the marker and the kept tail (if capped) and closes the file.
    pub fn finish(mut self) -> io::Result<LogSummary> {
        let mut kept = self.written;
        let capped = self.tail.is_some();
        if let Some(tail) = self.tail.take() {
            let omitted = self.total - self.written - tail.len() as u64;
            let marker = format!(
                "\n[orca: log capped: {omitted} bytes left out; the last {} bytes follow]\n",
                tail.len()
            );
            self.file.write_all(marker.as_bytes())?;
            let (a, b) = tail.as_slices();
            self.file.write_all(a)?;
            self.file.write_all(b)?;
            kept += marker.len() as u64 + tail.len() as u64;
        }
        self.file.flush()?;
        Ok(LogSummary {
            total: self.total,
            kept,
            capped,
        })
    }
}

/// Splits a byte stream into lines, handing each complete line (without
/// its newline) to a callback; a line longer than `max` is reported once as
/// too long (the callback gets `None`) and skipped to its end.
#[derive(Debug)]
pub struct LineSplitter {
    buf: Vec<u8>,
    max: usize,
    skipping: bool,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
            skipping: false,
        }
    }

    /// Feeds bytes; calls `f(Some(line))` per complete line, `f(None)` for a
    /// line past `max`.
    pub fn feed(&mut self, mut data: &[u8], mut f: impl FnMut(Option<&[u8]>)) {
        while let Some(nl) = data.iter().position(|b| *b == b'\n') {
            let (part, rest) = (&data[..nl], &data[nl + 1..]);
            if self.skipping {
                self.skipping = false;
            } else if self.buf.len() + part.len() > self.max {
                self.buf.clear();
                f(None);
            } else if self.buf.is_empty() {
                f(Some(part));
            } else {
                self.buf.extend_from_slice(part);
                f(Some(&self.buf));
                self.buf.clear();
            }
            data = rest;
        }
        if self.skipping {
            return;
        }
        if self.buf.len() + data.len() > self.max {
            self.buf.clear();
            self.skipping = true;
            f(None);
        } else {
            self.buf.extend_from_slice(data);
        }
    }

    /// The last line if the stream ended without a newline.
    pub fn finish(&mut self, mut f: impl FnMut(Option<&[u8]>)) {
        if !self.buf.is_empty() && !self.skipping {
            f(Some(&self.buf));
        }
        self.buf.clear();
    }
}

/// The last `max` bytes of a log file, lossily as text (empty when there
/// is none).
pub fn tail_text(path: &Path, max: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_logs_are_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.log");
        let mut log = CappedLog::create(&p, 4096).unwrap();
        assert!(!log.write(b"hello\n").unwrap());
        let s = log.finish().unwrap();
        assert_eq!(
            s,
            LogSummary {
                total: 6,
                kept: 6,
                capped: false
            }
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"hello\n");
    }

    #[test]
    fn past_the_cap_keeps_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.log");
        let cap = 4096u64;
        let mut log = CappedLog::create(&p, cap).unwrap();
        let mut firsts = 0;
        for i in 0..10_000u32 {
            if log.write(format!("line {i:05}\n").as_bytes()).unwrap() {
                firsts += 1;
            }
        }
        assert_eq!(firsts, 1, "the cap is reported once");
        let s = log.finish().unwrap();
        assert!(s.capped);
        assert_eq!(s.total, 110_000);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.len() as u64 <= cap, "{} > {cap}", text.len());
        assert_eq!(text.len() as u64, s.kept);
        assert!(text.starts_with("line 00000\n"));
        assert!(text.ends_with("line 09999\n"));
        assert!(text.contains("[orca: log capped: "));
    }

    #[test]
    fn huge_single_writes_keep_the_newest_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.log");
        let mut log = CappedLog::create(&p, 1000).unwrap();
        log.write(&[b'a'; 5000]).unwrap();
        log.write(&[b'b'; 10]).unwrap();
        let s = log.finish().unwrap();
        let data = std::fs::read(&p).unwrap();
        assert!(data.len() <= 1000);
        assert!(data.ends_with(&[b'b'; 10]));
        assert_eq!(s.total, 5010);
    }

    #[test]
    fn splitter_handles_partial_and_long_lines() {
        let mut sp = LineSplitter::new(8);
        let mut got: Vec<Option<String>> = Vec::new();
        let mut push =
            |l: Option<&[u8]>| got.push(l.map(|b| String::from_utf8_lossy(b).into_owned()));
        sp.feed(b"ab", &mut push);
        sp.feed(b"c\nde\n0123456789", &mut push);
        sp.feed(b"more\nok\nta", &mut push);
        sp.finish(&mut push);
        assert_eq!(
            got,
            [
                Some("abc".into()),
                Some("de".into()),
                None,
                Some("ok".into()),
                Some("ta".into())
            ]
        );
    }
}
