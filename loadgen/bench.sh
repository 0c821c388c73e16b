#!/usr/bin/env bash
# Runs one scenario of BENCHMARKS.md three times, each against a freshly started release server (empty
# store, limits lifted), and prints every run and the median. Server on core 0, loadgen on core 1.
#
#   loadgen/bench.sh a            # (a) fan-out, as fast as acks allow — embedded store
#   loadgen/bench.sh b mongodb    # (b) 700 msg/s — MongoDB driver (MONGODB_URI, or a local SecantusDB)
#   loadgen/bench.sh c            # (c) idle connections, RSS per connection
#   loadgen/bench.sh d            # (d) connect storm: 5,000 logins + connects
#
# RUNS=1 for a single run; results (JSON per run) go to $BENCH_OUT (default target/bench); LOADGEN_ARGS
# adds options to the measured loadgen run (e.g. "--drain-timeout 120" for a slow MongoDB-wire server).
# SERVER_BIN and LOADGEN_BIN run other builds instead of building these (e.g. the previous main's,
# built in a worktree, to compare both on one day).
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${1:?usage: loadgen/bench.sh a|b|c|d [embedded|mongodb]}
store=${2:-embedded}
runs=${RUNS:-3}
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
if [[ -z "${SERVER_BIN:-}" || -z "${LOADGEN_BIN:-}" ]]; then
  cargo build --release -p server -p loadgen
fi
server_bin=${SERVER_BIN:-$target_dir/release/server}
loadgen_bin=${LOADGEN_BIN:-$target_dir/release/loadgen}
out=${BENCH_OUT:-$target_dir/bench}
mkdir -p "$out"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

mongo_uri=""
if [[ "$store" == mongodb ]]; then
  mongo_uri=${MONGODB_URI:-}
  if [[ -z "$mongo_uri" ]]; then
    # No MongoDB given: a SecantusDB (MongoDB wire protocol, in memory) shares core 1 with loadgen.
    mport=$(free_port)
    taskset -c 1 "$(scripts/setup.sh secantus-path)" --host 127.0.0.1 --port "$mport" \
      --storage-path :memory: --log-level WARNING >"$out/secantus.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$mport") 2>/dev/null && break; sleep 0.2; done
    mongo_uri="mongodb://127.0.0.1:$mport/?directConnection=true"
  fi
fi

server_pid=""
# start_server DATA_DIR PORT RUN: the release server on core 0, waits until ready.
start_server() {
  env LEPTOS_SITE_ADDR="127.0.0.1:$2" DATA_DIR="$1" \
    ${mongo_uri:+MONGODB_URI=$mongo_uri} ${mongo_uri:+MONGODB_DB=bench_${scenario}_$3_$$} \
    REGISTRATIONS_PER_IP_PER_HOUR=1000000 MESSAGES_PER_10S=1000000 WS_QUEUE_FRAMES=65536 \
    ROOM_ACTIONS_PER_10_MIN=1000000 CONNECTIONS_PER_ADDRESS=1000000 WEBSOCKETS_PER_USER=100000 WEBSOCKETS_PER_ADDRESS=1000000 \
    SHUTDOWN_GRACE_SECS=1 RUST_LOG=warn \
    taskset -c 0 "$server_bin" >>"$1/server.log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "bench: the server did not start" >&2
  cat "$1/server.log" >&2
  exit 1
}
stop_server() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }

for run in $(seq 1 "$runs"); do
  data=$(mktemp -d)
  port=$(free_port)
  json="$out/$scenario-$store-$run.json"
  lg=(taskset -c 1 "$loadgen_bin" --url "http://127.0.0.1:$port" --progress 0)
  # shellcheck disable=SC2206 # word splitting wanted: extra options
  extra=(${LOADGEN_ARGS:-})
  start_server "$data" "$port" "$run"
  case "$scenario" in
    a) "${lg[@]}" "${extra[@]}" --server-pid "$server_pid" --json "$json" --users 1000 --rooms 10 --senders 100 \
         --max-inflight 8 --warmup 5 --duration 20 ;;
    b) "${lg[@]}" "${extra[@]}" --server-pid "$server_pid" --json "$json" --users 1000 --rooms 10 --senders 100 \
         --rate 700 --warmup 5 --duration 20 ;;
    c) # Users first (their argon2 hashing is not idle-connection memory), then a fresh server
       # process on the same data directory holds the idle connections: sessions are reused by a
       # token refresh, so the RSS baseline is the idle server's own.
       "${lg[@]}" --users 2000 --rooms 200 --senders 0 --duration 1 --warmup 0 \
         --user-prefix idle --sessions "$data/sessions.json"
       stop_server
       start_server "$data" "$port" "$run"
       "${lg[@]}" --server-pid "$server_pid" --json "$json" --users 2000 --connections 19900 \
         --rooms 200 --senders 0 --warmup 5 --duration 30 --source-addrs 4 --settle 5 \
         --user-prefix idle --sessions "$data/sessions.json" ;;
    d) # Users first, then a fresh server: 5,000 logins (argon2) and websocket connects at once.
       "${lg[@]}" --users 5000 --rooms 50 --senders 0 --duration 1 --warmup 0 --user-prefix storm \
         --connect-concurrency 64
       stop_server
       start_server "$data" "$port" "$run"
       "${lg[@]}" --server-pid "$server_pid" --json "$json" --scenario connect-storm --users 5000 \
         --rooms 50 --user-prefix storm --auth login --connect-concurrency 64 --duration 10 ;;
    *) echo "bench: unknown scenario $scenario" >&2; exit 2 ;;
  esac
  stop_server
  rm -rf "$data"
done

python3 - "$out" "$scenario" "$store" "$runs" <<'EOF'
import json, statistics, sys
out, scenario, store, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = []
for run in range(1, runs + 1):
    d = json.load(open(f"{out}/{scenario}-{store}-{run}.json"))
    t, c, r, v = d["traffic"], d["connect"], d["resources"], d["delivery"]
    rows.append({
        "sent/s": t["sent_per_sec"], "deliveries/s": t["delivered_per_sec"],
        "p50 ms": t["latency"]["p50_ms"], "p90 ms": t["latency"]["p90_ms"],
        "p99 ms": t["latency"]["p99_ms"], "max ms": t["latency"]["max_ms"],
        "connections": c["established"], "failed": c["failed"], "connects/s": c["per_sec"],
        "ready p99 ms": c["ready"]["p99_ms"], "user total p99 ms": c["user_total"]["p99_ms"],
        "KB/conn": r["server_rss_per_connection_at_connect_kb"],
        "server CPU %": r["server_cpu_percent"], "loadgen CPU %": r["loadgen_cpu_percent"],
        "lost": v["lost"], "duplicated": v["duplicated"], "passed": d["passed"],
    })
for i, row in enumerate(rows, 1):
    print(f"run {i}: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
numeric = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
print("median: " + ", ".join(f"{k} {statistics.median(r[k] for r in rows):.1f}" for k in numeric))
print("all passed" if all(r["passed"] for r in rows) else "SOME RUNS FAILED")
EOF
