#!/usr/bin/env bash
# What checkpoints cost: the windowed workload (bench/windowed.yaml: 10 s tumbling
# windows per device over N readings of 10,000 devices) run without a state directory,
# with checkpoints every 10 s (the default), every 1 s and every 100 ms, best of RUNS each,
# interleaved; the size of a checkpoint and the time to write one (10,000 keys in the
# open windows); and how long a restart takes to restore it.
#
#   bash bench/state.sh [N]      N readings, default 5000000
#   RUNS=5 bash bench/state.sh
#
# Writes to bench/out/state/ (git-ignored); results in bench/out/state/results.md.
set -euo pipefail

N=${1:-5000000}
case $N in '' | *[!0-9]*) echo "usage: bash bench/state.sh [N]" >&2; exit 2 ;; esac
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/bench/out
DIR=$OUT/state
mkdir -p "$DIR"
export RILL_CACHE_DIR=$OUT/cache
unset RILL_TARGET_DIR CARGO_TARGET_DIR RILL_STATE_DIR || true

log() { printf '\n== %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

log "building rill, the input generator and bench/windowed.yaml"
cargo build -q --release -p rill --manifest-path "$ROOT/Cargo.toml"
cargo build -q --release --manifest-path "$ROOT/bench/baseline/Cargo.toml" --target-dir "$OUT/baseline-target"
RILL=$ROOT/target/release/rill
BIN=$DIR/windowed
"$RILL" build "$ROOT/bench/windowed.yaml" --release -o "$BIN" >"$DIR/build.log" 2>&1 || { cat "$DIR/build.log" >&2; exit 1; }
INPUT=$OUT/input-window-$N.jsonl
if [ ! -s "$INPUT" ]; then
    "$OUT/baseline-target/release/baseline" gen-window "$N" "$INPUT"
fi
export BENCH_IN=$INPUT BENCH_OUT=$DIR/out.jsonl

# run ARGS...: one run from a fresh state directory; prints its seconds.
run() {
    rm -rf "$DIR/run-state"
    local t0 t1
    t0=$(now)
    "$BIN" "$@" 2>"$DIR/run.log" || { cat "$DIR/run.log" >&2; exit 1; }
    t1=$(now)
    elapsed "$t0" "$t1"
}

declare -A BEST
CASES=(none every10s every1s every100ms)
args_of() {
    case $1 in
        none) echo "" ;;
        every10s) echo "--state-dir $DIR/run-state --checkpoint-interval 10s" ;;
        every1s) echo "--state-dir $DIR/run-state --checkpoint-interval 1s" ;;
        every100ms) echo "--state-dir $DIR/run-state --checkpoint-interval 100ms" ;;
    esac
}
for ((i = 0; i < RUNS; i++)); do
    for c in "${CASES[@]}"; do
        # shellcheck disable=SC2046 # the arguments are meant to split
        t=$(run $(args_of "$c"))
        if [ -z "${BEST[$c]:-}" ] || awk -v a="$t" -v b="${BEST[$c]}" 'BEGIN { exit !(a < b) }'; then
            BEST[$c]=$t
        fi
        # The outputs must not depend on checkpoints.
        if [ "$c" = none ]; then cp "$DIR/out.jsonl" "$DIR/out-none.jsonl"; else cmp -s "$DIR/out.jsonl" "$DIR/out-none.jsonl" || { echo "$c: output differs" >&2; exit 1; }; fi
    done
done

log "checkpoint size and write time (every 100 ms, debug log)"
rm -rf "$DIR/run-state"
"$BIN" --state-dir "$DIR/run-state" --checkpoint-interval 100ms --log-level debug 2>"$DIR/debug.log"
STATS=$(grep '"checkpoint written"' "$DIR/debug.log" | sed 's/.*"bytes":\([0-9]*\).*"micros":\([0-9]*\).*/\1 \2/' | sort -n -k1)
COUNT=$(echo "$STATS" | grep -c . || true)
MAX_BYTES=$(echo "$STATS" | tail -1 | cut -d' ' -f1)
MEDIAN_US=$(echo "$STATS" | cut -d' ' -f2 | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
MAX_US=$(echo "$STATS" | cut -d' ' -f2 | sort -n | tail -1)

log "restart: stop mid-run with SIGTERM, start again, time until the state is restored"
rm -rf "$DIR/run-state"
"$BIN" --state-dir "$DIR/run-state" --checkpoint-interval 1s 2>"$DIR/first.log" &
PID=$!
# Stopped early enough to leave open windows behind (the run may already be over).
sleep 0.5
kill -TERM "$PID" 2>/dev/null || true
wait "$PID" || true
T0=$(now)
"$BIN" --state-dir "$DIR/run-state" 2>"$DIR/restart.log" &
PID=$!
while ! grep -q '"pipeline started"' "$DIR/restart.log"; do sleep 0.002; done
T1=$(now)
wait "$PID"
RESTORED_BYTES=$(sed -n 's/.*"state restored".*"state_bytes":\([0-9]*\).*/\1/p' "$DIR/restart.log")
RESTART_MS=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')

eps() { awk -v n="$N" -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }
{
    echo "## checkpoints ($(date -u +%Y-%m-%d), $(nproc) cores)"
    echo
    echo "bench/windowed.yaml, $N readings, best of $RUNS, interleaved:"
    echo
    echo "| run | seconds | events/s | throughput vs no checkpoints |"
    echo "|---|---|---|---|"
    for c in "${CASES[@]}"; do
        echo "| $c | ${BEST[$c]} | $(eps "${BEST[$c]}") | $(ratio "${BEST[$c]}" "${BEST[none]}") |"
    done
    echo
    echo "- checkpoints written in the 100 ms run: $COUNT; largest $MAX_BYTES bytes; write time (save every component, encode, write, fsync, rename, fsync the folder) median $MEDIAN_US µs, max $MAX_US µs"
    echo "- restart: from start to \`pipeline started\` with a $RESTORED_BYTES-byte state restored: $RESTART_MS ms"
} | tee "$DIR/results.md"
