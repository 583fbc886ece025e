"""End to end: a signed BambooHR webhook starts employee_onboarding in real Airflow processes on
PostgreSQL, and the welcome email arrives at a real SMTP server. (The whole workflow, approval included,
is tests/e2e/test_hr_workflows.py; these runs are settled once the email is checked.)"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from sandbox.email.smtp_sink import SmtpSink
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.e2e_support import store_rows
from tests.harness.gateway import hire_body, signed

pytestmark = pytest.mark.e2e
WEBHOOK = "/officeflow/webhooks/bamboohr"


def post(platform: AirflowPlatform, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(platform.base_url + WEBHOOK, content=body, headers=headers, timeout=30)


def mails_to(smtp: SmtpSink, address: str) -> list:
    return [m for m in smtp.messages() if m["To"] == address]


def personal_address(body: bytes) -> str:
    return json.loads(body)["employees"][0]["fields"]["homeEmail"]


def test_signed_webhook_runs_onboarding_and_emails_the_hire(platform, smtp, store):
    email = f"hire-{uuid.uuid4().hex[:8]}@officeflow.test"
    body = hire_body(str(uuid.uuid4().int % 10**8), email)
    started = time.monotonic()
    response = post(platform, body, signed(body))
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["event_id"] and accepted["dag_run_id"].startswith("bamboohr__")

    run_id = accepted["dag_run_id"]
    state = platform.wait_for_task("employee_onboarding", run_id, "send_welcome_email")
    assert state == "success", platform.task_states("employee_onboarding", run_id)
    print(f"\nwebhook -> welcome email sent: {time.monotonic() - started:.1f}s")
    run = platform.api("GET", f"/api/v2/dags/employee_onboarding/dagRuns/{run_id}").json()
    assert run["conf"]["email"] == email and run["conf"]["source"] == "bamboohr"

    [message] = [m for m in mails_to(smtp, personal_address(body)) if m["Subject"] == "Welcome to OfficeFlow, Ada!"]
    assert "Welcome aboard, Ada!" in message.get_body(("html",)).get_content()
    [(status, stored_run_id)] = store_rows(
        store, "SELECT status, dag_run_id FROM webhook_events WHERE id = :id", id=accepted["event_id"])
    assert (status, stored_run_id) == ("triggered", run_id)
    platform.settle("employee_onboarding", run_id)


def task_logs(platform: AirflowPlatform, dag_id: str, run_id: str) -> dict[str, list[dict]]:
    """task id -> the structured lines of its latest try, for every task of the run that ran."""
    response = platform.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    assert response.status_code == 200, response.text
    logs = {}
    for ti in response.json()["task_instances"]:
        if ti["try_number"] < 1 or ti["state"] in (None, "scheduled", "queued", "running", "skipped"):
            continue
        log = platform.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs/"
                                  f"{ti['try_number']}", params={"full_content": True},
                           headers={"Accept": "application/json"})
        assert log.status_code == 200, log.text
        logs[ti["task_id"]] = [line for line in log.json()["content"] if isinstance(line, dict)]
    return logs


def test_the_webhooks_correlation_id_is_on_every_task_log_of_the_run(platform, smtp):
    cid = f"e2e-{uuid.uuid4().hex[:12]}"
    body = hire_body(str(uuid.uuid4().int % 10**8), f"hire-{uuid.uuid4().hex[:8]}@officeflow.test")
    response = post(platform, body, signed(body, **{"X-Correlation-ID": cid}))
    assert response.status_code == 202 and response.headers["X-Correlation-ID"] == cid, response.text
    run_id = response.json()["dag_run_id"]
    state = platform.wait_for_task("employee_onboarding", run_id, "send_welcome_email")
    assert state == "success", platform.task_states("employee_onboarding", run_id)

    logs = task_logs(platform, "employee_onboarding", run_id)
    assert "send_welcome_email" in logs and len(logs) >= 2, sorted(logs)
    for task_id, lines in logs.items():
        tagged = [line for line in lines if "correlationId" in line]
        assert tagged, f"{task_id}: no line carries the correlation id: {[line.get('event') for line in lines]}"
        for line in tagged:  # every line from the task start on: the run's ids and the deployment's fields
            assert line["correlationId"] == cid and line["workflowId"] == "employee_onboarding", (task_id, line)
            assert line["organizationId"] == "default" and line["service"] and line["version"], (task_id, line)
        ours = [line for line in lines if str(line.get("logger", "")).startswith(("include.officeflow", "operators"))]
        assert all(line.get("correlationId") == cid for line in ours), (task_id, ours)
    platform.settle("employee_onboarding", run_id)


def test_duplicate_delivery_returns_the_same_run_and_sends_one_email(platform, smtp):
    email = f"dup-{uuid.uuid4().hex[:8]}@officeflow.test"
    body = hire_body(str(uuid.uuid4().int % 10**8), email)
    first = post(platform, body, signed(body)).json()
    second = post(platform, body, signed(body))
    assert second.status_code == 202
    assert second.json()["dag_run_id"] == first["dag_run_id"]
    assert second.json()["event_id"] == first["event_id"]
    assert platform.wait_for_task("employee_onboarding", first["dag_run_id"], "send_welcome_email") == "success"
    platform.settle("employee_onboarding", first["dag_run_id"])
    post(platform, body, signed(body))  # a late redelivery after the run finished
    runs = platform.api("GET", "/api/v2/dags/employee_onboarding/dagRuns",
                        params={"limit": 100}).json()["dag_runs"]
    assert [r["dag_run_id"] for r in runs].count(first["dag_run_id"]) == 1
    subjects = [m["Subject"] for m in mails_to(smtp, personal_address(body))]
    assert subjects.count("Welcome to OfficeFlow, Ada!") == 1, subjects


def test_bad_signature_is_401_and_starts_nothing(platform, store):
    before = platform.api("GET", "/api/v2/dags/employee_onboarding/dagRuns").json()["total_entries"]
    events_before = store_rows(store, "SELECT count(*) FROM webhook_events")[0][0]
    body = hire_body(str(uuid.uuid4().int % 10**8))
    for headers in (signed(body, key="not-the-key"), {"Content-Type": "application/json"},
                    signed(body, timestamp=int(time.time()) - 600)):
        response = post(platform, body, headers)
        assert response.status_code == 401
        assert response.json()["error"]["correlationId"]
    assert store_rows(store, "SELECT count(*) FROM webhook_events")[0][0] == events_before
    time.sleep(2)
    after = platform.api("GET", "/api/v2/dags/employee_onboarding/dagRuns").json()["total_entries"]
    assert after == before


def test_malformed_json_is_400_with_a_correlation_id(platform):
    body = b'{"employees": [ broken'
    response = post(platform, body, signed(body))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_payload" and error["correlationId"]


def test_health_reports_both_databases(platform):
    response = httpx.get(platform.base_url + "/officeflow/health", timeout=10)
    assert response.status_code == 200
    names = {c["name"]: c["status"] for c in response.json()["checks"]}
    assert names["officeflow_store"] == names["airflow_metadata_db"] == "pass"


def test_rest_api_trigger_with_the_same_run_id_is_refused(platform):
    """The REST API sees gateway runs as ordinary runs: a second create of the same id is a 409."""
    body = hire_body(str(uuid.uuid4().int % 10**8))
    run_id = post(platform, body, signed(body)).json()["dag_run_id"]
    response = platform.api("POST", "/api/v2/dags/employee_onboarding/dagRuns",
                            json={"dag_run_id": run_id, "logical_date": None,
                                  "conf": {"first_name": "Ada", "last_name": "L", "email": "ada@example.com"}})
    assert response.status_code == 409


def test_rest_api_trigger_validates_conf_against_the_dag_params(platform):
    """The workflow's params schema guards every entry point, not only the gateway."""
    response = platform.api("POST", "/api/v2/dags/employee_onboarding/dagRuns",
                            json={"logical_date": None, "conf": {"firstName": "Ada"}})
    assert response.status_code == 400
