"""The durable inbox: every verified event is committed before the gateway answers 2xx.

The row is unique on (endpoint_id, provider_event_id): a duplicate delivery finds the stored event
(and its run id) instead of creating a second one. Runs are started by the dispatcher.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from include.officeflow.store import AuditLog, EventStatus, WebhookEvent, session_scope

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    event_id: str
    status: str
    dag_run_id: str | None
    duplicate: bool
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "status": self.status, "dag_run_id": self.dag_run_id,
                "duplicate": self.duplicate, "reason": self.reason}


def audit(action: str, *, actor: str, resource_type: str, outcome: str, correlation_id: str | None,
          resource_id: str | None = None, **details: Any) -> None:
    """Append one audit record in its own transaction."""
    with session_scope() as session:
        session.add(AuditLog(actor=actor, action=action, resource_type=resource_type,
                             resource_id=resource_id, outcome=outcome,
                             correlation_id=correlation_id, details=details))


def store(*, endpoint_id: str, provider_event_id: str, event_type: str, document: dict[str, Any],
          conf: dict[str, Any] | None, status: EventStatus, dag_id: str | None, dag_run_id: str | None,
          correlation_id: str, error: str | None) -> Outcome:
    """Insert the event, or return the stored one for a duplicate delivery."""
    try:
        with session_scope() as session:
            event = WebhookEvent(
                endpoint_id=endpoint_id, provider_event_id=provider_event_id, event_type=event_type,
                status=status.value, payload={"document": document, "conf": conf}, dag_id=dag_id,
                dag_run_id=dag_run_id, correlation_id=correlation_id, error=error,
            )
            session.add(event)
        return Outcome(event.id, event.status, event.dag_run_id, duplicate=False, reason=error)
    except IntegrityError:
        with session_scope() as session:
            existing = session.scalars(
                select(WebhookEvent).where(
                    WebhookEvent.endpoint_id == endpoint_id, WebhookEvent.provider_event_id == provider_event_id
                )
            ).one()
        return Outcome(existing.id, existing.status, existing.dag_run_id, duplicate=True, reason=existing.error)
