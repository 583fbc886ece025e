"""Workday adapter: HTTP Basic authentication, source-IP allow-listing and event parsing.

Workday's outbound notifications are not signed: an integration system POSTs JSON with HTTP Basic
credentials that the tenant administrator configured. Authenticity therefore rests on the
credentials (compared in constant time, any currently valid password accepted so a rotation can
overlap) and, optionally, on the source address being inside the tenant's published egress ranges.
There is no timestamp, so a captured delivery could be replayed; the inbox's uniqueness on
``provider_event_id`` is what keeps a replay from starting a second DAG run.

Bodies are either one event object or ``{"events": [...]}``; Workday's business-process names for
the lifecycle events OfficeFlow reacts to are normalised to OfficeFlow event types.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any

from plugins.officeflow_gateway.adapters.base import (
    MAX_EVENT_ID_LENGTH,
    MAX_EVENT_TYPE_LENGTH,
    Delivery,
    InboundEvent,
    PayloadError,
    VerificationError,
    header,
    load_json,
)

AUTHORIZATION_HEADER = "Authorization"

#: Workday business-process name (compared case-insensitively) -> OfficeFlow event type.
EVENT_TYPES = {
    "hire": "employee.created",
    "termination": "employee.terminated",
    "change job": "employee.job_changed",
}


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _digest_equal(received: bytes, expected: bytes) -> bool:
    """Constant-time equality that does not leak the expected value's length either."""
    return hmac.compare_digest(hashlib.sha256(received).digest(), hashlib.sha256(expected).digest())


def _basic_credentials(header: str | None) -> tuple[bytes, bytes]:
    """The (username, password) bytes of a ``Basic`` Authorization header; VerificationError if unusable."""
    if not header:
        raise VerificationError(f"missing {AUTHORIZATION_HEADER} header")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise VerificationError(f"{AUTHORIZATION_HEADER} must use the Basic scheme")
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters in the token
        raise VerificationError(f"{AUTHORIZATION_HEADER} Basic credentials are not valid base64") from None
    username, colon, password = decoded.partition(b":")
    if not colon:
        raise VerificationError(f"{AUTHORIZATION_HEADER} Basic credentials lack the 'user:password' separator")
    return username, password


def _allowed_networks(config: Mapping[str, Any]) -> list[IPNetwork]:
    """The configured allow-list; a malformed one denies every delivery rather than allowing all."""
    cidrs = config.get("allowed_cidrs") or []
    if not isinstance(cidrs, list | tuple):
        raise VerificationError("endpoint allowed_cidrs must be a list of CIDR strings")
    networks = []
    for cidr in cidrs:
        try:
            # strict=False: "10.1.2.3/24" means the /24 it lies in, which is what an admin means by it.
            networks.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError:
            raise VerificationError(f"endpoint allowed_cidrs entry {cidr!r} is not a valid CIDR") from None
    return networks


def _check_source(client_ip: str | None, networks: list[IPNetwork]) -> None:
    if not networks:
        return
    if not client_ip:
        raise VerificationError("client address unknown and the endpoint restricts source IPs")
    try:
        address = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        raise VerificationError(f"client address {client_ip!r} is not an IP address") from None
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; match those against IPv4 ranges too.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    if not any(candidate in network for candidate in candidates for network in networks):
        raise VerificationError(f"client address {client_ip} is not in the endpoint's allowed_cidrs")


def _first(event: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present with a non-null value (Workday integrations name fields either way)."""
    return next((event[key] for key in keys if event.get(key) is not None), None)


def _canonical_digest(event: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(event, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _to_event(event: Any, where: str) -> InboundEvent:
    if not isinstance(event, dict):
        raise PayloadError(f"{where} must be a JSON object")
    raw_type = _first(event, "eventType", "type")
    if not isinstance(raw_type, str) or not raw_type.strip():
        raise PayloadError(f"{where} needs a non-empty string 'eventType' (or 'type')")
    raw_type = raw_type.strip()
    event_type = EVENT_TYPES.get(" ".join(raw_type.split()).casefold(), raw_type)
    if len(event_type) > MAX_EVENT_TYPE_LENGTH:
        raise PayloadError(f"{where} event type is longer than {MAX_EVENT_TYPE_LENGTH} characters")

    raw_id = _first(event, "eventId", "id")
    if raw_id is None or raw_id == "":
        # No id from Workday: the content itself is the identity, so a redelivery dedupes in the inbox.
        event_id = _canonical_digest(event)
    elif isinstance(raw_id, str | int) and not isinstance(raw_id, bool):
        event_id = str(raw_id).strip()
        if not event_id or len(event_id) > MAX_EVENT_ID_LENGTH:
            raise PayloadError(f"{where} event id must be 1-{MAX_EVENT_ID_LENGTH} characters")
    else:
        raise PayloadError(f"{where} 'eventId' (or 'id') must be a string or an integer")

    extra = {"workday_event_type": raw_type} if event_type != raw_type else {}
    return InboundEvent(provider_event_id=event_id, event_type=event_type, document=event, extra=extra)


class WorkdayAdapter:
    """Workday outbound notifications (HTTP Basic + optional source-IP allow-list)."""

    name = "workday"
    content_types: tuple[str, ...] = ("application/json",)
    default_mapping: dict[str, str] = {
        "employee_id": "worker.id || workerId",
        "first_name": "worker.firstName",
        "last_name": "worker.lastName",
        "email": "worker.workEmail",
        "department": "worker.department",
        "job_title": "worker.jobTitle",
        "start_date": "worker.hireDate",
    }

    def verify(self, delivery: Delivery, secrets: Sequence[str], config: Mapping[str, Any],
               *, window_seconds: int) -> None:
        """Raise :class:`VerificationError` unless the source IP is allowed and the credentials match.

        The source is checked first so a sender outside the allow-list learns nothing about the
        credentials from the rejection reason. ``window_seconds`` is unused: Workday sends no timestamp.
        """
        del window_seconds
        _check_source(delivery.client_ip, _allowed_networks(config))

        expected_user = config.get("username")
        if not isinstance(expected_user, str) or not expected_user:
            raise VerificationError("endpoint has no Workday username configured")
        passwords = [s for s in secrets if s]
        if not passwords:
            raise VerificationError("endpoint has no Workday password configured")

        username, password = _basic_credentials(header(delivery.headers, AUTHORIZATION_HEADER))
        # Evaluate every comparison (no short-circuit) so timing shows neither which part failed nor
        # which of the rotating passwords matched.
        user_ok = _digest_equal(username, expected_user.encode())
        password_ok = False
        for candidate in passwords:
            password_ok |= _digest_equal(password, candidate.encode())
        if not (user_ok & password_ok):
            raise VerificationError("invalid Workday credentials")

    def parse(self, delivery: Delivery) -> list[InboundEvent]:
        """One event object or ``{"events": [...]}`` -> events; :class:`PayloadError` when malformed."""
        document = load_json(delivery.body)
        if not isinstance(document, dict):
            raise PayloadError("body must be a JSON object (one event or {\"events\": [...]})")
        is_single = "eventType" in document or "type" in document
        if "events" in document and not is_single:
            events = document["events"]
            if not isinstance(events, list) or not events:
                raise PayloadError("'events' must be a non-empty list of event objects")
            return [_to_event(event, f"events[{index}]") for index, event in enumerate(events)]
        return [_to_event(document, "event")]
