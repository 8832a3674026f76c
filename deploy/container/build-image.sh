#!/usr/bin/env bash
# Builds the telekernd image from deploy/container/Containerfile on the
# debootstrapped Debian 12 base (base-image.sh must have run: `make image`).
#   deploy/container/build-image.sh [IMAGE]        default localhost/telekern/telekernd:latest
# Uses podman (runc, host network, the VM's ulimits) or docker when podman is
# missing. The host's ccache is mounted into the build stage with podman, and
# the host's CA bundle into the web stage (npm).
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${1:-localhost/telekern/telekernd:latest}
BASE_IMAGE=${TELEKERN_BASE_IMAGE:-localhost/telekern/debian:bookworm}

# The build stage installs what the Makefile lists (one list for host and image),
# minus what only tests, `make run` or the fuzz target need.
packages=$(make --no-print-directory -s print-DEB_PACKAGES |
  tr ' ' '\n' | grep -vxE 'redis-server|prometheus|influxdb|clickhouse-.*|postgresql.*|openssh-server|tmux|expect|curl|procps|openssl|jq|python3-grpcio|python3-protobuf|clang.*|libclang-rt.*' | tr '\n' ' ')
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
version=$(sed -n 's/^project(telekern VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
args=(--file deploy/container/Containerfile --tag "$IMAGE"
      --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "BUILD_PACKAGES=$packages"
      --build-arg "VERSION=$version" --build-arg "REVISION=$revision"
      --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)")

if command -v podman >/dev/null; then
  ccache_dir=${CCACHE_DIR:-$(ccache -k cache_dir 2>/dev/null || echo "$HOME/.cache/ccache")}
  mkdir -p "$ccache_dir"
  # The host's CA bundle, for npm in the web stage: a TLS-intercepting proxy
  # the host trusts (as here) is then trusted inside the build too.
  ca_bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
  ca_volume=()
  [ -f "$ca_bundle" ] && ca_volume=(--volume "$ca_bundle:/run/host-ca.crt:ro")
  podman build --runtime runc --network host --pull=never --format docker \
    --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
    --volume "$ccache_dir:/ccache:rw" "${ca_volume[@]}" --layers "${args[@]}" .
  # Each build leaves its build stage (a whole build tree, about 3.4 GB)
  # behind as an untagged image; drop those so repeated builds do not fill
  # the disk.
  podman image prune --force --filter label=telekern.stage=build >/dev/null
else
  docker build "${args[@]}" .
fi
echo "image $IMAGE: built (revision $revision)"
