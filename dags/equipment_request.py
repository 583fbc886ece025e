"""# Equipment request

Someone asks for equipment; the approver decides in Slack or in the Airflow UI (*Required actions*).

```text
plan ── equipment: prepare ── approval ── receipt (PDF, stored) ──┐
                                   └──────────────────── decision ─┴─ decision_email
```

On Approve the receipt is stored as a document; the requester gets the decision email either way.
The same steps run inside `employee_onboarding`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from dags.workflow_parts import equipment_approval
from include.officeflow import workflow_params as fields
from operators.workflow_dag import checked, workflow_dag

with workflow_dag(
    "equipment_request",
    display_name="Equipment request",
    description="Ask for a laptop, monitor or anything else: the approver decides in Slack, a receipt is "
                "stored and the requester gets the decision.",
    owner="it-team",
    doc_md=__doc__,
    tags=["equipment", "it"],
    max_active_runs=32,
    params={
        "requester_email": fields.email("Your email", "Who asks; gets the decision."),
        "items": fields.equipment("Items", "What is needed: pick one or more.", required=True),
        "reason": fields.optional_text("Why", "Shown to the approver."),
        "for_email": fields.optional_email("For (email)", "Who the equipment is for (empty: the requester)."),
        "for_name": fields.optional_text("For (name)", "Their name, on the receipt."),
        "requester_name": fields.optional_text("Your name", "Shown to the approver (empty: your email)."),
        "approver_email": fields.optional_email("Approver's email", "A Slack user who decides (empty: the "
                                                "people team)."),
    },
) as dag:

    @task(retries=0)
    def plan(params: dict | None = None) -> dict[str, Any]:
        """Validate the request (every problem listed, nothing retried)."""
        from include.officeflow.hires import equipment_request_plan

        return checked(equipment_request_plan, params)

    equipment_approval(plan())
