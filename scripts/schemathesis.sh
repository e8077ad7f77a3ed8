#!/usr/bin/env bash
# Runs schemathesis (from PyPI) against a live orca daemon in a temporary
# workspace, with the workspace's bearer token, over the committed OpenAPI
# document's operations except `POST /v1/daemon/shutdown` and the streaming
# `GET /v1/events`: no 5xx, responses that fit the document.
#
#   scripts/schemathesis.sh [extra schemathesis args...]
#
# ORCA: the orca binary (default: target/debug/orca, built if missing).
# VENV: where schemathesis is installed (default ~/.cache/orca-schemathesis).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$HOME/.cache/orca-schemathesis}
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q schemathesis
fi
orca=${ORCA:-$root/target/debug/orca}
[ -x "$orca" ] || (cd "$root" && cargo build --bin orca)
ws=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$ws"
}
trap cleanup EXIT
"$orca" --workspace "$ws" init >/dev/null 2>&1 || true
"$orca" --workspace "$ws" up >"$ws/up.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  [ -s "$ws/.orca/daemon.json" ] && break
  sleep 0.1
done
addr=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["address"])' "$ws/.orca/daemon.json")
token=$(cat "$ws/.orca/token")
echo "orca at $addr (workspace $ws)"
cd "$ws" # schemathesis keeps its state (and reads its config) here
# Something to find: a run with a busy worker and an idle one, an agent with
# a webhook subscription; schemathesis then uses their ids in the paths.
python3 - "$addr" "$token" >schemathesis.toml <<'PY'
import json, sys, urllib.request
addr, token = sys.argv[1], sys.argv[2]
def post(path, body, ctype):
    req = urllib.request.Request(f"http://{addr}{path}", data=body.encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
run = post("/v1/fleet/runs?max_workers=2",
    '[[tasks]]\nid = "busy"\ncommand = ["sleep", "600"]\n\n'
    '[[tasks]]\nid = "done"\ncommand = ["true"]\n', "application/toml")["run"]
agent = post("/v1/agents",
    'id = "probe"\npersona = "a schemathesis target"\n\n'
    '[[subscriptions]]\nid = "hook"\nkind = "webhook"\nsecret_env = "ORCA_ST_HOOK_SECRET"\n',
    "application/toml")["agent"]
print("[parameters]")
for k, v in {"path.run_id": run, "path.task_id": "done", "path.worker_id": f"{run}:local-1",
             "path.agent_id": agent, "path.subscription": "hook"}.items():
    print(f'"{k}" = "{v}"')
PY
cat schemathesis.toml
"$venv/bin/schemathesis" run "$root/docs/openapi.json" \
  --url "http://$addr" \
  --header "Authorization: Bearer $token" \
  --exclude-path /v1/daemon/shutdown \
  --exclude-path /v1/events \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${MAX_EXAMPLES:-50}" \
  "$@"
