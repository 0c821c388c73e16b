#!/usr/bin/env bash
# Two containers of the ML-CHAT image on one MongoDB-wire server (SecantusDB, or MONGODB_URI), checked
# end to end in Chromium: a room made on one instance is used live from the other (invitation, messages,
# typing, presence).
#
#   scripts/scale-check.sh            # uses the image ml-chat:check (build it with scripts/docker-check.sh)
#
# Environment: MLCHAT_IMAGE (default ml-chat:check), MONGODB_URI (default: a SecantusDB started here),
# CONTAINER_ENGINE (default podman, else docker). The containers use the host network so they reach a
# database on the host's loopback.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

IMAGE="${MLCHAT_IMAGE:-ml-chat:check}"
ENGINE="${CONTAINER_ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}"
NAMES=()
PIDS=()
say() { printf 'scale-check: %s\n' "$*"; }
cleanup() {
  local status=$? name pid
  for name in "${NAMES[@]}"; do
    if [ "$status" != 0 ]; then
      echo "---- logs of $name ----" >&2; "$ENGINE" logs --tail 30 "$name" >&2 2>&1 || true
    fi
    "$ENGINE" rm -f "$name" >/dev/null 2>&1 || true
  done
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  exit "$status"
}
trap cleanup EXIT

FLAGS=()
if [ "$ENGINE" = podman ]; then
  command -v runc >/dev/null && FLAGS+=(--runtime runc)
  FLAGS+=(--ulimit nofile=1024:4096 --ulimit nproc=1024:4096 --health-interval disable)
fi
"$ENGINE" image inspect "$IMAGE" >/dev/null 2>&1 || { say "no image $IMAGE: run scripts/docker-check.sh first"; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ready() { # url seconds
  local deadline=$((SECONDS + $2))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1/readyz" || true)" = 200 ]; do
    [ "$SECONDS" -lt "$deadline" ] || { say "$1 did not become ready"; exit 1; }
    sleep 0.5
  done
}

if [ -z "${MONGODB_URI:-}" ]; then
  db_port=$(free_port)
  "$(scripts/setup.sh secantus-path)" --host 127.0.0.1 --port "$db_port" --storage-path :memory: \
    --log-level WARNING >/dev/null 2>&1 &
  PIDS+=($!)
  MONGODB_URI="mongodb://127.0.0.1:$db_port/?directConnection=true"
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$db_port") 2>/dev/null && break; sleep 0.2; done
  say "SecantusDB on port $db_port"
fi
export MONGODB_URI
JWT_SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
export JWT_SECRET
# Both instances push with one VAPID key, made by the image itself.
VAPID_PRIVATE_KEY="$("$ENGINE" run --rm "${FLAGS[@]}" "$IMAGE" /app/server vapid-key)"
export VAPID_PRIVATE_KEY

URLS=()
for instance in a b; do
  port=$(free_port)
  name="mlchat-scale-$instance-$$"
  NAMES+=("$name")
  "$ENGINE" run -d --name "$name" "${FLAGS[@]}" --network host \
    -e PORT="$port" -e "LEPTOS_SITE_ADDR=127.0.0.1:$port" \
    -e "PUBLIC_ORIGIN=http://127.0.0.1:$port" -e JWT_SECRET -e VAPID_PRIVATE_KEY -e MONGODB_URI \
    -e "MONGODB_DB=mlchat_scale_$$" -e REGISTRATIONS_PER_IP_PER_HOUR=1000 \
    "$IMAGE" >/dev/null 2> >(grep -v 'unable to get systemd connection' >&2)
  URLS+=("http://127.0.0.1:$port")
  say "instance $instance: container $name on http://127.0.0.1:$port"
done
for url in "${URLS[@]}"; do wait_ready "$url" 90; done
say "both instances ready"

(cd end2end && BASE_URL_A="${URLS[0]}" BASE_URL_B="${URLS[1]}" npx playwright test --config scale.config.ts)
say "two containers served the same rooms: all checks passed"
