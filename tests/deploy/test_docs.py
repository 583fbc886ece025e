"""docs/deployment.md's Helm commands, run verbatim against the test's Kubernetes API server."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

from include.officeflow.auth.passwords import check_password
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
    # the first admin's password, which the migration Job's bootstrap accepts only under the password policy
    admin_password = base64.b64decode(secret["data"]["OFFICEFLOW_ADMIN_PASSWORD"]).decode()
    check_password(admin_password, username="admin", min_length=12)
    assert not [key for key in secret["data"] if "simple_auth" in key]
    run_doc_block(kube, upgrade)
    history = json.loads(kube.helm("history", "officeflow", "-n", "officeflow", "-o", "json").stdout)
    assert [h["status"] for h in history] == ["superseded", "superseded", "deployed"]
    assert history[-1]["description"].startswith("Rollback to 1")
    image = kube.json("get", "deployment", "officeflow-api-server", "-n", "officeflow")[
        "spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "officeflow:0.2.0"


def test_moving_from_the_simple_auth_manager_as_documented(kube: KubeCluster):
    """The Secret of a release from before the FAB auth manager, updated with the documented commands."""
    [move] = bash_blocks("docs/deployment.md", "### Sign-in, users and roles")
    kube.kubectl("create", "namespace", "officeflow", check=False)  # made by the install above, if it ran
    found = kube.kubectl("get", "secret", "officeflow-secrets", "-n", "officeflow", "-o", "json", check=False)
    data = json.loads(found.stdout)["data"] if found.returncode == 0 else {}
    old = {key: base64.b64decode(value).decode() for key, value in data.items() if key != "OFFICEFLOW_ADMIN_PASSWORD"}
    old["simple_auth_manager_passwords.json"] = '{"admin": "old-simple-auth-password"}'
    kube.kubectl("delete", "secret", "officeflow-secrets", "-n", "officeflow", "--ignore-not-found")
    kube.create_secret("officeflow", "officeflow-secrets", old)
    run_doc_block(kube, move)
    secret = kube.json("get", "secret", "officeflow-secrets", "-n", "officeflow")["data"]
    assert "simple_auth_manager_passwords.json" not in secret
    check_password(base64.b64decode(secret["OFFICEFLOW_ADMIN_PASSWORD"]).decode(), username="admin", min_length=12)
    assert {key for key in old if key != "simple_auth_manager_passwords.json"} <= set(secret)


def test_edge_mode_as_documented(kube: KubeCluster):
    """docs/deployment.md's edge mode commands on the release the install above made (staging values: an Ingress)."""
    [enable] = bash_blocks("docs/deployment.md", "### Edge mode with Helm")
    if kube.kubectl("get", "deployment", "officeflow-api-server", "-n", "officeflow", check=False).returncode:
        run_doc_block(kube, bash_blocks("docs/deployment.md", "### Install")[0])  # this test alone: install first
    out = run_doc_block(kube, enable).stdout
    for kind in ("deployment.apps", "service", "horizontalpodautoscaler.autoscaling"):
        assert f"{kind}/officeflow-gateway" in out, out
    paths = kube.json("get", "ingress", "officeflow", "-n", "officeflow")["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [
        ("/officeflow/webhooks", "officeflow-gateway"), ("/", "officeflow-api-server")]
    env = kube.json("get", "configmap", "officeflow-env", "-n", "officeflow")["data"]
    assert env["OFFICEFLOW_DISPATCHER_MODE"] == "external" and env["OFFICEFLOW_GATEWAY_HOST"] == "0.0.0.0"  # noqa: S104
