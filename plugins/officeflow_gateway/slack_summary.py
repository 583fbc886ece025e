"""What is open for a person in Slack: their pending approvals and open onboardings (the ``/officeflow``
answer and the App Home tab).

The person is the Slack user's e-mail (``users.info``); Airflow knows them by it:

- **pending approvals**: human-in-the-loop requests (Airflow's ``hitl_detail``) not answered yet whose task
  still waits, where the e-mail is an approver: one of the HITL ``assigned_users`` or of the rendered
  ``approvers`` of a :class:`~operators.slack.SlackApprovalOperator`;
- **open onboardings**: ``employee_onboarding`` runs still queued or running whose conf names the person as
  the hire (``email``, ``personal_email``) or the manager (``manager_email``), each with the steps it is at
  (its task instances not finished yet).

Sync code (Slack Web API calls and Airflow's metadata DB): call it from a worker thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from include.officeflow import errors
from operators.hooks.slack import OfficeFlowSlackHook
from operators.slack.notifier import airflow_ui_url
from operators.slack.templates import render_message

log = logging.getLogger(__name__)

ONBOARDING_DAG = "employee_onboarding"
HIRE_KEYS = ("email", "personal_email")
MANAGER_KEYS = ("manager_email",)
SHOWN = 10  # items per list in one answer (a message holds ≤ 50 blocks)
SCANNED = 500  # newest waiting requests / running onboardings looked at
REQUEST_ACTION_ID = "officeflow_request_equipment"  # the summary's "Request equipment" button


class UnknownSlackUser(Exception):
    """The Slack user is not someone OfficeFlow can act for (unknown, deactivated, a bot, no e-mail)."""


@dataclass(frozen=True)
class SlackPerson:
    user_id: str
    email: str
    name: str


def slack_hook() -> OfficeFlowSlackHook:
    """The ``officeflow_slack`` connection's hook (a new one per request: its lookups are cached per hook)."""
    return OfficeFlowSlackHook()


def person(user_id: str, hook: OfficeFlowSlackHook | None = None) -> SlackPerson:
    """The Slack member ``user_id`` as OfficeFlow knows people: by e-mail (``users.info``)."""
    data = (hook or slack_hook()).call_method("users.info", user=user_id, allow=("user_not_found",))
    user = data.get("user") if data.get("ok", True) else None
    if not isinstance(user, dict):
        raise UnknownSlackUser(f"Slack does not know the user {user_id!r}")
    email = str((user.get("profile") or {}).get("email") or "").strip().lower()
    if user.get("deleted") or user.get("is_bot") or not email:
        raise UnknownSlackUser(f"the Slack user {user_id!r} is deactivated, a bot or has no e-mail in its profile")
    name = str(user.get("real_name") or (user.get("profile") or {}).get("real_name") or email)
    return SlackPerson(user_id=user_id, email=email, name=name)


def _lower(values: Any) -> set[str]:
    if isinstance(values, str):
        values = [values]
    return {str(v).strip().lower() for v in values or [] if str(v).strip()}


def pending_approvals(email: str) -> list[dict[str, Any]]:
    """The HITL requests waiting for ``email``'s decision, oldest first."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rendered
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    waiting = (TaskInstanceState.AWAITING_INPUT, TaskInstanceState.DEFERRED, TaskInstanceState.RUNNING)
    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id, TaskInstance.map_index,
                   HITLDetail.subject, HITLDetail.assignees)
            .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
            .where(HITLDetail.responded_at.is_(None), TaskInstance.state.in_(waiting))
            .order_by(HITLDetail.created_at.desc()).limit(SCANNED)).all()
        run_ids = {row.run_id for row in rows}
        rendered = {(r.dag_id, r.run_id, r.task_id, r.map_index): r.rendered_fields or {}
                    for r in session.execute(select(Rendered.dag_id, Rendered.run_id, Rendered.task_id,
                                                    Rendered.map_index, Rendered.rendered_fields)
                                             .where(Rendered.run_id.in_(run_ids)))} if run_ids else {}
    found = []
    for row in reversed(rows):
        assignees = {v for a in row.assignees or [] for v in _lower([a.get("id"), a.get("name")])}
        approvers = _lower(rendered.get((row.dag_id, row.run_id, row.task_id, row.map_index), {}).get("approvers"))
        if email in assignees | approvers:
            found.append({"subject": row.subject, "workflow": row.dag_id, "run_id": row.run_id,
                          "task_id": row.task_id, "url": airflow_ui_url(row.dag_id, row.run_id, row.task_id,
                                                                        row.map_index)})
    return found


def open_onboardings(email: str) -> list[dict[str, Any]]:
    """The onboardings in progress naming ``email`` as the hire or the manager, newest first, with the
    steps each is at."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    unfinished = (TaskInstanceState.RUNNING, TaskInstanceState.QUEUED, TaskInstanceState.SCHEDULED,
                  TaskInstanceState.DEFERRED, TaskInstanceState.AWAITING_INPUT, TaskInstanceState.UP_FOR_RETRY,
                  TaskInstanceState.UP_FOR_RESCHEDULE, TaskInstanceState.RESTARTING)
    with create_session() as session:
        runs = session.execute(
            select(DagRun.run_id, DagRun.conf, DagRun.state)
            .where(DagRun.dag_id == ONBOARDING_DAG, DagRun.state.in_((DagRunState.QUEUED, DagRunState.RUNNING)))
            .order_by(DagRun.id.desc()).limit(SCANNED)).all()
        mine: list[tuple[str, dict[str, Any], str, str]] = []
        for run in runs:
            conf = run.conf if isinstance(run.conf, dict) else {}
            role = ("hire" if email in _lower([conf.get(k) for k in HIRE_KEYS])
                    else "manager" if email in _lower([conf.get(k) for k in MANAGER_KEYS]) else None)
            if role:
                mine.append((run.run_id, conf, role, str(run.state)))
        steps: dict[str, list[str]] = {}
        if mine:
            for ti in session.execute(select(TaskInstance.run_id, TaskInstance.task_id, TaskInstance.state)
                                      .where(TaskInstance.dag_id == ONBOARDING_DAG,
                                             TaskInstance.run_id.in_([m[0] for m in mine]),
                                             TaskInstance.state.in_(unfinished))
                                      .order_by(TaskInstance.task_id)):
                steps.setdefault(ti.run_id, []).append(f"{ti.task_id} ({str(ti.state).replace('_', ' ')})")
    return [{"who": _hire_name(conf), "role": role, "run_id": run_id,
             "steps": steps.get(run_id) or [f"waiting to start ({state})" if state == "queued" else "between steps"],
             "url": airflow_ui_url(ONBOARDING_DAG, run_id)} for run_id, conf, role, state in mine]


def _hire_name(conf: dict[str, Any]) -> str:
    name = " ".join(str(conf.get(k) or "").strip() for k in ("first_name", "last_name")).strip()
    return f"Onboarding of {name or conf.get('email') or 'a new hire'}"


def summary(who: SlackPerson) -> tuple[str, list[dict[str, Any]]]:
    """The summary message (fallback text, Block Kit blocks) for ``who``."""
    approvals, onboardings = pending_approvals(who.email), open_onboardings(who.email)
    return render_message("officeflow_summary", {
        "name": who.name, "approvals": approvals[:SHOWN], "onboardings": onboardings[:SHOWN],
        "more_approvals": max(0, len(approvals) - SHOWN), "more_onboardings": max(0, len(onboardings) - SHOWN),
        "request_action_id": REQUEST_ACTION_ID})


def post_to_response_url(url: str, message: dict[str, Any]) -> None:
    """A later answer to a slash command or click (Slack's ``response_url``); failures are logged."""
    import httpx

    try:
        httpx.post(url, json=message, timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("Slack response_url post failed: %s", exc)


def ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"response_type": "ephemeral", "replace_original": False, "text": text}
    if blocks:
        message["blocks"] = blocks
    return message


def answer_command(user_id: str, response_url: str) -> None:
    """``/officeflow``: the summary, or why there is none, as an ephemeral answer through ``response_url``."""
    try:
        text, blocks = summary(person(user_id))
        message = ephemeral(text, blocks)
    except UnknownSlackUser as exc:
        log.info("/officeflow from an unknown person: %s", exc)
        message = ephemeral("Sorry, OfficeFlow does not know you: your Slack profile needs your work e-mail.")
    except errors.ServiceError as exc:
        log.warning("/officeflow summary for %s failed: %s", user_id, exc)
        message = ephemeral(f"Sorry, OfficeFlow could not look that up right now ({exc}). Try again in a minute.")
    post_to_response_url(response_url, message)


def publish_home(user_id: str) -> None:
    """The App Home tab of ``user_id``: the same summary (``views.publish``); failures are logged."""
    hook = slack_hook()
    try:
        blocks = summary(person(user_id, hook))[1]
    except UnknownSlackUser as exc:
        log.info("App Home of an unknown person: %s", exc)
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "OfficeFlow does not know you yet: "
                                                                         "your Slack profile needs your work e-mail."}}]
    except errors.ServiceError as exc:
        log.warning("App Home of %s not built: %s", user_id, exc)
        return
    try:
        hook.call_method("views.publish", user_id=user_id, view={"type": "home", "blocks": blocks})
    except errors.ServiceError as exc:
        log.warning("App Home of %s not published: %s", user_id, exc)
