#!/usr/bin/env bash
# Page weight and time to interactive of a release build, on a slow link (a benchmark, not a test).
#
#   cargo leptos build --release --split     # the build to measure
#   scripts/page-weight.sh                   # measures target/release/server with target/site
#   scripts/page-weight.sh --server BIN --site DIR --label NAME   # another build (e.g. a copy of main's)
#
# 1. The sizes of the site's WebAssembly and JavaScript files: raw, gzip -9 and brotli (quality 11),
#    with the main bundle (<output>.wasm) apart from the lazily loaded chunks.
# 2. end2end/perf/page-load.mjs against the server started here (fresh data directory, a first admin
#    from ADMIN_USERNAME/ADMIN_PASSWORD): cold loads of /register and of a room with 50 messages, at
#    1.6 Mbit/s down, 750 kbit/s up and 150 ms of latency, 3 runs each; prints the medians.
# Environment: PERF_RUNS (3), PERF_MESSAGES (50), PERF_JSON (write the medians as JSON there).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
server="$TARGET_DIR/release/server"
site="$ROOT/target/site"
label=""
while [ $# -gt 0 ]; do
  case "$1" in
    --server) server="$2"; shift 2 ;;
    --site) site="$2"; shift 2 ;;
    --label) label="$2"; shift 2 ;;
    *) echo "usage: $0 [--server BIN] [--site DIR] [--label NAME]" >&2; exit 2 ;;
  esac
done
[ -x "$server" ] || { echo "error: no server binary at $server (cargo leptos build --release --split)" >&2; exit 1; }
[ -d "$site/pkg" ] || { echo "error: no site at $site (expected $site/pkg)" >&2; exit 1; }
[ -d end2end/node_modules/@playwright/test ] || { echo "error: run scripts/setup.sh test first (Playwright)" >&2; exit 1; }

echo "== ${label:+$label: }file sizes in $site/pkg (bytes)"
node - "$site/pkg" <<'JS'
const fs = require("fs"), path = require("path"), zlib = require("zlib");
const dir = process.argv[2];
const rows = [];
for (const name of fs.readdirSync(dir).sort()) {
  if (!/\.(wasm|js)$/.test(name)) continue;
  const raw = fs.readFileSync(path.join(dir, name));
  const gzip = zlib.gzipSync(raw, { level: 9 }).length;
  const br = zlib.brotliCompressSync(raw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length } }).length;
  rows.push({ name, raw: raw.length, gzip, br });
}
console.log("| file | raw | gzip -9 | brotli 11 |\n|---|---:|---:|---:|");
for (const r of rows) console.log(`| ${r.name} | ${r.raw} | ${r.gzip} | ${r.br} |`);
const sum = (f, k) => rows.filter(f).reduce((a, r) => a + r[k], 0);
// wasm-split names the lazily loaded files split_<name>.wasm and chunk_<n>.wasm (code two splits share).
const lazy = (r) => r.name.endsWith(".wasm") && /^(split_|chunk_)/.test(r.name);
const main = (r) => r.name.endsWith(".wasm") && !lazy(r);
console.log(`main bundle (.wasm): raw ${sum(main, "raw")}, gzip ${sum(main, "gzip")}, brotli ${sum(main, "br")}`);
console.log(`lazy files (.wasm, ${rows.filter(lazy).length}): raw ${sum(lazy, "raw")}, gzip ${sum(lazy, "gzip")}, brotli ${sum(lazy, "br")}`);
JS

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
data_dir="$(mktemp -d -t mlchat-perf-XXXXXX)"
password="perf-orbit-cactus-$RANDOM-91"
LEPTOS_OUTPUT_NAME=mlchat LEPTOS_SITE_ROOT="$site" LEPTOS_SITE_PKG_DIR=pkg LEPTOS_ENV=PROD \
  LEPTOS_SITE_ADDR="127.0.0.1:$port" PUBLIC_ORIGIN="http://127.0.0.1:$port" DATA_DIR="$data_dir" \
  ADMIN_USERNAME=perf_admin ADMIN_PASSWORD="$password" MESSAGES_PER_10S=200 RUST_LOG=warn \
  "$server" >"$data_dir/server.log" 2>&1 &
server_pid=$!
stop() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  rm -rf "$data_dir"
}
trap stop EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$data_dir/server.log" >&2; exit 1; }
  sleep 0.2
done

echo
echo "== ${label:+$label: }cold page loads at 1.6 Mbit/s down, 750 kbit/s up, 150 ms latency"
(cd end2end && BASE_URL="http://127.0.0.1:$port" PERF_USER=perf_admin PERF_PASSWORD="$password" \
  PERF_LABEL="${label:+$label: }" node perf/page-load.mjs)
