#!/usr/bin/env bash
# flare with its objects in Garage (the reference S3-compatible store): starts a one-node Garage
# on free loopback ports in a temporary folder (layout, key, bucket), builds flare with
# `--features s3`, and checks through flare: an upload and its bytes, Range, HEAD and 304, a
# replacement removing the old object, fsck --verify clean, a delete leaving the bucket empty.
# Run inside tests/pg.sh (as .ci/run does), the records are in PostgreSQL.
# Needs the `garage` binary (cargo install garage --version 2.5.0 --locked: about 13 minutes on
# 2 cores); .ci/run runs this when one is on PATH. Stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v garage >/dev/null 2>&1 || {
  echo "no garage binary on PATH: cargo install garage --version 2.5.0 --locked"
  exit 1
}
features=s3
# Inside tests/pg.sh (tests/pg.sh tests/garage.sh): the records in PostgreSQL too.
[ -z "${TEST_DATABASE_URL:-}" ] || features=s3,postgres
cargo build --locked --quiet --features "$features"
flare=$PWD/target/debug/flare

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
flare_port=$(free_port)
eval "$(tests/garage-up.sh "$work/garage" flare-videos)"
pids+=("$(cat "$work/garage/pid")")
G=(garage -c "$work/garage/garage.toml")
echo "garage $(garage --version 2>/dev/null | head -1 | awk '{print $2}') at $FLARE_S3_ENDPOINT, bucket flare-videos"
export FLARE_DATA_DIR=$work/data FLARE_FFMPEG_PATH=off
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  createdb garage
  export FLARE_DATABASE_URL=${TEST_DATABASE_URL}garage
  echo "records in PostgreSQL ($(psql -Atc 'SHOW server_version'))"
fi
unset FLARE_CONFIG
cd "$work"
token=$("$flare" token create --name garage 2>/dev/null)
"$flare" serve --listen "127.0.0.1:$flare_port" >"$work/flare.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$flare_port/healthz" && break; sleep 0.1; done
base=http://127.0.0.1:$flare_port
api() { curl -sS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
field() { python3 -c "import sys, json; print(json.load(sys.stdin)$1)"; }
fail() { echo "FAIL: $*"; echo "== flare's log"; tail -n 20 "$work/flare.log"; exit 1; }

id=$(api -X POST -d '{"fileName":"talk.mp4"}' "$base/api/video/create" | field '["video"]["id"]')
upload() {
  local presign
  presign=$(api -X POST -d "{\"videoId\":\"$id\",\"fileName\":\"talk.mp4\"}" "$base/api/video/upload/presign")
  curl -sS -o /dev/null -w '%{http_code}' -T "$1" -H 'Content-Type: video/mp4' \
    "$(echo "$presign" | field '["uploadUrl"]')"
}
head -c 20000000 /dev/urandom >first.bin
[ "$(upload first.bin)" = 200 ] || fail "the upload was refused"
public=$base/media/$id/composite/talk.mp4
curl -sS -o got.bin "$public"; cmp -s got.bin first.bin || fail "the served bytes differ"
curl -sS -o part.bin -H 'Range: bytes=1000000-1999999' "$public"
cmp -s part.bin <(tail -c +1000001 first.bin | head -c 1000000) || fail "the range differs"
etag=$(curl -sS -D - -o /dev/null -I "$public" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag" {print $2}')
[ "$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$public")" = 304 ] || fail "no 304"
echo "upload, GET, Range and 304 through flare: ok"

head -c 5000000 /dev/urandom >second.bin
[ "$(upload second.bin)" = 200 ] || fail "the second upload was refused"
curl -sS -o got.bin "$public"; cmp -s got.bin second.bin || fail "the replacement is not served"
sleep 2
objects() { "${G[@]}" bucket info flare-videos | awk -F': *' '/^Objects/ {print $2}' | tr -d ' '; }
[ "$(objects)" = 1 ] || fail "the bucket holds $(objects) objects after a replacement, not 1"
report=$("$flare" fsck --verify --json)
[ "$(echo "$report" | field '["ok"]')" = True ] || fail "fsck: $report"
echo "replacement removed the old object; fsck --verify clean"

api -X DELETE -o /dev/null "$base/api/video/$id"
for _ in $(seq 50); do [ "$(objects)" = 0 ] && break; sleep 0.1; done
[ "$(objects)" = 0 ] || fail "the bucket holds $(objects) objects after the delete"
echo "delete emptied the bucket"
echo "garage: ok"
