#!/usr/bin/env bash
# Runs the whole test suite against real Postgres and Redis servers:
#
#     bash scripts/test.sh            # extra arguments go to `cargo test`
#
# It starts a throwaway Postgres (initdb + pg_ctl) and a throwaway Redis on free loopback
# ports in a temporary directory, points the tests at them (XCORE_TEST_POSTGRES_URL,
# XCORE_TEST_REDIS_URL), requires them (XCORE_REQUIRE_SERVERS=1: a test that cannot reach a
# server fails instead of skipping), and stops them at the end. Missing servers are installed
# with apt-get when running as root (Debian packages `postgresql` and `redis-server`).
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -n "$(pg_bin_dir)" ] && [ -x "$(pg_bin_dir)/initdb" ] || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing ${missing[*]}: install them (e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
pg_bin="$(pg_bin_dir)"

free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

tmp="$(mktemp -d /tmp/xcore-test.XXXXXX)"
chmod 755 "$tmp"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  # Postgres refuses to run as root.
  chown postgres "$tmp"
  as_pg=(runuser -u postgres --)
fi
pg_started=""
redis_pid=""
cleanup() {
  if [ -n "$pg_started" ]; then
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/pg" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

pg_port="$(free_port)"
echo "== starting Postgres on 127.0.0.1:$pg_port"
"${as_pg[@]}" "$pg_bin/initdb" -D "$tmp/pg" -U postgres -A trust -E UTF8 --no-sync >"$tmp/initdb.log" 2>&1 \
  || { cat "$tmp/initdb.log" >&2; exit 1; }
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/pg" -w -t 60 -l "$tmp/pg/server.log" \
  -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $tmp -F -c max_connections=400" start >/dev/null \
  || { cat "$tmp/pg/server.log" >&2; exit 1; }
pg_started=1

redis_port="$(free_port)"
echo "== starting Redis on 127.0.0.1:$redis_port"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
  >"$tmp/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null; then break; fi
  sleep 0.1
done

export XCORE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port"
export XCORE_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
export XCORE_REQUIRE_SERVERS=1

echo "== cargo test --workspace --all-features"
cargo test --workspace --all-features "$@"
