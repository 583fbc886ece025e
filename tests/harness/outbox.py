"""The outbox in tests: the domain events a change wrote, and a store that refuses to write some of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def events(store_url: str | None = None, area: str | None = None) -> list[dict[str, Any]]:
    """The CloudEvents in the outbox (of ``area`` only, if given), in the order they were written."""
    from sqlalchemy import select

    from include.officeflow.store import OutboxEvent, session_scope

    query = select(OutboxEvent).order_by(OutboxEvent.seq)
    if area:
        query = query.where(OutboxEvent.area == area)
    with session_scope(store_url) as session:
        return [row.event for row in session.scalars(query)]


def assert_no_personal_data(event: dict[str, Any], *values: str) -> None:
    """None of ``values`` (an address, a name, a title) appears anywhere in ``event``, in any case."""
    text = json.dumps(event).lower()
    for value in values:
        assert value.lower() not in text, f"{value!r} in {event}"


@contextmanager
def outbox_refusing(store_url: str, area: str) -> Iterator[None]:
    """While inside, PostgreSQL refuses to write events of ``area`` to the outbox (a CHECK constraint): the
    change that writes one fails at the database, as it would if the outbox could not be written."""
    from sqlalchemy import text

    from include.officeflow.store import get_engine

    name = f"test_refuse_{area}"
    with get_engine(store_url).begin() as conn:
        conn.execute(text(f"ALTER TABLE outbox ADD CONSTRAINT {name} CHECK (area <> '{area}') NOT VALID"))
    try:
        yield
    finally:
        with get_engine(store_url).begin() as conn:
            conn.execute(text(f"ALTER TABLE outbox DROP CONSTRAINT {name}"))
