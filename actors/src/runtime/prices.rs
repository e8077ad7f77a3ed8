//! The price table and orca's own cost computation.
//!
//! The table ships in the repository (`prices.toml`, embedded at build
//! time): one entry per model with its provider, USD per million tokens of
//! each kind, and where and when the figures were read. A workspace
//! overrides or adds entries with `[[prices]]` in `.orca/config.toml`.
//! [`PriceTable::cost_usd`] prices a [`Usage`]; `None` means the model is
//! not in the table (a cost budget for it cannot be enforced).
//!
//! Model ids are matched exactly (case aside) against an entry's `model`
//! and `aliases`, after dropping a provider prefix (`anthropic/…`,
//! `models/…`) and, one at a time, a date or tag suffix (`-20250929`,
//! `-2025-08-07`, `@20250929`, `[1m]`, `-latest`). Nothing fuzzier: a
//! newer model must not be priced as an older one that shares its prefix.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::usage::Usage;
use crate::spec::types::Extra;

/// The table in the repository.
pub const BUILTIN_PRICES_TOML: &str = include_str!("prices.toml");

/// The table format this build reads.
pub const PRICE_TABLE_FORMAT: u32 = 1;

/// One model's prices, USD per million tokens.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceEntry {
    /// `anthropic`, `openai`, `google`, `deepseek`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The model id.
    #[serde(default)]
    pub model: String,
    /// Other ids of the same model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Uncached input.
    #[serde(default)]
    pub input: f64,
    /// Input read from the prompt cache (default: `input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    /// Input written to the prompt cache (default: `input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
    /// Output.
    #[serde(default)]
    pub output: f64,
    /// Reasoning billed beside the output (default: `output`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<f64>,
    /// Where the figures were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When (YYYY-MM-DD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// What is not verified or not modelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

crate::from_spec!(PriceEntry {
    provider: leaf,
    model: required,
    aliases: leaf,
    input: required,
    cached_input: leaf,
    cache_write: leaf,
    output: required,
    reasoning: leaf,
    source: leaf,
    as_of: leaf,
    note: leaf,
});

impl PriceEntry {
    /// The cost of `usage` at these prices, in USD.
    pub fn cost_usd(&self, usage: &Usage) -> f64 {
        let per = |tokens: u64, usd_per_mtok: f64| tokens as f64 * usd_per_mtok / 1_000_000.0;
        per(usage.uncached_input_tokens(), self.input)
            + per(
                usage.cached_input_tokens,
                self.cached_input.unwrap_or(self.input),
            )
            + per(
                usage.cache_write_tokens,
                self.cache_write.unwrap_or(self.input),
            )
            + per(usage.output_tokens, self.output)
            + per(
                usage.reasoning_tokens,
                self.reasoning.unwrap_or(self.output),
            )
    }

    /// What is wrong with the entry: (field, message) pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.model.trim().is_empty() {
            out.push(("model", "must name a model".to_string()));
        }
        let prices = [
            ("input", Some(self.input)),
            ("cached_input", self.cached_input),
            ("cache_write", self.cache_write),
            ("output", Some(self.output)),
            ("reasoning", self.reasoning),
        ];
        for (field, v) in prices {
            if let Some(v) = v {
                if !v.is_finite() || v < 0.0 {
                    out.push((
                        field,
                        format!(
                            "must be a non-negative number of USD per million tokens (got {v})"
                        ),
                    ));
                }
            }
        }
        if let Some(d) = &self.as_of {
            if !is_date(d) {
                out.push(("as_of", format!("expected a date YYYY-MM-DD, got {d:?}")));
            }
        }
        out
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.model.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Why a price table could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PriceError {
    #[error("invalid price table: {0}")]
    Syntax(String),
    #[error("price table format {found} is not one this orca reads ({PRICE_TABLE_FORMAT})")]
    Format { found: u32 },
    #[error("price table entry {index} ({model}): {field}: {message}")]
    Entry {
        index: usize,
        model: String,
        field: &'static str,
        message: String,
    },
    #[error("price table entries {first} and {second} both name {model}")]
    Duplicate {
        first: usize,
        second: usize,
        model: String,
    },
}

#[derive(Deserialize)]
struct PriceFile {
    format: u32,
    version: u32,
    #[serde(default)]
    model: Vec<PriceEntry>,
}

/// Prices for known models.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceTable {
    /// The table's revision (bumped on every price change).
    pub version: u32,
    entries: Vec<PriceEntry>,
}

impl PriceTable {
    /// The table in the repository.
    pub fn builtin() -> &'static PriceTable {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            // The file is part of the source; its unit test keeps it valid.
            PriceTable::parse(BUILTIN_PRICES_TOML).unwrap_or_else(|e| panic!("prices.toml: {e}"))
        })
    }

    /// Reads a table in `prices.toml`'s format and checks every entry.
    pub fn parse(text: &str) -> Result<PriceTable, PriceError> {
        let file: PriceFile =
            toml::from_str(text).map_err(|e| PriceError::Syntax(e.message().to_string()))?;
        if file.format != PRICE_TABLE_FORMAT {
            return Err(PriceError::Format { found: file.format });
        }
        let table = PriceTable {
            version: file.version,
            entries: file.model,
        };
        table.check()?;
        Ok(table)
    }

    fn check(&self) -> Result<(), PriceError> {
        for (index, e) in self.entries.iter().enumerate() {
            if let Some((field, message)) = e.problems().into_iter().next() {
                return Err(PriceError::Entry {
                    index,
                    model: e.model.clone(),
                    field,
                    message,
                });
            }
            if let Some(k) = e.extra.keys().next() {
                return Err(PriceError::Entry {
                    index,
                    model: e.model.clone(),
                    field: "extra",
                    message: format!("unknown field `{k}`"),
                });
            }
            for name in e.names() {
                let first = self.entries[..index]
                    .iter()
                    .position(|o| o.names().any(|n| n.eq_ignore_ascii_case(name)));
                if let Some(first) = first {
                    return Err(PriceError::Duplicate {
                        first,
                        second: index,
                        model: name.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Every entry.
    pub fn entries(&self) -> &[PriceEntry] {
        &self.entries
    }

    /// This table with `overrides` (from `.orca/config.toml`) replacing the
    /// entries of the same model, and added when new.
    pub fn with_overrides(&self, overrides: &[PriceEntry]) -> PriceTable {
        let mut entries: Vec<PriceEntry> = self
            .entries
            .iter()
            .filter(|e| {
                !overrides.iter().any(|o| {
                    o.names()
                        .any(|n| e.names().any(|m| m.eq_ignore_ascii_case(n)))
                })
            })
            .cloned()
            .collect();
        entries.extend(overrides.iter().cloned());
        PriceTable {
            version: self.version,
            entries,
        }
    }

    /// The entry for a model id (see the module docs for the matching).
    pub fn lookup(&self, model: &str) -> Option<&PriceEntry> {
        let mut id = model.trim().to_ascii_lowercase();
        if let Some((_, last)) = id.rsplit_once('/') {
            id = last.to_string();
        }
        loop {
            if id.is_empty() {
                return None;
            }
            if let Some(e) = self
                .entries
                .iter()
                .find(|e| e.names().any(|n| n.eq_ignore_ascii_case(&id)))
            {
                return Some(e);
            }
            let shorter = strip_suffix(&id)?;
            id = shorter.to_string();
        }
    }

    /// Whether the model is priced.
    pub fn knows(&self, model: &str) -> bool {
        self.lookup(model).is_some()
    }

    /// orca's cost of `usage` on `model`, in USD; `None` when the model is
    /// not in the table.
    pub fn cost_usd(&self, usage: &Usage, model: &str) -> Option<f64> {
        self.lookup(model).map(|e| e.cost_usd(usage))
    }

    /// The cost on the first of `models` the table knows (the model the
    /// stream named, then the configured one), with that model's id.
    pub fn cost_usd_first<'m>(
        &self,
        usage: &Usage,
        models: impl IntoIterator<Item = &'m str>,
    ) -> Option<(f64, &'m str)> {
        models
            .into_iter()
            .find_map(|m| self.cost_usd(usage, m).map(|c| (c, m)))
    }
}

/// orca's cost of `usage` on `model` with the table in the repository.
pub fn cost_usd(usage: &Usage, model: &str) -> Option<f64> {
    PriceTable::builtin().cost_usd(usage, model)
}

/// The id without one date or tag suffix, if it has one.
fn strip_suffix(id: &str) -> Option<&str> {
    if id.ends_with(']') {
        return id.rfind('[').map(|i| &id[..i]);
    }
    if let Some(i) = id.rfind('@') {
        return Some(&id[..i]);
    }
    if let Some(s) = id.strip_suffix("-latest") {
        return Some(s);
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // -20250929
    if let Some((head, tail)) = id.rsplit_once('-') {
        if tail.len() == 8 && digits(tail) {
            return Some(head);
        }
    }
    // -2025-08-07
    if id.len() > 11 {
        let (head, tail) = id.split_at(id.len() - 11);
        let t = tail.as_bytes();
        if t[0] == b'-'
            && t[5] == b'-'
            && t[8] == b'-'
            && digits(&tail[1..5])
            && digits(&tail[6..8])
            && digits(&tail[9..11])
        {
            return Some(head);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, cached: u64, write: u64, output: u64, reasoning: u64) -> Usage {
        Usage {
            input_tokens: input,
            cached_input_tokens: cached,
            cache_write_tokens: write,
            output_tokens: output,
            reasoning_tokens: reasoning,
            ..Usage::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_builtin_table_is_valid_and_sourced() {
        let t = PriceTable::builtin();
        assert!(t.version >= 1);
        assert!(t.entries().len() >= 20, "{}", t.entries().len());
        for e in t.entries() {
            assert!(e.provider.is_some(), "{}: provider", e.model);
            assert!(
                e.source.as_deref().is_some_and(|s| s.contains("http")),
                "{}: source",
                e.model
            );
            assert!(e.as_of.is_some(), "{}: as_of", e.model);
            assert!(e.input > 0.0 && e.output > 0.0, "{}", e.model);
            // A cache read never costs more than uncached input.
            assert!(e.cached_input.unwrap_or(e.input) <= e.input, "{}", e.model);
        }
    }

    #[test]
    fn lookup_matches_exact_ids_and_dated_ones_only() {
        let t = PriceTable::builtin();
        let model = |m: &str| t.lookup(m).map(|e| e.model.as_str());
        assert_eq!(model("claude-sonnet-4-5"), Some("claude-sonnet-4-5"));
        assert_eq!(
            model("claude-sonnet-4-5-20250929"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            model("anthropic/Claude-Sonnet-4-5@20250929"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(model("claude-sonnet-4-5[1m]"), Some("claude-sonnet-4-5"));
        assert_eq!(model("claude-opus-4-0"), Some("claude-opus-4"));
        assert_eq!(model("gpt-5-2025-08-07"), Some("gpt-5"));
        assert_eq!(model("models/gemini-2.5-pro"), Some("gemini-2.5-pro"));
        // A newer model is never priced as an older one with its prefix.
        assert_eq!(model("claude-opus-4-9"), None);
        assert_eq!(model("gpt-5.9"), None);
        assert_eq!(model("gemini-2.5-pro-ultra"), None);
        assert_eq!(model("sonnet"), None);
        assert_eq!(model(""), None);
        assert_eq!(model("-20250101"), None);
    }

    #[test]
    fn cost_prices_each_kind_of_token() {
        let t = PriceTable::builtin();
        // Sonnet 4.5: $3 in, $0.30 cache read, $6 cache write, $15 out.
        // 1M input of which 400k read and 100k written, 200k output:
        // 0.5 * 3 + 0.4 * 0.3 + 0.1 * 6 + 0.2 * 15 = 1.5 + 0.12 + 0.6 + 3.
        let u = usage(1_000_000, 400_000, 100_000, 200_000, 0);
        let c = t.cost_usd(&u, "claude-sonnet-4-5-20250929").unwrap();
        assert!(close(c, 5.22), "{c}");
        // Gemini: reasoning at the output rate.
        let g = t
            .cost_usd(&usage(0, 0, 0, 0, 1_000_000), "gemini-2.5-pro")
            .unwrap();
        assert!(close(g, 10.0), "{g}");
        assert_eq!(t.cost_usd(&u, "mystery-model"), None);
        assert_eq!(cost_usd(&u, "mystery-model"), None);
        assert_eq!(
            t.cost_usd_first(&u, ["sonnet", "claude-sonnet-4-5"])
                .map(|(_, m)| m),
            Some("claude-sonnet-4-5")
        );
    }

    #[test]
    fn missing_cache_prices_charge_as_input() {
        let e = PriceEntry {
            model: "m".into(),
            input: 2.0,
            output: 8.0,
            ..PriceEntry::default()
        };
        let c = e.cost_usd(&usage(1_000_000, 500_000, 250_000, 0, 0));
        assert!(close(c, 2.0), "{c}");
    }

    #[test]
    fn overrides_replace_and_add() {
        let t = PriceTable::builtin();
        let cheap = PriceEntry {
            model: "claude-sonnet-4-5".into(),
            input: 1.0,
            output: 1.0,
            ..PriceEntry::default()
        };
        let local = PriceEntry {
            model: "my-local-llm".into(),
            input: 0.0,
            output: 0.0,
            ..PriceEntry::default()
        };
        let o = t.with_overrides(&[cheap.clone(), local]);
        assert_eq!(o.entries().len(), t.entries().len() + 1);
        assert_eq!(o.lookup("claude-sonnet-4-5-20250929"), Some(&cheap));
        assert_eq!(o.cost_usd(&usage(5, 0, 0, 5, 0), "my-local-llm"), Some(0.0));
    }

    #[test]
    fn bad_tables_are_refused() {
        let bad = [
            ("format = 2\nversion = 1\n", "format 2"),
            ("format = 1\nversion = 1\n[[model]]\nmodel = \"m\"\ninput = -1\noutput = 1\n", "input"),
            ("format = 1\nversion = 1\n[[model]]\nmodel = \"\"\ninput = 1\noutput = 1\n", "model"),
            (
                "format = 1\nversion = 1\n[[model]]\nmodel = \"m\"\ninput = 1\noutput = 1\nas_of = \"May\"\n",
                "as_of",
            ),
            (
                "format = 1\nversion = 1\n[[model]]\nmodel = \"m\"\ninput = 1\noutput = 1\nimput = 2\n",
                "imput",
            ),
            (
                "format = 1\nversion = 1\n[[model]]\nmodel = \"m\"\ninput = 1\noutput = 1\n[[model]]\nmodel = \"x\"\naliases = [\"M\"]\ninput = 1\noutput = 1\n",
                "both name",
            ),
            ("format = 1\nversion = \"one\"\n", "invalid"),
        ];
        for (text, expect) in bad {
            let e = PriceTable::parse(text).unwrap_err().to_string();
            assert!(e.contains(expect), "{text:?}: {e}");
        }
    }
}
