"""The Helm chart rendered and validated with the real tools: ``helm template`` and kubeconform in strict
mode against the Kubernetes 1.37 JSON schemas shipped by kubernetes-validate (offline)."""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path

import kubernetes_validate
import yaml

from tests.harness.tools import ROOT, run, tool

CHART = ROOT / "helm" / "officeflow"
ENVIRONMENTS = ("dev", "staging", "production")
KUBERNETES_VERSION = "1.37.0"


def values_file(environment: str) -> Path:
    return CHART / f"values-{environment}.yaml"


def helm_template(*args: str, release: str = "officeflow", namespace: str = "officeflow",
                  check: bool = True):
    return run(tool("helm"), "template", release, CHART, "--namespace", namespace, *args, check=check)


def render(*args: str, release: str = "officeflow", namespace: str = "officeflow") -> list[dict]:
    """The chart's manifests (helm template ... ARGS) as dicts, hooks included."""
    out = helm_template(*args, release=release, namespace=namespace).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(docs: list[dict], kind: str, name: str) -> dict:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name} in {[(d['kind'], d['metadata']['name']) for d in docs]}")


@cache
def kubeconform_schemas(dest: Path) -> Path:
    """kubernetes-validate's strict schemas made self-contained for kubeconform (no network): each file's
    ``$id`` dropped and its ``$ref`` to ``/api/_definitions.json`` made relative."""
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    source = schemas / f"v{KUBERNETES_VERSION}-local-strict"
    out = dest / "schemas"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for path in source.glob("*.json"):
        schema = json.loads(path.read_text())
        text = json.dumps(_strip_ids(schema)).replace('"/api/_definitions.json#', '"_definitions.json#')
        (out / path.name).write_text(text)
    return out


def _strip_ids(node):
    if isinstance(node, dict):
        return {k: _strip_ids(v) for k, v in node.items() if k != "$id"}
    if isinstance(node, list):
        return [_strip_ids(v) for v in node]
    return node


def kubeconform(manifests: str, schemas: Path, check: bool = True):
    """Validate rendered manifests strictly (unknown fields fail); returns the completed process."""
    return run(tool("kubeconform"), "-strict", "-summary", "-output", "text",
               "-schema-location", f"{schemas}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
               "-kubernetes-version", KUBERNETES_VERSION, "-", input=manifests, check=check)
