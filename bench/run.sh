#!/usr/bin/env bash
# make bench: the product against an equivalent DuckDB job on generated data (SPEC 8).
#
#   bench/run.sh            # what `make bench` runs, after building target/release/berakhlak
#
# Environment:
#   BENCH_DIR    where data, outputs and results go   (default /tmp/berakhlak-bench)
#   BENCH_SIZES  respondents per dataset, space-separated (default "1000000 5000000")
#   BENCH_RUNS   timed runs of each tool per size       (default 3)
#
# For each size it generates a dataset with the product's generator (reused when the binary
# and options are unchanged), measures the floors (cat and wc -l over the dumps), then runs
# `berakhlak aggregate` and bench/duckdb_job.py alternately BENCH_RUNS times each with a warm
# page cache, each under /usr/bin/time -v, and checks that the two produced the same tables.
# The markdown report goes to stdout and to $BENCH_DIR/results.md. Exit 1 if the outputs
# differ beyond 1e-9, or if any run fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BIN=target/release/berakhlak
PY=.venv/bin/python
CONFIG=config/berakhlak.toml
YEAR=2024
BENCH_DIR=${BENCH_DIR:-/tmp/berakhlak-bench}
BENCH_SIZES=${BENCH_SIZES:-"1000000 5000000"}
BENCH_RUNS=${BENCH_RUNS:-3}
TIME=/usr/bin/time

die() { echo "bench: $*" >&2; exit 1; }
[[ -x $BIN ]] || die "$BIN not found: build it first (make bench does: cargo build --release)"
[[ -x $PY ]] || die "$PY not found: create the venv first (make venv)"
[[ -x $TIME ]] || die "$TIME (GNU time) not found: apt-get install time"
[[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, got '$BENCH_RUNS'"
for n in $BENCH_SIZES; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZES must be positive integers, got '$n'"
done

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
RUNS_TSV=$BENCH_DIR/runs.tsv
META=$BENCH_DIR/meta.txt
: > "$RUNS_TSV"
: > "$META"
meta() { printf '%s=%s\n' "$1" "$2" >> "$META"; }

meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta nproc "$(nproc)"
meta cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
meta memory "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
meta kernel "$(uname -sr)"
meta duckdb "$("$PY" -c 'import duckdb; print(duckdb.__version__)')"
meta python "$("$PY" -c 'import sys; print(sys.version.split()[0])')"
meta product "$("$BIN" --version 2>/dev/null || echo unknown) (git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ', src modified'))"
meta runs "$BENCH_RUNS"
meta sizes "$BENCH_SIZES"
BIN_SHA=$(sha256sum "$BIN" | cut -c1-16)

# run_timed TAG SIZE RUN CMD...: runs CMD under /usr/bin/time -v, appends one TSV row
# (size, tag, run, wall s, user s, sys s, max RSS KiB). Wall time is taken around the call
# with a nanosecond clock (GNU time's own is rounded to 10 ms).
run_timed() {
  local tag=$1 size=$2 run=$3; shift 3
  local tf=$BENCH_DIR/time.txt out=$BENCH_DIR/last-$tag.log
  local t0 t1 rc=0
  t0=$(date +%s%N)
  "$TIME" -v -o "$tf" "$@" > "$out" 2>&1 || rc=$?
  t1=$(date +%s%N)
  if (( rc != 0 )); then
    cat "$out" >&2
    die "$tag run $run at size $size failed (exit $rc): $*"
  fi
  local user sys rss
  user=$(awk -F': ' '/User time \(seconds\)/ {print $2}' "$tf")
  sys=$(awk -F': ' '/System time \(seconds\)/ {print $2}' "$tf")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$tag" "$run" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')" \
    "$user" "$sys" "$rss" >> "$RUNS_TSV"
  printf 'bench: %-8s size %-8s run %s: %6.2f s wall, %s KiB max RSS\n' "$tag" "$size" "$run" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')" "$rss" >&2
}

STATUS=0
for N in $BENCH_SIZES; do
  DATA=$BENCH_DIR/data-$N
  GEN=("$BIN" generate --year "$YEAR" --out "$DATA" --respondents "$N" --seed 11 --files 4
       --format csv --vary-delimiters --bad-share 0.005 --duplicate-share 0.01)
  STAMP="$BIN_SHA ${GEN[*]}"
  if [[ ! -f $DATA/.bench-stamp || $(cat "$DATA/.bench-stamp") != "$STAMP" ]]; then
    echo "bench: generating $N respondents into $DATA" >&2
    rm -rf "$DATA"
    "${GEN[@]}" >&2
    echo "$STAMP" > "$DATA/.bench-stamp"
  else
    echo "bench: reusing $DATA (same binary and options)" >&2
  fi
  mapfile -t FILES < <(find "$DATA/raw" -type f -name '*.csv' | LC_ALL=C sort)
  BYTES=$(cat "${FILES[@]}" | wc -c)
  meta "bytes_$N" "$BYTES"
  meta "files_$N" "${#FILES[@]}"
  meta "generate_$N" "${GEN[*]}"
  meta "loadavg_$N" "$(cut -d' ' -f1-3 /proc/loadavg)"

  OUT=$BENCH_DIR/out-$N
  PW=$OUT/product/warehouse PQ=$OUT/product/quarantine
  DW=$OUT/duckdb/warehouse DQ=$OUT/duckdb/quarantine
  PRODUCT=("$BIN" aggregate --year "$YEAR" --config "$CONFIG" --master "$DATA/institutions.csv"
           --input "$DATA/raw" --warehouse "$PW" --quarantine "$PQ" --quiet)
  DUCK=("$PY" bench/duckdb_job.py --year "$YEAR" --config "$CONFIG"
        --master "$DATA/institutions.csv" --input "$DATA/raw" --warehouse "$DW"
        --quarantine "$DQ" --quiet --timings "$OUT/duckdb-phases.json")
  meta "product_cmd_$N" "${PRODUCT[*]}"
  meta "duckdb_cmd_$N" "${DUCK[*]}"

  # Warm the page cache, then the floors: reading the bytes, and counting lines.
  cat "${FILES[@]}" > /dev/null
  for r in $(seq 1 "$BENCH_RUNS"); do
    run_timed cat "$N" "$r" sh -c 'cat "$@" > /dev/null' cat "${FILES[@]}"
    run_timed wc_l "$N" "$r" wc -l "${FILES[@]}"
  done
  # Alternate product and DuckDB; fresh output directories, dirty pages flushed beforehand
  # (untimed) so that no run pays for the previous run's writes.
  for r in $(seq 1 "$BENCH_RUNS"); do
    rm -rf "$OUT/product" && mkdir -p "$OUT/product" && sync
    run_timed product "$N" "$r" "${PRODUCT[@]}"
    rm -rf "$OUT/duckdb" && mkdir -p "$OUT/duckdb" && sync
    run_timed duckdb "$N" "$r" "${DUCK[@]}"
  done
  meta "records_$N" "$("$PY" -c 'import json,sys; m=json.load(open(sys.argv[1])); print(sum(i["records_read"] for i in m["inputs"]))' "$PW/_manifests/year=$YEAR.json")"

  echo "bench: comparing outputs at size $N" >&2
  if "$PY" bench/compare.py --year "$YEAR" --markdown "$OUT/compare.md" "$PW" "$PQ" "$DW" "$DQ" \
       > /dev/null; then
    echo "bench: size $N: outputs agree (details in the report)" >&2
  else
    STATUS=1
    echo "bench: size $N: OUTPUTS DIFFER (details in the report and $OUT/compare.md)" >&2
  fi
done

"$PY" bench/report.py "$BENCH_DIR" | tee "$BENCH_DIR/results.md"
rm -f "$BENCH_DIR/time.txt"
exit "$STATUS"
