"""Calendar push notifications: ``POST /officeflow/calendar/google/notifications`` (watch channels) and
``POST /officeflow/calendar/microsoft/notifications`` (Graph change notifications).

No Airflow login: the providers authenticate with the secret OfficeFlow gave them when it subscribed
(the channel token, Graph's ``clientState``), stored encrypted per subscription and compared in constant
time (include/officeflow/calendar_sync.py). Answers, as the vendors expect them:

- Google (headers ``X-Goog-Channel-ID``, ``X-Goog-Channel-Token``, ``X-Goog-Resource-ID``,
  ``X-Goog-Resource-State``, ``X-Goog-Message-Number``; no body): a genuine new message -> stored, 200;
  a replayed or stale message number -> 200 ``ignored`` (nothing stored; Google must not retry); unknown
  or stopped channel -> 404; wrong token or resource -> 401; expired channel -> 410; missing headers ->
  400. Google retries only 5xx answers (a store that is down: 503, nothing stored).
- Graph: ``?validationToken=…`` (subscription create and renew) -> the token echoed as ``text/plain``, 200;
  a notification ``{"value": [...]}`` -> 202 with what was accepted. Items with an unknown subscription,
  a wrong ``clientState`` or an expired subscription are discarded; a delivery with no genuine item is
  refused (401 for a wrong clientState, else 404). A repeated item is accepted once.

Stored notifications are processed after the answer (``operators.calendar.process_subscription``: the
changed events are read and compared with the meetings OfficeFlow booked; a decline, move or cancellation
is recorded and the organizer told in Slack). What fails there stays pending for calendar_maintenance.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from include.officeflow import calendar_sync as sync
from include.officeflow.audit import audit
from plugins.officeflow_gateway.errors import ApiError, correlation_id

log = logging.getLogger(__name__)
router = APIRouter(prefix="/calendar", tags=["calendar notifications"])

MAX_BODY = 1_048_576
MAX_VALIDATION_TOKEN = 1024


class NotificationAnswer(BaseModel):
    status: str
    accepted: int = 0
    ignored: int = 0


def process(subscription_ids: list[str]) -> None:
    """Process the subscriptions' pending notifications (after the answer, in the thread pool)."""
    from operators.calendar import process_subscription

    for subscription_id in dict.fromkeys(subscription_ids):
        try:
            process_subscription(subscription_id)
        except Exception as exc:  # kept pending with the error; calendar_maintenance retries
            log.warning("calendar notifications of %s not processed yet: %s: %s", subscription_id,
                        type(exc).__name__, exc)


def _refused(request: Request, provider: str, verdict: sync.Verified, channel: str) -> None:
    audit("calendar.notification.refused", actor=f"calendar:{provider}", resource_type="calendar_subscription",
          resource_id=verdict.subscription_id or channel, outcome="denied", correlation_id=correlation_id(request),
          organization_id=verdict.organization_id, source_ip=request.client.host if request.client else None,
          reason=verdict.verdict.value)


@router.post("/google/notifications", response_model=NotificationAnswer,
             summary="Google Calendar push notifications (watch channels)",
             responses={400: {"description": "Not a Google Calendar push notification"},
                        401: {"description": "The channel token does not match"},
                        404: {"description": "No such watch channel"}, 410: {"description": "The channel expired"}})
async def google_notification(request: Request, background: BackgroundTasks) -> Any:
    headers = request.headers
    channel_id = headers.get("X-Goog-Channel-ID", "")
    state = headers.get("X-Goog-Resource-State", "")
    try:
        number = int(headers.get("X-Goog-Message-Number", ""))
    except ValueError:
        number = -1
    if not channel_id or number < 0 or state not in ("sync", "exists", "not_exists"):
        raise ApiError(400, "invalid_notification", "not a Google Calendar push notification (X-Goog-Channel-ID, "
                       "X-Goog-Message-Number and X-Goog-Resource-State are required)")
    verdict = await run_in_threadpool(
        sync.verify_google, channel_id=channel_id, token=headers.get("X-Goog-Channel-Token"),
        resource_id=headers.get("X-Goog-Resource-ID"), state=state, message_number=number,
        correlation_id=correlation_id(request))
    if verdict.verdict is sync.Verdict.ACCEPTED:
        if state != "sync":
            background.add_task(process, [str(verdict.subscription_id)])
        return NotificationAnswer(status="accepted", accepted=1)
    if verdict.verdict is sync.Verdict.REPLAYED:
        return NotificationAnswer(status="ignored", ignored=1)
    if verdict.verdict is sync.Verdict.UNKNOWN:
        raise ApiError(404, "unknown_channel", f"no OfficeFlow watch channel {channel_id!r}")
    await run_in_threadpool(_refused, request, "google", verdict, channel_id)
    if verdict.verdict is sync.Verdict.EXPIRED:
        raise ApiError(410, "channel_expired", f"watch channel {channel_id!r} has expired")
    raise ApiError(401, "invalid_token", "the channel token does not match this channel")


@router.post("/microsoft/notifications", summary="Microsoft Graph change notifications",
             responses={200: {"content": {"text/plain": {}}, "description": "validation handshake: the token"},
                        202: {"model": NotificationAnswer},
                        400: {"description": "Not a Graph change notification"},
                        401: {"description": "clientState does not match the subscription"},
                        404: {"description": "No such subscription"}, 410: {"description": "The subscription expired"},
                        413: {"description": "Body too large"}})
async def microsoft_notification(request: Request, background: BackgroundTasks) -> Response:
    token = request.query_params.get("validationToken")
    if token is not None:
        if len(token) > MAX_VALIDATION_TOKEN:
            raise ApiError(400, "invalid_validation_token", "validationToken too long")
        return PlainTextResponse(token, status_code=200)
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, "payload_too_large", "body too large")
    try:
        items = json.loads(body)["value"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "invalid_notification",
                       'expected a Graph change notification {"value": [{subscriptionId, clientState, …}]}') from None
    cid = correlation_id(request)
    verdicts = [await run_in_threadpool(sync.verify_graph, item, correlation_id=cid) for item in items]
    accepted = [v for v in verdicts if v.verdict is sync.Verdict.ACCEPTED]
    replayed = [v for v in verdicts if v.verdict is sync.Verdict.REPLAYED]
    for verdict, item in zip(verdicts, items, strict=True):
        if verdict.verdict in (sync.Verdict.FORBIDDEN, sync.Verdict.EXPIRED):
            await run_in_threadpool(_refused, request, "microsoft", verdict, str(item.get("subscriptionId")))
    if accepted:
        background.add_task(process, [str(v.subscription_id) for v in accepted])
    if accepted or replayed:
        answer = NotificationAnswer(status="accepted", accepted=len(accepted), ignored=len(items) - len(accepted))
        return JSONResponse(answer.model_dump(), status_code=202, background=background)
    if any(v.verdict is sync.Verdict.FORBIDDEN for v in verdicts):
        raise ApiError(401, "invalid_client_state", "clientState does not match the subscription")
    if any(v.verdict is sync.Verdict.EXPIRED for v in verdicts):
        raise ApiError(410, "subscription_expired", "the subscription has expired")
    raise ApiError(404, "unknown_subscription", "no OfficeFlow subscription with this id")
