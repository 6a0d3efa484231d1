#!/bin/bash
# Builds this project's Debian 12 container images from Debian's own archive, for
# machines that reach no container registry: debootstrap a minbase bookworm root
# file system and `podman import` it. Two images, both cached (built only when
# podman does not have them, or with --rebuild):
#
#   localhost/nexus-debian12:slim  debootstrap --variant=minbase, apt sources for
#                                  bookworm, -updates and -security; the runtime
#                                  stage of deploy/Containerfile starts from it
#   localhost/nexus-debian12:base  slim + what a fresh Debian 12 development
#                                  machine has for this project (gcc, g++, make,
#                                  git, ca-certificates) and nothing of the
#                                  project's own -dev packages: `make fresh-check`
#                                  and the build stage of deploy/Containerfile
#
# Usage: tools/debian-image.sh [--rebuild] [slim|base]   (default: base, which
# builds slim first). Needs root. Installs podman, debootstrap, runc and
# catatonit with apt when they are missing, and runs podman with
# CONTAINERS_CONF=deploy/containers.conf (runc, ulimits; /etc is not edited).
# MIRROR overrides the Debian mirror (default: the one this machine's apt uses).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/deploy/containers.conf}
REPO=localhost/nexus-debian12
BASE_PACKAGES="gcc g++ make git ca-certificates"
WORK=${DEBIAN_IMAGE_WORK:-$here/build/debian12}

rebuild=0
want=base
for a in "$@"; do
  case "$a" in
    --rebuild) rebuild=1 ;;
    slim|base) want=$a ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "debian-image.sh: unknown argument '$a' (want --rebuild, slim or base)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "debian-image.sh: needs root (debootstrap, rootful podman)" >&2
  exit 1
fi

# the host tools, from Debian's archive
missing=""
for p in podman debootstrap runc catatonit; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "debian-image.sh: installing$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi

# the mirror this machine's apt uses (deb822 or one-line format)
if [ -z "${MIRROR:-}" ]; then
  MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/* *$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  [ -n "$MIRROR" ] || MIRROR=$(sed -n 's/^deb  *\(\[[^]]*\] *\)\?\(http[^ ]*\/debian\)\/* .*bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -1)
  [ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
fi
SECURITY=${SECURITY_MIRROR:-${MIRROR%/debian}/debian-security}

have() { podman image exists "$REPO:$1"; }

build_slim() {
  echo "debian-image.sh: debootstrap bookworm (minbase) from $MIRROR"
  local root=$WORK/rootfs
  rm -rf "$root"
  mkdir -p "$WORK"
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 || {
    echo "debian-image.sh: debootstrap failed; last lines of $WORK/debootstrap.log:" >&2
    tail -20 "$WORK/debootstrap.log" >&2
    exit 1
  }
  rm -f "$root/etc/apt/sources.list"
  cat > "$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # a fresh machine has no package lists or downloaded .debs lying around
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  : > "$root/etc/resolv.conf"
  echo "debian-image.sh: podman import -> $REPO:slim"
  tar -C "$root" --numeric-owner -c . | podman import \
    --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$REPO:slim" > /dev/null
  rm -rf "$root"
}

build_base() {
  echo "debian-image.sh: $REPO:base = slim + $BASE_PACKAGES"
  local c=nexus-debian12-base-build
  podman rm -f "$c" > /dev/null 2>&1 || true
  podman run --name "$c" --network host "$REPO:slim" bash -c \
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $BASE_PACKAGES > /dev/null \
     && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb"
  podman commit -q --change 'CMD ["/bin/bash"]' "$c" "$REPO:base" > /dev/null
  podman rm -f "$c" > /dev/null
}

if [ "$rebuild" = 1 ] || ! have slim; then build_slim; fi
if [ "$want" = base ] && { [ "$rebuild" = 1 ] || ! have base; }; then build_base; fi
podman image ls "$REPO"
