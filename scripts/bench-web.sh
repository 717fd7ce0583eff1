#!/usr/bin/env bash
# Throughput of the web adapters against bare axum, with wrk as an external load generator.
#
# Builds the server, the package xcore-bench-web, in release — without its `actix` feature for
# bare axum and xcore's axum and hyper adapters (as a host using only them builds it: actix
# turns on tracing's `log` feature), with it for the actix adapter —, then for each of ROUNDS
# interleaved rounds serves the same trivial route (GET /plugin/bench/hello) in every mode,
# the server pinned to core 0 and wrk to core 1 (`wrk -t2 -c50 -d10s`), and prints requests/s
# and the ratio to bare axum of the same round, then each mode's median ratio.
#
#   scripts/bench-web.sh            # 3 rounds of 10 s
#   ROUNDS=1 DURATION=5s MODES="axum-bare hyper" scripts/bench-web.sh
#   BENCH_METRICS=1 scripts/bench-web.sh   # xcore with its Prometheus metrics on
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
PORT=${PORT:-18080}
MODES=(${MODES:-axum-bare axum hyper actix})

if [[ " ${MODES[*]} " == *" actix "* ]]; then
    cargo build --release -p xcore-bench-web --features actix >&2
    cp target/release/xcore-bench-web target/release/xcore-bench-web-actix
fi
cargo build --release -p xcore-bench-web >&2
bin() { # mode → server binary
    if [ "$1" = actix ]; then echo target/release/xcore-bench-web-actix; else echo target/release/xcore-bench-web; fi
}
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }

rps() { # mode → requests/s
    local mode=$1 pid rate
    taskset -c 0 "$(bin "$mode")" "$mode" "127.0.0.1:$PORT" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$PORT/plugin/bench/hello" >/dev/null 2>&1 && break
        sleep 0.05
    done
    rate=$(taskset -c 1 wrk -t2 -c50 -d"$DURATION" "http://127.0.0.1:$PORT/plugin/bench/hello" |
        awk '/^Requests\/sec:/ { print $2 }')
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "${rate:-0}"
}

printf '%-6s %-10s %12s %8s\n' round mode 'req/s' ratio
RATIOS=$(mktemp)
trap 'rm -f "$RATIOS"' EXIT
for round in $(seq "$ROUNDS"); do
    base=
    for mode in "${MODES[@]}"; do
        rate=$(rps "$mode")
        [ -z "$base" ] && base=$rate
        ratio=$(awk -v r="$rate" -v b="$base" 'BEGIN { print (b > 0 ? 100 * r / b : 0) }')
        printf '%-6s %-10s %12.0f %7.1f%%\n' "$round" "$mode" "$rate" "$ratio"
        echo "$mode $ratio" >>"$RATIOS"
    done
done
# The median of each mode's per-round ratios: one slow or fast round moves it little.
echo
printf '%-10s %14s %s\n' mode 'median ratio' '(min-max)'
for mode in "${MODES[@]:1}"; do
    awk -v m="$mode" '$1 == m { print $2 }' "$RATIOS" | sort -n | awk -v m="$mode" '
        { v[NR] = $1 }
        END {
            med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%-10s %13.1f%% (%.1f-%.1f%%)\n", m, med, v[1], v[NR]
        }'
done
