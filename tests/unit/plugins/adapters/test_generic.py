"""Standard Webhooks adapter: signatures, rotation, replay window, secrets and payload parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from plugins.officeflow_gateway.adapters import get_adapter
from plugins.officeflow_gateway.adapters.base import Delivery, PayloadError, VerificationError
from plugins.officeflow_gateway.adapters.generic import StandardWebhooksAdapter, generate_secret, sign

# The example secret of the Standard Webhooks specification.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_" + base64.b64encode(b"previous-key-0123456789abcdef").decode()
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
BODY = json.dumps({"type": "employee.created", "data": {"id": "E-1", "email": "ada@example.com"}}).encode()

adapter = StandardWebhooksAdapter()


def delivery(body: bytes = BODY, *, msg_id: str = MSG_ID, timestamp: int | None = None,
             signature: str | None = None, secret: str = SECRET, headers: dict[str, str] | None = None,
             received_at: float | None = None) -> Delivery:
    """A delivery signed with ``secret`` unless ``signature`` or full ``headers`` are given."""
    now = time.time() if received_at is None else received_at
    if headers is None:
        ts = int(now) if timestamp is None else timestamp
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(secret, msg_id, ts, body) if signature is None else signature,
        }
    return Delivery(body=body, headers=headers, content_type="application/json", client_ip="192.0.2.1",
                    received_at=now)


def verify(d: Delivery, secrets: list[str] | None = None, window_seconds: int = 300) -> None:
    adapter.verify(d, [SECRET] if secrets is None else secrets, {}, window_seconds=window_seconds)


def headers_of(d: Delivery) -> dict[str, str]:
    return dict(d.headers)


# --- sign / generate_secret ---------------------------------------------------------------------


def test_registry_returns_the_generic_adapter():
    found = get_adapter("generic")
    assert isinstance(found, StandardWebhooksAdapter)
    assert found.name == "generic"
    assert found.content_types == ("application/json",)
    assert found.default_mapping == {}


def test_sign_matches_an_independent_hmac_computation():
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{MSG_ID}.1700000000.".encode() + BODY, hashlib.sha256).digest()
    assert sign(SECRET, MSG_ID, 1_700_000_000, BODY) == "v1," + base64.b64encode(digest).decode()


def test_sign_matches_the_specification_example():
    # The reference vector of the Standard Webhooks test suites.
    body = b'{"test": 2432232314}'
    signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == signature
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
               "webhook-signature": signature}
    received = Delivery(body=body, headers=headers, content_type="application/json", client_ip=None,
                        received_at=1614265330.0)
    verify(received)
    with pytest.raises(VerificationError, match="replay window"):
        verify(Delivery(body=body, headers=headers, content_type="application/json", client_ip=None,
                        received_at=time.time()))


def test_deliveries_signed_with_sign_verify_with_the_reference_library():
    d = delivery()
    assert Webhook(SECRET).verify(d.body, headers_of(d)) == json.loads(BODY)


def test_generate_secret_is_a_usable_random_whsec_secret():
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_") and second.startswith("whsec_")
    assert first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) >= 24
    d = delivery(secret=first)
    verify(d, secrets=[first])
    with pytest.raises(VerificationError):
        verify(d, secrets=[second])


# --- verification -------------------------------------------------------------------------------


def test_valid_signature_passes():
    d = delivery()
    verify(d)  # raises on failure
    with pytest.raises(VerificationError):  # and the same delivery is not accepted for any secret
        verify(d, secrets=[OLD_SECRET])


def test_header_names_are_case_insensitive():
    d = delivery()
    verify(delivery(headers={k.title(): v for k, v in d.headers.items()}, received_at=d.received_at))


def test_unprefixed_base64_secret_is_accepted_like_the_library_does():
    raw = SECRET.removeprefix("whsec_")
    verify(delivery(), secrets=[raw])


def test_tampered_body_is_rejected():
    d = delivery()
    tampered = Delivery(body=BODY.replace(b"ada@", b"eve@"), headers=d.headers, content_type=d.content_type,
                        client_ip=d.client_ip, received_at=d.received_at)
    with pytest.raises(VerificationError, match="no webhook-signature matches"):
        verify(tampered)


@pytest.mark.parametrize("field", ["webhook-id", "webhook-timestamp"])
def test_signature_binds_the_id_and_the_timestamp(field):
    d = delivery()
    headers = headers_of(d)
    headers[field] = "msg_other" if field == "webhook-id" else str(int(headers[field]) - 1)
    with pytest.raises(VerificationError, match="no webhook-signature matches"):
        verify(delivery(headers=headers, received_at=d.received_at))


def test_wrong_secret_is_rejected():
    with pytest.raises(VerificationError, match="no webhook-signature matches"):
        verify(delivery(secret=generate_secret()))


def test_rotation_accepts_old_and_new_during_overlap_and_only_new_afterwards():
    old_signed, new_signed = delivery(secret=OLD_SECRET), delivery(secret=SECRET)
    verify(old_signed, secrets=[SECRET, OLD_SECRET])
    verify(new_signed, secrets=[SECRET, OLD_SECRET])
    verify(new_signed, secrets=[SECRET])
    with pytest.raises(VerificationError, match="no webhook-signature matches"):
        verify(old_signed, secrets=[SECRET])


def test_any_of_several_signatures_in_one_header_may_match():
    now = int(time.time())
    good = sign(SECRET, MSG_ID, now, BODY)
    other = sign(generate_secret(), MSG_ID, now, BODY)
    for header in (f"{other} {good}", f"{good} {other}", f"v1a,c29tZXRoaW5n {good}", f"garbage {good}",
                   f"v1,!!! {good}", f"  {other}   {good}  "):
        verify(delivery(timestamp=now, signature=header))
    with pytest.raises(VerificationError, match="no webhook-signature matches"):
        verify(delivery(timestamp=now, signature=f"{other} {other}"))


def test_signature_of_the_old_secret_listed_by_the_sender_verifies_against_the_new_secret_list():
    now = int(time.time())
    header = f"{sign(OLD_SECRET, MSG_ID, now, BODY)} {sign(SECRET, MSG_ID, now, BODY)}"
    verify(delivery(timestamp=now, signature=header), secrets=[SECRET])
    verify(delivery(timestamp=now, signature=header), secrets=[OLD_SECRET])


@pytest.mark.parametrize("offset", [-301, -3600, 301, 3600])
def test_stale_and_future_timestamps_are_rejected(offset):
    now = time.time()
    d = delivery(timestamp=int(now) + offset, received_at=now)
    with pytest.raises(VerificationError, match="outside the 300s replay window") as raised:
        verify(d)
    assert ("future" in str(raised.value)) == (offset > 0)


def test_window_edges_are_inclusive():
    now = 1_700_000_000.0
    verify(delivery(timestamp=1_700_000_000 - 300, received_at=now))
    verify(delivery(timestamp=1_700_000_000 + 300, received_at=now))


def test_a_smaller_window_is_honoured():
    now = time.time()
    d = delivery(timestamp=int(now) - 60, received_at=now)
    verify(d, window_seconds=300)
    with pytest.raises(VerificationError, match="outside the 30s replay window"):
        verify(d, window_seconds=30)


def test_a_larger_window_is_honoured_beyond_the_libraries_fixed_five_minutes():
    now = time.time()
    d = delivery(timestamp=int(now) - 1800, received_at=now)
    verify(d, window_seconds=3600)
    with pytest.raises(VerificationError, match="replay window"):
        verify(d, window_seconds=300)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_rejected(missing):
    d = delivery()
    headers = {k: v for k, v in d.headers.items() if k != missing}
    with pytest.raises(VerificationError, match=f"missing {missing} header"):
        verify(delivery(headers=headers, received_at=d.received_at))


def test_no_headers_at_all_names_all_three():
    with pytest.raises(VerificationError, match="missing webhook-id, webhook-timestamp, webhook-signature headers"):
        verify(delivery(headers={}))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("webhook-signature", "garbage", "no well-formed v1 signature"),
        ("webhook-signature", "v1,!!!notbase64", "no well-formed v1 signature"),
        ("webhook-signature", "v1,", "no webhook-signature matches"),
        ("webhook-signature", "v2,c29tZXRoaW5n", "no well-formed v1 signature"),
        ("webhook-signature", "v1,c29tZXRoaW5n", "no webhook-signature matches"),
        ("webhook-signature", "   ", "missing webhook-signature"),
        ("webhook-timestamp", "soon", "not an integer Unix timestamp"),
        ("webhook-timestamp", "1700000000.5", "not an integer Unix timestamp"),
        ("webhook-timestamp", "-5", "not an integer Unix timestamp"),
        ("webhook-timestamp", "\u0661\u0667" + "\u0660" * 8, "not an integer Unix timestamp"),  # Arabic-Indic digits
        ("webhook-timestamp", "9" * 40, "not an integer Unix timestamp"),
        ("webhook-timestamp", "9" * 12, "replay window"),
        ("webhook-id", "  ", "missing webhook-id"),
    ],
)
def test_malformed_headers_are_verification_errors(field, value, message):
    d = delivery()
    headers = {**headers_of(d), field: value}
    with pytest.raises(VerificationError, match=message):
        verify(delivery(headers=headers, received_at=d.received_at))


def test_non_utf8_body_is_a_verification_error():
    d = delivery()
    with pytest.raises(VerificationError, match="not UTF-8"):
        verify(Delivery(body=b"\xff\xfe", headers=d.headers, content_type=d.content_type, client_ip=None,
                        received_at=d.received_at))


@pytest.mark.parametrize("bad_secret", ["whsec_a", "", "whsec_", "whsec_!!!!"])
def test_malformed_secret_is_a_verification_error(bad_secret):
    with pytest.raises(VerificationError, match="no usable whsec_ signing secret"):
        verify(delivery(), secrets=[bad_secret])


def test_no_secrets_is_a_verification_error():
    with pytest.raises(VerificationError, match="no usable whsec_ signing secret"):
        verify(delivery(), secrets=[])


def test_a_malformed_secret_does_not_block_a_valid_one_in_rotation():
    verify(delivery(), secrets=["whsec_a", SECRET])
    with pytest.raises(VerificationError, match="no webhook-signature matches"):
        verify(delivery(), secrets=["whsec_a", OLD_SECRET])


def test_sign_rejects_a_malformed_secret_with_value_error():
    with pytest.raises(ValueError, match="malformed webhook secret"):
        sign("whsec_a", MSG_ID, 1_700_000_000, BODY)


# --- parsing ------------------------------------------------------------------------------------


def parse(body: bytes, msg_id: str = MSG_ID) -> list:
    return adapter.parse(delivery(body, headers={"webhook-id": msg_id}))


def test_parse_uses_the_webhook_id_and_the_body_type():
    [event] = adapter.parse(delivery())
    assert event.provider_event_id == MSG_ID
    assert event.event_type == "employee.created"
    assert event.document == json.loads(BODY)


@pytest.mark.parametrize(
    ("document", "expected_type"),
    [
        ({"type": "invoice.paid"}, "invoice.paid"),
        ({"event_type": "user.deleted"}, "user.deleted"),
        ({"type": "a", "event_type": "b"}, "a"),
        ({"type": None, "event_type": "b"}, "b"),
        ({"data": {"x": 1}}, "event"),
        ({}, "event"),
    ],
)
def test_event_type_variants(document: dict[str, Any], expected_type: str):
    [event] = parse(json.dumps(document).encode())
    assert event.event_type == expected_type
    assert event.document == document


def test_provider_event_id_is_stable_for_a_redelivery_and_distinct_between_messages():
    assert parse(BODY)[0].provider_event_id == parse(BODY)[0].provider_event_id == MSG_ID
    # A redelivery keeps its webhook-id even though the timestamp and signature are new.
    first = delivery(timestamp=int(time.time()) - 10)
    again = delivery(timestamp=int(time.time()))
    assert first.headers["webhook-signature"] != again.headers["webhook-signature"]
    assert adapter.parse(first)[0].provider_event_id == adapter.parse(again)[0].provider_event_id
    assert parse(BODY, msg_id="msg_other")[0].provider_event_id != MSG_ID


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (BODY, {}, "missing webhook-id"),
        (BODY, {"webhook-id": " "}, "missing webhook-id"),
        (BODY, {"webhook-id": "m" * 256}, "longer than 255"),
        (b"{not json", {"webhook-id": MSG_ID}, "not valid JSON"),
        (b"\xff\xfe", {"webhook-id": MSG_ID}, "not valid JSON"),
        (b"", {"webhook-id": MSG_ID}, "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, {"webhook-id": MSG_ID}, "not valid JSON"),
        (b'[{"type": "a"}]', {"webhook-id": MSG_ID}, "must be a JSON object"),
        (b"42", {"webhook-id": MSG_ID}, "must be a JSON object"),
        (b'{"type": 5}', {"webhook-id": MSG_ID}, "must be a non-empty string"),
        (b'{"type": ""}', {"webhook-id": MSG_ID}, "must be a non-empty string"),
        (b'{"event_type": ["a"]}', {"webhook-id": MSG_ID}, "must be a non-empty string"),
        (b'{"type": "' + b"t" * 129 + b'"}', {"webhook-id": MSG_ID}, "longer than 128"),
    ],
)
def test_malformed_payloads_are_payload_errors(body, headers, message):
    with pytest.raises(PayloadError, match=message):
        adapter.parse(delivery(body, headers=headers))
