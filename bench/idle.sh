#!/usr/bin/env bash
# What an idle pipeline costs: CPU time (utime + stime of /proc/<pid>/stat, every thread)
# and wake-ups (voluntary + involuntary context switches of /proc/<pid>/task/*/status)
# over IDLE_SECS seconds (default 10) with no input arriving, for
#   stdin   tests/pipelines/idle_stdin.yaml, stdin held open by a writer that is silent
#   follow  tests/pipelines/follow_file.yaml, a followed file at its end
#   mqtt    tests/pipelines/mqtt_relay.yaml, subscribed on a private, quiet mosquitto
#           (skipped when mosquitto is not installed)
#
#   bash bench/idle.sh                          this tree's rill (built with cargo)
#   RILL=/path/to/rill LABEL=before bash bench/idle.sh   another rill: before/after
#   IDLE_SECS=30 bash bench/idle.sh
#
# Binaries are built with --release into bench/out/idle/<LABEL>/ (git-ignored), with the
# rill cache in bench/out/rill-cache unless RILL_CACHE_DIR is set.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IDLE_SECS=${IDLE_SECS:-10}
case $IDLE_SECS in '' | *[!0-9]*) echo "IDLE_SECS must be a number (got '$IDLE_SECS')" >&2; exit 2 ;; esac
LABEL=${LABEL:-current}
export RILL_CACHE_DIR=${RILL_CACHE_DIR:-$ROOT/bench/out/rill-cache}
if [ -z "${RILL:-}" ]; then
    cargo build -q -p rill --manifest-path "$ROOT/Cargo.toml"
    RILL=$ROOT/target/debug/rill
fi
DIR=$ROOT/bench/out/idle/$LABEL
rm -rf "$DIR"
mkdir -p "$DIR"
TICK=$(getconf CLK_TCK)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

build() {
    "$RILL" build "$ROOT/tests/pipelines/$1.yaml" --release -o "$DIR/$1" >"$DIR/build.log" 2>&1 || {
        cat "$DIR/build.log" >&2
        exit 1
    }
}

# ticks PID: utime + stime of every thread, in clock ticks (fields 14 and 15; the
# command name, field 2, is cut off first as it may hold spaces).
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# switches PID: context switches of every thread so far.
switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}

# measure NAME PID: waits a second for the start to settle, then prints one row.
measure() {
    local t0 s0 t1 s1
    sleep 1
    t0=$(ticks "$2")
    s0=$(switches "$2")
    sleep "$IDLE_SECS"
    t1=$(ticks "$2")
    s1=$(switches "$2")
    printf '| %-7s | %7d | %9d |\n' "$1" $(((t1 - t0) * 1000 / TICK)) $((s1 - s0))
}

# stop PID: SIGTERM, and the exit status must be 0.
stop() {
    kill -TERM "$1"
    if ! wait "$1"; then echo "the pipeline $1 did not exit cleanly" >&2; exit 1; fi
}

build idle_stdin
build follow_file
MOSQUITTO=${RILL_MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
HAVE_MQTT=
if [ -x "$MOSQUITTO" ] && command -v mosquitto_pub >/dev/null; then
    HAVE_MQTT=1
    build mqtt_relay
fi

echo "idle for $IDLE_SECS s, rill $RILL ($LABEL)"
echo "| input   | CPU ms  | wake-ups  |"
echo "|---------|---------|-----------|"

# stdin: a FIFO whose writer (this shell) stays open and silent.
mkfifo "$DIR/stdin.fifo"
OUT=$DIR/stdin.out "$DIR/idle_stdin" <"$DIR/stdin.fifo" 2>"$DIR/stdin.log" &
pid=$!
PIDS+=("$pid")
exec 3>"$DIR/stdin.fifo"
measure stdin "$pid"
stop "$pid"
exec 3>&-

# follow: one line read, then nothing appended.
echo '{"id":1,"kind":"click"}' >"$DIR/events.jsonl"
EVENTS=$DIR/events.jsonl OUT=$DIR/clicks.jsonl "$DIR/follow_file" 2>"$DIR/follow.log" &
pid=$!
PIDS+=("$pid")
measure follow "$pid"
stop "$pid"

if [ -n "$HAVE_MQTT" ]; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nuser %s\n' "$port" "$(id -un)" >"$DIR/mosquitto.conf"
    "$MOSQUITTO" -c "$DIR/mosquitto.conf" 2>"$DIR/mosquitto.log" &
    PIDS+=("$!")
    for _ in $(seq 1 100); do
        if mosquitto_pub -p "$port" -t idle/ping -n 2>/dev/null; then break; fi
        sleep 0.1
    done
    MQTT_URL=mqtt://127.0.0.1:$port MQTT_CLIENT_ID=idle-bench "$DIR/mqtt_relay" 2>"$DIR/mqtt.log" &
    pid=$!
    PIDS+=("$pid")
    measure mqtt "$pid"
    stop "$pid"
else
    echo "| mqtt    | skipped: mosquitto and mosquitto_pub are not installed |"
fi
