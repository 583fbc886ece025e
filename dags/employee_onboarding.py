"""# Employee onboarding

Everything a new hire needs before and on their first day. `plan` checks the form (every problem
listed at once, nothing retried), then five branches run in parallel and a summary goes to the manager:

```text
plan ─┬─ provision_account ─┬─ schedule_manager_1on1 ──────────────────────────┐
      │   (account + groups) └─ schedule_it_setup ───────────────────────────────┤
      ├─ welcome_pack (PDF, stored) ── send_welcome_email (pack attached) ──────┤
      ├─ send_manager_heads_up,  send_first_day_logistics ─────────────────────┤
      ├─ create_slack_channel (manager invited) ── post_slack_intro ───────────┤
      └─ equipment: prepare ── approval (Slack / Required actions) ── receipt ─┤
                              └──────────────── decision ── decision_email ────┴─ summarise ── notify_summary
```

- **Account**: created (or adopted) in the company's identity provider with the groups
  `include/identity/groups.yaml` maps to the department and job title.
- **Meetings**: a 1:1 with the manager and the IT setup, in the first common free slot of the start week.
- **Equipment**: the manager approves in Slack or in the Airflow UI (*Required actions*); a Reject
  still sends the decision email.
- **Summary**: posted to the manager in Slack and written into the run's note.

Started by BambooHR/Workday (`employee.created`) through the webhook gateway, this form, or
`POST /api/v2/dags/employee_onboarding/dagRuns`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from dags.workflow_parts import equipment_approval
from include.officeflow import workflow_params as fields
from include.officeflow.settings import get_settings
from include.officeflow.workflow_defaults import checked, workflow_dag
from operators.calendar import ScheduleMeetingOperator
from operators.documents import RenderDocumentOperator
from operators.email import SendTemplatedEmailOperator
from operators.identity import ProvisionUserOperator
from operators.slack import CreateChannelOperator, SlackMessageOperator

settings = get_settings()

with workflow_dag(
    "employee_onboarding",
    display_name="Employee onboarding",
    description="Welcome a new hire: their account and groups, welcome pack and emails, a Slack channel, "
                "first-day meetings and the equipment their manager approves.",
    owner="people-team",
    doc_md=__doc__,
    tags=["onboarding", "people"],
    params={
        "first_name": fields.required_text("First name", "The new hire's given name."),
        "last_name": fields.required_text("Last name", "The new hire's family name."),
        "email": fields.email("Work email", "The account to create, e.g. ada.lovelace@yourcompany.com."),
        "start_date": fields.date("Start date", "Their first day; the first-day meetings are booked that "
                                  "week (empty: from tomorrow)."),
        "department": fields.optional_text("Department", "Decides the groups they join."),
        "job_title": fields.optional_text("Job title", "Shown in the Slack intro; may add role groups."),
        "manager": fields.optional_text("Manager's name", "Used in the emails and the welcome pack."),
        "manager_email": fields.optional_email("Manager's email", "Approves the equipment, meets the hire on "
                                               "day one and gets the summary (empty: the people team)."),
        "personal_email": fields.optional_email("Personal email", "Gets the welcome email and pack before "
                                                "the work account exists (empty: the work email)."),
        "location": fields.optional_text("Location", "Where they start (empty: the main office)."),
        "time_zone": fields.time_zone(),
        "equipment": fields.equipment("Equipment", "What the manager is asked to approve (empty: nothing).",
                                      default=["laptop"]),
        "identity_provider": fields.identity_provider(),
        "employee_id": fields.optional_text("HR employee id", "The HR system's id (BambooHR/Workday); names "
                                            "their documents and Slack channel."),
    },
) as dag:

    @task(multiple_outputs=True, retries=0)
    def plan(params: dict | None = None) -> dict[str, Any]:
        """Validate the hire (every problem listed, nothing retried) and derive what the steps need."""
        from include.officeflow.hires import onboarding_plan

        return checked(onboarding_plan, params)

    hire = plan()

    account = ProvisionUserOperator(task_id="provision_account", provider="{{ params.identity_provider }}",
                                    person=hire["welcome_email"])
    manager_one_on_one = ScheduleMeetingOperator(
        task_id="schedule_manager_1on1", provider=settings.calendar_provider, organizer=hire["approver_email"],
        attendees=[hire["email"]], title="Welcome 1:1", description="Your first 1:1 with your manager.",
        window_start=hire["meeting_window_start"], window_end=hire["meeting_window_end"], duration=30,
        time_zone=hire["time_zone"])
    it_setup = ScheduleMeetingOperator(
        task_id="schedule_it_setup", provider=settings.calendar_provider, organizer=hire["it_email"],
        attendees=[hire["email"]], title="IT setup", description="Laptop, accounts and security basics.",
        window_start=hire["meeting_window_start"], window_end=hire["meeting_window_end"], duration=45,
        time_zone=hire["time_zone"])
    account >> [manager_one_on_one, it_setup]

    welcome_pack = RenderDocumentOperator(
        task_id="welcome_pack", template="welcome_pack", variables=hire["welcome_pack"],
        logical_key=hire["document_key"], title="Welcome pack", tags=hire["document_tags"],
        readers=["role:admin"], organization_id=hire["organization_id"])
    welcome_email = SendTemplatedEmailOperator(
        task_id="send_welcome_email", template="welcome", to=hire["welcome_to"], variables=hire["welcome_email"],
        organization=hire["organization_id"],
        attachments=[{"document_id": "{{ ti.xcom_pull(task_ids='welcome_pack')['document_id'] }}",
                      "version": "{{ ti.xcom_pull(task_ids='welcome_pack')['version'] }}"}])
    welcome_pack >> welcome_email
    heads_up = SendTemplatedEmailOperator(
        task_id="send_manager_heads_up", template="manager_heads_up", to=hire["approver_email"],
        variables=hire["heads_up_email"], organization=hire["organization_id"])
    first_day = SendTemplatedEmailOperator(
        task_id="send_first_day_logistics", template="first_day_logistics", to=hire["welcome_to"],
        variables=hire["first_day_email"], organization=hire["organization_id"])

    channel = CreateChannelOperator(task_id="create_slack_channel", name=hire["channel_name"],
                                    invite_emails=hire["channel_invites"],
                                    topic="Onboarding {{ params.first_name }} {{ params.last_name }}")
    intro = SlackMessageOperator(task_id="post_slack_intro", template="welcome_channel_intro",
                                 variables=hire["channel_intro"],
                                 channel="{{ ti.xcom_pull(task_ids='create_slack_channel')['channel_id'] }}")
    channel >> intro

    equipment = equipment_approval(hire["equipment_request"])

    @task(trigger_rule="none_failed")
    def summarise(hire: dict[str, Any], ti: Any = None) -> str:
        """One message saying what was done (steps that were skipped say so)."""
        from include.officeflow.hires import onboarding_summary

        steps = ("provision_account", "welcome_pack", "send_welcome_email", "create_slack_channel",
                 "schedule_manager_1on1", "schedule_it_setup", "equipment.approval", "equipment.receipt")
        return onboarding_summary(hire, {step: ti.xcom_pull(task_ids=step) for step in steps})

    summary = dag.add_result(summarise(hire))  # the run's result: written into its note when it ends
    [manager_one_on_one, it_setup, welcome_email, heads_up, first_day, intro, equipment] >> summary
    SlackMessageOperator(task_id="notify_summary", text=summary, user_email=hire["approver_email"])
