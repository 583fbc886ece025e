"""End to end per adapter: endpoints created through the management API of a real api-server,
deliveries signed as each provider does, runs created by the dispatcher and executed by Airflow.

The endpoints start ``new_contractor_welcome`` (a bundled declarative workflow: a welcome email, then a
Slack message), which needs only a first name and an email: what every adapter's sample carries."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from plugins.officeflow_gateway.adapters import bamboohr, generic
from sandbox.email.smtp_sink import SmtpSink
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.e2e_support import wait_for_dag

pytestmark = pytest.mark.e2e
API = "/officeflow/api/v1"
TARGET = "new_contractor_welcome"


def create_endpoint(platform: AirflowPlatform, **body: Any) -> dict[str, Any]:
    wait_for_dag(platform, TARGET)
    response = platform.api("POST", f"{API}/webhook-endpoints",
                            json={"name": "e2e", "target_dag_id": TARGET, **body})
    assert response.status_code == 201, response.text
    return response.json()


def deliver(platform: AirflowPlatform, endpoint: dict[str, Any], body: bytes,
            headers: dict[str, str]) -> httpx.Response:
    return httpx.post(platform.base_url + endpoint["delivery_path"], content=body,
                      headers={"Content-Type": "application/json", **headers}, timeout=30)


def assert_run_and_mail(platform: AirflowPlatform, smtp: SmtpSink, accepted: dict[str, Any], email: str) -> None:
    run = platform.wait_for_run(TARGET, accepted["dag_run_id"])
    assert run["state"] == "success", platform.logs_tail()
    assert run["conf"]["email"] == email
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not [m for m in smtp.messages() if m["To"] == email]:
        time.sleep(0.2)
    assert len([m for m in smtp.messages() if m["To"] == email]) == 1
    event = platform.api("GET", f"{API}/events/{accepted['event_id']}").json()
    assert event["status"] == "triggered" and event["dag_run_id"] == accepted["dag_run_id"]


def test_generic_standard_webhooks_endpoint(platform, smtp):
    endpoint = create_endpoint(platform, adapter="generic", event_types=["person.hired"],
                               mapping={"first_name": "person.given_name", "email": "person.email"})
    email = f"gen-{uuid.uuid4().hex[:8]}@example.com"
    body = json.dumps({"type": "person.hired", "person": {"given_name": "Grace", "email": email}}).encode()
    msg_id, now = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(now),
               "webhook-signature": generic.sign(endpoint["secret"], msg_id, now, body)}
    response = deliver(platform, endpoint, body, headers)
    assert response.status_code == 202, response.text
    assert_run_and_mail(platform, smtp, response.json(), email)

    again = deliver(platform, endpoint, body, headers)
    assert again.json()["dag_run_id"] == response.json()["dag_run_id"] and again.json()["events"][0]["duplicate"]
    forged = {**headers, "webhook-signature": generic.sign(generic.generate_secret(), msg_id, now, body)}
    assert deliver(platform, endpoint, body, forged).status_code == 401


def test_workday_basic_auth_and_ip_allow_list(platform, smtp):
    endpoint = create_endpoint(platform, adapter="workday",
                               verification={"username": "workday-isu", "allowed_cidrs": ["127.0.0.0/8"]})
    email = f"wd-{uuid.uuid4().hex[:8]}@example.com"
    body = json.dumps({"eventType": "Hire", "eventId": f"wd-{uuid.uuid4().hex}",
                       "worker": {"id": "W1", "firstName": "Linus", "workEmail": email}}).encode()
    basic = "Basic " + base64.b64encode(f"workday-isu:{endpoint['secret']}".encode()).decode()
    response = deliver(platform, endpoint, body, {"Authorization": basic})
    assert response.status_code == 202, response.text
    assert_run_and_mail(platform, smtp, response.json(), email)

    wrong = "Basic " + base64.b64encode(b"workday-isu:not-the-password").decode()
    assert deliver(platform, endpoint, body, {"Authorization": wrong}).status_code == 401
    moved = platform.api("PATCH", f"{API}/webhook-endpoints/{endpoint['id']}",
                         json={"verification": {"username": "workday-isu", "allowed_cidrs": ["192.0.2.0/24"]}})
    assert moved.status_code == 200
    assert deliver(platform, endpoint, body, {"Authorization": basic}).status_code == 401


def test_bamboohr_managed_endpoint_with_rotation(platform, smtp):
    endpoint = create_endpoint(platform, adapter="bamboohr", secret="bamboohr-private-key-" + uuid.uuid4().hex)
    email = f"bhr-{uuid.uuid4().hex[:8]}@example.com"
    body = json.dumps({"employees": [{"action": "Created", "id": uuid.uuid4().hex[:6],
                                      "fields": {"firstName": "Ada", "workEmail": email}}]}).encode()

    def signed_with(key: str) -> dict[str, str]:
        stamp = str(int(time.time()))
        return {bamboohr.TIMESTAMP_HEADER: stamp, bamboohr.SIGNATURE_HEADER: bamboohr.sign(body, stamp, key)}

    rotated = platform.api("POST", f"{API}/webhook-endpoints/{endpoint['id']}/rotate-secret",
                           json={"overlap_seconds": 3600})
    assert rotated.status_code == 200
    response = deliver(platform, endpoint, body, signed_with(endpoint["secret"]))  # old key, inside the overlap
    assert response.status_code == 202, response.text
    assert_run_and_mail(platform, smtp, response.json(), email)
    assert deliver(platform, endpoint, body, signed_with(rotated.json()["secret"])).status_code == 202


def test_bamboohr_event_based_delivery_runs_with_the_record_from_bamboohrs_api(platform, smtp, sandbox_server):
    """An event-based ``employee.created`` names the employee only: the api-server's dispatcher reads the record
    from the (sandbox's) BambooHR API through the connection ``officeflow_bamboohr``, then starts the run."""
    endpoint = create_endpoint(platform, adapter="bamboohr", secret="bamboohr-private-key-" + uuid.uuid4().hex)
    email = f"bhr-api-{uuid.uuid4().hex[:8]}@example.com"
    employee_id = sandbox_server.add_bamboohr_employee(firstName="Katherine", lastName="Johnson", workEmail=email)
    body = json.dumps({"type": "employee.created", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+0000"),
                       "data": {"companyId": "1", "employeeId": employee_id}}).encode()
    stamp = str(int(time.time()))
    headers = {bamboohr.TIMESTAMP_HEADER: stamp,
               bamboohr.SIGNATURE_HEADER: bamboohr.sign(body, stamp, endpoint["secret"])}
    response = deliver(platform, endpoint, body, headers)
    assert response.status_code == 202 and response.json()["status"] == "pending", response.text
    assert_run_and_mail(platform, smtp, response.json(), email)
    run = platform.wait_for_run(TARGET, response.json()["dag_run_id"])
    assert (run["conf"]["first_name"], run["conf"]["employee_id"]) == ("Katherine", employee_id)


def test_management_api_requires_an_airflow_token(platform):
    response = httpx.get(platform.base_url + f"{API}/webhook-endpoints", timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["correlationId"]
    docs = httpx.get(platform.base_url + "/officeflow/api-docs/openapi.json", timeout=10)
    assert docs.status_code == 200 and f"{API.removeprefix('/officeflow')}/webhook-endpoints" in docs.json()["paths"]
