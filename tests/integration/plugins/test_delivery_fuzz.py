"""Property-based fuzzing of the delivery pipeline (``POST /webhooks/{endpoint_id}``) in-process.

Targets: a created generic (Standard Webhooks) endpoint and the built-in ``/webhooks/bamboohr`` one.

1. Unverified deliveries (random bodies, missing/garbage/forged signature headers, random content types
   and timestamps) are answered 401/413/415 - never 2xx, never 5xx - in the error shape with a
   correlationId, and no inbox row is ever stored.
2. Correctly signed random JSON objects are answered 202, 400 or 422 only, and what is stored matches.

Inputs that once crashed the gateway (5xx) are pinned by explicit regression tests at the end, so
they stay reproducible rather than left to the properties' luck: timestamps beyond float range, huge
integers, NaN/Infinity, deep nesting, over-long ids, awkward form keys, NUL and lone surrogates.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from include.officeflow.store import AuditLog, WebhookEvent, session_scope
from plugins.officeflow_gateway.adapters import bamboohr, generic
from tests.harness.endpoints import (
    Env,
    bamboohr_headers,
    create_endpoint,
    delivery_url,
    generic_headers,
    workday_headers,
)
from tests.harness.environment import BAMBOOHR_TEST_KEY
from tests.harness.gateway_checks import assert_error

# The dispatcher thread (starting runs for earlier examples) uses the global `random` while Hypothesis
# generates the next example; Hypothesis blames the strategies for it. They use no `random`.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")

MAX_BODY = 4096  # OFFICEFLOW_WEBHOOK_MAX_BODY_BYTES for property 1, so "huge-ish" bodies reach 413
WINDOW = 300  # the default replay window
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ACCEPTED_TYPES = {"generic": {"application/json"},
                  "bamboohr": {"application/json", "application/x-www-form-urlencoded"}}
CODES = {400: "invalid_payload", 401: "invalid_signature", 413: "payload_too_large",
         415: "unsupported_media_type", 422: "unmappable_event"}


@pytest.fixture
def small_body_limit(settings_env):
    overrides = Env(settings_env)
    overrides.set("OFFICEFLOW_WEBHOOK_MAX_BODY_BYTES", str(MAX_BODY))
    yield
    overrides.restore()


@pytest.fixture
def generic_endpoint(client, admin) -> dict[str, Any]:
    return create_endpoint(client, admin, rate_limit_per_minute=1_000_000,
                           event_types=["employee.created", "employee.updated"])


def count(model: Any, *where: Any) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def check_error_shape(response) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "code", "correlationId"}
    assert error["message"] and error["code"] == CODES.get(response.status_code, error["code"])
    assert error["correlationId"] and error["correlationId"] == response.headers["X-Correlation-ID"]
    return error


# --- strategies ------------------------------------------------------------------------------------

printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
latin1 = st.characters(min_codepoint=0x01, max_codepoint=0xFF, exclude_characters="\r\n")
# Raw header octets (bytes are sent as is; str header values must be ASCII for the client).
garbage_header = st.one_of(st.text(printable, max_size=120), st.text(latin1, max_size=60).map(
    lambda s: s.encode("latin-1")))

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6)


def encode(document: Any, ensure_ascii: bool = True) -> bytes:
    return json.dumps(document, ensure_ascii=ensure_ascii).encode()


bodies = st.one_of(
    st.binary(max_size=512),
    st.builds(encode, json_values, st.booleans()),
    st.builds(encode, json_objects, st.booleans()),
    st.sampled_from([b"", b"{}", b"[]", b"null", b'{"employees": [ oops', b"\xff\xfe{\x00}\x00",
                     b"employees%5B0%5D%5Bid%5D=1&employees%5B0%5D%5Baction%5D=Created"]),
    st.binary(min_size=2048, max_size=6144),  # huge-ish: some above MAX_BODY
    st.builds(lambda n: b'{"pad": "' + b"x" * n + b'"}', st.integers(3000, 6000)),
)
content_types = st.one_of(  # about half of them acceptable, so most deliveries reach verification
    st.none(),
    st.just("application/json"),
    st.sampled_from(["application/json; charset=utf-8", " Application/JSON ;x=y", "application/x-www-form-urlencoded"]),
    st.sampled_from(["application/json", "application/json; charset=utf-8", " Application/JSON ;x=y",
                     "application/x-www-form-urlencoded", "text/plain", "text/xml", "multipart/form-data",
                     "application/jsonx", "", ";application/json", "*/*"]),
    st.text(printable, max_size=40),
)
# ("offset", n): now + n at send time; ("raw", text): the header value as is; None: no header.
timestamps = st.one_of(
    st.none(),
    st.tuples(st.just("offset"), st.integers(-120, 120)),
    st.tuples(st.just("offset"), st.integers(WINDOW + 60, 10**12).flatmap(lambda n: st.sampled_from([n, -n]))),
    st.tuples(st.just("raw"), st.integers(-(10**18), 10**18).map(str)),
    st.tuples(st.just("raw"), st.text("0123456789", min_size=1, max_size=300)),  # below float overflow
    st.tuples(st.just("raw"), st.floats(allow_nan=True).map(str)),
    st.tuples(st.just("raw"), st.sampled_from(["", " ", "now", "1e9", "0x10", "-0", "+1", "1_000", "١٢٣"])),
    st.tuples(st.just("raw"), st.text(printable, max_size=30)),
)
# How the signature header is made; only "right_key_stale" uses the right key (and a stale timestamp).
signature_modes = st.sampled_from(["missing", "garbage", "wrong_key", "other_body", "other_id",
                                   "right_key_stale"])
correlation_ids = st.one_of(st.none(), st.text(printable, max_size=80), st.from_regex(r"[A-Za-z0-9-]{1,64}",
                                                                                       fullmatch=True))


def resolve_timestamp(spec: tuple[str, Any] | None) -> str | bytes | None:
    if spec is None:
        return None
    kind, value = spec
    if kind == "offset":
        return str(int(time.time()) + value)
    return value if value.isascii() else value.encode()


def forged_headers(target: str, secret: str, body: bytes, mode: str, timestamp: str | bytes | None,
                   msg_id: str | bytes | None, garbage: str | bytes, stale_by: int) -> dict[str, str | bytes]:
    """Headers that must not verify: every mode lacks the right key, the right body or a fresh timestamp."""
    if mode == "right_key_stale":
        timestamp = str(int(time.time()) + stale_by)
    stamp = timestamp if isinstance(timestamp, str) else str(int(time.time()))
    headers: dict[str, str | bytes] = {}
    signature: str | bytes | None
    if mode == "missing":
        signature = None
    elif mode == "garbage":
        signature = garbage
    elif target == "generic":
        text_id = msg_id.strip() if isinstance(msg_id, str) and msg_id.strip() else "msg_fuzz"
        key, signed_id, signed_body = {
            "wrong_key": (generic.generate_secret(), text_id, body),
            "other_body": (secret, text_id, body + b" "),
            "other_id": (secret, text_id + "x", body),
            "right_key_stale": (secret, text_id, body),
        }[mode]
        try:
            signature = generic.sign(key, signed_id, int(stamp.strip()), signed_body)
        except (ValueError, OverflowError, OSError):  # body not UTF-8 / timestamp unusable: well-formed junk
            signature = generic.sign(generic.generate_secret(), signed_id, int(time.time()), b"{}")
        if mode == "right_key_stale" and not isinstance(msg_id, str):
            msg_id = text_id
    else:
        key, signed_stamp, signed_body = {
            "wrong_key": ("not-the-key-0123456789", stamp.strip(), body),
            "other_body": (secret, stamp.strip(), body + b" "),
            "other_id": (secret, stamp.strip() + "0", body),  # signed for another timestamp
            "right_key_stale": (secret, stamp.strip(), body),
        }[mode]
        signature = bamboohr.sign(signed_body, signed_stamp, key)
    names = ((generic.ID_HEADER, generic.TIMESTAMP_HEADER, generic.SIGNATURE_HEADER) if target == "generic"
             else (None, bamboohr.TIMESTAMP_HEADER, bamboohr.SIGNATURE_HEADER))
    for name, value in zip(names, (msg_id, timestamp, signature), strict=True):
        if name is not None and value is not None:
            headers[name] = value
    return headers


def normalised_content_type(value: str | None) -> str:
    return (value if value is not None else "application/json").split(";")[0].strip().lower()


# --- property 1: unverified deliveries ---------------------------------------------------------------


@FUZZ
@given(target=st.sampled_from(["generic", "bamboohr"]), body=bodies, content_type=content_types,
       timestamp=timestamps, mode=signature_modes, cid=correlation_ids,
       msg_id=st.one_of(st.none(), st.text(printable, max_size=80), garbage_header), garbage=garbage_header,
       stale_by=st.integers(WINDOW + 60, 10**9).flatmap(lambda n: st.sampled_from([n, -n])))
def test_unverified_deliveries_are_refused_in_the_error_shape_and_store_nothing(
        client, sender, small_body_limit, generic_endpoint, target, body, content_type, timestamp, mode, cid, msg_id,
        garbage, stale_by):
    url, secret = ((delivery_url(generic_endpoint), generic_endpoint["secret"]) if target == "generic"
                   else ("/webhooks/bamboohr", BAMBOOHR_TEST_KEY))
    headers = forged_headers(target, secret, body, mode, resolve_timestamp(timestamp), msg_id, garbage, stale_by)
    if content_type is not None:
        headers["Content-Type"] = content_type
    if cid is not None:
        headers["X-Correlation-ID"] = cid
    rejected_before = count(AuditLog, AuditLog.action == "webhook.rejected")

    response = sender.post(url, content=body, headers=headers)

    if len(body) > MAX_BODY:
        expected = 413
    elif normalised_content_type(content_type) not in ACCEPTED_TYPES[target]:
        expected = 415
    else:
        expected = 401
    event(f"{target} {response.status_code}" + (f" {mode}" if expected == 401 else ""))
    assert response.status_code == expected, (response.status_code, response.text)
    error = check_error_shape(response)
    if cid is not None and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", cid):  # kept (docs/observability.md)
        assert error["correlationId"] == cid
    else:
        uuid.UUID(error["correlationId"])  # a fresh one
    assert count(WebhookEvent) == 0
    assert count(AuditLog, AuditLog.action == "webhook.rejected") == rejected_before + (expected == 401)


# --- property 2: correctly signed random JSON objects ------------------------------------------------

# Values that become webhook_events.event_type / provider_event_id carry no NUL and no lone surrogate
# (both pinned below as bugs); elsewhere in documents they are fine.
no_nul = st.characters(codec="utf-8", exclude_characters="\x00")
short_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**12), 10**12),
                          st.floats(allow_nan=False, allow_infinity=False), st.text(no_nul, max_size=40))
emails = st.one_of(st.emails(), st.text(max_size=30))
names = st.text(st.characters(categories=["L", "Zs", "Pd"]), min_size=1, max_size=30)
generic_documents = st.one_of(
    json_objects.filter(lambda d: not {"type", "event_type"} & set(d)),  # event type "event": ignored
    st.fixed_dictionaries({"type": st.just("employee.created"), "data": st.fixed_dictionaries(  # valid hires
        {"id": st.text(max_size=20), "first_name": names, "last_name": names, "email": st.emails()},
        optional={"extra": json_values})}),
    st.fixed_dictionaries({"type": st.one_of(st.sampled_from(["employee.created", "employee.updated"]),
                                             short_scalars, st.text(no_nul, min_size=120, max_size=140)),
                           "data": st.one_of(json_values, st.fixed_dictionaries(
                               {"id": short_scalars, "first_name": short_scalars, "email": emails},
                               optional={"last_name": short_scalars, "extra": json_values}))},
                          optional={"event_type": short_scalars}),
)
bamboohr_entries = st.fixed_dictionaries(
    {"id": short_scalars, "action": st.one_of(st.sampled_from(["Created", "Updated", "Deleted"]), short_scalars)},
    optional={"fields": st.one_of(json_values, st.fixed_dictionaries(
        {"firstName": short_scalars, "workEmail": emails}, optional={"lastName": short_scalars})),
        "changedFields": json_values, "timestamp": short_scalars})
valid_bamboohr_hires = st.fixed_dictionaries({"employees": st.lists(st.fixed_dictionaries(
    {"id": st.text(no_nul, max_size=20), "action": st.just("Created"),
     "fields": st.fixed_dictionaries({"firstName": names, "lastName": names, "workEmail": st.emails()},
                                     optional={"department": st.text(max_size=30)})},
    optional={"timestamp": st.text(no_nul, max_size=30)}), min_size=1, max_size=3)})
bamboohr_documents = st.one_of(
    valid_bamboohr_hires,
    json_objects.filter(lambda d: not {"employees", "type"} & set(d)),  # neither shape: 400
    st.fixed_dictionaries({"employees": st.one_of(st.lists(bamboohr_entries, max_size=3), json_values)}),
    st.fixed_dictionaries({"type": st.one_of(st.just("employee.created"), st.text(no_nul, max_size=40)),
                           "data": st.one_of(json_values, st.fixed_dictionaries(
                               {"employeeId": short_scalars},
                               optional={"fields": json_values, "companyId": short_scalars}))},
                          optional={"timestamp": short_scalars}),
)
message_ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=300)


signed_deliveries = st.one_of(
    st.tuples(st.just("generic"), generic_documents, message_ids, st.just(False)),
    st.tuples(st.just("bamboohr"), bamboohr_documents, st.just(""), st.booleans()),  # True: form-encoded
)


@FUZZ
@given(delivery=signed_deliveries, ensure_ascii=st.booleans())
def test_correctly_signed_json_objects_get_202_400_or_422_only(
        client, sender, generic_endpoint, delivery, ensure_ascii):
    target, document, msg_id, form = delivery
    body = encode(document, ensure_ascii)
    if target == "generic":
        msg_id = f"{msg_id}-{uuid.uuid4().hex[:8]}"  # new per example: no duplicate of an earlier one
        headers = generic_headers(generic_endpoint["secret"], body, msg_id=msg_id)
        url, where = delivery_url(generic_endpoint), (WebhookEvent.provider_event_id == msg_id,)
    else:
        if form:  # BambooHR also posts form-encoded: one "payload" field holding the JSON
            body = urlencode({"payload": body.decode()}).encode()
        headers = bamboohr_headers(BAMBOOHR_TEST_KEY, body)
        if form:
            headers["Content-Type"] = bamboohr.FORM
        url, where = "/webhooks/bamboohr", ()
    stored_before = count(WebhookEvent, *where)

    response = sender.post(url, content=body, headers=headers)

    event(f"{target}{' form' if form else ''} {response.status_code} "
          f"{response.json().get('status', '') if response.status_code == 202 else ''}")
    assert response.status_code in (202, 400, 422), (response.status_code, response.text)
    if response.status_code != 202:
        check_error_shape(response)
    stored_after = count(WebhookEvent, *where)
    if response.status_code == 400:
        assert stored_after == stored_before  # a malformed payload stores nothing
    else:
        assert stored_after >= 1
        outcome = response.json()
        if response.status_code == 202:
            assert outcome["status"] in ("pending", "triggered", "ignored", "rejected")
            assert outcome["events"] and outcome["events"][0]["event_id"]
            assert outcome["status"] != "rejected" or len(outcome["events"]) > 1
    if target == "generic" and response.status_code != 400:
        with session_scope() as session:
            stored = session.scalars(select(WebhookEvent).where(*where)).one()
        assert stored.endpoint_id == generic_endpoint["id"]
        raw_type = document.get("type")
        raw_type = document.get("event_type") if raw_type is None else raw_type
        if (raw_type.strip() if isinstance(raw_type, str) else raw_type) not in ("employee.created",
                                                                                  "employee.updated"):
            assert stored.status == "ignored"
        if response.status_code == 422:
            assert stored.status == "rejected" and stored.error


# --- inputs that crash the gateway today -------------------------------------------------------------


def test_fuzz_setup_sends_what_the_gateway_accepts(client, sender, generic_endpoint):
    """Guard for the properties: the strategies' happy path really is accepted (not all 401/400)."""
    body = json.dumps({"type": "employee.created", "data": {"id": "1", "first_name": "Ada", "last_name": "Lovelace",
                                                            "email": "ada@example.com"}}).encode()
    response = sender.post(delivery_url(generic_endpoint), content=body,
                           headers=generic_headers(generic_endpoint["secret"], body))
    assert response.status_code == 202, response.text
    entry = {"id": "7", "action": "Created",
             "fields": {"firstName": "Ada", "lastName": "Lovelace", "workEmail": "ada@example.com"}}
    body = json.dumps({"employees": [entry]}).encode()
    response = sender.post("/webhooks/bamboohr", content=body, headers=bamboohr_headers(BAMBOOHR_TEST_KEY, body))
    assert response.status_code == 202, response.text


def test_bamboohr_timestamp_beyond_float_range_is_401(client, sender):
    body = b"{}"
    headers = {"Content-Type": "application/json", bamboohr.TIMESTAMP_HEADER: "9" * 400,
               bamboohr.SIGNATURE_HEADER: "00"}
    assert_error(sender.post("/webhooks/bamboohr", content=body, headers=headers), 401, "invalid_signature")
    assert count(WebhookEvent) == 0


@pytest.mark.parametrize("digits", [400, 5000])
def test_generic_timestamp_beyond_float_range_is_401(client, sender, generic_endpoint, digits):
    body = b"{}"
    headers = {"Content-Type": "application/json", generic.ID_HEADER: "msg_1",
               generic.TIMESTAMP_HEADER: "9" * digits, generic.SIGNATURE_HEADER: "v1,AAAA"}
    response = sender.post(delivery_url(generic_endpoint), content=body, headers=headers)
    assert_error(response, 401, "invalid_signature")
    assert count(WebhookEvent) == 0


@pytest.mark.parametrize("target", ["generic", "bamboohr"])
def test_signed_body_with_a_huge_integer_is_400(client, sender, generic_endpoint, target):
    body = b'{"type": "employee.created", "n": ' + b"1" * 5000 + b"}"
    if target == "generic":
        response = sender.post(delivery_url(generic_endpoint), content=body,
                               headers=generic_headers(generic_endpoint["secret"], body))
    else:
        response = sender.post("/webhooks/bamboohr", content=body, headers=bamboohr_headers(BAMBOOHR_TEST_KEY, body))
    assert_error(response, 400, "invalid_payload")
    assert count(WebhookEvent) == 0


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_signed_generic_body_with_nan_is_400(client, sender, generic_endpoint, literal):
    body = b'{"type": "employee.created", "data": {"score": ' + literal + b"}}"
    response = sender.post(delivery_url(generic_endpoint), content=body,
                           headers=generic_headers(generic_endpoint["secret"], body))
    assert_error(response, 400, "invalid_payload")
    assert count(WebhookEvent) == 0


def test_signed_bamboohr_deeply_nested_body_is_400(client, sender):
    body = b'{"employees": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = sender.post("/webhooks/bamboohr", content=body, headers=bamboohr_headers(BAMBOOHR_TEST_KEY, body))
    assert_error(response, 400, "invalid_payload")
    assert count(WebhookEvent) == 0


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"employees": [{"id": "1", "action": "X" * 200}]}, id="long-action"),
        pytest.param({"employees": [{"id": "1" * 300, "action": "Created"}]}, id="long-employee-id"),
        pytest.param({"type": "employee." + "x" * 200, "data": {"employeeId": "1"}}, id="long-type"),
        pytest.param({"type": "employee.created", "timestamp": "t" * 300, "data": {"employeeId": "1"}},
                     id="long-timestamp"),
    ],
)
def test_signed_bamboohr_event_with_oversized_ids_is_400(client, sender, document):
    body = json.dumps(document).encode()
    response = sender.post("/webhooks/bamboohr", content=body, headers=bamboohr_headers(BAMBOOHR_TEST_KEY, body))
    assert_error(response, 400, "invalid_payload")
    assert count(WebhookEvent) == 0


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(b"employees[0][id]=5&employees[0][action]=Updated&employees[0][changedFields][0]=firstName",
                     id="trailing-list-index"),
        pytest.param(b"a=1&a[b]=2", id="scalar-then-nested"),
    ],
)
def test_signed_bamboohr_form_body_is_never_5xx(client, sender, form):
    headers = bamboohr_headers(BAMBOOHR_TEST_KEY, form, **{"Content-Type": bamboohr.FORM})
    response = sender.post("/webhooks/bamboohr", content=form, headers=headers)
    assert response.status_code in (202, 400), response.text


@pytest.mark.parametrize(
    ("target", "document"),
    [
        pytest.param("generic", {"type": "employee.\u0000created"}, id="generic-type"),
        pytest.param("bamboohr", {"employees": [{"id": "1\u00002", "action": "Created"}]}, id="bamboohr-id"),
        pytest.param("bamboohr", {"type": "employee.created\u0000", "data": {"employeeId": "1"}},
                     id="bamboohr-type"),
        pytest.param("workday", {"eventId": "WD\u00001", "eventType": "Hire"}, id="workday-id"),
    ],
)
def test_signed_event_with_a_nul_in_its_type_or_id_is_400(client, sender, admin, generic_endpoint, target, document):
    body = json.dumps(document).encode()
    if target == "generic":
        response = sender.post(delivery_url(generic_endpoint), content=body,
                               headers=generic_headers(generic_endpoint["secret"], body))
    elif target == "bamboohr":
        response = sender.post("/webhooks/bamboohr", content=body, headers=bamboohr_headers(BAMBOOHR_TEST_KEY, body))
    else:
        workday = create_endpoint(client, admin, adapter="workday")
        response = sender.post(delivery_url(workday), content=body, headers=workday_headers(workday["secret"]))
    assert_error(response, 400, "invalid_payload")
    assert count(WebhookEvent) == 0


@pytest.mark.parametrize(
    ("target", "body"),
    [
        pytest.param("generic", b'{"type": "employee.\\ud800"}', id="generic-type"),
        pytest.param("bamboohr", b'{"employees": [{"id": "\\ud800", "action": "Created", '
                     b'"fields": {"firstName": "Ada", "workEmail": "ada@example.com"}}]}', id="bamboohr-id"),
    ],
)
def test_signed_body_with_a_lone_surrogate_is_400(client, sender, generic_endpoint, target, body):
    if target == "generic":
        response = sender.post(delivery_url(generic_endpoint), content=body,
                               headers=generic_headers(generic_endpoint["secret"], body))
    else:
        response = sender.post("/webhooks/bamboohr", content=body, headers=bamboohr_headers(BAMBOOHR_TEST_KEY, body))
    assert_error(response, 400, "invalid_payload")
    assert count(WebhookEvent) == 0
