"""HR events in from Kafka (include/officeflow/inbound_events.py, operators/hooks/hr_events.py) against the harness's
real Apache Kafka broker and the PostgreSQL store: the Kafka provider's trigger with OfficeFlow's apply
function skips and counts malformed and filtered messages and fires on a good one, also with the store down; the
DAG's recording maps as the webhooks do and stops a redelivered event in the inbox; a refusal is recorded; the
topic is created from the settings by the documented command."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.sdk.api.datamodels._generated import AssetResponse
from airflow.sdk.execution_time.comms import AssetEventResult
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from sqlalchemy import select

from include.officeflow import inbound_events as inbound
from include.officeflow.inbox import run_id_for
from include.officeflow.store import AuditLog, OutboxEvent, WebhookEvent, session_scope
from tests.harness.docs import code_blocks
from tests.harness.environment import REPO_ROOT
from tests.harness.kafka import KafkaBroker

GOOD = {"specversion": "1.0", "source": "/hr/bamboohr", "type": "employee.created", "correlationid": "cid-kafka-1",
        "data": {"employee_id": "1042", "action": "employee.created",
                 "fields": {"firstName": "Ada", "lastName": "Lovelace", "workEmail": "ada@example.com",
                            "department": "Engineering", "hireDate": "2027-01-04", "organization_id": "evil"}}}


@pytest.fixture
def hr_topic(kafka_broker: KafkaBroker, clean_store, settings_env, monkeypatch) -> str:
    """A topic of its own, ``kafka_default`` as a consumer of the broker, the settings naming the topic."""
    topic = f"hr.events.{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic)
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps({"conn_type": "kafka", "extra": {
        **kafka_broker.client_config(), "group.id": "officeflow-hr-events", "auto.offset.reset": "earliest",
        "enable.auto.commit": "false"}}))
    settings_env.setenv("OFFICEFLOW_HR_EVENTS_TOPIC", topic)
    settings_env.setenv("OFFICEFLOW_HR_EVENTS_ORGANIZATION_ID", "acme")
    return topic


def publish(broker: KafkaBroker, topic: str, *values: bytes | None) -> None:
    producer = Producer(broker.client_config())
    for value in values:
        producer.produce(topic, value=value, key=b"1042")
    assert producer.flush(10) == 0


def event(event_id: str, **changes: Any) -> dict[str, Any]:
    return {**GOOD, "id": event_id, **changes}


def first_trigger_event(topic: str, timeout: float = 60) -> Any:
    """Run the watcher's trigger (the DAG's: the Kafka provider's AwaitMessageTrigger with OfficeFlow's apply function)
    as the triggerer does, until it fires."""
    from airflow.providers.apache.kafka.triggers.await_message import AwaitMessageTrigger

    trigger = AwaitMessageTrigger(topics=[topic], kafka_config_id="kafka_default",
                                  apply_function="include.officeflow.inbound_events.apply_function",
                                  poll_interval=0.1, poll_timeout=0.5)

    async def run() -> Any:
        events = trigger.run()
        try:
            return await asyncio.wait_for(anext(events), timeout)
        finally:
            await events.aclose()
            await trigger.cleanup()

    return asyncio.run(run())


def inbox(topic: str) -> list[WebhookEvent]:
    with session_scope() as session:
        return list(session.scalars(select(WebhookEvent).where(WebhookEvent.endpoint_id == f"kafka:{topic}")
                                    .order_by(WebhookEvent.received_at)))


def test_the_watcher_skips_and_counts_bad_messages_and_fires_on_a_good_one(hr_topic: str, kafka_broker):
    publish(kafka_broker, hr_topic, b"not json", None, json.dumps({**GOOD, "specversion": "0.3", "id": "x"}).encode(),
            json.dumps(event("hr-upd-1", type="employee.updated")).encode(), json.dumps(event("hr-1")).encode())

    fired = first_trigger_event(hr_topic)

    assert fired.payload == {**event("hr-1"), "kafka": {"topic": hr_topic, "partition": 0, "offset": 4, "key": "1042"}}
    assert inbound.skipped() == {"rejected": 3, "ignored": 1}
    rows = {row.provider_event_id: row for row in inbox(hr_topic)}
    assert set(rows) == {"@0:0", "@0:1", "@0:2", "hr-upd-1"}  # malformed by position, the filtered one by its id
    assert rows["@0:0"].status == "rejected" and "not valid JSON" in rows["@0:0"].error
    assert rows["@0:0"].payload["document"] == {"kafka": {"topic": hr_topic, "partition": 0, "offset": 0},
                                                "preview": "not json"}
    assert "tombstone" in rows["@0:1"].error and "'specversion' must be" in rows["@0:2"].error
    ignored = rows["hr-upd-1"]
    assert (ignored.status, ignored.error) == ("ignored", "type 'employee.updated' starts no workflow")

    # The offsets are committed: the next run of the trigger goes on after the event it fired on.
    publish(kafka_broker, hr_topic, b"{}", json.dumps(event("hr-2")).encode())
    assert first_trigger_event(hr_topic).payload["id"] == "hr-2"
    assert inbound.skipped() == {"rejected": 4, "ignored": 1}


def test_the_watcher_survives_the_store_being_down(hr_topic: str, kafka_broker, settings_env, caplog):
    """The skip counter cannot be written: the message is still skipped (and logged), the watcher goes on."""
    settings_env.setenv("OFFICEFLOW_DB_URL", "postgresql+psycopg2://nobody@127.0.0.1:9/none?connect_timeout=1")
    publish(kafka_broker, hr_topic, b"\x00garbage", json.dumps(event("hr-3")).encode())

    assert first_trigger_event(hr_topic).payload["id"] == "hr-3"
    assert "HR event skipped" in caplog.text and "Could not record the skipped HR event" in caplog.text


def test_recording_maps_like_the_webhooks_and_stops_a_redelivered_event(hr_topic: str):
    payload = {**event("hr-10"), "kafka": {"topic": hr_topic, "partition": 0, "offset": 9, "key": "1042"}}

    run = inbound.record(payload)

    run_id = run_id_for(f"kafka:{hr_topic}", "hr-10")
    assert run is not None and (run["trigger_dag_id"], run["trigger_run_id"]) == ("employee_onboarding", run_id)
    assert run["conf"] == {"employee_id": "1042", "event_type": "employee.created", "first_name": "Ada",
                           "last_name": "Lovelace", "email": "ada@example.com", "department": "Engineering",
                           "start_date": "2027-01-04", "correlation_id": "cid-kafka-1", "source": "kafka",
                           "organization_id": "acme"}  # the configured tenant, never the message's
    assert "Ada Lovelace" in run["note"] and "Kafka event employee.created (hr-10)" in run["note"]

    assert inbound.record(payload) is None  # Kafka delivered it again: the inbox has it, nothing starts
    assert inbound.record({**payload, "kafka": {**payload["kafka"], "offset": 12}}) is None  # republished
    [row] = inbox(hr_topic)
    assert (row.provider_event_id, row.status, row.dag_run_id) == ("hr-10", "pending", run_id)
    with session_scope() as session:
        types = [e.type for e in session.scalars(select(OutboxEvent).where(OutboxEvent.subject == row.id))]
    assert types == ["com.officeflow.webhook.accepted"]  # once: a duplicate changes nothing


def test_recording_refuses_what_the_watcher_would_have_refused(hr_topic: str):
    """An asset event can also be posted through Airflow's REST API: its payload is checked the same way."""
    assert inbound.record({"id": "no-specversion", "data": {}, "kafka": {"partition": 0, "offset": 3}}) is None
    assert inbound.record(None) is None
    assert inbound.record(event("hr-11", type="employee.updated")) is None
    rows = inbox(hr_topic)
    assert [(r.provider_event_id, r.status) for r in rows[:2]] == [("@0:3", "rejected"), (rows[1].provider_event_id,
                                                                                          "rejected")]
    assert rows[1].provider_event_id.startswith("asset-event:")
    assert (rows[2].provider_event_id, rows[2].status) == ("hr-11", "ignored")
    assert inbound.skipped() == {"rejected": 2, "ignored": 1}


def asset_event(event_id: int, payload: Any) -> AssetEventResult:
    """An asset event as the DAG's task reads it (its inlet events, Airflow's execution API model)."""
    return AssetEventResult(id=event_id, timestamp=datetime.now(UTC), extra={"payload": payload}, created_dagruns=[],
                            asset=AssetResponse(name="officeflow_hr_events", uri="officeflow_hr_events",
                                                group="asset"))


def test_asset_events_read_by_two_runs_are_recorded_and_started_once(hr_topic: str):
    """A run reads the asset's events from its first triggering one on, so the next run may read some again (those
    that came while Airflow created the first): each is stored once and starts one run; a malformed payload posted
    through the REST API (no Kafka position) is kept once under its asset event's id."""
    first = [asset_event(1, event("hr-30")), asset_event(2, {"id": "posted", "data": {}})]
    second = [*first, asset_event(3, event("hr-31"))]

    started = inbound.record_asset_events(first)
    again = inbound.record_asset_events(second)

    assert [run["trigger_run_id"] for run in started] == [run_id_for(f"kafka:{hr_topic}", "hr-30")]
    assert [run["trigger_run_id"] for run in again] == [run_id_for(f"kafka:{hr_topic}", "hr-31")]
    assert [(row.provider_event_id, row.status) for row in inbox(hr_topic)] == [
        ("hr-30", "pending"), ("asset-event:2", "rejected"), ("hr-31", "pending")]


def test_a_started_run_and_a_refused_one_update_the_inbox(hr_topic: str):
    started = inbound.record(event("hr-20"))
    refused = inbound.record(event("hr-21", type="employee.terminated"))
    assert started is not None and refused is not None

    assert inbound.mark_triggered(started["trigger_run_id"]) is True
    assert inbound.mark_triggered(started["trigger_run_id"]) is False  # already done (by the dispatcher, say)
    reason = inbound.refusal(_refusal_error())
    assert reason == "the workflow refused the run: Invalid input for param first_name: None is not of type 'string'"
    assert inbound.mark_refused(refused["trigger_run_id"], reason) is True
    assert inbound.mark_refused(refused["trigger_run_id"], reason) is False

    rows = {row.provider_event_id: row for row in inbox(hr_topic)}
    assert (rows["hr-20"].status, rows["hr-20"].error) == ("triggered", None)
    assert (rows["hr-21"].status, rows["hr-21"].error) == ("rejected", reason)
    assert inbound.skipped() == {"rejected": 1, "ignored": 0}
    with session_scope() as session:
        audited = session.scalars(select(AuditLog).where(AuditLog.action == "workflow.triggered")).all()
        assert [(a.resource_id, a.actor) for a in audited] == [(started["trigger_run_id"], f"kafka:{hr_topic}")]
        types = [e.type for e in session.scalars(select(OutboxEvent).where(OutboxEvent.subject == rows["hr-21"].id)
                                                 .order_by(OutboxEvent.seq))]
    assert types == ["com.officeflow.webhook.accepted", "com.officeflow.webhook.rejected"]


def _refusal_error() -> BaseException:
    """What the task SDK raises in a TriggerDagRunOperator when the execution API answers 400."""
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse

    return AirflowRuntimeError(ErrorResponse(error=ErrorType.API_SERVER_ERROR, detail={
        "status_code": 400, "message": "Client error",
        "detail": {"detail": {"reason": "value_error",
                              "message": "Invalid input for param first_name: None is not of type 'string'"}}}))


def test_transient_trigger_failures_are_no_refusal():
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse

    assert inbound.refusal(None) is None
    assert inbound.refusal(RuntimeError("boom")) is None
    assert inbound.refusal(AirflowRuntimeError(ErrorResponse(error=ErrorType.API_SERVER_ERROR, detail={
        "status_code": 503, "message": "unavailable", "detail": None}))) is None


def test_the_documented_commands_create_the_topic_and_print_the_skips(hr_topic: str, kafka_broker, settings_env):
    topic = f"hr.created.{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "OFFICEFLOW_HR_EVENTS_TOPIC": topic, "OFFICEFLOW_HR_EVENTS_TOPIC_PARTITIONS": "4"}
    command = [sys.executable, "-m", "operators.hooks.hr_events"]

    created = subprocess.run([*command, "create-topic"], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=120)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout.splitlines()[-1]) == {"topic": topic, "partitions": 4, "replication": 1}
    metadata = AdminClient(kafka_broker.client_config()).list_topics(topic, timeout=10)
    assert len(metadata.topics[topic].partitions) == 4
    again = subprocess.run([*command, "create-topic"], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr  # an existing topic is left as it is

    inbound.record(event("hr-30", type="employee.updated"))
    skipped = subprocess.run([*command, "skipped"], env={**os.environ, "OFFICEFLOW_HR_EVENTS_TOPIC": hr_topic},
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(skipped.stdout.splitlines()[-1]) == {"topic": hr_topic, "rejected": 0, "ignored": 1}

    without = {name: value for name, value in os.environ.items() if name != "OFFICEFLOW_HR_EVENTS_TOPIC"}
    unset = subprocess.run([*command, "create-topic"], env=without,
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert unset.returncode != 0 and "OFFICEFLOW_HR_EVENTS_TOPIC is not set" in unset.stderr


def test_the_documented_message_starts_an_onboarding(hr_topic: str, kafka_broker):
    """docs/events.md's example message, published as it stands, fires the watcher and becomes an onboarding."""
    [documented] = [block for block in code_blocks("docs/events.md", "json") if '"bamboohr-4711-created"' in block]
    publish(kafka_broker, hr_topic, documented.encode())

    fired = first_trigger_event(hr_topic)
    assert fired.payload["id"] == "bamboohr-4711-created" and fired.payload["kafka"]["offset"] == 0

    run = inbound.record(fired.payload)
    assert run is not None and run["trigger_dag_id"] == "employee_onboarding"
    assert {key: run["conf"][key] for key in ("employee_id", "first_name", "last_name", "email", "start_date",
                                              "correlation_id")} == {
        "employee_id": "4711", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
        "start_date": "2027-01-04", "correlation_id": "req-8f2c"}
