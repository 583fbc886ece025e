"""``POST /officeflow/slack/commands``: the ``/officeflow`` slash command's Request URL.

Slack posts the command form-encoded (``command``, ``text``, ``user_id``, ``team_id``, ``trigger_id``,
``response_url``, ``channel_id`` …), signed as interactions are (:func:`.slack_interactions.read_signed`:
a bad or stale signature → 401 in the gateway's error shape). It wants an answer within 3 s, so the route
only parses and acknowledges (an empty 200); the work follows the answer:

- ``/officeflow`` or ``/officeflow help``: what is open for the person (:mod:`.slack_summary`), as an
  ephemeral message through ``response_url``;
- ``/officeflow request equipment``: the equipment request modal (:mod:`.slack_modals`, ``views.open``
  with the command's ``trigger_id``);
- anything else: an ephemeral usage line, at once.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, Response

from plugins.officeflow_gateway import slack_modals, slack_summary
from plugins.officeflow_gateway.errors import ApiError
from plugins.officeflow_gateway.slack_interactions import read_signed

router = APIRouter(tags=["Slack"])

USAGE = "Try `/officeflow` (what is open for you) or `/officeflow request equipment`."


@router.post("/slack/commands", summary="Slack slash command /officeflow",
             responses={200: {"description": "Acknowledged (empty), or an ephemeral usage message"},
                        400: {"description": "Not Slack's payload"},
                        401: {"description": "Slack signature invalid or stale"},
                        413: {"description": "Body too large"}})
async def commands(request: Request, background: BackgroundTasks) -> Response:
    body = await read_signed(request)
    try:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_payload", "expected Slack's form-encoded slash command") from None
    user_id, response_url = form.get("user_id", ""), form.get("response_url", "")
    if not user_id or not response_url:
        raise ApiError(400, "invalid_payload", "a slash command needs user_id and response_url")
    words = form.get("text", "").lower().split()
    if words in ([], ["help"]):
        background.add_task(slack_summary.answer_command, user_id, response_url)
    elif words == ["request", "equipment"]:
        background.add_task(slack_modals.open_modal, user_id, form.get("trigger_id", ""), form.get("channel_id", ""),
                            response_url)
    else:
        return JSONResponse(slack_summary.ephemeral(f"Unknown request `{form.get('text', '').strip()[:50]}`. {USAGE}"))
    return Response(status_code=200)
