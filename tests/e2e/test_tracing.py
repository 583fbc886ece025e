"""Traces end to end: a webhook sent with a W3C ``traceparent`` starts a run whose spans, exported by the real
api-server, scheduler and task processes to an OTLP collector in the test process, form one trace:

    caller's span -> POST /officeflow/webhooks/{endpoint_id} -> officeflow.dispatch ..link..> dag_run
                                                                            dag_run -> task_run.<task> -> worker.<task>

(Airflow 3.3 emits the dag_run span as a root of its trace, so it joins by trace id and the dispatch span's link.)
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.gateway import hire_body, signed
from tests.harness.otlp_collector import OtlpCollector, Span

pytestmark = pytest.mark.e2e
WEBHOOK = "/officeflow/webhooks/bamboohr"
SERVER, INTERNAL = 2, 1  # OTLP's SpanKind numbers


def wait_for_spans(collector: OtlpCollector, trace_id: str, ready: Callable[[list[Span]], bool],
                   timeout: float = 120) -> list[Span]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spans = collector.spans(trace_id)
        if ready(spans):
            return spans
        time.sleep(0.5)
    raise AssertionError(f"spans of {trace_id} not complete after {timeout}s: "
                         f"{[(s.name, s.span_id, s.parent_span_id) for s in collector.spans(trace_id)]}")


def one(spans: list[Span], name: str) -> Span:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [(s.name, s.span_id) for s in spans])
    return found[0]


def test_a_webhooks_traceparent_is_the_trace_of_its_request_dispatch_run_and_tasks(platform: AirflowPlatform,
                                                                                   otlp_collector: OtlpCollector):
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    body = hire_body(str(uuid.uuid4().int % 10**8), f"traced-{uuid.uuid4().hex[:8]}@officeflow.test")
    response = httpx.post(platform.base_url + WEBHOOK, content=body, timeout=30,
                          headers={**signed(body), "traceparent": f"00-{trace_id}-{caller_span}-01"})
    assert response.status_code == 202, response.text
    run_id = response.json()["dag_run_id"]
    assert platform.wait_for_task("employee_onboarding", run_id, "send_welcome_email") == "success", \
        platform.task_states("employee_onboarding", run_id)

    spans = wait_for_spans(otlp_collector, trace_id, lambda spans: {
        "officeflow.dispatch", "task_run.send_welcome_email", "worker.send_welcome_email"} <= {s.name for s in spans})

    request = one(spans, f"POST {WEBHOOK.rsplit('/', 1)[0]}/{{endpoint_id}}")
    assert (request.parent_span_id, request.kind) == (caller_span, SERVER)
    assert request.attributes["http.response.status_code"] == 202
    assert request.attributes["officeflow.correlation_id"] == response.headers["X-Correlation-ID"]

    dispatch = one(spans, "officeflow.dispatch")
    assert (dispatch.parent_span_id, dispatch.kind) == (request.span_id, INTERNAL)
    assert dispatch.attributes["airflow.dag_run.run_id"] == run_id
    [(linked_trace, run_span)] = dispatch.links
    assert linked_trace == trace_id

    # Every task that finished: a child of the run's span, with its worker's span below it.
    task_runs = [s for s in spans if s.name.startswith("task_run.")]
    assert {s.name for s in task_runs} >= {"task_run.send_welcome_email"}
    for task_run in task_runs:
        assert task_run.parent_span_id == run_span and task_run.attributes["airflow.dag_run.run_id"] == run_id
    worker = one(spans, "worker.send_welcome_email")
    assert worker.parent_span_id == one(spans, "task_run.send_welcome_email").span_id
    assert {s.trace_id for s in spans} == {trace_id}

    platform.settle("employee_onboarding", run_id)


def test_without_a_traceparent_the_request_starts_the_trace_its_run_continues(platform: AirflowPlatform,
                                                                            otlp_collector: OtlpCollector):
    body = hire_body(str(uuid.uuid4().int % 10**8), f"untraced-{uuid.uuid4().hex[:8]}@officeflow.test")
    response = httpx.post(platform.base_url + WEBHOOK, content=body, headers=signed(body), timeout=30)
    assert response.status_code == 202, response.text
    run_id = response.json()["dag_run_id"]
    assert platform.wait_for_task("employee_onboarding", run_id, "send_welcome_email") == "success"

    def dispatch_of_run() -> Span | None:
        return next((s for s in otlp_collector.spans() if s.name == "officeflow.dispatch"
                     and s.attributes.get("airflow.dag_run.run_id") == run_id), None)

    deadline = time.monotonic() + 60
    while (dispatch := dispatch_of_run()) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert dispatch is not None
    spans = wait_for_spans(otlp_collector, dispatch.trace_id,
                           lambda spans: "task_run.send_welcome_email" in {s.name for s in spans})
    request = next(s for s in spans if s.span_id == dispatch.parent_span_id)
    assert request.parent_span_id == "" and request.kind == SERVER  # the trace's root
    platform.settle("employee_onboarding", run_id)
