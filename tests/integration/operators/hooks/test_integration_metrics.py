"""officeflow.external_api.* recorded by the real hooks (slack_sdk, httpx, openai) against the sandbox, read
from an OpenTelemetry SDK meter provider with an in-memory reader (Airflow installs an SDK provider with an
OTLP exporter in each process when ``[metrics] otel_on`` is true; the instruments are the same)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from include.officeflow.errors import NotFound, RateLimited
from operators.hooks.okta import OktaHook
from operators.hooks.openai import OfficeFlowOpenAIHook
from operators.hooks.slack import OfficeFlowSlackHook

CALLS, DURATION = "officeflow.external_api.calls", "officeflow.external_api.duration"


@pytest.fixture(scope="module")
def reader() -> Iterator[InMemoryMetricReader]:
    memory = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[memory]))
    assert isinstance(metrics.get_meter_provider(), MeterProvider), "another meter provider was set first"
    yield memory


def points(reader: InMemoryMetricReader, name: str) -> dict[tuple[str, str], float]:
    """(integration, outcome) -> the counter's value, or the histogram's count, since the module started."""
    found: dict[tuple[str, str], float] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    key = (point.attributes["integration"], point.attributes["outcome"])
                    found[key] = getattr(point, "value", None) or getattr(point, "count", 0)
    return found


def delta(before: dict, after: dict) -> dict:
    return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}


def test_calls_are_counted_and_timed_per_integration_and_outcome(sandbox, reader):
    before = points(reader, CALLS)
    slack = OfficeFlowSlackHook()
    slack.call_method("auth.test")
    sandbox.fault("slack", status=429, retry_after=3600, path="/api/chat.postMessage", count=1)
    with pytest.raises(RateLimited):
        slack.call_method("chat.postMessage", channel="#general", text="hi")
    sandbox.fault("slack", status=503, path="/api/chat.postMessage", count=1)
    with pytest.raises(Exception, match="service_unavailable"):
        slack.call_method("chat.postMessage", channel="#general", text="hi")

    okta = OktaHook()
    assert okta.find_user("nobody-here@officeflow.test") is None  # by login: 404 (refused), by email: ok
    with pytest.raises(NotFound):
        okta._request("GET", "/api/v1/users/00u-not-there")

    openai_hook = OfficeFlowOpenAIHook()
    openai_hook.complete(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}],
                         max_output_tokens=20, temperature=0)

    counted = delta(before, points(reader, CALLS))
    assert counted[("slack", "ok")] == 1 and counted[("slack", "rate_limited")] == 1
    assert counted[("slack", "unavailable")] == 1
    assert counted[("okta", "ok")] == 1 and counted[("okta", "refused")] == 2
    assert counted[("openai", "ok")] == 1
    timed = points(reader, DURATION)
    assert all(timed.get(key, 0) >= 1 for key in counted), (counted, timed)
    labels = set(points(reader, CALLS))
    assert {integration for integration, _ in labels} <= {"slack", "google_workspace", "microsoft_graph", "okta",
                                                          "openai"}
