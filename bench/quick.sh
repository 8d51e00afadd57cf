#!/usr/bin/env bash
# Quick side-by-side probe used while tuning: GET of 256 MiB (3 runs), random 1 MiB Range GETs
# (wrk, 32 connections, 4 s) and peak RSS with 100 slow readers, flare vs the nginx peer.
set -euo pipefail
cd "$(dirname "$0")/.."; cargo build --release -q
W=$(mktemp -d); P=18800; B=${CARGO_TARGET_DIR:-target}/release/flare; PEERS=${FLARE_PEERS:-$PWD/../shared/peers}
export FLARE_DATA_DIR=$W/data FLARE_SYNC_UPLOADS=false FLARE_LOG_LEVEL=warn FLARE_DISK_RESERVE_BYTES=0
TOK=$($B token create --name q 2>/dev/null)
$B serve --listen 127.0.0.1:$P 2>$W/log & FP=$!
"$PEERS/nginx/start.sh" $((P+1)) "$W/ng" 2>/dev/null & NP=$!
sleep 1
head -c $((256<<20)) /dev/urandom > $W/src.bin
VID=$(curl -sf localhost:$P/api/video/create -H "Authorization: Bearer $TOK" -d '{"fileName":"a.mp4"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["video"]["id"])')
U=$(curl -sf localhost:$P/api/video/upload/presign -H "Authorization: Bearer $TOK" -d "{\"videoId\":\"$VID\",\"fileName\":\"a.mp4\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["uploadUrl"])')
curl -sf -H 'Expect:' -H 'Content-Type: video/mp4' -T $W/src.bin "$U" >/dev/null
NU=$(SECRET=bench-secret $PEERS/nginx/sign.sh PUT /files/a.bin 600); curl -sf -H 'Expect:' -T $W/src.bin "http://127.0.0.1:$((P+1))$NU" -o /dev/null
NG=$(SECRET=bench-secret $PEERS/nginx/sign.sh GET /files/a.bin 600)
for i in 1 2 3; do
  f=$(curl -s -o /dev/null -w '%{speed_download}' localhost:$P/media/$VID/composite/a.mp4 | awk '{printf "%.0f", $1/1048576}')
  n=$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$((P+1))$NG" | awk '{printf "%.0f", $1/1048576}')
  echo "GET flare $f nginx $n"
done
cat > $W/r.lua <<LUA
request = function() local s = math.random(0, $((256<<20)) - 1048576); return wrk.format("GET", nil, {Range="bytes="..s.."-"..(s+1048575)}) end
LUA
echo "range flare: $(wrk -t2 -c32 -d4s --latency -s $W/r.lua http://127.0.0.1:$P/media/$VID/composite/a.mp4 | grep -E '^ +(50|99)%|Requests/sec' | tr -s ' ' | tr '\n' ' ')"
echo "range nginx: $(wrk -t2 -c32 -d4s --latency -s $W/r.lua "http://127.0.0.1:$((P+1))$NG" | grep -E '^ +(50|99)%|Requests/sec' | tr -s ' ' | tr '\n' ' ')"
pids=(); for i in $(seq 100); do curl -s -o /dev/null --limit-rate 256k localhost:$P/media/$VID/composite/a.mp4 & pids+=($!); done
sleep 4; echo "RSS with 100 slow readers: $(awk '/VmHWM/{print $2/1024}' /proc/$FP/status) MiB, threads $(ls /proc/$FP/task | wc -l)"
kill "${pids[@]}" 2>/dev/null; kill $FP $NP; wait 2>/dev/null; rm -rf $W
