"""``POST /officeflow/webhooks/bamboohr``: verify, store, trigger, answer 202."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from include.officeflow.settings import get_settings
from plugins.officeflow_gateway import bamboohr
from plugins.officeflow_gateway.errors import CORRELATION_HEADER, ApiError, correlation_id
from plugins.officeflow_gateway.inbox import Outcome, accept, audit

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger(__name__)


class EventOutcome(BaseModel):
    event_id: str
    status: str
    dag_run_id: str | None
    duplicate: bool
    reason: str | None = None


class WebhookAccepted(BaseModel):
    """The first event's ids at the top level; every event of the delivery in ``events``."""

    event_id: str
    dag_run_id: str | None
    status: str
    events: list[EventOutcome]
    correlationId: str


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"body exceeds {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "payload_too_large", f"body exceeds {limit} bytes")
    return body


def _deny(cid: str, request: Request, reason: str) -> ApiError:
    try:
        audit("webhook.rejected", actor="webhook:bamboohr", resource_type="webhook", outcome="denied",
              correlation_id=cid, resource_id="bamboohr", reason=reason,
              client=request.client.host if request.client else None)
    except SQLAlchemyError:
        # The audit trail is best effort here: an unverified sender gets its 401 regardless.
        log.exception("Could not audit a rejected BambooHR delivery (correlationId=%s)", cid)
    return ApiError(401, "invalid_signature", f"BambooHR signature rejected: {reason}")


def _process(body: bytes, cid: str) -> list[Outcome]:
    settings = get_settings()
    try:
        events = bamboohr.parse(body)
    except bamboohr.PayloadError as exc:
        raise ApiError(400, "invalid_payload", str(exc)) from None
    return [
        accept(bamboohr.SOURCE, ev.provider_event_id, ev.event_type, ev.payload,
               dag_id=settings.onboarding_dag_id if ev.event_type == "employee.created" else None,
               conf=ev.conf, rejection=ev.rejection, correlation_id=cid)
        for ev in events
    ]


@router.post(
    "/bamboohr",
    status_code=202,
    response_model=WebhookAccepted,
    responses={400: {}, 401: {}, 413: {}, 415: {}, 422: {}, 503: {}},
    summary="Receive a signed BambooHR webhook",
)
async def bamboohr_webhook(request: Request) -> JSONResponse:
    settings = get_settings()
    cid = correlation_id(request)
    if settings.bamboohr_webhook_key is None:
        raise ApiError(503, "not_configured", "OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY is not set")
    body = await _read_body(request, settings.webhook_max_body_bytes)
    try:
        bamboohr.verify_signature(
            body,
            request.headers.get(bamboohr.TIMESTAMP_HEADER),
            request.headers.get(bamboohr.SIGNATURE_HEADER),
            settings.bamboohr_webhook_key.get_secret_value(),
            window_seconds=settings.webhook_replay_window_seconds,
        )
    except bamboohr.SignatureError as exc:
        raise await run_in_threadpool(_deny, cid, request, str(exc)) from None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/json", ""):
        raise ApiError(415, "unsupported_media_type", "BambooHR deliveries must be application/json")

    outcomes = await run_in_threadpool(_process, body, cid)
    if all(o.status == "rejected" for o in outcomes):
        reasons = "; ".join(f"{o.event_id}: {o.reason}" for o in outcomes)
        raise ApiError(422, "unmappable_event", f"event stored as rejected: {reasons}")
    first = next(o for o in outcomes if o.status != "rejected")
    content: dict[str, Any] = {
        "event_id": first.event_id,
        "dag_run_id": first.dag_run_id,
        "status": first.status,
        "events": [o.as_dict() for o in outcomes],
        "correlationId": cid,
    }
    return JSONResponse(status_code=202, content=content, headers={CORRELATION_HEADER: cid})
