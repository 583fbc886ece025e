"""docs/deployment.md's Helm commands, run verbatim against the test's Kubernetes API server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.harness.docs import ROOT, bash_blocks
from tests.harness.kube import KubeCluster
from tests.harness.tools import tools_bin


def run_doc_block(kube: KubeCluster, block: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig),
           "PATH": f"{tools_bin()}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"{block}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_install_then_upgrade_and_roll_back_as_documented(kube: KubeCluster):
    [install] = bash_blocks("docs/deployment.md", "### Install")
    [upgrade] = bash_blocks("docs/deployment.md", "### Upgrade and roll back")
    out = run_doc_block(kube, install).stdout
    assert "Airflow UI:      https://officeflow.staging.example.com/" in out  # NOTES.txt
    secret = kube.json("get", "secret", "officeflow-secrets", "-n", "officeflow")
    assert "simple_auth_manager_passwords.json" in secret["data"]
    run_doc_block(kube, upgrade)
    history = json.loads(kube.helm("history", "officeflow", "-n", "officeflow", "-o", "json").stdout)
    assert [h["status"] for h in history] == ["superseded", "superseded", "deployed"]
    assert history[-1]["description"].startswith("Rollback to 1")
    image = kube.json("get", "deployment", "officeflow-api-server", "-n", "officeflow")[
        "spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "officeflow:0.2.0"
