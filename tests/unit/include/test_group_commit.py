"""Group commit (include/officeflow/store/group_commit.py) on a real event loop: items that arrive while the
writers are busy go together, each caller resumes with its own outcome after its batch, a bad item fails only its
caller, a store that is down fails the whole batch, and a cancelled caller does not cancel the others' write."""

from __future__ import annotations

import asyncio

import pytest

from include.officeflow.store.group_commit import GroupCommit


class StoreDown(Exception):
    pass


class Recorder:
    """A batch writer that takes a loop turn per write and records the batches it was given."""

    def __init__(self, refuse: set[str] = frozenset(), down: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.refuse = refuse
        self.down = down
        self.release = asyncio.Event()

    async def write(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        await asyncio.sleep(0.01)
        if self.down:
            raise StoreDown("store unavailable")
        if refused := self.refuse.intersection(items):
            raise ValueError(f"refused {sorted(refused)}")
        return [item.upper() for item in items]


def test_a_lone_caller_is_written_at_once_and_gets_its_outcomes():
    recorder = Recorder()
    writer = GroupCommit(recorder.write, max_in_flight=2)
    assert asyncio.run(writer.submit(["a", "b"])) == ["A", "B"]
    assert recorder.batches == [["a", "b"]]


def test_callers_arriving_while_the_writers_are_busy_share_the_next_batch():
    recorder = Recorder()
    writer = GroupCommit(recorder.write, max_in_flight=2)

    async def main() -> list[list[str]]:
        first = [asyncio.create_task(writer.submit([f"first{n}"])) for n in range(2)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # a writer is writing both (queued before it ran)
        later = [asyncio.create_task(writer.submit([f"e{n}"])) for n in range(20)]
        return await asyncio.gather(*first, *later)

    outcomes = asyncio.run(main())
    assert outcomes == [["FIRST0"], ["FIRST1"], *([f"E{n}"] for n in range(20))]
    assert recorder.batches == [["first0", "first1"], [f"e{n}" for n in range(20)]]  # the second writer


def test_batches_are_bounded():
    recorder = Recorder()
    writer = GroupCommit(recorder.write, max_in_flight=1, max_batch=10)

    async def main() -> None:
        await asyncio.gather(*(writer.submit([f"e{n}"]) for n in range(35)))

    asyncio.run(main())
    assert [len(batch) for batch in recorder.batches] == [10, 10, 10, 5]


def test_a_bad_item_fails_its_caller_only():
    recorder = Recorder(refuse={"bad"})
    writer = GroupCommit(recorder.write, max_in_flight=1)

    async def main() -> list[object]:
        return await asyncio.gather(*(writer.submit([item]) for item in ("first", "a", "bad", "b")),
                                    return_exceptions=True)

    first, a, bad, b = asyncio.run(main())
    assert (first, a, b) == (["FIRST"], ["A"], ["B"])
    assert isinstance(bad, ValueError) and "bad" in str(bad)
    assert recorder.batches == [["first", "a", "bad", "b"], ["first"], ["a"], ["bad"], ["b"]]  # then item by item


def test_a_store_that_is_down_fails_the_batch_at_once():
    recorder = Recorder(down=True)
    writer = GroupCommit(recorder.write, max_in_flight=1, retry_alone_unless=(StoreDown,))

    async def main() -> list[object]:
        return await asyncio.gather(*(writer.submit([f"e{n}"]) for n in range(5)), return_exceptions=True)

    assert all(isinstance(outcome, StoreDown) for outcome in asyncio.run(main()))
    assert recorder.batches == [["e0", "e1", "e2", "e3", "e4"]]  # not retried one by one


def test_a_cancelled_caller_leaves_the_others_batch_to_complete():
    recorder = Recorder()
    writer = GroupCommit(recorder.write, max_in_flight=1)

    async def main() -> tuple[list[str], list[str]]:
        gone = asyncio.create_task(writer.submit(["gone"]))
        stays = asyncio.create_task(writer.submit(["stays"]))
        await asyncio.sleep(0)  # both queued, the writer started
        gone.cancel()
        return await stays, recorder.batches

    stays, batches = asyncio.run(main())
    assert stays == ["STAYS"] and batches == [["gone", "stays"]]


def test_writers_are_per_event_loop():
    recorder = Recorder()
    writer = GroupCommit(recorder.write, max_in_flight=1)
    assert asyncio.run(writer.submit(["one"])) == ["ONE"]
    assert asyncio.run(writer.submit(["two"])) == ["TWO"]  # a new loop: its own queue and writer


def test_nothing_to_write_is_no_batch():
    recorder = Recorder()
    assert asyncio.run(GroupCommit(recorder.write, max_in_flight=1).submit([])) == []
    assert recorder.batches == []


def test_limits_are_checked():
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Recorder().write, max_in_flight=0)
