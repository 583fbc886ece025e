"""History for the dashboard tests: Airflow runs and HITL approvals written into a metadata DB, and inbox events
and email deliveries into an OfficeFlow store, at chosen times in the past (a run can't be made to have happened
last week). Airflow rows go in through its own tables (``DagRun.__table__`` ...) on the DB at ``airflow_url``,
so the same helpers fill the integration tests' metadata DB and a running e2e platform's."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, insert


@lru_cache(maxsize=4)
def _engine(url: str) -> Engine:
    return create_engine(url)


def day_at(days_ago: int, hour: int = 9, minute: int = 0) -> datetime:
    """``hour:minute`` UTC ``days_ago`` days before today."""
    day = datetime.now(UTC).date() - timedelta(days=days_ago)
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def today_minus(days_ago: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=days_ago)


def add_run(airflow_url: str, dag_id: str, state: str, run_after: datetime, *, end: datetime | None = None,
            organization: str | None = None, run_id: str | None = None) -> str:
    """A manual run of ``dag_id`` due at ``run_after`` (its conf naming ``organization``); returns its run id."""
    from airflow.models.dagrun import DagRun

    run_id = run_id or f"manual__dash_{uuid.uuid4().hex}"
    conf: dict[str, Any] = {} if organization is None else {"organization_id": organization}
    started = None if state == "queued" else run_after
    with _engine(airflow_url).begin() as conn:
        conn.execute(insert(DagRun.__table__).values(
            dag_id=dag_id, run_id=run_id, run_type="manual", state=state, conf=conf, run_after=run_after,
            queued_at=run_after, start_date=started, end_date=end, clear_number=0))
    return run_id


def add_approval(airflow_url: str, dag_id: str, run_id: str, created: datetime, responded: datetime | None, *,
                 task_state: str = "success", task_id: str | None = None) -> None:
    """A HITL request on a task of the run (``task_state``: ``deferred`` while it waits)."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance

    ti_id = uuid.uuid4()
    with _engine(airflow_url).begin() as conn:
        conn.execute(insert(TaskInstance.__table__).values(
            id=ti_id, task_id=task_id or f"approve_{uuid.uuid4().hex[:6]}", dag_id=dag_id, run_id=run_id,
            map_index=-1, pool="default_pool", pool_slots=1, state=task_state, try_number=1, start_date=created))
        conn.execute(insert(HITLDetail.__table__).values(
            ti_id=ti_id, options=["Approve", "Reject"], subject="Approve the equipment", params={},
            params_input={}, created_at=created, responded_at=responded,
            chosen_options=None if responded is None else ["Approve"],
            responded_by=None if responded is None else {"id": "1", "name": "manager"}))


def add_event(store_url: str, endpoint_id: str, status: str, received: datetime, *, dag_id: str | None = None,
              run_id: str | None = None) -> None:
    from include.officeflow.store import WebhookEvent, session_scope

    with session_scope(store_url) as session:
        session.add(WebhookEvent(endpoint_id=endpoint_id, provider_event_id=f"evt_{uuid.uuid4().hex}",
                                 event_type="employee.created", status=status, payload={}, dag_id=dag_id,
                                 dag_run_id=run_id, correlation_id=uuid.uuid4().hex, received_at=received,
                                 updated_at=received))


def add_emails(store_url: str, organization: str, status: str, created: datetime, count: int = 1) -> None:
    from include.officeflow.store import EmailDelivery, session_scope

    with session_scope(store_url) as session:
        for _ in range(count):
            key = uuid.uuid4().hex
            session.add(EmailDelivery(idempotency_key=key, organization_id=organization, provider="smtp",
                                      recipient=f"{key[:8]}@example.com", template="welcome", subject="Welcome",
                                      status=status, created_at=created, updated_at=created))
