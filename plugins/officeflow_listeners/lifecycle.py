"""Workflow lifecycle events: the state changes of OfficeFlow workflows' runs and tasks, as domain events in the
store's outbox (docs/events.md).

OfficeFlow workflows are the DAGs tagged ``officeflow`` (every DAG made by ``operators.workflow_dag``: the
bundled workflows and the declarative ones); other DAGs of the deployment write nothing.

- ``com.officeflow.workflow.started`` / ``.succeeded`` / ``.failed``: a run became running, succeeded or failed.
  DAG-run listeners run where Airflow changes the run's state: the scheduler, or the api-server when a person
  marks the run.
- ``com.officeflow.task.failed`` / ``.up_for_retry``: a task failed for good, or failed and will be retried.
  Task-instance listeners run in the task runner (the worker, which reaches the store but not Airflow's
  metadata DB), in the scheduler (a task whose worker stopped heartbeating), or in the api-server (a person
  marks a task failed). Successful and running tasks write nothing: the run's events cover them.

The subject of all of them is the run (``<dag_id>/<run_id>``), so a run's events keep their order on Kafka.

The store is not Airflow's metadata DB, so an event cannot share the transaction of the state change: it is
written in a transaction of its own while Airflow's is still open (or, in the worker, just after the state was
reported). Its id is derived from the change (:func:`~include.officeflow.events.outbox.stable_event_id` of the
run and its clear number, or the task try), so a listener that fires twice for one change (a scheduler loop
that rolled back and decides again, a heartbeat timeout after the worker's own report) writes one event. A
failure in here is logged and never affects the scheduler, the api-server or the task.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from functools import lru_cache
from typing import Any

from airflow.listeners import hookimpl
from sqlalchemy import Engine, create_engine

from include.officeflow.events.outbox import add_event_once, stable_event_id
from include.officeflow.events.values import id_or_digest
from include.officeflow.settings import get_settings
from include.officeflow.store import get_engine
from include.officeflow.store.db import task_store_url

log = logging.getLogger(__name__)
OFFICEFLOW_TAG = "officeflow"
_RUN_ACTIONS = {"running": "started", "success": "succeeded", "failed": "failed"}
_TASK_ACTIONS = {"failed": "failed", "up_for_retry": "up_for_retry"}
_MAX_ATTRIBUTE = 64  # the outbox's organization_id / correlation_id columns


def _value(enum_or_str: Any) -> str | None:
    return None if enum_or_str is None else str(getattr(enum_or_str, "value", enum_or_str))


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if isinstance(moment, datetime) else None


def _id(value: Any) -> str | None:
    return None if value is None else id_or_digest(str(value))


def run_subject(dag_id: str, run_id: str) -> str:
    """The subject (Kafka key) of a run's events: ``<dag_id>/<run_id>``, or a digest when that is too long."""
    subject = f"{_id(dag_id)}/{_id(run_id)}"
    return subject if len(subject) <= 255 else f"run:sha256:{hashlib.sha256(subject.encode()).hexdigest()}"


def _attribute(conf: dict[str, Any], key: str) -> str | None:
    """``organization_id`` / ``correlation_id`` from a run's conf, when it is a plain id that fits."""
    value = conf.get(key)
    if not isinstance(value, str) or not value or len(value) > _MAX_ATTRIBUTE:
        return None
    return value if _id(value) == value else None


def _conf(dag_run: Any) -> dict[str, Any]:
    conf = getattr(dag_run, "conf", None)
    return conf if isinstance(conf, dict) else {}


def _tags_in_metadata_db(obj: Any, dag_id: str) -> set[str]:
    """The DAG's tags from Airflow's metadata DB (server side, when the object carries no DAG)."""
    from airflow.models.dag import DagTag
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    session = object_session(obj)
    if session is None:
        return set()
    return set(session.scalars(select(DagTag.name).where(DagTag.dag_id == dag_id)))


def _is_officeflow_run(dag_run: Any) -> bool:
    dag = getattr(dag_run, "dag", None)
    tags = set(getattr(dag, "tags", None) or ()) if dag is not None else _tags_in_metadata_db(dag_run, dag_run.dag_id)
    return OFFICEFLOW_TAG in tags


@lru_cache(maxsize=4)
def _engine(url: str) -> Engine:
    """The listener's own small pool on a server database, with short connect and statement timeouts: a store
    that is slow or unreachable costs the scheduler loop seconds, never a hang. SQLite (dev): the shared engine."""
    if url.startswith("sqlite"):
        return get_engine(url)
    return create_engine(url, pool_pre_ping=True, pool_size=1, max_overflow=2,
                         connect_args={"connect_timeout": 5, "options": "-c statement_timeout=5000"})


def _write(url: str, *, event_id: str, area: str, action: str, subject: str, data: dict[str, Any],
           conf: dict[str, Any]) -> None:
    with _engine(url).begin() as conn:
        written = add_event_once(conn, event_id=event_id, area=area, action=action, subject=subject, data=data,
                                 organization_id=_attribute(conf, "organization_id"),
                                 correlation_id=_attribute(conf, "correlation_id"))
    if written is None:
        log.debug("%s.%s of %s was written before (%s)", area, action, subject, event_id)


def run_event(dag_run: Any, msg: str | None = None) -> None:
    """Write the workflow event of ``dag_run``'s current state (running, success, failed) to the store."""
    action = _RUN_ACTIONS.get(_value(dag_run.state) or "")
    if action is None:
        return
    conf = _conf(dag_run)
    start, end = getattr(dag_run, "start_date", None), getattr(dag_run, "end_date", None)
    duration = (end - start).total_seconds() if action != "started" and start and end else None
    clear_number = int(getattr(dag_run, "clear_number", 0) or 0)
    data = {"dag_id": _id(dag_run.dag_id), "run_id": _id(dag_run.run_id), "run_type": _value(dag_run.run_type),
            "state": _value(dag_run.state), "reason": msg, "clear_number": clear_number,
            "organization_id": _attribute(conf, "organization_id"),
            "correlation_id": _attribute(conf, "correlation_id"),
            "logical_date": _iso(getattr(dag_run, "logical_date", None)), "start_date": _iso(start),
            "end_date": _iso(end) if action != "started" else None, "duration_seconds": duration}
    _write(get_settings().db_url, area="workflow", action=action, subject=run_subject(dag_run.dag_id, dag_run.run_id),
           event_id=stable_event_id("workflow", action, dag_run.dag_id, dag_run.run_id, clear_number),
           data=data, conf=conf)


def _in_task_runner(task_instance: Any) -> bool:
    return type(task_instance).__module__.startswith("airflow.sdk")


def _task_conf(task_instance: Any) -> dict[str, Any]:
    context = getattr(task_instance, "_ti_context_from_server", None)  # the worker's run context
    dag_run = getattr(context, "dag_run", None) if context is not None else getattr(task_instance, "dag_run", None)
    return _conf(dag_run)


def _is_officeflow_task(task_instance: Any) -> bool:
    dag = getattr(getattr(task_instance, "task", None), "dag", None)
    if dag is not None:
        return OFFICEFLOW_TAG in set(getattr(dag, "tags", None) or ())
    if _in_task_runner(task_instance):
        return False
    return OFFICEFLOW_TAG in _tags_in_metadata_db(task_instance, task_instance.dag_id)


def task_event(task_instance: Any, error: str | BaseException | None) -> None:
    """Write the task event of a failed task instance: ``failed``, or ``up_for_retry`` when a retry follows.
    The error's type is named, never its text (it may quote a person's data)."""
    action = _TASK_ACTIONS.get(_value(task_instance.state) or "")
    if action is None:
        return
    conf = _task_conf(task_instance)
    ti = task_instance
    try_number = int(getattr(ti, "try_number", 0) or 0)
    map_index = int(getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1)
    data = {"dag_id": _id(ti.dag_id), "run_id": _id(ti.run_id), "task_id": _id(ti.task_id), "map_index": map_index,
            "try_number": try_number, "max_tries": getattr(ti, "max_tries", None), "state": _value(ti.state),
            "error_type": type(error).__name__ if isinstance(error, BaseException) else None,
            "organization_id": _attribute(conf, "organization_id"),
            "correlation_id": _attribute(conf, "correlation_id"),
            "start_date": _iso(getattr(ti, "start_date", None)), "end_date": _iso(getattr(ti, "end_date", None))}
    url = task_store_url() if _in_task_runner(ti) else get_settings().db_url
    _write(url, area="task", action=action, subject=run_subject(ti.dag_id, ti.run_id),
           event_id=stable_event_id("task", action, ti.dag_id, ti.run_id, ti.task_id, map_index, try_number),
           data=data, conf=conf)


def _safely_run(dag_run: Any, msg: str) -> None:
    try:
        if _is_officeflow_run(dag_run):
            run_event(dag_run, msg)
    except Exception:  # an event must never break the scheduler loop, the api-server or the run
        log.exception("Could not write the workflow event of %s/%s", getattr(dag_run, "dag_id", "?"),
                      getattr(dag_run, "run_id", "?"))


def _safely_task(task_instance: Any, error: str | BaseException | None) -> None:
    try:
        if _is_officeflow_task(task_instance):
            task_event(task_instance, error)
    except Exception:  # an event must never fail the task or its report
        log.exception("Could not write the task event of %s/%s/%s", getattr(task_instance, "dag_id", "?"),
                      getattr(task_instance, "run_id", "?"), getattr(task_instance, "task_id", "?"))


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    _safely_run(dag_run, msg)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _safely_run(dag_run, msg)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _safely_run(dag_run, msg)


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: str | BaseException | None) -> None:
    _safely_task(task_instance, error)
