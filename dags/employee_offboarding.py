"""# Employee offboarding

Take a leaver's access away, hand over what they leave, and say goodbye. Nothing is touched before
an approver says yes: a Reject ends the run with every later step skipped.

```text
plan ── approval ── cancel_future_meetings ── disable_account ─┬─ archive_documents ──────┐
   (Slack / Required actions)                                  ├─ archive_slack_channel ──┤
                                                               ├─ send_exit_email ────────┤
                                                               └─ send_manager_checklist ─┴─ delete_after_retention
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

from airflow.sdk import task

from include.officeflow import workflow_params as fields
from include.officeflow.settings import get_settings
from include.officeflow.workflow_defaults import checked, workflow_dag
from operators.calendar import CancelOrganizedMeetingsOperator
from operators.email import SendTemplatedEmailOperator
from operators.identity import DeprovisionUserOperator
from operators.slack import ArchiveChannelOperator, SlackApprovalOperator

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
        "first_name": fields.optional_text("First name", "Used in the emails and the approval request."),
        "last_name": fields.optional_text("Last name", "Used in the emails and the approval request."),
        "termination_date": fields.date("Last working day", "Meetings from this day on are cancelled "
                                        "(empty: today)."),
        "manager": fields.optional_text("Manager's name", "Used in the manager's checklist."),
        "manager_email": fields.optional_email("Manager's email", "Approves, receives the documents and the "
                                               "checklist (empty: the people team)."),
        "personal_email": fields.optional_email("Personal email", "Gets the exit email (empty: the work "
                                                "email)."),
        "retention_days": fields.days("Keep the account for (days)", "Days the disabled account is kept "
                                     "before deletion (0: delete at once).", settings.offboarding_retention_days),
        "identity_provider": fields.identity_provider(),
        "employee_id": fields.optional_text("HR employee id", "The HR system's id; finds their documents and "
                                            "onboarding Slack channel."),
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
