"""The HR workflows' input validation and plans (include/officeflow/hires.py)."""

from __future__ import annotations

from datetime import date

import pytest

from include.officeflow import hires
from include.officeflow.hires import InvalidHire, validate_hire

HIRE = {"employee_id": "42", "first_name": " Ada ", "last_name": "Lovelace", "email": "Ada@Example.com",
        "personal_email": "ada@home.example", "department": "Engineering", "job_title": "Engineer",
        "manager": "Grace Hopper", "manager_email": "grace@example.com", "start_date": "2026-12-07",
        "time_zone": "Europe/Berlin", "correlation_id": "c-1", "equipment": ["laptop", "monitor"]}


@pytest.fixture(autouse=True)
def people_team(monkeypatch):
    from include.officeflow.settings import get_settings

    monkeypatch.setenv("OFFICEFLOW_PEOPLE_TEAM_EMAIL", "people@example.com")
    monkeypatch.delenv("OFFICEFLOW_IT_TEAM_EMAIL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_valid_hire_is_normalised():
    hire = validate_hire({"first_name": " Ada ", "last_name": "L", "email": "ADA@example.com",
                          "start_date": "2026-12-01", "unexpected": "dropped"})
    assert hire["first_name"] == "Ada" and hire["email"] == "ada@example.com"
    assert hire["start_date"] == "2026-12-01" and hire["organization_id"] == "default"
    assert hire["identity_provider"] == "google" and hire["time_zone"] == "UTC"
    assert "unexpected" not in hire and hire["department"] == ""


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidHire) as info:
        validate_hire({"first_name": "", "email": "not-an-email", "start_date": "01/12/2026",
                       "personal_email": "nope", "identity_provider": "ldap", "time_zone": "Mars/Olympus"})
    message = str(info.value)
    for problem in ("first_name is required", "last_name is required", "email 'not-an-email' is not an email",
                    "personal_email 'nope'", "not YYYY-MM-DD", "identity_provider 'ldap'", "not an IANA time zone"):
        assert problem in message


def test_onboarding_plan_derives_every_step_input():
    plan = hires.onboarding_plan(HIRE, today=date(2026, 11, 1))
    assert plan["welcome_to"] == "ada@home.example" and plan["approver_email"] == "grace@example.com"
    assert plan["it_email"] == "people@example.com"  # IT team unset: the people team organizes IT setup
    assert plan["channel_name"] == "onboarding-ada-lovelace-42"
    assert (plan["meeting_window_start"], plan["meeting_window_end"]) == ("2026-12-07", "2026-12-14")
    assert plan["document_key"] == "hires/42/welcome_pack" and plan["document_tags"]["employee_id"] == "42"
    assert plan["welcome_email"]["company_name"] == "OfficeFlow"
    assert plan["first_day_email"]["contact_name"] == "Grace Hopper"
    request = plan["equipment_request"]
    assert request["items"] == ["laptop", "monitor"] and request["approver_email"] == "grace@example.com"
    assert request["for_email"] == "ada@example.com" and len(request["receipt"]["items"]) == 2


def test_onboarding_without_manager_email_falls_back_to_the_people_team(monkeypatch):
    from include.officeflow.settings import get_settings

    plan = hires.onboarding_plan({**HIRE, "manager_email": "", "equipment": []}, today=date(2026, 11, 1))
    assert plan["approver_email"] == "people@example.com" and plan["equipment_request"] == {}
    monkeypatch.setenv("OFFICEFLOW_PEOPLE_TEAM_EMAIL", "")
    get_settings.cache_clear()
    with pytest.raises(InvalidHire, match="manager_email is required"):
        hires.onboarding_plan({**HIRE, "manager_email": ""})


def test_first_day_window_never_starts_in_the_past():
    assert hires.first_day_window("2026-01-05", today=date(2026, 11, 1)) == ("2026-11-02", "2026-11-09")
    assert hires.first_day_window("", today=date(2026, 11, 1)) == ("2026-11-02", "2026-11-09")


@pytest.mark.parametrize(("parts", "expected"), [
    (("onboarding", "Zoë", "O'Brien", "7"), "onboarding-zoe-obrien-7"),
    (("onboarding", "Mary Ann", "", ""), "onboarding-mary-ann"),
    (("onboarding", "李", "Li", ""), "onboarding-li"),
])
def test_channel_names_follow_slack_rules(parts, expected):
    assert hires.slug(*parts) == expected
    assert len(hires.onboarding_channel("x" * 60, "y" * 60, "123")) <= 80


def test_too_many_equipment_items_is_refused():
    with pytest.raises(InvalidHire, match="at most 20"):
        hires.equipment_items([f"item {i}" for i in range(21)])
    assert hires.equipment_items(" laptop, ,monitor ") == ["laptop", "monitor"]


def test_leaver_plan_and_problems():
    plan = hires.validate_leaver({**HIRE, "termination_date": "2026-12-31", "retention_days": 0})
    assert plan["last_day"] == "2026-12-31" and plan["retention_days"] == 0
    assert plan["document_prefix"] == "hires/42/" and plan["channel_name"] == "onboarding-ada-lovelace-42"
    assert plan["approval_subject"].startswith("Offboard Ada Lovelace (ada@example.com)")
    assert plan["exit_email"]["personal_email"] == "ada@home.example"
    default = hires.validate_leaver({"email": "bob@example.com"}, today=date(2026, 11, 2))
    assert default["last_day"] == "2026-11-02" and default["retention_days"] == 30
    assert default["approver_email"] == "people@example.com"
    with pytest.raises(InvalidHire) as info:
        hires.validate_leaver({"email": "", "termination_date": "soon", "retention_days": -1})
    message = str(info.value)
    assert "email is required" in message and "termination_date 'soon'" in message and "retention_days -1" in message


def test_role_change_needs_a_new_role_and_names():
    change = hires.validate_role_change({**HIRE, "department": "Sales", "job_title": ""})
    assert change["announcement"] == "Ada Lovelace is now in a new role in Sales (effective now)."
    assert change["email_variables"]["department"] == "Sales"
    with pytest.raises(InvalidHire) as info:
        hires.validate_role_change({"email": "a@example.com"})
    assert "department or job_title is required" in str(info.value) and "first_name is required" in str(info.value)


def test_equipment_request_plan_and_decision():
    plan = hires.equipment_request_plan({"requester_email": "Bob@Example.com", "items": "laptop, headset",
                                         "reason": "broken"})
    assert plan["approver_email"] == "people@example.com" and plan["for_email"] == "bob@example.com"
    assert plan["subject"] == "Equipment for bob@example.com: laptop, headset" and "Reason: broken" in plan["body"]
    approved = hires.equipment_decision(plan, {"chosen_options": ["Approve"],
                                               "responded_by_user": {"name": "grace@example.com"}})
    assert approved["decision"] == "approved" and approved["approver_name"] == "grace@example.com"
    assert hires.equipment_decision(plan, {"chosen_options": ["Reject"]})["decision"] == "rejected"
    assert hires.equipment_decision(plan, None)["decision"] == "not decided"
    with pytest.raises(InvalidHire) as info:
        hires.equipment_request_plan({"requester_email": "x", "items": []})
    assert "requester_email 'x'" in str(info.value) and "at least one" in str(info.value)


def test_onboarding_summary_names_what_was_done():
    plan = hires.onboarding_plan(HIRE, today=date(2026, 11, 1))
    text = hires.onboarding_summary(plan, {
        "provision_account": {"provider": "google", "login": "ada@example.com", "created": True, "groups": ["eng"]},
        "welcome_pack": {"document_id": "d1", "version": 1},
        "create_slack_channel": {"name": "onboarding-ada-lovelace-42"},
        "schedule_manager_1on1": {"start": "2026-12-07T09:00:00+01:00"},
        "equipment.approval": {"chosen_options": ["Approve"]},
    })
    assert text.splitlines()[0] == "Onboarding of Ada Lovelace (ada@example.com) is done."
    assert "google account ada@example.com created; groups: eng" in text
    assert "#onboarding-ada-lovelace-42" in text and "equipment (laptop, monitor): Approve" in text
    assert "IT setup" not in text  # not run: not claimed
    assert f"- 1:1 with the manager: Mon 7 Dec 2026, 09:00 ({plan['time_zone']})" in text
