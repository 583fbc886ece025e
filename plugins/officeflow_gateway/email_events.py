"""Email provider events (bounces, complaints, deliveries) and the email management API.

Provider callbacks (no Airflow token; the provider's signature is the authentication):

- ``POST /officeflow/email/ses``: Amazon SNS HTTP(S) deliveries of SES notifications. Every message's
  signature is verified (SignatureVersion 1 = SHA1withRSA, 2 = SHA256withRSA) with the certificate at
  ``SigningCertURL``, which must match ``OFFICEFLOW_SNS_TRUSTED_URL_PATTERN`` (Amazon's SNS hosts over
  https by default); certificates are cached per URL. ``SubscriptionConfirmation`` is confirmed by
  fetching its ``SubscribeURL`` (same pattern); ``Notification`` carries an SES ``Bounce``,
  ``Complaint`` or ``Delivery``. ``OFFICEFLOW_SES_SNS_TOPIC_ARNS`` limits the accepted topics.
- ``POST /officeflow/email/sendgrid``: SendGrid's signed Event Webhook. ECDSA P-256 / SHA-256 signature
  (``X-Twilio-Email-Event-Webhook-Signature``, base64 DER) over ``timestamp + raw body`` with the
  verification key ``OFFICEFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY``; events ``delivered``, ``bounce``,
  ``dropped``, ``spamreport`` (others are acknowledged and ignored).

Hard bounces and complaints mark the delivery and put the address on the suppression list, which
the email operator respects. Events are idempotent (SNS and SendGrid retry). A forged or unverifiable
delivery is refused (403), audited, and changes nothing.

Management (Airflow JWT; the auth manager must allow the method on the ``OfficeFlow Email`` view and
on connections, as for the other OfficeFlow APIs):

- ``GET /officeflow/api/v1/email/stats?from=&to=&template=``: per template and UTC day;
- ``GET|POST /officeflow/api/v1/email/suppressions``, ``GET|DELETE …/suppressions/{address}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from datetime import UTC, date, datetime
from email.utils import parseaddr
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from include.officeflow import email_tracking as tracking
from include.officeflow.settings import get_settings
from plugins.officeflow_gateway.auth import authorized
from plugins.officeflow_gateway.errors import ApiError, correlation_id
from plugins.officeflow_gateway.inbox import audit

log = logging.getLogger(__name__)
router = APIRouter(tags=["email"])

RESOURCE_EMAIL = "OfficeFlow Email"
ReadEmail = Annotated[Any, Depends(authorized("GET", RESOURCE_EMAIL))]
AddSuppression = Annotated[Any, Depends(authorized("POST", RESOURCE_EMAIL))]
DeleteSuppression = Annotated[Any, Depends(authorized("DELETE", RESOURCE_EMAIL))]

SNS_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SNS_SUBSCRIPTION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
#: SendGrid ``dropped`` reasons that mean the address must not be mailed again, and as what.
SENDGRID_DROP_SUPPRESS = {"bounced address": "bounce", "invalid": "bounce", "spam reporting address": "complaint",
                          "unsubscribed address": "bounce"}


class EventRejected(Exception):
    """A provider delivery that failed verification (answered 403, audited)."""


async def _body(request: Request) -> bytes:
    limit = get_settings().webhook_max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"body larger than {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise ApiError(413, "payload_too_large", f"body larger than {limit} bytes")
    return body


async def _reject(request: Request, source: str, reason: str) -> ApiError:
    cid = correlation_id(request)
    log.warning("Rejected %s email event (correlationId=%s): %s", source, cid, reason)
    await run_in_threadpool(audit, "email_event.rejected", actor=source, resource_type="email_event",
                            outcome="rejected", correlation_id=cid, reason=reason)
    return ApiError(403, "invalid_signature", f"{source} event rejected: {reason}")


# --- SNS ------------------------------------------------------------------------------------------

def sns_string_to_sign(message: dict[str, Any]) -> bytes:
    """The canonical string SNS signs: ``Key\\nValue\\n`` for the type's keys, in order, skipping absent ones."""
    keys = SNS_NOTIFICATION_KEYS if message.get("Type") == "Notification" else SNS_SUBSCRIPTION_KEYS
    return "".join(f"{k}\n{message[k]}\n" for k in keys if message.get(k) is not None).encode()


class CertificateCache:
    """SNS signing certificates by URL (a few per region; they rotate rarely)."""

    def __init__(self, size: int = 32) -> None:
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    async def get(self, url: str) -> Any:
        from cryptography import x509

        with self._lock:
            if url in self._items:
                self._items.move_to_end(url)
                return self._items[url]
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
            response = await client.get(url)
        if response.status_code != 200:
            raise EventRejected(f"signing certificate answered HTTP {response.status_code}")
        try:
            cert = x509.load_pem_x509_certificate(response.content)
        except ValueError:
            raise EventRejected("signing certificate is not a PEM X.509 certificate") from None
        with self._lock:
            self._items[url] = cert
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return cert


certificates = CertificateCache()


def _trusted_url(url: Any) -> bool:
    return isinstance(url, str) and bool(re.match(get_settings().sns_trusted_url_pattern, url))


async def verify_sns(message: dict[str, Any]) -> None:
    """Raise :class:`EventRejected` unless ``message`` carries a valid SNS signature."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    version = str(message.get("SignatureVersion", ""))
    if version not in ("1", "2"):
        raise EventRejected(f"unsupported SignatureVersion {version!r}")
    cert_url = message.get("SigningCertURL")
    if not _trusted_url(cert_url):
        raise EventRejected(f"SigningCertURL {cert_url!r} is not a trusted SNS certificate URL")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError):
        raise EventRejected("Signature is not base64") from None
    cert = await certificates.get(str(cert_url))
    now = datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise EventRejected("signing certificate is not valid now")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise EventRejected("signing certificate has no RSA key")
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS SignatureVersion 1
    try:
        key.verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), digest)
    except InvalidSignature:
        raise EventRejected("signature does not match the message") from None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def apply_ses_notification(ses: dict[str, Any]) -> dict[str, int]:
    """Apply one SES notification (Bounce / Complaint / Delivery, from a notification or event-publishing
    topic) to the store; returns counts of matched deliveries and new suppressions."""
    kind = ses.get("notificationType") or ses.get("eventType")
    message_id = (ses.get("mail") or {}).get("messageId")
    counts = {"matched": 0, "suppressed": 0, "ignored": 0}
    updates: list[dict[str, Any]] = []
    if kind == "Bounce":
        bounce = ses.get("bounce") or {}
        permanent = bounce.get("bounceType") == "Permanent"
        for r in bounce.get("bouncedRecipients") or []:
            updates.append({"event": "bounced", "recipient": r.get("emailAddress"),
                            "detail": f"{bounce.get('bounceType')}/{bounce.get('bounceSubType')}: "
                                      f"{r.get('diagnosticCode') or r.get('status') or ''}".strip(),
                            "at": _parse_time(bounce.get("timestamp")),
                            "suppress_reason": "bounce" if permanent else None})
    elif kind == "Complaint":
        complaint = ses.get("complaint") or {}
        for r in complaint.get("complainedRecipients") or []:
            updates.append({"event": "complained", "recipient": r.get("emailAddress"),
                            "detail": f"complaint: {complaint.get('complaintFeedbackType') or 'unspecified'}",
                            "at": _parse_time(complaint.get("timestamp")), "suppress_reason": "complaint"})
    elif kind == "Delivery":
        delivery = ses.get("delivery") or {}
        for r in delivery.get("recipients") or []:
            updates.append({"event": "delivered", "recipient": r, "detail": delivery.get("smtpResponse"),
                            "at": _parse_time(delivery.get("timestamp")), "suppress_reason": None})
    else:
        counts["ignored"] += 1
        return counts
    for update in updates:
        address = parseaddr(str(update.pop("recipient") or ""))[1]
        if "@" not in address:
            counts["ignored"] += 1
            continue
        result = tracking.record_event(None, provider="ses", message_id=message_id, recipient=address, **update)
        counts["matched"] += int(result.delivery_id is not None)
        counts["suppressed"] += int(result.suppressed)
    return counts


@router.post("/email/ses", include_in_schema=True, summary="SNS deliveries of SES bounce/complaint/delivery "
             "notifications (signature-verified)")
async def ses_events(request: Request) -> JSONResponse:
    body = await _body(request)
    try:
        message = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_body", "body is not an SNS JSON message") from None
    if not isinstance(message, dict) or message.get("Type") not in (
            "Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"):
        raise ApiError(400, "invalid_body", "body is not an SNS message (Type missing or unknown)")
    header_type = request.headers.get("x-amz-sns-message-type")
    if header_type and header_type != message["Type"]:
        raise ApiError(400, "invalid_body", "x-amz-sns-message-type does not match the message Type")
    try:
        await verify_sns(message)
    except EventRejected as exc:
        raise await _reject(request, "sns", str(exc)) from None
    except httpx.HTTPError as exc:
        raise ApiError(503, "certificate_unavailable", f"could not fetch the SNS signing certificate: "
                       f"{type(exc).__name__}", headers={"Retry-After": "30"}) from None
    topics = get_settings().ses_sns_topic_arns
    if topics and message.get("TopicArn") not in topics:
        raise await _reject(request, "sns", f"topic {message.get('TopicArn')!r} is not configured")
    cid = correlation_id(request)
    if message["Type"] == "SubscriptionConfirmation":
        url = message.get("SubscribeURL")
        if not _trusted_url(url):
            raise await _reject(request, "sns", "SubscribeURL is not a trusted SNS URL")
        try:
            async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
                confirm = await client.get(str(url))
        except httpx.HTTPError as exc:
            raise ApiError(502, "confirmation_failed", f"confirming the subscription failed: "
                           f"{type(exc).__name__}") from None
        if confirm.status_code != 200:
            raise ApiError(502, "confirmation_failed", f"SNS answered {confirm.status_code} to the confirmation")
        await run_in_threadpool(audit, "email_events.sns_subscribed", actor="sns", resource_type="sns_topic",
                                resource_id=str(message.get("TopicArn")), outcome="success", correlation_id=cid)
        log.info("Confirmed the SNS subscription to %s", message.get("TopicArn"))
        return JSONResponse({"status": "confirmed", "topic": message.get("TopicArn")})
    if message["Type"] == "UnsubscribeConfirmation":
        log.warning("SNS topic %s unsubscribed this endpoint", message.get("TopicArn"))
        return JSONResponse({"status": "unsubscribed", "topic": message.get("TopicArn")})
    try:
        ses = json.loads(message.get("Message") or "")
    except json.JSONDecodeError:
        raise ApiError(400, "invalid_body", "the SNS Message is not an SES notification (not JSON)") from None
    if not isinstance(ses, dict):
        raise ApiError(400, "invalid_body", "the SNS Message is not an SES notification")
    counts = await run_in_threadpool(apply_ses_notification, ses)
    return JSONResponse({"status": "processed", "type": ses.get("notificationType") or ses.get("eventType"),
                         **counts})


# --- SendGrid -------------------------------------------------------------------------------------

def _sendgrid_key(value: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    value = value.strip()
    key = load_pem_public_key(value.encode()) if value.startswith("-----") else load_der_public_key(
        base64.b64decode(value))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the SendGrid verification key is not an EC public key")
    return key


def verify_sendgrid(public_key: str, signature: str, timestamp: str, body: bytes) -> None:
    """Raise :class:`EventRejected` unless ``signature`` is SendGrid's ECDSA signature of timestamp + body."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not signature or not timestamp:
        raise EventRejected(f"missing {SENDGRID_SIGNATURE} or {SENDGRID_TIMESTAMP}")
    if not timestamp.isdigit():
        raise EventRejected("timestamp is not Unix seconds")
    window = get_settings().webhook_replay_window_seconds
    if abs(time.time() - int(timestamp)) > window:
        raise EventRejected(f"timestamp outside the {window}s window")
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise EventRejected("signature is not base64") from None
    try:
        _sendgrid_key(public_key).verify(raw_signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise EventRejected("signature does not match") from None


def apply_sendgrid_events(events: list[Any]) -> dict[str, int]:
    counts = {"matched": 0, "suppressed": 0, "ignored": 0}
    for event in events:
        if not isinstance(event, dict) or "@" not in str(event.get("email", "")):
            counts["ignored"] += 1
            continue
        kind = event.get("event")
        at = datetime.fromtimestamp(event["timestamp"], UTC) if isinstance(event.get("timestamp"), int) else None
        reason = str(event.get("reason") or event.get("response") or "")
        if kind == "delivered":
            status, detail, suppress_reason = "delivered", event.get("response"), None
        elif kind == "bounce":
            blocked = event.get("type") == "blocked"
            status, detail = "bounced", f"{'blocked' if blocked else 'bounce'}: {reason}"
            suppress_reason = None if blocked else "bounce"
        elif kind == "dropped":
            status, detail = "bounced", f"dropped: {reason}"
            suppress_reason = SENDGRID_DROP_SUPPRESS.get(reason.strip().lower())
        elif kind == "spamreport":
            status, detail, suppress_reason = "complained", "spam report", "complaint"
        else:
            counts["ignored"] += 1
            continue
        sg_id = str(event.get("sg_message_id") or "")
        result = tracking.record_event(
            None, provider="sendgrid", event=status, recipient=str(event["email"]),
            message_id=sg_id.split(".", 1)[0] or None,
            delivery_id=str(event.get("officeflow_delivery_id") or "") or None,
            detail=detail, at=at, suppress_reason=suppress_reason)
        counts["matched"] += int(result.delivery_id is not None)
        counts["suppressed"] += int(result.suppressed)
    return counts


@router.post("/email/sendgrid", summary="SendGrid's signed Event Webhook (delivered, bounce, dropped, spamreport)")
async def sendgrid_events(request: Request) -> JSONResponse:
    public_key = get_settings().sendgrid_webhook_public_key
    if not public_key:
        raise ApiError(503, "not_configured", "OFFICEFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY is not set; events are not "
                       "accepted unverified", headers={"Retry-After": "300"})
    body = await _body(request)
    try:
        verify_sendgrid(public_key, request.headers.get(SENDGRID_SIGNATURE, ""),
                        request.headers.get(SENDGRID_TIMESTAMP, ""), body)
    except EventRejected as exc:
        raise await _reject(request, "sendgrid", str(exc)) from None
    try:
        events = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_body", "body is not a JSON array of events") from None
    if not isinstance(events, list):
        raise ApiError(400, "invalid_body", "body is not a JSON array of events")
    counts = await run_in_threadpool(apply_sendgrid_events, events)
    return JSONResponse({"status": "processed", "events": len(events), **counts})


# --- management API -------------------------------------------------------------------------------

class StatRow(BaseModel):
    template: str
    day: str
    total: int
    sent: int
    delivered: int
    bounced: int
    complained: int
    suppressed: int
    failed: int
    sending: int


class Stats(BaseModel):
    start: date | None = Field(serialization_alias="from")
    end: date | None = Field(serialization_alias="to")
    template: str | None
    stats: list[StatRow]


@router.get("/api/v1/email/stats", response_model=Stats, response_model_by_alias=True)
async def email_stats(
    _: ReadEmail,
    start: Annotated[date | None, Query(alias="from", description="first UTC day (YYYY-MM-DD)")] = None,
    end: Annotated[date | None, Query(alias="to", description="last UTC day, inclusive")] = None,
    template: Annotated[str | None, Query(max_length=128)] = None,
) -> Stats:
    """Sent / delivered / bounced / complained / suppressed / failed per template and day."""
    if start and end and start > end:
        raise ApiError(422, "validation_error", "'from' must not be after 'to'")
    rows = await run_in_threadpool(tracking.stats, None, start=start, end=end, template=template)
    return Stats(start=start, end=end, template=template, stats=[StatRow(**r) for r in rows])


class SuppressionOut(BaseModel):
    address: str
    reason: str
    source: str
    detail: str | None
    created_at: datetime


class SuppressionList(BaseModel):
    suppressions: list[SuppressionOut]
    total_entries: int


class SuppressionIn(BaseModel):
    address: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    detail: str | None = Field(default=None, max_length=2000)


@router.get("/api/v1/email/suppressions", response_model=SuppressionList)
async def list_suppressions(
    _: ReadEmail,
    prefix: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SuppressionList:
    rows, total = await run_in_threadpool(tracking.list_suppressions, None, limit=limit, offset=offset,
                                          prefix=prefix)
    return SuppressionList(suppressions=[SuppressionOut(**r) for r in rows], total_entries=total)


@router.get("/api/v1/email/suppressions/{address}", response_model=SuppressionOut)
async def get_suppression(address: str, _: ReadEmail) -> SuppressionOut:
    row = await run_in_threadpool(tracking.get_suppression, None, address)
    if row is None:
        raise ApiError(404, "not_found", f"{address!r} is not suppressed")
    return SuppressionOut(**row)


@router.post("/api/v1/email/suppressions", response_model=SuppressionOut, status_code=201)
async def add_suppression(payload: SuppressionIn, request: Request, user: AddSuppression) -> Response:
    cid = correlation_id(request)
    created = await run_in_threadpool(tracking.suppress, None, payload.address, reason="manual", source="admin",
                                      detail=payload.detail or f"added by {user.get_name()}")
    await run_in_threadpool(audit, "email_suppression.added", actor=f"user:{user.get_name()}",
                            resource_type="email_suppression", resource_id=tracking.normalize_address(payload.address),
                            outcome="success" if created else "unchanged", correlation_id=cid)
    row = await get_suppression(payload.address, user)
    return JSONResponse(row.model_dump(mode="json"), status_code=201 if created else 200)


@router.delete("/api/v1/email/suppressions/{address}", status_code=204)
async def delete_suppression(address: str, request: Request, user: DeleteSuppression) -> Response:
    """Remove an address from the suppression list (the operator mails it again)."""
    cid = correlation_id(request)
    removed = await run_in_threadpool(tracking.unsuppress, None, address)
    if not removed:
        raise ApiError(404, "not_found", f"{address!r} is not suppressed")
    await run_in_threadpool(audit, "email_suppression.removed", actor=f"user:{user.get_name()}",
                            resource_type="email_suppression", resource_id=tracking.normalize_address(address),
                            outcome="success", correlation_id=cid)
    return Response(status_code=204)
