"""Microsoft Graph calendar emulation, served by the Microsoft service (``/v1.0/users/{id}/...``).

Mounted by the :mod:`sandbox.microsoft` package next to Graph's users and groups: same token endpoint,
auth, error shape, TLS root.
Users are the Graph users of the Microsoft state (``/users/{id | userPrincipalName}``); each has a
calendar holding the events it organizes and, for getSchedule, those it attends.

- ``POST /users/{id}/calendar/getSchedule``: ``schedules`` (1-100 SMTP addresses), ``startTime`` /
  ``endTime`` (dateTimeTimeZone, required), ``availabilityViewInterval`` (5-1440 minutes, default 30)
  -> per schedule ``scheduleItems`` (busy items, times in the ``Prefer: outlook.timezone`` zone, default
  UTC), ``availabilityView`` (one digit per interval: 0 free, 2 busy) and ``workingHours``; an unknown
  address gets ``error.responseCode`` ``ErrorMailRecipientNotFound``.
- ``POST /users/{id}/events``: ``subject``, ``start``/``end`` dateTimeTimeZone (required, a known time
  zone, end after start), ``attendees[].emailAddress.address``, ``body``; ``isOnlineMeeting`` with
  ``onlineMeetingProvider`` ``teamsForBusiness`` -> ``onlineMeeting.joinUrl``; a ``transactionId`` already
  used in that calendar returns the existing event (201) instead of creating another.
- ``GET /users/{id}/events`` (paged), ``GET /users/{id}/calendarView?startDateTime&endDateTime`` (paged; the
  events the user organizes and attends, ``isOrganizer`` true only on the former),
  ``GET / PATCH /users/{id}/events/{eventId}`` (PATCH merges subject, body, start, end, attendees, location;
  a new start or end resets every attendee's response to ``none``, as Exchange asks them again),
  ``DELETE`` (204; then 404 ``ErrorItemNotFound``), ``POST .../events/{eventId}/cancel`` (organizer only,
  202, optional ``comment``; the event leaves the calendar; 404 afterwards).
- Attendee responses: ``POST /users/{attendee}/events/{eventId}/accept | tentativelyAccept | decline``
  (``comment``, ``sendResponse``; 202). The sandbox keeps one copy of an event, so the attendee answers
  with the organizer's event id (Graph gives each attendee a copy with its own id); a user who is not
  an attendee gets 404.
- **Change notifications** (``/v1.0/subscriptions``): ``POST`` with ``changeType`` (``created``,
  ``updated``, ``deleted``, comma-separated), ``notificationUrl`` (https; the sandbox also takes http to a
  loopback host), ``resource`` (``users/{id | userPrincipalName}/events``), ``expirationDateTime`` (in
  the future, at most ``Credentials.extra["graph_subscription_max_minutes"]`` = 4230 minutes away, else
  400 ``ExtensionError``), ``clientState`` (≤ 128 characters). Before answering 201, Graph validates the
  endpoint: ``POST {notificationUrl}?validationToken=…`` must answer 200 with the token as text/plain
  within 10 s, else 400 ``ValidationError``. ``PATCH /subscriptions/{id}`` ``{expirationDateTime}``
  renews (validated again); ``GET`` one or the list, ``DELETE`` (204). An expired subscription is gone
  (404 to ``GET``/``PATCH``/``DELETE``) and notifies nothing. Each change of an event in the subscribed
  user's calendar (created, patched, cancelled, deleted, an attendee's response) POSTs
  ``{"value": [{subscriptionId, subscriptionExpirationDateTime, changeType, resource, resourceData:
  {@odata.type, @odata.id, @odata.etag, id}, clientState, tenantId}]}`` (delivered by
  :mod:`sandbox.push`; Graph expects a 2xx within 3 s).
- State (``GET /_sandbox/state/microsoft``): ``events`` (id -> event, with ``organizerId``),
  ``cancellations`` (event id, comment, attendees told), ``subscriptions`` (id -> subscription,
  ``clientState`` included) and ``notification_deliveries`` (every notification: body, HTTP status,
  error, attempts).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox import push
from sandbox.core import SandboxError, SandboxState
from sandbox.microsoft.common import authorize, collection, find_user, graph_base, graph_state, now_iso, read_json

router: APIRouter = APIRouter(tags=["microsoft calendar"])
NOT_FOUND = "The specified object was not found in the store."
CHANGE_TYPES = ("created", "updated", "deleted")
MAX_SUBSCRIPTION_MINUTES = 4230
VALIDATION_FAILED = ("Subscription validation request failed. Notification endpoint must respond with 200 OK to "
                     "validation request.")
WINDOWS_ZONES = {"Pacific Standard Time": "America/Los_Angeles", "Eastern Standard Time": "America/New_York",
                 "Central Standard Time": "America/Chicago", "GMT Standard Time": "Europe/London",
                 "W. Europe Standard Time": "Europe/Berlin", "Romance Standard Time": "Europe/Paris",
                 "Tokyo Standard Time": "Asia/Tokyo", "India Standard Time": "Asia/Kolkata"}


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(WINDOWS_ZONES.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        raise SandboxError(400, f"A valid TimeZone value must be specified. The following TimeZone value is not "
                           f"supported: '{name}'.", reason="TimeZoneNotSupportedException") from None


def _moment(value: Any, field: str) -> datetime:
    """A dateTimeTimeZone as an aware UTC datetime."""
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise SandboxError(400, f"Your request can't be completed. The {field} property is missing.",
                           reason="ErrorInvalidRequest")
    zone = _zone(str(value.get("timeZone") or "UTC"))
    try:
        moment = datetime.fromisoformat(str(value["dateTime"]).rstrip("Z")[:26])
    except ValueError:
        raise SandboxError(400, f"Cannot convert the literal '{value['dateTime']}' to the expected type "
                           "'Edm.DateTimeOffset'.", reason="BadRequest") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _render(moment: datetime, zone_name: str) -> dict[str, str]:
    local = moment.astimezone(_zone(zone_name))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone_name}


def _prefer_zone(request: Request) -> str:
    for part in request.headers.get("prefer", "").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "outlook.timezone":
            name = value.strip().strip('"')
            _zone(name)
            return name
    return "UTC"


def _events(data: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    return data.setdefault("events", {}), data.setdefault("cancellations", [])


def _address(user: dict[str, Any]) -> str:
    return str(user.get("mail") or user["userPrincipalName"]).lower()


def _attends(event: dict[str, Any], user: dict[str, Any]) -> bool:
    if event["organizerId"] == user["id"]:
        return True
    emails = {_address(user), str(user["userPrincipalName"]).lower()}
    return any(a["emailAddress"]["address"].lower() in emails and a["status"]["response"] != "declined"
               for a in event["attendees"])


def _view(event: dict[str, Any], zone: str, viewer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The event as Graph renders it, in ``zone``; read from ``viewer``'s calendar when given."""
    out = {k: copy.deepcopy(v) for k, v in event.items() if k not in ("organizerId", "_start", "_end")}
    if viewer is not None:
        out["isOrganizer"] = event["organizerId"] == viewer["id"]
    out["start"] = _render(datetime.fromisoformat(event["_start"]), zone)
    out["end"] = _render(datetime.fromisoformat(event["_end"]), zone)
    return out


def _attendees(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SandboxError(400, "Invalid attendees.", reason="ErrorInvalidRequest")
    out = []
    for attendee in raw:
        address = ((attendee or {}).get("emailAddress") or {}).get("address") if isinstance(attendee, dict) else None
        if not address or "@" not in str(address):
            raise SandboxError(400, "At least one recipient isn't valid.", reason="ErrorInvalidRecipients")
        out.append({"type": attendee.get("type", "required"),
                    "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                    "emailAddress": {"address": str(address), "name": attendee["emailAddress"].get("name", address)}})
    return out


def _find_event(events: dict[str, dict[str, Any]], user: dict[str, Any], event_id: str) -> dict[str, Any]:
    event = events.get(event_id)
    if event is None or event["organizerId"] != user["id"]:
        raise SandboxError(404, NOT_FOUND, reason="ErrorItemNotFound")
    return event


def _stamp(event: dict[str, Any]) -> None:
    event["lastModifiedDateTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    event["changeKey"] = base64.b64encode(hashlib.sha256(repr(sorted(event.items())).encode()).digest()[:12]).decode()


# --- change notifications ----------------------------------------------------------------------------

def _subscriptions(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return data.setdefault("subscriptions", {})  # type: ignore[no-any-return]


def _expires(subscription: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(subscription["expirationDateTime"].replace("Z", "+00:00"))


def _live(data: dict[str, Any], subscription_id: str) -> dict[str, Any]:
    """The subscription, unless unknown or expired (Graph deletes expired subscriptions)."""
    subscription = _subscriptions(data).get(subscription_id)
    if subscription is None or _expires(subscription) <= datetime.now(UTC):
        raise SandboxError(404, f"The object was not found. Subscription '{subscription_id}' does not exist.",
                           reason="ResourceNotFound")
    return subscription


def _notify_change(request: Request, data: dict[str, Any], event: dict[str, Any], change: str) -> None:
    """POST a change notification to every live subscription on the organizer's events that wants ``change``."""
    sandbox: SandboxState = request.app.state.sandbox
    tenant = request.app.state.credentials.microsoft_tenant
    now = datetime.now(UTC)
    for subscription in _subscriptions(data).values():
        if subscription["_userId"] != event["organizerId"] or _expires(subscription) <= now:
            continue
        if change not in subscription["changeType"].split(","):
            continue
        resource = f"Users/{event['organizerId']}/Events/{event['id']}"
        item = {"subscriptionId": subscription["id"],
                "subscriptionExpirationDateTime": subscription["expirationDateTime"],
                "changeType": change, "resource": resource,
                "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource,
                                 "@odata.etag": f'W/"{event.get("changeKey", "")}"', "id": event["id"]},
                "clientState": subscription.get("clientState"), "tenantId": tenant}
        body = json.dumps({"value": [item]}).encode()
        record = {"subscription_id": subscription["id"], "url": subscription["notificationUrl"],
                  "body": {"value": [item]}, "status": None, "error": None, "attempts": 0, "queued_at": time.time()}
        data.setdefault("notification_deliveries", []).append(record)
        push.send(push.Push(sandbox, record, subscription["notificationUrl"],
                            {"Content-Type": "application/json; charset=utf-8"}, body, timeout=3.0))


def _expiration(value: Any, request: Request) -> str:
    limit = int(request.app.state.credentials.extra.get("graph_subscription_max_minutes", MAX_SUBSCRIPTION_MINUTES))
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise SandboxError(400, f"Invalid expirationDateTime '{value}'.", reason="InvalidRequest") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    now = datetime.now(UTC)
    if moment <= now:
        raise SandboxError(400, "Subscription expiration can only be in the future.", reason="ExtensionError")
    if moment > now + timedelta(minutes=limit):
        raise SandboxError(400, f"Subscription expiration can only be {limit} minutes in the future.",
                           reason="ExtensionError")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


async def _validate_endpoint(url: str) -> None:
    ok, why = await push.handshake(url, f"Validation: Testing client application reachability for subscription "
                                        f"Request-Id: {uuid.uuid4()}")
    if not ok:
        raise SandboxError(400, f"{VALIDATION_FAILED} ({why})", reason="ValidationError")


def _subscription_view(subscription: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in subscription.items() if not k.startswith("_")}


@router.post("/v1.0/subscriptions", status_code=201)
async def create_subscription(request: Request) -> JSONResponse:
    state, data = graph_state(request)
    body = await read_json(request)
    changes = [c.strip() for c in str(body.get("changeType") or "").split(",") if c.strip()]
    if not changes or any(c not in CHANGE_TYPES for c in changes):
        raise SandboxError(400, f"Invalid changeType '{body.get('changeType')}'.", reason="InvalidRequest")
    url = body.get("notificationUrl")
    if not isinstance(url, str) or not push.acceptable_address(url):
        raise SandboxError(400, "The Notification Url must be an https url.", reason="InvalidRequest")
    client_state = body.get("clientState")
    if client_state is not None and (not isinstance(client_state, str) or len(client_state) > 128):
        raise SandboxError(400, "clientState must be at most 128 characters.", reason="InvalidRequest")
    parts = str(body.get("resource") or "").strip("/").split("/")
    if len(parts) != 3 or parts[0].lower() != "users" or parts[2].lower() != "events":
        raise SandboxError(400, f"Resource '{body.get('resource')}' is not supported (users/{{id}}/events).",
                           reason="InvalidRequest")
    expiration = _expiration(body.get("expirationDateTime"), request)
    with state.lock:
        user = find_user(data, parts[1])
    await _validate_endpoint(url)  # not under the lock: the endpoint may call the sandbox meanwhile
    subscription = {"id": str(uuid.uuid4()), "resource": str(body["resource"]),
                    "applicationId": authorize(request).get("client_id", ""), "changeType": ",".join(changes),
                    "clientState": client_state,
                    "notificationUrl": url, "expirationDateTime": expiration, "creatorId": user["id"],
                    "latestSupportedTlsVersion": "v1_2", "notificationContentType": "application/json",
                    "includeResourceData": False, "_userId": user["id"]}
    with state.lock:
        _subscriptions(data)[subscription["id"]] = subscription
    return JSONResponse(_subscription_view(subscription), status_code=201, headers={
        "Location": f"{graph_base(request)}/subscriptions/{subscription['id']}"})


@router.get("/v1.0/subscriptions")
def list_subscriptions(request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    now = datetime.now(UTC)
    with state.lock:
        live = [_subscription_view(s) for s in _subscriptions(data).values() if _expires(s) > now]
        return collection(request, live, context="subscriptions", fields=None)


@router.get("/v1.0/subscriptions/{subscription_id}")
def get_subscription(subscription_id: str, request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    with state.lock:
        return _subscription_view(_live(data, subscription_id))


@router.patch("/v1.0/subscriptions/{subscription_id}")
async def renew_subscription(subscription_id: str, request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    body = await read_json(request)
    expiration = _expiration(body.get("expirationDateTime"), request)
    with state.lock:
        url = _live(data, subscription_id)["notificationUrl"]
    await _validate_endpoint(url)
    with state.lock:
        subscription = _live(data, subscription_id)
        subscription["expirationDateTime"] = expiration
        return _subscription_view(subscription)


@router.delete("/v1.0/subscriptions/{subscription_id}", status_code=204)
def delete_subscription(subscription_id: str, request: Request) -> Response:
    state, data = graph_state(request)
    with state.lock:
        _live(data, subscription_id)
        del _subscriptions(data)[subscription_id]
    return Response(status_code=204)


async def _respond(key: str, event_id: str, request: Request, response: str) -> Response:
    state, data = graph_state(request)
    raw = await request.body()
    body = await read_json(request) if raw.strip() else {}
    with state.lock:
        user = find_user(data, key)
        event = _events(data)[0].get(event_id)
        emails = {_address(user), str(user["userPrincipalName"]).lower()}
        mine = [a for a in (event or {}).get("attendees", []) if a["emailAddress"]["address"].lower() in emails]
        if event is None or not mine:
            raise SandboxError(404, NOT_FOUND, reason="ErrorItemNotFound")
        mine[0]["status"] = {"response": response, "time": now_iso()}
        if body.get("comment"):
            mine[0]["comment"] = str(body["comment"])
        _stamp(event)
        _notify_change(request, data, event, "updated")
    return Response(status_code=202)


@router.post("/v1.0/users/{key}/events/{event_id}/accept", status_code=202)
async def accept_event(key: str, event_id: str, request: Request) -> Response:
    return await _respond(key, event_id, request, "accepted")


@router.post("/v1.0/users/{key}/events/{event_id}/tentativelyAccept", status_code=202)
async def tentatively_accept_event(key: str, event_id: str, request: Request) -> Response:
    return await _respond(key, event_id, request, "tentativelyAccepted")


@router.post("/v1.0/users/{key}/events/{event_id}/decline", status_code=202)
async def decline_event(key: str, event_id: str, request: Request) -> Response:
    return await _respond(key, event_id, request, "declined")


@router.post("/v1.0/users/{key}/calendar/getSchedule")
async def get_schedule(key: str, request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    body = await read_json(request)
    zone = _prefer_zone(request)
    schedules = body.get("schedules")
    if not isinstance(schedules, list) or not schedules or len(schedules) > 100:
        raise SandboxError(400, "Schedules must contain between 1 and 100 entries.", reason="ErrorInvalidRequest")
    start, end = _moment(body.get("startTime"), "startTime"), _moment(body.get("endTime"), "endTime")
    if end <= start:
        raise SandboxError(400, "The end time must be later than the start time.", reason="ErrorInvalidRequest")
    interval = body.get("availabilityViewInterval", 30)
    if not isinstance(interval, int) or not 5 <= interval <= 1440:
        raise SandboxError(400, "availabilityViewInterval must be between 5 and 1440.", reason="ErrorInvalidRequest")
    step = timedelta(minutes=interval)
    answer = []
    with state.lock:
        find_user(data, key)
        events, _ = _events(data)
        for address in schedules:
            folded = str(address).lower()
            user = next((u for u in data["users"].values()
                         if folded in (str(u["userPrincipalName"]).lower(), str(u.get("mail") or "").lower())), None)
            if user is None:
                answer.append({"scheduleId": address, "availabilityView": "", "scheduleItems": [],
                               "error": {"message": "The specified user could not be found.",
                                         "responseCode": "ErrorMailRecipientNotFound"}})
                continue
            busy = []
            for event in events.values():
                low, high = datetime.fromisoformat(event["_start"]), datetime.fromisoformat(event["_end"])
                if event["showAs"] == "free" or not _attends(event, user) or high <= start or low >= end:
                    continue
                busy.append((low, high, event))
            busy.sort(key=lambda item: item[0])
            view, cursor = [], start
            while cursor < end:
                slot_end = cursor + step
                view.append("2" if any(lo < slot_end and hi > cursor for lo, hi, _ in busy) else "0")
                cursor = slot_end
            answer.append({
                "scheduleId": address, "availabilityView": "".join(view),
                "scheduleItems": [{"isPrivate": False, "status": "busy", "subject": e["subject"],
                                   "location": e["location"]["displayName"], "start": _render(lo, zone),
                                   "end": _render(hi, zone)} for lo, hi, e in busy],
                "workingHours": {"daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                                 "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000",
                                 "timeZone": {"name": "UTC"}},
            })
    return {"@odata.context": f"{graph_base(request)}/$metadata#Collection(microsoft.graph.scheduleInformation)",
            "value": answer}


@router.post("/v1.0/users/{key}/events", status_code=201)
async def create_event(key: str, request: Request) -> JSONResponse:
    state, data = graph_state(request)
    body = await read_json(request)
    start, end = _moment(body.get("start"), "start"), _moment(body.get("end"), "end")
    if end < start:
        raise SandboxError(400, "The end time must be later than the start time.", reason="ErrorInvalidRequest")
    zone = _prefer_zone(request) if "prefer" in request.headers else str(body["start"].get("timeZone") or "UTC")
    provider = body.get("onlineMeetingProvider", "teamsForBusiness")
    if body.get("isOnlineMeeting") and provider not in ("teamsForBusiness", "skypeForBusiness", "skypeForConsumer"):
        raise SandboxError(400, f"Online meeting provider '{provider}' is not supported.",
                           reason="ErrorInvalidRequest")
    attendees = _attendees(body.get("attendees"))
    with state.lock:
        user = find_user(data, key)
        events, _ = _events(data)
        transaction = body.get("transactionId")
        if transaction:
            for existing in events.values():
                if existing["organizerId"] == user["id"] and existing.get("transactionId") == transaction:
                    return JSONResponse(_view(existing, zone), status_code=201)
        event_id = "AAMk" + base64.urlsafe_b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode().rstrip("=")
        now = now_iso()
        organizer = {"emailAddress": {"name": user.get("displayName") or _address(user), "address": _address(user)}}
        online = bool(body.get("isOnlineMeeting"))
        content = body.get("body") or {}
        event: dict[str, Any] = {
            "id": event_id, "createdDateTime": now, "lastModifiedDateTime": now, "changeKey": "",
            "transactionId": transaction, "iCalUId": "040000008200E00074C5B7101A82E008" + uuid.uuid4().hex.upper(),
            "subject": body.get("subject", ""), "bodyPreview": str(content.get("content", ""))[:255],
            "body": {"contentType": content.get("contentType", "text"), "content": content.get("content", "")},
            "importance": "normal", "sensitivity": "normal", "isAllDay": False, "isCancelled": False,
            "isOrganizer": True, "responseRequested": True, "showAs": body.get("showAs", "busy"),
            "type": "singleInstance",
            "webLink": f"https://outlook.office365.com/owa/?itemid={event_id}&exvsurl=1&path=/calendar/item",
            "location": body.get("location") or {"displayName": ""}, "attendees": attendees, "organizer": organizer,
            "isOnlineMeeting": online, "onlineMeetingProvider": provider if online else "unknown",
            "onlineMeeting": ({"joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
                               f"{hashlib.sha256(event_id.encode()).hexdigest()[:32]}%40thread.v2/0"}
                              if online else None),
            "organizerId": user["id"], "_start": start.isoformat(), "_end": end.isoformat(),
        }
        _stamp(event)
        events[event_id] = event
        _notify_change(request, data, event, "created")
        return JSONResponse(_view(event, zone), status_code=201,
                            headers={"Location": f"{graph_base(request)}/users/{user['id']}/events/{event_id}"})


@router.get("/v1.0/users/{key}/events")
def list_events(key: str, request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    zone = _prefer_zone(request)
    with state.lock:
        user = find_user(data, key)
        items = [_view(e, zone) for e in _events(data)[0].values() if e["organizerId"] == user["id"]]
        return collection(request, items, context=f"users('{user['id']}')/events", fields=None)


@router.get("/v1.0/users/{key}/calendarView")
def calendar_view(key: str, request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    zone = _prefer_zone(request)
    raw_start, raw_end = request.query_params.get("startDateTime"), request.query_params.get("endDateTime")
    if not raw_start or not raw_end:
        raise SandboxError(400, "This request requires a time window specified by the query string parameters "
                           "StartDateTime and EndDateTime.", reason="ErrorInvalidParameter")
    low, high = _moment({"dateTime": raw_start}, "startDateTime"), _moment({"dateTime": raw_end}, "endDateTime")
    with state.lock:
        user = find_user(data, key)
        chosen = [e for e in _events(data)[0].values() if _attends(e, user)
                  and datetime.fromisoformat(e["_start"]) < high and datetime.fromisoformat(e["_end"]) > low]
        chosen.sort(key=lambda e: e["_start"])
        return collection(request, [_view(e, zone, user) for e in chosen],
                           context=f"users('{user['id']}')/calendarView", fields=None)


@router.get("/v1.0/users/{key}/events/{event_id}")
def get_event(key: str, event_id: str, request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    zone = _prefer_zone(request)
    with state.lock:
        return _view(_find_event(_events(data)[0], find_user(data, key), event_id), zone)


@router.patch("/v1.0/users/{key}/events/{event_id}")
async def update_event(key: str, event_id: str, request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    body = await read_json(request)
    zone = _prefer_zone(request)
    with state.lock:
        event = _find_event(_events(data)[0], find_user(data, key), event_id)
        start = _moment(body["start"], "start") if "start" in body else datetime.fromisoformat(event["_start"])
        end = _moment(body["end"], "end") if "end" in body else datetime.fromisoformat(event["_end"])
        if end < start:
            raise SandboxError(400, "The end time must be later than the start time.", reason="ErrorInvalidRequest")
        if "attendees" in body:
            previous = {a["emailAddress"]["address"].lower(): a for a in event["attendees"]}
            event["attendees"] = [previous.get(a["emailAddress"]["address"].lower(), a)
                                  for a in _attendees(body["attendees"])]
        for field in ("subject", "location", "showAs"):
            if field in body:
                event[field] = body[field]
        if "body" in body:
            event["body"] = body["body"]
            event["bodyPreview"] = str(body["body"].get("content", ""))[:255]
        if (start.isoformat(), end.isoformat()) != (event["_start"], event["_end"]):
            for attendee in event["attendees"]:  # a new time: Exchange asks every attendee again
                attendee["status"] = {"response": "none", "time": "0001-01-01T00:00:00Z"}
        event["_start"], event["_end"] = start.isoformat(), end.isoformat()
        _stamp(event)
        _notify_change(request, data, event, "updated")
        return _view(event, zone)


@router.delete("/v1.0/users/{key}/events/{event_id}", status_code=204)
def delete_event(key: str, event_id: str, request: Request) -> Response:
    state, data = graph_state(request)
    with state.lock:
        events, _ = _events(data)
        event = _find_event(events, find_user(data, key), event_id)
        del events[event_id]
        _notify_change(request, data, event, "deleted")
    return Response(status_code=204)


@router.post("/v1.0/users/{key}/events/{event_id}/cancel", status_code=202)
async def cancel_event(key: str, event_id: str, request: Request) -> Response:
    state, data = graph_state(request)
    raw = await request.body()
    body = await read_json(request) if raw.strip() else {}
    with state.lock:
        events, cancellations = _events(data)
        event = _find_event(events, find_user(data, key), event_id)
        if not event["isOrganizer"]:
            raise SandboxError(400, "Your request can't be completed. You need to be an organizer to cancel a "
                               "meeting.", reason="ErrorAccessDenied")
        del events[event_id]
        _notify_change(request, data, event, "deleted")
        cancellations.append({"event_id": event_id, "transactionId": event.get("transactionId"),
                              "comment": body.get("comment", ""),
                              "attendees": [a["emailAddress"]["address"] for a in event["attendees"]], "at": now_iso()})
    return Response(status_code=202)
