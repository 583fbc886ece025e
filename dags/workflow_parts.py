"""Steps shared by several OfficeFlow workflows (imported by the DAG files; defines no DAG itself)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from airflow.sdk import TaskGroup, task
from airflow.sdk.exceptions import AirflowSkipException

from include.officeflow.settings import get_settings
from operators.ai import RecommendBundleOperator
from operators.documents import RenderDocumentOperator
from operators.email import SendTemplatedEmailOperator
from operators.identity import GroupMembershipOperator
from operators.slack import SlackApprovalOperator

#: How long an approval waits for the approver before the task fails (and the run's failure is posted).
APPROVAL_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class EquipmentSteps:
    """The equipment request's task group and the steps other tasks read results of."""

    group: TaskGroup
    request: Any  # the request as shown for approval (prepare's result)
    approval: SlackApprovalOperator
    receipt: RenderDocumentOperator
    grant: GroupMembershipOperator | None


def equipment_approval(request: Any, *, group_id: str = "equipment", bundle_input: Any = None,
                       organization_id: Any = None, account: Any = None,
                       provider: str = "{{ params.identity_provider }}") -> EquipmentSteps:
    """Ask the approver in Slack; on Approve, issue the equipment receipt (a stored PDF); either way,
    email the requester the decision.

    ``request`` is an XCom of :func:`include.officeflow.hires.equipment_request_plan`'s result, or
    of None when there is nothing to request (every step of the group is then skipped).

    With ``bundle_input`` (:func:`include.officeflow.hires.bundle_input`) the AI recommends an access and
    equipment bundle first; the approval request shows it with its reasons, and only an approved bundle is
    provisioned: its equipment goes on the receipt, its access groups are granted after ``account`` (the
    provisioning step) by ``grant_access`` at ``provider``. A Reject skips both. Without AI the request is
    what was asked for.
    """
    with TaskGroup(group_id=group_id, tooltip="Equipment request with manager approval in Slack") as group:
        recommendation = None
        if bundle_input is not None:
            recommendation = RecommendBundleOperator(
                task_id="recommend", prompt="onboarding_bundle", variables=bundle_input,
                organization_id=organization_id).output  # no AI answer: the request as asked

        @task(multiple_outputs=True, trigger_rule="none_failed")
        def prepare(plan: dict[str, Any] | None, recommendation: dict[str, Any] | None = None) -> dict[str, Any]:
            """The request to decide on (with the AI's recommendation, if any); skips the group when the
            workflow requests no equipment."""
            if not plan:
                raise AirflowSkipException("no equipment requested")
            from include.officeflow.hires import with_recommendation

            return with_recommendation(plan, recommendation)

        req = prepare(request, recommendation)
        approval = SlackApprovalOperator(
            task_id="approval",
            subject=req["subject"],
            body=req["body"],
            approvers=[req["approver_email"]],
            channel=get_settings().slack_approvals_channel,
            response_timeout=APPROVAL_TIMEOUT,
            retries=0,  # a retry would post a second request; a failed approval is re-run by a person
        )
        receipt = RenderDocumentOperator(
            task_id="receipt",
            template="equipment_receipt",
            variables=req["receipt"],
            logical_key=req["receipt_key"],
            title="Equipment receipt",
            tags={"workflow": "equipment_request"},
            readers=["role:admin"],
            organization_id=req["organization_id"],
        )
        approval >> receipt  # a Reject skips the receipt (ApprovalOperator skips its direct downstream)
        grant = None
        if account is not None:
            grant = GroupMembershipOperator(task_id="grant_access", provider=provider,
                                            login=req["login"], groups=req["access_groups"], action="add")
            [approval, account] >> grant  # a Reject skips it too: nothing unapproved is granted

        @task(trigger_rule="none_failed_min_one_success")
        def decision(plan: dict[str, Any], approval_task_id: str, ti: Any = None) -> dict[str, Any]:
            """The decision email's variables, Approve or Reject (it runs after the receipt or its skip).
            The approval's answer is read by its task id: a direct downstream of the approval would be
            skipped by a Reject."""
            from include.officeflow.hires import equipment_decision

            return equipment_decision(plan, ti.xcom_pull(task_ids=approval_task_id))

        decided = decision(req, approval.task_id)
        receipt >> decided
        SendTemplatedEmailOperator(
            task_id="decision_email",
            template="approval_decision",
            to=req["requester_email"],
            variables=decided,
            organization=req["organization_id"],
        )
    return EquipmentSteps(group, req, approval, receipt, grant)
