#!/usr/bin/env bash
# Peak memory of the server while it takes one large upload through a signed URL.
# Usage: bench/upload-rss.sh [SIZE_MIB=1024] [PORT=18911]
# Builds flare in release mode, starts it on loopback with a fresh data folder, creates a token,
# a video and an upload URL, PUTs SIZE_MIB of random data with curl, checks the sha256 that the
# server reports and the bytes it serves back, then prints the server's peak RSS (VmHWM).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
port=${2:-18911}
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/flare
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
export FLARE_DATA_DIR="$work/data" FLARE_LOG_LEVEL=warn
token=$($bin token create --name bench 2>/dev/null)
$bin serve --listen "127.0.0.1:$port" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$work/src.bin"
want=$(sha256sum "$work/src.bin" | cut -d' ' -f1)
api() { curl -sf "http://127.0.0.1:$port$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$2"; }
vid=$(api /api/video/create '{"fileName":"big.mp4"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["video"]["id"])')
url=$(api /api/video/upload/presign "{\"videoId\":\"$vid\",\"fileName\":\"big.mp4\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["uploadUrl"])')
rss_before=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
start=$(date +%s.%N)
got=$(curl -sf -X PUT -H 'Content-Type: video/mp4' --upload-file "$work/src.bin" "$url" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')
end=$(date +%s.%N)
peak=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
[ "$got" = "$want" ] || { echo "sha256 mismatch: server $got, file $want"; exit 1; }
served=$(curl -sf "http://127.0.0.1:$port/media/$vid/composite/big.mp4" | sha256sum | cut -d' ' -f1)
[ "$served" = "$want" ] || { echo "served bytes differ"; exit 1; }
peak_after_get=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
echo "upload of ${size_mib} MiB: $(python3 -c "print(round($size_mib/($end-$start)))") MiB/s, sha256 ok, served back identical"
echo "peak RSS: before upload $((rss_before / 1024)) MiB, after upload $((peak / 1024)) MiB, after GET $((peak_after_get / 1024)) MiB"
