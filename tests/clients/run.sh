#!/usr/bin/env bash
# Resumable-upload conformance with real clients outside the browser: tuspy (PyPI, installed in
# a venv here when missing) and scripted curl for the IETF draft, against a flare started here
# on loopback with a fresh data folder. tus-js-client runs with the browser tests
# (tests/browser/tus.test.mjs), Uppy in headless Chromium there too.
# Usage: tests/clients/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${CARGO_TARGET_DIR:-target}/debug/flare
[ -x "$bin" ] || cargo build --locked --quiet
bin=$(realpath "$bin")
work=$(mktemp -d)
export FLARE_DATA_DIR="$work/data"
venv=${FLARE_TUSPY_VENV:-target/tuspy-venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import tusclient' 2>/dev/null; then
  echo "installing tuspy 1.1.0 (PyPI) into $venv"
  python3 -m venv "$venv" && "$venv/bin/pip" install --quiet tuspy==1.1.0
fi
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
cat >"$work/restart" <<SH
#!/usr/bin/env bash
# kill -9 the server, then start it again on the same port and wait until it listens.
kill -9 "\$(cat "$work/pid" 2>/dev/null)" 2>/dev/null || true
sleep 0.2
: >"$work/log"
setsid "$bin" serve --listen 127.0.0.1:$port 2>>"$work/log" & echo \$! >"$work/pid"
for _ in \$(seq 100); do grep -q "listening on" "$work/log" && exit 0; sleep 0.1; done
echo "flare did not start again" >&2; exit 1
SH
chmod +x "$work/restart"
cleanup() { kill -9 "$(cat "$work/pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
token=$("$bin" token create --name clients 2>/dev/null)
"$work/restart"
base="http://127.0.0.1:$port"
rc=0
echo "== tuspy"
FLARE_RESTART="$work/restart" TMPDIR="$work" "$venv/bin/python" tests/clients/tuspy_test.py "$base" "$token" || rc=1
echo "== curl, IETF draft interop 6 and 8"
tests/clients/ietf-curl.sh "$base" "$token" || rc=1
exit $rc
