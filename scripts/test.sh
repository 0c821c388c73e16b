#!/usr/bin/env bash
# Runs the whole ML-CHAT test suite: lints, unit tests, the store contract suite on both drivers,
# HTTP integration tests and the Playwright browser tests. Installs what it needs first.
#
# MongoDB: uses MONGODB_URI when set; otherwise starts a SecantusDB (MongoDB-wire server) on a free
# port for the run and stops it afterwards.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOGS="$(mktemp -d -t mlchat-test-XXXXXX)"
PIDS=()
SUMMARY=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    # SecantusDB takes a few seconds to exit after SIGTERM; do not leave it behind.
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_for_port() { # host port seconds what
  local deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
    if [ $SECONDS -ge "$deadline" ]; then echo "error: $4 did not start listening on $1:$2" >&2; exit 1; fi
    sleep 0.2
  done
}

# Runs a cargo test command, shows its output, and records "label: N passed".
cargo_tests() { # label args...
  local label="$1"; shift
  local log="$LOGS/$(echo "$label" | tr -c 'a-zA-Z0-9' '_').log"
  cargo test "$@" 2>&1 | tee "$log"
  local passed
  passed=$(grep -E '^test result: ok\.' "$log" | awk '{ sum += $4 } END { print sum + 0 }')
  if [ "$passed" -eq 0 ]; then echo "error: $label ran no tests" >&2; exit 1; fi
  SUMMARY+=("$label: $passed passed")
}

step "Installing tools (pinned, skipped when present)"
scripts/setup.sh test

step "Formatting and lints"
cargo fmt --all -- --check
cargo clippy -p server --all-targets -- -D warnings
cargo clippy -p app --features ssr --all-targets -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p loadgen --all-targets -- -D warnings
SUMMARY+=("lints: cargo fmt and clippy (ssr + hydrate) clean")

if [ -z "${MONGODB_URI:-}" ]; then
  step "Starting a SecantusDB (MongoDB wire protocol) for the MongoDB tests"
  port=$(free_port)
  "$(scripts/setup.sh secantus-path)" --host 127.0.0.1 --port "$port" --storage-path :memory: \
    --log-level WARNING >"$LOGS/secantus.log" 2>&1 &
  PIDS+=($!)
  wait_for_port 127.0.0.1 "$port" 60 SecantusDB
  export MONGODB_URI="mongodb://127.0.0.1:$port/?directConnection=true"
  echo "MONGODB_URI=$MONGODB_URI"
else
  echo "Using the MongoDB server given by MONGODB_URI"
fi

step "Unit tests"
cargo_tests "unit tests (app)" -p app --features ssr --lib
cargo_tests "unit tests (server)" -p server --lib
cargo_tests "unit tests (loadgen)" -p loadgen

step "Store contract suite: embedded driver (redb)"
cargo_tests "contract suite on the embedded driver" -p app --features ssr --test store_contract -- embedded

step "Store contract suite: MongoDB driver"
cargo_tests "contract suite on the MongoDB driver" -p app --features ssr --test store_contract -- mongo

step "HTTP integration tests (real server, both drivers)"
cargo_tests "integration tests" -p server --test api

step "Load generator smoke run (real server, real websocket clients)"
loadgen/smoke.sh 2>&1 | tee "$LOGS/loadgen-smoke.log"
grep -q "smoke: passed" "$LOGS/loadgen-smoke.log" || { echo "error: the loadgen smoke run did not pass" >&2; exit 1; }
SUMMARY+=("loadgen smoke: 3 runs (fixed rate, as fast as acks allow, idle), 0 errors, every delivery exactly once")

step "Building the app for the browser tests"
cargo leptos build
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

# Starts the built server on a free port (embedded store, or MongoDB when $2 is a URI), runs the whole
# Playwright suite against it, then checks that SIGTERM drains it. Access tokens live 5 seconds, so
# every browser test also exercises silent renewal. The fresh store's first admin is `e2e_admin`
# (end2end/tests/fixtures.ts signs in with it).
browser_tests() { # label mongodb_uri
  local label="$1" uri="$2" port data_dir server_log e2e_log server_pid
  port=$(free_port)
  data_dir="$LOGS/e2e-data-$label"
  server_log="$LOGS/e2e-server-$label.log"
  e2e_log="$LOGS/e2e-$label.log"
  LEPTOS_OUTPUT_NAME=mlchat LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
    LEPTOS_SITE_ADDR="127.0.0.1:$port" PUBLIC_ORIGIN="http://127.0.0.1:$port" DATA_DIR="$data_dir" \
    MONGODB_URI="$uri" MONGODB_DB="mlchat_e2e_$$" ACCESS_TOKEN_TTL_SECS=5 \
    REGISTRATIONS_PER_IP_PER_HOUR=100000 MESSAGES_PER_10S=200 \
    ADMIN_USERNAME=e2e_admin ADMIN_PASSWORD=velvet-orbit-cactus-91 RUST_LOG=info "$TARGET_DIR/debug/server" >"$server_log" 2>&1 &
  server_pid=$!
  PIDS+=("$server_pid")
  (cd end2end && BASE_URL="http://127.0.0.1:$port" npx playwright test) 2>&1 | tee "$e2e_log" || {
    # The failures come last: whoever reads only the end of this output still sees which test broke.
    echo "Playwright failed ($label). Server warnings and errors, then its last requests:"
    local plain_log; plain_log=$(sed 's/\x1b\[[0-9;]*m//g' "$server_log")
    grep -v ' INFO ' <<<"$plain_log" | tail -20
    tail -15 <<<"$plain_log" | cut -c1-200
    echo "Screenshots and traces of the failures: $ROOT/end2end/test-results"
    echo "Failed tests ($label store):"
    grep -E '^\s+✘' "$e2e_log" || true
    sed -n '/^  [0-9][0-9]*) /,$p' "$e2e_log" | grep -v '^\s*$' | head -60
    exit 1
  }
  SUMMARY+=("browser tests, $label store: $(grep -Eo '[0-9]+ passed' "$e2e_log" | tail -1) (Chromium)")

  kill -TERM "$server_pid"
  for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "error: the server did not exit within 10 s of SIGTERM" >&2; exit 1
  fi
  wait "$server_pid" || { echo "error: the server exited with status $? after SIGTERM" >&2; exit 1; }
  grep -q "shutting down" "$server_log" && grep -q "stopped" "$server_log" || {
    echo "error: the server log does not show a drained shutdown:" >&2; tail -20 "$server_log" >&2; exit 1
  }
  echo "the server ($label) drained and exited with status 0"
}

step "Browser tests (Playwright in Chromium), embedded store"
browser_tests embedded ""
step "Browser tests (Playwright in Chromium), MongoDB store"
browser_tests mongodb "$MONGODB_URI"
SUMMARY+=("shutdown: SIGTERM drains and exits 0 (both stores)")

step "Summary"
printf '%s\n' "${SUMMARY[@]}"
total=$(printf '%s\n' "${SUMMARY[@]}" | grep -Eo '[0-9]+ passed' | awk '{ s += $1 } END { print s }')
echo "all: $total passed, 0 failed"
