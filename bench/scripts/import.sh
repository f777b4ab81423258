#!/usr/bin/env bash
# Throughput of `artstore element import`: generates a legacy (Python layout, attr.json v1)
# storage element of DOCS documents of SIZE bytes each, then imports it into a fresh data dir,
# once verifying SHA-256 and once with --no-verify-checksums, on SQLite (and on PostgreSQL with
# PG_URL set). Prints documents/s and MB/s per run.
#
#   bench/scripts/import.sh ARTSTORE_BIN        # DOCS (default 5000), SIZE (default 65536)
set -euo pipefail
bin=$(realpath "$1")
DOCS=${DOCS:-5000}; SIZE=${SIZE:-65536}
work=$(mktemp -d /tmp/artstore-import-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 - "$work/tree" "$DOCS" "$SIZE" <<'PY'
import hashlib, json, os, sys, uuid
root, docs, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(docs):
    h = i % 24
    d = os.path.join(root, f"2025/01/{1 + i // 2400 % 28:02d}/{h:02d}")
    os.makedirs(d, exist_ok=True)
    fid = str(uuid.uuid4())
    name = f"Документ {i}_ivanov_20250101T{h:02d}0000_{fid}.pdf"
    data = os.urandom(size)
    open(os.path.join(d, name), "wb").write(data)
    attr = {"file_id": fid, "original_filename": f"Документ {i}.pdf", "storage_filename": name,
            "file_size": size, "content_type": "application/pdf",
            "created_at": "2025-01-01 10:00:00.000000+00:00", "updated_at": "2025-01-01T10:00:00Z",
            "created_by_id": "42", "created_by_username": "ivanov",
            "storage_path": os.path.relpath(d, root) + "/", "checksum": hashlib.sha256(data).hexdigest(),
            "metadata": {"Отдел": "бухгалтерия", "n": i}}
    open(os.path.join(d, name + ".attr.json"), "w").write(json.dumps(attr, ensure_ascii=False, indent=2))
PY
run() { # db label extra-args…
  local db=$1 label=$2; shift 2
  local data="$work/data-$db-$label"; mkdir -p "$data"
  rm -f "$work/tree/element.json"
  if [ "$db" = postgres ]; then
    local name=import_bench_$(date +%s%N)
    psql -q "$PG_URL" -c "CREATE DATABASE $name" >/dev/null
    export ARTSTORE_DATABASE_URL="${PG_URL%/*}/$name"
  else
    unset ARTSTORE_DATABASE_URL
  fi
  "$bin" migrate --data-dir "$data" >/dev/null 2>&1
  local t0 t1; t0=$(date +%s.%N)
  "$bin" element import --path "$work/tree" --name "bench-$label" --data-dir "$data" --json "$@" \
    > "$work/report.json" 2>/dev/null
  t1=$(date +%s.%N)
  rm -f "$work/data-$db-$label/elements/bench-$label"
  python3 - "$work/report.json" "$t0" "$t1" "$db" "$label" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = float(sys.argv[3]) - float(sys.argv[2])
n = len(r["imported"]); b = r["bytes_imported"]
print(f"{sys.argv[4]:8} {sys.argv[5]:10} {n} documents, {b / 1e6:.0f} MB in {s:.1f} s: "
      f"{n / s:.0f} documents/s, {b / 1e6 / s:.0f} MB/s, skipped {len(r['skipped'])}")
PY
}
dbs=(sqlite); [ -n "${PG_URL:-}" ] && dbs+=(postgres)
for db in "${dbs[@]}"; do
  run "$db" verify
  run "$db" no-verify --no-verify-checksums
done
