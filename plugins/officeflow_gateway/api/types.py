"""Input types that take only what the OpenAPI document declares. Pydantic's lax mode reads a number as a Unix
time (``until=0.5``, ``"received_after": 0``) and ``0``/``1`` as booleans; the document says ISO 8601 text and
JSON booleans, so anything else is refused (422) instead of quietly meaning 1970 or false."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Strict

_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _iso_text(kind: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, date):  # datetime is a date too: already parsed (Python callers)
            return value
        if not isinstance(value, str) or _NUMBER.fullmatch(value):
            raise ValueError(f"must be an ISO 8601 {kind} in text, not a number")
        return value

    return check


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_text("date-time (e.g. 2026-12-01T00:00:00Z)"))]
IsoDate = Annotated[date, BeforeValidator(_iso_text("date (YYYY-MM-DD)"))]
JsonBool = Annotated[bool, Strict()]  # in a JSON body: true or false only
