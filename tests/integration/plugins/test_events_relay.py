"""The events relay against a real Apache Kafka broker (tests/harness/kafka.py) and the PostgreSQL store: outbox →
topic keyed by subject with CloudEvents valid against the spec's JSON schema; the broker stopped mid-stream →
events wait → every event delivered once; two relays at once → no id published twice."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import select

from include.officeflow.events.outbox import add_event
from include.officeflow.store import OutboxEvent, session_scope
from plugins.officeflow_events.relay import Relay, current_lag
from tests.harness.cloudevents_schema import schema_errors
from tests.harness.kafka import KafkaBroker
from tests.harness.waiting import wait_until

#: CloudEvents 1.0 attribute naming: lowercase a-z and 0-9, at most 20 characters.
_ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,20}$")


def assert_cloudevent(event: dict) -> None:
    """Valid against the CloudEvents 1.0 JSON schema (tests/harness/cloudevents_schema.py), and the spec's rules as
    they apply to OfficeFlow's events."""
    assert schema_errors(event) == [], event
    for required in ("id", "source", "specversion", "type"):
        assert isinstance(event.get(required), str) and event[required], f"{required} is required, non-empty"
    assert event["specversion"] == "1.0"
    assert re.fullmatch(r"com\.officeflow\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*", event["type"])
    assert all(_ATTRIBUTE_NAME.match(name) for name in event), sorted(event)
    assert datetime.fromisoformat(event["time"]).utcoffset() is not None  # RFC 3339 with an offset
    assert event["datacontenttype"] == "application/json" and isinstance(event["data"], dict)
    assert isinstance(event["subject"], str) and event["subject"]
    for extension in ("organizationid", "correlationid"):
        assert isinstance(event[extension], str)  # extension values: string here (the spec's String type)


@pytest.fixture
def relay_env(kafka_broker: KafkaBroker, clean_store, settings_env, monkeypatch) -> KafkaBroker:
    """The store empty, ``kafka_default`` pointing at the broker, short timeouts."""
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps(
        {"conn_type": "kafka", "extra": {**kafka_broker.client_config(), "log_level": 3}}))
    settings_env.setenv("OFFICEFLOW_EVENTS_TOPIC_PARTITIONS", "2")
    settings_env.setenv("OFFICEFLOW_EVENTS_RELAY_DELIVERY_TIMEOUT_SECONDS", "2")
    settings_env.setenv("OFFICEFLOW_EVENTS_RELAY_LEASE_SECONDS", "20")
    settings_env.setenv("OFFICEFLOW_EVENTS_RELAY_MAX_DELAY_SECONDS", "1")
    return kafka_broker


def new_area() -> str:
    return f"test{uuid.uuid4().hex[:8]}"  # a topic of its own per test


def write_events(area: str, count: int, subjects: tuple[str, ...] = ("s1",)) -> list[str]:
    ids = []
    with session_scope() as session:
        for n in range(count):
            subject = subjects[n % len(subjects)]
            ids.append(add_event(session, area=area, action="happened", subject=subject,
                                 data={"n": n, "employee_id": subject}, organization_id="acme",
                                 correlation_id=f"cid-{n}")["id"])
    return ids


def sent_flags(ids: list[str]) -> list[bool]:
    with session_scope() as session:
        rows = session.scalars(select(OutboxEvent).where(OutboxEvent.event_id.in_(ids))).all()
        return [row.sent_at is not None for row in rows]


def test_outbox_events_reach_their_topic_keyed_by_subject_in_order(relay_env: KafkaBroker):
    area = new_area()
    ids = write_events(area, 6, subjects=("emp-1", "emp-2"))
    relay = Relay()
    result = relay.run_once()
    assert (result.claimed, result.sent, result.failed) == (6, 6, 0)
    assert all(sent_flags(ids)) and current_lag().unsent == 0

    messages = relay_env.consume(f"officeflow.events.{area}", expected=6)
    assert len(messages) == 6
    events = [json.loads(m.value()) for m in messages]
    for message, event in zip(messages, events, strict=True):
        assert_cloudevent(event)
        assert message.key().decode() == event["subject"]
        assert dict(message.headers())["content-type"].startswith(b"application/cloudevents+json")
        assert event["type"] == f"com.officeflow.{area}.happened" and event["organizationid"] == "acme"
    assert sorted(e["id"] for e in events) == sorted(ids)
    for subject in ("emp-1", "emp-2"):  # one key, one partition: its events in the order written
        in_kafka = [e["data"]["n"] for e in events if e["subject"] == subject]
        assert in_kafka == sorted(in_kafka)
    assert len({m.partition() for m in messages if m.key() == b"emp-1"}) == 1

    from confluent_kafka.admin import AdminClient

    topic = AdminClient(relay_env.client_config()).list_topics(timeout=10).topics[f"officeflow.events.{area}"]
    assert len(topic.partitions) == 2  # OFFICEFLOW_EVENTS_TOPIC_PARTITIONS
    assert relay.run_once().claimed == 0  # sent rows are never claimed again


def test_events_wait_while_the_broker_is_down_and_all_arrive_once_it_is_back(relay_env: KafkaBroker):
    area = new_area()
    relay = Relay()
    first = write_events(area, 10)
    assert relay.run_once().sent == 10

    relay_env.stop_broker()
    second = write_events(area, 10)
    result = relay.run_once()
    assert (result.claimed, result.sent, result.failed) == (10, 0, 10) and result.errors
    lag = current_lag()
    assert lag.unsent == 10 and lag.oldest_unsent_age_seconds > 0
    with session_scope() as session:
        waiting = session.scalars(select(OutboxEvent).where(OutboxEvent.sent_at.is_(None))).all()
        assert {row.event_id for row in waiting} == set(second)
        assert all(row.last_error and row.attempts == 1 for row in waiting)
    assert relay.run_once().claimed == 0  # backing off: the rows are not due yet

    relay_env.restart()
    def drained() -> bool:
        relay.run_once()
        return current_lag().unsent == 0

    wait_until(drained, timeout=40, what="the outbox drained", interval=0.5)
    assert relay.failures == 0
    ids = Counter(json.loads(m.value())["id"] for m in relay_env.consume(f"officeflow.events.{area}", expected=20))
    assert set(ids) == set(first + second)  # none lost
    assert max(ids.values()) == 1  # none published twice


def test_two_relays_at_once_never_publish_an_event_twice(relay_env: KafkaBroker, settings_env):
    settings_env.setenv("OFFICEFLOW_EVENTS_RELAY_BATCH", "20")
    area = new_area()
    ids = write_events(area, 200, subjects=tuple(f"emp-{n}" for n in range(7)))
    relays = [Relay(relay_id="relay-a"), Relay(relay_id="relay-b")]
    claimed = {relay.relay_id: 0 for relay in relays}
    errors: list[BaseException] = []
    start = threading.Barrier(len(relays))

    def drain(relay: Relay) -> None:
        start.wait(10)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                result = relay.run_once()
                claimed[relay.relay_id] += result.claimed
                assert result.failed == 0, result.errors
                if result.claimed == 0 and current_lag().unsent == 0:
                    return
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(relay,)) for relay in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not errors, errors
    assert sum(claimed.values()) == 200 and all(claimed.values()), claimed  # both worked, no row claimed twice
    counted = Counter(json.loads(m.value())["id"] for m in relay_env.consume(f"officeflow.events.{area}",
                                                                             expected=200))
    assert set(counted) == set(ids) and max(counted.values()) == 1


def test_lag_is_printed_by_the_command(relay_env: KafkaBroker, capsys):
    from plugins.officeflow_events.relay import main

    write_events(new_area(), 3)
    main(["lag"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["unsent"] == 3 and printed["oldest_unsent_age_seconds"] >= 0
