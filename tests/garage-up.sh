#!/usr/bin/env bash
# Usage: tests/garage-up.sh DIR BUCKET
# Starts a one-node Garage (the `garage` binary on PATH) in DIR on free loopback ports, with its
# layout, a key of its own and BUCKET, in the background; writes its pid to DIR/pid and prints the
# lines to `eval` for flare and S3 clients: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# FLARE_S3_ENDPOINT, FLARE_S3_REGION, FLARE_S3_BUCKET. Used by tests/garage.sh and bench/s3.sh.
set -euo pipefail
dir=${1:?DIR}; bucket=${2:?BUCKET}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
s3_port=$(free_port); rpc_port=$(free_port); admin_port=$(free_port)
mkdir -p "$dir/meta" "$dir/data"
cat >"$dir/garage.toml" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
compression_level = "none"
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(hex 32)"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.localhost"
[admin]
api_bind_addr = "127.0.0.1:$admin_port"
TOML
G=(garage -c "$dir/garage.toml")
RUST_LOG=garage=warn "${G[@]}" server >"$dir/garage.log" 2>&1 &
echo $! >"$dir/pid"
for _ in $(seq 100); do "${G[@]}" status >/dev/null 2>&1 && break; sleep 0.2; done
node=$("${G[@]}" node id -q | cut -d@ -f1)
"${G[@]}" layout assign -z dc1 -c 10G "$node" >/dev/null
"${G[@]}" layout apply --version 1 >/dev/null
key_id=GK$(hex 12) key_secret=$(hex 32)
"${G[@]}" key import --yes -n flare "$key_id" "$key_secret" >/dev/null
"${G[@]}" bucket create "$bucket" >/dev/null
"${G[@]}" bucket allow --read --write --owner "$bucket" --key "$key_id" >/dev/null
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$s3_port/" && break; sleep 0.1; done
echo "export AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$key_secret"
echo "export FLARE_S3_ENDPOINT=http://127.0.0.1:$s3_port FLARE_S3_REGION=garage FLARE_S3_BUCKET=$bucket"
