"""Personal data minimised before a prompt leaves OfficeFlow.

A prompt declares the fields it may send and each field's kind (:data:`FIELD_KINDS`). Only those fields leave;
in every ``text`` and ``data`` value, e-mail addresses and phone numbers are masked (``[email]``, ``[phone]``),
because free text (a reason, a note, a job title typed into a form) carries them where nobody declared them.
A field declared ``email`` or ``phone`` is the one way such a value passes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: The kinds a prompt's field may have: ``text`` (a string, masked), ``email`` / ``phone`` (declared personal
#: data, as is), ``data`` (JSON: lists, objects, numbers; every string inside masked), ``number``, and
#: ``reference`` (OfficeFlow's own configuration, such as a catalog of groups: JSON, as is).
FIELD_KINDS = frozenset({"text", "email", "phone", "data", "number", "reference"})
EMAIL_MASK, PHONE_MASK = "[email]", "[phone]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A run of digits, spaces, dots, dashes, slashes and parentheses, optionally with a leading +; it is a phone
# number when it holds 7 to 15 digits and is not a date or a plain decimal number (see _is_phone).
_PHONE_CANDIDATE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().\-/]{5,22}\d(?!\w)")
_DATE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")
_DECIMAL = re.compile(r"^\d+(?:\.\d+)?$")


def _is_phone(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    if not 7 <= digits <= 15:
        return False
    stripped = candidate.strip()
    return not (_DATE.match(stripped) or _DECIMAL.match(stripped))


def mask_text(text: str) -> str:
    """``text`` with its e-mail addresses and phone numbers masked."""
    text = _EMAIL.sub(EMAIL_MASK, text)
    return _PHONE_CANDIDATE.sub(lambda m: PHONE_MASK if _is_phone(m.group(0)) else m.group(0), text)


def mask_data(value: Any) -> Any:
    """JSON-like ``value`` with every string in it masked (keys too: they may be user-typed)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {mask_text(str(k)): mask_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_data(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return mask_text(str(value))


def minimise(variables: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, Any]:
    """The declared ``fields`` of ``variables`` (a missing one is None), each as its kind allows; nothing else."""
    out: dict[str, Any] = {}
    for name, kind in fields.items():
        value = variables.get(name)
        if value is None:
            out[name] = None
        elif kind in ("email", "phone"):
            out[name] = str(value)
        elif kind == "reference":
            out[name] = value
        elif kind == "number":
            out[name] = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        elif kind == "data":
            out[name] = mask_data(value)
        else:
            out[name] = mask_text(value if isinstance(value, str) else str(value))
    return out
