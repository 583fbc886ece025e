"""``POST /officeflow/slack/events``: the app's Events API Request URL (the App Home tab).

Every request is signed (:func:`.slack_interactions.read_signed`: otherwise 401 in the gateway's error
shape). ``url_verification`` (when the URL is saved in Slack) is answered with its ``challenge``;
an ``event_callback`` of ``app_home_opened`` on the Home tab is acknowledged at once and the user's Home
tab is then published (``views.publish``) with what is open for them (:mod:`.slack_summary`). Other events
are acknowledged and ignored.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse

from plugins.officeflow_gateway import slack_summary
from plugins.officeflow_gateway.errors import ApiError
from plugins.officeflow_gateway.slack_interactions import read_signed

router = APIRouter(tags=["Slack"])


@router.post("/slack/events", summary="Slack Events API (App Home)",
             responses={200: {"description": "Acknowledged; `{challenge}` for url_verification"},
                        400: {"description": "Not Slack's payload"},
                        401: {"description": "Slack signature invalid or stale"},
                        413: {"description": "Body too large"}})
async def events(request: Request, background: BackgroundTasks) -> JSONResponse:
    body = await read_signed(request)
    try:
        envelope: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_payload", "expected a JSON Events API request") from None
    if not isinstance(envelope, dict):
        raise ApiError(400, "invalid_payload", "expected a JSON Events API request")
    if envelope.get("type") == "url_verification":
        return JSONResponse({"challenge": str(envelope.get("challenge") or "")})
    event = envelope.get("event") or {}
    if (envelope.get("type") == "event_callback" and isinstance(event, dict)
            and event.get("type") == "app_home_opened" and event.get("tab", "home") == "home" and event.get("user")):
        background.add_task(slack_summary.publish_home, str(event["user"]))
    return JSONResponse({})
