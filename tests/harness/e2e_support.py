"""Helpers of the e2e tests: who the e2e platform's people are, waiting for a DAG, reading the store and a
task's result, deciding an approval in Slack."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.sandbox import SandboxServer
from tests.harness.slack import signed_click

PEOPLE_TEAM = "people.manager@officeflow.test"
MANAGER = "admin@officeflow.test"  # in the sandbox's Google directory and Slack seeds
MANAGER_SLACK_ID = "U0SEED0001"  # admin@officeflow.test in the sandbox's Slack seed
APPROVALS_CHANNEL = "C0GENERAL0"  # #general, the default OFFICEFLOW_SLACK_APPROVALS_CHANNEL


def task_state(platform: AirflowPlatform, dag_id: str, run_id: str, task_id: str) -> str | None:
    response = platform.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
    return response.json().get("state") if response.status_code == 200 else None


def xcom(platform: AirflowPlatform, dag_id: str, run_id: str, task_id: str) -> Any:
    response = platform.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/"
                                   "return_value")
    assert response.status_code == 200, (task_id, response.text)
    return response.json()["value"]


def approval_message(platform: AirflowPlatform, sandbox: SandboxServer, dag_id: str, run_id: str, task_id: str,
                     timeout: float = 240) -> dict[str, Any]:
    """The run's approval message in Slack, once the task awaits input."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = task_state(platform, dag_id, run_id, task_id)
        assert state not in ("failed", "upstream_failed"), (state, platform.logs_tail())
        if state == "awaiting_input":
            message = next((m for m in sandbox.state("slack")["messages"].get(APPROVALS_CHANNEL, [])
                            if run_id in str(m.get("blocks"))), None)
            if message is not None:
                return message
        time.sleep(1)
    raise AssertionError(f"{dag_id}/{run_id}: {task_id} never awaited input\n"
                         f"{platform.task_states(dag_id, run_id)}\n{failed_task_logs(platform, dag_id, run_id)}")


def failed_task_logs(platform: AirflowPlatform, dag_id: str, run_id: str, chars: int = 3000) -> str:
    """The end of the first try's log of every task of the run that failed or waits for a retry."""
    response = platform.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    out = []
    for ti in response.json().get("task_instances", []) if response.status_code == 200 else []:
        if ti["state"] in ("failed", "up_for_retry"):
            log = platform.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs/1",
                               headers={"Accept": "application/json"})
            events = log.json().get("content", []) if log.status_code == 200 else []
            text = "\n".join(str(e.get("event", e)) if isinstance(e, dict) else str(e) for e in events) or log.text
            out.append(f"----- {ti['task_id']} (try 1) -----\n{text[-chars:]}")
    return "\n".join(out) or platform.logs_tail()


def decide(platform: AirflowPlatform, message: dict[str, Any], approve: bool = True,
           user: str = MANAGER_SLACK_ID) -> None:
    """Click Approve (or Reject) on an approval message as ``user`` (the manager by default), as soon as it is
    there: a click before the task is ready is kept and applied when it is (docs/slack-and-calendar.md#early-clicks)."""
    action = "officeflow_approve" if approve else "officeflow_reject"
    body, headers = signed_click(message, APPROVALS_CHANNEL, action, user)
    response = httpx.post(f"{platform.base_url}/officeflow/slack/interactions", content=body, headers=headers,
                          timeout=10)
    assert response.status_code == 200 and response.json()["text"].startswith(click_answer(approve)), response.text


def click_answer(approve: bool = True) -> tuple[str, str]:
    """How the answer to an approver's click begins: applied at once, or kept until the task is ready."""
    return ("Approved by", "Your approval is recorded") if approve else ("Rejected by", "Your rejection is recorded")


def wait_for_dag(platform: AirflowPlatform, dag_id: str, timeout: float = 120) -> None:
    platform.wait_for_dag(dag_id, timeout)


def store_rows(store: str, sql: str, **params: str) -> list:
    engine = create_engine(store)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def run_doc_block(platform: AirflowPlatform, block: str, cwd: Path, *, sandbox: SandboxServer | None = None,
                  **env: str) -> str:
    """A docs bash block run as a reader would in the repository's folder, pointed at the e2e platform (and
    sandbox): the admin's password only in ``cwd/.env``, as ``./run.sh dev`` writes it; its stdout."""
    (cwd / ".env").write_text(f"OFFICEFLOW_PORT=8080\nOFFICEFLOW_ADMIN_PASSWORD={platform.password}\n")
    shell = {key: value for key, value in platform.env.items() if key != "OFFICEFLOW_ADMIN_PASSWORD"}
    shell |= {"OFFICEFLOW_URL": platform.base_url, **({"SANDBOX_URL": sandbox.url} if sandbox else {}), **env}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, capture_output=True, text=True,
                            timeout=300, env=shell)
    assert result.returncode == 0, f"{block}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout
