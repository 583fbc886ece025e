"""The equipment request modal: opened from ``/officeflow request equipment`` or the summary's button,
submitted to ``POST /officeflow/slack/interactions`` (``view_submission``), started as an
``equipment_request`` run.

- Opening: ``users.info`` names the requester (their e-mail and name go into the view's
  ``private_metadata``, which only the app sets and Slack returns signed), then ``views.open`` with the
  action's ``trigger_id`` (valid 3 s, once).
- Submitting: the inputs are checked as the workflow checks them (its own rules,
  :func:`include.officeflow.hires.equipment_request_plan`); problems go back inline
  (``response_action: errors`` under the input they concern, the modal and what was typed stay). A valid
  request starts the run (run id derived from the view id: a repeated submission names the same run) and
  closes the modal; the DM with the run's link is sent after the answer.

Sync code: call it from a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from include.officeflow import errors, run_notes
from include.officeflow.addresses import is_email_address
from include.officeflow.audit import audit
from include.officeflow.hires import InvalidHire, equipment_request_plan
from include.officeflow.templating import environment
from include.officeflow.workflow_params import EQUIPMENT_CATALOGUE
from operators.slack.notifier import airflow_ui_url
from operators.slack.templates import render_message
from plugins.officeflow_gateway.slack_summary import (
    SlackPerson,
    UnknownSlackUser,
    ephemeral,
    person,
    post_to_response_url,
    slack_hook,
)
from plugins.officeflow_gateway.triggering import TriggerError, trigger_run

log = logging.getLogger(__name__)

CALLBACK_ID = "officeflow_equipment_request"
DAG_ID = "equipment_request"
FIELDS = ("items", "reason", "for_email", "for_name", "approver_email")  # block id = action id = the DAG param
EMAIL_FIELDS = ("for_email", "approver_email")
MAX_REASON = 500
MAX_NAME = 120


def modal_view(requester: SlackPerson, channel_id: str = "") -> dict[str, Any]:
    """The modal (Block Kit from ``include/templates/slack/equipment_request_modal.json.j2``); who asks
    travels in ``private_metadata`` (looked up now, so the submission needs no Slack call)."""
    rendered = environment("slack").get_template("equipment_request_modal.json.j2").render(
        catalogue=EQUIPMENT_CATALOGUE)
    blocks = json.loads(rendered)["blocks"]
    metadata = {"user_id": requester.user_id, "email": requester.email, "name": requester.name,
                "channel_id": channel_id}
    return {"type": "modal", "callback_id": CALLBACK_ID, "title": {"type": "plain_text", "text": "Request equipment"},
            "submit": {"type": "plain_text", "text": "Send request"}, "close": {"type": "plain_text", "text": "Cancel"},
            "private_metadata": json.dumps(metadata, separators=(",", ":")), "blocks": blocks}


def open_modal(user_id: str, trigger_id: str, channel_id: str = "", response_url: str = "") -> None:
    """Open the modal for ``user_id``; a failure is told through ``response_url`` (when there is one)."""
    hook = slack_hook()
    try:
        # Nothing else before views.open: the trigger id lives 3 s from the person's action.
        hook.call_method("views.open", trigger_id=trigger_id, view=modal_view(person(user_id, hook), channel_id))
        return
    except UnknownSlackUser as exc:
        log.info("equipment request from an unknown person: %s", exc)
        reply = "Sorry, OfficeFlow does not know you: your Slack profile needs your work e-mail."
    except errors.ServiceError as exc:  # e.g. expired_trigger_id: the person can simply try again
        log.warning("equipment request modal for %s not opened: %s", user_id, exc)
        reply = f"Sorry, the request form could not be opened ({exc}). Please try again."
    if response_url:
        post_to_response_url(response_url, ephemeral(reply))


def submitted_values(view: dict[str, Any]) -> dict[str, Any]:
    """The modal's inputs by param name, from Slack's ``view.state.values``."""
    values = ((view.get("state") or {}).get("values")) or {}
    found: dict[str, Any] = {}
    for name in FIELDS:
        element = (values.get(name) or {}).get(name) or {}
        if "selected_options" in element:
            found[name] = [str(o.get("value")) for o in element.get("selected_options") or [] if o.get("value")]
        else:
            found[name] = str(element.get("value") or "").strip() or None
    return found


def problems_by_field(values: dict[str, Any], requester_email: str) -> dict[str, str]:
    """What is wrong, under the input it concerns (Slack shows each under its block)."""
    found: dict[str, str] = {}
    if not values.get("items"):
        found["items"] = "Pick at least one item."
    elif len(values["items"]) > 20:
        found["items"] = "At most 20 items in one request."
    for name in EMAIL_FIELDS:
        if values.get(name) and not is_email_address(values[name]):
            found[name] = f"{values[name]!r} is not an e-mail address."
    if len(values.get("reason") or "") > MAX_REASON:
        found["reason"] = f"At most {MAX_REASON} characters."
    if len(values.get("for_name") or "") > MAX_NAME:
        found["for_name"] = f"At most {MAX_NAME} characters."
    if found:
        return found
    try:  # the workflow's own rules, so a request it would refuse is refused here, in the modal
        equipment_request_plan({**values, "requester_email": requester_email})
    except InvalidHire as exc:
        for problem in str(exc).split("; "):
            if problem.startswith("manager_email is required"):  # no approver given and no people team set
                field, problem = "approver_email", "Name an approver: OfficeFlow has no people team to decide."
            else:
                field = next((f for f in FIELDS if problem.startswith(f)), "items")
            found[field] = f"{found[field]} {problem}" if field in found else problem
    return found


def run_id_for_view(view_id: str) -> str:
    return f"slack__{hashlib.sha256(view_id.encode()).hexdigest()[:32]}"


def _organization(email: str) -> str:
    """The requester's organization: the only one of the Airflow user with this e-mail, else ``default``.
    The user is read from FAB's table directly (no Flask app to build: this runs inside Slack's 3 s)."""
    from airflow.providers.fab.auth_manager.models import User
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    from include.officeflow.auth.organizations import of_user

    with create_session() as session:
        username = session.scalar(select(User.username).where(func.lower(User.email) == email.lower()).limit(1))
    organizations = of_user(username) if username else set()
    return next(iter(organizations)) if len(organizations) == 1 else "default"


def submit(payload: dict[str, Any], correlation_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Answer a ``view_submission`` of the modal: (Slack's answer, the DM to send after it or None)."""
    view = payload.get("view") or {}
    slack_user = str((payload.get("user") or {}).get("id") or "")
    try:
        metadata = json.loads(view.get("private_metadata") or "")
        requester = SlackPerson(str(metadata["user_id"]), str(metadata["email"]), str(metadata["name"]))
    except (ValueError, KeyError, TypeError):
        return _errors({"items": "This form is out of date: close it and open a new one."}), None
    if requester.user_id != slack_user:
        return _errors({"items": "This form belongs to someone else: open your own with /officeflow."}), None
    values = submitted_values(view)
    problems = problems_by_field(values, requester.email)
    if problems:
        return _errors(problems), None
    conf = {**{k: v for k, v in values.items() if v}, "requester_email": requester.email,
            "requester_name": requester.name, "organization_id": _organization(requester.email), "source": "slack",
            "correlation_id": correlation_id}
    run_id = run_id_for_view(str(view.get("id") or correlation_id))
    actor = f"slack:{requester.user_id}"
    try:
        trigger_run(DAG_ID, run_id, conf, triggered_by_name=requester.email,
                    note=run_notes.start_note(conf, correlation_id=correlation_id,
                                              started_by=f"{requester.name} in Slack"))
    except TriggerError as exc:
        log.warning("equipment request from %s not started: %s", requester.email, exc)
        audit("workflow.triggered", actor=actor, resource_type="workflow", resource_id=DAG_ID, outcome="failure",
              correlation_id=correlation_id, organization_id=conf["organization_id"], via="slack", error=str(exc))
        return _errors({"items": "OfficeFlow could not start the request right now; nothing was lost, "
                                 "press Send request again in a minute."}), None
    audit("workflow.triggered", actor=actor, resource_type="workflow", resource_id=DAG_ID, outcome="success",
          correlation_id=correlation_id, organization_id=conf["organization_id"], via="slack", run_id=run_id,
          email=requester.email)
    text, blocks = render_message("equipment_request_submitted", {
        "items": values["items"], "approver": values.get("approver_email") or "",
        "url": airflow_ui_url(DAG_ID, run_id)})
    return {"response_action": "clear"}, {"channel": requester.user_id, "text": text, "blocks": blocks}


def _errors(problems: dict[str, str]) -> dict[str, Any]:
    return {"response_action": "errors", "errors": {k: v[:150] for k, v in problems.items()}}


def send_dm(message: dict[str, Any]) -> None:
    """The confirmation DM (after Slack has its answer); a failure is logged: the run goes on."""
    try:
        slack_hook().call_method("chat.postMessage", **message)
    except errors.ServiceError as exc:
        log.warning("equipment request confirmation not sent to %s: %s", message.get("channel"), exc)
