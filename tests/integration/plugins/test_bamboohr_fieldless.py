"""BambooHR events without field values (``Deleted`` entries, event-based ``employee.*`` payloads): stored and
accepted at once, their employee record read from BambooHR's API (the sandbox's) when the dispatcher starts the run.

In-process gateway and dispatcher on real PostgreSQL and Airflow DBs, the record over HTTP from the sandbox; what
each kind of delivery becomes: the stored event, then the run and its conf.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from plugins.officeflow_gateway.dispatcher import dispatch_one
from sandbox.bamboohr.samples import sample_deletion, sample_event, sample_hire
from tests.harness.gateway import URL, signed, wait_status
from tests.harness.gateway_checks import dag_runs, events, run_note

ONBOARDING, OFFBOARDING, ROLE_CHANGE = "employee_onboarding", "employee_offboarding", "employee_role_change"


def employee(sandbox, **changes: Any) -> tuple[str, str]:
    """A new employee in BambooHR (the sandbox); their id and work email."""
    email = f"grace.{uuid.uuid4().hex[:8]}@officeflow.test"
    fields = {"firstName": "Grace", "lastName": "Hopper", "workEmail": email, "department": "Engineering",
              "jobTitle": "Software Engineer", "hireDate": "2025-02-03", "supervisor": "Workspace Admin",
              "supervisorEmail": "admin@officeflow.test", **changes}
    return sandbox.add_bamboohr_employee(**fields), email


def deliver(client, payload: dict[str, Any], cid: str | None = None, timestamp: str | None = None) -> dict[str, Any]:
    """Post ``payload`` signed, stamped ``timestamp`` (default: now, to the microsecond: the sandbox's employee ids
    start again in every test, the Airflow DB's runs stay, so each event must be new)."""
    stamp = timestamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    if "employees" in payload:
        payload["employees"][0]["timestamp"] = stamp
    else:
        payload["timestamp"] = stamp
    body = json.dumps(payload).encode()
    headers = signed(body, **({"X-Correlation-ID": cid} if cid else {}))
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def field_based(action: str, employee_id: str, changed: list[str]) -> dict[str, Any]:
    return {"employees": [{"action": action, "id": employee_id, "changedFields": changed, "fields": {}}]}


def terminate(sandbox, employee_id: str) -> None:
    sandbox.update_bamboohr_employee(employee_id, status="Inactive", employmentHistoryStatus="Terminated",
                                     terminationDate="2026-12-18")


def promote(sandbox, employee_id: str) -> None:
    sandbox.update_bamboohr_employee(employee_id, jobTitle="Engineering Manager", department="Platform")


KINDS: list[Any] = [
    pytest.param(lambda e: field_based("Deleted", e, []), None, "employee.deleted", OFFBOARDING,
                 id="field-based-deleted"),
    pytest.param(lambda e: field_based("Updated", e, ["Termination Date", "Status"]), terminate,
                 "employee.terminated", OFFBOARDING, id="field-based-termination-without-values"),
    pytest.param(lambda e: field_based("Updated", e, ["Job Title"]), promote, "employee.job_changed", ROLE_CHANGE,
                 id="field-based-job-change-without-values"),
    pytest.param(lambda e: sample_event("employee.created", e), None, "employee.created", ONBOARDING,
                 id="event-based-created"),
    pytest.param(lambda e: sample_event("employee.updated", e, ["terminationDate"]), terminate,
                 "employee.terminated", OFFBOARDING, id="event-based-termination-date"),
    pytest.param(lambda e: sample_event("employee.updated", e, ["status"]), terminate, "employee.terminated",
                 OFFBOARDING, id="event-based-status-inactive"),
    pytest.param(lambda e: sample_event("employee.updated", e, ["jobTitle", "department"]), promote,
                 "employee.job_changed", ROLE_CHANGE, id="event-based-job-change"),
    pytest.param(lambda e: sample_event("employee.deleted", e), None, "employee.deleted", OFFBOARDING,
                 id="event-based-deleted"),
]


@pytest.mark.parametrize(("make", "change", "event_type", "dag_id"), KINDS)
def test_each_kind_of_fieldless_delivery_starts_its_workflow_with_the_record(
        client, sandbox, make, change, event_type, dag_id):
    employee_id, email = employee(sandbox)
    if change is not None:
        change(sandbox, employee_id)
    cid = f"fieldless-{employee_id}"
    data = deliver(client, make(employee_id), cid)
    # Accepted before BambooHR was asked: stored pending, its run id known.
    assert data["status"] == "pending" and data["dag_run_id"] and data["correlationId"] == cid

    event = wait_status(data["event_id"], "triggered")
    assert (event.event_type, event.dag_id, event.dag_run_id) == (event_type, dag_id, data["dag_run_id"])
    assert event.payload["record"]["source"] == "bamboohr"
    [(run_dag, _, conf, _)] = dag_runs(event.dag_run_id)
    assert run_dag == dag_id and conf == event.payload["conf"]
    assert {k: conf.get(k) for k in ("employee_id", "event_type", "email", "first_name", "last_name",
                                     "organization_id", "correlation_id", "source")} == {
        "employee_id": employee_id, "event_type": event_type, "email": email, "first_name": "Grace",
        "last_name": "Hopper", "organization_id": "default", "correlation_id": cid, "source": "bamboohr"}
    if dag_id == OFFBOARDING and change is terminate:
        assert conf["termination_date"] == "2026-12-18"
    if dag_id == ROLE_CHANGE:
        assert (conf["job_title"], conf["department"]) == ("Engineering Manager", "Platform")
    if dag_id == ONBOARDING:
        assert (conf["start_date"], conf["manager_email"]) == ("2025-02-03", "admin@officeflow.test")
    assert "termination_date" not in conf or conf["termination_date"] != "0000-00-00"
    assert f"started by BambooHR event {event_type}" in (run_note(event.dag_run_id) or "")
    reads = [r for r in sandbox.requests("bamboohr") if r["method"] == "GET"]
    assert [r["path"] for r in reads] == [f"/api/gateway.php/officeflow/v1/employees/{employee_id}/"]


def test_a_status_change_to_active_is_ignored_after_the_read(client, sandbox):
    employee_id, _ = employee(sandbox)
    data = deliver(client, sample_event("employee.updated", employee_id, ["status"]))
    assert data["status"] == "pending"
    event = wait_status(data["event_id"], "ignored")
    assert (event.event_type, event.dag_id) == ("employee.updated", None)
    assert dag_runs(data["dag_run_id"]) == []


def test_updates_of_other_fields_are_ignored_without_a_read(client, sandbox):
    data = deliver(client, sample_event("employee.updated", "1", ["homePhone"]))
    assert (data["status"], data["dag_run_id"]) == ("ignored", None)
    assert sandbox.requests("bamboohr") == []


def test_a_deleted_employee_is_offboarded_with_the_fields_of_their_earlier_event(client, sandbox):
    """BambooHR answers 404 for a deleted employee: the fields come from the inbox (their hire, posted with fields)."""
    employee_id = str(uuid.uuid4().int % 10**6 + 10**6)
    hire = deliver(client, sample_hire(employee_id))
    wait_status(hire["event_id"], "triggered")
    data = deliver(client, sample_event("employee.deleted", employee_id))
    event = wait_status(data["event_id"], "triggered")
    assert (event.dag_id, event.payload["record"]["source"]) == (OFFBOARDING, "inbox")
    [(_, _, conf, _)] = dag_runs(event.dag_run_id)
    assert (conf["email"], conf["first_name"], conf["event_type"]) == (
        f"ada.lovelace.{employee_id}@officeflow.test", "Ada", "employee.deleted")


def test_an_employee_nobody_knows_is_rejected(client, sandbox):
    data = deliver(client, field_based("Deleted", "424242", []))
    event = wait_status(data["event_id"], "rejected")
    assert "BambooHR 404" in (event.error or "") and "no earlier event" in (event.error or "")
    assert dag_runs(data["dag_run_id"]) == []


def test_a_record_without_a_work_email_is_refused_by_the_workflow(client, sandbox):
    employee_id, _ = employee(sandbox, workEmail="")
    data = deliver(client, sample_event("employee.updated", employee_id, ["jobTitle"]))
    event = wait_status(data["event_id"], "rejected")
    assert "refused the run" in (event.error or "") and "email" in (event.error or "")


def pending_after_one_attempt(event_id: str):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        [event] = [e for e in events() if e.id == event_id]
        if event.attempts:
            return event
        time.sleep(0.1)
    raise AssertionError(f"event {event_id} was not attempted")


def test_bamboohr_throttling_keeps_the_event_pending_until_its_retry_after(client, sandbox, env):
    env.set("OFFICEFLOW_DISPATCH_BASE_DELAY_SECONDS", "2")
    employee_id, email = employee(sandbox)
    sandbox.fault("bamboohr", path="/employees/", method="GET", status=429, retry_after=120, count=1)
    data = deliver(client, sample_event("employee.created", employee_id))
    event = pending_after_one_attempt(data["event_id"])
    assert event.status == "pending" and "BambooHR 429" in (event.error or "")
    assert event.next_attempt_at is not None
    wait = (event.next_attempt_at.replace(tzinfo=event.next_attempt_at.tzinfo or UTC) - datetime.now(UTC))
    assert wait.total_seconds() > 100  # its Retry-After, not the 2 s backoff
    assert "record" not in event.payload

    assert dispatch_one(event.id) == "triggered"  # BambooHR answers again: the retry reads and starts the run
    [(_, _, conf, _)] = dag_runs(event.dag_run_id)
    assert conf["email"] == email


def test_bamboohr_down_or_misconfigured_never_fails_the_delivery(client, sandbox, env, monkeypatch):
    env.set("OFFICEFLOW_DISPATCH_BASE_DELAY_SECONDS", "60")
    sandbox.fault("bamboohr", path="/employees/", status=500, count=10)
    down = deliver(client, sample_event("employee.deleted", "1"))
    event = pending_after_one_attempt(down["event_id"])
    assert event.status == "pending" and "BambooHR 500" in (event.error or "")

    conn = json.loads(sandbox.env()["AIRFLOW_CONN_OFFICEFLOW_BAMBOOHR"])
    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_BAMBOOHR", json.dumps({**conn, "login": "revoked-key"}))
    sandbox.reset("bamboohr")
    misconfigured = deliver(client, sample_event("employee.deleted", "2"))
    event = pending_after_one_attempt(misconfigured["event_id"])
    assert event.status == "pending" and "check the API key of connection 'officeflow_bamboohr'" in event.error
    assert "revoked-key" not in event.error


def test_a_dead_lettered_read_is_replayed_once_the_connection_is_fixed(client, sandbox, env, monkeypatch, admin):
    env.set("OFFICEFLOW_DISPATCH_MAX_ATTEMPTS", "1")
    employee_id, email = employee(sandbox)
    promote(sandbox, employee_id)
    good = sandbox.env()["AIRFLOW_CONN_OFFICEFLOW_BAMBOOHR"]
    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_BAMBOOHR", json.dumps({**json.loads(good), "login": "revoked-key"}))
    data = deliver(client, sample_event("employee.updated", employee_id, ["jobTitle"]))
    dead = wait_status(data["event_id"], "dead")
    assert "401" in (dead.error or "") and "check the API key" in (dead.error or "")

    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_BAMBOOHR", good)
    replay = client.post(f"/api/v1/events/{dead.id}/replay", headers=admin)
    assert replay.status_code == 202, replay.text
    event = wait_status(dead.id, "triggered")
    assert (event.dag_id, event.dag_run_id) == (ROLE_CHANGE, data["dag_run_id"])
    [(_, _, conf, _)] = dag_runs(event.dag_run_id)
    assert (conf["email"], conf["job_title"]) == (email, "Engineering Manager")


def test_a_redelivered_fieldless_event_reads_once_and_starts_one_run(client, sandbox):
    employee_id, _ = employee(sandbox)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    first = deliver(client, sample_deletion(employee_id), timestamp=stamp)
    wait_status(first["event_id"], "triggered")
    again = deliver(client, sample_deletion(employee_id), timestamp=stamp)
    assert again["events"][0]["duplicate"] is True and again["dag_run_id"] == first["dag_run_id"]
    assert len(dag_runs(first["dag_run_id"])) == 1
    assert len([r for r in sandbox.requests("bamboohr") if r["method"] == "GET"]) == 1


def test_no_claim_is_held_while_bamboohr_answers(client, sandbox, monkeypatch):
    """The record is read before the event is claimed: while a slow BambooHR answers, the event's row is not locked
    (another dispatcher, an admin's replay could take it) and no transaction is open; the run starts after."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import select

    from include.officeflow.store import WebhookEvent, session_scope
    from plugins.officeflow_gateway import dispatcher as dispatch

    dispatch.dispatcher.stop()  # this test drives the dispatcher itself
    monkeypatch.setattr(dispatch.dispatcher, "ensure_started", lambda: None)
    employee_id, email = employee(sandbox)
    data = deliver(client, sample_event("employee.created", employee_id))
    sandbox.fault("bamboohr", path="/employees/", method="GET", latency_ms=2500, count=1)
    with ThreadPoolExecutor(1) as pool:
        dispatching = pool.submit(dispatch_one, data["event_id"])
        time.sleep(1.0)  # the read is in flight
        assert not dispatching.done()
        with session_scope() as session:
            row = session.scalars(select(WebhookEvent).where(WebhookEvent.id == data["event_id"])
                                  .with_for_update(nowait=True)).one()  # raises if the dispatcher held it
            assert row.status == "pending"
        assert dispatching.result(timeout=30) == "triggered"
    [(_, _, conf, _)] = dag_runs(data["dag_run_id"])
    assert conf["email"] == email
