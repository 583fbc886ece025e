"""employee_onboarding: welcome a new hire (first slice: validate the hire, send the welcome email).

Started by the OfficeFlow gateway (BambooHR ``employee.created``), the Airflow UI's trigger form
or ``POST /api/v2/dags/employee_onboarding/dagRuns``.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, task

from include.officeflow.workflow_defaults import START_DATE, default_args
from operators.email import SendTemplatedEmailOperator

with DAG(
    dag_id="employee_onboarding",
    description="Onboard a new hire: validate, then welcome them by email.",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    is_paused_upon_creation=False,
    max_active_runs=16,
    tags=["officeflow", "onboarding"],
    default_args=default_args(),
    params={
        "employee_id": Param("", type="string", title="HR employee id"),
        "first_name": Param(type="string", minLength=1, title="First name"),
        "last_name": Param("", type="string", title="Last name"),
        "email": Param(type="string", format="idn-email", title="Email the welcome goes to"),
        "personal_email": Param("", type="string", title="Personal email"),
        "department": Param("", type="string", title="Department"),
        "job_title": Param("", type="string", title="Job title"),
        "start_date": Param("", type="string", title="Start date (YYYY-MM-DD)"),
        "location": Param("", type="string", title="Location"),
        "manager": Param("", type="string", title="Manager"),
        "source": Param("manual", type="string", title="What started the run"),
        "correlation_id": Param("", type="string", title="Correlation id of the triggering event"),
    },
) as dag:

    @task(multiple_outputs=True)
    def validate_hire(params: dict | None = None) -> dict:
        """Check the hire's data before anything is sent; log the correlation id for tracing."""
        from include.officeflow.hires import validate_hire as check

        return check(params or {})

    hire = validate_hire()
    welcome = SendTemplatedEmailOperator(
        task_id="send_welcome_email",
        template="welcome",
        to=hire["email"],
        variables=hire,
    )
