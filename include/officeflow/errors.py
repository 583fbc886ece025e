"""One error taxonomy for every external system OfficeFlow calls, and one in-task retry policy.

Hooks (identity providers, calendars, Slack, email providers) map their service's failures onto these
classes; operators then treat them alike: :func:`with_retries` retries the retryable ones inside the
task (a 429 waits its ``Retry-After``, capped), and what is left goes to Airflow as a retryable failure
(``retryable``) or a permanent one (bad credentials, refused input, missing object, conflict).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class ServiceError(Exception):
    """A call to an external service failed. ``retryable`` failures may pass on a later try."""

    retryable = True


class AuthError(ServiceError):
    """Bad or insufficient credentials (401/403): a retry will not help; fix the connection."""

    retryable = False


class InvalidInput(ServiceError):
    """The service refused the input (400 and the like), or it was invalid before any call."""

    retryable = False


class NotFound(ServiceError):
    """The object does not exist (404)."""

    retryable = False


class Conflict(ServiceError):
    """The object already exists or changed meanwhile (409)."""

    retryable = False


class RateLimited(ServiceError):
    """Throttled (429); ``retry_after`` seconds, when the service said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ServiceError):
    """The service is down, timed out or answered 5xx: worth a later try."""


def for_status(status: int, message: str, *, auth_hint: str = "", retry_after: float | None = None) -> ServiceError:
    """The error an HTTP ``status`` means (a hook's special cases come first): 429 -> :class:`RateLimited`,
    401/403 -> :class:`AuthError` (``message`` + ``auth_hint``), 404/410 -> :class:`NotFound`, 409 ->
    :class:`Conflict`, other 4xx -> :class:`InvalidInput`, 5xx (or no status) -> :class:`Unavailable`."""
    if status == 429:
        return RateLimited(message, retry_after)
    if status in (401, 403):
        return AuthError(message + auth_hint)
    if status in (404, 410):
        return NotFound(message)
    if status == 409:
        return Conflict(message)
    if 400 <= status < 500:
        return InvalidInput(message)
    return Unavailable(message)


def with_retries(call: Callable[[], T], *, describe: str, max_attempts: int = 5, max_wait: float = 60.0,
                 sleep: Callable[[float], Any] = time.sleep) -> T:
    """Run ``call``; on :class:`RateLimited` wait its ``retry_after`` (capped), on other retryable
    :class:`ServiceError` back off 1, 2, 4 … s, up to ``max_attempts`` tries.

    A wait longer than ``max_wait`` is not spent inside the task: the error goes to Airflow, whose
    retry (with its own backoff) comes later. Non-retryable errors raise at once.
    """
    for attempt in range(1, max_attempts + 1):
        try:
            return call()
        except RateLimited as exc:
            wait = exc.retry_after if exc.retry_after is not None else min(2.0 ** (attempt - 1), max_wait)
            if attempt == max_attempts or wait > max_wait:
                raise
            log.warning("%s: rate limited, waiting %.1f s (attempt %d/%d)", describe, wait, attempt, max_attempts)
            sleep(wait)
        except ServiceError as exc:
            if not exc.retryable or attempt == max_attempts:
                raise
            wait = min(2.0 ** (attempt - 1), max_wait)
            log.warning("%s failed (%s); retrying in %.1f s (attempt %d/%d)", describe, exc, wait, attempt,
                        max_attempts)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def parse_retry_after(value: str | None, *, reset_epoch: str | None = None, now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or Okta's ``X-Rate-Limit-Reset`` (epoch)."""
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - (now or time.time()))
            except (TypeError, ValueError):
                pass
    if reset_epoch:
        try:
            return max(0.0, float(reset_epoch) - (now or time.time()))
        except ValueError:
            return None
    return None
