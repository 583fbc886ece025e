"""The dispatcher on real databases: retries with backoff, recovery, dead-lettering, permanent errors."""

from __future__ import annotations

import textwrap
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from include.officeflow.inbox import run_id_for, store
from include.officeflow.store import AuditLog, EventStatus, WebhookEvent, session_scope
from plugins.officeflow_gateway import dispatcher as dispatch


@pytest.fixture
def quiet(airflow_db, clean_store, monkeypatch):
    """No background thread: each test drives the dispatcher step by step."""
    dispatch.dispatcher.stop()
    monkeypatch.setattr(dispatch.dispatcher, "ensure_started", lambda: None)


HIRE = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}


def pending_event(dag_id: str, conf: dict | None = None) -> str:
    provider_id = f"evt-{uuid.uuid4().hex}"
    outcome = store(endpoint_id="test", provider_event_id=provider_id, event_type="employee.created",
                    document={}, conf=conf or HIRE,
                    status=EventStatus.PENDING, dag_id=dag_id, dag_run_id=run_id_for("test", provider_id),
                    correlation_id="cid-1", error=None)
    return outcome.event_id


def load(event_id: str) -> WebhookEvent:
    with session_scope() as session:
        event = session.get(WebhookEvent, event_id)
        assert event is not None
        return event


def make_due(event_id: str) -> None:
    with session_scope() as session:
        event = session.get(WebhookEvent, event_id)
        assert event is not None
        event.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)


def deploy_dag(tmp_path, dag_id: str) -> None:
    """Serialise a new DAG into the metadata DB, as the dag-processor does after a deployment."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    (tmp_path / f"{dag_id}.py").write_text(textwrap.dedent(f"""
        import pendulum
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator
        with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
            EmptyOperator(task_id="noop")
    """))
    bag = DagBag(dag_folder=str(tmp_path))
    assert not bag.import_errors
    sync_bag_to_db(bag, bundle_name="dags-folder", bundle_version=None)


def test_backoff_doubles_and_is_capped(settings_env):
    settings_env.setenv("OFFICEFLOW_DISPATCH_BASE_DELAY_SECONDS", "2")
    settings_env.setenv("OFFICEFLOW_DISPATCH_MAX_DELAY_SECONDS", "30")
    assert [dispatch.backoff_seconds(n) for n in (1, 2, 3, 4, 5, 6)] == [2, 4, 8, 16, 30, 30]


def test_trigger_failure_then_success_once_the_dag_is_deployed(quiet, tmp_path, settings_env):
    settings_env.setenv("OFFICEFLOW_DISPATCH_BASE_DELAY_SECONDS", "60")
    dag_id = f"late_dag_{uuid.uuid4().hex[:8]}"
    event_id = pending_event(dag_id)
    before = datetime.now(UTC)

    assert dispatch.dispatch_one(event_id) == "pending"
    event = load(event_id)
    assert event.attempts == 1 and "not available yet" in (event.error or "")
    assert event.next_attempt_at is not None and event.next_attempt_at >= before + timedelta(seconds=59)
    assert dispatch.run_once() == 0  # not due yet: no busy retry

    deploy_dag(tmp_path, dag_id)
    make_due(event_id)
    assert dispatch.run_once() == 1
    event = load(event_id)
    assert (event.status, event.attempts, event.error) == ("triggered", 2, None)

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id)).all()
        assert [r.run_id for r in runs] == [event.dag_run_id]
    with session_scope() as session:
        assert session.scalars(select(AuditLog.action).where(AuditLog.resource_id == event.dag_run_id)).all() == [
            "workflow.triggered"]


def test_dead_letter_after_max_attempts(quiet, settings_env):
    settings_env.setenv("OFFICEFLOW_DISPATCH_MAX_ATTEMPTS", "3")
    event_id = pending_event("never_deployed_dag")
    for _ in range(3):
        make_due(event_id)
        dispatch.run_once()
    event = load(event_id)
    assert event.status == "dead" and event.attempts == 3 and event.next_attempt_at is None
    assert (event.error or "").startswith("dead after 3 attempts")
    make_due(event_id)
    assert dispatch.run_once() == 0  # dead events are not retried automatically


def test_conf_refused_by_the_dag_is_rejected_without_retries(quiet):
    event_id = pending_event("employee_onboarding", conf={"first_name": "Ada", "last_name": "L"})  # no email
    assert dispatch.dispatch_one(event_id) == "rejected"
    event = load(event_id)
    assert event.attempts == 1 and "email" in (event.error or "") and event.next_attempt_at is None


def test_already_existing_run_counts_as_success(quiet):
    event_id = pending_event("employee_onboarding")
    assert dispatch.dispatch_one(event_id) == "triggered"
    with session_scope() as session:  # as if a second replica had picked it up concurrently
        event = session.get(WebhookEvent, event_id)
        assert event is not None
        event.status = EventStatus.PENDING.value
    assert dispatch.dispatch_one(event_id) == "triggered"
    assert load(event_id).attempts == 2


def test_background_thread_picks_up_events_left_pending(airflow_db, clean_store):
    from tests.harness.gateway import wait_status

    event_id = pending_event("employee_onboarding")  # e.g. stored by a process that died before dispatching
    dispatch.dispatcher.ensure_started()
    assert wait_status(event_id, "triggered").attempts == 1


def test_external_mode_starts_no_thread_in_the_api_server(quiet, settings_env, monkeypatch):
    monkeypatch.undo()  # the real ensure_started
    dispatch.dispatcher.stop()
    settings_env.setenv("OFFICEFLOW_DISPATCHER_MODE", "external")
    dispatch.dispatcher.ensure_started()
    assert dispatch.dispatcher._thread is None


def test_dispatcher_process_creates_the_runs_and_stops_on_sigterm(quiet, tmp_path):
    """``python -m plugins.officeflow_gateway.dispatcher`` (external mode) as its own process."""
    import os
    import signal
    import subprocess
    import sys

    from tests.harness.environment import REPO_ROOT
    from tests.harness.gateway import wait_status

    event_id = pending_event("employee_onboarding")
    log = (tmp_path / "dispatcher.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "plugins.officeflow_gateway.dispatcher"],
        cwd=REPO_ROOT, env={**os.environ, "OFFICEFLOW_DISPATCHER_MODE": "external"},
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        event = wait_status(event_id, "triggered", timeout=90)
        assert event.attempts == 1
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            run = session.scalar(select(DagRun).where(DagRun.run_id == event.dag_run_id))
            assert run is not None and run.dag_id == "employee_onboarding"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = (tmp_path / "dispatcher.log").read_text()
    assert "OfficeFlow dispatcher started" in output and "own process" in output
    assert "stopping the dispatcher" in output
