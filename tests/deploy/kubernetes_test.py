#!/usr/bin/env python3
"""Kubernetes manifests (deploy/kubernetes): every overlay renders with
`kubectl kustomize`, is yamllint clean, validates against the Kubernetes
schemas (npm kubernetes-models, deploy/kubernetes/validate) with no field
the API does not know (validate/known_fields.py), and holds
together: the brokers' StatefulSet names are exactly the upstreams the proxy
module resolves from broker_service/broker_count (asked from a real proxy
telekernd started with the rendered ConfigMap and Secret), every config
passes the daemon's own schema check, probes, resources, PDBs and scrape
annotations are in place.

    tests/deploy/kubernetes_test.py BUILD_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploylib import DEPLOY, Failure, fail, main, require_tool, run, telekernd  # noqa: E402

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
K8S = os.path.join(DEPLOY, "kubernetes")
TARGETS = ["base", "overlays/dev", "overlays/production"]
YAMLLINT_CONFIG = os.path.join(DEPLOY, ".yamllint.yaml")
DEBIAN_PYTHON = "/usr/bin/python3"  # where Debian's python3-kubernetes is importable
rendered = {}


def render(target):
    if target not in rendered:
        kubectl = require_tool("kubectl", "kubernetes-client")
        result = run([kubectl, "kustomize", os.path.join(K8S, target)])
        if result.returncode != 0:
            fail(f"kubectl kustomize {target}: {result.stderr.strip()}")
        rendered[target] = (result.stdout, [d for d in yaml.safe_load_all(result.stdout) if d])
    return rendered[target]


def objects(target, kind):
    return [o for o in render(target)[1] if o["kind"] == kind]


def one(target, kind, name):
    found = [o for o in objects(target, kind) if o["metadata"]["name"] == name]
    if len(found) != 1:
        fail(f"{target}: expected one {kind} {name}, found {len(found)}")
    return found[0]


def check_render():
    for target in TARGETS:
        kinds = sorted({o["kind"] for o in render(target)[1]})
        for needed in ["ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service",
                       "StatefulSet"]:
            if needed not in kinds:
                fail(f"{target}: no {needed} rendered (kinds: {kinds})")


def check_yamllint():
    yamllint = require_tool("yamllint", "yamllint")
    result = run([yamllint, "-s", "-c", YAMLLINT_CONFIG, DEPLOY])
    if result.returncode != 0:
        fail(f"yamllint deploy/:\n{result.stdout}{result.stderr}")
    for target in TARGETS:
        result = run([yamllint, "-s", "-c", YAMLLINT_CONFIG, "-"], input=render(target)[0])
        if result.returncode != 0:
            fail(f"yamllint on the rendered {target}:\n{result.stdout}")


def validator_dir():
    """deploy/kubernetes/validate with its locked node_modules, in the build dir."""
    source = os.path.join(K8S, "validate")
    target = os.path.join(BUILD, "deploy", "kubernetes-validate")
    lock = os.path.join(source, "package-lock.json")
    stamp = os.path.join(target, "node_modules", ".package-lock.json")
    os.makedirs(target, exist_ok=True)
    for name in ["package.json", "package-lock.json", "validate.mjs"]:
        shutil.copy2(os.path.join(source, name), target)
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(lock):
        npm = require_tool("npm", "npm")
        result = run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target)
        if result.returncode != 0:
            fail(f"npm ci in {target}: {result.stderr.strip()[-2000:]}")
    return target


def check_schemas():
    node = require_tool("node", "nodejs")
    directory = validator_dir()
    for target in TARGETS:
        result = run([node, os.path.join(directory, "validate.mjs")], input=render(target)[0])
        if result.returncode != 0:
            fail(f"schema validation of {target}:\n{result.stderr}{result.stdout}")
    # The validator must be able to fail: a broken StatefulSet is refused.
    broken = yaml.safe_dump({"apiVersion": "apps/v1", "kind": "StatefulSet",
                             "metadata": {"name": "x"},
                             "spec": {"replicas": "three", "serviceName": "x", "selector": {},
                                      "template": {}}})
    result = run([node, os.path.join(directory, "validate.mjs")], input=broken)
    if result.returncode == 0 or "replicas" not in result.stderr:
        fail(f"validator accepted a StatefulSet with replicas: three ({result.stderr})")
    # Unknown fields (typos, keys at the wrong level), which the schemas
    # accept: checked against python3-kubernetes' models with Debian's python.
    known_fields = [DEBIAN_PYTHON, os.path.join(K8S, "validate", "known_fields.py")]
    if not os.path.exists(DEBIAN_PYTHON):
        fail(f"{DEBIAN_PYTHON} is missing: install python3-kubernetes (make deps)")
    for target in TARGETS:
        result = run(known_fields, input=render(target)[0])
        if result.returncode != 0:
            fail(f"unknown fields in {target} (known_fields.py):\n{result.stderr}{result.stdout}")
    typo = yaml.safe_dump({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"},
                           "spec": {"replica": 3, "template": {"spec": {"containers": [
                               {"name": "a", "image": "b", "livenessprobe": {}}]}}}})
    result = run(known_fields, input=typo)
    if result.returncode == 0 or "spec.replica:" not in result.stderr or \
            "livenessprobe" not in result.stderr:
        fail(f"known_fields.py accepted spec.replica and livenessprobe ({result.stderr})")


def configmap_text(target, workload):
    """The telekernd.yaml of the ConfigMap a workload mounts at /etc/telekern."""
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    mounts = workload["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    mount = next((m for m in mounts if m["mountPath"] == "/etc/telekern"), None)
    if not mount:
        fail(f"{workload['metadata']['name']}: no config mounted at /etc/telekern")
    name = volumes[mount["name"]]["configMap"]["name"]
    configmap = one(target, "ConfigMap", name)
    return configmap["data"]["telekernd.yaml"]


def secret_value(target, reference):
    secret = one(target, "Secret", reference["name"])
    values = dict(secret.get("stringData", {}))
    if reference["key"] not in values:
        fail(f"Secret {reference['name']} has no key {reference['key']}")
    return values[reference["key"]]


def container_env(target, workload):
    env = {}
    for item in workload["spec"]["template"]["spec"]["containers"][0].get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            env[item["name"]] = secret_value(target, item["valueFrom"]["secretKeyRef"])
    return env


def check_names_match_proxy_pattern():
    """The proxy daemon, started with the rendered proxy config and Secret,
    lists exactly <sts>-<i>.<serviceName>:<grpc port> for i < replicas."""
    for target in TARGETS:
        sts = one(target, "StatefulSet", "msg-queue")
        proxy = one(target, "Deployment", "msg-queue-proxy")
        name, service_name = sts["metadata"]["name"], sts["spec"]["serviceName"]
        service = one(target, "Service", service_name)
        if service["spec"].get("clusterIP") != "None":
            fail(f"{target}: Service {service_name} is not headless (stable pod names need it)")
        if service["spec"]["selector"].items() - sts["spec"]["template"]["metadata"]["labels"].items():
            fail(f"{target}: Service {service_name} does not select the broker pods")
        grpc_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
        replicas = sts["spec"]["replicas"]
        expected = sorted(f"{name}-{i}.{service_name}:{grpc_port}" for i in range(replicas))

        config_text = configmap_text(target, proxy)
        env = container_env(target, proxy)
        api_key = env.get("TELEKERN_REMOTE_API_KEY")
        if not api_key:
            fail(f"{target}: the proxy gets no remote API key for the brokers")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as config:
            config.write(config_text)
            config.flush()
            with telekernd(BUILD, config.name, env=env) as (_, grpc, _http, _log):
                result = run([os.path.join(BUILD, "bin", "telesh"), "--addr", grpc, "--api-key",
                              api_key, "-c", "proxy upstreams -o json"])
        if result.returncode != 0:
            fail(f"{target}: telesh proxy upstreams: {result.stdout}{result.stderr}")
        listed = sorted(u["address"] for u in json.loads(result.stdout)["upstreams"])
        if listed != expected:
            fail(f"{target}: proxy upstreams {listed} != StatefulSet pod names {expected}")
        print(f"  {target}: {replicas} brokers {expected[0]} .. {expected[-1]} = proxy upstreams")


def check_configs_valid():
    """Every rendered telekernd.yaml passes the kernel's and the modules' schemas."""
    for target in TARGETS:
        for configmap in objects(target, "ConfigMap"):
            text = configmap["data"].get("telekernd.yaml")
            if text is None:
                continue
            with tempfile.NamedTemporaryFile("w", suffix=".yaml") as config:
                config.write(text)
                config.flush()
                result = run([os.path.join(BUILD, "bin", "telekernd"), "--config", config.name,
                              "--modules-dir", os.path.join(BUILD, "modules"), "--print-config"])
            if result.returncode != 0 or "# invalid" in result.stdout:
                fail(f"{target}: ConfigMap {configmap['metadata']['name']}: "
                     f"{result.stderr}{[l for l in result.stdout.splitlines() if 'invalid' in l]}")


def check_pods():
    for target in TARGETS:
        pdbs = objects(target, "PodDisruptionBudget")
        for workload in objects(target, "StatefulSet") + objects(target, "Deployment"):
            name = workload["metadata"]["name"]
            template = workload["spec"]["template"]
            container = template["spec"]["containers"][0]
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            for probe, path in [("livenessProbe", "/health"), ("readinessProbe", "/ready")]:
                got = container.get(probe, {}).get("httpGet", {})
                if got.get("path") != path or got.get("port") not in ("http", ports.get("http")):
                    fail(f"{target}: {name} {probe} is not GET {path} on the http port")
            requests = container.get("resources", {}).get("requests", {})
            if not {"cpu", "memory"} <= requests.keys():
                fail(f"{target}: {name} lacks cpu/memory requests")
            annotations = template["metadata"].get("annotations", {})
            if annotations.get("prometheus.io/scrape") != "true" or \
                    annotations.get("prometheus.io/port") != str(ports["http"]) or \
                    annotations.get("prometheus.io/path") != "/metrics":
                fail(f"{target}: {name} scrape annotations do not point at /metrics on {ports['http']}")
            security = container.get("securityContext", {})
            if security.get("allowPrivilegeEscalation") is not False or \
                    template["spec"].get("securityContext", {}).get("runAsNonRoot") is not True:
                fail(f"{target}: {name} may run as root or escalate")
            labels = template["metadata"]["labels"]
            if not any(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items() for pdb in pdbs):
                fail(f"{target}: no PodDisruptionBudget covers {name}")
        sts = one(target, "StatefulSet", "msg-queue")
        claims = [c["metadata"]["name"] for c in sts["spec"].get("volumeClaimTemplates", [])]
        mounts = [m["name"] for m in sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]]
        if "data" not in claims or "data" not in mounts:
            fail(f"{target}: brokers have no per-replica data volume")


if __name__ == "__main__":
    main([("render", check_render), ("yamllint", check_yamllint), ("schemas", check_schemas),
          ("configs valid for telekernd", check_configs_valid),
          ("StatefulSet names = proxy upstreams", check_names_match_proxy_pattern),
          ("probes, resources, PDBs, scrape annotations", check_pods)])
