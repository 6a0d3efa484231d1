#!/bin/bash
# `make fresh-check`: does a fresh Debian 12 machine build and test this project
# with the README's two commands? Takes the committed HEAD of this repository
# (not uncommitted changes), clones it into a container of
# localhost/nexus-debian12:base (tools/debian-image.sh: Debian's minbase plus gcc,
# g++, make, git and ca-certificates, none of the project's packages) and runs
# `make demo`, then `make test` there, as root, the way CI does. `make` itself must
# install every Debian package it needs (make deps), so a package missing from
# DEB_PACKAGES fails here.
#
# The container is --privileged (a root shell on a machine has every capability:
# tests/real/netns.sh makes network namespaces) and on podman's default bridge
# network (its own loopback, so its ports do not collide with the host's; apt
# reaches the Debian mirror through it).
#
# Usage: tools/fresh-check.sh [--keep]    --keep leaves the container for a look
# Output: build/fresh-check/{demo,test}.log and one line per step with its time.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/deploy/containers.conf}
keep=0
for a in "$@"; do
  case "$a" in
    --keep) keep=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "fresh-check: unknown argument '$a'" >&2; exit 2 ;;
  esac
done

tools/debian-image.sh base > /dev/null

out=$here/build/fresh-check
rm -rf "$out" && mkdir -p "$out"
rev=$(git rev-parse --short HEAD)
git bundle create -q "$out/nexus.bundle" HEAD
c=nexus-fresh-check-$$
cleanup() {
  if [ "$keep" = 1 ]; then echo "fresh-check: container $c kept (podman rm -f $c)"
  else podman rm -f "$c" > /dev/null 2>&1 || true; fi
}
trap cleanup EXIT

podman run -d --name "$c" --privileged -v "$out:/in:ro" \
  localhost/nexus-debian12:base sleep infinity > /dev/null

step() {   # step NAME COMMAND...: run in the container, log to build/fresh-check/NAME.log
  local name=$1; shift
  local t0=$SECONDS
  if podman exec "$c" bash -c "$*" > "$out/$name.log" 2>&1; then
    echo "fresh-check: $name ok ($((SECONDS - t0)) s)"
  else
    echo "fresh-check: $name FAILED ($((SECONDS - t0)) s); last lines of $out/$name.log:" >&2
    tail -30 "$out/$name.log" >&2
    exit 1
  fi
}

echo "fresh-check: $rev in a clean localhost/nexus-debian12:base container"
step clone "git clone -q /in/nexus.bundle /root/nexus && cd /root/nexus && git log --oneline -1"
step demo "cd /root/nexus && make demo"
step test "cd /root/nexus && make test"
grep -q "all test suites passed" "$out/test.log"
echo "fresh-check: passed: make demo and make test on a clean Debian 12 image ($rev, $SECONDS s in all)"
