"""employee_offboarding: take a leaver's access away, hand over what they leave, and say goodbye.

plan (validate the leaver) → approval in Slack (a Reject ends the run, nothing touched) →
cancel the future meetings they organize (while their account can still act as organizer) →
disable the account and revoke its sessions, remove its groups → in parallel: hand their documents
to the manager (archived, still readable), archive their onboarding Slack channel, the exit email
(to the personal address) and the manager's checklist → delete the account after the retention
period (the task defers, holding no worker slot). Started by the gateway (BambooHR
``employee.terminated`` / ``employee.deleted``), the UI's trigger form or the REST API.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, task

from include.officeflow.settings import get_settings
from include.officeflow.workflow_defaults import checked, identity_provider_param, workflow_dag
from operators.calendar import CancelOrganizedMeetingsOperator
from operators.email import SendTemplatedEmailOperator
from operators.identity import DeprovisionUserOperator
from operators.slack import ArchiveChannelOperator, SlackApprovalOperator

settings = get_settings()

with workflow_dag(
    "employee_offboarding",
    description="Offboard a leaver: approval, access removal, hand-over, exit email, deletion after retention.",
    tags=["offboarding"],
    params={
        "employee_id": Param("", type="string", title="HR employee id"),
        "first_name": Param("", type="string", title="First name"),
        "last_name": Param("", type="string", title="Last name"),
        "email": Param(type="string", format="idn-email", title="Work email (the account to disable)"),
        "personal_email": Param("", type="string", title="Personal email (gets the exit email)"),
        "manager": Param("", type="string", title="Manager's name"),
        "manager_email": Param("", type="string", title="Manager's email (approves, receives the hand-over)"),
        "termination_date": Param("", type="string", title="Last working day (YYYY-MM-DD; empty: today)"),
        "identity_provider": identity_provider_param(),
        "retention_days": Param(settings.offboarding_retention_days, type="integer", minimum=0, maximum=3650,
                                title="Days the disabled account is kept before deletion"),
    },
) as dag:

    @task(multiple_outputs=True, retries=0)
    def plan(params: dict | None = None) -> dict[str, Any]:
        """Validate the leaver (every problem listed, nothing retried) and derive what the steps need."""
        from include.officeflow.hires import validate_leaver

        return checked(validate_leaver, params)

    leaver = plan()
    approval = SlackApprovalOperator(
        task_id="approval", subject=leaver["approval_subject"],
        body="Approving disables their accounts, archives their channel and documents and sends the exit email.",
        approvers=[leaver["approver_email"]], channel=settings.slack_approvals_channel,
        ignore_downstream_trigger_rules=True,  # a Reject skips every later step
        retries=0)
    cancel_meetings = CancelOrganizedMeetingsOperator(
        task_id="cancel_future_meetings", provider=settings.calendar_provider, organizer=leaver["email"],
        start=leaver["meetings_from"], comment="The organizer has left the company.")
    disable = DeprovisionUserOperator(task_id="disable_account", provider="{{ params.identity_provider }}",
                                      login=leaver["email"])
    approval >> cancel_meetings >> disable

    @task
    def archive_documents(leaver: dict[str, Any], run_id: str | None = None) -> list[dict[str, Any]]:
        """Hand the leaver's documents (``hires/<employee id>/…``) to their manager, tagged archived."""
        from include.officeflow import documents
        from include.officeflow.store import task_store_url

        return documents.archive_documents(
            leaver["organization_id"], leaver["document_prefix"], new_owner=leaver["approver_email"],
            readers=[f"user:{leaver['approver_email']}"], archived_by=f"workflow:employee_offboarding/{run_id}",
            store_url=task_store_url())

    archived = archive_documents(leaver)
    channel = ArchiveChannelOperator(task_id="archive_slack_channel", channel=leaver["channel_name"])
    exit_email = SendTemplatedEmailOperator(
        task_id="send_exit_email", template="offboarding_notice",
        to=leaver["exit_to"],
        variables=leaver["exit_email"], organization=leaver["organization_id"])
    checklist = SendTemplatedEmailOperator(
        task_id="send_manager_checklist", template="offboarding_manager_checklist", to=leaver["approver_email"],
        variables=leaver["manager_checklist"], organization=leaver["organization_id"])
    delete = DeprovisionUserOperator(task_id="delete_after_retention", provider="{{ params.identity_provider }}",
                                     login=leaver["email"], remove_groups=False,
                                     delete_after="{{ params.retention_days }}")
    disable >> [archived, channel, exit_email, checklist] >> delete
