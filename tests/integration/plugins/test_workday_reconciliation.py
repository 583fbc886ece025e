"""Workday's periodic reconciliation (include/officeflow/workday_reconciliation.py) over real HTTP against the sandbox's
Workday workers report (RaaS) through the Workday hook, on the PostgreSQL store and the Airflow DB: what a pass
records, that its runs start (by the dispatcher here; the DAG's own trigger is tests/e2e), that a second pass records
nothing, that a change a Workday notification already brought is left alone, and that a notification arriving after
the reconciliation started its change starts nothing. The hook's errors: bad credentials, a wrong report URL,
throttling and an outage."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from include.officeflow import workday_reconciliation as recon
from include.officeflow.errors import AuthError, NotFound, Unavailable
from include.officeflow.store import WebhookEvent, session_scope
from operators.hooks.workday import WorkdayHook
from plugins.officeflow_gateway.dispatcher import dispatcher
from tests.harness.docs import code_blocks
from tests.harness.endpoints import create_endpoint, delivery_url, workday_headers
from tests.harness.gateway import wait_status
from tests.harness.gateway_checks import dag_runs, run_note

ONBOARDING, OFFBOARDING, ROLE_CHANGE = "employee_onboarding", "employee_offboarding", "employee_role_change"


def days(offset: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


def hook(sandbox, monkeypatch, *, waits: list[float] | None = None, **changes: Any) -> WorkdayHook:
    """The sandbox's Workday connection (with ``changes``) as ``workday_test``; sleeps recorded, not slept."""
    conn = {**sandbox.connections["officeflow_workday"], **changes}
    monkeypatch.setenv("AIRFLOW_CONN_WORKDAY_TEST", json.dumps(conn))
    return WorkdayHook("workday_test", max_attempts=3, max_wait=30,
                       sleep=(waits if waits is not None else []).append)


def worker(sandbox, **columns: str) -> tuple[str, str]:
    """A worker in Workday (the sandbox's report) with a fresh id; their id and work email."""
    worker_id = str(uuid.uuid4().int % 10**7 + 3 * 10**7)
    email = f"mary.{worker_id}@officeflow.test"
    sandbox.put_workday_worker(worker_id, **{
        "First_Name": "Mary", "Last_Name": "Jackson", "Work_Email": email, "Department": "Engineering",
        "Job_Title": "Engineer", "Manager_Email": "admin@officeflow.test", "Active": "1", **columns})
    return worker_id, email


def start(summary: recon.Summary) -> list[WebhookEvent]:
    """The recorded runs started by the gateway's dispatcher (what it does when the DAG's trigger did not); the
    inbox events after."""
    with session_scope() as session:
        found = list(session.scalars(select(WebhookEvent.id).where(
            WebhookEvent.dag_run_id.in_([run["trigger_run_id"] for run in summary.runs]))))
    assert len(found) == len(summary.runs)
    dispatcher.ensure_started()
    dispatcher.wake()
    return [wait_status(event_id, "triggered") for event_id in found]


def workday_delivery(client, endpoint: dict[str, Any], event_type: str, worker_id: str, email: str,
                     **worker_fields: str) -> dict[str, Any]:
    body = json.dumps({"eventId": f"WD-{uuid.uuid4().hex}", "eventType": event_type, "worker": {
        "id": worker_id, "firstName": "Mary", "lastName": "Jackson", "workEmail": email, "department": "Engineering",
        "jobTitle": "Engineer", **worker_fields}}).encode()
    response = client.post(delivery_url(endpoint), content=body, headers=workday_headers(endpoint["secret"]))
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_hook_reads_the_workers_report(sandbox, monkeypatch):
    workers = {entry["Worker_ID"]: entry for entry in hook(sandbox, monkeypatch).get_workers()}
    assert workers["21001"]["First_Name"] == "Katherine" and workers["21001"]["Active"] == "1"
    assert workers["21002"]["Active"] == "0" and workers["21002"]["Termination_Date"] == "2025-06-30"
    assert "Termination_Date" not in workers["21001"]  # RaaS leaves out a column without a value
    [request] = sandbox.requests("workday")
    assert request["method"] == "GET" and "format=json" in request["query"]


def test_bad_credentials_and_a_wrong_report_say_what_to_fix(sandbox, monkeypatch):
    with pytest.raises(AuthError, match=r"Workday 401 .*check the user name and password of connection "
                                        r"'workday_test'") as info:
        hook(sandbox, monkeypatch, password="not-the-password").get_workers()
    assert "not-the-password" not in str(info.value)
    host = sandbox.connections["officeflow_workday"]["host"]
    with pytest.raises(NotFound, match="no such report: check the report URL of connection 'workday_test'"):
        hook(sandbox, monkeypatch, host=host.replace("OfficeFlow_Workers", "Someone_Elses_Report")).get_workers()
    with pytest.raises(AuthError, match=r"'workday_nowhere' is not defined .*report's URL"):
        WorkdayHook("workday_nowhere").get_workers()
    assert not WorkdayHook("workday_nowhere").connection_exists()


def test_throttling_is_waited_out_and_an_outage_raised_after_the_retries(sandbox, monkeypatch):
    waits: list[float] = []
    sandbox.fault("workday", path="/ccx/service/customreport2/", status=429, retry_after=7, count=1)
    assert len(hook(sandbox, monkeypatch, waits=waits).get_workers()) >= 2
    assert waits == [7.0]
    sandbox.fault("workday", path="/ccx/service/customreport2/", status=500, count=5)
    with pytest.raises(Unavailable, match="Workday 500"):
        hook(sandbox, monkeypatch).get_workers()


def test_missed_changes_start_their_workflows_once(client, sandbox, monkeypatch):
    hired, hired_email = worker(sandbox, Hire_Date=days(3), Job_Effective_Date=days(3))
    promoted, _ = worker(sandbox, Hire_Date="2022-04-04", Job_Effective_Date=days(-2), Job_Title="Staff Engineer")
    leaving, leaving_email = worker(sandbox, Hire_Date="2019-09-02", Job_Effective_Date="2019-09-02",
                                    Termination_Date=days(-1), Active="0")
    entries = hook(sandbox, monkeypatch).get_workers()

    summary = recon.reconcile(entries)
    assert summary.counts() == {"workers": len(entries), "changes": 3, "already_known": 0, "recorded": 3,
                                "not_started": 0, "unusable": []}
    assert {(run["trigger_dag_id"], run["conf"]["employee_id"]) for run in summary.runs} == {
        (ONBOARDING, hired), (ROLE_CHANGE, promoted), (OFFBOARDING, leaving)}
    started = {event.dag_id: event for event in start(summary)}
    assert {event.endpoint_id for event in started.values()} == {recon.ENDPOINT}

    [(_, _, onboarding, _)] = dag_runs(started[ONBOARDING].dag_run_id)
    assert {key: onboarding.get(key) for key in ("first_name", "last_name", "email", "start_date", "manager_email",
                                                 "source", "organization_id", "event_type")} == {
        "first_name": "Mary", "last_name": "Jackson", "email": hired_email, "start_date": days(3),
        "manager_email": "admin@officeflow.test", "source": "workday-reconciliation", "organization_id": "default",
        "event_type": "employee.created"}
    assert started[ONBOARDING].provider_event_id == f"{hired}:hire:{days(3)}"
    [(_, _, role_change, _)] = dag_runs(started[ROLE_CHANGE].dag_run_id)
    assert role_change["job_title"] == "Staff Engineer"
    [(_, _, offboarding, _)] = dag_runs(started[OFFBOARDING].dag_run_id)
    assert (offboarding["email"], offboarding["termination_date"]) == (leaving_email, days(-1))
    assert "started by Workday reconciliation event employee.created" in (
        run_note(started[ONBOARDING].dag_run_id) or "")

    again = recon.reconcile(hook(sandbox, monkeypatch).get_workers())
    assert (again.changes, again.already_known, again.recorded, again.runs) == (3, 3, 0, [])


def test_a_change_a_notification_brought_is_left_alone(client, sandbox, monkeypatch, admin):
    endpoint = create_endpoint(client, admin, adapter="workday", target_dag_id=ONBOARDING,
                               event_types=["employee.created"], routes={"employee.job_changed": ROLE_CHANGE})
    hired, email = worker(sandbox, Hire_Date=days(5))
    promoted, promoted_email = worker(sandbox, Hire_Date="2022-04-04", Job_Effective_Date=days(-3),
                                      Job_Title="Staff Engineer")
    workday_delivery(client, endpoint, "Hire", hired, email, hireDate=days(5))
    # Workday notified an earlier job change of the promoted worker, not this one.
    workday_delivery(client, endpoint, "Change Job", promoted, promoted_email, jobTitle="Senior Engineer")

    summary = recon.reconcile(hook(sandbox, monkeypatch).get_workers())
    assert (summary.changes, summary.already_known, summary.recorded) == (2, 1, 1)
    [run] = summary.runs
    assert (run["trigger_dag_id"], run["conf"]["employee_id"], run["conf"]["job_title"]) == (
        ROLE_CHANGE, promoted, "Staff Engineer")


def test_a_notification_after_the_reconciliation_started_the_change_starts_nothing(client, sandbox, monkeypatch,
                                                                                     admin):
    endpoint = create_endpoint(client, admin, adapter="workday", target_dag_id=ONBOARDING)
    hired, email = worker(sandbox, Hire_Date=days(2))
    [reconciled] = start(recon.reconcile(hook(sandbox, monkeypatch).get_workers()))

    late = workday_delivery(client, endpoint, "Hire", hired, email, hireDate=days(2))
    assert late["status"] == "pending"
    event = wait_status(late["event_id"], "ignored")
    assert event.error == (f"already started by the Workday reconciliation (inbox event {reconciled.id}, "
                           f"run {reconciled.dag_run_id})")
    assert dag_runs(late["dag_run_id"]) == []

    # Someone else's hire through the same endpoint still starts.
    other, other_email = f"9{hired}", f"other.{email}"
    fresh = workday_delivery(client, endpoint, "Hire", other, other_email, hireDate=days(2))
    wait_status(fresh["event_id"], "triggered")


def test_the_documented_connection_reads_the_report(sandbox, monkeypatch):
    """docs/gateway.md's connection, pointed at the sandbox: Workday's services host -> the sandbox's ``/workday``,
    tenant ``acme`` -> the sandbox's, the placeholder password -> the integration user's."""
    [command] = [block for block in code_blocks("docs/gateway.md", "bash")
                 if "AIRFLOW_CONN_OFFICEFLOW_WORKDAY" in block]
    name, value = re.search(r"export (\w+)='(.*?)'", command, flags=re.S).groups()
    documented = json.loads(value)
    ours = sandbox.connections["officeflow_workday"]
    host = documented["host"].replace("https://wd2-impl-services1.workday.com", f"{sandbox.url}/workday").replace(
        "/acme/", "/officeflow/")
    assert (host, documented["login"], documented["password"]) == (ours["host"], ours["login"], "<password>")
    monkeypatch.setenv(name, json.dumps({**documented, "host": host, "password": ours["password"]}))
    assert {entry["Worker_ID"] for entry in WorkdayHook().get_workers()} >= {"21001", "21002"}


def test_without_a_connection_the_pass_is_skipped(settings_env):
    """No Workday here: the DAG's task says so and is skipped, rather than failing every hour."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import AirflowSkipException

    from tests.harness.environment import REPO_ROOT

    settings_env.setenv("OFFICEFLOW_WORKDAY_CONN_ID", "workday_nowhere")
    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "workday_reconciliation.py"))
    task = bag.dags["workday_reconciliation"].task_dict["find_missed_changes"]
    with pytest.raises(AirflowSkipException, match="no Workday connection 'workday_nowhere': nothing to reconcile"):
        task.python_callable()
