#!/usr/bin/env bash
# flare against nginx (dav PUT + secure_link + sendfile, from ../shared/peers/nginx) on the same
# machine in the same run, run by run alternately, reported as medians and ratios.
#
#   bench/run.sh           full run: 1 GiB objects, 5 runs each (tens of minutes)
#   bench/run.sh --smoke   small sizes, one run each: checks that the harness works (CI runs it)
#
# Measures: ingest (PUT through a signed URL; flare with and without sync, nginx, and dd with and
# without fdatasync as the disk's limit), serve (GET of the whole object, the loopback limit from
# a no-disk source, and random 1 MiB Range GETs at 32 connections), presign requests/s against
# the framework's trivial handler (/healthz), and flare's peak RSS during 16 concurrent uploads
# and 200 slow Range readers. Installs nginx-light, wrk and curl when missing. Loopback only.
# The report goes to stdout and bench/results/LAST.md (smoke: bench/results/SMOKE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SMOKE=0; NOSF=0
for arg in "$@"; do
  case $arg in
    --smoke) SMOKE=1 ;;
    --no-sendfile) NOSF=1 ;;   # also a flare with sendfile = "off": the general path's figures
    *) echo "usage: bench/run.sh [--smoke] [--no-sendfile]"; exit 2 ;;
  esac
done
if [ $SMOKE = 1 ]; then MIB=32; RUNS=1; SECS=2; MEM_MIB=8; READERS=40; else MIB=1024; RUNS=5; SECS=10; MEM_MIB=1024; READERS=200; fi
PEERS=${FLARE_PEERS:-$ROOT/../shared/peers}
PORT=${BENCH_PORT:-18700}   # flare sync, flare no-sync, nginx, source, memory (2), sendfile off, TLS, metrics (2): PORT..PORT+9

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=(); for t in nginx wrk curl openssl; do have $t || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=(); for t in "${missing[@]}"; do [ "$t" = nginx ] && pkgs+=(nginx-light) || pkgs+=("$t"); done
  echo "installing with apt-get (needs root, or sudo): ${pkgs[*]}"
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
fi
[ -x "$PEERS/nginx/start.sh" ] || { echo "nginx peer not found at $PEERS/nginx (set FLARE_PEERS)"; exit 1; }

cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/flare
W=$(mktemp -d "${TMPDIR:-/tmp}/flare-bench.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
spread() { sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%s–%s", lo, hi}'; }
mibs() { awk '{printf "%.0f\n", $1/1048576}'; }

hwm() { awk '/VmHWM/ {printf "%.0f\n", $2/1024}' "/proc/$1/status"; }

# --- servers -------------------------------------------------------------------------------
start_flare() { # NAME PORT SYNC [SENDFILE [VAR=VALUE…]] -> sets $PID_<NAME>, waits until it listens
  local name=$1 port=$2 sync=$3 sendfile=${4:-auto} scheme=http
  mkdir -p "$W/$name"
  case " ${*:5} " in *FLARE_TLS_CERT=*) scheme=https ;; esac
  env FLARE_DATA_DIR="$W/$name/data" FLARE_SYNC_UPLOADS=$sync FLARE_LOG_LEVEL=warn FLARE_SENDFILE=$sendfile \
    FLARE_MAX_UPLOAD_BYTES=$((64 << 30)) FLARE_DISK_RESERVE_BYTES=0 "${@:5}" \
    "$BIN" serve --listen "127.0.0.1:$port" 2>>"$W/$name.log" &
  PIDS+=($!); eval "PID_$name=$!"
  for _ in $(seq 100); do curl -sf --cacert "$W/tls.crt" "$scheme://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "flare ($name) did not start"; cat "$W/$name.log"; exit 1
}
token_for() { FLARE_DATA_DIR="$W/$1/data" "$BIN" token create --name bench 2>/dev/null; }
json_get() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
flare_url() { # NAME PORT TOKEN FILE [SCHEME] -> "UPLOAD_URL PUBLIC_PATH"
  local port=$2 tok=$3 file=$4 scheme=${5:-http} id p
  id=$(curl -sf --cacert "$W/tls.crt" "$scheme://127.0.0.1:$port/api/video/create" -H "Authorization: Bearer $tok" -d "{\"fileName\":\"$file\"}" | json_get '["video"]["id"]')
  p=$(curl -sf --cacert "$W/tls.crt" "$scheme://127.0.0.1:$port/api/video/upload/presign" -H "Authorization: Bearer $tok" -d "{\"videoId\":\"$id\",\"fileName\":\"$file\"}")
  echo "$(echo "$p" | json_get '["uploadUrl"]') /media/$id/composite/$file"
}

# A self-signed certificate for the TLS rows (curl trusts it through --cacert / CURL_CA_BUNDLE).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=bench \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$W/tls.key" -out "$W/tls.crt" 2>/dev/null
export CURL_CA_BUNDLE="$W/tls.crt"
start_flare sync $PORT true
start_flare nosync $((PORT + 1)) false
TOK_SYNC=$(token_for sync); TOK_NOSYNC=$(token_for nosync)
if [ $NOSF = 1 ]; then start_flare nosf $((PORT + 6)) false off; TOK_NOSF=$(token_for nosf); fi
"$PEERS/nginx/start.sh" $((PORT + 2)) "$W/nginx" 2>"$W/nginx.log" & PIDS+=($!)
python3 "$ROOT/bench/http-source.py" $((PORT + 3)) & PIDS+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$((PORT + 2))/health" >/dev/null && break; sleep 0.1; done

SRC="$W/src.bin"
head -c $((MIB << 20)) /dev/urandom > "$SRC"; cat "$SRC" >/dev/null   # page-cached source

put_rate() { curl -sS -o /dev/null -H 'Expect:' -H 'Content-Type: video/mp4' -w '%{speed_upload}\n' -T "$SRC" "$1" | mibs; }
get_rate() { curl -sS -o /dev/null -w '%{speed_download}\n' "$1" | mibs; }
dd_rate() { dd if=/dev/zero of="$W/dd.bin" bs=1M count=$MIB "$@" 2>&1 | awk '/copied/{for(i=1;i<=NF;i++) if($i=="copied,") s=$(i+1); printf "%.0f\n", $1/s/1048576}'; rm -f "$W/dd.bin"; }

# --- 1. ingest -----------------------------------------------------------------------------
declare -A R
echo "# ingest: PUT of $MIB MiB, $RUNS runs each, alternating" >&2
for run in $(seq $RUNS); do
  read -r u _ < <(flare_url sync $PORT "$TOK_SYNC" "in$run.mp4"); sync
  R[in_sync]+="$(put_rate "$u") "
  read -r u _ < <(flare_url nosync $((PORT + 1)) "$TOK_NOSYNC" "in$run.mp4"); sync
  R[in_nosync]+="$(put_rate "$u") "
  u=$(SECRET=bench-secret "$PEERS/nginx/sign.sh" PUT "/files/in$run.bin" 600); sync
  R[in_nginx]+="$(put_rate "http://127.0.0.1:$((PORT + 2))$u") "
  sync; R[dd_sync]+="$(dd_rate conv=fdatasync) "
  sync; R[dd]+="$(dd_rate) "
done

# --- 2. serve ------------------------------------------------------------------------------
echo "# serve: GET of $MIB MiB; random 1 MiB ranges at 32 connections for $SECS s" >&2
read -r u FPATH < <(flare_url nosync $((PORT + 1)) "$TOK_NOSYNC" "serve.mp4")
put_rate "$u" >/dev/null
u=$(SECRET=bench-secret "$PEERS/nginx/sign.sh" PUT /files/serve.bin 600); put_rate "http://127.0.0.1:$((PORT + 2))$u" >/dev/null
NGET=$(SECRET=bench-secret "$PEERS/nginx/sign.sh" GET /files/serve.bin 3600)
if [ $NOSF = 1 ]; then
  read -r u NPATH < <(flare_url nosf $((PORT + 6)) "$TOK_NOSF" "serve.mp4"); put_rate "$u" >/dev/null
  cat "$W/nosf/data/objects/"*/composite/serve.mp4 >/dev/null
fi
cat "$W/nosync/data/objects/"*/composite/serve.mp4 "$W/nginx/files/serve.bin" >/dev/null
for run in $(seq $RUNS); do
  [ $NOSF = 1 ] && R[get_nosf]+="$(get_rate "http://127.0.0.1:$((PORT + 6))$NPATH") "
  R[get_flare]+="$(get_rate "http://127.0.0.1:$((PORT + 1))$FPATH") "
  R[get_nginx]+="$(get_rate "http://127.0.0.1:$((PORT + 2))$NGET") "
  R[get_limit]+="$(get_rate "http://127.0.0.1:$((PORT + 3))/$((MIB << 20))") "
done
cat > "$W/range.lua" <<LUA
local size = $((MIB << 20))
local span = math.min(1048576, size)
request = function()
  local s = math.random(0, size - span)
  return wrk.format("GET", nil, { Range = "bytes=" .. s .. "-" .. (s + span - 1) })
end
LUA
wrk_stats() { # URL [wrk args...] -> "rps p50ms p99ms requests"
  local url=$1; shift
  wrk -t2 --latency -d"${SECS}s" "$@" "$url" 2>&1 | awk '
    /Requests\/sec/ {rps=$2}
    /requests in/ {n=$1}
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)}
    END {printf "%.0f %.2f %.2f %d\n", rps, p50, p99, n}'
}
for run in $(seq $RUNS); do
  if [ $NOSF = 1 ]; then
    read -r rps p50 p99 _ < <(wrk_stats "http://127.0.0.1:$((PORT + 6))$NPATH" -c32 -s "$W/range.lua")
    R[range_nosf]+="$p99 "; R[range50_nosf]+="$p50 "
  fi
  read -r rps p50 p99 _ < <(wrk_stats "http://127.0.0.1:$((PORT + 1))$FPATH" -c32 -s "$W/range.lua")
  R[range_flare]+="$p99 "; R[range50_flare]+="$p50 "; R[range_rps_flare]+="$rps "
  read -r rps p50 p99 _ < <(wrk_stats "http://127.0.0.1:$((PORT + 2))$NGET" -c32 -s "$W/range.lua")
  R[range_nginx]+="$p99 "; R[range50_nginx]+="$p50 "; R[range_rps_nginx]+="$rps "
done

# --- 3. TLS --------------------------------------------------------------------------------
# The same PUT and GET over HTTPS (flare's own TLS, HTTP/1.1, no sync) against plain HTTP (the
# no-sync flare, whose GET takes sendfile), alternating; and the TLS server's peak RSS.
echo "# TLS: PUT and GET of $MIB MiB over https against http, $RUNS runs each, alternating" >&2
start_flare tls $((PORT + 7)) false auto FLARE_TLS_CERT="$W/tls.crt" FLARE_TLS_KEY="$W/tls.key"
TOK_TLS=$(token_for tls)
for run in $(seq $RUNS); do
  read -r u _ < <(flare_url tls $((PORT + 7)) "$TOK_TLS" "t$run.mp4" https); sync
  R[in_tls]+="$(put_rate "$u") "
  read -r u _ < <(flare_url nosync $((PORT + 1)) "$TOK_NOSYNC" "p$run.mp4"); sync
  R[in_plain]+="$(put_rate "$u") "
done
read -r u TPATH < <(flare_url tls $((PORT + 7)) "$TOK_TLS" "serve.mp4" https); put_rate "$u" >/dev/null
cat "$W/tls/data/objects/"*/composite/serve.mp4 >/dev/null
for run in $(seq $RUNS); do
  R[get_tls]+="$(get_rate "https://127.0.0.1:$((PORT + 7))$TPATH") "
  R[get_plain]+="$(get_rate "http://127.0.0.1:$((PORT + 1))$FPATH") "
done
R[rss_tls]="$(hwm "$PID_tls")"

# --- 4. presign ----------------------------------------------------------------------------
# Also on a flare with metrics_listen, scraped every second while wrk runs (Prometheus scrapes
# every 15 s by default), against the same flare unscraped: what /metrics costs the API.
echo "# presign at 64 connections for $SECS s, against /healthz" >&2
start_flare met $((PORT + 8)) false auto FLARE_METRICS_LISTEN="127.0.0.1:$((PORT + 9))"
TOK_MET=$(token_for met)
MVID=$(curl -sf "http://127.0.0.1:$((PORT + 8))/api/video/create" -H "Authorization: Bearer $TOK_MET" -d '{"fileName":"p.mp4"}' | json_get '["video"]["id"]')
cat > "$W/presign-met.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"videoId":"$MVID","fileName":"p.mp4"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOK_MET"
LUA
VID=$(curl -sf "http://127.0.0.1:$((PORT + 1))/api/video/create" -H "Authorization: Bearer $TOK_NOSYNC" -d '{"fileName":"p.mp4"}' | json_get '["video"]["id"]')
cat > "$W/presign.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"videoId":"$VID","fileName":"p.mp4"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOK_NOSYNC"
LUA
for run in $(seq $RUNS); do
  read -r rps p50 p99 _ < <(wrk_stats "http://127.0.0.1:$((PORT + 1))/api/video/upload/presign" -c64 -s "$W/presign.lua")
  R[presign_rps]+="$rps "; R[presign_p50]+="$p50 "; R[presign_p99]+="$p99 "
  read -r rps _ _ _ < <(wrk_stats "http://127.0.0.1:$((PORT + 1))/healthz" -c64)
  R[trivial_rps]+="$rps "
  read -r rps _ _ _ < <(wrk_stats "http://127.0.0.1:$((PORT + 8))/api/video/upload/presign" -c64 -s "$W/presign-met.lua")
  R[presign_unscraped]+="$rps "
  ( while sleep 1; do curl -sf -o /dev/null "http://127.0.0.1:$((PORT + 9))/metrics"; done ) & scraper=$!
  read -r rps _ _ _ < <(wrk_stats "http://127.0.0.1:$((PORT + 8))/api/video/upload/presign" -c64 -s "$W/presign-met.lua")
  kill $scraper 2>/dev/null; wait $scraper 2>/dev/null || true
  R[presign_scraped]+="$rps "
done

# --- 5. memory -----------------------------------------------------------------------------
echo "# memory: 16 concurrent $MEM_MIB MiB uploads; $READERS slow Range readers" >&2
start_flare mem1 $((PORT + 4)) false
TOK=$(token_for mem1)
head -c $((MEM_MIB << 20)) /dev/urandom > "$W/mem.bin"
for i in $(seq 16); do read -r u _ < <(flare_url mem1 $((PORT + 4)) "$TOK" "m$i.mp4"); echo "$u"; done > "$W/urls"
uploads=()
while read -r u; do curl -sS -o /dev/null -H 'Expect:' -H 'Content-Type: video/mp4' -T "$W/mem.bin" "$u" & uploads+=($!); done < "$W/urls"
for p in "${uploads[@]}"; do wait "$p" || true; done
R[rss_uploads]="$(hwm "$PID_mem1")"
start_flare mem2 $((PORT + 5)) false
TOK=$(token_for mem2)
read -r u RPATH < <(flare_url mem2 $((PORT + 5)) "$TOK" "r.mp4")
put_rate "$u" >/dev/null
readers=()
for i in $(seq $READERS); do curl -sS -o /dev/null --limit-rate 256k "http://127.0.0.1:$((PORT + 5))$RPATH" & readers+=($!); done
sleep $((SECS / 2 + 2))
for p in "${readers[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${readers[@]}"; do wait "$p" 2>/dev/null || true; done
R[rss_readers]="$(hwm "$PID_mem2")"

# --- report --------------------------------------------------------------------------------
m() { echo ${R[$1]} | tr ' ' '\n' | grep -v '^$' | median; }
s() { echo ${R[$1]} | tr ' ' '\n' | grep -v '^$' | spread; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }
# Smoke runs use tiny sizes and one run: their figures are shown, never judged against a target.
check() {
  if [ $SMOKE = 1 ]; then echo "not judged (smoke)"; return; fi
  awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print (ok ? "met" : "MISSED") }'
}
in_ratio=$(ratio "$(m in_nosync)" "$(m in_nginx)"); sync_ratio=$(ratio "$(m in_sync)" "$(m dd_sync)")
get_ratio=$(ratio "$(m get_flare)" "$(m get_nginx)"); lim_ratio=$(ratio "$(m get_flare)" "$(m get_limit)")
range_ratio=$(ratio "$(m range_flare)" "$(m range_nginx)"); pre_ratio=$(ratio "$(m presign_rps)" "$(m trivial_rps)")
OUT=$ROOT/bench/results/$([ $SMOKE = 1 ] && echo SMOKE || echo LAST).md
mkdir -p "$ROOT/bench/results"
{
  echo "# flare benchmark, $(date -u +%Y-%m-%dT%H:%MZ)$([ $SMOKE = 1 ] && echo ' (smoke: small sizes, one run; not a result)')"
  echo
  echo "$(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; $MIB MiB objects, $RUNS run(s) each, medians (spread); \`bench/run.sh$([ $SMOKE = 1 ] && echo ' --smoke')\`"
  echo
  echo "| measure | flare | peer / limit | ratio | target |"
  echo "|---|---|---|---|---|"
  echo "| ingest, sync off (MiB/s) | $(m in_nosync) ($(s in_nosync)) | nginx $(m in_nginx) ($(s in_nginx)) | $in_ratio | ≥ 1.0 × nginx: $(check "$in_ratio" ">=" 1.0) |"
  echo "| ingest, as shipped (sync) (MiB/s) | $(m in_sync) ($(s in_sync)) | dd fdatasync $(m dd_sync) ($(s dd_sync)) | $sync_ratio | ≥ 0.8 × dd: $(check "$sync_ratio" ">=" 0.8) |"
  echo "| dd without sync (MiB/s) | | $(m dd) ($(s dd)) | | reference |"
  echo "| GET whole object (MiB/s) | $(m get_flare) ($(s get_flare)) | nginx $(m get_nginx) ($(s get_nginx)) | $get_ratio | ≥ 1.5 × nginx: $(check "$get_ratio" ">=" 1.5) |"
  echo "| GET vs loopback limit (MiB/s) | $(m get_flare) | no-disk source $(m get_limit) ($(s get_limit)) | $lim_ratio | ≥ 0.8 × limit: $(check "$lim_ratio" ">=" 0.8) |"
  echo "| 1 MiB Range GET p99, 32 conn (ms) | $(m range_flare) ($(s range_flare)) | nginx $(m range_nginx) ($(s range_nginx)) | $range_ratio | ≤ 1.2 × nginx: $(check "$range_ratio" "<=" 1.2) |"
  echo "| 1 MiB Range GET p50 (ms); responses/s | $(m range50_flare); $(m range_rps_flare) | nginx $(m range50_nginx); $(m range_rps_nginx) | $(ratio "$(m range50_flare)" "$(m range50_nginx)") | reference |"
  if [ $NOSF = 1 ]; then
    echo "| GET whole object, sendfile off (MiB/s) | $(m get_nosf) ($(s get_nosf)) | nginx $(m get_nginx) | $(ratio "$(m get_nosf)" "$(m get_nginx)") | ≥ 1.5 × nginx: $(check "$(ratio "$(m get_nosf)" "$(m get_nginx)")" ">=" 1.5) |"
    echo "| 1 MiB Range p99, sendfile off (ms) | $(m range_nosf) ($(s range_nosf)); p50 $(m range50_nosf) | nginx $(m range_nginx) | $(ratio "$(m range_nosf)" "$(m range_nginx)") | ≤ 1.2 × nginx: $(check "$(ratio "$(m range_nosf)" "$(m range_nginx)")" "<=" 1.2) |"
  fi
  echo "| presign (req/s), 64 conn | $(m presign_rps) ($(s presign_rps)) | /healthz $(m trivial_rps) ($(s trivial_rps)) | $pre_ratio | ≥ 0.5 × trivial: $(check "$pre_ratio" ">=" 0.5) |"
  echo "| presign p50 / p99 (ms) | $(m presign_p50) / $(m presign_p99) | | | p99 < 10 ms: $(check "$(m presign_p99)" "<=" 10) |"
  echo "| PUT over TLS (MiB/s), sync off | $(m in_tls) ($(s in_tls)) | plain HTTP $(m in_plain) ($(s in_plain)) | $(ratio "$(m in_tls)" "$(m in_plain)") | reference |"
  echo "| GET over TLS (MiB/s) | $(m get_tls) ($(s get_tls)) | plain HTTP, sendfile $(m get_plain) ($(s get_plain)) | $(ratio "$(m get_tls)" "$(m get_plain)") | reference |"
  echo "| peak RSS of the TLS flare after its PUTs and GETs (MiB) | ${R[rss_tls]} | | | ≤ 64: $(check "${R[rss_tls]}" "<=" 64) |"
  echo "| presign (req/s) with /metrics scraped every 1 s | $(m presign_scraped) ($(s presign_scraped)) | unscraped $(m presign_unscraped) ($(s presign_unscraped)) | $(ratio "$(m presign_scraped)" "$(m presign_unscraped)") | ≥ 0.95 × unscraped: $(check "$(ratio "$(m presign_scraped)" "$(m presign_unscraped)")" ">=" 0.95) |"
  echo "| peak RSS, 16 concurrent $MEM_MIB MiB uploads (MiB) | ${R[rss_uploads]} | | | ≤ 64: $(check "${R[rss_uploads]}" "<=" 64) |"
  echo "| peak RSS, $READERS slow Range readers (MiB) | ${R[rss_readers]} | | | ≤ 64: $(check "${R[rss_readers]}" "<=" 64) |"
} | tee "$OUT"
