"""Outbound HTTP of the sandbox: the push notifications Google Calendar and Microsoft Graph send to a
subscriber's address (watch channels, change notifications), delivered as the vendors deliver them.

One worker thread per sandbox process sends the queued requests in order (a channel's message numbers
arrive in sequence), never under the state lock. Every attempt is recorded in the service's state
(the ``record`` dict a caller appended there): ``status`` (the HTTP status, or None), ``error``,
``attempts``. As Google does, 500/502/503/504 and network failures are retried with exponential
backoff (here: 3 tries, 0.5 s then 1 s apart); any other answer is final.

:func:`handshake` is Graph's synchronous validation request (``?validationToken=``), made while the
subscription request waits.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

import httpx

from sandbox.core import SandboxState

log = logging.getLogger(__name__)
RETRIED = frozenset({500, 502, 503, 504})
TRIES = 3


@dataclass
class Push:
    """One notification: where, what, and the state entry its outcome is written into."""

    sandbox: SandboxState
    record: dict[str, Any]
    url: str
    headers: dict[str, str]
    body: bytes = b""
    timeout: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)


_queue: queue.Queue[Push] = queue.Queue()
_worker: threading.Thread | None = None
_worker_lock = threading.Lock()


def acceptable_address(url: str) -> bool:
    """The vendors require https; the sandbox also accepts http to a loopback host (dev mode and tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def send(push: Push) -> None:
    """Queue ``push`` for delivery (in order, by the worker thread)."""
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_deliver_forever, name="sandbox-push", daemon=True)
            _worker.start()
    _queue.put(push)


def _deliver_forever() -> None:
    with httpx.Client(timeout=10.0) as client:
        while True:
            push = _queue.get()
            try:
                _deliver(client, push)
            except Exception:  # the worker must outlive any one delivery
                log.exception("push to %s failed", push.url)


def _deliver(client: httpx.Client, push: Push) -> None:
    status: int | None = None
    error = None
    for attempt in range(1, TRIES + 1):
        try:
            response = client.post(push.url, headers=push.headers, content=push.body, timeout=push.timeout)
            status, error = response.status_code, None
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        with push.sandbox.lock:
            push.record.update(status=status, error=error, attempts=attempt, delivered_at=time.time())
        if status is not None and status not in RETRIED:
            return
        if attempt < TRIES:
            time.sleep(0.5 * 2 ** (attempt - 1))


async def handshake(url: str, token: str, timeout: float = 10.0) -> tuple[bool, str]:
    """Graph's validation request: ``POST {url}?validationToken={token}`` (text/plain, empty body); the
    endpoint must answer 200 with the token as its plain-text body within ``timeout`` seconds."""
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(url, params={"validationToken": token},
                                         headers={"Content-Type": "text/plain; charset=utf-8"}, content=b"")
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if response.status_code != 200:
        return False, f"answered {response.status_code}"
    if response.text != token:
        return False, "did not echo the validation token"
    if not response.headers.get("content-type", "").startswith("text/plain"):
        return False, "answered without Content-Type text/plain"
    return True, "ok"
