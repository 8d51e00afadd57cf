#!/usr/bin/env bash
# flare with its objects in an S3-compatible store, beside the same store reached directly.
# Usage: bench/s3.sh [--smoke] [--garage]
#
# Starts s3s-fs (or, with --garage, a one-node Garage; either installed with cargo when missing)
# on loopback with its folder on the same disk as flare's data folder, and a release flare
# built with --features s3 on it. Then, in turn, RUNS times each: a PUT of SIZE through flare's
# signed URL against a PUT to a presigned URL of the store (boto3 makes it, in a venv under
# target/), and a GET of the object through flare against a presigned GET. Every transfer is
# curl, its digest checked. Reports medians, their ratios and flare's peak RSS in
# bench/results/S3-LAST.md (S3-SMOKE.md with --smoke; bench/results/S3.md keeps the figures
# reported). Also the same bytes as one tus PATCH to the resumable URL, against the direct PUT. --smoke: 64 MiB, one run (figures shown, not judged).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=1024 runs=5 store=s3s-fs
for a in "$@"; do
  case $a in
    --smoke) size_mib=64 runs=1 ;;
    --garage) store=garage ;;
    *) echo "usage: bench/s3.sh [--smoke] [--garage]"; exit 2 ;;
  esac
done

cargo build --release --locked --quiet --features s3
bin=$PWD/target/release/flare
venv=$PWD/target/bench-venv
if ! "$venv/bin/python" -c 'import boto3' 2>/dev/null; then
  echo "installing boto3 from PyPI into $venv (it signs the direct URLs)"
  python3 -m venv "$venv" && "$venv/bin/pip" install --quiet 'boto3>=1.34'
fi

work=$(mktemp -d -p "$PWD/target" bench-s3.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
s3_port=$(free_port); flare_port=$(free_port)
region=us-east-1 bucket=bench

if [ "$store" = s3s-fs ]; then
  command -v s3s-fs >/dev/null 2>&1 || cargo install s3s-fs --version 0.14.1 --features binary --locked --quiet
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
  mkdir -p "$work/s3/$bucket"
  RUST_LOG=error s3s-fs --host 127.0.0.1 --port "$s3_port" --access-key bench --secret-key bench-secret \
    "$work/s3" >"$work/store.log" 2>&1 &
  pids+=($!)
  version="s3s-fs $(s3s-fs --version | awk '{print $2}')"
else
  command -v garage >/dev/null 2>&1 || cargo install garage --version 2.5.0 --locked --quiet
  eval "$(tests/garage-up.sh "$work/garage" "$bucket")"
  pids+=("$(cat "$work/garage/pid")")
  s3_port=${FLARE_S3_ENDPOINT##*:} region=$FLARE_S3_REGION
  version="garage $(garage --version 2>/dev/null | head -1 | awk '{print $2}')"
fi
endpoint=http://127.0.0.1:$s3_port
for _ in $(seq 100); do curl -s -o /dev/null "$endpoint/" && break; sleep 0.1; done

presign() { # put|get KEY
  "$venv/bin/python" - "$endpoint" "$region" "$bucket" "$1" "$2" <<'PY'
import sys, boto3
from botocore.config import Config
endpoint, region, bucket, op, key = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region,
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
print(s3.generate_presigned_url({"put": "put_object", "get": "get_object"}[op],
                                Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600))
PY
}

export FLARE_DATA_DIR=$work/data FLARE_LOG_LEVEL=warn FLARE_FFMPEG_PATH=off
export FLARE_S3_ENDPOINT=$endpoint FLARE_S3_REGION=$region FLARE_S3_BUCKET=$bucket
unset FLARE_CONFIG
token=$(cd "$work" && "$bin" token create --name bench 2>/dev/null)
(cd "$work" && exec "$bin" serve --listen "127.0.0.1:$flare_port") &
pids+=($!)
flare_pid=$!
base=http://127.0.0.1:$flare_port
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
api() { curl -sf "$base$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$2"; }
field() { python3 -c "import sys, json; print(json.load(sys.stdin)$1)"; }

head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/src.bin"
want=$(sha256sum "$work/src.bin" | cut -d' ' -f1)
secs() { curl -sS -o "${2:-/dev/null}" -w '%{time_total}' "${@:3}" "$1"; }
flare_put=() direct_put=() flare_get=() direct_get=() flare_tus=()
# Peak RSS per kind of transfer: the kernel's high-water mark, reset before each transfer and
# read after it.
declare -A peak=([put]=0 [tus]=0 [get]=0)
reset_peak() { echo 5 >"/proc/$flare_pid/clear_refs" 2>/dev/null || true; }
mark() {
  local kib
  kib=$(awk '/VmHWM/ {print $2}' "/proc/$flare_pid/status")
  [ "$kib" -gt "${peak[$1]}" ] && peak[$1]=$kib
  return 0
}
for i in $(seq "$runs"); do
  id=$(api /api/video/create '{"fileName":"big.mp4"}' | field '["video"]["id"]')
  url=$(api /api/video/upload/presign "{\"videoId\":\"$id\",\"fileName\":\"big.mp4\"}" | field '["uploadUrl"]')
  reset_peak
  flare_put+=("$(secs "$url" "$work/put.json" -X PUT -H 'Content-Type: video/mp4' -T "$work/src.bin")")
  mark put
  [ "$(field '["sha256"]' <"$work/put.json")" = "$want" ] || { echo "flare stored other bytes"; exit 1; }
  direct_put+=("$(secs "$(presign put "direct/$i.bin")" /dev/null -T "$work/src.bin")")
  reset_peak
  flare_get+=("$(secs "$base/media/$id/composite/big.mp4" "$work/got.bin")")
  mark get
  [ "$(sha256sum <"$work/got.bin" | cut -d' ' -f1)" = "$want" ] || { echo "flare served other bytes"; exit 1; }
  direct_get+=("$(secs "$(presign get "direct/$i.bin")" "$work/got.bin")")
  [ "$(sha256sum <"$work/got.bin" | cut -d' ' -f1)" = "$want" ] || { echo "the store served other bytes"; exit 1; }
  rm -f "$work/got.bin"
  # The same bytes as one tus PATCH to the resumable URL (parts cut and recorded as they come),
  # last, so that the GETs follow the same kind of transfer as before it was measured.
  rid=$(api /api/video/create '{"fileName":"big.mp4"}' | field '["video"]["id"]')
  rurl=$(api /api/video/upload/presign "{\"videoId\":\"$rid\",\"fileName\":\"big.mp4\",\"resumable\":true}" \
    | field '["resumable"]["url"]')
  curl -sf -o /dev/null -X POST -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $((size_mib << 20))" "$rurl"
  reset_peak
  flare_tus+=("$(secs "$rurl" /dev/null -X PATCH -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
    -H 'Content-Type: application/offset+octet-stream' -T "$work/src.bin")")
  mark tus
  got=$(curl -sf "$base/api/video/$rid" -H "Authorization: Bearer $token")
  [ "$(field '["video"]["sha256"]' <<<"$got")" = "$want" ] || { echo "flare stored other bytes (tus)"; exit 1; }
done
peak_kib=$(printf '%s\n' "${peak[@]}" | sort -n | tail -1)

median_rate() { printf '%s\n' "$@" | sort -g | awk -v mib="$size_mib" '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.0f", mib/m}'; }
fp=$(median_rate "${flare_put[@]}") dp=$(median_rate "${direct_put[@]}")
fg=$(median_rate "${flare_get[@]}") dg=$(median_rate "${direct_get[@]}")
ft=$(median_rate "${flare_tus[@]}")
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
mkdir -p bench/results
{
  echo "# flare with objects in S3 ($version), $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "$size_mib MiB, median of $runs alternating runs, curl on loopback, MiB/s. Command: bench/s3.sh $*"
  echo
  echo "| transfer | through flare | direct (presigned) | flare / direct |"
  echo "|---|---|---|---|"
  echo "| PUT | $fp | $dp | $(ratio "$fp" "$dp")× |"
  echo "| tus PATCH (one request) | $ft | $dp | $(ratio "$ft" "$dp")× |"
  echo "| GET | $fg | $dg | $(ratio "$fg" "$dg")× |"
  echo
  echo "flare's peak RSS: $((peak_kib / 1024)) MiB over the whole run; per transfer: PUT $((peak[put] / 1024)) MiB," \
    "tus PATCH $((peak[tus] / 1024)) MiB, GET $((peak[get] / 1024)) MiB"
} | tee "bench/results/S3-$([ "$runs" = 1 ] && echo SMOKE || echo LAST).md"
