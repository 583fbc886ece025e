"""Google Calendar (API v3) meetings: :class:`GoogleCalendarHook`, a :class:`CalendarClient`.

A :class:`operators.hooks.google_workspace.GoogleWorkspaceHook` (the ``google_cloud_platform``
connection, service-account key, ``extra.api_endpoint``, error mapping, one try per call) with the
``calendar`` scope (``extra.calendar_scope`` overrides it; the domain-wide delegation entry must grant
it) and the **organizer** as the delegation subject: the service account acts as the organizer, whose
``primary`` calendar holds the event.

- availability: ``freebusy.query`` (a calendar Google cannot read for the organizer is an error, not
  "free");
- create: ``events.insert`` with a client event ``id`` derived from the run (a retry gets 409
  "The requested identifier already exists." and reads the event instead of booking again),
  ``conferenceDataVersion=1`` + ``createRequest.requestId`` (a Meet link), ``sendUpdates=all``;
- update: ``events.patch``; cancel: ``events.delete`` (already cancelled -> False);
- organized meetings: ``events.list`` on the organizer's ``primary`` calendar (``singleEvents``: each
  occurrence of a series on its own, paged by ``pageToken``), keeping the events whose organizer is the
  organizer (``organizer.self``): the calendar also shows the meetings they were only invited to. A
  delegation subject Google does not know ("Invalid email or User ID", a deleted user) has no calendar:
  :class:`NotFound`.
- push notifications: ``events.watch`` on the organizer's ``primary`` calendar (a ``web_hook`` channel
  with OfficeFlow's channel id and token), ``channels.stop``; incremental sync: ``events.list`` paged to
  its ``nextSyncToken`` (:meth:`sync_token`), then ``syncToken=`` lists what changed since
  (:meth:`changes`; None when Google answers 410 ``fullSyncRequired``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from include.officeflow.calendar import Interval, Meeting, google_event_id, transaction_id
from include.officeflow.calendar_sync import EventState
from include.officeflow.errors import AuthError, Conflict, NotFound
from include.officeflow.identity import DEFAULT_CONN_IDS
from operators.hooks.google_workspace import GoogleWorkspaceHook

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
#: What Google's token endpoint says (``invalid_grant``) when the delegation subject is no user of the Workspace.
UNKNOWN_SUBJECT = "Invalid email or User ID"


class GoogleCalendarHook(GoogleWorkspaceHook):
    """Meetings in the organizer's Google Calendar (one hook per organizer).

    :param conn_id: the ``google_cloud_platform`` connection (default ``officeflow_google``).
    :param organizer: the user whose calendar holds the meetings; the service account acts as them.
    """

    hook_name = "OfficeFlow Google Calendar"
    provider = "google"
    api = ("calendar", "v3")
    api_title = "Calendar API"
    default_scopes = (CALENDAR_SCOPE,)
    scope_field = "calendar_scope"
    #: ``maxResults`` of an events.list page (Google: default 250, at most 2500).
    page_size = 250

    def __init__(self, conn_id: str = DEFAULT_CONN_IDS["google"], *, organizer: str) -> None:
        self.organizer = organizer.strip().lower()
        super().__init__(conn_id, subject=self.organizer)

    def api_endpoint(self) -> str | None:
        """``extra.api_endpoint`` names the Google APIs root (``https://www.googleapis.com/`` or the sandbox's
        ``/google/``); the Calendar API lives under ``calendar/v3/`` of it."""
        root = super().api_endpoint()
        return f"{root.rstrip('/')}/calendar/v3/" if root else None

    def auth_hint(self) -> str:
        return (f"service-account key, that domain-wide delegation grants {', '.join(self.scopes)}, and that the "
                f"organizer {self.organizer} is a user of the Workspace")

    def _check(self, organizer: str) -> None:
        if organizer.strip().lower() != self.organizer:
            raise ValueError(f"this hook acts as {self.organizer}, not {organizer}")

    # --- CalendarClient -----------------------------------------------------------------------------
    def busy(self, organizer: str, calendars: list[str], start: datetime, end: datetime) -> dict[str, list[Interval]]:
        self._check(organizer)
        body = {"timeMin": _rfc3339(start), "timeMax": _rfc3339(end), "items": [{"id": c} for c in calendars]}
        answer = self._execute("free/busy query", lambda c: c.freebusy().query(body=body))
        found = {key.lower(): value for key, value in (answer.get("calendars") or {}).items()}
        result: dict[str, list[Interval]] = {}
        unreadable = []
        for address in calendars:
            entry = found.get(address.lower())
            if entry is None or entry.get("errors"):
                reasons = ", ".join(e.get("reason", "?") for e in (entry or {}).get("errors", [])) or "missing"
                unreadable.append(f"{address} ({reasons})")
                continue
            result[address] = [(_parse(b["start"]), _parse(b["end"])) for b in entry.get("busy", [])]
        if unreadable:
            raise NotFound("Google Calendar cannot tell when these calendars are free: " + ", ".join(unreadable))
        return result

    def find_meeting(self, organizer: str, key: str, start: datetime, end: datetime) -> Meeting | None:
        self._check(organizer)
        try:
            event = self._execute("event look-up", lambda c: c.events().get(calendarId="primary",
                                                                             eventId=google_event_id(key)))
        except NotFound:
            return None
        return _meeting(event)

    def create_meeting(self, organizer: str, key: str, *, title: str, description: str, start: datetime,
                       end: datetime, attendees: list[str], time_zone: str) -> Meeting:
        self._check(organizer)
        event_id = google_event_id(key)
        body = {
            "id": event_id, "summary": title, "description": description,
            "start": {"dateTime": start.isoformat(), "timeZone": time_zone},
            "end": {"dateTime": end.isoformat(), "timeZone": time_zone},
            "attendees": [{"email": a} for a in attendees],
            "conferenceData": {"createRequest": {"requestId": transaction_id(key),
                                                 "conferenceSolutionKey": {"type": "hangoutsMeet"}}},
        }
        try:
            event = self._execute(f"create event {event_id}", lambda c: c.events().insert(
                calendarId="primary", body=body, conferenceDataVersion=1, sendUpdates="all"))
        except Conflict as exc:
            if "identifier already exists" not in str(exc):
                raise
            event = self._execute(f"get event {event_id}", lambda c: c.events().get(calendarId="primary",
                                                                                   eventId=event_id))
        return _meeting(event)

    def update_meeting(self, organizer: str, event_id: str, *, start: datetime | None, end: datetime | None,
                       attendees: list[str] | None, time_zone: str, ask_again: bool = False) -> Meeting:
        self._check(organizer)
        body: dict[str, Any] = {}
        if start is not None:
            body["start"] = {"dateTime": start.isoformat(), "timeZone": time_zone}
        if end is not None:
            body["end"] = {"dateTime": end.isoformat(), "timeZone": time_zone}
        if attendees is not None:  # the organizer may set responseStatus: needsAction asks again
            body["attendees"] = [{"email": a, **({"responseStatus": "needsAction"} if ask_again else {})}
                                 for a in attendees]
        event = self._execute(f"update event {event_id}", lambda c: c.events().patch(
            calendarId="primary", eventId=event_id, body=body, sendUpdates="all"))
        return _meeting(event)

    def cancel_meeting(self, organizer: str, event_id: str, comment: str) -> bool:
        self._check(organizer)
        try:
            current = self._execute(f"get event {event_id}", lambda c: c.events().get(calendarId="primary",
                                                                                     eventId=event_id))
            if current.get("status") == "cancelled":
                return False
            self._execute(f"cancel event {event_id}", lambda c: c.events().delete(
                calendarId="primary", eventId=event_id, sendUpdates="all"))
        except NotFound:
            return False
        return True

    def organized_meetings(self, organizer: str, start: datetime, end: datetime) -> list[Meeting]:
        self._check(organizer)

        def page(client: Any, token: str | None) -> Any:
            return client.events().list(calendarId="primary", timeMin=_rfc3339(start), timeMax=_rfc3339(end),
                                        singleEvents=True, orderBy="startTime", maxResults=self.page_size,
                                        pageToken=token)

        try:
            events = self._pages(f"list of {self.organizer}'s events", page, "items")
        except AuthError as exc:
            if UNKNOWN_SUBJECT not in str(exc):
                raise
            raise NotFound(f"{self.organizer} has no Google calendar: Google does not know the user "
                           f"({UNKNOWN_SUBJECT!r})") from None
        meetings = [_meeting(e) for e in events if e.get("status") != "cancelled" and self._organizes(e)]
        return [m for m in meetings if start <= m.start < end]  # the listing also has those already under way

    # --- push notifications and incremental sync --------------------------------------------------
    def watch(self, channel_id: str, token: str, address: str, expiration: datetime | None = None) -> dict[str, Any]:
        """``events.watch`` on the organizer's calendar: the channel (``id``, ``resourceId``, ``expiration``
        in Unix ms as text)."""
        body: dict[str, Any] = {"id": channel_id, "type": "web_hook", "address": address, "token": token}
        if expiration is not None:
            body["expiration"] = int(expiration.timestamp() * 1000)
        return dict(self._execute(f"watch of {self.organizer}'s calendar",
                                  lambda c: c.events().watch(calendarId="primary", body=body)))

    def stop_channel(self, channel_id: str, resource_id: str) -> bool:
        """``channels.stop``: True when stopped now, False when Google no longer knows the channel."""
        try:
            self._execute(f"stop of channel {channel_id}", lambda c: c.channels().stop(
                body={"id": channel_id, "resourceId": resource_id}))
        except NotFound:
            return False
        return True

    def sync_token(self) -> str:
        """A ``nextSyncToken`` for the organizer's calendar as it is now (a full listing, paged)."""
        token: str | None = None
        while True:
            page = self._execute("full sync", lambda c, t=token: c.events().list(
                calendarId="primary", maxResults=2500, pageToken=t))
            token = page.get("nextPageToken")
            if not token:
                return str(page["nextSyncToken"])

    def changes(self, sync_token: str) -> tuple[list[dict[str, Any]], str] | None:
        """The events changed since ``sync_token`` (cancelled ones included) and the next token; None when
        Google wants a full sync again (410 ``fullSyncRequired``)."""
        events: list[dict[str, Any]] = []
        page_token: str | None = None
        while True:
            try:
                page = self._execute("incremental sync", lambda c, t=page_token: c.events().list(
                    calendarId="primary", syncToken=sync_token, maxResults=2500, pageToken=t))
            except NotFound as exc:
                if "full sync" in str(exc) or "fullSyncRequired" in str(exc):
                    return None
                raise
            events.extend(page.get("items", []))
            page_token = page.get("nextPageToken")
            if not page_token:
                return events, str(page["nextSyncToken"])

    def _organizes(self, event: dict[str, Any]) -> bool:
        organizer = event.get("organizer") or {}
        return bool(organizer.get("self")) or str(organizer.get("email", "")).lower() == self.organizer


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _when(value: dict[str, Any]) -> datetime:
    """An EventDateTime: ``dateTime``, or the ``date`` of an all-day event (its midnight, UTC)."""
    if value.get("dateTime"):
        return _parse(value["dateTime"])
    return datetime.combine(date.fromisoformat(value["date"]), datetime.min.time(), tzinfo=UTC)


def _meeting(event: dict[str, Any]) -> Meeting:
    entry = next((p.get("uri") for p in (event.get("conferenceData") or {}).get("entryPoints", [])
                  if p.get("entryPointType") == "video"), None)
    return Meeting(provider="google", event_id=str(event["id"]), start=_when(event["start"]),
                   end=_when(event["end"]), join_url=event.get("hangoutLink") or entry,
                   attendees=tuple(a["email"] for a in event.get("attendees", [])),
                   cancelled=event.get("status") == "cancelled", raw=event)


def event_state(event: dict[str, Any]) -> EventState:
    """A Calendar event as the change check reads it (times, cancelled, each attendee's responseStatus)."""
    cancelled = event.get("status") == "cancelled"
    timed = not cancelled and "start" in event and "end" in event
    return EventState(event_id=str(event["id"]), start=_when(event["start"]) if timed else None,
                      end=_when(event["end"]) if timed else None, cancelled=cancelled,
                      responses={str(a.get("email", "")).lower(): str(a.get("responseStatus", ""))
                                 for a in event.get("attendees", [])})
