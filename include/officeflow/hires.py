"""Validation of a new hire's data, shared by the onboarding workflow and its tests."""

from __future__ import annotations

import logging
import re
from datetime import date
from typing import Any

log = logging.getLogger(__name__)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
HIRE_FIELDS = ("employee_id", "first_name", "last_name", "email", "department", "job_title",
               "start_date", "location", "manager")


class InvalidHire(ValueError):
    """The hire's data cannot start an onboarding; the message lists every problem."""


def validate_hire(params: dict[str, Any]) -> dict[str, str]:
    """Return the normalised hire, or raise :class:`InvalidHire` naming each bad field."""
    hire = {name: str(params.get(name) or "").strip() for name in HIRE_FIELDS}
    problems = []
    if not hire["first_name"]:
        problems.append("first_name is required")
    if not EMAIL.match(hire["email"]):
        problems.append(f"email {hire['email']!r} is not an email address")
    if hire["start_date"]:
        try:
            date.fromisoformat(hire["start_date"])
        except ValueError:
            problems.append(f"start_date {hire['start_date']!r} is not YYYY-MM-DD")
    if problems:
        raise InvalidHire("; ".join(problems))
    log.info("Validated hire %s (correlation_id=%s, source=%s)", hire["employee_id"] or "-",
             params.get("correlation_id") or "-", params.get("source") or "-")
    return hire
