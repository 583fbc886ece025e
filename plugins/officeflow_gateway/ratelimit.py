"""Per-endpoint rate limiting of webhook deliveries: a token bucket, in-process or shared through Redis.

Each key (e.g. one webhook endpoint) has a bucket of at most ``burst`` tokens that refills at ``rate``
tokens per second; every delivery takes one token. When the bucket is empty the gateway answers 429
with ``Retry-After: ceil(decision.retry_after)``, so a well-behaved provider backs off and redelivers.

The in-process limiter is exact for one api-server; with several replicas each would allow the full
rate, so deployments with more than one replica configure Redis and all replicas share one bucket.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True)
class Decision:
    """Whether one delivery may proceed; if not, how many seconds until a token is available."""

    allowed: bool
    retry_after: float  # 0.0 when allowed


ALLOWED = Decision(allowed=True, retry_after=0.0)


class RateLimiter(Protocol):
    async def acquire_async(self, key: str, rate: float, burst: int) -> Decision:
        """:meth:`acquire` for the event loop (the gateway's delivery route)."""

    def acquire(self, key: str, rate: float, burst: int) -> Decision:
        """Take one token from ``key``'s bucket (capacity ``burst``, refilled at ``rate`` tokens/s)."""
        ...


def _check(rate: float, burst: int) -> None:
    # A zero or infinite rate would divide by zero (retry_after, TTL) or never refill; fail loudly on
    # a misconfiguration rather than silently blocking or allowing everything.
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a positive finite number of tokens per second, got {rate!r}")
    if burst < 1:
        raise ValueError(f"burst must be at least 1, got {burst!r}")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float  # clock time at which ``tokens`` was computed
    rate: float
    burst: int

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now


class InProcessRateLimiter:
    """A token bucket per key in this process; thread-safe, since the gateway serves from a thread pool.

    Memory is bounded: past ``max_keys`` buckets, full ones are dropped first (a full bucket behaves
    exactly like a missing one, so that loses nothing), then the least recently used ones (which only
    lets those keys burst again, never blocks a delivery wrongly).
    """

    def __init__(self, clock: Clock = time.monotonic, max_keys: int = 10_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys!r}")
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    async def acquire_async(self, key: str, rate: float, burst: int) -> Decision:
        return self.acquire(key, rate, burst)  # microseconds, no I/O: no reason to leave the loop

    def acquire(self, key: str, rate: float, burst: int) -> Decision:
        _check(rate, burst)
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(tokens=burst, stamp=now, rate=rate, burst=burst)
                if len(self._buckets) > self._max_keys:
                    self._evict(now, keep=key)
            else:
                self._buckets.move_to_end(key)
                bucket.rate, bucket.burst = rate, burst  # follow configuration changes
                bucket.refill(now)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return ALLOWED
            return Decision(allowed=False, retry_after=(1 - bucket.tokens) / rate)

    def _evict(self, now: float, keep: str) -> None:
        # Shrink well below the limit so the O(n) scan runs once per many new keys, not on every one.
        low_water = max(1, self._max_keys * 9 // 10)
        for key, bucket in list(self._buckets.items()):
            if key != keep:
                bucket.refill(now)
                if bucket.tokens >= bucket.burst:
                    del self._buckets[key]
        while len(self._buckets) > low_water:
            oldest = next(iter(self._buckets))
            if oldest == keep:
                break
            del self._buckets[oldest]


# KEYS[1] = bucket key; ARGV[1] = rate (tokens/s), ARGV[2] = burst. Returns {allowed (0|1), retry_after}.
# The whole read-refill-take-write runs atomically in Redis, so concurrent replicas cannot both take the
# last token. The clock is Redis's TIME, not the callers': replicas' clocks may disagree, Redis's is one.
# Numbers go back as strings because Redis truncates Lua numbers in replies to integers.
_ACQUIRE_LUA = """
if redis.replicate_commands then redis.replicate_commands() end  -- TIME before writes on Redis < 5
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local retry_after = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry_after = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.6f', now))
-- Once refilled to full, a bucket is the same as no bucket: let it expire then.
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((burst - tokens) / rate * 1000)))
return {allowed, string.format('%.17g', retry_after)}
"""


class RedisRateLimiter:
    """A token bucket per key in Redis, shared by every api-server replica pointed at the same server.

    Fail-OPEN: if Redis cannot be reached the delivery is allowed and a warning is logged. Rejecting
    would turn a cache outage into lost HR events (providers give up after a few retries), while
    allowing costs at most extra load: duplicates are still caught by the inbox's unique
    (source, provider_event_id). After a failure Redis is not asked again for ``outage_cooldown``
    seconds, so an unreachable server neither adds a timeout to every delivery nor floods the log.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "officeflow:ratelimit:",
        *,
        socket_timeout: float = 0.5,
        outage_cooldown: float = 5.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.prefix = prefix
        self._outage_cooldown = outage_cooldown
        self._clock = clock
        self._down_until = -math.inf  # local clock; a benign race here at worst logs one extra warning
        # from_url builds a connection pool. One immediate retry covers a pooled connection that went
        # stale (Redis restarted); redis-py's default of 10 retries with backoff would stall deliveries.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )
        self._script = self._client.register_script(_ACQUIRE_LUA)
        self._url = url
        self._socket_timeout = socket_timeout
        # redis.asyncio clients belong to the event loop that opened their connections: one per loop.
        self._async_scripts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _async_script(self) -> Any:
        loop = asyncio.get_running_loop()
        script = self._async_scripts.get(loop)
        if script is None:
            client = redis.asyncio.Redis.from_url(
                self._url, socket_timeout=self._socket_timeout, socket_connect_timeout=self._socket_timeout,
                retry=AsyncRetry(NoBackoff(), 1), health_check_interval=30)
            script = self._async_scripts[loop] = client.register_script(_ACQUIRE_LUA)
        return script

    async def acquire_async(self, key: str, rate: float, burst: int) -> Decision:
        """:meth:`acquire` on redis.asyncio: the delivery waits on Redis in the event loop, not in a thread."""
        _check(rate, burst)
        if self._clock() < self._down_until:
            return ALLOWED
        try:
            answer = await self._async_script()(keys=[self.prefix + key], args=[rate, burst])
        except (redis.RedisError, OSError) as exc:
            return self._outage(exc)
        return self._decision(answer)

    def _outage(self, exc: Exception) -> Decision:
        self._down_until = self._clock() + self._outage_cooldown
        log.warning("Rate limiter: Redis unavailable (%s); allowing deliveries for the next %.0f s",
                    exc, self._outage_cooldown)
        return ALLOWED

    @staticmethod
    def _decision(answer: Any) -> Decision:
        allowed, retry_after = answer
        if int(allowed) == 1:
            return ALLOWED
        return Decision(allowed=False, retry_after=float(retry_after))

    def acquire(self, key: str, rate: float, burst: int) -> Decision:
        _check(rate, burst)
        if self._clock() < self._down_until:
            return ALLOWED
        try:
            answer = self._script(keys=[self.prefix + key], args=[rate, burst])
        except redis.RedisError as exc:
            return self._outage(exc)
        return self._decision(answer)

    def close(self) -> None:
        """Release the pool's connections."""
        self._client.close()


@functools.cache
def get_rate_limiter(redis_url: str | None) -> RateLimiter:
    """The limiter for this process, one per URL: buckets live in it, so it must not be rebuilt per request."""
    if redis_url:
        return RedisRateLimiter(redis_url)
    return InProcessRateLimiter()
