"""Slack approval clicks kept in the store until they can be applied safely (docs/slack-and-calendar.md).

Why a click waits: Airflow 3.3 resumes a human-in-the-loop task under the same try the moment its response is
recorded (``update_hitl_detail`` → ``handle_event_submit``, or the ``awaiting_input`` park transition when the
response came first). The worker that parked the task exits after the park, and its executor reports that exit as
a ``success`` of the same try. When the scheduler's ``process_executor_events`` reads that report after the
resumed try is already queued or running, it counts the exit as an external kill (``state mismatch``) and fails
the task (a retry asks again). So a click is applied only when:

1. the task instance of the click's request is parked (``awaiting_input``), the request still open;
2. it has been parked ``OFFICEFLOW_APPROVAL_SETTLE_SECONDS``: the bound on the parking worker's exit reaching the
   executor. Airflow keeps no trace of that exit, so this part is a time bound, not a state;
3. the scheduler that queued the try (``queued_by_job_id``) has completed a whole loop after that: its heartbeat
   is written at the end of each loop, after the executor's events are handled, so a heartbeat later than the
   first one seen after the settle time means the exit report has been handled. A scheduler that is not alive
   (Airflow's own ``Job.is_alive``) holds no report any more.

This module is the store's side (keep, find, decide); the api-server's applier
(``plugins/officeflow_gateway/approval_clicks.py``) reads Airflow's state and records the response.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from include.officeflow.store import session_scope
from include.officeflow.store.models import ApprovalClick, ApprovalClickStatus


@dataclass(frozen=True)
class Click:
    """A click to keep: the HITL request (the task instance's try) it answers, the choice and who made it."""

    ti_id: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    option: str
    slack_user_id: str
    email: str
    username: str
    response_url: str | None
    message_blocks: list[Any]
    correlation_id: str | None


def keep(click: Click) -> str | None:
    """Store ``click`` (committed); its id, or None when the request already has a click (a second click)."""
    try:
        with session_scope() as session:
            row = ApprovalClick(ti_id=click.ti_id, dag_id=click.dag_id, run_id=click.run_id, task_id=click.task_id,
                                map_index=click.map_index, option=click.option, slack_user_id=click.slack_user_id,
                                email=click.email, username=click.username, response_url=click.response_url or None,
                                message_blocks=click.message_blocks, correlation_id=click.correlation_id,
                                status=ApprovalClickStatus.PENDING.value, attempts=0)
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        return None


def has_click(ti_id: str) -> bool:
    with session_scope() as session:
        return session.scalar(select(ApprovalClick.id).where(ApprovalClick.ti_id == ti_id)) is not None


def pending_ids(limit: int = 100) -> list[str]:
    """Ids of the clicks still to apply, oldest first."""
    with session_scope() as session:
        return list(session.scalars(
            select(ApprovalClick.id).where(ApprovalClick.status == ApprovalClickStatus.PENDING.value)
            .order_by(ApprovalClick.received_at).limit(limit)))


@dataclass(frozen=True)
class Scheduler:
    """The scheduler job that queued the parked try, as Airflow's ``job`` table has it."""

    alive: bool
    latest_heartbeat: datetime | None


def ready(*, now: datetime, parked_at: datetime | None, settle_seconds: float, scheduler: Scheduler | None,
          mark: datetime | None) -> tuple[bool, datetime | None]:
    """Whether a click on a parked task may be applied now, and the scheduler mark to keep (module docstring).

    ``parked_at``: when the task instance was last updated (the park); ``scheduler``: None when no scheduler job
    queued the try; ``mark``: the first heartbeat seen after the settle time, kept between calls."""
    if parked_at is None:
        return False, mark
    settled = parked_at + timedelta(seconds=settle_seconds)
    if now < settled:
        return False, mark
    if scheduler is None or not scheduler.alive or scheduler.latest_heartbeat is None:
        return True, mark
    if mark is None:
        return False, (scheduler.latest_heartbeat if scheduler.latest_heartbeat >= settled else None)
    return scheduler.latest_heartbeat > mark, mark
