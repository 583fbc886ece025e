"""Build a Slack ``block_actions`` click on an approval message and sign it as Slack does."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

SIGNING_SECRET = "e2e-slack-signing-secret-0123456789abcdef"


def sign(body: bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Slack's headers: ``v0=`` hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/x-www-form-urlencoded"}


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
