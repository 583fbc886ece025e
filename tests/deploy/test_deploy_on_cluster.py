"""scripts/k8s-deploy.sh and scripts/deploy.sh for real, against the test's Kubernetes API server (kwok
nodes): the Secret check, a rolling update and its rollback, a blue-green switch and its rollback, and a
canary that joins the stable Service and is promoted. Their argument handling and exact commands:
test_deploy_scripts.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.harness.kube import KubeCluster
from tests.harness.tools import ROOT, tools_bin

NAMESPACE = "officeflow-scripts"
SECRET = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://officeflow:pw@postgres.example:5432/airflow",
    "OFFICEFLOW_DB_URL": "postgresql+psycopg2://officeflow:pw@postgres.example:5432/officeflow",
    "AIRFLOW__CORE__FERNET_KEY": "Z3YbTGZ2Tq2zJ8pVJ3s0C9xkq6mUu2o2XqFz1pF1b3c=",
    "AIRFLOW__API_AUTH__JWT_SECRET": "scripts-test-jwt-secret-0123456789abcdefghijklmnopqrstuvwxyz0123456789",
    "OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY": "scripts-test-webhook-key",
    "OFFICEFLOW_ADMIN_PASSWORD": "Scripts-Test-Root-Pw-5",
}


@pytest.fixture(scope="module")
def script(kube: KubeCluster) -> Callable[..., subprocess.CompletedProcess]:
    kube.kubectl("create", "namespace", NAMESPACE)
    env = {**os.environ, "PATH": f"{tools_bin()}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}

    def run(name: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
        result = subprocess.run([ROOT / "scripts" / name, "--kubeconfig", str(kube.kubeconfig), "--namespace",
                                 NAMESPACE, "--timeout", "180s", *args], env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == expect, f"{name} {args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result
    return run


def image(kube: KubeCluster, deployment: str) -> str:
    return kube.json("get", "deployment", deployment, "-n", NAMESPACE)["spec"]["template"]["spec"]["containers"][0][
        "image"]


def service_pods(kube: KubeCluster, service: str) -> set[str]:
    """The pods behind a Service, as the endpoints controller sees them."""
    slices = kube.json("get", "endpointslices", "-n", NAMESPACE, "-l", f"kubernetes.io/service-name={service}")
    return {e["targetRef"]["name"] for s in slices["items"] for e in s.get("endpoints") or []
            if e.get("conditions", {}).get("ready")}


def releases(kube: KubeCluster) -> set[str]:
    return set(kube.helm("list", "-n", NAMESPACE, "-q").stdout.split())


def test_k8s_deploy_checks_the_secret_and_dry_runs_change_nothing(kube: KubeCluster, script):
    missing = script("k8s-deploy.sh", "--values", "dev", "--image-tag", "1.0.0", expect=1)
    assert "kubectl" in missing.stderr + missing.stdout and "create secret generic" in missing.stderr + missing.stdout
    script("k8s-deploy.sh", "--values", "dev", "--image-tag", "1.0.0", "--dry-run")
    assert releases(kube) == set()


def test_rolling_update_and_rollback(kube: KubeCluster, script):
    kube.create_secret(NAMESPACE, "officeflow-secrets", SECRET)
    script("k8s-deploy.sh", "--values", "dev", "--image-tag", "1.0.0")
    assert image(kube, "officeflow-api-server") == "officeflow:1.0.0"
    script("deploy.sh", "--strategy", "rolling", "--environment", "dev", "--image-tag", "1.1.0")
    assert {image(kube, f"officeflow-{c}") for c in ("api-server", "scheduler", "dispatcher")} == {"officeflow:1.1.0"}
    script("deploy.sh", "--strategy", "rolling", "--rollback")
    assert image(kube, "officeflow-api-server") == "officeflow:1.0.0"


def test_blue_green_switches_the_public_service_and_rolls_back(kube: KubeCluster, script):
    bg = ("deploy.sh", "--strategy", "blue-green")
    script(*bg, "--environment", "dev", "--image-tag", "2.0.0")
    public = kube.json("get", "service", "officeflow", "-n", NAMESPACE)
    assert public["spec"]["selector"]["officeflow.io/traffic-group"] == "officeflow-blue"
    blue_pods = service_pods(kube, "officeflow")
    assert blue_pods and all(p.startswith("officeflow-blue-api-server") for p in blue_pods)

    script(*bg, "--environment", "dev", "--image-tag", "2.1.0")
    public = kube.json("get", "service", "officeflow", "-n", NAMESPACE)
    assert public["spec"]["selector"]["officeflow.io/traffic-group"] == "officeflow-green"
    assert public["metadata"]["annotations"]["officeflow.io/previous-traffic-group"] == "officeflow-blue"
    assert image(kube, "officeflow-green-api-server") == "officeflow:2.1.0"
    assert image(kube, "officeflow-blue-api-server") == "officeflow:2.0.0"  # untouched, ready to roll back to
    green_pods = service_pods(kube, "officeflow")
    assert green_pods and all(p.startswith("officeflow-green-api-server") for p in green_pods)

    script(*bg, "--rollback")
    public = kube.json("get", "service", "officeflow", "-n", NAMESPACE)
    assert public["spec"]["selector"]["officeflow.io/traffic-group"] == "officeflow-blue"
    assert service_pods(kube, "officeflow") == blue_pods


def test_canary_joins_the_stable_service_then_is_promoted(kube: KubeCluster, script):
    canary = ("deploy.sh", "--strategy", "canary")
    out = script(*canary, "--environment", "dev", "--image-tag", "3.0.0", "--canary-replicas", "1").stdout
    assert "officeflow-canary" in releases(kube)
    behind = service_pods(kube, "officeflow-api-server")
    assert any(p.startswith("officeflow-canary-api-server") for p in behind), behind
    assert any(p.startswith("officeflow-api-server") for p in behind), behind
    assert "%" in out  # the canary's share of requests is printed
    assert not [d for d in kube.json("get", "deployments", "-n", NAMESPACE)["items"]
                if d["metadata"]["name"] == "officeflow-canary-scheduler"]

    script(*canary, "--environment", "dev", "--promote")
    assert "officeflow-canary" not in releases(kube)
    assert image(kube, "officeflow-api-server") == "officeflow:3.0.0"
