"""Every task's log lines carry the run's ``organization_id`` and ``correlation_id``.

The ids are the triggering event's (from the gateway) or those given through the REST API / the UI
form, so one grep follows an HR event from the webhook through every task.
"""

from __future__ import annotations

import logging
from typing import Any

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
