"""Meeting scheduling, provider-neutral: slot finding, idempotency keys, the calendar client contract.

The hooks (operators/hooks/google_calendar.py, operators/hooks/msgraph_calendar.py) implement
:class:`CalendarClient`; operators/calendar.py runs them. Their failures are the errors of
include/officeflow/errors.py (retried by its ``with_retries``).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

Interval = tuple[datetime, datetime]
PROVIDERS = ("google", "microsoft")
_NAMESPACE = uuid.UUID("8d3b4c55-1f5a-4c8e-9a7e-2b6f0c1d9e42")


@dataclass(frozen=True)
class Meeting:
    provider: str
    event_id: str
    start: datetime
    end: datetime
    join_url: str | None
    attendees: tuple[str, ...] = ()
    cancelled: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def as_result(self) -> dict[str, Any]:
        return {"provider": self.provider, "event_id": self.event_id, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "join_url": self.join_url, "attendees": list(self.attendees)}


class CalendarClient(Protocol):
    """What each provider hook implements; every method is safe to call again after a failure."""

    provider: str

    def busy(self, organizer: str, calendars: list[str], start: datetime, end: datetime) -> dict[str, list[Interval]]:
        """Busy intervals per address (an address whose calendar cannot be read is a NotFound)."""

    def find_meeting(self, organizer: str, key: str, start: datetime, end: datetime) -> Meeting | None:
        """The meeting created earlier with idempotency ``key`` (searching ``start``-``end``), if any."""

    def create_meeting(self, organizer: str, key: str, *, title: str, description: str, start: datetime,
                       end: datetime, attendees: list[str], time_zone: str) -> Meeting:
        """Create it, or return the one ``key`` already created."""

    def update_meeting(self, organizer: str, event_id: str, *, start: datetime | None, end: datetime | None,
                       attendees: list[str] | None, time_zone: str, ask_again: bool = False) -> Meeting:
        """Change its time and/or attendees; ``ask_again``: every attendee is asked to answer anew (a new
        time: an earlier accept or decline was for the old one)."""

    def cancel_meeting(self, organizer: str, event_id: str, comment: str) -> bool:
        """True when this call cancelled it, False when it was already cancelled or deleted."""

    def organized_meetings(self, organizer: str, start: datetime, end: datetime) -> list[Meeting]:
        """The non-cancelled meetings ``organizer`` organizes that start in [``start``, ``end``), earliest
        first; not those in which the organizer is only an attendee (theirs to keep, not ours to cancel).
        An organizer without a calendar (unknown or deleted user) is a NotFound."""

    def close(self) -> None: ...


# --- idempotency -------------------------------------------------------------------------------------

def google_event_id(key: str) -> str:
    """A Calendar event id (base32hex, lower case: ``[a-v0-9]``, 5-1024 chars) derived from ``key``."""
    digest = hashlib.sha256(key.encode()).digest()
    return "of" + base64.b32hexencode(digest).decode().lower().rstrip("=")


def transaction_id(key: str) -> str:
    """A Graph ``transactionId`` (and Meet ``requestId``) derived from ``key``."""
    return str(uuid.uuid5(_NAMESPACE, key))


# --- slots ---------------------------------------------------------------------------------------------

def parse_clock(value: str | time) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"working hours must be HH:MM, got {value!r}") from None


def parse_instant(value: Any, zone: ZoneInfo) -> datetime:
    """A window bound: a datetime, a date (midnight) or ISO text; naive ones are in ``zone``."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"not an ISO date or date-time: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _ceil(moment: datetime, step: timedelta) -> datetime:
    """Round up to the next multiple of ``step`` after local midnight."""
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    steps = -(-(moment - midnight) // step)
    return midnight + steps * step


def find_slot(busy: Iterable[Interval], *, window_start: datetime, window_end: datetime, duration: timedelta,
              day_start: time, day_end: time, zone: ZoneInfo, step: timedelta = timedelta(minutes=15),
              weekdays: frozenset[int] = frozenset(range(5))) -> Interval | None:
    """The earliest ``duration`` long interval inside ``window_start``-``window_end``, within working hours
    (``day_start``-``day_end`` in ``zone``) on ``weekdays`` (0 = Monday), starting on a ``step``
    boundary, overlapping no ``busy`` interval. None when there is none."""
    blocks = sorted((s.astimezone(UTC), e.astimezone(UTC)) for s, e in busy)
    day = window_start.astimezone(zone).date()
    last = window_end.astimezone(zone).date()
    while day <= last:
        if day.weekday() in weekdays:
            opens = max(datetime.combine(day, day_start, tzinfo=zone), window_start.astimezone(zone))
            closes = min(datetime.combine(day, day_end, tzinfo=zone), window_end.astimezone(zone))
            candidate = _ceil(opens, step)
            while candidate + duration <= closes:
                start_utc, end_utc = candidate.astimezone(UTC), (candidate + duration).astimezone(UTC)
                clash = next(((s, e) for s, e in blocks if s < end_utc and e > start_utc), None)
                if clash is None:
                    return candidate, candidate + duration
                candidate = _ceil(clash[1].astimezone(zone), step)
        day += timedelta(days=1)
    return None
