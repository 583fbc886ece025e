"""The relay in operation, against the real Kafka broker and PostgreSQL store: its /metrics (scraped from a relay
process and parsed with prometheus_client's own parser) and /healthz, and the purge of old sent outbox rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, text, update

from include.officeflow.events.outbox import add_event
from include.officeflow.store import OutboxEvent, session_scope
from plugins.officeflow_events.metrics import MetricsServer, RelayMetrics
from plugins.officeflow_events.relay import Relay, current_lag
from tests.harness.environment import REPO_ROOT
from tests.harness.kafka import KafkaBroker
from tests.harness.ports import free_port
from tests.harness.processes import stop_process
from tests.harness.waiting import wait_until


def write_events(area: str, count: int) -> list[str]:
    with session_scope() as session:
        return [add_event(session, area=area, action="happened", subject=f"emp-{n % 3}", data={"n": n})["id"]
                for n in range(count)]


def backdate(ids: list[str], *, sent_days_ago: float | None, created_days_ago: float) -> None:
    """Make rows look old: created (and sent, unless None) that many days ago."""
    now = datetime.now(UTC)
    sent_at = None if sent_days_ago is None else now - timedelta(days=sent_days_ago)
    with session_scope() as session:
        session.execute(update(OutboxEvent).where(OutboxEvent.event_id.in_(ids))
                        .values(created_at=now - timedelta(days=created_days_ago), sent_at=sent_at))


def remaining(ids: list[str]) -> set[str]:
    with session_scope() as session:
        return set(session.scalars(select(OutboxEvent.event_id).where(OutboxEvent.event_id.in_(ids))))


# --- purge ---------------------------------------------------------------------------------------------------


def test_purge_deletes_sent_rows_past_the_retention_in_batches_and_never_unsent_ones(clean_store, settings_env):
    settings_env.setenv("OFFICEFLOW_EVENTS_OUTBOX_RETENTION_DAYS", "7")
    settings_env.setenv("OFFICEFLOW_EVENTS_OUTBOX_PURGE_BATCH", "4")
    old_sent, recent_sent, old_unsent = write_events("p", 10), write_events("p", 3), write_events("p", 2)
    backdate(old_sent, sent_days_ago=8, created_days_ago=8)
    backdate(recent_sent, sent_days_ago=6.9, created_days_ago=20)  # created long ago, sent within the retention
    backdate(old_unsent, sent_days_ago=None, created_days_ago=30)  # waiting for Kafka for a month: kept

    metrics = RelayMetrics(current_lag)
    relay = Relay(metrics=metrics)
    assert relay.purge() == 10  # 4 + 4 + 2: three transactions
    assert remaining(old_sent) == set()
    assert remaining(recent_sent) == set(recent_sent) and remaining(old_unsent) == set(old_unsent)
    assert metrics.purged._value.get() == 10
    assert relay.purge() == 0  # nothing left to do
    assert current_lag().unsent == 2


def test_a_retention_of_a_day_purges_what_a_week_keeps(clean_store, settings_env):
    ids = write_events("p", 3)
    backdate(ids, sent_days_ago=2, created_days_ago=2)
    assert Relay().purge() == 0 and remaining(ids) == set(ids)
    settings_env.setenv("OFFICEFLOW_EVENTS_OUTBOX_RETENTION_DAYS", "1")
    assert Relay().purge() == 3 and remaining(ids) == set()


def test_purge_skips_rows_another_transaction_holds_instead_of_waiting(clean_store, store_url, settings_env):
    settings_env.setenv("OFFICEFLOW_EVENTS_OUTBOX_PURGE_BATCH", "2")
    ids = write_events("p", 5)
    backdate(ids, sent_days_ago=30, created_days_ago=30)
    engine = create_engine(store_url)
    try:
        with engine.connect() as other:  # another relay's purge (or an operator) holds one row
            other.execute(text("SELECT seq FROM outbox WHERE event_id = :id FOR UPDATE"), {"id": ids[0]})
            started = time.monotonic()
            assert Relay().purge() == 4
            assert time.monotonic() - started < 10
            other.rollback()
        assert remaining(ids) == {ids[0]}
        assert Relay().purge() == 1
    finally:
        engine.dispose()


# --- /healthz ------------------------------------------------------------------------------------------------


def get(url: str) -> tuple[int, str]:
    response = httpx.get(url, timeout=10)
    return response.status_code, response.text


def test_healthz_fails_when_the_relay_loop_stops_coming_round(clean_store):
    relay = Relay()
    server = MetricsServer(RelayMetrics(current_lag), relay.health, "127.0.0.1", 0).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        status, body = get(f"{base}/healthz")
        assert status == 200 and body.startswith("ok")
        relay.heartbeat -= 3600  # a pass stuck for an hour
        status, body = get(f"{base}/healthz")
        assert status == 503 and "relay loop silent" in body
        assert get(f"{base}/nothing")[0] == 404
    finally:
        server.stop()


# --- a relay process, scraped --------------------------------------------------------------------------------


def scrape(port: int) -> dict[str, float]:
    """Sample name -> value of the relay's /metrics, parsed by prometheus_client's parser."""
    status, body = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return {sample.name: sample.value for family in text_string_to_metric_families(body)
            for sample in family.samples if not sample.name.endswith("_created")}


@pytest.fixture
def relay_process(kafka_broker: KafkaBroker, clean_store, settings_env, monkeypatch, tmp_path) -> Iterator[int]:
    """``python -m plugins.officeflow_events.relay`` as ``./run.sh relay`` runs it; yields its metrics port."""
    port = free_port()
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps(
        {"conn_type": "kafka", "extra": {**kafka_broker.client_config(), "log_level": 3}}))
    for name, value in {"OFFICEFLOW_EVENTS_RELAY_METRICS_PORT": str(port), "OFFICEFLOW_EVENTS_TOPIC_PARTITIONS": "1",
                        "OFFICEFLOW_EVENTS_RELAY_DELIVERY_TIMEOUT_SECONDS": "2",
                        "OFFICEFLOW_EVENTS_RELAY_LEASE_SECONDS": "20", "OFFICEFLOW_EVENTS_RELAY_MAX_DELAY_SECONDS": "1",
                        "OFFICEFLOW_EVENTS_RELAY_POLL_SECONDS": "0.2",
                        "OFFICEFLOW_EVENTS_OUTBOX_PURGE_INTERVAL_SECONDS": "1"}.items():
        settings_env.setenv(name, value)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    log_path = tmp_path / "relay.log"
    log = log_path.open("wb")
    process = subprocess.Popen([sys.executable, "-m", "plugins.officeflow_events.relay"], cwd=REPO_ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def answering() -> bool:  # or exited (reported below)
            return process.poll() is not None or (_listening(port) and get(f"http://127.0.0.1:{port}/healthz")[0]
                                                  == 200)
        wait_until(answering, timeout=60, what="the relay's /healthz")
        assert process.poll() is None, log_path.read_text()[-3000:]
        yield port
    finally:
        stop_process(process, timeout=20)
        log.close()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_running_relay_exports_its_lag_and_counts_and_purges_old_rows(relay_process: int,
                                                                        kafka_broker: KafkaBroker):
    port = relay_process
    area = f"m{uuid.uuid4().hex[:8]}"
    metrics = scrape(port)
    assert metrics["officeflow_outbox_lag_up"] == 1
    assert metrics["officeflow_outbox_unsent_events"] == 0
    assert metrics["officeflow_outbox_oldest_unsent_age_seconds"] == 0
    assert metrics["officeflow_events_relay_published_total"] == 0

    ids = write_events(area, 25)
    wait_until(lambda: scrape(port)["officeflow_events_relay_published_total"] == 25, timeout=60,
               what="25 events published", interval=0.5)
    metrics = scrape(port)
    assert metrics["officeflow_outbox_unsent_events"] == 0
    assert metrics["officeflow_events_relay_delivery_failures_total"] == 0
    assert time.time() - metrics["officeflow_events_relay_last_pass_timestamp_seconds"] < 30
    assert len(kafka_broker.consume(f"officeflow.events.{area}", expected=25)) == 25

    # Kafka away: the lag grows and the failures count, the relay stays healthy (a restart would not help)
    kafka_broker.stop_broker()
    waiting = write_events(area, 5)
    def behind() -> bool:
        seen = scrape(port)
        return seen["officeflow_events_relay_delivery_failures_total"] >= 5 and seen[
            "officeflow_outbox_unsent_events"] == 5
    wait_until(behind, timeout=60, what="failed deliveries and a lag of 5", interval=0.5)
    assert scrape(port)["officeflow_outbox_oldest_unsent_age_seconds"] > 0
    assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200

    kafka_broker.restart()
    wait_until(lambda: scrape(port)["officeflow_outbox_unsent_events"] == 0, timeout=90, what="the lag back to 0",
               interval=0.5)
    assert scrape(port)["officeflow_events_relay_published_total"] == 30
    assert remaining(ids + waiting) == set(ids + waiting)  # sent today: kept for the retention

    # the first 25 a week and a day later: the relay's next purge (every second here) deletes them
    backdate(ids, sent_days_ago=8, created_days_ago=8)
    wait_until(lambda: scrape(port)["officeflow_outbox_purged_total"] == 25, timeout=30, what="25 rows purged",
               interval=0.5)
    assert remaining(ids + waiting) == set(waiting)
