#!/bin/bash
# `make image`: the Nexus image (deploy/Containerfile) and Prometheus' image
# (deploy/Containerfile.prometheus), built with podman from this project's Debian 12
# images (tools/debian-image.sh; no registry needed).
#   deploy/image.sh                 localhost/nexus:latest (CPU: emulated and cpu executors)
#   USE_CUDA=1 deploy/image.sh      localhost/nexus:cuda (also the CUDA executor; mounts
#                                   CUDA_HOME, default /usr/local/cuda, into the build)
#   NEXUS_IMAGE=name:tag            another name for the Nexus image
# Needs root (rootful podman); JOBS (default 2) is make's -j in the build stage.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/deploy/containers.conf}
USE_CUDA=${USE_CUDA:-0}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
JOBS=${JOBS:-2}

tools/debian-image.sh base > /dev/null

cuda_args=()
if [ "$USE_CUDA" = 1 ]; then
  tag=${NEXUS_IMAGE:-localhost/nexus:cuda}
  if [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
    echo "image: USE_CUDA=1 needs the CUDA toolkit at CUDA_HOME=$CUDA_HOME (bin/nvcc)" >&2
    exit 1
  fi
  cuda_args=(--build-arg USE_CUDA=1 -v "$(realpath "$CUDA_HOME"):/usr/local/cuda:ro")
else
  tag=${NEXUS_IMAGE:-localhost/nexus:latest}
fi

t0=$SECONDS
podman build -q -f deploy/Containerfile --ignorefile deploy/containerignore \
  --build-arg JOBS="$JOBS" "${cuda_args[@]}" -t "$tag" . > /dev/null
echo "image: $tag ($((SECONDS - t0)) s)"
t0=$SECONDS
podman build -q -f deploy/Containerfile.prometheus -t localhost/nexus-prometheus:latest deploy > /dev/null
echo "image: localhost/nexus-prometheus:latest ($((SECONDS - t0)) s)"
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^localhost/nexus(-prometheus)?:" || true
