#!/usr/bin/env bash
# Edge builds, per target, with `--profile edge`, for the quickstart, the windowed bench
# job (bench/windowed.yaml) and the Kafka bench job (bench/kafka_filter.yaml):
#
#   size        the stripped binary, next to the hand-written baseline (bench/baseline:
#               the same JSON line reading and windows by hand) built for the same target
#               with the same size settings, as a ratio;
#   build       cross build time, cold (a fresh cargo target directory: the runtime and
#               every dependency, librdkafka and OpenSSL included, for that target) and
#               warm (the spec changed, so its hash compiled into the binary changes:
#               the pipeline crate recompiles and links again);
#
# and, on x86_64-unknown-linux-musl only, where no emulator distorts them (under qemu an
# ARM binary's memory and start time are mostly qemu's):
#
#   idle RSS    resident memory 1.5 s after start with no input arriving (the file
#               source reads a pipe nobody writes to; the Kafka job an empty topic);
#   peak RSS    on N bench readings (the windowed job; the baseline's too, as a ratio);
#   first out   time from exec to the first output line (the quickstart), median of 21.
#
# Cold builds take minutes each (the Kafka job's builds librdkafka and OpenSSL for the
# target), so by default they are measured for the quickstart on every target (the
# runtime and its dependencies; the windowed job needs the same) and for the Kafka job
# on COLD_KAFKA_TARGETS (default aarch64-unknown-linux-musl); COLD=0 skips them all.
#
# Usage: bash bench/edge.sh
#        TARGETS="aarch64-unknown-linux-musl" SPECS=pipelines/quickstart.yaml bash bench/edge.sh
# Needs what scripts/cross-setup installs, and tansu (scripts/kafka-setup) for the Kafka job.
# Writes bench/out/edge/results.md (results-$LABEL.md with LABEL set).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=${TARGETS:-"x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf aarch64-unknown-linux-gnu"}
SPECS=${SPECS:-"pipelines/quickstart.yaml bench/windowed.yaml bench/kafka_filter.yaml"}
COLD=${COLD:-1}
COLD_KAFKA_TARGETS=${COLD_KAFKA_TARGETS:-aarch64-unknown-linux-musl}
N=${N:-1000000}
OUT=bench/out/edge
RESULTS=$OUT/results${LABEL:+-$LABEL}.md
TANSU=${RILL_TANSU:-$HOME/.cache/rill/tansu/bin/tansu}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

cargo build --release -q -p rill
RILL=$PWD/target/release/rill
export RILL_CACHE_DIR=${RILL_CACHE_DIR:-$HOME/.cache/rill}

log() { printf '== %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
kb() { awk -v s="$(stat -c %s "$1")" 'BEGIN { printf "%.0f", s / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
stem() { basename "$1" .yaml; }

# build SPEC TARGET DEST [target dir]: rill build --target, timed; prints seconds.
build() {
    local start
    start=$(now)
    if [ -n "${4:-}" ]; then
        RILL_TARGET_DIR=$4 "$RILL" build "$1" --target "$2" --profile edge -o "$3" >"$OUT/build.log" 2>&1
    else
        env -u RILL_TARGET_DIR "$RILL" build "$1" --target "$2" --profile edge -o "$3" >"$OUT/build.log" 2>&1
    fi || { cat "$OUT/build.log" >&2; exit 1; }
    elapsed "$start" "$(now)"
}

# The baseline, for TARGET, with the edge profile's size settings; prints its path.
baseline() {
    local target=$1 triple=$1 extra=()
    [ "$target" = aarch64-unknown-linux-gnu ] && triple=$target.2.28
    local sysroot
    sysroot=$(rustc --print sysroot)
    local flags_var
    flags_var=CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$target")_RUSTFLAGS
    if [ ! -d "$sysroot/lib/rustlib/$target/lib" ]; then
        # As rill does where rustup has no std: built from source, linked with zig's crt.
        extra=(-Zbuild-std=std,panic_abort)
        export "$flags_var=-C link-self-contained=no"
    fi
    RUSTC_BOOTSTRAP=1 cargo zigbuild -q --manifest-path bench/baseline/Cargo.toml --release \
        --target "$triple" --target-dir "$OUT/baseline-target" "${extra[@]}" \
        --config 'profile.release.opt-level="s"' --config 'profile.release.lto="fat"' \
        --config 'profile.release.codegen-units=1' >&2
    echo "$OUT/baseline-target/$target/release/baseline"
}

{
    echo "# Edge builds ($(date -u +%Y-%m-%d), $(nproc) cores, $(rustc --version | cut -d' ' -f2), zig $(python3 -m ziglang version 2>/dev/null || zig version))"
    echo
    echo "Each binary built with \`rill build SPEC --target T --profile edge\`; sizes are the stripped binaries."
    echo "Baseline: bench/baseline (hand-written JSON readings → windows) with the same size settings."
    echo
    echo "| target | pipeline | size | baseline | size ratio | cold build | warm build |"
    echo "|---|---|---:|---:|---:|---:|---:|"
} >"$RESULTS"

for target in $TARGETS; do
    log "$target: baseline"
    base=$(baseline "$target")
    base_kb=$(kb "$base")
    for spec in $SPECS; do
        name=$(stem "$spec")
        bin=$OUT/$name-$target
        cold=-
        case $name in
        quickstart) want_cold=$COLD ;;
        kafka_filter) [[ " $COLD_KAFKA_TARGETS " == *" $target "* ]] && want_cold=$COLD || want_cold=0 ;;
        *) want_cold=0 ;;
        esac
        if [ "$want_cold" = 1 ]; then
            log "$target: $name, cold (fresh target directory)"
            rm -rf "$OUT/cold-target"
            cold=$(build "$spec" "$target" "$bin" "$OUT/cold-target")s
            rm -rf "$OUT/cold-target"
        fi
        # Warm: a copy of the spec, built once, then changed (a comment: a new spec hash).
        copy=$OUT/warm-$name.yaml
        cp "$spec" "$copy"
        build "$copy" "$target" "$bin" >/dev/null
        echo "# changed $(date +%s%N)" >>"$copy"
        log "$target: $name, warm"
        warm=$(build "$copy" "$target" "$bin")s
        size=$(kb "$bin")
        echo "| $target | $name | ${size} KiB | ${base_kb} KiB | $(ratio "$size" "$base_kb") | $cold | $warm |" >>"$RESULTS"
    done
done

# ------------------------------------------------ runtime figures, x86_64 musl
T=x86_64-unknown-linux-musl
if [[ " $TARGETS " == *" $T "* ]]; then
    log "$T: runtime figures"
    input=$OUT/input-$N.jsonl
    [ -s "$input" ] || "$(baseline "$T")" gen "$N" "$input"
    base=$(baseline "$T")
    {
        echo
        echo "On $T (native, no emulator):"
        echo
        echo "| pipeline | idle RSS | peak RSS on $N readings | baseline peak RSS | ratio | start to first output |"
        echo "|---|---:|---:|---:|---:|---:|"
    } >>"$RESULTS"
    rss_after() { # rss_after SECONDS CMD...: VmRSS (KiB) of CMD after SECONDS, stdin a silent pipe
        local pid rss
        sleep 30 | "${@:2}" >/dev/null 2>&1 &
        pid=$!
        sleep "$1"
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
        kill "$pid" 2>/dev/null || true
        pkill -P $$ sleep 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        echo "$rss"
    }
    peak() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
    first_output_ms() {
        python3 - "$1" <<'EOF'
import subprocess, sys, time, statistics
times = []
for _ in range(21):
    start = time.perf_counter()
    p = subprocess.Popen([sys.argv[1]], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdout.readline()
    times.append((time.perf_counter() - start) * 1000)
    p.stdout.read()
    p.wait()
print(f"{statistics.median(times):.1f} ms")
EOF
    }
    for spec in $SPECS; do
        name=$(stem "$spec")
        bin=$OUT/$name-$T
        case $name in
        quickstart)
            echo "| quickstart | (finite generator) | $(peak "$bin") KiB | | | $(first_output_ms "$bin") |" >>"$RESULTS"
            ;;
        windowed)
            idle=$(BENCH_IN=/dev/stdin BENCH_OUT=/dev/null rss_after 1.5 "$bin")
            p=$(BENCH_IN=$input BENCH_OUT=$OUT/windowed.out peak "$bin")
            b=$(peak "$base" window "$input" "$OUT/baseline.out")
            echo "| windowed | $idle KiB | $p KiB | $b KiB | $(ratio "$p" "$b") | |" >>"$RESULTS"
            ;;
        kafka_filter)
            if [ ! -x "$TANSU" ]; then
                echo "| kafka_filter | not measured: tansu missing (scripts/kafka-setup) | | | | |" >>"$RESULTS"
                continue
            fi
            port=$((20000 + RANDOM % 40000))
            mkdir -p "$OUT/tansu"
            (cd "$OUT/tansu" && RUST_LOG=warn exec "$TANSU" broker --listener-url "tcp://127.0.0.1:$port" \
                --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine memory://tansu/ \
                --cluster-id rill-edge) >"$OUT/tansu/broker.log" 2>&1 &
            broker=$!
            for _ in $(seq 1 100); do
                (cd "$OUT/tansu" && "$TANSU" topic list --broker "tcp://127.0.0.1:$port" >/dev/null 2>&1) && break
                sleep 0.1
            done
            (cd "$OUT/tansu" && "$TANSU" topic create --broker "tcp://127.0.0.1:$port" --partitions 3 bench_in >/dev/null)
            idle=$(KAFKA_BROKERS=127.0.0.1:$port rss_after 3 "$bin")
            kill "$broker"
            wait "$broker" 2>/dev/null || true
            echo "| kafka_filter | $idle KiB (empty topic, 3 s) | | | | |" >>"$RESULTS"
            ;;
        esac
    done
fi
cat "$RESULTS"
