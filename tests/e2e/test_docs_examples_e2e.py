"""End to end: the README's and the docs' shell examples that start runs, run as a reader would in the repository's
folder with the platform running (the admin's password only in ``.env``): the README's identity provisioning
commands, docs/identity.md's and docs/workflows.md's API session, docs/gateway.md's Workday reconciliation. Each run
they start finishes, and what it made is where the docs say."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from sandbox.email.smtp_sink import SmtpSink
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.docs import ROOT, bash_block_with
from tests.harness.e2e_support import run_doc_block, wait_for_dag
from tests.harness.sandbox import SandboxServer
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.e2e


def okta_logins(sandbox: SandboxServer) -> set[str]:
    return {user["profile"]["login"] for user in sandbox.client.get("/_sandbox/state/okta").json()["users"].values()}


def test_the_readme_provisions_grace_in_the_identity_providers(
        platform: AirflowPlatform, sandbox_server: SandboxServer, tmp_path: Path):
    sandbox_server.reset()
    wait_for_dag(platform, "identity_provisioning")
    block = bash_block_with("README.md", "identity_provisioning/dagRuns")
    # The README's dev addresses are this platform's and this sandbox's.
    block = block.replace("localhost:8080", f"127.0.0.1:{platform.port}").replace(
        "localhost:8900", sandbox_server.url.removeprefix("http://"))
    triggered = json.loads(run_doc_block(platform, block, tmp_path).splitlines()[0])
    assert triggered["conf"]["email"] == "grace@officeflow.test" and triggered["state"] == "queued"

    run = platform.wait_for_run("identity_provisioning", triggered["dag_run_id"], timeout=240)
    assert run["state"] == "success", platform.task_states("identity_provisioning", triggered["dag_run_id"])
    *_, listing = block.strip().splitlines()
    assert json.loads(run_doc_block(platform, listing, tmp_path)) == {"login": "grace@officeflow.test",
                                                                       "status": "PASSWORD_EXPIRED"}


def test_the_identity_doc_provisions_grace_hopper(
        platform: AirflowPlatform, sandbox_server: SandboxServer, tmp_path: Path):
    sandbox_server.reset()
    wait_for_dag(platform, "identity_provisioning")
    block = bash_block_with("docs/identity.md", "identity_provisioning/dagRuns")
    run_id = run_doc_block(platform, block, tmp_path).strip()

    run = platform.wait_for_run("identity_provisioning", run_id, timeout=240)
    assert run["state"] == "success", platform.task_states("identity_provisioning", run_id)
    assert "grace.hopper@officeflow.test" in okta_logins(sandbox_server)


def test_the_workflows_doc_creates_edits_runs_and_deletes_a_workflow(
        platform: AirflowPlatform, smtp: SmtpSink, tmp_path: Path):
    session = bash_block_with("docs/workflows.md", "my_workflow.json")
    delete = bash_block_with("docs/workflows.md", '-X DELETE "$API/my_workflow"')
    out = [json.loads(line) for line in run_doc_block(platform, session, tmp_path).strip().splitlines()]
    assert out[:2] == [{"name": "my_workflow", "version": 1}, {"name": "my_workflow", "version": 2}]
    assert (out[2]["dag_id"], out[2]["version"]) == ("my_workflow", 2) and out[3] == [2, 1]

    run = platform.wait_for_run("my_workflow", out[2]["dag_run_id"], timeout=240)
    assert run["state"] == "success", platform.task_states("my_workflow", out[2]["dag_run_id"])
    assert [m for m in smtp.messages() if m["To"] == "ada@example.com" and "Ada" in m["Subject"]]

    token = platform.token()
    api = f"{platform.base_url}/officeflow/api/v1/workflows"
    assert run_doc_block(platform, delete, tmp_path, API=api, TOKEN=token).strip() == "204"
    assert platform.api("GET", "/officeflow/api/v1/workflows/my_workflow").status_code == 404


def test_the_readme_quick_start_webhook_starts_an_onboarding(platform: AirflowPlatform):
    """``./run.sh webhook`` as the README's quick start runs it, pointed at this platform (its port and webhook key
    in the environment, which run.sh prefers to .env): the answer it prints, and the run it starts."""
    command = bash_block_with("README.md", "./run.sh webhook").splitlines()[0].split("#", 1)[0].split()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**platform.env, "OFFICEFLOW_PORT": str(platform.port)})
    assert result.returncode == 0, result.stdout + result.stderr
    status, answer = re.search(r"HTTP (\d+)\s+(\{.*\})", result.stdout, flags=re.S).groups()
    answer = json.loads(answer)
    # "triggered" when the run was created in the request (dev mode); "pending" when the dispatcher creates it.
    assert status == "202" and answer["status"] in ("triggered", "pending"), answer
    assert answer["dag_run_id"].startswith("bamboohr__")
    run_url = f"/api/v2/dags/employee_onboarding/dagRuns/{answer['dag_run_id']}"
    run = wait_until(lambda: (r := platform.api("GET", run_url)).status_code != 404 and r, timeout=60,
                     what="the run", interval=1)
    assert run.status_code == 200 and run.json()["conf"]["event_type"] == "employee.created", run.text


def test_the_gateway_doc_reconciles_a_hire_workday_never_notified(
        platform: AirflowPlatform, sandbox_server: SandboxServer, tmp_path: Path):
    """docs/gateway.md: a hire made in the sandbox's Workday without a notification, then "reconcile now": the
    workday_reconciliation DAG reads the report, records the hire and starts its onboarding; a second pass starts
    nothing."""
    from include.officeflow.inbox import run_id_for
    from include.officeflow.workday_reconciliation import ENDPOINT

    sandbox_server.reset()
    wait_for_dag(platform, "workday_reconciliation")
    hire = bash_block_with("docs/gateway.md", "/workday/sandbox/workers/21100").replace(
        "http://127.0.0.1:8900", sandbox_server.url)
    worker = json.loads(run_doc_block(platform, hire, tmp_path))
    assert (worker["Worker_ID"], worker["Work_Email"]) == ("21100", "mary.jackson@officeflow.test")
    reconcile = bash_block_with("docs/gateway.md", "workday_reconciliation/dagRuns")

    run_id = run_doc_block(platform, reconcile, tmp_path).strip()
    run = platform.wait_for_run("workday_reconciliation", run_id, timeout=240)
    assert run["state"] == "success", platform.task_states("workday_reconciliation", run_id)
    onboarding_id = run_id_for(ENDPOINT, f"21100:hire:{worker['Hire_Date']}")
    onboarding = platform.api("GET", f"/api/v2/dags/employee_onboarding/dagRuns/{onboarding_id}")
    assert onboarding.status_code == 200, onboarding.text
    conf = onboarding.json()["conf"]
    assert (conf["first_name"], conf["email"], conf["source"]) == (
        "Mary", "mary.jackson@officeflow.test", "workday-reconciliation")
    assert "started by Workday reconciliation event employee.created" in (onboarding.json().get("note") or "")

    again = run_doc_block(platform, reconcile, tmp_path).strip()
    run = platform.wait_for_run("workday_reconciliation", again, timeout=240)
    assert run["state"] == "success", platform.task_states("workday_reconciliation", again)
    runs = platform.api("GET", "/api/v2/dags/employee_onboarding/dagRuns?limit=100").json()["dag_runs"]
    assert [r["dag_run_id"] for r in runs if r["conf"].get("email") == "mary.jackson@officeflow.test"] == [
        onboarding_id]
