"""# Approval smoke test

The smallest Slack approval, to check that Slack and approvals work: ask in Slack (Approve/Reject
buttons, or the Airflow UI's *Required actions*), then continue.

```text
approval ── after_approval
```

A Reject skips `after_approval` and the run ends successfully (a decision, not a failure).
"""

from __future__ import annotations

from airflow.sdk import task

from include.officeflow import workflow_params as fields
from operators.slack import SlackApprovalOperator
from operators.workflow_dag import workflow_dag

with workflow_dag(
    "officeflow_approval_smoke",
    display_name="Approval smoke test",
    description="Check that Slack approvals work: post an approval request and wait for a decision.",
    owner="it-team",
    doc_md=__doc__,
    tags=["slack", "it"],
    with_run_params=False,
    params={
        **fields.approval_check("Where the request is posted."),
        "request": fields.text("What to approve", "The request's title.", default="Smoke-test approval"),
    },
) as dag:
    approval = SlackApprovalOperator(
        task_id="approval",
        subject="{{ params.request }}",
        body="Requested by run {{ run_id }}.",
        approvers=["{{ params.approver }}"],
        channel="{{ params.channel }}",
    )

    @task
    def after_approval(decision: dict) -> dict:
        return {"approved_by": (decision.get("responded_by_user") or {}).get("name")}

    after_approval(approval.output)
