"""BambooHR signature verification and payload parsing."""

from __future__ import annotations

import json
import time

import pytest

from plugins.officeflow_gateway import bamboohr

KEY = "private-key"
BODY = b'{"employees":[{"action":"Created","id":"7"}]}'


def test_sign_matches_an_independent_hmac_computation():
    import hashlib
    import hmac

    expected = hmac.new(b"private-key", BODY + b"1700000000", hashlib.sha256).hexdigest()
    assert bamboohr.sign(BODY, "1700000000", KEY) == expected


def test_valid_signature_passes_and_uppercase_hex_is_accepted():
    now = int(time.time())
    signature = bamboohr.sign(BODY, str(now), KEY)
    bamboohr.verify_signature(BODY, str(now), signature, KEY)
    bamboohr.verify_signature(BODY, str(now), signature.upper(), KEY)


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        (BODY + b" ", KEY, "does not match"),  # body tampered after signing
        (BODY, "other-key", "does not match"),
    ],
)
def test_tampered_body_or_wrong_key_is_rejected(body, key, message):
    now = str(int(time.time()))
    with pytest.raises(bamboohr.SignatureError, match=message):
        bamboohr.verify_signature(body, now, bamboohr.sign(BODY, now, KEY), key)


def test_signature_binds_the_timestamp():
    now = int(time.time())
    signature = bamboohr.sign(BODY, str(now), KEY)
    with pytest.raises(bamboohr.SignatureError, match="does not match"):
        bamboohr.verify_signature(BODY, str(now - 1), signature, KEY)


@pytest.mark.parametrize("offset", [-301, 301, -10_000])
def test_timestamps_outside_the_window_are_rejected(offset):
    sent = int(time.time()) + offset
    with pytest.raises(bamboohr.SignatureError, match="replay window"):
        bamboohr.verify_signature(BODY, str(sent), bamboohr.sign(BODY, str(sent), KEY), KEY)


def test_window_edge_is_inclusive():
    now = 1_700_000_000
    bamboohr.verify_signature(BODY, str(now - 300), bamboohr.sign(BODY, str(now - 300), KEY), KEY, now=now)


@pytest.mark.parametrize(
    ("timestamp", "signature", "message"),
    [(None, "abc", "missing"), ("123", None, "missing"), ("", "", "missing"), ("yesterday", "abc", "Unix")],
)
def test_missing_or_malformed_headers_are_rejected(timestamp, signature, message):
    with pytest.raises(bamboohr.SignatureError, match=message):
        bamboohr.verify_signature(BODY, timestamp, signature, KEY)


def test_field_based_created_maps_to_onboarding_conf():
    body = json.dumps({"employees": [{
        "action": "Created", "id": 42, "timestamp": "2026-11-01T10:00:00+0000",
        "fields": {"firstName": "Ada", "lastName": "Lovelace", "workEmail": "ada@example.com",
                   "department": "Engineering", "jobTitle": "Engineer", "hireDate": "2026-12-01"},
    }]}).encode()
    [event] = bamboohr.parse(body)
    assert event.event_type == "employee.created"
    assert event.employee_id == "42"
    assert event.rejection is None
    assert event.conf == {"employee_id": "42", "first_name": "Ada", "last_name": "Lovelace",
                          "email": "ada@example.com", "department": "Engineering", "job_title": "Engineer",
                          "start_date": "2026-12-01"}


def test_event_ids_are_stable_across_redeliveries_and_differ_between_events():
    entry = {"action": "Created", "id": "1", "fields": {"firstName": "A", "workEmail": "a@example.com"}}
    first = bamboohr.parse(json.dumps({"employees": [entry]}).encode())[0]
    again = bamboohr.parse(json.dumps({"employees": [dict(reversed(list(entry.items())))]}).encode())[0]
    other = bamboohr.parse(json.dumps({"employees": [{**entry, "id": "2"}]}).encode())[0]
    assert first.provider_event_id == again.provider_event_id
    assert first.provider_event_id != other.provider_event_id


def test_several_employees_become_several_events():
    body = json.dumps({"employees": [
        {"action": "Created", "id": "1", "fields": {"firstName": "A", "workEmail": "a@example.com"}},
        {"action": "Updated", "id": "2", "fields": {"department": "Sales"}},
    ]}).encode()
    events = bamboohr.parse(body)
    assert [e.event_type for e in events] == ["employee.created", "employee.updated"]
    assert events[0].conf is not None and events[1].conf is None


def test_created_without_required_fields_is_rejected_with_the_field_named():
    body = json.dumps({"employees": [{"action": "Created", "id": "9", "fields": {"firstName": "A"}}]}).encode()
    [event] = bamboohr.parse(body)
    assert event.conf is None
    assert "workEmail (email)" in (event.rejection or "")


def test_event_based_payload_is_parsed():
    body = json.dumps({"type": "employee.updated", "timestamp": "2026-01-31T18:42:00+0000",
                       "data": {"companyId": 1, "employeeId": "123", "changedFields": ["department"]}}).encode()
    [event] = bamboohr.parse(body)
    assert event.provider_event_id == "employee.updated:123:2026-01-31T18:42:00+0000"
    assert event.conf is None and event.rejection is None


def test_event_based_created_without_fields_is_rejected_not_dropped():
    body = json.dumps({"type": "employee.created", "timestamp": "t", "data": {"employeeId": "5"}}).encode()
    [event] = bamboohr.parse(body)
    assert event.rejection and "no fields" in event.rejection


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"hello": 1}', "expected an event-based"),
        (b'{"employees": []}', "non-empty list"),
        (b'{"employees": [{"id": 1}]}', "needs 'id' and 'action'"),
        (b'{"employees": [{"id": 1, "action": "Created", "fields": [1]}]}', "must be an object"),
        (b'{"type": "employee.created", "data": {}}', "data.employeeId"),
    ],
)
def test_malformed_payloads_raise_payload_error(body, message):
    with pytest.raises(bamboohr.PayloadError, match=message):
        bamboohr.parse(body)
