#!/usr/bin/env bash
# Alternating A/B runs of the `small` scenario (4 KiB PUT then GET) for two or more artstore
# builds, on SQLite and on PostgreSQL, at 16 and 64 requests in flight. Alternating spreads the
# machine's drift (fsync latency, other load) over all builds alike.
#
#   bench/scripts/ab-small.sh BENCH_BIN ARTSTORE_A ARTSTORE_B [ARTSTORE_C …]
#
# ROUNDS (default 2) and OPS (default 4000 per phase) tune the run; PG_URL (default
# postgres://postgres@127.0.0.1:5432/test) is where a fresh database is made for each run.
set -euo pipefail
bench=$1; shift
ROUNDS=${ROUNDS:-2}; OPS=${OPS:-4000}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
for r in $(seq 1 "$ROUNDS"); do
  for db in sqlite postgres; do
    for c in 16 64; do
      for bin in "$@"; do
        if [ "$db" = postgres ]; then
          name=bench_$(date +%s%N)
          psql -q "$PG_URL" -c "CREATE DATABASE $name" >/dev/null
          export ARTSTORE_DATABASE_URL="${PG_URL%/*}/$name"
        else
          unset ARTSTORE_DATABASE_URL
        fi
        out=$("$bench" --spawn "$bin" --scenario small --concurrency "$c" --ops "$OPS" --json 2>/dev/null)
        printf '%s %s c=%s %s ' "$r" "$db" "$c" "$bin"
        echo "$out" | python3 -c '
import json, sys
for line in sys.stdin:
    if line.startswith("{"):
        for ph in json.loads(line)["phases"]:
            l = ph["latency_ms"]
            print("%s %d ops/s p50 %.1f p99 %.1f errors %d |" % (ph["phase"], ph["ops_per_s"], l["p50"], l["p99"], ph["errors"]), end=" ")
print()'
        if [ "$db" = postgres ]; then
          unset ARTSTORE_DATABASE_URL
          psql -q "$PG_URL" -c "DROP DATABASE $name" >/dev/null
        fi
      done
    done
  done
done
