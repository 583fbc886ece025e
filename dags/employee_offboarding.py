"""# Employee offboarding

Take a leaver's access away, hand over what they leave, and say goodbye. Nothing is touched before
an approver says yes: a Reject ends the run with every later step skipped.

```text
plan ── approval ── access: cancel_future_meetings ── disable_account ─┬─ handover: archive_documents ──────┐
   (Slack / Required actions)                                          ├─ handover: archive_slack_channel ─┤
                                                                       ├─ farewell: send_exit_email ───────┤
                                                                       └─ farewell: send_manager_checklist ┤
                                                           delete_after_retention (after the retention) ◀──┘
```

- **Meetings** they organize are cancelled first, while their account can still act as organizer.
- **Account**: disabled, sessions revoked, groups removed; deleted after the retention period
  (`retention_days`; the task defers and holds no worker slot while it waits).
- **Documents** go to the manager (tagged archived, still readable); the onboarding Slack channel is archived.
- **Emails**: the exit email to the personal address, the checklist to the manager.

Started by BambooHR/Workday (`employee.terminated`, `employee.deleted`) through the webhook gateway,
this form, or `POST /api/v2/dags/employee_offboarding/dagRuns`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import TaskGroup, task

from include.officeflow import workflow_params as fields
from include.officeflow.settings import get_settings
from operators.calendar import CancelOrganizedMeetingsOperator
from operators.documents import ArchiveDocumentsOperator
from operators.email import SendTemplatedEmailOperator
from operators.identity import DeprovisionUserOperator
from operators.slack import ArchiveChannelOperator, SlackApprovalOperator
from operators.workflow_dag import checked, workflow_dag

settings = get_settings()

with workflow_dag(
    "employee_offboarding",
    display_name="Employee offboarding",
    description="Say goodbye to a leaver: after approval, cancel their meetings, remove their access, hand "
                "their documents to the manager, send the exit email, delete the account after retention.",
    owner="people-team",
    doc_md=__doc__,
    tags=["offboarding", "people"],
    params={
        "email": fields.email("Work email", "The leaver's account (disabled, then deleted)."),
        **fields.names("The leaver's", required=False, why=" Used in the emails and the approval request."),
        "termination_date": fields.date("Last working day", "Meetings from this day on are cancelled "
                                        "(empty: today)."),
        **fields.manager("Approves, receives the documents and the checklist (empty: the people team).",
                         "Used in the manager's checklist."),
        "personal_email": fields.optional_email("Personal email", "Gets the exit email (empty: the work "
                                                "email)."),
        "retention_days": fields.days("Keep the account for (days)", "Days the disabled account is kept "
                                      "before deletion (0: delete at once).", settings.offboarding_retention_days),
        "identity_provider": fields.identity_provider(),
        "employee_id": fields.employee_id("finds their documents and onboarding Slack channel."),
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

    with TaskGroup("access", prefix_group_id=False, tooltip="Their meetings cancelled (while the account can "
                   "still organize), then the account disabled"):
        cancel_meetings = CancelOrganizedMeetingsOperator(
            task_id="cancel_future_meetings", provider=settings.calendar_provider, organizer=leaver["email"],
            start=leaver["meetings_from"], comment="The organizer has left the company.")
        disable = DeprovisionUserOperator(task_id="disable_account", provider="{{ params.identity_provider }}",
                                          login=leaver["email"])
        cancel_meetings >> disable
    approval >> cancel_meetings

    with TaskGroup("handover", prefix_group_id=False, tooltip="Their documents to the manager, their onboarding "
                   "channel archived"):
        archived = ArchiveDocumentsOperator(
            task_id="archive_documents", organization_id=leaver["organization_id"],
            key_prefix=leaver["document_prefix"], new_owner=leaver["approver_email"],
            readers=[leaver["manager_reader"]])
        channel = ArchiveChannelOperator(task_id="archive_slack_channel", channel=leaver["channel_name"])

    with TaskGroup("farewell", prefix_group_id=False, tooltip="The exit email and the manager's checklist"):
        exit_email = SendTemplatedEmailOperator(
            task_id="send_exit_email", template="offboarding_notice", to=leaver["exit_to"],
            variables=leaver["exit_email"], organization=leaver["organization_id"])
        checklist = SendTemplatedEmailOperator(
            task_id="send_manager_checklist", template="offboarding_manager_checklist", to=leaver["approver_email"],
            variables=leaver["manager_checklist"], organization=leaver["organization_id"])

    delete = DeprovisionUserOperator(task_id="delete_after_retention", provider="{{ params.identity_provider }}",
                                     login=leaver["email"], remove_groups=False,
                                     delete_after="{{ params.retention_days }}")
    disable >> [archived, channel, exit_email, checklist] >> delete
