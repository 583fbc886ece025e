"""What a delivery to the gateway left behind (inbox events, Airflow runs and their notes), and the error
shape of the gateway's answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from include.officeflow.store import WebhookEvent


def dag_runs(run_id: str) -> list:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.run_id == run_id)).all()
        return [(r.dag_id, r.run_id, r.conf, r.run_type) for r in runs]


def run_note(run_id: str) -> str | None:
    """The note the Airflow UI shows on the run."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalars(select(DagRun).where(DagRun.run_id == run_id)).one().note


def events() -> list[WebhookEvent]:
    from sqlalchemy import select

    from include.officeflow.store import WebhookEvent, session_scope

    with session_scope() as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.received_at)))


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert error["correlationId"] == response.headers["X-Correlation-ID"]
    return error
