"""The durable inbox: store every verified event first, then start its run.

A 2xx answer is given only after the event row is committed. The row is unique on
(source, provider_event_id), so a duplicate delivery finds the stored event and its run id
instead of starting a second run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from include.officeflow.store import AuditLog, EventStatus, WebhookEvent, session_scope
from plugins.officeflow_gateway.triggering import TriggerError, run_id_for, trigger_run

log = logging.getLogger(__name__)

Trigger = Callable[..., str]


@dataclass
class Outcome:
    event_id: str
    status: str
    dag_run_id: str | None
    duplicate: bool
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "status": self.status,
            "dag_run_id": self.dag_run_id,
            "duplicate": self.duplicate,
            "reason": self.reason,
        }


def audit(action: str, *, actor: str, resource_type: str, outcome: str, correlation_id: str | None,
          resource_id: str | None = None, **details: Any) -> None:
    """Append one audit record in its own transaction."""
    with session_scope() as session:
        session.add(AuditLog(actor=actor, action=action, resource_type=resource_type,
                             resource_id=resource_id, outcome=outcome,
                             correlation_id=correlation_id, details=details))


def _store(source: str, provider_event_id: str, event_type: str, payload: dict[str, Any],
           status: EventStatus, dag_id: str | None, dag_run_id: str | None,
           correlation_id: str, error: str | None) -> tuple[WebhookEvent, bool]:
    """Insert the event or return the stored one; the bool tells whether it was new."""
    try:
        with session_scope() as session:
            event = WebhookEvent(
                source=source, provider_event_id=provider_event_id, event_type=event_type,
                status=status.value, payload=payload, dag_id=dag_id, dag_run_id=dag_run_id,
                correlation_id=correlation_id, error=error,
            )
            session.add(event)
        return event, True
    except IntegrityError:
        with session_scope() as session:
            existing = session.scalars(
                select(WebhookEvent).where(
                    WebhookEvent.source == source, WebhookEvent.provider_event_id == provider_event_id
                )
            ).one()
        return existing, False


def _dispatch(event_id: str, trigger: Trigger) -> WebhookEvent:
    """Try to start the run of a pending event and record the result on the row."""
    with session_scope() as session:
        event = session.get(WebhookEvent, event_id, with_for_update=True)
        assert event is not None and event.dag_id and event.dag_run_id
        if event.status != EventStatus.PENDING.value:
            return event
        event.attempts += 1
        conf = dict(event.payload.get("conf", {}))
        try:
            trigger(event.dag_id, event.dag_run_id, conf,
                    triggered_by_name=f"officeflow-gateway:{event.source}")
        except TriggerError as exc:
            log.warning("Event %s stays pending: %s", event.id, exc)
            event.error = str(exc)
        else:
            event.status = EventStatus.TRIGGERED.value
            event.error = None
    return event


def accept(source: str, provider_event_id: str, event_type: str, payload: dict[str, Any], *,
           dag_id: str | None, conf: dict[str, Any] | None, rejection: str | None,
           correlation_id: str, trigger: Trigger = trigger_run) -> Outcome:
    """Store one verified event and, when it maps to a workflow, make sure its run exists."""
    if rejection:
        status, run_id = EventStatus.REJECTED, None
    elif dag_id and conf is not None:
        status, run_id = EventStatus.PENDING, run_id_for(source, provider_event_id)
        conf = {**conf, "source": source, "correlation_id": correlation_id}
    else:
        status, run_id = EventStatus.IGNORED, None
    stored_payload = {"event": payload, "conf": conf} if conf is not None else {"event": payload}
    event, new = _store(source, provider_event_id, event_type, stored_payload, status,
                        dag_id if run_id else None, run_id, correlation_id, rejection)
    if event.status == EventStatus.PENDING.value:
        # New events start their run now; a redelivered pending event retries it.
        event = _dispatch(event.id, trigger)
    if new and event.status == EventStatus.TRIGGERED.value:
        audit("workflow.triggered", actor=f"webhook:{source}", resource_type="dag_run",
              resource_id=event.dag_run_id, outcome="success", correlation_id=correlation_id,
              dag_id=event.dag_id, event_id=event.id)
    return Outcome(event.id, event.status, event.dag_run_id, duplicate=not new, reason=event.error)
