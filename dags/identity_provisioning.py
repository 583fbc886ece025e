"""identity_provisioning: create (or adopt) a person's accounts in the chosen identity providers.

One mapped task per provider (Google Workspace, Microsoft Entra, Okta), in parallel. Each adds the
groups ``include/identity/groups.yaml`` maps to the department and job title, and leaves the temporary
password in a masked Airflow Variable (``officeflow_temp_password__<provider>__<login>``).
Safe to re-run: existing accounts are adopted, memberships are not duplicated.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, task

from include.officeflow.workflow_defaults import START_DATE, dag_callbacks, default_args
from operators.identity import ProvisionUserOperator

with DAG(
    dag_id="identity_provisioning",
    description="Provision a person's accounts and groups in Google Workspace, Microsoft Entra and Okta.",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    is_paused_upon_creation=False,
    tags=["officeflow", "identity"],
    default_args=default_args(),
    **dag_callbacks(),
    params={
        "first_name": Param(type="string", minLength=1, title="First name"),
        "last_name": Param(type="string", minLength=1, title="Last name"),
        "email": Param(type="string", format="idn-email", title="Work email (the login to create)"),
        "department": Param("", type="string", title="Department"),
        "job_title": Param("", type="string", title="Job title"),
        "providers": Param(
            ["google", "microsoft", "okta"],
            type="array",
            items={"type": "string", "enum": ["google", "microsoft", "okta"]},
            minItems=1,
            uniqueItems=True,
            title="Identity providers",
        ),
        "correlation_id": Param("", type="string", title="Correlation id of the triggering event"),
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
