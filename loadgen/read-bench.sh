#!/usr/bin/env bash
# loadgen's read benchmark, three runs per receive path, medians: the synthetic server on core 0,
# loadgen on core 1 (no ML-CHAT server involved; see `loadgen read-bench --help`).
#
#   loadgen/read-bench.sh                        # lean and old paths, as fast as the server writes
#   PATHS=lean RATE=2000000 loadgen/read-bench.sh  # what reading 2 M deliveries/s costs
#
# RUNS (3), SECONDS_MEASURED (10), CONNECTIONS (1000), RATE (0: as fast as it can), PATHS ("lean
# old"); LOADGEN_BIN runs another build. JSON per run in $BENCH_OUT (default target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-3}
paths=${PATHS:-lean old}
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
if [[ -z "${LOADGEN_BIN:-}" ]]; then
  cargo build --release -p loadgen
fi
loadgen_bin=${LOADGEN_BIN:-$target_dir/release/loadgen}
out=${BENCH_OUT:-$target_dir/bench}
mkdir -p "$out"

for path in $paths; do
  for run in $(seq 1 "$runs"); do
    echo "read-bench: $path, run $run (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    taskset -c 1 "$loadgen_bin" read-bench --path "$path" --connections "${CONNECTIONS:-1000}" \
      --seconds "${SECONDS_MEASURED:-10}" --warmup 3 --rate "${RATE:-0}" \
      --json "$out/read-bench-$path-$run.json" >/dev/null
  done
done

python3 - "$out" "$runs" $paths <<'EOF'
import json, statistics, sys
out, runs, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for path in paths:
    rows = [json.load(open(f"{out}/read-bench-{path}-{r}.json")) for r in range(1, runs + 1)]
    keys = ["deliveries_per_sec", "loadgen_cpu_percent", "deliveries_per_cpu_sec", "server_cpu_percent"]
    for i, r in enumerate(rows, 1):
        print(f"{path} run {i}: " + ", ".join(f"{k} {r[k]:.1f}" for k in keys)
              + f", lost {r['verdict']['lost']}, duplicated {r['verdict']['duplicated']}, passed {r['passed']}")
    print(f"{path} median: " + ", ".join(f"{k} {statistics.median(r[k] for r in rows):.1f}" for k in keys))
    print(f"{path}: " + ("all passed" if all(r["passed"] for r in rows) else "SOME RUNS FAILED"))
EOF
