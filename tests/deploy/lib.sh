# Helpers shared by the deploy tests (sourced, bash).

fail() { echo "FAIL: $*" >&2; exit 1; }

# free_port: a TCP port nobody listens on right now, on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL SECONDS [PID]: until URL answers 2xx, PID (if given) dies, or time runs out.
wait_http() {
  local url=$1 seconds=$2 pid=${3:-} deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "process $pid exited while waiting for $url" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "$url did not answer within ${seconds}s" >&2
  return 1
}

# stop_pid PID: SIGTERM, then wait up to 30 s; returns the exit status.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; wait "$pid" 2>/dev/null; return 137; fi
  wait "$pid" 2>/dev/null
}
