#!/usr/bin/env bash
# What splitting a window or table by key hash across the worker threads changes
# (`--threads 3`, `--split-windows on` against `off`), on the windowed, hopping, table,
# changes, sessions and counts workloads (bench/<job>.yaml: N readings of 10,000
# devices): wall and CPU
# time and peak RSS, best of RUNS each, interleaved, and where the CPU time goes, thread
# by thread, from `perf record` samples (1,000 a second of CPU time).
#
# On a machine of 2 cores three threads share them, so the wall time says little of a
# machine with more; what says how far a job can scale is the pipeline thread's share:
# no number of cores makes the job faster than that thread alone takes.
#
#   bash bench/split.sh [N]      N readings, default 5000000
#   RUNS=5 bash bench/split.sh
#   JOBS="windowed sessions" bash bench/split.sh
#
# Writes to bench/out/split/ (git-ignored); results in bench/out/split/results.md. Needs
# `perf` (Debian: linux-perf) for the per-thread samples; without it, prints the times only.
set -euo pipefail

N=${1:-5000000}
case $N in '' | *[!0-9]*) echo "usage: bash bench/split.sh [N]" >&2; exit 2 ;; esac
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/bench/out
DIR=$OUT/split
mkdir -p "$DIR"
export RILL_CACHE_DIR=$OUT/cache
unset RILL_TARGET_DIR CARGO_TARGET_DIR RILL_STATE_DIR RILL_SPLIT_WINDOWS || true

log() { printf '\n== %s\n' "$*" >&2; }

JOBS=${JOBS:-windowed hopping table changes sessions counts}
log "building rill, the input generator and the jobs ($JOBS)"
cargo build -q --release -p rill --manifest-path "$ROOT/Cargo.toml"
cargo build -q --release --manifest-path "$ROOT/bench/baseline/Cargo.toml" --target-dir "$OUT/baseline-target"
RILL=$ROOT/target/release/rill
for job in $JOBS; do
    "$RILL" build "$ROOT/bench/$job.yaml" --release -o "$DIR/$job" >"$DIR/build.log" 2>&1 || { cat "$DIR/build.log" >&2; exit 1; }
done
INPUT=$OUT/input-window-$N.jsonl
if [ ! -s "$INPUT" ]; then
    "$OUT/baseline-target/release/baseline" gen-window "$N" "$INPUT"
fi
export BENCH_IN=$INPUT

# run JOB SPLIT: one run with 3 threads; prints "wall cpu rss_kb"; checks the output
# against the one-thread run's.
run() {
    local out=$DIR/out-$1-$2.jsonl
    BENCH_OUT=$out /usr/bin/time -o "$DIR/time" -f "%e %U %S %M" \
        "$DIR/$1" --threads 3 --split-windows "$2" >/dev/null 2>"$DIR/stderr-$1-$2.txt"
    cmp -s "$out" "$DIR/out-$1-one.jsonl" || { echo "$1 --split-windows $2: output differs from one thread's" >&2; exit 1; }
    rm -f "$out"
    awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$DIR/time"
}

RESULTS=$DIR/results.md
{
    echo "# Windows and tables split by key hash: --threads 3, --split-windows on/off ($(date -u +%FT%TZ), $N readings, $(nproc) cores)"
    echo
    echo "| job | split | wall (best of $RUNS) | CPU | peak RSS | pipeline thread's samples | workers' samples |"
    echo "|---|---|---:|---:|---:|---:|---:|"
} >"$RESULTS"
for job in $JOBS; do
    log "$job: one thread, for the output to compare"
    BENCH_OUT=$DIR/out-$job-one.jsonl "$DIR/$job" --threads 1 >/dev/null 2>/dev/null
    declare -A best=()
    for _ in $(seq "$RUNS"); do
        for split in on off; do
            got=$(run "$job" "$split")
            log "$job --split-windows $split: $got (wall s, CPU s, RSS KB)"
            if [ -z "${best[$split]:-}" ] || awk -v a="$got" -v b="${best[$split]}" 'BEGIN { split(a, x, " "); split(b, y, " "); exit !(x[1] < y[1]) }'; then
                best[$split]=$got
            fi
        done
    done
    grep -q "keys split by hash" "$DIR/stderr-$job-on.txt" || { echo "$job: not split with --split-windows on" >&2; exit 1; }
    if grep -q "keys split by hash" "$DIR/stderr-$job-off.txt"; then echo "$job: split with --split-windows off" >&2; exit 1; fi
    for split in on off; do
        read -r wall cpu rss <<<"${best[$split]}"
        samples="| (no perf) | (no perf) |"
        if command -v perf >/dev/null; then
            BENCH_OUT=$DIR/perf-out.jsonl perf record -q -F 1000 -o "$DIR/perf.data" \
                "$DIR/$job" --threads 3 --split-windows "$split" >/dev/null 2>&1
            # Samples by thread name: the workers are `rill-worker-N`, the pipeline
            # thread has the binary's name (`perf-exec` is perf starting it).
            samples=$(perf report -i "$DIR/perf.data" --no-children --sort comm -n --stdio 2>/dev/null |
                awk '/%/ && $3 != "perf-exec" { if (index($3, "rill-") == 1) w += $2; else p += $2 }
                    END { printf "| %d (%.0f%%) | %d |", p, 100 * p / (p + w), w }')
            rm -f "$DIR/perf-out.jsonl"
        fi
        echo "| $job | $split | ${wall} s | ${cpu} s | $((rss / 1024)) MiB $samples" >>"$RESULTS"
    done
    unset best
done
rm -f "$DIR"/out-*-one.jsonl
cat "$RESULTS"
