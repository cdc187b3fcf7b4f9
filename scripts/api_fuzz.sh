#!/usr/bin/env bash
# Property-based API fuzzing: starts `ldd serve` (loopback, a random bearer token, a
# temporary state directory, no brokers or databases configured) and runs schemathesis
# against the server's own /openapi.json with every check, so the document is held to be
# the contract: documented statuses and bodies, the bearer scheme, schema-valid requests
# accepted, schema-invalid ones rejected, answers that match their schemas.
#
# Usage: scripts/api_fuzz.sh [extra schemathesis arguments]
#   LDD_BIN          the ldd binary (default target/debug/ldd, which the test build makes)
#   LDD_FUZZ_PYTHON  a Python with schemathesis (default: the test command's cached venv)
#   LDD_FUZZ_EXAMPLES  examples per operation (default 100)
#   LDD_FUZZ_TIMEOUT   seconds for the whole schemathesis run (default 600)
# Exits non-zero on any failure; the server is always stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

ldd="${LDD_BIN:-target/debug/ldd}"
python="${LDD_FUZZ_PYTHON:-${LDD_CACHE_DIR:-$HOME/.cache/ldd}/venv/bin/python}"
examples="${LDD_FUZZ_EXAMPLES:-100}"
time_limit="${LDD_FUZZ_TIMEOUT:-600}"

[ -x "$ldd" ] || { echo "api_fuzz: $ldd is missing; build it (cargo build -p ldd-bin)" >&2; exit 1; }
"$python" -c 'import schemathesis' 2>/dev/null || {
  echo "api_fuzz: $python has no schemathesis; scripts/test.sh installs it (or set LDD_FUZZ_PYTHON)" >&2
  exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/ldd-api-fuzz.XXXXXX")"
server_pid=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  local status=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    # The shutdown waits for running exports; none run here, so this is quick.
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -s "$work/server.log" ]; then
    echo "api_fuzz: last lines of the server log:" >&2
    tail -n 20 "$work/server.log" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

token="$("$python" -c 'import secrets; print(secrets.token_hex(24))')"

# Port 0: the kernel picks a free port, the server prints the address it got. The token
# goes through the environment (flags show in process lists). No --kafka-brokers and no
# --config: exports that name no brokers fail at validation, nothing leaves loopback.
# --manifest-topic '' so no export ever tries to publish a manifest.
start_server() {
  : >"$work/server.log"
  env -u LDD_KAFKA_BROKERS -u LDD_CONFIG LDD_TOKEN="$token" \
    "$ldd" serve --listen 127.0.0.1:0 --state-dir "$work/state" --log warn --manifest-topic '' \
    2>>"$work/server.log" &
  server_pid=$!
  base=""
  for _ in $(seq 100); do
    base="$(sed -n 's|^ldd serve: listening on \(http://[^ ]*\) .*|\1|p' "$work/server.log")"
    [ -n "$base" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || { echo "api_fuzz: ldd serve exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "api_fuzz: ldd serve did not start listening" >&2
  exit 1
}
stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# Seed state so that the operations on one connection or export reach their handlers'
# logic instead of answering 404 to every generated id: the server creates its state file
# (first start), then a connection and a failed export are written into it and the server
# starts again on it, as after a restart. The connection's InfluxDB URL is a closed
# loopback port (9, discard), so anything that connects is refused at once (502) and
# nothing leaves the machine; the export failed before planning, so resume, cancel and
# manifest answer 409 without any I/O.
start_server
stop_server
"$python" - "$work/state/ldd-state.sqlite3" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
spec = {"id": "seed-influx", "db_type": "influx", "url": "http://127.0.0.1:9"}
db.execute("INSERT INTO connections VALUES (?, ?, ?)",
           ("seed-influx", json.dumps(spec), "2024-01-01T00:00:00Z"))
status = {
    "id": "seed-failed", "origin": "v1", "state": "failed", "connection": "seed-influx",
    "dataset": "telegraf:cpu", "topic": "fuzz",
    "request": {"connection": "seed-influx", "dataset": {"database": "telegraf", "table": "cpu"},
                "destination": {"brokers": "127.0.0.1:9", "topic": "fuzz"}, "export_id": "seed-failed"},
    "progress": {"records_done": 0, "records_total": 0, "bytes_done": 0, "messages_done": 0,
                 "chunks_done": 0, "chunks_total": 0, "elapsed_ms": 0, "records_per_sec": 0.0},
    "error": "connecting to the InfluxDB server: refused", "error_cause": "source",
    "created_at": "2024-01-01T00:00:00Z", "finished_at": "2024-01-01T00:00:01Z",
}
db.execute("INSERT INTO exports VALUES (?, ?, ?, ?, NULL)",
           ("seed-failed", "failed", status["created_at"], json.dumps(status)))
db.commit()
PY
start_server
echo "api_fuzz: ldd serve at $base (state in $work/state, seeded)"
"$python" -c 'import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]}), timeout=10)' \
  "$base/v1/exports/seed-failed" "$token" 2>/dev/null || {
  echo "api_fuzz: the seeded export does not load; does the state file's format still match?" >&2
  exit 1
}

# Half the generated ids of the operations that read one connection or export are the
# seeded ones (the other half stay random: unknown ids must answer 404). Operations that
# delete are left unbound, so that the seeds stay for the rest of the run.
cat >"$work/schemathesis.toml" <<'TOML'
[dictionaries.connections]
values = ["seed-influx"]

[dictionaries.exports]
values = ["seed-failed"]

[[operations]]
include-operation-id-regex = "^legacy_(list_datasets|dataset_detail|time_range)$"
parameters = { "query.connection_id" = { dictionary = "connections", probability = 0.5 } }

[[operations]]
include-operation-id-regex = "^v1_(get_connection|list_datasets|dataset_detail|time_range)$"
parameters = { "path.id" = { dictionary = "connections", probability = 0.5 } }

[[operations]]
include-operation-id-regex = "^v1_(get_export|cancel_export|resume_export|export_events|export_manifest)$"
parameters = { "path.id" = { dictionary = "exports", probability = 0.5 } }
TOML

# Operations that take the address of a database or a Kafka broker are left out, so that
# the fuzzer can never make the server connect anywhere (generated URLs and broker lists
# could name any host; the run must need no service and send nothing off loopback):
#   POST /db-connections/register   `url`: registration connects to the database first
#   POST /v1/connections            `url`: likewise
#   GET  /data/export/              `kafka_brokers`: exports to the brokers it names
#   GET  /data/query-by-time/       `kafka_brokers`: likewise
#   POST /v1/exports                `destination.brokers`: likewise
# Every other operation is fuzzed, including the ones that only look a connection or an
# export up (with none registered they answer 404, which the document must say).
excluded=(
  --exclude-operation-id legacy_register
  --exclude-operation-id v1_create_connection
  --exclude-operation-id legacy_export
  --exclude-operation-id legacy_query_by_time
  --exclude-operation-id v1_create_export
)

status=0
(
  cd "$work"
  timeout --kill-after=10 "$time_limit" "$python" -m schemathesis.cli \
    --config-file "$work/schemathesis.toml" run "$base/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --mode all \
    --max-examples "$examples" \
    --workers 2 \
    --generation-database none \
    --request-timeout 30 \
    --no-color \
    "${excluded[@]}" \
    "$@"
) || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "api_fuzz: schemathesis did not finish within $time_limit s" >&2
fi
exit "$status"
