"""The README's webhook endpoint example, the gateway doc's bulk replay request and its BambooHR API connection and
event-based payload, as a new user follows them:
the endpoint definition from the README's ``curl`` command, created through the management API, then the example
body signed with the Standard Webhooks library (``standardwebhooks``, as a sender would) and delivered; the run
it starts has every param the workflow requires, and the ids the README describes are where it says they are. The
BambooHR connection, with the sandbox's API in place of BambooHR's and its key in place of the placeholder, reads
the record of the documented payload's employee, whose offboarding starts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from standardwebhooks import Webhook

from tests.harness.docs import code_blocks
from tests.harness.endpoints import API
from tests.harness.gateway import URL, signed, wait_status
from tests.harness.gateway_checks import dag_runs


def readme_endpoint() -> dict:
    [command] = [block for block in code_blocks("README.md", "bash") if '"name": "HR hires"' in block]
    return json.loads(re.search(r"-d '(.*?)'", command, flags=re.S).group(1))


def readme_delivery() -> bytes:
    [body] = [block for block in code_blocks("README.md", "json") if '"person.hired"' in block]
    return body.encode()


def test_the_readme_endpoint_example_starts_a_complete_onboarding_run(client, admin):
    created = client.post(API, json=readme_endpoint(), headers=admin)
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["delivery_path"] == f"/officeflow/webhooks/{endpoint['id']}"
    assert endpoint["rate_limit_per_minute"] == 600  # the documented default

    body = readme_delivery()
    msg_id = "msg_readme_1"
    signed_at = datetime.now(UTC)
    headers = {"Content-Type": "application/json", "webhook-id": msg_id,
               "webhook-timestamp": str(int(signed_at.timestamp())),
               "webhook-signature": Webhook(endpoint["secret"]).sign(msg_id, signed_at, body.decode())}
    url = endpoint["delivery_path"].removeprefix("/officeflow")
    response = client.post(url, content=body, headers=headers)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "pending"

    # event_id is OfficeFlow's id of the stored event; the sender's webhook-id is its provider_event_id.
    stored = client.get(f"/api/v1/events/{answer['event_id']}", headers=admin)
    assert stored.status_code == 200, stored.text
    assert stored.json()["provider_event_id"] == msg_id and stored.json()["id"] == answer["event_id"]

    wait_status(answer["event_id"], "triggered")
    [(dag_id, _, conf, _)] = dag_runs(answer["dag_run_id"])
    assert dag_id == "employee_onboarding"
    assert {key: conf[key] for key in ("employee_id", "first_name", "last_name", "email")} == {
        "employee_id": "E-1042", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}

    again = client.post(url, content=body, headers=headers)
    assert again.status_code == 202 and again.json()["events"][0]["duplicate"] is True
    assert (again.json()["event_id"], again.json()["dag_run_id"]) == (answer["event_id"], answer["dag_run_id"])
    assert len(dag_runs(answer["dag_run_id"])) == 1


def test_the_documented_bulk_replay_request_is_answered(client, admin):
    [command] = [block for block in code_blocks("docs/gateway.md", "bash") if "/events/replay" in block]
    selection = json.loads(re.search(r"-d '(.*?)'", command, flags=re.S).group(1))
    response = client.post("/api/v1/events/replay", json=selection, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"matched": 0, "replayed": [], "not_replayed": [], "dry_run": True}


def test_the_documented_bamboohr_connection_reads_the_record_of_the_documented_event(client, sandbox, monkeypatch):
    [command] = [block for block in code_blocks("docs/gateway.md", "bash")
                 if "AIRFLOW_CONN_OFFICEFLOW_BAMBOOHR" in block]
    name, value = re.search(r"export (\w+)='(.*?)'", command, flags=re.S).groups()
    documented = json.loads(value)
    assert documented["host"] == "https://api.bamboohr.com/api/gateway.php/acme/v1" and documented["password"] == "x"
    # BambooHR's API -> the sandbox's, company "acme" -> the sandbox's company, the placeholder -> its key.
    ours = sandbox.connections["officeflow_bamboohr"]
    host = documented["host"].replace("https://api.bamboohr.com", f"{sandbox.url}/bamboohr").replace(
        "/acme/", "/officeflow/")
    assert host == ours["host"] and documented["login"] == "<API key>"
    monkeypatch.setenv(name, json.dumps({**documented, "host": host, "login": ours["login"]}))

    [payload] = [block for block in code_blocks("docs/gateway.md", "json") if '"employee.updated"' in block]
    document = json.loads(payload)
    employee = sandbox.add_bamboohr_employee(firstName="Grace", lastName="Hopper", workEmail="grace@officeflow.test",
                                             status="Inactive", terminationDate="2026-11-30")
    document["data"]["employeeId"] = employee
    document["timestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    body = json.dumps(document).encode()
    response = client.post(URL, content=body, headers=signed(body))
    assert response.status_code == 202 and response.json()["status"] == "pending", response.text

    event = wait_status(response.json()["event_id"], "triggered")
    [(dag_id, _, conf, _)] = dag_runs(event.dag_run_id)
    assert (dag_id, conf["email"], conf["termination_date"]) == (
        "employee_offboarding", "grace@officeflow.test", "2026-11-30")


def test_the_documented_stored_endpoints_are_created_with_their_routes(client, admin):
    """docs/gateway.md's BambooHR and Workday endpoint definitions, sent as they stand to the management API."""
    definitions = [json.loads(block) for block in code_blocks("docs/gateway.md", "json")
                   if '"routes"' in block and '"adapter"' in block]
    assert [d["adapter"] for d in definitions] == ["bamboohr", "workday"]
    for definition in definitions:
        created = client.post(API, json=definition, headers=admin)
        assert created.status_code == 201, created.text
        endpoint = created.json()
        assert (endpoint["adapter"], endpoint["organization_id"], endpoint["routes"], endpoint["event_types"]) == (
            definition["adapter"], "acme", definition["routes"], definition["event_types"])
    assert endpoint["verification"]["username"] == "ISU_OfficeFlow"
