#!/bin/bash
# kubectl.sh ARGS... — Debian 12's kubectl (package kubernetes-client, 1.20, with
# kustomize 2.0.3 inside), unpacked from the package into build/tools/ rather than
# installed, so that it neither needs nor replaces a kubectl the machine may have.
# `deploy/kubectl.sh kustomize deploy/k8s/base` renders the manifests.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$here/build/tools/kubernetes-client
kubectl=$dir/usr/bin/kubectl
if [ ! -x "$kubectl" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && apt-get download kubernetes-client > /dev/null 2>&1); then
    apt-get update -qq > /dev/null 2>&1 || true
    (cd "$tmp" && apt-get download kubernetes-client > /dev/null 2>&1) || {
      echo "kubectl.sh: apt-get download kubernetes-client failed" >&2; exit 1; }
  fi
  rm -rf "$dir" && mkdir -p "$dir"
  dpkg-deb -x "$tmp"/kubernetes-client_*.deb "$dir"
fi
exec "$kubectl" "$@"
