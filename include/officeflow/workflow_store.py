"""Reading the stored declarative workflows for the DAG factory (``dags/declarative_workflows.py``).

The factory runs in the dag-processor and in every task process (Airflow re-parses the DAG file to
find the task), so it reads the store the way task code does (:func:`task_store_url`) and with a
short connect timeout: an unreachable store must not stall DAG parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from include.officeflow.store.db import task_store_url
from include.officeflow.store.models import Workflow, WorkflowVersion

CONNECT_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class StoredDefinition:
    name: str
    version: int
    definition: dict[str, Any]


def latest_definitions(url: str | None = None) -> list[StoredDefinition]:
    """The latest version of every workflow that is not deleted, by name."""
    url = url or task_store_url()
    connect_args = {"timeout": CONNECT_TIMEOUT_SECONDS} if url.startswith("sqlite") else {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS}
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Workflow.name, WorkflowVersion.version, WorkflowVersion.definition)
                .join(WorkflowVersion, (WorkflowVersion.workflow_id == Workflow.id)
                      & (WorkflowVersion.version == Workflow.latest_version))
                .where(Workflow.deleted_at.is_(None))
                .order_by(Workflow.name)
            ).all()
    finally:
        engine.dispose()
    return [StoredDefinition(name, version, definition) for name, version, definition in rows]
