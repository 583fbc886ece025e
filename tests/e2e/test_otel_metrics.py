"""Metrics over OTLP end to end: with ``[metrics] otel_on`` the platform's processes export Airflow's own metrics
and OfficeFlow's external API calls (made by task code in worker processes, include/officeflow/integration_metrics.py)
to the OTLP collector in the test process."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from include.officeflow.integration_metrics import INTEGRATIONS, OUTCOMES
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.gateway import hire_body, signed
from tests.harness.otlp_collector import OtlpCollector

pytestmark = pytest.mark.e2e


def test_task_processes_export_external_api_calls_beside_airflows_own_metrics(platform: AirflowPlatform,
                                                                             otlp_collector: OtlpCollector):
    body = hire_body(str(uuid.uuid4().int % 10**8), f"metered-{uuid.uuid4().hex[:8]}@officeflow.test")
    response = httpx.post(platform.base_url + "/officeflow/webhooks/bamboohr", content=body, headers=signed(body),
                          timeout=30)
    assert response.status_code == 202, response.text
    run_id = response.json()["dag_run_id"]
    # The hire's Slack channel (no approval needed before it): its task process called Slack.
    assert platform.wait_for_task("employee_onboarding", run_id, "create_slack_channel") == "success", \
        platform.task_states("employee_onboarding", run_id)

    def slack_ok() -> list:
        return [p for p in otlp_collector.points("officeflow.external_api.calls")
                if p.attributes == {"integration": "slack", "outcome": "ok"} and p.value >= 1]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not slack_ok():
        time.sleep(1)
    calls = otlp_collector.points("officeflow.external_api.calls")
    assert slack_ok(), calls
    assert {p.attributes["integration"] for p in calls} <= INTEGRATIONS
    assert {p.attributes["outcome"] for p in calls} <= set(OUTCOMES)
    assert {p.service for p in calls} == {"officeflow-e2e"}
    durations = otlp_collector.points("officeflow.external_api.duration")
    assert any(p.attributes["integration"] == "slack" and p.value >= 1 for p in durations), durations

    airflow_own = {p.name for p in otlp_collector.points_named_like("airflow.")}
    assert airflow_own, "none of Airflow's own metrics was exported"
    platform.settle("employee_onboarding", run_id)
