"""Keeps the note of every OfficeFlow run telling a person whose run it is and how it ended.

Registered as a plugin listener, so it runs where Airflow changes a run's state (the scheduler; the
api-server when a person marks a run), inside that process's database session: the note is saved
with the state change itself. The gateway and the workflows API name the run when they create it;
runs from the UI form or the REST API get their note here when they start. A failure in here is
logged and never affects the run.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

from include.officeflow import run_notes

log = logging.getLogger(__name__)
OFFICEFLOW_TAG = "officeflow"


def _is_officeflow(dag_run: Any) -> bool:
    dag = getattr(dag_run, "dag", None)
    return dag is not None and OFFICEFLOW_TAG in (getattr(dag, "tags", None) or ())


def _conf(dag_run: Any) -> dict[str, Any]:
    conf = getattr(dag_run, "conf", None)
    return conf if isinstance(conf, dict) else {}


def name_run(dag_run: Any) -> None:
    """Give a run that has no OfficeFlow note yet its start note (a person's own note stays below it)."""
    conf = _conf(dag_run)
    existing = dag_run.note or ""
    who = run_notes.subject(conf)
    if existing and (not who or who in existing or existing.startswith("**")):
        return
    started_by = run_notes.started_by_trigger(_value(getattr(dag_run, "triggered_by", None)),
                                              getattr(dag_run, "triggering_user_name", None), conf.get("source"))
    note = run_notes.start_note(conf, started_by=started_by)
    dag_run.note = f"{note}\n\n{existing}"[: run_notes.MAX_NOTE] if existing else note


def record_outcome(dag_run: Any) -> None:
    """Append the run's outcome: its DAG result (e.g. onboarding's summary) or the tally of its steps."""
    from airflow.models.xcom import XCOM_RETURN_KEY, XComModel
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is None:
        return
    rows = session.scalars(select(XComModel).where(XComModel.dag_run_id == dag_run.id,
                                                  XComModel.key == XCOM_RETURN_KEY,
                                                  XComModel.dag_result.is_(True))).all()
    results = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    states = [_value(ti.state) for ti in dag_run.get_task_instances(session=session)]
    if not dag_run.note:
        name_run(dag_run)
    dag_run.note = run_notes.finish_note(dag_run.note, state=_value(dag_run.state) or "", result=results or None,
                                         step_states=[] if results else states)


def _value(enum_or_str: Any) -> str | None:
    return None if enum_or_str is None else str(getattr(enum_or_str, "value", enum_or_str))


def _safely(action: Any, dag_run: Any) -> None:
    if not _is_officeflow(dag_run):
        return
    try:
        action(dag_run)
    except Exception:  # a note must never break the scheduler loop or the run
        log.exception("Could not write the note of %s/%s", dag_run.dag_id, dag_run.run_id)


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    _safely(name_run, dag_run)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _safely(record_outcome, dag_run)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _safely(record_outcome, dag_run)
