#!/usr/bin/env bash
# Builds ML-CHAT and runs it at http://127.0.0.1:3000 on the embedded store (./data), no database
# server needed. Installs the build tools first (pinned; skipped when present).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh build
exec cargo leptos serve --release
