"""The outbox on a real PostgreSQL: an event is written in the caller's transaction (committed with it, rolled back
with it), refused data writes nothing, and the lag counts what waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from include.officeflow.events.cloudevents import EventDataError
from include.officeflow.events.outbox import add_event, claim, lag, mark_sent, release
from include.officeflow.store import AuditLog, OutboxEvent, session_scope


def _rows() -> list[OutboxEvent]:
    with session_scope() as session:
        return list(session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq)))


def _audit_count() -> int:
    with session_scope() as session:
        return len(session.scalars(select(AuditLog)).all())


def _change(session) -> None:
    """A change of the caller's, to show the event shares its fate."""
    session.add(AuditLog(actor="test", action="test.change", resource_type="test", outcome="success"))


def test_an_event_is_committed_with_the_change(clean_store):
    with session_scope() as session:
        _change(session)
        event = add_event(session, area="document", action="stored", subject="doc-1",
                          data={"document_id": "doc-1"}, organization_id="acme", correlation_id="cid-1")
    [row] = _rows()
    assert (row.event_id, row.area, row.subject) == (event["id"], "document", "doc-1")
    assert row.type == "com.officeflow.document.stored"
    assert (row.organization_id, row.correlation_id, row.sent_at, row.attempts) == ("acme", "cid-1", None, 0)
    assert row.event == event and _audit_count() == 1


def test_a_rolled_back_change_leaves_no_event(clean_store):
    with pytest.raises(RuntimeError), session_scope() as session:
        _change(session)
        add_event(session, area="document", action="stored", subject="doc-1", data={"document_id": "doc-1"})
        session.flush()  # the row reached the database inside the transaction
        assert len(session.scalars(select(OutboxEvent)).all()) == 1
        raise RuntimeError("the change failed after its event was written")
    assert _rows() == [] and _audit_count() == 0


def test_refused_data_writes_nothing_and_fails_the_change(clean_store):
    with pytest.raises(EventDataError, match="secrets"), session_scope() as session:
        _change(session)
        add_event(session, area="auth", action="changed", subject="u1", data={"password": "hunter2"})
    assert _rows() == [] and _audit_count() == 0


def test_a_core_connection_works_as_the_transaction_too(clean_store):
    from include.officeflow.store import get_engine

    with get_engine().begin() as conn:
        add_event(conn, area="webhook", action="accepted", subject="e1", data={"event_id": "e1"})
    assert [r.subject for r in _rows()] == ["e1"]


def test_lag_counts_unsent_events_and_the_oldest_age(clean_store):
    with session_scope() as session:
        assert lag(session).as_dict() == {"unsent": 0, "oldest_unsent_age_seconds": 0.0}
    with session_scope() as session:
        for n in range(3):
            add_event(session, area="webhook", action="accepted", subject=f"e{n}", data={"event_id": f"e{n}"})
    with session_scope() as session:
        found = lag(session)
    assert found.unsent == 3 and 0 <= found.oldest_unsent_age_seconds < 60


def test_a_waiting_event_holds_back_the_later_events_of_its_subject_only(clean_store):
    with session_scope() as session:
        for subject in ("a", "b", "a", "b"):
            add_event(session, area="webhook", action="accepted", subject=subject, data={"event_id": subject})
    with session_scope() as session:
        first = claim(session, "relay-1", limit=2, lease_seconds=30)  # a1, b1
    assert [(c.subject, c.seq) for c in first] == [("a", first[0].seq), ("b", first[1].seq)]
    with session_scope() as session:  # a1 failed and waits in backoff; b1 was delivered
        release(session, "relay-1", [first[0].seq], "broker down", datetime.now(UTC) + timedelta(minutes=5))
        mark_sent(session, "relay-1", [first[1].seq])
    with session_scope() as session:
        second = claim(session, "relay-2", limit=10, lease_seconds=30)
    assert [c.subject for c in second] == ["b"]  # a2 waits for a1; b2 goes
    with session_scope() as session:  # a1's backoff is over: a1 and a2 go together, in order
        release(session, "relay-1", [first[0].seq], "broker down", datetime.now(UTC) - timedelta(seconds=1))
    with session_scope() as session:
        third = claim(session, "relay-1", limit=10, lease_seconds=30)
    assert [c.subject for c in third] == ["a", "a"] and third[0].seq < third[1].seq


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_an_event_with_a_stable_id_is_written_once(clean_store, tmp_path, database):
    from include.officeflow.events.outbox import add_event_once, stable_event_id
    from include.officeflow.store import get_engine, migrate

    url = None
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        migrate(url)
    event_id = stable_event_id("workflow", "started", "dag", "run-1", 0)
    assert event_id == stable_event_id("workflow", "started", "dag", "run-1", 0)
    assert event_id != stable_event_id("workflow", "started", "dag", "run-1", 1)  # a cleared run: a new event
    written = []
    for _ in range(2):  # a listener that fires twice for one change
        with session_scope(url) as session:
            written.append(add_event_once(session, event_id=event_id, area="workflow", action="started",
                                          subject="dag/run-1", data={"run_id": "run-1"}))
    with get_engine(url).begin() as conn:  # a Core connection works too
        written.append(add_event_once(conn, event_id=event_id, area="workflow", action="started",
                                      subject="dag/run-1", data={"run_id": "run-1"}))
    assert written[0] is not None and written[0]["id"] == event_id and written[1:] == [None, None]
    with session_scope(url) as session:
        assert [row.event_id for row in session.scalars(select(OutboxEvent))] == [event_id]
    with pytest.raises(EventDataError), session_scope(url) as session:  # its data is checked as add_event's
        add_event_once(session, event_id=stable_event_id("x"), area="workflow", action="started", subject="s",
                       data={"email": "ada@example.com"})
