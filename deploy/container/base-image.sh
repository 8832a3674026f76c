#!/usr/bin/env bash
# Builds the Debian 12 base image every telekern container starts FROM, with
# debootstrap (no registry is reachable here) and imports it into podman once.
# Idempotent: an image already in podman's storage is kept (FORCE=1 rebuilds).
#
#   deploy/container/base-image.sh [IMAGE]     default localhost/telekern/debian:bookworm
#   MIRROR=http://deb.debian.org/debian        the Debian mirror debootstrap uses
set -euo pipefail

IMAGE=${1:-${TELEKERN_BASE_IMAGE:-localhost/telekern/debian:bookworm}}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
PODMAN=${PODMAN:-podman}

if [ "${FORCE:-0}" != 1 ] && $PODMAN image exists "$IMAGE"; then
  echo "base image $IMAGE: cached ($($PODMAN image inspect --format '{{.Created}}' "$IMAGE"))"
  exit 0
fi

# One builder at a time (parallel `make image` / test-deploy runs).
exec 9>"${TMPDIR:-/tmp}/telekern-base-image.lock"
flock 9
if [ "${FORCE:-0}" != 1 ] && $PODMAN image exists "$IMAGE"; then exit 0; fi

root=$(mktemp -d "${TMPDIR:-/var/tmp}/telekern-rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
echo "base image $IMAGE: debootstrap --variant=minbase $SUITE from $MIRROR"
debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 ||
  { tail -30 "$root.log"; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

# Same sources as a stock Debian image, no caches or logs in the layer.
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
SOURCES
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
APT
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*

tar --numeric-owner -C "$root" -c . |
  $PODMAN import \
    --change 'CMD ["/bin/bash"]' \
    --change 'ENV LANG=C.UTF-8' \
    --message "debootstrap --variant=minbase $SUITE" - "$IMAGE" >/dev/null
echo "base image $IMAGE: imported ($(du -sh --apparent-size "$root" | cut -f1) rootfs)"
