"""BambooHR adapter: signature verification (incl. rotation) and JSON/form payload parsing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest

from plugins.officeflow_gateway.adapters import Delivery, PayloadError, VerificationError
from plugins.officeflow_gateway.adapters.bamboohr import (
    FORM,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BambooHRAdapter,
    sign,
)
from plugins.officeflow_gateway.mapping import apply_mapping

KEY = "private-key"
BODY = b'{"employees":[{"action":"Created","id":"7"}]}'
adapter = BambooHRAdapter()


def delivery(body: bytes = BODY, *, key: str = KEY, sent_at: int | None = None, headers: dict | None = None,
             content_type: str = "application/json", now: float | None = None) -> Delivery:
    now = time.time() if now is None else now
    stamp = str(int(now) if sent_at is None else sent_at)
    base = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(body, stamp, key)}
    return Delivery(body=body, headers=base if headers is None else headers, content_type=content_type,
                    client_ip="127.0.0.1", received_at=now)


def verify(d: Delivery, secrets=(KEY,), window: int = 300) -> None:
    adapter.verify(d, secrets, {}, window_seconds=window)


def test_sign_matches_an_independent_hmac_computation():
    expected = hmac.new(b"private-key", BODY + b"1700000000", hashlib.sha256).hexdigest()
    assert sign(BODY, "1700000000", KEY) == expected


def test_valid_signature_passes_and_uppercase_hex_is_accepted():
    d = delivery()
    verify(d)
    upper = {**d.headers, SIGNATURE_HEADER: d.headers[SIGNATURE_HEADER].upper()}
    verify(Delivery(d.body, upper, d.content_type, d.client_ip, d.received_at))


def test_tampered_body_or_wrong_key_is_rejected():
    d = delivery()
    with pytest.raises(VerificationError, match="does not match"):
        verify(Delivery(BODY + b" ", d.headers, d.content_type, None, d.received_at))
    with pytest.raises(VerificationError, match="does not match"):
        verify(d, secrets=("other-key",))


def test_signature_binds_the_timestamp():
    d = delivery()
    moved = {**d.headers, TIMESTAMP_HEADER: str(int(d.headers[TIMESTAMP_HEADER]) - 1)}
    with pytest.raises(VerificationError, match="does not match"):
        verify(Delivery(d.body, moved, d.content_type, None, d.received_at))


@pytest.mark.parametrize("offset", [-301, 301, -10_000])
def test_timestamps_outside_the_window_are_rejected(offset):
    now = 1_700_000_000
    with pytest.raises(VerificationError, match="replay window"):
        verify(delivery(sent_at=now + offset, now=now))


def test_window_edge_is_inclusive_and_configurable():
    now = 1_700_000_000
    verify(delivery(sent_at=now - 300, now=now))
    with pytest.raises(VerificationError, match="replay window"):
        verify(delivery(sent_at=now - 60, now=now), window=30)


def test_rotation_overlap_accepts_old_and_new_keys():
    old, new = delivery(key="old-key"), delivery(key="new-key")
    verify(old, secrets=("new-key", "old-key"))
    verify(new, secrets=("new-key", "old-key"))
    with pytest.raises(VerificationError):
        verify(old, secrets=("new-key",))


@pytest.mark.parametrize(
    ("headers", "message"),
    [({}, "missing"), ({TIMESTAMP_HEADER: "123"}, "missing"), ({SIGNATURE_HEADER: "ab"}, "missing"),
     ({TIMESTAMP_HEADER: "yesterday", SIGNATURE_HEADER: "ab"}, "Unix")],
)
def test_missing_or_malformed_headers_are_rejected(headers, message):
    with pytest.raises(VerificationError, match=message):
        verify(delivery(headers=headers))


def conf_of(body: bytes, content_type: str = "application/json") -> dict:
    [event] = adapter.parse(delivery(body, content_type=content_type))
    return apply_mapping(adapter.default_mapping, event.document)


HIRE = {"action": "Created", "id": 42, "timestamp": "2026-11-01T10:00:00+0000",
        "fields": {"firstName": "Ada", "lastName": "Lovelace", "workEmail": "ada@example.com",
                   "department": "Engineering", "jobTitle": "Engineer", "hireDate": "2026-12-01"}}
HIRE_CONF = {"employee_id": "42", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
             "department": "Engineering", "job_title": "Engineer", "start_date": "2026-12-01"}


def test_field_based_created_maps_to_onboarding_conf():
    [event] = adapter.parse(delivery(json.dumps({"employees": [HIRE]}).encode()))
    assert event.event_type == "employee.created"
    assert conf_of(json.dumps({"employees": [HIRE]}).encode()) == HIRE_CONF


def test_form_encoded_bracket_payload_maps_like_json():
    pairs = {"employees[0][action]": "Created", "employees[0][id]": "42",
             "employees[0][timestamp]": HIRE["timestamp"]}
    pairs.update({f"employees[0][fields][{k}]": v for k, v in HIRE["fields"].items()})
    assert conf_of(urlencode(pairs).encode(), FORM) == HIRE_CONF


def test_form_encoded_json_field_is_accepted():
    body = urlencode({"payload": json.dumps({"employees": [HIRE]})}).encode()
    assert conf_of(body, FORM) == HIRE_CONF


def test_event_ids_are_stable_across_redeliveries_and_differ_between_events():
    entry = {"action": "Created", "id": "1", "fields": {"firstName": "A", "workEmail": "a@example.com"}}
    first = adapter.parse(delivery(json.dumps({"employees": [entry]}).encode()))[0]
    again = adapter.parse(delivery(json.dumps({"employees": [dict(reversed(list(entry.items())))]}).encode()))[0]
    other = adapter.parse(delivery(json.dumps({"employees": [{**entry, "id": "2"}]}).encode()))[0]
    assert first.provider_event_id == again.provider_event_id
    assert first.provider_event_id != other.provider_event_id


def test_several_employees_become_several_events():
    body = json.dumps({"employees": [
        {"action": "Created", "id": "1", "fields": {"firstName": "A", "workEmail": "a@example.com"}},
        {"action": "Updated", "id": "2", "fields": {"department": "Sales"}},
    ]}).encode()
    assert [e.event_type for e in adapter.parse(delivery(body))] == ["employee.created", "employee.updated"]


def test_event_based_payload_is_normalised():
    body = json.dumps({"type": "employee.updated", "timestamp": "2026-01-31T18:42:00+0000",
                       "data": {"companyId": 1, "employeeId": "123", "changedFields": ["department"]}}).encode()
    [event] = adapter.parse(delivery(body))
    assert event.provider_event_id == "employee.updated:123:2026-01-31T18:42:00+0000"
    assert event.document["employee_id"] == "123" and event.document["changedFields"] == ["department"]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b"\xff\xfe", "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "JSON object"),
        (b'{"hello": 1}', "application/json", "expected an event-based"),
        (b'{"employees": []}', "application/json", "non-empty list"),
        (b'{"employees": [{"id": 1}]}', "application/json", "needs 'id' and 'action'"),
        (b'{"employees": [{"id": 1, "action": "Created", "fields": [1]}]}', "application/json", "must be an object"),
        (b'{"type": "employee.created", "data": {}}', "application/json", "data.employeeId"),
        (b"a=1&&&b", FORM, "not valid form data"),
        (b"employees[0][id]=1&employees[x][id]=2", FORM, "mixes list and object"),
    ],
)
def test_malformed_payloads_raise_payload_error(body, content_type, message):
    with pytest.raises(PayloadError, match=message):
        adapter.parse(delivery(body, content_type=content_type))
