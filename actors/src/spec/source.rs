//! Source documents: syntax parsing of JSON and TOML into a
//! `serde_json::Value`, plus an index from field paths
//! (`tasks[3].retry_policy`) to line and column, so every diagnostic can
//! name where it is.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use super::diag::Diagnostic;

/// The syntax of a spec or config document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Toml,
}

impl Format {
    /// By file extension; otherwise by content: `{` starts JSON; `[` starts
    /// JSON when an array of tasks follows (`[{`, `[]`, `["`), while `[[tasks]]`
    /// or `[table]` is TOML.
    pub fn detect(name: &str, text: &str) -> Format {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".json") {
            return Format::Json;
        }
        if lower.ends_with(".toml") {
            return Format::Toml;
        }
        let mut chars = text.trim_start().chars();
        match chars.next() {
            Some('{') => Format::Json,
            Some('[') => match chars.find(|c| !c.is_whitespace()) {
                Some('{') | Some(']') | Some('"') | None => Format::Json,
                _ => Format::Toml,
            },
            _ => Format::Toml,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Json => "json",
            Format::Toml => "toml",
        })
    }
}

/// Where a field is: the byte offsets of its key (for object members) and
/// of its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FieldSpan {
    key: Option<usize>,
    value: usize,
}

/// A parsed document and its location index.
#[derive(Clone, Debug)]
pub struct Document {
    pub format: Format,
    pub value: Value,
    spans: HashMap<String, FieldSpan>,
    line_starts: Vec<usize>,
    text: String,
}

impl Document {
    /// Parses `text`; a syntax error comes back as a diagnostic with line and
    /// column.
    pub fn parse(text: &str, format: Format) -> Result<Document, Diagnostic> {
        let line_starts = line_starts(text);
        let (value, spans) = match format {
            Format::Json => {
                let value: Value = serde_json::from_str(text).map_err(|e| {
                    let what = match e.classify() {
                        serde_json::error::Category::Eof => "unexpected end of file",
                        _ => "invalid JSON",
                    };
                    Diagnostic::error("", format!("{what}: {}", strip_json_position(&e)))
                        .at(e.line() as u32, e.column() as u32)
                })?;
                let mut spans = HashMap::new();
                JsonIndexer {
                    bytes: text.as_bytes(),
                    text,
                    spans: &mut spans,
                }
                .value(0, &mut String::new(), None);
                (value, spans)
            }
            Format::Toml => {
                // Report the error that comes first in the text (the
                // parser's own first error may be a later consequence).
                let (table, errors) = toml::de::DeTable::parse_recoverable(text);
                if let Some(e) = errors
                    .iter()
                    .min_by_key(|e| e.span().map(|s| s.start).unwrap_or(usize::MAX))
                {
                    let (line, col) = e
                        .span()
                        .map(|s| position(&line_starts, text, s.start))
                        .unwrap_or((1, 1));
                    return Err(Diagnostic::error(
                        "",
                        format!("invalid TOML: {}", e.message().trim()),
                    )
                    .at(line, col));
                }
                let mut spans = HashMap::new();
                spans.insert(
                    String::new(),
                    FieldSpan {
                        key: None,
                        value: table.span().start,
                    },
                );
                index_toml_table(table.get_ref(), &mut String::new(), &mut spans);
                let value = toml::from_str::<toml::Table>(text)
                    .map_err(|e| Diagnostic::error("", format!("invalid TOML: {}", e.message())))
                    .and_then(|t| toml_to_json(toml::Value::Table(t), ""))?;
                (value, spans)
            }
        };
        Ok(Document {
            format,
            value,
            spans,
            line_starts,
            text: text.to_string(),
        })
    }

    /// Line and column (1-based) of the field at `path`, or of its nearest
    /// ancestor that exists in the text. `key` prefers the member's key
    /// (useful for unknown fields).
    pub fn locate(&self, path: &str, key: bool) -> Option<(u32, u32)> {
        let mut p = path;
        loop {
            if let Some(span) = self.spans.get(p) {
                let off = if key {
                    span.key.unwrap_or(span.value)
                } else {
                    span.value
                };
                return Some(self.position(off));
            }
            if p.is_empty() {
                return None;
            }
            p = parent_path(p);
        }
    }

    fn position(&self, offset: usize) -> (u32, u32) {
        position(&self.line_starts, &self.text, offset)
    }
}

/// The path of the parent field: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``.
pub fn parent_path(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

/// Joins a path and a member key.
pub fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Joins a path and an array index.
pub fn join_index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

fn position(line_starts: &[usize], text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let line = match line_starts.binary_search(&offset) {
        Ok(i) => i,
        Err(i) => i - 1,
    };
    let col = text[line_starts[line]..offset].chars().count() + 1;
    (line as u32 + 1, col as u32)
}

/// serde_json appends " at line L column C"; the diagnostic carries those
/// separately.
fn strip_json_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Records the span of every value of a JSON text that serde_json has
/// already accepted (so the text is well-formed and nests at most 128
/// levels deep, serde_json's limit).
struct JsonIndexer<'a> {
    bytes: &'a [u8],
    text: &'a str,
    spans: &'a mut HashMap<String, FieldSpan>,
}

impl JsonIndexer<'_> {
    fn ws(&self, mut i: usize) -> usize {
        while i < self.bytes.len() && self.bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    }

    /// Indexes the value starting at or after `i`; returns the offset after
    /// it.
    fn value(&mut self, i: usize, path: &mut String, key: Option<usize>) -> usize {
        let i = self.ws(i);
        self.spans.insert(path.clone(), FieldSpan { key, value: i });
        match self.bytes.get(i) {
            Some(b'{') => {
                let mut j = self.ws(i + 1);
                if self.bytes.get(j) == Some(&b'}') {
                    return j + 1;
                }
                loop {
                    let key_start = j;
                    let key_end = self.string_end(j);
                    let name: String =
                        serde_json::from_str(&self.text[key_start..key_end]).unwrap_or_default();
                    j = self.ws(key_end);
                    j += 1; // ':'
                    let saved = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&name);
                    j = self.value(j, path, Some(key_start));
                    path.truncate(saved);
                    j = self.ws(j);
                    match self.bytes.get(j) {
                        Some(b',') => j = self.ws(j + 1),
                        _ => return j + 1,
                    }
                }
            }
            Some(b'[') => {
                let mut j = self.ws(i + 1);
                if self.bytes.get(j) == Some(&b']') {
                    return j + 1;
                }
                let mut index = 0;
                loop {
                    let saved = path.len();
                    path.push_str(&format!("[{index}]"));
                    j = self.value(j, path, None);
                    path.truncate(saved);
                    index += 1;
                    j = self.ws(j);
                    match self.bytes.get(j) {
                        Some(b',') => j += 1,
                        _ => return j + 1,
                    }
                }
            }
            Some(b'"') => self.string_end(i),
            _ => {
                let mut j = i;
                while j < self.bytes.len()
                    && !matches!(self.bytes[j], b',' | b'}' | b']')
                    && !self.bytes[j].is_ascii_whitespace()
                {
                    j += 1;
                }
                j
            }
        }
    }

    /// The offset after the string starting at `i` (a `"`).
    fn string_end(&self, i: usize) -> usize {
        let mut j = i + 1;
        while j < self.bytes.len() {
            match self.bytes[j] {
                b'\\' => j += 2,
                b'"' => return j + 1,
                _ => j += 1,
            }
        }
        j
    }
}

fn index_toml_table(
    table: &toml::de::DeTable<'_>,
    path: &mut String,
    spans: &mut HashMap<String, FieldSpan>,
) {
    for (k, v) in table.iter() {
        let saved = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(k.get_ref());
        spans.insert(
            path.clone(),
            FieldSpan {
                key: Some(k.span().start),
                value: v.span().start,
            },
        );
        index_toml_value(v.get_ref(), path, spans);
        path.truncate(saved);
    }
}

fn index_toml_value(
    value: &toml::de::DeValue<'_>,
    path: &mut String,
    spans: &mut HashMap<String, FieldSpan>,
) {
    match value {
        toml::de::DeValue::Table(t) => index_toml_table(t, path, spans),
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let saved = path.len();
                path.push_str(&format!("[{i}]"));
                spans.insert(
                    path.clone(),
                    FieldSpan {
                        key: None,
                        value: item.span().start,
                    },
                );
                index_toml_value(item.get_ref(), path, spans);
                path.truncate(saved);
            }
        }
        _ => {}
    }
}

/// Converts a TOML value to JSON. Datetimes become RFC 3339 strings;
/// non-finite floats, which JSON cannot hold, are an error naming the field.
fn toml_to_json(value: toml::Value, path: &str) -> Result<Value, Diagnostic> {
    Ok(match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| Diagnostic::error(path, format!("{f} is not a finite number")))?,
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| toml_to_json(v, &join_index(path, i)))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => Value::Object(
            t.into_iter()
                .map(|(k, v)| {
                    let p = join_key(path, &k);
                    toml_to_json(v, &p).map(|v| (k, v))
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_locate() {
        let text = "{\n  \"tasks\": [\n    {\"id\": \"a\",\n     \"retry_policy\": {\"max_attempts\": 0}}\n  ]\n}";
        let doc = Document::parse(text, Format::Json).unwrap();
        assert_eq!(doc.locate("tasks[0].id", false), Some((3, 12)));
        assert_eq!(doc.locate("tasks[0].id", true), Some((3, 6)));
        assert_eq!(
            doc.locate("tasks[0].retry_policy.max_attempts", false),
            Some((4, 39))
        );
        // A missing field falls back to its parent.
        assert_eq!(doc.locate("tasks[0].scorer.kind", false), Some((3, 5)));
    }

    #[test]
    fn toml_paths_locate() {
        let text =
            "name = \"x\"\n\n[[tasks]]\nid = \"a\"\n\n[[tasks]]\nid = \"b\"\ntimeout_seconds = 5\n";
        let doc = Document::parse(text, Format::Toml).unwrap();
        assert_eq!(doc.locate("tasks[1].timeout_seconds", false), Some((8, 19)));
        assert_eq!(doc.locate("tasks[1].timeout_seconds", true), Some((8, 1)));
        assert_eq!(doc.value["tasks"][1]["id"], "b");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = Document::parse("{\n  \"a\": 1,\n  \"b\" 2\n}", Format::Json).unwrap_err();
        assert_eq!((e.line, e.column), (Some(3), Some(7)));
        assert!(e.message.contains("expected `:`"), "{}", e.message);
        let e = Document::parse("a = 1\nb = = 2\n", Format::Toml).unwrap_err();
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn escaped_keys_index() {
        let text = r#"{"a\"b": {"c": [1, {"d": true}]}}"#;
        let doc = Document::parse(text, Format::Json).unwrap();
        assert!(doc.locate("a\"b.c[1].d", false).is_some());
    }

    #[test]
    fn format_detection() {
        assert_eq!(Format::detect("x.JSON", "a=1"), Format::Json);
        assert_eq!(Format::detect("-", "  [ {\"id\": 1} ]"), Format::Json);
        assert_eq!(Format::detect("-", "a = 1"), Format::Toml);
        assert_eq!(Format::detect("api", "[[tasks]]\nid = \"a\""), Format::Toml);
        assert_eq!(Format::detect("api", "[run]"), Format::Toml);
        assert_eq!(Format::detect("api", "[ {\"id\": \"a\"} ]"), Format::Json);
    }
}
