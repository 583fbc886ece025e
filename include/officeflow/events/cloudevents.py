"""CloudEvents 1.0 (JSON format) for OfficeFlow's domain events, and what their data may not hold.

An event is a JSON object with the spec's required attributes (``id``, ``source``, ``specversion`` "1.0",
``type``), the optional ones OfficeFlow always sets (``time``, ``subject``, ``datacontenttype``
"application/json"), ``data``, and two extension attributes (lowercase alphanumeric names, as the spec requires):
``organizationid`` and ``correlationid``.

``type`` is ``com.officeflow.<area>.<action>`` (``area`` names the Kafka topic ``officeflow.events.<area>``).

``data`` is refused (:class:`EventDataError`) when it holds:

- a **secret**: a key whose name contains ``password``, ``passwd``, ``secret``, ``token``, ``api_key`` /
  ``apikey``, ``private_key``, ``credential``, ``authorization``, ``cookie``, ``signature`` or ``session``, or a
  string value shaped like one (``Bearer …``/``Basic …``, a PEM block, a JWT);
- **personal data** beyond ids: a key naming a personal attribute (``email``, ``phone``, ``name`` / ``*_name``,
  ``address``, ``birth``, ``ssn``, ``national_id``, ``salary``, ``iban``) or a string value that is an email
  address. People are referred to by their ids (``employee_id``, a user id), which stay allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from include.officeflow.ids import random_uuid

SPECVERSION = "1.0"
TYPE_PREFIX = "com.officeflow."
DEFAULT_SOURCE = "/officeflow"

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_SECRET_KEY = re.compile(r"passw(or)?d|secret|token|api_?key|private_?key|credential|authorization|cookie"
                         r"|signature|session", re.IGNORECASE)
_PERSONAL_KEY = re.compile(r"(^|_)(e_?mail|phone|mobile|name|address|birth(day|date)?|dob|ssn|national_id|salary"
                           r"|iban)($|_)", re.IGNORECASE)
_ALLOWED_KEY = re.compile(r"(^|_)ids?$", re.IGNORECASE)  # employee_id, user_ids, ...: ids are fine
# A credential's shape: an Authorization value or a JWT (the whole value), or a PEM key block (anywhere in it).
# Matched at the start, and the block searched for only where "-----" is: one unanchored search over every position
# of every value was ~1.5% of an edge worker's CPU (docs/BENCHMARKS.md).
_SECRET_VALUE = re.compile(r"(bearer|basic)\s+\S+|eyJ[\w-]+\.eyJ[\w-]+\.[\w-]*$", re.IGNORECASE)
_PEM_KEY = re.compile(r"-----BEGIN [A-Z ]*(PRIVATE )?KEY-----", re.IGNORECASE)
_EMAIL_VALUE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class EventDataError(ValueError):
    """The event cannot be written: a bad area/action/subject, or data holding a secret or personal data."""


@lru_cache(maxsize=512)  # a few dozen pairs, from code; checked once each
def event_type(area: str, action: str) -> str:
    for part, value in (("area", area), ("action", action)):
        if not _NAME.match(value):
            raise EventDataError(f"{part} {value!r}: lowercase letters, digits and '_' only, starting with a letter")
    return f"{TYPE_PREFIX}{area}.{action}"


def area_of(type_: str) -> str:
    """``com.officeflow.webhook.accepted`` → ``webhook``."""
    if not type_.startswith(TYPE_PREFIX) or type_.count(".") != 3:
        raise EventDataError(f"not an OfficeFlow event type: {type_!r}")
    return type_.split(".")[2]


@lru_cache(maxsize=4096)
def _key_problem(name: str) -> str | None:
    """Why a key may not be in event data, or None (keys come from code: a few dozen names, checked once each)."""
    if _SECRET_KEY.search(name):
        return "events never carry secrets"
    if _PERSONAL_KEY.search(name) and not _ALLOWED_KEY.search(name):
        return "events carry people's ids, not their personal data"
    return None


def check_data(data: Any, path: str = "data") -> None:
    """Raise :class:`EventDataError` naming the first place that holds a secret or personal data."""
    if isinstance(data, str):  # the commonest value first; dict before the Mapping ABC's slower check
        if _SECRET_VALUE.match(data.strip()) or ("-----" in data and _PEM_KEY.search(data)):
            raise EventDataError(f"{path}: the value looks like a credential; events never carry secrets")
        if "@" in data and _EMAIL_VALUE.search(data):  # the pattern backtracks over every '@'-less string
            raise EventDataError(f"{path}: the value is an email address; events carry people's ids")
    elif isinstance(data, dict | Mapping):
        for key, value in data.items():
            problem = _key_problem(str(key))
            if problem:
                raise EventDataError(f"{path}.{key}: {problem}")
            if value is not None:
                check_data(value, f"{path}.{key}")
    elif isinstance(data, list | tuple):
        for index, value in enumerate(data):
            check_data(value, f"{path}[{index}]")
    elif data is not None and not isinstance(data, bool | int | float):
        raise EventDataError(f"{path}: {type(data).__name__} is not JSON")


def build(*, area: str, action: str, subject: str, data: Mapping[str, Any], organization_id: str | None,
          correlation_id: str | None, source: str = DEFAULT_SOURCE, event_id: str | None = None,
          time: datetime | None = None) -> dict[str, Any]:
    """A CloudEvents 1.0 event (JSON format) as a dict, its data checked by :func:`check_data`."""
    type_ = event_type(area, action)
    if not subject or len(subject) > 255:
        raise EventDataError("subject: 1 to 255 characters (it is the Kafka key)")
    check_data(dict(data))
    event: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": event_id or random_uuid(),
        "source": source,
        "type": type_,
        "subject": subject,
        "time": (time or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": dict(data),
    }
    if organization_id:
        event["organizationid"] = organization_id
    if correlation_id:
        event["correlationid"] = correlation_id
    return event

