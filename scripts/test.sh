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

THROWAWAY_DBS=()

# With a MongoDB of the caller's (MONGODB_URI given), the databases this run made are dropped; a
# SecantusDB started here keeps them in memory only.
drop_throwaway_databases() {
  if [ -n "${EXTERNAL_MONGODB:-}" ] && [ "${#THROWAWAY_DBS[@]}" -gt 0 ]; then
    "$(dirname "$(scripts/setup.sh secantus-path)")/python" - "$MONGODB_URI" "${THROWAWAY_DBS[@]}" <<'PY' || true
import sys, pymongo
client = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)
for name in sys.argv[2:]:
    client.drop_database(name)
PY
  fi
}

cleanup() {
  drop_throwaway_databases
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

# Every build here compiles as `cargo leptos build` does (it adds `--cfg erase_components` in debug
# builds, and leptos reads LEPTOS_OUTPUT_NAME while compiling), so the lints, the tests and the
# browser tests' server share one dependency tree instead of compiling a second one. (cargo-leptos
# appends its flag to RUSTFLAGS: it runs without ours, below.)
export RUSTFLAGS="--cfg erase_components"
export LEPTOS_OUTPUT_NAME=mlchat

step "Formatting and lints"
lints=0
lint() { "$@"; lints=$((lints + 1)); }
lint cargo fmt --all -- --check
lint cargo clippy -p server --all-targets -- -D warnings
lint cargo clippy -p app --features ssr --all-targets -- -D warnings
lint cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings
lint cargo clippy -p loadgen --all-targets -- -D warnings
lint python3 scripts/module-cycles.py app/src server/src
SUMMARY+=("lints: $lints of 6 clean (fmt, clippy on server, app ssr, frontend wasm32, loadgen; no module cycles)")

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
  EXTERNAL_MONGODB=1
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

step "Load generator smoke runs (real server, real websocket clients), both stores"
for store in embedded mongodb; do
  log="$LOGS/loadgen-smoke-$store.log"
  # SecantusDB takes far fewer writes per second than redb: a lower fixed rate keeps the run short.
  STORE=$store MONGODB_DB="mlchat_smoke_$$" SMOKE_RATE=$([ "$store" = mongodb ] && echo 40 || echo 200) \
    loadgen/smoke.sh 2>&1 | tee "$log"
  grep -q "smoke: passed ($store store)" "$log" || { echo "error: the loadgen smoke run ($store) did not pass" >&2; exit 1; }
  runs=$(grep -c '^smoke: loadgen ' "$log")
  SUMMARY+=("loadgen smoke, $store store: $runs passed (fixed rate, as fast as acks allow, idle; 0 errors, every delivery exactly once)")
done
THROWAWAY_DBS+=("mlchat_smoke_$$")

step "Building the app for the browser tests"
# `--split`, as scripts/run.sh and the Dockerfile build: the app has lazy routes and lazy functions
# (app/src/routes.rs), and a build without it cannot load them (the page does not hydrate).
env -u RUSTFLAGS cargo leptos build --split
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
  # restart.spec.ts starts and restarts a server of its own, with this binary, site and store;
  # outage.spec.ts runs one on MongoDB through a proxy it cuts (both passes: it needs no store of theirs).
  (cd end2end && BASE_URL="http://127.0.0.1:$port" E2E_SERVER_BIN="$TARGET_DIR/debug/server" \
    E2E_SITE_ROOT="$ROOT/target/site" E2E_MONGODB_URI="$uri" E2E_RESTART_DB="mlchat_e2e_restart_$$" \
    E2E_OUTAGE_MONGODB_URI="$MONGODB_URI" E2E_OUTAGE_DB="mlchat_e2e_outage_$$" \
    npx playwright test) 2>&1 | tee "$e2e_log" || {
    # The failures come last: whoever reads only the end of this output still sees which test broke.
    echo "Playwright failed ($label). Server warnings and errors, then its last requests:"
    local plain_log; plain_log=$(sed 's/\x1b\[[0-9;]*m//g' "$server_log")
    # (grep finds nothing when every line is INFO: that must not end the report here)
    { grep -v ' INFO ' <<<"$plain_log" || true; } | tail -20
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
  local status=0
  wait "$server_pid" || status=$?
  if [ "$status" -ne 0 ]; then echo "error: the server exited with status $status after SIGTERM" >&2; exit 1; fi
  # The drain's own lines, exactly: "shutting down: ..." at INFO, and the final INFO "stopped" (the
  # warning "... still in use 5 s after the server stopped" must not count).
  local plain; plain=$(sed 's/\x1b\[[0-9;]*m//g' "$server_log")
  grep -Eq ' INFO shutting down: no new connections, draining$' <<<"$plain" &&
    grep -Eq ' INFO stopped$' <<<"$plain" || {
    echo "error: the server log does not show a drained shutdown:" >&2; tail -20 <<<"$plain" >&2; exit 1
  }
  if grep -q 'still in use' <<<"$plain"; then
    echo "error: the store was not released after the shutdown:" >&2; grep 'still in use' <<<"$plain" >&2; exit 1
  fi
  echo "the server ($label) drained and exited with status 0"
  DRAINED=$((DRAINED + 1))
}

DRAINED=0
step "Browser tests (Playwright in Chromium), embedded store"
browser_tests embedded ""
step "Browser tests (Playwright in Chromium), MongoDB store"
browser_tests mongodb "$MONGODB_URI"
THROWAWAY_DBS+=("mlchat_e2e_$$" "mlchat_e2e_restart_$$" "mlchat_e2e_outage_$$")
SUMMARY+=("shutdown: $DRAINED of 2 servers drained on SIGTERM and exited 0 (embedded, MongoDB)")

step "Summary"
printf '%s\n' "${SUMMARY[@]}"
total=$(printf '%s\n' "${SUMMARY[@]}" | grep -Eo '[0-9]+ passed' | awk '{ s += $1 } END { print s }')
echo "all: $total passed, 0 failed"
