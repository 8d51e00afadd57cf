#!/usr/bin/env bash
# Resumable uploads: flare's tus endpoint beside @tus/server (the tus project's own Node server,
# from ../shared/peers/tus) on the same machine in the same run, and a large upload cut by
# killing the server.
#
#   bench/resumable.sh           1 GiB ingest x 3 runs each, alternating; a 2 GiB upload cut 3 times
#   bench/resumable.sh --smoke   64 MiB, one run; a 256 MiB upload cut 3 times
#
# Ingest: the same client for both (curl -T, one tus PATCH per 50 MiB chunk after a creation POST),
# flare with sync_uploads off (like @tus/server, which does not fsync) and as shipped (each
# chunk fdatasync'd before its offset is acknowledged); flare's peak RSS from /proc. Cut: `flare
# upload` sends the file while the server is SIGKILLed at about 25, 50 and 75 % and started
# again; the client's `sentBytes` less the file's size is what was sent twice.
# The report goes to stdout and bench/results/RESUMABLE.md (smoke: RESUMABLE-SMOKE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SMOKE=0
[ "${1:-}" = --smoke ] && SMOKE=1
if [ $SMOKE = 1 ]; then MIB=64; RUNS=1; CUT_MIB=256; else MIB=1024; RUNS=3; CUT_MIB=2048; fi
CHUNK=$((50 << 20))
PEERS=${FLARE_PEERS:-$ROOT/../shared/peers}
PORT=${BENCH_PORT:-18800}
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/flare
W=$(mktemp -d "${TMPDIR:-/tmp}/flare-resumable.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
if [ ! -d "$PEERS/tus/node_modules/@tus/server" ]; then
  echo "installing the tus peer (npm ci in $PEERS/tus)"; (cd "$PEERS/tus" && bash install.sh >/dev/null)
fi

start_flare() { # NAME PORT SYNC
  mkdir -p "$W/$1"
  FLARE_DATA_DIR="$W/$1/data" FLARE_SYNC_UPLOADS=$3 FLARE_LOG_LEVEL=warn FLARE_MAX_UPLOAD_BYTES=$((64 << 30)) \
    FLARE_DISK_RESERVE_BYTES=0 "$BIN" serve --listen "127.0.0.1:$2" 2>>"$W/$1.log" &
  PIDS+=($!); eval "PID_$1=$!"
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && return; sleep 0.1; done
  echo "flare ($1) did not start"; cat "$W/$1.log"; exit 1
}
token_for() { FLARE_DATA_DIR="$W/$1/data" "$BIN" token create --name bench 2>/dev/null; }

head -c $((MIB << 20)) /dev/urandom >"$W/src.bin"
start_flare nosync $PORT false; T_NOSYNC=$(token_for nosync)
start_flare sync $((PORT + 1)) true; T_SYNC=$(token_for sync)
"$PEERS/tus/start.sh" $((PORT + 2)) "$W/tus-data" 2>"$W/tus.log" & PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$((PORT + 2))/files" && break; sleep 0.1; done

# The source cut into CHUNK-byte files once, so that curl streams each PATCH from a file (-T)
# and no pipe sets the pace.
mkdir -p "$W/chunks"; (cd "$W/chunks" && split -a 4 -d -b $CHUNK "$W/src.bin" c)
# A tus upload of src.bin to URL in CHUNK-byte PATCHes; prints MiB/s.
tus_send() { # URL
  local url=$1 size off=0 t0 t1 c
  size=$(stat -c %s "$W/src.bin")
  t0=$(date +%s.%N)
  for c in "$W"/chunks/c*; do
    off=$(curl -sf -X PATCH -T "$c" "$url" -H 'Tus-Resumable: 1.0.0' -H 'Content-Type: application/offset+octet-stream' \
      -H "Upload-Offset: $off" -H 'Expect:' -D - -o /dev/null | tr -d '\r' | awk -F': ' 'tolower($1)=="upload-offset"{print $2}')
  done
  t1=$(date +%s.%N)
  [ "$off" = "$size" ] || { echo "upload to $url stopped at $off of $size" >&2; exit 1; }
  awk -v b="$size" -v a="$t0" -v z="$t1" 'BEGIN {printf "%.0f\n", b / 1048576 / (z - a)}'
}
flare_url() { # PORT TOKEN -> a created resumable URL
  local base=http://127.0.0.1:$1 id url size
  size=$(stat -c %s "$W/src.bin")
  id=$(curl -sf "$base/api/video/create" -H "Authorization: Bearer $2" -d '{"fileName":"src.mp4"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["video"]["id"])')
  url=$(curl -sf "$base/api/video/upload/presign" -H "Authorization: Bearer $2" \
    -d "{\"videoId\":\"$id\",\"fileName\":\"src.mp4\",\"resumable\":true,\"size\":$size}" | python3 -c 'import sys,json;print(json.load(sys.stdin)["resumable"]["url"])')
  curl -sf -o /dev/null -X POST "$url" -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $size"
  echo "$url"
}
tus_url() {
  curl -sf -D - -o /dev/null -X POST "http://127.0.0.1:$((PORT + 2))/files" -H 'Tus-Resumable: 1.0.0' \
    -H "Upload-Length: $(stat -c %s "$W/src.bin")" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}'
}

R_NOSYNC=(); R_SYNC=(); R_TUS=()
# Each upload starts with no dirty pages left by the one before (sync), and the order turns
# each round, so that no server always writes behind another's writeback.
run_one() {
  sync
  case $1 in
    tus) R_TUS+=("$(tus_send "$(tus_url)")"); rm -rf "$W/tus-data"/* 2>/dev/null || true ;;
    nosync) R_NOSYNC+=("$(tus_send "$(flare_url $PORT "$T_NOSYNC")")") ;;
    sync) R_SYNC+=("$(tus_send "$(flare_url $((PORT + 1)) "$T_SYNC")")") ;;
  esac
}
ORDER=(tus nosync sync)
for i in $(seq $RUNS); do
  for j in 0 1 2; do run_one "${ORDER[$(( (i + j) % 3 ))]}"; done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2}'; }
M_TUS=$(median "${R_TUS[@]}"); M_NOSYNC=$(median "${R_NOSYNC[@]}"); M_SYNC=$(median "${R_SYNC[@]}")
RSS_NOSYNC=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' /proc/$PID_nosync/status)
RSS_SYNC=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' /proc/$PID_sync/status)

# --- a large upload cut three times ------------------------------------------------------------
CUT_PORT=$((PORT + 3))
head -c $((CUT_MIB << 20)) /dev/urandom >"$W/cut.mp4"
WANT=$(sha256sum "$W/cut.mp4" | cut -d' ' -f1)
start_flare cut $CUT_PORT true
T_CUT=$(token_for cut)
FLARE_SERVER=http://127.0.0.1:$CUT_PORT FLARE_TOKEN=$T_CUT FLARE_UPLOAD_STATE="$W/state" \
  "$BIN" upload "$W/cut.mp4" --json >"$W/cut.json" 2>"$W/cut.err" &
UP=$!; PIDS+=($UP)
SIZE=$((CUT_MIB << 20)); CUTS=()
for pct in 25 50 75; do
  while :; do
    got=$(stat -c %s "$W"/cut/data/tmp/resumable/*.part 2>/dev/null | head -1 || echo 0)
    [ "${got:-0}" -ge $((SIZE / 100 * pct)) ] && break
    kill -0 $UP 2>/dev/null || break 2
    sleep 0.05
  done
  kill -9 "$PID_cut"; wait "$PID_cut" 2>/dev/null || true
  CUTS+=("$((got >> 20))")
  sleep 0.3
  start_flare cut $CUT_PORT true
done
wait $UP
SENT=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["sentBytes"])' "$W/cut.json")
GOT=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["sha256"])' "$W/cut.json")
RESENT=$((SENT - SIZE))

report() {
  echo "## Resumable uploads ($(date -u +%Y-%m-%dT%H:%MZ), $MIB MiB, $RUNS run(s) each$([ $SMOKE = 1 ] && echo ', smoke: figures not judged'))"
  echo
  echo "Command: \`bench/resumable.sh$([ $SMOKE = 1 ] && echo ' --smoke')\`. Client for both: curl, tus POST then one PATCH per 50 MiB, each streamed from a file (\`curl -T\`)."
  echo
  echo "| measure | flare | @tus/server 2.4.5 | ratio |"
  echo "|---|---|---|---|"
  echo "| tus ingest, sync off (MiB/s, median of ${R_NOSYNC[*]}) | $M_NOSYNC | $M_TUS (${R_TUS[*]}) | $(awk -v a="$M_NOSYNC" -v b="$M_TUS" 'BEGIN {printf "%.2f ×", a/b}') |"
  echo "| tus ingest as shipped, each chunk fdatasync'd (MiB/s, ${R_SYNC[*]}) | $M_SYNC | — | $(awk -v a="$M_SYNC" -v b="$M_TUS" 'BEGIN {printf "%.2f ×", a/b}') |"
  echo "| flare peak RSS (MiB), sync off / as shipped | $RSS_NOSYNC / $RSS_SYNC | | |"
  echo
  echo "A $CUT_MIB MiB \`flare upload\` (chunks of 50 MiB) with the server SIGKILLed at ${CUTS[*]} MiB on disk and restarted:"
  echo "sent $SENT bytes for $SIZE, so $RESENT bytes ($((RESENT >> 20)) MiB) went twice over 3 cuts;"
  echo "served sha256 $([ "$GOT" = "$WANT" ] && echo 'equals the source' || echo "DIFFERS ($GOT vs $WANT)")."
}
OUT=bench/results/RESUMABLE.md; [ $SMOKE = 1 ] && OUT=bench/results/RESUMABLE-SMOKE.md
report | tee "$OUT"
[ "$GOT" = "$WANT" ]
