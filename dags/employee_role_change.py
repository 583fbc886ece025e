"""# Employee role change

A new job title and/or department moves the person's access and tells them.

```text
plan ── update_account (profile + groups moved) ─┬─ notify: send_role_change_email
                                                  └─ notify: has_manager ── notify_manager (Slack)
```

- **Groups**: those `include/identity/groups.yaml` maps to the new role are added, the old role's removed.
- **Manager**: a Slack note when their email is known (otherwise that step is skipped and the run succeeds).

Started by BambooHR/Workday (`employee.job_changed`) through the webhook gateway, this form, or
`POST /api/v2/dags/employee_role_change/dagRuns`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import TaskGroup, task

from include.officeflow import workflow_params as fields
from operators.email import SendTemplatedEmailOperator
from operators.identity import UpdateUserOperator
from operators.slack import SlackMessageOperator
from operators.workflow_dag import checked, workflow_dag

with workflow_dag(
    "employee_role_change",
    display_name="Employee role change",
    description="Move a person to a new job title or department: update their account and groups, tell them "
                "and their manager.",
    owner="people-team",
    doc_md=__doc__,
    tags=["role-change", "people"],
    params={
        **fields.names("The person's", why=" Their profile is updated."),
        "email": fields.email("Work email", "Their account."),
        **fields.role("Decides the groups they move to.", "Give a new job title, a new department, or both.",
                      new=True),
        "effective_date": fields.date("Effective date", "When the change applies (empty: now)."),
        **fields.manager("Gets a Slack note (empty: no note)."),
        "identity_provider": fields.identity_provider(),
        "employee_id": fields.employee_id("for the records."),
    },
) as dag:

    @task(multiple_outputs=True, retries=0)
    def plan(params: dict | None = None) -> dict[str, Any]:
        """Validate the change (every problem listed, nothing retried)."""
        from include.officeflow.hires import validate_role_change

        return checked(validate_role_change, params)

    change = plan()
    account = UpdateUserOperator(task_id="update_account", provider="{{ params.identity_provider }}", person=change)

    with TaskGroup("notify", prefix_group_id=False, tooltip="The person by email; their manager in Slack"):
        email = SendTemplatedEmailOperator(
            task_id="send_role_change_email", template="role_change", to=change["email"],
            variables=change["email_variables"], organization=change["organization_id"])

        @task.short_circuit
        def has_manager(change: dict[str, Any]) -> bool:
            """The Slack note needs the manager's e-mail; without one the run still succeeds."""
            return bool(change["manager_email"])

        note = SlackMessageOperator(task_id="notify_manager", text=change["announcement"],
                                    user_email=change["manager_email"])
        manager_known = has_manager(change)
        manager_known >> note
    account >> [email, manager_known]
