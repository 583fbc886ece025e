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
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from include.officeflow.events.outbox import add_event, event_row
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
    add_event(session, **_announcement(
        action=action, event_id=event_id, endpoint_id=endpoint_id, provider_event_id=provider_event_id,
        event_type=event_type, status=status, dag_id=dag_id, dag_run_id=dag_run_id,
        organization_id=organization_id, correlation_id=correlation_id, attempts=attempts))


def _announcement(*, action: str, event_id: str, endpoint_id: str, provider_event_id: str, event_type: str,
                  status: str, dag_id: str | None, dag_run_id: str | None, organization_id: str | None,
                  correlation_id: str, attempts: int = 0) -> dict[str, Any]:
    """The outbox event's arguments (``add_event`` / ``event_row``) for inbox event ``event_id``."""
    return {"area": "webhook", "action": action, "subject": event_id, "organization_id": organization_id,
            "correlation_id": correlation_id, "source": f"/officeflow/webhooks/{endpoint_id}",
            "data": {"event_id": event_id, "endpoint_id": endpoint_id,
                     "provider_event_id": _sender_made(provider_event_id), "event_type": _sender_made(event_type),
                     "status": status, "dag_id": dag_id, "dag_run_id": dag_run_id, "attempts": attempts}}


def _sender_made(value: str) -> str:
    """A value the sender chose, as the event may carry it: itself, or its digest (``sha256:…``) when it would
    be refused as event data (an event id that is an email address, say). The delivery must not fail over it."""
    return id_or_digest(value) or value


@dataclass(frozen=True)
class NewEvent:
    """What a delivery stores for one event (:func:`store`, :func:`store_many_async`)."""

    endpoint_id: str
    provider_event_id: str
    event_type: str
    document: dict[str, Any]
    conf: dict[str, Any] | None
    status: EventStatus
    dag_id: str | None
    dag_run_id: str | None
    correlation_id: str
    error: str | None
    organization_id: str | None = None
    traceparent: str | None = None

    def row(self) -> dict[str, Any]:
        """The inbox row, with a new id."""
        now = utcnow()
        payload = {"document": self.document, "conf": self.conf,
                   **({"traceparent": self.traceparent} if self.traceparent else {})}
        return {"id": new_id(), "endpoint_id": self.endpoint_id, "provider_event_id": self.provider_event_id,
                "event_type": self.event_type, "status": self.status.value, "payload": payload,
                "dag_id": self.dag_id, "dag_run_id": self.dag_run_id, "correlation_id": self.correlation_id,
                "error": self.error, "attempts": 0, "received_at": now, "updated_at": now}

    def announcement(self, event_id: str) -> dict[str, Any]:
        """The domain event's arguments: ``accepted``, or ``rejected`` for an event that maps to no valid run."""
        return _announcement(
            action="rejected" if self.status is EventStatus.REJECTED else "accepted", event_id=event_id,
            endpoint_id=self.endpoint_id, provider_event_id=self.provider_event_id, event_type=self.event_type,
            status=self.status.value, dag_id=self.dag_id, dag_run_id=self.dag_run_id,
            organization_id=self.organization_id, correlation_id=self.correlation_id)


def store(*, store_url: str | None = None, **event: Any) -> Outcome:
    """Insert the event (:class:`NewEvent`'s fields) and its domain event (accepted, or rejected), or return the
    stored one for a duplicate delivery (no domain event: nothing changed). ``store_url``: the store's URL when
    not the configured one (task code passes ``task_store_url()``). ``traceparent``: the trace the event's run
    continues (include/officeflow/tracing.py)."""
    new = NewEvent(**event)
    values = new.row()
    engine = get_engine(store_url)
    with engine.begin() as conn:
        inserted = conn.execute(_insert_or_nothing(engine.dialect.name), values).scalar_one_or_none()
        if inserted is not None:
            add_event(conn, **new.announcement(inserted))
            return Outcome(inserted, new.status.value, new.dag_run_id, duplicate=False, reason=new.error)
        key = {"endpoint_id": new.endpoint_id, "provider_event_id": new.provider_event_id}
        existing = conn.execute(_SELECT_STORED, key).one()
    return Outcome(existing.id, existing.status, existing.dag_run_id, duplicate=True, reason=existing.error)


# --- the same on asyncpg: a batch of events in one statement, one round trip, committed on its own ---------------

# The events, the domain event of each new one and the stored event of each that is not, in one statement (a
# statement is atomic: the inserts commit together). The gateway stores the events of the deliveries that arrive
# while the store is busy together (include/officeflow/store/group_commit.py): one round trip and one commit for
# many. The events are inserted in the order of their keys, in every batch: two batches with events in common
# (a redelivery in another worker's batch) wait on each other in the same order, never in a deadlock; the domain
# events keep the batch's order. The last SELECT reads the snapshot taken when the statement began: an event a
# concurrent delivery committed while this one waited on its conflict is not in it, and :func:`store_many_async`
# reads it again.
_STORE_SQL = """
WITH input AS (
    SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::text[],
                         $7::varchar[], $8::varchar[], $9::varchar[], $10::text[], $11::timestamptz[],
                         $12::varchar[], $13::varchar[], $14::varchar[], $15::varchar[], $16::text[])
           WITH ORDINALITY AS input(id, endpoint_id, provider_event_id, event_type, status, payload, dag_id, dag_run_id,
                                    correlation_id, error, received_at, announced_id, area, type, organization_id,
                                    announced, ord)
), inserted AS (
    INSERT INTO webhook_events (id, endpoint_id, provider_event_id, event_type, status, payload, dag_id, dag_run_id,
                                correlation_id, error, attempts, received_at, updated_at)
    SELECT id, endpoint_id, provider_event_id, event_type, status, payload::json, dag_id, dag_run_id,
           correlation_id, error, 0, received_at, received_at FROM input ORDER BY endpoint_id, provider_event_id
    ON CONFLICT (endpoint_id, provider_event_id) DO NOTHING
    RETURNING id, endpoint_id, provider_event_id, status, dag_run_id, error
), announced AS (
    INSERT INTO outbox (event_id, area, type, subject, organization_id, correlation_id, event, created_at, attempts)
    SELECT input.announced_id, input.area, input.type, inserted.id, input.organization_id, input.correlation_id,
           input.announced::json, input.received_at, 0
      FROM inserted JOIN input ON input.id = inserted.id ORDER BY input.ord
)
SELECT id, endpoint_id, provider_event_id, status, dag_run_id, error, TRUE AS new FROM inserted
UNION ALL
SELECT stored.id, stored.endpoint_id, stored.provider_event_id, stored.status, stored.dag_run_id, stored.error, FALSE
  FROM webhook_events stored JOIN input USING (endpoint_id, provider_event_id)
 WHERE NOT EXISTS (SELECT 1 FROM inserted WHERE inserted.endpoint_id = input.endpoint_id
                                            AND inserted.provider_event_id = input.provider_event_id)
"""
_SELECT_STORED_SQL = ("SELECT id, status, dag_run_id, error, FALSE AS new FROM webhook_events "
                      "WHERE endpoint_id = $1 AND provider_event_id = $2")


_encode = msgspec.json.Encoder().encode


def _json_text(value: Any) -> str:
    """``value`` as JSON text for a ``json`` column, by msgspec's encoder: ~7 times faster than ``json.dumps`` on a
    delivery's payload, which was ~8% of an edge worker's CPU (docs/BENCHMARKS.md). The values are what
    ``load_json`` parsed and ``check_storable`` let through (no NaN, no lone surrogate), and plain strings."""
    return _encode(value).decode()


async def store_many_async(conn: Any, news: Sequence[NewEvent]) -> list[Outcome]:
    """:func:`store` for several events on an asyncpg connection of a PostgreSQL store
    (include/officeflow/store/async_pg.py), in one statement (committed together): the same rows and domain events,
    an outcome per event, in order. An event given twice is stored once, the second outcome a duplicate of the first."""
    keys = [(new.endpoint_id, new.provider_event_id) for new in news]
    first_of: dict[tuple[str, str], NewEvent] = {}
    for key, new in zip(keys, news, strict=True):
        first_of.setdefault(key, new)
    unique = list(first_of.items())
    columns: list[list[Any]] = [[] for _ in range(16)]
    for _, new in unique:
        values = new.row()
        announced = event_row(**new.announcement(values["id"]))
        for column, value in zip(columns, (
                values["id"], new.endpoint_id, new.provider_event_id, new.event_type, values["status"],
                _json_text(values["payload"]), new.dag_id, new.dag_run_id, new.correlation_id, new.error,
                values["received_at"], announced["event_id"], announced["area"], announced["type"],
                announced["organization_id"], _json_text(announced["event"])), strict=True):
            column.append(value)
    found = {(row["endpoint_id"], row["provider_event_id"]): row for row in await conn.fetch(_STORE_SQL, *columns)}
    for key, _ in unique:
        if key not in found:  # a concurrent delivery of the same event committed after this statement's snapshot
            found[key] = await conn.fetchrow(_SELECT_STORED_SQL, *key)
    outcomes, seen = [], set()
    for key in keys:
        row = found[key]
        outcomes.append(Outcome(row["id"], row["status"], row["dag_run_id"], duplicate=not row["new"] or key in seen,
                                reason=row["error"]))
        seen.add(key)
    return outcomes
