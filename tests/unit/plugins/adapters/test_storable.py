"""check_storable: what the inbox cannot store faithfully is a PayloadError (400), whatever the encoder finds first."""

from __future__ import annotations

import math

import pytest

from plugins.officeflow_gateway.adapters.base import InboundEvent, PayloadError, check_storable, load_json


def event(document: object, provider_event_id: str = "evt-1", event_type: str = "employee.created") -> InboundEvent:
    return InboundEvent(provider_event_id=provider_event_id, event_type=event_type, document=document)  # type: ignore[arg-type]


@pytest.mark.parametrize("document", [
    {"id": "1", "firstName": "Ada", "note": None},
    {"id": "1", "fields": [None, 1.5, -0.0, 1e-7, 10**18, True, {"nested": [None]}]},
    {"id": "1", "name": "Zoë 名前 \u2028", "path": "C:\\temp\\u0041"},
])
def test_json_documents_with_nulls_floats_and_unicode_pass(document):
    check_storable(event(document))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_are_refused_even_beside_a_null(value):
    for document in ({"score": value}, {"score": value, "note": None}, {"list": [None, value]}):
        with pytest.raises(PayloadError, match="not valid JSON text"):
            check_storable(event(document))


def test_an_overflowing_number_in_a_body_is_refused():
    document = load_json(b'{"id": "1", "score": 1e999}')  # json.loads reads it as inf
    with pytest.raises(PayloadError, match="not valid JSON text"):
        check_storable(event(document))


@pytest.mark.parametrize("where", ["document", "provider_event_id", "event_type"])
def test_lone_surrogates_are_refused(where):
    fields = {"document": {"id": "1"}, "provider_event_id": "evt-1", "event_type": "employee.created"}
    fields[where] = {"id": "\ud800"} if where == "document" else "evt-\udfff"
    with pytest.raises(PayloadError, match="not valid JSON text"):
        check_storable(event(fields.pop("document"), **fields))


@pytest.mark.parametrize("document", [{"id": "a\x00b"}, {"a\x00": "1"}, {"list": ["ok", "\x00"]}])
def test_nul_characters_are_refused(document):
    with pytest.raises(PayloadError, match="NUL characters"):
        check_storable(event(document))


def test_nul_in_the_event_id_is_refused():
    with pytest.raises(PayloadError, match="NUL characters"):
        check_storable(event({"id": "1"}, provider_event_id="evt\x00"))


def test_values_json_cannot_hold_are_refused():
    with pytest.raises(PayloadError, match="not valid JSON text"):
        check_storable(event({"id": object()}))


def test_excessive_nesting_is_refused():
    document: list[object] = []
    inner = document
    for _ in range(5000):
        inner.append([])
        inner = inner[0]  # type: ignore[assignment]
    with pytest.raises(PayloadError, match="not valid JSON text"):
        check_storable(event({"deep": document}))


@pytest.mark.parametrize(("provider_event_id", "event_type", "message"), [
    ("", "employee.created", "event id"), ("x" * 256, "employee.created", "event id"),
    ("evt-1", "", "event type"), ("evt-1", "t" * 256, "event type"),
])
def test_ids_and_types_out_of_bounds_are_refused(provider_event_id, event_type, message):
    with pytest.raises(PayloadError, match=message):
        check_storable(event({"id": "1"}, provider_event_id=provider_event_id, event_type=event_type))
