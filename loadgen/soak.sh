#!/usr/bin/env bash
# The soak of BENCHMARKS.md: one release server (embedded store, limits lifted) on core 0, loadgen on
# core 1 holding 1,000 connections in 10 rooms of 100 for SOAK_SECS (default 1,800) at a steady
# SOAK_RATE messages per second (default 100, i.e. 10,000 deliveries/s), while the server's RSS is
# sampled every 60 s. Prints the loadgen verdict (errors, lost and duplicated deliveries) and the RSS
# series, with the growth after the first five minutes.
#
#   loadgen/soak.sh                       # 30 minutes
#   SOAK_SECS=300 loadgen/soak.sh         # a shorter look
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${SOAK_SECS:-1800}
rate=${SOAK_RATE:-100}
cargo build --release -p server -p loadgen
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
out=${BENCH_OUT:-$target_dir/bench}
mkdir -p "$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$(mktemp -d)

env LEPTOS_SITE_ADDR="127.0.0.1:$port" DATA_DIR="$data" MONGODB_URI= \
  REGISTRATIONS_PER_IP_PER_HOUR=1000000 MESSAGES_PER_10S=1000000 WS_QUEUE_FRAMES=65536 \
  ROOM_ACTIONS_PER_10_MIN=1000000 CONNECTIONS_PER_ADDRESS=1000000 WEBSOCKETS_PER_USER=100000 \
  WEBSOCKETS_PER_ADDRESS=1000000 DEFAULT_ROOM= SHUTDOWN_GRACE_SECS=1 RUST_LOG=warn \
  taskset -c 0 "$target_dir/release/server" >"$data/server.log" 2>&1 &
server=$!
sampler=""
trap 'kill $server ${sampler:-} 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done

rss_log="$out/soak-rss.txt"
: >"$rss_log"
(
  minute=0
  while kill -0 "$server" 2>/dev/null; do
    kb=$(awk '/^VmRSS/ { print $2 }' "/proc/$server/status" 2>/dev/null || true)
    [ -n "$kb" ] && echo "$minute $kb" >>"$rss_log"
    sleep 60
    minute=$((minute + 1))
  done
) &
sampler=$!

taskset -c 1 "$target_dir/release/loadgen" --url "http://127.0.0.1:$port" --progress 0 \
  --server-pid "$server" --json "$out/soak.json" --users 1000 --rooms 10 --senders 100 \
  --rate "$rate" --warmup 5 --duration "$secs" --drain-timeout 60

python3 - "$out/soak.json" "$rss_log" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
t, v = d["traffic"], d["delivery"]
print(f"soak: {t['sent_per_sec']:.1f} msg/s sent, {t['delivered_per_sec']:.0f} deliveries/s, "
      f"p99 {t['latency']['p99_ms']:.1f} ms, lost {v['lost']}, duplicated {v['duplicated']}, "
      f"passed {d['passed']}")
series = [tuple(map(int, line.split())) for line in open(sys.argv[2]) if line.strip()]
print("RSS (MiB) per minute: " + ", ".join(f"{m}:{kb / 1024:.1f}" for m, kb in series))
after5 = [kb for m, kb in series if m >= 5]
if len(after5) >= 2:
    growth = (after5[-1] - after5[0]) / after5[0] * 100
    print(f"RSS growth after the first 5 minutes: {growth:+.1f} % "
          f"({after5[0] / 1024:.1f} -> {after5[-1] / 1024:.1f} MiB; peak {max(after5) / 1024:.1f})")
EOF
