"""Start DAG runs from inside the api-server, with run ids derived from events."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from include.officeflow import tracing

log = logging.getLogger(__name__)


class TriggerError(Exception):
    """The run could not be created. ``reason``: ``dag_not_available`` (not parsed yet: may pass on a
    retry), ``refused`` (invalid conf, run type not allowed: will not pass on a retry) or ``failed``
    (database errors and the like: worth a retry). ``retry_after``: seconds the next try should wait at least
    (a throttled service said so)."""

    def __init__(self, message: str, *, reason: str = "failed", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        return self.reason == "refused"


def trigger_run(dag_id: str, run_id: str, conf: dict[str, Any], *, triggered_by_name: str,
                note: str | None = None) -> str:
    """Create the run unless it exists; return its run id. Raises :class:`TriggerError`.

    ``note`` is the run's note in the Airflow UI (see :mod:`include.officeflow.run_notes`)."""
    return trigger_runs(dag_id, [RunRequest(run_id, conf, note)], triggered_by_name=triggered_by_name)[0]


@dataclass(frozen=True)
class RunRequest:
    """One run to create: its id, conf and note."""

    run_id: str
    conf: dict[str, Any]
    note: str | None = None


def trigger_runs(dag_id: str, runs: Sequence[RunRequest], *, triggered_by_name: str) -> list[str]:
    """Create every run (those that exist already are left as they are) or none: all of them in one transaction
    of Airflow's metadata DB, so the scheduler sees none of them unless every one could be created. Returns
    their run ids. Raises :class:`TriggerError` (and nothing was created)."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists, ParamValidationError
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType

    try:
        # A session of its own (as the core API's SessionDep): Airflow's helpers that open the thread's scoped
        # session (DagRun.find_duplicate) commit it, which would commit the runs created so far.
        with create_session(scoped=False) as session:  # commits once, after the last run; rolls back on an error
            for run in runs:
                try:
                    created = trigger_dag(dag_id, run_id=run.run_id, conf=run.conf,
                                          triggered_by=DagRunTriggeredByType.REST_API,
                                          triggering_user_name=triggered_by_name, note=run.note, session=session)
                    if created is not None:
                        join_current_trace(created, session)
                except DagRunAlreadyExists:
                    log.info("Run %s of %s already exists; nothing to do", run.run_id, dag_id)
    except DagNotFound as exc:
        raise TriggerError(f"DAG {dag_id!r} is not available yet: {exc}", reason="dag_not_available") from exc
    except (ParamValidationError, ValueError) as exc:
        raise TriggerError(f"{dag_id!r} refused the run: {exc}", reason="refused") from exc
    except Exception as exc:  # DB errors and the like: worth a retry.
        raise TriggerError(f"could not trigger {dag_id!r}: {type(exc).__name__}: {exc}") from exc
    return [run.run_id for run in runs]


def join_current_trace(run: Any, session: Any) -> None:
    """Make the new run (and its task instances, created with it) continue the current trace: the request or
    dispatch span that started it. Airflow gave the run a carrier of a new trace; replacing the carriers in the
    transaction that creates the run is what makes its ``dag_run`` and ``task_run`` spans part of this one."""
    carrier = tracing.run_carrier()
    if carrier is None:
        return
    from airflow.models.taskinstance import TaskInstance

    run.context_carrier = carrier
    # Created with the run by a bulk insert: read back, not through the run's relationship.
    for ti in session.scalars(select(TaskInstance).where(TaskInstance.dag_id == run.dag_id,
                                                         TaskInstance.run_id == run.run_id)):
        ti.context_carrier = tracing.task_carrier(carrier)
    tracing.link_run(carrier, run.dag_id, run.run_id)
