"""The transactional outbox: a domain event is a row of ``outbox`` written in the caller's transaction, so it
exists exactly when the change it reports was committed (a rolled-back change leaves no event).

:func:`lag` tells how many events wait to be published and for how long (docs/events.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
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
    event = build(area=area, action=action, subject=subject, data=data, organization_id=organization_id,
                  correlation_id=correlation_id, source=source)
    session.execute(insert(OutboxEvent).values(
        event_id=event["id"], area=area, type=event["type"], subject=subject, organization_id=organization_id,
        correlation_id=correlation_id, event=event, created_at=datetime.now(UTC), attempts=0,
    ))
    return event


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
