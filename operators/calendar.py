"""Meeting operators: schedule (find a slot + book it idempotently), reschedule, cancel.

One family for Google Calendar (``provider="google"``, connection ``officeflow_google``) and Microsoft 365
(``provider="microsoft"``, connection ``officeflow_microsoft``); the hooks are
operators/hooks/google_calendar.py and operators/hooks/msgraph_calendar.py.

:class:`ScheduleMeetingOperator` looks for the first slot of ``duration`` in which the organizer and
every attendee are free (freeBusy / getSchedule), inside working hours (default 09:00-17:00) on
weekdays in the organizer's time zone, within the search window; none -> AirflowFailException naming
the window. The event gets an idempotency key derived from dag/run/task/map index (Google: the event
``id`` and the Meet ``requestId``; Graph: the ``transactionId``), and a retry first looks for the event
that key made, so retries never double-book. It returns ``{provider, event_id, start, end, join_url,
attendees}``.

:class:`CancelOrganizedMeetingsOperator` is offboarding's: it cancels every meeting a person organizes
that starts in a window (default: the next 365 days), so their attendees are told and the rooms and
slots freed; meetings they were only invited to are left alone. A person without a calendar (an account
already deleted) has nothing to cancel unless ``missing_ok=False``.

Validation happens before any call; 429s (``Retry-After``) and 5xx are retried in the task
(``with_retries``), permanent errors fail the task without Airflow retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow.sdk.exceptions import AirflowFailException

from include.officeflow.calendar import (
    PROVIDERS,
    CalendarClient,
    Meeting,
    find_slot,
    parse_clock,
    parse_instant,
    run_key,
)
from include.officeflow.errors import NotFound, ServiceError
from include.officeflow.identity import DEFAULT_CONN_IDS
from operators.base import for_airflow
from operators.provider_base import ProviderOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def calendar_client(provider: str, organizer: str, conn_id: str | None = None) -> CalendarClient:
    """The provider's calendar hook acting as ``organizer``, on ``conn_id`` (``officeflow_<provider>`` by default)."""
    if provider == "google":
        from operators.hooks.google_calendar import GoogleCalendarHook

        return GoogleCalendarHook(conn_id or DEFAULT_CONN_IDS["google"], organizer=organizer)
    if provider == "microsoft":
        from operators.hooks.msgraph_calendar import MicrosoftGraphCalendarHook

        return MicrosoftGraphCalendarHook(conn_id or DEFAULT_CONN_IDS["microsoft"])
    raise AirflowFailException(f"provider must be one of {', '.join(PROVIDERS)}, got {provider!r}")


def _addresses(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        value = [v for v in value.replace(";", ",").split(",")]
    if not isinstance(value, Sequence):
        raise AirflowFailException(f"{what} must be a list of email addresses")
    out = list(dict.fromkeys(str(v).strip().lower() for v in value if str(v).strip()))
    bad = [a for a in out if "@" not in a]
    if bad:
        raise AirflowFailException(f"{what}: not email addresses: {', '.join(bad)}")
    return out


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AirflowFailException(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)") from None


def _duration(value: Any) -> timedelta:
    duration = value if isinstance(value, timedelta) else timedelta(minutes=float(value))
    if duration <= timedelta(0) or duration > timedelta(hours=24):
        raise AirflowFailException(f"duration must be between 1 minute and 24 hours, got {duration}")
    return duration


class _MeetingOperator(ProviderOperator):
    template_fields: Sequence[str] = ("provider", "organizer", "time_zone")
    providers = PROVIDERS

    def __init__(self, *, provider: str, organizer: str, time_zone: str = "UTC", conn_id: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(provider=provider, conn_id=conn_id, **kwargs)
        self.organizer = organizer
        self.time_zone = time_zone

    def _validate_common(self) -> tuple[str, ZoneInfo]:
        if self.provider not in PROVIDERS:
            raise AirflowFailException(f"provider must be one of {', '.join(PROVIDERS)}, got {self.provider!r}")
        [organizer] = _addresses([self.organizer], "organizer") or [""]
        if not organizer:
            raise AirflowFailException("organizer is required")
        return organizer, _zone(self.time_zone)

    @cached_property
    def hook(self) -> CalendarClient:
        """The provider's calendar hook, acting as the organizer."""
        organizer, _ = self._validate_common()
        try:
            return calendar_client(self.provider, organizer, self.conn_id)
        except ServiceError as exc:
            raise for_airflow(exc, f"{self.provider}: {exc}") from exc

    def execute(self, context: Context) -> Any:
        organizer, zone = self._validate_common()
        inputs = self.validate(organizer, zone)  # every input checked before the first call
        with closing(self.hook):
            return self.run(organizer, zone, inputs, context)

    def validate(self, organizer: str, zone: ZoneInfo) -> dict[str, Any]:
        """The operator's inputs, checked; AirflowFailException naming what is wrong."""
        return {}

    def run(self, organizer: str, zone: ZoneInfo, inputs: dict[str, Any], context: Context) -> Any:
        """The calls to :attr:`hook`; the XCom result."""
        raise NotImplementedError


class ScheduleMeetingOperator(_MeetingOperator):
    """Find the first common free slot and book the meeting (see the module docstring)."""

    template_fields: Sequence[str] = ("provider", "organizer", "attendees", "title", "description", "window_start",
                                      "window_end", "time_zone", "working_hours")
    ui_color = "#e8f4d9"

    def __init__(self, *, provider: str, organizer: str, attendees: Any, title: str, window_start: Any,
                 window_end: Any, duration: timedelta | int = 30, working_hours: tuple[str, str] = ("09:00", "17:00"),
                 time_zone: str = "UTC", description: str = "", slot_step_minutes: int = 15,
                 conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(provider=provider, organizer=organizer, time_zone=time_zone, conn_id=conn_id, **kwargs)
        self.attendees = attendees
        self.title = title
        self.description = description
        self.window_start = window_start
        self.window_end = window_end
        self.duration = duration
        self.working_hours = working_hours
        self.slot_step_minutes = slot_step_minutes

    def validate(self, organizer: str, zone: ZoneInfo) -> dict[str, Any]:
        attendees = [a for a in _addresses(self.attendees, "attendees") if a != organizer]
        if not str(self.title or "").strip():
            raise AirflowFailException("title is required")
        try:
            start = parse_instant(self.window_start, zone)
            end = parse_instant(self.window_end, zone)
            opens, closes = (parse_clock(v) for v in self.working_hours)
        except (ValueError, TypeError) as exc:
            raise AirflowFailException(str(exc)) from None
        if end <= start:
            raise AirflowFailException(f"the search window is empty: {start.isoformat()} .. {end.isoformat()}")
        if closes <= opens:
            raise AirflowFailException(f"working hours must end after they start: {opens}-{closes}")
        return {"attendees": attendees, "start": start, "end": end, "opens": opens, "closes": closes,
                "duration": _duration(self.duration)}

    def run(self, organizer: str, zone: ZoneInfo, inputs: dict[str, Any], context: Context) -> Any:
        hook = self.hook
        key = run_key(context, self.task_id)
        start, end = inputs["start"], inputs["end"]
        existing = self.service_call("look-up of an earlier booking",
                                     lambda: hook.find_meeting(organizer, key, start, end))
        if existing is not None and not existing.cancelled:
            self.log.info("meeting %s was already booked by an earlier try", existing.event_id)
            return existing.as_result()
        if existing is not None:
            raise AirflowFailException(f"{self.provider}: the meeting this task booked ({existing.event_id}) has "
                                       "been cancelled since; not booking it again")
        everyone = [organizer, *inputs["attendees"]]
        busy = self.service_call("availability look-up", lambda: hook.busy(organizer, everyone, start, end))
        slot = find_slot([b for blocks in busy.values() for b in blocks], window_start=start, window_end=end,
                         duration=inputs["duration"], day_start=inputs["opens"], day_end=inputs["closes"],
                         zone=zone, step=timedelta(minutes=self.slot_step_minutes))
        if slot is None:
            raise AirflowFailException(
                f"{self.provider}: no {inputs['duration']} slot in which {', '.join(everyone)} are all free between "
                f"{start.isoformat()} and {end.isoformat()} within working hours {inputs['opens']:%H:%M}-"
                f"{inputs['closes']:%H:%M} ({zone.key}, Monday-Friday)")
        self.log.info("first common free slot: %s - %s", slot[0].isoformat(), slot[1].isoformat())
        meeting = self.service_call("meeting creation", lambda: hook.create_meeting(
            organizer, key, title=str(self.title), description=str(self.description or ""), start=slot[0],
            end=slot[1], attendees=inputs["attendees"], time_zone=zone.key))
        return meeting.as_result()


class UpdateMeetingOperator(_MeetingOperator):
    """Reschedule a meeting (``start`` + ``duration`` or ``end``) and/or replace its attendees."""

    template_fields: Sequence[str] = ("provider", "organizer", "event_id", "start", "end", "attendees", "time_zone")

    def __init__(self, *, provider: str, organizer: str, event_id: str, start: Any = None, end: Any = None,
                 duration: timedelta | int | None = None, attendees: Any = None, time_zone: str = "UTC",
                 conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(provider=provider, organizer=organizer, time_zone=time_zone, conn_id=conn_id, **kwargs)
        self.event_id = event_id
        self.start = start
        self.end = end
        self.duration = duration
        self.attendees = attendees

    def validate(self, organizer: str, zone: ZoneInfo) -> dict[str, Any]:
        if not str(self.event_id or "").strip():
            raise AirflowFailException("event_id is required")
        try:
            start = parse_instant(self.start, zone) if self.start not in (None, "") else None
            end = parse_instant(self.end, zone) if self.end not in (None, "") else None
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        if start is not None and end is None:
            if self.duration is None:
                raise AirflowFailException("a new start needs an end or a duration")
            end = start + _duration(self.duration)
        if (start is None) != (end is None) or (start is not None and end is not None and end <= start):
            raise AirflowFailException("the new time needs a start before its end")
        attendees = _addresses(self.attendees, "attendees") if self.attendees is not None else None
        if start is None and attendees is None:
            raise AirflowFailException("nothing to change: give a new start/end or attendees")
        return {"start": start, "end": end, "attendees": attendees}

    def run(self, organizer: str, zone: ZoneInfo, inputs: dict[str, Any], context: Context) -> Any:
        meeting = self.service_call(f"update of meeting {self.event_id}", lambda: self.hook.update_meeting(
            organizer, str(self.event_id), start=inputs["start"], end=inputs["end"], attendees=inputs["attendees"],
            time_zone=zone.key))
        return meeting.as_result()


class CancelMeetingOperator(_MeetingOperator):
    """Cancel a meeting (attendees are told); an already cancelled or deleted one is fine."""

    template_fields: Sequence[str] = ("provider", "organizer", "event_id", "comment")

    def __init__(self, *, provider: str, organizer: str, event_id: str, comment: str = "",
                 conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(provider=provider, organizer=organizer, conn_id=conn_id, **kwargs)
        self.event_id = event_id
        self.comment = comment

    def validate(self, organizer: str, zone: ZoneInfo) -> dict[str, Any]:
        if not str(self.event_id or "").strip():
            raise AirflowFailException("event_id is required")
        return {}

    def run(self, organizer: str, zone: ZoneInfo, inputs: dict[str, Any], context: Context) -> Any:
        cancelled = self.service_call(f"cancellation of meeting {self.event_id}", lambda: self.hook.cancel_meeting(
            organizer, str(self.event_id), str(self.comment or "")))
        if not cancelled:
            self.log.info("meeting %s was already cancelled", self.event_id)
        return {"provider": self.provider, "event_id": str(self.event_id), "cancelled": bool(cancelled),
                "already_cancelled": not cancelled}


class CancelOrganizedMeetingsOperator(_MeetingOperator):
    """Cancel the meetings ``organizer`` organizes that start in [``start``, ``end``) (offboarding: a
    leaver's future meetings). ``start`` defaults to now, ``end`` to ``start`` + 365 days; naive bounds
    are in ``time_zone``. Attendees get the provider's cancellation notice with ``comment``.

    Returns ``{"cancelled": [event ids], "already_cancelled": [event ids], "count": len(cancelled)}``:
    a meeting cancelled by someone else between the listing and its cancellation is "already
    cancelled". Cancelled meetings drop out of the listing, so a retry or a second run cancels only
    what is still left (usually nothing). An organizer the provider has no calendar for (unknown, or
    deleted already) is success with nothing cancelled when ``missing_ok`` (the default: such a leaver
    has no meetings left to cancel), else an AirflowFailException.

    Run it before the account is suspended or deleted: the provider cancels as the organizer.
    """

    template_fields: Sequence[str] = ("provider", "organizer", "start", "end", "comment", "time_zone")
    ui_color = "#f9e0d9"

    def __init__(self, *, provider: str, organizer: str, start: Any = None, end: Any = None, comment: str = "",
                 time_zone: str = "UTC", missing_ok: bool = True, conn_id: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(provider=provider, organizer=organizer, time_zone=time_zone, conn_id=conn_id, **kwargs)
        self.start = start
        self.end = end
        self.comment = comment
        self.missing_ok = missing_ok

    def validate(self, organizer: str, zone: ZoneInfo) -> dict[str, Any]:
        try:
            start = parse_instant(self.start, zone) if self.start not in (None, "") else datetime.now(UTC)
            end = parse_instant(self.end, zone) if self.end not in (None, "") else start + timedelta(days=365)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        if end <= start:
            raise AirflowFailException(f"the window is empty: {start.isoformat()} .. {end.isoformat()}")
        return {"start": start, "end": end}

    def run(self, organizer: str, zone: ZoneInfo, inputs: dict[str, Any], context: Context) -> Any:
        hook = self.hook
        start, end = inputs["start"], inputs["end"]
        meetings = self.service_call(f"look-up of the meetings {organizer} organizes",
                                     lambda: _organized_or_none(hook, organizer, start, end))
        if meetings is None:
            return self._missing(organizer)
        self.log.info("%s organizes %d meeting(s) starting between %s and %s", organizer, len(meetings),
                      start.isoformat(), end.isoformat())
        cancelled: list[str] = []
        already: list[str] = []
        for meeting in meetings:
            done = self.service_call(f"cancellation of meeting {meeting.event_id}",
                                     partial(hook.cancel_meeting, organizer, meeting.event_id, str(self.comment or "")))
            (cancelled if done else already).append(meeting.event_id)
        if already:
            self.log.info("already cancelled: %s", ", ".join(already))
        return {"cancelled": cancelled, "already_cancelled": already, "count": len(cancelled)}

    def _missing(self, organizer: str) -> dict[str, Any]:
        message = f"{self.provider}: {organizer} has no calendar (unknown user, or the account is deleted)"
        if not self.missing_ok:
            raise AirflowFailException(message)
        self.log.warning("%s; nothing to cancel", message)
        return {"cancelled": [], "already_cancelled": [], "count": 0}


def _organized_or_none(client: CalendarClient, organizer: str, start: datetime, end: datetime) -> list[Meeting] | None:
    """The organizer's meetings, or None when the provider has no calendar for them."""
    try:
        return client.organized_meetings(organizer, start, end)
    except NotFound:
        return None


__all__ = ["CancelMeetingOperator", "CancelOrganizedMeetingsOperator", "ScheduleMeetingOperator",
           "UpdateMeetingOperator", "calendar_client"]
