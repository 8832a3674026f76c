#!/usr/bin/env bash
# make install, checked: the staged tree (DESTDIR, PREFIX=/usr) has the
# binaries, libraries, modules, config and unit; `systemd-analyze verify` and
# `systemd-analyze security --offline` accept the installed unit; a second
# install to a real prefix starts telekernd from the installed paths only
# (config, modules dir, libraries) and it answers /ready and stops on SIGTERM.
#
#   tests/deploy/install_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
build=$(cd "${1:?build dir}" && pwd)
tmp=$(mktemp -d)
daemon=""
cleanup() { [ -n "$daemon" ] && stop_pid "$daemon" || true; rm -rf "$tmp"; }
trap cleanup EXIT

modules=$(cd "$build/modules" && ls telekern_*.so)
[ -n "$modules" ] || fail "no modules in $build/modules (build telekern_all_modules)"

# 1. Staged install as a package would do it.
stage=$tmp/stage
DESTDIR=$stage cmake --install "$build" --prefix /usr >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install with DESTDIR"; }
for f in usr/bin/telekernd usr/bin/telesh usr/lib/telekern/libtelekern_sdk.so \
         etc/telekern/telekernd.yaml usr/lib/systemd/system/telekernd.service; do
  [ -f "$stage/$f" ] || fail "missing $f in the staged install"
done
for m in $modules; do
  [ -f "$stage/usr/lib/telekern/modules/$m" ] || fail "module $m not installed"
done
# The web console (built into the build dir) is served from share/telekern/web.
if [ -f "$build/share/telekern/web/index.html" ]; then
  [ -f "$stage/usr/share/telekern/web/index.html" ] || fail "web console not installed in usr/share/telekern/web"
fi
unit=$stage/usr/lib/systemd/system/telekernd.service
grep -qx 'ExecStart=/usr/bin/telekernd --config /etc/telekern/telekernd.yaml --data-dir /var/lib/telekern' "$unit" ||
  fail "unit ExecStart does not name the installed paths: $(grep ExecStart= "$unit")"
grep -q '^modules_dir: /usr/lib/telekern/modules ' "$stage/etc/telekern/telekernd.yaml" ||
  fail "installed config does not point at the installed modules dir"
for bin in usr/bin/telekernd usr/bin/telesh; do
  runpath=$(readelf -d "$stage/$bin" | sed -n 's/.*R[UN]*PATH.*\[\(.*\)\]/\1/p')
  [ "$runpath" = '$ORIGIN/../lib/telekern' ] || fail "$bin RUNPATH is '$runpath'"
done

# systemd-analyze resolves ExecStart and the dependencies inside --root: give
# the staged root the stock targets and /bin/kill (ExecReload), as a system has.
cp /lib/systemd/system/*.target /lib/systemd/system/*.slice "$stage/usr/lib/systemd/system/"
mkdir -p "$stage/bin" && cp /bin/kill "$stage/bin/kill"
systemd-analyze --root="$stage" verify "$unit" >"$tmp/verify.log" 2>&1 ||
  { cat "$tmp/verify.log"; fail "systemd-analyze verify"; }
# verify only warns about unknown or misspelled keys: any output is a failure.
[ ! -s "$tmp/verify.log" ] || { cat "$tmp/verify.log"; fail "systemd-analyze verify printed warnings"; }
systemd-analyze security --offline=yes --root="$stage" --threshold=25 "$unit" >"$tmp/security.log" 2>&1 ||
  { tail -40 "$tmp/security.log"; fail "systemd-analyze security: exposure above 2.5"; }
echo "unit: $(grep -o 'Overall exposure level.*' "$tmp/security.log")"
for key in DynamicUser=yes NoNewPrivileges=yes ProtectSystem=strict 'ReadWritePaths=/var/lib/telekern' \
           'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF "$key" "$unit" || fail "unit lacks $key"
done

# 2. A real prefix: the daemon runs from there and loads nothing from the build.
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install2.log" 2>&1 ||
  { cat "$tmp/install2.log"; fail "cmake --install --prefix"; }
config=$prefix/etc/telekern/telekernd.yaml
grep -q "^modules_dir: $prefix/lib/telekern/modules " "$config" || fail "config modules_dir"
grep -q "ExecStart=$prefix/bin/telekernd --config $config" "$prefix/lib/systemd/system/telekernd.service" ||
  fail "unit of the prefix install"
systemd-analyze verify "$prefix/lib/systemd/system/telekernd.service" >"$tmp/verify2.log" 2>&1 ||
  { cat "$tmp/verify2.log"; fail "systemd-analyze verify (prefix install)"; }

grpc=$(free_port); http=$(free_port)
mkdir -p "$tmp/data"
(cd / && exec env -i PATH=/usr/bin:/bin "$prefix/bin/telekernd" --config "$config" --data-dir "$tmp/data" \
   --listen "127.0.0.1:$grpc" --http "127.0.0.1:$http") >"$tmp/daemon.log" 2>&1 &
daemon=$!
wait_http "http://127.0.0.1:$http/ready" 60 "$daemon" || { cat "$tmp/daemon.log"; fail "/ready"; }
maps=$(cat /proc/$daemon/maps)
# The kernel maps a private copy of each module (data_dir/.modules); the
# libraries they link must come from the prefix, nothing from the build dir.
for m in $modules; do
  grep -q "$tmp/data/.modules/${m%.so}\." <<<"$maps" || fail "module $m was not opened by the installed daemon"
done
for lib in $(cd "$prefix/lib/telekern" && ls lib*.so); do
  if grep -q "/$lib\$" <<<"$maps"; then
    grep -q "$prefix/lib/telekern/$lib" <<<"$maps" || fail "$lib is not mapped from the prefix"
  fi
done
grep -q "$prefix/lib/telekern/libtelekern_sdk.so" <<<"$maps" || fail "libtelekern_sdk.so not from the prefix"
if grep -q "$build/" <<<"$maps"; then fail "daemon maps files from the build dir: $(grep "$build/" <<<"$maps" | head -3)"; fi
"$prefix/bin/telesh" --addr "127.0.0.1:$grpc" -c 'modules' >"$tmp/telesh.log" 2>&1 ||
  { cat "$tmp/telesh.log"; fail "installed telesh against the installed daemon"; }
if [ -f "$build/share/telekern/web/index.html" ]; then
  curl -fsS "http://127.0.0.1:$http/" | grep -qi '<html' ||
    fail "the installed daemon does not serve the web console at / from $prefix/share/telekern/web"
fi
stop_pid "$daemon" || { cat "$tmp/daemon.log"; fail "telekernd exited non-zero on SIGTERM"; }
daemon=""
echo "installed daemon: ready on 127.0.0.1:$http, modules $(echo $modules | tr '\n' ' ')from $prefix/lib/telekern/modules, clean stop"
echo "1 passed, 0 failed"
