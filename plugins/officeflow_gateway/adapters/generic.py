"""Generic adapter: the Standard Webhooks scheme (https://www.standardwebhooks.com/).

A sender signs ``"{webhook-id}.{webhook-timestamp}.{body}"`` with HMAC-SHA256 keyed by the base64-decoded
part of a ``whsec_...`` secret and sends ``webhook-signature: v1,<base64> [v1,<base64> ...]`` (several
signatures let the sender overlap its own key rotation). ``webhook-id`` is the idempotency key: it is
the same on every redelivery of a message, so it is the inbox's ``provider_event_id``.

The HMAC construction and the secret decoding come from the maintained ``standardwebhooks`` library.
Its ``Webhook.verify`` is not used as is, because it
- hard-codes a 5-minute tolerance, so neither a shorter nor a longer configured replay window (the
  settings allow up to an hour) would be honoured;
- raises ``ValueError``/``binascii.Error`` instead of skipping a malformed entry of the signature list,
  so one garbled entry would hide a valid one after it;
- accepts fractional timestamps but signs their floor, which the specification does not allow.
Here the headers, the window and the list are checked first, then the library's ``sign`` gives the
expected signature for every valid secret, compared in constant time with every listed ``v1`` one.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from secrets import token_bytes
from typing import Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from plugins.officeflow_gateway.adapters.base import (
    MAX_EVENT_ID_LENGTH,
    MAX_EVENT_TYPE_LENGTH,
    Delivery,
    InboundEvent,
    PayloadError,
    VerificationError,
    header,
    load_json,
    parse_timestamp,
)

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's marker, not a secret
#: Key length of generated secrets; the specification asks for 24 to 64 bytes.
SECRET_BYTES = 32



def _webhook(secret: str) -> Webhook:
    """The library's signer for ``secret``; ``ValueError`` when the secret is not usable base64."""
    try:
        return Webhook(secret)
    except (binascii.Error, EmptyWebhookSecretError, RuntimeError) as exc:
        raise ValueError(f"malformed webhook secret: {exc}") from None


def _signed_at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of ``body`` as a Standard Webhooks sender computes it.

    For tests and the sample sender. Raises ``ValueError`` for a malformed secret or a non-UTF-8 body
    (the library signs text).
    """
    return _webhook(secret).sign(msg_id=msg_id, timestamp=_signed_at(timestamp), data=body.decode("utf-8"))


#: The key length the specification allows a sender's secret.
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64


def check_secret(secret: str) -> None:
    """Raise ``ValueError`` unless ``secret`` is a Standard Webhooks secret: ``whsec_`` and the base64 of a 24 to 64
    byte key (what a sender such as Svix generates and shows the receiver)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a Standard Webhooks secret starts with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except binascii.Error:
        raise ValueError(f"the part after {SECRET_PREFIX!r} is not base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"the key is {len(key)} bytes; Standard Webhooks keys are {MIN_SECRET_BYTES} to "
                         f"{MAX_SECRET_BYTES} bytes")


def generate_secret() -> str:
    """A new random ``whsec_`` secret, for creating or rotating a generic endpoint."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode("ascii")


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded ``v1`` signatures of the header; other versions and garbled entries are skipped."""
    signatures = []
    for entry in header.split():
        version, comma, encoded = entry.partition(",")
        if not comma or version != "v1":
            continue
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return signatures


class StandardWebhooksAdapter:
    """Any sender that implements Standard Webhooks signing (``whsec_`` secrets)."""

    name = "generic"
    content_types: tuple[str, ...] = ("application/json",)
    #: Generic endpoints always define their own mapping; there is no provider schema to assume.
    default_mapping: dict[str, str] = {}

    def verify(self, delivery: Delivery, secrets: Sequence[str], config: Mapping[str, Any],
               *, window_seconds: int) -> None:
        """Raise :class:`VerificationError` unless a listed ``v1`` signature matches one of ``secrets``.

        The timestamp must lie within ``window_seconds`` of ``delivery.received_at`` in either
        direction (the signature binds it, so a replay cannot refresh it).
        """
        msg_id = (header(delivery.headers, ID_HEADER) or "").strip()
        timestamp_text = (header(delivery.headers, TIMESTAMP_HEADER) or "").strip()
        signature_header = (header(delivery.headers, SIGNATURE_HEADER) or "").strip()
        missing = [name for name, value in ((ID_HEADER, msg_id), (TIMESTAMP_HEADER, timestamp_text),
                                            (SIGNATURE_HEADER, signature_header)) if not value]
        if missing:
            raise VerificationError("missing " + ", ".join(missing) + " header" + ("s" if len(missing) > 1 else ""))

        timestamp = parse_timestamp(timestamp_text, TIMESTAMP_HEADER)
        skew = timestamp - delivery.received_at
        if abs(skew) > window_seconds:
            direction = "in the future" if skew > 0 else "old"
            raise VerificationError(f"{TIMESTAMP_HEADER} is {abs(skew):.0f}s {direction}, outside the "
                                    f"{window_seconds}s replay window")

        signatures = _v1_signatures(signature_header)
        if not signatures:
            raise VerificationError(f"{SIGNATURE_HEADER} holds no well-formed v1 signature")
        try:
            text = delivery.body.decode("utf-8")
        except UnicodeDecodeError:
            raise VerificationError("body is not UTF-8, so it cannot carry a Standard Webhooks signature") from None

        usable = 0
        signed_at = _signed_at(timestamp)
        for secret in secrets:
            try:
                webhook = _webhook(secret)
            except ValueError:
                continue  # a broken old secret must not block the valid one it is being rotated to
            usable += 1
            expected = base64.b64decode(webhook.sign(msg_id=msg_id, timestamp=signed_at, data=text).split(",", 1)[1])
            if any(hmac.compare_digest(expected, received) for received in signatures):
                return
        if not usable:
            raise VerificationError("endpoint has no usable whsec_ signing secret")
        raise VerificationError("no webhook-signature matches the endpoint's secret")

    def parse(self, delivery: Delivery) -> list[InboundEvent]:
        """The body as one event keyed by ``webhook-id``; :class:`PayloadError` when malformed."""
        msg_id = (header(delivery.headers, ID_HEADER) or "").strip()
        if not msg_id:
            raise PayloadError(f"missing {ID_HEADER} header")
        if len(msg_id) > MAX_EVENT_ID_LENGTH:
            raise PayloadError(f"{ID_HEADER} is longer than {MAX_EVENT_ID_LENGTH} characters")
        document = load_json(delivery.body)
        if not isinstance(document, dict):
            raise PayloadError("body must be a JSON object")
        raw_type = document.get("type")
        if raw_type is None:
            raw_type = document.get("event_type")
        if raw_type is None:
            event_type = "event"
        elif isinstance(raw_type, str) and raw_type.strip():
            event_type = raw_type.strip()
        else:
            raise PayloadError("'type' (or 'event_type') must be a non-empty string when present")
        if len(event_type) > MAX_EVENT_TYPE_LENGTH:
            raise PayloadError(f"event type is longer than {MAX_EVENT_TYPE_LENGTH} characters")
        return [InboundEvent(provider_event_id=msg_id, event_type=event_type, document=document)]
