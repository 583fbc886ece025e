"""SendGrid's signed Event Webhook: ECDSA P-256 / SHA-256 verification and body parsing.

The signature (``X-Twilio-Email-Event-Webhook-Signature``, base64 DER) covers ``timestamp + raw body``
and is checked with the verification key ``OFFICEFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY``; the timestamp
must be within the webhook replay window.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from include.officeflow.settings import get_settings
from plugins.officeflow_gateway.email.errors import EventRejected, InvalidBody

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


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


def parse_events(body: bytes) -> list[Any]:
    """The events of a verified delivery: a JSON array."""
    try:
        events = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidBody("body is not a JSON array of events") from None
    if not isinstance(events, list):
        raise InvalidBody("body is not a JSON array of events")
    return events
