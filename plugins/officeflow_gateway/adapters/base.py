"""The common interface of provider adapters.

The gateway calls, in order: ``verify`` (authenticity and freshness; raise :class:`VerificationError`,
answered 401 with nothing stored), then ``parse`` (raise :class:`PayloadError`, answered 400) which
returns the delivery's events. Each event's ``document`` is what the endpoint's payload mapping
(JMESPath expressions) reads to build the DAG run conf; ``default_mapping`` is used when the endpoint
defines none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


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
