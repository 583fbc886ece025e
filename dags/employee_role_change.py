"""# Employee role change

A new job title and/or department moves the person's access and tells them.

```text
plan ── update_account (profile + groups moved) ─┬─ send_role_change_email
                                                  └─ has_manager ── notify_manager (Slack)
```

- **Groups**: those `include/identity/groups.yaml` maps to the new role are added, the old role's removed.
- **Manager**: a Slack note when their email is known (otherwise that step is skipped and the run succeeds).

Started by BambooHR/Workday (`employee.job_changed`) through the webhook gateway, this form, or
`POST /api/v2/dags/employee_role_change/dagRuns`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from include.officeflow import workflow_params as fields
from include.officeflow.workflow_defaults import checked, workflow_dag
from operators.email import SendTemplatedEmailOperator
from operators.identity import UpdateUserOperator
from operators.slack import SlackMessageOperator

with workflow_dag(
    "employee_role_change",
    display_name="Employee role change",
    description="Move a person to a new job title or department: update their account and groups, tell them "
                "and their manager.",
    owner="people-team",
    doc_md=__doc__,
    tags=["role-change", "people"],
    params={
        "first_name": fields.required_text("First name", "The person's given name (their profile is updated)."),
        "last_name": fields.required_text("Last name", "The person's family name."),
        "email": fields.email("Work email", "Their account."),
        "job_title": fields.optional_text("New job title", "Give a new job title, a new department, or both."),
        "department": fields.optional_text("New department", "Decides the groups they move to."),
        "effective_date": fields.date("Effective date", "When the change applies (empty: now)."),
        "manager": fields.optional_text("Manager's name", "Used in the email."),
        "manager_email": fields.optional_email("Manager's email", "Gets a Slack note (empty: no note)."),
        "identity_provider": fields.identity_provider(),
        "employee_id": fields.optional_text("HR employee id", "The HR system's id."),
    },
) as dag:

    @task(multiple_outputs=True, retries=0)
    def plan(params: dict | None = None) -> dict[str, Any]:
        """Validate the change (every problem listed, nothing retried)."""
        from include.officeflow.hires import validate_role_change

        return checked(validate_role_change, params)

    change = plan()
    account = UpdateUserOperator(task_id="update_account", provider="{{ params.identity_provider }}", person=change)
    email = SendTemplatedEmailOperator(task_id="send_role_change_email", template="role_change", to=change["email"],
                                       variables=change["email_variables"], organization=change["organization_id"])
    account >> email

    @task.short_circuit
    def has_manager(change: dict[str, Any]) -> bool:
        """The Slack note needs the manager's e-mail; without one the run still succeeds."""
        return bool(change["manager_email"])

    note = SlackMessageOperator(task_id="notify_manager", text=change["announcement"],
                                user_email=change["manager_email"])
    account >> has_manager(change) >> note
