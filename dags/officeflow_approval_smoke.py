"""Smallest Slack approval: ask in Slack (Approve/Reject buttons, or the Airflow UI), then continue.

A Reject skips ``after_approval`` and the run ends successfully (a decision, not a failure).
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, task

from include.officeflow.workflow_defaults import START_DATE, dag_callbacks, default_args
from operators.slack import SlackApprovalOperator

with DAG(
    dag_id="officeflow_approval_smoke",
    description="Post an approval request to Slack and wait for an approver's decision.",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    is_paused_upon_creation=False,
    tags=["officeflow", "slack"],
    default_args=default_args(),
    **dag_callbacks(),
    params={
        "approver": Param("admin@officeflow.test", type="string", title="Approver (Slack e-mail)"),
        "channel": Param("#general", type="string", title="Slack channel"),
        "request": Param("Smoke-test approval", type="string", title="What to approve"),
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
