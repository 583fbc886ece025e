"""CloudEvents 1.0 for OfficeFlow's domain events: the attributes the spec requires, the extension names it allows,
and the data an event may not carry (secrets, personal data beyond ids)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from include.officeflow.events.cloudevents import EventDataError, area_of, build, check_data


def _event(**overrides):
    arguments = {"area": "webhook", "action": "accepted", "subject": "evt-1", "data": {"employee_id": "42"},
                 "organization_id": "acme", "correlation_id": "cid-1"}
    return build(**{**arguments, **overrides})


def test_an_event_has_the_required_attributes_and_lowercase_extensions():
    event = _event()
    assert event["specversion"] == "1.0" and event["type"] == "com.officeflow.webhook.accepted"
    assert event["source"] == "/officeflow" and event["subject"] == "evt-1"
    assert re.fullmatch(r"[0-9a-f-]{36}", event["id"])
    assert event["time"].endswith("Z") and datetime.fromisoformat(event["time"])  # RFC 3339, UTC
    assert event["datacontenttype"] == "application/json" and event["data"] == {"employee_id": "42"}
    assert (event["organizationid"], event["correlationid"]) == ("acme", "cid-1")
    extensions = set(event) - {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"}
    assert extensions == {"organizationid", "correlationid"}
    assert all(re.fullmatch(r"[a-z0-9]{1,20}", name) for name in event)  # the spec's attribute naming rule


def test_ids_are_unique_and_missing_extensions_are_left_out():
    assert _event()["id"] != _event()["id"]
    event = _event(organization_id=None, correlation_id=None)
    assert "organizationid" not in event and "correlationid" not in event


@pytest.mark.parametrize("data", [
    {"password": "x"}, {"api_key": "x"}, {"slack_token": "x"}, {"nested": {"client_secret": "x"}},
    {"headers": [{"authorization": "x"}]}, {"note": "Bearer abc.def"},
    {"value": "-----BEGIN RSA PRIVATE KEY-----\nMII..."},
    {"value": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"},
])
def test_secrets_are_refused(data):
    with pytest.raises(EventDataError, match="secrets"):
        check_data(data)


@pytest.mark.parametrize("data", [
    {"email": "a"}, {"work_email": "a"}, {"first_name": "Ada"}, {"name": "Ada"}, {"phone": "1"},
    {"home_address": "x"}, {"date_of_birth": "x"}, {"ssn": "x"}, {"people": [{"salary": 1}]},
    {"note": "mail ada@example.com"},
])
def test_personal_data_is_refused_ids_are_kept(data):
    with pytest.raises(EventDataError, match="ids"):
        check_data(data)


def test_ids_states_and_numbers_are_allowed():
    check_data({"employee_id": "42", "user_ids": ["u1"], "status": "pending", "attempts": 3, "ok": True,
                "dag_run_id": "bamboohr__1", "nothing": None})


def test_the_refusal_names_the_place():
    with pytest.raises(EventDataError, match=r"data\.people\[1\]\.email"):
        check_data({"people": [{"employee_id": "1"}, {"email": "x"}]})


@pytest.mark.parametrize("area, action", [("Webhook", "accepted"), ("webhook", "accepted.now"), ("", "x"),
                                          ("webhook", "")])
def test_type_parts_are_lowercase_names(area, action):
    with pytest.raises(EventDataError):
        _event(area=area, action=action)


def test_the_area_is_read_back_from_the_type():
    assert area_of("com.officeflow.webhook.dead_lettered") == "webhook"
    with pytest.raises(EventDataError):
        area_of("org.example.thing.happened")
