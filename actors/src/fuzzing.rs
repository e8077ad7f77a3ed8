//! Fuzz entry points: one `pub fn <target>(data: &[u8])` per cargo-fuzz
//! target in `fuzz/fuzz_targets/` (the targets are one-line wrappers), so
//! the stable test `tests/fuzz_corpus.rs` runs the very same code over
//! every corpus and regression input without a nightly toolchain
//! (docs/fuzzing.md).
//!
//! Each function feeds arbitrary bytes to one of orca's parsers the way
//! orca itself does, and checks what must hold whatever the input: no
//! panic (libFuzzer reports one as a crash), and for inputs that parse,
//! the invariants named at each function. Nothing here is used by orca at
//! run time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::journal::segment::{
    encode_frame, frame_crc, FrameHead, SegmentHeader, FRAME_HEADER_LEN, HEADER_LEN,
};
use crate::model::Timestamp;
use crate::spec::{Format, OrcaConfig, ValidateContext};

/// A target's entry point.
pub type Entry = fn(&[u8]);

/// Every target of this crate: (name, entry point). `orca::fuzzing` adds
/// the API and MCP ones.
pub const TARGETS: &[(&str, Entry)] = &[
    ("spec_json", spec_json),
    ("spec_toml", spec_toml),
    ("agent_spec", agent_spec),
    ("journal_frame", journal_frame),
    ("journal_segment", journal_segment),
    ("snapshot", snapshot),
    ("parse_auto", parse_auto),
    ("parse_claude", parse_claude),
    ("parse_codex", parse_codex),
    ("parse_gemini", parse_gemini),
    ("parse_codewhale", parse_codewhale),
    ("control_message", control_message),
    ("agent_webhook", agent_webhook),
    ("agent_tool", agent_tool),
    ("alert_config", alert_config),
    ("cron", cron),
];

/// A fresh, empty directory for one input (removed by [`Scratch`]'s drop).
/// Unique per process and call, so the stable test's threads do not meet.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(label: &str) -> std::io::Result<Scratch> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("orca-fuzz-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A run spec through `check_str` (parse, validate, locate every
/// diagnostic), as `orca validate`, `orca run` and `POST /v1/fleet/runs`
/// read it. A spec that validates round-trips through its journaled JSON.
fn spec(data: &[u8], format: Format) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = OrcaConfig::default();
    let root = std::env::temp_dir();
    let ctx = ValidateContext::workspace(&root, &config);
    let report = crate::spec::check_str(text, format, "fuzz", &ctx);
    for d in &report.diagnostics {
        let _ = d.display("fuzz").to_string();
        if let Some(line) = d.line {
            // A located diagnostic points into the text.
            assert!(
                line as usize <= text.lines().count().max(1) + 1,
                "line {line} past the end: {d:?}"
            );
        }
    }
    if let Some(spec) = report.spec {
        let journaled = serde_json::to_string(&spec).unwrap_or_default();
        let back = crate::spec::from_journal_json(&journaled);
        assert!(
            back.is_ok(),
            "a valid spec's journal JSON does not read back: {back:?}"
        );
    }
}

pub fn spec_json(data: &[u8]) {
    spec(data, Format::Json)
}

pub fn spec_toml(data: &[u8]) {
    spec(data, Format::Toml)
}

/// An agent spec through `check_agent_str` (TOML or JSON by content, as
/// `orca agent create` and `POST /v1/agents` read it).
pub fn agent_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let format = Format::detect("agent", text);
    match crate::agent::spec::check_agent_str(text, format, "fuzz") {
        Ok((spec, warnings)) => {
            for w in &warnings {
                let _ = w.display("fuzz").to_string();
            }
            let journaled = crate::agent::spec::to_journal_json(&spec);
            let back = crate::agent::spec::from_journal_json(&journaled);
            assert!(back.is_ok(), "agent spec journal JSON: {back:?}");
            for s in &spec.subscriptions {
                if let Some(rule) = crate::agent::timer::TimerRule::of(s) {
                    let _ = rule.next_after(Timestamp(0), Timestamp(1_800_000_000_000_000_000));
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// A frame payload (what follows a frame's length and CRC) through the
/// decoder recovery and readers use: the head, then every record.
pub fn journal_frame(data: &[u8]) {
    let _ = SegmentHeader::decode(data);
    let _ = FrameHead::decode(data);
    if let Ok((head, envs)) = crate::journal::segment::decode_frame(data, Path::new("fuzz.seg"), 0)
    {
        assert_eq!(envs.len() as u64, u64::from(head.count));
        for (i, e) in envs.iter().enumerate() {
            assert_eq!(e.seq, head.first_seq + i as u64);
        }
    }
}

/// A journal directory holding one segment built from the input, through
/// recovery's deep scan (`orca journal verify`), the reader, and the
/// repair that truncates at corruption followed by a scan that must then
/// be clean.
///
/// The first byte chooses how: even, the rest is a whole segment file as
/// found on disk; odd, a valid header followed by frames cut from the rest
/// (`u16` length, then that many bytes), each with a correct CRC so the
/// payload decoder is reached — optionally a torn last frame.
pub fn journal_segment(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(scratch) = Scratch::new("journal") else {
        return;
    };
    let dir = scratch.path();
    let bytes = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        segment_of(rest, mode & 2 != 0)
    };
    let name = crate::journal::segment::segment_file_name(1);
    if std::fs::write(dir.join(&name), &bytes).is_err() {
        return;
    }
    if mode & 4 != 0 {
        // A second segment after the first: the seams between segments.
        let _ = std::fs::write(
            dir.join(crate::journal::segment::segment_file_name(
                1 + u64::from(mode >> 3),
            )),
            segment_of(rest, false),
        );
    }
    let _ = crate::journal::recovery::scan(dir, false);
    let deep = crate::journal::recovery::scan(dir, true);
    if let Ok(reader) = crate::journal::read(dir, crate::journal::ReadRange::all()) {
        let mut last = 0;
        for env in reader.take(100_000) {
            match env {
                Ok(env) => {
                    assert!(env.seq > last, "seq {} after {last}", env.seq);
                    last = env.seq;
                }
                Err(_) => break,
            }
        }
    }
    let _ = crate::journal::highest_seq(dir);
    let _ = crate::journal::first_seq(dir);
    if let Ok(report) = deep {
        if let Some(t) = &report.torn_tail {
            let _ = t.warning();
        }
        if let Some(c) = &report.corruption {
            let _ = c.to_error().to_string();
        }
        if !report.is_ok() && crate::journal::recovery::repair_truncate_at_corruption(dir).is_ok() {
            if let Ok(after) = crate::journal::recovery::scan(dir, true) {
                assert!(after.is_ok(), "corruption left after repair: {after:?}");
            }
        }
    }
}

/// A segment: a valid header (first seq 1), then frames cut from `data`
/// with correct CRCs; `torn`: the last frame's length claims more bytes
/// than follow.
fn segment_of(data: &[u8], torn: bool) -> Vec<u8> {
    let mut out = SegmentHeader::new(1, Timestamp(0)).encode().to_vec();
    let mut rest = data;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let payload = &rest[2..];
        let n = n.min(payload.len());
        let len_bytes = u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        out.extend_from_slice(&len_bytes);
        out.extend_from_slice(&frame_crc(len_bytes, &payload[..n]).to_le_bytes());
        out.extend_from_slice(&payload[..n]);
        rest = &payload[n..];
    }
    if torn {
        out.extend_from_slice(&1000u32.to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
        out.extend_from_slice(&[1, 2, 3]);
    }
    // Keep `encode_frame` and `FRAME_HEADER_LEN` honest: a frame this
    // function would write is one the writer writes.
    debug_assert_eq!(FRAME_HEADER_LEN, 8);
    let _ = encode_frame;
    let _ = HEADER_LEN;
    out
}

/// A fleet snapshot (`FleetView`, what `orca status` and the daemon load
/// first): the raw bytes through the header check, the same bytes as the
/// payload of a well-formed snapshot through the bincode decoder, and
/// (first byte odd) the whole load path on disk: `load_projection` over
/// an empty journal, which must answer, never panic.
pub fn snapshot(data: &[u8]) {
    use crate::journal::snapshot;
    use crate::view::FleetView;
    let _ = snapshot::check_snapshot(data);
    let decoded = crate::journal::schema::decode_snapshot::<FleetView>(data);
    if let Ok((view, used)) = &decoded {
        assert!(*used <= data.len());
        // What decodes encodes again.
        let _ = crate::journal::schema::encode(view);
    }
    if data.first().is_some_and(|b| b % 2 == 1) {
        let Ok(scratch) = Scratch::new("snapshot") else {
            return;
        };
        let ws = crate::workspace::Workspace::at(scratch.path());
        let (journal, snaps) = (ws.journal_dir(), ws.snapshot_dir());
        if std::fs::create_dir_all(&journal).is_err() || std::fs::create_dir_all(&snaps).is_err() {
            return;
        }
        let file = snaps.join(snapshot::snapshot_file_name(FleetView::SNAPSHOT, 0));
        if std::fs::write(&file, snapshot::wrap(0, &data[1..])).is_ok() {
            let _ = FleetView::load(&ws);
        }
    }
}

/// Every line of the input through a stream parser and into the stream
/// state the attempt actor keeps, as an attempt's stdout is read.
fn parse_stream(data: &[u8], format: crate::runtime::StreamFormat) {
    use crate::runtime::parse::{Parser, StreamParser as _};
    let mut parser = Parser::new(format);
    let mut state = crate::stream_json::StreamState::default();
    for line in data.split(|b| *b == b'\n') {
        let signals = parser.feed(line);
        let _ = state.observe(signals);
    }
    let _ = state.final_error();
    let _ = state.usage.tokens_for_budget();
}

pub fn parse_auto(data: &[u8]) {
    for line in data.split(|b| *b == b'\n') {
        let _ = crate::stream_json::parse_line(line);
    }
    parse_stream(data, crate::runtime::StreamFormat::Auto)
}

pub fn parse_claude(data: &[u8]) {
    parse_stream(data, crate::runtime::StreamFormat::Claude)
}

pub fn parse_codex(data: &[u8]) {
    parse_stream(data, crate::runtime::StreamFormat::Codex)
}

pub fn parse_gemini(data: &[u8]) {
    parse_stream(data, crate::runtime::StreamFormat::Gemini)
}

pub fn parse_codewhale(data: &[u8]) {
    parse_stream(data, crate::runtime::StreamFormat::Codewhale)
}

/// A control message as `POST /v1/actors/messages` and `orca send` read
/// it: the JSON `message` (a bare name or `{type, …}`), and the actor path.
/// The input's first line is the path, the rest the message's JSON.
pub fn control_message(data: &[u8]) {
    let (path, body) = split_line(data);
    if let Ok(path) = std::str::from_utf8(path) {
        if let Ok(p) = path.parse::<crate::path::ActorPath>() {
            // A path that parses prints as a path that parses to itself.
            let again = p.to_string().parse::<crate::path::ActorPath>();
            assert_eq!(again.as_ref().ok(), Some(&p), "{path:?} -> {p}");
            let _ = crate::control::ControlKind::accepted_by(p.kind());
        }
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        match crate::control::ControlMessage::from_json(v) {
            Ok(m) => {
                let _ = (m.kind().name(), m.name());
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// A webhook for an agent's subscription through `agent::webhook::verify`
/// (the check before anything is journaled). Lines: `webhook-id`,
/// `webhook-timestamp`, `webhook-signature`, the secret's value, then the
/// body. A request signed with the key it is checked against passes.
pub fn agent_webhook(data: &[u8]) {
    use crate::agent::webhook::{verify, WebhookHeaders};
    use crate::alert::secret::Secret;
    let (id, rest) = split_line(data);
    let (ts, rest) = split_line(rest);
    let (sig, rest) = split_line(rest);
    let (secret, body) = split_line(rest);
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (id, ts, sig, secret) = (s(id), s(ts), s(sig), s(secret));
    let secret = Secret::new("FUZZ_SECRET", secret);
    let now = Timestamp(1_800_000_000_000_000_000);
    let headers = WebhookHeaders {
        id: Some(&id),
        timestamp: Some(&ts),
        signature: Some(&sig),
    };
    let _ = verify(headers, body, Some(&secret), "FUZZ_SECRET", 300_000, now);
    let _ = verify(WebhookHeaders::default(), body, None, "FUZZ_SECRET", 0, now);
    // Signed properly, at `now`: accepted.
    if let Ok(key) = crate::alert::sign::SigningKey::from_secret(&secret) {
        let t = now.nanos() / 1_000_000_000;
        let good = key.sign(&id, t, body);
        let t = t.to_string();
        let ok = verify(
            WebhookHeaders {
                id: Some(&id),
                timestamp: Some(&t),
                signature: Some(&good),
            },
            body,
            Some(&secret),
            "FUZZ_SECRET",
            300_000,
            now,
        );
        assert_eq!(
            ok.as_deref(),
            Ok(id.as_str()),
            "a signed request was refused"
        );
    }
}

/// An agent tool call's input (`POST /v1/agents/{id}/tools/{tool}`, `orca
/// mcp`, `orca agent act`): the first line is the tool, the rest its JSON
/// arguments, through `ToolCall::from_args`; a call that parses has a
/// stable key, and a commitment's `due` is parsed as the agent does.
pub fn agent_tool(data: &[u8]) {
    use crate::agent::think::ToolCall;
    let (tool, body) = split_line(data);
    let tool = String::from_utf8_lossy(tool);
    let args = if body.is_empty() {
        serde_json::Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return,
        }
    };
    let _ = crate::agent::think::input_schema(&tool);
    if let Ok(call) = ToolCall::from_args(&tool, args) {
        assert_eq!(call.key(), call.clone().key());
        assert_eq!(call.name(), tool);
        if let ToolCall::Commit { due, .. } = &call {
            let _ = crate::agent::think::parse_due(due, Timestamp(1_800_000_000_000_000_000));
        }
    }
}

/// `.orca/config.toml` (whose `[alerts]` is the workspace's alert config)
/// through `OrcaConfig::parse`, then what the alert router and `orca alert
/// plan` derive from it: the resolved adapters, routes and env check.
pub fn alert_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((config, _warnings)) = OrcaConfig::parse(text) else {
        return;
    };
    let alerts = crate::alert::config::ResolvedAlerts::from_config(config.alerts.as_ref());
    for class in crate::model::AlertClass::ALL {
        for a in alerts.targets(*class, Some("t")) {
            let _ = alerts.severity(*class, Some("t"), &a.name);
        }
    }
    let spec = crate::spec::RunSpec::default();
    let _ = crate::alert::config::ResolvedAlerts::for_run(&spec, config.alerts.as_ref());
    let _ = crate::alert::config::AlertPlan::of(&spec, config.alerts.as_ref(), &NoEnv);
    let _ = config.price_table();
}

struct NoEnv;

impl crate::alert::secret::EnvLookup for NoEnv {
    fn var(&self, _name: &str) -> Option<String> {
        None
    }
}

/// A cron expression of a timer subscription through `parse_cron`, and
/// the next occurrences the timer would arm, which must move forward.
pub fn cron(data: &[u8]) {
    let Ok(expr) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(c) = crate::agent::timer::parse_cron(expr) else {
        return;
    };
    let rule = crate::agent::timer::TimerRule::Cron(Box::new(c));
    let mut at = Timestamp(1_800_000_000_000_000_000);
    for _ in 0..3 {
        match rule.next_after(at, at) {
            Some(next) => {
                assert!(next > at, "{expr:?}: {next:?} is not after {at:?}");
                at = next;
            }
            None => break,
        }
    }
    let _ = rule.last_at_or_before(Timestamp(0), Timestamp(0), at);
}

/// The input's first line and the rest.
pub fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
