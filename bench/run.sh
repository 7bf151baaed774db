#!/usr/bin/env bash
# rill benchmark: generated pipeline binaries against hand-written Rust programs doing
# the same jobs (bench/baseline/, bench/kafka/, bench/mqtt/). The workloads:
#   filter_map  bench/filter_map.yaml: stateless filter + map (`baseline run`, and
#               `baseline run-mt`: the same on every core)
#   windowed    bench/windowed.yaml: 10 s tumbling event-time windows per device, and the
#               same job over 60 s windows sliding every 1 s (bench/hopping.yaml)
#               (`baseline window`, and `baseline window-mt`: parsing on every core)
#   kafka       bench/kafka_filter.yaml: topic → filter → topic on a local tansu
#               broker (`kafka-relay`, bench/kafka/)
#   mqtt        bench/mqtt_filter.yaml: MQTT topic → filter → topic on a private
#               mosquitto (`mqtt-relay`, bench/mqtt/), and `mosquitto_sub | grep |
#               mosquitto_pub` as a second line
#   redis       bench/redis_filter.yaml: stream → filter → stream (consumer group) on a
#               private redis-server (`redis-relay`, bench/redis/)
#   pattern     bench/pattern.yaml: a login, then a purchase within 10 minutes, per user,
#               on event time (`baseline pattern`; PATTERN_N events, default 2000000)
#   join        bench/join.yaml: orders joined with their shipments within 1 h (an
#               interval join of two streams; `baseline join`; JOIN_N events, default 2000000)
#   window_fire bench/window_fire.yaml: one tumbling window of FIRE_N distinct keys
#               (default 1000000), fired at the end; time reading vs time firing
#
#   bash bench/run.sh [N]                  N input events, default 5000000
#   WORKLOAD=windowed bash bench/run.sh    one workload only: filter_map | windowed | pattern | join | kafka | mqtt | window_fire | all
#   PATTERN_N=5000000 WORKLOAD=pattern bash bench/run.sh   events of the pattern workload, default 2000000
#   JOIN_N=5000000 WORKLOAD=join bash bench/run.sh   events of the join workload, default 2000000
#   FIRE_N=2000000 WORKLOAD=window_fire bash bench/run.sh   keys in the fired window, default 1000000
#   KAFKA_N=2000000 WORKLOAD=kafka bash bench/run.sh   records in the input topic, default 1000000
#   MQTT_N=500000 WORKLOAD=mqtt bash bench/run.sh     messages in, default 200000
#   REDIS_N=2000000 WORKLOAD=redis bash bench/run.sh  entries in the input stream, default 1000000
#   MQTT_INFLIGHT=20 ...                   mosquitto's max_inflight_messages, default 1000
#   KAFKA_FETCH_WAIT_MS=500 KAFKA_FETCH_QUEUE_BACKOFF_MS=1000 ...   the consumers'
#                                          settings (librdkafka's defaults here), default 10 and 10
#
# Everything it writes goes to bench/out/ (git-ignored): the rill cache
# (RILL_CACHE_DIR), the baselines' target dirs, the inputs, the outputs and
# results.md. It installs nothing: the kafka workload needs the tansu broker
# (scripts/kafka-setup, or RILL_TANSU=path), the mqtt workload mosquitto,
# mosquitto_sub and mosquitto_pub (Debian: mosquitto, mosquitto-clients); `all` skips
# either when what it needs is missing.
set -euo pipefail

N=${1:-5000000}
case $N in '' | *[!0-9]*) echo "usage: [WORKLOAD=filter_map|windowed|pattern|join|kafka|mqtt|redis|window_fire|all] bash bench/run.sh [N]" >&2; exit 2 ;; esac
FIRE_N=${FIRE_N:-1000000}
case $FIRE_N in '' | *[!0-9]*) echo "FIRE_N must be a number (got '$FIRE_N')" >&2; exit 2 ;; esac
KAFKA_N=${KAFKA_N:-1000000}
case $KAFKA_N in '' | *[!0-9]*) echo "KAFKA_N must be a number (got '$KAFKA_N')" >&2; exit 2 ;; esac
MQTT_N=${MQTT_N:-200000}
case $MQTT_N in '' | *[!0-9]*) echo "MQTT_N must be a number (got '$MQTT_N')" >&2; exit 2 ;; esac
REDIS_N=${REDIS_N:-1000000}
case $REDIS_N in '' | *[!0-9]*) echo "REDIS_N must be a number (got '$REDIS_N')" >&2; exit 2 ;; esac
MQTT_INFLIGHT=${MQTT_INFLIGHT:-1000}
case $MQTT_INFLIGHT in '' | *[!0-9]*) echo "MQTT_INFLIGHT must be a number (got '$MQTT_INFLIGHT')" >&2; exit 2 ;; esac
# Consumer settings, read by kafka_filter and the tools alike (bench/kafka/src/lib.rs).
export KAFKA_FETCH_WAIT_MS=${KAFKA_FETCH_WAIT_MS:-10}
export KAFKA_FETCH_QUEUE_BACKOFF_MS=${KAFKA_FETCH_QUEUE_BACKOFF_MS:-10}
WORKLOAD=${WORKLOAD:-all}
case $WORKLOAD in
    filter_map | windowed | pattern | join | kafka | mqtt | redis | window_fire | all) ;;
    *) echo "WORKLOAD must be filter_map, windowed, pattern, join, kafka, mqtt, redis, window_fire or all (got '$WORKLOAD')" >&2; exit 2 ;;
esac
want() { [ "$WORKLOAD" = all ] || [ "$WORKLOAD" = "$1" ]; }

TANSU=${RILL_TANSU:-$HOME/.cache/rill/tansu/bin/tansu}
KAFKA_SKIPPED= # why the kafka workload is skipped under WORKLOAD=all, if it is
if want kafka && [ ! -x "$TANSU" ]; then
    if [ "$WORKLOAD" = kafka ]; then
        echo "the tansu broker ($TANSU) is missing: run scripts/kafka-setup (or set RILL_TANSU)" >&2
        exit 2
    fi
    KAFKA_SKIPPED="tansu ($TANSU) is missing; run scripts/kafka-setup"
fi
want_kafka() { want kafka && [ -z "$KAFKA_SKIPPED" ]; }

MOSQUITTO=${RILL_MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
MQTT_SKIPPED= # why the mqtt workload is skipped under WORKLOAD=all, if it is
if want mqtt; then
    for tool in "$MOSQUITTO" mosquitto_sub mosquitto_pub; do
        command -v "$tool" >/dev/null && continue
        if [ "$WORKLOAD" = mqtt ]; then
            echo "$tool is missing: apt-get install mosquitto mosquitto-clients (or set RILL_MOSQUITTO)" >&2
            exit 2
        fi
        MQTT_SKIPPED="$tool is missing; apt-get install mosquitto mosquitto-clients"
        break
    done
fi
want_mqtt() { want mqtt && [ -z "$MQTT_SKIPPED" ]; }

REDIS_SKIPPED= # why the redis workload is skipped under WORKLOAD=all, if it is
if want redis; then
    for tool in redis-server redis-cli; do
        command -v "$tool" >/dev/null && continue
        if [ "$WORKLOAD" = redis ]; then
            echo "$tool is missing: run scripts/redis-setup" >&2
            exit 2
        fi
        REDIS_SKIPPED="$tool is missing; run scripts/redis-setup"
        break
    done
fi
want_redis() { want redis && [ -z "$REDIS_SKIPPED" ]; }

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
# the same job over hopping windows (bench/hopping.yaml), measured against it
H_SPEC=$OUT/spec/hopping.yaml
H_GEN_BIN=$OUT/hopping
H_GEN_OUT=$OUT/out-hopping-generated.jsonl
W_GEN_OUT=$OUT/out-window-generated.jsonl
W_BASE_OUT=$OUT/out-window-baseline.jsonl

# pattern
PATTERN_N=${PATTERN_N:-2000000}
P_INPUT=$OUT/input-events-$PATTERN_N.jsonl
P_SPEC=$OUT/spec/pattern.yaml
P_GEN_BIN=$OUT/pattern
P_GEN_OUT=$OUT/out-pattern-generated.jsonl
P_BASE_OUT=$OUT/out-pattern-baseline.jsonl

# join
JOIN_N=${JOIN_N:-2000000}
case $JOIN_N in '' | *[!0-9]*) echo "JOIN_N must be a number (got '$JOIN_N')" >&2; exit 2 ;; esac
J_INPUT=$OUT/input-orders-$JOIN_N.jsonl
J_SPEC=$OUT/spec/join.yaml
J_GEN_BIN=$OUT/join
J_GEN_OUT=$OUT/out-join-generated.jsonl
J_BASE_OUT=$OUT/out-join-baseline.jsonl

# window_fire
F_INPUT=$OUT/input-fire-$FIRE_N.jsonl
F_SPEC=$OUT/spec/window_fire.yaml
F_GEN_BIN=$OUT/window_fire
F_GEN_OUT=$OUT/out-fire.jsonl

# kafka
K_DIR=$OUT/kafka # the broker's working dir and log, the jobs' stderr, the topics read back
K_SPEC=$OUT/spec/kafka_filter.yaml
K_GEN_BIN=$OUT/kafka_filter
K_BUF_SPEC=$OUT/spec/kafka_filter_buffered.yaml # the same, its sink through a disk buffer
K_BUF_BIN=$OUT/kafka_filter_buffered
K_BUF_STATE=$K_DIR/buffer-state
K_TARGET=$OUT/kafka-target
K_TOOLS=$K_TARGET/release # kafka-load, kafka-relay, kafka-count

# redis
R_DIR=$OUT/redis # the server's log, the jobs' stderr, the outputs read back
R_SPEC=$OUT/spec/redis_filter.yaml
R_GEN_BIN=$OUT/redis_filter
R_TARGET=$OUT/redis-target
R_TOOLS=$R_TARGET/release # redis-load, redis-relay, redis-count

# mqtt
M_DIR=$OUT/mqtt # the broker's config and log, the jobs' stderr, the outputs read
M_SPEC=$OUT/spec/mqtt_filter.yaml
M_GEN_BIN=$OUT/mqtt_filter
M_TARGET=$OUT/mqtt-target
M_TOOLS=$M_TARGET/release # mqtt-load, mqtt-relay, mqtt-count

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

# stop_latency VAR BIN ARGS...: starts BIN, waits for its "pipeline started" log line
# and one second of records, sends SIGTERM and stores the seconds until it exits in VAR.
stop_latency() {
    local var=$1 log pid t0
    shift
    log=$(mktemp)
    "$@" >/dev/null 2>"$log" &
    pid=$!
    for _ in $(seq 1200); do grep -q '"pipeline started"' "$log" && break; sleep 0.05; done
    sleep 1
    t0=$(now)
    kill -TERM "$pid"
    wait "$pid" || true
    printf -v "$var" '%s' "$(elapsed "$t0" "$(now)")"
    rm -f "$log"
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

# settle: the disk is handed the dirty pages of the runs before, so that no run is
# throttled by another's writeback (the hopping job writes 733 MiB a run; interleaved
# without this, even `dd` writing its output alone took 0.29 to 4.75 s).
settle() {
    sync
}

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

# run_pair PREFIX INPUT GEN_BIN GEN_OUT BASE_SUBCOMMAND BASE_OUT [BASE_MT_SUBCOMMAND]
# Runs the generated binary (its source `readings` reading INPUT, its sink `out`
# writing GEN_OUT) with its default thread count (the cores) and with `--threads 1`
# (writing GEN_OUT.1t), `baseline BASE_SUBCOMMAND INPUT BASE_OUT` and, given
# BASE_MT_SUBCOMMAND, the multi-threaded baseline `baseline BASE_MT_SUBCOMMAND INPUT
# BASE_OUT.mt` (its default thread count, the cores), interleaved, RUNS times each.
# Sets PAIR_MT (BASE_MT_SUBCOMMAND or empty), BEST_WALL / BEST_CPU (minimum over runs)
# and BEST_RSS (maximum over runs), keyed by generated / generated_1t / baseline /
# baseline_mt. Per-run files:
# $OUT/{stats,stderr}-PREFIX{generated,generated_1t,baseline,baseline_mt}.txt. Exits if a
# program fails.
declare -A BEST_WALL BEST_RSS BEST_CPU
PAIR_MT=
run_pair() {
    local prefix=$1 input=$2 gen_bin=$3 gen_out=$4 base_cmd=$5 base_out=$6
    local i name statfile errfile t0 t1 rc names=(generated generated_1t baseline)
    PAIR_MT=${7:-}
    if [ -n "$PAIR_MT" ]; then names+=(baseline_mt); fi
    for name in "${names[@]}"; do BEST_WALL[$name]=; BEST_CPU[$name]=; BEST_RSS[$name]=0; done
    for i in $(seq 1 "$RUNS"); do
        for name in "${names[@]}"; do
            statfile=$OUT/stats-$prefix$name.txt
            errfile=$OUT/stderr-$prefix$name.txt
            rc=0
            case $name in
                generated)
                    rm -f "$gen_out"
                    settle
                    t0=$(now)
                    measure "$statfile" "$gen_bin" --set "sources.readings.path=$input" \
                        --set "sinks.out.path=$gen_out" 2>"$errfile" || rc=$?
                    t1=$(now) ;;
                generated_1t)
                    rm -f "$gen_out.1t"
                    settle
                    t0=$(now)
                    measure "$statfile" "$gen_bin" --threads 1 --set "sources.readings.path=$input" \
                        --set "sinks.out.path=$gen_out.1t" 2>"$errfile" || rc=$?
                    t1=$(now) ;;
                baseline)
                    rm -f "$base_out"
                    settle
                    t0=$(now)
                    measure "$statfile" "$BASE" "$base_cmd" "$input" "$base_out" 2>"$errfile" || rc=$?
                    t1=$(now) ;;
                baseline_mt)
                    rm -f "$base_out.mt"
                    settle
                    t0=$(now)
                    measure "$statfile" "$BASE" "$PAIR_MT" "$input" "$base_out.mt" 2>"$errfile" || rc=$?
                    t1=$(now) ;;
            esac
            keep_run "$i" "$name" "$t0" "$t1" "$rc" "$statfile" "$errfile"
        done
    done
}

# keep_run RUN NAME T0 T1 RC STATFILE ERRFILE: exits with the program's stderr if it
# failed; else prints the run and keeps the best of NAME's wall and CPU times (minimum)
# and its peak RSS (maximum) in BEST_WALL / BEST_CPU / BEST_RSS.
keep_run() {
    local i=$1 name=$2 t0=$3 t1=$4 rc=$5 statfile=$6 errfile=$7 wall cpu rss user sys
    if [ "$rc" != 0 ]; then
        echo "$name failed (exit $rc); its stderr:" >&2
        cat "$errfile" >&2
        exit 1
    fi
    wall=$(elapsed "$t0" "$t1")
    read -r rss user sys < <(tail -n 1 "$statfile")
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    printf '  run %d %-12s wall %6s s  cpu %6s s  %7s KiB\n' "$i" "$name" "$wall" "$cpu" "$rss" >&2
    if [ -z "${BEST_WALL[$name]:-}" ] || awk -v a="$wall" -v b="${BEST_WALL[$name]}" 'BEGIN { exit !(a < b) }'; then
        BEST_WALL[$name]=$wall
    fi
    if [ -z "${BEST_CPU[$name]:-}" ] || awk -v a="$cpu" -v b="${BEST_CPU[$name]}" 'BEGIN { exit !(a < b) }'; then
        BEST_CPU[$name]=$cpu
    fi
    if [ "$rss" -gt "${BEST_RSS[$name]:-0}" ]; then BEST_RSS[$name]=$rss; fi
}

# run_once RUN NAME CMD...: after `settle`, one timed run of CMD, kept under NAME as
# run_pair keeps its runs (keep_run). Exits if CMD fails.
run_once() {
    local i=$1 name=$2 t0 t1 rc=0
    shift 2
    local statfile=$OUT/stats-$name.txt errfile=$OUT/stderr-$name.txt
    settle
    t0=$(now)
    measure "$statfile" "$@" 2>"$errfile" || rc=$?
    t1=$(now)
    keep_run "$i" "$name" "$t0" "$t1" "$rc" "$statfile" "$errfile"
}

# run_named NAME BEFORE CMD...: runs `bash -c BEFORE`, then CMD, RUNS times, keeping
# CMD's best times as run_pair does under NAME. Exits if CMD fails.
run_named() {
    local name=$1 before=$2 i
    shift 2
    BEST_WALL[$name]= BEST_CPU[$name]= BEST_RSS[$name]=0
    for i in $(seq 1 "$RUNS"); do
        bash -c "$before"
        run_once "$i" "$name" "$@"
    done
}

# run_alternating INPUT NAME GEN_BIN GEN_OUT [NAME GEN_BIN GEN_OUT]...: runs the
# generated binaries (their source `readings` reading INPUT, their sink `out` writing
# GEN_OUT, which may be /dev/null) one after the other, RUNS times round, keeping each
# NAME's best times as run_pair does: a ratio of two of them compares runs made under
# the same conditions (on this machine the CPU time of the same job moved by a quarter
# from one minute to the next). Exits if one fails.
run_alternating() {
    local input=$1 i j name out
    shift
    local -a names=() bins=() outs=()
    while [ $# -ge 3 ]; do
        names+=("$1") bins+=("$2") outs+=("$3")
        shift 3
    done
    for name in "${names[@]}"; do BEST_WALL[$name]=; BEST_CPU[$name]=; BEST_RSS[$name]=0; done
    for i in $(seq 1 "$RUNS"); do
        for j in "${!names[@]}"; do
            name=${names[$j]} out=${outs[$j]}
            if [ "$out" != /dev/null ]; then rm -f "$out"; fi
            run_once "$i" "$name" "${bins[$j]}" --set "sources.readings.path=$input" --set "sinks.out.path=$out"
        done
    done
}

# check_outputs GEN_OUT BASE_OUT: sets GEN_LINES, IDENTICAL (for the table) and
# OUTPUTS_OK (1/0); clears ALL_OK when the files differ (GEN_OUT.1t, the single-threaded
# run's, included, and BASE_OUT.mt, the multi-threaded baseline's, if run_pair ran it).
check_outputs() {
    local gen_out=$1 base_out=$2 base_lines mt_same=yes mt_note='' mt_lines=''
    GEN_LINES=$(wc -l <"$gen_out")
    base_lines=$(wc -l <"$base_out")
    if [ -n "$PAIR_MT" ]; then
        cmp -s "$base_out.mt" "$base_out" || mt_same=
        mt_note="; the multi-threaded baseline's too"
        mt_lines=", multi-threaded baseline $(wc -l <"$base_out.mt") lines"
    fi
    if cmp -s "$gen_out" "$base_out" && cmp -s "$gen_out.1t" "$base_out" && [ -n "$mt_same" ]; then
        IDENTICAL="yes ($GEN_LINES lines, byte-identical$mt_note)"
        OUTPUTS_OK=1
    else
        OUTPUTS_OK=0
        ALL_OK=0
        IDENTICAL="NO (generated $GEN_LINES lines, --threads 1 $(wc -l <"$gen_out.1t") lines, baseline $base_lines lines$mt_lines)"
        echo "outputs differ: $(cmp "$gen_out" "$base_out" 2>&1 | head -n 1) $(cmp "$gen_out.1t" "$base_out" 2>&1 | head -n 1)${PAIR_MT:+ $(cmp "$base_out.mt" "$base_out" 2>&1 | head -n 1)}" >&2
        diff <(head -n 100000 "$gen_out") <(head -n 100000 "$base_out") | head -n 6 >&2 || true
    fi
}

# pair_rows [RSS_TARGET] [TARGET] [TARGET_1T]: the table rows for the last run_pair: wall
# time, throughput and its ratio, CPU time and its ratio, peak RSS, each for the default
# thread count and for `--threads 1`; the RSS ratio of the default threads to the baseline
# against issue 16's 2.0, and with RSS_TARGET, of `--threads 1` against it. Throughput
# targets: by default issue 16's (on 2 cores, the default ≥ 2.0× the single-threaded
# hand-written program, `--threads 1` ≥ 1.0×).
pair_rows() {
    local rss_target=${1:-} target=${2:-2.0} target_1t=${3:-1.0} gen_eps one_eps base_eps ratio one_ratio cpu_ratio rss_ratio
    gen_eps=$(eps "${BEST_WALL[generated]}")
    one_eps=$(eps "${BEST_WALL[generated_1t]}")
    base_eps=$(eps "${BEST_WALL[baseline]}")
    ratio=$(awk -v g="$gen_eps" -v b="$base_eps" 'BEGIN { printf "%.3f", g / b }')
    one_ratio=$(awk -v g="$one_eps" -v b="$base_eps" 'BEGIN { printf "%.3f", g / b }')
    cpu_ratio=$(awk -v g="${BEST_CPU[generated_1t]}" -v b="${BEST_CPU[baseline]}" 'BEGIN { printf "%.3f", b / g }')
    echo "| best wall time | ${BEST_WALL[generated]} s | ${BEST_WALL[generated_1t]} s | ${BEST_WALL[baseline]} s | | |"
    echo "| throughput | $gen_eps events/s | $one_eps events/s | $base_eps events/s | | |"
    echo "| ratio generated / baseline (throughput, wall), $(nproc) threads | $ratio | | | >= $target | $(pass "$ratio >= $target") |"
    echo "| ratio generated / baseline (throughput, wall), --threads 1 | | $one_ratio | | >= $target_1t | $(pass "$one_ratio >= $target_1t") |"
    echo "| best CPU time (user+sys) | ${BEST_CPU[generated]} s | ${BEST_CPU[generated_1t]} s | ${BEST_CPU[baseline]} s | | |"
    echo "| ratio by CPU time, --threads 1 (baseline cpu / generated cpu) | | $cpu_ratio | | (>= 1.0) | $(pass "$cpu_ratio >= 1.0") |"
    echo "| peak RSS | $(mib "${BEST_RSS[generated]}") MiB | $(mib "${BEST_RSS[generated_1t]}") MiB | $(mib "${BEST_RSS[baseline]}") MiB | | |"
    # One thread against the single-threaded baseline: the window workload's own bound;
    # the default threads (read-ahead batches, a worker's decoder): issue 16's, 2.0.
    if [ -n "$rss_target" ]; then
        rss_ratio=$(awk -v g="${BEST_RSS[generated_1t]}" -v b="${BEST_RSS[baseline]}" 'BEGIN { printf "%.3f", g / b }')
        echo "| ratio peak RSS generated / baseline, --threads 1 | | $rss_ratio | | <= $rss_target | $(pass "$rss_ratio <= $rss_target") |"
    fi
    rss_ratio=$(awk -v g="${BEST_RSS[generated]}" -v b="${BEST_RSS[baseline]}" 'BEGIN { printf "%.3f", g / b }')
    echo "| ratio peak RSS generated / baseline, $(nproc) threads | $rss_ratio | | | <= 2.0 | $(pass "$rss_ratio <= 2.0") |"
}

# mt_rows: the rows of the multi-threaded baseline of the last run_pair (its default
# thread count, the cores: the honest limit on this machine): wall time, throughput,
# CPU time, peak RSS, and the ratio generated with its default thread count / it,
# target >= 0.9.
mt_rows() {
    local gen_eps mt_eps ratio
    gen_eps=$(eps "${BEST_WALL[generated]}")
    mt_eps=$(eps "${BEST_WALL[baseline_mt]}")
    ratio=$(awk -v g="$gen_eps" -v b="$mt_eps" 'BEGIN { printf "%.3f", g / b }')
    echo "| multi-threaded baseline (\`baseline $PAIR_MT\`, $(nproc) worker threads): best wall time | | | ${BEST_WALL[baseline_mt]} s | | |"
    echo "| multi-threaded baseline: throughput | | | $mt_eps events/s | | |"
    echo "| ratio generated ($(nproc) threads) / multi-threaded baseline (throughput, wall) | $ratio | | | >= 0.9 | $(pass "$ratio >= 0.9") |"
    echo "| multi-threaded baseline: best CPU time (user+sys) | | | ${BEST_CPU[baseline_mt]} s | | |"
    echo "| multi-threaded baseline: peak RSS | | | $(mib "${BEST_RSS[baseline_mt]}") MiB | | |"
}

# Heads the table of a workload measured with run_pair.
pair_header() {
    echo "| metric | generated (rill) | generated, --threads 1 | baseline (hand-written) | target | |"
    echo "|---|---:|---:|---:|---|---|"
}

# ---------------------------------------------------------------- shared builds
log "building rill (cargo build --release -p rill)"
(cd "$ROOT" && cargo build --release -p rill --quiet)

if want filter_map || want windowed || want pattern || want join; then
    log "building the baseline (bench/baseline, target dir bench/out/baseline-target)"
    cargo build --release --quiet --manifest-path "$BENCH/baseline/Cargo.toml" --target-dir "$BASE_TARGET"
fi

if want_kafka; then
    log "building the Kafka baseline and tools (bench/kafka, target dir bench/out/kafka-target)"
    cargo build --release --quiet --manifest-path "$BENCH/kafka/Cargo.toml" --target-dir "$K_TARGET"
fi

if want_redis; then
    log "building the Redis baseline and tools (bench/redis, target dir bench/out/redis-target)"
    cargo build --release --quiet --manifest-path "$BENCH/redis/Cargo.toml" --target-dir "$R_TARGET"
fi

if want_mqtt; then
    log "building the MQTT baseline and tools (bench/mqtt, target dir bench/out/mqtt-target)"
    cargo build --release --quiet --manifest-path "$BENCH/mqtt/Cargo.toml" --target-dir "$M_TARGET"
fi

{
    echo "# rill benchmark results"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
    echo "- toolchain: $(rustc --version)"
    echo "- timing: wall clock, best of $RUNS interleaved runs, warm page cache, \`sync\` before each run; CPU time (user+sys) and peak RSS via $RSS_TOOL (RSS: max over runs); CPU time is the steadier number when other processes share the cores"
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

    log "filter_map: running the generated binary and both baselines on $N events ($INPUT_MB MiB), best of $RUNS, interleaved"
    run_pair "" "$INPUT" "$GEN_BIN" "$GEN_OUT" run "$BASE_OUT" run-mt

    log "filter_map: verifying outputs"
    check_outputs "$GEN_OUT" "$BASE_OUT"

    # How soon a pipeline stops on SIGTERM: measured here, not asserted in a test.
    log "stop latency: SIGTERM to exit of an unbounded generator (pipelines/quickstart.yaml)"
    "$RILL" build "$ROOT/pipelines/quickstart.yaml" --release -o "$OUT/quickstart" >&2
    stop_latency STOP_S "$OUT/quickstart" --set sources.sensors.count= --set sources.sensors.rate=500
    echo "stop on SIGTERM: ${STOP_S} s" >&2

    GEN_SIZE=$(size_mb "$GEN_BIN")
    BASE_SIZE=$(size_mb "$BASE")
    EDGE_SIZE=$(size_mb "$GEN_BIN_EDGE")
    {
        echo
        echo "## filter_map"
        echo
        echo "- workload: bench/filter_map.yaml, $N JSON-lines events ($INPUT_MB MiB), $GEN_LINES pass the filter"
        echo
        pair_header
        pair_rows
        mt_rows
        echo "| binary size, --release ($(stripped "$GEN_BIN")) | $GEN_SIZE MB | | $BASE_SIZE MB | <= 3 MB | $(pass "$GEN_SIZE <= 3") |"
        echo "| binary size, --profile edge | $EDGE_SIZE MB | | | | |"
        echo "| cold build, --release (empty cache; includes the runtime's deps) | $COLD s | | | | |"
        echo "| warm rebuild, --release (one expression changed) | $WARM s | | | <= 20 s | $(pass "$WARM <= 20") |"
        echo "| build, --profile edge (after the release builds) | $EDGE_TIME s | | | | |"
        echo "| outputs identical | $IDENTICAL | | | | $([ "$OUTPUTS_OK" = 1 ] && echo ok || echo MISSED) |"
        echo "| stop on SIGTERM, records flowing (pipelines/quickstart.yaml) | $STOP_S s | | | <= 1 s | $(pass "$STOP_S <= 1") |"
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

        log "windowed: running the generated binary and both baselines on $N events ($W_INPUT_MB MiB), best of $RUNS, interleaved"
        run_pair window- "$W_INPUT" "$W_GEN_BIN" "$W_GEN_OUT" window "$W_BASE_OUT" window-mt

        log "windowed: verifying outputs"
        check_outputs "$W_GEN_OUT" "$W_BASE_OUT"

        log "windowed: the same job over 60 s windows sliding every 1 s (bench/hopping.yaml), into its file and to /dev/null, interleaved with the tumbling window's, best of $RUNS"
        cp "$BENCH/hopping.yaml" "$H_SPEC"
        hopping_rows=()
        if timed H_BUILD "$RILL" build "$H_SPEC" --release -o "$H_GEN_BIN"; then
            # The ratio to the tumbling window is of runs taken turn about, the
            # tumbling window run again here: its runs above were minutes before.
            # To /dev/null is the computing alone.
            run_alternating "$W_INPUT" hopping "$H_GEN_BIN" "$H_GEN_OUT" \
                tumbling "$W_GEN_BIN" "$W_GEN_OUT.again" hopping_null "$H_GEN_BIN" /dev/null
            rm -f "$W_GEN_OUT.again"
            h_eps=$(eps "${BEST_WALL[hopping]}")
            t_eps=$(eps "${BEST_WALL[tumbling]}")
            h_ratio=$(awk -v h="$h_eps" -v t="$t_eps" 'BEGIN { printf "%.3f", h / t }')
            h_null_ratio=$(awk -v h="$(eps "${BEST_WALL[hopping_null]}")" -v t="$t_eps" 'BEGIN { printf "%.3f", h / t }')
            # The writing alone: `dd` in the sink's 48 KiB writes, to the same file system.
            log "hopping: the writing alone (dd), best of $RUNS"
            run_named hopping_write "rm -f $(printf %q "$OUT/dd-hopping.out")" dd if="$H_GEN_OUT" of="$OUT/dd-hopping.out" bs=48k
            rm -f "$OUT/dd-hopping.out"
            hopping_rows=(
                "| hopping 60 s / 1 s (bench/hopping.yaml, $(nproc) threads): best wall time; the tumbling window's in the same turns | ${BEST_WALL[hopping]} s; ${BEST_WALL[tumbling]} s | | | | |"
                "| hopping: throughput, and its ratio to the tumbling window's (runs taken turn about) | $h_eps events/s; $h_ratio | | | >= 0.5 | $(pass "$h_ratio >= 0.5") |"
                "| hopping: best CPU time, peak RSS, rows out | ${BEST_CPU[hopping]} s, $(mib "${BEST_RSS[hopping]}") MiB, $(wc -l <"$H_GEN_OUT") rows ($(mib_of_file "$H_GEN_OUT") MiB; the tumbling window's: $(mib_of_file "$W_GEN_OUT") MiB) | | | | |"
                "| hopping, output to /dev/null (the computing alone): best wall time, CPU time, ratio to the tumbling window's throughput | ${BEST_WALL[hopping_null]} s, ${BEST_CPU[hopping_null]} s; $h_null_ratio | | | | |"
                "| hopping's output written alone (dd, 48 KiB writes): best wall time, CPU time | ${BEST_WALL[hopping_write]} s, ${BEST_CPU[hopping_write]} s | | | | |"
            )
        else
            ALL_OK=0
            hopping_rows=("| hopping 60 s / 1 s | not measured: \`rill build --release bench/hopping.yaml\` failed | | | | MISSED |")
        fi

        W_GEN_SIZE=$(size_mb "$W_GEN_BIN")
        {
            echo
            echo "## windowed"
            echo
            echo "- workload: bench/windowed.yaml, $N JSON-lines events ($W_INPUT_MB MiB), out of order by up to 1.5 s (0.1% by 3–12 s), $GEN_LINES window rows out"
            echo "- $(tail -n 1 "$OUT/stderr-window-baseline.txt")"
            echo
            pair_header
            pair_rows 1.2
            mt_rows
            printf '%s\n' "${hopping_rows[@]}"
            echo "| binary size, --release ($(stripped "$W_GEN_BIN")) | $W_GEN_SIZE MB | | $(size_mb "$BASE") MB | <= 3 MB | $(pass "$W_GEN_SIZE <= 3") |"
            echo "| build, --release ($W_CACHE_NOTE) | $W_BUILD s | | | | |"
            echo "| outputs identical | $IDENTICAL | | | | $([ "$OUTPUTS_OK" = 1 ] && echo ok || echo MISSED) |"
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

# ---------------------------------------------------------------- pattern
if want pattern; then
    if [ -s "$P_INPUT" ]; then
        log "reusing $P_INPUT"
    else
        log "generating $PATTERN_N events (gen-events) → $P_INPUT"
        rm -f "$OUT"/input-events-[0-9]*.jsonl
        "$BASE" gen-events "$PATTERN_N" "$P_INPUT.tmp"
        mv "$P_INPUT.tmp" "$P_INPUT"
    fi
    P_INPUT_MB=$(mib_of_file "$P_INPUT")
    cp "$BENCH/pattern.yaml" "$P_SPEC"
    log "pattern, build: rill build --release"
    if timed P_BUILD "$RILL" build "$P_SPEC" --release -o "$P_GEN_BIN"; then
        log "pattern: running both programs on $PATTERN_N events ($P_INPUT_MB MiB), best of $RUNS, interleaved"
        run_pair pattern- "$P_INPUT" "$P_GEN_BIN" "$P_GEN_OUT" pattern "$P_BASE_OUT"
        log "pattern: verifying outputs"
        check_outputs "$P_GEN_OUT" "$P_BASE_OUT"
        {
            echo
            echo "## pattern"
            echo
            echo "- workload: bench/pattern.yaml, $PATTERN_N JSON-lines user events ($P_INPUT_MB MiB), up to 3 s out of order (0.1% 6–20 s: most late), $GEN_LINES matches out"
            echo "- $(tail -n 1 "$OUT/stderr-pattern-baseline.txt")"
            echo
            pair_header
            pair_rows "" 0.9 0.9
            echo "| build, --release | $P_BUILD s | | | | |"
            echo "| outputs identical | $IDENTICAL | | | | $([ "$OUTPUTS_OK" = 1 ] && echo ok || echo MISSED) |"
        } >>"$RESULTS"
    else
        echo "pattern: rill build failed; the workload is not measured" >&2
        ALL_OK=0
    fi
fi

# ---------------------------------------------------------------- join
if want join; then
    if [ -s "$J_INPUT" ]; then
        log "reusing $J_INPUT"
    else
        log "generating $JOIN_N orders and shipments (gen-orders) → $J_INPUT"
        rm -f "$OUT"/input-orders-[0-9]*.jsonl
        "$BASE" gen-orders "$JOIN_N" "$J_INPUT.tmp"
        mv "$J_INPUT.tmp" "$J_INPUT"
    fi
    J_INPUT_MB=$(mib_of_file "$J_INPUT")
    cp "$BENCH/join.yaml" "$J_SPEC"
    log "join, build: rill build --release"
    if timed J_BUILD "$RILL" build "$J_SPEC" --release -o "$J_GEN_BIN"; then
        log "join: running both programs on $JOIN_N events ($J_INPUT_MB MiB), best of $RUNS, interleaved"
        run_pair join- "$J_INPUT" "$J_GEN_BIN" "$J_GEN_OUT" join "$J_BASE_OUT"
        log "join: verifying outputs"
        check_outputs "$J_GEN_OUT" "$J_BASE_OUT"
        {
            echo
            echo "## join"
            echo
            echo "- workload: bench/join.yaml, $JOIN_N JSON-lines orders and shipments ($J_INPUT_MB MiB), up to 3 s out of order (0.1% 6–20 s: most late), $GEN_LINES pairs out"
            echo "- $(tail -n 1 "$OUT/stderr-join-baseline.txt")"
            echo
            pair_header
            pair_rows "" 0.9 0.9
            echo "| build, --release | $J_BUILD s | | | | |"
            echo "| outputs identical | $IDENTICAL | | | | $([ "$OUTPUTS_OK" = 1 ] && echo ok || echo MISSED) |"
        } >>"$RESULTS"
    else
        echo "join: rill build failed; the workload is not measured" >&2
        ALL_OK=0
    fi
fi

# ---------------------------------------------------------------- window_fire
# FIRE_N readings, each with its own device id (in a scrambled order), all in the window
# [1,700,000,000,000, +10 s); the input ends, the window fires. The output file stays
# empty until the first results are written, so its first byte splits the run: reading
# (start → first output byte: decoding and adding every record) and firing (first output
# byte → exit: sorting the keys, building, encoding and writing every result).
if want window_fire; then
    if [ ! -s "$F_INPUT" ]; then
        log "generating $FIRE_N readings with distinct keys → $F_INPUT"
        rm -f "$OUT"/input-fire-[0-9]*.jsonl
        # 7919 is prime and coprime with 10^k, so i → i·7919 mod n is a permutation.
        awk -v n="$FIRE_N" 'BEGIN { for (i = 0; i < n; i++) printf "{\"device_id\":\"dev-%08d\",\"ts\":%d,\"temperature\":%.2f}\n", (i * 7919) % n, 1700000000000 + i % 10000, (i % 5000) / 100 }' >"$F_INPUT.tmp"
        mv "$F_INPUT.tmp" "$F_INPUT"
    fi
    cp "$BENCH/window_fire.yaml" "$F_SPEC"
    log "window_fire, build: rill build --release"
    if timed F_BUILD "$RILL" build "$F_SPEC" --release -o "$F_GEN_BIN"; then
        log "window_fire: $FIRE_N keys in one window, best of $RUNS"
        F_BEST_READ= F_BEST_FIRE= F_RUN_LINES=()
        for i in $(seq 1 "$RUNS"); do
            rm -f "$F_GEN_OUT"
            t0=$(now)
            "$F_GEN_BIN" --set "sources.readings.path=$F_INPUT" --set "sinks.out.path=$F_GEN_OUT" \
                2>"$OUT/stderr-fire.txt" &
            pid=$!
            t_first=
            while kill -0 "$pid" 2>/dev/null; do
                if [ -s "$F_GEN_OUT" ]; then t_first=$(now); break; fi
                sleep 0.005
            done
            rc=0
            wait "$pid" || rc=$?
            t1=$(now)
            if [ "$rc" != 0 ]; then
                echo "window_fire failed (exit $rc); its stderr:" >&2
                cat "$OUT/stderr-fire.txt" >&2
                exit 1
            fi
            [ -n "$t_first" ] || t_first=$t1 # exited before a poll saw output
            read_s=$(elapsed "$t0" "$t_first")
            fire_s=$(elapsed "$t_first" "$t1")
            row=$(printf 'run %d: reading %6s s, firing %6s s' "$i" "$read_s" "$fire_s")
            echo "  $row" >&2
            F_RUN_LINES+=("$row")
            if [ -z "$F_BEST_READ" ] || awk -v a="$read_s" -v b="$F_BEST_READ" 'BEGIN { exit !(a < b) }'; then F_BEST_READ=$read_s; fi
            if [ -z "$F_BEST_FIRE" ] || awk -v a="$fire_s" -v b="$F_BEST_FIRE" 'BEGIN { exit !(a < b) }'; then F_BEST_FIRE=$fire_s; fi
        done
        F_ROWS=$(wc -l <"$F_GEN_OUT")
        F_ROWS_OK=$([ "$F_ROWS" = "$FIRE_N" ] && echo ok || echo MISSED)
        [ "$F_ROWS_OK" = ok ] || ALL_OK=0
        {
            echo
            echo "## window_fire"
            echo
            echo "- workload: bench/window_fire.yaml, $FIRE_N JSON-lines readings ($(mib_of_file "$F_INPUT") MiB), one distinct key each, all in one 10 s tumbling window (allowed_lateness 5s), fired at the end of the input"
            echo "- reading = start → first byte in the output file; firing = first output byte → exit; best of $RUNS"
            echo
            echo "| metric | value | target | |"
            echo "|---|---:|---|---|"
            echo "| reading $FIRE_N records | $F_BEST_READ s | | |"
            echo "| firing $FIRE_N keys | $F_BEST_FIRE s | < reading | $(pass "$F_BEST_FIRE < $F_BEST_READ") |"
            echo "| rows out | $F_ROWS | $FIRE_N | $F_ROWS_OK |"
            echo "| build, --release | $F_BUILD s | | |"
            echo
            echo "Runs:"
            echo
            for row in "${F_RUN_LINES[@]}"; do echo "    $row"; done
        } >>"$RESULTS"
    else
        echo "window_fire: rill build failed; the workload is not measured" >&2
        ALL_OK=0
        {
            echo
            echo "## window_fire"
            echo
            echo "not measured: \`rill build --release bench/window_fire.yaml\` failed (see the script's stderr)"
        } >>"$RESULTS"
    fi
fi

# ---------------------------------------------------------------- kafka
# One tansu broker (in-memory storage) on a free loopback port for the whole workload,
# killed at exit. Each job run gets bench_in and bench_out deleted and created again
# (3 partitions each), KAFKA_N readings loaded into bench_in (kafka-load) and a fresh
# consumer group; `kafka-count` reads bench_out from the start while the job runs and
# notes when it has read every expected output; then the job gets SIGTERM. Two modes:
#
#   cold  load, then start the job: the time runs from the job's start, so it includes
#         joining the group (~0.2 s) and getting the idempotent producer's id, which
#         takes ~0.2 s or ~1 s (librdkafka retries on a 500 ms timer when the broker
#         connection is not up yet): a large, random share at 1M records.
#   warm  start the job on the empty topic, wait K_WARMUP s (joined, producer ready),
#         freeze it (SIGSTOP), load, then start the time and let it go on (SIGCONT):
#         the job's steady throughput, without the start-up.
#
# CPU time (user+sys) of the job and of the broker, and the job's peak RSS, are read
# from /proc: the CPU times as the change over the timed interval. After each run
# bench_out is read back in full; every job must have written exactly the expected
# messages, and the same multiset of them.
#
# A third job, `buffered`, is the generated one with a disk buffer on its sink
# (`buffer: { type: disk, max_size: 1GiB, fsync: 1s }`, a fresh state directory each
# run): what storing every record on disk before it is sent costs (target ≥ 0.8× the
# generated job's throughput).
K_WARMUP=3
K_BROKER_PID=
K_JOB_PID=
stop_kafka() { # the EXIT trap: our job and broker, by pid, if still running
    if [ -n "$K_JOB_PID" ]; then
        kill -TERM "$K_JOB_PID" 2>/dev/null || true
        kill -CONT "$K_JOB_PID" 2>/dev/null || true # if frozen
    fi
    if [ -n "$K_BROKER_PID" ]; then kill "$K_BROKER_PID" 2>/dev/null || true; fi
}
trap stop_kafka EXIT

CLK_TCK=$(getconf CLK_TCK)
cpu_of() { awk -v hz="$CLK_TCK" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; } # user+sys s
hwm_of() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }                                            # peak RSS KiB
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; } # field NAME 'a=1 NAME=2' → 2
min_into() { # min_into ARRAY KEY VALUE: ARRAY[KEY] = min(ARRAY[KEY], VALUE)
    local -n arr=$1
    if [ -z "${arr[$2]:-}" ] || awk -v a="$3" -v b="${arr[$2]}" 'BEGIN { exit !(a < b) }'; then arr[$2]=$3; fi
}

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

tansu() { (cd "$K_DIR" && "$TANSU" "$@"); } # tansu reads a .env from its working dir

# start_broker: starts tansu, waits until it answers (30 s); sets K_BROKERS, K_BROKER_PID.
start_broker() {
    local attempt
    mkdir -p "$K_DIR"
    for attempt in 1 2 3; do
        K_BROKERS=127.0.0.1:$(free_port)
        (cd "$K_DIR" && RUST_LOG=warn NO_COLOR=1 exec "$TANSU" broker --listener-url "tcp://$K_BROKERS" \
            --advertised-listener-url "tcp://$K_BROKERS" --storage-engine memory://tansu/ \
            --cluster-id rill-bench) >"$K_DIR/broker.log" 2>&1 &
        K_BROKER_PID=$!
        for _ in $(seq 1 300); do
            kill -0 "$K_BROKER_PID" 2>/dev/null || break
            if tansu topic list --broker "tcp://$K_BROKERS" >/dev/null 2>&1; then return 0; fi
            sleep 0.1
        done
        if kill -0 "$K_BROKER_PID" 2>/dev/null; then
            kill "$K_BROKER_PID"
            echo "the tansu broker did not answer on $K_BROKERS within 30 s; its log:" >&2
        elif [ "$attempt" -lt 3 ] && grep -q "Address already in use" "$K_DIR/broker.log"; then
            continue
        else
            echo "the tansu broker exited at start; its log:" >&2
        fi
        K_BROKER_PID=
        tail -n 20 "$K_DIR/broker.log" >&2
        exit 1
    done
}

fresh_topic() {
    tansu topic delete --broker "tcp://$K_BROKERS" "$1" >/dev/null 2>&1 || true
    tansu topic create --broker "tcp://$K_BROKERS" --partitions 3 "$1" >/dev/null
}

# load_input: KAFKA_N readings into bench_in; sets K_LOAD (kafka-load's line).
load_input() {
    K_LOAD=$("$K_TOOLS/kafka-load" --brokers "$K_BROKERS" --topic bench_in --count "$KAFKA_N")
}

# kafka_run NAME MODE RUN: one run of the generated binary or the relay (see above).
# Sets K_TIME (s, timed start → last output read), K_FIRST (s, → first output read),
# K_CPU and K_BROKER_CPU (s, over that interval) and K_RSS (KiB); leaves the job's
# stderr in $K_DIR/stderr-NAME.txt and bench_out, read back and sorted, in
# $K_DIR/out-NAME.jsonl. Exits if the job fails or does not write its outputs.
kafka_run() {
    local name=$1 mode=$2 run=$3 errfile=$K_DIR/stderr-$1.txt t0 cpu0 broker0 line count reader rc=0
    fresh_topic bench_in
    fresh_topic bench_out
    if [ "$mode" = cold ]; then load_input; fi
    broker0=$(cpu_of "$K_BROKER_PID")
    t0=$(now)
    case $name in
        generated) KAFKA_BROKERS=$K_BROKERS KAFKA_GROUP=rill-$mode-$run "$K_GEN_BIN" 2>"$errfile" & ;;
        buffered)
            rm -rf "$K_BUF_STATE"
            KAFKA_BROKERS=$K_BROKERS KAFKA_GROUP=rill-buffered-$mode-$run "$K_BUF_BIN" --state-dir "$K_BUF_STATE" 2>"$errfile" &
            ;;
        baseline) "$K_TOOLS/kafka-relay" --brokers "$K_BROKERS" --input bench_in --output bench_out \
            --group "relay-$mode-$run" >"$errfile" 2>&1 & ;;
    esac
    K_JOB_PID=$!
    cpu0=0
    if [ "$mode" = warm ]; then
        sleep "$K_WARMUP"
        if kill -STOP "$K_JOB_PID" 2>/dev/null; then load_input; else rc=1; fi
    fi
    "$K_TOOLS/kafka-count" --brokers "$K_BROKERS" --topic bench_out --expect "$K_EXPECT" \
        --pid "$K_JOB_PID" --timeout 1800 >"$K_DIR/count.txt" &
    reader=$!
    if [ "$mode" = warm ] && [ "$rc" = 0 ]; then
        broker0=$(cpu_of "$K_BROKER_PID")
        cpu0=$(cpu_of "$K_JOB_PID")
        t0=$(now)
        kill -CONT "$K_JOB_PID"
    fi
    wait "$reader" || rc=$?
    line=$(cat "$K_DIR/count.txt")
    if [ "$rc" = 0 ]; then
        K_CPU=$(minus "$(cpu_of "$K_JOB_PID")" "$cpu0")
        K_RSS=$(hwm_of "$K_JOB_PID")
        K_BROKER_CPU=$(minus "$(cpu_of "$K_BROKER_PID")" "$broker0")
    fi
    kill -TERM "$K_JOB_PID" 2>/dev/null || true
    wait "$K_JOB_PID" || rc=$?
    K_JOB_PID=
    if [ "$rc" != 0 ]; then
        echo "kafka: $name ($mode) failed (exit $rc); its stderr:" >&2
        tail -n 30 "$errfile" >&2
        exit 1
    fi
    K_TIME=$(elapsed "$t0" "$(field done "$line")")
    K_FIRST=$(elapsed "$t0" "$(field first "$line")")
    line=$("$K_TOOLS/kafka-count" --brokers "$K_BROKERS" --topic bench_out --idle 2 --dump "$K_DIR/out-$name.jsonl")
    LC_ALL=C sort -o "$K_DIR/out-$name.jsonl" "$K_DIR/out-$name.jsonl"
    count=$(field count "$line")
    if [ "$count" != "$K_EXPECT" ]; then
        echo "kafka: $name ($mode) wrote $count messages to bench_out, expected $K_EXPECT" >&2
        ALL_OK=0
        K_OUT_OK=0
    fi
}

if want_kafka; then
    cp "$BENCH/kafka_filter.yaml" "$K_SPEC"
    log "kafka, build: rill build --release (RILL_CACHE_DIR as found; a first build compiles librdkafka)"
    cp "$BENCH/kafka_filter.yaml" "$K_BUF_SPEC"
    echo "    buffer: { type: disk, max_size: 1GiB, when_full: block, fsync: 1s }" >>"$K_BUF_SPEC"
    if timed K_BUILD "$RILL" build "$K_SPEC" --release -o "$K_GEN_BIN" &&
        "$RILL" build "$K_BUF_SPEC" --release -o "$K_BUF_BIN" >&2; then
        echo "build: ${K_BUILD} s" >&2

        log "kafka: starting tansu ($($TANSU --version)), in-memory storage"
        start_broker
        echo "broker on $K_BROKERS (pid $K_BROKER_PID), log ${K_DIR#"$ROOT"/}/broker.log" >&2

        # The expected output count, from the generator (kafka-load prints it).
        fresh_topic bench_in
        load_input
        K_EXPECT=$(field expect_out "$K_LOAD")
        echo "$K_LOAD" >&2

        log "kafka: both jobs, $KAFKA_N records in, $K_EXPECT out, cold and warm, best of $RUNS, interleaved"
        k_eps() { awk -v n="$KAFKA_N" -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }
        declare -A K_BEST K_BEST_FIRST K_BEST_CPU K_BEST_BROKER K_MAX_RSS
        K_OUT_OK=1
        K_RUN_LINES=()
        K_LOADS=()
        for i in $(seq 1 "$RUNS"); do
            for mode in cold warm; do
                for name in generated baseline buffered; do
                    kafka_run "$name" "$mode" "$i"
                    K_LOADS+=("$(sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p' <<<"$K_LOAD")")
                    row=$(printf 'run %d %-4s %-9s %6s s (%7s records/s), first output after %5s s, cpu %5s s, broker cpu %5s s, peak RSS %6s KiB' \
                        "$i" "$mode" "$name" "$K_TIME" "$(k_eps "$K_TIME")" "$K_FIRST" "$K_CPU" "$K_BROKER_CPU" "$K_RSS")
                    echo "  $row" >&2
                    K_RUN_LINES+=("$row")
                    min_into K_BEST "$mode-$name" "$K_TIME"
                    min_into K_BEST_FIRST "$mode-$name" "$K_FIRST"
                    min_into K_BEST_CPU "$mode-$name" "$K_CPU"
                    min_into K_BEST_BROKER "$mode-$name" "$K_BROKER_CPU"
                    if [ "$K_RSS" -gt "${K_MAX_RSS[$name]:-0}" ]; then K_MAX_RSS[$name]=$K_RSS; fi
                done
                for name in baseline buffered; do
                    if ! cmp -s "$K_DIR/out-generated.jsonl" "$K_DIR/out-$name.jsonl"; then
                        echo "kafka: run $i ($mode): the output topics of generated and $name differ (sorted): $(cmp "$K_DIR/out-generated.jsonl" "$K_DIR/out-$name.jsonl" 2>&1 | head -n 1)" >&2
                        ALL_OK=0
                        K_OUT_OK=0
                    fi
                done
            done
        done

        declare -A K_EPS K_RATIO
        for mode in cold warm; do
            K_EPS[$mode-generated]=$(k_eps "${K_BEST[$mode-generated]}")
            K_EPS[$mode-baseline]=$(k_eps "${K_BEST[$mode-baseline]}")
            K_EPS[$mode-buffered]=$(k_eps "${K_BEST[$mode-buffered]}")
            K_RATIO[$mode]=$(awk -v g="${K_EPS[$mode-generated]}" -v b="${K_EPS[$mode-baseline]}" 'BEGIN { printf "%.3f", g / b }')
            K_RATIO[$mode-buffered]=$(awk -v g="${K_EPS[$mode-generated]}" -v b="${K_EPS[$mode-buffered]}" 'BEGIN { printf "%.3f", b / g }')
        done
        K_CPU_RATIO=$(awk -v g="${K_BEST_CPU[warm-generated]}" -v b="${K_BEST_CPU[warm-baseline]}" 'BEGIN { printf "%.3f", b / g }')
        K_LOAD_RANGE=$(printf '%s\n' "${K_LOADS[@]}" | sort -n | sed -n '1p;$p' | paste -sd '-')
        if [ "$K_OUT_OK" = 1 ]; then
            K_IDENTICAL="yes ($K_EXPECT messages each run, the same multiset)"
        else
            K_IDENTICAL="NO (see the script's stderr)"
        fi
        log "kafka: warm: generated ${K_EPS[warm-generated]} records/s, baseline ${K_EPS[warm-baseline]} records/s, ratio ${K_RATIO[warm]}; cold: ${K_EPS[cold-generated]}, ${K_EPS[cold-baseline]}, ratio ${K_RATIO[cold]}"
        {
            echo
            echo "## kafka"
            echo
            echo "- workload: bench/kafka_filter.yaml, $KAFKA_N JSON readings in bench_in (3 partitions, keyed by device), $K_EXPECT pass the filter into bench_out (3 partitions); baseline: bench/kafka \`kafka-relay\`"
            echo "- broker: tansu $("$TANSU" --version | awk '{ print $2 }'), in-memory storage, on the same machine; consumers' fetch.wait.max.ms $KAFKA_FETCH_WAIT_MS, fetch.queue.backoff.ms $KAFKA_FETCH_QUEUE_BACKOFF_MS; loading bench_in (kafka-load, the relay's producer settings): $K_LOAD_RANGE records/s"
            echo "- time: until \`kafka-count\`, reading bench_out meanwhile, has read all $K_EXPECT outputs, from the job's start (cold) or from the moment the started, joined and then frozen job is let go on a loaded topic (warm, after ${K_WARMUP} s); throughput = input records / that time; best of $RUNS interleaved runs each. CPU times over that interval, from /proc"
            echo "- generated, last run: \`$(grep -m1 '"pipeline stopped"' "$K_DIR/stderr-generated.txt" || echo 'no "pipeline stopped" line')\`"
            echo "- baseline, last run: \`$(tail -n 1 "$K_DIR/stderr-baseline.txt")\`"
            echo
            echo "| metric | generated (rill) | baseline (kafka-relay) | target | |"
            echo "|---|---:|---:|---|---|"
            echo "| warm: best time, let go → all outputs read | ${K_BEST[warm-generated]} s | ${K_BEST[warm-baseline]} s | | |"
            echo "| warm: throughput | ${K_EPS[warm-generated]} records/s | ${K_EPS[warm-baseline]} records/s | | |"
            echo "| warm: ratio generated / baseline (throughput) | ${K_RATIO[warm]} | | >= 0.9 | $(pass "${K_RATIO[warm]} >= 0.9") |"
            echo "| warm: best CPU time of the job (user+sys) | ${K_BEST_CPU[warm-generated]} s | ${K_BEST_CPU[warm-baseline]} s | | |"
            echo "| warm: ratio by CPU time (baseline cpu / generated cpu) | $K_CPU_RATIO | | (>= 0.9) | $(pass "$K_CPU_RATIO >= 0.9") |"
            echo "| warm: best CPU time of the broker | ${K_BEST_BROKER[warm-generated]} s | ${K_BEST_BROKER[warm-baseline]} s | | |"
            echo "| cold: best time, start → all outputs read | ${K_BEST[cold-generated]} s | ${K_BEST[cold-baseline]} s | | |"
            echo "| cold: throughput | ${K_EPS[cold-generated]} records/s | ${K_EPS[cold-baseline]} records/s | | |"
            echo "| cold: ratio generated / baseline (throughput) | ${K_RATIO[cold]} | | | |"
            echo "| cold: best time, start → first output read | ${K_BEST_FIRST[cold-generated]} s | ${K_BEST_FIRST[cold-baseline]} s | | |"
            echo "| peak RSS of the job | $(mib "${K_MAX_RSS[generated]}") MiB | $(mib "${K_MAX_RSS[baseline]}") MiB | | |"
            echo "| binary size, --release ($(stripped "$K_GEN_BIN")) | $(size_mb "$K_GEN_BIN") MB | $(size_mb "$K_TOOLS/kafka-relay") MB | | |"
            echo "| build, --release (RILL_CACHE_DIR as found) | $K_BUILD s | | | |"
            echo "| outputs identical | $K_IDENTICAL | | | $([ "$K_OUT_OK" = 1 ] && echo ok || echo MISSED) |"
            echo
            echo "With a disk buffer on the sink (\`buffer: { type: disk, max_size: 1GiB, fsync: 1s }\`), the same runs:"
            echo
            echo "| metric | without a buffer | with a disk buffer | target | |"
            echo "|---|---:|---:|---|---|"
            echo "| warm: throughput | ${K_EPS[warm-generated]} records/s | ${K_EPS[warm-buffered]} records/s | | |"
            echo "| warm: ratio buffered / without (throughput) | | ${K_RATIO[warm-buffered]} | >= 0.8 | $(pass "${K_RATIO[warm-buffered]} >= 0.8") |"
            echo "| warm: best CPU time of the job (user+sys) | ${K_BEST_CPU[warm-generated]} s | ${K_BEST_CPU[warm-buffered]} s | | |"
            echo "| cold: throughput | ${K_EPS[cold-generated]} records/s | ${K_EPS[cold-buffered]} records/s | | |"
            echo "| cold: ratio buffered / without (throughput) | | ${K_RATIO[cold-buffered]} | | |"
            echo "| peak RSS of the job | $(mib "${K_MAX_RSS[generated]}") MiB | $(mib "${K_MAX_RSS[buffered]}") MiB | | |"
            echo
            echo "Runs:"
            echo
            for row in "${K_RUN_LINES[@]}"; do echo "    $row"; done
        } >>"$RESULTS"
        stop_kafka
        K_BROKER_PID=
    else
        echo "kafka: rill build failed; the workload is not measured" >&2
        ALL_OK=0
        {
            echo
            echo "## kafka"
            echo
            echo "not measured: \`rill build --release bench/kafka_filter.yaml\` failed (see the script's stderr)"
        } >>"$RESULTS"
    fi
elif want kafka; then
    echo "kafka: skipped: $KAFKA_SKIPPED" >&2
    {
        echo
        echo "## kafka"
        echo
        echo "not measured: $KAFKA_SKIPPED"
    } >>"$RESULTS"
fi

# ---------------------------------------------------------------- redis
# One private redis-server (no persistence) on a free loopback port for the whole
# workload, killed at exit. Each job run gets bench_in and bench_out deleted, REDIS_N
# readings added to bench_in (redis-load), and a fresh consumer group (the job creates
# it at the start of the stream); `redis-count` watches XLEN bench_out from the job's
# start until it holds every expected output (the job then gets SIGTERM). Nothing to
# join and no producer id to wait for, so there is no warm mode. Each job's bench_out
# is read back (the `data` of every entry, sorted): both must be identical.
R_SERVER_PID=
R_JOB_PID=
stop_redis() {
    if [ -n "$R_JOB_PID" ]; then kill -TERM "$R_JOB_PID" 2>/dev/null || true; fi
    if [ -n "$R_SERVER_PID" ]; then kill "$R_SERVER_PID" 2>/dev/null || true; fi
}

# redis_run NAME RUN: sets R_TIME (s, start → all outputs written), R_CPU (s), R_RSS
# (KiB); leaves bench_out's data, sorted, in $R_DIR/out-NAME.txt.
redis_run() {
    local name=$1 run=$2 errfile=$R_DIR/stderr-$1.txt t0 line rc=0
    redis-cli -p "$R_PORT" DEL bench_in bench_out >/dev/null
    R_LOAD=$("$R_TOOLS/redis-load" --url "$R_URL" --count "$REDIS_N")
    t0=$(now)
    case $name in
        generated) REDIS_PORT=$R_PORT "$R_GEN_BIN" 2>"$errfile" & ;;
        baseline) "$R_TOOLS/redis-relay" --url "$R_URL" --consumer "relay-$run" 2>"$errfile" & ;;
    esac
    R_JOB_PID=$!
    line=$("$R_TOOLS/redis-count" --url "$R_URL" --stream bench_out --expect "$R_EXPECT" --pid "$R_JOB_PID" --timeout 1800) || rc=$?
    if [ "$rc" = 0 ]; then
        R_CPU=$(cpu_of "$R_JOB_PID")
        R_RSS=$(hwm_of "$R_JOB_PID")
    fi
    kill -TERM "$R_JOB_PID" 2>/dev/null || true
    wait "$R_JOB_PID" || rc=$?
    R_JOB_PID=
    if [ "$rc" != 0 ]; then
        echo "redis: $name failed (exit $rc, $line); its stderr:" >&2
        tail -n 30 "$errfile" >&2
        exit 1
    fi
    R_TIME=$(elapsed "$t0" "$(field done "$line")")
    redis-cli -p "$R_PORT" --raw XRANGE bench_out - + | awk 'NR % 3 == 0' | LC_ALL=C sort >"$R_DIR/out-$name.txt"
}

if want_redis; then
    cp "$BENCH/redis_filter.yaml" "$R_SPEC"
    log "redis, build: rill build --release"
    if timed R_BUILD "$RILL" build "$R_SPEC" --release -o "$R_GEN_BIN"; then
        mkdir -p "$R_DIR"
        R_PORT=$(free_port)
        R_URL=redis://127.0.0.1:$R_PORT
        redis-server --port "$R_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$R_DIR" >"$R_DIR/server.log" 2>&1 &
        R_SERVER_PID=$!
        trap 'stop_kafka; stop_redis' EXIT
        for _ in $(seq 1 300); do
            [ "$(redis-cli -p "$R_PORT" PING 2>/dev/null)" = PONG ] && break
            sleep 0.1
        done
        R_EXPECT=$("$R_TOOLS/redis-load" --url "$R_URL" --count "$REDIS_N" | sed -n 's/.*expect_out=\([0-9]*\).*/\1/p')
        log "redis: both jobs, $REDIS_N entries in, $R_EXPECT out, best of $RUNS, interleaved"
        declare -A R_BEST R_BEST_CPU R_MAX_RSS
        R_OUT_OK=1
        R_RUN_LINES=()
        for i in $(seq 1 "$RUNS"); do
            for name in generated baseline; do
                redis_run "$name" "$i"
                row=$(printf 'run %d %-9s %6s s (%7s entries/s), cpu %5s s, peak RSS %6s KiB' \
                    "$i" "$name" "$R_TIME" "$(awk -v n="$REDIS_N" -v t="$R_TIME" 'BEGIN { printf "%.0f", n / t }')" "$R_CPU" "$R_RSS")
                echo "  $row" >&2
                R_RUN_LINES+=("$row")
                min_into R_BEST "$name" "$R_TIME"
                min_into R_BEST_CPU "$name" "$R_CPU"
                if [ "$R_RSS" -gt "${R_MAX_RSS[$name]:-0}" ]; then R_MAX_RSS[$name]=$R_RSS; fi
            done
            if ! cmp -s "$R_DIR/out-generated.txt" "$R_DIR/out-baseline.txt"; then
                echo "redis: run $i: the two output streams differ (sorted)" >&2
                ALL_OK=0
                R_OUT_OK=0
            fi
        done
        r_eps() { awk -v n="$REDIS_N" -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }
        R_RATIO=$(awk -v g="${R_BEST[generated]}" -v b="${R_BEST[baseline]}" 'BEGIN { printf "%.3f", b / g }')
        R_CPU_RATIO=$(awk -v g="${R_BEST_CPU[generated]}" -v b="${R_BEST_CPU[baseline]}" 'BEGIN { printf "%.3f", b / g }')
        log "redis: generated $(r_eps "${R_BEST[generated]}") entries/s, baseline $(r_eps "${R_BEST[baseline]}") entries/s, ratio $R_RATIO"
        {
            echo
            echo "## redis"
            echo
            echo "- workload: bench/redis_filter.yaml, $REDIS_N JSON readings in the stream bench_in (consumer group, from the start), $R_EXPECT pass the filter into bench_out; baseline: bench/redis \`redis-relay\`"
            echo "- server: $(redis-server --version | awk '{ print $3 }'), no persistence, on the same machine; time from the job's start until \`redis-count\` sees all outputs; best of $RUNS interleaved runs"
            echo
            echo "| metric | generated (rill) | baseline (redis-relay) | target | |"
            echo "|---|---:|---:|---|---|"
            echo "| best time | ${R_BEST[generated]} s | ${R_BEST[baseline]} s | | |"
            echo "| throughput | $(r_eps "${R_BEST[generated]}") entries/s | $(r_eps "${R_BEST[baseline]}") entries/s | | |"
            echo "| ratio generated / baseline (throughput) | $R_RATIO | | >= 0.9 | $(pass "$R_RATIO >= 0.9") |"
            echo "| best CPU time of the job (user+sys) | ${R_BEST_CPU[generated]} s | ${R_BEST_CPU[baseline]} s | | |"
            echo "| ratio by CPU time (baseline cpu / generated cpu) | $R_CPU_RATIO | | | |"
            echo "| peak RSS of the job | $(mib "${R_MAX_RSS[generated]}") MiB | $(mib "${R_MAX_RSS[baseline]}") MiB | | |"
            echo "| build, --release (RILL_CACHE_DIR as found) | $R_BUILD s | | | |"
            echo "| outputs identical | $([ "$R_OUT_OK" = 1 ] && echo "yes ($R_EXPECT entries each run, the same multiset)" || echo NO) | | | $([ "$R_OUT_OK" = 1 ] && echo ok || echo MISSED) |"
            echo
            echo "Runs:"
            echo
            for row in "${R_RUN_LINES[@]}"; do echo "    $row"; done
        } >>"$RESULTS"
        stop_redis
        R_SERVER_PID=
    else
        echo "redis: rill build failed; the workload is not measured" >&2
        ALL_OK=0
    fi
elif want redis; then
    echo "redis: skipped: $REDIS_SKIPPED" >&2
    {
        echo
        echo "## redis"
        echo
        echo "not measured: $REDIS_SKIPPED"
    } >>"$RESULTS"
fi

# ---------------------------------------------------------------- mqtt
# One private mosquitto (no persistence) on a free loopback port for the whole workload,
# killed at exit. Three jobs relay bench/in → bench/out through the filter: rill's
# binary (generated), `mqtt-relay` (baseline) and `mosquitto_sub | grep | mosquitto_pub`
# (pipe). Each run of a job:
#
#   1. creates the job's persistent session (a fresh client id each run): subscribed to
#      bench/in at QoS 1, then disconnected (mosquitto_sub -c -E);
#   2. preloads MQTT_N readings into it (mqtt-load, QoS 1; the broker queues them for
#      the absent client: max_queued_messages 0 = no limit, so none is dropped);
#   3. starts `mqtt-count`, subscribed to bench/out at QoS 1, then the job: the time
#      runs from the job's start to the moment the counter has every expected output
#      (connecting takes milliseconds, unlike Kafka's group join, so there is no warm
#      mode); throughput = input messages / that time. The counter then waits 0.5 s
#      more for any extra message, the job gets SIGTERM;
#   4. connects to the job's session again for 1 s: the job must have acknowledged
#      every input (nothing comes); then ends the session (a clean connection with its
#      client id), else it would stay subscribed and queue every later load.
#
# Preloading rather than publishing meanwhile: the job alone is measured (on 2 cores a
# concurrent loader takes a core), and the queue is the broker's real backlog case. The
# broker's max_inflight_messages is MQTT_INFLIGHT (default 1000, as the runtime's docs
# advise: rill acknowledges a batch once its outputs are confirmed); with a backlog
# queued while the client was away it made no measurable difference (20, 1000, 10000
# and 0 alike), mosquitto 2.0.11 sending far more than that unacknowledged.
# CPU time of the job (for the pipe: its three processes) and of the broker, over the
# timed interval, and the job's peak RSS come from /proc. Every run must deliver exactly
# the expected messages; the outputs of the three jobs (sorted) must be identical.
M_BROKER_PID=
M_JOB_PID=
stop_mqtt() { # part of the EXIT trap: our job and broker, by pid, if still running
    if [ -n "$M_JOB_PID" ]; then kill -TERM -- "-$M_JOB_PID" 2>/dev/null || kill -TERM "$M_JOB_PID" 2>/dev/null || true; fi
    if [ -n "$M_BROKER_PID" ]; then kill "$M_BROKER_PID" 2>/dev/null || true; fi
}
trap 'stop_kafka; stop_mqtt' EXIT

# The filter for grep, on the generator's numbers (0.0 ..= 50.0, shortest form, always
# with a fraction): temperature > 25.0 && status == "ok".
M_GREP='"temperature":(25\.[0-9]*[1-9][0-9]*|2[6-9]\.[0-9]+|[3-9][0-9]\.[0-9]+|[1-9][0-9]{2,}\.[0-9]+),.*"status":"ok"\}$'

# start_mosquitto: writes the config, starts the broker, waits until it answers (10 s);
# sets M_PORT, M_BROKER_PID.
start_mosquitto() {
    local attempt
    mkdir -p "$M_DIR"
    for attempt in 1 2 3; do
        M_PORT=$(free_port)
        cat >"$M_DIR/mosquitto.conf" <<CONF
# bench/run.sh's private broker (WORKLOAD=mqtt)
listener $M_PORT 127.0.0.1
allow_anonymous true
persistence false
# Unacknowledged QoS 1 messages in flight to one client (default 20).
max_inflight_messages $MQTT_INFLIGHT
# Queued for a client beyond those: no limit (default 1000, then it drops).
max_queued_messages 0
max_queued_bytes 0
# When started as root, stay this user (else mosquitto switches to \`mosquitto\`, which
# cannot write the log here).
user $(id -un)
log_dest file $M_DIR/mosquitto.log
log_type error
log_type warning
log_type notice
CONF
        : >"$M_DIR/mosquitto.log"
        "$MOSQUITTO" -c "$M_DIR/mosquitto.conf" 2>>"$M_DIR/mosquitto.log" &
        M_BROKER_PID=$!
        for _ in $(seq 1 100); do
            kill -0 "$M_BROKER_PID" 2>/dev/null || break
            if mosquitto_pub -p "$M_PORT" -t bench/ping -n 2>/dev/null; then return 0; fi
            sleep 0.1
        done
        if kill -0 "$M_BROKER_PID" 2>/dev/null; then
            kill "$M_BROKER_PID"
            echo "mosquitto did not answer on port $M_PORT within 10 s; its log:" >&2
        elif [ "$attempt" -lt 3 ] && grep -q "Address already in use" "$M_DIR/mosquitto.log"; then
            continue
        else
            echo "mosquitto exited at start; its log:" >&2
        fi
        M_BROKER_PID=
        tail -n 20 "$M_DIR/mosquitto.log" >&2
        exit 1
    done
}

# gone ID: how many times the broker has logged client ID's leaving.
gone() { grep -cE "Client $1 (disconnected|closed its connection)" "$M_DIR/mosquitto.log" || true; }

# cpu_of_group PGID: user+sys seconds of the processes in process group PGID.
cpu_of_group() {
    local pid total=0
    for pid in $(ps -e -o pid=,pgid= | awk -v g="$1" '$2 == g { print $1 }'); do
        total=$(awk -v a="$total" -v b="$(cpu_of "$pid" 2>/dev/null || echo 0)" 'BEGIN { printf "%.2f", a + b }')
    done
    echo "$total"
}

# mqtt_run NAME RUN: one run of generated, baseline or pipe (see above). Sets M_TIME
# (s, start → the last expected output), M_FIRST (s, → the first), M_CPU and
# M_BROKER_CPU (s, over that interval), M_RSS (KiB, 0 for the pipe) and M_COUNT; leaves
# the job's stderr in $M_DIR/stderr-NAME-RUN.txt and its outputs, sorted, in
# $M_DIR/out-NAME.jsonl. Exits if the job fails; clears ALL_OK when the count is wrong.
mqtt_run() {
    local name=$1 run=$2 id=bench-$1-$2-$$ errfile=$M_DIR/stderr-$1-$2.txt t0 cpu0=0 broker0 line rc=0 counter gone0
    M_CPU=0 M_RSS=0
    mosquitto_sub -p "$M_PORT" -c -i "$id" -q 1 -t bench/in -E
    M_LOAD=$("$M_TOOLS/mqtt-load" --broker "127.0.0.1:$M_PORT" --count "$MQTT_N")
    gone0=$(gone "$id")
    rm -f "$M_DIR/ready"
    "$M_TOOLS/mqtt-count" --broker "127.0.0.1:$M_PORT" --topic bench/out --expect "$M_EXPECT" \
        --ready "$M_DIR/ready" --dump "$M_DIR/out-$name.jsonl" --timeout 1800 >"$M_DIR/count.txt" &
    counter=$!
    for _ in $(seq 1 1000); do [ -e "$M_DIR/ready" ] && break; sleep 0.01; done
    broker0=$(cpu_of "$M_BROKER_PID")
    t0=$(now)
    case $name in
        generated) MQTT_PORT=$M_PORT MQTT_CLIENT_ID=$id "$M_GEN_BIN" 2>"$errfile" & ;;
        baseline) "$M_TOOLS/mqtt-relay" --broker "127.0.0.1:$M_PORT" --client-id "$id" >"$errfile" 2>&1 & ;;
        pipe) # its own process group (job control), so that one signal stops all three
            set -m
            { mosquitto_sub -p "$M_PORT" -c -i "$id" -q 1 -t bench/in |
                grep --line-buffered -E "$M_GREP" |
                mosquitto_pub -p "$M_PORT" -q 1 -M 100 -t bench/out -l; } 2>"$errfile" &
            set +m ;;
    esac
    M_JOB_PID=$!
    # The counter stops at the expected count; stop it if the job dies first.
    while kill -0 "$counter" 2>/dev/null; do
        if ! kill -0 "$M_JOB_PID" 2>/dev/null; then sleep 1; kill "$counter" 2>/dev/null || true; break; fi
        sleep 0.05
    done
    wait "$counter" || rc=$?
    line=$(cat "$M_DIR/count.txt")
    if [ "$name" = pipe ]; then
        M_CPU=$(cpu_of_group "$M_JOB_PID")
        M_RSS=0
    elif kill -0 "$M_JOB_PID" 2>/dev/null; then
        M_CPU=$(minus "$(cpu_of "$M_JOB_PID")" "$cpu0")
        M_RSS=$(hwm_of "$M_JOB_PID")
    fi
    M_BROKER_CPU=$(minus "$(cpu_of "$M_BROKER_PID")" "$broker0")
    M_COUNT=$(field count "$line")
    local job_rc=0
    if [ "$name" = pipe ]; then
        kill -TERM -- "-$M_JOB_PID" 2>/dev/null || true
        wait "$M_JOB_PID" 2>/dev/null || true # killed: 143
    else
        kill -TERM "$M_JOB_PID" 2>/dev/null || true
        wait "$M_JOB_PID" || job_rc=$?
    fi
    M_JOB_PID=
    if [ "$job_rc" != 0 ] || [ -z "$M_COUNT" ]; then
        echo "mqtt: $name failed (exit $job_rc; counter: '$line'); its stderr:" >&2
        tail -n 30 "$errfile" >&2
        exit 1
    fi
    if [ "$rc" != 0 ] || [ "$M_COUNT" != "$M_EXPECT" ]; then
        echo "mqtt: $name (run $run) delivered $M_COUNT messages to bench/out, expected $M_EXPECT" >&2
        ALL_OK=0
        M_OUT_OK=0
    fi
    # What the job left unacknowledged in its session (the broker would send it again),
    # once the broker has read all the job sent: its last acknowledgements may wait in
    # the socket while the broker catches up, and connecting with the same client id
    # would discard them. TCP keeps order, so the disconnect is read last.
    for _ in $(seq 1 400); do
        [ "$(gone "$id")" -gt "$gone0" ] && break
        sleep 0.05
    done
    M_LEFT=$({ timeout 5 mosquitto_sub -p "$M_PORT" -c -i "$id" -q 1 -t bench/in -W 1 2>/dev/null || true; } | wc -l)
    if [ "$M_LEFT" != 0 ]; then
        echo "mqtt: $name (run $run) left $M_LEFT messages unacknowledged in its session" >&2
        ALL_OK=0
        M_ACK_OK=0
    fi
    # Gone: a clean session with its client ids ends it, else it stays subscribed to
    # bench/in and the next runs' loads would be queued for it too.
    mosquitto_pub -p "$M_PORT" -i "$id" -t bench/ping -n
    mosquitto_pub -p "$M_PORT" -i "$id-out" -t bench/ping -n
    M_TIME=$(elapsed "$t0" "$(field done "$line")")
    M_FIRST=$(elapsed "$t0" "$(field first "$line")")
    LC_ALL=C sort -o "$M_DIR/out-$name.jsonl" "$M_DIR/out-$name.jsonl"
}

if want_mqtt; then
    cp "$BENCH/mqtt_filter.yaml" "$M_SPEC"
    log "mqtt, build: rill build --release (RILL_CACHE_DIR as found)"
    if timed M_BUILD "$RILL" build "$M_SPEC" --release -o "$M_GEN_BIN"; then
        echo "build: ${M_BUILD} s" >&2
        M_VERSION=$({ "$MOSQUITTO" -h 2>&1 || true; } | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p' | head -n 1) # -h exits 3
        log "mqtt: starting mosquitto $M_VERSION (no persistence, max_inflight_messages $MQTT_INFLIGHT)"
        start_mosquitto
        echo "broker on port $M_PORT (pid $M_BROKER_PID), log ${M_DIR#"$ROOT"/}/mosquitto.log" >&2

        # The expected output count, from the generator (mqtt-load prints it).
        M_EXPECT=$(field expect_out "$("$M_TOOLS/mqtt-load" --lines /dev/null --count "$MQTT_N")")
        log "mqtt: three jobs, $MQTT_N messages in, $M_EXPECT out, best of $RUNS, interleaved"
        m_eps() { awk -v n="$MQTT_N" -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }
        declare -A M_BEST M_BEST_FIRST M_BEST_CPU M_BEST_BROKER M_MAX_RSS
        M_OUT_OK=1
        M_ACK_OK=1
        M_RUN_LINES=()
        M_LOADS=()
        for i in $(seq 1 "$RUNS"); do
            for name in generated baseline pipe; do
                mqtt_run "$name" "$i"
                M_LOADS+=("$(sed -n 's/.*(\([0-9]*\) messages\/s).*/\1/p' <<<"$M_LOAD")")
                row=$(printf 'run %d %-9s %6s s (%7s messages/s), first output after %5s s, %s out, %s left, cpu %5s s, broker cpu %5s s, peak RSS %6s KiB' \
                    "$i" "$name" "$M_TIME" "$(m_eps "$M_TIME")" "$M_FIRST" "$M_COUNT" "$M_LEFT" "$M_CPU" "$M_BROKER_CPU" "$M_RSS")
                echo "  $row" >&2
                M_RUN_LINES+=("$row")
                min_into M_BEST "$name" "$M_TIME"
                min_into M_BEST_FIRST "$name" "$M_FIRST"
                min_into M_BEST_CPU "$name" "$M_CPU"
                min_into M_BEST_BROKER "$name" "$M_BROKER_CPU"
                if [ "$M_RSS" -gt "${M_MAX_RSS[$name]:-0}" ]; then M_MAX_RSS[$name]=$M_RSS; fi
            done
            for name in baseline pipe; do
                if ! cmp -s "$M_DIR/out-generated.jsonl" "$M_DIR/out-$name.jsonl"; then
                    echo "mqtt: run $i: the outputs of generated and $name differ (sorted): $(cmp "$M_DIR/out-generated.jsonl" "$M_DIR/out-$name.jsonl" 2>&1 | head -n 1)" >&2
                    ALL_OK=0
                    M_OUT_OK=0
                fi
            done
        done

        declare -A M_EPS
        for name in generated baseline pipe; do M_EPS[$name]=$(m_eps "${M_BEST[$name]}"); done
        M_RATIO=$(awk -v g="${M_EPS[generated]}" -v b="${M_EPS[baseline]}" 'BEGIN { printf "%.3f", g / b }')
        M_PIPE_RATIO=$(awk -v g="${M_EPS[generated]}" -v b="${M_EPS[pipe]}" 'BEGIN { printf "%.3f", g / b }')
        M_CPU_RATIO=$(awk -v g="${M_BEST_CPU[generated]}" -v b="${M_BEST_CPU[baseline]}" 'BEGIN { printf "%.3f", b / g }')
        M_LOAD_RANGE=$(printf '%s\n' "${M_LOADS[@]}" | sort -n | sed -n '1p;$p' | paste -sd '-')
        if [ "$M_OUT_OK" = 1 ]; then
            M_IDENTICAL="yes ($M_EXPECT messages each run, the same multiset from all three)"
        else
            M_IDENTICAL="NO (see the script's stderr)"
        fi
        log "mqtt: generated ${M_EPS[generated]} messages/s, baseline ${M_EPS[baseline]}, ratio $M_RATIO; pipe ${M_EPS[pipe]}"
        {
            echo
            echo "## mqtt"
            echo
            echo "- workload: bench/mqtt_filter.yaml, $MQTT_N JSON readings preloaded (QoS 1) into each job's persistent session on bench/in, $M_EXPECT pass the filter into bench/out (QoS 1); baseline: bench/mqtt \`mqtt-relay\` (rumqttc, as rill); second line: \`mosquitto_sub -c -q 1 | grep --line-buffered -E | mosquitto_pub -l -q 1 -M 100\`"
            echo "- broker: mosquitto $M_VERSION, private, on the same machine, no persistence, max_inflight_messages $MQTT_INFLIGHT, max_queued_messages 0 (no limit); preloading (mqtt-load): $M_LOAD_RANGE messages/s"
            echo "- time: from the job's start until \`mqtt-count\`, subscribed to bench/out, has every expected output; throughput = input messages / that time; best of $RUNS interleaved runs each. CPU times over that interval, from /proc"
            echo "- generated, last run: \`$(grep -m1 '"pipeline stopped"' "$M_DIR/stderr-generated-$RUNS.txt" || echo 'no "pipeline stopped" line')\`"
            echo "- baseline, last run: \`$(tail -n 1 "$M_DIR/stderr-baseline-$RUNS.txt")\`"
            echo
            echo "| metric | generated (rill) | baseline (mqtt-relay) | mosquitto_sub \\| grep \\| mosquitto_pub | target | |"
            echo "|---|---:|---:|---:|---|---|"
            echo "| best time, start → all outputs received | ${M_BEST[generated]} s | ${M_BEST[baseline]} s | ${M_BEST[pipe]} s | | |"
            echo "| throughput | ${M_EPS[generated]} messages/s | ${M_EPS[baseline]} messages/s | ${M_EPS[pipe]} messages/s | | |"
            echo "| ratio generated / baseline (throughput) | $M_RATIO | | | >= 0.9 | $(pass "$M_RATIO >= 0.9") |"
            echo "| ratio generated / mosquitto pipe (throughput) | $M_PIPE_RATIO | | | | |"
            echo "| best CPU time of the job (user+sys) | ${M_BEST_CPU[generated]} s | ${M_BEST_CPU[baseline]} s | ${M_BEST_CPU[pipe]} s | | |"
            echo "| ratio by CPU time (baseline cpu / generated cpu) | $M_CPU_RATIO | | | (>= 0.9) | $(pass "$M_CPU_RATIO >= 0.9") |"
            echo "| best CPU time of the broker | ${M_BEST_BROKER[generated]} s | ${M_BEST_BROKER[baseline]} s | ${M_BEST_BROKER[pipe]} s | | |"
            echo "| best time, start → first output received | ${M_BEST_FIRST[generated]} s | ${M_BEST_FIRST[baseline]} s | ${M_BEST_FIRST[pipe]} s | | |"
            echo "| peak RSS of the job | $(mib "${M_MAX_RSS[generated]}") MiB | $(mib "${M_MAX_RSS[baseline]}") MiB | | | |"
            echo "| binary size, --release ($(stripped "$M_GEN_BIN")) | $(size_mb "$M_GEN_BIN") MB | $(size_mb "$M_TOOLS/mqtt-relay") MB | | | |"
            echo "| build, --release (RILL_CACHE_DIR as found) | $M_BUILD s | | | | |"
            echo "| outputs: the expected count every run, identical | $M_IDENTICAL | | | | $([ "$M_OUT_OK" = 1 ] && echo ok || echo MISSED) |"
            echo "| every input acknowledged once the job stopped (nothing left in its session) | $([ "$M_ACK_OK" = 1 ] && echo "yes, every run" || echo "NO (see the runs' \"left\")") | | | | $([ "$M_ACK_OK" = 1 ] && echo ok || echo MISSED) |"
            echo
            echo "Runs:"
            echo
            for row in "${M_RUN_LINES[@]}"; do echo "    $row"; done
        } >>"$RESULTS"
        stop_mqtt
        M_BROKER_PID=
    else
        echo "mqtt: rill build failed; the workload is not measured" >&2
        ALL_OK=0
        {
            echo
            echo "## mqtt"
            echo
            echo "not measured: \`rill build --release bench/mqtt_filter.yaml\` failed (see the script's stderr)"
        } >>"$RESULTS"
    fi
elif want mqtt; then
    echo "mqtt: skipped: $MQTT_SKIPPED" >&2
    {
        echo
        echo "## mqtt"
        echo
        echo "not measured: $MQTT_SKIPPED"
    } >>"$RESULTS"
fi

log "results (also in ${RESULTS#"$ROOT"/})"
cat "$RESULTS"

[ "$ALL_OK" = 1 ] || exit 1
