"""Google Calendar API v3 emulation, served by the Google service (``/google/calendar/v3/...``).

Mounted by the :mod:`sandbox.google` package next to the Directory API, so it shares Google's token
endpoint, credentials and error shape: with ``api_endpoint`` = ``<sandbox>/google/``
google-api-python-client's ``calendar`` ``v3`` client builds ``<sandbox>/google/calendar/v3/...`` as it
builds ``https://www.googleapis.com/calendar/v3/...``.

- **Auth**: a bearer token from ``/google/token`` with a ``sub`` (domain-wide delegation: the user whose
  calendar it is) and a Calendar scope (``calendar``; ``calendar.events`` for events, ``calendar.readonly``
  / ``calendar.events.readonly`` for reads, ``calendar.freebusy`` for freeBusy); else 401 / 403
  ``insufficientPermissions``. The subject owns ``primary`` (= its address); another user's calendar
  is 403 ``requiredAccessLevel`` "You need to have writer access to this calendar." (reads too).
- **freeBusy.query** ``POST /freeBusy``: ``timeMin``, ``timeMax`` (required), ``items[].id`` (≤ 50);
  every user of the domain has a calendar (the events it organizes and those it attends, not
  declined, not cancelled, not ``transparent``); other ids answer ``errors: [{"domain": "global",
  "reason": "notFound"}]``.
- **events.insert** ``POST /calendars/{id}/events``: ``start``/``end`` (``dateTime`` with an offset or
  a ``timeZone``, or ``date``), end after start; a client ``id`` (base32hex ``[a-v0-9]``, 5-1024
  chars, else 400 "Invalid resource id value."; an id already used in the calendar, even by a
  cancelled event, is 409 ``duplicate`` "The requested identifier already exists."); attendees
  (``email`` required); with ``conferenceDataVersion=1`` a ``conferenceData.createRequest.requestId``
  creates a Meet conference (``hangoutLink``, ``conferenceData.entryPoints``), the same requestId the same
  conference; ``sendUpdates`` (``all``/``externalOnly``/``none``) is validated and recorded.
- **events.get / patch / update / delete / list**: get answers cancelled events too (``status:
  cancelled``); patch merges (changing times, attendees, summary, description, status); delete
  cancels (204) and a second delete is 410 ``deleted`` "Resource has been deleted"; list takes
  ``timeMin``/``timeMax``, ``showDeleted``, ``q``, ``maxResults`` (≤ 2500) + ``pageToken``. An event
  appears in its organizer's calendar and in those of its attendees; as Google does, ``self`` (on
  ``organizer``, ``creator`` and the attendee entry) is set only for the calendar it is read from.
- **Attendee responses**: the organizer's patch keeps each attendee's ``responseStatus`` unless it gives
  one (``needsAction`` asks again, as after a new time); an attendee (the delegation subject is the
  attendee) may ``events.patch`` the event through their own calendar with only their own
  ``attendees[].responseStatus`` changed (``accepted``/``declined``/``tentative``/``needsAction``); anything
  else from a non-organizer is 403.
- **Push notifications** (``events.watch`` ``POST /calendars/{id}/events/watch``): body ``id`` (required,
  ≤ 64 of ``[A-Za-z0-9-_/+=]``, unique: else 400 "Channel id not unique"), ``type`` ``web_hook``,
  ``address`` (https; the sandbox also takes http to a loopback host), ``token`` (≤ 256 chars),
  ``expiration`` (Unix ms; default in 7 days, capped at 30 days; past -> 400) -> ``api#channel`` with a
  ``resourceId``. Google then POSTs a ``sync`` message, and one ``exists`` message per change of an event
  the watched calendar shows (created, moved, cancelled, an attendee's response), with the headers
  ``X-Goog-Channel-ID``, ``X-Goog-Channel-Token``, ``X-Goog-Channel-Expiration``, ``X-Goog-Resource-ID``,
  ``X-Goog-Resource-URI``, ``X-Goog-Resource-State`` and ``X-Goog-Message-Number`` (1, 2, … per channel)
  and no body (delivered by :mod:`sandbox.push`). Expired or stopped channels send nothing.
  ``channels.stop`` ``POST /channels/stop`` ``{id, resourceId}`` -> 204 (unknown: 404).
- **Incremental sync**: every ``events.list`` that ends (no ``nextPageToken``) carries a ``nextSyncToken``;
  ``syncToken=`` lists only the events changed since (cancelled ones included, ``timeMin``/``timeMax``/``q``
  refused with it); an unknown token is 410 ``fullSyncRequired``.
- State (under ``GET /_sandbox/state/google``): ``calendar_events`` (``"<calendar>/<event id>"`` ->
  event, times kept as given), ``calendar_notifications`` (what ``sendUpdates`` would have sent),
  ``calendar_channels`` (id -> channel), ``calendar_changes`` (event key -> change sequence) and
  ``push_deliveries`` (every push: channel, headers, HTTP status, error, attempts).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import time
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sandbox import push
from sandbox.core import SandboxError, SandboxState
from sandbox.google.common import (
    SCOPE,
    bearer_grant,
    etag,
    in_domain,
    now_iso,
    page_params,
    paged,
    read_json,
    state_of,
    user_by_key,
)

CALENDAR = "/calendar/v3"
WRITE = (f"{SCOPE}calendar", f"{SCOPE}calendar.events")
READ = (*WRITE, f"{SCOPE}calendar.readonly", f"{SCOPE}calendar.events.readonly")
FREEBUSY = (*READ, f"{SCOPE}calendar.freebusy", f"{SCOPE}calendar.events.freebusy")
EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
SEND_UPDATES = ("all", "externalOnly", "none")
CHANNEL_ID = re.compile(r"^[A-Za-z0-9\-_/+=]{1,64}$")
RESPONSES = ("needsAction", "declined", "tentative", "accepted")
CHANNEL_DEFAULT_MS = 7 * 86_400_000
CHANNEL_MAX_MS = 30 * 86_400_000

router: APIRouter = APIRouter(tags=["google calendar"])


def _state(svc: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    return svc.setdefault("calendar_events", {}), svc.setdefault("calendar_notifications", [])


def _authorize(request: Request, scopes: tuple[str, ...]) -> str:
    """The subject's address, when the token is valid and carries one of ``scopes``."""
    sandbox, svc, _ = state_of(request)
    grant = bearer_grant(request)
    if not set(scopes) & set(grant.get("scopes", ())):
        raise SandboxError(403, "Request had insufficient authentication scopes.", reason="insufficientPermissions")
    with sandbox.lock:
        subject = user_by_key(svc, grant["sub"]) if grant.get("sub") else None
    if subject is None or subject.get("suspended"):
        raise SandboxError(403, "The service account has no calendar of its own here: use domain-wide delegation "
                           "(a subject)", reason="forbidden")
    return str(subject["primaryEmail"]).lower()


def _calendar(request: Request, calendar_id: str, scopes: tuple[str, ...]) -> str:
    subject = _authorize(request, scopes)
    calendar = subject if calendar_id == "primary" else calendar_id.lower()
    if calendar != subject:
        _, svc, _ = state_of(request)
        if user_by_key(svc, calendar) is None:
            raise SandboxError(404, "Not Found", reason="notFound")
        raise SandboxError(403, "You need to have writer access to this calendar.", reason="requiredAccessLevel")
    return calendar


def _instant(value: Any, field: str) -> datetime:
    """An EventDateTime (``dateTime`` [+ ``timeZone``] or ``date``) as an aware datetime."""
    if not isinstance(value, dict):
        raise SandboxError(400, f"Missing {field} time.", reason="required")
    zone: Any = UTC
    if value.get("timeZone"):
        try:
            zone = ZoneInfo(str(value["timeZone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise SandboxError(400, f"Invalid time zone definition for {field} time.", reason="timeRangeEmpty") \
                from None
    raw = value.get("dateTime") or value.get("date")
    if not isinstance(raw, str):
        raise SandboxError(400, f"Missing {field} time.", reason="required")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise SandboxError(400, f"Invalid value for: {raw}", reason="invalid") from None
    if moment.tzinfo is None:
        if value.get("dateTime") and not value.get("timeZone"):
            raise SandboxError(400, f"Missing time zone definition for {field} time.", reason="required")
        moment = moment.replace(tzinfo=zone)
    return moment


def _rfc3339(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SandboxError(400, "Bad Request", reason="badRequest") from None
    if moment.tzinfo is None:
        raise SandboxError(400, f"Bad Request: {name} must have a time zone offset", reason="badRequest")
    return moment


def _validate(body: dict[str, Any]) -> None:
    start, end = _instant(body.get("start"), "start"), _instant(body.get("end"), "end")
    if end < start:
        raise SandboxError(400, "The specified time range is empty.", reason="timeRangeEmpty")
    attendees = body.get("attendees")
    if attendees is not None:
        if not isinstance(attendees, list) or not all(isinstance(a, dict) for a in attendees):
            raise SandboxError(400, "Invalid attendee.", reason="invalid")
        for attendee in attendees:
            if not attendee.get("email"):
                raise SandboxError(400, "Missing attendee email.", reason="required")


def _send_updates(request: Request) -> str:
    value = request.query_params.get("sendUpdates", "none")
    if value not in SEND_UPDATES:
        raise SandboxError(400, f"Invalid value for sendUpdates: {value}", reason="invalidParameter")
    return value


def _notify(svc: dict[str, Any], event: dict[str, Any], how: str, what: str) -> None:
    if how == "none":
        return
    _, notifications = _state(svc)
    organizer = event["organizer"]["email"]
    for attendee in event.get("attendees", []):
        email = attendee["email"].lower()
        if email == organizer or (how == "externalOnly" and email.endswith("@" + organizer.split("@")[1])):
            continue
        notifications.append({"event_id": event["id"], "to": email, "what": what, "at": now_iso()})


def _conference(event: dict[str, Any], body: dict[str, Any], request: Request) -> None:
    if request.query_params.get("conferenceDataVersion", "0") != "1" or event.get("conferenceData"):
        return  # without version 1 conferenceData is ignored; a repeated requestId changes nothing
    create = (body.get("conferenceData") or {}).get("createRequest")
    if not isinstance(create, dict):
        return
    request_id = create.get("requestId")
    if not request_id:
        raise SandboxError(400, "Invalid conference request: missing requestId.", reason="invalid")
    solution = (create.get("conferenceSolutionKey") or {}).get("type", "hangoutsMeet")
    if solution != "hangoutsMeet":
        raise SandboxError(400, "Invalid conference type value.", reason="invalid")
    digest = hashlib.sha256(f"{event['organizer']['email']}:{request_id}".encode()).digest()
    letters = "".join("abcdefghijklmnopqrstuvwxyz"[b % 26] for b in digest[:10])
    code = f"{letters[:3]}-{letters[3:7]}-{letters[7:10]}"
    uri = f"https://meet.google.com/{code}"
    event["hangoutLink"] = uri
    event["conferenceData"] = {
        "createRequest": {"requestId": request_id, "conferenceSolutionKey": {"type": solution},
                          "status": {"statusCode": "success"}},
        "entryPoints": [{"entryPointType": "video", "uri": uri, "label": f"meet.google.com/{code}"}],
        "conferenceSolution": {"key": {"type": solution}, "name": "Google Meet"},
        "conferenceId": code,
    }


def _attends(event: dict[str, Any], calendar: str) -> bool:
    if event["organizer"]["email"] == calendar:
        return True
    return any(a["email"].lower() == calendar and a.get("responseStatus") != "declined"
               for a in event.get("attendees", []))


def _find(events: dict[str, dict[str, Any]], calendar: str, event_id: str) -> dict[str, Any]:
    event = events.get(f"{calendar}/{event_id}")
    if event is None:  # an event the calendar's owner attends has the organizer's id
        event = next((e for e in events.values() if e["id"] == event_id and _involves(e, calendar)), None)
    if event is None:
        raise SandboxError(404, "Not Found", reason="notFound")
    return event


def _as_seen_by(event: dict[str, Any], calendar: str) -> dict[str, Any]:
    """A copy of ``event`` as ``calendar`` reads it: ``self`` marks that calendar's own entries only."""
    out = copy.deepcopy(event)
    for person in (out["organizer"], out["creator"], *out.get("attendees", [])):
        person.pop("self", None)
        if str(person.get("email", "")).lower() == calendar:
            person["self"] = True
    return out


def _touch(event: dict[str, Any]) -> None:
    event["updated"] = now_iso()
    event["sequence"] = event.get("sequence", 0)
    event["etag"] = etag(event)


# --- push notifications and incremental sync -----------------------------------------------------------

def _channels(svc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return svc.setdefault("calendar_channels", {})  # type: ignore[no-any-return]


def _involves(event: dict[str, Any], calendar: str) -> bool:
    """The event is in ``calendar`` (organized or invited, declined included: what a watch or a sync sees)."""
    return event["organizer"]["email"] == calendar or any(a["email"].lower() == calendar
                                                           for a in event.get("attendees", []))


def _push(sandbox: SandboxState, svc: dict[str, Any], channel: dict[str, Any], state: str) -> None:
    channel["message_number"] = channel.get("message_number", 0) + 1
    headers = {
        "X-Goog-Channel-ID": channel["id"],
        "X-Goog-Channel-Expiration": formatdate(channel["expiration"] / 1000, usegmt=True),
        "X-Goog-Resource-ID": channel["resourceId"],
        "X-Goog-Resource-URI": channel["resourceUri"],
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(channel["message_number"]),
        "Content-Length": "0",
    }
    if channel.get("token"):
        headers["X-Goog-Channel-Token"] = channel["token"]
    record = {"channel_id": channel["id"], "address": channel["address"], "headers": headers, "status": None,
              "error": None, "attempts": 0, "queued_at": time.time()}
    svc.setdefault("push_deliveries", []).append(record)
    push.send(push.Push(sandbox, record, channel["address"], headers))


def _changed(sandbox: SandboxState, svc: dict[str, Any], event: dict[str, Any]) -> None:
    """Record a change of ``event`` (for syncToken lists) and notify the channels watching a calendar it is in."""
    svc["calendar_seq"] = seq = int(svc.get("calendar_seq", 0)) + 1
    svc.setdefault("calendar_changes", {})[f"{event['organizer']['email']}/{event['id']}"] = seq
    now_ms = time.time() * 1000
    for channel in _channels(svc).values():
        if channel.get("stopped") or channel["expiration"] <= now_ms:
            continue
        if _involves(event, channel["calendar"]):
            _push(sandbox, svc, channel, "exists")


def _sync_token(calendar: str, seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"c": calendar, "s": seq}).encode()).decode()


def _since(token: str, calendar: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        if data["c"] == calendar:
            return int(data["s"])
    except (ValueError, KeyError, TypeError):
        pass
    raise SandboxError(410, "Sync token is no longer valid, a full sync is required.", reason="fullSyncRequired")


def _respond(event: dict[str, Any], calendar: str, body: dict[str, Any]) -> None:
    """An attendee's own response (the only change a non-organizer may make)."""
    if set(body) - {"attendees"} or not isinstance(body.get("attendees"), list):
        raise SandboxError(403, "You need to have writer access to this calendar.", reason="requiredAccessLevel")
    mine = [a for a in body["attendees"] if isinstance(a, dict) and str(a.get("email", "")).lower() == calendar]
    if len(mine) != 1 or mine[0].get("responseStatus") not in RESPONSES:
        raise SandboxError(403, "You need to have writer access to this calendar.", reason="requiredAccessLevel")
    entry = next(a for a in event["attendees"] if a["email"].lower() == calendar)
    entry["responseStatus"] = mine[0]["responseStatus"]
    if mine[0].get("comment"):
        entry["comment"] = str(mine[0]["comment"])


@router.post(f"{CALENDAR}/freeBusy")
async def freebusy_query(request: Request) -> JSONResponse:
    _authorize(request, FREEBUSY)
    body = await read_json(request)
    sandbox, svc, credentials = state_of(request)
    if not body.get("timeMin"):
        raise SandboxError(400, "Missing timeMin parameter.", reason="required")
    if not body.get("timeMax"):
        raise SandboxError(400, "Missing timeMax parameter.", reason="required")
    low, high = _rfc3339(body["timeMin"], "timeMin"), _rfc3339(body["timeMax"], "timeMax")
    assert low is not None and high is not None
    if high <= low:
        raise SandboxError(400, "The specified time range is empty.", reason="timeRangeEmpty")
    items = body.get("items") or []
    if len(items) > 50:
        raise SandboxError(400, "Too many calendars requested.", reason="tooManyCalendarsRequested")
    calendars: dict[str, Any] = {}
    with sandbox.lock:
        events, _ = _state(svc)
        for item in items:
            key = str((item or {}).get("id") or "")
            user = user_by_key(svc, key) if in_domain(key, credentials) else None
            if user is None:
                calendars[key] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            email = str(user["primaryEmail"]).lower()
            busy = []
            for event in events.values():
                if event["status"] == "cancelled" or event.get("transparency") == "transparent":
                    continue
                if not _attends(event, email):
                    continue
                start, end = _instant(event["start"], "start"), _instant(event["end"], "end")
                if start < high and end > low:
                    busy.append((max(start, low), min(end, high)))
            busy.sort()
            calendars[key] = {"busy": [{"start": s.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                        "end": e.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")} for s, e in busy]}
    return JSONResponse({"kind": "calendar#freeBusy", "timeMin": body["timeMin"], "timeMax": body["timeMax"],
                         "calendars": calendars})


@router.post(f"{CALENDAR}/calendars/{{calendar_id}}/events")
async def events_insert(calendar_id: str, request: Request) -> JSONResponse:
    calendar = _calendar(request, calendar_id, WRITE)
    body = await read_json(request)
    how = _send_updates(request)
    sandbox, svc, _ = state_of(request)
    _validate(body)
    event_id = body.get("id")
    if event_id is not None and (not isinstance(event_id, str) or not EVENT_ID.match(event_id)):
        raise SandboxError(400, "Invalid resource id value.", reason="invalid")
    with sandbox.lock:
        events, _ = _state(svc)
        if event_id is None:
            event_id = hashlib.sha256(f"{calendar}:{sandbox.next_id()}".encode()).hexdigest()[:26]
            event_id = event_id.translate(str.maketrans("", "", "wxyz"))
        if f"{calendar}/{event_id}" in events:
            raise SandboxError(409, "The requested identifier already exists.", reason="duplicate")
        now = now_iso()
        event: dict[str, Any] = {
            "kind": "calendar#event", "id": event_id, "status": body.get("status") or "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}", "created": now, "updated": now,
            "summary": body.get("summary", ""), "description": body.get("description", ""),
            "creator": {"email": calendar, "self": True}, "organizer": {"email": calendar, "self": True},
            "start": body["start"], "end": body["end"], "iCalUID": f"{event_id}@google.com", "sequence": 0,
            "attendees": [{"email": a["email"].lower(), "responseStatus": a.get("responseStatus", "needsAction"),
                           **({"organizer": True, "self": True} if a["email"].lower() == calendar else {}),
                           **({"optional": True} if a.get("optional") else {})}
                          for a in body.get("attendees") or []],
            "reminders": body.get("reminders") or {"useDefault": True}, "eventType": "default",
        }
        for key in ("location", "transparency", "visibility", "extendedProperties"):
            if key in body:
                event[key] = body[key]
        _conference(event, body, request)
        _touch(event)
        events[f"{calendar}/{event_id}"] = event
        _notify(svc, event, how, "invitation")
        _changed(sandbox, svc, event)
        return JSONResponse(copy.deepcopy(event))


@router.get(f"{CALENDAR}/calendars/{{calendar_id}}/events/{{event_id}}")
async def events_get(calendar_id: str, event_id: str, request: Request) -> JSONResponse:
    calendar = _calendar(request, calendar_id, READ)
    sandbox, svc, _ = state_of(request)
    with sandbox.lock:
        return JSONResponse(_as_seen_by(_find(_state(svc)[0], calendar, event_id), calendar))


async def _events_modify(calendar_id: str, event_id: str, request: Request) -> JSONResponse:
    calendar = _calendar(request, calendar_id, WRITE)
    body = await read_json(request)
    how = _send_updates(request)
    sandbox, svc, _ = state_of(request)
    with sandbox.lock:
        event = _find(_state(svc)[0], calendar, event_id)
        if event["organizer"]["email"] != calendar:
            if not _involves(event, calendar):
                raise SandboxError(403, "You need to have writer access to this calendar.",
                                   reason="requiredAccessLevel")
            _respond(event, calendar, body)
            _touch(event)
            _changed(sandbox, svc, event)
            return JSONResponse(_as_seen_by(event, calendar))
        merged = {**event, **{k: v for k, v in body.items() if k in ("start", "end", "attendees")}}
        _validate(merged)
        changed_time = any(k in body and body[k] != event[k] for k in ("start", "end"))
        for key in ("summary", "description", "location", "start", "end", "transparency", "status"):
            if key in body:
                event[key] = body[key]
        if "attendees" in body:
            previous = {a["email"]: a for a in event.get("attendees", [])}
            event["attendees"] = [{**previous.get(a["email"].lower(), {"responseStatus": "needsAction"}),
                                   **({"responseStatus": a["responseStatus"]}
                                      if a.get("responseStatus") in RESPONSES else {}),
                                   "email": a["email"].lower()} for a in body["attendees"]]
        _conference(event, body, request)
        if changed_time:
            event["sequence"] = event.get("sequence", 0) + 1
        _touch(event)
        _notify(svc, event, how, "cancellation" if body.get("status") == "cancelled" else "update")
        _changed(sandbox, svc, event)
        return JSONResponse(copy.deepcopy(event))


@router.patch(f"{CALENDAR}/calendars/{{calendar_id}}/events/{{event_id}}")
async def events_patch(calendar_id: str, event_id: str, request: Request) -> JSONResponse:
    return await _events_modify(calendar_id, event_id, request)


@router.put(f"{CALENDAR}/calendars/{{calendar_id}}/events/{{event_id}}")
async def events_update(calendar_id: str, event_id: str, request: Request) -> JSONResponse:
    return await _events_modify(calendar_id, event_id, request)


@router.delete(f"{CALENDAR}/calendars/{{calendar_id}}/events/{{event_id}}")
async def events_delete(calendar_id: str, event_id: str, request: Request) -> Response:
    calendar = _calendar(request, calendar_id, WRITE)
    how = _send_updates(request)
    sandbox, svc, _ = state_of(request)
    with sandbox.lock:
        event = _find(_state(svc)[0], calendar, event_id)
        if event["status"] == "cancelled":
            raise SandboxError(410, "Resource has been deleted", reason="deleted")
        if event["organizer"]["email"] != calendar:
            raise SandboxError(403, "You need to have writer access to this calendar.", reason="requiredAccessLevel")
        event["status"] = "cancelled"
        event["sequence"] = event.get("sequence", 0) + 1
        _touch(event)
        _notify(svc, event, how, "cancellation")
        _changed(sandbox, svc, event)
    return Response(status_code=204)


@router.get(f"{CALENDAR}/calendars/{{calendar_id}}/events")
async def events_list(calendar_id: str, request: Request) -> JSONResponse:
    calendar = _calendar(request, calendar_id, READ)
    sandbox, svc, _ = state_of(request)
    offset, limit = page_params(request, default=250, maximum=2500)
    sync = request.query_params.get("syncToken")
    if sync is not None and any(request.query_params.get(k) for k in ("timeMin", "timeMax", "q", "orderBy")):
        raise SandboxError(400, "Bad Request: syncToken cannot be combined with timeMin, timeMax, q or orderBy",
                           reason="invalid")
    low = _rfc3339(request.query_params.get("timeMin"), "timeMin")
    high = _rfc3339(request.query_params.get("timeMax"), "timeMax")
    show_deleted = sync is not None or request.query_params.get("showDeleted", "false") == "true"
    text = request.query_params.get("q", "").lower()
    with sandbox.lock:
        since = _since(sync, calendar) if sync is not None else None
        changes = svc.get("calendar_changes", {})
        items = []
        for key, event in _state(svc)[0].items():
            if since is not None:
                if changes.get(key, 0) <= since or not _involves(event, calendar):
                    continue
            elif not _attends(event, calendar) or (event["status"] == "cancelled" and not show_deleted):
                continue
            start, end = _instant(event["start"], "start"), _instant(event["end"], "end")
            if (high is not None and start >= high) or (low is not None and end <= low):
                continue
            if text and text not in f"{event.get('summary', '')} {event.get('description', '')}".lower():
                continue
            items.append((start, event))
        items.sort(key=lambda pair: pair[0])
        body = paged("calendar#events", "items", [_as_seen_by(e, calendar) for _, e in items], offset, limit)
        body.update(summary=calendar, timeZone="UTC", accessRole="owner")
        body.setdefault("items", [])
        if "nextPageToken" not in body:
            body["nextSyncToken"] = _sync_token(calendar, int(svc.get("calendar_seq", 0)))
        return JSONResponse(body)


@router.post(f"{CALENDAR}/calendars/{{calendar_id}}/events/watch")
async def events_watch(calendar_id: str, request: Request) -> JSONResponse:
    calendar = _calendar(request, calendar_id, READ)
    body = await read_json(request)
    sandbox, svc, credentials = state_of(request)
    channel_id, address = body.get("id"), body.get("address")
    if not isinstance(channel_id, str) or not CHANNEL_ID.match(channel_id):
        raise SandboxError(400, "Invalid channel id: it must be 1-64 characters of [A-Za-z0-9-_/+=]",
                           reason="invalid")
    if body.get("type") not in ("web_hook", "webhook"):
        raise SandboxError(400, f"Invalid value for: type ({body.get('type')!r}): only web_hook is supported",
                           reason="invalid")
    if not isinstance(address, str) or not push.acceptable_address(address):
        raise SandboxError(400, f"WebHook callback must be HTTPS: {address}", reason="push.webhookUrlNotHttps")
    token = body.get("token")
    if token is not None and (not isinstance(token, str) or len(token) > 256):
        raise SandboxError(400, "Invalid value for: token (at most 256 characters)", reason="invalid")
    now_ms = int(time.time() * 1000)
    try:
        expiration = int(body["expiration"]) if body.get("expiration") is not None else now_ms + CHANNEL_DEFAULT_MS
    except (TypeError, ValueError):
        raise SandboxError(400, "Invalid value for: expiration", reason="invalid") from None
    if expiration <= now_ms:
        raise SandboxError(400, "The expiration time of the channel is in the past.", reason="invalid")
    expiration = min(expiration, now_ms + int(credentials.extra.get("google_channel_max_ms", CHANNEL_MAX_MS)))
    with sandbox.lock:
        channels = _channels(svc)
        if channel_id in channels:
            raise SandboxError(400, "Channel id not unique", reason="channelIdNotUnique")
        resource_id = hashlib.sha256(f"{calendar}:events".encode()).hexdigest()[:27]
        channel = {"kind": "api#channel", "id": channel_id, "resourceId": resource_id,
                   "resourceUri": f"https://www.googleapis.com/calendar/v3/calendars/{calendar}/events?alt=json",
                   "token": token, "expiration": expiration, "address": address, "calendar": calendar,
                   "created": now_ms, "stopped": False, "message_number": 0}
        channels[channel_id] = channel
        _push(sandbox, svc, channel, "sync")
        answer = {k: channel[k] for k in ("kind", "id", "resourceId", "resourceUri", "expiration")}
        if token is not None:
            answer["token"] = token
        answer["expiration"] = str(expiration)
        return JSONResponse(answer)


@router.post(f"{CALENDAR}/channels/stop")
async def channels_stop(request: Request) -> Response:
    _authorize(request, READ)
    body = await read_json(request)
    sandbox, svc, _ = state_of(request)
    with sandbox.lock:
        channel = _channels(svc).get(str(body.get("id") or ""))
        if channel is None or channel["resourceId"] != body.get("resourceId") or channel["stopped"]:
            raise SandboxError(404, f"Channel '{body.get('id')}' not found for project 'officeflow-sandbox'",
                               reason="notFound")
        channel["stopped"] = True
    return Response(status_code=204)
