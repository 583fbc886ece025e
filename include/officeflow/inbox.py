"""The durable inbox: every verified event is committed before the gateway answers 2xx.

The row is unique on (endpoint_id, provider_event_id): a duplicate delivery finds the stored event
(and its run id, :func:`run_id_for`) instead of creating a second one. Runs are started by the gateway's
dispatcher, or for HR events from Kafka by the ``hr_events_from_kafka`` DAG (``include/officeflow/inbound_events.py``).

A new event also writes its domain event to the outbox in the same transaction (:func:`webhook_event`):
``com.officeflow.webhook.accepted`` or ``.rejected``; a duplicate delivery writes none.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from include.officeflow.events.outbox import add_event
from include.officeflow.events.values import id_or_digest
from include.officeflow.store import EventStatus, WebhookEvent, get_engine
from include.officeflow.store.models import new_id, utcnow

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


_COLUMNS = ("id", "endpoint_id", "provider_event_id", "event_type", "status", "payload", "dag_id", "dag_run_id",
            "correlation_id", "error", "attempts", "received_at", "updated_at")


_SELECT_STORED = select(WebhookEvent.id, WebhookEvent.status, WebhookEvent.dag_run_id, WebhookEvent.error).where(
    WebhookEvent.endpoint_id == bindparam("endpoint_id"),
    WebhookEvent.provider_event_id == bindparam("provider_event_id"),
)


@lru_cache(maxsize=4)
def _insert_or_nothing(dialect: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id``: one round trip, no exception for a duplicate.

    Built once per dialect with bound parameters (building it per delivery cost more CPU than
    running it); executed on a Core connection, no ORM unit of work.
    """
    table = WebhookEvent.__table__
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (insert(table).values({name: bindparam(name, type_=table.c[name].type) for name in _COLUMNS})
            .on_conflict_do_nothing(index_elements=["endpoint_id", "provider_event_id"])
            .returning(table.c.id))


def run_id_for(endpoint_id: str, provider_event_id: str) -> str:
    """Deterministic run id: a repeated delivery of the same event names the same run."""
    digest = hashlib.sha256(f"{endpoint_id}:{provider_event_id}".encode()).hexdigest()[:32]
    prefix = "".join(c if c.isalnum() else "_" for c in endpoint_id)[:40]
    return f"{prefix}__{digest}"


def webhook_event(session: Any, *, action: str, event_id: str, endpoint_id: str, provider_event_id: str,
                  event_type: str, status: str, dag_id: str | None, dag_run_id: str | None,
                  organization_id: str | None, correlation_id: str, attempts: int = 0) -> None:
    """Write ``com.officeflow.webhook.<action>`` (accepted, rejected, dead_lettered) for inbox event ``event_id``
    in ``session``'s transaction. Its data holds ids and states only: the payload and the error text (which may
    quote it) stay in the inbox."""
    add_event(session, area="webhook", action=action, subject=event_id, organization_id=organization_id,
              correlation_id=correlation_id, source=f"/officeflow/webhooks/{endpoint_id}",
              data={"event_id": event_id, "endpoint_id": endpoint_id,
                    "provider_event_id": _sender_made(provider_event_id), "event_type": _sender_made(event_type),
                    "status": status, "dag_id": dag_id, "dag_run_id": dag_run_id, "attempts": attempts})


def _sender_made(value: str) -> str:
    """A value the sender chose, as the event may carry it: itself, or its digest (``sha256:…``) when it would
    be refused as event data (an event id that is an email address, say). The delivery must not fail over it."""
    return id_or_digest(value) or value


def store(*, endpoint_id: str, provider_event_id: str, event_type: str, document: dict[str, Any],
          conf: dict[str, Any] | None, status: EventStatus, dag_id: str | None, dag_run_id: str | None,
          correlation_id: str, error: str | None, organization_id: str | None = None,
          store_url: str | None = None, traceparent: str | None = None) -> Outcome:
    """Insert the event and its domain event (accepted, or rejected), or return the stored one for a duplicate
    delivery (no domain event: nothing changed). ``store_url``: the store's URL when not the configured one (task
    code passes ``task_store_url()``). ``traceparent``: the trace the event's run continues
    (include/officeflow/tracing.py)."""
    now = utcnow()
    values = {
        "id": new_id(), "endpoint_id": endpoint_id, "provider_event_id": provider_event_id,
        "event_type": event_type, "status": status.value, "payload": {"document": document, "conf": conf,
                                                        **({"traceparent": traceparent} if traceparent else {})},
        "dag_id": dag_id, "dag_run_id": dag_run_id, "correlation_id": correlation_id, "error": error,
        "attempts": 0, "received_at": now, "updated_at": now,
    }
    engine = get_engine(store_url)
    with engine.begin() as conn:
        inserted = conn.execute(_insert_or_nothing(engine.dialect.name), values).scalar_one_or_none()
        if inserted is not None:
            webhook_event(conn, action="rejected" if status is EventStatus.REJECTED else "accepted",
                          event_id=inserted, endpoint_id=endpoint_id, provider_event_id=provider_event_id,
                          event_type=event_type, status=status.value, dag_id=dag_id, dag_run_id=dag_run_id,
                          organization_id=organization_id, correlation_id=correlation_id)
            return Outcome(inserted, status.value, dag_run_id, duplicate=False, reason=error)
        key = {"endpoint_id": endpoint_id, "provider_event_id": provider_event_id}
        existing = conn.execute(_SELECT_STORED, key).one()
    return Outcome(existing.id, existing.status, existing.dag_run_id, duplicate=True, reason=existing.error)
