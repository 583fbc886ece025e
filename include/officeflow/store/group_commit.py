"""Group commit: the items that arrive while the store is busy are written together, in one statement and one
commit, and each caller waits for the commit that holds its item.

    writer = GroupCommit(write_batch, max_in_flight=2)
    outcomes = await writer.submit([item, ...])        # after the batch holding them committed

At most ``max_in_flight`` writers run at a time per event loop, each writing what is queued, a batch at a time,
until nothing is. A caller queues its items and starts a writer when fewer run; else its items go with the next
batch of a running writer. A quiet server therefore writes each delivery on its own, as before,
and a busy one writes many per round trip: the gateway's edge spent a quarter of its CPU in the driver and
PostgreSQL a third of a millisecond per delivery, one statement and one commit each (docs/BENCHMARKS.md).

The guarantees are the single write's: an item's caller resumes only after its batch committed, or with the
batch's exception. A batch that fails with an error other than ``retry_alone_unless`` (a bad item: a value the
database refuses) is written again item by item, so that only the faulty item's caller gets the error; a store
that is down fails the whole batch at once (503 for each delivery, nothing committed).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

I = TypeVar("I")  # noqa: E741  (an item)
O = TypeVar("O")  # noqa: E741  (its outcome)

MAX_BATCH = 200  # items per statement: a bound on its size and on the wait of the batch's first caller


@dataclass
class _Loop(Generic[I, O]):
    """One event loop's queue and writers (asyncio futures belong to their loop)."""

    queue: deque[tuple[I, asyncio.Future[O]]] = field(default_factory=deque)
    in_flight: int = 0


class GroupCommit(Generic[I, O]):
    def __init__(self, write_batch: Callable[[list[I]], Awaitable[list[O]]], *, max_in_flight: int,
                 retry_alone_unless: tuple[type[BaseException], ...] = (), max_batch: int = MAX_BATCH) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be at least 1")
        self.write_batch = write_batch
        self.max_in_flight = max_in_flight
        self.max_batch = max_batch
        self.retry_alone_unless = retry_alone_unless
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Loop[I, O]] = weakref.WeakKeyDictionary()

    async def submit(self, items: Sequence[I]) -> list[O]:
        """Each item's outcome, once the batch (or batches) holding them committed."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _Loop()
        futures = [loop.create_future() for _ in items]
        state.queue.extend(zip(items, futures, strict=True))
        if state.in_flight < self.max_in_flight:
            state.in_flight += 1
            writer = loop.create_task(self._drain(state))
            _writers.add(writer)
            writer.add_done_callback(_writers.discard)
        return list(await asyncio.gather(*futures)) if len(futures) > 1 else [await futures[0]]

    async def _drain(self, state: _Loop[I, O]) -> None:
        """A writer: batches of what is queued until nothing is. In a task of its own, not in a caller's: a caller
        cancelled (its client gone) must not cancel the write of the others' items."""
        try:
            while state.queue:
                batch = [state.queue.popleft() for _ in range(min(self.max_batch, len(state.queue)))]
                await self._write(batch)
        finally:
            state.in_flight -= 1

    async def _write(self, batch: list[tuple[I, asyncio.Future[O]]]) -> None:
        try:
            outcomes = await self.write_batch([item for item, _ in batch])
        except self.retry_alone_unless as exc:
            _fail(batch, exc)
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch, exc)
            else:
                for one in batch:
                    await self._write([one])
        except BaseException as exc:  # cancelled: the callers must not wait for ever
            _fail(batch, exc)
            raise
        else:
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)


def _fail(batch: Sequence[tuple[Any, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


_writers: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps only weak references)
