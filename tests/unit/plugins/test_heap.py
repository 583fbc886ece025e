"""The gateway worker's heap is frozen (hidden from the cyclic garbage collector's full collections) once when the
worker starts and once warm, after its first WARM_REQUESTS requests: never again, however many apps a process
builds (tests build many).

Each check runs in a fresh interpreter: the freeze count is process-wide, and in the test process other threads
(servers of other tests) create and free frozen objects while a check reads it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def run_in_fresh_process(script: str) -> None:
    code = "import gc\nfrom plugins.officeflow_gateway import heap\n" + textwrap.dedent(script)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_heap_is_frozen_once_at_start():
    run_in_fresh_process(
        """
        kept = [[i] for i in range(1000)]  # tracked objects alive now
        heap.freeze("start")
        frozen = gc.get_freeze_count()
        assert frozen >= len(kept), frozen

        more = [[i] for i in range(1000)]
        heap.freeze("start")  # a second app built in the same process
        assert gc.get_freeze_count() == frozen, (gc.get_freeze_count(), frozen)
        """
    )


def test_collect_first_frees_the_start_up_garbage_before_freezing():
    run_in_fresh_process(
        """
        class Cycle:
            pass

        for _ in range(1000):  # garbage only a cyclic collection frees
            a, b = Cycle(), Cycle()
            a.b, b.a = b, a
        del a, b
        heap.freeze("start", collect_first=True)
        gc.unfreeze()  # what was frozen is visible again: none of the cycles
        assert not any(isinstance(o, Cycle) for o in gc.get_objects()), "the cycles were frozen"
        """
    )


def test_the_warm_heap_is_frozen_at_the_warm_requests_th_request():
    run_in_fresh_process(
        """
        heap.freeze("start")
        for _ in range(heap.WARM_REQUESTS - 1):
            heap.count_request()
        at_start = gc.get_freeze_count()
        kept = [[i] for i in range(1000)]  # what serving imported and cached
        heap.count_request()
        warm = gc.get_freeze_count()
        assert warm >= at_start + len(kept), (warm, at_start)

        more = [[i] for i in range(1000)]
        for _ in range(heap.WARM_REQUESTS):
            heap.count_request()
        assert gc.get_freeze_count() == warm, "frozen once warm, not at every WARM_REQUESTS"
        """
    )
