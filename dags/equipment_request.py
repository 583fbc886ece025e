"""# Equipment request

Someone asks for equipment; the approver decides in Slack or in the Airflow UI (*Required actions*).

```text
read_details (AI) ── plan ── equipment: prepare ── approval ── receipt (PDF, stored) ──┐
                                                        └──────────────────── decision ─┴─ decision_email
```

`read_details` reads the free-text *Details* (docs/ai.md): items from the catalogue it names join the
form's items, and its urgency, date and justification go to the approver. Empty details, or AI off or over
budget: the form alone. An answer that stays invalid fails the step, saying what was wrong.
On Approve the receipt is stored as a document; the requester gets the decision email either way.
The same steps run inside `employee_onboarding`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from dags.workflow_parts import equipment_approval
from include.officeflow import workflow_params as fields
from operators.ai import ExtractOperator
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
        "details": fields.optional_text("Details", "In your own words, e.g. 'a second monitor and a headset by "
                                        "Friday for calls' (read by AI; its findings are shown to the approver)."),
        "for_email": fields.optional_email("For (email)", "Who the equipment is for (empty: the requester)."),
        "for_name": fields.optional_text("For (name)", "Their name, on the receipt."),
        "requester_name": fields.optional_text("Your name", "Shown to the approver (empty: your email)."),
        "approver_email": fields.optional_email("Approver's email", "A Slack user who decides (empty: the "
                                                "people team)."),
    },
) as dag:

    details = ExtractOperator(task_id="read_details", prompt="equipment_details", text="{{ params.details }}",
                              variables={"today": "{{ macros.datetime.now().strftime('%Y-%m-%d') }}"},
                              organization_id="{{ params.organization_id }}")

    @task(retries=0, trigger_rule="none_failed")
    def plan(details: dict[str, Any] | None, params: dict | None = None) -> dict[str, Any]:
        """Validate the request (every problem listed, nothing retried), with what the details say."""
        from include.officeflow.hires import equipment_request_plan, with_details

        return checked(equipment_request_plan, with_details(params or {}, details))

    equipment_approval(plan(details.output))
