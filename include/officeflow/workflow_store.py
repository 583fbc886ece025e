"""Reading the stored declarative workflows for the DAG factory (``dags/declarative_workflows.py``).

The factory runs in the dag-processor and in every task process (Airflow re-parses the DAG file to
find the task), so it reads the store the way task code does (:func:`task_store_url`), and never
waits long: the connection and the query are bounded (``OFFICEFLOW_WORKFLOW_STORE_TIMEOUT_SECONDS``).
Every successful read is kept in a snapshot file; when the store is slow or down the factory builds
from the snapshot, so the stored workflows neither stall DAG parsing nor vanish from Airflow (a DAG
that disappears from a parse is marked stale) while the store is away.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from include.officeflow.settings import get_settings
from include.officeflow.store.db import task_store_url
from include.officeflow.store.models import Workflow, WorkflowVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredDefinition:
    name: str
    version: int
    definition: dict[str, Any]


def latest_definitions(url: str | None = None, timeout: float | None = None) -> list[StoredDefinition]:
    """The latest version of every workflow that is not deleted, by name; bounded by ``timeout`` seconds
    to connect and as much again for the query."""
    url = url or task_store_url()
    seconds = timeout if timeout is not None else get_settings().workflow_store_timeout_seconds
    if url.startswith("sqlite"):
        connect_args: dict[str, Any] = {"timeout": seconds}
    else:
        connect_args = {"connect_timeout": max(1, round(seconds)),
                        "options": f"-c statement_timeout={round(seconds * 1000)}"}
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


def snapshot_path() -> Path:
    return get_settings().workflows_snapshot_file or get_settings().home / "workflows-snapshot.json"


def definitions_for_factory(url: str | None = None) -> list[StoredDefinition]:
    """The stored workflows for the DAG factory: from the store (then kept in the snapshot), or from the
    last snapshot when the store does not answer in time; none when neither exists."""
    try:
        rows = latest_definitions(url)
    except Exception as exc:  # store down, slow or not migrated yet
        cached = _read_snapshot()
        log.warning("OfficeFlow store unavailable (%s); stored workflows built from %s", exc,
                    f"the snapshot {snapshot_path()}" if cached is not None else "nothing: no snapshot yet")
        return cached or []
    _write_snapshot(rows)
    return rows


def _read_snapshot() -> list[StoredDefinition] | None:
    try:
        return [StoredDefinition(**row) for row in json.loads(snapshot_path().read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError):
        return None


def _write_snapshot(rows: list[StoredDefinition]) -> None:
    path = snapshot_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".workflows-", delete=False,
                                         encoding="utf-8") as handle:
            json.dump([asdict(row) for row in rows], handle)
        os.replace(handle.name, path)  # readers see the old snapshot or the new one, never half of one
    except OSError as exc:
        log.warning("Could not keep the workflows snapshot at %s: %s", path, exc)
