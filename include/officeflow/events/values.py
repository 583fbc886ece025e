"""Values an event's data takes from elsewhere: ids someone else made, and the ids of the run a task belongs to.

- :func:`id_or_digest`: an id a sender or provider chose (a webhook's event id, an SMTP Message-ID, a reader's
  principal) as event data may carry it: itself, or its digest (``sha256:…``) when it would be refused (an email
  address, a credential's shape). The change must not fail over such an id.
- :func:`run_ids`: ``(organization_id, correlation_id)`` of a task's DAG run (conf first, then params), for the
  events a task writes; :func:`run_value`: another id of the run (``employee_id``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from include.officeflow.events.cloudevents import EventDataError, check_data


def id_or_digest(value: str | None) -> str | None:
    """``value`` when event data may hold it, else ``sha256:<first 32 hex digits>`` (None stays None)."""
    if value is None:
        return None
    try:
        check_data({"value": value})
    except EventDataError:
        return f"sha256:{hashlib.sha256(value.encode()).hexdigest()[:32]}"
    return value


def run_value(context: Any, key: str) -> str | None:
    """``key`` of the running task's DAG run: its conf first, then its params; None when neither has it."""
    if not context:
        return None
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    params = context.get("params") or {}
    value = (conf.get(key) if isinstance(conf, dict) else None) or params.get(key)
    return str(value)[:64] if value not in (None, "") else None


def run_ids(context: Any) -> tuple[str | None, str | None]:
    """``(organization_id, correlation_id)`` of the running task's DAG run, None when the run has none."""
    return run_value(context, "organization_id"), run_value(context, "correlation_id")
