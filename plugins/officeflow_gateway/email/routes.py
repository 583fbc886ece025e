"""Provider callback routes (no Airflow token; the provider's signature is the authentication).

- ``POST /officeflow/email/ses``: Amazon SNS deliveries of SES ``Bounce``, ``Complaint`` and
  ``Delivery`` notifications (:mod:`.sns`), and SNS subscription confirmations.
- ``POST /officeflow/email/sendgrid``: SendGrid's signed Event Webhook (:mod:`.sendgrid`); events
  ``delivered``, ``bounce``, ``dropped``, ``spamreport`` (others are acknowledged and ignored).

A forged or unverifiable delivery is refused (403), audited, and changes nothing. The work is done by
:mod:`.events`; these routes only map the outcome to HTTP.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from include.officeflow.audit import audit
from include.officeflow.settings import get_settings
from plugins.officeflow_gateway.email import events, sendgrid, sns
from plugins.officeflow_gateway.email.errors import EventRejected, InvalidBody
from plugins.officeflow_gateway.errors import ApiError, correlation_id

log = logging.getLogger(__name__)
router = APIRouter(tags=["email"])


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


@router.post("/email/ses", include_in_schema=True, summary="SNS deliveries of SES bounce/complaint/delivery "
             "notifications (signature-verified)",
             responses={400: {"description": "Not an SNS message"}, 403: {"description": "Signature invalid"},
                        413: {"description": "Body too large"}, 502: {"description": "Subscription not confirmed"},
                        503: {"description": "The SNS signing certificate could not be fetched; retry"}})
async def ses_events(request: Request) -> JSONResponse:
    body = await _body(request)
    try:
        message = sns.parse_message(body, request.headers.get("x-amz-sns-message-type"))
    except InvalidBody as exc:
        raise ApiError(400, "invalid_body", str(exc)) from None
    try:
        await sns.verify_sns(message)
        sns.check_topic(message)
    except EventRejected as exc:
        raise await _reject(request, "sns", str(exc)) from None
    except sns.CertificateUnavailable as exc:
        raise ApiError(503, "certificate_unavailable", f"could not fetch the SNS signing certificate: {exc}",
                       headers={"Retry-After": "30"}) from None
    topic = message.get("TopicArn")
    if message["Type"] == "SubscriptionConfirmation":
        try:
            await sns.confirm_subscription(message)
        except EventRejected as exc:
            raise await _reject(request, "sns", str(exc)) from None
        except sns.ConfirmationFailed as exc:
            raise ApiError(502, "confirmation_failed", str(exc)) from None
        await run_in_threadpool(audit, "email_events.sns_subscribed", actor="sns", resource_type="sns_topic",
                                resource_id=str(topic), outcome="success", correlation_id=correlation_id(request))
        log.info("Confirmed the SNS subscription to %s", topic)
        return JSONResponse({"status": "confirmed", "topic": topic})
    if message["Type"] == "UnsubscribeConfirmation":
        log.warning("SNS topic %s unsubscribed this endpoint", topic)
        return JSONResponse({"status": "unsubscribed", "topic": topic})
    try:
        ses = sns.ses_notification(message)
    except InvalidBody as exc:
        raise ApiError(400, "invalid_body", str(exc)) from None
    counts = await run_in_threadpool(events.apply_ses_notification, ses, correlation_id(request))
    return JSONResponse({"status": "processed", "type": ses.get("notificationType") or ses.get("eventType"),
                         **counts})


@router.post("/email/sendgrid", summary="SendGrid's signed Event Webhook (delivered, bounce, dropped, spamreport)",
             responses={400: {"description": "Not SendGrid's event list"}, 403: {"description": "Signature invalid"},
                        413: {"description": "Body too large"},
                        503: {"description": "OFFICEFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY is not set"}})
async def sendgrid_events(request: Request) -> JSONResponse:
    public_key = get_settings().sendgrid_webhook_public_key
    if not public_key:
        raise ApiError(503, "not_configured", "OFFICEFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY is not set; events are not "
                       "accepted unverified", headers={"Retry-After": "300"})
    body = await _body(request)
    try:
        sendgrid.verify_sendgrid(public_key, request.headers.get(sendgrid.SENDGRID_SIGNATURE, ""),
                                 request.headers.get(sendgrid.SENDGRID_TIMESTAMP, ""), body)
    except EventRejected as exc:
        raise await _reject(request, "sendgrid", str(exc)) from None
    try:
        received = sendgrid.parse_events(body)
    except InvalidBody as exc:
        raise ApiError(400, "invalid_body", str(exc)) from None
    counts = await run_in_threadpool(events.apply_sendgrid_events, received, correlation_id(request))
    return JSONResponse({"status": "processed", "events": len(received), **counts})
