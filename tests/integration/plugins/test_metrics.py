"""GET /officeflow/metrics after real requests to the gateway, on a real PostgreSQL store and Airflow metadata DB:
request counters by route template, webhook outcomes, bounded labels under 1,000 unknown endpoint ids, the
store's and Airflow's series read from real rows, the store down, the bearer token, and several worker
processes summed through PROMETHEUS_MULTIPROC_DIR. Parsed with prometheus_client's own parser."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from include.officeflow.store import EmailDelivery, OutboxEvent, WebhookEvent, session_scope
from include.officeflow.store.models import Organization
from tests.harness.environment import REPO_ROOT
from tests.harness.gateway import URL, gateway_client, hire_body, signed
from tests.harness.ports import free_port

SMOKE = "officeflow_approval_smoke"  # a DAG with a human-in-the-loop task "approval"
WEBHOOK_ROUTE = "/webhooks/{endpoint_id}"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a labelled series that does not exist yet (a counter never incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def series_of(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (sample, labels) in samples if sample == name]


@pytest.fixture
def client(airflow_db, clean_store, email_store) -> Iterator[TestClient]:
    with gateway_client() as test_client:
        yield test_client


@pytest.fixture
def fresh_airflow_reads(monkeypatch):
    """Every scrape re-reads the run counts and the organizations (no per-process cache between scrapes)."""
    from plugins.officeflow_gateway import metrics

    _, airflow = metrics.collectors
    monkeypatch.setattr(airflow, "runs_ttl_seconds", 0.0)
    monkeypatch.setattr(airflow.organizations, "ttl_seconds", 0.0)
    return airflow


# --- requests ------------------------------------------------------------------------------------------------


def test_requests_are_counted_by_route_template_and_webhook_outcome(client):
    before = scrape(client)
    body = hire_body(str(uuid.uuid4().int % 10**9))
    assert client.post(URL, content=body, headers=signed(body)).status_code == 202
    assert client.post(URL, content=body, headers=signed(body)).status_code == 202  # the same event again
    assert client.post(URL, content=body, headers=signed(body, key="not-the-key")).status_code == 401
    assert client.get("/health/live").status_code == 200
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "officeflow_http_requests_total"
    assert delta(requests, method="POST", route=WEBHOOK_ROUTE, status_code="202") == 2
    assert delta(requests, method="POST", route=WEBHOOK_ROUTE, status_code="401") == 1
    assert delta(requests, method="GET", route="/health/live", status_code="200") == 1
    assert delta(requests, method="GET", route="/metrics", status_code="200") == 1  # the first scrape
    assert delta("officeflow_http_request_duration_seconds_count", method="POST", route=WEBHOOK_ROUTE) == 3
    assert delta("officeflow_http_request_duration_seconds_sum", method="POST", route=WEBHOOK_ROUTE) > 0
    assert value(after, "officeflow_http_request_duration_seconds_bucket", method="POST", route=WEBHOOK_ROUTE,
                 le="+Inf") == value(after, "officeflow_http_request_duration_seconds_count", method="POST",
                                     route=WEBHOOK_ROUTE)
    webhooks = "officeflow_webhook_events_total"
    assert delta(webhooks, endpoint="bamboohr", adapter="bamboohr", outcome="accepted") == 1
    assert delta(webhooks, endpoint="bamboohr", adapter="bamboohr", outcome="duplicate") == 1
    assert delta(webhooks, endpoint="bamboohr", adapter="bamboohr", outcome="denied") == 1
    assert not any("/webhooks/bamboohr" in labels.get("route", "") for labels in series_of(after, requests))


def test_a_thousand_unknown_endpoint_ids_add_no_series(client):
    before = scrape(client)
    ids = [uuid.uuid4().hex for _ in range(1000)]
    for endpoint_id in ids:
        assert client.post(f"/webhooks/{endpoint_id}", content=b"{}").status_code == 404
    for endpoint_id in ids[:100]:
        assert client.get(f"/no-such-route/{endpoint_id}").status_code == 404
    after = scrape(client)

    assert value(after, "officeflow_http_requests_total", method="POST", route=WEBHOOK_ROUTE, status_code="404") \
        - value(before, "officeflow_http_requests_total", method="POST", route=WEBHOOK_ROUTE, status_code="404") \
        == 1000
    assert value(after, "officeflow_http_requests_total", method="GET", route="<unmatched>", status_code="404") \
        - value(before, "officeflow_http_requests_total", method="GET", route="<unmatched>", status_code="404") \
        == 100
    labels = {v for (_, pairs) in after for _, v in pairs}
    assert not labels & set(ids)
    # New series: at most the 404 counters and histograms of the two routes (and the scrape's own), not 1,100.
    new = set(after) - set(before)
    assert len(new) <= 40, sorted(name for name, _ in new)
    assert not any(labels["endpoint"] in ids for labels in series_of(after, "officeflow_webhook_events_total"))


def test_route_templates_when_mounted_under_officeflow_as_in_the_api_server(airflow_db, clean_store):
    """Airflow mounts the gateway at /officeflow: the route label is still the gateway's template."""
    from fastapi import FastAPI

    from plugins.officeflow_gateway.app import create_app

    api_server = FastAPI()
    api_server.mount("/officeflow", create_app())
    with TestClient(api_server, raise_server_exceptions=False) as mounted:
        before = parse(mounted.get("/officeflow/metrics").text)
        assert mounted.get("/officeflow/health/live").status_code == 200
        assert mounted.post(f"/officeflow/webhooks/{uuid.uuid4().hex}", content=b"{}").status_code == 404
        assert mounted.get(f"/officeflow/no-such-route/{uuid.uuid4().hex}").status_code == 404
        after = parse(mounted.get("/officeflow/metrics").text)

    def delta(**labels: str) -> float:
        return value(after, "officeflow_http_requests_total", **labels) - value(
            before, "officeflow_http_requests_total", **labels)

    assert delta(method="GET", route="/health/live", status_code="200") == 1
    assert delta(method="POST", route=WEBHOOK_ROUTE, status_code="404") == 1
    assert delta(method="GET", route="<unmatched>", status_code="404") == 1
    assert not [labels for labels in series_of(after, "officeflow_http_requests_total")
                if labels["route"].startswith("/officeflow")]


def test_unknown_http_methods_share_one_label(client):
    before = scrape(client)
    assert client.request("PROPFIND", "/health/live").status_code == 405
    after = scrape(client)
    assert value(after, "officeflow_http_requests_total", method="OTHER", route="/health/live",
                 status_code="405") - value(before, "officeflow_http_requests_total", method="OTHER",
                                            route="/health/live", status_code="405") == 1


def test_every_series_the_alert_rules_read_is_served(client):
    rules = yaml.safe_load((REPO_ROOT / "config" / "prometheus" / "officeflow-rules.yaml").read_text())
    used = {re.sub(r"_total$", "", name) for group in rules["groups"] for rule in group["rules"]
            for name in re.findall(r"officeflow_\w+", rule["expr"])}
    served = {family.name for family in text_string_to_metric_families(client.get("/metrics").text)}
    assert used and used <= served, used - served


# --- the store's series ----------------------------------------------------------------------------------------


def add_event(endpoint_id: str, status: str, received_at: datetime, **fields: Any) -> None:
    with session_scope() as session:
        session.add(WebhookEvent(endpoint_id=endpoint_id, provider_event_id=uuid.uuid4().hex, event_type="test",
                                 status=status, correlation_id="metrics-test", received_at=received_at, **fields))


def test_inbox_outbox_and_email_series_come_from_the_store(client):
    now = datetime.now(UTC)
    # Pending but retrying later, so the embedded dispatcher leaves it alone during the test.
    add_event("bamboohr", "pending", now - timedelta(minutes=10), next_attempt_at=now + timedelta(hours=1))
    add_event("bamboohr", "pending", now - timedelta(minutes=1), next_attempt_at=now + timedelta(hours=1))
    add_event("bamboohr", "dead", now - timedelta(hours=3))
    add_event("bamboohr", "dead", now - timedelta(hours=2))
    add_event("bamboohr", "triggered", now - timedelta(days=3))
    with session_scope() as session:
        for minutes in (30, 5):
            session.add(OutboxEvent(event_id=str(uuid.uuid4()), area="test", type="test", subject="s",
                                    event={}, created_at=now - timedelta(minutes=minutes)))
        session.add(OutboxEvent(event_id=str(uuid.uuid4()), area="test", type="test", subject="s", event={},
                                created_at=now - timedelta(days=1), sent_at=now - timedelta(days=1)))
        for index, (provider, status) in enumerate([("smtp", "sent"), ("smtp", "sent"), ("smtp", "bounced"),
                                                    ("sendgrid", "delivered")]):
            session.add(EmailDelivery(idempotency_key=f"metrics-{index}", provider=provider, status=status,
                                      recipient=f"r{index}@example.com", template="welcome"))

    samples = scrape(client)
    assert value(samples, "officeflow_store_metrics_up") == 1
    assert value(samples, "officeflow_inbox_pending_events") == 2
    assert 600 <= value(samples, "officeflow_inbox_oldest_pending_age_seconds") < 700
    assert series_of(samples, "officeflow_inbox_dead_events") == [{"endpoint": "bamboohr", "adapter": "bamboohr"}]
    assert value(samples, "officeflow_inbox_dead_events", endpoint="bamboohr", adapter="bamboohr") == 2
    assert value(samples, "officeflow_outbox_unsent_events") == 2
    assert 1800 <= value(samples, "officeflow_outbox_oldest_unsent_age_seconds") < 1900
    assert {(labels["provider"], labels["status"]): value(samples, "officeflow_email_deliveries", **labels)
            for labels in series_of(samples, "officeflow_email_deliveries")} == {
        ("smtp", "sent"): 2, ("smtp", "bounced"): 1, ("sendgrid", "delivered"): 1}


def test_empty_store_reports_zero_lag(client):
    samples = scrape(client)
    assert value(samples, "officeflow_inbox_pending_events") == 0
    assert value(samples, "officeflow_inbox_oldest_pending_age_seconds") == 0
    assert value(samples, "officeflow_outbox_oldest_unsent_age_seconds") == 0
    assert series_of(samples, "officeflow_inbox_dead_events") == []


def test_store_down_is_reported_and_the_rest_still_served(client, settings_env):
    settings_env.setenv("OFFICEFLOW_DB_URL", f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/x")
    samples = scrape(client)
    assert value(samples, "officeflow_store_metrics_up") == 0
    assert series_of(samples, "officeflow_inbox_pending_events") == []
    assert series_of(samples, "officeflow_outbox_unsent_events") == []
    assert value(samples, "officeflow_airflow_metrics_up") == 1
    assert series_of(samples, "officeflow_http_requests_total")


# --- Airflow's series ------------------------------------------------------------------------------------------


def airflow_run(dag_id: str, state: str, conf: dict[str, Any], *, waiting_since: datetime | None = None) -> str:
    """A run of ``dag_id`` in ``state`` in the test's Airflow DB; with ``waiting_since``, its ``approval`` task
    awaits a decision asked for then."""
    from airflow._shared.timezones import timezone
    from airflow.models.hitl import HITLDetail
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    run_id = f"manual__metrics_{uuid.uuid4().hex[:12]}"
    with create_session() as session:
        dag = SerializedDagModel.get_dag(dag_id, session=session)
        assert dag is not None
        dag_run = dag.create_dagrun(run_id=run_id, run_after=timezone.utcnow(), conf=conf,
                                    run_type=DagRunType.MANUAL, triggered_by=DagRunTriggeredByType.TEST,
                                    state=state, session=session)
        if waiting_since is not None:
            ti = dag_run.get_task_instance("approval", session=session)
            assert ti is not None
            ti.state = TaskInstanceState.AWAITING_INPUT
            session.add(HITLDetail(ti_id=ti.id, options=["Approve", "Reject"], subject=f"Decide {run_id}",
                                   multiple=False, params={}, params_input={}, assignees=[],
                                   created_at=waiting_since))
    return run_id


def test_workflow_runs_and_approvals_come_from_airflow(client, fresh_airflow_reads):
    with session_scope() as session:
        if session.get(Organization, "default") is None:
            session.add(Organization(id="default", name="Default", created_by="metrics-test"))
    before = scrape(client)
    airflow_run(SMOKE, "success", {"organization_id": "default"})
    airflow_run(SMOKE, "success", {"organization_id": "default"})
    airflow_run(SMOKE, "failed", {"organization_id": "default"})
    airflow_run(SMOKE, "failed", {})
    for _ in range(3):  # made-up organizations share one label value
        airflow_run(SMOKE, "failed", {"organization_id": f"org-{uuid.uuid4().hex}"})
    airflow_run(SMOKE, "running", {"organization_id": "default"}, waiting_since=datetime.now(UTC) - timedelta(days=2))
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    executions = "officeflow_workflow_executions_total"
    assert value(after, "officeflow_airflow_metrics_up") == 1
    assert delta(executions, organization_id="default", workflow_id=SMOKE, status="success") == 2
    assert delta(executions, organization_id="default", workflow_id=SMOKE, status="failed") == 1
    assert delta(executions, organization_id="", workflow_id=SMOKE, status="failed") == 1
    assert delta(executions, organization_id="<other>", workflow_id=SMOKE, status="failed") == 3
    # Organizations that exist (other tests make some) are their own label; made-up ones never are.
    assert not any(labels["organization_id"].startswith("org-") for labels in series_of(after, executions))
    assert delta("officeflow_workflow_runs_in_progress", organization_id="default", workflow_id=SMOKE,
                 status="running") == 1
    assert delta("officeflow_approvals_waiting", workflow_id=SMOKE) == 1
    assert value(after, "officeflow_approvals_oldest_waiting_age_seconds", workflow_id=SMOKE) >= 2 * 86400


def test_run_counts_survive_a_restart(client, fresh_airflow_reads):
    """The counts are Airflow's, not the process's: a new app (a restarted api-server) reports the same."""
    airflow_run(SMOKE, "success", {})
    first = scrape(client)
    with gateway_client() as restarted:
        second = scrape(restarted)
    name = "officeflow_workflow_executions_total"
    labels = {"organization_id": "", "workflow_id": SMOKE, "status": "success"}
    assert value(first, name, **labels) >= 1
    assert value(second, name, **labels) == value(first, name, **labels)


# --- access ----------------------------------------------------------------------------------------------------


def test_bearer_token_when_configured(client, env):
    env.set("OFFICEFLOW_METRICS_TOKEN", "metrics-token-0123456789")
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["error"]["code"] == "unauthorized"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert scrape(client, Authorization="Bearer metrics-token-0123456789")


# --- several worker processes ----------------------------------------------------------------------------------

WORKER = textwrap.dedent("""
    import sys
    from tests.harness.gateway import gateway_client

    with gateway_client() as client:
        for _ in range(int(sys.argv[1])):
            assert client.get("/health/live").status_code == 200
        if len(sys.argv) > 2:  # the file to write the scrape to (stdout has the logs)
            with open(sys.argv[2], "w") as out:
                out.write(client.get("/metrics").text)
""")


def test_workers_counters_are_summed_through_the_multiprocess_folder(airflow_db, clean_store, tmp_path):
    """Two api-server worker processes: whichever answers the scrape reports both workers' requests."""
    folder = tmp_path / "prometheus"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "PYTHONPATH": str(REPO_ROOT)}

    def worker(requests: int, *scrape_to: str) -> None:
        done = subprocess.run([sys.executable, "-c", WORKER, str(requests), *scrape_to], env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]

    worker(3)
    worker(2, str(tmp_path / "scrape.txt"))
    samples = parse((tmp_path / "scrape.txt").read_text())
    assert value(samples, "officeflow_http_requests_total", method="GET", route="/health/live",
                 status_code="200") == 5
    assert value(samples, "officeflow_http_request_duration_seconds_count", method="GET", route="/health/live") == 5
    assert len(list(folder.glob("*.db"))) >= 2  # one file per worker and metric type
