#!/usr/bin/env bash
# Pulsar: messages/s through bench/pulsar_filter.yaml (Pulsar topic → filter → Pulsar
# topic, generated) and bench/pulsar's hand-written `pulsar-relay` (the same job with the
# same client crate), on one local pulsar-lite. Every client (the jobs, the loader, the
# counter) reaches the broker through `pulsar-proxy` (bench/pulsar; the `pulsar` crate
# cannot read pulsar-lite's frames without it), the same for both jobs.
#
# Each run of a job gets a fresh broker database (the broker is restarted behind the
# proxy, so no topic, subscription or acknowledgement leaks from one run into the next),
# PULSAR_N readings published to bench_in by `pulsar-load` (every receipt awaited), then
# the job is started and `pulsar-count` reads bench_out; the time runs from the job's
# start until the counter has every expected output (it then waits 0.5 s for extras).
# The jobs alternate (generated, baseline) for RUNS rounds; best of RUNS each, and the
# median of the rounds' own ratios (the two runs of a round share the machine's mood). Every run
# must deliver exactly the expected messages, and in each round the two jobs' outputs
# (sorted) must be the same payloads.
#
#   bash bench/pulsar.sh
#   PULSAR_N=500000 RUNS=5 bash bench/pulsar.sh
#   RILL_PULSAR_LITE=/path/to/pulsar-lite ...   the broker (default: PyPI pulsar-lite's)
#   PULSAR_TIMEOUT=15 ...   seconds a run may take before it fails (default 600)
#
# Everything is built and written into bench/out/pulsar/ (git-ignored), the rill cache in
# bench/out/rill-cache unless RILL_CACHE_DIR is set.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PULSAR_N=${PULSAR_N:-200000}
RUNS=${RUNS:-3}
PULSAR_TIMEOUT=${PULSAR_TIMEOUT:-600}
for v in PULSAR_N RUNS PULSAR_TIMEOUT; do
    case ${!v} in '' | *[!0-9]*) echo "$v must be a number (got '${!v}')" >&2; exit 2 ;; esac
done
export RILL_CACHE_DIR=${RILL_CACHE_DIR:-$ROOT/bench/out/rill-cache}
DIR=$ROOT/bench/out/pulsar
mkdir -p "$DIR"
PULSAR_LITE=${RILL_PULSAR_LITE:-$(python3 -c 'from pulsar_lite.binary_finder import find_pulsar_lite_binary as f; print(f())' 2>/dev/null || true)}
if [ -z "$PULSAR_LITE" ] || [ ! -x "$PULSAR_LITE" ]; then
    echo "pulsar-lite is missing: run scripts/pulsar-setup (or set RILL_PULSAR_LITE)" >&2
    exit 2
fi

echo "building rill, the pipeline and bench/pulsar" >&2
cargo build -q -p rill --manifest-path "$ROOT/Cargo.toml"
"$ROOT/target/debug/rill" build "$ROOT/bench/pulsar_filter.yaml" --release -o "$DIR/generated" >"$DIR/build.log" 2>&1 || {
    cat "$DIR/build.log" >&2
    exit 1
}
cargo build -q --release --manifest-path "$ROOT/bench/pulsar/Cargo.toml" --target-dir "$DIR/target"
TOOLS=$DIR/target/release

CLK_TCK=$(getconf CLK_TCK)
now() { date +%s.%N; }
cpu_of() { awk -v hz="$CLK_TCK" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; } # user+sys s
hwm_of() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }                                            # peak RSS KiB
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# A free loopback port of five digits (the broker's and the proxy's must be of one length).
free_port() {
    python3 -c 'import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    if p >= 10000: print(p); break'
}
listening() { python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; }

BROKER_PORT=$(free_port)
PROXY_PORT=$(free_port)
while [ "$PROXY_PORT" = "$BROKER_PORT" ]; do PROXY_PORT=$(free_port); done
URL=pulsar://127.0.0.1:$PROXY_PORT
BROKER= PROXY= JOB=
cleanup() {
    for pid in $JOB $BROKER $PROXY; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

"$TOOLS/pulsar-proxy" --broker-port "$BROKER_PORT" --port "$PROXY_PORT" 2>"$DIR/proxy.log" &
PROXY=$!

# start_broker NAME: pulsar-lite on BROKER_PORT with an empty database.
start_broker() {
    # pulsar-lite keeps `<db-path>.rocksdb` and `<db-path>.metadata.json` beside the
    # path it is given: inside a folder of their own, so that all of it goes.
    rm -rf "$DIR/db" "$DIR"/db.rocksdb "$DIR"/db.metadata.json
    mkdir -p "$DIR/db"
    "$PULSAR_LITE" --addr "127.0.0.1:$BROKER_PORT" --db-path "$DIR/db/broker" --log-level warn >"$DIR/broker-$1.log" 2>&1 &
    BROKER=$!
    for _ in $(seq 200); do
        listening "$BROKER_PORT" && return 0
        sleep 0.05
    done
    echo "pulsar-lite did not listen on $BROKER_PORT" >&2
    exit 1
}
stop_broker() {
    kill "$BROKER" 2>/dev/null || true
    wait "$BROKER" 2>/dev/null || true
    BROKER=
}

# run NAME ROUND: one run on a fresh broker; sets TIME, CPU, RSS, BROKER_CPU, PROXY_CPU
# and leaves the outputs, sorted, in $DIR/out-NAME.txt.
EXPECT=
run() {
    local name=$1 round=$2 err=$DIR/$1.err load expect t0 line rc=0 broker0 proxy0
    start_broker "$name-$round"
    load=$("$TOOLS/pulsar-load" --url "$URL" --count "$PULSAR_N")
    expect=$(field expect_out "$load")
    if [ -n "$EXPECT" ] && [ "$expect" != "$EXPECT" ]; then
        echo "pulsar-load expected $expect outputs, earlier $EXPECT" >&2
        exit 1
    fi
    EXPECT=$expect
    broker0=$(cpu_of "$BROKER")
    proxy0=$(cpu_of "$PROXY")
    t0=$(now)
    case $name in
        generated) PULSAR_PORT=$PROXY_PORT "$DIR/generated" 2>"$err" & ;;
        baseline) "$TOOLS/pulsar-relay" --url "$URL" 2>"$err" & ;;
    esac
    JOB=$!
    line=$("$TOOLS/pulsar-count" --url "$URL" --expect "$EXPECT" --pid "$JOB" --timeout "$PULSAR_TIMEOUT" --dump "$DIR/out-$name.raw") || rc=$?
    if [ "$rc" = 0 ]; then
        CPU=$(cpu_of "$JOB")
        RSS=$(hwm_of "$JOB")
        BROKER_CPU=$(calc %.2f "$(cpu_of "$BROKER") - $broker0")
        PROXY_CPU=$(calc %.2f "$(cpu_of "$PROXY") - $proxy0")
    fi
    kill -TERM "$JOB" 2>/dev/null || true
    wait "$JOB" || rc=$?
    JOB=
    stop_broker
    if [ "$rc" != 0 ]; then
        echo "$name failed (exit $rc; counter: $line; expected $EXPECT); its stderr:" >&2
        tail -n 30 "$err" >&2
        exit 1
    fi
    TIME=$(calc %.3f "$(field done "$line") - $t0")
    # Messages the broker delivered to the counter again (same id), not counted.
    REDELIVERED=$(field redelivered "$line")
    LC_ALL=C sort "$DIR/out-$name.raw" >"$DIR/out-$name.txt"
}

declare -A BEST BEST_CPU MAX_RSS BROKER_BEST PROXY_BEST ROUND_TIME
ROUND_RATIOS=()
min_into() { # min_into ARRAY KEY VALUE
    local -n a=$1
    if [ -z "${a[$2]:-}" ] || awk -v x="$3" -v y="${a[$2]}" 'BEGIN { exit !(x < y) }'; then a[$2]=$3; fi
}
OK=1
echo "pulsar: $PULSAR_N readings per run, best of $RUNS, generated and baseline interleaved" >&2
for i in $(seq "$RUNS"); do
    for name in generated baseline; do
        run "$name" "$i"
        printf '  run %d %-9s %6.3f s  %7.0f msg/s  cpu %5s s  peak RSS %6s KiB  broker cpu %5s s  proxy cpu %5s s  redelivered %s\n' \
            "$i" "$name" "$TIME" "$(calc %.0f "$PULSAR_N / $TIME")" "$CPU" "$RSS" "$BROKER_CPU" "$PROXY_CPU" "$REDELIVERED" >&2
        min_into BEST "$name" "$TIME"
        min_into BEST_CPU "$name" "$CPU"
        min_into BROKER_BEST "$name" "$BROKER_CPU"
        min_into PROXY_BEST "$name" "$PROXY_CPU"
        if [ "$RSS" -gt "${MAX_RSS[$name]:-0}" ]; then MAX_RSS[$name]=$RSS; fi
        ROUND_TIME[$name]=$TIME
    done
    # The two runs of a round, side by side: the machine's drift cancels out.
    ROUND_RATIOS+=("$(calc %.3f "${ROUND_TIME[baseline]} / ${ROUND_TIME[generated]}")")
    if ! cmp -s "$DIR/out-generated.txt" "$DIR/out-baseline.txt"; then
        echo "round $i: the two jobs' outputs differ (sorted: $DIR/out-generated.txt, $DIR/out-baseline.txt)" >&2
        OK=0
    fi
    if [ "$(uniq "$DIR/out-generated.txt" | wc -l)" != "$EXPECT" ]; then
        echo "round $i: the outputs hold duplicates" >&2
        OK=0
    fi
done

G=${BEST[generated]} B=${BEST[baseline]}
echo >&2
echo "pulsar, $PULSAR_N in, $EXPECT out, best of $RUNS:" >&2
printf '  %-9s %6.3f s  %7.0f msg/s  cpu %5s s  peak RSS %5.1f MiB  broker cpu %5s s  proxy cpu %5s s\n' \
    generated "$G" "$(calc %.0f "$PULSAR_N / $G")" "${BEST_CPU[generated]}" "$(calc %.1f "${MAX_RSS[generated]} / 1024")" "${BROKER_BEST[generated]}" "${PROXY_BEST[generated]}" >&2
printf '  %-9s %6.3f s  %7.0f msg/s  cpu %5s s  peak RSS %5.1f MiB  broker cpu %5s s  proxy cpu %5s s\n' \
    baseline "$B" "$(calc %.0f "$PULSAR_N / $B")" "${BEST_CPU[baseline]}" "$(calc %.1f "${MAX_RSS[baseline]} / 1024")" "${BROKER_BEST[baseline]}" "${PROXY_BEST[baseline]}" >&2
echo "  ratio generated / baseline: throughput $(calc %.3f "$B / $G"), CPU $(calc %.3f "${BEST_CPU[baseline]} / ${BEST_CPU[generated]}")" >&2
MEDIAN=$(printf '%s\n' "${ROUND_RATIOS[@]}" | sort -n | awk '{ r[NR] = $1 } END { print (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }')
echo "  ratio per round: ${ROUND_RATIOS[*]} (median $MEDIAN)" >&2
echo "  outputs: $([ "$OK" = 1 ] && echo "the same $EXPECT payloads in every round" || echo DIFFER)" >&2
[ "$OK" = 1 ]
