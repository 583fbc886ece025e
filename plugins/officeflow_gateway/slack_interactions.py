"""``POST /officeflow/slack/interactions``: Slack's interactivity Request URL for approval buttons, the
"Request equipment" button and the equipment request modal's submission (:mod:`.slack_modals`).

Slack posts ``application/x-www-form-urlencoded`` with one field ``payload`` (JSON, ``type`` =
``block_actions``), signed with the app's signing secret: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of
"v0:{X-Slack-Request-Timestamp}:{raw body}">``, the timestamp within 300 s (slack_sdk's
``SignatureVerifier``). A bad or stale signature → 401 in the gateway's error shape, nothing touched.

A click on :class:`operators.slack.SlackApprovalOperator`'s buttons by one of the approvers becomes the
HITL response exactly as Airflow's REST API records it (the same function: options validated, only once,
assigned users checked), and the waiting task resumes. The Slack user is mapped to the Airflow user with
the approver's e-mail, who must be allowed to answer this workflow's approvals in Airflow too (the auth
manager's HITL permission on the DAG); ``responded_by`` is that e-mail and user name. Anyone else (not an
approver, no such Airflow user, or no permission) gets an ephemeral "not allowed", the task keeps waiting,
and the refusal is audited, as is every recorded decision.

The click is stored in the OfficeFlow store first (one per request; a second click is "already decided") and
applied at once only when that cannot fail the task: a click that comes while Airflow is still parking the
task waits in the store and the api-server's applier (:mod:`.approval_clicks`) applies it within seconds.
The reply is 200 at once (Slack wants it within 3 s): "Approved by …" when applied, else "recorded"; the
message update ("Approved by …") or the ephemeral goes to the payload's ``response_url`` when it is applied.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from slack_sdk.signature import SignatureVerifier
from starlette.concurrency import run_in_threadpool

from include.officeflow import approval_clicks
from include.officeflow.audit import audit
from include.officeflow.settings import get_settings
from plugins.officeflow_auth.fab import user_allowed_to_approve
from plugins.officeflow_gateway import approval_clicks as applier_module
from plugins.officeflow_gateway import slack_modals
from plugins.officeflow_gateway.approval_clicks import ephemeral, post_response_url
from plugins.officeflow_gateway.errors import ApiError, correlation_id
from plugins.officeflow_gateway.slack_summary import REQUEST_ACTION_ID

log = logging.getLogger(__name__)
router = APIRouter(tags=["Slack"])

APPROVE_ACTION_ID = "officeflow_approve"  # operators.slack's button action ids
REJECT_ACTION_ID = "officeflow_reject"
OPTIONS = {APPROVE_ACTION_ID: "Approve", REJECT_ACTION_ID: "Reject"}
MAX_BODY = 1_048_576


def verify(body: bytes, timestamp: str | None, signature: str | None) -> None:
    secret = get_settings().slack_signing_secret
    if secret is None or not secret.get_secret_value():
        raise ApiError(401, "unauthorized", "Slack interactions are not configured (no signing secret)")
    if not SignatureVerifier(secret.get_secret_value()).is_valid(body, timestamp, signature):
        raise ApiError(401, "invalid_signature", "Slack signature invalid or timestamp outside 300 s")


async def read_signed(request: Request) -> bytes:
    """The raw body of a request Slack signed (commands, interactions, events): 413 when too large, 401
    unless the signature and timestamp verify."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, "payload_too_large", "body too large")
    verify(body, request.headers.get("X-Slack-Request-Timestamp"), request.headers.get("X-Slack-Signature"))
    return body


@router.post("/slack/interactions", summary="Slack interactivity (approval buttons, the equipment request modal)",
             responses={400: {"description": "Not a Slack interaction payload"},
                        401: {"description": "Slack signature invalid or stale, or no signing secret configured"},
                        413: {"description": "Body too large"}})
async def interactions(request: Request, background: BackgroundTasks) -> JSONResponse:
    body = await read_signed(request)
    try:
        payload = json.loads(parse_qs(body.decode("utf-8"))["payload"][0])
    except (KeyError, IndexError, ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_payload", "expected a form field 'payload' with JSON") from None
    if not isinstance(payload, dict):
        return JSONResponse({})
    if payload.get("type") == "view_submission" and (payload.get("view") or {}).get("callback_id") == \
            slack_modals.CALLBACK_ID:
        answer, confirmation = await run_in_threadpool(slack_modals.submit, payload, correlation_id(request))
        if confirmation is not None:  # after the answer: Slack wants it within 3 s, the run goes on anyway
            background.add_task(slack_modals.send_dm, confirmation)
        return JSONResponse(answer)
    if payload.get("type") != "block_actions":
        return JSONResponse({})  # other interaction types: acknowledged, nothing to do
    actions = payload.get("actions") or []
    if any(a.get("action_id") == REQUEST_ACTION_ID for a in actions):
        background.add_task(slack_modals.open_modal, str((payload.get("user") or {}).get("id") or ""),
                            str(payload.get("trigger_id") or ""), str((payload.get("channel") or {}).get("id") or ""),
                            str(payload.get("response_url") or ""))
        return JSONResponse({})
    action = next((a for a in actions if a.get("action_id") in OPTIONS), None)
    if action is None:
        return JSONResponse({})
    try:
        target = json.loads(action.get("value") or "")
        approvers: dict[str, str] = dict(target["approvers"])
        map_index = int(target.get("map_index", -1))
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "invalid_payload", "the button's value is not an OfficeFlow approval") from None
    user = payload.get("user") or {}
    slack_user_id = str(user.get("id") or "")
    response_url = str(payload.get("response_url") or "")
    if slack_user_id not in approvers:
        reply = ephemeral("Sorry, you are not allowed to decide on this request.")
        if response_url:
            background.add_task(post_response_url, response_url, reply)
        return JSONResponse(reply)
    option = OPTIONS[str(action["action_id"])]
    email = approvers[slack_user_id]
    username = await run_in_threadpool(user_allowed_to_approve, email, str(target.get("dag_id", "")))
    if username is None:
        await run_in_threadpool(
            audit, "approval.denied", actor=f"slack:{slack_user_id}", resource_type="workflow",
            resource_id=str(target.get("dag_id")), outcome="denied", correlation_id=correlation_id(request),
            run_id=str(target.get("run_id")), task_id=str(target.get("task_id")), email=email,
            reason="no Airflow user with this e-mail may answer this workflow's approvals")
        reply = ephemeral("Sorry, your Airflow account may not decide on this request.")
        if response_url:
            background.add_task(post_response_url, response_url, reply)
        return JSONResponse(reply)
    click = approval_clicks.Click(
        ti_id="", dag_id=str(target.get("dag_id", "")), run_id=str(target.get("run_id", "")),
        task_id=str(target.get("task_id", "")), map_index=map_index, option=option,
        slack_user_id=slack_user_id, email=email, username=username, response_url=response_url or None,
        message_blocks=list((payload.get("message") or {}).get("blocks") or []), correlation_id=correlation_id(request))
    reply = await run_in_threadpool(_keep_and_apply, click)
    if response_url:
        background.add_task(post_response_url, response_url, reply)
    return JSONResponse(reply)


def _keep_and_apply(click: approval_clicks.Click) -> dict[str, Any]:
    """Store the click (durably, before Slack gets its answer), then apply it if that is safe already; the answer
    for Slack. A click the task cannot take yet is applied by the applier (:mod:`.approval_clicks`)."""
    request = applier_module.current_request(
        {"dag_id": click.dag_id, "run_id": click.run_id, "task_id": click.task_id, "map_index": click.map_index})
    if request is None or not request.has_request:
        log.warning("Slack click for an unknown approval request %s/%s/%s[%s]", click.dag_id, click.run_id,
                    click.task_id, click.map_index)
        return ephemeral("Could not record your decision: this approval request is not known "
                         "(its task instance or human-in-the-loop request was not found).")
    if applier_module.answered(request) or approval_clicks.has_click(request.ti_id):
        return ephemeral("This request has already been decided.")
    if request.state not in applier_module.NOT_PARKED_YET | applier_module.PARKED:
        return ephemeral(f"Could not record your decision: this request is no longer waiting (the task is "
                         f"{request.state}).")
    click_id = approval_clicks.keep(dataclasses.replace(click, ti_id=request.ti_id))
    if click_id is None:
        return ephemeral("This request has already been decided.")
    outcome = applier_module.apply(click_id, respond=False)
    if outcome is None or outcome[1] is None:  # pending (or another process is applying it right now)
        applier_module.applier.wake()
        verb = "approval" if click.option == "Approve" else "rejection"
        return ephemeral(f"Your {verb} is recorded; it will be applied as soon as the task is ready "
                         "(usually within seconds).")
    return outcome[1]
