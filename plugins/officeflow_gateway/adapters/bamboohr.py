"""BambooHR adapter.

BambooHR signs each delivery with ``X-BambooHR-Signature`` = hex HMAC-SHA256, keyed with the
webhook's private key, over the raw body followed by the ``X-BambooHR-Timestamp`` value.
Payloads come event-based (``{"type": "employee.created", "data": {...}}``) or field-based
(``{"employees": [{"action": "Created", "id": ..., "fields": {...}}]}``), as JSON or form-encoded.
Both shapes are normalised to one document per employee event::

    {"employee_id", "action", "fields", "changedFields", "timestamp"}

``action`` is the classified OfficeFlow event type (see :func:`classify`): BambooHR only says
Created / Updated / Deleted, while OfficeFlow starts different workflows for a termination and for
a job change, which BambooHR reports as an ``Updated`` of the fields that changed.

An event without field values (a ``Deleted`` entry, every event-based payload) whose workflow needs the person,
or whose kind only the values tell (a changed ``status`` without its value), is marked ``"lookup": {"system":
"bamboohr", "action": <BambooHR's action>, "reclassify": <an update>}``: the gateway stores and accepts it, and
the dispatcher reads the employee's record from BambooHR's API before it starts the run
(plugins/officeflow_gateway/employee_records.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from include.officeflow.mapping import HR_DOCUMENT_MAPPING
from plugins.officeflow_gateway.adapters.base import (
    Delivery,
    InboundEvent,
    PayloadError,
    VerificationError,
    load_json,
    parse_timestamp,
)

SIGNATURE_HEADER = "X-BambooHR-Signature"
TIMESTAMP_HEADER = "X-BambooHR-Timestamp"
FORM = "application/x-www-form-urlencoded"
_BRACKETS = re.compile(r"\[([^\]]*)\]")
_NOT_ALNUM = re.compile(r"[^0-9a-z]")

# Field names compared normalised (see _norm): BambooHR names a changed field by its API name
# ("jobTitle") in event-based payloads and by its English label ("Job Title"), or the alias the admin
# gave it, in field-based ones; both normalise to "jobtitle".
#: Fields whose change is a job change (the role-change workflow). "Reporting to" is the English
#: label of the supervisor field.
JOB_FIELDS = frozenset({"jobtitle", "department", "division", "supervisor", "supervisoreid", "supervisorid",
                        "supervisoremail", "reportingto", "location"})
#: Fields whose change may be a termination, which only their value tells (Inactive, Terminated).
STATUS_FIELDS = frozenset({"status", "employmenthistorystatus", "employmentstatus"})
#: Event types whose workflows need the person's fields.
PERSON_EVENTS = frozenset({"employee.created", "employee.terminated", "employee.deleted", "employee.job_changed"})
#: BambooHR's "no date" value for an empty date field.
_EMPTY_DATES = frozenset({"", "0000-00-00"})
_MISSING = object()


def sign(body: bytes, timestamp: str, key: str) -> str:
    """The signature BambooHR sends for ``body`` at ``timestamp``."""
    return hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def _digest(value: Any) -> str:
    """The hex SHA-256 of ``value``'s canonical JSON: part of stored event ids, so its bytes never change."""
    return hashlib.sha256(_canonical_json(value)).hexdigest()


_sorted_json = msgspec.json.Encoder(order="sorted").encode
_FLOAT = re.compile(rb"(?:^|[:\[,])-?[0-9]+[.eE]")  # a float in compact JSON (or a string holding such text)


def _canonical_json(value: Any) -> bytes:
    """``json.dumps(value, sort_keys=True, separators=(",", ":")).encode()``, by msgspec at a tenth of its CPU
    (~4% of an edge worker's, docs/BENCHMARKS.md sixth round) whenever that gives the same bytes: printable ASCII
    that needs no escape and no float (json.dumps escapes other characters as ``\\uXXXX`` and writes some floats
    otherwise). Else json.dumps itself. (A NaN or infinity, which msgspec writes as null, makes the event
    unstorable: it is refused with a 400 before its id is used.)"""
    try:
        encoded = _sorted_json(value)
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        encoded = b"\\"
    if encoded.isascii() and b"\\" not in encoded and b"\x7f" not in encoded and not _FLOAT.search(encoded):
        return encoded
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _norm(name: Any) -> str:
    """``"Job Title"``, ``"jobTitle"`` and ``"job_title"`` -> ``"jobtitle"``."""
    return _NOT_ALNUM.sub("", str(name).casefold())


def _is_termination(changed: set[str], values: dict[str, Any]) -> bool:
    """Whether an update's changed fields say the employee was terminated.

    ``values`` are the posted field values (normalised names). A termination date that was set is one
    (posted empty = cleared, e.g. a rehire: not one); a change of the termination date whose value is not
    posted (event-based payloads carry names only) counts too, since BambooHR fills it only when an
    employee is terminated. ``status`` (the employee's account status) and ``employmentHistoryStatus``
    (English label "Employment Status") only count with their posted value: "Inactive" and "Terminated";
    without the value the change may as well be a reactivation or a move to part-time.
    """
    if "terminationdate" in changed:
        date = values.get("terminationdate", _MISSING)
        if date is _MISSING or str(date or "").strip() not in _EMPTY_DATES:
            return True
    if "status" in changed and str(values.get("status") or "").strip().casefold() == "inactive":
        return True
    return any(
        name in changed and str(values.get(name) or "").strip().casefold() == "terminated"
        for name in ("employmenthistorystatus", "employmentstatus")
    )


def classify(action: str, changed_fields: Any, fields: dict[str, Any]) -> str:
    """The OfficeFlow event type of a BambooHR ``action`` (Created/Updated/Deleted or ``employee.*``).

    An update is ``employee.terminated`` when :func:`_is_termination` says so, else
    ``employee.job_changed`` when a :data:`JOB_FIELDS` field changed, else ``employee.updated``. Without
    ``changedFields`` nothing is known to have changed, so an update stays ``employee.updated``.
    """
    event_type = action if action.startswith("employee.") else f"employee.{action.lower()}"
    if event_type != "employee.updated":
        return event_type
    changed = {_norm(name) for name in changed_fields if isinstance(name, str)}
    values = {_norm(name): value for name, value in fields.items()}
    if _is_termination(changed, values):
        return "employee.terminated"
    if changed & JOB_FIELDS:
        return "employee.job_changed"
    return event_type


def lookup_of(action: str, event_type: str, changed_fields: list[Any], fields: dict[str, Any]) -> dict[str, Any] | None:
    """The ``lookup`` of an event that carries no field values but needs them: a hire, termination, deletion or job
    change, or an update of a status field (:data:`STATUS_FIELDS`) whose value decides whether it is a
    termination. ``None`` when the event posts values (kept as it is) or needs none."""
    if fields:
        return None
    changed = {_norm(name) for name in changed_fields if isinstance(name, str)}
    if event_type in PERSON_EVENTS or (event_type == "employee.updated" and changed & STATUS_FIELDS):
        raw = action if action.startswith("employee.") else f"employee.{action.lower()}"
        return {"system": "bamboohr", "action": raw, "reclassify": raw == "employee.updated"}
    return None


def _changed_fields(value: Any, where: str) -> list[Any]:
    """``changedFields`` as a list (a form post with a single ``[changedFields]=name`` gives a string)."""
    if value is None or value == {}:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if not isinstance(value, list):
        raise PayloadError(f"{where}.changedFields must be a list")
    return value


def _nest_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``employees[0][fields][firstName]=Ada`` -> ``{"employees": [{"fields": {"firstName": "Ada"}}]}``.

    Numeric segments index lists; a key used both as a value and as a container, or a list index
    beside object keys, is a :class:`PayloadError`.
    """
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        head, _, rest = raw_key.partition("[")
        keys = [head, *_BRACKETS.findall("[" + rest)] if rest else [head]
        if not head or any(len(k) > 100 for k in keys) or len(keys) > 10:
            raise PayloadError(f"form key {raw_key[:100]!r} is not supported")
        node: Any = root
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            following = None if last else keys[depth + 1]
            child: Any = value if last else ([] if following.isdigit() else {})  # type: ignore[union-attr]
            if isinstance(node, list):
                if not key.isdigit() or int(key) > 1000:
                    raise PayloadError(f"form key {raw_key[:100]!r} mixes list and object positions")
                index = int(key)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None or last:
                    node[index] = child
                node = node[index]
            elif isinstance(node, dict):
                if last or key not in node:
                    node[key] = child
                node = node[key]
            else:
                raise PayloadError(f"form key {raw_key[:100]!r} uses a value as a container")
            if not last and not isinstance(node, list | dict):
                raise PayloadError(f"form key {raw_key[:100]!r} uses a value as a container")
            if not last and isinstance(node, list) != following.isdigit():  # type: ignore[union-attr]
                raise PayloadError(f"form key {raw_key[:100]!r} mixes list and object positions")
    return root


class BambooHRAdapter:
    name = "bamboohr"
    content_types: tuple[str, ...] = ("application/json", FORM)
    default_mapping = HR_DOCUMENT_MAPPING

    def verify(self, delivery: Delivery, secrets: Sequence[str], config: Mapping[str, Any],
               *, window_seconds: int) -> None:
        signature = delivery.headers.get(SIGNATURE_HEADER)
        timestamp = delivery.headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            raise VerificationError(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
        timestamp = timestamp.strip()
        sent_at = parse_timestamp(timestamp, TIMESTAMP_HEADER)
        if abs(delivery.received_at - sent_at) > window_seconds:
            raise VerificationError(f"timestamp outside the {window_seconds}s replay window")
        received = signature.strip().lower().encode()
        # Check every valid key (rotation overlap) without stopping early.
        matched = False
        for key in secrets:
            matched |= hmac.compare_digest(sign(delivery.body, timestamp, key).encode(), received)
        if not matched:
            raise VerificationError("signature does not match")

    def parse(self, delivery: Delivery) -> list[InboundEvent]:
        document = self._decode(delivery)
        if "employees" in document:
            return self._field_based(document["employees"])
        if "type" in document:
            return [self._event_based(document)]
        raise PayloadError("expected an event-based ('type') or field-based ('employees') BambooHR payload")

    @staticmethod
    def _decode(delivery: Delivery) -> dict[str, Any]:
        if delivery.content_type == FORM:
            try:
                pairs = parse_qsl(delivery.body.decode(), keep_blank_values=True, strict_parsing=True)
            except (UnicodeDecodeError, ValueError) as exc:
                raise PayloadError(f"body is not valid form data: {exc}") from None
            if len(pairs) == 1 and pairs[0][0] in ("payload", "json", "data"):
                return BambooHRAdapter._json(pairs[0][1].encode())
            return _nest_form(pairs)
        return BambooHRAdapter._json(delivery.body)

    @staticmethod
    def _json(body: bytes) -> dict[str, Any]:
        document = load_json(body)
        if not isinstance(document, dict):
            raise PayloadError("body must be a JSON object")
        return document

    @staticmethod
    def _field_based(entries: Any) -> list[InboundEvent]:
        if not isinstance(entries, list) or not entries:
            raise PayloadError("'employees' must be a non-empty list")
        events = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or "id" not in entry or "action" not in entry:
                raise PayloadError(f"employees[{index}] needs 'id' and 'action'")
            fields = entry.get("fields") or {}
            if not isinstance(fields, dict):
                raise PayloadError(f"employees[{index}].fields must be an object")
            changed = _changed_fields(entry.get("changedFields"), f"employees[{index}]")
            event_type = classify(str(entry["action"]), changed, fields)
            employee_id = str(entry["id"])
            document = {"employee_id": employee_id, "action": event_type, "fields": fields,
                        "changedFields": changed, "timestamp": entry.get("timestamp")}
            lookup = lookup_of(str(entry["action"]), event_type, changed, fields)
            events.append(InboundEvent(
                provider_event_id=f"{event_type}:{employee_id}:{_digest(entry)[:32]}",
                event_type=event_type,
                document={**document, "lookup": lookup} if lookup else document,
            ))
        return events

    @staticmethod
    def _event_based(document: dict[str, Any]) -> InboundEvent:
        data = document.get("data")
        if not isinstance(data, dict) or "employeeId" not in data:
            raise PayloadError("event-based payload needs data.employeeId")
        fields = data.get("fields") or {}
        if not isinstance(fields, dict):
            raise PayloadError("data.fields must be an object")
        changed = _changed_fields(data.get("changedFields"), "data")
        event_type = classify(str(document["type"]), changed, fields)
        employee_id = str(data["employeeId"])
        stamp = str(document.get("timestamp") or _digest(document)[:32])
        normalised = {"employee_id": employee_id, "action": event_type, "fields": fields, "changedFields": changed,
                      "timestamp": document.get("timestamp"), "companyId": data.get("companyId")}
        lookup = lookup_of(str(document["type"]), event_type, changed, fields)
        return InboundEvent(
            provider_event_id=f"{event_type}:{employee_id}:{stamp}",
            event_type=event_type,
            document={**normalised, "lookup": lookup} if lookup else normalised,
        )
