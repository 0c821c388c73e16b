#!/usr/bin/env bash
# Builds ML-CHAT and runs it at http://127.0.0.1:3000 on the embedded store (./data), no database
# server needed. Installs the build tools first (pinned; skipped when present).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh build
# `--split` (required: the app has lazy routes and functions, which a build without it cannot load):
# the pages off the everyday path (app/src/routes.rs) and the live connection are separate WebAssembly
# files, fetched when first needed. The Dockerfile and scripts/test.sh build the same way.
# `--precompress`: brotli 11 and gzip copies of the site's files, which the server sends as they are
# (its own on-the-fly brotli is ~25 % bigger: 0.8 s more for the main bundle at 1.6 Mbit/s).
exec cargo leptos serve --release --split --precompress
