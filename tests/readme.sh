#!/usr/bin/env bash
# The README's walk-through, run as a newcomer would: every ```sh block of README.md, in order,
# as written, in one shell, in a fresh clone of this repository. Then what the reader would
# check: the upload is stored and served, the range they fetched is the file's first KiB, the
# "ci" token is revoked, fsck finds nothing wrong.
#
# Two blocks are run differently, each for a reason:
# - the quick start's `cargo run --release -- serve` is what a reader leaves running in its own
#   terminal: it runs in the background here, and the next block starts once /healthz answers;
# - the block that is `.ci/run` is not run: it is the command that runs this script.
# The one thing a reader brings is a video: demo.mp4 is made with ffmpeg first.
# Needs port 8080 free on 127.0.0.1, as the README does.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/flare-readme.XXXXXX")
cleanup() {
  [ -f "$work/server.pid" ] && kill -- "-$(cat "$work/server.pid")" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if curl -s -o /dev/null --max-time 2 http://127.0.0.1:8080/; then
  echo "port 8080 is in use; the README's walk-through needs it"; exit 1
fi
git clone -q "$root" "$work/flare"
cd "$work/flare"
# The clone builds into this repository's target folder, so its dependencies are built once.
ln -s "$root/target" target
ffmpeg -y -loglevel error -f lavfi -i testsrc=duration=2:size=320x240:rate=25 -pix_fmt yuv420p demo.mp4

# Every ```sh block, numbered, as its own file.
awk -v dir="$work" '
  /^```sh$/ { n++; f = sprintf("%s/block%02d.sh", dir, n); inblock = 1; next }
  /^```$/ && inblock { inblock = 0; close(f); next }
  inblock { print > f }
' README.md
blocks=("$work"/block*.sh)
echo "README.md has ${#blocks[@]} shell blocks"

# One script, one shell: variables and functions carry from block to block.
script=$work/walkthrough.sh
{
  echo 'set -euo pipefail'
  # Every request of the walk-through must succeed: a 4xx (a token without a scope it needs,
  # say) fails the run instead of printing an error body no one reads.
  echo 'curl() { command curl --fail-with-body "$@"; }'
  for b in "${blocks[@]}"; do
    if grep -qx '\.ci/run' "$b"; then
      echo "echo '--- $(basename "$b"): .ci/run (not run: it is what runs this)'"
    elif grep -q -- '-- serve' "$b"; then
      echo "echo '--- $(basename "$b"): the server, in the background'"
      # In a session of its own, so that cargo and the flare it runs stop together.
      echo "setsid bash -c $(printf '%q' "$(cat "$b")") > \"$work/serve.log\" 2>&1 &"
      echo "echo \$! > \"$work/server.pid\""
      echo "for _ in \$(seq 600); do command curl -sf http://127.0.0.1:8080/healthz >/dev/null && break; sleep 1; done"
      echo "command curl -sf http://127.0.0.1:8080/healthz >/dev/null || { cat \"$work/serve.log\"; exit 1; }"
    else
      echo "echo '--- $(basename "$b")'"
      cat "$b"
    fi
  done
  # What the reader would look at.
  cat <<'CHECKS'
echo '--- checks'
cmp <(head -c 1024 demo.mp4) head.bin
flare video list --json | json '["videos"]' | grep -q "$VIDEO_ID" && { echo "the deleted video is still listed"; exit 1; }
flare token list --json | json '[-1]["revoked"]' | grep -qx True
flare fsck
echo "README walk-through: every block ran"
CHECKS
} > "$script"
set +e
bash "$script"
rc=$?
set -e
# The server block's whole session: `cargo run` and the flare it started.
if [ -f "$work/server.pid" ]; then
  kill -- "-$(cat "$work/server.pid")" 2>/dev/null || true
  for _ in $(seq 50); do command curl -s -o /dev/null http://127.0.0.1:8080/ || break; sleep 0.1; done
fi
[ $rc = 0 ] || { echo "--- serve.log"; tail -20 "$work/serve.log" 2>/dev/null; }
exit $rc
