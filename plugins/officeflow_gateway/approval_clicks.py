"""Applies stored Slack approval clicks as HITL responses, once it is safe (include/officeflow/approval_clicks.py
says when and why).

``POST /officeflow/slack/interactions`` stores an approver's click and tries :func:`apply` at once; a click that
cannot be applied yet stays ``pending`` in the store, and the :class:`Applier` (a daemon thread in each api-server
process, started on the gateway's first request like the dispatcher) applies it when the task is parked and the
scheduler has handled the parking worker's exit. Several processes may run one: a click is claimed with ``FOR
UPDATE SKIP LOCKED``; a restart loses nothing (the click is in the store, the next applier picks it up), and a
response Airflow recorded just before a crash is recognised as this click's on the next attempt, so it is applied
and audited once.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from include.officeflow import approval_clicks
from include.officeflow.approval_clicks import Scheduler
from include.officeflow.audit import audit
from include.officeflow.settings import get_settings
from include.officeflow.store import session_scope
from include.officeflow.store.models import ApprovalClick, ApprovalClickStatus
from plugins.officeflow_gateway.background import BackgroundLoop

log = logging.getLogger(__name__)

NOT_PARKED_YET = frozenset({"scheduled", "queued", "running", "restarting"})
PARKED = frozenset({"awaiting_input", "deferred"})


class SlackResponder:
    """The Airflow user a Slack click responds as (what ``update_hitl_detail`` asks of a user)."""

    def __init__(self, user_id: str, name: str) -> None:
        self.user_id, self.name = user_id, name

    def get_id(self) -> str:
        return self.user_id

    def get_name(self) -> str:
        return self.name


def record_response(target: dict[str, Any], option: str, responder: SlackResponder) -> tuple[int, str]:
    """Airflow's own ``PATCH …/hitlDetails`` handler, called in-process: (status, detail).

    Imported here, not at module level: the plugin is imported by every Airflow component, and only
    the api-server (which has already imported Airflow's core API, so this import is a lookup) serves
    this route. A first import racing another thread's SQLAlchemy mapper configuration could deadlock,
    which is why the tests import the module up front as the api-server does."""
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.utils.session import create_session
    from fastapi import HTTPException

    try:
        with create_session() as session:
            update_hitl_detail(dag_id=str(target["dag_id"]), dag_run_id=str(target["run_id"]),
                               task_id=str(target["task_id"]),
                               update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[option]),
                               user=responder,  # type: ignore[arg-type]
                               session=session, map_index=int(target.get("map_index", -1)))
    except HTTPException as exc:
        return exc.status_code, str(exc.detail)
    return 200, "recorded"


@dataclass(frozen=True)
class Request:
    """An approval task instance (one try) and its HITL request, as Airflow's metadata DB has them."""

    ti_id: str
    state: str | None
    updated_at: datetime | None
    has_request: bool
    responded_by: dict[str, Any] | None
    chosen_options: list[str] | None
    scheduler: Scheduler | None


def current_request(target: dict[str, Any]) -> Request | None:
    """The current try of the button's task instance (dag, run, task, map index), None when there is none."""
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session

    with create_session() as session:
        ti_id = session.scalar(select(TI.id).where(
            TI.dag_id == str(target["dag_id"]), TI.run_id == str(target["run_id"]),
            TI.task_id == str(target["task_id"]), TI.map_index == int(target.get("map_index", -1))))
    return None if ti_id is None else request_of(str(ti_id))


def request_of(ti_id: str) -> Request | None:
    """The task instance try ``ti_id`` (None once it is gone: a new try, a deleted run) and the scheduler job
    that queued it."""
    from airflow.jobs.job import Job
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.scalar(select(TI).where(TI.id == uuid.UUID(ti_id)))
        if ti is None:
            return None
        detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id))
        scheduler = None
        if ti.queued_by_job_id is not None:
            job = session.get(Job, ti.queued_by_job_id)
            if job is not None:
                scheduler = Scheduler(alive=bool(job.is_alive()), latest_heartbeat=job.latest_heartbeat)
        return Request(ti_id=ti_id, state=None if ti.state is None else str(ti.state), updated_at=ti.updated_at,
                       has_request=detail is not None,
                       responded_by=dict(detail.responded_by) if detail is not None and detail.responded_by else None,
                       chosen_options=list(detail.chosen_options or []) if detail is not None else None,
                       scheduler=scheduler)


def answered(request: Request) -> bool:
    return request.responded_by is not None


def applied_message(click: ApprovalClick) -> dict[str, Any]:
    """The message update once the decision is recorded: the request without its buttons, and who decided."""
    verb = "Approved" if click.option == "Approve" else "Rejected"
    text = f"{verb} by <@{click.slack_user_id}> ({click.email})"
    kept = [b for b in click.message_blocks or [] if b.get("type") != "actions"]
    return {"replace_original": True, "text": text,
            "blocks": [*kept, {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}}]}


def ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


NOTICES = {
    ApprovalClickStatus.SUPERSEDED.value: "This request has already been decided.",
    ApprovalClickStatus.EXPIRED.value: "This request is no longer waiting for a decision; your click was not applied.",
    ApprovalClickStatus.REFUSED.value: "Sorry, you are not allowed to decide on this request.",
}


def post_response_url(url: str, message: dict[str, Any]) -> None:
    try:
        httpx.post(url, json=message, timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("Slack response_url post failed: %s", exc)


def apply(click_id: str, *, now: datetime | None = None,
          respond: bool = True) -> tuple[str, dict[str, Any] | None] | None:
    """Apply the pending click ``click_id`` if it is safe now: (its status, the message for its ``response_url``
    once settled), None when another process holds it. ``respond``: post that message to the click's
    ``response_url`` here (the applier); the interactions route answers Slack with it instead.

    The status change and the ``approval.responded`` audit record are one store transaction; Airflow's response
    is recorded before it, under the click's row lock, and recognised as this click's after a crash in between."""
    settle = get_settings().approval_settle_seconds
    with session_scope() as session:
        click = session.scalars(select(ApprovalClick).where(
            ApprovalClick.id == click_id, ApprovalClick.status == ApprovalClickStatus.PENDING.value)
            .with_for_update(skip_locked=True)).one_or_none()
        if click is None:
            return None
        request = request_of(click.ti_id)
        status, error = _decide(click, request, now or datetime.now(UTC), settle)
        if status == ApprovalClickStatus.PENDING.value:
            return status, None
        click.status, click.error, click.settled_at = status, error, datetime.now(UTC)
        click.attempts += 1
        url, click.response_url = click.response_url, None
        message = applied_message(click) if status == ApprovalClickStatus.APPLIED.value else ephemeral(NOTICES[status])
        if status == ApprovalClickStatus.APPLIED.value:
            audit("approval.responded", actor=f"user:{click.username}", resource_type="workflow",
                  resource_id=click.dag_id, outcome="success", correlation_id=click.correlation_id, session=session,
                  run_id=click.run_id, task_id=click.task_id, map_index=click.map_index, chosen=click.option,
                  via="slack", slack_user=click.slack_user_id)
            log.info("HITL %s recorded for %s/%s/%s[%s] by %s", click.option, click.dag_id, click.run_id,
                     click.task_id, click.map_index, click.email)
        elif status == ApprovalClickStatus.REFUSED.value:
            audit("approval.denied", actor=f"slack:{click.slack_user_id}", resource_type="workflow",
                  resource_id=click.dag_id, outcome="denied", correlation_id=click.correlation_id, session=session,
                  run_id=click.run_id, task_id=click.task_id, email=click.email, reason=error)
        else:
            log.warning("Slack click %s on %s/%s/%s not applied: %s (%s)", click.id, click.dag_id, click.run_id,
                        click.task_id, status, error)
    if url and respond:
        post_response_url(url, message)
    return status, message


def _decide(click: ApprovalClick, request: Request | None, now: datetime, settle: float) -> tuple[str, str | None]:
    """The click's next status (pending = not yet); records the response in Airflow when it is safe."""
    if request is None or not request.has_request:
        return ApprovalClickStatus.EXPIRED.value, "the task instance try of this request is gone"
    if answered(request):
        return _ours_or_superseded(click, request)
    if request.state in NOT_PARKED_YET:
        return ApprovalClickStatus.PENDING.value, None
    if request.state not in PARKED:
        return ApprovalClickStatus.EXPIRED.value, f"the task is {request.state}"
    parked_at = request.updated_at or click.received_at  # Airflow sets updated_at on every change of the row
    safe, click.scheduler_mark = approval_clicks.ready(now=now, parked_at=parked_at, settle_seconds=settle,
                                                       scheduler=request.scheduler, mark=click.scheduler_mark)
    if not safe:
        return ApprovalClickStatus.PENDING.value, None
    target = {"dag_id": click.dag_id, "run_id": click.run_id, "task_id": click.task_id, "map_index": click.map_index}
    code, detail = record_response(target, click.option, SlackResponder(click.email, click.email))
    if code == 200:
        return ApprovalClickStatus.APPLIED.value, None
    if code == 409:
        again = request_of(click.ti_id)
        if again is not None and answered(again):
            return _ours_or_superseded(click, again)
    if code == 403:
        return ApprovalClickStatus.REFUSED.value, detail[:2000]
    return ApprovalClickStatus.EXPIRED.value, f"{code}: {detail}"[:2000]


def _ours_or_superseded(click: ApprovalClick, request: Request) -> tuple[str, str | None]:
    """A recorded response: this click's (applied before a crash, not yet marked) or somebody else's."""
    by = request.responded_by or {}
    if str(by.get("id", "")).lower() == click.email.lower() and request.chosen_options == [click.option]:
        return ApprovalClickStatus.APPLIED.value, None
    return ApprovalClickStatus.SUPERSEDED.value, "decided by someone else first"


def run_once(limit: int = 100) -> int:
    """Try every pending click once; how many were settled (applied or ended)."""
    settled = 0
    for click_id in approval_clicks.pending_ids(limit):
        outcome = apply(click_id)
        if outcome is not None and outcome[0] != ApprovalClickStatus.PENDING.value:
            settled += 1
    return settled


class Applier(BackgroundLoop):
    """The background loop; one per api-server process (re-created after a fork)."""

    name = "officeflow-approval-clicks"

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(get_settings().approval_poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                run_once()
            except Exception:  # keep the loop alive through DB outages; clicks stay pending
                log.exception("Applying stored approval clicks failed; retrying on the next pass")
                self._stop.wait(1.0)


applier = Applier()
