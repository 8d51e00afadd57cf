#!/usr/bin/env bash
# The test suite with the records in PostgreSQL: starts a throwaway PostgreSQL cluster from
# Debian's packages (pg_virtualenv, from postgresql-common; installed when missing) on a
# loopback port, and runs every cargo test with `--features postgres` against it
# (tests/api/helpers.rs gives each server a database of its own), except the ones that look
# at what only an SQLite file holds. The cluster is dropped on the way out.
#
#   tests/pg.sh               PostgreSQL + objects on disk
#   tests/pg.sh tests/s3.sh   PostgreSQL + objects in S3 (s3s-fs): tests/s3.sh adds the feature
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pg_virtualenv >/dev/null 2>&1; then
  echo "installing PostgreSQL (Debian's postgresql) for the PostgreSQL tests"
  sudo_=; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq
  $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi

if [ -z "${TEST_DATABASE_URL:-}" ] && [ -z "${PG_INSIDE:-}" ]; then
  # pg_virtualenv makes the cluster, exports PGHOST/PGPORT/PGUSER/PGPASSWORD, runs this
  # script again inside it, and drops the cluster when it ends.
  # A cluster left by a run that was killed would stop this one: drop it first.
  pg_lsclusters -h 2>/dev/null | awk '$2 == "regress" {print $1}' | while read -r v; do
    pg_dropcluster "$v" regress --stop || true
  done
  exec env PG_INSIDE=1 pg_virtualenv -t -o max_connections=400 -o fsync=off "$0" "$@"
fi
export TEST_DATABASE_URL="postgres://$PGUSER:$PGPASSWORD@127.0.0.1:$PGPORT/"
echo "PostgreSQL $(psql -Atc 'SHOW server_version') on 127.0.0.1:$PGPORT"

if [ $# -gt 0 ]; then
  exec "$@"
fi
source tests/skips.sh
args=()
for s in "${PG_SKIP[@]}"; do args+=(--skip "$s"); done
cargo test --locked --features postgres -- "${args[@]}"
