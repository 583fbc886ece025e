"""What the dashboard reads from Airflow's metadata DB (the api-server has access to it): runs per workflow,
UTC day and state, the end of the runs webhook events started, and the HITL approvals' timestamps.

Scoped like the rest of OfficeFlow: only the workflows the caller may read (the auth manager's
``get_authorized_dag_ids``) and, for a caller limited to some organizations, only runs whose ``conf`` names one
of them (``organization_id``, set by the gateway from the endpoint; runs without it, such as scheduled ones,
are shown to callers who see every organization only).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from include.officeflow.dashboard import day_column

#: A HITL request with no answer is "waiting" while its task is still waiting for it.
WAITING_STATES = ("awaiting_input", "deferred", "running")
_CHUNK = 500


def readable_dag_ids(user: Any) -> set[str]:
    """The workflows ``user`` may read (Airflow's per-DAG permissions)."""
    from airflow.api_fastapi.app import get_auth_manager

    return set(get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))


def _run_scope(run: Any, dag_ids: Collection[str], organizations: Collection[str] | None) -> Any:
    clause = run.dag_id.in_(sorted(dag_ids))
    if organizations is not None:
        clause = and_(clause, run.conf["organization_id"].as_string().in_(sorted(organizations)))
    return clause


def runs_per_day(since: datetime, *, dag_ids: Collection[str], organizations: Collection[str] | None
                 ) -> list[tuple[str, str, str, int]]:
    """``(dag_id, day, state, count)`` of the runs due since ``since`` (their ``run_after``, UTC day)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    if not dag_ids:
        return []
    with create_session() as session:
        day = day_column(DagRun.run_after, session.get_bind().dialect.name)
        rows = session.execute(
            select(DagRun.dag_id, day.label("day"), DagRun.state, func.count())
            .where(DagRun.run_after >= since, _run_scope(DagRun, dag_ids, organizations))
            .group_by(DagRun.dag_id, day, DagRun.state)).all()
    return [(dag_id, d.isoformat() if hasattr(d, "isoformat") else str(d), str(state), int(n))
            for dag_id, d, state, n in rows]


def run_ends(pairs: Iterable[tuple[str, str]], *, dag_ids: Collection[str]
             ) -> dict[tuple[str, str], tuple[str | None, datetime | None]]:
    """``(dag_id, run_id) -> (state, end_date)`` of these runs (those of readable workflows that still exist)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    by_dag: dict[str, list[str]] = {}
    for dag_id, run_id in pairs:
        if dag_id in dag_ids:
            by_dag.setdefault(dag_id, []).append(run_id)
    found: dict[tuple[str, str], tuple[str | None, datetime | None]] = {}
    with create_session() as session:
        for dag_id, run_ids in by_dag.items():
            for start in range(0, len(run_ids), _CHUNK):
                chunk = run_ids[start:start + _CHUNK]
                for run_id, state, end in session.execute(
                        select(DagRun.run_id, DagRun.state, DagRun.end_date)
                        .where(DagRun.dag_id == dag_id, DagRun.run_id.in_(chunk))).all():
                    found[(dag_id, run_id)] = (None if state is None else str(state), end)
    return found


def approvals(since: datetime, *, dag_ids: Collection[str], organizations: Collection[str] | None
              ) -> list[tuple[str, datetime, datetime | None]]:
    """``(dag_id, created_at, responded_at)`` of the HITL requests made since ``since`` (answered, or still
    waiting), and of those still waiting from before. Requests that ended unanswered (timed out, the task
    failed or was cleared) are left out."""
    from airflow.models.dagrun import DagRun
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    if not dag_ids:
        return []
    waiting = and_(HITLDetail.responded_at.is_(None), TaskInstance.state.in_(WAITING_STATES))
    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.dag_id, HITLDetail.created_at, HITLDetail.responded_at)
            .join(TaskInstance, TaskInstance.id == HITLDetail.ti_id)
            .join(DagRun, and_(DagRun.dag_id == TaskInstance.dag_id, DagRun.run_id == TaskInstance.run_id))
            .where(_run_scope(DagRun, dag_ids, organizations),
                   or_(waiting, and_(HITLDetail.responded_at.is_not(None), HITLDetail.created_at >= since))))
        return [(dag_id, created, responded) for dag_id, created, responded in rows.all()]
