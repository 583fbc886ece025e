"""employee_onboarding: everything a new hire needs before and on their first day.

plan (validate the hire, derive the rest) → in parallel:

- identity: create or adopt the account in the company's identity provider, with the groups
  include/identity/groups.yaml maps to the department and job title → the first-day meetings
  (a 1:1 with the manager, the IT setup) in the company's calendar;
- documents: the welcome pack PDF (stored, versioned) → the welcome email with it attached;
- emails: the manager's heads-up and the first-day logistics;
- Slack: the onboarding channel (the manager invited) → the intro message;
- equipment: the manager approves in Slack → the equipment receipt → the decision email;

→ a summary to the manager in Slack. Started by the gateway (BambooHR ``employee.created``), the
Airflow UI's trigger form, or ``POST /api/v2/dags/employee_onboarding/dagRuns``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, task

from dags.workflow_parts import equipment_approval
from include.officeflow.settings import get_settings
from include.officeflow.workflow_defaults import checked, identity_provider_param, workflow_dag
from operators.calendar import ScheduleMeetingOperator
from operators.documents import RenderDocumentOperator
from operators.email import SendTemplatedEmailOperator
from operators.identity import ProvisionUserOperator
from operators.slack import CreateChannelOperator, SlackMessageOperator

settings = get_settings()

with workflow_dag(
    "employee_onboarding",
    description="Onboard a new hire: accounts, documents, emails, Slack, first-day meetings, equipment.",
    tags=["onboarding"],
    params={
        "employee_id": Param("", type="string", title="HR employee id"),
        "first_name": Param(type="string", minLength=1, title="First name"),
        "last_name": Param(type="string", minLength=1, title="Last name"),
        "email": Param(type="string", format="idn-email", title="Work email (the account to create)"),
        "personal_email": Param("", type="string", title="Personal email (gets the welcome email)"),
        "department": Param("", type="string", title="Department"),
        "job_title": Param("", type="string", title="Job title"),
        "manager": Param("", type="string", title="Manager's name"),
        "manager_email": Param("", type="string", title="Manager's email (approves, meets the hire)"),
        "start_date": Param("", type="string", title="Start date (YYYY-MM-DD)"),
        "location": Param("", type="string", title="Location"),
        "time_zone": Param("UTC", type="string", title="Time zone of the first day (IANA, e.g. Europe/Berlin)"),
        "identity_provider": identity_provider_param(),
        "equipment": Param(["laptop"], type="array", items={"type": "string"}, maxItems=20,
                           title="Equipment to request (empty: none)"),
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

    summary = summarise(hire)
    [manager_one_on_one, it_setup, welcome_email, heads_up, first_day, intro, equipment] >> summary
    SlackMessageOperator(task_id="notify_summary", text=summary, user_email=hire["approver_email"])
