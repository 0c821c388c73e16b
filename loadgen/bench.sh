#!/usr/bin/env bash
# Runs one scenario of BENCHMARKS.md three times, each against a freshly started release server (empty
# store, limits lifted), and prints every run and the median. Server on core 0, loadgen on core 1.
#
#   loadgen/bench.sh a            # (a) fan-out, as fast as acks allow — embedded store
#   loadgen/bench.sh b mongodb    # (b) 700 msg/s — MongoDB driver (MONGODB_URI, or a local SecantusDB)
#   loadgen/bench.sh c            # (c) idle connections, RSS per connection
#   loadgen/bench.sh d            # (d) 5,000 members of one room connecting at once (D_USERS, D_ROOMS)
#   loadgen/bench.sh p            # the room page: GET /rooms/<id> (50 messages, signed in), 64 clients (wrk)
#
# RUNS=1 for a single run; results (JSON per run) go to $BENCH_OUT (default target/bench), (d)'s users to
# $BENCH_SEEDS (default $BENCH_OUT, kept for the next run); LOADGEN_ARGS
# adds options to the measured loadgen run (e.g. "--drain-timeout 120" for a slow MongoDB-wire server).
# WATCH=N makes every measured connection watch the presence of N members of its room, as the browser's
# member list does (only for builds that know `watch`; older ones push every change to everyone).
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
# The server's CPU seconds so far (user + system) and its peak RSS in MB.
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
peak_mb() { awk '/^VmHWM/ { print $2 / 1024 }' "/proc/$1/status"; }
# extra JSON FILE KEY VALUE...: figures measured here rather than by loadgen, for the summary.
extra() { local f=$1; shift; python3 -c 'import json,sys; a=sys.argv[2:]; json.dump({a[i]: float(a[i+1]) for i in range(0, len(a), 2)}, open(sys.argv[1], "w"))' "$f" "$@"; }
d_users=${D_USERS:-5000}
d_rooms=${D_ROOMS:-1}

for run in $(seq 1 "$runs"); do
  data=$(mktemp -d)
  port=$(free_port)
  json="$out/$scenario-$store-$run.json"
  lg=(taskset -c 1 "$loadgen_bin" --url "http://127.0.0.1:$port" --progress 0)
  # shellcheck disable=SC2206 # word splitting wanted: extra options
  extra=(${LOADGEN_ARGS:-})
  # WATCH=N: every measured connection watches the presence of the first N members of its room, as a
  # browser does for the member list it shows (builds from before `watch` push everyone's instead).
  watch=(${WATCH:+--watch "$WATCH"})
  start_server "$data" "$port" "$run"
  case "$scenario" in
    a) "${lg[@]}" "${extra[@]}" "${watch[@]}" --server-pid "$server_pid" --json "$json" --users 1000 --rooms 10 --senders 100 \
         --max-inflight 8 --warmup 5 --duration 20 ;;
    b) "${lg[@]}" "${extra[@]}" "${watch[@]}" --server-pid "$server_pid" --json "$json" --users 1000 --rooms 10 --senders 100 \
         --rate 700 --warmup 5 --duration 20 ;;
    c) # Users first (their argon2 hashing is not idle-connection memory), then a fresh server
       # process on the same data directory holds the idle connections: sessions are reused by a
       # token refresh, so the RSS baseline is the idle server's own.
       "${lg[@]}" --users 2000 --rooms 200 --senders 0 --duration 1 --warmup 0 \
         --user-prefix idle --sessions "$data/sessions.json"
       stop_server
       start_server "$data" "$port" "$run"
       "${lg[@]}" "${watch[@]}" --server-pid "$server_pid" --json "$json" --users 2000 --connections 19900 \
         --rooms 200 --senders 0 --warmup 5 --duration 30 --source-addrs 4 --settle 5 \
         --user-prefix idle --sessions "$data/sessions.json" ;;
    d) # 5,000 members of one room, created once (argon2 for each registration is not what this
       # measures) and kept with their saved sessions as a seed; every run starts a fresh server on a
       # copy of it and everyone connects at once, signing in by token refresh as after a restart.
       seed="${BENCH_SEEDS:-$out}/d-seed-$store-$d_users-$d_rooms"
       if [[ "$store" == embedded && -f "$seed/sessions.json" ]]; then
         stop_server
         cp -a "$seed/." "$data/"
         start_server "$data" "$port" "$run"
       else
         "${lg[@]}" --users "$d_users" --rooms "$d_rooms" --senders 0 --duration 1 --warmup 0 \
           --user-prefix storm --sessions "$data/sessions.json" --connect-concurrency 64
         stop_server
         if [[ "$store" == embedded ]]; then rm -rf "$seed" && mkdir -p "$seed" && cp -a "$data/." "$seed/"; fi
         start_server "$data" "$port" "$run"
       fi
       cpu0=$(cpu_secs "$server_pid")
       "${lg[@]}" "${watch[@]}" --server-pid "$server_pid" --json "$json" --users "$d_users" --rooms "$d_rooms" \
         --senders 0 --duration 5 --warmup 0 --user-prefix storm --sessions "$data/sessions.json" \
         --connect-concurrency 256
       extra "$json.extra" "storm server CPU s" "$(awk -v a="$cpu0" -v b="$(cpu_secs "$server_pid")" 'BEGIN { print b - a }')" \
         "server peak RSS MB" "$(peak_mb "$server_pid")" ;;
    p) # The room page as a signed-in member sees it: 60 messages sent by loadgen (the page shows the
       # newest 50), then wrk with 64 connections for 20 s on the other core.
       command -v wrk >/dev/null || { echo "bench: p needs wrk (apt-get install wrk)" >&2; exit 2; }
       "${lg[@]}" --users 2 --rooms 1 --senders 1 --rate 20 --warmup 0 --duration 3 \
         --user-prefix page --sessions "$data/sessions.json"
       cookie=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["page-0"])' "$data/sessions.json")
       room=$(curl -sf -H "Cookie: $cookie" "http://127.0.0.1:$port/api/rooms/mine" |
         python3 -c 'import json,sys; print(next(r["id"] for r in json.load(sys.stdin) if r["name"] == "page-room-0"))')
       page="http://127.0.0.1:$port/rooms/$room"
       [[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$page")" == 200 ]] ||
         { echo "bench: $page does not answer 200 when signed in" >&2; exit 1; }
       cpu0=$(cpu_secs "$server_pid")
       taskset -c 1 wrk -t1 -c64 -d20s --latency -H "Cookie: $cookie" "$page" >"$json.wrk"
       cpu1=$(cpu_secs "$server_pid")
       python3 - "$json" "$json.wrk" "$cpu0" "$cpu1" <<'PY'
import json, re, sys
out, text, cpu0, cpu1 = sys.argv[1], open(sys.argv[2]).read(), float(sys.argv[3]), float(sys.argv[4])
def ms(v, unit): return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
lat = {p: ms(*re.search(rf"^\s*{p}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()) for p in ("50", "90", "99")}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
bad = int(errors.group(1)) if errors else 0
json.dump({"page": {"req_per_sec": rps, "p50_ms": lat["50"], "p90_ms": lat["90"], "p99_ms": lat["99"],
                    "non_2xx": bad, "server_cpu_percent": (cpu1 - cpu0) / 20 * 100}, "passed": bad == 0},
          open(out, "w"))
PY
       ;;
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
    path = f"{out}/{scenario}-{store}-{run}.json"
    d = json.load(open(path))
    if "page" in d:
        rows.append({**{k: v for k, v in d["page"].items()}, "passed": d["passed"]})
        continue
    t, c, r, v = d["traffic"], d["connect"], d["resources"], d["delivery"]
    rows.append({
        "sent/s": t["sent_per_sec"], "deliveries/s": t["delivered_per_sec"],
        "p50 ms": t["latency"]["p50_ms"], "p90 ms": t["latency"]["p90_ms"],
        "p99 ms": t["latency"]["p99_ms"], "p99.9 ms": t["latency"].get("p999_ms", float("nan")),
        "max ms": t["latency"]["max_ms"],
        "connections": c["established"], "failed": c["failed"], "connects/s": c["per_sec"],
        "ready p99 ms": c["ready"]["p99_ms"], "user total p99 ms": c["user_total"]["p99_ms"],
        "KB/conn": r["server_rss_per_connection_at_connect_kb"],
        "server CPU %": r["server_cpu_percent"], "loadgen CPU %": r["loadgen_cpu_percent"],
        "lost": v["lost"], "duplicated": v["duplicated"], "passed": d["passed"],
    })
    try:
        rows[-1].update(json.load(open(path + ".extra")))
    except FileNotFoundError:
        pass
for i, row in enumerate(rows, 1):
    print(f"run {i}: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
numeric = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
print("median: " + ", ".join(f"{k} {statistics.median(r[k] for r in rows):.1f}" for k in numeric))
print("all passed" if all(r["passed"] for r in rows) else "SOME RUNS FAILED")
EOF
