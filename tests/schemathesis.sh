#!/usr/bin/env bash
# API fuzzing: schemathesis (PyPI) generates requests from /api/openapi.json against a flare
# started here on loopback with a fresh data folder and a token with every scope. Passes when no
# response is a 5xx and every response conforms to the document (status, headers, content type,
# body schema). The upload URL is left out: its signature cannot be generated from a schema,
# and tests/api/uploads.rs tampers with it table by table instead.
# Usage: tests/schemathesis.sh [MAX_EXAMPLES=40]
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-40}
command -v schemathesis >/dev/null || { echo "installing schemathesis (PyPI) with pip"; python3 -m pip install --quiet schemathesis; }
work=$(mktemp -d)
export FLARE_DATA_DIR="$work/data"
# Presigns that declare a size reserve disk until they expire; with the default byte ceiling a few
# hundred generated sizes add up to more than a small disk holds, and the honest answer (507) is a
# 5xx. A 1 MiB ceiling keeps the run's promises far below any disk, whatever the machine.
export FLARE_MAX_UPLOAD_BYTES=1048576
cleanup() { kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
bin=${CARGO_TARGET_DIR:-target}/debug/flare
token=$("$bin" token create --name schemathesis 2>/dev/null)
"$bin" serve --listen 127.0.0.1:0 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/log" 2>/dev/null && break; sleep 0.1; done
base=$(grep -o 'listening on http://[0-9.:]*' "$work/log" | head -1 | sed 's/listening on //')
# A few real videos, so that the id-taking operations also see 200s.
for i in 1 2 3; do
  curl -sf "$base/api/video/create" -H "Authorization: Bearer $token" -d "{\"fileName\": \"v$i.mp4\", \"s3Key\": \"vid_fixture_$i\"}" >/dev/null
done
schemathesis run "$base/api/openapi.json" --url "$base" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --exclude-path-regex '^/upload/' \
  --max-examples "$examples" --no-color 2>&1 | tee "$work/report"
grep -q "Test cases:" "$work/report"
