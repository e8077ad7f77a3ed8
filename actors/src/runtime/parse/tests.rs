//! The parsers over fixture streams written from each CLI's documented
//! format (`actors/tests/fixtures/streams/`), and the stub CLIs
//! (`actors/tests/fixtures/stubs/`) run through each preset's invocation.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use proptest::prelude::*;

use super::*;
use crate::runtime::budget::{attempt_breach, BudgetBreach};
use crate::runtime::preset::{stdin_from_file, InvocationInput, Preset, Stdin};
use crate::runtime::prices::PriceTable;
use crate::runtime::usage::Usage;
use crate::spec::types::Budget;
use crate::stream_json::{RuntimeLimit, StreamState};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(cli: &str, name: &str) -> String {
    let p = fixtures()
        .join("streams")
        .join(cli)
        .join(format!("{name}.jsonl"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Feeds every line; returns the signals per line and the folded state.
fn run(format: StreamFormat, text: &str) -> (Vec<Vec<Signal>>, StreamState) {
    let mut p = Parser::new(format);
    assert_eq!(p.format(), format);
    let mut st = StreamState::default();
    let mut all = Vec::new();
    for line in text.lines() {
        let s = p.feed(line.as_bytes());
        assert!(
            !s.is_empty(),
            "{format}: a line of the CLI's stream is log: {line}"
        );
        st.observe(s.clone());
        all.push(s);
    }
    (all, st)
}

fn usage_deltas(lines: &[Vec<Signal>]) -> Vec<Usage> {
    lines
        .iter()
        .flatten()
        .filter_map(|s| match s {
            Signal::Usage(u) => Some(*u),
            _ => None,
        })
        .collect()
}

fn u(input: u64, cached: u64, write: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input,
        cached_input_tokens: cached,
        cache_write_tokens: write,
        output_tokens: output,
        ..Usage::default()
    }
}

/// The first line (index) after which a budget is exceeded, and how.
fn first_breach(
    format: StreamFormat,
    text: &str,
    budget: &Budget,
    model: &str,
) -> Option<(usize, BudgetBreach)> {
    let table = PriceTable::builtin();
    let mut p = Parser::new(format);
    let mut st = StreamState::default();
    for (i, line) in text.lines().enumerate() {
        st.observe(p.feed(line.as_bytes()));
        let m = st.model.clone();
        let cost = table
            .cost_usd_first(&st.usage, m.as_deref().into_iter().chain([model]))
            .map(|(c, _)| c);
        if let Some(b) = attempt_breach(budget, &st, cost) {
            return Some((i, b));
        }
    }
    None
}

// --- Claude -----------------------------------------------------------------

#[test]
fn claude_pass() {
    let (lines, st) = run(StreamFormat::Claude, &fixture("claude", "pass"));
    assert_eq!(
        st.usage,
        Usage {
            tool_calls: 2,
            turns: 3,
            ..u(37_060, 33_500, 3_500, 345)
        }
    );
    assert_eq!(st.tokens, 37_405, "input (cache included) + output");
    assert_eq!(st.tool_calls, 2);
    assert_eq!(st.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    assert_eq!(st.reported_cost_usd, Some(0.0529));
    assert!(st.done && st.final_error().is_none());
    // The result's totals match the messages': nothing added at the end.
    assert!(!lines
        .last()
        .unwrap()
        .iter()
        .any(|s| matches!(s, Signal::Usage(_))));
    // orca's own cost, not the CLI's: 60 × $3 + 33,500 × $0.30 + 3,500 × $6
    // + 345 × $15 per million.
    let cost = PriceTable::builtin()
        .cost_usd(&st.usage, st.model.as_deref().unwrap())
        .unwrap();
    assert!((cost - 0.036_405).abs() < 1e-9, "{cost}");
}

#[test]
fn claude_counts_a_repeated_message_id_once() {
    let text = fixture("claude", "repeated_message_id");
    let (lines, st) = run(StreamFormat::Claude, &text);
    assert_eq!(usage_deltas(&lines).len(), 1, "one message, one delta");
    assert_eq!(
        st.usage,
        Usage {
            tool_calls: 1,
            turns: 1,
            ..u(8_000, 5_000, 2_000, 300)
        }
    );
    assert_eq!(st.tokens, 8_300);
    // orca's old stateless detection counted the same message three times,
    // and without its cache tokens.
    let mut old = StreamState::default();
    for line in text.lines() {
        if let Some(s) = crate::stream_json::parse_line(line.as_bytes()) {
            old.observe(s);
        }
    }
    assert_eq!(old.tokens, 3 * 1_300);
}

#[test]
fn claude_usage_that_grows_within_a_message_counts_the_growth() {
    let mut p = ClaudeParser::default();
    let line = |out: u64| {
        format!(
            r#"{{"type":"assistant","message":{{"id":"m1","usage":{{"input_tokens":10,"output_tokens":{out}}}}}}}"#
        )
    };
    let a = usage_deltas(&[p.feed(line(1).as_bytes())]);
    let b = usage_deltas(&[p.feed(line(50).as_bytes())]);
    let c = usage_deltas(&[p.feed(line(50).as_bytes())]);
    assert_eq!(
        a,
        [Usage {
            turns: 1,
            ..u(10, 0, 0, 1)
        }]
    );
    assert_eq!(b, [u(0, 0, 0, 49)]);
    assert!(c.is_empty());
}

#[test]
fn claude_error_max_turns() {
    let (lines, st) = run(StreamFormat::Claude, &fixture("claude", "error_max_turns"));
    assert_eq!(st.limit, Some(RuntimeLimit::Turns));
    assert_eq!(st.final_error(), Some("error_max_turns"));
    assert!(!st.done);
    assert_eq!(st.tool_calls, 2);
    assert_eq!(st.tokens, 1_310);
    let last = lines.last().unwrap();
    assert!(matches!(
        last[..],
        [
            Signal::ReportedCost { .. },
            Signal::LimitReached {
                limit: RuntimeLimit::Turns
            },
            Signal::Error { .. }
        ]
    ));
}

#[test]
fn claude_failure_and_a_budget_limit() {
    let (_, st) = run(StreamFormat::Claude, &fixture("claude", "failure"));
    assert_eq!(st.final_error(), Some("error_during_execution"));
    assert_eq!(st.usage.input_tokens, 100);
    let mut p = ClaudeParser::default();
    let s = p.feed(
        br#"{"type":"result","subtype":"error_max_budget_usd","is_error":true,"result":"spent"}"#,
    );
    assert_eq!(
        s,
        [
            Signal::LimitReached {
                limit: RuntimeLimit::CostUsd
            },
            Signal::Error {
                message: "error_max_budget_usd: spent".into()
            }
        ]
    );
    // is_error on a "success" subtype is still an error.
    let s = p.feed(
        br#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 500"}"#,
    );
    assert_eq!(
        s,
        [Signal::Error {
            message: "API Error: 500".into()
        }]
    );
}

#[test]
fn claude_verdict_in_the_final_message() {
    let (_, st) = run(StreamFormat::Claude, &fixture("claude", "verdict"));
    assert_eq!(
        st.verdict,
        Some((true, Some(9.0), Some(10.0), "complete".to_string()))
    );
    assert!(st.done);
}

#[test]
fn claude_budget_by_cost_trips_live() {
    let text = fixture("claude", "pass");
    let budget = Budget {
        max_cost_usd: Some(0.02),
        ..Budget::default()
    };
    // The first message alone costs $0.0222 (its 3,000 cache-write tokens).
    let (line, breach) =
        first_breach(StreamFormat::Claude, &text, &budget, "claude-sonnet-4-5").unwrap();
    assert_eq!(line, 1);
    assert!(matches!(breach, BudgetBreach::CostUsd { used, .. } if used > 0.02 && used < 0.03));
}

// --- Codex ------------------------------------------------------------------

#[test]
fn codex_pass() {
    let (_, st) = run(StreamFormat::Codex, &fixture("codex", "pass"));
    // file_change and todo_list are not tool calls.
    assert_eq!(st.tool_calls, 1);
    assert_eq!(
        st.last_tool.as_deref(),
        Some("shell: bash -lc 'cargo test -p lib'")
    );
    assert_eq!(
        st.usage,
        Usage {
            tool_calls: 1,
            turns: 1,
            ..u(18_000, 15_000, 0, 700)
        }
    );
    assert_eq!(st.tokens, 18_700, "cached input is inside input");
    assert!(st.done && st.final_error().is_none());
    assert_eq!(st.model, None, "Codex names no model in its stream");
}

#[test]
fn codex_budget_exceeded_by_tokens_and_tool_calls() {
    let text = fixture("codex", "budget_exceeded");
    let (_, st) = run(StreamFormat::Codex, &text);
    assert_eq!(st.tokens, 24_885);
    assert_eq!(st.tool_calls, 4, "3 commands and an MCP call, each once");
    // The issue's run: a 1,000-token, 2-call budget. The third tool call
    // trips it, live, before any usage arrives.
    let budget = Budget {
        max_tokens: Some(1_000),
        max_tool_calls: Some(2),
        ..Budget::default()
    };
    let (line, breach) = first_breach(StreamFormat::Codex, &text, &budget, "gpt-5-codex").unwrap();
    assert_eq!(line, 7, "item_3 started");
    assert_eq!(breach, BudgetBreach::ToolCalls { used: 3, limit: 2 });
    // Tokens alone: the turn's usage trips it.
    let tokens_only = Budget {
        max_tokens: Some(1_000),
        ..Budget::default()
    };
    let (line, breach) =
        first_breach(StreamFormat::Codex, &text, &tokens_only, "gpt-5-codex").unwrap();
    assert_eq!(line, text.lines().count() - 1);
    assert_eq!(
        breach,
        BudgetBreach::Tokens {
            used: 24_885,
            limit: 1_000
        }
    );
}

#[test]
fn codex_cumulative_usage_becomes_deltas() {
    let (lines, st) = run(StreamFormat::Codex, &fixture("codex", "cumulative_3_turns"));
    let turn = |x: Usage| Usage { turns: 1, ..x };
    assert_eq!(
        usage_deltas(&lines),
        [
            turn(u(1_000, 200, 0, 100)),
            turn(u(1_500, 1_000, 0, 150)),
            turn(u(1_500, 800, 0, 150)),
        ]
    );
    assert_eq!(
        st.usage,
        Usage {
            tool_calls: 1,
            turns: 3,
            ..u(4_000, 2_000, 0, 400)
        }
    );
    assert_eq!(st.tokens, 4_400, "not 1,100 + 2,750 + 4,400");
    assert_eq!(st.last_tool.as_deref(), Some("web_search"));
}

#[test]
fn codex_usage_that_restarts_counts_from_zero() {
    let mut p = CodexParser::default();
    let done = |i: u64, o: u64| {
        format!(
            r#"{{"type":"turn.completed","usage":{{"input_tokens":{i},"cached_input_tokens":0,"output_tokens":{o}}}}}"#
        )
    };
    p.feed(done(5_000, 500).as_bytes());
    let d = usage_deltas(&[p.feed(done(300, 20).as_bytes())]);
    assert_eq!(
        d,
        [Usage {
            turns: 1,
            ..u(300, 0, 0, 20)
        }]
    );
}

#[test]
fn codex_failure() {
    let (_, st) = run(StreamFormat::Codex, &fixture("codex", "failure"));
    assert_eq!(
        st.final_error(),
        Some("stream disconnected before completion: You've hit your usage limit.")
    );
    assert_eq!(st.tool_calls, 0);
    // An error followed by a completed turn recovers (Codex reconnects).
    let mut p = CodexParser::default();
    let mut s = StreamState::default();
    s.observe(p.feed(br#"{"type":"error","message":"Reconnecting... 1/5"}"#));
    s.observe(p.feed(br#"{"type":"turn.completed","usage":{"input_tokens":1,"cached_input_tokens":0,"output_tokens":1}}"#));
    assert_eq!(s.final_error(), None);
}

// --- Gemini -----------------------------------------------------------------

#[test]
fn gemini_pass() {
    let (lines, st) = run(StreamFormat::Gemini, &fixture("gemini", "pass"));
    assert_eq!(st.model.as_deref(), Some("gemini-2.5-pro"));
    assert_eq!(st.tool_calls, 2);
    assert_eq!(st.last_tool.as_deref(), Some("replace"));
    assert_eq!(
        st.usage,
        Usage {
            reasoning_tokens: 500,
            tool_calls: 2,
            ..u(10_000, 4_000, 0, 1_500)
        }
    );
    assert_eq!(st.tokens, 12_000, "total_tokens: input + output + thoughts");
    assert!(st.done && st.final_error().is_none());
    // Usage arrives only with the result.
    assert_eq!(usage_deltas(&lines[..lines.len() - 1]), []);
}

#[test]
fn gemini_failure() {
    let (lines, st) = run(StreamFormat::Gemini, &fixture("gemini", "failure"));
    // The documented non-fatal `error` event is a heartbeat.
    assert_eq!(lines[2], [Signal::Heartbeat]);
    assert_eq!(
        st.final_error(),
        Some("Reached max session turns for this session.")
    );
    assert_eq!(st.tool_calls, 3, "stats.tool_calls the stream did not show");
    assert_eq!(st.tokens, 3_100);
}

// --- CodeWhale --------------------------------------------------------------

#[test]
fn codewhale_pass() {
    let (lines, st) = run(StreamFormat::Codewhale, &fixture("codewhale", "pass"));
    assert_eq!(st.tool_calls, 2);
    assert_eq!(
        st.usage,
        Usage {
            tool_calls: 2,
            turns: 2,
            ..u(2_700, 2_200, 0, 400)
        }
    );
    assert_eq!(
        st.tokens, 3_100,
        "reasoning_tokens are inside output_tokens"
    );
    assert_eq!(st.model.as_deref(), Some("deepseek-chat"));
    assert!(st.done && st.final_error().is_none());
    // The terminal totals equal the turns' sum: no extra delta.
    assert_eq!(usage_deltas(&lines).len(), 2);
}

#[test]
fn codewhale_failure() {
    let (_, st) = run(StreamFormat::Codewhale, &fixture("codewhale", "failure"));
    assert_eq!(st.final_error(), Some("connection reset after 3 retries"));
    assert_eq!(
        Preset::Codewhale.classify_exit(75).class,
        crate::runtime::ExitClass::Transient
    );
}

#[test]
fn codewhale_totals_add_what_turns_missed() {
    let mut p = CodewhaleParser::default();
    p.feed(br#"{"type":"turn_usage","turn":1,"input_tokens":100,"output_tokens":10}"#);
    let s = p.feed(
        br#"{"type":"metadata","meta":{"model":"deepseek-chat","input_tokens":250,"output_tokens":30,"status":"ok"}}"#,
    );
    assert_eq!(
        s,
        [
            Signal::Model {
                name: "deepseek-chat".into()
            },
            Signal::Usage(u(150, 0, 0, 20))
        ]
    );
}

// --- every format -----------------------------------------------------------

#[test]
fn orca_metadata_lines_in_every_format() {
    for f in StreamFormat::ALL {
        let mut p = Parser::new(*f);
        let s = p.feed(br#"{"type":"metadata","needs_human":{"reason":"needs a token"}}"#);
        assert!(
            s.contains(&Signal::NeedsHuman {
                reason: "needs a token".into()
            }),
            "{f}: {s:?}"
        );
        let s =
            p.feed(br#"{"type":"metadata","meta":{"artifact":{"kind":"report","path":"r.md"}}}"#);
        assert!(
            s.contains(&Signal::Artifact {
                kind: "report".into(),
                path: "r.md".into()
            }),
            "{f}: {s:?}"
        );
    }
}

#[test]
fn anything_else_is_log() {
    let long = format!(
        r#"{{"type":"done","pad":"{}"}}"#,
        "x".repeat(MAX_PARSED_LINE)
    );
    for f in StreamFormat::ALL {
        let mut p = Parser::new(*f);
        for line in [
            "plain text",
            "",
            "   ",
            "[1,2]",
            "{not json",
            r#"{"no_type":1}"#,
            r#"{"type":"mystery"}"#,
            r#"{"type":5}"#,
            long.as_str(),
        ] {
            assert_eq!(p.feed(line.as_bytes()), [], "{f}: {:.40}", line);
        }
    }
}

#[test]
fn auto_is_todays_detection() {
    for text in [fixture("codewhale", "pass"), fixture("claude", "pass")] {
        let mut p = Parser::new(StreamFormat::Auto);
        for line in text.lines() {
            assert_eq!(
                p.feed(line.as_bytes()),
                crate::stream_json::parse_line(line.as_bytes()).unwrap_or_default()
            );
        }
    }
}

#[test]
fn memory_stays_bounded() {
    let mut p = ClaudeParser::default();
    for i in 0..(MAX_REMEMBERED_IDS + 10) {
        let line = format!(
            r#"{{"type":"assistant","message":{{"id":"m{i}","content":[{{"type":"tool_use","id":"t{i}","name":"Bash"}}],"usage":{{"input_tokens":1,"output_tokens":1}}}}}}"#
        );
        p.feed(line.as_bytes());
    }
    assert_eq!(p.messages.map.len(), MAX_REMEMBERED_IDS);
    assert_eq!(p.tools.set.len(), MAX_REMEMBERED_IDS);
    let mut g = GeminiParser::default();
    let chunk = format!(
        r#"{{"type":"message","role":"assistant","content":"{}","delta":true}}"#,
        "y".repeat(10_000)
    );
    for _ in 0..20 {
        g.feed(chunk.as_bytes());
    }
    assert!(g.assistant_text.len() <= MAX_FINAL_TEXT);
}

/// The largest char boundary at or below `i` (`str::floor_char_boundary`
/// is newer than orca's rust-version).
fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn all_fixture_lines() -> Vec<String> {
    let mut out = Vec::new();
    for cli in ["claude", "codex", "gemini", "codewhale"] {
        let dir = fixtures().join("streams").join(cli);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            out.extend(text.lines().map(str::to_string));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20)) {
        for f in StreamFormat::ALL {
            let mut p = Parser::new(*f);
            let mut st = StreamState::default();
            for l in &lines {
                st.observe(p.feed(l));
            }
        }
    }

    #[test]
    fn damaged_stream_lines_never_panic(
        picks in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0usize..6, any::<u64>()), 1..30)
    ) {
        let lines = all_fixture_lines();
        for f in StreamFormat::ALL {
            let mut p = Parser::new(*f);
            let mut st = StreamState::default();
            for (which, at, how, n) in &picks {
                let line = &lines[which.index(lines.len())];
                let cut = at.index(line.len() + 1);
                let damaged = match how {
                    0 => line[..floor_boundary(line, cut)].to_string(),
                    1 => line.replace("\"input_tokens\":", &format!("\"input_tokens\":{n}0")),
                    2 => line.replace("\"output_tokens\":", "\"output_tokens\":-"),
                    3 => line.replace(':', ":[").to_string(),
                    4 => line.replace("\"id\":", "\"id\":1,\"x\":"),
                    _ => format!("{}{}", "[".repeat(200), line),
                };
                st.observe(p.feed(damaged.as_bytes()));
            }
            // Whatever the stream says, the counts stay consistent.
            prop_assert_eq!(st.tool_calls, st.usage.tool_calls);
        }
    }
}

// --- the stub CLIs through each preset's invocation --------------------------

struct StubRun {
    argv: Vec<String>,
    stdin: Vec<u8>,
    stdout: String,
    code: i32,
}

fn run_stub(argv: &[String], stdin: Option<&[u8]>, fixture: &Path, exit: i32) -> StubRun {
    let dir = tempfile::tempdir().unwrap();
    let stubs = fixtures().join("stubs");
    let path = format!(
        "{}:{}",
        stubs.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .env("PATH", path)
        .env("ORCA_STUB_FIXTURE", fixture)
        .env("ORCA_STUB_RECORD", dir.path())
        .env("ORCA_STUB_EXIT", exit.to_string())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let recorded = std::fs::read(dir.path().join("argv")).unwrap();
    StubRun {
        argv: recorded
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
        stdin: std::fs::read(dir.path().join("stdin")).unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// A 100 KiB prompt with lines, quotes, non-ASCII and a leading dash.
fn big_prompt() -> String {
    let mut p = String::from("-- Fix the parser.\n");
    let mut i = 0;
    while p.len() < 100 * 1024 {
        p.push_str(&format!("line {i}: \"quoted\" $HOME `tick` é ✓ \\n\n"));
        i += 1;
    }
    let end = floor_boundary(&p, 100 * 1024);
    p.truncate(end);
    p
}

#[test]
fn a_100_kib_prompt_reaches_each_stub_intact() {
    let prompt = big_prompt();
    assert!(prompt.len() > 100 * 1024 - 4);
    let dir = tempfile::tempdir().unwrap();
    let prompt_file = dir.path().join("prompt.md");
    std::fs::write(&prompt_file, &prompt).unwrap();
    let pf = prompt_file.display().to_string();
    for preset in Preset::ALL {
        let input = InvocationInput {
            program: None,
            model: Some("m"),
            prompt: &prompt,
            prompt_file: &pf,
            attempt_dir: "/attempt",
            task_id: "t",
            args: &[],
        };
        let inv = preset.invocation(&input);
        let fixture = fixtures()
            .join("streams")
            .join(preset.as_str())
            .join("pass.jsonl");
        let r = run_stub(&inv.argv, inv.stdin_bytes(&prompt), &fixture, 0);
        assert_eq!(r.argv, inv.argv, "{preset}");
        match inv.stdin {
            Stdin::Prompt => assert!(r.stdin == prompt.as_bytes(), "{preset}: stdin differs"),
            Stdin::Closed => {
                assert!(r.stdin.is_empty(), "{preset}");
                let last = r.argv.last().unwrap();
                assert!(last.contains(&pf) && last.len() < 512, "{preset}: {last}");
            }
        }
        // Its stream, parsed by the preset's format, passes.
        let (_, st) = run(preset.format(), &r.stdout);
        assert!(st.done && st.final_error().is_none(), "{preset}");
        assert!(st.tokens > 0, "{preset}");
        assert_eq!(
            preset.classify_exit(r.code).class,
            crate::runtime::ExitClass::Success
        );
    }
}

#[test]
fn a_stub_reads_its_prompt_from_the_file_when_the_host_closes_stdin() {
    let prompt = big_prompt();
    let dir = tempfile::tempdir().unwrap();
    let prompt_file = dir.path().join("prompt.md");
    std::fs::write(&prompt_file, &prompt).unwrap();
    let pf = prompt_file.display().to_string();
    let inv = Preset::Codex.invocation(&InvocationInput {
        program: None,
        model: None,
        prompt: &prompt,
        prompt_file: &pf,
        attempt_dir: "/attempt",
        task_id: "t",
        args: &["--sandbox".to_string(), "read-only".to_string()],
    });
    let wrapped = stdin_from_file(&inv.argv, &pf);
    let fixture = fixtures().join("streams/codex/pass.jsonl");
    let r = run_stub(&wrapped, None, &fixture, 0);
    assert!(r.stdin == prompt.as_bytes());
    assert_eq!(r.argv, inv.argv);
}

#[test]
fn stub_exit_codes_map_per_preset() {
    let fixture = fixtures().join("streams/gemini/failure.jsonl");
    let inv = Preset::Gemini.invocation(&InvocationInput {
        program: None,
        model: None,
        prompt: "p",
        prompt_file: "/p",
        attempt_dir: "/a",
        task_id: "t",
        args: &[],
    });
    let r = run_stub(&inv.argv, inv.stdin_bytes("p"), &fixture, 53);
    assert_eq!(r.code, 53);
    let m = Preset::Gemini.classify_exit(r.code);
    assert_eq!(m.class, crate::runtime::ExitClass::Budget);
    assert_eq!(
        m.class.alert(),
        Some(crate::model::AlertClass::BudgetExceeded)
    );
    let (_, st) = run(StreamFormat::Gemini, &r.stdout);
    assert!(st.final_error().is_some());
}
