"""# Employee onboarding

Everything a new hire needs before and on their first day. `plan` checks the form (every problem
listed at once, nothing retried), then five branches (task groups) run in parallel and a summary goes
to the manager:

```text
plan ─┬─ identity:  provision_account ─┬─ schedule_manager_1on1 ─────────────────────────┐
      │                                └─ schedule_it_setup ─────────────────────────────┤
      ├─ texts:     personalise (AI) ── personal_texts ─┐                                │
      ├─ documents: welcome_pack ── send_welcome_email (pack attached) ◀─┤               │
      ├─ slack:     create_slack_channel ── post_slack_intro ◀───────────┘               │
      ├─ emails:    send_manager_heads_up, send_first_day_logistics ─────────────────────┤
      └─ equipment: recommend (AI) ── prepare ── approval ─┬─ receipt ── decision ── decision_email
                                                           └─ grant_access (after provision_account)
                                                                         ┴─ summarise ── notify_summary
```

- **Account**: created (or adopted) in the company's identity provider with the groups
  `include/identity/groups.yaml` maps to the department and job title.
- **Meetings**: a 1:1 with the manager and the IT setup, in the first common free slot of the start week.
- **Equipment**: the manager approves in Slack or in the Airflow UI (*Required actions*); a Reject
  still sends the decision email.
- **AI** (docs/ai.md): `personalise` writes a personal paragraph for the welcome email, the Slack intro and
  the welcome pack; `recommend` proposes an access and equipment bundle for the role, shown in the approval
  request; only an approved bundle is provisioned (`grant_access`, the receipt). With AI off, over budget or
  failing, both steps succeed without it: the plain templates and the request as asked are used, and the
  summary says which texts were used.
- **Summary**: posted to the manager in Slack and written into the run's note.

Started by BambooHR/Workday (`employee.created`) through the webhook gateway, this form, or
`POST /api/v2/dags/employee_onboarding/dagRuns`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import TaskGroup, task

from dags.workflow_parts import equipment_approval
from include.officeflow import workflow_params as fields
from include.officeflow.settings import get_settings
from operators.ai import StructuredOutputOperator
from operators.calendar import ScheduleMeetingOperator
from operators.documents import RenderDocumentOperator
from operators.email import SendTemplatedEmailOperator
from operators.identity import ProvisionUserOperator
from operators.slack import CreateChannelOperator, SlackMessageOperator
from operators.workflow_dag import checked, workflow_dag

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
        **fields.names("The new hire's"),
        "email": fields.email("Work email", "The account to create, e.g. ada.lovelace@yourcompany.com."),
        "start_date": fields.date("Start date", "Their first day; the first-day meetings are booked that "
                                  "week (empty: from tomorrow)."),
        **fields.role("Decides the groups they join.", "Shown in the Slack intro; may add role groups."),
        **fields.manager("Approves the equipment, meets the hire on day one and gets the summary (empty: the "
                         "people team).", "Used in the emails and the welcome pack."),
        "personal_email": fields.optional_email("Personal email", "Gets the welcome email and pack before "
                                                "the work account exists (empty: the work email)."),
        "location": fields.optional_text("Location", "Where they start (empty: the main office)."),
        "time_zone": fields.time_zone(),
        "equipment": fields.equipment("Equipment", "What the manager is asked to approve (empty: nothing).",
                                      default=["laptop"]),
        "identity_provider": fields.identity_provider(),
        "employee_id": fields.employee_id("names their documents and Slack channel."),
    },
) as dag:

    @task(multiple_outputs=True, retries=0)
    def plan(params: dict | None = None) -> dict[str, Any]:
        """Validate the hire (every problem listed, nothing retried) and derive what the steps need."""
        from include.officeflow.hires import onboarding_plan

        return checked(onboarding_plan, params)

    hire = plan()

    with TaskGroup("identity", prefix_group_id=False, tooltip="The account and its groups, then the first-day "
                   "meetings in the company's calendar"):
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

    with TaskGroup("texts", prefix_group_id=False, tooltip="Personal welcome texts written by AI (plain templates "
                   "without it)"):
        personalise = StructuredOutputOperator(task_id="personalise", prompt="onboarding_welcome",
                                               variables=hire["ai_profile"], organization_id=hire["organization_id"])

        @task(multiple_outputs=True)
        def personal_texts(hire: dict[str, Any], personalised: dict[str, Any] | None) -> dict[str, Any]:
            """The welcome email's, pack's and Slack intro's variables, with the AI's texts when there are some."""
            from include.officeflow.hires import with_personal_texts

            return with_personal_texts(hire, personalised)

        texts = personal_texts({"welcome_email": hire["welcome_email"], "welcome_pack": hire["welcome_pack"],
                                "channel_intro": hire["channel_intro"]}, personalise.output)

    with TaskGroup("documents", prefix_group_id=False, tooltip="The welcome pack PDF, sent with the welcome email"):
        welcome_pack = RenderDocumentOperator(
            task_id="welcome_pack", template="welcome_pack", variables=texts["welcome_pack"],
            logical_key=hire["document_key"], title="Welcome pack", tags=hire["document_tags"],
            readers=["role:admin"], organization_id=hire["organization_id"],
            multiple_outputs=True)  # the email reads document_id and version
        welcome_email = SendTemplatedEmailOperator(
            task_id="send_welcome_email", template="welcome", to=hire["welcome_to"], variables=texts["welcome_email"],
            organization=hire["organization_id"],
            attachments=[{"document_id": welcome_pack.output["document_id"],
                          "version": welcome_pack.output["version"]}])

    with TaskGroup("emails", prefix_group_id=False, tooltip="The manager's heads-up and the first-day logistics"):
        heads_up = SendTemplatedEmailOperator(
            task_id="send_manager_heads_up", template="manager_heads_up", to=hire["approver_email"],
            variables=hire["heads_up_email"], organization=hire["organization_id"])
        first_day = SendTemplatedEmailOperator(
            task_id="send_first_day_logistics", template="first_day_logistics", to=hire["welcome_to"],
            variables=hire["first_day_email"], organization=hire["organization_id"])

    with TaskGroup("slack", prefix_group_id=False, tooltip="The onboarding channel, then the intro message"):
        channel = CreateChannelOperator(task_id="create_slack_channel", name=hire["channel_name"],
                                        invite_emails=hire["channel_invites"],
                                        topic="Onboarding {{ params.first_name }} {{ params.last_name }}",
                                        multiple_outputs=True)  # the intro reads channel_id
        intro = SlackMessageOperator(task_id="post_slack_intro", template="welcome_channel_intro",
                                     variables=texts["channel_intro"], channel=channel.output["channel_id"])

    equipment = equipment_approval(hire["equipment_request"], bundle_input=hire["bundle_input"],
                                   organization_id=hire["organization_id"], account=account)

    @task(trigger_rule="none_failed")
    def summarise(hire: dict[str, Any], done: dict[str, Any], approval_task_id: str, ti: Any = None) -> str:
        """One message saying what was done (steps that were skipped say so). The approval's decision is
        read by its task id: a direct downstream of the approval would be skipped by a Reject."""
        from include.officeflow.hires import onboarding_summary

        return onboarding_summary(hire, {**done, "equipment.approval": ti.xcom_pull(task_ids=approval_task_id)})

    summary = dag.add_result(summarise(hire, {  # the run's result: written into its note when it ends
        "provision_account": account.output, "welcome_pack": welcome_pack.output,
        "create_slack_channel": channel.output, "schedule_manager_1on1": manager_one_on_one.output,
        "schedule_it_setup": it_setup.output, "equipment.receipt": equipment.receipt.output,
        "equipment.prepare": equipment.request, "equipment.grant_access": equipment.grant.output if equipment.grant
        else None, "texts_used": texts["texts_used"],
    }, equipment.approval.task_id))
    [welcome_email, heads_up, first_day, intro, equipment.group] >> summary
    SlackMessageOperator(task_id="notify_summary", text=summary, user_email=hire["approver_email"])
