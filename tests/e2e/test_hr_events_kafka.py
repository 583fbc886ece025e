"""HR events in from Kafka, end to end: a real Apache Kafka broker (tests/harness/kafka.py) and Airflow's own
processes (api-server, scheduler, dag-processor, triggerer) with OFFICEFLOW_HR_EVENTS_TOPIC set. A message on the
topic is read by the triggerer's AssetWatcher and starts employee_onboarding through the hr_events_from_kafka DAG;
the same message again starts nothing more; a malformed one is skipped and counted; one the workflow's params refuse
is recorded as rejected. employee_onboarding is paused, so its runs are created and wait: only their start is
under test here (the workflow itself is tested from webhooks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from sqlalchemy import select

from include.officeflow.inbox import run_id_for
from include.officeflow.store import WebhookEvent, migrate, session_scope
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.environment import REPO_ROOT
from tests.harness.kafka import KafkaBroker

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]  # its own platform and broker start first

TOPIC = "officeflow.hr.events"
ENDPOINT = f"kafka:{TOPIC}"


@pytest.fixture(scope="module")
def broker(kafka_session_broker: KafkaBroker) -> KafkaBroker:
    """The session's broker (tests/conftest.py), as the integration tests use it."""
    return kafka_session_broker


@pytest.fixture(scope="module")
def store(postgres) -> str:
    """A store of this platform's own: the package's platform runs beside it with its own dispatcher, which would
    start this test's pending events on its own Airflow (one store serves one Airflow deployment)."""
    url = postgres.create_database(f"officeflow_kafka_{uuid.uuid4().hex[:6]}")
    migrate(url)
    return url


@pytest.fixture(scope="module")
def kafka_env(broker: KafkaBroker, store: str) -> dict[str, str]:
    return {"OFFICEFLOW_DB_URL": store, "OFFICEFLOW_HR_EVENTS_TOPIC": TOPIC,
            "OFFICEFLOW_HR_EVENTS_TOPIC_PARTITIONS": "2", "OFFICEFLOW_HR_EVENTS_ORGANIZATION_ID": "acme",
            "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps({"conn_type": "kafka", "extra": {
                **broker.client_config(), "group.id": "officeflow-hr-events", "auto.offset.reset": "earliest",
                "enable.auto.commit": "false"}})}


@pytest.fixture(scope="module")
def kafka_platform(airflow_db, postgres, store, smtp, kafka_env) -> Iterator[AirflowPlatform]:
    """The platform with the HR events watcher configured (a platform of its own: the package's has no Kafka)."""
    airflow_url = postgres.create_database(f"airflow_kafka_{uuid.uuid4().hex[:6]}", template="airflow_template")
    running = AirflowPlatform({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_url, **kafka_env}, smtp_port=smtp.port)
    try:
        running.start()
        running.wait_for_dag("hr_events_from_kafka")
        for dag_id in ("employee_onboarding", "employee_offboarding"):  # their runs are created, and wait
            running.wait_for_dag(dag_id)  # parsed (the dag-processor reads the files in no set order)
            paused = running.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": True})
            assert paused.status_code == 200, paused.text
        yield running
    finally:
        running.stop()


def publish(broker: KafkaBroker, *values: bytes) -> None:
    producer = Producer(broker.client_config())
    for value in values:
        producer.produce(TOPIC, value=value, key=b"e2e")
    assert producer.flush(10) == 0


def hr_event(event_id: str, **fields: Any) -> bytes:
    return json.dumps({"specversion": "1.0", "id": event_id, "source": "/hr/e2e", "type": "employee.created",
                       "data": {"employee_id": event_id, "fields": {"firstName": "Grace", "lastName": "Hopper",
                                                                     "workEmail": "grace@example.com", **fields}}}
                      ).encode()


def inbox(store: str) -> dict[str, WebhookEvent]:
    with session_scope(store) as session:
        rows = session.scalars(select(WebhookEvent).where(WebhookEvent.endpoint_id == ENDPOINT)).all()
        return {row.provider_event_id: row for row in rows}


def wait_for(check: Any, what: str, platform: AirflowPlatform, timeout: float = 240, store: str | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1)
    rows = {key: (row.status, row.error) for key, row in inbox(store).items()} if store else {}
    raise AssertionError(f"{what} not seen after {timeout}s; inbox: {rows}\n{platform.logs_tail(60)}")


def test_hr_events_on_kafka_start_workflows_once_and_bad_ones_are_skipped(kafka_platform, broker, kafka_env, store):
    created = subprocess.run([sys.executable, "-m", "operators.hooks.hr_events", "create-topic"], cwd=REPO_ROOT,
                             env={**os.environ, **kafka_env}, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout.splitlines()[-1]) == {"topic": TOPIC, "partitions": 2, "replication": 1}

    good = hr_event("e2e-hr-1")
    publish(broker, b"{not json", good, good, hr_event("e2e-hr-2", firstName=""))

    run_id = run_id_for(ENDPOINT, "e2e-hr-1")
    run = wait_for(lambda: (r := kafka_platform.api("GET", f"/api/v2/dags/employee_onboarding/dagRuns/{run_id}"))
                   .status_code == 200 and r.json(), "the onboarding run", kafka_platform, store=store)
    assert {k: run["conf"].get(k) for k in ("employee_id", "first_name", "last_name", "email", "source",
                                            "organization_id")} == {
        "employee_id": "e2e-hr-1", "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com",
        "source": "kafka", "organization_id": "acme"}

    # The message without a first name: onboarding's params refuse it (as the REST API would), so no run; the inbox
    # records why. The malformed one is counted where the operator reads the skips.
    rows = wait_for(lambda: (rows := inbox(store)) and rows.get("e2e-hr-2") and rows["e2e-hr-2"].status == "rejected"
                    and rows["e2e-hr-1"].status == "triggered" and rows, "the inbox outcomes", kafka_platform,
                    store=store)
    assert "first_name" in rows["e2e-hr-2"].error, rows["e2e-hr-2"].error
    malformed = [row for key, row in rows.items() if key.startswith("@")]
    assert [(row.status, row.event_type) for row in malformed] == [("rejected", "malformed")]
    assert "not valid JSON" in malformed[0].error
    assert set(rows) == {"e2e-hr-1", "e2e-hr-2", malformed[0].provider_event_id}  # the duplicate: one row

    skipped = subprocess.run([sys.executable, "-m", "operators.hooks.hr_events", "skipped"], cwd=REPO_ROOT,
                             env={**os.environ, **kafka_env}, capture_output=True, text=True, timeout=120)
    assert json.loads(skipped.stdout.splitlines()[-1]) == {"topic": TOPIC, "rejected": 2, "ignored": 0}

    runs = kafka_platform.api("GET", "/api/v2/dags/employee_onboarding/dagRuns").json()["dag_runs"]
    assert [r["dag_run_id"] for r in runs] == [run_id]  # the same message twice: one run
    watcher_runs = kafka_platform.api("GET", "/api/v2/dags/hr_events_from_kafka/dagRuns").json()
    assert watcher_runs["total_entries"] >= 1
    assert all(r["run_type"] == "asset_triggered" for r in watcher_runs["dag_runs"])
