#!/usr/bin/env bash
# Thousands of SIGKILL rounds: runs the repository's crash test (tests/crash.rs) in batches,
# on SQLite and on PostgreSQL, each batch with a fresh seed, until TOTAL rounds per database
# have passed or one fails. Every batch ends with the test's final checks (no temp or orphan
# file, `index verify` clean, `index rebuild` of a lost index reproduces the listing).
#
#   bench/scripts/crash-rounds.sh [TOTAL]        # default 1000 rounds per database
#
# BATCH (default 50) rounds per test run; DBS (default "sqlite postgres"); PG_URL (default
# postgres://postgres@127.0.0.1:5432/test) and REDIS_URL (default redis://127.0.0.1:6379).
# ARTSTORE_TEST_BIN may name a release build of artstore to crash instead of the debug one.
# The test and server binaries are copied first, so the run is not affected by rebuilds.
# Prints one line per batch and a summary; exits non-zero on the first failing batch, whose
# seed (ARTSTORE_CRASH_SEED) reproduces it.
set -euo pipefail
TOTAL=${1:-1000}
BATCH=${BATCH:-50}
DBS=${DBS:-sqlite postgres}
export ARTSTORE_TEST_DATABASE_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
export ARTSTORE_TEST_REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export ARTSTORE_TEST_REQUIRE_ALL=1
unset AWS_CA_BUNDLE
cd "$(dirname "$0")/../.."
# Run copies of the test and of the server, so rebuilds meanwhile do not change what runs.
bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
test_bin=$(cargo test -p artstore-gateway --test crash --no-run 2>&1 | sed -nE 's/.*Executable .*\((.*crash-[0-9a-f]+)\).*/\1/p')
cp "$test_bin" "$bin_dir/crash"
cp "${ARTSTORE_TEST_BIN:-target/debug/artstore}" "$bin_dir/artstore"
export ARTSTORE_TEST_BIN="$bin_dir/artstore"
for db in $DBS; do
  done_rounds=0 acked=0 cut=0 batches=0
  start=$(date +%s)
  while [ "$done_rounds" -lt "$TOTAL" ]; do
    n=$(( TOTAL - done_rounds < BATCH ? TOTAL - done_rounds : BATCH ))
    seed=$(( $(date +%s%N) % 9000000000000000000 ))
    log=$(mktemp)
    if ! ARTSTORE_CRASH_ROUNDS=$n ARTSTORE_CRASH_SEED=$seed \
        "$bin_dir/crash" --exact "sigkill_rounds_lose_nothing::$db" --nocapture >"$log" 2>&1; then
      echo "FAILED: db=$db batch=$((batches + 1)) rounds=$n ARTSTORE_CRASH_SEED=$seed (log: $log)"
      exit 1
    fi
    line=$(grep -m1 'crash rounds passed' "$log")
    rm -f "$log"
    a=$(sed -E 's/.*acknowledged: ([0-9]+).*/\1/' <<<"$line")
    c=$(sed -E 's/.*cut off by a kill: ([0-9]+).*/\1/' <<<"$line")
    done_rounds=$((done_rounds + n)) acked=$((acked + a)) cut=$((cut + c)) batches=$((batches + 1))
    echo "db=$db batch=$batches seed=$seed rounds=$n acknowledged=$a cut_off=$c total_rounds=$done_rounds"
  done
  echo "SUMMARY db=$db rounds=$done_rounds batches=$batches requests_acknowledged=$acked cut_off_by_kill=$cut failures=0 seconds=$(( $(date +%s) - start ))"
done
