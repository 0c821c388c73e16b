#!/usr/bin/env bash
# Builds the ML-CHAT container image and smoke-tests it: starts a container on a free loopback port,
# waits for /healthz, checks /readyz, the home page, the image's HEALTHCHECK and that it runs as a
# non-root user, prints the image size, and always removes the container.
#
#   scripts/docker-check.sh [extra build flags...]
#
# Uses podman when it is installed, else docker (CONTAINER_ENGINE=docker|podman overrides).
# Environment:
#   MLCHAT_IMAGE       tag to build (default ml-chat:check)
#   BASE_IMAGE         base image for both stages (default: the Dockerfile's debian:bookworm-slim; with
#                      podman and debootstrap, a local localhost/debian:bookworm-slim, made once)
#   HEALTH_TIMEOUT     seconds to wait for /healthz (default 60)
#   SKIP_BUILD=1       test an image that was built before
#
# With podman, builds and runs use `--runtime runc` (when installed) and explicit ulimits, and the host's
# CA bundle is mounted into build steps as an extra CA (for HTTPS behind an intercepting proxy).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

IMAGE="${MLCHAT_IMAGE:-ml-chat:check}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-60}"
LOCAL_BASE=localhost/debian:bookworm-slim
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
CONTAINER="mlchat-check-$$"
TMP_DIRS=()
CONTAINER_STARTED=0

say() { printf 'docker-check: %s\n' "$*"; }

fail() {
  printf 'docker-check: FAILED: %s\n' "$*" >&2
  if [ "$CONTAINER_STARTED" = 1 ]; then
    echo "---- container logs (last 50 lines) ----" >&2
    "$ENGINE" logs --tail 50 "$CONTAINER" >&2 2>&1 || true
    echo "----------------------------------------" >&2
  fi
  exit 1
}

cleanup() {
  local status=$?
  if [ "$CONTAINER_STARTED" = 1 ]; then
    "$ENGINE" rm -f "$CONTAINER" >/dev/null 2>&1 || true
  fi
  local dir
  for dir in "${TMP_DIRS[@]}"; do
    rm -rf "$dir"
  done
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------------
# Engine and its flags.
if [ -n "${CONTAINER_ENGINE:-}" ]; then
  ENGINE="$CONTAINER_ENGINE"
elif command -v podman >/dev/null 2>&1; then
  ENGINE=podman
elif command -v docker >/dev/null 2>&1; then
  ENGINE=docker
else
  fail "neither podman nor docker is installed"
fi
command -v "$ENGINE" >/dev/null 2>&1 || fail "$ENGINE is not installed"
command -v curl >/dev/null 2>&1 || fail "curl is required on the host to probe the container"

ENGINE_FLAGS=()     # for both build and run
BUILD_FLAGS=()
RUN_FLAGS=()
if [ "$ENGINE" = podman ]; then
  # crun fails on some kernels' cgroup modes and default rlimits can be refused: be explicit.
  if command -v runc >/dev/null 2>&1; then
    ENGINE_FLAGS+=(--runtime runc)
  fi
  ENGINE_FLAGS+=(--ulimit nofile=1024:4096 --ulimit nproc=1024:4096)
  # OCI-format images drop HEALTHCHECK; the docker format keeps it.
  BUILD_FLAGS+=(--format docker)
  if [ -r "$HOST_CA_BUNDLE" ]; then
    BUILD_FLAGS+=(-v "$HOST_CA_BUNDLE:/usr/local/share/ca-certificates/host-extra.crt:ro")
  fi
  # No systemd timer for the HEALTHCHECK (none may be reachable); it is run by hand below.
  RUN_FLAGS+=(--health-interval disable)
else
  export DOCKER_BUILDKIT=1
  # Check often so the wait for "healthy" below stays short.
  RUN_FLAGS+=(--health-interval 2s --health-start-period 5s)
fi

# ---------------------------------------------------------------------------------------------------
# Base image. docker pulls debian:bookworm-slim itself. With podman on a machine without registry
# access, a local base made with debootstrap stands in for it (created once, reused afterwards).
make_local_base() {
  local rootfs
  rootfs="$(mktemp -d)"
  TMP_DIRS+=("$rootfs")
  say "creating $LOCAL_BASE with debootstrap ($DEBIAN_SUITE, minbase)"
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; rm -f "$rootfs.log"; fail "debootstrap failed"; }
  rm -f "$rootfs.log"
  # Security and point-release updates, like the official image.
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $DEBIAN_SUITE main
deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main
deb $DEBIAN_SECURITY_MIRROR $DEBIAN_SUITE-security main
EOF
  # Slim it the way the official -slim images are: no docs (but copyrights), man pages or locales,
  # now and for packages installed later; no apt caches.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/groff/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/lintian/* "$rootfs"/usr/share/linda/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
  tar --numeric-owner -C "$rootfs" -c . \
    | podman import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        - "$LOCAL_BASE" >/dev/null \
    || fail "podman import of the debootstrap root file system failed"
  say "created $LOCAL_BASE"
}

BASE_ARGS=()
if [ -n "${BASE_IMAGE:-}" ]; then
  BASE_ARGS+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
elif [ "$ENGINE" = podman ] && podman image exists "$LOCAL_BASE"; then
  say "using the existing local base image $LOCAL_BASE"
  BASE_ARGS+=(--build-arg "BASE_IMAGE=$LOCAL_BASE")
elif [ "$ENGINE" = podman ] && command -v debootstrap >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  make_local_base
  BASE_ARGS+=(--build-arg "BASE_IMAGE=$LOCAL_BASE")
fi

# ---------------------------------------------------------------------------------------------------
# Build.
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "building $IMAGE with $ENGINE (the first build compiles the toolchain: expect 30-70 minutes on 2 cores)"
  build_started=$SECONDS
  "$ENGINE" build "${ENGINE_FLAGS[@]}" "${BUILD_FLAGS[@]}" "${BASE_ARGS[@]}" -t "$IMAGE" "$@" . \
    || fail "the image build failed (see the output above)"
  say "build took $((SECONDS - build_started)) s"
fi
"$ENGINE" image inspect "$IMAGE" >/dev/null 2>&1 || fail "image $IMAGE does not exist"

# ---------------------------------------------------------------------------------------------------
# Run on a free loopback port.
port_in_use() { (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

WORK_DIR="$(mktemp -d)"
TMP_DIRS+=("$WORK_DIR")
BODY_FILE="$WORK_DIR/body"
RUN_ERR="$WORK_DIR/run.err"

JWT_SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
export JWT_SECRET # passed by name (-e JWT_SECRET), so it shows up in no command line
# Production also needs a VAPID key for web push: the image's own `server vapid-key` makes one.
VAPID_PRIVATE_KEY="$("$ENGINE" run --rm "${ENGINE_FLAGS[@]}" "$IMAGE" /app/server vapid-key)"
export VAPID_PRIVATE_KEY
PORT=""
for _ in 1 2 3 4 5; do
  candidate=$((20000 + RANDOM % 40000))
  port_in_use "$candidate" && continue
  CONTAINER_STARTED=1
  if "$ENGINE" run -d --name "$CONTAINER" "${ENGINE_FLAGS[@]}" "${RUN_FLAGS[@]}" \
    -p "127.0.0.1:$candidate:3000" \
    -e JWT_SECRET -e VAPID_PRIVATE_KEY -e "PUBLIC_ORIGIN=http://127.0.0.1:$candidate" -e ALLOW_HTTP_ORIGIN=true \
    "$IMAGE" >/dev/null 2>"$RUN_ERR"; then
    # Without a systemd session podman cannot set up the health-check timer and says so; harmless.
    grep -v 'unable to get systemd connection' "$RUN_ERR" >&2 || true
    PORT="$candidate"
    break
  fi
  cat "$RUN_ERR" >&2
  # Most likely the port was taken in the meantime: remove the container and try another one.
  "$ENGINE" rm -f "$CONTAINER" >/dev/null 2>&1 || true
  CONTAINER_STARTED=0
done
[ -n "$PORT" ] || fail "could not start a container on a free loopback port"
BASE_URL="http://127.0.0.1:$PORT"
say "container $CONTAINER started, published on $BASE_URL"

running() { [ "$("$ENGINE" inspect -f '{{.State.Running}}' "$CONTAINER" 2>/dev/null)" = true ]; }

# GET URL -> prints "<status code>" and leaves the body in $BODY_FILE.
http_get() {
  curl -sS -o "$BODY_FILE" -w '%{http_code}' --max-time 5 "$BASE_URL$1" 2>/dev/null || true
}

say "waiting up to ${HEALTH_TIMEOUT}s for /healthz"
deadline=$((SECONDS + HEALTH_TIMEOUT))
status=""
while :; do
  running || fail "the container exited before becoming healthy"
  status="$(http_get /healthz)"
  [ "$status" = 200 ] && break
  [ "$SECONDS" -lt "$deadline" ] || fail "/healthz did not return 200 within ${HEALTH_TIMEOUT}s (last status: ${status:-none})"
  sleep 1
done
grep -q '"status":"ok"' "$BODY_FILE" || fail "/healthz body is not {\"status\":\"ok\"}: $(head -c 200 "$BODY_FILE")"
say "ok: GET /healthz -> 200 $(head -c 200 "$BODY_FILE")"

status="$(http_get /readyz)"
[ "$status" = 200 ] || fail "GET /readyz returned ${status:-no answer}, expected 200: $(head -c 200 "$BODY_FILE")"
say "ok: GET /readyz -> 200 $(head -c 200 "$BODY_FILE")"

status="$(http_get /)"
[ "$status" = 200 ] || fail "GET / returned ${status:-no answer}, expected 200"
grep -q 'Welcome to ML-CHAT' "$BODY_FILE" || fail "the home page does not contain \"Welcome to ML-CHAT\""
say "ok: GET / -> 200 and contains \"Welcome to ML-CHAT\""

# The site assets are served from the image (hydration needs them).
status="$(http_get /pkg/mlchat.js)"
[ "$status" = 200 ] || fail "GET /pkg/mlchat.js returned ${status:-no answer}, expected 200"
say "ok: GET /pkg/mlchat.js -> 200"

# A split build: the lazily loaded pages' files are listed in the manifest and served, from their
# precompressed copies (`--precompress`) to a browser that takes brotli.
status="$(http_get /pkg/__wasm_split_manifest.json)"
[ "$status" = 200 ] || fail "GET /pkg/__wasm_split_manifest.json returned ${status:-no answer}, expected 200"
chunk="$(grep -o '"chunk_[0-9]*"' "$BODY_FILE" | head -n 1 | tr -d '"')"
[ -n "$chunk" ] || fail "the split manifest names no lazy files: $(head -c 200 "$BODY_FILE")"
headers="$(curl -sS -o /dev/null -D - -H 'Accept-Encoding: br' --max-time 5 "$BASE_URL/pkg/$chunk.wasm" | tr -d '\r')"
printf '%s\n' "$headers" | head -n 1 | grep -q ' 200' \
  || fail "GET /pkg/$chunk.wasm did not return 200: $(printf '%s' "$headers" | head -n 1)"
encoding="$(printf '%s\n' "$headers" | awk -F': ' 'tolower($1) == "content-encoding" { print $2 }')"
[ "$encoding" = br ] || fail "GET /pkg/$chunk.wasm (Accept-Encoding: br) was not served brotli-compressed (${encoding:-none})"
say "ok: GET /pkg/__wasm_split_manifest.json -> 200; its $chunk.wasm -> 200, Content-Encoding: br"

# Runs as a non-root user.
uid="$("$ENGINE" exec "$CONTAINER" id -u)" || fail "could not run 'id' in the container"
if [ -z "$uid" ] || [ "$uid" = 0 ]; then
  fail "the container runs as root (uid ${uid:-unknown})"
fi
say "ok: the server runs as uid $uid ($("$ENGINE" exec "$CONTAINER" id -un 2>/dev/null || echo '?'))"
"$ENGINE" exec "$CONTAINER" test -w /data || fail "/data is not writable by uid $uid"
say "ok: /data is writable by uid $uid"

# The image's own HEALTHCHECK command.
if [ "$ENGINE" = podman ]; then
  podman healthcheck run "$CONTAINER" >/dev/null || fail "the image's HEALTHCHECK reports unhealthy"
else
  health=""
  deadline=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$deadline" ]; do
    health="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$CONTAINER")"
    [ "$health" = healthy ] && break
    sleep 1
  done
  [ "$health" = healthy ] || fail "the image's HEALTHCHECK did not report healthy (status: ${health:-none})"
fi
say "ok: the image's HEALTHCHECK passes"

size_bytes="$("$ENGINE" image inspect -f '{{.Size}}' "$IMAGE")"
say "image $IMAGE: $(awk -v b="$size_bytes" 'BEGIN { printf "%.1f MB (%d bytes)", b / 1000000, b }')"
say "all checks passed"
