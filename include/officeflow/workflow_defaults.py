"""Defaults every OfficeFlow DAG shares: external steps retry with exponential backoff."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")


def default_args(**overrides: Any) -> dict[str, Any]:
    """``default_args`` for an OfficeFlow DAG: 3 retries, 30 s doubling up to 10 minutes."""
    return {
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        **overrides,
    }
