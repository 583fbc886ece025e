"""equipment_request: someone asks for equipment; the approver decides in Slack (or the Airflow UI).

plan (validate) → approval in Slack → on Approve the equipment receipt (a stored PDF) → the
decision email to the requester (Approve or Reject). The same steps run inside employee_onboarding.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, task

from dags.workflow_parts import equipment_approval
from include.officeflow.workflow_defaults import checked, workflow_dag

with workflow_dag(
    "equipment_request",
    description="Request equipment with the approver's decision in Slack, a receipt and a decision email.",
    tags=["equipment"],
    max_active_runs=32,
    params={
        "requester_email": Param(type="string", format="idn-email", title="Who asks (gets the decision)"),
        "requester_name": Param("", type="string", title="Requester's name"),
        "for_email": Param("", type="string", title="Who the equipment is for (empty: the requester)"),
        "for_name": Param("", type="string", title="Their name"),
        "approver_email": Param("", type="string", title="Approver's email (Slack user; empty: people team)"),
        "items": Param(["laptop"], type="array", items={"type": "string"}, minItems=1, maxItems=20,
                       title="Items"),
        "reason": Param("", type="string", title="Why"),
    },
) as dag:

    @task(retries=0)
    def plan(params: dict | None = None) -> dict[str, Any]:
        """Validate the request (every problem listed, nothing retried)."""
        from include.officeflow.hires import equipment_request_plan

        return checked(equipment_request_plan, params)

    equipment_approval(plan())
