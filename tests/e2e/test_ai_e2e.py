"""End to end, as docs/ai.md's "Try it" runs it: an equipment request in free text is read by the sandbox's
model through real Airflow processes, the approver sees what it found, and the organization's AI usage and
budget are read and set through the organizations API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.docs import bash_blocks
from tests.harness.e2e_support import (
    approval_message,
    decide,
    run_doc_block,
    task_state,
    wait_for_dag,
    xcom,
)
from tests.harness.sandbox import SandboxServer

pytestmark = pytest.mark.e2e
DOC = "docs/ai.md"


def test_free_text_details_reach_the_approver_and_the_usage_is_accounted(
        platform: AirflowPlatform, sandbox_server: SandboxServer, tmp_path: Path):
    wait_for_dag(platform, "equipment_request")
    request, usage = bash_blocks(DOC, "## Try it (dev mode)")
    run_id = run_doc_block(platform, request, tmp_path, sandbox=sandbox_server).strip().splitlines()[-1]

    message = approval_message(platform, sandbox_server, "equipment_request", run_id, "equipment.approval")
    details = xcom(platform, "equipment_request", run_id, "read_details")
    assert details["source"] == "ai" and details["prompt"] == "equipment_details@1", details
    assert {"monitor", "headset"} <= set(details["data"]["items"]), details
    plan = xcom(platform, "equipment_request", run_id, "plan")
    assert plan["items"][0] == "laptop" and {"monitor", "headset"} <= set(plan["items"]), plan
    shown = json.dumps(message["blocks"])
    assert "monitor" in shown and "headset" in shown and "urgency" in shown, shown
    decide(platform, message, approve=False)
    assert platform.wait_for_run("equipment_request", run_id, timeout=240)["state"] == "success"
    assert task_state(platform, "equipment_request", run_id, "equipment.receipt") == "skipped"

    before = platform.api("GET", "/officeflow/api/v1/organizations/default").json()["settings"]
    try:
        spent, updated = (json.loads(line) for line in run_doc_block(platform, usage, tmp_path, sandbox=sandbox_server)
                          .strip().splitlines()[-2:])
        assert spent["organization_id"] == "default" and spent["calls"] >= 1 and spent["cost_usd"] > 0, spent
        assert "equipment_request" in {w["dag_id"] for w in spent["by_workflow"]}, spent
        assert {p["prompt"] for p in spent["by_prompt"]} >= {"equipment_details"}, spent
        assert updated["settings"]["ai"] == {"enabled": True, "monthly_budget_usd": 5}, updated
        refused = platform.api("PATCH", "/officeflow/api/v1/organizations/default",
                               json={"settings": {"ai": {"enabled": "yes"}}})
        assert refused.status_code == 422 and "enabled" in refused.text, refused.text
        bad_month = platform.api("GET", "/officeflow/api/v1/organizations/default/ai-usage",
                                 params={"month": "2026-13"})
        assert bad_month.status_code == 422 and bad_month.json()["error"]["correlationId"], bad_month.text
    finally:
        platform.api("PATCH", "/officeflow/api/v1/organizations/default", json={"settings": before})
