#!/usr/bin/env bash
# CPU profile of one flare path under load, with perf (Debian's linux-perf; cpu-clock samples,
# which work in this VM where hardware counters do not). Prints the load's numbers, the share
# of samples per thread and the top functions, self and inclusive.
#
#   bench/profile.sh presign   64 connections of POST /api/video/upload/presign (wrk)
#   bench/profile.sh range     32 connections of random 1 MiB Range GETs of a 256 MiB object
#   bench/profile.sh get       GETs of a 256 MiB object, one after another (curl)
#   bench/profile.sh put       PUTs of a 256 MiB object through signed URLs (curl, sync off)
#
# The release profile keeps line tables, so perf can unwind with DWARF. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:?usage: bench/profile.sh presign|range|get|put}
SECS=${SECS:-6}
have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
have perf || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf; }
have wrk || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build --release -q
B=${CARGO_TARGET_DIR:-$PWD/target}/release/flare
W=$(mktemp -d "${TMPDIR:-/tmp}/flare-profile.XXXXXX"); P=${PROFILE_PORT:-18950}
trap 'kill $FP 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] && cp "$W/perf.data" "$KEEP"; rm -rf "$W"' EXIT
export FLARE_DATA_DIR=$W/data FLARE_SYNC_UPLOADS=false FLARE_LOG_LEVEL=warn FLARE_DISK_RESERVE_BYTES=0
TOK=$($B token create --name profile 2>/dev/null)
$B serve --listen 127.0.0.1:$P 2>"$W/log" & FP=$!
for _ in $(seq 50); do curl -sf localhost:$P/healthz >/dev/null && break; sleep 0.1; done
api() { curl -sf "localhost:$P/api/video/$1" -H "Authorization: Bearer $TOK" -d "$2"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
VID=$(api create '{"fileName":"a.mp4"}' | field '["video"]["id"]')
presigned() { api upload/presign "{\"videoId\":\"$VID\",\"fileName\":\"$1\"}" | field '["uploadUrl"]'; }
if [ "$WHAT" != presign ]; then
  head -c $((256 << 20)) /dev/urandom > "$W/src.bin"
  curl -sf -H 'Expect:' -H 'Content-Type: video/mp4' -T "$W/src.bin" "$(presigned a.mp4)" >/dev/null
fi
MEDIA=http://127.0.0.1:$P/media/$VID/composite/a.mp4
perf record -F 1999 -g --call-graph dwarf,16384 -o "$W/perf.data" -p $FP -- sleep $((SECS + 1)) >/dev/null 2>&1 &
PERF=$!; sleep 0.3
case $WHAT in
  presign)
    printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Authorization"] = "Bearer %s"\n' \
      "'{\"videoId\":\"$VID\",\"fileName\":\"p.mp4\"}'" "$TOK" > "$W/load.lua"
    wrk -t2 -c64 -d${SECS}s --latency -s "$W/load.lua" http://127.0.0.1:$P/api/video/upload/presign ;;
  range)
    printf 'request = function() local s = math.random(0, %d - 1048576); return wrk.format("GET", nil, {Range = "bytes=" .. s .. "-" .. (s + 1048575)}) end\n' $((256 << 20)) > "$W/load.lua"
    wrk -t2 -c32 -d${SECS}s --latency -s "$W/load.lua" "$MEDIA" ;;
  get)
    end=$((SECONDS + SECS)); while [ $SECONDS -lt $end ]; do curl -s -o /dev/null -w 'GET %{speed_download} B/s\n' "$MEDIA"; done ;;
  put)
    end=$((SECONDS + SECS)); n=0
    while [ $SECONDS -lt $end ]; do n=$((n + 1))
      curl -sf -o /dev/null -H 'Expect:' -H 'Content-Type: video/mp4' -w 'PUT %{speed_upload} B/s\n' -T "$W/src.bin" "$(presigned p$n.mp4)"; done ;;
  *) echo "unknown: $WHAT"; exit 2 ;;
esac
wait $PERF || true
echo "== samples per thread"
perf report -i "$W/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -8
echo "== top functions (self)"
perf report -i "$W/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -25
echo "== flare and SQLite functions (inclusive)"
perf report -i "$W/perf.data" --children --sort sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' \
  | grep -E 'flare::|sqlite3_(step|prepare)|sys_(sendto|pwrite|write|read|futex)' | cut -c1-160 | head -30
