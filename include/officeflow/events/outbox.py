"""The transactional outbox: a domain event is a row of ``outbox`` written in the caller's transaction, so it
exists exactly when the change it reports was committed (a rolled-back change leaves no event).

The relay (``plugins/officeflow_events/relay.py``) claims unsent rows (:func:`claim`), publishes them and marks
them sent (:func:`mark_sent`) or gives them back (:func:`release`); :func:`lag` tells how many events wait and for
how long; :func:`purge_sent` deletes rows sent before a cutoff (docs/events.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session

from include.officeflow.events.cloudevents import DEFAULT_SOURCE, build
from include.officeflow.store.models import OutboxEvent


def add_event(session: Session | Connection, *, area: str, action: str, subject: str, data: Mapping[str, Any],
              organization_id: str | None = None, correlation_id: str | None = None,
              source: str = DEFAULT_SOURCE) -> dict[str, Any]:
    """Write a CloudEvents 1.0 event ``com.officeflow.<area>.<action>`` to the outbox in ``session``'s
    transaction (an ORM session or a Core connection); returns the event.

    Raises :class:`~include.officeflow.events.cloudevents.EventDataError` before writing anything when ``data``
    holds a secret or personal data (see ``cloudevents``): the caller's change then fails too, as a bug should.
    """
    row = event_row(area=area, action=action, subject=subject, data=data, organization_id=organization_id,
                    correlation_id=correlation_id, source=source)
    session.execute(insert(OutboxEvent).values(row))
    return row["event"]


def event_row(*, area: str, action: str, subject: str, data: Mapping[str, Any], organization_id: str | None = None,
              correlation_id: str | None = None, source: str = DEFAULT_SOURCE) -> dict[str, Any]:
    """The ``outbox`` row of a new event (its columns' values; ``event`` is the CloudEvent), for a caller that
    writes it with its own statement (the gateway's asyncpg path, include/officeflow/inbox.py). Data is checked
    as by :func:`add_event`."""
    event = build(area=area, action=action, subject=subject, data=data, organization_id=organization_id,
                  correlation_id=correlation_id, source=source)
    return _row(event, area, subject, organization_id, correlation_id)


#: The namespace of :func:`stable_event_id`.
EVENT_ID_NAMESPACE = uuid.UUID("6f1b3c52-4a8e-5d0e-9a57-0ff1cef10e11")


def stable_event_id(*parts: object) -> str:
    """The same event id for the same ``parts`` (a UUID 5): for a change that may be reported more than once,
    e.g. by an Airflow listener that can fire twice for one state change."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(str(part) for part in parts)))


def add_event_once(session: Session | Connection, *, event_id: str, area: str, action: str, subject: str,
                   data: Mapping[str, Any], organization_id: str | None = None, correlation_id: str | None = None,
                   source: str = DEFAULT_SOURCE) -> dict[str, Any] | None:
    """:func:`add_event` with the caller's ``event_id`` (see :func:`stable_event_id`), unless the outbox already
    holds that id (``INSERT … ON CONFLICT DO NOTHING``): returns the event, or None when it was written before.
    Data is checked as by :func:`add_event`."""
    event = build(area=area, action=action, subject=subject, data=data, organization_id=organization_id,
                  correlation_id=correlation_id, source=source, event_id=event_id)
    dialect = session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name
    statement: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = session.execute(statement(OutboxEvent).values(_row(event, area, subject, organization_id, correlation_id))
                             .on_conflict_do_nothing(index_elements=["event_id"])
                             .returning(OutboxEvent.seq))
    return event if result.scalar_one_or_none() is not None else None


def _row(event: dict[str, Any], area: str, subject: str, organization_id: str | None,
         correlation_id: str | None) -> dict[str, Any]:
    return {"event_id": event["id"], "area": area, "type": event["type"], "subject": subject,
            "organization_id": organization_id, "correlation_id": correlation_id, "event": event,
            "created_at": datetime.now(UTC), "attempts": 0}


@dataclass(frozen=True)
class Claimed:
    seq: int
    event_id: str
    area: str
    subject: str
    event: dict[str, Any]


def claim(session: Session, relay_id: str, *, limit: int, lease_seconds: float) -> list[Claimed]:
    """Claim up to ``limit`` unsent rows, oldest first, for ``lease_seconds``: rows another relay holds (a live
    lease, or a row lock of a claim in progress: ``FOR UPDATE SKIP LOCKED``) are skipped. A relay that dies
    leaves its lease to run out, and the rows are claimed again (the at-least-once case).

    Order per subject (the Kafka key) is kept: a row is claimed only with every earlier unsent row of its
    subject, so a row that waits (in backoff after a failed delivery, or held by another relay) holds back the
    later events of its subject until it is sent."""
    now = datetime.now(UTC)
    rows = session.execute(
        select(OutboxEvent.seq, OutboxEvent.event_id, OutboxEvent.area, OutboxEvent.subject, OutboxEvent.event)
        .where(OutboxEvent.sent_at.is_(None),
               or_(OutboxEvent.claimed_until.is_(None), OutboxEvent.claimed_until < now))
        .order_by(OutboxEvent.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    kept = _in_subject_order(session, rows)
    if kept:  # one statement for the batch (bench/relay_throughput.py: an ORM update per row cost half a pass)
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.seq.in_([row.seq for row in kept]))
            .values(claimed_by=relay_id, claimed_until=now + timedelta(seconds=lease_seconds),
                    attempts=OutboxEvent.attempts + 1)
            .execution_options(synchronize_session=False)
        )
    return [Claimed(row.seq, row.event_id, row.area, row.subject, row.event) for row in kept]


def _in_subject_order(session: Session, rows: Sequence[Row[Any]]) -> list[Row[Any]]:
    """The rows whose earlier unsent rows of the same subject are all among ``rows`` (a prefix per subject)."""
    if not rows:
        return []
    unsent: dict[str, list[int]] = {}
    for subject, seq in session.execute(
            select(OutboxEvent.subject, OutboxEvent.seq)
            .where(OutboxEvent.sent_at.is_(None), OutboxEvent.subject.in_({r.subject for r in rows}),
                   OutboxEvent.seq <= max(r.seq for r in rows))
            .order_by(OutboxEvent.seq)):
        unsent.setdefault(subject, []).append(seq)
    candidates = {r.seq for r in rows}
    kept: list[Row[Any]] = []
    for row in rows:
        earlier = [seq for seq in unsent.get(row.subject, []) if seq < row.seq]
        if all(seq in candidates for seq in earlier):
            kept.append(row)
        else:
            candidates.discard(row.seq)  # held back: the later rows of its subject wait for it too
    return kept


def mark_sent(session: Session, relay_id: str, seqs: list[int]) -> int:
    """Mark rows this relay still holds as sent; returns how many."""
    if not seqs:
        return 0
    result = session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.seq.in_(seqs), OutboxEvent.claimed_by == relay_id, OutboxEvent.sent_at.is_(None))
        .values(sent_at=datetime.now(UTC), claimed_until=None, last_error=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def release(session: Session, relay_id: str, seqs: list[int], error: str, retry_at: datetime) -> None:
    """Give back rows that were not delivered: claimable again from ``retry_at`` (the relay's backoff)."""
    if seqs:
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.seq.in_(seqs), OutboxEvent.claimed_by == relay_id, OutboxEvent.sent_at.is_(None))
            .values(claimed_until=retry_at, last_error=error[:2000])
        )


@dataclass(frozen=True)
class Lag:
    unsent: int
    oldest_unsent_age_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"unsent": self.unsent, "oldest_unsent_age_seconds": self.oldest_unsent_age_seconds}


def lag(session: Session) -> Lag:
    """How far the relay is behind: unsent events and the age of the oldest (0 when none)."""
    count, oldest = session.execute(
        select(func.count(), func.min(OutboxEvent.created_at)).where(OutboxEvent.sent_at.is_(None))
    ).one()
    if not count or oldest is None:
        return Lag(0, 0.0)
    if oldest.tzinfo is None:  # SQLite hands back naive datetimes
        oldest = oldest.replace(tzinfo=UTC)
    return Lag(int(count), max(0.0, (datetime.now(UTC) - oldest).total_seconds()))


def purge_sent(session: Session, sent_before: datetime, *, limit: int) -> int:
    """Delete up to ``limit`` rows sent before ``sent_before``, oldest first; returns how many. Unsent rows are
    never deleted. Rows another purge holds are skipped (``SKIP LOCKED``), so relays purging at once do not wait
    on each other. Call it until it returns less than ``limit``, one transaction per batch."""
    doomed = (select(OutboxEvent.seq)
              .where(OutboxEvent.sent_at.is_not(None), OutboxEvent.sent_at < sent_before)
              .order_by(OutboxEvent.sent_at, OutboxEvent.seq)  # the index ix_outbox_unsent (sent_at, seq)
              .limit(limit)
              .with_for_update(skip_locked=True))
    seqs = list(session.scalars(doomed))
    if not seqs:
        return 0
    result = session.execute(delete(OutboxEvent).where(OutboxEvent.seq.in_(seqs)))
    return int(getattr(result, "rowcount", 0) or 0)
