"""What every OfficeFlow DAG shares.

- External steps retry with exponential backoff (``default_args``).
- Every task's log lines carry the run's ``organization_id`` and ``correlation_id`` (the triggering
  event's, from the gateway, or one given through the REST API / the UI form), so one grep follows
  an HR event from the webhook through every task (``bind_log_context``).
- A failed run posts to Slack (``dag_callbacks``: ``on_failure_callback`` = OfficeFlow's Slack notifier).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pendulum

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")
LOG_CONTEXT_KEYS = ("organization_id", "correlation_id")


def run_log_context(context: Any) -> dict[str, str]:
    """``organization_id`` and ``correlation_id`` of the running task's DAG run (conf first, then params)."""
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    params = context.get("params") or {}
    values = {}
    for key in LOG_CONTEXT_KEYS:
        value = conf.get(key) if isinstance(conf, dict) else None
        value = value or params.get(key)
        values[key] = str(value) if value else ("default" if key == "organization_id" else "-")
    return values


def bind_log_context(context: Any) -> None:
    """``on_execute_callback``: bind the run's ids to the task's structured log context.

    Airflow's task logging runs structlog's ``merge_contextvars``, so every line the task logs after
    this (operators, hooks, the task runner) carries both keys.
    """
    from structlog.contextvars import bind_contextvars

    ids = run_log_context(context)
    bind_contextvars(**ids)
    logging.getLogger(__name__).info("organization_id=%s correlation_id=%s", ids["organization_id"],
                                     ids["correlation_id"])


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


def dag_callbacks() -> dict[str, Any]:
    """DAG-level callbacks: a failed run is announced in Slack (#officeflow-alerts) with a link to it."""
    from operators.slack import officeflow_failure_notifier

    return {"on_failure_callback": officeflow_failure_notifier}


def workflow_dag(dag_id: str, *, display_name: str, description: str, owner: str, tags: list[str],
                 params: dict[str, Any], doc_md: str | None = None, max_active_runs: int = 16,
                 with_run_params: bool = True) -> Any:
    """An OfficeFlow workflow DAG: started by people, the REST API or the gateway (no schedule), owned by
    a team (``people-team``, ``it-team``), with :func:`default_args`, :func:`dag_callbacks` and (unless
    ``with_run_params`` is false) the run details of :func:`~include.officeflow.workflow_params.run_params`
    after ``params``."""
    from airflow.sdk import DAG

    from include.officeflow.workflow_params import run_params

    return DAG(dag_id=dag_id, dag_display_name=display_name, description=description, doc_md=doc_md,
               schedule=None, start_date=START_DATE, catchup=False, is_paused_upon_creation=False,
               max_active_runs=max_active_runs, tags=["officeflow", *tags],
               default_args=default_args(owner=owner), jinja_environment_kwargs=jinja_environment(),
               params={**params, **(run_params() if with_run_params else {})}, **dag_callbacks())


def jinja_environment() -> dict[str, Any]:
    """Every OfficeFlow DAG renders an empty optional param (``None``) as an empty string."""
    from include.officeflow.templating import blank_for_none

    return {"finalize": blank_for_none}


def checked(validate: Any, params: dict[str, Any] | None) -> Any:
    """``validate(params)``; its :class:`~include.officeflow.hires.InvalidHire` fails the task for good
    (no retry fixes input), with every problem in the message."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.officeflow.hires import InvalidHire

    try:
        return validate(params or {})
    except InvalidHire as exc:
        raise AirflowFailException(str(exc)) from exc
