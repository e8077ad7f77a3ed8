//! Renderers: pure functions from views to text (tables, trees, progress)
//! and their `--json` forms. No I/O here.

pub mod agents;
pub mod alerts;
pub mod inspect;
pub mod run;
pub mod status;
pub mod tree;
pub mod validate;

/// Renders rows as aligned columns under `headers`, two spaces apart; the
/// last column is not padded. Widths count characters.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let cols = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < cols {
                s.push_str(cell);
                s.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            } else {
                s.push_str(cell);
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Indents every line of `text` by `n` spaces.
pub fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn ellipsize(s: &str, max: usize) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// `5s`, `1.5s`, `2m`, `1h30m`.
pub fn seconds(s: f64) -> String {
    if s < 60.0 || s.fract() != 0.0 {
        return format!("{}s", trim_float(s));
    }
    let s = s as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, m, 0) => format!("{m}m"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, 0) => format!("{h}h{m}m"),
        (h, m, sec) => format!("{h}h{m}m{sec}s"),
    }
}

/// `2`, `1.5` (no trailing zeros).
pub fn trim_float(f: f64) -> String {
    let s = format!("{f:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns() {
        let t = table(
            &["ID", "STATE"],
            &[
                vec!["a".into(), "ok".into()],
                vec!["long-id".into(), "fail".into()],
            ],
        );
        assert_eq!(t, "ID       STATE\na        ok\nlong-id  fail\n");
    }

    #[test]
    fn durations() {
        assert_eq!(seconds(5.0), "5s");
        assert_eq!(seconds(0.25), "0.25s");
        assert_eq!(seconds(300.0), "5m");
        assert_eq!(seconds(5400.0), "1h30m");
        assert_eq!(ellipsize("a  b\nc", 10), "a b c");
        assert_eq!(ellipsize("abcdef", 4), "abc…");
    }
}
