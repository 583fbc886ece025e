"""End to end: the ``workflow_insights`` DAG on run history seeded into the platform's metadata DB (through Airflow's
ORM, with known durations, waits, retries and a failure) reads it through the REST API as the read-only service
user, posts the report to the sandbox's Slack and stores it as a document, with the seeded figures; the AI's
suggestions are grounded in them, or the report says why there are none. The hook itself: paging, the service
user's least privilege, a wrong password and an api-server that is down."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from include.officeflow import errors
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.auth_users import INSIGHTS_USER, PASSWORD
from tests.harness.documents import pdf_text
from tests.harness.ports import free_port
from tests.harness.sandbox import SandboxServer

pytestmark = pytest.mark.e2e

DAG_ID = "workflow_insights"
SEEDED = "manager_heads_up"  # a bundled declarative workflow (one task, email_manager) no other e2e test runs
TASK = f"{SEEDED}.email_manager"
CONF = {"manager_name": "Grace Hopper", "manager_email": "grace@officeflow.test", "first_name": "Ada",
        "start_date": "2026-12-14"}
#: (run state, run seconds, task state, task duration, queue wait before the start, try number, deferred wait)
RUNS = [("success", 60, "success", 10.0, 1.0, 1, None),
        ("success", 60, "success", 20.0, 2.0, 2, None),
        ("success", 60, "success", 30.0, 3.0, 1, None),
        ("failed", 60, "failed", 40.0, 5.0, 3, None),
        ("success", 320, "success", 310.0, None, 1, 300.0)]
#: What the seeded runs make, worked out by hand: p50/p95 interpolate between ranks (durations 10, 20, 30, 40,
#: 310; queue waits 1, 2, 3, 5; the fifth task deferred 300 s, so its queue wait cannot be read).
EXPECTED = {"failure_rate": (20.0, "%"), "failures": (1, "count"), "retries": (2, "count"),
            "duration_p50": (30.0, "s"), "duration_p95": (256.0, "s"), "queue_wait_p95": (4.7, "s"),
            "deferred_wait_p95": (300.0, "s")}


def seed_history(platform: AirflowPlatform) -> list[str]:
    """The runs of :data:`RUNS`, finished, written into the platform's metadata DB as Airflow's ORM writes them."""
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    platform.wait_for_dag(SEEDED)
    engine = create_engine(platform.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    run_ids = []
    try:
        with Session(engine) as session:
            dag = SerializedDagModel.get_dag(SEEDED, session=session)
            assert dag is not None
            for n, (run_state, run_seconds, ti_state, duration, queue_wait, tries, deferred) in enumerate(RUNS):
                start = base + timedelta(hours=n)
                run = dag.create_dagrun(run_id=f"seeded__{uuid.uuid4().hex[:10]}", run_after=start, conf=CONF,
                                        run_type=DagRunType.MANUAL, triggered_by=DagRunTriggeredByType.TEST,
                                        state=DagRunState(run_state), session=session)
                run.queued_at, run.start_date = start, start
                run.end_date = start + timedelta(seconds=run_seconds)
                ti = run.get_task_instance("email_manager", session=session)
                ti.state, ti.try_number, ti.max_tries = TaskInstanceState(ti_state), tries, 3
                ti.start_date = start + timedelta(seconds=5)
                ti.end_date = ti.start_date + timedelta(seconds=duration)
                ti.duration = duration
                # A deferred task keeps its first start and is queued again when it resumes.
                ti.queued_dttm = (ti.start_date + timedelta(seconds=deferred) if deferred is not None
                                  else ti.start_date - timedelta(seconds=queue_wait or 0))
                run_ids.append(run.run_id)
            session.commit()
    finally:
        engine.dispose()
    return run_ids


def xcom(platform: AirflowPlatform, run_id: str, task_id: str, key: str = "return_value") -> Any:
    response = platform.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}")
    assert response.status_code == 200, (task_id, key, response.text)
    return response.json()["value"]


@pytest.fixture(scope="module")
def seeded(platform: AirflowPlatform) -> list[str]:
    return seed_history(platform)


@pytest.fixture
def api_connection(platform: AirflowPlatform, monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_AIRFLOW_API", platform.env["AIRFLOW_CONN_OFFICEFLOW_AIRFLOW_API"])
    yield


def test_the_report_has_the_seeded_figures_in_slack_and_in_a_document(platform: AirflowPlatform,
                                                                       sandbox_server: SandboxServer, seeded):
    platform.wait_for_dag(DAG_ID)
    run_id = f"manual__insights_{uuid.uuid4().hex[:8]}"
    response = platform.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns",
                            json={"dag_run_id": run_id, "logical_date": None,
                                  "conf": {"days": 7, "workflows": [SEEDED]}})
    assert response.status_code == 200, response.text
    assert platform.wait_for_run(DAG_ID, run_id, timeout=300)["state"] == "success", (
        platform.task_states(DAG_ID, run_id), platform.logs_tail())

    figures = {f["metric"]: (f["value"], f["unit"]) for f in xcom(platform, run_id, "compute_stats", "figures")
               if f["task"] == TASK}
    assert figures == EXPECTED
    stats = xcom(platform, run_id, "compute_stats", "stats")
    workflow = next(w for w in stats["workflows"] if w["dag_id"] == SEEDED)
    assert (workflow["runs"], workflow["failures"], workflow["duration"]["p50"]) == (5, 1, 60.0)

    # Slack: the report, in the insights channel (#general by default)
    posted = xcom(platform, run_id, "post_report")
    message = next(m for m in sandbox_server.state("slack")["messages"][posted["channel"]] if m["ts"] == posted["ts"])
    text = message["text"]
    assert f"| {SEEDED} | 5 | 1 | 20.0 % | 60.0 s | " in text
    for line in (f"| {TASK} | failure_rate | 20.0 % |", f"| {TASK} | retries | 2 |",
                 f"| {TASK} | duration_p95 | 256.0 s |", f"| {TASK} | queue_wait_p95 | 4.7 s |",
                 f"| {TASK} | deferred_wait_p95 | 300.0 s |"):
        assert line in text

    # The document: the same figures, as a PDF version in the documents store
    stored = xcom(platform, run_id, "store_report")
    content = platform.api("GET", f"/officeflow/api/v1/documents/{stored['document_id']}/content",
                           params={"version": stored["version"]})
    assert content.status_code == 200, content.text
    pdf = pdf_text(content.content)
    assert "Workflow insights" in pdf and "last 7 days" in pdf and f"workflows {SEEDED}" in pdf
    assert all(value in pdf for value in ("20.0 %", "256.0 s", "4.7 s", "300.0 s"))

    # The AI step: its suggestions are grounded in these figures, or the report says why there are none
    ai = xcom(platform, run_id, "suggest")
    kept = xcom(platform, run_id, "report", "kept")
    by_figure = {(f["task"], f["metric"]): f["value"] for f in xcom(platform, run_id, "compute_stats", "figures")}
    if ai["source"] == "ai":
        assert kept, (ai, xcom(platform, run_id, "report", "dropped"))
        assert all(by_figure[(s["task"], s["metric"])] == s["value"] for s in kept)
        assert all(f"- {s['task']} {s['metric']} = " in text for s in kept)
        sent = sandbox_server.state("openai")["requests"][-1]
        assert TASK in json.dumps(sent) and "grace@officeflow.test" not in json.dumps(sent)  # figures, no conf
    else:
        assert kept == [] and "no AI suggestions: " in text and "no AI suggestions: " in pdf


def test_the_hook_pages_through_every_run_and_task_instance(platform: AirflowPlatform, seeded, api_connection,
                                                            monkeypatch):
    from operators.hooks import airflow_api

    monkeypatch.setattr(airflow_api, "PAGE_SIZE", 2)  # the five seeded runs take three pages
    hook = airflow_api.AirflowApiHook()
    since = datetime.now(UTC) - timedelta(days=3)
    runs = {r["run_id"]: r for r in hook.dag_runs(since)}
    assert set(seeded) <= set(runs)
    assert set(runs[seeded[3]]) == {"dag_id", "run_id", "state", "queued_at", "start_date", "end_date"}
    assert runs[seeded[3]]["state"] == "failed"
    tis = [ti for ti in hook.task_instances(since) if ti["run_id"] in seeded]
    assert sorted((ti["try_number"], ti["duration"]) for ti in tis) == [(1, 10.0), (1, 30.0), (1, 310.0), (2, 20.0),
                                                                        (3, 40.0)]
    # Only the workflows asked for: every run and task instance of the seeded one, and nothing else
    assert {r["run_id"] for r in hook.dag_runs(since, dag_ids=[SEEDED])} == set(seeded)
    assert {ti["dag_id"] for ti in hook.task_instances(since, dag_ids=[SEEDED])} == {SEEDED}


def test_the_service_user_reads_runs_and_nothing_else(platform: AirflowPlatform):
    signed_in = httpx.post(f"{platform.base_url}/auth/token", json={"username": INSIGHTS_USER, "password": PASSWORD},
                           timeout=10)
    assert signed_in.status_code == 201, signed_in.text
    headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    assert httpx.get(f"{platform.base_url}/api/v2/dags/~/dagRuns", headers=headers, timeout=10).status_code == 200
    for path in ("/api/v2/connections", "/api/v2/variables", "/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries",
                 "/api/v2/config"):
        assert httpx.get(f"{platform.base_url}{path}", headers=headers, timeout=10).status_code == 403, path


def test_a_wrong_password_is_a_permanent_error_naming_the_connection(platform: AirflowPlatform, monkeypatch):
    from operators.hooks.airflow_api import AirflowApiHook

    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_AIRFLOW_API", json.dumps({
        "conn_type": "http", "host": platform.base_url, "login": INSIGHTS_USER, "password": "not-the-password"}))
    with pytest.raises(errors.AuthError, match="officeflow_airflow_api") as raised:
        AirflowApiHook().dag_runs(datetime.now(UTC))
    assert raised.value.retryable is False and "not-the-password" not in str(raised.value)


def test_an_api_server_that_is_down_is_worth_a_retry(monkeypatch):
    from operators.hooks.airflow_api import AirflowApiHook

    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_AIRFLOW_API", json.dumps({
        "conn_type": "http", "host": f"http://127.0.0.1:{free_port()}", "login": INSIGHTS_USER, "password": PASSWORD}))
    with pytest.raises(errors.Unavailable) as raised:
        AirflowApiHook().task_instances(datetime.now(UTC))
    assert raised.value.retryable is True
