"""BambooHR adapter: signature verification (incl. rotation) and JSON/form payload parsing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest

from include.officeflow.mapping import apply_mapping
from plugins.officeflow_gateway.adapters import Delivery, PayloadError, VerificationError
from plugins.officeflow_gateway.adapters.bamboohr import (
    FORM,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BambooHRAdapter,
    sign,
)

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
             "department": "Engineering", "job_title": "Engineer", "start_date": "2026-12-01",
             "event_type": "employee.created"}


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
    assert event.provider_event_id == "employee.job_changed:123:2026-01-31T18:42:00+0000"
    assert event.document["employee_id"] == "123" and event.document["changedFields"] == ["department"]
    assert event.document["action"] == event.event_type == "employee.job_changed"


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
        (b'{"employees": [{"id": 1, "action": "Updated", "changedFields": {"a": "b"}}]}', "application/json",
         r"employees\[0\].changedFields must be a list"),
        (b'{"type": "employee.updated", "data": {"employeeId": 1, "changedFields": 5}}', "application/json",
         "data.changedFields must be a list"),
        (b"a=1&&&b", FORM, "not valid form data"),
        (b"employees[0][id]=1&employees[x][id]=2", FORM, "mixes list and object"),
    ],
)
def test_malformed_payloads_raise_payload_error(body, content_type, message):
    with pytest.raises(PayloadError, match=message):
        adapter.parse(delivery(body, content_type=content_type))


# --- classification: which workflow an Updated/Deleted/Created event is ---------------------------


def field_based(action: str, changed: list[str] | None = None, fields: dict | None = None,
                employee_id: str = "42", timestamp: str = "2026-11-02T10:00:00+0000") -> dict:
    entry: dict = {"action": action, "id": employee_id, "timestamp": timestamp, "fields": fields or {}}
    if changed is not None:
        entry["changedFields"] = changed
    return {"employees": [entry]}


def form_of(payload: dict) -> bytes:
    """The bracket-key form post of a one-entry field-based payload."""
    [entry] = payload["employees"]
    pairs = [(f"employees[0][{key}]", entry[key]) for key in ("action", "id", "timestamp")]
    pairs += [(f"employees[0][changedFields][{i}]", name) for i, name in enumerate(entry.get("changedFields", []))]
    pairs += [(f"employees[0][fields][{name}]", value) for name, value in entry["fields"].items()]
    return urlencode(pairs).encode()


def classified(payload: dict, encoding: str) -> str:
    if encoding == "json":
        body, content_type = json.dumps(payload).encode(), "application/json"
    else:
        body, content_type = form_of(payload), FORM
    [event] = adapter.parse(delivery(body, content_type=content_type))
    assert event.document["action"] == event.event_type
    assert event.provider_event_id.startswith(f"{event.event_type}:42:")
    return event.event_type


TERMINATED = "employee.terminated"
JOB_CHANGED = "employee.job_changed"
UPDATED = "employee.updated"

FIELD_BASED_CASES = [
    pytest.param("Created", None, HIRE["fields"], "employee.created", id="created"),
    pytest.param("Deleted", [], {}, "employee.deleted", id="deleted"),
    pytest.param("Updated", ["terminationDate"], {"terminationDate": "2026-12-31"}, TERMINATED,
                 id="termination-date-set"),
    pytest.param("Updated", ["Termination Date"], {"Termination Date": "2026-12-31"}, TERMINATED,
                 id="termination-date-english-label"),
    pytest.param("Updated", ["status"], {"status": "Inactive"}, TERMINATED, id="status-inactive"),
    pytest.param("Updated", ["Status"], {"Status": "inactive"}, TERMINATED, id="status-label-any-case"),
    pytest.param("Updated", ["employmentHistoryStatus"], {"employmentHistoryStatus": "Terminated"}, TERMINATED,
                 id="employment-status-terminated"),
    pytest.param("Updated", ["Employment Status"], {"Employment Status": "Terminated"}, TERMINATED,
                 id="employment-status-english-label"),
    pytest.param("Updated", ["jobTitle", "terminationDate"], {"jobTitle": "X", "terminationDate": "2026-12-31"},
                 TERMINATED, id="termination-wins-over-job-change"),
    pytest.param("Updated", ["terminationDate"], {"terminationDate": "0000-00-00"}, UPDATED,
                 id="termination-date-cleared-is-no-termination"),
    pytest.param("Updated", ["terminationDate"], {"terminationDate": ""}, UPDATED, id="termination-date-empty"),
    pytest.param("Updated", ["status"], {"status": "Active"}, UPDATED, id="status-reactivated"),
    pytest.param("Updated", ["employmentHistoryStatus"], {"employmentHistoryStatus": "Part-Time"}, UPDATED,
                 id="employment-status-part-time"),
    pytest.param("Updated", ["firstName"], {"status": "Inactive", "terminationDate": "2026-01-01"}, UPDATED,
                 id="already-terminated-unrelated-change"),
    pytest.param("Updated", ["jobTitle"], {"jobTitle": "Lead"}, JOB_CHANGED, id="job-title"),
    pytest.param("Updated", ["Job Title"], {"Job Title": "Lead"}, JOB_CHANGED, id="job-title-english-label"),
    pytest.param("Updated", ["department"], {}, JOB_CHANGED, id="department"),
    pytest.param("Updated", ["division"], {}, JOB_CHANGED, id="division"),
    pytest.param("Updated", ["supervisor"], {}, JOB_CHANGED, id="supervisor"),
    pytest.param("Updated", ["supervisorEId"], {}, JOB_CHANGED, id="supervisor-eid"),
    pytest.param("Updated", ["supervisorEmail"], {}, JOB_CHANGED, id="supervisor-email"),
    pytest.param("Updated", ["Reporting to"], {}, JOB_CHANGED, id="reporting-to-label"),
    pytest.param("Updated", ["location"], {}, JOB_CHANGED, id="location"),
    pytest.param("Updated", ["firstName", "homeEmail"], {"firstName": "Ada"}, UPDATED, id="personal-fields"),
    pytest.param("Updated", None, {"jobTitle": "Lead", "status": "Inactive"}, UPDATED,
                 id="no-changed-fields-nothing-known-changed"),
]


@pytest.mark.parametrize("encoding", ["json", "form"])
@pytest.mark.parametrize(("action", "changed", "fields", "expected"), FIELD_BASED_CASES)
def test_field_based_events_are_classified(action, changed, fields, expected, encoding):
    assert classified(field_based(action, changed, fields), encoding) == expected


def event_based(event_type: str, changed: list[str] | None = None, fields: dict | None = None,
                timestamp: str = "2026-11-02T10:00:00+0000") -> dict:
    data: dict = {"companyId": "1", "employeeId": "42"}
    if changed is not None:
        data["changedFields"] = changed
    if fields is not None:
        data["fields"] = fields
    return {"type": event_type, "timestamp": timestamp, "data": data}


def event_form_of(payload: dict) -> bytes:
    data = payload["data"]
    pairs = [("type", payload["type"]), ("timestamp", payload["timestamp"]),
             ("data[companyId]", data["companyId"]), ("data[employeeId]", data["employeeId"])]
    pairs += [(f"data[changedFields][{i}]", name) for i, name in enumerate(data.get("changedFields", []))]
    pairs += [(f"data[fields][{name}]", value) for name, value in (data.get("fields") or {}).items()]
    return urlencode(pairs).encode()


EVENT_BASED_CASES = [
    pytest.param("employee.created", None, None, "employee.created", id="created"),
    pytest.param("employee.deleted", None, None, "employee.deleted", id="deleted"),
    # Event-based payloads carry names only: a termination date change is taken as a termination ...
    pytest.param("employee.updated", ["terminationDate"], None, TERMINATED, id="termination-date-changed"),
    # ... a status change without its value is not (it may be a reactivation or a move to part-time).
    pytest.param("employee.updated", ["status"], None, UPDATED, id="status-without-value"),
    pytest.param("employee.updated", ["employmentHistoryStatus"], None, UPDATED, id="employment-status-no-value"),
    pytest.param("employee.updated", ["employmentHistoryStatus"], {"employmentHistoryStatus": "Terminated"},
                 TERMINATED, id="employment-status-with-data-fields"),
    pytest.param("employee.updated", ["terminationDate"], {"terminationDate": "0000-00-00"}, UPDATED,
                 id="termination-date-cleared-in-data-fields"),
    pytest.param("employee.updated", ["department", "jobTitle"], None, JOB_CHANGED, id="job-change"),
    pytest.param("employee.updated", ["supervisorEId"], None, JOB_CHANGED, id="new-supervisor"),
    pytest.param("employee.updated", ["firstName"], None, UPDATED, id="name-change"),
    pytest.param("employee.updated", None, None, UPDATED, id="no-changed-fields"),
]


@pytest.mark.parametrize("encoding", ["json", "form"])
@pytest.mark.parametrize(("event_type", "changed", "fields", "expected"), EVENT_BASED_CASES)
def test_event_based_events_are_classified(event_type, changed, fields, expected, encoding):
    payload = event_based(event_type, changed, fields)
    if encoding == "json":
        body, content_type = json.dumps(payload).encode(), "application/json"
    else:
        body, content_type = event_form_of(payload), FORM
    [event] = adapter.parse(delivery(body, content_type=content_type))
    assert event.event_type == event.document["action"] == expected
    assert event.provider_event_id == f"{expected}:42:2026-11-02T10:00:00+0000"
    assert event.document["changedFields"] == (changed or [])


def test_single_changed_field_in_a_form_post_is_a_one_item_list():
    body = urlencode({"employees[0][action]": "Updated", "employees[0][id]": "42",
                      "employees[0][changedFields]": "jobTitle"}).encode()
    [event] = adapter.parse(delivery(body, content_type=FORM))
    assert (event.event_type, event.document["changedFields"]) == (JOB_CHANGED, ["jobTitle"])


@pytest.mark.parametrize("make", [
    pytest.param(lambda: field_based("Updated", ["terminationDate"], {"terminationDate": "2026-12-31"}), id="field"),
    pytest.param(lambda: event_based("employee.updated", ["jobTitle"]), id="event"),
])
def test_redeliveries_of_a_classified_event_dedupe(make):
    """BambooHR redelivers the same body (re-signed later): same id, whatever the encoding or key order."""
    first = adapter.parse(delivery(json.dumps(make()).encode(), now=1_700_000_000))[0]
    again = adapter.parse(delivery(json.dumps(make(), sort_keys=True).encode(), now=1_700_000_100))[0]
    assert (first.provider_event_id, first.event_type) == (again.provider_event_id, again.event_type)


def test_classified_events_of_one_employee_get_distinct_ids():
    """A job change and a termination of the same employee must not dedupe into each other."""
    ids = {
        adapter.parse(delivery(json.dumps(payload).encode()))[0].provider_event_id
        for payload in (
            field_based("Created", [], {}), field_based("Deleted", [], {}),
            field_based("Updated", ["jobTitle"], {"jobTitle": "Lead"}),
            field_based("Updated", ["status"], {"status": "Inactive"}),
            field_based("Updated", ["firstName"], {"firstName": "Ada"}),
        )
    }
    assert len(ids) == 5
    event_ids = [adapter.parse(delivery(json.dumps(event_based(t, c)).encode()))[0].provider_event_id
                 for t, c in (("employee.updated", ["jobTitle"]), ("employee.updated", ["terminationDate"]),
                              ("employee.updated", ["firstName"]))]
    assert len(set(event_ids)) == 3  # same timestamp and employee, distinct by type


def test_termination_and_job_change_map_to_conf_with_the_new_fields():
    payload = field_based("Updated", ["employmentHistoryStatus", "terminationDate"], {
        "firstName": "Ada", "lastName": "Lovelace", "workEmail": "ada@example.com",
        "supervisor": "Grace Hopper", "supervisorEmail": "grace@example.com",
        "employmentHistoryStatus": "Terminated", "terminationDate": "2026-12-31"})
    assert conf_of(json.dumps(payload).encode()) == {
        "employee_id": "42", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
        "manager": "Grace Hopper", "manager_email": "grace@example.com", "termination_date": "2026-12-31",
        "event_type": TERMINATED}
    payload = field_based("Updated", ["jobTitle"], {"workEmail": "ada@example.com", "jobTitle": "Lead",
                                                     "department": "Research"})
    assert conf_of(json.dumps(payload).encode()) == {
        "employee_id": "42", "email": "ada@example.com", "job_title": "Lead", "department": "Research",
        "event_type": JOB_CHANGED}


# --- events without field values: marked for a read of the employee's record at dispatch ------------------------


def parsed(document: dict) -> tuple[str, dict | None]:
    [event] = adapter.parse(delivery(json.dumps(document).encode()))
    return event.event_type, event.document.get("lookup")


@pytest.mark.parametrize(("document", "event_type", "lookup"), [
    pytest.param({"employees": [{"action": "Deleted", "id": "1", "fields": {}}]}, "employee.deleted",
                 {"system": "bamboohr", "action": "employee.deleted", "reclassify": False}, id="field-based-deleted"),
    pytest.param({"employees": [{"action": "Updated", "id": "1", "changedFields": ["Job Title"]}]},
                 "employee.job_changed", {"system": "bamboohr", "action": "employee.updated", "reclassify": True},
                 id="field-based-update-without-fields"),
    pytest.param({"type": "employee.created", "data": {"employeeId": "1"}}, "employee.created",
                 {"system": "bamboohr", "action": "employee.created", "reclassify": False}, id="event-based-created"),
    pytest.param({"type": "employee.deleted", "data": {"employeeId": "1"}}, "employee.deleted",
                 {"system": "bamboohr", "action": "employee.deleted", "reclassify": False}, id="event-based-deleted"),
    pytest.param({"type": "employee.updated", "data": {"employeeId": "1", "changedFields": ["terminationDate"]}},
                 "employee.terminated", {"system": "bamboohr", "action": "employee.updated", "reclassify": True},
                 id="event-based-termination-date"),
    pytest.param({"type": "employee.updated", "data": {"employeeId": "1", "changedFields": ["status"]}},
                 "employee.updated", {"system": "bamboohr", "action": "employee.updated", "reclassify": True},
                 id="event-based-status-only-the-value-tells"),
    pytest.param({"type": "employee.updated", "data": {"employeeId": "1", "changedFields": ["homePhone"]}},
                 "employee.updated", None, id="event-based-other-fields-need-no-read"),
    pytest.param({"employees": [{"action": "Deleted", "id": "1", "fields": {"workEmail": "a@example.com"}}]},
                 "employee.deleted", None, id="posted-values-are-used-as-they-are"),
])
def test_events_without_values_are_marked_for_a_record_read(document, event_type, lookup):
    assert parsed(document) == (event_type, lookup)
