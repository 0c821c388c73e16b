#!/usr/bin/env bash
# Installs the tools ML-CHAT needs, at pinned versions. Idempotent: a second run installs nothing.
#
#   scripts/setup.sh build   # what building the app needs: wasm target, cargo-leptos, wasm-bindgen, Tailwind, wasm-opt
#   scripts/setup.sh test    # the above, plus Chromium, Playwright and a MongoDB-wire test server (SecantusDB)
#
# Everything comes from crates.io, the npm registry, PyPI or Debian's apt: nothing is downloaded from
# vendor sites, so it works behind registry-only networks too.
set -euo pipefail

CARGO_LEPTOS_VERSION=0.3.10
SECANTUS_VERSION=0.7.0b3
MIN_NODE_MAJOR=20

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${MLCHAT_TOOLS_DIR:-$HOME/.cache/ml-chat}"
SECANTUS_VENV="$TOOLS_DIR/secantus-venv-$SECANTUS_VERSION"
mode="${1:-build}"

say() { printf 'setup: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "setup: $1 is required but not installed. $2" >&2; exit 1; }
}

# The wasm-bindgen CLI must match the library version in Cargo.lock exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$ROOT/Cargo.lock"
}

# `npm ci` only when package-lock.json changed since the last install in that directory.
npm_ci_once() {
  local dir="$1" stamp="$1/node_modules/.mlchat-lock-sha256" want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return
  fi
  say "npm ci in ${dir#"$ROOT"/}"
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  printf '%s' "$want" > "$stamp"
}

setup_build() {
  need cargo "Install Rust with rustup: https://rustup.rs"
  need node "Install Node.js $MIN_NODE_MAJOR or newer."
  need npm "Install npm (it comes with Node.js)."
  local node_major
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$node_major" -lt "$MIN_NODE_MAJOR" ]; then
    echo "setup: Node.js $MIN_NODE_MAJOR or newer is required (found $(node --version))." >&2
    exit 1
  fi

  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi

  if [ "$(cargo leptos --version 2>/dev/null || true)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
    say "installing cargo-leptos $CARGO_LEPTOS_VERSION (takes a while on a cold machine)"
    # no_downloads: use Tailwind, wasm-opt and wasm-bindgen from PATH instead of fetching binaries.
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads
  fi

  local wbg
  wbg="$(wasm_bindgen_version)"
  if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $wbg" ]; then
    say "installing wasm-bindgen-cli $wbg"
    # Not --locked: the CLI's own lock pins a crate the registry no longer has.
    cargo install wasm-bindgen-cli --version "$wbg"
  fi

  # Tailwind v4 CLI and binaryen's wasm-opt (Debian's binaryen is too old and breaks hydration).
  npm_ci_once "$ROOT"
}

setup_test() {
  setup_build

  if [ ! -x /usr/bin/chromium ]; then
    say "installing Chromium from apt"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi

  npm_ci_once "$ROOT/end2end"

  need python3 "Install Python 3.11 or newer (with venv)."
  if [ ! -x "$SECANTUS_VENV/bin/secantusd-py" ]; then
    say "installing SecantusDB $SECANTUS_VERSION (MongoDB-wire test server) into $SECANTUS_VENV"
    mkdir -p "$TOOLS_DIR"
    python3 -m venv "$SECANTUS_VENV"
    "$SECANTUS_VENV/bin/pip" install --quiet --disable-pip-version-check "SecantusDB==$SECANTUS_VERSION"
  fi
}

case "$mode" in
  build) setup_build ;;
  test) setup_test ;;
  secantus-path) echo "$SECANTUS_VENV/bin/secantusd-py" ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac
