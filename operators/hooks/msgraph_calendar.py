"""Microsoft 365 meetings through Microsoft Graph: :class:`MicrosoftGraphCalendarHook`, a :class:`CalendarClient`.

A :class:`operators.hooks.msgraph.MicrosoftGraphHook` (the ``officeflow_microsoft`` connection, the
provider's ``KiotaRequestAdapterHook``, token handling, error mapping, paging). The app registration
needs the ``Calendars.ReadWrite`` application permission (admin-consented).

- availability: ``POST /users/{organizer}/calendar/getSchedule`` (times asked and answered in UTC;
  an address Graph cannot resolve is an error, not "free");
- create: ``POST /users/{organizer}/events`` with a Teams meeting (``isOnlineMeeting`` +
  ``teamsForBusiness``) and a ``transactionId`` derived from the run: Graph answers a repeated
  transactionId with the existing event. Before creating, the organizer's ``calendarView`` over the
  search window is checked for that transactionId, so a retry does not search for a slot around its
  own meeting;
- update: ``PATCH /users/{organizer}/events/{id}``; cancel: ``POST .../events/{id}/cancel`` (404 -> False);
- organized meetings: the organizer's ``calendarView`` (occurrences of a series on their own, paged by
  ``@odata.nextLink``), keeping ``isOrganizer`` and not ``isCancelled`` events: the view also holds the
  meetings they were only invited to. An unknown user or one without a mailbox is a 404:
  :class:`NotFound`.
- change notifications: ``POST /subscriptions`` (``created,updated,deleted`` on ``users/{organizer}/events``
  with OfficeFlow's ``clientState``; Graph validates the notification URL before it answers), ``PATCH
  /subscriptions/{id}`` to renew (404 once expired: :class:`NotFound`), ``DELETE``; the changed event is
  read with ``GET /users/{organizer}/events/{id}`` (gone: None).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from include.officeflow.calendar import Interval, Meeting, transaction_id
from include.officeflow.calendar_sync import EventState
from include.officeflow.errors import NotFound
from operators.hooks.msgraph import MicrosoftGraphHook

UTC_PREFERENCE = {"Prefer": 'outlook.timezone="UTC"'}
SCHEDULE_INTERVAL = 15  # minutes


class MicrosoftGraphCalendarHook(MicrosoftGraphHook):
    """Meetings in Microsoft 365 calendars (see the module docstring).

    :param conn_id: the ``msgraph`` connection (default ``officeflow_microsoft``).
    :param timeout: seconds per request (default: ``extra.timeout``, else 30).
    """

    hook_name = "OfficeFlow Microsoft Graph calendar"
    permissions = "Calendars.ReadWrite application permission"
    #: ``$top`` of a calendarView page (Graph's default is 10).
    page_size = 100

    @staticmethod
    def _user(address: str) -> str:
        return quote(address.strip(), safe="@")

    def busy(self, organizer: str, calendars: list[str], start: datetime, end: datetime) -> dict[str, list[Interval]]:
        body = {"schedules": calendars, "startTime": _utc(start), "endTime": _utc(end),
                "availabilityViewInterval": SCHEDULE_INTERVAL}
        answer = self._call("POST", f"users/{self._user(organizer)}/calendar/getSchedule",
                            f"schedule look-up for {organizer}", body=body, headers=UTC_PREFERENCE).json()
        found = {str(item.get("scheduleId", "")).lower(): item for item in answer.get("value", [])}
        result: dict[str, list[Interval]] = {}
        unreadable = []
        for address in calendars:
            item = found.get(address.lower())
            if item is None or item.get("error"):
                code = ((item or {}).get("error") or {}).get("responseCode", "missing")
                unreadable.append(f"{address} ({code})")
                continue
            result[address] = [(_parse(i["start"]), _parse(i["end"])) for i in item.get("scheduleItems", [])
                               if i.get("status") not in ("free", "workingElsewhere")]
        if unreadable:
            raise NotFound("Microsoft Graph cannot tell when these calendars are free: " + ", ".join(unreadable))
        return result

    def find_meeting(self, organizer: str, key: str, start: datetime, end: datetime) -> Meeting | None:
        wanted = transaction_id(key)
        params = {"startDateTime": _utc(start)["dateTime"], "endDateTime": _utc(end)["dateTime"], "$top": 100}
        for event in self._pages(f"users/{self._user(organizer)}/calendarView", params,
                                 f"calendar of {organizer}"):
            if event.get("transactionId") == wanted:
                return _meeting(event)
        return None

    def create_meeting(self, organizer: str, key: str, *, title: str, description: str, start: datetime,
                       end: datetime, attendees: list[str], time_zone: str) -> Meeting:
        body = {
            "subject": title, "body": {"contentType": "text", "content": description},
            "start": _utc(start), "end": _utc(end),
            "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
            "isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness",
            "transactionId": transaction_id(key),
        }
        event = self._call("POST", f"users/{self._user(organizer)}/events", f"meeting creation for {organizer}",
                           body=body, headers=UTC_PREFERENCE).json()
        return _meeting(event)

    def update_meeting(self, organizer: str, event_id: str, *, start: datetime | None, end: datetime | None,
                       attendees: list[str] | None, time_zone: str, ask_again: bool = False) -> Meeting:
        # ask_again needs nothing here: Exchange asks every attendee again when the organizer moves a meeting
        body: dict[str, Any] = {}
        if start is not None:
            body["start"] = _utc(start)
        if end is not None:
            body["end"] = _utc(end)
        if attendees is not None:
            body["attendees"] = [{"emailAddress": {"address": a}, "type": "required"} for a in attendees]
        event = self._call("PATCH", f"users/{self._user(organizer)}/events/{quote(event_id, safe='')}",
                           f"update of meeting {event_id}", body=body, headers=UTC_PREFERENCE).json()
        return _meeting(event)

    def cancel_meeting(self, organizer: str, event_id: str, comment: str) -> bool:
        response = self._send("POST", f"users/{self._user(organizer)}/events/{quote(event_id, safe='')}/cancel",
                              body={"comment": comment} if comment else None)
        if response.is_success:
            return True
        if response.status_code == 404:
            return False
        raise self._error(response, f"cancellation of meeting {event_id}")

    def organized_meetings(self, organizer: str, start: datetime, end: datetime) -> list[Meeting]:
        params = {"startDateTime": _utc(start)["dateTime"], "endDateTime": _utc(end)["dateTime"],
                  "$orderby": "start/dateTime", "$top": self.page_size}
        meetings = [_meeting(e) for e in self._pages(f"users/{self._user(organizer)}/calendarView", params,
                                                     f"calendar of {organizer}")
                    if e.get("isOrganizer") and not e.get("isCancelled")]
        return [m for m in meetings if start <= m.start < end]  # the view also has those already under way

    # --- change notifications ----------------------------------------------------------------------
    def subscribe(self, organizer: str, notification_url: str, client_state: str,
                  expires_at: datetime) -> dict[str, Any]:
        """A subscription to changes of ``organizer``'s events (Graph checks ``notification_url`` first)."""
        body = {"changeType": "created,updated,deleted", "notificationUrl": notification_url,
                "resource": f"users/{self._user(organizer)}/events", "clientState": client_state,
                "expirationDateTime": _iso(expires_at)}
        return dict(self._call("POST", "subscriptions", f"subscription to {organizer}'s events", body=body).json())

    def renew(self, subscription_id: str, expires_at: datetime) -> dict[str, Any]:
        """A later expiry; :class:`NotFound` once the subscription expired (Graph deleted it)."""
        return dict(self._call("PATCH", f"subscriptions/{quote(subscription_id, safe='')}",
                               f"renewal of subscription {subscription_id}",
                               body={"expirationDateTime": _iso(expires_at)}).json())

    def unsubscribe(self, subscription_id: str) -> bool:
        response = self._send("DELETE", f"subscriptions/{quote(subscription_id, safe='')}")
        if response.is_success:
            return True
        if response.status_code == 404:
            return False
        raise self._error(response, f"deletion of subscription {subscription_id}")

    def event(self, organizer: str, event_id: str) -> dict[str, Any] | None:
        """The event in ``organizer``'s calendar, or None when it is gone (deleted or cancelled)."""
        response = self._send("GET", f"users/{self._user(organizer)}/events/{quote(event_id, safe='')}",
                              headers=UTC_PREFERENCE)
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self._error(response, f"look-up of event {event_id}")
        return dict(response.json())


def event_state(event_id: str, event: dict[str, Any] | None) -> EventState:
    """A Graph event as the change check reads it; a missing one (None) is cancelled."""
    if event is None or event.get("isCancelled"):
        return EventState(event_id=event_id, start=None, end=None, cancelled=True)
    return EventState(event_id=event_id, start=_parse(event["start"]), end=_parse(event["end"]), cancelled=False,
                      responses={str(a["emailAddress"]["address"]).lower(): str((a.get("status") or {}).get("response"))
                                 for a in event.get("attendees", [])})


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _utc(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _parse(value: dict[str, Any]) -> datetime:
    try:
        zone: Any = ZoneInfo(str(value.get("timeZone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    moment = datetime.fromisoformat(str(value["dateTime"]).rstrip("Z")[:26])
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)).astimezone(UTC)


def _meeting(event: dict[str, Any]) -> Meeting:
    return Meeting(provider="microsoft", event_id=str(event["id"]), start=_parse(event["start"]),
                   end=_parse(event["end"]), join_url=(event.get("onlineMeeting") or {}).get("joinUrl"),
                   attendees=tuple(a["emailAddress"]["address"] for a in event.get("attendees", [])),
                   cancelled=bool(event.get("isCancelled")), raw=event)
