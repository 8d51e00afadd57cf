#!/usr/bin/env bash
# The test suite with objects in an S3-compatible bucket: builds flare with `--features s3`,
# starts s3s-fs (an S3 server over a folder, from the Rust registry, installed when missing) on
# a free loopback port, and runs every cargo test against it (tests/api/helpers.rs gives each
# server a bucket of its own), except the ones that look at what only a data folder holds; then
# the browser suite (when chromium is here; .ci/run installs it).
# Stops s3s-fs and removes its folder on the way out.
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

# What only a data folder holds, each covered for a bucket in tests/api/bucket.rs or said in
# the README: backups and bundles (refused with a bucket), sendfile (local files only),
# Last-Modified set by flare (a store sets its own), and tests that look into objects/ or fill
# the data folder's disk.
skip=(
  backup:: bundle::
  media::a_kept_alive_connection_moves_from_the_sendfile_path_to_actix
  media::the_sendfile_path_answers_exactly_as_actix_does
  media::without_cachestat_the_sendfile_path_probes_the_cache_with_mincore
  media::a_replaced_object_never_shares_a_date_and_if_match_is_enforced
  media::conditional_requests_answer_304_and_if_range_guards_ranges
  datadir::the_data_folder_and_its_files_are_private
  fsck::every_kind_of_damage_is_found_and_repaired_without_losing_data
  names::hostile_names_are_refused_or_kept_inside_objects
  faults::a_full_disk_refuses_with_507_and_keeps_what_was_stored
  publication::a_second_file_name_replaces_the_first_object
)
args=()
for s in "${skip[@]}"; do args+=(--skip "$s"); done
rc=0
TEST_S3_ENDPOINT="http://127.0.0.1:$port" TEST_S3_ROOT="$root" \
  cargo test --locked --features s3 -- "${args[@]}" || rc=$?
# The browser suite too (the web app's uploads, the watch page, posters and renditions), on the
# binary cargo test just built with the feature, every server it starts on one bucket.
if command -v chromium >/dev/null 2>&1; then
  mkdir -p "$root/browser"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error &&
    FLARE_S3_ENDPOINT="http://127.0.0.1:$port" FLARE_S3_BUCKET=browser npm test) || rc=$?
else
  echo "the browser suite against the bucket: skipped, no chromium"
fi
if [ "$rc" != 0 ]; then
  echo "== the end of s3s-fs's log"
  tail -n 40 "$log"
fi
exit "$rc"
