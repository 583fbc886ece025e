"""Workday adapter: Basic credentials, rotation, source-IP allow-list and payload parsing."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import jmespath
import pytest

from plugins.officeflow_gateway.adapters import get_adapter
from plugins.officeflow_gateway.adapters.base import Delivery, PayloadError, VerificationError
from plugins.officeflow_gateway.adapters.workday import WorkdayAdapter

USER = "ISU_OfficeFlow"
PASSWORD = "current-password-0123456789"
OLD_PASSWORD = "previous-password-9876543210"
CONFIG: dict[str, Any] = {"username": USER}
HIRE = {
    "eventId": "WD-EVT-1001",
    "eventType": "Hire",
    "worker": {"id": "21001", "firstName": "Ada", "lastName": "Lovelace", "workEmail": "ada@example.com",
               "department": "Engineering", "jobTitle": "Engineer", "hireDate": "2025-03-03"},
}
BODY = json.dumps(HIRE).encode()

adapter = WorkdayAdapter()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def delivery(body: bytes = BODY, *, authorization: str | None = None, client_ip: str | None = "203.0.113.10",
             headers: dict[str, str] | None = None) -> Delivery:
    if headers is None:
        headers = {"Authorization": basic(USER, PASSWORD) if authorization is None else authorization}
    return Delivery(body=body, headers=headers, content_type="application/json", client_ip=client_ip,
                    received_at=time.time())


def verify(d: Delivery, secrets: list[str] | None = None, config: dict[str, Any] | None = None) -> None:
    adapter.verify(d, [PASSWORD] if secrets is None else secrets, CONFIG if config is None else config,
                   window_seconds=300)


# --- verification -------------------------------------------------------------------------------


def test_registry_returns_the_workday_adapter():
    found = get_adapter("workday")
    assert isinstance(found, WorkdayAdapter)
    assert found.name == "workday"
    assert found.content_types == ("application/json",)


def test_valid_credentials_pass():
    d = delivery()
    verify(d)  # raises on failure
    with pytest.raises(VerificationError):  # and the same delivery is not accepted for any password
        verify(d, secrets=[OLD_PASSWORD])


def test_header_name_is_case_insensitive_and_scheme_is_case_insensitive():
    token = basic(USER, PASSWORD).split(" ", 1)[1]
    verify(delivery(headers={"authorization": f"basic {token}"}))
    with pytest.raises(VerificationError, match="invalid Workday credentials"):
        verify(delivery(headers={"authorization": basic(USER, "wrong")}))


def test_password_containing_a_colon_is_kept_whole():
    password = "pa:ss:word"
    verify(delivery(authorization=basic(USER, password)), secrets=[password])
    with pytest.raises(VerificationError):
        verify(delivery(authorization=basic(USER, "pa")), secrets=[password])


@pytest.mark.parametrize(
    ("user", "password"),
    [
        (USER, "wrong-password"),
        ("someone-else", PASSWORD),
        ("someone-else", "wrong-password"),
        (USER, ""),
        (USER.lower(), PASSWORD),  # usernames compare exactly
        (USER, PASSWORD + "x"),
    ],
)
def test_wrong_username_or_password_is_rejected_with_one_message(user, password):
    with pytest.raises(VerificationError) as raised:
        verify(delivery(authorization=basic(user, password)))
    # The reason does not reveal which half was wrong.
    assert str(raised.value) == "invalid Workday credentials"


def test_tampered_body_still_passes_because_workday_does_not_sign_bodies():
    # Documented limitation: Basic auth authenticates the sender, not the body.
    verify(delivery(BODY + b" "))
    assert adapter.parse(delivery(BODY + b" "))[0].provider_event_id == "WD-EVT-1001"


def test_rotation_accepts_old_and_new_during_overlap_and_only_new_afterwards():
    old_signed = delivery(authorization=basic(USER, OLD_PASSWORD))
    new_signed = delivery(authorization=basic(USER, PASSWORD))
    verify(old_signed, secrets=[PASSWORD, OLD_PASSWORD])
    verify(new_signed, secrets=[PASSWORD, OLD_PASSWORD])
    verify(new_signed, secrets=[PASSWORD])
    with pytest.raises(VerificationError, match="invalid Workday credentials"):
        verify(old_signed, secrets=[PASSWORD])


@pytest.mark.parametrize("headers", [{}, {"Authorization": ""}, {"X-Other": "Basic abc"}])
def test_missing_authorization_is_rejected(headers):
    with pytest.raises(VerificationError, match="missing Authorization"):
        verify(delivery(headers=headers))


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Basic !!!notbase64", "not valid base64"),
        ("Basic " + base64.b64encode(b"no-colon-here").decode(), "separator"),
        ("Basic", "Basic scheme"),
        ("Basic    ", "Basic scheme"),
        ("Bearer " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(), "Basic scheme"),
        (base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(), "Basic scheme"),
        ("Basic dXNlcjpwYXN", "not valid base64"),  # truncated: padding missing
        ("Basic ÿÿÿÿ", "not valid base64"),  # non-ASCII
    ],
)
def test_malformed_authorization_is_a_verification_error(authorization, message):
    with pytest.raises(VerificationError, match=message):
        verify(delivery(authorization=authorization))


@pytest.mark.parametrize(
    ("secrets", "config", "message"),
    [
        ([], CONFIG, "no Workday password"),
        ([""], CONFIG, "no Workday password"),
        ([PASSWORD], {}, "no Workday username"),
        ([PASSWORD], {"username": ""}, "no Workday username"),
    ],
)
def test_unconfigured_endpoint_denies(secrets, config, message):
    with pytest.raises(VerificationError, match=message):
        verify(delivery(), secrets=secrets, config=config)


def test_empty_configured_password_does_not_match_an_empty_sent_password():
    with pytest.raises(VerificationError):
        verify(delivery(authorization=basic(USER, "")), secrets=[""])


@pytest.mark.parametrize(
    ("client_ip", "cidrs"),
    [
        ("203.0.113.10", ["203.0.113.0/24"]),
        ("198.51.100.7", ["203.0.113.0/24", "198.51.100.0/28"]),
        ("2001:db8:1::42", ["2001:db8:1::/48"]),
        ("2001:db8:1::42", ["203.0.113.0/24", "2001:db8::/32"]),
        ("::ffff:203.0.113.10", ["203.0.113.0/24"]),  # IPv4 peer seen through a dual-stack socket
        ("203.0.113.10", ["203.0.113.10/32"]),
        ("203.0.113.10", ["203.0.113.99/24"]),  # host bits set: read as the /24
        ("10.9.9.9", []),
        (None, []),
    ],
)
def test_allowed_source_addresses_pass(client_ip, cidrs):
    verify(delivery(client_ip=client_ip), config={**CONFIG, "allowed_cidrs": cidrs})


def test_missing_allowed_cidrs_means_no_ip_restriction():
    verify(delivery(client_ip="192.0.2.200"), config={"username": USER})
    verify(delivery(client_ip=None), config={"username": USER, "allowed_cidrs": None})


@pytest.mark.parametrize(
    ("client_ip", "cidrs"),
    [
        ("203.0.114.1", ["203.0.113.0/24"]),
        ("198.51.100.16", ["198.51.100.0/28"]),
        ("2001:db9::1", ["2001:db8::/32"]),
        ("203.0.113.10", ["2001:db8::/32"]),  # v4 client, v6-only list
        ("2001:db8::1", ["203.0.113.0/24"]),  # v6 client, v4-only list
        ("::ffff:10.0.0.1", ["203.0.113.0/24"]),
    ],
)
def test_source_outside_the_allow_list_is_rejected(client_ip, cidrs):
    with pytest.raises(VerificationError, match="not in the endpoint's allowed_cidrs"):
        verify(delivery(client_ip=client_ip), config={**CONFIG, "allowed_cidrs": cidrs})


@pytest.mark.parametrize(
    ("client_ip", "cidrs", "message"),
    [
        (None, ["203.0.113.0/24"], "client address unknown"),
        ("", ["203.0.113.0/24"], "client address unknown"),
        ("not-an-ip", ["203.0.113.0/24"], "not an IP address"),
        ("203.0.113.10", ["203.0.113.0/33"], "not a valid CIDR"),
        ("203.0.113.10", ["garbage"], "not a valid CIDR"),
        ("203.0.113.10", "203.0.113.0/24", "must be a list"),
    ],
)
def test_unusable_address_or_allow_list_fails_closed(client_ip, cidrs, message):
    with pytest.raises(VerificationError, match=message):
        verify(delivery(client_ip=client_ip), config={**CONFIG, "allowed_cidrs": cidrs})


def test_source_is_checked_before_credentials_so_outsiders_learn_nothing_about_them():
    config = {**CONFIG, "allowed_cidrs": ["203.0.113.0/24"]}
    for authorization in (basic(USER, PASSWORD), basic(USER, "wrong"), "Basic !!!notbase64"):
        with pytest.raises(VerificationError, match="allowed_cidrs"):
            verify(delivery(authorization=authorization, client_ip="192.0.2.1"), config=config)


def test_inside_the_allow_list_bad_credentials_are_still_rejected():
    config = {**CONFIG, "allowed_cidrs": ["203.0.113.0/24"]}
    with pytest.raises(VerificationError, match="invalid Workday credentials"):
        verify(delivery(authorization=basic(USER, "wrong"), client_ip="203.0.113.10"), config=config)


def test_window_seconds_is_ignored():
    adapter.verify(delivery(), [PASSWORD], CONFIG, window_seconds=0)


# --- parsing ------------------------------------------------------------------------------------


def parse(document: Any) -> list:
    return adapter.parse(delivery(json.dumps(document).encode()))


def test_single_event_object():
    [event] = adapter.parse(delivery())
    assert event.provider_event_id == "WD-EVT-1001"
    assert event.event_type == "employee.created"
    assert event.document == HIRE
    assert event.extra == {"workday_event_type": "Hire"}


def test_events_envelope():
    termination = {"id": 77, "type": "Termination", "worker": {"id": "21002"}}
    custom = {"eventId": "E-3", "eventType": "Change Organization Assignments", "worker": {"id": "21003"}}
    events = parse({"events": [HIRE, termination, custom]})
    assert [(e.provider_event_id, e.event_type) for e in events] == [
        ("WD-EVT-1001", "employee.created"),
        ("77", "employee.terminated"),
        ("E-3", "Change Organization Assignments"),
    ]
    assert events[1].document is not None and events[1].document["worker"] == {"id": "21002"}
    assert events[2].extra == {}


@pytest.mark.parametrize(
    ("workday_type", "expected"),
    [
        ("Hire", "employee.created"),
        ("Termination", "employee.terminated"),
        ("Change Job", "employee.job_changed"),
        ("change  job", "employee.job_changed"),
        (" HIRE ", "employee.created"),
        ("Hire Employee", "Hire Employee"),
        ("employee.created", "employee.created"),
        ("Request Time Off", "Request Time Off"),
    ],
)
def test_business_process_names_are_normalised(workday_type, expected):
    [event] = parse({"eventId": "x", "eventType": workday_type})
    assert event.event_type == expected


def test_event_type_key_takes_precedence_and_type_is_a_fallback():
    [event] = parse({"eventId": "x", "eventType": "Hire", "type": "Termination"})
    assert event.event_type == "employee.created"
    [event] = parse({"eventId": "x", "eventType": None, "type": "Termination"})
    assert event.event_type == "employee.terminated"


def test_missing_id_uses_the_canonical_json_digest():
    event_doc = {"eventType": "Hire", "worker": {"id": "21001", "firstName": "Ada"}}
    expected = hashlib.sha256(json.dumps(event_doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    [event] = parse(event_doc)
    assert event.provider_event_id == expected
    assert len(event.provider_event_id) == 64


def test_provider_event_id_is_stable_for_the_same_event_and_distinct_between_events():
    first = {"eventType": "Hire", "worker": {"id": "21001", "firstName": "Ada"}}
    # The same event re-serialised with other key order and whitespace (a redelivery).
    same = b'{ "worker": {"firstName": "Ada", "id": "21001"},\n "eventType": "Hire" }'
    other = {"eventType": "Hire", "worker": {"id": "21002", "firstName": "Ada"}}
    id_first = parse(first)[0].provider_event_id
    assert adapter.parse(delivery(same))[0].provider_event_id == id_first
    assert parse(other)[0].provider_event_id != id_first
    assert parse({"eventType": "Termination", "worker": first["worker"]})[0].provider_event_id != id_first
    # Explicit ids are used verbatim, and the same in an envelope as standalone.
    assert parse(HIRE)[0].provider_event_id == parse({"events": [HIRE]})[0].provider_event_id == "WD-EVT-1001"
    assert parse({"events": [first, other]})[0].provider_event_id == id_first


def test_default_mapping_extracts_onboarding_params_from_a_hire():
    [event] = adapter.parse(delivery())
    conf = {param: jmespath.search(expr, event.document) for param, expr in adapter.default_mapping.items()}
    assert conf == {
        "employee_id": "21001",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "department": "Engineering",
        "job_title": "Engineer",
        "start_date": "2025-03-03",
    }
    # employee_id falls back to a top-level workerId.
    assert jmespath.search(adapter.default_mapping["employee_id"], {"workerId": "W-9"}) == "W-9"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'[{"eventType": "Hire"}]', "must be a JSON object"),
        (b'"Hire"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b'{"eventId": "1"}', "non-empty string 'eventType'"),
        (b'{"eventId": "1", "eventType": ""}', "non-empty string 'eventType'"),
        (b'{"eventId": "1", "eventType": 5}', "non-empty string 'eventType'"),
        (b'{"eventType": "Hire", "eventId": {"a": 1}}', "must be a string or an integer"),
        (b'{"eventType": "Hire", "eventId": true}', "must be a string or an integer"),
        (b'{"eventType": "Hire", "eventId": "   "}', "1-255 characters"),
        (b'{"eventType": "Hire", "eventId": "' + b"x" * 256 + b'"}', "1-255 characters"),
        (b'{"eventId": "1", "eventType": "' + b"x" * 129 + b'"}', "longer than 128"),
        (b'{"events": []}', "non-empty list"),
        (b'{"events": {"eventType": "Hire"}}', "non-empty list"),
        (b'{"events": [{"eventType": "Hire"}, 3]}', r"events\[1\] must be a JSON object"),
        (b'{"events": [{"eventType": "Hire"}, {"id": "2"}]}', r"events\[1\] needs"),
    ],
)
def test_malformed_payloads_are_payload_errors(body, message):
    with pytest.raises(PayloadError, match=message):
        adapter.parse(delivery(body))
