"""The one builder of OfficeFlow's DAGs: the Python workflows in ``dags/`` and the declarative ones.

What every OfficeFlow DAG shares:

- started by people, the REST API or the gateway (no schedule unless a declarative workflow has one),
  no catch-up, not paused at creation, owned by a team (``people-team``, ``it-team``);
- external steps retry with exponential backoff (:func:`default_args`);
- every task's log lines carry the run's ``organization_id`` and ``correlation_id``
  (:func:`include.officeflow.log_context.bind_log_context`);
- a failed run posts to Slack (``on_failure_callback`` = OfficeFlow's Slack notifier);
- an empty optional param renders as ``""`` in templates, never ``"None"``;
- the HR workflows also take the run details the gateway and the APIs fill
  (:func:`include.officeflow.workflow_params.run_params`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException

from include.officeflow.auth.permissions import access_control, workflow_access_control
from include.officeflow.hires import InvalidHire
from include.officeflow.log_context import bind_log_context
from include.officeflow.templating import blank_for_none
from include.officeflow.workflow_params import run_params
from operators.slack import officeflow_failure_notifier

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")


def default_args(**overrides: Any) -> dict[str, Any]:
    """``default_args`` for an OfficeFlow DAG: 3 retries, 30 s doubling up to 10 minutes, log context."""
    return {
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "on_execute_callback": bind_log_context,
        **overrides,
    }


def workflow_dag(dag_id: str, *, display_name: str, description: str | None, owner: str, tags: list[str],
                 params: Mapping[str, Any], doc_md: str | None = None, schedule: str | list[Any] | None = None,
                 max_active_runs: int = 16, with_run_params: bool = True,
                 default_args_overrides: Mapping[str, Any] | None = None, access: Iterable[str] = ()) -> DAG:
    """An OfficeFlow DAG with everything above; ``with_run_params`` adds the run details after ``params``.

    Who may see and trigger it: the roles its tags grant (``OFFICEFLOW_WORKFLOW_ACCESS``) and ``access``,
    as the DAG's ``access_control`` (per-DAG permissions of the FAB auth manager)."""
    grant = workflow_access_control(tags)
    grant.update(access_control(role for role in access if role not in grant))
    return DAG(dag_id=dag_id, dag_display_name=display_name, description=description, doc_md=doc_md,
               schedule=schedule, start_date=START_DATE, catchup=False, is_paused_upon_creation=False,
               max_active_runs=max_active_runs, tags=list(dict.fromkeys(["officeflow", *tags])),
               default_args=default_args(owner=owner, **(default_args_overrides or {})),
               jinja_environment_kwargs={"finalize": blank_for_none},
               params={**params, **(run_params() if with_run_params else {})},
               on_failure_callback=officeflow_failure_notifier, access_control=grant)


def checked(validate: Callable[[dict[str, Any]], Any], params: dict[str, Any] | None) -> Any:
    """``validate(params)``; its :class:`~include.officeflow.hires.InvalidHire` fails the task for good
    (no retry fixes input), with every problem in the message."""
    try:
        return validate(params or {})
    except InvalidHire as exc:
        raise AirflowFailException(str(exc)) from exc
