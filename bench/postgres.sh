#!/usr/bin/env bash
# Presign requests/s with the records in PostgreSQL, beside the same on SQLite, each against the
# trivial handler (/healthz) of the same server, run by run alternately, as medians and ratios.
# Both a presign without a size (no row written: the URL carries every fact) and one with a size
# (its disk reservation is a row, written in a transaction; URLs open 2 s). Also peak RSS.
#
#   bench/postgres.sh           5 runs of 10 s each
#   bench/postgres.sh --smoke   one run of 2 s: checks that the harness works
#
# Builds flare with --features postgres (release), starts a throwaway PostgreSQL cluster
# (pg_virtualenv, as tests/pg.sh does) on a loopback port, installs wrk when missing. The report
# goes to stdout and bench/results/POSTGRES-LAST.md (smoke: POSTGRES-SMOKE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SMOKE=0
for arg in "$@"; do
  case $arg in
    --smoke) SMOKE=1 ;;
    *) echo "usage: bench/postgres.sh [--smoke]"; exit 2 ;;
  esac
done
if [ -z "${PG_INSIDE:-}" ]; then
  command -v wrk >/dev/null 2>&1 || {
    s=; [ "$(id -u)" = 0 ] || s=sudo
    $s apt-get update -qq && $s env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
  }
  cargo build --release --quiet --features postgres
  # tests/pg.sh makes the cluster (installing PostgreSQL when missing) and runs this inside it.
  exec tests/pg.sh env PG_INSIDE=1 "$0" "$@"
fi
if [ $SMOKE = 1 ]; then RUNS=1; SECS=2; else RUNS=5; SECS=10; fi
PORT=${BENCH_PORT:-18760}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/flare
W=$(mktemp -d "${TMPDIR:-/tmp}/flare-pgbench.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
createdb flarebench
DB_URL="postgres://$PGUSER:$PGPASSWORD@127.0.0.1:$PGPORT/flarebench"

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
json_get() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
wrk_rps() { wrk -t2 -d"${SECS}s" "$@" 2>&1 | awk '/Requests\/sec/ {printf "%.0f\n", $2}'; }

start() { # NAME PORT [VAR=VALUE…]: a server on its own data folder; sets PID_NAME, TOK_NAME
  local name=$1 port=$2
  mkdir -p "$W/$name"
  local tok
  tok=$(env FLARE_DATA_DIR="$W/$name/data" "${@:3}" "$BIN" token create --name bench 2>/dev/null)
  printf -v "TOK_$name" %s "$tok"
  env FLARE_DATA_DIR="$W/$name/data" FLARE_LOG_LEVEL=warn FLARE_DISK_RESERVE_BYTES=0 "${@:3}" \
    "$BIN" serve --listen "127.0.0.1:$port" 2>>"$W/$name.log" &
  PIDS+=($!); printf -v "PID_$name" %s "$!"
}
start LITE "$PORT"
start PG $((PORT + 1)) FLARE_DATABASE_URL="$DB_URL"
for port in "$PORT" $((PORT + 1)); do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done
script() { # NAME PORT TOKEN BODY_EXTRA
  local vid
  vid=$(curl -sf "http://127.0.0.1:$2/api/video/create" -H "Authorization: Bearer $3" -d '{"fileName":"p.mp4"}' | json_get '["video"]["id"]')
  cat > "$W/$1.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"videoId":"$vid","fileName":"p.mp4"$4}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $3"
LUA
}
script lite "$PORT" "$TOK_LITE" ""
# Sized URLs open for 2 s: each sized presign sums the bytes every open sized URL was promised,
# so a run that leaves 10 s of them open (tens of thousands) measures that pile, not a presign.
script lite-sized "$PORT" "$TOK_LITE" ',"size":1000,"expiresIn":2'
script pg $((PORT + 1)) "$TOK_PG" ""
script pg-sized $((PORT + 1)) "$TOK_PG" ',"size":1000,"expiresIn":2'

declare -A R
for run in $(seq "$RUNS"); do
  echo "# run $run of $RUNS" >&2
  for backend in lite pg; do
    port=$PORT; [ $backend = pg ] && port=$((PORT + 1))
    R[${backend}_healthz]+="$(wrk_rps -c64 "http://127.0.0.1:$port/healthz") "
    R[${backend}_presign]+="$(wrk_rps -c64 -s "$W/$backend.lua" "http://127.0.0.1:$port/api/video/upload/presign") "
    R[${backend}_sized]+="$(wrk_rps -c64 -s "$W/$backend-sized.lua" "http://127.0.0.1:$port/api/video/upload/presign") "
  done
done
m() { echo "${R[$1]}" | tr ' ' '\n' | grep . | median; }
hwm() { awk '/VmHWM/ {printf "%.0f\n", $2/1024}' "/proc/$1/status"; }
out=bench/results/POSTGRES-LAST.md; [ $SMOKE = 1 ] && out=bench/results/POSTGRES-SMOKE.md
{
  echo "# Presign on PostgreSQL beside SQLite ($(date -u +%F), $RUNS run(s) of ${SECS} s, wrk -t2 -c64, release build)"
  echo
  echo "PostgreSQL $(psql -Atc 'SHOW server_version') in a throwaway cluster (pg_virtualenv, fsync off) on loopback; \`bench/postgres.sh\`."
  echo
  echo "| records in | /healthz (req/s) | presign, no size (req/s) | ratio | presign with size (req/s) | ratio | peak RSS (MiB) |"
  echo "|---|---|---|---|---|---|---|"
  for backend in lite pg; do
    name=SQLite; pid=$PID_LITE; [ $backend = pg ] && { name=PostgreSQL; pid=$PID_PG; }
    echo "| $name | $(m ${backend}_healthz) | $(m ${backend}_presign) | $(ratio "$(m ${backend}_presign)" "$(m ${backend}_healthz)")× | $(m ${backend}_sized) | $(ratio "$(m ${backend}_sized)" "$(m ${backend}_healthz)")× | $(hwm "$pid") |"
  done
} | tee "$out"
