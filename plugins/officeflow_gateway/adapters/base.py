"""The common interface of provider adapters.

The gateway calls, in order: ``verify`` (authenticity and freshness; raise :class:`VerificationError`,
answered 401 with nothing stored), then ``parse`` (raise :class:`PayloadError`, answered 400) which
returns the delivery's events. Each event's ``document`` is what the endpoint's payload mapping
(JMESPath expressions) reads to build the DAG run conf; ``default_mapping`` is used when the endpoint
defines none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

_encode_json = msgspec.json.Encoder().encode


class VerificationError(Exception):
    """The delivery is not provably from the provider (bad/missing/stale credentials or signature)."""


class PayloadError(Exception):
    """The delivery is authentic but its body is not a payload the adapter understands."""


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery as received (headers are case-insensitive)."""

    body: bytes
    headers: Mapping[str, str]
    content_type: str
    client_ip: str | None
    received_at: float


@dataclass
class InboundEvent:
    """One provider event out of a delivery.

    ``provider_event_id`` must be stable across the provider's redeliveries of the same event and
    distinct between events: the inbox is unique on (endpoint, provider_event_id).
    """

    provider_event_id: str
    event_type: str
    document: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


class Adapter(Protocol):
    name: str
    #: Content types the adapter parses (415 for others).
    content_types: tuple[str, ...]
    #: param name -> JMESPath expression over ``InboundEvent.document``.
    default_mapping: dict[str, str]

    def verify(self, delivery: Delivery, secrets: Sequence[str], config: Mapping[str, Any],
               *, window_seconds: int) -> None:
        """Raise :class:`VerificationError` unless the delivery is authentic.

        ``secrets`` are all currently valid secrets (during a rotation's overlap window: the new and
        the old one); any of them verifying is enough. ``config`` is the endpoint's verification
        settings (e.g. Workday's username and allowed CIDRs).
        """
        ...

    def parse(self, delivery: Delivery) -> list[InboundEvent]:
        """Turn a verified delivery into events; raise :class:`PayloadError` when malformed."""
        ...


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that also works on a plain ``dict``."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


MAX_EVENT_ID_LENGTH = 255  # webhook_events.provider_event_id
MAX_EVENT_TYPE_LENGTH = 128  # webhook_events.event_type
MAX_TIMESTAMP_DIGITS = 12  # Unix seconds until the year 33658; longer is garbage, not a time


def parse_timestamp(text: str | None, header: str) -> int:
    """A Unix-seconds header as an int; :class:`VerificationError` for anything else (no overflow)."""
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_TIMESTAMP_DIGITS:
        raise VerificationError(f"{header} is not an integer Unix timestamp")
    return int(text)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def load_json(body: bytes) -> Any:
    """Strict JSON: NaN/Infinity, huge integers and excessive nesting are a :class:`PayloadError`."""
    try:  # json.loads(body, parse_constant=...) without building a decoder per call
        return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise PayloadError(f"body is not valid JSON: {str(exc)[:200]}") from None


def check_storable(event: InboundEvent) -> None:
    """Refuse what the inbox cannot store faithfully (lengths, NUL, unencodable text) as a 400."""
    if not event.provider_event_id or len(event.provider_event_id) > MAX_EVENT_ID_LENGTH:
        raise PayloadError(f"event id must be 1-{MAX_EVENT_ID_LENGTH} characters")
    if not event.event_type or len(event.event_type) > MAX_EVENT_TYPE_LENGTH:
        raise PayloadError(f"event type must be 1-{MAX_EVENT_TYPE_LENGTH} characters")
    value = [event.provider_event_id, event.event_type, event.document]
    try:
        # msgspec (what the store encodes the payload with) at a fraction of json.dumps's CPU, which was ~2% of an
        # edge worker's (docs/BENCHMARKS.md). On the values of parsed JSON and form fields it refuses what json.dumps
        # does (lone surrogates, too deep) but writes NaN and infinities as null: where a null is, json.dumps looks.
        encoded = _encode_json(value)
        if b"null" in encoded:
            json.dumps(value, allow_nan=False)
    except (UnicodeEncodeError, ValueError, TypeError, RecursionError):
        raise PayloadError("event contains values that are not valid JSON text") from None
    if b"\\u0000" in encoded:  # a NUL is written escaped
        raise PayloadError("event contains NUL characters")
