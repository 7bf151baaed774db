#!/usr/bin/env bash
# The join and pattern workloads (bench/join.yaml, bench/pattern.yaml) next to PyFlink:
# the same input, the same job, through bench/pyflink/ (Flink SQL in PyFlink's local mini
# cluster with PARALLELISM tasks), rill's binary (its default threads) and the
# hand-written baseline.
#
#   bash bench/pyflink.sh
#   WORKLOAD=join N=500000 RUNS=3 PARALLELISM=1 bash bench/pyflink.sh
#
# - join: orders joined with the shipments of the same order from 0 to 1 h after them,
#   inner, event time, 5 s watermark (`pyflink/join.py`, Flink SQL's interval join).
# - pattern: per user, a login followed by a purchase of more than 0 within 10 minutes
#   (`pyflink/pattern.py`, MATCH_RECOGNIZE: PyFlink has no pattern API of its own;
#   Flink's CEP library, which MATCH_RECOGNIZE runs on, is Java's).
#
# PyFlink (PyPI `apache-flink`, pinned below) is installed once per machine into
# ~/.cache/rill/pyflink-venv; it needs Java 11 or 17 (Debian's openjdk-17-jre-headless,
# installed with apt when `java` is missing). The inputs are bench/run.sh's (`baseline
# gen-orders`, `gen-events`), in bench/out/.
#
# Outputs are compared as sets of result rows. Flink's SQL interval join does not drop a
# record behind the watermark (it joins it with what its state still holds), where rill
# and the baseline drop it as late: every pair of rill's must be one of Flink's, and the
# report says how many more Flink wrote. For the pattern, it says how many matches only
# one of the two found. Times are wall clock from each program's start, Flink's JVM start
# included, and Flink's job alone as the script measures it (from when Python runs it);
# CPU time is the whole machine's during the run (Flink's JVM is not a child `time`
# waits for), and the JVM's own.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORKLOAD=${WORKLOAD:-all}
N=${N:-2000000}
RUNS=${RUNS:-1}
PARALLELISM=${PARALLELISM:-$(nproc)}
for v in N RUNS PARALLELISM; do
    case ${!v} in '' | *[!0-9]*) echo "$v must be a number (got '${!v}')" >&2; exit 2 ;; esac
done
case $WORKLOAD in join | pattern | all) ;; *) echo "WORKLOAD must be join, pattern or all (got '$WORKLOAD')" >&2; exit 2 ;; esac
FLINK_VERSION=2.3.0
OUT=$ROOT/bench/out
DIR=$OUT/pyflink
VENV=$HOME/.cache/rill/pyflink-venv
export RILL_CACHE_DIR=${RILL_CACHE_DIR:-$OUT/rill-cache}
mkdir -p "$DIR"

if ! command -v java >/dev/null; then
    echo "installing Java (openjdk-17-jre-headless) for PyFlink" >&2
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get install -y -q openjdk-17-jre-headless >&2
fi
if ! "$VENV/bin/python" -c 'import pyflink' 2>/dev/null; then
    echo "installing PyFlink $FLINK_VERSION into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "apache-flink==$FLINK_VERSION" >&2
fi
echo "building rill and the baseline" >&2
cargo build -q -p rill --manifest-path "$ROOT/Cargo.toml"
cargo build -q --release --manifest-path "$ROOT/bench/baseline/Cargo.toml" --target-dir "$OUT/baseline-target"
BASE=$OUT/baseline-target/release/baseline

# The whole machine's busy CPU time so far, in seconds.
busy() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / hz }' /proc/stat; }
# `timed FILE NAME CMD...`: runs CMD; appends "NAME wall user sys maxrss_kib machine_cpu"
# to FILE.
timed() {
    local file=$1 name=$2 before status=0
    shift 2
    before=$(busy)
    /usr/bin/time -f "$name %e %U %S %M" -o "$DIR/time.one" "$@" || status=$?
    echo "$(cat "$DIR/time.one") $(awk -v a="$before" -v b="$(busy)" 'BEGIN { printf "%.2f", b - a }')" >>"$file"
    return $status
}
# Result rows as sorted JSON arrays of FIELDS (comma-separated), whatever the key order.
rows() {
    python3 -c '
import json, sys
fields = sys.argv[1].split(",")
for line in sys.stdin:
    r = json.loads(line)
    print(json.dumps([r[f] for f in fields]))
' "$1" | LC_ALL=C sort
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# `workload NAME SPEC GENERATOR FIELDS`: builds, runs RUNS rounds, compares, reports.
workload() {
    local name=$1 spec=$2 generator=$3 fields=$4
    local input=$OUT/input-$([ "$name" = join ] && echo orders || echo events)-$N.jsonl
    local times=$DIR/$name-times jobs=$DIR/$name-flink-job jvm=$DIR/$name-flink-jvm
    if [ ! -s "$input" ]; then
        echo "generating $N events ($generator) → $input" >&2
        "$BASE" "$generator" "$N" "$input.tmp"
        mv "$input.tmp" "$input"
    fi
    "$ROOT/target/debug/rill" build "$ROOT/bench/$spec" --release -o "$DIR/$name" >"$DIR/$name-build.log" 2>&1 || {
        cat "$DIR/$name-build.log" >&2
        exit 1
    }
    : >"$times"
    : >"$jobs"
    : >"$jvm"
    for run in $(seq "$RUNS"); do
        echo "$name: round $run of $RUNS" >&2
        EVENTS_PATH=$input OUT_PATH=$DIR/$name-rill.jsonl timed "$times" rill "$DIR/$name" 2>"$DIR/$name-rill.log"
        timed "$times" baseline "$BASE" "$name" "$input" "$DIR/$name-baseline.jsonl" 2>"$DIR/$name-baseline.log"
        rm -rf "$DIR/$name-flink-out"
        timed "$times" pyflink "$VENV/bin/python" "$ROOT/bench/pyflink/$name.py" "$input" "$DIR/$name-flink-out" "$PARALLELISM" \
            >"$DIR/$name-flink.log" 2>&1 || {
            tail -n 30 "$DIR/$name-flink.log" >&2
            exit 1
        }
        sed -n "s/^pyflink $name: \([0-9.]*\) s$/\1/p" "$DIR/$name-flink.log" >>"$jobs"
        sed -n 's/^pyflink jvm [0-9]*: cpu \([0-9.]*\) s, peak rss \([0-9]*\) KiB$/\1 \2/p' "$DIR/$name-flink.log" >>"$jvm"
    done
    cmp -s "$DIR/$name-rill.jsonl" "$DIR/$name-baseline.jsonl" || {
        echo "$name: rill's and the baseline's outputs differ" >&2
        exit 1
    }
    rows "$fields" <"$DIR/$name-rill.jsonl" >"$DIR/$name-rill.rows"
    cat "$DIR/$name-flink-out"/part-* | rows "$fields" >"$DIR/$name-flink.rows"
    local ours theirs only_ours only_theirs
    ours=$(wc -l <"$DIR/$name-rill.rows")
    theirs=$(wc -l <"$DIR/$name-flink.rows")
    only_ours=$(LC_ALL=C comm -23 "$DIR/$name-rill.rows" "$DIR/$name-flink.rows" | wc -l)
    only_theirs=$(LC_ALL=C comm -13 "$DIR/$name-rill.rows" "$DIR/$name-flink.rows" | wc -l)
    if [ "$name" = join ] && [ "$only_ours" -ne 0 ]; then
        echo "join: $only_ours of rill's pairs are not in Flink's output" >&2
        exit 1
    fi
    if [ "$name" = join ]; then
        # Each pair only Flink wrote has a record behind the watermark (rill's rule: the
        # largest time seen before it, less 5 s): one rill and the baseline drop as late.
        LC_ALL=C comm -13 "$DIR/$name-rill.rows" "$DIR/$name-flink.rows" | python3 -c '
import json, sys
late, top = set(), None
for line in open(sys.argv[1]):
    e = json.loads(line)
    if top is not None and e["ts"] < top - 5000:
        late.add((e["kind"], e["order_id"], e["ts"]))
    top = e["ts"] if top is None else max(top, e["ts"])
for line in sys.stdin:
    order_id, ordered_at, _, _, shipped_at = json.loads(line)
    if ("order", order_id, ordered_at) not in late and ("shipment", order_id, shipped_at) not in late:
        sys.exit(f"join: Flink paired {line.strip()}, which has no late record")
' "$input"
    fi
    best() { awk -v n="$1" -v c="$2" '$1 == n { v = $c + 0; if (!seen || v < b) b = v; seen = 1 } END { printf "%.2f", b }' "$times"; }
    peak() { awk -v n="$1" '$1 == n && $5 > m { m = $5 } END { printf "%.1f", m / 1024 }' "$times"; }
    local rill_wall base_wall flink_wall flink_job
    rill_wall=$(best rill 2)
    base_wall=$(best baseline 2)
    flink_wall=$(best pyflink 2)
    flink_job=$(sort -n "$jobs" | head -n 1)
    cat <<EOF

## $name, next to PyFlink $FLINK_VERSION (parallelism $PARALLELISM)

- workload: bench/$spec, $N events ($(du -m "$input" | cut -f1) MiB), best of $RUNS
- machine: $(nproc) cores, $(java -version 2>&1 | head -n 1)

| | rill | baseline | PyFlink |
|---|---:|---:|---:|
| best wall time | $rill_wall s | $base_wall s | $flink_wall s (the job alone: $flink_job s) |
| events/s | $(calc %.0f "$N / $rill_wall") | $(calc %.0f "$N / $base_wall") | $(calc %.0f "$N / $flink_wall") (the job alone: $(calc %.0f "$N / $flink_job")) |
| how many times faster rill is | | $(calc %.2f "$base_wall / $rill_wall") | $(calc %.1f "$flink_wall / $rill_wall") (the job alone: $(calc %.1f "$flink_job / $rill_wall")) |
| best CPU time (the machine's) | $(best rill 6) s | $(best baseline 6) s | $(best pyflink 6) s (the JVM's own: $(sort -n "$jvm" | head -n 1 | cut -d' ' -f1) s) |
| peak RSS | $(peak rill) MiB | $(peak baseline) MiB | $(awk '$2 > m { m = $2 } END { printf "%.1f", m / 1024 }' "$jvm") MiB (the JVM; Python: $(peak pyflink) MiB) |
| results | $ours | $ours (byte-identical) | $theirs: $only_theirs not in rill's$([ "$name" = join ] && echo " (each with a late record)"), $only_ours of rill's missing |
EOF
}

if [ "$WORKLOAD" = join ] || [ "$WORKLOAD" = all ]; then
    workload join join.yaml gen-orders order_id,ordered_at,amount,carrier,shipped_at
fi
if [ "$WORKLOAD" = pattern ] || [ "$WORKLOAD" = all ]; then
    workload pattern pattern.yaml gen-events user_id,login_at,purchased_at,amount
fi
