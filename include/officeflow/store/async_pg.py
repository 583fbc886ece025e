"""The store on asyncpg, for the gateway's delivery path: an event loop that waits on PostgreSQL without handing
each delivery to a worker thread and back (bench/gateway_bench.py; docs/BENCHMARKS.md, "Gateway throughput").

One pool per event loop and store URL (an asyncpg connection belongs to the loop that opened it), sized like the
synchronous engine's (``OFFICEFLOW_DB_POOL_SIZE``). Only PostgreSQL has this path; a SQLite store (``./run.sh dev``)
keeps the synchronous engine (:func:`pool` answers None).

Every failure to reach the database, or a connection lost mid-statement, is raised as :class:`StoreUnavailable`
(the gateway's 503 ``store_unavailable``, as the synchronous path's ``OperationalError``): nothing was committed.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from include.officeflow.settings import get_settings

#: Connection problems: the server is down, restarting or unreachable, or the connection was lost.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.InternalClientError,  # a pooled connection the server ended while it was idle
)
T = TypeVar("T")
CONNECT_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 30.0


class StoreUnavailable(Exception):
    """The store could not be reached or lost the connection; nothing was committed."""


@lru_cache(maxsize=16)
def asyncpg_dsn(url: str) -> str | None:
    """The asyncpg DSN of a SQLAlchemy PostgreSQL URL (``postgresql+psycopg2://…`` → ``postgresql://…``), or None
    for any other database. Cached: :func:`pool` asks on every delivery."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        return None
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncpg.Pool]] = weakref.WeakKeyDictionary()
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def pool(url: str | None = None) -> asyncpg.Pool | None:
    """This loop's pool for the store (the configured one by default), opened on first use; None when the store
    is not PostgreSQL. Raises :class:`StoreUnavailable` when the pool cannot open its first connection."""
    url = url or get_settings().db_url
    dsn = asyncpg_dsn(url)
    if dsn is None:
        return None
    loop = asyncio.get_running_loop()
    pools = _pools.setdefault(loop, {})
    found = pools.get(url)
    if found is not None:
        return found
    async with _locks.setdefault(loop, asyncio.Lock()):
        found = pools.get(url)
        if found is None:
            size = get_settings().db_pool_size
            try:
                found = await asyncpg.create_pool(
                    dsn, min_size=1, max_size=size, timeout=CONNECT_TIMEOUT_SECONDS,
                    command_timeout=COMMAND_TIMEOUT_SECONDS, max_inactive_connection_lifetime=300.0,
                    reset=_keep_session,
                )
            except UNAVAILABLE as exc:
                raise StoreUnavailable(f"store unreachable: {type(exc).__name__}: {exc}") from exc
            pools[url] = found
    return found


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """What a connection returned to the pool needs besides asyncpg's own rollback of an open transaction: nothing.
    asyncpg's default reset sends ``RESET ALL``, ``UNLISTEN *``, ``CLOSE ALL`` and an advisory-lock release, one more
    round trip per delivery; the gateway's statements are single autocommitted statements that leave no session
    state (no SET, LISTEN, cursor or advisory lock)."""


async def with_connection(work: Callable[[Any], Awaitable[T]], url: str | None = None) -> T:
    """``await work(conn)`` on a pooled connection of the store, and once more on a new connection when the first
    one turns out dead (a pooled connection the server closed while idle: PostgreSQL restarted). ``work`` must be
    safe to repeat (the inbox's insert is: a repeat finds the event its first try stored). Connection problems
    are raised as :class:`StoreUnavailable` (the connection is dropped, not returned to the pool). Only for a
    PostgreSQL store."""
    found = await pool(url)
    if found is None:
        raise RuntimeError("the asyncpg path needs a PostgreSQL store")
    for attempt in (1, 2):
        try:
            async with found.acquire(timeout=_acquire_timeout(found)) as conn:
                return await work(conn)
        except UNAVAILABLE as exc:
            if attempt == 2:
                raise StoreUnavailable(f"store unavailable: {type(exc).__name__}: {exc}") from exc
    raise AssertionError("unreachable")


def _acquire_timeout(found: asyncpg.Pool) -> float | None:
    """How long an acquire may wait: no bound when a connection is idle (it is handed over at once, and asyncpg's
    ``wait_for`` around a bounded acquire costs every delivery a task and a timer: docs/BENCHMARKS.md); else
    :data:`CONNECT_TIMEOUT_SECONDS`, for a free connection or a new one (asyncpg's connect has the same bound)."""
    return None if found.get_idle_size() else CONNECT_TIMEOUT_SECONDS


async def close_all() -> None:
    """Close this loop's pools (tests; a worker shutting down)."""
    for found in _pools.pop(asyncio.get_running_loop(), {}).values():
        await found.close()
