#!/usr/bin/env bash
# Make a Docker engine and the sandbox image available on this machine. Idempotent.
#   1. install docker.io and mmdebstrap if missing (Debian/Ubuntu, needs root)
#   2. start dockerd in the background if no daemon answers, and wait until it does
#   3. build the sandbox image (offline via mmdebstrap when no registry answers)
# Usage: scripts/setup_docker.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
if [ -x .venv/bin/python ] && [ -z "${VIRTUAL_ENV:-}" ]; then PYTHON=.venv/bin/python; fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
if [ ${#need[@]} -gt 0 ]; then
    echo "setup_docker: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    echo "setup_docker: starting dockerd (log: /var/log/dockerd.log)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { echo "setup_docker: dockerd did not answer in 60s; see /var/log/dockerd.log" >&2; exit 1; }
fi
echo "setup_docker: docker $(docker version --format '{{.Server.Version}}') answers"

if [ "${1:-}" != "--no-build" ]; then
    "$PYTHON" -m evaluators.sandbox build
fi
