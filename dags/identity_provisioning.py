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
from operators.identity import ProvisionUserOperator
from operators.workflow_dag import workflow_dag

with workflow_dag(
    "identity_provisioning",
    display_name="Identity provisioning",
    description="Create a person's accounts and groups in Google Workspace, Microsoft Entra ID and Okta.",
    owner="it-team",
    doc_md=__doc__,
    tags=["identity", "it"],
    params={
        **fields.names("The person's"),
        "email": fields.email("Work email", "The login to create in each provider."),
        **fields.role("Decides the groups they join.", "May add role groups."),
        "providers": fields.identity_providers(),
    },
) as dag:

    @task
    def person(params: dict | None = None) -> dict:
        """The person from the run's params, checked before any provider is called."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.officeflow.errors import InvalidInput
        from include.officeflow.identity import Person

        try:
            checked = Person.from_mapping(params or {})
        except InvalidInput as exc:  # every problem listed; no retry will fix the input
            raise AirflowFailException(str(exc)) from exc
        return {"first_name": checked.given_name, "last_name": checked.family_name, "email": checked.email,
                "department": checked.department, "job_title": checked.job_title}

    @task
    def providers(params: dict | None = None) -> list[str]:
        return list((params or {}).get("providers") or [])

    ProvisionUserOperator.partial(task_id="provision", person=person()).expand(provider=providers())
