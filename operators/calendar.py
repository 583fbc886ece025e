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

Calendar sync (docs/slack-and-calendar.md): with ``track_changes`` (the default) a booked meeting is
recorded in the OfficeFlow store with what to do when it changes (``on_change``: ``notify`` / ``rebook``,
default ``OFFICEFLOW_CALENDAR_CHANGE_ACTION``), and the organizer's calendar is watched (a Google watch
channel / a Graph subscription) when a public notification URL is configured. :func:`process_subscription`
turns the stored notifications of a subscription into meeting changes (a decline, a move, a
cancellation) and tells the organizer in Slack; the ``calendar_maintenance`` DAG runs
:class:`ProcessCalendarNotificationsOperator`, :class:`RenewCalendarSubscriptionsOperator` and
:class:`MeetingRemindersOperator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow.sdk.exceptions import AirflowFailException

from include.officeflow import calendar_sync as sync
from include.officeflow.calendar import (
    PROVIDERS,
    CalendarClient,
    Meeting,
    find_slot,
    parse_clock,
    parse_instant,
)
from include.officeflow.errors import NotFound, ServiceError, with_retries
from include.officeflow.identity import DEFAULT_CONN_IDS
from include.officeflow.run_keys import run_key
from include.officeflow.settings import get_settings
from operators.base import ServiceOperator, for_airflow
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
                 conn_id: str | None = None, track_changes: bool = True, on_change: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(provider=provider, organizer=organizer, time_zone=time_zone, conn_id=conn_id, **kwargs)
        if on_change is not None and on_change not in sync.ON_CHANGE:
            raise ValueError(f"on_change must be one of {', '.join(sync.ON_CHANGE)}, got {on_change!r}")
        self.track_changes = track_changes
        self.on_change = on_change
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
            return self._tracked(existing.as_result(), organizer, zone, inputs, context)
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
        return self._tracked(meeting.as_result(), organizer, zone, inputs, context)

    def _tracked(self, result: dict[str, Any], organizer: str, zone: ZoneInfo, inputs: dict[str, Any],
                 context: Context) -> dict[str, Any]:
        """Record the booking and watch the organizer's calendar (``track_changes``). The meeting is booked
        either way: a failure here is logged, and calendar_maintenance subscribes later."""
        if not self.track_changes:
            return result
        from include.officeflow.store import task_store_url

        ti = context.get("ti")
        params = context.get("params") or {}
        organization = str(params.get("organization_id") or "default")
        booking = {"title": str(self.title), "description": str(self.description or ""),
                   "duration_minutes": inputs["duration"].total_seconds() / 60,
                   "working_hours": [inputs["opens"].strftime("%H:%M"), inputs["closes"].strftime("%H:%M")],
                   "time_zone": zone.key, "window_end": inputs["end"].isoformat(),
                   "slot_step_minutes": self.slot_step_minutes, "conn_id": self.conn_id}
        try:
            url = task_store_url()
            sync.record_booking(result, organization_id=organization, organizer=organizer,
                                dag_id=str(getattr(ti, "dag_id", "")), run_id=str(getattr(ti, "run_id", "")),
                                task_id=self.task_id, on_change=self.on_change or get_settings().calendar_change_action,
                                booking=booking, store_url=url)
            ensure_subscription(self.provider, organizer, conn_id=self.conn_id, organization_id=organization,
                                created_by=f"dag:{getattr(ti, 'dag_id', '')}", store_url=url)
        except Exception as exc:  # the store or the provider; the booking itself stands
            self.log.warning("meeting %s is booked but its changes are not tracked: %s: %s", result["event_id"],
                             type(exc).__name__, exc)
        return result


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


# --- calendar sync: subscriptions, notifications, reminders -------------------------------------------

GOOGLE_CHANNEL_LIFETIME = timedelta(days=7)
#: How often one meeting is rebooked after declines before OfficeFlow leaves it to the organizer.
MAX_REBOOKS = 3
GRAPH_SUBSCRIPTION_LIFETIME = timedelta(minutes=4200)  # Graph allows 4230 minutes for events


def _google(conn_id: str | None, organizer: str) -> Any:
    from operators.hooks.google_calendar import GoogleCalendarHook

    return GoogleCalendarHook(conn_id or DEFAULT_CONN_IDS["google"], organizer=organizer)


def _graph(conn_id: str | None) -> Any:
    from operators.hooks.msgraph_calendar import MicrosoftGraphCalendarHook

    return MicrosoftGraphCalendarHook(conn_id or DEFAULT_CONN_IDS["microsoft"])


def ensure_subscription(provider: str, organizer: str, *, conn_id: str | None = None,
                        organization_id: str = "default", created_by: str, store_url: str | None = None) -> str | None:
    """The id of a live subscription on ``organizer``'s calendar, made now if there is none; None when no
    public notification URL is configured."""
    address = sync.notifications_url(provider)
    if address is None:
        return None
    renew_before = timedelta(minutes=get_settings().calendar_renew_before_minutes)
    live = sync.live_subscription(provider, organizer, within=renew_before, store_url=store_url)
    if live is not None:
        return live.id
    return subscribe(provider, organizer, address, conn_id=conn_id, organization_id=organization_id,
                     created_by=created_by, store_url=store_url)


def subscribe(provider: str, organizer: str, address: str, *, conn_id: str | None = None,
              organization_id: str = "default", created_by: str, sync_token: str | None = None,
              store_url: str | None = None) -> str:
    """Watch ``organizer``'s calendar: stored first (``pending``, so the provider's first message already
    verifies), then created at the provider and confirmed with its id and expiry."""
    channel_id, secret = sync.new_channel()
    now = datetime.now(UTC)
    if provider == "google":
        with closing(_google(conn_id, organizer)) as hook:
            token = sync_token or with_retries(hook.sync_token, describe="google: full sync")
            sub_id = sync.add_subscription(provider=provider, calendar=organizer, channel_id=channel_id,
                                           secret=secret, organization_id=organization_id, created_by=created_by,
                                           store_url=store_url)
            sync.set_sync_token(sub_id, token, store_url=store_url)
            try:
                channel = with_retries(lambda: hook.watch(channel_id, secret, address, now + GOOGLE_CHANNEL_LIFETIME),
                                       describe="google: events.watch")
            except Exception:
                sync.set_status(sub_id, "failed", store_url=store_url)
                raise
        sync.confirm_subscription(sub_id, resource_id=str(channel["resourceId"]), store_url=store_url,
                                  expires_at=datetime.fromtimestamp(int(channel["expiration"]) / 1000, UTC))
        return sub_id
    sub_id = sync.add_subscription(provider=provider, calendar=organizer, channel_id=f"pending:{channel_id}",
                                   secret=secret, organization_id=organization_id, created_by=created_by,
                                   store_url=store_url)
    try:
        with closing(_graph(conn_id)) as graph:
            created = with_retries(lambda: graph.subscribe(organizer, address, secret,
                                                           now + GRAPH_SUBSCRIPTION_LIFETIME),
                                   describe="microsoft: subscription")
    except Exception:
        sync.set_status(sub_id, "failed", store_url=store_url)
        raise
    sync.confirm_subscription(sub_id, channel_id=str(created["id"]), store_url=store_url,
                              expires_at=_graph_time(created["expirationDateTime"]))
    return sub_id


def renew(subscription: Any, *, conn_id: str | None = None, store_url: str | None = None) -> str:
    """Keep watching past ``subscription``'s expiry: Graph's is extended (``PATCH``; an expired one, which
    Graph has deleted, is replaced); Google channels cannot be extended, so a new channel replaces it (the
    sync token carries over) and the old one is stopped. The id of the live subscription."""
    now = datetime.now(UTC)
    if subscription.provider == "microsoft":
        try:
            with closing(_graph(conn_id)) as graph:
                renewed = with_retries(lambda: graph.renew(subscription.channel_id, now + GRAPH_SUBSCRIPTION_LIFETIME),
                                       describe="microsoft: subscription renewal")
            sync.confirm_subscription(subscription.id, expires_at=_graph_time(renewed["expirationDateTime"]),
                                      renewed=True, store_url=store_url)
            return str(subscription.id)
        except NotFound:
            sync.set_status(subscription.id, "expired", store_url=store_url)
    address = sync.notifications_url(subscription.provider)
    if address is None:
        raise NotFound("no public notification URL is configured (OFFICEFLOW_CALENDAR_NOTIFICATIONS_URL)")
    new_id = subscribe(subscription.provider, subscription.calendar, address, conn_id=conn_id,
                       organization_id=subscription.organization_id, created_by=subscription.created_by,
                       sync_token=subscription.sync_token if subscription.provider == "google" else None,
                       store_url=store_url)
    if subscription.provider == "google":
        sync.set_status(subscription.id, "stopped", store_url=store_url)
        if subscription.resource_id:
            with closing(_google(conn_id, subscription.calendar)) as hook:
                hook.stop_channel(subscription.channel_id, subscription.resource_id)
    return new_id


def _graph_time(text: str) -> datetime:
    """Graph's ``2026-12-04T10:00:00.0000000Z`` (seven fraction digits) as an aware datetime."""
    return datetime.fromisoformat(str(text).rstrip("Z")[:26]).replace(tzinfo=UTC)


def _changed_events(subscription: Any, notes: list[Any], conn_id: str | None,
                    store_url: str | None) -> list[sync.EventState]:
    if subscription.provider == "google":
        from operators.hooks.google_calendar import event_state as google_state

        with closing(_google(conn_id, subscription.calendar)) as hook:
            listed = with_retries(lambda: hook.changes(subscription.sync_token), describe="google: incremental sync") \
                if subscription.sync_token else None
            if listed is None:  # no token, or Google wants a full sync: compare every booked meeting
                token = with_retries(hook.sync_token, describe="google: full sync")
                events = []
                for meeting in sync.booked("google", subscription.calendar, store_url=store_url):
                    try:
                        events.append(hook._execute("get event", lambda c, e=meeting.event_id: c.events().get(
                            calendarId="primary", eventId=e)))
                    except NotFound:
                        events.append({"id": meeting.event_id, "status": "cancelled"})
            else:
                events, token = listed
        sync.set_sync_token(subscription.id, token, store_url=store_url)
        return [google_state(e) for e in events]
    from operators.hooks.msgraph_calendar import event_state as graph_state

    ids = list(dict.fromkeys(str(n.resource or "").rstrip("/").rsplit("/", 1)[-1] for n in notes if n.resource))
    with closing(_graph(conn_id)) as graph:
        return [graph_state(i, with_retries(partial(graph.event, subscription.calendar, i),
                                             describe="microsoft: event look-up")) for i in ids]


def process_subscription(subscription_id: str, *, conn_id: str | None = None, slack_conn_id: str | None = None,
                         store_url: str | None = None) -> dict[str, Any]:
    """Handle a subscription's pending notifications: read what changed, compare it with the meetings
    OfficeFlow booked, record each decline / move / cancellation once and act on it (a Slack notice to
    the organizer; with ``on_change="rebook"`` a decline first moves the meeting to the next common free
    slot (:func:`rebook_meeting`), listed under ``rebook``, and the notice says where to).
    Returns ``{"changes": [change ids], "rebook": [change ids], "notifications": n}``. A provider failure
    leaves the notifications pending (with the error) for calendar_maintenance to retry."""
    subscription = sync.get_subscription(subscription_id, store_url=store_url)
    notes = sync.pending_notifications(subscription_id, store_url=store_url)
    if subscription is None or not notes:
        return {"changes": [], "rebook": [], "notifications": 0}
    try:
        states = _changed_events(subscription, notes, conn_id, store_url)
    except Exception as exc:  # kept pending, with the error, for calendar_maintenance
        sync.note_error([n.id for n in notes], f"{type(exc).__name__}: {exc}", store_url=store_url)
        raise
    meetings = {m.event_id: m for m in sync.booked(subscription.provider, subscription.calendar,
                                                    [s.event_id for s in states], store_url=store_url)}
    found: list[str] = []
    rebook: list[str] = []
    rebooked: set[str] = set()  # a meeting moved once in this pass: its other declines were for the old time
    for state in states:
        meeting = meetings.get(state.event_id)
        if meeting is None:
            continue  # not a meeting OfficeFlow booked
        for change in sync.changes_of(meeting, state):
            change_id = sync.record_change(meeting.id, change, notification_id=notes[-1].id, store_url=store_url)
            if change_id is None:
                continue  # found and handled by an earlier notification
            found.append(change_id)
            outcome = Rebooking()
            if meeting.on_change == "rebook" and change.kind == "declined" and meeting.id not in rebooked:
                outcome = rebook_meeting(meeting, change_id, conn_id=conn_id, store_url=store_url)
                if outcome.action == "rebooked":
                    rebook.append(change_id)
                    rebooked.add(meeting.id)
            error = notify_organizer(meeting, change, outcome, slack_conn_id=slack_conn_id)
            action = outcome.action or ("none" if error else "notified")
            sync.change_handled(change_id, action, "; ".join(filter(None, (outcome.error, error))) or None,
                                store_url=store_url)
    sync.finish_notifications([n.id for n in notes], store_url=store_url)
    return {"changes": found, "rebook": rebook, "notifications": len(notes)}


@dataclass(frozen=True)
class Rebooking:
    """What :func:`rebook_meeting` did: ``action`` ``rebooked`` (``start``/``end`` the new time),
    ``rebook_failed`` (``error`` says why: no common free slot, the limit reached, a provider error), or
    None (not asked to rebook)."""

    action: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    error: str | None = None


def rebook_meeting(meeting: Any, change_id: str, *, conn_id: str | None = None,
                   store_url: str | None = None) -> Rebooking:
    """Move a meeting an attendee declined to the next slot after it in which the organizer and every
    attendee are free (working hours and time zone as booked; within ``OFFICEFLOW_CALENDAR_REBOOK_SEARCH_
    DAYS``), asking every attendee again. At most :data:`MAX_REBOOKS` times per meeting, so a decline of
    every new time does not move it forever. The store learns the new time before the provider does (the
    move's own notification is then no change) and is put back when the move fails."""
    booking = dict(meeting.booking or {})
    rebooks = list(booking.get("rebooks") or [])
    if len(rebooks) >= MAX_REBOOKS:
        return Rebooking("rebook_failed", error=f"already rebooked {len(rebooks)} times; not moved again")
    zone = _zone_or_utc(str(booking.get("time_zone") or "UTC"))
    duration = meeting.ends_at - meeting.starts_at
    opens, closes = (parse_clock(v) for v in booking.get("working_hours") or ("09:00", "17:00"))
    start = max(datetime.now(UTC), meeting.ends_at.astimezone(UTC))
    end = start + timedelta(days=get_settings().calendar_rebook_search_days)
    everyone = [meeting.organizer, *meeting.attendees]
    try:
        with closing(calendar_client(meeting.provider, meeting.organizer, conn_id or booking.get("conn_id"))) as hook:
            busy = with_retries(lambda: hook.busy(meeting.organizer, everyone, start, end),
                                describe=f"{meeting.provider}: availability look-up")
            slot = find_slot([b for blocks in busy.values() for b in blocks], window_start=start, window_end=end,
                             duration=duration, day_start=opens, day_end=closes, zone=zone,
                             step=timedelta(minutes=int(booking.get("slot_step_minutes") or 15)))
            if slot is None:
                return Rebooking("rebook_failed", error=f"no common free slot in the {(end - start).days} days after "
                                                        f"{start.isoformat()}")
            moved = {"change_id": change_id, "from": meeting.starts_at.isoformat(), "to": slot[0].isoformat()}
            sync.move_booking(meeting.id, start=slot[0], end=slot[1], status="rebooked", rebooks=[*rebooks, moved],
                              store_url=store_url)
            try:
                with_retries(lambda: hook.update_meeting(meeting.organizer, meeting.event_id, start=slot[0],
                                                         end=slot[1], attendees=list(meeting.attendees),
                                                         time_zone=zone.key, ask_again=True),
                             describe=f"{meeting.provider}: rebooking of {meeting.event_id}")
            except Exception:
                sync.move_booking(meeting.id, start=meeting.starts_at, end=meeting.ends_at, status="declined",
                                  rebooks=rebooks, reminder_sent_at=meeting.reminder_sent_at, store_url=store_url)
                raise
    except ServiceError as exc:
        return Rebooking("rebook_failed", error=f"{type(exc).__name__}: {exc}")
    return Rebooking("rebooked", slot[0], slot[1])


def _zone_or_utc(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _when_text(moment: datetime, zone_name: str) -> str:
    zone = _zone_or_utc(zone_name)
    return moment.astimezone(zone).strftime(f"%a %d %b %Y %H:%M ({zone.key})")


def change_text(meeting: Any, change: sync.Change, rebooking: Rebooking | None = None) -> str:
    """The Slack notice of a change (and of what OfficeFlow did about it), for the meeting's organizer."""
    zone = str((meeting.booking or {}).get("time_zone") or "UTC")
    title = f"\u201c{meeting.title}\u201d"
    rebooking = rebooking or Rebooking()
    if change.kind == "declined" and rebooking.action == "rebooked" and rebooking.start is not None:
        text = (f"{change.attendee} declined {title} on {_when_text(meeting.starts_at, zone)}, so OfficeFlow moved "
                f"it to {_when_text(rebooking.start, zone)}, the next time everyone is free, and asked everyone "
                "again.")
    elif change.kind == "declined" and rebooking.action == "rebook_failed":
        text = (f"{change.attendee} declined {title} on {_when_text(meeting.starts_at, zone)}. OfficeFlow could not "
                f"rebook it ({rebooking.error}); please find a new time.")
    elif change.kind == "declined":
        text = f"{change.attendee} declined {title} on {_when_text(meeting.starts_at, zone)}."
    elif change.kind == "moved":
        text = (f"{title} moved from {_when_text(datetime.fromisoformat(change.details['was_start']), zone)} to "
                f"{_when_text(datetime.fromisoformat(change.details['start']), zone)}.")
    else:
        text = f"{title} on {_when_text(meeting.starts_at, zone)} was cancelled."
    return f":calendar: {text} (booked by OfficeFlow for {', '.join(meeting.attendees) or 'nobody'})"


def post_to_person(email: str, text: str, *, slack_conn_id: str | None = None) -> None:
    """A direct message to the Slack member with ``email`` (with the Slack hook's retries and errors)."""
    from operators.hooks.slack import DEFAULT_CONN_ID, OfficeFlowSlackHook

    hook = OfficeFlowSlackHook(slack_conn_id=slack_conn_id or DEFAULT_CONN_ID)
    user_id = with_retries(lambda: hook.user_id_by_email(email), describe="slack: users.lookupByEmail")
    channel = with_retries(lambda: hook.call_method("conversations.open", users=[user_id]),
                           describe="slack: conversations.open")["channel"]["id"]
    with_retries(lambda: hook.call_method("chat.postMessage", channel=channel, text=text,
                                          blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}]),
                 describe="slack: chat.postMessage")


def notify_organizer(meeting: Any, change: sync.Change, rebooking: Rebooking | None = None, *,
                     slack_conn_id: str | None = None) -> str | None:
    """Tell the organizer in Slack; the error text when that failed (recorded on the change)."""
    try:
        post_to_person(meeting.organizer, change_text(meeting, change, rebooking), slack_conn_id=slack_conn_id)
    except ServiceError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


class ProcessCalendarNotificationsOperator(ServiceOperator):
    """Process every subscription's pending calendar notifications (those the gateway could not finish,
    e.g. a provider failure); see :func:`process_subscription`. Returns the change ids found."""

    def __init__(self, *, conn_ids: dict[str, str] | None = None, slack_conn_id: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_ids, self.slack_conn_id = conn_ids or {}, slack_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from include.officeflow.store import task_store_url

        url = task_store_url()
        found: dict[str, Any] = {"changes": [], "rebook": []}
        for subscription_id in sync.subscriptions_with_pending(store_url=url):
            subscription = sync.get_subscription(subscription_id, store_url=url)
            if subscription is None:
                continue
            result = self.service_call(f"processing of subscription {subscription_id}", partial(
                process_subscription, subscription.id, conn_id=self.conn_ids.get(subscription.provider),
                slack_conn_id=self.slack_conn_id, store_url=url), in_task_retries=False)
            found["changes"] += result["changes"]
            found["rebook"] += result["rebook"]
        return found


class RenewCalendarSubscriptionsOperator(ServiceOperator):
    """Renew the watch channels / Graph subscriptions that expire within ``OFFICEFLOW_CALENDAR_RENEW_BEFORE_
    MINUTES`` (expired ones are replaced) while their calendar has meetings to come, and watch the organizers
    of upcoming booked meetings that have no subscription yet. Returns ``{"renewed": [...], "created": [...],
    "failed": [...]}`` (one failure does not stop the others; any failure fails the task after the rest)."""

    def __init__(self, *, conn_ids: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_ids = conn_ids or {}

    def execute(self, context: Context) -> dict[str, Any]:
        from include.officeflow.store import task_store_url

        url = task_store_url()
        horizon = datetime.now(UTC) + timedelta(minutes=get_settings().calendar_renew_before_minutes)
        out: dict[str, list[str]] = {"renewed": [], "created": [], "failed": []}
        for subscription in sync.expiring(horizon, store_url=url):
            try:
                out["renewed"].append(renew(subscription, conn_id=self.conn_ids.get(subscription.provider),
                                            store_url=url))
            except ServiceError as exc:
                self.log.error("renewal of %s subscription %s failed: %s", subscription.provider, subscription.id, exc)
                out["failed"].append(subscription.id)
        for provider, organizer, organization in sync.unwatched_organizers(store_url=url):
            try:
                made = ensure_subscription(provider, organizer, conn_id=self.conn_ids.get(provider),
                                           organization_id=organization, created_by="dag:calendar_maintenance",
                                           store_url=url)
            except ServiceError as exc:
                self.log.error("watching %s's %s calendar failed: %s", organizer, provider, exc)
                out["failed"].append(f"{provider}:{organizer}")
                continue
            if made:
                out["created"].append(made)
        if out["failed"]:
            raise for_airflow(ServiceError("some subscriptions could not be renewed"), f"failed: {out['failed']}")
        return out


class MeetingRemindersOperator(ServiceOperator):
    """Remind each booked meeting's organizer in Slack ``lead_minutes`` before it starts (default
    ``OFFICEFLOW_CALENDAR_REMINDER_LEAD_MINUTES``), once per meeting: the meeting is claimed in the store
    before posting, and released again when the post fails (the next run retries it)."""

    template_fields: Sequence[str] = ("lead_minutes",)

    def __init__(self, *, lead_minutes: int | None = None, slack_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lead_minutes, self.slack_conn_id = lead_minutes, slack_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from include.officeflow.store import task_store_url

        url = task_store_url()
        lead = timedelta(minutes=int(self.lead_minutes or get_settings().calendar_reminder_lead_minutes))
        sent: list[str] = []
        failed: list[str] = []
        for meeting in sync.due_reminders(lead, store_url=url):
            if not sync.claim_reminder(meeting.id, store_url=url):
                continue
            zone = str((meeting.booking or {}).get("time_zone") or "UTC")
            link = f" Join: {meeting.join_url}" if meeting.join_url else ""
            text = (f":alarm_clock: Reminder: \u201c{meeting.title}\u201d with {', '.join(meeting.attendees)} starts "
                    f"{_when_text(meeting.starts_at, zone)}.{link}")
            try:
                post_to_person(meeting.organizer, text, slack_conn_id=self.slack_conn_id)
            except ServiceError as exc:
                sync.release_reminder(meeting.id, store_url=url)
                self.log.error("reminder for meeting %s failed: %s", meeting.event_id, exc)
                failed.append(meeting.id)
                continue
            sent.append(meeting.id)
        if failed:
            raise for_airflow(ServiceError("reminders failed"), f"reminders not sent (retried next run): {failed}")
        return {"sent": sent}


__all__ = ["CancelMeetingOperator", "CancelOrganizedMeetingsOperator", "MeetingRemindersOperator",
           "ProcessCalendarNotificationsOperator", "RenewCalendarSubscriptionsOperator", "ScheduleMeetingOperator",
           "UpdateMeetingOperator", "calendar_client", "ensure_subscription", "process_subscription", "renew"]
