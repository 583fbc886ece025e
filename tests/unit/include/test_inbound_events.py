"""The checks of an HR event message from Kafka (include/officeflow/inbound_events.py): what passes, and every way a
message is refused, with the reason an operator reads in the log and the inbox."""

from __future__ import annotations

import json
import re

import pytest

from include.officeflow.inbound_events import (
    ASSET_ENDPOINT,
    HrEvent,
    MessageError,
    endpoint_id,
    parse_document,
    parse_message,
)

GOOD = {"specversion": "1.0", "id": "hr-1", "source": "/hr/bamboohr", "type": "employee.created",
        "time": "2026-12-02T12:00:00Z", "correlationid": "cid-1",
        "data": {"employee_id": "1042", "fields": {"firstName": "Ada", "lastName": "Lovelace"}}}


def encoded(document: object) -> bytes:
    return json.dumps(document).encode()


def test_a_good_message_becomes_an_event_and_its_payload():
    event = parse_message(encoded(GOOD))
    assert event == HrEvent(id="hr-1", type="employee.created", source="/hr/bamboohr", data=GOOD["data"],
                            time="2026-12-02T12:00:00Z", correlation_id="cid-1")
    payload = event.as_payload(topic="hr", partition=0, offset=7, key="1042")
    assert payload == {**GOOD, "kafka": {"topic": "hr", "partition": 0, "offset": 7, "key": "1042"}}
    assert parse_document(payload) == event  # the DAG checks the asset event's payload the same way


def test_the_inbox_endpoint_is_the_topic_or_the_asset_without_one(settings_env):
    settings_env.delenv("OFFICEFLOW_HR_EVENTS_TOPIC", raising=False)
    assert endpoint_id() == ASSET_ENDPOINT == "asset:officeflow_hr_events"  # events posted through the REST API
    settings_env.setenv("OFFICEFLOW_HR_EVENTS_TOPIC", "hr.events")
    assert endpoint_id() == "kafka:hr.events"
    assert endpoint_id("other") == "kafka:other"


def test_optional_attributes_may_be_left_out():
    document = {k: v for k, v in GOOD.items() if k not in ("time", "correlationid")}
    event = parse_message(encoded(document))
    assert (event.time, event.correlation_id) == (None, None)
    assert "time" not in event.as_payload() and "kafka" not in event.as_payload()


@pytest.mark.parametrize(("value", "reason"), [
    (None, "no value (a tombstone)"),
    (b"not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b'{"specversion": "1.0", "x": NaN}', "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (encoded({**GOOD, "specversion": "0.3"}), "'specversion' must be \"1.0\""),
    (encoded({k: v for k, v in GOOD.items() if k != "specversion"}), "'specversion' must be"),
    (encoded({k: v for k, v in GOOD.items() if k != "id"}), "'id' must be a non-empty string"),
    (encoded({**GOOD, "id": "  "}), "'id' must be a non-empty string"),
    (encoded({**GOOD, "id": 42}), "'id' must be a non-empty string"),
    (encoded({**GOOD, "id": "x" * 256}), "'id' is longer than 255"),
    (encoded({**GOOD, "type": ""}), "'type' must be a non-empty string"),
    (encoded({**GOOD, "type": "t" * 129}), "'type' is longer than 128"),
    (encoded({k: v for k, v in GOOD.items() if k != "source"}), "'source' must be"),
    (encoded({**GOOD, "correlationid": "c" * 65}), "'correlationid' is longer than 64"),
    (encoded({**GOOD, "time": 1700000000}), "'time' must be a non-empty string"),
    (encoded({**GOOD, "data": None}), "'data' must be a non-empty JSON object"),
    (encoded({**GOOD, "data": {}}), "'data' must be a non-empty JSON object"),
    (encoded({**GOOD, "data": ["a"]}), "'data' must be a non-empty JSON object"),
    (encoded({**GOOD, "data": {"employee_id": "a\x00b"}}), "NUL characters"),
    (b'{"specversion": "1.0", "id": "\\ud800", "type": "t", "source": "s", "data": {"a": 1}}', "not valid JSON text"),
])
def test_malformed_messages_are_refused_with_the_reason(value, reason):
    with pytest.raises(MessageError, match=re.escape(reason)):
        parse_message(value)


def test_a_message_larger_than_the_limit_is_refused(settings_env):
    settings_env.setenv("OFFICEFLOW_WEBHOOK_MAX_BODY_BYTES", "2048")
    big = encoded({**GOOD, "data": {"employee_id": "1", "notes": "n" * 2048}})
    with pytest.raises(MessageError, match="larger than 2048 bytes"):
        parse_message(big)
    assert parse_message(encoded(GOOD)).id == "hr-1"


def test_a_payload_that_is_not_a_mapping_is_refused():
    for payload in (None, "text", 3, [GOOD]):
        with pytest.raises(MessageError, match="must be a JSON object"):
            parse_document(payload)
