"""# Identity provisioning

Create (or adopt) a person's accounts in the chosen identity providers, one mapped task per provider,
in parallel:

```text
person (checks the form) ──┐
providers ─────────────────┴─ provision[google] / provision[microsoft] / provision[okta]
```

Each adds the groups `include/identity/groups.yaml` maps to the department and job title, and keeps
the temporary password in a masked Airflow Variable (`officeflow_temp_password__<provider>__<login>`).
Safe to re-run: existing accounts are adopted, memberships are not duplicated.
"""

from __future__ import annotations

from airflow.sdk import task

from include.officeflow import workflow_params as fields
from include.officeflow.workflow_defaults import workflow_dag
from operators.identity import ProvisionUserOperator

with workflow_dag(
    "identity_provisioning",
    display_name="Identity provisioning",
    description="Create a person's accounts and groups in Google Workspace, Microsoft Entra ID and Okta.",
    owner="it-team",
    doc_md=__doc__,
    tags=["identity", "it"],
    params={
        "first_name": fields.required_text("First name", "The person's given name."),
        "last_name": fields.required_text("Last name", "The person's family name."),
        "email": fields.email("Work email", "The login to create in each provider."),
        "department": fields.optional_text("Department", "Decides the groups they join."),
        "job_title": fields.optional_text("Job title", "May add role groups."),
        "providers": fields.identity_providers(),
    },
) as dag:

    @task
    def person(params: dict | None = None) -> dict:
        """The person from the run's params, checked before any provider is called."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.officeflow.identity import IdentityInputError, Person

        try:
            checked = Person.from_mapping(params or {})
        except IdentityInputError as exc:  # every problem listed; no retry will fix the input
            raise AirflowFailException(str(exc)) from exc
        return {"first_name": checked.given_name, "last_name": checked.family_name, "email": checked.email,
                "department": checked.department, "job_title": checked.job_title}

    @task
    def providers(params: dict | None = None) -> list[str]:
        return list((params or {}).get("providers") or [])

    ProvisionUserOperator.partial(task_id="provision", person=person()).expand(provider=providers())
