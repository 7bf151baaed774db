#!/usr/bin/env bash
# Decoding alone: rill's generated JSON scanner against serde_json, sonic-rs and
# simd-json on the windowed benchmark's readings (~95-byte lines), each building the
# record the job reads. Which SIMD parser suits records this small is measured here,
# not assumed (bench/README.md, "Decoders on small records").
#
#   bash bench/decoders.sh [N]     N readings (default 5000000; generated once, shared
#                                  with `WORKLOAD=windowed bash bench/run.sh`)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000000}
OUT=bench/out
INPUT=$OUT/input-window-$N.jsonl
mkdir -p "$OUT/decoders"
if [ ! -s "$INPUT" ]; then
    cargo build --release --quiet --manifest-path bench/baseline/Cargo.toml --target-dir "$OUT/baseline-target"
    "$OUT/baseline-target/release/baseline" gen-window "$N" "$INPUT.tmp"
    mv "$INPUT.tmp" "$INPUT"
fi
cargo build --release --quiet -p rill
# The record type and its scanner, as the windowed pipeline's binary has them.
./target/release/rill emit bench/windowed.yaml |
    awk '/^\/\/\/ Record type: schema `reading`/ { keep = 1 } /^impl WriteJson for/ { keep = 0 } keep' \
        > "$OUT/decoders/record.rs"
grep -q 'impl ScanJson for Reading' "$OUT/decoders/record.rs" || {
    echo "decoders.sh: no ScanJson impl for Reading in rill emit's output" >&2
    exit 1
}
RILL_GENERATED_RECORD="$PWD/$OUT/decoders/record.rs" cargo run --release --quiet \
    --manifest-path bench/decoders/Cargo.toml --target-dir "$OUT/decoders/target" -- "$INPUT"
