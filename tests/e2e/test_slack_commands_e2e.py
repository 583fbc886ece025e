"""End to end through real Airflow processes and the Slack sandbox playing the user: /officeflow request
equipment opens the modal, a wrong submission is answered inline, a right one starts equipment_request (the
answer comes back within Slack's 3 s, before the run is done), the requester gets a DM with the run's link,
and the run reaches its approval, which the approver then sees in /officeflow and on the App Home tab."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.e2e_support import wait_for_dag
from tests.harness.sandbox import SandboxServer
from tests.harness.slack import act, configure_app
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.e2e
DAG_ID = "equipment_request"
APPROVER, REQUESTER = "U0SEED0001", "U0SEED0002"  # admin@ and people.manager@officeflow.test in the seed


def open_view(sandbox: SandboxServer, user_id: str) -> dict[str, Any] | None:
    views = sandbox.state("slack").get("views", {}).values()
    return next((v for v in views if v["user_id"] == user_id and v["open"] and v["type"] == "modal"), None)


def requested_run(platform: AirflowPlatform) -> dict[str, Any] | None:
    runs = platform.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100").json()["dag_runs"]
    return next((r for r in runs if (r.get("conf") or {}).get("requester_email") == "people.manager@officeflow.test"
                 and (r.get("conf") or {}).get("source") == "slack"), None)


def test_slash_command_modal_submission_starts_the_request(platform: AirflowPlatform, sandbox_server: SandboxServer):
    sandbox_server.reset()
    configure_app(sandbox_server, f"{platform.base_url}/officeflow")
    assert act(sandbox_server, "url_verification")["verified"] is True
    wait_for_dag(platform, DAG_ID)

    answered = act(sandbox_server, "command", user_id=REQUESTER, text="request equipment")
    assert answered["status"] == 200 and "error" not in answered, answered
    view = wait_until(lambda: open_view(sandbox_server, REQUESTER), 15, "the modal")
    assert view["callback_id"] == "officeflow_equipment_request"

    refused = act(sandbox_server, "view_submission", user_id=REQUESTER, view_id=view["id"],
                  values={"approver_email": {"approver_email": "not an email"}})
    assert refused["status"] == 200 and refused["body"]["response_action"] == "errors", refused
    assert set(refused["view"]["errors"]) == {"items", "approver_email"} and refused["view"]["open"]
    assert requested_run(platform) is None

    done = act(sandbox_server, "view_submission", user_id=REQUESTER, view_id=view["id"], values={
        "items": {"items": ["laptop", "monitor"]}, "reason": {"reason": "Second screen"},
        "approver_email": {"approver_email": "admin@officeflow.test"}})
    # Answered in time (the sandbox drops a later answer as operation_timeout), the modal closed ...
    assert done["status"] == 200 and done["body"] == {"response_action": "clear"}, done
    assert not done["view"]["open"]
    # ... and the run exists but is not done: its work happens in Airflow, after the answer.
    started = requested_run(platform)
    assert started is not None and started["state"] in ("queued", "running"), started
    run_id = started["dag_run_id"]
    assert started["conf"]["items"] == ["laptop", "monitor"] and started["conf"]["requester_name"] == "People Manager"

    def dm() -> dict[str, Any] | None:
        state = sandbox_server.state("slack")
        return next((m for cid, messages in state["messages"].items() if state["channels"][cid].get("user") == REQUESTER
                     for m in messages if run_id in json.dumps(m.get("blocks", []))), None)

    confirmation = wait_until(dm, 15, "the confirmation DM")["text"]
    assert confirmation.startswith("Your equipment request (laptop, monitor) is on its way") and run_id in confirmation

    assert platform.wait_for_task(DAG_ID, run_id, "equipment.approval", timeout=240) == "awaiting_input", \
        platform.logs_tail()
    asked = act(sandbox_server, "command", user_id=APPROVER)
    assert asked["status"] == 200 and "error" not in asked, asked
    summary = wait_until(lambda: sandbox_server.state("slack")["command_responses"][asked["command_id"]], 15,
                         "the approver's summary")
    assert "Equipment for people.manager@officeflow.test: laptop, monitor" in json.dumps(summary[0]["blocks"])

    assert act(sandbox_server, "app_home_opened", user_id=APPROVER)["status"] == 200
    home = wait_until(lambda: sandbox_server.state("slack").get("home", {}).get(APPROVER), 15, "the Home tab")
    home_blocks = json.dumps(sandbox_server.state("slack")["views"][home]["blocks"])
    assert "Pending approvals" in home_blocks and run_id in home_blocks
    time.sleep(1)
    assert platform.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"] == "running"
