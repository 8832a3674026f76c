"""Helpers shared by the Python deploy tests: ports, processes, HTTP waits."""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(REPO, "deploy")


class Failure(Exception):
    pass


def fail(message):
    raise Failure(message)


def require_tool(name, package):
    path = shutil.which(name)
    if not path:
        fail(f"{name} not found: install the Debian package {package} (make deps)")
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


def wait_http(url, seconds, process=None):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            fail(f"process exited ({process.returncode}) while waiting for {url}")
        try:
            status, body = http_get(url)
            if 200 <= status < 300:
                return body
        except Exception as error:  # connection refused, 503 while starting
            last = error
        time.sleep(0.2)
    fail(f"{url} did not answer 2xx within {seconds}s ({last})")


@contextlib.contextmanager
def telekernd(build, config_path=None, env=None, load=None, extra_args=(), wait_path="/ready"):
    """Starts build/bin/telekernd on free loopback ports, waits for wait_path to
    answer 2xx; yields (process, grpc, http, log)."""
    grpc_port, http_port = free_port(), free_port()
    data = tempfile.mkdtemp(prefix="telekern-deploy-")
    args = [os.path.join(build, "bin", "telekernd"), "--data-dir", data,
            "--modules-dir", os.path.join(build, "modules"),
            "--listen", f"127.0.0.1:{grpc_port}", "--http", f"127.0.0.1:{http_port}", *extra_args]
    if config_path:
        args += ["--config", config_path]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TELEKERN_")}
    full_env.update(env or {})
    if load is not None:
        full_env["TELEKERN_LOAD"] = ",".join(load)  # string lists: comma-separated
    log_path = os.path.join(data, "telekernd.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    try:
        try:
            wait_http(f"http://127.0.0.1:{http_port}{wait_path}", 60, process)
        except Failure:
            sys.stderr.write(open(log_path).read()[-4000:])
            raise
        yield process, f"127.0.0.1:{grpc_port}", f"127.0.0.1:{http_port}", log_path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(data, ignore_errors=True)


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


def main(checks):
    """Runs named check functions, prints a summary line, exits non-zero on a failure."""
    passed = failed = 0
    for name, check in checks:
        started = time.monotonic()
        try:
            check()
            passed += 1
            print(f"[ OK ] {name} ({time.monotonic() - started:.1f}s)", flush=True)
        except Failure as error:
            failed += 1
            print(f"[FAIL] {name}: {error}", flush=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
