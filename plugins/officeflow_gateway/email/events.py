"""Provider email events applied to the store: SES notifications and SendGrid events become delivery
updates and suppressions through :func:`include.officeflow.email_tracking.record_event`.

Hard bounces and complaints mark the delivery and put the address on the suppression list, which the
email operator respects. Applying an event twice changes nothing more (SNS and SendGrid retry). A delivery
whose status moves writes its domain event (``com.officeflow.email.bounced``, …) in the same transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

from include.officeflow import email_tracking as tracking

#: SendGrid ``dropped`` reasons that mean the address must not be mailed again, and as what.
SENDGRID_DROP_SUPPRESS = {"bounced address": "bounce", "invalid": "bounce", "spam reporting address": "complaint",
                          "unsubscribed address": "bounce"}


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def apply_ses_notification(ses: dict[str, Any], correlation_id: str | None = None) -> dict[str, int]:
    """Apply one SES notification (Bounce / Complaint / Delivery, from a notification or event-publishing
    topic) to the store; returns counts of matched deliveries and new suppressions. ``correlation_id``: the
    callback request's, for the domain events of the deliveries it changes."""
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
        result = tracking.record_event(None, provider="ses", message_id=message_id, recipient=address,
                                       correlation_id=correlation_id, **update)
        counts["matched"] += int(result.delivery_id is not None)
        counts["suppressed"] += int(result.suppressed)
    return counts


def apply_sendgrid_events(events: list[Any], correlation_id: str | None = None) -> dict[str, int]:
    """Apply SendGrid's ``delivered``, ``bounce``, ``dropped`` and ``spamreport`` events (others are
    counted as ignored), matched by the ``officeflow_delivery_id`` custom arg or the message id.
    ``correlation_id``: the callback request's, for the domain events of the deliveries it changes."""
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
            detail=detail, at=at, suppress_reason=suppress_reason, correlation_id=correlation_id)
        counts["matched"] += int(result.delivery_id is not None)
        counts["suppressed"] += int(result.suppressed)
    return counts
