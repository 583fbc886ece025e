"""GET /officeflow/health, /health/live and /health/ready against real, unreachable and hung dependencies."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from sandbox.email.smtp_sink import SmtpSink
from tests.harness.ports import free_port
from tests.harness.silent_server import SilentServer


@pytest.fixture
def client(airflow_db, store_url):
    from plugins.officeflow_gateway.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


def checks(response) -> dict[str, dict]:
    return {c["name"]: c for c in response.json()["checks"]}


def test_healthy_when_every_dependency_answers(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy" and body["timestamp"].endswith("Z")
    assert {name: c["status"] for name, c in checks(response).items()} == {
        "officeflow_store": "pass", "airflow_metadata_db": "pass", "bamboohr_webhook_key": "pass"}
    from include.officeflow.store.db import head_revision

    assert f"schema at {head_revision()}" in checks(response)["officeflow_store"]["message"]


def test_store_down_is_503_and_names_the_failed_check(client, settings_env):
    settings_env.setenv("OFFICEFLOW_DB_URL", f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/x")
    for path in ("/health", "/health/ready"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.json()["status"] == "unhealthy"
        store = checks(response)["officeflow_store"]
        assert store["status"] == "fail" and store["required"] is True and store["message"]
    assert client.get("/health/live").status_code == 200


def test_unmigrated_store_is_not_ready(client, settings_env, postgres):
    settings_env.setenv("OFFICEFLOW_DB_URL", postgres.create_database("officeflow_unmigrated"))
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert "run ./run.sh migrate" in checks(response)["officeflow_store"]["message"]


def test_missing_optional_configuration_is_degraded_not_down(client, settings_env):
    settings_env.delenv("OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY")
    response = client.get("/health")
    assert response.status_code == 200 and response.json()["status"] == "degraded"
    assert checks(response)["bamboohr_webhook_key"]["status"] == "warn"
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and "bamboohr_webhook_key" not in checks(ready)


def test_live_checks_nothing(client):
    response = client.get("/health/live")
    assert response.status_code == 200 and response.json()["checks"] == []


# --- optional dependencies: checked only when configured, each within the timeout ----------------------------


def test_every_configured_dependency_is_checked(client, settings_env, monkeypatch, redis_server, kafka_broker,
                                                s3_plain, tmp_path):
    settings_env.setenv("OFFICEFLOW_REDIS_URL", redis_server.url)
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps(
        {"conn_type": "kafka", "extra": {**kafka_broker.client_config(), "group.id": "health"}}))
    with SmtpSink(tmp_path / "mailbox") as sink:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(
            {"conn_type": "smtp", "host": sink.host, "port": sink.port, "extra": {"disable_ssl": True}}))
        response = client.get("/health")
    assert response.status_code == 200, response.text
    assert {name: c["status"] for name, c in checks(response).items()} == {
        "officeflow_store": "pass", "airflow_metadata_db": "pass", "bamboohr_webhook_key": "pass",
        "redis": "pass", "kafka": "pass", "s3_documents": "pass", "smtp": "pass"}
    assert response.json()["status"] == "healthy"
    assert s3_plain.bucket in checks(response)["s3_documents"]["message"]
    assert all(not checks(response)[name]["required"] for name in ("redis", "kafka", "s3_documents", "smtp"))


def test_a_hung_dependency_cannot_hang_the_probe(client, settings_env, monkeypatch):
    """Redis, Kafka, S3 and SMTP all point at a server that accepts connections and never answers."""
    settings_env.setenv("OFFICEFLOW_HEALTH_TIMEOUT_SECONDS", "1")
    with SilentServer() as silent:
        settings_env.setenv("OFFICEFLOW_REDIS_URL", f"redis://:redis-pass-0815@127.0.0.1:{silent.port}/0")
        settings_env.setenv("OFFICEFLOW_DOCUMENTS_URL", "s3://officeflow-docs-plain/health")
        monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_S3", json.dumps(
            {"conn_type": "aws", "login": "minio", "password": "s3-pass-0815",
             "extra": {"endpoint_url": f"http://127.0.0.1:{silent.port}", "region_name": "us-east-1"}}))
        monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": f"127.0.0.1:{silent.port}"}}))
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(
            {"conn_type": "smtp", "host": "127.0.0.1", "port": silent.port, "password": "smtp-pass-0815",
             "extra": {"disable_ssl": True}}))
        started = time.monotonic()
        response = client.get("/health")
        elapsed = time.monotonic() - started
        ready = client.get("/health/ready")
    assert elapsed < 5, f"/health took {elapsed:.1f}s with a 1 s timeout"
    assert silent.accepted >= 3  # the checks did connect: they timed out waiting for an answer
    assert response.status_code == 200 and response.json()["status"] == "degraded", response.text
    found = checks(response)
    for name in ("redis", "kafka", "s3_documents", "smtp"):
        assert found[name]["status"] == "warn" and found[name]["message"], found[name]
    assert "no answer within 1s" in found["smtp"]["message"] or "timed out" in found["smtp"]["message"]
    assert "pass-0815" not in response.text
    assert ready.status_code == 200 and set(checks(ready)) == {"officeflow_store", "airflow_metadata_db"}


def test_unreachable_optional_dependency_is_degraded_not_down(client, settings_env):
    settings_env.setenv("OFFICEFLOW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    response = client.get("/health")
    assert response.status_code == 200 and response.json()["status"] == "degraded"
    redis_check = checks(response)["redis"]
    assert redis_check["status"] == "warn" and "refused" in redis_check["message"].lower()


def test_required_checks_run_before_the_optional_ones(settings_env, monkeypatch):
    """An optional check's client set-up (CPU under the GIL) must not push the store's check past the timeout."""
    from plugins.officeflow_gateway import health

    settings_env.setenv("OFFICEFLOW_HEALTH_TIMEOUT_SECONDS", "1")
    times: dict[str, float] = {}

    def required() -> str:
        time.sleep(0.3)
        times["required done"] = time.monotonic()
        return "ok"

    def optional() -> str:
        times["optional started"] = time.monotonic()
        return "ok"

    report = health._run([("optional", optional, False), ("store", required, True)], required_only=False)
    assert report.status == "healthy" and [c.name for c in report.checks] == ["store", "optional"]
    assert times["optional started"] >= times["required done"]
    assert [c.name for c in health._run([("optional", optional, False), ("store", required, True)], True).checks] \
        == ["store"]
