//! The one redactor: every secret value orca holds for a process it starts
//! (attempts and scorers alike) is replaced by `<redacted>` in everything
//! orca writes of that process — log files, receipts' summaries, journaled
//! reasons — and never shown by `Debug`.
//!
//! [`Secrets`] is the set of values (from `secret_env` names resolved at
//! start); [`Secrets::redact`] cleans a finished text and
//! [`Secrets::stream`] gives a [`Redactor`] for a byte stream cut anywhere.

use std::fmt;
use std::sync::Arc;

/// Values shorter than this are not treated as secrets (redacting `1` or
/// `ab` everywhere would garble logs without protecting anything).
pub const MIN_SECRET_LEN: usize = 4;

/// The secret values of one process, shared by its readers.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Arc<[String]>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets(<{} redacted>)", self.values.len())
    }
}

impl Secrets {
    /// The values to hide (those shorter than [`MIN_SECRET_LEN`] are left
    /// out).
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut v: Vec<String> = values
            .into_iter()
            .map(Into::into)
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        v.sort();
        v.dedup();
        Self { values: v.into() }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// These secrets and `more`.
    pub fn with<I, S>(&self, more: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(
            self.values
                .iter()
                .cloned()
                .chain(more.into_iter().map(Into::into)),
        )
    }

    /// `text` with every secret value replaced by `<redacted>`.
    pub fn redact(&self, text: &str) -> String {
        if self.values.is_empty() {
            return text.to_string();
        }
        let mut r = self.stream();
        let mut out = r.feed(text.as_bytes()).into_owned();
        out.extend_from_slice(&r.finish());
        // Only whole secrets were replaced by ASCII: still UTF-8.
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// A redactor for one byte stream.
    pub fn stream(&self) -> Redactor {
        Redactor::new(self.values.iter())
    }
}

/// What replaces a secret value in attempt logs.
pub const REDACTED: &[u8] = b"<redacted>";

/// Replaces secret values in a byte stream before it reaches a log file,
/// also when a value is split across reads: bytes that could begin a
/// secret are held back until the next read (or [`Redactor::finish`])
/// tells. With no secrets it passes data through untouched.
#[derive(Debug, Default)]
pub struct Redactor {
    secrets: Vec<Vec<u8>>,
    held: Vec<u8>,
}

impl Redactor {
    /// `secrets`: the values to hide (empty ones are ignored).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut secrets: Vec<Vec<u8>> = secrets
            .into_iter()
            .map(|s| s.as_ref().to_vec())
            .filter(|s| !s.is_empty())
            .collect();
        // Longest first: a secret that contains another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self {
            secrets,
            held: Vec::new(),
        }
    }

    /// The bytes of `data` (after what was held back) that are safe to
    /// write now, secrets replaced.
    pub fn feed<'a>(&mut self, data: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        if self.secrets.is_empty() {
            return std::borrow::Cow::Borrowed(data);
        }
        self.held.extend_from_slice(data);
        let input = std::mem::take(&mut self.held);
        let (out, rest) = self.scan(&input, false);
        self.held = input[rest..].to_vec();
        std::borrow::Cow::Owned(out)
    }

    /// What is still held back, secrets replaced: the stream ended.
    pub fn finish(&mut self) -> Vec<u8> {
        let input = std::mem::take(&mut self.held);
        self.scan(&input, true).0
    }

    /// Copies `input` replacing whole secrets; unless `end`, stops at the
    /// first position where a secret may begin but the input ends first.
    /// Returns the output and how much of `input` it consumed.
    fn scan(&self, input: &[u8], end: bool) -> (Vec<u8>, usize) {
        let mut out = Vec::with_capacity(input.len());
        let mut i = 0;
        'outer: while i < input.len() {
            let rest = &input[i..];
            for s in &self.secrets {
                if rest.starts_with(s) {
                    out.extend_from_slice(REDACTED);
                    i += s.len();
                    continue 'outer;
                }
            }
            if !end
                && self
                    .secrets
                    .iter()
                    .any(|s| s.len() > rest.len() && s.starts_with(rest))
            {
                break;
            }
            out.push(input[i]);
            i += 1;
        }
        (out, i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact_in_pieces(secrets: &[&str], text: &str, piece: usize) -> String {
        let mut r = Redactor::new(secrets);
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(piece.max(1)) {
            out.extend_from_slice(&r.feed(chunk));
        }
        out.extend_from_slice(&r.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn secrets_are_redacted_however_the_stream_is_cut() {
        let text =
            "key=sk-supersecret-777 and again sk-supersecret-777, not sk-super.\nalso tok3n!";
        let want = "key=<redacted> and again <redacted>, not sk-super.\nalso <redacted>!";
        for piece in 1..=text.len() {
            assert_eq!(
                redact_in_pieces(&["sk-supersecret-777", "tok3n"], text, piece),
                want,
                "pieces of {piece}"
            );
        }
        // A prefix of a secret at the very end is flushed as it is.
        assert_eq!(redact_in_pieces(&["secret"], "a secr", 2), "a secr");
        // No secrets: untouched, and borrowed.
        let mut r = Redactor::new(Vec::<String>::new());
        assert!(matches!(r.feed(b"abc"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn secrets_redact_text_and_hide_in_debug() {
        let s = Secrets::new(["sk-live-1234", "ab", "sk-live-1234"]);
        assert_eq!(s.redact("key sk-live-1234, ab"), "key <redacted>, ab");
        let shown = format!("{s:?}");
        assert!(!shown.contains("sk-live"), "{shown}");
        assert_eq!(shown, "Secrets(<1 redacted>)");
        assert_eq!(Secrets::default().redact("x"), "x");
    }
}
