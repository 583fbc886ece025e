"""The delivery path's cache of the workflows' params: stale params are re-read by one thread at a time while the
deliveries go on with them (a re-read deserialises the DAG: every delivery starting one stalled the gateway)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from include.officeflow.mapping import CachedParams, ParamsValidator


class CountingValidator(ParamsValidator):
    """Reads from a dict instead of Airflow's metadata DB, slowly, counting the reads."""

    def __init__(self, params: dict[str, object], **kwargs) -> None:
        super().__init__(**kwargs)
        self.params = params
        self.reads = 0
        self.release = threading.Event()
        self.release.set()
        self._count_lock = threading.Lock()

    def _cache_params(self, dag_id: str):
        with self._count_lock:
            self.reads += 1
        self.release.wait(5)
        compiled = self.params.get(dag_id)
        with self._lock:
            self._cache[dag_id] = CachedParams(time.monotonic(), "hash", compiled)
        return compiled


def test_first_use_reads_then_the_cache_answers():
    validator = CountingValidator({"onboarding": {}}, ttl_seconds=60)
    assert validator.missing("onboarding")
    assert validator.validate("onboarding", {}) is True
    assert not validator.missing("onboarding")
    for _ in range(100):
        validator.validate("onboarding", {})
    assert validator.reads == 1


def test_stale_params_are_reread_by_one_thread_while_deliveries_use_them():
    validator = CountingValidator({"onboarding": {}}, ttl_seconds=0.05)
    validator.validate("onboarding", {})
    time.sleep(0.1)
    validator.release.clear()  # the re-read hangs until released
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: validator.validate("onboarding", {}), range(200)))
    assert time.monotonic() - started < 2  # nobody waited for the re-read
    assert answers == [True] * 200
    assert validator.reads == 2  # the first read, and one re-read for all 200
    validator.release.set()
    deadline = time.monotonic() + 5
    while validator._refreshing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not validator._refreshing


def test_a_failed_reread_keeps_the_stale_params_and_tries_again_later():
    validator = CountingValidator({"onboarding": {}}, ttl_seconds=0.05)
    validator.validate("onboarding", {})
    time.sleep(0.1)
    validator.params = None  # type: ignore[assignment]  (the next read raises: the DB is down)
    assert validator.validate("onboarding", {}) is True
    deadline = time.monotonic() + 5
    while validator._refreshing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert validator.validate("onboarding", {}) is True  # still the stale params, and a new re-read started
    assert validator.reads == 3


def test_a_burst_before_the_first_read_waits_for_one_read():
    validator = CountingValidator({"onboarding": {}}, ttl_seconds=60)
    validator.release.clear()  # the first read hangs until released
    with ThreadPoolExecutor(max_workers=16) as pool:
        loads = [pool.submit(validator.refresh, "onboarding") for _ in range(16)]
        time.sleep(0.2)
        validator.release.set()
        for load in loads:
            load.result(timeout=5)
    assert validator.reads == 1
    assert not validator.missing("onboarding")
