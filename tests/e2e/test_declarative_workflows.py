"""End to end: a workflow defined through the API becomes a DAG in the running platform (the dag-processor
re-parses dags/declarative_workflows.py), runs from ``/execute``, emails and posts to Slack, and a delete
pauses it while keeping its history."""

from __future__ import annotations

import time
import uuid

import pytest

from sandbox.email.smtp_sink import SmtpSink
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.e2e_support import wait_for_dag
from tests.harness.sandbox import SandboxServer

pytestmark = pytest.mark.e2e
API = "/officeflow/api/v1/workflows"
GENERAL = "C0GENERAL0"


def definition(name: str) -> dict:
    return {
        "name": name,
        "description": "e2e: welcome email, then a Slack announcement",
        "trigger": {"type": "manual"},
        "params": {"first_name": {"type": "string", "minLength": 1},
                   "email": {"type": "string", "format": "idn-email"}},
        "nodes": [
            {"id": "welcome", "type": "email",
             "config": {"template": "welcome", "to": "{{ params.email }}",
                        # the welcome template reads all four (a missing one fails the task before sending)
                        "variables": {"first_name": "{{ params.first_name }}", "department": "",
                                      "job_title": "Contractor", "start_date": ""}}},
            {"id": "announce", "type": "slack_message", "depends_on": ["welcome"],
             "config": {"channel": "#general",
                        "text": "{{ params.first_name }} got the welcome email "
                                "({{ ti.xcom_pull(task_ids='welcome')['deliveries'][0]['status'] }})"}},
        ],
    }


def execute(platform: AirflowPlatform, name: str, conf: dict, timeout: float = 60) -> str:
    """POST /execute; a 409 means the API-server saw the DAG before the scheduler could use it: retry."""
    deadline = time.monotonic() + timeout
    while True:
        response = platform.api("POST", f"{API}/{name}/execute", json={"conf": conf})
        if response.status_code != 409 or time.monotonic() > deadline:
            assert response.status_code == 201, response.text
            return str(response.json()["dag_run_id"])
        time.sleep(2)


def test_api_defined_workflow_runs_end_to_end(platform: AirflowPlatform, smtp: SmtpSink,
                                              sandbox_server: SandboxServer):
    sandbox_server.reset()
    name = f"e2e_welcome_{uuid.uuid4().hex[:8]}"
    created = platform.api("POST", API, json=definition(name))
    assert created.status_code == 201, created.text

    bad = platform.api("POST", f"{API}/{name}/execute", json={"conf": {"email": "nope"}})
    assert bad.status_code == 400 and {p["path"] for p in bad.json()["error"]["problems"]} == {
        "conf.first_name", "conf.email"}

    wait_for_dag(platform, name, timeout=180)
    address = f"contractor-{uuid.uuid4().hex[:8]}@example.com"
    run_id = execute(platform, name, {"first_name": "Linus", "email": address})
    run = platform.wait_for_run(name, run_id, timeout=240)
    assert run["state"] == "success", platform.logs_tail()

    mails = [m for m in smtp.messages() if m["To"] == address]
    assert len(mails) == 1 and "Linus" in mails[0]["Subject"]
    posts = [m for m in sandbox_server.state("slack")["messages"].get(GENERAL, [])
             if m.get("text") == "Linus got the welcome email (sent)"]
    assert len(posts) == 1, sandbox_server.state("slack")["messages"].get(GENERAL)

    assert platform.api("DELETE", f"{API}/{name}").status_code == 204
    dag = platform.api("GET", f"/api/v2/dags/{name}").json()
    assert dag["is_paused"] is True
    runs = platform.api("GET", f"/api/v2/dags/{name}/dagRuns").json()
    assert [r["dag_run_id"] for r in runs["dag_runs"]] == [run_id]  # the history stays
    assert platform.api("GET", f"{API}/{name}/versions").json()["total_entries"] == 1
