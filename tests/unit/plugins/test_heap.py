"""The gateway worker's heap is frozen (hidden from the cyclic garbage collector's full collections) once when the
worker starts and once warm, after its first WARM_REQUESTS requests: never again, however many apps a process
builds (tests build many)."""

from __future__ import annotations

import gc

import pytest

from plugins.officeflow_gateway import heap


@pytest.fixture
def fresh_process(monkeypatch):
    monkeypatch.setattr(heap, "_frozen", set())
    monkeypatch.setattr(heap, "_served", 0)


def test_the_heap_is_frozen_once_at_start(fresh_process):
    before = gc.get_freeze_count()
    kept = [[i] for i in range(1000)]  # tracked objects alive now
    heap.freeze("start")
    frozen = gc.get_freeze_count()
    assert frozen >= before + len(kept)

    more = [[i] for i in range(1000)]
    heap.freeze("start")  # a second app built in the same process
    assert gc.get_freeze_count() <= frozen  # the new objects were not frozen (frozen ones may have been freed)
    assert len(more) == 1000


def test_the_warm_heap_is_frozen_at_the_warm_requests_th_request(fresh_process):
    heap.freeze("start")
    for _ in range(heap.WARM_REQUESTS - 1):
        heap.count_request()
    at_start = gc.get_freeze_count()
    kept = [[i] for i in range(1000)]  # what serving imported and cached
    heap.count_request()
    warm = gc.get_freeze_count()
    assert warm >= at_start + len(kept)
    more = [[i] for i in range(1000)]
    for _ in range(heap.WARM_REQUESTS):
        heap.count_request()
    assert gc.get_freeze_count() <= warm  # frozen once warm, not at every WARM_REQUESTS
    assert len(kept) == len(more) == 1000
