#!/usr/bin/env bash
# The IETF resumable-upload draft (interop 6 and 8) walked through with curl, as the README
# shows it: careful creation, offset retrieval, appends, a cut append resumed, completion; and
# no 104 in the exchange. Usage: ietf-curl.sh BASE_URL TOKEN
set -euo pipefail
base=$1 token=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
pass=0 fail=0
check() { if [ "$2" = "$3" ]; then pass=$((pass + 1)); echo "ok - $1"; else fail=$((fail + 1)); echo "not ok - $1: got '$2', want '$3'"; fi; }
hdr() { grep -i "^$1:" "$2" | tail -1 | cut -d' ' -f2- | tr -d '\r'; }
head -c 3000000 /dev/urandom >"$work/rec.mp4"
want=$(sha256sum "$work/rec.mp4" | cut -d' ' -f1)
for v in 6 8; do
  id=$(curl -sf "$base/api/video/create" -H "Authorization: Bearer $token" -d '{"fileName":"rec.mp4"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["video"]["id"])')
  url=$(curl -sf "$base/api/video/upload/presign" -H "Authorization: Bearer $token" \
    -d "{\"videoId\":\"$id\",\"fileName\":\"rec.mp4\",\"resumable\":true}" | python3 -c 'import sys,json;print(json.load(sys.stdin)["resumable"]["url"])')
  # Careful creation: an empty POST with Upload-Complete: ?0.
  code=$(curl -s -o /dev/null -D "$work/h" -w '%{http_code}' -X POST "$url" -H "Upload-Draft-Interop-Version: $v" -H 'Upload-Complete: ?0' -H 'Upload-Length: 3000000')
  check "interop $v: creation" "$code" 201
  check "interop $v: Location is the URL" "$(hdr location "$work/h")" "$url"
  # A first append, cut after about 1 MB (curl's rate limit, then killed).
  head -c 2000000 "$work/rec.mp4" >"$work/first"
  curl -s -o /dev/null --limit-rate 2M -X PATCH "$url" -H "Upload-Draft-Interop-Version: $v" -H 'Content-Type: application/partial-upload' \
    -H 'Upload-Offset: 0' -H 'Upload-Complete: ?0' --data-binary @"$work/first" & cut=$!
  sleep 0.6; kill -9 $cut 2>/dev/null || true; wait $cut 2>/dev/null || true
  code=$(curl -s -o /dev/null -D "$work/h" -w '%{http_code}' -I "$url" -H "Upload-Draft-Interop-Version: $v")
  check "interop $v: offset retrieval" "$code" 204
  offset=$(hdr upload-offset "$work/h")
  check "interop $v: the cut append kept a prefix" "$([ "${offset:-0}" -gt 0 ] && [ "$offset" -le 2000000 ] && echo yes)" yes
  check "interop $v: Upload-Complete ?0" "$(hdr upload-complete "$work/h")" '?0'
  check "interop $v: Upload-Limit" "$(hdr upload-limit "$work/h" | grep -c max-size)" 1
  # A wrong offset: 409 with the right one.
  code=$(curl -s -o /dev/null -D "$work/h" -w '%{http_code}' -X PATCH "$url" -H "Upload-Draft-Interop-Version: $v" \
    -H 'Content-Type: application/partial-upload' -H 'Upload-Offset: 1' -H 'Upload-Complete: ?0' --data-binary x)
  check "interop $v: wrong offset is 409" "$code" 409
  check "interop $v: 409 names the offset" "$(hdr upload-offset "$work/h")" "$offset"
  # The rest, completing: the PUT's JSON, and no 104 in the exchange.
  tail -c +"$((offset + 1))" "$work/rec.mp4" >"$work/rest"
  code=$(curl -sv -o "$work/body" -w '%{http_code}' -X PATCH "$url" -H "Upload-Draft-Interop-Version: $v" \
    -H 'Content-Type: application/partial-upload' -H "Upload-Offset: $offset" -H 'Upload-Complete: ?1' --data-binary @"$work/rest" 2>"$work/verbose")
  check "interop $v: completion" "$code" 200
  check "interop $v: no 104 sent" "$(grep -c '< HTTP/1.1 104' "$work/verbose" || true)" 0
  check "interop $v: the answer's sha256" "$(python3 -c 'import sys,json;print(json.load(open(sys.argv[1]))["sha256"])' "$work/body")" "$want"
  check "interop $v: the bytes served" "$(curl -sf "$base/media/$id/composite/rec.mp4" | sha256sum | cut -d' ' -f1)" "$want"
  # Cancellation on a second upload: DELETE, and the URL starts again at 0.
  p2=$(curl -sf "$base/api/video/upload/presign" -H "Authorization: Bearer $token" \
    -d "{\"videoId\":\"$id\",\"fileName\":\"rec.mp4\",\"resumable\":true}" | python3 -c 'import sys,json;print(json.load(sys.stdin)["resumable"]["url"])')
  curl -s -o /dev/null -X POST "$p2" -H "Upload-Draft-Interop-Version: $v" -H 'Upload-Complete: ?0' --data-binary @"$work/first"
  check "interop $v: cancellation" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$p2" -H "Upload-Draft-Interop-Version: $v")" 204
  curl -s -o /dev/null -D "$work/h" -I "$p2" -H "Upload-Draft-Interop-Version: $v"
  check "interop $v: offset 0 after cancellation" "$(hdr upload-offset "$work/h")" 0
done
echo "# pass $pass"; echo "# fail $fail"
[ "$fail" = 0 ]
