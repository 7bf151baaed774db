#!/usr/bin/env bash
# rill benchmark: generated pipeline binaries against hand-written Rust programs doing
# the same jobs (bench/baseline/). Two workloads:
#   filter_map  bench/filter_map.yaml: stateless filter + map (`baseline run`)
#   windowed    bench/windowed.yaml: 10 s tumbling event-time windows per device
#               (`baseline window`)
#
#   bash bench/run.sh [N]                  N input events, default 5000000
#   WORKLOAD=windowed bash bench/run.sh    one workload only: filter_map | windowed | all
#
# Everything it writes goes to bench/out/ (git-ignored): the rill cache
# (RILL_CACHE_DIR), the baseline's target dir, the inputs, the outputs and
# results.md. It installs nothing.
set -euo pipefail

N=${1:-5000000}
case $N in '' | *[!0-9]*) echo "usage: [WORKLOAD=filter_map|windowed|all] bash bench/run.sh [N]" >&2; exit 2 ;; esac
WORKLOAD=${WORKLOAD:-all}
case $WORKLOAD in
    filter_map | windowed | all) ;;
    *) echo "WORKLOAD must be filter_map, windowed or all (got '$WORKLOAD')" >&2; exit 2 ;;
esac
want() { [ "$WORKLOAD" = all ] || [ "$WORKLOAD" = "$1" ]; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
OUT=$BENCH/out
mkdir -p "$OUT" "$OUT/spec"

export RILL_CACHE_DIR=$OUT/cache
unset RILL_TARGET_DIR CARGO_TARGET_DIR || true

RILL=$ROOT/target/release/rill
BASE_TARGET=$OUT/baseline-target
BASE=$BASE_TARGET/release/baseline
RESULTS=$OUT/results.md
RUNS=${RUNS:-3}

# filter_map
INPUT=$OUT/input-$N.jsonl
SPEC=$OUT/spec/filter_map.yaml # the working copy every build uses (same path → same crate dir)
GEN_BIN=$OUT/filter_map
GEN_BIN_WARM=$OUT/filter_map_26
GEN_BIN_EDGE=$OUT/filter_map_edge
GEN_OUT=$OUT/out-generated.jsonl
BASE_OUT=$OUT/out-baseline.jsonl

# windowed
W_INPUT=$OUT/input-window-$N.jsonl
W_SPEC=$OUT/spec/windowed.yaml
W_GEN_BIN=$OUT/windowed
W_GEN_OUT=$OUT/out-window-generated.jsonl
W_BASE_OUT=$OUT/out-window-baseline.jsonl

ALL_OK=1 # set to 0 by any failed check; the script exits 1 at the end then

log() { printf '\n== %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
eps() { awk -v n="$N" -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
mib_of_file() { awk -v s="$(stat -c %s "$1")" 'BEGIN { printf "%.0f", s / 1048576 }'; }
size_mb() { awk -v s="$(stat -c %s "$1")" 'BEGIN { printf "%.2f", s / 1000000 }'; }
pass() { if awk "BEGIN { exit !($1) }"; then echo "ok"; else echo "MISSED"; fi; }
stripped() { # what file(1) says, if it is installed
    local what
    what=$(file -b "$1" 2>/dev/null) || { echo "strip unchecked"; return; }
    case $what in *"not stripped"*) echo "not stripped" ;; *stripped*) echo "stripped" ;; *) echo "strip unchecked" ;; esac
}

# timed VAR CMD...: runs CMD (its stdout to stderr), stores its wall time in seconds in VAR.
# Returns CMD's status.
timed() {
    local var=$1 t0 t1 rc=0
    shift
    t0=$(now)
    "$@" >&2 || rc=$?
    t1=$(now)
    printf -v "$var" '%s' "$(elapsed "$t0" "$t1")"
    return "$rc"
}

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

# ensure_input GEN_SUBCOMMAND PATH: writes N events to PATH with `baseline
# GEN_SUBCOMMAND N PATH`, unless PATH is already there. Inputs of the same kind for
# another N are deleted first (they are large).
ensure_input() {
    local gen=$1 path=$2
    if [ -s "$path" ]; then
        log "reusing $path"
        return
    fi
    log "generating $N events ($gen) → $path"
    rm -f "${path%-"$N".jsonl}"-[0-9]*.jsonl
    "$BASE" "$gen" "$N" "$path.tmp"
    mv "$path.tmp" "$path"
}

# run_pair PREFIX INPUT GEN_BIN GEN_OUT BASE_SUBCOMMAND BASE_OUT
# Runs the generated binary (its source `readings` reading INPUT, its sink `out`
# writing GEN_OUT) and `baseline BASE_SUBCOMMAND INPUT BASE_OUT`, interleaved, RUNS
# times each. Sets BEST_WALL / BEST_CPU (minimum over runs) and BEST_RSS (maximum over
# runs), keyed by generated / baseline. Per-run files: $OUT/{stats,stderr}-PREFIX{generated,baseline}.txt.
# Exits if a program fails.
declare -A BEST_WALL BEST_RSS BEST_CPU
run_pair() {
    local prefix=$1 input=$2 gen_bin=$3 gen_out=$4 base_cmd=$5 base_out=$6
    local i name statfile errfile t0 t1 rc wall cpu rss user sys
    for name in generated baseline; do BEST_WALL[$name]=; BEST_CPU[$name]=; BEST_RSS[$name]=0; done
    for i in $(seq 1 "$RUNS"); do
        for name in generated baseline; do
            statfile=$OUT/stats-$prefix$name.txt
            errfile=$OUT/stderr-$prefix$name.txt
            rc=0
            case $name in
                generated)
                    rm -f "$gen_out"
                    t0=$(now)
                    measure "$statfile" "$gen_bin" --set "sources.readings.path=$input" \
                        --set "sinks.out.path=$gen_out" 2>"$errfile" || rc=$?
                    t1=$(now) ;;
                baseline)
                    rm -f "$base_out"
                    t0=$(now)
                    measure "$statfile" "$BASE" "$base_cmd" "$input" "$base_out" 2>"$errfile" || rc=$?
                    t1=$(now) ;;
            esac
            if [ "$rc" != 0 ]; then
                echo "$name failed (exit $rc); its stderr:" >&2
                cat "$errfile" >&2
                exit 1
            fi
            wall=$(elapsed "$t0" "$t1")
            read -r rss user sys < <(tail -n 1 "$statfile")
            cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
            printf '  run %d %-9s wall %6s s  cpu %6s s  %7s KiB\n' "$i" "$name" "$wall" "$cpu" "$rss" >&2
            if [ -z "${BEST_WALL[$name]}" ] || awk -v a="$wall" -v b="${BEST_WALL[$name]}" 'BEGIN { exit !(a < b) }'; then
                BEST_WALL[$name]=$wall
            fi
            if [ -z "${BEST_CPU[$name]}" ] || awk -v a="$cpu" -v b="${BEST_CPU[$name]}" 'BEGIN { exit !(a < b) }'; then
                BEST_CPU[$name]=$cpu
            fi
            if [ "$rss" -gt "${BEST_RSS[$name]}" ]; then BEST_RSS[$name]=$rss; fi
        done
    done
}

# check_outputs GEN_OUT BASE_OUT: sets GEN_LINES, IDENTICAL (for the table) and
# OUTPUTS_OK (1/0); clears ALL_OK when the files differ.
check_outputs() {
    local gen_out=$1 base_out=$2 base_lines
    GEN_LINES=$(wc -l <"$gen_out")
    base_lines=$(wc -l <"$base_out")
    if cmp -s "$gen_out" "$base_out"; then
        IDENTICAL="yes ($GEN_LINES lines, byte-identical)"
        OUTPUTS_OK=1
    else
        OUTPUTS_OK=0
        ALL_OK=0
        IDENTICAL="NO (generated $GEN_LINES lines, baseline $base_lines lines)"
        echo "outputs differ: $(cmp "$gen_out" "$base_out" 2>&1 | head -n 1)" >&2
        diff <(head -n 100000 "$gen_out") <(head -n 100000 "$base_out") | head -n 6 >&2 || true
    fi
}

# pair_rows [RSS_TARGET]: the table rows for the last run_pair: wall time, throughput
# and its ratio, CPU time and its ratio, peak RSS; with RSS_TARGET, also the RSS ratio
# generated / baseline against it.
pair_rows() {
    local rss_target=${1:-} gen_eps base_eps ratio cpu_ratio rss_ratio
    gen_eps=$(eps "${BEST_WALL[generated]}")
    base_eps=$(eps "${BEST_WALL[baseline]}")
    ratio=$(awk -v g="$gen_eps" -v b="$base_eps" 'BEGIN { printf "%.3f", g / b }')
    cpu_ratio=$(awk -v g="${BEST_CPU[generated]}" -v b="${BEST_CPU[baseline]}" 'BEGIN { printf "%.3f", b / g }')
    echo "| best wall time | ${BEST_WALL[generated]} s | ${BEST_WALL[baseline]} s | | |"
    echo "| throughput | $gen_eps events/s | $base_eps events/s | | |"
    echo "| ratio generated / baseline (throughput, wall) | $ratio | | >= 0.9 | $(pass "$ratio >= 0.9") |"
    echo "| best CPU time (user+sys) | ${BEST_CPU[generated]} s | ${BEST_CPU[baseline]} s | | |"
    echo "| ratio by CPU time (baseline cpu / generated cpu) | $cpu_ratio | | (>= 0.9) | $(pass "$cpu_ratio >= 0.9") |"
    echo "| peak RSS | $(mib "${BEST_RSS[generated]}") MiB | $(mib "${BEST_RSS[baseline]}") MiB | | |"
    if [ -n "$rss_target" ]; then
        rss_ratio=$(awk -v g="${BEST_RSS[generated]}" -v b="${BEST_RSS[baseline]}" 'BEGIN { printf "%.3f", g / b }')
        echo "| ratio peak RSS generated / baseline | $rss_ratio | | <= $rss_target | $(pass "$rss_ratio <= $rss_target") |"
    fi
}

# ---------------------------------------------------------------- shared builds
log "building rill (cargo build --release -p rill)"
(cd "$ROOT" && cargo build --release -p rill --quiet)

log "building the baseline (bench/baseline, target dir bench/out/baseline-target)"
cargo build --release --quiet --manifest-path "$BENCH/baseline/Cargo.toml" --target-dir "$BASE_TARGET"

{
    echo "# rill benchmark results"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
    echo "- toolchain: $(rustc --version)"
    echo "- timing: wall clock, best of $RUNS interleaved runs, warm page cache; CPU time (user+sys) and peak RSS via $RSS_TOOL (RSS: max over runs); CPU time is the steadier number when other processes share the cores"
} >"$RESULTS"

# ---------------------------------------------------------------- filter_map
if want filter_map; then
    ensure_input gen "$INPUT"
    INPUT_MB=$(mib_of_file "$INPUT")
    cp "$BENCH/filter_map.yaml" "$SPEC"

    log "filter_map, cold build: rill build --release with an empty RILL_CACHE_DIR"
    rm -rf "$RILL_CACHE_DIR"
    timed COLD "$RILL" build "$SPEC" --release -o "$GEN_BIN"
    echo "cold build: ${COLD} s" >&2

    log "filter_map, warm build: one expression changed (25.0 → 26.0), same spec path"
    sed -i 's/temperature > 25\.0/temperature > 26.0/' "$SPEC"
    grep -q 'temperature > 26.0' "$SPEC" || { echo "could not rewrite the filter in $SPEC" >&2; exit 1; }
    timed WARM "$RILL" build "$SPEC" --release -o "$GEN_BIN_WARM"
    echo "warm build: ${WARM} s" >&2
    cp "$BENCH/filter_map.yaml" "$SPEC" # restore

    log "filter_map, edge build: rill build --profile edge (size-optimised, fat LTO)"
    timed EDGE_TIME "$RILL" build "$SPEC" --profile edge -o "$GEN_BIN_EDGE"
    echo "edge build: ${EDGE_TIME} s" >&2

    log "filter_map: running both programs on $N events ($INPUT_MB MiB), best of $RUNS, interleaved"
    run_pair "" "$INPUT" "$GEN_BIN" "$GEN_OUT" run "$BASE_OUT"

    log "filter_map: verifying outputs"
    check_outputs "$GEN_OUT" "$BASE_OUT"

    GEN_SIZE=$(size_mb "$GEN_BIN")
    BASE_SIZE=$(size_mb "$BASE")
    EDGE_SIZE=$(size_mb "$GEN_BIN_EDGE")
    {
        echo
        echo "## filter_map"
        echo
        echo "- workload: bench/filter_map.yaml, $N JSON-lines events ($INPUT_MB MiB), $GEN_LINES pass the filter"
        echo
        echo "| metric | generated (rill) | baseline (hand-written) | target | |"
        echo "|---|---:|---:|---|---|"
        pair_rows
        echo "| binary size, --release ($(stripped "$GEN_BIN")) | $GEN_SIZE MB | $BASE_SIZE MB | <= 3 MB | $(pass "$GEN_SIZE <= 3") |"
        echo "| binary size, --profile edge | $EDGE_SIZE MB | | | |"
        echo "| cold build, --release (empty cache; includes the runtime's deps) | $COLD s | | | |"
        echo "| warm rebuild, --release (one expression changed) | $WARM s | | <= 20 s | $(pass "$WARM <= 20") |"
        echo "| build, --profile edge (after the release builds) | $EDGE_TIME s | | | |"
        echo "| outputs identical | $IDENTICAL | | | $([ "$OUTPUTS_OK" = 1 ] && echo ok || echo MISSED) |"
    } >>"$RESULTS"
fi

# ---------------------------------------------------------------- windowed
if want windowed; then
    ensure_input gen-window "$W_INPUT"
    W_INPUT_MB=$(mib_of_file "$W_INPUT")
    cp "$BENCH/windowed.yaml" "$W_SPEC"
    if want filter_map; then
        W_CACHE_NOTE="runtime already in RILL_CACHE_DIR from the filter_map builds"
    else
        W_CACHE_NOTE="RILL_CACHE_DIR as found"
    fi

    log "windowed, build: rill build --release ($W_CACHE_NOTE)"
    if timed W_BUILD "$RILL" build "$W_SPEC" --release -o "$W_GEN_BIN"; then
        echo "build: ${W_BUILD} s" >&2

        log "windowed: running both programs on $N events ($W_INPUT_MB MiB), best of $RUNS, interleaved"
        run_pair window- "$W_INPUT" "$W_GEN_BIN" "$W_GEN_OUT" window "$W_BASE_OUT"

        log "windowed: verifying outputs"
        check_outputs "$W_GEN_OUT" "$W_BASE_OUT"

        W_GEN_SIZE=$(size_mb "$W_GEN_BIN")
        {
            echo
            echo "## windowed"
            echo
            echo "- workload: bench/windowed.yaml, $N JSON-lines events ($W_INPUT_MB MiB), out of order by up to 1.5 s (0.1% by 3–12 s), $GEN_LINES window rows out"
            echo "- $(tail -n 1 "$OUT/stderr-window-baseline.txt")"
            echo
            echo "| metric | generated (rill) | baseline (hand-written) | target | |"
            echo "|---|---:|---:|---|---|"
            pair_rows 1.2
            echo "| binary size, --release ($(stripped "$W_GEN_BIN")) | $W_GEN_SIZE MB | $(size_mb "$BASE") MB | <= 3 MB | $(pass "$W_GEN_SIZE <= 3") |"
            echo "| build, --release ($W_CACHE_NOTE) | $W_BUILD s | | | |"
            echo "| outputs identical | $IDENTICAL | | | $([ "$OUTPUTS_OK" = 1 ] && echo ok || echo MISSED) |"
        } >>"$RESULTS"
    else
        echo "windowed: rill build failed; the workload is not measured" >&2
        ALL_OK=0
        {
            echo
            echo "## windowed"
            echo
            echo "not measured: \`rill build --release bench/windowed.yaml\` failed (see the script's stderr)"
        } >>"$RESULTS"
    fi
fi

log "results (also in ${RESULTS#"$ROOT"/})"
cat "$RESULTS"

[ "$ALL_OK" = 1 ] || exit 1
