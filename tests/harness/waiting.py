"""Polling for work that finishes after an answer (a background task, a push, a run)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(check: Callable[[], Any], timeout: float = 15, what: str = "condition", *, interval: float = 0.1,
               detail: Callable[[], str] | None = None) -> Any:
    """Poll ``check()`` every ``interval`` seconds until it returns something truthy, and return that; after
    ``timeout`` seconds an AssertionError naming ``what`` (and ``detail()``, e.g. a log tail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{detail()}" if detail else ""))
