"""Gateway spans and the run carriers, in-process on a real store and Airflow metadata DB, with the spans kept
in memory: a webhook's ``traceparent`` is continued by its request span, the dispatch span and the carriers
Airflow's dag_run and task_run spans are emitted from (the processes' export is tests/e2e/test_tracing.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.harness.gateway import URL, hire_body, signed, wait_status


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (an SDK one, as Airflow's ``configure_otel`` makes) with a memory exporter."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    memory.shutdown()


@pytest.fixture
def client(airflow_db, clean_store, exporter) -> Iterator[TestClient]:
    from plugins.officeflow_gateway.app import create_app

    exporter.clear()
    with TestClient(create_app()) as test_client:
        yield test_client


def carriers(run_id: str) -> tuple[str, list[str]]:
    """The run's traceparent and its task instances'."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalars(select(DagRun).where(DagRun.run_id == run_id)).one()
        tis = session.scalars(select(TaskInstance).where(TaskInstance.run_id == run_id)).all()
        return run.context_carrier["traceparent"], [ti.context_carrier["traceparent"] for ti in tis]


def ids(traceparent: str) -> tuple[str, str, str]:
    version, trace_id, span_id, flags = traceparent.split("-")
    assert version == "00"
    return trace_id, span_id, flags


def spans_named(exporter: InMemorySpanExporter, name: str) -> list:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def test_the_run_and_its_tasks_continue_the_senders_trace_through_the_dispatch(client, exporter):
    trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
    body = hire_body(str(secrets.randbelow(10**9)))
    response = client.post(URL, content=body, headers={**signed(body), "traceparent": f"00-{trace_id}-{caller}-01"})
    assert response.status_code == 202, response.text
    accepted = response.json()
    wait_status(accepted["event_id"], "triggered")

    [request] = spans_named(exporter, "POST /officeflow/webhooks/{endpoint_id}")
    assert request.kind is SpanKind.SERVER and request.parent is not None
    assert (f"{request.context.trace_id:032x}", f"{request.parent.span_id:016x}") == (trace_id, caller)
    assert request.attributes["http.route"] == "/officeflow/webhooks/{endpoint_id}"
    assert request.attributes["http.response.status_code"] == 202
    assert request.attributes["officeflow.correlation_id"] == accepted["correlationId"]

    [dispatch] = spans_named(exporter, "officeflow.dispatch")
    assert dispatch.parent is not None and dispatch.parent.span_id == request.context.span_id
    assert dispatch.context.trace_id == request.context.trace_id
    assert dispatch.attributes["airflow.dag_run.run_id"] == accepted["dag_run_id"]

    run, tasks = carriers(accepted["dag_run_id"])
    run_trace, run_span, run_flags = ids(run)
    assert (run_trace, run_flags) == (trace_id, "01")
    [link] = dispatch.links  # the run's span, which Airflow emits as a root of this trace
    assert (f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") == (trace_id, run_span)
    assert tasks and {ids(t)[0] for t in tasks} == {trace_id} and {ids(t)[2] for t in tasks} == {"01"}
    assert len({ids(t)[1] for t in tasks} | {run_span}) == len(tasks) + 1  # a span id of its own each


def test_an_unsampled_senders_trace_stays_unsampled_in_the_run(client, exporter):
    trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
    body = hire_body(str(secrets.randbelow(10**9)))
    response = client.post(URL, content=body, headers={**signed(body), "traceparent": f"00-{trace_id}-{caller}-00"})
    assert response.status_code == 202, response.text
    wait_status(response.json()["event_id"], "triggered")
    run, tasks = carriers(response.json()["dag_run_id"])
    assert ids(run)[0] == trace_id and ids(run)[2] == "00" and {ids(t)[2] for t in tasks} == {"00"}
    assert not spans_named(exporter, "officeflow.dispatch")  # the sender decided: nothing recorded


def test_without_a_traceparent_the_request_span_is_the_root_of_the_runs_trace(client, exporter):
    body = hire_body(str(secrets.randbelow(10**9)))
    response = client.post(URL, content=body, headers=signed(body))
    assert response.status_code == 202, response.text
    wait_status(response.json()["event_id"], "triggered")
    [request] = spans_named(exporter, "POST /officeflow/webhooks/{endpoint_id}")
    assert request.parent is None
    run, _ = carriers(response.json()["dag_run_id"])
    assert ids(run)[0] == f"{request.context.trace_id:032x}"


def test_a_malformed_traceparent_starts_a_new_trace_and_the_delivery_goes_through(client, exporter):
    body = hire_body(str(secrets.randbelow(10**9)))
    response = client.post(URL, content=body, headers={**signed(body), "traceparent": "00-not-a-trace-01"})
    assert response.status_code == 202, response.text
    wait_status(response.json()["event_id"], "triggered")
    [request] = spans_named(exporter, "POST /officeflow/webhooks/{endpoint_id}")
    assert request.parent is None


def test_unknown_paths_are_named_by_no_raw_path(client, exporter):
    for n in range(3):
        client.get(f"/no-such-route-{n}")
    spans = exporter.get_finished_spans()
    assert {span.name for span in spans} == {"GET"} and len(spans) == 3
    assert all("http.route" not in span.attributes and span.attributes["http.response.status_code"] == 404
               for span in spans)


def test_a_run_started_through_the_api_continues_the_requests_trace(client, exporter, admin):
    trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
    conf = {"employee_id": "t-1", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
            "personal_email": "ada@home.example", "start_date": "2027-01-04", "department": "Engineering",
            "job_title": "Engineer", "manager": "Grace Hopper", "manager_email": "grace@example.com",
            "location": "London"}
    response = client.post("/api/v1/workflows/employee_onboarding/execute", json={"conf": conf},
                           headers={**admin, "traceparent": f"00-{trace_id}-{caller}-01"})
    assert response.status_code == 201, response.text
    [request] = spans_named(exporter, "POST /officeflow/api/v1/workflows/{name}/execute")
    assert request.parent is not None and request.parent.span_id == int(caller, 16)
    run, tasks = carriers(response.json()["dag_run_id"])
    assert ids(run)[0] == trace_id and tasks and {ids(t)[0] for t in tasks} == {trace_id}
    [link] = request.links
    assert f"{link.context.span_id:016x}" == ids(run)[1]
