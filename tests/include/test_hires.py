"""New-hire validation used by employee_onboarding."""

from __future__ import annotations

import pytest

from include.officeflow.hires import InvalidHire, validate_hire


def test_valid_hire_is_normalised():
    hire = validate_hire({"first_name": " Ada ", "email": "ada@example.com", "start_date": "2026-12-01",
                          "unexpected": "dropped"})
    assert hire["first_name"] == "Ada"
    assert hire["start_date"] == "2026-12-01"
    assert "unexpected" not in hire and hire["department"] == ""


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidHire) as info:
        validate_hire({"first_name": "", "email": "not-an-email", "start_date": "01/12/2026"})
    message = str(info.value)
    assert "first_name is required" in message
    assert "not an email address" in message
    assert "not YYYY-MM-DD" in message
