#!/usr/bin/env bash
# rill benchmark: a generated pipeline binary (bench/filter_map.yaml) against a
# hand-written Rust program doing the same job (bench/baseline/).
#
#   bash bench/run.sh [N]        N input events, default 5000000
#
# Everything it writes goes to bench/out/ (git-ignored): the rill cache
# (RILL_CACHE_DIR), the baseline's target dir, the input, the outputs and
# results.md. It installs nothing.
set -euo pipefail

N=${1:-5000000}
case $N in '' | *[!0-9]*) echo "usage: bash bench/run.sh [N]" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
OUT=$BENCH/out
mkdir -p "$OUT"

export RILL_CACHE_DIR=$OUT/cache
unset RILL_TARGET_DIR CARGO_TARGET_DIR || true

RILL=$ROOT/target/release/rill
BASE_TARGET=$OUT/baseline-target
BASE=$BASE_TARGET/release/baseline
INPUT=$OUT/input-$N.jsonl
SPEC=$OUT/spec/filter_map.yaml # the working copy every build uses (same path → same crate dir)
GEN_BIN=$OUT/filter_map
GEN_BIN_WARM=$OUT/filter_map_26
GEN_BIN_EDGE=$OUT/filter_map_edge
GEN_OUT=$OUT/out-generated.jsonl
BASE_OUT=$OUT/out-baseline.jsonl
RESULTS=$OUT/results.md
RUNS=${RUNS:-3}

log() { printf '\n== %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# Peak RSS and CPU time of a command: GNU time if present, else a python3 wrapper.
# measure STATFILE CMD... runs CMD and writes "PEAK_RSS_KIB USER_S SYS_S" as the
# last line of STATFILE.
if [ -x /usr/bin/time ] && /usr/bin/time -f %M true 2>/dev/null; then
    RSS_TOOL="/usr/bin/time"
    measure() {
        local statfile=$1; shift
        /usr/bin/time -o "$statfile" -f '%M %U %S' "$@"
    }
else
    RSS_TOOL="python3 getrusage(RUSAGE_CHILDREN)"
    measure() {
        local statfile=$1; shift
        python3 - "$statfile" "$@" <<'PY'
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write("%d %.2f %.2f\n" % (u.ru_maxrss, u.ru_utime, u.ru_stime))
sys.exit(rc)
PY
    }
fi

# ---------------------------------------------------------------- builds
log "building rill (cargo build --release -p rill)"
(cd "$ROOT" && cargo build --release -p rill --quiet)

log "building the baseline (bench/baseline, target dir bench/out/baseline-target)"
cargo build --release --quiet --manifest-path "$BENCH/baseline/Cargo.toml" --target-dir "$BASE_TARGET"

if [ ! -s "$INPUT" ]; then
    log "generating $N events → $INPUT"
    rm -f "$OUT"/input-*.jsonl # keep one input only, they are large
    "$BASE" gen "$N" "$INPUT.tmp"
    mv "$INPUT.tmp" "$INPUT"
else
    log "reusing $INPUT"
fi
INPUT_MB=$(awk -v s="$(stat -c %s "$INPUT")" 'BEGIN { printf "%.0f", s / 1048576 }')

mkdir -p "$(dirname "$SPEC")"
cp "$BENCH/filter_map.yaml" "$SPEC"

log "cold build: rill build --release with an empty RILL_CACHE_DIR"
rm -rf "$RILL_CACHE_DIR"
t0=$(now)
"$RILL" build "$SPEC" --release -o "$GEN_BIN"
t1=$(now)
COLD=$(elapsed "$t0" "$t1")
echo "cold build: ${COLD} s" >&2

log "warm build: one expression changed (25.0 → 26.0), same spec path"
sed -i 's/temperature > 25\.0/temperature > 26.0/' "$SPEC"
grep -q 'temperature > 26.0' "$SPEC" || { echo "could not rewrite the filter in $SPEC" >&2; exit 1; }
t0=$(now)
"$RILL" build "$SPEC" --release -o "$GEN_BIN_WARM"
t1=$(now)
WARM=$(elapsed "$t0" "$t1")
echo "warm build: ${WARM} s" >&2
cp "$BENCH/filter_map.yaml" "$SPEC" # restore

log "edge build: rill build --profile edge (size-optimised, fat LTO)"
t0=$(now)
"$RILL" build "$SPEC" --profile edge -o "$GEN_BIN_EDGE"
t1=$(now)
EDGE_TIME=$(elapsed "$t0" "$t1")
echo "edge build: ${EDGE_TIME} s" >&2

# ---------------------------------------------------------------- runs
declare -A BEST_WALL BEST_RSS BEST_CPU
run_once() { # run_once NAME → sets LAST_WALL / LAST_RSS / LAST_CPU; fails if the program does
    local name=$1 rssfile=$OUT/stats-$1.txt t0 t1 rc=0
    case $name in
        generated)
            rm -f "$GEN_OUT"
            t0=$(now)
            measure "$rssfile" "$GEN_BIN" --set "sources.readings.path=$INPUT" \
                --set "sinks.out.path=$GEN_OUT" 2>"$OUT/stderr-generated.txt" || rc=$?
            t1=$(now) ;;
        baseline)
            rm -f "$BASE_OUT"
            t0=$(now)
            measure "$rssfile" "$BASE" run "$INPUT" "$BASE_OUT" 2>"$OUT/stderr-baseline.txt" || rc=$?
            t1=$(now) ;;
    esac
    LAST_WALL=$(elapsed "$t0" "$t1")
    read -r LAST_RSS LAST_USER LAST_SYS < <(tail -n 1 "$rssfile")
    LAST_CPU=$(awk -v u="$LAST_USER" -v s="$LAST_SYS" 'BEGIN { printf "%.2f", u + s }')
    return "$rc"
}

log "running both programs on $N events ($INPUT_MB MiB), best of $RUNS, interleaved"
for name in generated baseline; do BEST_WALL[$name]=; BEST_CPU[$name]=; BEST_RSS[$name]=0; done
for i in $(seq 1 "$RUNS"); do
    for name in generated baseline; do
        if ! run_once "$name"; then
            echo "$name failed; its stderr:" >&2
            cat "$OUT/stderr-$name.txt" >&2
            exit 1
        fi
        printf '  run %d %-9s wall %6s s  cpu %6s s  %7s KiB\n' "$i" "$name" "$LAST_WALL" "$LAST_CPU" "$LAST_RSS" >&2
        if [ -z "${BEST_WALL[$name]}" ] || awk -v a="$LAST_WALL" -v b="${BEST_WALL[$name]}" 'BEGIN { exit !(a < b) }'; then
            BEST_WALL[$name]=$LAST_WALL
        fi
        if [ -z "${BEST_CPU[$name]}" ] || awk -v a="$LAST_CPU" -v b="${BEST_CPU[$name]}" 'BEGIN { exit !(a < b) }'; then
            BEST_CPU[$name]=$LAST_CPU
        fi
        if [ "$LAST_RSS" -gt "${BEST_RSS[$name]}" ]; then BEST_RSS[$name]=$LAST_RSS; fi
    done
done

# ---------------------------------------------------------------- verify
log "verifying outputs"
GEN_LINES=$(wc -l <"$GEN_OUT")
BASE_LINES=$(wc -l <"$BASE_OUT")
if cmp -s "$GEN_OUT" "$BASE_OUT"; then
    IDENTICAL="yes ($GEN_LINES lines, byte-identical)"
    OUTPUTS_OK=1
else
    OUTPUTS_OK=0
    IDENTICAL="NO (generated $GEN_LINES lines, baseline $BASE_LINES lines)"
    echo "outputs differ: $(cmp "$GEN_OUT" "$BASE_OUT" 2>&1 | head -n 1)" >&2
    diff <(head -n 100000 "$GEN_OUT") <(head -n 100000 "$BASE_OUT") | head -n 6 >&2 || true
fi

# ---------------------------------------------------------------- report
eps() { awk -v n="$N" -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
size_mb() { awk -v s="$(stat -c %s "$1")" 'BEGIN { printf "%.2f", s / 1000000 }'; }
pass() { if awk "BEGIN { exit !($1) }"; then echo "ok"; else echo "MISSED"; fi; }

GEN_EPS=$(eps "${BEST_WALL[generated]}")
BASE_EPS=$(eps "${BEST_WALL[baseline]}")
RATIO=$(awk -v g="$GEN_EPS" -v b="$BASE_EPS" 'BEGIN { printf "%.3f", g / b }')
CPU_RATIO=$(awk -v g="${BEST_CPU[generated]}" -v b="${BEST_CPU[baseline]}" 'BEGIN { printf "%.3f", b / g }')
GEN_SIZE=$(size_mb "$GEN_BIN")
BASE_SIZE=$(size_mb "$BASE")
EDGE_SIZE=$(size_mb "$GEN_BIN_EDGE")
stripped() { # what file(1) says, if it is installed
    local what
    what=$(file -b "$1" 2>/dev/null) || { echo "strip unchecked"; return; }
    case $what in *"not stripped"*) echo "not stripped" ;; *stripped*) echo "stripped" ;; *) echo "strip unchecked" ;; esac
}

{
    echo "# rill benchmark results"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
    echo "- toolchain: $(rustc --version)"
    echo "- workload: bench/filter_map.yaml, $N JSON-lines events ($INPUT_MB MiB), $GEN_LINES pass the filter"
    echo "- timing: wall clock, best of $RUNS interleaved runs, warm page cache; CPU time (user+sys) and peak RSS via $RSS_TOOL (RSS: max over runs); CPU time is the steadier number when other processes share the cores"
    echo
    echo "| metric | generated (rill) | baseline (hand-written) | target | |"
    echo "|---|---:|---:|---|---|"
    echo "| best wall time | ${BEST_WALL[generated]} s | ${BEST_WALL[baseline]} s | | |"
    echo "| throughput | $GEN_EPS events/s | $BASE_EPS events/s | | |"
    echo "| ratio generated / baseline (throughput, wall) | $RATIO | | >= 0.9 | $(pass "$RATIO >= 0.9") |"
    echo "| best CPU time (user+sys) | ${BEST_CPU[generated]} s | ${BEST_CPU[baseline]} s | | |"
    echo "| ratio by CPU time (baseline cpu / generated cpu) | $CPU_RATIO | | (>= 0.9) | $(pass "$CPU_RATIO >= 0.9") |"
    echo "| peak RSS | $(mib "${BEST_RSS[generated]}") MiB | $(mib "${BEST_RSS[baseline]}") MiB | | |"
    echo "| binary size, --release ($(stripped "$GEN_BIN")) | $GEN_SIZE MB | $BASE_SIZE MB | <= 3 MB | $(pass "$GEN_SIZE <= 3") |"
    echo "| binary size, --profile edge | $EDGE_SIZE MB | | | |"
    echo "| cold build, --release (empty cache; includes the runtime's deps) | $COLD s | | | |"
    echo "| warm rebuild, --release (one expression changed) | $WARM s | | <= 20 s | $(pass "$WARM <= 20") |"
    echo "| build, --profile edge (after the release builds) | $EDGE_TIME s | | | |"
    echo "| outputs identical | $IDENTICAL | | | $([ "$OUTPUTS_OK" = 1 ] && echo ok || echo MISSED) |"
} >"$RESULTS"

log "results (also in ${RESULTS#"$ROOT"/})"
cat "$RESULTS"

[ "$OUTPUTS_OK" = 1 ] || exit 1
