"""BambooHR adapter: signature verification and payload parsing into inbox events.

BambooHR signs each delivery with ``X-BambooHR-Signature`` = hex HMAC-SHA256, keyed with the
webhook's private key, over the raw body followed by the ``X-BambooHR-Timestamp`` value.
Payloads come event-based (``{"type": "employee.created", "data": {...}}``) or field-based
(``{"employees": [{"action": "Created", "id": ..., "fields": {...}}]}``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

SIGNATURE_HEADER = "X-BambooHR-Signature"
TIMESTAMP_HEADER = "X-BambooHR-Timestamp"
SOURCE = "bamboohr"

# BambooHR field name -> employee_onboarding param name.
ONBOARDING_FIELDS = {
    "firstName": "first_name",
    "lastName": "last_name",
    "workEmail": "email",
    "homeEmail": "personal_email",
    "department": "department",
    "jobTitle": "job_title",
    "hireDate": "start_date",
    "location": "location",
    "supervisor": "manager",
}
REQUIRED_ONBOARDING_PARAMS = ("first_name", "email")


class SignatureError(Exception):
    """The delivery is not provably from BambooHR (bad, missing or stale signature)."""


class PayloadError(Exception):
    """The body is not a BambooHR payload this adapter understands."""


@dataclass
class HREvent:
    """One employee event out of a delivery; ``conf`` is set when it should start onboarding."""

    provider_event_id: str
    event_type: str
    employee_id: str
    payload: dict[str, Any]
    conf: dict[str, Any] | None = None
    rejection: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def sign(body: bytes, timestamp: str, key: str) -> str:
    """The signature BambooHR sends for ``body`` at ``timestamp`` (used by tests and the sample sender)."""
    return hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def verify_signature(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    key: str,
    *,
    window_seconds: int = 300,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless the delivery is fresh and signed with ``key``."""
    if not signature or not timestamp:
        raise SignatureError(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    try:
        sent_at = int(timestamp.strip())
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not a Unix timestamp") from None
    skew = abs((time.time() if now is None else now) - sent_at)
    if skew > window_seconds:
        raise SignatureError(f"timestamp outside the {window_seconds}s replay window")
    expected = sign(body, timestamp.strip(), key)
    # compare_digest is constant-time for equal-length ASCII; lower-case the received hex first.
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise SignatureError("signature does not match")


def parse(body: bytes) -> list[HREvent]:
    """Turn a verified JSON body into events; raise :class:`PayloadError` when it is malformed."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PayloadError("body must be a JSON object")
    if "employees" in document:
        return _parse_field_based(document["employees"])
    if "type" in document:
        return [_parse_event_based(document)]
    raise PayloadError("expected an event-based ('type') or field-based ('employees') BambooHR payload")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _onboarding_conf(employee_id: str, fields: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    conf: dict[str, Any] = {"employee_id": employee_id}
    for source_name, param in ONBOARDING_FIELDS.items():
        value = fields.get(source_name)
        if value not in (None, ""):
            conf[param] = str(value)
    missing = [p for p in REQUIRED_ONBOARDING_PARAMS if p not in conf]
    if missing:
        names = {v: k for k, v in ONBOARDING_FIELDS.items()}
        return None, "missing required field(s): " + ", ".join(f"{names[m]} ({m})" for m in missing)
    return conf, None


def _parse_field_based(entries: Any) -> list[HREvent]:
    if not isinstance(entries, list) or not entries:
        raise PayloadError("'employees' must be a non-empty list")
    events = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "id" not in entry or "action" not in entry:
            raise PayloadError(f"employees[{index}] needs 'id' and 'action'")
        fields = entry.get("fields") or {}
        if not isinstance(fields, dict):
            raise PayloadError(f"employees[{index}].fields must be an object")
        employee_id = str(entry["id"])
        event_type = f"employee.{str(entry['action']).lower()}"
        event = HREvent(
            provider_event_id=f"{event_type}:{employee_id}:{_digest(entry)[:32]}",
            event_type=event_type,
            employee_id=employee_id,
            payload=entry,
        )
        if event_type == "employee.created":
            event.conf, event.rejection = _onboarding_conf(employee_id, fields)
        events.append(event)
    return events


def _parse_event_based(document: dict[str, Any]) -> HREvent:
    data = document.get("data")
    if not isinstance(data, dict) or "employeeId" not in data:
        raise PayloadError("event-based payload needs data.employeeId")
    event_type = str(document["type"])
    employee_id = str(data["employeeId"])
    stamp = str(document.get("timestamp") or _digest(document)[:32])
    event = HREvent(
        provider_event_id=f"{event_type}:{employee_id}:{stamp}",
        event_type=event_type,
        employee_id=employee_id,
        payload=document,
    )
    if event_type == "employee.created":
        fields = data.get("fields")
        if isinstance(fields, dict):
            event.conf, event.rejection = _onboarding_conf(employee_id, fields)
        else:
            # Event-based deliveries carry ids only; the employee record comes from BambooHR's API,
            # which the gateway does not call yet. Kept as rejected so it can be replayed later.
            event.rejection = "event-based employee.created carries no fields; enable field-based posting"
    return event
