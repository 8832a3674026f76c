#!/usr/bin/python3
"""Refuses fields the Kubernetes API does not know (a typo like `replica:`
or a key at the wrong level), which the JSON schemas of validate.mjs accept
as the API server's non-strict decoding does. Walks each object of a
multi-document YAML stream (files or stdin) against the model classes of
Debian's python3-kubernetes (their attribute_map and openapi_types), so run
it with Debian's /usr/bin/python3.

    kubectl kustomize deploy/kubernetes/overlays/dev | known_fields.py
"""
import re
import sys

import yaml
from kubernetes import client

SCALARS = {"str", "int", "float", "bool", "date", "datetime", "object"}


def model_for(api_version, kind):
    version = api_version.split("/")[-1]
    return getattr(client, version[:1].upper() + version[1:] + kind, None)


def walk(value, type_name, path, problems):
    if type_name in SCALARS or value is None:
        return
    match = re.fullmatch(r"list\[(.+)\]", type_name)
    if match:
        for i, item in enumerate(value if isinstance(value, list) else []):
            walk(item, match.group(1), f"{path}[{i}]", problems)
        return
    match = re.fullmatch(r"dict\(str, (.+)\)", type_name)
    if match:
        for key, item in (value.items() if isinstance(value, dict) else []):
            walk(item, match.group(1), f"{path}.{key}", problems)
        return
    model = getattr(client, type_name, None)
    if model is None or not isinstance(value, dict):
        return
    known = {json_name: model.openapi_types[attr] for attr, json_name in model.attribute_map.items()}
    for key, item in value.items():
        if key not in known:
            problems.append(f"{path}.{key}: unknown field (a {type_name} has {', '.join(sorted(known))})")
        else:
            walk(item, known[key], f"{path}.{key}", problems)


def main():
    inputs = sys.argv[1:] or ["-"]
    failures = checked = 0
    for name in inputs:
        text = sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read()
        for document in yaml.safe_load_all(text):
            if not document:
                continue
            label = f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"
            model = model_for(document.get("apiVersion", ""), document.get("kind", ""))
            if model is None:
                print(f"{label}: no model for {document.get('apiVersion')} {document.get('kind')}",
                      file=sys.stderr)
                failures += 1
                continue
            problems = []
            walk(document, model.__name__, label, problems)
            checked += 1
            for problem in problems:
                print(problem, file=sys.stderr)
            failures += bool(problems)
    print(f"{checked} objects checked for unknown fields, {failures} with problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
