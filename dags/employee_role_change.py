"""employee_role_change: a new job title and/or department moves the person's access and tells them.

plan (validate) → update the account's profile and move the mapped groups (include/identity/groups.yaml:
groups of the new role added, mapped groups of the old one removed) → the role-change email to the
person and a Slack note to their manager. Started by the gateway (BambooHR ``employee.job_changed``),
the UI's trigger form or the REST API.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, task

from include.officeflow.workflow_defaults import checked, identity_provider_param, workflow_dag
from operators.email import SendTemplatedEmailOperator
from operators.identity import UpdateUserOperator
from operators.slack import SlackMessageOperator

with workflow_dag(
    "employee_role_change",
    description="Role or department change: update the account and its groups, notify the person and manager.",
    tags=["role-change"],
    params={
        "employee_id": Param("", type="string", title="HR employee id"),
        "first_name": Param(type="string", minLength=1, title="First name"),
        "last_name": Param(type="string", minLength=1, title="Last name"),
        "email": Param(type="string", format="idn-email", title="Work email"),
        "department": Param("", type="string", title="New department"),
        "job_title": Param("", type="string", title="New job title"),
        "manager": Param("", type="string", title="Manager's name"),
        "manager_email": Param("", type="string", title="Manager's email (gets a Slack note)"),
        "effective_date": Param("", type="string", title="Effective date (YYYY-MM-DD)"),
        "identity_provider": identity_provider_param(),
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
