#!/bin/sh
# Container health check: GET /ready on the daemon's HTTP address
# (TELEKERN_HTTP, else 127.0.0.1:7071); a wildcard host is asked on loopback.
addr=${TELEKERN_HTTP:-127.0.0.1:7071}
case "$addr" in
  0.0.0.0:*) addr="127.0.0.1:${addr#*:}" ;;
  "[::]":*) addr="[::1]:${addr##*:}" ;;
esac
exec curl -fsS --max-time 2 -o /dev/null "http://$addr/ready"
