"""The inbox on asyncpg (the gateway's delivery path) against the synchronous one, on a real PostgreSQL store:
the same rows, the same domain event, one event per key under concurrency, and a clear error when the store is
down."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select

from include.officeflow.inbox import NewEvent, store, store_many_async
from include.officeflow.settings import get_settings
from include.officeflow.store import EventStatus, OutboxEvent, WebhookEvent, async_pg, session_scope
from tests.harness.ports import free_port


def new_event(provider_event_id: str, **fields: Any) -> NewEvent:
    values: dict[str, Any] = {
        "endpoint_id": "bamboohr", "provider_event_id": provider_event_id, "event_type": "employee.created",
        "document": {"employee_id": "7", "fields": {"firstName": "Ada", "note": "ünïcode ✓"}},
        "conf": {"email": "ada@example.com", "start_date": "2026-12-01"}, "status": EventStatus.PENDING,
        "dag_id": "employee_onboarding", "dag_run_id": f"bamboohr__{provider_event_id}", "correlation_id": "cid-1",
        "error": None, "organization_id": "default", "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
    }
    return NewEvent(**{**values, **fields})


def run(coroutine_function, *args: Any) -> Any:
    """Run on a new loop, closing the loop's pools before it ends."""

    async def main() -> Any:
        try:
            return await coroutine_function(*args)
        finally:
            await async_pg.close_all()

    return asyncio.run(main())


async def store_async(conn: Any, new: NewEvent) -> Any:
    [outcome] = await store_many_async(conn, [new])
    return outcome


async def store_once(new: NewEvent):
    return await async_pg.with_connection(lambda conn: store_async(conn, new))


def stored(endpoint_id: str = "bamboohr") -> list[tuple[WebhookEvent, list[OutboxEvent]]]:
    with session_scope() as session:
        events = list(session.scalars(select(WebhookEvent).where(WebhookEvent.endpoint_id == endpoint_id)
                                      .order_by(WebhookEvent.provider_event_id)))
        return [(event, list(session.scalars(select(OutboxEvent).where(OutboxEvent.subject == event.id))))
                for event in events]


def comparable(event: WebhookEvent, outbox: list[OutboxEvent]) -> dict[str, Any]:
    [announced] = outbox
    data = dict(announced.event["data"])
    assert data.pop("event_id") == event.id
    return {"event": {c: getattr(event, c) for c in ("endpoint_id", "event_type", "status", "payload", "dag_id",
                                                     "correlation_id", "error", "attempts")},
            "outbox": {"type": announced.type, "area": announced.area, "organization_id": announced.organization_id,
                       "correlation_id": announced.correlation_id, "source": announced.event["source"],
                       "data": {k: v for k, v in data.items() if k not in ("provider_event_id", "dag_run_id")}}}


@pytest.mark.parametrize("status, error", [(EventStatus.PENDING, None), (EventStatus.REJECTED, "email: missing"),
                                           (EventStatus.IGNORED, None)])
def test_async_store_writes_what_the_sync_store_writes(clean_store, status, error):
    sync_outcome = store(**vars(new_event("evt-sync", status=status, error=error)))
    async_outcome = run(store_once, new_event("evt-async", status=status, error=error))
    assert (async_outcome.status, async_outcome.duplicate, async_outcome.reason) == (status.value, False, error)
    assert async_outcome.dag_run_id == "bamboohr__evt-async"
    (async_event, async_outbox), (sync_event, sync_outbox) = stored()
    assert async_event.id == async_outcome.event_id and sync_event.id == sync_outcome.event_id
    assert comparable(async_event, async_outbox) == comparable(sync_event, sync_outbox)
    assert async_outbox[0].type.endswith("rejected" if status is EventStatus.REJECTED else "accepted")
    assert async_event.received_at.tzinfo is not None and async_outbox[0].sent_at is None


def test_a_redelivery_finds_the_stored_event_and_writes_no_domain_event(clean_store):
    first = run(store_once, new_event("evt-1"))
    again = run(store_once, new_event("evt-1", correlation_id="cid-2", conf={"email": "other@example.com"}))
    assert (again.event_id, again.dag_run_id, again.duplicate) == (first.event_id, first.dag_run_id, True)
    [(event, outbox)] = stored()
    assert event.correlation_id == "cid-1" and event.payload["conf"]["email"] == "ada@example.com"
    assert len(outbox) == 1
    sync_again = store(**vars(new_event("evt-1")))  # and the synchronous path agrees
    assert (sync_again.event_id, sync_again.duplicate) == (first.event_id, True)


def test_concurrent_deliveries_of_one_event_store_it_once(clean_store):
    async def deliver_all() -> list[Any]:
        return await asyncio.gather(*(store_once(new_event("evt-race", correlation_id=f"c{n}")) for n in range(30)))

    outcomes = run(deliver_all)
    assert sum(not o.duplicate for o in outcomes) == 1
    assert len({o.event_id for o in outcomes}) == 1
    [(_, outbox)] = stored()
    assert len(outbox) == 1


def test_store_down_is_store_unavailable_and_nothing_is_half_written(clean_store, settings_env):
    settings_env.setenv("OFFICEFLOW_DB_URL", f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/officeflow")
    with pytest.raises(async_pg.StoreUnavailable, match="store unreachable"):
        run(store_once, new_event("evt-down"))


def test_a_pooled_connection_the_server_ended_is_replaced_and_the_event_stored(clean_store):
    """PostgreSQL restarted: the pool's idle connections are dead. The delivery is stored on a new connection."""

    async def after_terminate() -> Any:
        pids: list[int] = []

        async def remember(conn: Any) -> Any:
            pids.append(conn.get_server_pid())
            return await store_async(conn, new_event("evt-before"))

        await async_pg.with_connection(remember)  # the pool keeps that connection, idle
        direct = await asyncpg.connect(async_pg.asyncpg_dsn(get_settings().db_url))
        try:
            assert await direct.fetchval("SELECT pg_terminate_backend($1)", pids[0])
        finally:
            await direct.close()
        await asyncio.sleep(0.2)
        return await store_once(new_event("evt-after"))

    outcome = run(after_terminate)
    assert not outcome.duplicate
    assert [event.provider_event_id for event, _ in stored()] == ["evt-after", "evt-before"]


def test_a_repeated_failure_is_store_unavailable_and_stores_nothing(clean_store):
    calls = []

    async def always_lost(conn: Any) -> None:
        calls.append(conn)
        raise ConnectionResetError("connection lost")

    with pytest.raises(async_pg.StoreUnavailable, match="store unavailable: ConnectionResetError"):
        run(async_pg.with_connection, always_lost)
    assert len(calls) == 2 and stored() == []


def test_only_postgresql_has_the_asyncpg_path(tmp_path):
    assert async_pg.asyncpg_dsn("postgresql+psycopg2://u:p%40ss@db:5432/officeflow?sslmode=require") == (
        "postgresql://u:p%40ss@db:5432/officeflow?sslmode=require")
    assert async_pg.asyncpg_dsn("postgres://u@db/x") == "postgresql://u@db/x"
    assert async_pg.asyncpg_dsn(f"sqlite:///{tmp_path}/dev.db") is None
    assert run(async_pg.pool, f"sqlite:///{tmp_path}/dev.db") is None


def test_a_batch_stores_new_events_finds_stored_ones_and_keeps_an_event_given_twice_once(clean_store):
    first = run(store_once, new_event("evt-stored"))

    async def batch() -> list[Any]:
        news = [new_event("evt-a"), new_event("evt-stored", correlation_id="cid-2"), new_event("evt-b"),
                new_event("evt-a", correlation_id="cid-3")]
        return await async_pg.with_connection(lambda conn: store_many_async(conn, news))

    a, stored_again, b, a_again = run(batch)
    assert (a.duplicate, b.duplicate, stored_again.duplicate, a_again.duplicate) == (False, False, True, True)
    assert stored_again.event_id == first.event_id and a_again.event_id == a.event_id
    assert a.dag_run_id == "bamboohr__evt-a"
    rows = stored()
    assert [event.provider_event_id for event, _ in rows] == ["evt-a", "evt-b", "evt-stored"]
    assert all(len(outbox) == 1 for _, outbox in rows)  # one domain event per stored event
    assert dict((event.provider_event_id, event.correlation_id) for event, _ in rows)["evt-a"] == "cid-1"
    with session_scope() as session:  # the domain events in the batch's order
        subjects = list(session.scalars(select(OutboxEvent.subject).order_by(OutboxEvent.seq)))
    assert subjects == [first.event_id, a.event_id, b.event_id]


def test_batches_with_events_in_common_in_opposite_orders_do_not_deadlock(clean_store):
    """A batch holding k1 and about to insert k2 (here: a transaction that inserted k1, then inserts k2), and a
    batch of the same events in the opposite order. Inserted in arrival order, the second would take k2 and wait on
    k1 while the first waited on k2: a deadlock, which PostgreSQL breaks by failing one statement. In key order, the
    second waits on k1 holding nothing, and both end."""

    async def scenario() -> tuple[list[Any], list[Any], list[Any]]:
        dsn = async_pg.asyncpg_dsn(get_settings().db_url)
        first, second = [await asyncpg.connect(dsn) for _ in range(2)]
        try:
            transaction = first.transaction()
            await transaction.start()
            k1 = await store_many_async(first, [new_event("k1")])  # uncommitted: k1 is locked
            batch = asyncio.create_task(store_many_async(second, [new_event("k2"), new_event("k1")]))
            for _ in range(100):  # the second batch waits on k1
                if await first.fetchval("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
                                        second.get_server_pid()):
                    break
                await asyncio.sleep(0.05)
            k2 = await asyncio.wait_for(store_many_async(first, [new_event("k2")]), timeout=10)
            await transaction.commit()
            return k1, k2, await asyncio.wait_for(batch, timeout=10)
        finally:
            for conn in (first, second):
                await conn.close()

    [k1], [k2], (k2_again, k1_again) = asyncio.run(scenario())
    assert (k1.duplicate, k2.duplicate, k2_again.duplicate, k1_again.duplicate) == (False, False, True, True)
    assert (k1_again.event_id, k2_again.event_id) == (k1.event_id, k2.event_id)
    assert [event.provider_event_id for event, _ in stored()] == ["k1", "k2"]
