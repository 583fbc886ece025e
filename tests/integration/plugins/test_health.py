"""GET /officeflow/health, /health/live and /health/ready against real and unreachable databases."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.harness.ports import free_port


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
