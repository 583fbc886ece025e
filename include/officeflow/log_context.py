"""Every task's log lines carry the run's ids and OfficeFlow's log fields, with secrets redacted.

The ids are the triggering event's (from the gateway) or those given through the REST API / the UI
form, so one grep follows an HR event from the webhook through every task. Fields (docs/observability.md):
``correlationId``, ``organizationId``, ``workflowId`` (the DAG id), ``service``, ``version``, ``environment``,
beside Airflow's own ``timestamp``, ``level``, ``event`` (the message) and ``logger``.
"""

from __future__ import annotations

import logging
from typing import Any

from include.officeflow.redaction import RedactSecrets, redact_event

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


def task_log_fields(context: Any) -> dict[str, str]:
    """What every line of the task carries: the run's ids, the workflow, and the deployment's fields."""
    from include.officeflow.structured_logs import static_fields

    ids = run_log_context(context)
    dag = context.get("dag")
    workflow = getattr(dag, "dag_id", None) or getattr(context.get("dag_run"), "dag_id", None) or "-"
    return {"correlationId": ids["correlation_id"], "organizationId": ids["organization_id"],
            "workflowId": str(workflow), **static_fields()}


def install_task_redaction() -> None:
    """OfficeFlow's redaction in this task process, after Airflow's secrets masker (which hides registered
    secrets and sensitive keys): a structlog processor before the renderer (structlog loggers such as
    ``self.log`` first used from now on) and a filter on the root handlers (stdlib loggers)."""
    import structlog

    processors = list(structlog.get_config()["processors"])
    if processors and redact_event not in processors:
        structlog.configure(processors=[*processors[:-1], redact_event, processors[-1]])
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, RedactSecrets) for existing in handler.filters):
            handler.addFilter(RedactSecrets())


def bind_log_context(context: Any) -> None:
    """``on_execute_callback``: bind the run's fields to the task's structured log context.

    Airflow's task logging runs structlog's ``merge_contextvars``, so every line the task logs after
    this (operators, hooks, the task runner) carries them.
    """
    from structlog.contextvars import bind_contextvars

    fields = task_log_fields(context)
    bind_contextvars(**fields)
    install_task_redaction()
    logging.getLogger(__name__).info("correlationId=%s organizationId=%s workflowId=%s", fields["correlationId"],
                                     fields["organizationId"], fields["workflowId"])
