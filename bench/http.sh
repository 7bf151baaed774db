#!/usr/bin/env bash
# HTTP ingest: records/s through bench/http_ingest.yaml (HTTP source → filter → stdout,
# generated) and bench/http's hand-written `http-ingest` (the same job with the same
# parser crates), each answering 202 only once a request's records are written. The
# load is bounded: `http-load` (bench/http) sends CLIENTS × REQUESTS bodies of RECORDS
# JSON lines on loopback, sending again after a 503. Best of RUNS runs each, and the
# ratio generated / baseline.
#
#   bash bench/http.sh
#   CLIENTS=32 REQUESTS=50 RECORDS=100 RUNS=5 bash bench/http.sh
#
# Everything is built into bench/out/http/ (git-ignored), the rill cache in
# bench/out/rill-cache unless RILL_CACHE_DIR is set.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${CLIENTS:-8}
REQUESTS=${REQUESTS:-50}
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

# run NAME: one run; prints the load generator's records/s.
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
    local line
    line=$("$TOOLS/http-load" --port "$port" --clients "$CLIENTS" --requests "$REQUESTS" --records "$RECORDS")
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
    echo "$line" | sed -n 's/.*records_per_s=\([0-9]*\).*/\1/p'
}

best() {
    local name=$1 b=0 r i
    for i in $(seq "$RUNS"); do
        r=$(run "$name")
        echo "  $name run $i: $r records/s" >&2
        if [ "$r" -gt "$b" ]; then b=$r; fi
    done
    echo "$b"
}

echo "HTTP ingest, $CLIENTS clients × $REQUESTS requests × $RECORDS records, best of $RUNS" >&2
G=$(best generated)
B=$(best baseline)
python3 -c "print(f'generated {$G:,} records/s, baseline {$B:,} records/s, ratio {$G/$B:.2f}')"
