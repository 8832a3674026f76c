#!/usr/bin/env python3
"""Brings a telekern compose stack up (healthy), tests it, or tears it down,
with podman-compose on podman + runc and the host network.

    deploy/compose/stack.py up STACK      build the images (cached), start, wait until healthy
    deploy/compose/stack.py down STACK    stop and remove containers and volumes
    deploy/compose/stack.py test STACK    up, the stack's end-to-end checks, down
    deploy/compose/stack.py ps STACK

STACK is a folder here: telemetry (seed 001), remo (seed 003), metranova (004).
Images come from the debootstrapped Debian base (deploy/container/base-image.sh),
never from a registry. A service whose modules (TELEKERN_LOAD) are not in the
telekernd image is left out and named; its checks are reported as not run.
Ports: TK_* variables (see each compose.yaml); `test` picks free ones.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
IMAGE = os.environ.get("TELEKERN_IMAGE", "localhost/telekern/telekernd:latest")
BASE_IMAGE = os.environ.get("TELEKERN_BASE_IMAGE", "localhost/telekern/debian:bookworm")
PODMAN = ["podman", "--runtime", "runc"]
BUILD_FLAGS = ["--runtime", "runc", "--network", "host", "--pull=never", "--layers", "--format", "docker",
               "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
HEALTH_TIMEOUT = int(os.environ.get("TK_HEALTH_TIMEOUT", "180"))


class StackError(Exception):
    pass


def log(message):
    print(f"[stack] {message}", flush=True)


def sh(args, check=True, capture=True, **kwargs):
    result = subprocess.run(args, capture_output=capture, text=True, **kwargs)
    if check and result.returncode != 0:
        raise StackError(f"{' '.join(args[:6])}...: exit {result.returncode}\n"
                         f"{(result.stdout or '')[-2000:]}{(result.stderr or '')[-2000:]}")
    return result


def env():
    full = dict(os.environ)
    full["CONTAINERS_CONF"] = os.path.join(HERE, "containers.conf")
    full.setdefault("TELEKERN_IMAGE", IMAGE)
    return full


def compose_file(stack):
    path = os.path.join(HERE, stack, "compose.yaml")
    if not os.path.exists(path):
        raise StackError(f"no stack {stack} ({path})")
    return path


def services(stack):
    with open(compose_file(stack)) as f:
        return yaml.safe_load(f)["services"]


def image_modules():
    out = sh(PODMAN + ["run", "--rm", "--network", "host", "--ulimit", "nofile=1024:1024",
                       "--ulimit", "nproc=4096:4096", "--entrypoint", "/bin/ls", IMAGE,
                       "/usr/lib/telekern/modules"]).stdout
    return {m[len("telekern_"):-3] for m in out.split() if m.startswith("telekern_")}


def plan(stack):
    """(services to start, {left-out service: missing modules})."""
    available = image_modules()
    start, left_out = [], {}
    for name, service in services(stack).items():
        load = (service.get("environment") or {}).get("TELEKERN_LOAD")
        wanted = {m.strip() for m in str(load).split(",") if m.strip()} if load else set()
        missing = sorted(wanted - available)
        if missing:
            left_out[name] = missing
        else:
            start.append(name)
    return start, left_out


def build_images(stack):
    sh([os.path.join(REPO, "deploy", "container", "base-image.sh"), BASE_IMAGE], capture=False)
    if sh(PODMAN + ["image", "exists", IMAGE], check=False).returncode != 0:
        raise StackError(f"{IMAGE} is missing: run `make image` first")
    for service in services(stack).values():
        image = service.get("image", "")
        match = re.fullmatch(r"localhost/telekern/([a-z]+):latest", image)
        if not match or match.group(1) == "telekernd":
            continue
        containerfile = os.path.join(HERE, "images", match.group(1), "Containerfile")
        log(f"image {image}")
        sh(["podman", "build", *BUILD_FLAGS, "--quiet", "--file", containerfile, "--tag", image,
            "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", REPO])


def compose(stack, *args, check=True):
    return sh(["podman-compose", "--podman-path", os.path.join(HERE, "podman-host-network"),
               "-p", f"telekern-{stack}", "-f", compose_file(stack), *args], check=check, env=env())


def containers(stack):
    out = sh(PODMAN + ["ps", "-a", "--filter", f"label=io.podman.compose.project=telekern-{stack}",
                       "--format", "{{.Names}}"]).stdout
    return out.split()


def wait_healthy(stack, names):
    """podman runs health checks from systemd timers, absent here: run them."""
    deadline = time.monotonic() + HEALTH_TIMEOUT
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            state = sh(PODMAN + ["inspect", "--format", "{{.State.Status}}", name], check=False).stdout.strip()
            if state in ("exited", "stopped", "dead"):
                logs = sh(PODMAN + ["logs", "--tail", "30", name], check=False)
                raise StackError(f"{name} {state}:\n{logs.stdout}{logs.stderr}")
            if sh(PODMAN + ["healthcheck", "run", name], check=False).returncode == 0:
                pending.discard(name)
                log(f"{name}: healthy")
        time.sleep(1)
    if pending:
        raise StackError(f"not healthy within {HEALTH_TIMEOUT}s: {sorted(pending)}")


def up(stack):
    build_images(stack)
    start, left_out = plan(stack)
    for name, missing in left_out.items():
        log(f"left out: {name} (modules {', '.join(missing)} not in {IMAGE})")
    # podman-compose 1.0.3 starts dependents without waiting for health: the
    # stores (services without TELEKERN_LOAD) first, healthy, then telekernd.
    declared = services(stack)
    stores = [s for s in start if "TELEKERN_LOAD" not in (declared[s].get("environment") or {})]
    for wave in (stores, [s for s in start if s not in stores]):
        if not wave:
            continue
        compose(stack, "up", "-d", *wave)
        wait_healthy(stack, [c for c in containers(stack)
                             if any(c == f"telekern-{stack}_{s}_1" for s in wave)])
    names = containers(stack)
    log(f"{stack}: {len(names)} containers healthy")
    return start, left_out


def down(stack):
    # Anonymous volumes (an image VOLUME without a compose volume) outlive
    # `podman-compose down -v`: note them first, remove them after.
    anonymous = set()
    for name in containers(stack):
        mounts = sh(PODMAN + ["inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", name],
                    check=False).stdout.split()
        anonymous |= {m for m in mounts if re.fullmatch(r"[0-9a-f]{64}", m)}
    compose(stack, "down", "-v", "-t", "30", check=False)
    for name in containers(stack):
        sh(PODMAN + ["rm", "-f", "-t", "0", name], check=False)
    # podman-compose 1.0.3 creates the project network even when no service uses it.
    sh(PODMAN + ["network", "rm", "-f", f"telekern-{stack}_default"], check=False)
    volumes = sh(PODMAN + ["volume", "ls", "--format", "{{.Name}}"]).stdout.split()
    for volume in volumes:
        if volume.startswith(f"telekern-{stack}_") or volume in anonymous:
            sh(PODMAN + ["volume", "rm", "-f", volume], check=False)
    log(f"{stack}: down")


# ---- end-to-end checks (test) ----------------------------------------------

def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assign_free_ports(stack):
    with open(compose_file(stack)) as f:
        names = sorted(set(re.findall(r"\$\{(TK_[A-Z0-9_]+_(?:PORT|GRPC|HTTP))", f.read())))
    for name in names:
        os.environ[name] = str(free_port())
    return {n: int(os.environ[n]) for n in names}


def http(url, data=None, timeout=5):
    request = urllib.request.Request(url, data=data)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


def telesh(address, commands):
    binary = os.path.join(os.environ.get("BUILD_DIR", os.path.join(REPO, "build")), "bin", "telesh")
    result = subprocess.run([binary, "--addr", address, "-c", commands], capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"telesh {commands}: {result.stdout}{result.stderr}")
    return result.stdout


def eventually(what, probe, seconds=60):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception as error:
            last = error
        time.sleep(1)
    raise StackError(f"{what}: not within {seconds}s ({last})")


def check_prometheus(ports, http_ports):
    """Prometheus scrapes every running telekernd and has the alert rules."""
    base = f"http://127.0.0.1:{ports['TK_PROMETHEUS_PORT']}"
    wanted = {f"127.0.0.1:{p}" for p in http_ports}

    def scraped():
        result = json.loads(http(f"{base}/api/v1/query?query=up"))["data"]["result"]
        up = {r["metric"]["instance"] for r in result if r["value"][1] == "1"}
        return wanted <= up
    eventually(f"prometheus scraping {sorted(wanted)}", scraped)
    groups = json.loads(http(f"{base}/api/v1/rules"))["data"]["groups"]
    if not any(g["name"] == "telekern-broker" for g in groups):
        raise StackError("prometheus has not loaded the telekern rules")
    log(f"prometheus: {len(wanted)} telekernd targets up, {sum(len(g['rules']) for g in groups)} rules")


def test_telemetry(ports, start, left_out):
    proxy = f"127.0.0.1:{ports['TK_PROXY_GRPC']}"
    telesh(proxy, "broker topic create orders --partitions 4")
    for i in range(8):
        telesh(proxy, f"broker produce orders record-{i} --key k{i}")
    produced = 0
    for port in (ports["TK_BROKER0_HTTP"], ports["TK_BROKER1_HTTP"]):
        metrics = http(f"http://127.0.0.1:{port}/metrics")
        produced += sum(float(v) for v in re.findall(
            r'^telekern_broker_messages_produced_total\{topic="orders"\} (\S+)', metrics, re.M))
    if produced != 8:
        raise StackError(f"8 records through the proxy, the brokers counted {produced}")
    log("proxy -> brokers: 8 records produced through the proxy, stored on the brokers")
    http_ports = [ports[f"TK_{s.upper().replace('-', '')}_HTTP"] for s in start
                  if f"TK_{s.upper().replace('-', '')}_HTTP" in ports]
    check_prometheus(ports, http_ports)
    if "collector" in left_out:
        log("NOT RUN: CSV -> InfluxDB -> API (collector module not in the image)")
        return ["csv->influxdb->api"]
    # CSV in: a file dropped into the collector's watch dir.
    csv = ("timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw\n"
           f"{int(time.time())},DCGM_FI_DEV_GPU_UTIL,0,nvidia0,GPU-deploy-1,H100,deploy-host,,,,42,\n")
    with tempfile.NamedTemporaryFile("w", suffix=".csv", prefix="telekern-compose-",
                                     delete=False) as f:
        f.write(csv)
        path = f.name
    name = next(c for c in containers("telemetry") if "collector" in c)
    sh(PODMAN + ["exec", name, "mkdir", "-p", "/var/lib/telekern/incoming"])
    try:
        sh(PODMAN + ["cp", path, f"{name}:/var/lib/telekern/incoming/gpu.csv"])
    finally:
        os.unlink(path)
    influx = f"http://127.0.0.1:{ports['TK_INFLUXDB_PORT']}"

    def stored():
        query = urllib.parse.urlencode({"db": "telemetry", "q": "SELECT count(*) FROM gpu_telemetry"})
        series = json.loads(http(f"{influx}/query?{query}"))["results"][0].get("series")
        return series and series[0]["values"][0][1] >= 1
    eventually("CSV row in InfluxDB", stored, 90)
    collector = f"127.0.0.1:{ports['TK_COLLECTOR_GRPC']}"
    eventually("GPU in the collector's API", lambda: "GPU-deploy-1" in telesh(collector, "collector gpus -o json"), 30)
    log("collector: CSV row -> broker (via the proxy) -> InfluxDB -> API")
    return []


def test_remo(ports, start, left_out):
    if "monitor" in left_out:
        log("NOT RUN: agent -> alert (monitor module not in the image)")
        check_prometheus(ports, [])
        return ["agent->alert"]
    monitor = f"127.0.0.1:{ports['TK_MONITOR_GRPC']}"
    check_prometheus(ports, [ports["TK_MONITOR_HTTP"]])
    eventually("both agents in monitor nodes",
               lambda: all(a in telesh(monitor, "monitor nodes -o json") for a in ("agent-1", "agent-2")), 90)
    # A threshold every sample breaches: the agent's next samples raise an alert.
    telesh(monitor, "monitor threshold set agent-1 cpu '>=' 0 --severity critical")
    eventually("alert for agent-1", lambda: "agent-1" in telesh(monitor, "monitor alerts -o json"), 90)
    log("monitor: agents -> broker -> monitor (PostgreSQL) -> alert")
    return []


def test_metranova(ports, start, left_out):
    not_run = []
    if "etl" in left_out:
        log("NOT RUN: Kafka message -> ClickHouse row (etl module not in the image)")
        not_run.append("message->clickhouse")
    clickhouse = f"http://127.0.0.1:{ports['TK_CLICKHOUSE_HTTP_PORT']}"
    if http(f"{clickhouse}/?query=SELECT%201").strip() != "1":
        raise StackError("ClickHouse does not answer SELECT 1")
    redis_ok = sh(PODMAN + ["exec", next(c for c in containers("metranova") if "redis" in c),
                            "redis-cli", "-p", str(ports["TK_REDIS_PORT"]), "ping"]).stdout.strip()
    if redis_ok != "PONG":
        raise StackError("Redis does not answer PING")
    broker = f"127.0.0.1:{ports['TK_BROKER_GRPC']}"
    # A MetrANOVA flow document (seed 004) on the topic the etl consumes.
    flow = json.dumps({"start": "2025-01-01T00:00:00Z", "end": "2025-01-01T00:00:10Z",
                       "meta": {"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "src_port": 1234,
                                "dst_port": 443, "src_asn": 64500, "dst_asn": 64501, "protocol": "tcp"},
                       "values": {"num_bits": 800, "num_packets": 1}}, separators=(",", ":"))
    telesh(broker, f"broker produce flows '{flow}' --key deploy-flow")  # the etl consumer created the topic
    log("metranova: ClickHouse, Redis and the embedded broker answer")
    if not not_run:
        query = urllib.parse.quote("SELECT count() FROM default.flow_edge WHERE src_asn = 64500 AND dst_port = 443")

        def row():
            return int(http(f"{clickhouse}/?query={query}").strip() or 0) >= 1
        eventually("flow in ClickHouse (flow_edge)", row, 90)
        log("etl: flow message on the broker -> FlowProcessor -> ClickHouse flow_edge row")
    check_prometheus(ports, [ports["TK_BROKER_HTTP"]] + ([] if not_run else [ports["TK_ETL_HTTP"]]))
    return not_run


def test(stack):
    ports = assign_free_ports(stack)
    try:
        start, left_out = up(stack)
        not_run = globals()[f"test_{stack}"](ports, start, left_out)
    except StackError:
        # What the services said, before down() removes them.
        for name in containers(stack):
            logs = sh(PODMAN + ["logs", "--tail", "25", name], check=False)
            log(f"--- last lines of {name}:\n{logs.stdout}{logs.stderr}")
        raise
    finally:
        down(stack)
    if containers(stack):
        raise StackError(f"containers left after down: {containers(stack)}")
    return not_run


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("up", "down", "test", "ps"):
        print(__doc__)
        sys.exit(2)
    command, stack = sys.argv[1:]
    try:
        if command == "up":
            up(stack)
        elif command == "down":
            down(stack)
        elif command == "ps":
            print("\n".join(containers(stack)))
        else:
            not_run = test(stack)
            print(f"{stack}: passed" + (f" (not run: {', '.join(not_run)})" if not_run else ""))
    except StackError as error:
        print(f"[stack] FAIL {stack}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
