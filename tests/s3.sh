#!/usr/bin/env bash
# The test suite with objects in an S3-compatible bucket: builds flare with `--features s3`,
# starts s3s-fs (an S3 server over a folder, from the Rust registry, installed when missing) on
# a free loopback port, and runs every cargo test against it (tests/api/helpers.rs gives each
# server a bucket of its own), except the ones that look at what only a data folder holds; then
# the browser suite (when chromium is here; .ci/run installs it).
# Stops s3s-fs and removes its folder on the way out. Arguments: only the cargo tests they name.
set -euo pipefail
cd "$(dirname "$0")/.."

S3S_FS_VERSION=${S3S_FS_VERSION:-0.14.1}
if ! command -v s3s-fs >/dev/null 2>&1; then
  echo "installing s3s-fs $S3S_FS_VERSION with cargo install (about 3 minutes), the S3 server the tests use"
  cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked --quiet
fi

root=$(mktemp -d)
log=$(mktemp)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid=
cleanup() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  rm -rf "$root" "$log"
}
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=flare-test AWS_SECRET_ACCESS_KEY=flare-test-secret
RUST_LOG=warn s3s-fs --host 127.0.0.1 --port "$port" \
  --access-key "$AWS_ACCESS_KEY_ID" --secret-key "$AWS_SECRET_ACCESS_KEY" "$root" >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.1
done
echo "s3s-fs $(s3s-fs --version | awk '{print $2}') on 127.0.0.1:$port"

source tests/skips.sh
skip=("${S3_SKIP[@]}")
features=s3
# Inside tests/pg.sh: the records in PostgreSQL too.
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  features=s3,postgres
  skip+=("${PG_SKIP[@]}")
fi
args=()
for s in "${skip[@]}"; do args+=(--skip "$s"); done
rc=0
TEST_S3_ENDPOINT="http://127.0.0.1:$port" TEST_S3_ROOT="$root" \
  cargo test --locked --features "$features" -- "${args[@]}" "$@" || rc=$?
# The browser suite too (the web app's uploads, the watch page, posters and renditions), on the
# binary cargo test just built with the feature, every server it starts on one bucket.
if [ $# -gt 0 ]; then
  echo "the browser suite: not run, as only the tests named $* were"
elif command -v chromium >/dev/null 2>&1; then
  mkdir -p "$root/browser"
  db_env=()
  if [ -n "${TEST_DATABASE_URL:-}" ]; then
    createdb browser
    # Each browser test starts flare on a folder of its own, all on one database: as several
    # nodes, they share the signing key.
    db_env=("FLARE_DATABASE_URL=${TEST_DATABASE_URL}browser"
      "FLARE_SIGNING_KEY=QnJvd3NlckJyb3dzZXJCcm93c2VyQnJvd3NlckJyb3c=")
  fi
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error &&
    env FLARE_S3_ENDPOINT="http://127.0.0.1:$port" FLARE_S3_BUCKET=browser "${db_env[@]}" npm test) || rc=$?
else
  echo "the browser suite against the bucket: skipped, no chromium"
fi
if [ "$rc" != 0 ]; then
  echo "== the end of s3s-fs's log"
  tail -n 40 "$log"
fi
exit "$rc"
