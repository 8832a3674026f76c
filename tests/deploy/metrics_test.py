#!/usr/bin/env python3
"""Alert rules and dashboards (deploy/prometheus, deploy/grafana): promtool
check rules and the rule unit tests pass, the committed dashboards are what
deploy/grafana/generate.py writes, and every metric that a rule or a panel
queries exists in a running telekernd's /metrics.

The daemons run from BUILD_DIR with every module built there: one with all
modules that load together, and one more per module that must run alone (the
proxy serves the broker's service). Metrics of modules that are not built in
this tree (not merged yet) cannot be checked: they are listed, not failed,
and the modules covered are printed.

    tests/deploy/metrics_test.py BUILD_DIR
"""
import glob
import json
import os
import re
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploylib import DEPLOY, REPO, fail, http_get, main, require_tool, run, telekernd  # noqa: E402

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
RULES = os.path.join(DEPLOY, "prometheus", "rules.yml")
RULES_TEST = os.path.join(DEPLOY, "prometheus", "rules_test.yml")
DASHBOARDS = os.path.join(DEPLOY, "grafana", "dashboards")
METRICS_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics_config.yaml")
# Modules of DESIGN.md; metrics are telekern_<module>_* unless listed below.
KNOWN_MODULES = {"broker", "proxy", "collector", "etl", "monitor", "tracer", "bench"}
KERNEL_PREFIXES = ("process_", "telekern_rpc_", "telekern_http_", "telekern_module_",
                   "telekern_build_info", "telekern_login_")
OTHER_OWNERS = {"broker_health_status": "proxy", "telekern_node_": "monitor"}
PROMETHEUS_SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {"sum", "by", "max", "min", "avg", "rate", "increase", "irate", "histogram_quantile",
                "count", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "label_values", "topk", "bottomk", "abs", "le",
                "humanize", "humanize1024", "humanizePercentage"}
state = {}


def check_promtool():
    promtool = require_tool("promtool", "prometheus")
    for args in (["check", "rules", RULES], ["test", "rules", RULES_TEST]):
        result = run([promtool, *args], cwd=os.path.dirname(RULES))
        if result.returncode != 0:
            fail(f"promtool {' '.join(args[:2])}: {result.stdout}{result.stderr}")


def check_dashboards_generated():
    sys.path.insert(0, os.path.join(DEPLOY, "grafana"))
    import generate  # noqa: E402
    expected = generate.render()
    committed = {os.path.basename(p) for p in glob.glob(os.path.join(DASHBOARDS, "*.json"))}
    if committed != set(expected):
        fail(f"dashboards {sorted(committed)} != generated {sorted(expected)}")
    uids = set()
    for name, text in expected.items():
        with open(os.path.join(DASHBOARDS, name)) as f:
            if f.read() != text:
                fail(f"{name} differs from generate.py output: run python3 deploy/grafana/generate.py")
        board = json.loads(text)
        if board["uid"] in uids:
            fail(f"duplicate dashboard uid {board['uid']}")
        uids.add(board["uid"])
        for item in board["panels"]:
            if not item.get("targets") or not all(t.get("expr") for t in item["targets"]):
                fail(f"{name}: panel '{item['title']}' has no query")


def queried_metrics():
    """{metric: [where it is used]} from the rule exprs and the dashboard queries."""
    exprs = []
    with open(RULES) as f:
        for group in yaml.safe_load(f)["groups"]:
            for rule in group["rules"]:
                exprs.append((f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]))
    for path in sorted(glob.glob(os.path.join(DASHBOARDS, "*.json"))):
        with open(path) as f:
            board = json.load(f)
        for item in board["panels"]:
            for target in item["targets"]:
                exprs.append((f"{os.path.basename(path)}: {item['title']}", target["expr"]))
    used = {}
    for where, expr in exprs:
        text = re.sub(r'"[^"]*"', '""', expr)          # label values
        text = re.sub(r"\{[^}]*\}", "", text)          # matchers
        text = re.sub(r"\[[^\]]*\]", "", text)         # ranges
        text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
        for name in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
            if name in PROMQL_WORDS or name in PROMETHEUS_SYNTHETIC or name.startswith("__"):
                continue
            used.setdefault(name, []).append(where)
    if len(used) < 20:
        fail(f"only {len(used)} metrics found in the rules and dashboards: the parser is broken")
    return used


def owner(metric):
    if metric.startswith(KERNEL_PREFIXES):
        return "kernel"
    for prefix, module in OTHER_OWNERS.items():
        if metric.startswith(prefix):
            return module
    match = re.match(r"telekern_([a-z]+)_", metric)
    if match and match.group(1) in KNOWN_MODULES:
        return match.group(1)
    return None


def families(text):
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def scrape_loaded(http):
    """/metrics once the modules loaded at start are listed in telekern_module_up
    (HTTP may answer before they started): the same module set twice in a row."""
    deadline = time.monotonic() + 30
    previous = None
    while True:
        _, text = http_get(f"http://{http}/metrics")
        loaded = set(re.findall(r'^telekern_module_up\{module="([a-z_]+)"\} [01]$', text, re.M))
        if (loaded and loaded == previous) or time.monotonic() > deadline:
            return loaded, text
        previous = loaded
        time.sleep(0.5)


def scrape_modules():
    """{module: metric family names} from daemons running every built module."""
    built = sorted(os.path.basename(p)[len("telekern_"):-len(".so")]
                   for p in glob.glob(os.path.join(BUILD, "modules", "telekern_*.so")))
    if not built:
        fail(f"no modules in {BUILD}/modules")
    covered, names = set(), set()
    # Modules may be DEGRADED here (no store server): wait for /metrics, not
    # /ready; every module the kernel lists in telekern_module_up is loaded.
    with telekernd(BUILD, METRICS_CONFIG, wait_path="/metrics") as (_, grpc, http, _log):
        up, text = scrape_loaded(http)
        names |= families(text)
        covered |= {"kernel"} | up
        # Modules that do not load beside the others (the proxy serves the
        # broker's service) run in a daemon of their own; the proxy gets the
        # first daemon's broker as its upstream.
        for module in [m for m in built if m not in up]:
            config_text = yaml.safe_load(open(METRICS_CONFIG))
            config_text["load"] = [module]
            if module == "proxy":
                config_text["modules"]["proxy"] = {"upstreams": [grpc]}
            config_text = yaml.safe_dump(config_text)
            with tempfile.NamedTemporaryFile("w", suffix=".yaml") as config:
                config.write(config_text)
                config.flush()
                with telekernd(BUILD, config.name, wait_path="/metrics") as (_, _grpc, solo_http, _log):
                    solo_loaded, solo_text = scrape_loaded(solo_http)
            if module not in solo_loaded:
                fail(f"module {module} is built but not loaded in a daemon of its own:\n"
                     + "\n".join(l for l in solo_text.splitlines() if "module_up" in l))
            names |= families(solo_text)
            covered.add(module)
    return built, covered, names


def compare(used, covered, names):
    """(queried metrics missing from names, {module not covered: its metrics})."""
    missing, unchecked = [], {}
    for metric, where in sorted(used.items()):
        module = owner(metric)
        base = re.sub(r"_(bucket|sum|count)$", "", metric)
        if module not in covered:
            unchecked.setdefault(module, []).append(metric)
        elif metric not in names and base not in names:
            missing.append(f"{metric} ({module}; {where[0]})")
    return missing, unchecked


def check_metrics_exist():
    used = queried_metrics()
    unowned = sorted(m for m in used if owner(m) is None)
    if unowned:
        fail(f"metrics of no known module: {unowned} (used in {used[unowned[0]][:2]})")
    built, covered, names = scrape_modules()
    # The comparison must be able to fail: a made-up broker metric is missing.
    probe, _ = compare({"telekern_broker_no_such_metric": ["probe"]}, covered, names)
    if not probe:
        fail("the comparison accepted a metric no daemon exports")
    missing, unchecked = compare(used, covered, names)
    print(f"  modules covered: {', '.join(sorted(covered))} (built: {', '.join(built)})")
    print(f"  {len(used)} metrics queried, {len(used) - sum(map(len, unchecked.values()))} checked")
    for module, metrics in sorted(unchecked.items()):
        print(f"  NOT CHECKED (module {module} not built in this tree): {', '.join(metrics)}")
    if missing:
        fail("queried but not in /metrics: " + "; ".join(missing))


if __name__ == "__main__":
    main([("promtool check/test rules", check_promtool),
          ("dashboards = generate.py output", check_dashboards_generated),
          ("queried metrics exist in /metrics", check_metrics_exist)])
