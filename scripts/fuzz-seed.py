#!/usr/bin/env python3
"""Writes the fuzz seed corpora (fuzz/corpus/<target>/seed-*) from the
examples, the docs' TOML blocks and the test fixtures. Re-run it when those
change; libFuzzer's own finds are not checked in (fuzz/.gitignore)."""
import glob, json, os, re, struct, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(root)
out = "fuzz/corpus"

def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

def read(p):
    with open(p, "rb") as f:
        return f.read()

def toml_blocks(path):
    text = open(path).read()
    return re.findall(r"```toml\n(.*?)```", text, re.S)

# Run specs.
for p in sorted(glob.glob("examples/*.json")):
    put("spec_json", os.path.basename(p), read(p))
    put("api_submit", os.path.basename(p), b"application/json\n" + os.path.basename(p).encode() + b"\n" + read(p))
for p in sorted(glob.glob("examples/*.toml")):
    put("spec_toml", os.path.basename(p), read(p))
    put("api_submit", os.path.basename(p), b"application/toml\n" + os.path.basename(p).encode() + b"\n" + read(p))
for i, b in enumerate(toml_blocks("docs/spec.md")):
    put("spec_toml", f"spec-md-{i}", b)
put("api_submit", "detect", b"\napi\n[{\"id\":\"a\",\"command\":[\"true\"]}]")

# Agent specs and cron.
for i, b in enumerate(toml_blocks("docs/agents.md")):
    put("agent_spec", f"agents-md-{i}", b)
    for m in re.findall(r'cron\s*=\s*"([^"]*)"', b):
        put("cron", f"agents-md-{i}", m)
for i, c in enumerate(["*/5 * * * *", "0 9 * * 1-5", "30 2 1 * *", "0 0 29 2 *",
                       "59 23 31 12 *", "0 0 * * SUN", "0-59/7 */3 1,15 JAN-JUN MON-FRI",
                       "@daily", "0 0 L * *", "0 0 * * 5L", "0 0 * * 1#2"]):
    put("cron", f"handmade-{i}", c)

# Alert config: the docs' [alerts] blocks as .orca/config.toml.
for i, b in enumerate(toml_blocks("docs/alerts.md")):
    put("alert_config", f"alerts-md-{i}", b)
for i, b in enumerate(toml_blocks("docs/runtimes.md")):
    put("alert_config", f"runtimes-md-{i}", b)

# Journal: the v1 fixture's segments, their frames, their snapshot.
HEADER_LEN = 32
for p in sorted(glob.glob("tests/fixtures/journal-v1/journal/*.seg")):
    seg = read(p)
    base = os.path.basename(p)
    put("journal_segment", "whole-" + base, b"\x00" + seg)
    frames = b""
    pos = HEADER_LEN
    n = 0
    while pos + 8 <= len(seg):
        (length,) = struct.unpack_from("<I", seg, pos)
        payload = seg[pos + 8 : pos + 8 + length]
        if len(payload) != length:
            break
        put("journal_frame", f"{base}-{n}", payload)
        if length < 65536:
            frames += struct.pack("<H", length) + payload
        pos += 8 + length
        n += 1
    put("journal_segment", "frames-" + base, b"\x01" + frames)
    put("journal_segment", "frames-torn-" + base, b"\x03" + frames)
    put("journal_segment", "frames-two-" + base, b"\x0d" + frames)
for p in sorted(glob.glob("tests/fixtures/journal-v1/snapshots/*.snap")):
    snap = read(p)
    put("snapshot", "fixture-raw", snap)
    put("snapshot", "fixture-payload", b"\x01" + snap[32:])
for p in sorted(glob.glob("fuzz/seeds/snapshot/*")):
    snap = read(p)
    put("snapshot", os.path.basename(p) + "-raw", snap)
    put("snapshot", os.path.basename(p) + "-payload", snap[32:])
    put("snapshot", os.path.basename(p) + "-load", b"\x01" + snap[32:])

# Agent CLI streams.
for cli in ["claude", "codex", "gemini", "codewhale"]:
    for p in sorted(glob.glob(f"actors/tests/fixtures/streams/{cli}/*.jsonl")):
        put(f"parse_{cli}", os.path.basename(p), read(p))
        put("parse_auto", f"{cli}-{os.path.basename(p)}", read(p))

# Control messages: the first line the actor path, the rest the message.
for i, (path, msg) in enumerate([
    ("/runs/r-01/attempts/lint:2", '"interrupt"'),
    ("/runs/r-01/attempts/lint:2", '"restart"'),
    ("/runs/r-01", '{"type":"stop","reason":"wrong branch"}'),
    ("/runs/r-01", '"pause"'),
    ("/agents/triage", '{"type":"tell","text":"look at r-01"}'),
    ("/agents/triage", '{"type":"approve","request":"a-1"}'),
    ("/", '{"type":"nope"}'),
]):
    put("control_message", f"handmade-{i}", f"{path}\n{msg}")
    put("api_control", f"message-{i}", json.dumps({"path": path, "message": json.loads(msg)}))
for i, (verb, body) in enumerate([("tell", '{"text":"hi"}'), ("approve", '{"request":"x"}'),
                                  ("pause", ""), ("deny", "{}")]):
    put("api_control", f"steer-{i}", f"{verb}\n{body}")

# Verdicts and stop bodies.
for i, b in enumerate(['{"verdict":"pass","note":"checked the diff","who":"alice"}',
                       '{"verdict":"fail","attempt":2}', '{"reason":"wrong branch"}', "{}"]):
    put("api_verdict", f"handmade-{i}", b)

# Agent tools and webhooks.
tools = [
    ("commit", {"what": "check the deploy", "due": "10m"}),
    ("commit", {"what": "x", "due": "2030-01-01T00:00:00Z"}),
    ("complete", {"commitment": "c-1"}),
    ("note", {"text": "saw r-01 fail twice"}),
    ("ask_human", {"question": "retry?"}),
    ("raise_alert", {"class": "needs_human", "reason": "stuck"}),
    ("start_run", {"spec_path": "examples/smoke.toml"}),
    ("start_run", {"spec": "[[tasks]]\nid = \"a\"\ncommand = [\"true\"]\n"}),
    ("stop_run", {"run": "r-01"}),
]
for i, (t, a) in enumerate(tools):
    put("agent_tool", f"{t}-{i}", f"{t}\n{json.dumps(a)}")
    put("api_agent", f"{t}-{i}", f"{t}\n{json.dumps(a)}")
    put("mcp_tool", f"{t}-{i}", json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                            "params": {"name": t, "arguments": a}}))
put("api_agent", "raise", '{"class":"needs_human","reason":"disk full"}')
put("api_agent", "probe", '{"adapter":"ops-slack","class":"run_completed"}')
put("mcp_tool", "logs", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                    "params": {"name": "logs", "arguments": {"run": "r-1", "task": "t", "stream": "stderr", "max_bytes": 10}}}))
put("mcp_tool", "logs-lines", 'logs\n{"run":"r-1","task":"t","attempt":1}')
put("mcp_tool", "list", '{"jsonrpc":"2.0","id":2,"method":"tools/list"}')
put("agent_webhook", "signed-shape",
    "msg_1\n1800000000\nv1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=\nwhsec_c2VjcmV0LWJ5dGVzLTAxMjM0NTY3ODk=\n{\"ok\":true}")
put("agent_webhook", "two-sigs",
    "msg_2\n1799999999\nv1,abc v1,def v2,x\nwhsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\nplain text body")
print("seeded", sum(len(fs) for _, _, fs in os.walk(out)), "files")
