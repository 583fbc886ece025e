"""End to end: BambooHR webhooks drive the HR workflows in real Airflow processes (PostgreSQL), against the
SaaS sandbox (identity, calendar, Slack), a real SMTP server and a real S3 server (MinIO).

- a new hire (``employee.created``) is onboarded: account and groups, welcome pack in S3 attached to the
  welcome email, the manager's emails, the Slack channel and intro, both first-day meetings, the
  equipment approved in Slack (receipt stored, decision emailed), the manager's summary DM;
- a job change (``employee.job_changed``) moves the account's groups and emails the person;
- a termination (``employee.terminated``) is approved, disables and deletes the account, archives the
  channel, hands the documents to the manager and sends the exit email;
- a run whose input is invalid fails in its first task, touches no provider, and is announced in Slack.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from sandbox.email.smtp_sink import SmtpSink
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.e2e_support import (
    MANAGER,
    approval_message,
    decide,
    store_rows,
    task_state,
    wait_for_dag,
    xcom,
)
from tests.harness.gateway import signed
from tests.harness.sandbox import SandboxServer

pytestmark = pytest.mark.e2e
WEBHOOK = "/officeflow/webhooks/bamboohr"
ALERTS_CHANNEL = "C0ALERTS00"
DAGS = ("employee_onboarding", "employee_offboarding", "employee_role_change")


def bamboohr(action: str, employee_id: str, fields: dict[str, Any], changed: list[str]) -> bytes:
    entry = {"action": action, "id": employee_id, "timestamp": "2026-11-20T09:00:00+0000",
             "changedFields": changed, "fields": fields}
    return json.dumps({"employees": [entry]}).encode()


def deliver(platform: AirflowPlatform, body: bytes, correlation_id: str) -> dict[str, Any]:
    response = httpx.post(platform.base_url + WEBHOOK, content=body,
                          headers=signed(body, **{"X-Correlation-ID": correlation_id}), timeout=30)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["dag_run_id"], accepted
    return accepted


def approve(platform: AirflowPlatform, sandbox: SandboxServer, dag_id: str, run_id: str, task_id: str) -> None:
    """Click Approve on the run's approval message as the manager once the task awaits input."""
    decide(platform, approval_message(platform, sandbox, dag_id, run_id, task_id))


def google_user(sandbox: SandboxServer, email: str) -> dict[str, Any] | None:
    return next((u for u in sandbox.state("google")["users"].values() if u["primaryEmail"] == email), None)


def google_groups(sandbox: SandboxServer, email: str) -> set[str]:
    """The e-mail addresses of the Google groups ``email`` is a member of, in the sandbox."""
    state = sandbox.state("google")
    return {group["email"] for gid, group in state["groups"].items()
            if email in {m["email"].lower() for m in state["members"].get(gid, {}).values()}}


def mails(smtp: SmtpSink, address: str) -> dict[str, Any]:
    return {m["Subject"]: m for m in smtp.messages() if m["To"] == address}


def task_log(platform: AirflowPlatform, dag_id: str, run_id: str, task_id: str) -> str:
    response = platform.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1",
                            headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    return json.dumps(response.json())


@pytest.fixture(scope="module")
def hr_platform(platform: AirflowPlatform, sandbox_server: SandboxServer) -> AirflowPlatform:
    sandbox_server.reset()
    for dag_id in DAGS:
        wait_for_dag(platform, dag_id)
    return platform


def test_new_hire_is_onboarded_end_to_end_then_changes_role_then_leaves(
        hr_platform: AirflowPlatform, sandbox_server: SandboxServer, smtp: SmtpSink, store: str, s3_server):
    platform, sandbox = hr_platform, sandbox_server
    employee_id = str(uuid.uuid4().int % 10**7)
    email = f"grace.hopper.{employee_id}@officeflow.test"
    personal = f"grace.{employee_id}@home.example"
    fields = {"firstName": "Grace", "lastName": "Hopper", "workEmail": email, "homeEmail": personal,
              "department": "Engineering", "jobTitle": "Software Engineer", "hireDate": "2026-12-07",
              "location": "Berlin", "supervisor": "Pat Manager", "supervisorEmail": MANAGER}

    # --- onboarding ------------------------------------------------------------------------------
    correlation = f"e2e-onboard-{employee_id}"
    started = time.monotonic()
    accepted = deliver(platform, bamboohr("Created", employee_id, fields, list(fields)), correlation)
    run_id = accepted["dag_run_id"]
    request = approval_message(platform, sandbox, "employee_onboarding", run_id, "equipment.approval")
    shown = json.dumps(request["blocks"])  # the AI's bundle, with its reasons, is what the manager approves
    assert "AI recommendation (onboarding_bundle@1" in shown and "because job_title = Software Engineer" in shown
    decide(platform, request)
    run = platform.wait_for_run("employee_onboarding", run_id, timeout=300)
    assert run["state"] == "success", platform.logs_tail()
    print(f"\nonboarding webhook -> success: {time.monotonic() - started:.1f}s")
    assert run["conf"]["organization_id"] == "default" and run["conf"]["correlation_id"] == correlation
    # The run's note names the hire and the event, and ends with the summary.
    assert run["note"].startswith(f"✔ **Done** · **Grace Hopper ({email})** · started by BambooHR event "
                                  f"employee.created (employee.created:{employee_id}:"), run["note"]
    assert f"correlation `{correlation}`" in run["note"] and f"Onboarding of Grace Hopper ({email}) is done." \
        in run["note"], run["note"]

    account = google_user(sandbox, email)
    assert account is not None and account["name"]["givenName"] == "Grace" and not account["suspended"]
    provisioned = xcom(platform, "employee_onboarding", run_id, "provision_account")
    assert provisioned["created"] is True and "engineering@officeflow.test" in provisioned["groups"]
    # The approved bundle's access groups were granted after the account existed.
    recommended = xcom(platform, "employee_onboarding", run_id, "equipment.recommend")
    assert recommended["source"] == "ai" and recommended["data"]["access_groups"], recommended
    granted = xcom(platform, "employee_onboarding", run_id, "equipment.grant_access")
    assert granted["groups"] == recommended["data"]["access_groups"], granted
    assert set(recommended["data"]["access_groups"]) <= google_groups(sandbox, email)

    # The welcome pack is a stored, checksummed version in S3, and the welcome email carries it.
    pack = xcom(platform, "employee_onboarding", run_id, "welcome_pack")
    [(uri, owner)] = store_rows(store, "SELECT v.storage_uri, d.owner FROM document_versions v JOIN documents d "
                                       "ON d.id = v.document_id WHERE v.document_id = :id", id=pack["document_id"])
    assert uri.startswith("s3://officeflow-docs-versioned/e2e/")
    received = mails(smtp, personal)
    welcome = received["Welcome to OfficeFlow, Grace!"]
    # The AI's personal paragraph is in the welcome email, and the run says which texts were used.
    texts = xcom(platform, "employee_onboarding", run_id, "personalise")
    assert texts["source"] == "ai" and texts["prompt"] == "onboarding_welcome@1", texts
    assert texts["data"]["email_intro"] in welcome.get_body(preferencelist=("plain",)).get_content()
    summary = xcom(platform, "employee_onboarding", run_id, "summarise")  # the note shows its start
    assert "- welcome texts: personalised by AI (onboarding_welcome@1)" in summary, summary
    [attachment] = [part for part in welcome.iter_attachments()]
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content().startswith(b"%PDF")
    assert "Your first day on 2026-12-07: where, when and what to bring" in received, list(received)
    to_manager = mails(smtp, MANAGER)
    assert "Grace Hopper joins your team on 2026-12-07" in to_manager
    assert any(s.startswith("Equipment for Grace Hopper") and s.endswith(": approved") for s in to_manager), \
        list(to_manager)

    # Slack: the channel with the intro; the manager's summary DM.
    slack = sandbox.state("slack")
    channel = next(c for c in slack["channels"].values() if c.get("name") == f"onboarding-grace-hopper-{employee_id}")
    assert any("Welcome, Grace" in json.dumps(m) for m in slack["messages"][channel["id"]])
    assert any("Onboarding of Grace Hopper" in m.get("text", "") for msgs in slack["messages"].values()
               for m in msgs), "no summary DM"

    # The two first-day meetings are in the calendar, and the equipment receipt was stored.
    for task_id in ("schedule_manager_1on1", "schedule_it_setup"):
        meeting = xcom(platform, "employee_onboarding", run_id, task_id)
        assert email in meeting["attendees"] and meeting["event_id"], meeting
    receipt = xcom(platform, "employee_onboarding", run_id, "equipment.receipt")
    assert receipt["version"] == 1

    # Every task's log carries the run's organization and correlation ids.
    log = task_log(platform, "employee_onboarding", run_id, "provision_account")
    assert correlation in log and "organizationId" in log, log[:2000]

    # --- role change -----------------------------------------------------------------------------
    changed = {**fields, "department": "Sales", "jobTitle": "Account Executive"}
    accepted = deliver(platform, bamboohr("Updated", employee_id, changed, ["department", "jobTitle"]),
                       f"e2e-role-{employee_id}")
    run = platform.wait_for_run("employee_role_change", accepted["dag_run_id"], timeout=240)
    assert run["state"] == "success", platform.logs_tail()
    assert run["note"].startswith(f"✔ **Done** · **Grace Hopper ({email})** · started by BambooHR event "
                                  "employee.job_changed"), run["note"]
    assert "success" in run["note"].split("---")[1], run["note"]  # no DAG result: the steps' tally
    moved = xcom(platform, "employee_role_change", accepted["dag_run_id"], "update_account")
    assert "engineering@officeflow.test" in moved["removed"], moved
    # Sales was added now, or already granted with the approved bundle; the groups are the new role's.
    assert "sales@officeflow.test" in google_groups(sandbox, email), moved
    assert "engineering@officeflow.test" not in google_groups(sandbox, email), moved
    assert "Your new role: Account Executive" in mails(smtp, email)

    # --- offboarding -----------------------------------------------------------------------------
    leaving = {**changed, "terminationDate": "2026-12-31", "status": "Inactive"}
    accepted = deliver(platform, bamboohr("Updated", employee_id, leaving, ["terminationDate", "status"]),
                       f"e2e-offboard-{employee_id}")
    run_id = accepted["dag_run_id"]
    approve(platform, sandbox, "employee_offboarding", run_id, "approval")
    run = platform.wait_for_run("employee_offboarding", run_id, timeout=300)
    assert run["state"] == "success", platform.logs_tail()

    disabled = xcom(platform, "employee_offboarding", run_id, "disable_account")
    assert disabled["status"] != "active" and "sales@officeflow.test" in disabled["removed"], disabled
    assert xcom(platform, "employee_offboarding", run_id, "delete_after_retention")["deleted"] is True
    assert google_user(sandbox, email) is None  # retention 0 in the e2e platform: deleted at once
    assert sandbox.state("slack")["channels"][channel["id"]]["is_archived"] is True
    [(new_owner, tags)] = store_rows(store, "SELECT owner, tags FROM documents WHERE id = :id", id=pack["document_id"])
    assert new_owner == MANAGER and tags["archived"] == "true"
    assert owner != new_owner
    assert "Your last day on 2026-12-31: what happens next" in mails(smtp, personal)
    assert "Offboarding Grace Hopper: last day 2026-12-31" in mails(smtp, MANAGER)


def test_a_rejected_recommendation_provisions_nothing_it_recommended(
        hr_platform: AirflowPlatform, sandbox_server: SandboxServer):
    platform, sandbox = hr_platform, sandbox_server
    employee_id = str(uuid.uuid4().int % 10**7)
    email = f"alan.turing.{employee_id}@officeflow.test"
    fields = {"firstName": "Alan", "lastName": "Turing", "workEmail": email, "department": "Engineering",
              "jobTitle": "Software Engineer", "hireDate": "2026-12-07", "supervisorEmail": MANAGER}
    run_id = deliver(platform, bamboohr("Created", employee_id, fields, list(fields)), f"e2e-reject-{employee_id}")[
        "dag_run_id"]
    request = approval_message(platform, sandbox, "employee_onboarding", run_id, "equipment.approval")
    assert "AI recommendation" in json.dumps(request["blocks"])
    decide(platform, request, approve=False)
    run = platform.wait_for_run("employee_onboarding", run_id, timeout=300)
    assert run["state"] == "success", platform.logs_tail()
    recommended = xcom(platform, "employee_onboarding", run_id, "equipment.recommend")["data"]
    provisioned = xcom(platform, "employee_onboarding", run_id, "provision_account")
    extra = set(recommended["access_groups"]) - set(provisioned["groups"])
    assert extra, recommended  # the recommendation asked for more than the role's mapping grants...
    for task_id in ("equipment.grant_access", "equipment.receipt"):  # ...and a Reject granted none of it
        assert task_state(platform, "employee_onboarding", run_id, task_id) == "skipped", task_id
    assert google_groups(sandbox, email) == set(provisioned["groups"])


def test_invalid_input_fails_first_touches_nothing_and_alerts_slack(
        hr_platform: AirflowPlatform, sandbox_server: SandboxServer):
    platform = hr_platform
    sandbox_server.reset()
    run_id = f"e2e-invalid-{uuid.uuid4().hex[:8]}"
    hire = {"first_name": "No", "last_name": "Body", "email": "nobody@officeflow.test"}
    # What the form's schema can judge (a date, a time zone) is refused before a run exists...
    for field, value in (("start_date", "31/12/2026"), ("time_zone", "Mars/Olympus")):
        refused = platform.api("POST", "/api/v2/dags/employee_onboarding/dagRuns", json={
            "dag_run_id": run_id, "logical_date": None, "conf": {**hire, field: value}})
        assert refused.status_code == 400 and field in refused.text and value in refused.text, refused.text
    # ...and what only the workflow's rules can judge fails the run in its first task.
    response = platform.api("POST", "/api/v2/dags/employee_onboarding/dagRuns", json={
        "dag_run_id": run_id, "logical_date": None,
        "conf": {**hire, "email": "nobody@officeflow", "personal_email": "home@localhost"}})
    assert response.status_code == 200, response.text
    run = platform.wait_for_run("employee_onboarding", run_id, timeout=180)
    assert run["state"] == "failed"
    assert task_state(platform, "employee_onboarding", run_id, "plan") == "failed"
    assert task_state(platform, "employee_onboarding", run_id, "provision_account") == "upstream_failed"
    log = task_log(platform, "employee_onboarding", run_id, "plan")
    assert "'nobody@officeflow' is not an email address" in log and "'home@localhost' is not an email" in log
    for service in ("google", "microsoft", "okta"):
        assert sandbox_server.requests(service) == [], service

    # The DAG's on_failure_callback posts the failure to #officeflow-alerts.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        alerts = sandbox_server.state("slack")["messages"].get(ALERTS_CHANNEL, [])
        if any(run_id in json.dumps(m) for m in alerts):
            break
        time.sleep(1)
    else:
        raise AssertionError(f"no failure alert for {run_id}: {sandbox_server.state('slack')['messages'].keys()}\n"
                             f"{platform.logs_tail()}")
