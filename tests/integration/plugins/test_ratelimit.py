"""The webhook rate limiter: one token-bucket contract, checked against both implementations.

The in-process limiter runs on a fake clock; the Redis one against a real throw-away redis-server,
with rates high enough that refills take tens of milliseconds, so the module stays fast.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from plugins.officeflow_gateway.ratelimit import (
    Decision,
    InProcessRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    get_rate_limiter,
)
from tests.harness.ports import free_port
from tests.harness.redis import RedisServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Subject:
    """Builds limiters of one kind and lets time pass for them: a fake clock in-process, real sleep in Redis."""

    def __init__(self, kind: str, server: RedisServer | None) -> None:
        self.kind = kind
        self.server = server
        self.clock = FakeClock()
        self.prefix = f"test:{uuid.uuid4().hex}:"  # isolates tests sharing the module's Redis server
        self._shared: InProcessRateLimiter | None = None
        self.made: list[RedisRateLimiter] = []

    def make(self) -> RateLimiter:
        """A new limiter; Redis ones share buckets with each other (same server and prefix), like replicas."""
        if self.server is None:
            if self._shared is None:
                self._shared = InProcessRateLimiter(clock=self.clock)
            return self._shared
        self.made.append(RedisRateLimiter(self.server.url, prefix=self.prefix))
        return self.made[-1]

    def advance(self, seconds: float) -> None:
        if self.server is None:
            self.clock.advance(seconds)
        else:
            time.sleep(seconds)


@pytest.fixture(params=["in_process", "redis"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    subject = Subject(request.param, server)
    yield subject
    for limiter in subject.made:
        limiter.close()


def test_burst_is_allowed_then_denied_with_retry_after(subject: Subject) -> None:
    limiter = subject.make()
    decisions = [limiter.acquire("bamboohr", rate=1.0, burst=3) for _ in range(4)]

    assert decisions[:3] == [Decision(allowed=True, retry_after=0.0)] * 3
    denied = decisions[3]
    assert denied.allowed is False
    # One token per second and the bucket just emptied: about a second until the next token.
    assert 0.9 < denied.retry_after <= 1.0


def test_bucket_refills_over_time_up_to_burst(subject: Subject) -> None:
    limiter = subject.make()
    assert [limiter.acquire("k", rate=50, burst=2).allowed for _ in range(3)] == [True, True, False]

    subject.advance(0.1)  # 5 tokens' worth at 50/s, but the bucket holds only 2

    assert [limiter.acquire("k", rate=50, burst=2).allowed for _ in range(3)] == [True, True, False]


def test_lowering_burst_caps_a_fuller_bucket(subject: Subject) -> None:
    limiter = subject.make()
    assert limiter.acquire("k", rate=0.001, burst=10).allowed  # 9 tokens left

    # Reconfigured to a smaller burst: the bucket holds no more than the new capacity.
    assert [limiter.acquire("k", rate=0.001, burst=2).allowed for _ in range(3)] == [True, True, False]


def test_waiting_retry_after_is_enough(subject: Subject) -> None:
    limiter = subject.make()
    limiter.acquire("k", rate=20, burst=1)
    denied = limiter.acquire("k", rate=20, burst=1)
    assert not denied.allowed and 0 < denied.retry_after <= 0.05

    subject.advance(denied.retry_after + 0.005)

    assert limiter.acquire("k", rate=20, burst=1).allowed


def test_keys_are_independent(subject: Subject) -> None:
    limiter = subject.make()
    assert limiter.acquire("a", rate=0.001, burst=1).allowed
    assert not limiter.acquire("a", rate=0.001, burst=1).allowed

    assert limiter.acquire("b", rate=0.001, burst=1).allowed
    assert not limiter.acquire("a", rate=0.001, burst=1).allowed


def test_concurrent_acquires_never_exceed_burst(subject: Subject) -> None:
    limiter = subject.make()
    threads, per_thread = 20, 10
    start = threading.Barrier(threads)

    def worker() -> int:
        start.wait()
        return sum(limiter.acquire("hot", rate=0.001, burst=50).allowed for _ in range(per_thread))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        allowed = sum(pool.map(lambda _: worker(), range(threads)))

    assert allowed == 50


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("inf"), 1), (1, 0)])
def test_invalid_configuration_is_rejected(subject: Subject, rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"rate|burst"):
        subject.make().acquire("k", rate=rate, burst=burst)


def test_two_replicas_share_one_bucket(redis_server: RedisServer) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    replica_a = RedisRateLimiter(redis_server.url, prefix=prefix)
    replica_b = RedisRateLimiter(redis_server.url, prefix=prefix)

    taken = [replica.acquire("k", rate=0.001, burst=4).allowed for replica in (replica_a, replica_b) * 2]

    assert taken == [True] * 4
    assert not replica_a.acquire("k", rate=0.001, burst=4).allowed
    assert not replica_b.acquire("k", rate=0.001, burst=4).allowed


def test_redis_bucket_is_a_hash_that_expires_when_it_would_be_full(redis_server: RedisServer) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    limiter = RedisRateLimiter(redis_server.url, prefix=prefix)
    limiter.acquire("k", rate=10, burst=5)  # 4 tokens left: full again after 0.1 s

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        state = client.hgetall(prefix + "k")
        ttl = client.pttl(prefix + "k")
    finally:
        client.close()
    assert float(state["tokens"]) == pytest.approx(4, abs=0.01)
    assert float(state["ts"]) == pytest.approx(time.time(), abs=5)
    assert 0 < ttl <= 100


def test_redis_down_fails_open_quickly(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0")

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="plugins.officeflow_gateway.ratelimit"):
        decisions = [limiter.acquire("k", rate=0.001, burst=1) for _ in range(3)]
    elapsed = time.monotonic() - started

    assert decisions == [Decision(allowed=True, retry_after=0.0)] * 3
    assert elapsed < 2
    warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1  # one warning per outage window, not one per delivery


def test_redis_limiting_resumes_after_the_outage_cooldown() -> None:
    port = free_port()
    clock = FakeClock()
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{port}/0", outage_cooldown=5, clock=clock)
    assert limiter.acquire("k", rate=0.001, burst=1).allowed  # Redis down: fail open

    server = RedisServer(port=port).start()
    try:
        # Within the cooldown Redis is not asked, so limiting has not resumed yet.
        assert all(limiter.acquire("k", rate=0.001, burst=1).allowed for _ in range(3))
        clock.advance(5.1)
        assert limiter.acquire("k", rate=0.001, burst=1).allowed
        assert not limiter.acquire("k", rate=0.001, burst=1).allowed
    finally:
        limiter.close()
        server.stop()


def test_in_process_eviction_keeps_memory_bounded() -> None:
    clock = FakeClock()
    limiter = InProcessRateLimiter(clock=clock, max_keys=100)
    limiter.acquire("limited", rate=0.001, burst=1)  # empty, and stays so: it must survive eviction

    sizes = []
    for i in range(1000):
        limiter.acquire(f"idle-{i}", rate=10, burst=1)
        clock.advance(0.01)
        sizes.append(len(limiter))

    assert max(sizes) <= 100
    assert min(sizes[100:]) < 100  # eviction actually ran, more than once
    assert not limiter.acquire("limited", rate=0.001, burst=1).allowed


def test_in_process_eviction_falls_back_to_least_recently_used() -> None:
    clock = FakeClock()
    limiter = InProcessRateLimiter(clock=clock, max_keys=100)

    for i in range(1000):  # none ever refills, so none is full: only LRU eviction can bound the dict
        limiter.acquire(f"busy-{i}", rate=0.001, burst=1)
        assert len(limiter) <= 100

    assert not limiter.acquire("busy-999", rate=0.001, burst=1).allowed  # the most recent key was kept
    assert limiter.acquire("busy-0", rate=0.001, burst=1).allowed  # the oldest was evicted: a fresh bucket


def test_get_rate_limiter_caches_one_instance_per_url(redis_server: RedisServer) -> None:
    get_rate_limiter.cache_clear()
    try:
        local = get_rate_limiter(None)
        shared = get_rate_limiter(redis_server.url)

        assert isinstance(local, InProcessRateLimiter)
        assert isinstance(shared, RedisRateLimiter)
        assert get_rate_limiter(None) is local
        assert get_rate_limiter(redis_server.url) is shared
    finally:
        get_rate_limiter.cache_clear()



# --- the event loop's path (the delivery route awaits acquire_async) ----------------------------------------------


def test_async_acquires_share_the_buckets_and_never_exceed_burst(subject: Subject) -> None:
    limiter = subject.make()

    async def burst_of(n: int) -> list[Decision]:
        return list(await asyncio.gather(*(limiter.acquire_async("k", rate=0.001, burst=5) for _ in range(n))))

    decisions = asyncio.run(burst_of(20))
    assert sum(d.allowed for d in decisions) == 5
    assert all(d.retry_after > 0 for d in decisions if not d.allowed)
    assert not limiter.acquire("k", rate=0.001, burst=5).allowed  # the synchronous path sees the same bucket


def test_redis_down_fails_open_quickly_on_the_event_loop(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0")

    async def three() -> list[Decision]:
        return [await limiter.acquire_async("k", rate=0.001, burst=1) for _ in range(3)]

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="plugins.officeflow_gateway.ratelimit"):
        decisions = asyncio.run(three())
    assert decisions == [Decision(allowed=True, retry_after=0.0)] * 3
    assert time.monotonic() - started < 2
    assert len([r for r in caplog.records if "Redis unavailable" in r.getMessage()]) == 1
