"""Workflow lifecycle events (plugins/officeflow_listeners/lifecycle.py): real state changes of a run of an
OfficeFlow DAG in a migrated Airflow metadata DB, made by Airflow's own code (``DagRun.update_state``, the
scheduler's start of a run, ``TaskInstance.handle_failure``), reach the plugin's listener through Airflow's
listener manager and leave exactly their events in the store's outbox. The task runner's side (a worker's failed
task) and a whole run through real Airflow processes are in tests/e2e/test_slack_approval.py."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from include.officeflow.store import OutboxEvent, session_scope
from plugins.officeflow_listeners import lifecycle

DAG_ID = "officeflow_approval_smoke"  # an OfficeFlow workflow (tagged "officeflow"), two tasks
CONF = {"organization_id": "acme", "correlation_id": "cid-42", "approver": "admin@officeflow.test"}


def outbox(store_url: str | None = None) -> list[dict[str, Any]]:
    with session_scope(store_url) as session:
        return [row.event for row in session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))]


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


@pytest.fixture
def airflow_session(airflow_db, clean_store) -> Iterator[Any]:
    from airflow.utils.session import create_session

    with create_session() as session:
        yield session


def queued_run(session: Any, conf: dict[str, Any] | None = None) -> Any:
    """A queued run of the smoke DAG in the test's Airflow DB, as a trigger leaves it."""
    from airflow._shared.timezones import timezone
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    dag = SerializedDagModel.get_dag(DAG_ID, session=session)
    assert dag is not None and "officeflow" in dag.tags
    run = dag.create_dagrun(run_id=f"manual__{uuid.uuid4().hex[:12]}", run_after=timezone.utcnow(),
                            conf=CONF if conf is None else conf, run_type=DagRunType.MANUAL,
                            triggered_by=DagRunTriggeredByType.TEST, state=DagRunState.QUEUED, session=session)
    run.dag = dag
    session.commit()
    return run


def start(run: Any, session: Any) -> None:
    """What the scheduler does to a queued run it starts (``_start_queued_dagruns``)."""
    from airflow.utils.state import DagRunState

    run.state = DagRunState.RUNNING
    run.notify_dagrun_state_changed(msg="started")
    session.commit()


def finish_tasks(run: Any, session: Any, **states: str) -> None:
    for ti in run.get_task_instances(session=session):
        ti.state = states.get(ti.task_id, "success")
    session.commit()


def test_a_run_that_starts_and_succeeds_writes_started_then_succeeded(airflow_session):
    run = queued_run(airflow_session)
    start(run, airflow_session)
    finish_tasks(run, airflow_session)
    run.update_state(session=airflow_session, execute_callbacks=False)  # Airflow decides, tells the listeners
    airflow_session.commit()
    assert run.state == "success"

    events = outbox()
    assert types(events) == ["com.officeflow.workflow.started", "com.officeflow.workflow.succeeded"]
    started, succeeded = events
    subject = f"{DAG_ID}/{run.run_id}"
    assert started["subject"] == succeeded["subject"] == subject
    assert (succeeded["organizationid"], succeeded["correlationid"]) == ("acme", "cid-42")
    assert started["data"] == {
        "dag_id": DAG_ID, "run_id": run.run_id, "run_type": "manual", "state": "running", "reason": "started",
        "clear_number": 0, "organization_id": "acme", "correlation_id": "cid-42", "logical_date": None,
        "start_date": run.start_date.isoformat(), "end_date": None, "duration_seconds": None}
    data = succeeded["data"]
    assert (data["state"], data["reason"], data["end_date"]) == ("success", "success", run.end_date.isoformat())
    assert data["duration_seconds"] == pytest.approx((run.end_date - run.start_date).total_seconds())
    assert "admin@officeflow.test" not in json.dumps(events)  # the conf's personal data stays in Airflow

    # A listener that fires again for the same change (a scheduler loop that decides twice) adds nothing.
    run.notify_dagrun_state_changed(msg="success")
    assert types(outbox()) == types(events) and [e["id"] for e in outbox()] == [e["id"] for e in events]


def test_a_failed_task_then_the_failed_run(airflow_session):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.state import TaskInstanceState

    run = queued_run(airflow_session)
    start(run, airflow_session)
    ti = run.get_task_instance("approval", session=airflow_session)
    assert isinstance(ti, TaskInstance)
    ti.state, ti.try_number, ti.max_tries = TaskInstanceState.RUNNING, 1, 0
    airflow_session.commit()
    # The scheduler's path for a task whose worker stopped heartbeating: fail it, tell the listeners.
    ti.handle_failure("Task heartbeat timed out", session=airflow_session)
    airflow_session.commit()
    finish_tasks(run, airflow_session, approval="failed", after_approval="upstream_failed")
    run.update_state(session=airflow_session, execute_callbacks=False)
    airflow_session.commit()
    assert run.state == "failed"

    events = outbox()
    assert types(events) == ["com.officeflow.workflow.started", "com.officeflow.task.failed",
                             "com.officeflow.workflow.failed"]
    task_failed, run_failed = events[1], events[2]
    assert task_failed["subject"] == run_failed["subject"] == f"{DAG_ID}/{run.run_id}"
    assert {k: task_failed["data"][k] for k in ("task_id", "map_index", "try_number", "state", "error_type")} == {
        "task_id": "approval", "map_index": -1, "try_number": 1, "state": "failed", "error_type": None}
    assert task_failed["organizationid"] == "acme"
    assert (run_failed["data"]["state"], run_failed["data"]["reason"]) == ("failed", "task_failure")


def test_a_task_that_will_be_retried_writes_up_for_retry(airflow_session):
    from airflow.utils.state import TaskInstanceState

    run = queued_run(airflow_session, conf={})
    start(run, airflow_session)
    ti = run.get_task_instance("after_approval", session=airflow_session)
    ti.state, ti.try_number, ti.max_tries = TaskInstanceState.RUNNING, 1, 3
    airflow_session.commit()
    ti.handle_failure("Task heartbeat timed out", session=airflow_session)
    airflow_session.commit()
    assert ti.state == "up_for_retry"
    [_, retry] = outbox()
    assert retry["type"] == "com.officeflow.task.up_for_retry"
    assert (retry["data"]["task_id"], retry["data"]["max_tries"]) == ("after_approval", 3)
    assert "organizationid" not in retry and "correlationid" not in retry  # no conf, no attributes


def test_a_run_loaded_without_its_dag_is_recognised_by_its_tags_in_the_metadata_db(airflow_session):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    run_id = queued_run(airflow_session).run_id
    with create_session() as session:  # as the api-server or another loop would load it: no DAG attached
        fresh = session.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id))
        assert fresh is not None and getattr(fresh, "dag", None) is None
        start(fresh, session)
    assert types(outbox()) == ["com.officeflow.workflow.started"]


def test_runs_of_other_dags_write_nothing(airflow_session):
    run = queued_run(airflow_session)
    run.dag.tags = {"example"}  # the same run, seen as a DAG that is not an OfficeFlow workflow
    start(run, airflow_session)
    assert outbox() == []


def test_a_store_that_is_down_is_logged_and_the_run_goes_on(airflow_session, store_url, settings_env, caplog):
    run = queued_run(airflow_session)
    settings_env.setenv("OFFICEFLOW_DB_URL", "postgresql+psycopg2://nobody:nothing@127.0.0.1:9/officeflow")
    with caplog.at_level(logging.ERROR, logger=lifecycle.__name__):
        start(run, airflow_session)
        finish_tasks(run, airflow_session)
        run.update_state(session=airflow_session, execute_callbacks=False)
        airflow_session.commit()
    assert run.state == "success"  # the scheduler's decision stands
    failures = [r for r in caplog.records if "Could not write the workflow event" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info for r in failures), caplog.text
    assert outbox(store_url) == []


def test_ids_that_event_data_may_not_hold_are_carried_as_digests(airflow_session):
    from airflow.utils.state import DagRunState

    run = queued_run(airflow_session)
    run.run_id, run.state = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", DagRunState.RUNNING  # shaped like a JWT
    run.notify_dagrun_state_changed(msg="started")  # not committed: only the listener's view matters here
    airflow_session.rollback()
    [started] = outbox()
    assert started["data"]["run_id"].startswith("sha256:") and "eyJ" not in json.dumps(started)
    assert started["subject"] == f"{DAG_ID}/{started['data']['run_id']}"
