#!/usr/bin/env bash
# How `rill check` scales with the size of a spec. Generates, under bench/out/scale/:
#   chain_N.yaml        a chain of N transforms t0 → t1 → … (filter + map each)
#   errors_N.yaml       N transforms, each with an unknown field and a typo'd input
#   sum.yaml            one map field that is a 3,000-term sum
#   and.yaml            one filter that is a 4,000-term `&&` chain
#   concat.yaml         one `concat` with 100,000 arguments
#   nested.yaml         5,000 nested parentheses (a diagnostic, not a crash)
# and times `rill check` on each (hyperfine when installed, else `time`).
#
#   bash bench/check_scale.sh [N]      N transforms, default 8000 (errors: 20000)
#   RILL=path/to/rill bash bench/check_scale.sh
#
# It builds `rill` in release mode unless RILL is given. No timing is asserted:
# tests/scale.rs checks the results on large inputs, this script only measures.
set -euo pipefail

N=${1:-8000}
ERRORS=${ERRORS:-20000}
case $N$ERRORS in '' | *[!0-9]*) echo "usage: [ERRORS=20000] bash bench/check_scale.sh [N]" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out/scale
mkdir -p "$OUT"
if [ -z "${RILL:-}" ]; then
    cargo build --release -p rill --manifest-path "$ROOT/Cargo.toml" >&2
    RILL=$ROOT/target/release/rill
fi

header() {
    cat <<EOF
name: scale
schemas:
  reading:
    device_id: string
    x: i64
    temperature: f64
sources:
  readings:
    type: file
    path: in.jsonl
    format: json
    schema: reading
EOF
}

chain() { # $1 = number of transforms
    header
    echo "transforms:"
    local prev=readings
    for ((i = 0; i < $1; i++)); do
        printf '  t%d:\n    input: %s\n    filter: x > %d\n    map: { device_id: device_id, x: x + 1, temperature: temperature }\n' \
            "$i" "$prev" "$i"
        prev=t$i
    done
    printf 'sinks:\n  out:\n    type: file\n    input: %s\n    path: out.jsonl\n    format: json\n' "$prev"
}

errors() { # $1 = number of erroneous transforms
    header
    echo "transforms:"
    for ((i = 0; i < $1; i++)); do
        printf '  e%d:\n    input: reading%s\n    filter: tempreature > 1.0\n' "$i" "$([ $((i % 2)) = 0 ] && echo s || echo z)"
    done
    printf 'sinks:\n  out:\n    type: file\n    input: readings\n    path: out.jsonl\n    format: json\n'
}

one_expr() { # $1 = option (filter or map field), $2 = expression text
    header
    printf 'transforms:\n  big:\n    input: readings\n    %s: %s\n' "$1" "$2"
    printf 'sinks:\n  out:\n    type: file\n    input: big\n    path: out.jsonl\n    format: json\n'
}

join() { # $1 = separator, $2 = term, $3 = count
    local s=$2
    for ((i = 1; i < $3; i++)); do s+="$1$2"; done
    printf '%s' "$s"
}

chain "$N" >"$OUT/chain_$N.yaml"
errors "$ERRORS" >"$OUT/errors_$ERRORS.yaml"
one_expr map "{ device_id: device_id, total: '$(join ' + ' x 3000)' }" >"$OUT/sum.yaml"
one_expr filter "'$(join ' && ' 'x > 0' 4000)'" >"$OUT/and.yaml"
one_expr map "{ all: 'concat($(join ', ' device_id 100000))' }" >"$OUT/concat.yaml"
one_expr filter "'$(printf '%.0s(' $(seq 5000))x > 0$(printf '%.0s)' $(seq 5000))'" >"$OUT/nested.yaml"

specs=("chain_$N" "errors_$ERRORS" sum and concat nested)
if command -v hyperfine >/dev/null; then
    cmds=()
    for s in "${specs[@]}"; do cmds+=("$RILL check $OUT/$s.yaml"); done
    hyperfine --ignore-failure --warmup 1 --runs 3 --output null "${cmds[@]}"
else
    for s in "${specs[@]}"; do
        printf '%-16s ' "$s"
        { /usr/bin/time -f "%es %MKB" "$RILL" check "$OUT/$s.yaml" 2>&1 >/dev/null || true; } | tail -1
    done
fi
