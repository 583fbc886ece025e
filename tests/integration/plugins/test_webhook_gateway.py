"""POST /officeflow/webhooks/bamboohr in-process, on a real PostgreSQL store and Airflow metadata DB, in both gateway
modes (api-server and edge)."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from include.officeflow.store import AuditLog, WebhookEvent, session_scope
from tests.harness.gateway import URL, hire_body, signed, wait_status
from tests.harness.gateway_checks import assert_error, dag_runs, events


@pytest.fixture(params=["api-server", "edge"])
def client(request, airflow_db, clean_store):
    """The delivery suite runs against both gateway modes: the app the api-server mounts at ``/officeflow`` and
    the standalone edge gateway's (plugins/officeflow_gateway/edge.py); paths are relative to ``/officeflow``."""
    from plugins.officeflow_gateway.app import create_app
    from plugins.officeflow_gateway.edge import create_delivery_app

    with TestClient(create_app() if request.param == "api-server" else create_delivery_app()) as test_client:
        yield test_client


def audit_actions() -> list[str]:
    with session_scope() as session:
        return [a.action for a in session.scalars(select(AuditLog).order_by(AuditLog.id))]


def new_employee() -> str:
    return str(uuid.uuid4().int % 10**9)


def test_signed_created_event_is_stored_and_starts_one_onboarding_run(client):
    body = hire_body(new_employee(), "grace@example.com")
    response = client.post(URL, content=body, headers=signed(body, **{"X-Correlation-ID": "trace-123"}))
    assert response.status_code == 202, response.text
    data = response.json()
    assert data["status"] == "pending" and data["correlationId"] == "trace-123"
    assert data["dag_run_id"].startswith("bamboohr__")
    event = wait_status(data["event_id"], "triggered")
    assert (event.id, event.dag_run_id, event.attempts) == (data["event_id"], data["dag_run_id"], 1)
    assert len(events()) == 1
    [(dag_id, _, conf, run_type)] = dag_runs(data["dag_run_id"])
    assert dag_id == "employee_onboarding" and str(run_type).endswith("manual")
    assert conf["email"] == "grace@example.com" and conf["first_name"] == "Ada"
    assert conf["correlation_id"] == "trace-123" and conf["source"] == "bamboohr"
    assert "workflow.triggered" in audit_actions()


def test_repeated_delivery_returns_the_same_run_and_starts_no_second_one(client):
    body = hire_body(new_employee())
    first = client.post(URL, content=body, headers=signed(body)).json()
    wait_status(first["event_id"], "triggered")
    time.sleep(1)  # BambooHR re-signs a redelivery with a new timestamp
    second = client.post(URL, content=body, headers=signed(body))
    assert second.status_code == 202
    assert second.json()["event_id"] == first["event_id"]
    assert second.json()["dag_run_id"] == first["dag_run_id"]
    assert second.json()["events"][0]["duplicate"] is True
    assert second.json()["status"] == "triggered"
    assert len(events()) == 1
    assert len(dag_runs(first["dag_run_id"])) == 1


def test_concurrent_duplicate_deliveries_make_exactly_one_event_and_run(client):
    body = hire_body(new_employee())
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda _: client.post(URL, content=body, headers=signed(body)), range(50)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["dag_run_id"] for r in responses}) == 1
    assert sum(not r.json()["events"][0]["duplicate"] for r in responses) == 1
    [event] = events()
    wait_status(event.id, "triggered")
    assert len(dag_runs(responses[0].json()["dag_run_id"])) == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda body: signed(body, key="wrong-key"), id="wrong-key"),
        pytest.param(lambda body: signed(body + b" "), id="signature-of-other-body"),
        pytest.param(lambda body: {"Content-Type": "application/json"}, id="no-signature"),
        pytest.param(lambda body: signed(body, timestamp=int(time.time()) - 301), id="stale"),
        pytest.param(lambda body: signed(body, timestamp=int(time.time()) + 3600), id="future"),
    ],
)
def test_unverified_deliveries_get_401_and_store_nothing(client, headers):
    body = hire_body(new_employee())
    response = client.post(URL, content=body, headers=headers(body))
    assert_error(response, 401, "invalid_signature")
    assert events() == []
    assert audit_actions() == ["webhook.rejected"]


def test_bad_request_does_not_lose_events_stored_before(client):
    body = hire_body(new_employee())
    assert client.post(URL, content=body, headers=signed(body)).status_code == 202
    forged = hire_body(new_employee())
    assert client.post(URL, content=forged, headers=signed(forged, key="x")).status_code == 401
    malformed = b'{"employees": [ oops'
    assert client.post(URL, content=malformed, headers=signed(malformed)).status_code == 400
    [kept] = events()
    assert kept.status in ("pending", "triggered") and kept.dag_run_id


def test_malformed_json_with_a_valid_signature_is_400(client):
    body = b'{"employees": [ oops'
    error = assert_error(client.post(URL, content=body, headers=signed(body)), 400, "invalid_payload")
    assert "not valid JSON" in error["message"]
    assert events() == []


def test_wrong_content_type_is_415(client):
    body = hire_body(new_employee())
    response = client.post(URL, content=body, headers=signed(body, **{"Content-Type": "text/xml"}))
    assert_error(response, 415, "unsupported_media_type")
    assert events() == []


def test_oversized_body_is_413(client, settings_env):
    settings_env.setenv("OFFICEFLOW_WEBHOOK_MAX_BODY_BYTES", "2048")
    body = json.dumps({"employees": [{"action": "Created", "id": "1", "pad": "x" * 4096}]}).encode()
    assert_error(client.post(URL, content=body, headers=signed(body)), 413, "payload_too_large")
    assert events() == []


def test_unmappable_created_event_is_stored_as_rejected_with_the_field(client):
    body = json.dumps({"employees": [{"action": "Created", "id": new_employee(),
                                      "fields": {"firstName": "No", "lastName": "Email"}}]}).encode()
    error = assert_error(client.post(URL, content=body, headers=signed(body)), 422, "unmappable_event")
    assert "email:" in error["message"]
    [event] = events()
    assert event.status == "rejected" and (event.error or "").startswith("email:") and event.dag_run_id is None


def test_events_without_a_workflow_are_acknowledged_as_ignored(client):
    body = json.dumps({"type": "employee.updated", "timestamp": "2026-11-01T10:00:00+0000",
                       "data": {"employeeId": new_employee(), "changedFields": ["firstName"]}}).encode()
    response = client.post(URL, content=body, headers=signed(body))
    assert response.status_code == 202
    assert response.json()["status"] == "ignored" and response.json()["dag_run_id"] is None
    assert [e.status for e in events()] == ["ignored"]


def test_unknown_dag_keeps_the_event_pending_for_the_dispatcher(client, settings_env):
    settings_env.setenv("OFFICEFLOW_ONBOARDING_DAG_ID", "not_deployed_yet")
    settings_env.setenv("OFFICEFLOW_DISPATCH_BASE_DELAY_SECONDS", "60")
    body = hire_body(new_employee())
    first = client.post(URL, content=body, headers=signed(body))
    assert first.status_code == 202  # stored: BambooHR must not retry, OfficeFlow owes the run
    assert first.json()["status"] == "pending"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not events()[0].attempts:
        time.sleep(0.1)
    [event] = events()
    assert event.status == "pending" and event.attempts == 1 and event.next_attempt_at is not None
    assert "not_deployed_yet" in (event.error or "")
    assert dag_runs(event.dag_run_id or "") == []


def test_unconfigured_builtin_endpoint_is_an_unknown_endpoint(client, settings_env):
    settings_env.delenv("OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY")
    body = hire_body(new_employee())
    assert_error(client.post(URL, content=body, headers=signed(body)), 404, "not_found")
    assert events() == []


def test_unknown_endpoint_is_404_in_the_error_shape(client):
    assert_error(client.post("/webhooks/nope", content=b"{}"), 404, "not_found")
    assert_error(client.get("/no/such/route"), 404, "not_found")


def test_event_count_matches_runs_created(client):
    bodies = [hire_body(new_employee()) for _ in range(3)]
    accepted = [client.post(URL, content=b, headers=signed(b)).json() for b in bodies]
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 3
    for item in accepted:
        wait_status(item["event_id"], "triggered")
        assert len(dag_runs(item["dag_run_id"])) == 1


def test_store_down_is_503_with_retry_after_so_the_sender_retries(client, settings_env):
    from tests.harness.ports import free_port

    settings_env.setenv("OFFICEFLOW_DB_URL", f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/x")
    body = hire_body(new_employee())
    response = client.post(URL, content=body, headers=signed(body))
    assert_error(response, 503, "store_unavailable")
    assert response.headers["Retry-After"] == "30"
    forged = client.post(URL, content=body, headers=signed(body, key="wrong"))
    assert_error(forged, 401, "invalid_signature")  # rejection does not depend on the audit trail


@pytest.mark.parametrize("backend", ["in_process", "redis"])
def test_rate_limit_answers_429_with_retry_after_and_stores_nothing(client, settings_env, request, backend):
    from plugins.officeflow_gateway.ratelimit import get_rate_limiter

    get_rate_limiter.cache_clear()  # full buckets: the other gateway mode's run of this test used the same ones
    if backend == "redis":
        import redis

        url = request.getfixturevalue("redis_server").url
        redis.Redis.from_url(url).flushdb()
        settings_env.setenv("REDIS_URL", url)
        # Connect once first, so a slow first connection on a loaded machine is not taken for an outage
        # (the limiter fails open then, by design).
        assert get_rate_limiter(url).acquire("warm-up", 1.0, 1).allowed
    settings_env.setenv("OFFICEFLOW_WEBHOOK_DEFAULT_RATE_LIMIT_PER_MINUTE", "3")
    bodies = [hire_body(new_employee()) for _ in range(5)]
    codes = [client.post(URL, content=b, headers=signed(b)) for b in bodies]
    assert [r.status_code for r in codes[:3]] == [202, 202, 202]
    limited = codes[3]
    assert_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 20
    assert codes[4].status_code == 429
    assert len(events()) == 3
