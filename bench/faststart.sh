#!/usr/bin/env bash
# Fast start: first-frame and seek times in Chromium over a throttled link (20 Mbit/s, 50 ms),
# for an index-last MP4 played from its original upload and from flare's index-first copy, in
# turn, in the same run (bench/faststart.mjs drives Chromium).
#
#   bench/faststart.sh           a ~300 MB file (60 s of 1080p at 40 Mbit/s), 3 runs of each
#   bench/faststart.sh --smoke   a ~8 MB file, one run: keeps the harness from rotting
#
# The report goes to stdout and bench/results/FASTSTART.md (smoke: FASTSTART-SMOKE.md).
# Needs ffmpeg, Debian's chromium and the browser tests' npm packages (tests/browser, npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SMOKE=0
[ "${1:-}" = --smoke ] && SMOKE=1
if [ $SMOKE = 1 ]; then SECS=10; SIZE=1280x720; RATE=6M; RUNS=1; else SECS=60; SIZE=1920x1080; RATE=40M; RUNS=3; fi
PORT=${BENCH_PORT:-18900}
cargo build --quiet
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/flare
[ -d tests/browser/node_modules/playwright-core ] || (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
W=$(mktemp -d "${TMPDIR:-/tmp}/flare-faststart.XXXXXX")
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

echo "# making a ${SECS} s ${SIZE} H.264 file at ${RATE}bit/s, index last (ffmpeg's default)"
ffmpeg -loglevel error -y -f lavfi -i "testsrc2=size=$SIZE:rate=30" -t "$SECS" -c:v libx264 -preset ultrafast \
  -b:v "$RATE" -maxrate "$RATE" -bufsize "$RATE" -pix_fmt yuv420p "$W/late.mp4"
export FLARE_DATA_DIR="$W/data" FLARE_LOG_LEVEL=warn FLARE_FFMPEG_PATH=off FLARE_FASTSTART=true
TOKEN=$("$BIN" token create --name bench 2>/dev/null)
"$BIN" serve --listen "127.0.0.1:$PORT" 2>"$W/log" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
ID=$("$BIN" upload "$W/late.mp4" --server "http://127.0.0.1:$PORT" --token "$TOKEN" --json 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["videoId"])')
video() { curl -sf "http://127.0.0.1:$PORT/api/video/$ID" -H "Authorization: Bearer $TOKEN"; }
for _ in $(seq 600); do
  video | python3 -c 'import json,sys; v=json.load(sys.stdin)["video"]; sys.exit(0 if any(r.get("status")=="ready" for r in v.get("renditions",[])) else 1)' && break
  sleep 0.2
done
read -r ORIGINAL COPY BYTES <<<"$(video | python3 -c 'import json,sys; v=json.load(sys.stdin)["video"]; print(v["publicUrl"], v["renditions"][0]["url"], v["size"])')"
echo "# $(( BYTES / 1048576 )) MiB; playing each $RUNS time(s), alternating"
node bench/faststart.mjs "$ORIGINAL" "$COPY" "$RUNS" > "$W/result.json"

python3 - "$W/result.json" "$BYTES" "$SMOKE" <<'PY' | tee "bench/results/FASTSTART$([ $SMOKE = 1 ] && echo -SMOKE).md"
import json, statistics, sys, datetime, os
r = json.load(open(sys.argv[1])); size = int(sys.argv[2]); smoke = sys.argv[3] == "1"
med = lambda xs: statistics.median(xs)
def row(name, key, unit=1000, fmt="{:.2f}"):
    o = med([x[key] for x in r["original"]]) / unit; c = med([x[key] for x in r["copy"]]) / unit
    return f"| {name} | {fmt.format(o)} | {fmt.format(c)} | {c / o if o else 0:.2f} |"
print(f"# Fast start, {datetime.datetime.utcnow():%Y-%m-%dT%H:%MZ}{' (smoke: small file, one run; not a result)' if smoke else ''}\n")
print(f"{os.cpu_count()} cores; a {size / 1048576:.0f} MiB index-last H.264 MP4; Chromium throttled to 20 Mbit/s and 50 ms; "
      f"{len(r['original'])} run(s) of each, alternating, medians; `bench/faststart.sh{' --smoke' if smoke else ''}`\n")
print("| measure | original (index last) | flare's index-first copy | copy / original |")
print("|---|---|---|---|")
print(row("first frame (s)", "firstFrame"))
print(row("seek to 75 % (s)", "seek"))
print(row("MiB received until the seek was done", "bytesBeforeSeekDone", unit=1048576, fmt="{:.1f}"))
PY
