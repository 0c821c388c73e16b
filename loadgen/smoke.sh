#!/usr/bin/env bash
# Smoke test under a little load, for CI: starts the server (its own port and data directory, limits
# lifted), then runs loadgen three times — a fixed rate, as fast as acks allow, idle connections — and
# fails if any run reports an error, a failed connect, or a lost or duplicated delivery. About 15 s
# after the build.
#
#   loadgen/smoke.sh                      # debug build, embedded store
#   STORE=mongodb loadgen/smoke.sh        # on the MongoDB of MONGODB_URI, in a throwaway database
#   PROFILE=release loadgen/smoke.sh      # release build
#   NO_BUILD=1 PORT=39100 OUT_DIR=target loadgen/smoke.sh   # fixed port; keeps loadgen-smoke.json
#
# The store is chosen here, never inherited: STORE=embedded (the default) ignores any MONGODB_URI in
# the environment; STORE=mongodb needs MONGODB_URI and uses the database MONGODB_DB (default
# mlchat_smoke_<pid>), which the caller drops afterwards (scripts/test.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."

store=${STORE:-embedded}
case "$store" in
  embedded) unset MONGODB_URI MONGODB_DB ;;
  mongodb)
    : "${MONGODB_URI:?STORE=mongodb needs MONGODB_URI}"
    export MONGODB_DB=${MONGODB_DB:-mlchat_smoke_$$}
    ;;
  *) echo "smoke: STORE must be embedded or mongodb" >&2; exit 2 ;;
esac
# Messages per second of the fixed-rate run (a MongoDB-wire test server is much slower than redb).
rate=${SMOKE_RATE:-200}

profile=${PROFILE:-debug}
port=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
# Honour CARGO_TARGET_DIR (CI keeps build artifacts outside the clone).
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
if [[ -z "${NO_BUILD:-}" ]]; then
  if [[ "$profile" == release ]]; then
    cargo build --release -p server -p loadgen
  else
    cargo build -p server -p loadgen
  fi
fi

data=$(mktemp -d)
LEPTOS_SITE_ADDR="127.0.0.1:$port" DATA_DIR="$data" \
  REGISTRATIONS_PER_IP_PER_HOUR=1000000 MESSAGES_PER_10S=1000000 WS_QUEUE_FRAMES=65536 \
  ROOM_ACTIONS_PER_10_MIN=1000000 CONNECTIONS_PER_ADDRESS=1000000 WEBSOCKETS_PER_USER=100000 WEBSOCKETS_PER_ADDRESS=1000000 \
  SHUTDOWN_GRACE_SECS=1 RUST_LOG=warn \
  "$target_dir/$profile/server" >"$data/server.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT

ready=""
for _ in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
    ready=1
    break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
if [[ -z "$ready" ]]; then
  echo "smoke: the server did not become ready on port $port" >&2
  cat "$data/server.log" >&2
  exit 1
fi

lg=("$target_dir/$profile/loadgen" --url "http://127.0.0.1:$port" --server-pid "$pid" --progress 0
  --user-prefix smoke)
run() {
  echo "smoke: loadgen $*" >&2
  if ! "${lg[@]}" "$@"; then
    echo "smoke: FAILED: loadgen $*" >&2
    tail -n 50 "$data/server.log" >&2
    exit 1
  fi
}

# 20 users in 2 rooms, 5 senders at $rate msg/s in total: every message to 10 connections.
echo "smoke: store $store" >&2
run --users 20 --rooms 2 --senders 5 --rate "$rate" --warmup 1 --duration 3 \
  --json "${OUT_DIR:-$data}/loadgen-smoke.json"
# The same users (logged in this time), as fast as acks allow with 4 in flight per sender.
run --users 20 --rooms 2 --senders 5 --max-inflight 4 --warmup 1 --duration 3 --auth login
# 40 idle connections (2 per user) from 2 source addresses, heartbeats only.
run --users 20 --connections 40 --rooms 2 --senders 0 --warmup 0 --duration 2 --source-addrs 2 --auth login
# 60 password hashes above (20 registrations, 40 logins) of 19 MiB each: the server must have given that
# memory back (it once kept ~8 MB per hash; see server/src/memory.rs).
rss_mb=$(awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$pid/status")
echo "smoke: server RSS after the runs: $rss_mb MB (limit ${MAX_SERVER_RSS_MB:=200} MB)" >&2
if (( rss_mb > MAX_SERVER_RSS_MB )); then
  echo "smoke: FAILED: the server holds $rss_mb MB after the runs" >&2
  exit 1
fi
echo "smoke: passed ($store store)" >&2
