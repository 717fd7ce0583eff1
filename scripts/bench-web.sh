#!/usr/bin/env bash
# Throughput of the web adapters against bare axum, with wrk as an external load generator.
#
# Builds examples/bench_server in release, then for each of ROUNDS interleaved rounds serves the
# same trivial route (GET /plugin/bench/hello) with bare axum, xcore's axum, hyper and actix
# adapters, the server pinned to core 0 and wrk to core 1 (`wrk -t2 -c50 -d10s`), and prints
# requests/s and the ratio to bare axum of the same round.
#
#   scripts/bench-web.sh            # 3 rounds of 10 s
#   ROUNDS=1 DURATION=5s scripts/bench-web.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
PORT=${PORT:-18080}
MODES=(${MODES:-axum-bare axum hyper actix})

cargo build --release --example bench_server >&2
BIN=target/release/examples/bench_server
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }

rps() { # mode → requests/s
    local mode=$1 pid rate
    taskset -c 0 "$BIN" "$mode" "127.0.0.1:$PORT" >/dev/null 2>&1 &
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
for round in $(seq "$ROUNDS"); do
    base=
    for mode in "${MODES[@]}"; do
        rate=$(rps "$mode")
        [ -z "$base" ] && base=$rate
        printf '%-6s %-10s %12.0f %7.1f%%\n' "$round" "$mode" "$rate" \
            "$(awk -v r="$rate" -v b="$base" 'BEGIN { print (b > 0 ? 100 * r / b : 0) }')"
    done
done
