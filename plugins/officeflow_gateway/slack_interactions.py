"""``POST /officeflow/slack/interactions``: Slack's interactivity Request URL for approval buttons, the
"Request equipment" button and the equipment request modal's submission (:mod:`.slack_modals`).

Slack posts ``application/x-www-form-urlencoded`` with one field ``payload`` (JSON, ``type`` =
``block_actions``), signed with the app's signing secret: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of
"v0:{X-Slack-Request-Timestamp}:{raw body}">``, the timestamp within 300 s (slack_sdk's
``SignatureVerifier``). A bad or stale signature → 401 in the gateway's error shape, nothing touched.

A click on :class:`operators.slack.SlackApprovalOperator`'s buttons by one of the approvers records the
HITL response exactly as Airflow's REST API does (the same function: options validated, only once,
assigned users checked), and the waiting task resumes. The Slack user is mapped to the Airflow user with
the approver's e-mail, who must be allowed to answer this workflow's approvals in Airflow too (the auth
manager's HITL permission on the DAG); ``responded_by`` is that e-mail and user name. Anyone else (not an
approver, no such Airflow user, or no permission) gets an ephemeral "not allowed", the task keeps waiting,
and the refusal is audited, as is every recorded decision. The reply is 200 at once; the
message update ("Approved by …") or the ephemeral goes to the payload's ``response_url`` after the
answer (Slack wants the 200 within 3 s).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from slack_sdk.signature import SignatureVerifier
from starlette.concurrency import run_in_threadpool

from include.officeflow.audit import audit
from include.officeflow.settings import get_settings
from plugins.officeflow_auth.fab import user_allowed_to_approve
from plugins.officeflow_gateway import slack_modals
from plugins.officeflow_gateway.errors import ApiError, correlation_id
from plugins.officeflow_gateway.slack_summary import REQUEST_ACTION_ID

log = logging.getLogger(__name__)
router = APIRouter(tags=["Slack"])

APPROVE_ACTION_ID = "officeflow_approve"  # operators.slack's button action ids
REJECT_ACTION_ID = "officeflow_reject"
OPTIONS = {APPROVE_ACTION_ID: "Approve", REJECT_ACTION_ID: "Reject"}
MAX_BODY = 1_048_576


class SlackResponder:
    """The Airflow user a Slack click responds as (what ``update_hitl_detail`` asks of a user)."""

    def __init__(self, user_id: str, name: str) -> None:
        self.user_id, self.name = user_id, name

    def get_id(self) -> str:
        return self.user_id

    def get_name(self) -> str:
        return self.name


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


def _post_response_url(url: str, message: dict[str, Any]) -> None:
    try:
        httpx.post(url, json=message, timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("Slack response_url post failed: %s", exc)


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


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
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "invalid_payload", "the button's value is not an OfficeFlow approval") from None
    user = payload.get("user") or {}
    slack_user_id = str(user.get("id") or "")
    response_url = str(payload.get("response_url") or "")
    if slack_user_id not in approvers:
        reply = _ephemeral("Sorry, you are not allowed to decide on this request.")
        if response_url:
            background.add_task(_post_response_url, response_url, reply)
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
        reply = _ephemeral("Sorry, your Airflow account may not decide on this request.")
        if response_url:
            background.add_task(_post_response_url, response_url, reply)
        return JSONResponse(reply)
    responder = SlackResponder(email, email)  # as assigned (by e-mail); the audit names the Airflow user
    status, detail = await run_in_threadpool(record_response, target, option, responder)
    if status == 200:
        await run_in_threadpool(
            audit, "approval.responded", actor=f"user:{username}", resource_type="workflow",
            resource_id=str(target.get("dag_id")), outcome="success", correlation_id=correlation_id(request),
            run_id=str(target.get("run_id")), task_id=str(target.get("task_id")), chosen=option, via="slack",
            slack_user=slack_user_id)
    if status == 200:
        verb = "Approved" if option == "Approve" else "Rejected"
        original = (payload.get("message") or {}).get("blocks") or []
        kept = [b for b in original if b.get("type") != "actions"]
        text = f"{verb} by <@{slack_user_id}> ({email})"
        reply = {"replace_original": True, "text": text,
                 "blocks": [*kept, {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}}]}
        log.info("HITL %s recorded for %s by %s", option, target, email)
    elif status == 409:
        reply = _ephemeral("This request has already been decided.")
    elif status == 403:
        reply = _ephemeral("Sorry, you are not allowed to decide on this request.")
    else:
        log.warning("Slack click not recorded for %s: %s %s", target, status, detail)
        reply = _ephemeral(f"Could not record your decision: {detail}")
    if response_url:
        background.add_task(_post_response_url, response_url, reply)
    return JSONResponse(reply)
