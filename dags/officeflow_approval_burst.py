"""# Approval burst check

Many Slack approvals at once, to check that approvals hold under load: one approval request per item, all
posted together (a mapped `SlackApprovalOperator`), each decided on its own by its Approve/Reject buttons. The
end-to-end tests click each one as soon as it is posted (docs/slack-and-calendar.md#early-clicks).

```text
items ── approval[0 … count-1]
```
"""

from __future__ import annotations

from airflow.sdk import task

from include.officeflow import workflow_params as fields
from operators.slack import SlackApprovalOperator
from operators.workflow_dag import workflow_dag

with workflow_dag(
    "officeflow_approval_burst",
    display_name="Approval burst check",
    description="Check Slack approvals under load: post many approval requests at once, each decided on its own.",
    owner="it-team",
    doc_md=__doc__,
    tags=["slack", "it"],
    with_run_params=False,
    params={
        **fields.approval_check("Where the requests are posted."),
        "count": fields.count("Requests", "How many approval requests to post at once.", default=10, maximum=200),
    },
) as dag:

    @task
    def items(count: str) -> list[str]:
        return [f"Burst approval {n} of {count}" for n in range(1, int(count) + 1)]

    SlackApprovalOperator.partial(
        task_id="approval",
        body="Requested by run {{ run_id }}.",
        approvers=["{{ params.approver }}"],
        channel="{{ params.channel }}",
    ).expand(subject=items("{{ params.count }}"))
