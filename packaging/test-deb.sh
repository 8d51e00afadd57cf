#!/usr/bin/env bash
# Builds flare's .deb with cargo-deb (installed from the Rust registry when missing), installs it
# with dpkg -i, and checks what an operator gets: the flare user, /etc/flare/flare.toml (a
# conffile), /var/lib/flare owned by flare, the systemd unit (checked by systemd-analyze verify),
# then starts flare as that user as the unit would, makes a token, uploads a file and reads it
# back byte for byte, and finds it stored under /var/lib/flare by the flare user. Purges the
# package at the end (the data folder is kept on purpose; the script removes it after).
# Needs root (or sudo) for dpkg. Prints `deb: ok` when every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
fail() { echo "deb: FAILED: $*"; exit 1; }
PORT=${DEB_TEST_PORT:-18650}

if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing cargo-deb from the Rust registry (cargo install --locked cargo-deb@^3)"
  cargo install --locked --quiet cargo-deb@^3
fi
if dpkg -s flare >/dev/null 2>&1; then fail "a flare package is already installed here; dpkg --purge flare first"; fi
[ -e /var/lib/flare ] && fail "/var/lib/flare exists already; this test would not touch another installation's data"

cargo deb --locked --quiet
DEB=$(ls -t target/debian/flare_*.deb | head -1)
echo "built $DEB ($(du -h "$DEB" | cut -f1))"
dpkg-deb --info "$DEB" | sed -n '/Package:/,$p'
dpkg-deb --contents "$DEB" | awk '{print $1, $2, $6}'

PID=
cleanup() {
  # runuser does not pass SIGTERM on: the server itself is stopped, by its user and name.
  as_root pkill -TERM -u flare -x flare 2>/dev/null || true
  [ -n "$PID" ] && wait "$PID" 2>/dev/null || true
  as_root dpkg --purge flare >/dev/null 2>&1 || true
  as_root rm -rf /var/lib/flare /etc/flare
  rm -rf "${W:-}"
}
trap cleanup EXIT
W=$(mktemp -d)

as_root dpkg -i "$DEB"
getent passwd flare >/dev/null || fail "no flare user"
[ "$(stat -c '%U %a' /var/lib/flare)" = "flare 750" ] || fail "/var/lib/flare is $(stat -c '%U %a' /var/lib/flare)"
[ "$(stat -c '%G %a' /etc/flare/flare.toml)" = "flare 640" ] || fail "/etc/flare/flare.toml is $(stat -c '%G %a' /etc/flare/flare.toml)"
grep -qx /etc/flare/flare.toml /var/lib/dpkg/info/flare.conffiles || fail "flare.toml is not a conffile"
UNIT=$(dpkg -L flare | grep -E '/systemd/system/flare\.service$') || fail "no systemd unit in the package"
grep -q '^User=flare' "$UNIT" && grep -q '^ProtectSystem=strict' "$UNIT" || fail "the unit is not the hardened one"
if command -v systemd-analyze >/dev/null; then
  # Only the unit's own errors count (this machine may run without systemd as PID 1).
  if systemd-analyze verify "$UNIT" 2>&1 | grep -i "flare.service" | grep -v "Failed to" ; then
    fail "systemd-analyze verify found a problem in the unit"
  fi
fi

# As the unit runs it: the flare user, the packaged config (listen moved to a test port).
as_root runuser -u flare -- env FLARE_LISTEN="127.0.0.1:$PORT" \
  /usr/bin/flare --config /etc/flare/flare.toml serve >"$W/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$W/serve.log"; fail "flare did not start as the flare user"; }
TOKEN=$(as_root runuser -u flare -- /usr/bin/flare --config /etc/flare/flare.toml token create --name deb-test 2>/dev/null)
[ -n "$TOKEN" ] || fail "no token"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
head -c 3000000 /dev/urandom > "$W/clip.mp4"
ID=$(curl -sf "http://127.0.0.1:$PORT/api/video/create" -H "Authorization: Bearer $TOKEN" -d '{"fileName":"clip.mp4"}' | json '["video"]["id"]')
P=$(curl -sf "http://127.0.0.1:$PORT/api/video/upload/presign" -H "Authorization: Bearer $TOKEN" -d "{\"videoId\":\"$ID\",\"fileName\":\"clip.mp4\"}")
curl -sf -X PUT -H 'Content-Type: video/mp4' --data-binary "@$W/clip.mp4" "$(echo "$P" | json '["uploadUrl"]')" >/dev/null || fail "the upload was refused"
curl -sf "$(echo "$P" | json '["publicUrl"]')" -o "$W/back.mp4" || fail "the video could not be read back"
cmp "$W/clip.mp4" "$W/back.mp4" || fail "the video read back differs"
STORED=/var/lib/flare/objects/$ID/composite/clip.mp4
[ "$(as_root stat -c %U "$STORED")" = flare ] || fail "$STORED is not the flare user's"
as_root cmp "$W/clip.mp4" "$STORED" || fail "the stored file differs"
as_root runuser -u flare -- /usr/bin/flare --config /etc/flare/flare.toml doctor || true
echo "deb: ok ($DEB installed, served as the flare user, 3000000 bytes up and back)"
