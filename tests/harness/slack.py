"""Slack's side of the app, as Slack sends it: requests signed with the app's signing secret (approval
clicks, slash commands, view submissions, Events API callbacks), the sandbox's "user" driving the app
(:func:`configure_app`, :func:`act`), and the gateway served over HTTP for the sandbox to call
(:class:`ServedGateway`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from typing import Any
from urllib.parse import urlencode

from tests.harness.waiting import wait_until

SIGNING_SECRET = "e2e-slack-signing-secret-0123456789abcdef"


def sign(body: bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None,
         content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    """Slack's headers: ``v0=`` hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}", "Content-Type": content_type}


def click_body(message: dict[str, Any], channel: str, action_id: str, user_id: str,
               response_url: str = "") -> bytes:
    """The form body Slack posts when ``user_id`` clicks the button ``action_id`` of ``message``."""
    button = next(e for b in message.get("blocks", []) if b.get("type") == "actions" for e in b["elements"]
                  if e.get("action_id") == action_id)
    payload = {"type": "block_actions", "team": {"id": "T0SANDBOX"}, "api_app_id": "A0OFFICEFLOW",
               "user": {"id": user_id, "username": user_id, "team_id": "T0SANDBOX"},
               "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel},
               "channel": {"id": channel}, "message": message, "response_url": response_url,
               "trigger_id": "1.2.3", "actions": [{**button, "block_id": "officeflow_approval",
                                                   "action_ts": str(time.time())}]}
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed_click(message: dict[str, Any], channel: str, action_id: str, user_id: str, *,
                 response_url: str = "", secret: str = SIGNING_SECRET,
                 timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = click_body(message, channel, action_id, user_id, response_url)
    return body, sign(body, secret, timestamp)


def command_body(user_id: str, text: str = "", *, trigger_id: str = "", response_url: str = "",
                 channel_id: str = "C0GENERAL0", command: str = "/officeflow") -> bytes:
    """The form Slack posts for a slash command."""
    return urlencode({"token": "unused", "team_id": "T0SANDBOX", "team_domain": "officeflow-sandbox",
                      "channel_id": channel_id, "channel_name": "general", "user_id": user_id, "user_name": user_id,
                      "command": command, "text": text, "api_app_id": "A0OFFICEFLOW", "response_url": response_url,
                      "trigger_id": trigger_id}).encode()


def interaction_body(payload: dict[str, Any]) -> bytes:
    """An interaction (``block_actions``, ``view_submission``) as Slack posts it: form field ``payload``."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def event_body(event: dict[str, Any]) -> bytes:
    """An Events API ``event_callback`` envelope around ``event`` (JSON, as Slack posts it)."""
    return json.dumps({"token": "unused", "team_id": "T0SANDBOX", "api_app_id": "A0OFFICEFLOW", "event": event,
                       "type": "event_callback", "event_id": f"Ev{int(time.time() * 1000)}",
                       "event_time": int(time.time())}).encode()


def configure_app(sandbox: Any, gateway_url: str, secret: str = SIGNING_SECRET) -> None:
    """Point the sandbox's Slack app at the gateway (``gateway_url`` = ``…/officeflow``), as an admin
    sets the Request URLs in Slack's app settings."""
    sandbox.client.post("/slack/_sandbox/app", json={
        "signing_secret": secret, "commands_url": f"{gateway_url}/slack/commands",
        "interactivity_url": f"{gateway_url}/slack/interactions",
        "events_url": f"{gateway_url}/slack/events"}).raise_for_status()


def act(sandbox: Any, kind: str, **body: Any) -> dict[str, Any]:
    """The sandbox's user does ``kind`` (``command``, ``view_submission``, ``block_action``,
    ``app_home_opened``, ``url_verification``); the gateway's answer as Slack saw it."""
    response = sandbox.client.post(f"/slack/_sandbox/act/{kind}", json=body, timeout=15)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


class ServedGateway:
    """The gateway app served by uvicorn on a free 127.0.0.1 port in a thread, for the sandbox to call
    (a TestClient cannot be reached over HTTP). ``url`` ends in ``/officeflow`` as in the api-server."""

    def __init__(self) -> None:
        import uvicorn
        from fastapi import FastAPI

        from plugins.officeflow_gateway.app import create_app
        from tests.harness.ports import free_port

        root = FastAPI()
        root.mount("/officeflow", create_app())
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/officeflow"
        self.server = uvicorn.Server(uvicorn.Config(root, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedGateway:
        self.thread.start()
        wait_until(lambda: self.server.started, 20, "the gateway to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
