#!/usr/bin/env bash
# The telekernd image under podman with runc (crun fails here on hybrid
# cgroups; the default ulimits exceed the VM's hard limits): the image is
# non-root with labels, a health check and a data volume; a container starts
# with the host network, answers /ready and its health check, serves gRPC to
# telesh on the host, stops cleanly on SIGTERM, and a new container on the
# same volume has the data.
#   IMAGE=localhost/telekern/telekernd:latest BUILD_DIR=build tests/deploy/container_test.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
IMAGE=${IMAGE:-localhost/telekern/telekernd:latest}
BUILD_DIR=$(cd "${BUILD_DIR:-build}" && pwd)
telesh=$BUILD_DIR/bin/telesh
[ -x "$telesh" ] || fail "$telesh not built (ninja -C $BUILD_DIR telesh)"
command -v podman >/dev/null || fail "podman not installed (make deps)"
podman=(podman --runtime runc)
run_flags=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --network host)
suffix=$$-$RANDOM
volume=telekern-test-data-$suffix
containers=()
cleanup() {
  for c in "${containers[@]}"; do "${podman[@]}" rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  "${podman[@]}" volume rm -f "$volume" >/dev/null 2>&1 || true
}
trap cleanup EXIT
passed=0

# 1. What the image declares.
inspect() { "${podman[@]}" image inspect --format "$1" "$IMAGE"; }
[ "$(inspect '{{.Config.User}}')" = "telekern:telekern" ] || fail "image user is '$(inspect '{{.Config.User}}')'"
inspect '{{json .Config.Volumes}}' | grep -q '/var/lib/telekern' || fail "no data volume"
inspect '{{json .Config.Entrypoint}}' | grep -q '/usr/bin/telekernd' || fail "entrypoint is not telekernd"
for label in org.opencontainers.image.title org.opencontainers.image.version org.opencontainers.image.revision; do
  [ -n "$(inspect "{{index .Labels \"$label\"}}")" ] || fail "label $label missing"
done
"${podman[@]}" image inspect "$IMAGE" | grep -q '"Healthcheck"' || fail "no HEALTHCHECK in the image"
if "${podman[@]}" run --rm "${run_flags[@]}" --entrypoint /bin/sh "$IMAGE" -c \
     'command -v g++ || command -v cmake || ls /usr/include/grpcpp' >/dev/null 2>&1; then
  fail "runtime image contains build tools or headers"
fi
echo "image: $(inspect '{{.Size}}' | numfmt --to=iec) non-root telekern, labels, healthcheck, volume, runtime-only packages"
passed=$((passed + 1))

# 2. Start, ready, healthy, gRPC from the host.
start() {  # start NAME GRPC HTTP
  "${podman[@]}" run -d --name "$1" "${run_flags[@]}" \
    -e TELEKERN_LISTEN="127.0.0.1:$2" -e TELEKERN_HTTP="127.0.0.1:$3" -e TELEKERN_LOAD=broker \
    -v "$volume:/var/lib/telekern" "$IMAGE" >/dev/null
  containers+=("$1")
}
grpc=$(free_port); http=$(free_port)
first=telekern-test-$suffix-a
"${podman[@]}" volume create "$volume" >/dev/null
start "$first" "$grpc" "$http"
wait_http "http://127.0.0.1:$http/ready" 60 ||
  { "${podman[@]}" logs "$first" | tail -30; fail "container not ready"; }
"${podman[@]}" healthcheck run "$first" || fail "podman healthcheck run: unhealthy"
"$telesh" --addr "127.0.0.1:$grpc" -c \
  "broker topic create kept --partitions 1; broker produce kept first; broker produce kept second" \
  >/tmp/telesh.$suffix 2>&1 || { cat /tmp/telesh.$suffix; fail "telesh on the host against the container"; }
metrics=$(curl -fsS "http://127.0.0.1:$http/metrics")
grep -q '^telekern_module_up{module="broker"} 1' <<<"$metrics" ||
  fail "broker module not up in the container's /metrics"
echo "container: ready on 127.0.0.1:$http, healthy, telesh produced 2 records over gRPC"
passed=$((passed + 1))

# 3. SIGTERM: a clean stop well within the grace period, not a kill.
started=$SECONDS
"${podman[@]}" stop -t 30 "$first" >/dev/null
took=$((SECONDS - started))
code=$("${podman[@]}" inspect --format '{{.State.ExitCode}}' "$first")
[ "$code" = 0 ] || { "${podman[@]}" logs "$first" | tail -20; fail "exit code $code after SIGTERM"; }
((took < 25)) || fail "stop took ${took}s (killed after the grace period?)"
"${podman[@]}" logs "$first" 2>&1 | tail -5 | grep -qi "stop\|shut\|bye\|exit" ||
  echo "note: no stop line in the log tail"
echo "stop: SIGTERM, exit 0 in ${took}s"
passed=$((passed + 1))

# 4. The data outlives the container.
second=telekern-test-$suffix-b
grpc=$(free_port); http=$(free_port)
start "$second" "$grpc" "$http"
wait_http "http://127.0.0.1:$http/ready" 60 ||
  { "${podman[@]}" logs "$second" | tail -30; fail "second container not ready"; }
out=$("$telesh" --addr "127.0.0.1:$grpc" -c \
  "broker consume kept --group check --max 2 --start START_POSITION_EARLIEST -o json" 2>&1) ||
  { echo "$out"; fail "consume from the second container"; }
# Values are base64 in JSON: first = Zmlyc3Q=, second = c2Vjb25k.
grep -q 'Zmlyc3Q=' <<<"$out" && grep -q 'c2Vjb25k' <<<"$out" ||
  { echo "$out"; fail "records produced before the restart are gone"; }
"${podman[@]}" stop -t 30 "$second" >/dev/null
echo "volume: both records read back from a new container"
passed=$((passed + 1))
rm -f /tmp/telesh.$suffix
echo "$passed passed, 0 failed"
