"""Correlation ids: the one id that follows an HR event from the webhook through every task of its run.

A caller may send its own (``X-Correlation-ID``); it is kept when it is 1-64 characters of letters, digits and
``-_.:``, the form of a UUID, a ULID or most tracing ids. Anything else (too long, spaces, control characters,
quotes, which could forge log lines or headers) is replaced by a new UUID: the request still gets an id.
64 is the length of the store's ``correlation_id`` columns.
"""

from __future__ import annotations

import re

from include.officeflow.ids import random_uuid

CORRELATION_HEADER = "X-Correlation-ID"
MAX_LENGTH = 64
_VALID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{MAX_LENGTH - 1}}}")


def is_valid(value: str | None) -> bool:
    """Whether ``value`` may be used as a correlation id as is."""
    return bool(value) and _VALID.fullmatch(value or "") is not None


def new_correlation_id() -> str:
    return random_uuid()


def correlation_id_from(supplied: str | None) -> str:
    """``supplied`` when it is a valid id, else a new one."""
    return supplied if supplied is not None and is_valid(supplied) else new_correlation_id()
