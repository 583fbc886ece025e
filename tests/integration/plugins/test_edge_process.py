"""The standalone edge gateway as operators run it: ``python -m plugins.officeflow_gateway.edge`` with two uvicorn
workers on a real port, on the PostgreSQL store and Airflow DB. A sender sees what the api-server's gateway
answers: the same path, status codes, error shape and ids; every accepted event is stored once and gets its run."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.harness.gateway import URL, hire_body, signed, wait_status
from tests.harness.gateway_checks import assert_error, dag_runs, events
from tests.harness.ports import free_port
from tests.harness.processes import stop_process
from tests.harness.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def edge_process(airflow_db, store_url, tmp_path_factory) -> Iterator[httpx.Client]:
    """One edge gateway for the module (its start imports Airflow in each worker)."""
    tmp_path = tmp_path_factory.mktemp("edge")
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {**os.environ, "OFFICEFLOW_GATEWAY_PORT": str(port), "OFFICEFLOW_GATEWAY_WORKERS": "2",
           "OFFICEFLOW_DISPATCHER_MODE": "embedded", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
           "PYTHONPATH": str(REPO_ROOT)}
    log = (tmp_path / "edge.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "plugins.officeflow_gateway.edge"], cwd=REPO_ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}/officeflow", timeout=30)
    try:
        def live() -> bool:
            assert process.poll() is None, (tmp_path / "edge.log").read_text()[-3000:]
            try:
                return client.get("/health/live").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(live, timeout=90, what="the edge gateway answering")
        yield client
    finally:
        client.close()
        stop_process(process)
        log.close()


@pytest.fixture
def edge(edge_process, clean_store) -> httpx.Client:
    return edge_process


def test_signed_deliveries_are_stored_once_and_start_their_runs(edge):
    body = hire_body(str(uuid.uuid4().int % 10**9), "edge@example.com")
    first = edge.post(URL, content=body, headers=signed(body, **{"X-Correlation-ID": "edge-1"}))
    assert first.status_code == 202, first.text
    assert first.headers["X-Correlation-ID"] == "edge-1" and first.json()["correlationId"] == "edge-1"
    with ThreadPoolExecutor(max_workers=16) as pool:  # redeliveries over both workers
        again = list(pool.map(lambda _: edge.post(URL, content=body, headers=signed(body)), range(32)))
    assert {r.status_code for r in again} == {202}
    assert {r.json()["event_id"] for r in again} == {first.json()["event_id"]}
    assert all(r.json()["events"][0]["duplicate"] for r in again)
    event = wait_status(first.json()["event_id"], "triggered", timeout=60)
    assert len(events()) == 1
    [(dag_id, _, conf, _)] = dag_runs(event.dag_run_id)
    assert dag_id == "employee_onboarding" and conf["email"] == "edge@example.com"


def test_a_sender_gets_the_api_server_gateways_answers(edge):
    """The same refusals, codes and error shape in both modes (the api-server's app, in-process, for reference)."""
    from plugins.officeflow_gateway.app import create_app

    body = hire_body(str(uuid.uuid4().int % 10**9))
    cases = [
        ("unknown endpoint", "/webhooks/no-such-endpoint", body, signed(body)),
        ("bad signature", URL, body, signed(body, key="not-the-key")),
        ("stale timestamp", URL, body, signed(body, timestamp=1_000_000_000)),
        ("wrong content type", URL, body, {**signed(body), "Content-Type": "text/plain"}),
        ("malformed body", URL, b"{not json", signed(b"{not json")),
    ]
    with TestClient(create_app(), raise_server_exceptions=False) as api_server:
        for name, path, content, headers in cases:
            at_edge = edge.post(path, content=content, headers=headers)
            in_api_server = api_server.post(path, content=content, headers=headers)
            assert at_edge.status_code == in_api_server.status_code, name
            assert set(at_edge.json()) == {"error"}, name
            assert at_edge.json()["error"]["code"] == in_api_server.json()["error"]["code"], name
            assert at_edge.json()["error"]["correlationId"] == at_edge.headers["X-Correlation-ID"], name
    assert events() == []
    assert_error(edge.get("/no/such/route"), 404, "not_found")


def test_health_and_metrics_cover_both_workers(edge):
    ready = edge.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert {check["name"] for check in ready.json()["checks"]} == {"officeflow_store", "airflow_metadata_db"}
    def accepted() -> float:
        lines = [line for line in edge.get("/metrics").text.splitlines()
                 if line.startswith("officeflow_http_requests_total{")
                 and 'route="/webhooks/{endpoint_id}"' in line and 'status_code="202"' in line]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    before = accepted()
    bodies = [hire_body(str(uuid.uuid4().int % 10**9)) for _ in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(lambda b: edge.post(URL, content=b, headers=signed(b)).status_code, bodies))
    assert codes == [202] * 12
    assert accepted() - before == 12  # whichever worker answers the scrape, it sums both workers' files
    assert "officeflow_workflow_executions_total" not in edge.get("/metrics").text  # the api-server reports those
