#!/usr/bin/env bash
# HTTP ingest: records/s through bench/http_ingest.yaml (HTTP source → filter → stdout,
# generated) and bench/http's hand-written `http-ingest` (the same job with the same
# parser crates), each answering 202 only once a request's records are written. The
# load is bounded: `http-load` (bench/http) sends CLIENTS × REQUESTS bodies of RECORDS
# JSON lines on loopback, sending again after a 503. Best of RUNS runs each, and the
# ratio generated / baseline. Each run also reads the server's CPU time (user + system,
# every thread, from /proc) over the load: CPU ns per record, the median of the runs.
#
#   bash bench/http.sh
#   CLIENTS=32 REQUESTS=50 RECORDS=100 RUNS=5 bash bench/http.sh
#
# Everything is built into bench/out/http/ (git-ignored), the rill cache in
# bench/out/rill-cache unless RILL_CACHE_DIR is set.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${CLIENTS:-8}
REQUESTS=${REQUESTS:-250}
RECORDS=${RECORDS:-1000}
RUNS=${RUNS:-3}
for v in CLIENTS REQUESTS RECORDS RUNS; do
    case ${!v} in '' | *[!0-9]*) echo "$v must be a number (got '${!v}')" >&2; exit 2 ;; esac
done
export RILL_CACHE_DIR=${RILL_CACHE_DIR:-$ROOT/bench/out/rill-cache}
DIR=$ROOT/bench/out/http
mkdir -p "$DIR"
cargo build -q -p rill --manifest-path "$ROOT/Cargo.toml"
"$ROOT/target/debug/rill" build "$ROOT/bench/http_ingest.yaml" --release -o "$DIR/generated" >"$DIR/build.log" 2>&1 || {
    cat "$DIR/build.log" >&2
    exit 1
}
cargo build -q --release --manifest-path "$ROOT/bench/http/Cargo.toml" --target-dir "$DIR/target"
TOOLS=$DIR/target/release

JOB=
cleanup() { if [ -n "$JOB" ]; then kill "$JOB" 2>/dev/null || true; fi; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# CPU time of process $1 so far, in ms (every thread, user + system).
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' "/proc/$1/stat"; }

# run NAME: one run; prints the load generator's records/s and the server's CPU ns per
# record.
run() {
    local port out
    port=$(free_port)
    out=$DIR/$1.out
    case $1 in
        generated) PORT=$port "$DIR/generated" >"$out" 2>"$DIR/$1.err" & ;;
        baseline) "$TOOLS/http-ingest" --port "$port" >"$out" 2>"$DIR/$1.err" & ;;
    esac
    JOB=$!
    # Listening once a connection is taken.
    for _ in $(seq 200); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.1)" 2>/dev/null; then break; fi
        sleep 0.05
    done
    local line cpu0 cpu1
    cpu0=$(cpu_ms "$JOB")
    line=$("$TOOLS/http-load" --port "$port" --clients "$CLIENTS" --requests "$REQUESTS" --records "$RECORDS")
    cpu1=$(cpu_ms "$JOB")
    kill -TERM "$JOB" 2>/dev/null || true
    wait "$JOB" 2>/dev/null || true
    JOB=
    # Every accepted record with value > 0.5 was written: 49 of each 100 ids.
    local expected=$((CLIENTS * REQUESTS * RECORDS / 100 * 49)) got
    got=$(wc -l <"$out")
    if [ "$got" -ne "$expected" ]; then
        echo "$1 wrote $got records, expected $expected" >&2
        exit 1
    fi
    echo "$(echo "$line" | sed -n 's/.*records_per_s=\([0-9]*\).*/\1/p') $(((cpu1 - cpu0) * 1000000 / (CLIENTS * REQUESTS * RECORDS)))"
}

# best NAME: RUNS runs; prints the best records/s and the median CPU ns per record.
best() {
    local name=$1 b=0 one r c i cpus=()
    for i in $(seq "$RUNS"); do
        one=$(run "$name")
        read -r r c <<<"$one"
        echo "  $name run $i: $r records/s, server CPU $c ns/record" >&2
        if [ "$r" -gt "$b" ]; then b=$r; fi
        cpus+=("$c")
    done
    echo "$b $(printf '%s\n' "${cpus[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p")"
}

echo "HTTP ingest, $CLIENTS clients × $REQUESTS requests × $RECORDS records, best of $RUNS" >&2
GEN=$(best generated)
BASE=$(best baseline)
read -r G GC <<<"$GEN"
read -r B BC <<<"$BASE"
python3 -c "print(f'generated {$G:,} records/s ({$GC} ns CPU/record), baseline {$B:,} records/s ({$BC} ns CPU/record), ratio {$G/$B:.2f}')"
